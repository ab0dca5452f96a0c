/* store_sqlite.c - the embedded backend: DIR/flushout.db, one connection used by the
 * store's worker thread only (SQLITE_OPEN_NOMUTEX), every statement prepared once at open
 * with SQLITE_PREPARE_PERSISTENT and reset after each use; blobs are bound SQLITE_STATIC
 * straight from the commit job, so a commit allocates nothing per row.
 *
 * Durability: WAL with synchronous=FULL fsyncs the WAL at every COMMIT, so a commit
 * callback means the transaction survives a crash or power loss. The connection opens
 * through walbuf.h's VFS, which hands each commit's WAL frames to the kernel in one or two
 * writes instead of two per page. The WAL is checkpointed every 10,000 pages (40 MiB with
 * 4 KiB pages) instead of SQLite's 1,000: a checkpoint copies each page once however many
 * times the WAL holds it, and the log's hot pages (each model's tail) are the same ones
 * transaction after transaction, so a rarer checkpoint copies far fewer pages per commit. The tables are WITHOUT
 * ROWID, clustered on (model, count): a load or history read is one range scan. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/store_backend.h"
#include "hub/strmap.h"
#include "hub/walbuf.h"

#define DB_FILE "flushout.db"
#define LOCK_FILE "flushout.lock"
#define SCHEMA_VERSION 4

/* migrations[v] takes a database from user_version v to v + 1, inside one transaction. */
static const char *const migrations[SCHEMA_VERSION] = {
    "CREATE TABLE log ("
    " model TEXT NOT NULL, from_count INTEGER NOT NULL, len INTEGER NOT NULL,"
    " client TEXT NOT NULL, seq INTEGER NOT NULL, batch BLOB NOT NULL,"
    " PRIMARY KEY (model, from_count)) WITHOUT ROWID;"
    "CREATE TABLE snapshots ("
    " model TEXT NOT NULL, cmd_count INTEGER NOT NULL, doc BLOB NOT NULL,"
    " PRIMARY KEY (model, cmd_count)) WITHOUT ROWID;"
    "CREATE TABLE clients ("
    " model TEXT NOT NULL, client TEXT NOT NULL, seq INTEGER NOT NULL,"
    " cmd_count INTEGER NOT NULL, PRIMARY KEY (model, client)) WITHOUT ROWID;",
    /* 2: server-side rules: each batch's `now` and identity, and the rules rows. Rows
     * written before keep NULL there (now unknown, no identity). */
    "ALTER TABLE log ADD COLUMN now_ms INTEGER;"
    "ALTER TABLE log ADD COLUMN identity TEXT;"
    "CREATE TABLE rules ("
    " model TEXT NOT NULL, from_count INTEGER NOT NULL, ord INTEGER NOT NULL,"
    " len INTEGER NOT NULL, original BLOB NOT NULL, audit TEXT NOT NULL,"
    " PRIMARY KEY (model, from_count, ord)) WITHOUT ROWID;",
    /* 3: log, snapshots and rules become rowid tables with a unique index on the old key.
     * A WITHOUT ROWID table keeps at most ~1 KB of a row in its B-tree page (on 4 KB pages)
     * and spills the rest to an overflow page of its own: a batch of ten 100-byte commands
     * (~1.4 KB) took two pages, three quarters of the file was empty overflow space. A
     * rowid table keeps rows of up to ~4 KB in the leaf. */
    "CREATE TABLE log3 ("
    " model TEXT NOT NULL, from_count INTEGER NOT NULL, len INTEGER NOT NULL,"
    " client TEXT NOT NULL, seq INTEGER NOT NULL, batch BLOB NOT NULL,"
    " now_ms INTEGER, identity TEXT, UNIQUE (model, from_count));"
    "INSERT INTO log3 SELECT model, from_count, len, client, seq, batch, now_ms, identity"
    " FROM log ORDER BY model, from_count;"
    "DROP TABLE log; ALTER TABLE log3 RENAME TO log;"
    "CREATE TABLE snapshots3 ("
    " model TEXT NOT NULL, cmd_count INTEGER NOT NULL, doc BLOB NOT NULL,"
    " UNIQUE (model, cmd_count));"
    "INSERT INTO snapshots3 SELECT model, cmd_count, doc FROM snapshots"
    " ORDER BY model, cmd_count;"
    "DROP TABLE snapshots; ALTER TABLE snapshots3 RENAME TO snapshots;"
    "CREATE TABLE rules3 ("
    " model TEXT NOT NULL, from_count INTEGER NOT NULL, ord INTEGER NOT NULL,"
    " len INTEGER NOT NULL, original BLOB NOT NULL, audit TEXT NOT NULL,"
    " UNIQUE (model, from_count, ord));"
    "INSERT INTO rules3 SELECT model, from_count, ord, len, original, audit FROM rules"
    " ORDER BY model, from_count, ord;"
    "DROP TABLE rules; ALTER TABLE rules3 RENAME TO rules;",
    /* 4: no table changes. A flush no longer upserts its client's row: the log holds the
     * newest (client, seq) of every batch it keeps, and a retention cut moves the rows it
     * deletes into `clients` first (ST_CLIENTS_KEEP); reads merge both (ST_CLIENTS). The
     * version is raised so that a build reading `clients` alone refuses this database
     * rather than answer a retried flush as new. */
    "SELECT 1;",
};

