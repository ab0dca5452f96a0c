/* store_sqlite.c - the embedded backend: DIR/flushout.db, one connection used by the
 * store's worker thread only (SQLITE_OPEN_NOMUTEX), every statement prepared once at open
 * with SQLITE_PREPARE_PERSISTENT and reset after each use; blobs are bound SQLITE_STATIC
 * straight from the commit job, so a commit allocates nothing per row. This file: commits,
 * reads and what it remembers of each model; store_sqlite_open.c: the schema and opening.
 *
 * Durability: WAL with synchronous=FULL fsyncs the WAL at every COMMIT, so a commit
 * callback means the transaction survives a crash or power loss. The connection opens
 * through walbuf.h's VFS, which hands each commit's WAL frames to the kernel in one or two
 * writes instead of two per page. The WAL is checkpointed every 10,000 pages (40 MiB with
 * 4 KiB pages) instead of SQLite's 1,000: a checkpoint copies each page once however many
 * times the WAL holds it, and the log's hot pages (each model's tail) are the same ones
 * transaction after transaction, so a rarer checkpoint copies far fewer pages per commit.
 * A model's log rows are one range of the log's integer key (store_sqlite_impl.h), so a
 * load or history read is one range scan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/store_sqlite_impl.h"

/* ---- statement helpers -------------------------------------------------------------- */

static void bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
    sqlite3_bind_int64(st, i, v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v);
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
    sqlite3_int64 v = sqlite3_column_int64(st, i);
    return v < 0 ? 0 : (uint64_t)v;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

