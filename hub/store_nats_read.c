/* store_nats_read.c - reads of the NATS backend (store_nats_impl.h): a model's records
 * replayed into a memory backend (store_mem.c) that then answers the read primitives, so
 * the read rules (gone, snapshots, retention, exactly-once rows) are exactly the other
 * backends'. The view lives for one read job. Also the fences: where each log ends and
 * where it may start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/nats_conn.h"
#include "hub/store_nats_impl.h"

#define MAX_FENCES 100000 /* fences kept; past it they are dropped and read again */

/* ---- subjects and fences -------------------------------------------------------------- */

int fo_nats_subject_of(const char *model, char *out, size_t cap)
{
    size_t pl = sizeof(FO_NATS_SUBJECT_PREFIX) - 1;

    if (cap < pl + 1)
        return -1;
    memcpy(out, FO_NATS_SUBJECT_PREFIX, pl);
    return fo_nats_subject_token(model, strlen(model), out + pl, cap - pl) < 0 ? -1 : 0;
}

int fo_nats_read_last(fo_nats_be *nb, const char *model, const char *subject, uint64_t *seq,
                      fo_nats_fence *f, char *msg, size_t ml)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    fo_nats_record rec;
    natsStatus s;
    int rc;

    jsOptions_Init(&jo);
    jo.Wait = FO_NATS_WAIT_MS;
    s = js_GetLastMsg(&m, nb->js, FO_NATS_STREAM, subject, &jo, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
        *seq = 0;
        if (f)
            f->seq = f->count = 0;
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
        f->seq = *seq;
        f->count = fo_nats_record_count(&rec);
        fo_nats_record_free(&rec);
    }
    natsMsg_Destroy(m);
    return 0;
}

static void free_fence(void *ctx, const char *key, void *value)
{
    fo_nats_fence *f = value;

    (void)ctx;
    (void)key;
    free(f->marks);
    free(f);
}

void fo_nats_fences_free(fo_nats_be *nb)
{
    fo_strmap_each(&nb->fences, free_fence, NULL);
    fo_strmap_destroy(&nb->fences);
    fo_strmap_init(&nb->fences);
}

static void keep_failed(void *ctx, const char *key, void *value)
{
    fo_nats_fence *f = value;

    /* A failed fence must stay until its model is read again (fo_nats_fence.failed); out
     * of memory it is dropped like the others (the next append then reads the end). */
    if (f->failed && fo_strmap_put(ctx, key, strlen(key), f) == 0)
        return;
    free_fence(NULL, key, value);
}

void fo_nats_fences_trim(fo_nats_be *nb)
{
    fo_strmap kept;

    if (nb->fences.len < MAX_FENCES)
        return;
    fo_strmap_init(&kept);
    fo_strmap_each(&nb->fences, keep_failed, &kept);
    fo_strmap_destroy(&nb->fences);
    nb->fences = kept;
}

fo_nats_fence *fo_nats_fence_get(fo_nats_be *nb, const char *model)
{
    return fo_strmap_get(&nb->fences, model, strlen(model));
}

fo_nats_fence *fo_nats_fence_put(fo_nats_be *nb, const char *model)
{
    size_t len = strlen(model);
    fo_nats_fence *f = fo_strmap_get(&nb->fences, model, len);

    if (f)
        return f;
    if (!(f = calloc(1, sizeof(*f))))
        return NULL;
    if (fo_strmap_put(&nb->fences, model, len, f)) {
        free(f);
        return NULL;
    }
    return f;
}

void fo_nats_mark_add(fo_nats_fence *f, uint64_t count, uint64_t seq)
{
    fo_nats_mark *m;

    /* A snapshot at a count not past the newest mark's replaces the marks from there on
     * (a log read again, a model rewritten): marks stay ordered by count and by seq. */
    while (f->nmarks > 0 && f->marks[f->nmarks - 1].count >= count)
        f->nmarks--;
    if (f->nmarks == FO_NATS_MAX_MARKS) {
        memmove(f->marks, f->marks + 1, (f->nmarks - 1) * sizeof(*f->marks));
        f->nmarks--;
    }
    if (!(m = realloc(f->marks, (f->nmarks + 1) * sizeof(*m))))
        return;
    f->marks = m;
    m[f->nmarks++] = (fo_nats_mark){count, seq};
}

/* ---- the view ------------------------------------------------------------------------- */