enum {
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_LOG_LAST,
    ST_LOG_COVER,
    ST_LOG_INSERT,
    ST_LOG_SCAN,
    ST_LOG_CUT,
    ST_CLIENTS_KEEP,
    ST_CLIENTS,
    ST_SNAP_INSERT,
    ST_SNAP_LE,
    ST_SNAP_LE_COUNT,
    ST_SNAP_CUT,
    ST_RULES_INSERT,
    ST_RULES_SCAN,
    ST_RULES_CUT,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_LOG_LAST] = "SELECT from_count, len FROM log WHERE model = ?1"
                    " ORDER BY from_count DESC LIMIT 1",
    [ST_LOG_COVER] = "SELECT from_count, len FROM log WHERE model = ?1 AND from_count <= ?2"
                     " ORDER BY from_count DESC LIMIT 1",
    [ST_LOG_INSERT] = "INSERT INTO log (model, from_count, len, client, seq, batch, now_ms,"
                      " identity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_LOG_SCAN] = "SELECT from_count, len, seq, client, batch, now_ms, identity FROM log"
                    " WHERE model = ?1 AND from_count >= ?2 AND from_count < ?3"
                    " ORDER BY from_count",
    [ST_LOG_CUT] = "DELETE FROM log WHERE model = ?1 AND from_count < ?2"
                   " AND from_count + len <= ?2",
    /* Before a retention cut deletes log rows: each client's newest of them, unless the
     * row it has is newer. (max() makes the bare `seq` come from the same row.) */
    [ST_CLIENTS_KEEP] = "INSERT INTO clients (model, client, seq, cmd_count)"
                        " SELECT model, client, seq, max(from_count + len) FROM log"
                        " WHERE model = ?1 AND from_count < ?2 AND from_count + len <= ?2"
                        " AND client <> '' GROUP BY client"
                        " ON CONFLICT (model, client) DO UPDATE SET seq = excluded.seq,"
                        " cmd_count = excluded.cmd_count WHERE excluded.cmd_count > cmd_count",
    /* A client's row: its newest batch in the log, or the one a cut kept. */
    [ST_CLIENTS] = "SELECT client, seq, max(cmd_count) FROM ("
                   " SELECT client, seq, cmd_count FROM clients WHERE model = ?1"
                   " UNION ALL SELECT client, seq, from_count + len FROM log"
                   " WHERE model = ?1 AND client <> '') GROUP BY client ORDER BY client",
    [ST_SNAP_INSERT] = "INSERT OR REPLACE INTO snapshots (model, cmd_count, doc)"
                       " VALUES (?1, ?2, ?3)",
    [ST_SNAP_LE] = "SELECT cmd_count, doc FROM snapshots WHERE model = ?1 AND cmd_count <= ?2"
                   " ORDER BY cmd_count DESC LIMIT 1",
    [ST_SNAP_LE_COUNT] = "SELECT cmd_count FROM snapshots WHERE model = ?1 AND cmd_count <= ?2"
                         " ORDER BY cmd_count DESC LIMIT 1",
    [ST_SNAP_CUT] = "DELETE FROM snapshots WHERE model = ?1 AND cmd_count < ?2",
    [ST_RULES_INSERT] = "INSERT INTO rules (model, from_count, ord, len, original, audit)"
                        " SELECT ?1, ?2, COALESCE(MAX(ord) + 1, 0), ?3, ?4, ?5 FROM rules"
                        " WHERE model = ?1 AND from_count = ?2",
    [ST_RULES_SCAN] = "SELECT from_count, len, original, audit FROM rules"
                      " WHERE model = ?1 AND from_count >= ?2 ORDER BY from_count, ord",
    [ST_RULES_CUT] = "DELETE FROM rules WHERE model = ?1 AND from_count < ?2",
};

