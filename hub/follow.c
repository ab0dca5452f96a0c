/* follow.c - see follow.h. */
#include "hub/follow.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "hub/hub.h"
#include "hub/log.h"
#include "hub/model.h"
#include "hub/nats_conn.h"
#include "hub/peers.h"
#include "hub/runner.h"
#include "hub/store_nats.h"
#include "proto/wire.h"

#define MAX_ENDS 100000 /* log ends kept; past it they are forgotten (the next append reads) */
#define WAIT_MS 5000

/* A record on its way to the loop, decoded once (on the NATS thread: it gives the log's
 * end too); a task of the model's runner then holds it (fo_task.record). */
typedef struct item {
    struct item *next;
    char model[FO_STORE_MODEL_MAX + 1]; /* rec.writes[i].model points here */
    fo_nats_record rec;
} item;

void fo_follow_record_free(void *record)
{
    item *it = record;

    if (it) {
        fo_nats_record_free(&it->rec);
        free(it);
    }
}

/* Where a model's log ends, as the consumer saw it. */
typedef struct log_end {
    uint64_t seq, count;
} log_end;

struct fo_follow {
    fo_hub *h;
    uv_async_t async;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub;
    pthread_mutex_t mu; /* guards everything below */
    item *head, *tail;
    fo_strmap ends;
    fo_nats_done done; /* the subscription's last callback has returned */
};

static void free_end(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    free(value);
}

static void note_end(fo_follow *f, const char *model, uint64_t seq, uint64_t count)
{
    size_t len = strlen(model);
    log_end *e = fo_strmap_get(&f->ends, model, len);

    if (!e) {
        if (f->ends.len >= MAX_ENDS) {
            fo_strmap_each(&f->ends, free_end, NULL);
            fo_strmap_destroy(&f->ends);
            fo_strmap_init(&f->ends);
        }
        if (!(e = malloc(sizeof(*e))))
            return;
        if (fo_strmap_put(&f->ends, model, len, e)) {
            free(e);
            return;
        }
        *e = (log_end){0, 0};
    }
    if (seq > e->seq)
        *e = (log_end){seq, count};
}

bool fo_follow_log_end(void *ctx, const char *model, uint64_t *seq, uint64_t *count)
{
    fo_follow *f = ctx;
    log_end *e;
    bool found;

    pthread_mutex_lock(&f->mu);
    e = fo_strmap_get(&f->ends, model, strlen(model));
    if ((found = e != NULL)) {
        *seq = e->seq;
        *count = e->count;
    }
    pthread_mutex_unlock(&f->mu);
    return found;
}

/* On the subscription's NATS thread: note where the log ends, hand the record to the loop. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    fo_follow *f = closure;
    const char *subject = natsMsg_GetSubject(msg);
    size_t pl = sizeof(FO_NATS_SUBJECT_PREFIX) - 1, n = (size_t)natsMsg_GetDataLength(msg);
    jsMsgMetaData *meta = NULL;
    char model[FO_STORE_MODEL_MAX + 1];
    item *it;

    (void)nc;
    (void)sub;
    if (strncmp(subject, FO_NATS_SUBJECT_PREFIX, pl) != 0 ||
        fo_nats_subject_name(subject + pl, strlen(subject + pl), model, sizeof(model)) < 0 ||
        natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
        natsMsg_Destroy(msg);
        return; /* not a model's log */
    }
    if ((it = calloc(1, sizeof(*it)))) {
        memcpy(it->model, model, strlen(model) + 1);
        if (fo_nats_record_decode(natsMsg_GetData(msg), n, it->model, &it->rec) != 0) {
            free(it);
            it = NULL; /* not a record: nothing to note or apply */
        }
    }
    if (it) {
        pthread_mutex_lock(&f->mu);
        note_end(f, model, meta->Sequence.Stream, fo_nats_record_count(&it->rec));
        if (f->tail)
            f->tail->next = it;
        else
            f->head = it;
        f->tail = it;
        pthread_mutex_unlock(&f->mu);
        uv_async_send(&f->async);
    }
    jsMsgMetaData_Destroy(meta);
    natsMsg_Destroy(msg);
}

/* ---- on the loop ------------------------------------------------------------------------ */

