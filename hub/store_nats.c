/* store_nats.c - the NATS JetStream backend (store_nats.h for the layout).
 *
 * Like sqlite it runs on the store's worker thread: nats.c's calls that wait (connect,
 * stream info, get-last, an ordered consumer's next message, waiting for publish acks)
 * block that thread, never the loop. A commit groups its writes by model (one record per
 * model), publishes every model's record asynchronously with its fence, then waits for all
 * the acknowledgements at once: one round trip for a whole loop turn, however many models
 * it touched. A record larger than the server's max_payload is cut into several, each
 * fenced on the one before, so those go out in further rounds.
 *
 * Reads rebuild the model from its subject: the records replayed into a memory backend
 * (store_mem.c) that then answers the read primitives, so the read rules (gone, snapshots,
 * retention, exactly-once rows) are exactly the other backends'. The view lives for one
 * read job. */
#include "hub/store_nats.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/nats_conn.h"
#include "hub/store_backend.h"
#include "hub/strmap.h"

#define WAIT_MS 5000        /* an API request, a publish ack, the next message of a read */
#define MAX_STATES 100000   /* fences kept; past it they are dropped and read again */

/* ---- the backend ---------------------------------------------------------------------- */

/* Where a model's log ends, as this store last saw it: the fence of its next append. */
typedef struct fence {
    uint64_t seq;   /* stream sequence of the model's last record; 0: none yet */
    uint64_t count; /* the model's command count after it */
    /* An append of the model failed: the commits queued behind it were applied on top of
     * it, so none is appended (even one that happens to continue the log's real end) until
     * a read of the model (the hub's reload) sets the fence again. */
    bool failed;
} fence;

static void free_fence(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    free(value);
}

/* One record in flight. The ack handler (a nats.c thread) fills it under nb->mu. */
typedef struct pub_slot {
    natsMsg *msg; /* identifies the message; nats.c owns it until the handler */
    bool done;
    uint64_t seq;
    natsStatus st;
    jsErrCode jerr;
    char text[160];
} pub_slot;

typedef struct nats_be {
    natsConnection *nc;
    jsCtx *js;
    char where[200]; /* the URLs, for messages */
    fo_strmap fences;
    /* the read view: the model's records replayed into a memory backend */
    void *view;
    char view_model[FO_STORE_MODEL_MAX + 1];
    pthread_mutex_t mu;
    pub_slot *slots;
    size_t nslots;
    /* fo_store_options.log_end: where a follower of the stream saw a model's log end */
    bool (*log_end)(void *ctx, const char *model, uint64_t *seq, uint64_t *count);
    void *log_end_ctx;
} nats_be;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    nats_be *nb = closure;

    (void)js;
    pthread_mutex_lock(&nb->mu);
    for (size_t i = 0; i < nb->nslots; i++) {
        pub_slot *s = &nb->slots[i];
        if (s->msg != msg || s->done)
            continue;
        s->done = true;
        if (pa) {
            s->seq = pa->Sequence;
        } else {
            s->st = pae && pae->Err != NATS_OK ? pae->Err : NATS_ERR; /* never "ok" */
            s->jerr = pae ? pae->ErrCode : 0;
            snprintf(s->text, sizeof(s->text), "%s",
                     pae && pae->ErrText ? pae->ErrText : natsStatus_GetText(s->st));
        }
        break;
    }
    pthread_mutex_unlock(&nb->mu);
    natsMsg_Destroy(msg);
}


static int subject_of(const char *model, char *out, size_t cap)
{
    size_t pl = sizeof(FO_NATS_SUBJECT_PREFIX) - 1;

    if (cap < pl + 1)
        return -1;
    memcpy(out, FO_NATS_SUBJECT_PREFIX, pl);
    return fo_nats_subject_token(model, strlen(model), out + pl, cap - pl) < 0 ? -1 : 0;
}

/* The last record of a model's subject: *seq (0 when the subject is empty) and, when f is
 * not NULL, the fence it gives (seq and the count after the record). */
