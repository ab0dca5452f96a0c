/* client_model.c - one subscribed model: its proxy, the flush policy, and what to do
 * with each snap, diff, push and ack (proto/PROTOCOL.md, "Ordering, durability,
 * exactly-once"). Callbacks may unsubscribe the model or close the client: after each
 * one, `alive()` says whether to go on. */
#include <stdlib.h>
#include <string.h>

#include "clients/c/client_impl.h"
#include "proto/json.h"

static bool alive(const fo_client_model *m)
{
    return !m->dead && !m->c->closing;
}

static void emit_change(fo_client_model *m, fo_client_change why, const fo_batch *diff)
{
    fo_client *c = m->c;

    if (alive(m) && c->cfg.cb.on_change)
        c->cfg.cb.on_change(m, why, diff, c->cfg.data);
}

static void emit_flush(fo_client_model *m, const fo_client_flush_info *info)
{
    fo_client *c = m->c;

    if (alive(m) && c->cfg.cb.on_flush)
        c->cfg.cb.on_flush(m, info, c->cfg.data);
}

static void on_timer(uv_timer_t *t);

fo_client_model *fo_client_model_new(fo_client *c, const char *name)
{
    fo_client_model *m = calloc(1, sizeof(*m));
    fo_proxy_config pc;

    if (!m)
        return NULL;
    memset(&pc, 0, sizeof(pc));
    pc.ids = c->cfg.ids;
    if (!(m->proxy = fo_proxy_new(NULL, &pc))) {
        free(m);
        return NULL;
    }
    m->c = c;
    snprintf(m->name, sizeof(m->name), "%s", name);
    uv_timer_init(c->loop, &m->timer);
    m->timer.data = m;
    fo_buf_init(&m->flush_frame, 0);
    fo_arena_init(&m->snap_arena, 1024);
    fo_arena_init(&m->pres_arena, 256);
    return m;
}

static void on_closed(uv_handle_t *h)
{
    fo_client_model *m = h->data;
    fo_client *c = m->c;

    fo_proxy_free(m->proxy);
    fo_buf_destroy(&m->flush_frame);
    fo_arena_destroy(&m->snap_arena);
    fo_arena_destroy(&m->pres_arena);
    free(m);
    fo_client_unlive(c);
}

void fo_client_model_close(fo_client_model *m)
{
    m->dead = true;
    uv_close((uv_handle_t *)&m->timer, on_closed);
}

/* ---- sending ------------------------------------------------------------------------- */

static void send_sub(fo_client_model *m)
{
    fo_client *c = m->c;
    fo_msg msg;

    memset(&msg, 0, sizeof(msg));
    msg.type = FO_MSG_SUB;
    msg.model = m->name;
    msg.has_rid = true;
    msg.rid = c->next_rid++;
    /* From the committed count: the reply is the diff since, or a snap if history is short. */
    msg.has_from = m->ready && !m->want_full;
    msg.from = fo_proxy_committed_count(m->proxy);
    m->want_full = false;
    m->sub = FO_SUB_PENDING;
    m->sub_rid = msg.rid;
    if (fo_client_send(c, &msg) != 0)
        m->sub = FO_SUB_NONE; /* the connection is going: the next welcome resubscribes */
}

static void send_presence(fo_client_model *m)
{
    fo_msg msg;

    memset(&msg, 0, sizeof(msg));
    msg.type = FO_MSG_PRESENCE;
    msg.model = m->name;
    msg.state = m->has_presence ? &m->pres_state : NULL;
    fo_client_send(m->c, &msg);
}

static void send_flight(fo_client_model *m)
{
    m->flush_sent = fo_client_send_buf(m->c, &m->flush_frame) == 0;
}

static void resubscribe(fo_client_model *m)
{
    m->stats.resubscribes++;
    if (fo_client_is_open(m->c))
        send_sub(m);
    else
        m->sub = FO_SUB_NONE;
}