/* Steps a statement that returns no row, then resets it. SQLITE_DONE -> SQLITE_OK. */
static int run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* A one-row query on (model[, x]) returning up to two integers; SQLITE_OK with *found. */
static int query2(sqlite3_stmt *st, const char *model, bool with_x, uint64_t x, bool *found,
                  uint64_t *a, uint64_t *b)
{
    int rc;

    bind_text(st, 1, model);
    if (with_x)
        bind_u64(st, 2, x);
    rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found) {
        *a = col_u64(st, 0);
        if (b)
            *b = col_u64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- commit ------------------------------------------------------------------------- */

/* ---- log ends ------------------------------------------------------------------------ */

static void end_free(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    free(value);
}

void fo_sq_ends_clear(fo_sq *q)
{
    fo_strmap_each(&q->ends, end_free, NULL);
    fo_strmap_destroy(&q->ends);
    fo_strmap_init(&q->ends);
}

/* After a transaction: its counts become the committed ones or, rolled back, everything
 * remembered is forgotten (read again from the database when needed). */
static void ends_settle(fo_sq *q, bool committed)
{
    for (size_t i = 0; committed && i < q->ntouched; i++) {
        q->touched[i]->end = q->touched[i]->pend;
        q->touched[i]->known = true;
    }
    q->ntouched = 0;
    q->txn++;
    /* A rolled-back transaction may have given a model an id that does not exist. */
    if (!committed || q->ends_reset || q->ends.len > FO_SQ_ENDS_MAX)
        fo_sq_ends_clear(q);
    q->ends_reset = false;
}

/* The model's entry, created when missing (NULL when out of memory: nothing remembered). */
static fo_sq_end *end_get(fo_sq *q, const char *model)
{
    size_t len = strlen(model);
    fo_sq_end *e = fo_strmap_get(&q->ends, model, len);

    if (!e && (e = calloc(1, sizeof(*e))) && fo_strmap_put(&q->ends, model, len, e)) {
        free(e);
        e = NULL;
    }
    return e;
}

/* Records that this transaction's writes take the model's count to `end`. Without memory,
 * the model is forgotten (its count is read from the log next time). */
static void end_set(fo_sq *q, fo_sq_end *e, const char *model, uint64_t end)
{
    if (!e)
        e = end_get(q, model);
    if (e && e->txn != q->txn) {
        if (q->ntouched == q->touched_cap) {
            size_t cap = q->touched_cap ? q->touched_cap * 2 : 64;
            fo_sq_end **t = realloc(q->touched, cap * sizeof(*t));
            if (!t) {
                free(fo_strmap_del(&q->ends, model, strlen(model)));
                return;
            }
            q->touched = t;
            q->touched_cap = cap;
        }
        q->touched[q->ntouched++] = e;
        e->txn = q->txn;
    }
    if (e)
        e->pend = end;
}

/* The model's id (its log rows are the positions [id << 38, (id + 1) << 38)): remembered,
 * else from `models`, else with `create` (in a write transaction) a new row; *id 0 when it
 * has none. *ep (may be NULL): the model's entry, NULL when it has no id (or no memory). */
static int model_id(fo_sq *q, const char *model, bool create, int64_t *id, fo_sq_end **ep,
                    char *msg, size_t ml)
{
    fo_sq_end *e = fo_strmap_get(&q->ends, model, strlen(model));
    bool found;
    uint64_t v = 0;
    int rc;

    if (!e || !e->id) {
        if ((rc = query2(q->st[ST_MODEL_ID], model, false, 0, &found, &v, NULL)))
            return fo_sq_fail(q, rc, msg, ml, "reading the model's id");
        if (!found && create) {
            bind_text(q->st[ST_MODEL_NEW], 1, model);
            if ((rc = run(q->st[ST_MODEL_NEW])))
                return fo_sq_fail(q, rc, msg, ml, "commit: adding the model");
            v = (uint64_t)sqlite3_last_insert_rowid(q->db);
            if (v == 0 || v >= FO_SQ_IDS) /* the transaction is rolled back: no row stays */
                return fo_store_fail(FO_ELIMIT, msg, ml,
                                     "commit: %s: this store has given out all 2^%d model ids",
                                     model, 63 - FO_SQ_POS_BITS);
            found = true;
        }
        if (found && (v == 0 || v >= FO_SQ_IDS))
            return fo_store_fail(FO_STORE_ECORRUPT, msg, ml, "model %s has the id %llu", model,
                                 (unsigned long long)v);
        if (found && (e || (e = end_get(q, model))))
            e->id = (int64_t)v;
        *id = found ? (int64_t)v : 0;
    } else {
        *id = e->id;
    }
    if (ep)
        *ep = *id ? e : NULL;
    return 0;
}

static int64_t pos_of(int64_t id, uint64_t count)
{
    return (int64_t)(((uint64_t)id << FO_SQ_POS_BITS) +
                     (count < FO_SQ_POS_SPAN ? count : FO_SQ_POS_SPAN - 1));
}

/* Where the model's positions end (excluded): the next id's first, or for the last id
 * INT64_MAX, whose count (2^38 - 1) no row starts at. */
static int64_t pos_end(int64_t id)
{
    return (uint64_t)id + 1 < FO_SQ_IDS ? pos_of(id + 1, 0) : INT64_MAX;
}

/* The model's last log row with from <= x (UINT64_MAX: its last row): *found, *from, *len. */
static int log_cover(fo_sq *q, int64_t id, uint64_t x, bool *found, uint64_t *from, uint64_t *len)
{
    sqlite3_stmt *st = q->st[ST_LOG_COVER];
    int rc;

    *found = false;
    if (!id)
        return SQLITE_OK;
    sqlite3_bind_int64(st, 1, pos_of(id, 0));
    sqlite3_bind_int64(st, 2, pos_of(id, x)); /* x past the range: its last position */
    rc = sqlite3_step(st);
    if ((*found = rc == SQLITE_ROW)) {
        *from = col_u64(st, 0);
        *len = col_u64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A retention cut at `base` (a snapshot's count): older snapshots, the log rows wholly below
 * it (their clients' newest rows kept first) and the rules rows below it. */
static int cut_below(fo_sq *q, const char *model, uint64_t base, char *msg, size_t ml)
{
    sqlite3_stmt *st;
    int64_t id;
    int rc;

    if ((rc = model_id(q, model, false, &id, NULL, msg, ml)))
        return rc;
    st = q->st[ST_SNAP_CUT];
    bind_text(st, 1, model);
    bind_u64(st, 2, base);
    if ((rc = run(st)))
        return fo_sq_fail(q, rc, msg, ml, "commit: retention cut (snapshots)");
    /* Log rows, when it has any: first each client's newest of those cut (ST_CLIENTS_KEEP,
     * bound as ST_LOG_CUT plus the name), then the rows. */
    for (int k = 0; id && k < 2; k++) {
        st = q->st[k == 0 ? ST_CLIENTS_KEEP : ST_LOG_CUT];
        sqlite3_bind_int64(st, 1, pos_of(id, 0));
        sqlite3_bind_int64(st, 2, pos_of(id, base));
        bind_u64(st, 3, base);
        if (k == 0)
            bind_text(st, 4, model);
        if ((rc = run(st)))
            return fo_sq_fail(q, rc, msg, ml, "commit: retention cut (log)");
    }
    st = q->st[ST_RULES_CUT];
    bind_text(st, 1, model);
    bind_u64(st, 2, base);
    if ((rc = run(st)))
        return fo_sq_fail(q, rc, msg, ml, "commit: retention cut (rules)");
    return 0;
}

static int write_one(fo_sq *q, const fo_store_write *w, char *msg, size_t ml)
{
    sqlite3_stmt *st;
    uint64_t from = 0, len = 0, base = 0;
    bool found;
    int rc;

    if (w->snap && !w->batch)
        q->ends_reset = true; /* never written so (the snapshot comes with its batch) */
    if (w->batch) {
        /* The batch must start at the model's count: the end of its log or, when the
         * log is empty, its newest snapshot's count (0 for a new model). */
        fo_sq_end *e;
        int64_t id;
        if (w->from >= FO_SQ_POS_SPAN || w->len >= FO_SQ_POS_SPAN - w->from)
            return fo_store_fail(FO_ELIMIT, msg, ml,
                                 "commit: the log of %s would pass 2^38 commands", w->model);
        if ((rc = model_id(q, w->model, true, &id, &e, msg, ml)))
            return rc;
        if (e && e->txn == q->txn) {
            from = e->pend;
        } else if (e && e->known) {
            from = e->end;
        } else {
            if ((rc = log_cover(q, id, UINT64_MAX, &found, &from, &len)))
                return fo_sq_fail(q, rc, msg, ml, "commit: reading the log tail");
            if (found)
                from += len;
            else if ((rc = query2(q->st[ST_SNAP_LE_COUNT], w->model, true, UINT64_MAX, &found,
                                  &from, NULL)))
                return fo_sq_fail(q, rc, msg, ml, "commit: reading the newest snapshot");
            else if (!found)
                from = 0;
        }
        if (from != w->from)
            return fo_store_fail(FO_STORE_ECONFLICT, msg, ml,
                                 "commit: the log of %s ends at %llu, a batch starts at %llu",
                                 w->model, (unsigned long long)from, (unsigned long long)w->from);
        st = q->st[ST_LOG_INSERT];
        sqlite3_bind_int64(st, 1, pos_of(id, w->from));
        sqlite3_bind_int64(st, 2, w->len);
        bind_text(st, 3, w->client);
        bind_u64(st, 4, w->seq);
        sqlite3_bind_blob64(st, 5, w->batch, w->batch_size, SQLITE_STATIC);
        if (w->now_ms)
            sqlite3_bind_int64(st, 6, w->now_ms);
        else
            sqlite3_bind_null(st, 6);
        if (w->identity)
            sqlite3_bind_text(st, 7, w->identity, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 7);
        if ((rc = run(st)))
            return fo_sq_fail(q, rc, msg, ml, "commit: inserting a log row");
        end_set(q, e, w->model, w->from + w->len);
    }
    if (w->audit) {
        st = q->st[ST_RULES_INSERT];
        bind_text(st, 1, w->model);
        bind_u64(st, 2, w->from);
        sqlite3_bind_int64(st, 3, w->len);
        sqlite3_bind_blob64(st, 4, w->original, w->original_size, SQLITE_STATIC);
        bind_text(st, 5, w->audit);
        if ((rc = run(st)))
            return fo_sq_fail(q, rc, msg, ml, "commit: inserting a rules row");
    }
    if (w->snap) {
        st = q->st[ST_SNAP_INSERT];
        bind_text(st, 1, w->model);
        bind_u64(st, 2, w->snap_count);
        sqlite3_bind_blob64(st, 3, w->snap, w->snap_size, SQLITE_STATIC);
        if ((rc = run(st)))
            return fo_sq_fail(q, rc, msg, ml, "commit: inserting a snapshot");
    }
    if (w->cut) {
        if ((rc = query2(q->st[ST_SNAP_LE_COUNT], w->model, true, w->cut, &found, &base, NULL)))
            return fo_sq_fail(q, rc, msg, ml, "commit: finding the retention base");
        if (found && (rc = cut_below(q, w->model, base, msg, ml)))
            return rc;
    }
    return 0;
}

static int sq_commit(void *impl, const fo_store_seg *segs, size_t nsegs, char *msg, size_t ml)
{
    fo_sq *q = impl;
    int rc;

    if ((rc = run(q->st[ST_BEGIN]))) {
        rc = fo_sq_fail(q, rc, msg, ml, "commit: BEGIN");
        fo_sq_rollback(q);
        return rc;
    }
    for (size_t i = 0; i < nsegs; i++) {
        for (size_t k = 0; k < segs[i].n; k++) {
            if ((rc = write_one(q, &segs[i].w[k], msg, ml))) {
                fo_sq_rollback(q);
                ends_settle(q, false);
                return rc;
            }
        }
    }
    if ((rc = run(q->st[ST_COMMIT]))) {
        rc = fo_sq_fail(q, rc, msg, ml, "commit failed");
        fo_sq_rollback(q);
        ends_settle(q, false);
        return rc;
    }
    ends_settle(q, true);
    return 0;
}

/* ---- reads -------------------------------------------------------------------------- */

static int sq_read_begin(void *impl, char *msg, size_t ml)
{
    fo_sq *q = impl;
    int rc = run(q->st[ST_BEGIN_READ]);

    return rc ? fo_sq_fail(q, rc, msg, ml, "read: BEGIN") : 0;
}

static void sq_read_end(void *impl)
{
    fo_sq *q = impl;

    if (run(q->st[ST_COMMIT]))
        fo_sq_rollback(q);
}

static int sq_snapshot_le(void *impl, const char *model, uint64_t at, fo_store_result *r,
                          bool *found, uint64_t *count, char *msg, size_t ml)
{
    fo_sq *q = impl;
    sqlite3_stmt *st;
    int rc;

    if (!r) {
        rc = query2(q->st[ST_SNAP_LE_COUNT], model, true, at, found, count, NULL);
        return rc ? fo_sq_fail(q, rc, msg, ml, "read: snapshot") : 0;
    }
    st = q->st[ST_SNAP_LE];
    bind_text(st, 1, model);
    bind_u64(st, 2, at);
    rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found) {
        *count = col_u64(st, 0);
        rc = fo_store_result_set_snapshot(r, *count, sqlite3_column_blob(st, 1),
                                          (size_t)sqlite3_column_bytes(st, 1));
        sqlite3_reset(st);
        return rc ? fo_store_fail(rc, msg, ml, "read %s: out of memory", model) : 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fo_sq_fail(q, rc, msg, ml, "read: snapshot");
}

static int sq_log_cover(void *impl, const char *model, uint64_t x, bool *found, fo_store_span *out,
                        char *msg, size_t ml)
{
    fo_sq *q = impl;
    int64_t id;
    int rc;

    if ((rc = model_id(q, model, false, &id, NULL, msg, ml)))
        return rc;
    rc = log_cover(q, id, x, found, &out->from, &out->len);
    return rc ? fo_sq_fail(q, rc, msg, ml, "read: log") : 0;
}

static int sq_log_last(void *impl, const char *model, bool *found, fo_store_span *out, char *msg,
                       size_t ml)
{
    fo_sq *q = impl;
    int64_t id;
    int rc;

    if ((rc = model_id(q, model, false, &id, NULL, msg, ml)))
        return rc;
    rc = log_cover(q, id, UINT64_MAX, found, &out->from, &out->len);
    return rc ? fo_sq_fail(q, rc, msg, ml, "read: log") : 0;
}

static int sq_log_scan(void *impl, const char *model, uint64_t lo, uint64_t hi, fo_store_result *r,
                       char *msg, size_t ml)
{
    fo_sq *q = impl;
    sqlite3_stmt *st = q->st[ST_LOG_SCAN];
    int64_t id;
    int rc;

    if ((rc = model_id(q, model, false, &id, NULL, msg, ml)))
        return rc;
    if (!id || lo >= hi)
        return 0;
    sqlite3_bind_int64(st, 1, pos_of(id, 0));
    sqlite3_bind_int64(st, 2, pos_of(id, lo));
    sqlite3_bind_int64(st, 3, hi >= FO_SQ_POS_SPAN ? pos_end(id) : pos_of(id, hi));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *client = (const char *)sqlite3_column_text(st, 3);
        size_t client_len = (size_t)sqlite3_column_bytes(st, 3);
        const void *batch = sqlite3_column_blob(st, 4);
        size_t size = (size_t)sqlite3_column_bytes(st, 4);
        const char *ident = (const char *)sqlite3_column_text(st, 6);
        if (fo_store_result_add_entry(r, col_u64(st, 0), (uint32_t)col_u64(st, 1), col_u64(st, 2),
                                      client, client_len, batch, size) ||
            fo_store_result_entry_meta(r, sqlite3_column_int64(st, 5), ident,
                                       (size_t)sqlite3_column_bytes(st, 6))) {
            sqlite3_reset(st);
            return fo_store_fail(FO_ENOMEM, msg, ml, "read %s: out of memory", model);
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fo_sq_fail(q, rc, msg, ml, "read: log");
}

static int sq_clients(void *impl, const char *model, fo_store_result *r, char *msg, size_t ml)
{
    fo_sq *q = impl;
    sqlite3_stmt *st = q->st[ST_CLIENTS];
    int64_t id;
    int rc;

    if ((rc = model_id(q, model, false, &id, NULL, msg, ml)))
        return rc;
    bind_text(st, 1, model);
    sqlite3_bind_int64(st, 2, id ? pos_of(id, 0) : 0);
    sqlite3_bind_int64(st, 3, id ? pos_end(id) : 0);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (fo_store_result_add_client(r, (const char *)sqlite3_column_text(st, 0),
                                       (size_t)sqlite3_column_bytes(st, 0), col_u64(st, 1),
                                       col_u64(st, 2))) {
            sqlite3_reset(st);
            return fo_store_fail(FO_ENOMEM, msg, ml, "read %s: out of memory", model);
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fo_sq_fail(q, rc, msg, ml, "read: exactly-once rows");
}

static int sq_rules_scan(void *impl, const char *model, uint64_t lo, uint32_t limit,
                         fo_store_result *r, char *msg, size_t ml)
{
    fo_sq *q = impl;
    sqlite3_stmt *st = q->st[ST_RULES_SCAN];
    uint32_t n = 0;
    uint64_t last = 0;
    int rc;

    bind_text(st, 1, model);
    bind_u64(st, 2, lo);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t from = col_u64(st, 0);
        if (limit && n >= limit && from != last) {
            r->more = true;
            rc = SQLITE_DONE;
            break;
        }
        if (fo_store_result_add_rules(r, from, (uint32_t)col_u64(st, 1), sqlite3_column_blob(st, 2),
                                      (size_t)sqlite3_column_bytes(st, 2),
                                      (const char *)sqlite3_column_text(st, 3),
                                      (size_t)sqlite3_column_bytes(st, 3))) {
            sqlite3_reset(st);
            return fo_store_fail(FO_ENOMEM, msg, ml, "read %s: out of memory", model);
        }
        last = from;
        n++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fo_sq_fail(q, rc, msg, ml, "read: rules rows");
}


const fo_store_backend fo_store_backend_sqlite = {
    .name = "sqlite",
    .open = fo_sq_open,
    .close = fo_sq_close,
    .commit = sq_commit,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .snapshot_le = sq_snapshot_le,
    .log_cover = sq_log_cover,
    .log_last = sq_log_last,
    .log_scan = sq_log_scan,
    .clients = sq_clients,
    .rules_scan = sq_rules_scan,
};