static int read_last(nats_be *nb, const char *model, const char *subject, uint64_t *seq,
                     fence *f, char *msg, size_t ml)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    fo_nats_record rec;
    natsStatus s;
    int rc;

    jsOptions_Init(&jo);
    jo.Wait = WAIT_MS;
    s = js_GetLastMsg(&m, nb->js, FO_NATS_STREAM, subject, &jo, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
        *seq = 0;
        if (f)
            *f = (fence){0, 0, false};
        return 0;
    }
    if (s != NATS_OK)
        return fo_store_fail(FO_STORE_EIO, msg, ml,
                             "reading the end of the log of %s from JetStream: %s [%s]", model,
                             fo_nats_last_error(s), nb->where);
    *seq = natsMsg_GetSequence(m);
    if (f) {
        rc = fo_nats_record_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), model,
                                   &rec);
        if (rc) {
            natsMsg_Destroy(m);
            return fo_store_fail(rc, msg, ml, "the last record of %s (stream sequence %llu) %s",
                                 model, (unsigned long long)*seq,
                                 rc == FO_ENOMEM ? "does not fit in memory" : "is not a record");
        }
        *f = (fence){*seq, fo_nats_record_count(&rec), false};
        fo_nats_record_free(&rec);
    }
    natsMsg_Destroy(m);
    return 0;
}

static void drop_view(nats_be *nb)
{
    if (nb->view)
        fo_store_backend_memory.close(nb->view);
    nb->view = NULL;
    nb->view_model[0] = '\0';
}

/* Remembers where the model's log ends, as just read: the next append's fence. Safe for
 * any read, not only a load: an append also has to continue the model's count, so a master
 * older than this read fails with ECONFLICT instead (a stale record that adds no command,
 * a rules row of nothing applied, changes no document). Out of memory: nothing kept (the
 * next commit reads the end again). */
static void set_fence(nats_be *nb, const char *model, uint64_t seq, uint64_t count)
{
    size_t len = strlen(model);
    fence *f = fo_strmap_get(&nb->fences, model, len);

    if (!f) {
        if (nb->fences.len >= MAX_STATES || !(f = malloc(sizeof(*f))))
            return;
        if (fo_strmap_put(&nb->fences, model, len, f)) {
            free(f);
            return;
        }
    }
    *f = (fence){seq, count, false};
}

/* Replays the model's subject into a fresh memory backend (the read view). */
static int load_view(nats_be *nb, const char *model, char *msg, size_t ml)
{
    char subject[sizeof(FO_NATS_SUBJECT_PREFIX) + FO_NATS_TOKEN_MAX];
    natsSubscription *sub = NULL;
    fo_store_options o;
    fo_err_info err;
    jsSubOptions so;
    jsOptions jo;
    jsErrCode jerr = 0;
    uint64_t last, seq = 0, count = 0;
    natsStatus s;
    int rc;

    if (nb->view && strcmp(nb->view_model, model) == 0)
        return 0;
    drop_view(nb);
    if (subject_of(model, subject, sizeof(subject)))
        return fo_store_fail(FO_EINVAL, msg, ml, "read: bad model name");
    fo_store_options_default(&o);
    if ((rc = fo_store_backend_memory.open(NULL, &o, &nb->view, &err)))
        return fo_store_fail(rc, msg, ml, "read %s: %s", model, err.msg);
    snprintf(nb->view_model, sizeof(nb->view_model), "%s", model);
    if ((rc = read_last(nb, model, subject, &last, NULL, msg, ml)) || last == 0)
        goto out;
    jsOptions_Init(&jo);
    jo.Wait = WAIT_MS;
    jsSubOptions_Init(&so);
    so.Stream = FO_NATS_STREAM;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    s = js_SubscribeSync(&sub, nb->js, subject, &jo, &so, &jerr);
    if (s != NATS_OK) {
        rc = fo_store_fail(FO_STORE_EIO, msg, ml, "reading the log of %s from JetStream: %s [%s]",
                           model, fo_nats_last_error(s), nb->where);
        goto out;
    }
    while (!rc && seq < last) {
        natsMsg *m = NULL;
        jsMsgMetaData *meta = NULL;
        fo_nats_record rec;
        s = natsSubscription_NextMsg(&m, sub, WAIT_MS);
        if (s == NATS_OK)
            s = natsMsg_GetMetaData(&meta, m);
        if (s != NATS_OK) {
            natsMsg_Destroy(m);
            rc = fo_store_fail(FO_STORE_EIO, msg, ml,
                               "reading the log of %s from JetStream (at stream sequence %llu of "
                               "%llu): %s [%s]",
                               model, (unsigned long long)seq, (unsigned long long)last,
                               fo_nats_last_error(s), nb->where);
            break;
        }
        seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
        rc = fo_nats_record_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), model,
                                   &rec);
        natsMsg_Destroy(m);
        if (rc) {
            rc = fo_store_fail(rc, msg, ml, "read %s: the record at stream sequence %llu %s",
                               model, (unsigned long long)seq,
                               rc == FO_ENOMEM ? "does not fit in memory" : "is not a record");
            break;
        }
        count = fo_nats_record_count(&rec);
        rc = fo_store_backend_memory.commit(nb->view, &(fo_store_seg){rec.writes, rec.n, 0, 0, 0},
                                            1, msg, ml);
        fo_nats_record_free(&rec);
        if (rc == FO_STORE_ECONFLICT)
            rc = FO_STORE_ECORRUPT; /* the message says where */
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
out:
    if (rc)
        drop_view(nb);
    else
        set_fence(nb, model, last, count); /* what a master loaded now is built from */
    return rc;
}