void fo_client_model_on_open(fo_client_model *m)
{
    send_sub(m);
    if (m->flushing && !m->flush_sent) {
        /* The same bytes, so the same seq: the hub answers a flush it already applied with
         * the sync instead of applying it again. */
        m->stats.resends++;
        send_flight(m);
    }
    if (m->has_presence)
        send_presence(m);
}

void fo_client_model_on_lost(fo_client_model *m)
{
    m->sub = FO_SUB_NONE;
    m->flush_sent = false;
}

/* ---- flushing ------------------------------------------------------------------------ */

static void try_flush(fo_client_model *m)
{
    fo_client *c = m->c;
    fo_batch b;
    fo_msg msg;
    uint32_t limit = 0;
    int rc;

    if (!fo_client_is_open(c) || m->sub != FO_SUB_LIVE || !m->ready || m->flushing || m->dead)
        return;
    if (!m->flush_requested && (fo_proxy_queue_len(m->proxy) == 0 || c->cfg.manual_flush))
        return;
    for (;;) {
        if (fo_proxy_begin_flush_max(m->proxy, limit, &b) != 0)
            return; /* a diff did not apply: waiting for the snapshot */
        memset(&msg, 0, sizeof(msg));
        msg.type = FO_MSG_FLUSH;
        msg.model = m->name;
        msg.has_rid = true;
        msg.rid = c->next_rid;
        msg.seq = c->next_seq;
        msg.batch = b;
        m->flush_frame.len = 0;
        if ((rc = fo_wire_encode(&msg, &m->flush_frame)) != 0) {
            fo_proxy_cancel_flush(m->proxy);
            fo_client_report(c, 0, m->name, "cannot encode a flush: %s", fo_strerror(rc));
            return;
        }
        /* A queue grown offline may not fit one frame: send it in halves, and so on. */
        if (!c->max_frame || m->flush_frame.len <= c->max_frame || b.len <= 1)
            break;
        fo_proxy_cancel_flush(m->proxy);
        limit = b.len / 2;
    }
    c->next_rid++;
    c->next_seq++;
    m->flushing = true;
    m->flush_requested = false;
    m->flush_seq = msg.seq;
    m->flush_rid = msg.rid;
    m->flush_errors = 0;
    if (c->max_frame && m->flush_frame.len > c->max_frame) {
        /* The hub would discard the frame unread and could not say which request it
         * refused: refuse it here, as the hub's too_large would. */
        char why[160];
        fo_msg err;
        snprintf(why, sizeof(why), "the batch (%zu bytes) exceeds the hub's maxFrame (%llu)",
                 m->flush_frame.len, (unsigned long long)c->max_frame);
        memset(&err, 0, sizeof(err));
        err.type = FO_MSG_ERROR;
        err.has_rid = true;
        err.rid = msg.rid;
        err.code = FO_ERR_TOO_LARGE;
        err.message = why;
        m->flush_sent = true;
        fo_client_model_on_error(m, &err);
        return;
    }
    send_flight(m);
}

/* Arms the flush timer as the policy says: at once when asked or when the queue is
 * full, else after the idle delay (re-armed by every apply). */
static void schedule(fo_client_model *m)
{
    fo_client *c = m->c;
    uint32_t n = fo_proxy_queue_len(m->proxy);
    uint64_t delay;

    if (!alive(m) || m->flushing)
        return;
    if (!m->flush_requested && (n == 0 || c->cfg.manual_flush))
        return;
    delay = m->flush_requested || n >= c->cfg.flush_max_queue ? 0 : c->cfg.flush_delay_ms;
    uv_timer_start(&m->timer, on_timer, delay, 0);
}

static void on_timer(uv_timer_t *t)
{
    fo_client_model *m = t->data;

    if (!alive(m))
        return;
    if (m->flushing) {
        /* Backoff after a transient error is over: the same frame again. */
        if (!m->flush_sent && fo_client_is_open(m->c) && m->sub != FO_SUB_NONE) {
            m->stats.resends++;
            send_flight(m);
        }
        return;
    }
    if (m->sub == FO_SUB_NONE && fo_client_is_open(m->c)) {
        send_sub(m); /* after a transient error on `sub` */
        return;
    }
    try_flush(m);
}

