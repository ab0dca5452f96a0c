/* subs.c - a model's subscribers and the replies it releases (the declarations are in
 * model.h): subscribing and leaving, presence, catching a lagging subscriber up (from the
 * history in memory, or as a task after a read from the store), and, once a commit group
 * is durable, the release of its replies: a batch's push to every subscriber, the ack to
 * its flusher, snaps and diffs; or their failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub.h"
#include "hub/log.h"
#include "hub/model.h"
#include "hub/presence.h"
#include "hub/runner.h"

/* ---- subscriptions and replies ------------------------------------------------------- */

void fo_model_unsubscribe(fo_sub *sub, bool announce)
{
    fo_model *m = sub->model;

    if (sub->presence && announce) {
        fo_msg ev;
        fo_frame *f;

        memset(&ev, 0, sizeof(ev));
        ev.type = FO_MSG_PRESENCE_EVT;
        ev.model = m->name;
        ev.model_len = m->name_len;
        ev.session = sub->session->sid;
        ev.state = NULL;
        if ((f = fo_frame_encode(&ev))) {
            for (fo_sub *o = m->subs; o; o = o->mnext)
                if (o != sub && o->active)
                    fo_session_send(o->session, f);
            fo_presence_publish(m->hub, m, f);
            fo_frame_unref(f);
        }
    }
    if (sub->mprev)
        sub->mprev->mnext = sub->mnext;
    else
        m->subs = sub->mnext;
    if (sub->mnext)
        sub->mnext->mprev = sub->mprev;
    m->nsubs--;
    fo_session_forget_sub(sub->session, sub);
    fo_frame_unref(sub->presence);
    free(sub);
    fo_model_unref(m);
}

/* Queues a catch-up for `sub` that needs history from the store: it runs as a task of
 * the model (fo_model_exec_catch_up), after a read, never blocking the loop. */
static void queue_catch_up(fo_model *m, fo_sub *sub)
{
    fo_task *t;

    for (t = m->tasks; t; t = t->next)
        if (t->msg.type == FO_MSG_PUSH && t->session == sub->session)
            return; /* one is queued already */
    if (!(t = calloc(1, sizeof(*t))))
        return; /* retried at the next drain or release */
    fo_arena_init(&t->arena, 64);
    t->sink = fo_reply_ref(&sub->session->sink);
    t->session = sub->session;
    t->msg.type = FO_MSG_PUSH;
    t->msg.model = m->name;
    t->msg.model_len = m->name_len;
    t->t_recv = fo_now_ns();
    fo_model_queue(m, t);
}

static void catch_up(fo_sub *sub, bool in_task)
{
    fo_model *m = sub->model;
    fo_session *s = sub->session;
    uint64_t target = m->released, count;
    fo_arena a;
    fo_msg msg;
    fo_frame *f;

    if (m->state != FO_MODEL_READY || !fo_session_attached(s))
        return;
    count = fo_master_snapshot(m->master).command_count;
    if (sub->next_from >= target && target == count) {
        sub->lagging = false;
        return;
    }
    /* Older than the history in memory but within --history: read back, in a task. */
    if (!in_task && sub->next_from < target &&
        !fo_model_history_covers(m, sub->next_from, target) && m->hub->cfg.history &&
        sub->next_from + m->hub->cfg.history >= count) {
        queue_catch_up(m, sub);
        return;
    }
    fo_arena_init(&a, 4096);
    memset(&msg, 0, sizeof(msg));
    msg.model = m->name;
    msg.model_len = m->name_len;
    if (sub->next_from <= target &&
        fo_model_history_msg(m, sub->next_from, target, &a, &msg) == 0) {
        msg.type = FO_MSG_PUSH;
        sub->next_from = target;
    } else if (count == target) {
        /* Past the history, and nothing in flight: a snap of the (durable) state. */
        msg.type = FO_MSG_SNAP;
        msg.snapshot = fo_master_snapshot(m->master);
        sub->next_from = count;
    } else {
        /* Past the history with commits in flight: wait for them (retried on release). */
        fo_arena_destroy(&a);
        return;
    }
    if (msg.type == FO_MSG_PUSH && msg.batch.len == 0) {
        sub->lagging = false;
        fo_arena_destroy(&a);
        return;
    }
    f = fo_frame_encode(&msg);
    fo_arena_destroy(&a);
    if (!f)
        return;
    sub->lagging = false;
    m->hub->metrics.catchups++;
    fo_session_send(s, f);
    fo_frame_unref(f);
}

void fo_model_catch_up(fo_sub *sub)
{
    catch_up(sub, false);
}

bool fo_model_exec_catch_up(fo_model *m, fo_task *t)
{
    fo_sub *sub = t->session ? fo_session_find_sub(t->session, m) : NULL;

    if (!sub || !sub->lagging)
        return true;
    if (!fo_model_need_history(m, sub->next_from, m->released))
        return false;
    catch_up(sub, true);
    return true;
}

static void send_presence_of_others(fo_model *m, fo_sub *sub)
{
    for (fo_sub *o = m->subs; o; o = o->mnext)
        if (o != sub && o->presence)
            fo_session_send(sub->session, o->presence);
    fo_presence_send(m->hub, m, sub->session);
}