/* ---- commit --------------------------------------------------------------------------- */

/* One model's writes of a commit, in order. */
typedef struct group {
    const char *model;
    char subject[sizeof(FO_NATS_SUBJECT_PREFIX) + FO_NATS_TOKEN_MAX];
    fence *f;
    size_t first, n; /* its writes: ws[first .. first + n) */
    size_t next;     /* first write not appended yet */
    size_t chunk;    /* writes in the record in flight */
    uint64_t chunk_count;
    int rc;
    char msg[384];
} group;

/* A newer end of the log than the fence, seen by the hub's follower (another hub's append
 * the master has applied, or is about to): the append is fenced on it. A master that has
 * not applied it fails check_group instead (ECONFLICT), as JetStream would refuse it. */
static fence *adopt_log_end(nats_be *nb, const char *model, fence *f)
{
    uint64_t seq, count;

    if (nb->log_end && nb->log_end(nb->log_end_ctx, model, &seq, &count) && seq > f->seq)
        *f = (fence){seq, count, false};
    return f;
}

static fence *get_fence(nats_be *nb, group *g)
{
    size_t len = strlen(g->model);
    fence *f = fo_strmap_get(&nb->fences, g->model, len);
    uint64_t seq;

    if (f && f->failed) {
        g->rc = fo_store_fail(FO_STORE_ECONFLICT, g->msg, sizeof(g->msg),
                              "commit: an earlier append to the log of %s failed; nothing "
                              "more is appended until the model is read again",
                              g->model);
        return NULL;
    }
    if (f)
        return adopt_log_end(nb, g->model, f);
    if (nb->fences.len >= MAX_STATES) {
        fo_strmap_each(&nb->fences, free_fence, NULL);
        fo_strmap_destroy(&nb->fences);
        fo_strmap_init(&nb->fences);
    }
    if (!(f = malloc(sizeof(*f))) || fo_strmap_put(&nb->fences, g->model, len, f)) {
        free(f);
        g->rc = fo_store_fail(FO_ENOMEM, g->msg, sizeof(g->msg), "commit: out of memory");
        return NULL;
    }
    g->rc = read_last(nb, g->model, g->subject, &seq, f, g->msg, sizeof(g->msg));
    if (g->rc) {
        free(fo_strmap_del(&nb->fences, g->model, len));
        return NULL;
    }
    return adopt_log_end(nb, g->model, f);
}