/* A record of a model in memory becomes a task of its runner; others are dropped. */
static void dispatch(fo_follow *f, item *it)
{
    fo_hub *h = f->h;
    fo_model *m = fo_strmap_get(&h->models, it->model, strlen(it->model));
    fo_task *t;

    /* A subscribed model whose document the budget dropped loads again: its subscribers
     * are owed the batch. */
    if (!m || (m->state == FO_MODEL_COLD && !m->subs) || h->phase == FO_HUB_STOPPING ||
        !(t = calloc(1, sizeof(*t)))) {
        fo_follow_record_free(it);
        return;
    }
    fo_arena_init(&t->arena, 64);
    t->msg.type = FO_MSG_PUSH; /* internal: nobody waits for a reply */
    t->msg.model = m->name;
    t->msg.model_len = m->name_len;
    t->t_recv = fo_now_ns();
    t->record = it;
    h->metrics.follow_records++;
    fo_model_queue(m, t);
}

static void on_async(uv_async_t *a)
{
    fo_follow *f = a->data;
    item *it, *next;

    pthread_mutex_lock(&f->mu);
    it = f->head;
    f->head = f->tail = NULL;
    pthread_mutex_unlock(&f->mu);
    for (; it; it = next) {
        next = it->next;
        dispatch(f, it);
    }
}