void fo_model_fan_out(fo_model *m, fo_frame *push, uint64_t from, uint64_t len,
                      const fo_session *except)
{
    fo_sub *sub;

    for (sub = m->subs; sub; sub = sub->mnext) {
        if (sub->session == except)
            continue;
        if (sub->next_from == from) {
            fo_session_send_push(sub->session, sub, push, from);
            if (!sub->lagging)
                sub->next_from = from + len;
        } else if (sub->next_from < from && !sub->lagging) {
            /* A gap (a batch of another hub that overtook one of ours): never send one. */
            sub->lagging = true;
            if (fo_session_backlog(sub->session) == 0)
                fo_model_catch_up(sub);
        }
    }
    if (from + len > m->released)
        m->released = from + len;
    /* Lagging subscribers with an empty queue waited for this release. */
    for (sub = m->subs; sub; sub = sub->mnext)
        if (sub->lagging && fo_session_backlog(sub->session) == 0)
            fo_model_catch_up(sub);
}

/* The model's last reply has settled: a task that waited for it (a followed record) runs. */
static void run_waiting(fo_model *m)
{
    if (!m->npending && m->state == FO_MODEL_READY && m->tasks)
        fo_model_run(m);
}

static void release(fo_pending *p)
{
    fo_model *m = p->model;
    fo_hub *h = m->hub;
    /* Acks and subscription replies answer sessions only. */
    fo_session *ps = p->kind == FO_PEND_REPLY ? NULL : fo_session_of(p->sink);
    fo_sub *sub;

    switch (p->kind) {
    case FO_PEND_ACK:
        /* The flusher waits on its ack (closed loop): it leaves first in this turn. */
        if (ps)
            fo_session_write_early(ps);
        if (p->push)
            fo_model_fan_out(m, p->push, p->from, p->len, ps);
        if (!ps) /* a flush another hub forwarded: the ack goes back to it */
            p->sink->ops->deliver(p->sink, p->reply);
        if (ps) {
            sub = fo_session_find_sub(ps, m);
            /* A lagging flusher gets its catch-up first: pushes of earlier batches, then
             * its ack, as the contract orders them. */
            if (sub && sub->lagging)
                fo_model_catch_up(sub);
            fo_session_send(ps, p->reply);
            if (sub && sub->next_from == p->from)
                sub->next_from = p->from + p->len;
        }
        h->metrics.flushes++;
        fo_hist_add(&h->metrics.ack_latency, (double)(fo_now_ns() - p->t_recv) / 1e9);
        break;
    case FO_PEND_SUB:
        /* The reply goes out even when an unsub came in between: one reply per rid. */
        fo_session_send(ps, p->reply);
        if ((sub = fo_session_find_sub(ps, m)) && !sub->active) {
            sub->active = true;
            send_presence_of_others(m, sub);
        }
        break;
    case FO_PEND_REPLY: p->sink->ops->deliver(p->sink, p->reply); break;
    }
    fo_runner_pending_free(p);
    m->npending--;
    fo_model_maybe_reload(m);
    run_waiting(m);
}

/* The reply's commit failed. On --cluster these are passing states, answered `overloaded`
 * with retryAfterMs: a store that cannot reach NATS (FO_STORE_EIO: no quorum, no server;
 * retry in a second), another hub that appended to the model first (FO_STORE_EFENCED, or
 * ECONFLICT when the follower had seen its append; the model reloads: retry at once).
 * Anything else is `internal`. Either way the flush may be retried with its seq. */
static void fail(fo_pending *p, int rc, const char *why)
{
    fo_model *m = p->model;
    fo_session *s = fo_session_of(p->sink);

    if (p->sink) {
        bool raced = rc == FO_STORE_EFENCED || rc == FO_STORE_ECONFLICT;
        bool transient = m->hub->cfg.cluster[0] && (rc == FO_STORE_EIO || raced);
        fo_error_code code = transient ? FO_ERR_OVERLOADED : FO_ERR_INTERNAL;
        fo_msg req;
        char text[400];
        memset(&req, 0, sizeof(req));
        req.has_rid = p->has_rid;
        req.rid = p->rid;
        req.model = m->name;
        req.model_len = m->name_len;
        snprintf(text, sizeof(text), "%s%s", why,
                 p->kind == FO_PEND_ACK ? "; the flush may not be stored: retry it with the same seq (it applies once)" : "");
        if (transient && s)
            fo_session_send_retry(s, &req, code, raced ? 20 : 1000, "%s", text);
        else
            fo_reply_error(p->sink, &req, code, text);
        if (p->kind == FO_PEND_ACK)
            m->hub->metrics.flush_errors++;
    }
    fo_runner_pending_free(p);
    m->npending--;
    fo_model_maybe_reload(m);
    run_waiting(m);
}

/* The commit group of p is settled (commit.h). */
static void settle(fo_commit_waiter *w, int rc, const char *failed)
{
    fo_pending *p = (fo_pending *)w;

    if (!failed && p->model->broken) {
        failed = "a commit of this model failed (on --cluster: another hub appended first, or "
                 "NATS is unreachable); the model reloads";
        rc = p->model->broken_rc;
    }
    if (failed)
        fail(p, rc, failed);
    else
        release(p);
}

fo_pending *fo_model_pend(fo_model *m, fo_pend_kind kind)
{
    fo_pending *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->w.settle = settle;
    if (fo_commit_wait(m->hub, &p->w)) {
        free(p);
        return NULL;
    }
    p->kind = kind;
    p->model = fo_model_ref(m);
    m->npending++;
    return p;
}