/* An append failed: see fence.failed. Without an entry (out of memory) the next append reads
 * the log's end again. */
static void fence_failed(nats_be *nb, const char *model)
{
    fence *f = fo_strmap_get(&nb->fences, model, strlen(model));

    if (f)
        *f = (fence){0, 0, true};
}

/* Checks that the group's writes continue its log (as the memory backend does). */
static void check_group(group *g, const fo_store_write *ws)
{
    uint64_t c = g->f->count;

    for (size_t i = g->first; i < g->first + g->n; i++) {
        const fo_store_write *w = &ws[i];
        if (w->batch) {
            if (w->from != c) {
                g->rc = fo_store_fail(FO_STORE_ECONFLICT, g->msg, sizeof(g->msg),
                                      "commit: the log of %s ends at %llu, a batch starts at "
                                      "%llu",
                                      g->model, (unsigned long long)c,
                                      (unsigned long long)w->from);
                return;
            }
            c = w->from + w->len;
        } else if (w->snap && w->snap_count > c) {
            c = w->snap_count;
        }
    }
}

/* Publishes the group's next record (as many writes as fit in max_payload). */
static void publish_next(nats_be *nb, group *g, const fo_store_write *ws, pub_slot *slot)
{
    size_t room = (size_t)natsConnection_GetMaxPayload(nb->nc), size = 8, k = 0, bytes;
    uint64_t c = g->f->count;
    jsPubOptions po;
    natsMsg *m = NULL;
    natsStatus s;
    void *buf;

    room = room > 512 ? room - 512 : 0; /* the fence header and some slack */
    while (g->next + k < g->first + g->n) {
        size_t ws1 = fo_nats_write_size(&ws[g->next + k]);
        if (size + ws1 > room && k > 0)
            break;
        if (size + ws1 > room) {
            g->rc = fo_store_fail(FO_STORE_EFULL, g->msg, sizeof(g->msg),
                                  "commit: a write of %zu bytes to %s is larger than the NATS "
                                  "server's max_payload allows (%zu) [%s]",
                                  ws1, g->model, room + 512, nb->where);
            return;
        }
        size += ws1;
        k++;
    }
    for (size_t i = g->next; i < g->next + k; i++) {
        const fo_store_write *w = &ws[i];
        if (w->batch)
            c = w->from + w->len;
        else if (w->snap && w->snap_count > c)
            c = w->snap_count;
    }
    if (!(buf = fo_nats_record_encode(&ws[g->next], k, &bytes))) {
        g->rc = fo_store_fail(FO_ENOMEM, g->msg, sizeof(g->msg), "commit: out of memory");
        return;
    }
    s = natsMsg_Create(&m, g->subject, NULL, buf, (int)bytes);
    free(buf);
    if (s == NATS_OK) {
        jsPubOptions_Init(&po);
        po.MaxWait = WAIT_MS;
        if (g->f->seq)
            po.ExpectLastSubjectSeq = g->f->seq;
        else
            po.ExpectNoMessage = true;
        pthread_mutex_lock(&nb->mu);
        slot->msg = m;
        pthread_mutex_unlock(&nb->mu);
        s = js_PublishMsgAsync(nb->js, &m, &po);
    }
    if (s != NATS_OK) {
        pthread_mutex_lock(&nb->mu);
        slot->msg = NULL;
        pthread_mutex_unlock(&nb->mu);
        natsMsg_Destroy(m);
        g->rc = fo_store_fail(FO_STORE_EIO, g->msg, sizeof(g->msg),
                              "commit: cannot publish to JetStream: %s [%s]", fo_nats_last_error(s),
                              nb->where);
        return;
    }
    g->chunk = k;
    g->chunk_count = c;
}