/* Where a model's log ends (its count), so that a batch is checked against it without
 * reading the log's tail. Only this process writes the database (the lock file), so the
 * committed value stays true until this process changes it. */
typedef struct sq_end {
    uint64_t end;  /* committed, when `known` */
    uint64_t pend; /* after the writes of transaction `txn` */
    uint64_t txn;
    bool known;
} sq_end;

#define SQ_ENDS_MAX 100000 /* more models than this: the table starts over */

typedef struct sq {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int lock_fd;
    fo_strmap ends;   /* model -> sq_end */
    uint64_t txn;     /* the current write transaction's number */
    sq_end **touched; /* entries with `pend` set by this transaction */
    size_t ntouched, touched_cap;
    bool ends_reset;  /* a count changed other than by a batch: start over after this one */
    char path[4096];
} sq;

/* ---- errors ------------------------------------------------------------------------- */

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL: return FO_STORE_EFULL;
    case SQLITE_READONLY:
    case SQLITE_PERM: return FO_STORE_EREADONLY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return FO_STORE_ECORRUPT;
    case SQLITE_CONSTRAINT: return FO_STORE_ECONFLICT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return FO_STORE_EBUSY;
    case SQLITE_NOMEM: return FO_ENOMEM;
    case SQLITE_TOOBIG: return FO_ELIMIT;
    default: return FO_STORE_EIO;
    }
}

static const char *rc_name(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL: return "SQLITE_FULL";
    case SQLITE_READONLY: return "SQLITE_READONLY";
    case SQLITE_PERM: return "SQLITE_PERM";
    case SQLITE_IOERR: return "SQLITE_IOERR";
    case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
    case SQLITE_NOTADB: return "SQLITE_NOTADB";
    case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT";
    case SQLITE_BUSY: return "SQLITE_BUSY";
    case SQLITE_LOCKED: return "SQLITE_LOCKED";
    case SQLITE_NOMEM: return "SQLITE_NOMEM";
    case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN";
    case SQLITE_TOOBIG: return "SQLITE_TOOBIG";
    default: return "SQLITE_ERROR";
    }
}

/* "WHAT: database or disk is full (SQLITE_FULL/13) [/data/flushout.db]" */
static int sq_fail(sq *q, int rc, char *msg, size_t ml, const char *what)
{
    return fo_store_fail(map_rc(rc), msg, ml, "%s: %s (%s/%d) [%s]", what,
                         q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc), rc_name(rc), rc,
                         q->path);
}

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

static void ends_clear(sq *q)
{
    fo_strmap_each(&q->ends, end_free, NULL);
    fo_strmap_destroy(&q->ends);
    fo_strmap_init(&q->ends);
}