/* Ends the flight without its commands (they were refused, or the ack's sync did not
 * apply): an empty diff from the committed count rebases the later queue on it. */
static void drop_flight(fo_client_model *m)
{
    fo_sync s;

    memset(&s, 0, sizeof(s));
    s.kind = FO_SYNC_PARTIAL;
    s.diff.from = fo_proxy_committed_count(m->proxy);
    fo_proxy_end_flush(m->proxy, &s, NULL);
}

static void end_flight(fo_client_model *m)
{
    m->flushing = false;
    m->flush_sent = false;
    m->flush_errors = 0;
    m->flush_frame.len = 0;
}

/* ---- receiving ----------------------------------------------------------------------- */

static void adopt(fo_client_model *m, const fo_snapshot *s)
{
    int rc = fo_proxy_reset(m->proxy, s);

    if (rc) {
        fo_client_report(m->c, 0, m->name, "cannot adopt a snapshot: %s", fo_strerror(rc));
        return;
    }
    m->ready = true;
    m->stats.snapshots++;
    emit_change(m, FO_CHANGE_SNAPSHOT, NULL);
    schedule(m);
}

/* Applies a batch of others' completions to the committed state. */
static void apply_batch(fo_client_model *m, const fo_batch *b)
{
    uint64_t cc = fo_proxy_committed_count(m->proxy);
    bool ids_changed;
    int rc;

    if (b->from < cc && b->from + b->len <= cc) {
        m->stats.pushes_skipped++; /* already covered (by an ack or a snapshot) */
        return;
    }
    if (b->from != cc) {
        m->stats.gaps++;
        resubscribe(m);
        return;
    }
    rc = fo_proxy_apply_push(m->proxy, b, &ids_changed);
    if (rc == 0) {
        m->stats.pushes_applied++;
        if (b->len)
            emit_change(m, FO_CHANGE_PUSH, b);
        return;
    }
    fo_client_report(m->c, 0, m->name, "a diff from %llu does not apply (%s): resubscribing",
                     (unsigned long long)b->from, fo_strerror(rc));
    m->want_full = true;
    resubscribe(m);
}

static void keep_snap(fo_client_model *m, const fo_snapshot *s)
{
    fo_arena_reset(&m->snap_arena);
    m->has_snap = fo_value_copy(&m->snap_arena, s->document, &m->snap_doc, NULL, NULL) == 0;
    m->snap_count = s->command_count;
}

static void on_ack(fo_client_model *m, const fo_msg *msg)
{
    const fo_sync *sync = &msg->result.sync;
    fo_client_flush_info info;
    bool ids_changed = false;
    int rc;

    if (!m->flushing || msg->seq != m->flush_seq)
        return;
    if (m->lose_acks) {
        m->lose_acks--;
        fo_client_debug_disconnect(m->c);
        return;
    }
    rc = fo_proxy_end_flush(m->proxy, sync, &ids_changed);
    if (rc != 0 && fo_proxy_flushing(m->proxy))
        drop_flight(m);
    end_flight(m);
    m->stats.flushes++;
    memset(&info, 0, sizeof(info));
    info.seq = msg->seq;
    info.result = &msg->result;
    emit_flush(m, &info);
    if (!alive(m))
        return;
    if (rc != 0) {
        fo_client_report(m->c, 0, m->name, "the ack's sync does not apply (%s): resubscribing",
                         fo_strerror(rc));
        m->has_snap = false;
        m->want_full = true;
        resubscribe(m);
        return;
    }
    if (sync->kind != FO_SYNC_NONE)
        emit_change(m, FO_CHANGE_SYNC, sync->kind == FO_SYNC_PARTIAL ? &sync->diff : NULL);
    if (!alive(m))
        return;
    if (m->has_snap) {
        fo_snapshot s = {m->snap_count, &m->snap_doc};
        m->has_snap = false;
        /* Frames arrive in model order, so a snap older than the ack's state is stale. */
        if (s.command_count > fo_proxy_committed_count(m->proxy)) {
            adopt(m, &s);
            return;
        }
    }
    schedule(m);
}

