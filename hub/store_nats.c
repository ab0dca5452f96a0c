/* store_nats.c - the NATS JetStream backend (store_nats.h for the layout; reads and
 * retention in store_nats_impl.h).
 *
 * Like sqlite it runs on the store's worker thread: nats.c's calls that wait (connect,
 * stream info, get-last, an ordered consumer's next message, waiting for publish acks)
 * block that thread, never the loop. A commit groups its writes by model (one record per
 * model), publishes every model's record asynchronously with its fence, then waits for all
 * the acknowledgements at once: one round trip for a whole loop turn, however many models
 * it touched. A record larger than the server's max_payload is cut into several, each
 * fenced on the one before, so those go out in further rounds. After the acks, a model
 * whose retention cut passed a snapshot mark has its subject purged below that mark's
 * record (store_nats_impl.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/nats_conn.h"
#include "hub/store_nats_impl.h"

#define WAIT_MS FO_NATS_WAIT_MS

/* ---- the backend ---------------------------------------------------------------------- */

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    fo_nats_be *nb = closure;

    (void)js;
    pthread_mutex_lock(&nb->mu);
    for (size_t i = 0; i < nb->nslots; i++) {
        fo_nats_slot *s = &nb->slots[i];
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


/* ---- commit --------------------------------------------------------------------------- */

/* One model's writes of a commit, in order. */
typedef struct group {
    const char *model;
    char subject[sizeof(FO_NATS_SUBJECT_PREFIX) + FO_NATS_TOKEN_MAX];
    fo_nats_fence *f;
    size_t first, n; /* its writes: ws[first .. first + n) */
    size_t next;     /* first write not appended yet */
    size_t chunk;    /* writes in the record in flight */
    uint64_t chunk_count;
    uint64_t cut; /* the furthest retention cut of its writes appended */
    int rc;
    char msg[384];
} group;

/* A newer end of the log than the fence, seen by the hub's follower (another hub's append
 * the master has applied, or is about to): the append is fenced on it. A master that has
 * not applied it fails check_group instead (ECONFLICT), as JetStream would refuse it. */
static fo_nats_fence *adopt_log_end(fo_nats_be *nb, const char *model, fo_nats_fence *f)
{
    uint64_t seq, count;

    if (nb->log_end && nb->log_end(nb->log_end_ctx, model, &seq, &count) && seq > f->seq)
        f->seq = seq, f->count = count;
    return f;
}

static fo_nats_fence *get_fence(fo_nats_be *nb, group *g)
{
    fo_nats_fence *f = fo_nats_fence_get(nb, g->model);
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
    if (!(f = fo_nats_fence_put(nb, g->model))) {
        g->rc = fo_store_fail(FO_ENOMEM, g->msg, sizeof(g->msg), "commit: out of memory");
        return NULL;
    }
    g->rc = fo_nats_read_last(nb, g->model, g->subject, &seq, f, g->msg, sizeof(g->msg));
    if (g->rc) { /* none kept: the next append reads the end again */
        free(fo_strmap_del(&nb->fences, g->model, strlen(g->model)));
        return NULL;
    }
    return adopt_log_end(nb, g->model, f);
}

/* An append failed: see fence.failed. Without an entry (out of memory) the next append reads
 * the log's end again. */
static void fence_failed(fo_nats_be *nb, const char *model)
{
    fo_nats_fence *f = fo_nats_fence_get(nb, model);

    if (f) {
        f->seq = f->count = 0;
        f->failed = true;
    }
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
static void publish_next(fo_nats_be *nb, group *g, const fo_store_write *ws, fo_nats_slot *slot)
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
static void settle(fo_nats_be *nb, group *g, const fo_store_write *ws, const fo_nats_slot *slot)
{
    if (slot->done && slot->st == NATS_OK) {
        g->f->seq = slot->seq;
        g->f->count = g->chunk_count;
        for (size_t i = g->next; i < g->next + g->chunk; i++) {
            if (ws[i].snap && ws[i].clients)
                fo_nats_mark_add(g->f, ws[i].snap_count, slot->seq);
            if (ws[i].cut > g->cut)
                g->cut = ws[i].cut;
        }
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

/* Retention (store_nats_impl.h): once the group's writes are appended, purges its subject
 * below the record of the newest snapshot mark at or before its cut. A purge that fails
 * (NATS busy, a leader election) is left to the next cut, whose base is the same or newer:
 * the commit itself has succeeded. */
static void retain(fo_nats_be *nb, group *g)
{
    fo_nats_fence *f = g->f;
    const fo_nats_mark *base = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    size_t i;

    for (i = 0; i < f->nmarks && f->marks[i].count <= g->cut; i++)
        base = &f->marks[i];
    if (!base || base->seq <= f->start)
        return;
    jsOptions_Init(&jo);
    jo.Wait = WAIT_MS;
    jo.Stream.Purge.Subject = g->subject;
    jo.Stream.Purge.Sequence = base->seq; /* up to, not including, the base's record */
    if (js_PurgeStream(nb->js, FO_NATS_STREAM, &jo, &jerr) != NATS_OK)
        return;
    f->start = base->seq;
    i = (size_t)(base - f->marks); /* marks below the base are gone with their records */
    memmove(f->marks, f->marks + i, (f->nmarks - i) * sizeof(*f->marks));
    f->nmarks -= i;
}

/* Publishes, for every group with writes left, its next record; waits for every ack. */
static int round_trip(fo_nats_be *nb, group *gs, size_t ng, const fo_store_write *ws, fo_nats_slot *slots)
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
            settle(nb, &gs[i], ws, &slots[i]);
    nb->slots = NULL;
    nb->nslots = 0;
    pthread_mutex_unlock(&nb->mu);
    return (int)k;
}

static int nats_commit(void *impl, const fo_store_seg *cs, size_t nsegs, char *msg, size_t ml)
{
    fo_nats_be *nb = impl;
    fo_store_seg *segs = (fo_store_seg *)cs; /* per-segment outcomes are written back */
    size_t total = 0, ng = 0, k = 0;
    fo_store_write *ws = NULL;
    size_t *gof = NULL;
    group *gs = NULL;
    fo_nats_slot *slots = NULL;
    fo_strmap idx;
    bool slots_used = false;
    int rc = 0;

    for (size_t i = 0; i < nsegs; i++)
        total += segs[i].n;
    fo_nats_fences_trim(nb); /* before any group holds a fence */
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
        if (fo_nats_subject_of(gs[g].model, gs[g].subject, sizeof(gs[g].subject))) {
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
    for (size_t g = 0; g < ng; g++) {
        if (gs[g].rc)
            fence_failed(nb, gs[g].model);
        else if (gs[g].cut)
            retain(nb, &gs[g]);
    }
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
    fo_nats_be *nb = impl;

    if (!nb)
        return;
    fo_nats_drop_view(nb);
    if (nb->nc)
        natsConnection_Close(nb->nc); /* flushes; pending acks are dropped */
    jsCtx_Destroy(nb->js);
    natsConnection_Destroy(nb->nc);
    fo_nats_fences_free(nb);
    fo_strmap_destroy(&nb->fences);
    pthread_mutex_destroy(&nb->mu);
    free(nb);
}

static int nats_open(const char *urls, const fo_store_options *o, void **impl, fo_err_info *err)
{
    char why[sizeof(err->msg)];
    jsOptions jo;
    fo_nats_be *nb;
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
    .read_begin = fo_nats_read_begin,
    .read_end = fo_nats_read_end,
    .snapshot_le = fo_nats_snapshot_le,
    .log_cover = fo_nats_log_cover,
    .log_last = fo_nats_log_last,
    .log_scan = fo_nats_log_scan,
    .clients = fo_nats_clients,
    .rules_scan = fo_nats_rules_scan,
};