/* After a transaction: its counts become the committed ones, or (rolled back) are
 * forgotten, the committed ones standing. */
static void ends_settle(sq *q, bool committed)
{
    for (size_t i = 0; committed && i < q->ntouched; i++) {
        q->touched[i]->end = q->touched[i]->pend;
        q->touched[i]->known = true;
    }
    q->ntouched = 0;
    q->txn++;
    if (q->ends_reset || q->ends.len > SQ_ENDS_MAX)
        ends_clear(q);
    q->ends_reset = false;
}

/* Records that this transaction's writes take the model's count to `end`. Without memory,
 * the model is forgotten (its count is read from the log next time). */
static void end_set(sq *q, sq_end *e, const char *model, uint64_t end)
{
    size_t len = strlen(model);

    if (!e && (e = calloc(1, sizeof(*e))) && fo_strmap_put(&q->ends, model, len, e)) {
        free(e);
        e = NULL;
    }
    if (e && e->txn != q->txn) {
        if (q->ntouched == q->touched_cap) {
            size_t cap = q->touched_cap ? q->touched_cap * 2 : 64;
            sq_end **t = realloc(q->touched, cap * sizeof(*t));
            if (!t) {
                free(fo_strmap_del(&q->ends, model, len));
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

static int write_one(sq *q, const fo_store_write *w, char *msg, size_t ml)
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
        sq_end *e = fo_strmap_get(&q->ends, w->model, strlen(w->model));
        if (e && e->txn == q->txn) {
            from = e->pend;
        } else if (e && e->known) {
            from = e->end;
        } else {
            if ((rc = query2(q->st[ST_LOG_LAST], w->model, false, 0, &found, &from, &len)))
                return sq_fail(q, rc, msg, ml, "commit: reading the log tail");
            if (found)
                from += len;
            else if ((rc = query2(q->st[ST_SNAP_LE_COUNT], w->model, true, UINT64_MAX, &found,
                                  &from, NULL)))
                return sq_fail(q, rc, msg, ml, "commit: reading the newest snapshot");
            else if (!found)
                from = 0;
        }
        if (from != w->from)
            return fo_store_fail(FO_STORE_ECONFLICT, msg, ml,
                                 "commit: the log of %s ends at %llu, a batch starts at %llu",
                                 w->model, (unsigned long long)from, (unsigned long long)w->from);
        st = q->st[ST_LOG_INSERT];
        bind_text(st, 1, w->model);
        bind_u64(st, 2, w->from);
        sqlite3_bind_int64(st, 3, w->len);
        bind_text(st, 4, w->client);
        bind_u64(st, 5, w->seq);
        sqlite3_bind_blob64(st, 6, w->batch, w->batch_size, SQLITE_STATIC);
        if (w->now_ms)
            sqlite3_bind_int64(st, 7, w->now_ms);
        else
            sqlite3_bind_null(st, 7);
        if (w->identity)
            sqlite3_bind_text(st, 8, w->identity, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 8);
        if ((rc = run(st)))
            return sq_fail(q, rc, msg, ml, "commit: inserting a log row");
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
            return sq_fail(q, rc, msg, ml, "commit: inserting a rules row");
    }
    if (w->snap) {
        st = q->st[ST_SNAP_INSERT];
        bind_text(st, 1, w->model);
        bind_u64(st, 2, w->snap_count);
        sqlite3_bind_blob64(st, 3, w->snap, w->snap_size, SQLITE_STATIC);
        if ((rc = run(st)))
            return sq_fail(q, rc, msg, ml, "commit: inserting a snapshot");
    }
    if (w->cut) {
        if ((rc = query2(q->st[ST_SNAP_LE_COUNT], w->model, true, w->cut, &found, &base, NULL)))
            return sq_fail(q, rc, msg, ml, "commit: finding the retention base");
        static const int cut[] = {ST_SNAP_CUT, ST_CLIENTS_KEEP, ST_LOG_CUT, ST_RULES_CUT};
        for (size_t k = 0; found && k < sizeof(cut) / sizeof(cut[0]); k++) {
            st = q->st[cut[k]];
            bind_text(st, 1, w->model);
            bind_u64(st, 2, base);
            if ((rc = run(st)))
                return sq_fail(q, rc, msg, ml, "commit: retention cut");
        }
    }
    return 0;
}

static void rollback(sq *q)
{
    if (!sqlite3_get_autocommit(q->db))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static int sq_commit(void *impl, const fo_store_seg *segs, size_t nsegs, char *msg, size_t ml)
{
    sq *q = impl;
    int rc;

    if ((rc = run(q->st[ST_BEGIN]))) {
        rc = sq_fail(q, rc, msg, ml, "commit: BEGIN");
        rollback(q);
        return rc;
    }
    for (size_t i = 0; i < nsegs; i++) {
        for (size_t k = 0; k < segs[i].n; k++) {
            if ((rc = write_one(q, &segs[i].w[k], msg, ml))) {
                rollback(q);
                ends_settle(q, false);
                return rc;
            }
        }
    }
    if ((rc = run(q->st[ST_COMMIT]))) {
        rc = sq_fail(q, rc, msg, ml, "commit failed");
        rollback(q);
        ends_settle(q, false);
        return rc;
    }
    ends_settle(q, true);
    return 0;
}

/* ---- reads -------------------------------------------------------------------------- */

static int sq_read_begin(void *impl, char *msg, size_t ml)
{
    sq *q = impl;
    int rc = run(q->st[ST_BEGIN_READ]);

    return rc ? sq_fail(q, rc, msg, ml, "read: BEGIN") : 0;
}

static void sq_read_end(void *impl)
{
    sq *q = impl;

    if (run(q->st[ST_COMMIT]))
        rollback(q);
}

static int sq_snapshot_le(void *impl, const char *model, uint64_t at, fo_store_result *r,
                          bool *found, uint64_t *count, char *msg, size_t ml)
{
    sq *q = impl;
    sqlite3_stmt *st;
    int rc;

    if (!r) {
        rc = query2(q->st[ST_SNAP_LE_COUNT], model, true, at, found, count, NULL);
        return rc ? sq_fail(q, rc, msg, ml, "read: snapshot") : 0;
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
    return rc == SQLITE_DONE ? 0 : sq_fail(q, rc, msg, ml, "read: snapshot");
}

static int sq_log_cover(void *impl, const char *model, uint64_t x, bool *found, fo_store_span *out,
                        char *msg, size_t ml)
{
    sq *q = impl;
    int rc = query2(q->st[ST_LOG_COVER], model, true, x, found, &out->from, &out->len);

    return rc ? sq_fail(q, rc, msg, ml, "read: log") : 0;
}

static int sq_log_last(void *impl, const char *model, bool *found, fo_store_span *out, char *msg,
                       size_t ml)
{
    sq *q = impl;
    int rc = query2(q->st[ST_LOG_LAST], model, false, 0, found, &out->from, &out->len);

    return rc ? sq_fail(q, rc, msg, ml, "read: log") : 0;
}

static int sq_log_scan(void *impl, const char *model, uint64_t lo, uint64_t hi, fo_store_result *r,
                       char *msg, size_t ml)
{
    sq *q = impl;
    sqlite3_stmt *st = q->st[ST_LOG_SCAN];
    int rc;

    bind_text(st, 1, model);
    bind_u64(st, 2, lo);
    bind_u64(st, 3, hi);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *client = (const char *)sqlite3_column_text(st, 3);
        size_t client_len = (size_t)sqlite3_column_bytes(st, 3);
        const void *batch = sqlite3_column_blob(st, 4);
        size_t size = (size_t)sqlite3_column_bytes(st, 4);
        const char *id = (const char *)sqlite3_column_text(st, 6);
        if (fo_store_result_add_entry(r, col_u64(st, 0), (uint32_t)col_u64(st, 1), col_u64(st, 2),
                                      client, client_len, batch, size) ||
            fo_store_result_entry_meta(r, sqlite3_column_int64(st, 5), id,
                                       (size_t)sqlite3_column_bytes(st, 6))) {
            sqlite3_reset(st);
            return fo_store_fail(FO_ENOMEM, msg, ml, "read %s: out of memory", model);
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(q, rc, msg, ml, "read: log");
}

static int sq_clients(void *impl, const char *model, fo_store_result *r, char *msg, size_t ml)
{
    sq *q = impl;
    sqlite3_stmt *st = q->st[ST_CLIENTS];
    int rc;

    bind_text(st, 1, model);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (fo_store_result_add_client(r, (const char *)sqlite3_column_text(st, 0),
                                       (size_t)sqlite3_column_bytes(st, 0), col_u64(st, 1),
                                       col_u64(st, 2))) {
            sqlite3_reset(st);
            return fo_store_fail(FO_ENOMEM, msg, ml, "read %s: out of memory", model);
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(q, rc, msg, ml, "read: exactly-once rows");
}

static int sq_rules_scan(void *impl, const char *model, uint64_t lo, uint32_t limit,
                         fo_store_result *r, char *msg, size_t ml)
{
    sq *q = impl;
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
    return rc == SQLITE_DONE ? 0 : sq_fail(q, rc, msg, ml, "read: rules rows");
}

/* ---- open / close ------------------------------------------------------------------- */

static void sq_close(void *impl)
{
    sq *q = impl;

    if (!q)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
    if (q->lock_fd >= 0)
        close(q->lock_fd); /* releases the flock */
    ends_clear(q);
    fo_strmap_destroy(&q->ends);
    free(q->touched);
    free(q);
}

static int open_fail(fo_err_info *err, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int open_fail(fo_err_info *err, int code, const char *path, const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    snprintf(err->path, sizeof(err->path), "%s", path);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

static int sq_open_fail(sq *q, fo_err_info *err, int rc, const char *what)
{
    int code = open_fail(err, map_rc(rc), q->path, "%s: %s", what,
                         q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
    sq_close(q);
    return code;
}

/* mkdir -p with mode 0750. */
static int make_dir(const char *dir, fo_err_info *err)
{
    char path[4096];
    size_t n = strlen(dir);
    struct stat sb;

    if (n == 0 || n >= sizeof(path) - sizeof(DB_FILE) - 2)
        return open_fail(err, FO_EINVAL, dir, "store: bad data dir");
    memcpy(path, dir, n + 1);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(path, 0750) != 0 && errno != EEXIST)
                return open_fail(
                    err, errno == EROFS || errno == EACCES ? FO_STORE_EREADONLY : FO_STORE_EIO,
                    path, "cannot create the data dir: %s", strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return open_fail(err, FO_STORE_EIO, dir, "the data dir is not a directory");
    return 0;
}

static int exec_pragma(sq *q, const char *sql, fo_err_info *err)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

    return rc ? sq_open_fail(q, err, rc, sql) : 0;
}

static int migrate(sq *q, fo_err_info *err)
{
    sqlite3_stmt *st;
    int rc, version = 0;
    char sql[64];

    if ((rc = sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL)))
        return sq_open_fail(q, err, rc, "reading the schema version");
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return sq_open_fail(q, err, rc, "reading the schema version");
    if (version > SCHEMA_VERSION) {
        open_fail(err, FO_STORE_EVERSION, q->path,
                  "the database schema (version %d) is newer than this build (%d)", version,
                  SCHEMA_VERSION);
        sq_close(q);
        return FO_STORE_EVERSION;
    }
    for (; version < SCHEMA_VERSION; version++) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
        if ((rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) ||
            (rc = sqlite3_exec(q->db, migrations[version], NULL, NULL, NULL)) ||
            (rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL)) ||
            (rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL))) {
            int code = open_fail(err, map_rc(rc), q->path, "migrating the schema to version %d: %s",
                                 version + 1, sqlite3_errmsg(q->db));
            rollback(q);
            sq_close(q);
            return code;
        }
    }
    return 0;
}

static int sq_open(const char *dir, const fo_store_options *o, void **impl, fo_err_info *err)
{
    sq *q;
    sqlite3_stmt *st;
    int rc;
    char sql[96];

    if (!dir || !dir[0])
        return open_fail(err, FO_EINVAL, "", "store: the sqlite backend needs a data dir");
    if ((rc = make_dir(dir, err)))
        return rc;
    if (!(q = calloc(1, sizeof(*q))))
        return open_fail(err, FO_ENOMEM, dir, "store: out of memory");
    fo_strmap_init(&q->ends);
    q->txn = 1; /* a new entry's txn (0) is never the current one */
    snprintf(q->path, sizeof(q->path), "%s/%s", dir, LOCK_FILE);
    q->lock_fd = open(q->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (q->lock_fd < 0 || flock(q->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (q->lock_fd >= 0)
            rc = open_fail(err, e == EWOULDBLOCK ? FO_STORE_EBUSY : FO_STORE_EIO, q->path,
                           "cannot lock the data dir: %s",
                           e == EWOULDBLOCK ? "in use by another process" : strerror(e));
        else if (e == EROFS || e == EACCES || e == EPERM)
            rc = open_fail(err, FO_STORE_EREADONLY, q->path, "the data dir is not writable: %s",
                           strerror(e));
        else
            rc = open_fail(err, FO_STORE_EIO, q->path, "cannot create the lock file: %s",
                           strerror(e));
        sq_close(q);
        return rc;
    }
    snprintf(q->path, sizeof(q->path), "%s/%s", dir, DB_FILE);
    rc = sqlite3_open_v2(q->path, &q->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                             SQLITE_OPEN_EXRESCODE,
                         fo_walbuf_vfs());
    if (rc)
        return sq_open_fail(q, err, rc, "cannot open the database");
    /* SQLite falls back to read-only on a file it cannot write: refuse that at start rather
     * than fail every commit. */
    if (sqlite3_db_readonly(q->db, "main") == 1) {
        open_fail(err, FO_STORE_EREADONLY, q->path, "the database file is read-only");
        sq_close(q);
        return FO_STORE_EREADONLY;
    }
    sqlite3_busy_timeout(q->db, (int)o->busy_timeout_ms);
    /* journal_mode answers with the mode it got: anything but "wal" is a failure. */
    if ((rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL)))
        return sq_open_fail(q, err, rc, "setting WAL mode");
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        sqlite3_finalize(st);
        return sq_open_fail(q, err, rc == SQLITE_ROW ? SQLITE_CANTOPEN : rc, "setting WAL mode");
    }
    sqlite3_finalize(st);
    /* cache_size < 0 is in KiB; SQLite's own default is 2 MiB. */
    snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%llu",
             (unsigned long long)(o->cache_bytes >= (2u << 20) ? o->cache_bytes >> 10 : 2048));
    if ((rc = exec_pragma(q, "PRAGMA synchronous = FULL", err)) ||
        (rc = exec_pragma(q, "PRAGMA journal_size_limit = 67108864", err)) ||
        (rc = exec_pragma(q, "PRAGMA wal_autocheckpoint = 10000", err)) ||
        (rc = exec_pragma(q, sql, err)) || (rc = migrate(q, err)))
        return rc;
    if (o->max_bytes) {
        int page = 4096;
        if (sqlite3_prepare_v2(q->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                page = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
        }
        snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %llu",
                 (unsigned long long)(o->max_bytes / (unsigned)page ? o->max_bytes / (unsigned)page
                                                                    : 1));
        if ((rc = exec_pragma(q, sql, err)))
            return rc;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL);
        if (rc)
            return sq_open_fail(q, err, rc, "preparing statements");
    }
    *impl = q;
    return 0;
}

const fo_store_backend fo_store_backend_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
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