void fo_client_model_on_msg(fo_client_model *m, const fo_msg *msg)
{
    fo_client *c = m->c;
    bool solicited = msg->has_rid && msg->rid == m->sub_rid;

    switch (msg->type) {
    case FO_MSG_SNAP:
        if (msg->has_rid && !solicited)
            return; /* the reply to an older `sub`: the newer one follows */
        if (solicited)
            m->sub = FO_SUB_LIVE;
        else if (m->sub != FO_SUB_LIVE)
            return;
        if (m->flushing) {
            keep_snap(m, &msg->snapshot);
            return;
        }
        adopt(m, &msg->snapshot);
        return;
    case FO_MSG_DIFF:
        if (!solicited)
            return;
        m->sub = FO_SUB_LIVE;
        if (m->flushing) {
            m->stats.pushes_skipped++; /* the ack that follows covers it */
            return;
        }
        apply_batch(m, &msg->batch);
        schedule(m);
        return;
    case FO_MSG_PUSH:
        if (m->drop_pushes) {
            m->drop_pushes--;
            return;
        }
        if (m->sub != FO_SUB_LIVE || m->flushing) {
            m->stats.pushes_skipped++;
            return;
        }
        apply_batch(m, &msg->batch);
        return;
    case FO_MSG_ACK: on_ack(m, msg); return;
    case FO_MSG_PRESENCE_EVT:
        if (c->cfg.cb.on_presence && alive(m))
            c->cfg.cb.on_presence(m, msg->session, msg->state, c->cfg.data);
        return;
    default: return;
    }
}

static bool permanent(fo_error_code code)
{
    return code == FO_ERR_BAD_REQUEST || code == FO_ERR_TOO_LARGE || code == FO_ERR_FORBIDDEN ||
           code == FO_ERR_UNAUTHORIZED || code == FO_ERR_BAD_FRAME;
}

/* When to send a refused request again: after the hub's retryAfterMs when it gave one,
 * else the jittered backoff of `failures` consecutive errors. */
static uint64_t retry_delay(fo_client *c, const fo_msg *msg, uint32_t failures)
{
    if (msg->has_retry_after)
        return msg->retry_after_ms;
    return fo_client_backoff_ms(c, failures);
}

bool fo_client_model_on_error(fo_client_model *m, const fo_msg *msg)
{
    fo_client *c = m->c;
    fo_client_flush_info info;

    if (!msg->has_rid)
        return false;
    if (msg->rid == m->sub_rid && m->sub == FO_SUB_PENDING) {
        m->sub = FO_SUB_NONE;
        fo_client_report(c, msg->code, m->name, "sub: %s", msg->message ? msg->message : "");
        if (alive(m) && !permanent(msg->code) && !m->flushing)
            uv_timer_start(&m->timer, on_timer, retry_delay(c, msg, 0), 0);
        return true;
    }
    if (!m->flushing || msg->rid != m->flush_rid || !m->flush_sent)
        return false;
    memset(&info, 0, sizeof(info));
    info.seq = m->flush_seq;
    info.code = msg->code;
    info.message = msg->message ? msg->message : "";
    info.dropped = permanent(msg->code);
    m->flush_sent = false;
    if (info.dropped) {
        drop_flight(m);
        end_flight(m);
        m->stats.rejected++;
    }
    emit_flush(m, &info);
    if (!alive(m))
        return true;
    if (info.dropped) {
        emit_change(m, FO_CHANGE_REJECTED, NULL);
        if (alive(m))
            resubscribe(m); /* pushes skipped during the flight are needed now */
        schedule(m);
    } else {
        /* The same frame (same seq) again: the hub's retryAfterMs when it said one
         * (rate_limited, overloaded: nothing was applied), else a backoff. */
        if (msg->has_retry_after)
            m->stats.retry_after++;
        uv_timer_start(&m->timer, on_timer, retry_delay(c, msg, m->flush_errors++), 0);
    }
    return true;
}