/* How a record in flight ended. */
static void settle(nats_be *nb, group *g, const pub_slot *slot)
{
    if (slot->done && slot->st == NATS_OK) {
        g->f->seq = slot->seq;
        g->f->count = g->chunk_count;
        g->next += g->chunk;
    } else if (slot->done && slot->jerr == JSStreamWrongLastSequenceErr) {
        g->rc = fo_store_fail(FO_STORE_EFENCED, g->msg, sizeof(g->msg),
                              "commit: another writer appended to the log of %s (JetStream "
                              "refused the append: %s)",
                              g->model, slot->text);
    } else if (!slot->done || slot->st == NATS_TIMEOUT) {
        g->rc = fo_store_fail(FO_STORE_EIO, g->msg, sizeof(g->msg),
                              "commit: JetStream did not acknowledge the append to %s within "
                              "%d ms (NATS unreachable or no quorum) [%s]",
                              g->model, WAIT_MS, nb->where);
    } else {
        g->rc = fo_store_fail(FO_STORE_EIO, g->msg, sizeof(g->msg),
                              "commit: JetStream refused the append to %s: %s (%d) [%s]",
                              g->model, slot->text, (int)slot->jerr, nb->where);
    }
    g->chunk = 0;
}

/* Publishes, for every group with writes left, its next record; waits for every ack. */
static int round_trip(nats_be *nb, group *gs, size_t ng, const fo_store_write *ws, pub_slot *slots)
{
    size_t k = 0;
    jsPubOptions po;

    pthread_mutex_lock(&nb->mu);
    memset(slots, 0, ng * sizeof(*slots));
    nb->slots = slots;
    nb->nslots = ng;
    pthread_mutex_unlock(&nb->mu);
    for (size_t i = 0; i < ng; i++)
        if (!gs[i].rc && gs[i].next < gs[i].first + gs[i].n) {
            publish_next(nb, &gs[i], ws, &slots[i]);
            k += gs[i].chunk > 0;
        }
    if (k) {
        jsPubOptions_Init(&po);
        po.MaxWait = WAIT_MS + 1000;
        js_PublishAsyncComplete(nb->js, &po); /* a timeout shows as slots not done */
    }
    pthread_mutex_lock(&nb->mu);
    for (size_t i = 0; i < ng; i++)
        if (gs[i].chunk)
            settle(nb, &gs[i], &slots[i]);
    nb->slots = NULL;
    nb->nslots = 0;
    pthread_mutex_unlock(&nb->mu);
    return (int)k;
}