void fo_nats_drop_view(fo_nats_be *nb)
{
    if (nb->view)
        fo_store_backend_memory.close(nb->view);
    nb->view = NULL;
    nb->view_model[0] = '\0';
}

static int new_view(fo_nats_be *nb, const char *model, char *msg, size_t ml)
{
    fo_store_options o;
    fo_err_info err;
    int rc;

    fo_nats_drop_view(nb);
    fo_store_options_default(&o);
    if ((rc = fo_store_backend_memory.open(NULL, &o, &nb->view, &err)))
        return fo_store_fail(rc, msg, ml, "read %s: %s", model, err.msg);
    snprintf(nb->view_model, sizeof(nb->view_model), "%s", model);
    return 0;
}

/* What a replay gathered: the marks it met and where the log it read starts. */
typedef struct replay {
    fo_nats_mark marks[FO_NATS_MAX_MARKS];
    size_t nmarks;
    uint64_t start;
} replay;

static void replay_mark(replay *rp, uint64_t count, uint64_t seq)
{
    while (rp->nmarks > 0 && rp->marks[rp->nmarks - 1].count >= count)
        rp->nmarks--;
    if (rp->nmarks == FO_NATS_MAX_MARKS) {
        memmove(rp->marks, rp->marks + 1, (rp->nmarks - 1) * sizeof(*rp->marks));
        rp->nmarks--;
    }
    rp->marks[rp->nmarks++] = (fo_nats_mark){count, seq};
}

/* Starts the view again at the record's first snapshot with an exactly-once table: that
 * snapshot, the table, then the record's writes after it. The writes before it are rows
 * the retention that purged the log before this record had dropped too. */
static int restart_at(fo_nats_be *nb, const char *model, const fo_nats_record *rec, uint64_t seq,
                      replay *rp, char *msg, size_t ml)
{
    fo_store_write base;
    size_t k = 0;
    int rc;

    while (k < rec->n && !(rec->writes[k].snap && rec->writes[k].clients))
        k++;
    if (k == rec->n)
        return fo_store_fail(FO_STORE_ECORRUPT, msg, ml,
                             "read %s: the record at stream sequence %llu does not continue the "
                             "log before it, and holds no snapshot to start from",
                             model, (unsigned long long)seq);
    if ((rc = new_view(nb, model, msg, ml)))
        return rc;
    base = (fo_store_write){.model = model, .snap = rec->writes[k].snap,
                            .snap_size = rec->writes[k].snap_size,
                            .snap_count = rec->writes[k].snap_count, .cut = rec->writes[k].cut};
    rc = fo_store_backend_memory.commit(nb->view, &(fo_store_seg){&base, 1, 0, 0, 0}, 1, msg, ml);
    if (!rc && (rc = fo_store_mem_seed_clients(nb->view, model, rec->writes[k].clients,
                                               rec->writes[k].clients_size, base.snap_count)))
        rc = fo_store_fail(rc, msg, ml, "read %s: the exactly-once table at stream sequence %llu %s",
                           model, (unsigned long long)seq,
                           rc == FO_ENOMEM ? "does not fit in memory" : "is truncated");
    if (!rc && k + 1 < rec->n)
        rc = fo_store_backend_memory.commit(
            nb->view, &(fo_store_seg){rec->writes + k + 1, rec->n - k - 1, 0, 0, 0}, 1, msg, ml);
    rp->nmarks = 0;
    rp->start = seq;
    return rc;
}

/* Replays one record into the view. */
static int replay_record(fo_nats_be *nb, const char *model, const fo_nats_record *rec,
                         uint64_t seq, replay *rp, char *msg, size_t ml)
{
    int rc = fo_store_backend_memory.commit(nb->view, &(fo_store_seg){rec->writes, rec->n, 0, 0, 0},
                                            1, msg, ml);

    if (rc == FO_STORE_ECONFLICT)
        rc = restart_at(nb, model, rec, seq, rp, msg, ml);
    if (rc == FO_STORE_ECONFLICT)
        rc = FO_STORE_ECORRUPT; /* the message says where */
    if (rc)
        return rc;
    if (!rp->start)
        rp->start = seq;
    for (size_t i = 0; i < rec->n; i++)
        if (rec->writes[i].snap && rec->writes[i].clients)
            replay_mark(rp, rec->writes[i].snap_count, seq);
    return 0;
}