static void on_closed(uv_handle_t *hd)
{
    fo_follow *f = hd->data;
    item *it, *next;

    for (it = f->head; it; it = next) {
        next = it->next;
        fo_follow_record_free(it);
    }
    fo_strmap_each(&f->ends, free_end, NULL);
    fo_strmap_destroy(&f->ends);
    fo_nats_done_destroy(&f->done);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int fo_follow_new(fo_hub *h, fo_follow **out)
{
    fo_follow *f = calloc(1, sizeof(*f));

    if (!f)
        return FO_ENOMEM;
    f->h = h;
    pthread_mutex_init(&f->mu, NULL);
    fo_nats_done_init(&f->done);
    fo_strmap_init(&f->ends);
    uv_async_init(&h->loop, &f->async, on_async);
    f->async.data = f;
    *out = f;
    return 0;
}

int fo_follow_start(fo_follow *f, const char *urls, char *msg, size_t ml)
{
    jsOptions jo;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;
    int rc;

    if ((rc = fo_nats_connect(urls, "flushout-hub follower", &f->nc, msg, ml)))
        return rc;
    jsOptions_Init(&jo);
    jo.Wait = WAIT_MS;
    if ((s = natsConnection_JetStream(&f->js, f->nc, &jo)) != NATS_OK) {
        snprintf(msg, ml, "NATS at %s: no JetStream context: %s", urls, fo_nats_last_error(s));
        return FO_STORE_EIO;
    }
    jsSubOptions_Init(&so);
    so.Stream = FO_NATS_STREAM;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverNew;
    s = js_Subscribe(&f->sub, f->js, FO_NATS_SUBJECT_PREFIX ">", on_msg, f, &jo, &so, &jerr);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(f->sub, fo_nats_done_cb, &f->done);
    if (s != NATS_OK) {
        snprintf(msg, ml, "following the stream %s at %s: %s", FO_NATS_STREAM, urls,
                 fo_nats_last_error(s));
        return FO_STORE_EIO;
    }
    return 0;
}

void fo_follow_stop(fo_follow *f)
{
    if (!f)
        return;
    /* Closing the connection ends the subscription without asking the server to delete
     * the consumer (a request that would wait 5 s with NATS down): the server drops an
     * ordered consumer once it is inactive. */
    if (f->nc)
        natsConnection_Close(f->nc);
    if (f->sub) /* the callback running now returns; none starts after it */
        fo_nats_done_wait(&f->done, 1, 2000);
    natsSubscription_Destroy(f->sub);
    jsCtx_Destroy(f->js);
    natsConnection_Destroy(f->nc);
    f->sub = NULL;
    f->js = NULL;
    f->nc = NULL;
    uv_close((uv_handle_t *)&f->async, on_closed);
}

/* ---- in the model's runner --------------------------------------------------------------- */

/* Applies one stored batch that the master does not have yet, and pushes it (not to
 * `flusher`, whose forwarded flush it is: its ack takes the batch's place). */
static int apply_row(fo_model *m, const fo_store_write *w, fo_session *flusher)
{
    fo_store_entry e = {w->from, w->len, w->seq, w->client ? w->client : "", w->batch,
                        w->batch_size, w->now_ms, w->identity};
    fo_msg push;
    fo_frame *fr;
    int rc;

    if ((rc = fo_model_replay(m, &e, true)) != 0)
        return rc;
    if (w->client && w->client[0]) {
        size_t cl = strlen(w->client);
        uint64_t *last = fo_strmap_get(&m->dedup, w->client, cl);
        if (!last) {
            if (!(last = calloc(1, sizeof(*last))) || fo_strmap_put(&m->dedup, w->client, cl, last)) {
                free(last);
                return FO_ENOMEM;
            }
        }
        if (w->seq > *last)
            *last = w->seq;
    }
    memset(&push, 0, sizeof(push));
    push.type = FO_MSG_PUSH;
    push.model = m->name;
    push.model_len = m->name_len;
    push.batch.from = w->from;
    push.batch.len = w->len;
    push.raw_batch = w->batch;
    push.raw_batch_len = w->batch_size;
    if (!(fr = fo_frame_encode(&push)))
        return FO_ENOMEM;
    fo_model_fan_out(m, fr, w->from, w->len, flusher);
    fo_frame_unref(fr);
    m->hub->metrics.follow_commands += w->len;
    m->hub->metrics.commands += w->len;
    return 0;
}

/* Subscribers behind the model (it loaded another hub's batches from the log): with no
 * commit in flight everything the master holds is durable, so they catch up to it. */
static void level_subscribers(fo_model *m)
{
    uint64_t count = fo_master_snapshot(m->master).command_count;

    if (m->npending || m->state != FO_MODEL_READY)
        return;
    if (m->released < count)
        m->released = count;
    for (fo_sub *sub = m->subs; sub; sub = sub->mnext)
        if (sub->active && sub->next_from < count && !sub->lagging) {
            sub->lagging = true;
            if (fo_session_backlog(sub->session) == 0)
                fo_model_catch_up(sub);
        }
}

bool fo_model_exec_follow(fo_model *m, fo_task *t)
{
    const fo_nats_record *rec = &((item *)t->record)->rec;
    int rc = 0;

    /* This hub's own batches still waiting for their acks come first: a batch another hub
     * appended after them can reach the loop before the store's answer does, and its push
     * must not overtake theirs. The last settled reply runs the model again (subs.c). */
    if (m->npending)
        return false;
    for (size_t i = 0; i < rec->n && !rc; i++) {
        const fo_store_write *w = &rec->writes[i];
        fo_session *flusher = NULL;
        uint64_t count = fo_master_snapshot(m->master).command_count;
        if (w->snap && w->snap_count <= count && w->snap_count > m->snapshot_count)
            m->snapshot_count = w->snap_count; /* another hub took it: not due here */
        if (!w->batch || w->from + w->len <= count)
            continue; /* nothing to apply, or the master has it (this hub's own append) */
        if (w->from != count) {
            FO_LOG(FO_LOG_WARN, "model=%s a followed batch starts at %llu, the model is at "
                   "%llu: reloading it from the log", m->name, (unsigned long long)w->from,
                   (unsigned long long)count);
            m->hub->metrics.follow_gaps++;
            rc = FO_EGAP;
        } else if (!fo_peers_row_ready(m->hub, m, w->client, w->seq, w->from, &flusher)) {
            /* Its flush was forwarded from here and the ack is not back yet: the batch
             * waits for it (peers.h); the rows before it are applied, the task runs again. */
            fo_model_account(m);
            return false;
        } else if ((rc = apply_row(m, w, flusher)) != 0) {
            FO_LOG(FO_LOG_ERROR, "model=%s a followed batch at %llu: %s: reloading the model",
                   m->name, (unsigned long long)w->from, fo_strerror(rc));
        } else if (flusher) {
            fo_peers_row_done(m->hub, m, w->client, w->seq, w->from, w->len);
        }
    }
    if (rc)
        fo_model_mark_stale(m);
    else
        level_subscribers(m);
    fo_model_account(m);
    return true;
}