static int nats_commit(void *impl, const fo_store_seg *cs, size_t nsegs, char *msg, size_t ml)
{
    nats_be *nb = impl;
    fo_store_seg *segs = (fo_store_seg *)cs; /* per-segment outcomes are written back */
    size_t total = 0, ng = 0, k = 0;
    fo_store_write *ws = NULL;
    size_t *gof = NULL;
    group *gs = NULL;
    pub_slot *slots = NULL;
    fo_strmap idx;
    bool slots_used = false;
    int rc = 0;

    for (size_t i = 0; i < nsegs; i++)
        total += segs[i].n;
    fo_strmap_init(&idx);
    if (!(ws = malloc((total ? total : 1) * sizeof(*ws))) ||
        !(gof = malloc((total ? total : 1) * sizeof(*gof))) ||
        !(gs = calloc(total ? total : 1, sizeof(*gs))) ||
        !(slots = calloc(total ? total : 1, sizeof(*slots)))) {
        rc = fo_store_fail(FO_ENOMEM, msg, ml, "commit: out of memory");
        goto out;
    }
    /* Group by model, keeping each model's writes in order. */
    for (size_t i = 0; i < nsegs && !rc; i++)
        for (size_t j = 0; j < segs[i].n; j++, k++) {
            const char *model = segs[i].w[j].model;
            uintptr_t g = (uintptr_t)fo_strmap_get(&idx, model, strlen(model));
            if (!g) {
                g = ++ng;
                gs[g - 1].model = model;
                if (fo_strmap_put(&idx, model, strlen(model), (void *)g)) {
                    rc = fo_store_fail(FO_ENOMEM, msg, ml, "commit: out of memory");
                    break;
                }
            }
            gof[k] = g - 1;
            gs[g - 1].n++;
        }
    if (rc)
        goto out;
    for (size_t g = 0, at = 0; g < ng; g++) {
        gs[g].first = gs[g].next = at;
        at += gs[g].n;
        gs[g].n = 0;
    }
    k = 0;
    for (size_t i = 0; i < nsegs; i++)
        for (size_t j = 0; j < segs[i].n; j++, k++) {
            group *g = &gs[gof[k]];
            ws[g->first + g->n++] = segs[i].w[j];
        }
    for (size_t g = 0; g < ng; g++) {
        if (subject_of(gs[g].model, gs[g].subject, sizeof(gs[g].subject))) {
            gs[g].rc = fo_store_fail(FO_EINVAL, gs[g].msg, sizeof(gs[g].msg),
                                     "commit: bad model name");
            continue;
        }
        if ((gs[g].f = get_fence(nb, &gs[g])))
            check_group(&gs[g], ws);
    }
    /* Usually one round; more when a model's writes need several records. */
    slots_used = true;
    while (round_trip(nb, gs, ng, ws, slots) > 0)
        ;
    for (size_t g = 0; g < ng; g++)
        if (gs[g].rc)
            fence_failed(nb, gs[g].model);
    /* Each segment fails with the first of its models that failed. */
    k = 0;
    for (size_t i = 0; i < nsegs; i++) {
        const char *why = NULL;
        segs[i].rc = 0;
        for (size_t j = 0; j < segs[i].n; j++, k++) {
            group *g = &gs[gof[k]];
            if (g->rc && !segs[i].rc) {
                segs[i].rc = g->rc;
                why = g->msg;
            }
        }
        if (why && segs[i].msg)
            snprintf(segs[i].msg, segs[i].msglen, "%s", why);
        if (why && !rc) {
            rc = segs[i].rc;
            if (segs[i].msg != msg)
                snprintf(msg, ml, "%s", why);
        }
    }
out:
    if (rc == FO_ENOMEM && !slots_used)
        for (size_t i = 0; i < nsegs; i++) {
            segs[i].rc = rc;
            if (segs[i].msg && segs[i].msg != msg)
                snprintf(segs[i].msg, segs[i].msglen, "%s", msg);
        }
    fo_strmap_destroy(&idx);
    free(ws);
    free(gof);
    free(gs);
    free(slots);
    return rc;
}

/* ---- reads: the view answers ---------------------------------------------------------- */

static int nats_read_begin(void *impl, char *msg, size_t ml)
{
    (void)msg;
    (void)ml;
    drop_view(impl); /* every read job reads the subject afresh */
    return 0;
}

static void nats_read_end(void *impl)
{
    drop_view(impl);
}

static int nats_snapshot_le(void *impl, const char *model, uint64_t at, fo_store_result *r,
                            bool *found, uint64_t *count, char *msg, size_t ml)
{
    nats_be *nb = impl;
    int rc = load_view(nb, model, msg, ml);

    return rc ? rc
              : fo_store_backend_memory.snapshot_le(nb->view, model, at, r, found, count, msg, ml);
}

static int nats_log_cover(void *impl, const char *model, uint64_t x, bool *found,
                          fo_store_span *out, char *msg, size_t ml)
{
    nats_be *nb = impl;
    int rc = load_view(nb, model, msg, ml);

    return rc ? rc : fo_store_backend_memory.log_cover(nb->view, model, x, found, out, msg, ml);
}

static int nats_log_last(void *impl, const char *model, bool *found, fo_store_span *out,
                         char *msg, size_t ml)
{
    nats_be *nb = impl;
    int rc = load_view(nb, model, msg, ml);

    return rc ? rc : fo_store_backend_memory.log_last(nb->view, model, found, out, msg, ml);
}

static int nats_log_scan(void *impl, const char *model, uint64_t lo, uint64_t hi,
                         fo_store_result *r, char *msg, size_t ml)
{
    nats_be *nb = impl;
    int rc = load_view(nb, model, msg, ml);

    return rc ? rc : fo_store_backend_memory.log_scan(nb->view, model, lo, hi, r, msg, ml);
}