/* Replays the model's subject into a fresh memory backend (the read view). */
static int load_view(fo_nats_be *nb, const char *model, char *msg, size_t ml)
{
    char subject[sizeof(FO_NATS_SUBJECT_PREFIX) + FO_NATS_TOKEN_MAX];
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsOptions jo;
    jsErrCode jerr = 0;
    uint64_t last, seq = 0, count = 0;
    replay *rp;
    natsStatus s;
    int rc;

    if (nb->view && strcmp(nb->view_model, model) == 0)
        return 0;
    if (fo_nats_subject_of(model, subject, sizeof(subject)))
        return fo_store_fail(FO_EINVAL, msg, ml, "read: bad model name");
    if (!(rp = calloc(1, sizeof(*rp))))
        return fo_store_fail(FO_ENOMEM, msg, ml, "read %s: out of memory", model);
    fo_nats_fences_trim(nb);
    if ((rc = new_view(nb, model, msg, ml)) ||
        (rc = fo_nats_read_last(nb, model, subject, &last, NULL, msg, ml)) || last == 0)
        goto out;
    jsOptions_Init(&jo);
    jo.Wait = FO_NATS_WAIT_MS;
    jsSubOptions_Init(&so);
    so.Stream = FO_NATS_STREAM;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll; /* the first record left: the log's start */
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
        s = natsSubscription_NextMsg(&m, sub, FO_NATS_WAIT_MS);
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
        rc = replay_record(nb, model, &rec, seq, rp, msg, ml);
        fo_nats_record_free(&rec);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
out:
    if (rc) {
        fo_nats_drop_view(nb);
    } else {
        /* What a master loaded now is built from: the next append's fence. Safe for any
         * read, not only a load: an append also has to continue the model's count, so a
         * master older than this read fails with ECONFLICT instead. Out of memory: nothing
         * kept (the next commit reads the end again). */
        fo_nats_fence *f = fo_nats_fence_put(nb, model);
        if (f) {
            f->seq = last;
            f->count = count;
            f->failed = false;
            f->start = rp->start;
            f->nmarks = 0;
            for (size_t i = 0; i < rp->nmarks; i++)
                fo_nats_mark_add(f, rp->marks[i].count, rp->marks[i].seq);
        }
    }
    free(rp);
    return rc;
}

/* ---- the read primitives: the view answers -------------------------------------------- */

int fo_nats_read_begin(void *impl, char *msg, size_t ml)
{
    (void)msg;
    (void)ml;
    fo_nats_drop_view(impl); /* every read job reads the subject afresh */
    return 0;
}

void fo_nats_read_end(void *impl)
{
    fo_nats_drop_view(impl);
}

#define VIEW(call)                                                                              \
    do {                                                                                        \
        fo_nats_be *nb = impl;                                                                  \
        int rc = load_view(nb, model, msg, ml);                                                 \
        return rc ? rc : fo_store_backend_memory.call;                                          \
    } while (0)

int fo_nats_snapshot_le(void *impl, const char *model, uint64_t at, fo_store_result *r,
                        bool *found, uint64_t *count, char *msg, size_t ml)
{
    VIEW(snapshot_le(nb->view, model, at, r, found, count, msg, ml));
}

int fo_nats_log_cover(void *impl, const char *model, uint64_t x, bool *found,
                      fo_store_span *out, char *msg, size_t ml)
{
    VIEW(log_cover(nb->view, model, x, found, out, msg, ml));
}

int fo_nats_log_last(void *impl, const char *model, bool *found, fo_store_span *out,
                     char *msg, size_t ml)
{
    VIEW(log_last(nb->view, model, found, out, msg, ml));
}

int fo_nats_log_scan(void *impl, const char *model, uint64_t lo, uint64_t hi,
                     fo_store_result *r, char *msg, size_t ml)
{
    VIEW(log_scan(nb->view, model, lo, hi, r, msg, ml));
}

int fo_nats_clients(void *impl, const char *model, fo_store_result *r, char *msg, size_t ml)
{
    VIEW(clients(nb->view, model, r, msg, ml));
}

int fo_nats_rules_scan(void *impl, const char *model, uint64_t lo, uint32_t limit,
                       fo_store_result *r, char *msg, size_t ml)
{
    VIEW(rules_scan(nb->view, model, lo, limit, r, msg, ml));
}