/* ---- the public per-model calls ------------------------------------------------------ */

int fo_client_apply(fo_client_model *m, const fo_command *cmd, fo_client_result *out)
{
    fo_doc_result r;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!alive(m))
        return FO_ESTATE;
    if ((rc = fo_proxy_apply(m->proxy, cmd, &r)) != 0)
        return rc;
    out->ok = r.ok;
    if (r.ok) {
        if (r.created_id) {
            char buf[20];
            size_t len;
            const char *s = fo_key_str(r.created_id, buf, &len);
            snprintf(out->created_id, sizeof(out->created_id), "%.*s", (int)len, s);
        }
        schedule(m);
    } else {
        snprintf(out->error, sizeof(out->error), "%s", r.error ? r.error : "failed");
    }
    return 0;
}

int fo_client_apply_json(fo_client_model *m, const char *json, size_t len, fo_client_result *out,
                         fo_err_info *err)
{
    fo_arena a;
    fo_command cmd;
    int rc;

    memset(out, 0, sizeof(*out));
    fo_arena_init(&a, 1024);
    rc = fo_json_read_command(json, len, &a, &cmd, err);
    if (rc == 0)
        rc = fo_client_apply(m, &cmd, out);
    fo_arena_destroy(&a);
    return rc;
}

int fo_client_flush(fo_client_model *m)
{
    if (!alive(m))
        return FO_ESTATE;
    m->flush_requested = true;
    schedule(m);
    return 0;
}

int fo_client_set_presence(fo_client_model *m, const fo_value *state)
{
    int rc = 0;

    if (!alive(m))
        return FO_ESTATE;
    if (state && fo_value_type(state) != FO_MAP)
        return FO_EINVAL;
    fo_arena_reset(&m->pres_arena);
    m->has_presence = false;
    if (state && (rc = fo_value_copy(&m->pres_arena, state, &m->pres_state, NULL, NULL)) != 0)
        return rc;
    m->has_presence = state != NULL;
    if (fo_client_is_open(m->c) && m->sub != FO_SUB_NONE)
        send_presence(m);
    return 0;
}

void fo_client_debug_drop_pushes(fo_client_model *m, uint32_t n)
{
    m->drop_pushes += n;
}

void fo_client_debug_lose_acks(fo_client_model *m, uint32_t n)
{
    m->lose_acks += n;
}

const fo_value *fo_client_document(const fo_client_model *m)
{
    return fo_proxy_document(m->proxy);
}

uint64_t fo_client_count(const fo_client_model *m)
{
    return fo_proxy_count(m->proxy);
}

uint64_t fo_client_committed_count(const fo_client_model *m)
{
    return fo_proxy_committed_count(m->proxy);
}

bool fo_client_model_ready(const fo_client_model *m)
{
    return m->ready;
}

bool fo_client_model_synced(const fo_client_model *m)
{
    return m->ready && m->sub == FO_SUB_LIVE && !m->flushing && !m->flush_requested &&
           fo_proxy_queue_len(m->proxy) == 0;
}

bool fo_client_model_flushing(const fo_client_model *m)
{
    return m->flushing;
}

uint32_t fo_client_queue_len(const fo_client_model *m)
{
    return fo_proxy_queue_len(m->proxy);
}

void fo_client_model_stats_get(const fo_client_model *m, fo_client_model_stats *out)
{
    *out = m->stats;
}

fo_client *fo_client_model_client(const fo_client_model *m)
{
    return m->c;
}

const char *fo_client_model_name(const fo_client_model *m)
{
    return m->name;
}