static int nats_clients(void *impl, const char *model, fo_store_result *r, char *msg, size_t ml)
{
    nats_be *nb = impl;
    int rc = load_view(nb, model, msg, ml);

    return rc ? rc : fo_store_backend_memory.clients(nb->view, model, r, msg, ml);
}

static int nats_rules_scan(void *impl, const char *model, uint64_t lo, uint32_t limit,
                           fo_store_result *r, char *msg, size_t ml)
{
    nats_be *nb = impl;
    int rc = load_view(nb, model, msg, ml);

    return rc ? rc : fo_store_backend_memory.rules_scan(nb->view, model, lo, limit, r, msg, ml);
}

/* ---- open / close --------------------------------------------------------------------- */

static int open_fail(fo_err_info *err, int code, const char *fmt, const char *a, const char *b)
    __attribute__((format(printf, 3, 0)));

static int open_fail(fo_err_info *err, int code, const char *fmt, const char *a, const char *b)
{
    char tmp[1024];
    size_t n;

    err->code = code;
    snprintf(tmp, sizeof(tmp), fmt, a, b);
    n = strnlen(tmp, sizeof(err->msg) - 1); /* long URL lists are cut */
    memcpy(err->msg, tmp, n);
    err->msg[n] = '\0';
    return code;
}

/* Creates the stream, or checks the one there. */

static void nats_close(void *impl)
{
    nats_be *nb = impl;

    if (!nb)
        return;
    drop_view(nb);
    if (nb->nc)
        natsConnection_Close(nb->nc); /* flushes; pending acks are dropped */
    jsCtx_Destroy(nb->js);
    natsConnection_Destroy(nb->nc);
    fo_strmap_each(&nb->fences, free_fence, NULL);
    fo_strmap_destroy(&nb->fences);
    pthread_mutex_destroy(&nb->mu);
    free(nb);
}

static int nats_open(const char *urls, const fo_store_options *o, void **impl, fo_err_info *err)
{
    char why[sizeof(err->msg)];
    jsOptions jo;
    nats_be *nb;
    natsStatus s;
    int rc;

    if (!(nb = calloc(1, sizeof(*nb))))
        return open_fail(err, FO_ENOMEM, "nats: out of memory%s%s", "", "");
    pthread_mutex_init(&nb->mu, NULL);
    fo_strmap_init(&nb->fences);
    snprintf(nb->where, sizeof(nb->where), "%s", urls ? urls : "");
    if (o) {
        nb->log_end = o->log_end;
        nb->log_end_ctx = o->log_end_ctx;
    }
    if ((rc = fo_nats_connect(urls, "flushout-hub", &nb->nc, why, sizeof(why)))) {
        rc = open_fail(err, rc, "%s%s", why, "");
        goto out;
    }
    jsOptions_Init(&jo);
    jo.Wait = WAIT_MS;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = nb;
    if ((s = natsConnection_JetStream(&nb->js, nb->nc, &jo)) != NATS_OK) {
        rc = open_fail(err, FO_STORE_EIO, "NATS at %s: no JetStream context: %s", urls,
                       fo_nats_last_error(s));
        goto out;
    }
    if ((rc = fo_nats_ensure_stream(nb->nc, nb->js, urls, why, sizeof(why))))
        rc = open_fail(err, rc, "%s%s", why, "");
out:
    if (rc) {
        err->code = rc;
        nats_close(nb);
        return rc;
    }
    *impl = nb;
    return 0;
}

const fo_store_backend fo_store_backend_nats = {
    .name = "nats",
    .per_segment = true,
    .open = nats_open,
    .close = nats_close,
    .commit = nats_commit,
    .read_begin = nats_read_begin,
    .read_end = nats_read_end,
    .snapshot_le = nats_snapshot_le,
    .log_cover = nats_log_cover,
    .log_last = nats_log_last,
    .log_scan = nats_log_scan,
    .clients = nats_clients,
    .rules_scan = nats_rules_scan,
};
