/* store_sqlite_open.c - the SQLite backend's schema (its migrations, one per version, and
 * the statements prepared once at open), opening (the lock file, WAL, pragmas, migrating)
 * and closing; store_sqlite_impl.h says what the other file needs of it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/store_sqlite_impl.h"
#include "hub/walbuf.h"

/* migrations[v] takes a database from user_version v to v + 1, inside one transaction. */
/* migrations[v] takes a database from user_version v to v + 1, inside one transaction. */
static const char *const migrations[FO_SQ_SCHEMA_VERSION] = {
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
    /* 5: the log keyed by pos = model id << 38 | from_count (its rowid) instead of a rowid
     * and a unique index on (model, from_count): a flush inserts one B-tree entry, a cut
     * deletes one, and the index's copy of each model name is gone. */
    "CREATE TABLE models (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "INSERT INTO models (name) SELECT DISTINCT model FROM log ORDER BY model;"
    "CREATE TABLE log5 (pos INTEGER PRIMARY KEY, len INTEGER NOT NULL, client TEXT NOT NULL,"
    " seq INTEGER NOT NULL, batch BLOB NOT NULL, now_ms INTEGER, identity TEXT);"
    "INSERT INTO log5 SELECT (m.id << 38) | l.from_count, l.len, l.client, l.seq, l.batch,"
    " l.now_ms, l.identity FROM log l JOIN models m ON m.name = l.model ORDER BY 1;"
    "DROP TABLE log; ALTER TABLE log5 RENAME TO log;",
};

/* Positions are bound computed (pos = id << 38 | count): ?1 is a model's first pos, the
 * others are positions or counts as each statement says. */
const char *const fo_sq_stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_MODEL_ID] = "SELECT id FROM models WHERE name = ?1",
    [ST_MODEL_NEW] = "INSERT INTO models (name) VALUES (?1)",
    /* ?2: the pos of the count looked for (the model's last pos: its last row) */
    [ST_LOG_COVER] = "SELECT pos - ?1, len FROM log WHERE pos >= ?1 AND pos <= ?2"
                     " ORDER BY pos DESC LIMIT 1",
    [ST_LOG_INSERT] = "INSERT INTO log (pos, len, client, seq, batch, now_ms, identity)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    /* [?2, ?3): positions */
    [ST_LOG_SCAN] = "SELECT pos - ?1, len, seq, client, batch, now_ms, identity FROM log"
                    " WHERE pos >= ?2 AND pos < ?3 ORDER BY pos",
    /* ?2: the pos of the cut, ?3: the cut (a count) */
    [ST_LOG_CUT] = "DELETE FROM log WHERE pos >= ?1 AND pos < ?2 AND pos - ?1 + len <= ?3",
    /* Before a retention cut deletes log rows (bound as ST_LOG_CUT, ?4 the model's name):
     * each client's newest of them, unless the row it has is newer. (max() makes the bare
     * `seq` come from the same row.) */
    [ST_CLIENTS_KEEP] = "INSERT INTO clients (model, client, seq, cmd_count)"
                        " SELECT ?4, client, seq, max(pos - ?1 + len) FROM log"
                        " WHERE pos >= ?1 AND pos < ?2 AND pos - ?1 + len <= ?3"
                        " AND client <> '' GROUP BY client"
                        " ON CONFLICT (model, client) DO UPDATE SET seq = excluded.seq,"
                        " cmd_count = excluded.cmd_count WHERE excluded.cmd_count > cmd_count",
    /* A client's row: its newest batch in the log, or the one a cut kept. ?1: the model's
     * name, [?2, ?3): its positions (empty when it has no id). */
    [ST_CLIENTS] = "SELECT client, seq, max(cmd_count) FROM ("
                   " SELECT client, seq, cmd_count FROM clients WHERE model = ?1"
                   " UNION ALL SELECT client, seq, pos - ?2 + len FROM log"
                   " WHERE pos >= ?2 AND pos < ?3 AND client <> '') GROUP BY client ORDER BY client",
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
int fo_sq_fail(fo_sq *q, int rc, char *msg, size_t ml, const char *what)
{
    return fo_store_fail(map_rc(rc), msg, ml, "%s: %s (%s/%d) [%s]", what,
                         q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc), rc_name(rc), rc,
                         q->path);
}


void fo_sq_close(void *impl)
{
    fo_sq *q = impl;

    if (!q)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
    if (q->lock_fd >= 0)
        close(q->lock_fd); /* releases the flock */
    fo_sq_ends_clear(q);
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

static int sq_open_fail(fo_sq *q, fo_err_info *err, int rc, const char *what)
{
    int code = open_fail(err, map_rc(rc), q->path, "%s: %s", what,
                         q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
    fo_sq_close(q);
    return code;
}

/* mkdir -p with mode 0750. */
static int make_dir(const char *dir, fo_err_info *err)
{
    char path[4096];
    size_t n = strlen(dir);
    struct stat sb;

    if (n == 0 || n >= sizeof(path) - sizeof(FO_SQ_DB_FILE) - 2)
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

static int exec_pragma(fo_sq *q, const char *sql, fo_err_info *err)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

    return rc ? sq_open_fail(q, err, rc, sql) : 0;
}

void fo_sq_rollback(fo_sq *q)
{
    if (!sqlite3_get_autocommit(q->db))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
}

static int migrate(fo_sq *q, fo_err_info *err)
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
    if (version > FO_SQ_SCHEMA_VERSION) {
        open_fail(err, FO_STORE_EVERSION, q->path,
                  "the database schema (version %d) is newer than this build (%d)", version,
                  FO_SQ_SCHEMA_VERSION);
        fo_sq_close(q);
        return FO_STORE_EVERSION;
    }
    for (; version < FO_SQ_SCHEMA_VERSION; version++) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
        if ((rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) ||
            (rc = sqlite3_exec(q->db, migrations[version], NULL, NULL, NULL)) ||
            (rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL)) ||
            (rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL))) {
            int code = open_fail(err, map_rc(rc), q->path, "migrating the schema to version %d: %s",
                                 version + 1, sqlite3_errmsg(q->db));
            fo_sq_rollback(q);
            fo_sq_close(q);
            return code;
        }
    }
    return 0;
}

int fo_sq_open(const char *dir, const fo_store_options *o, void **impl, fo_err_info *err)
{
    fo_sq *q;
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
    snprintf(q->path, sizeof(q->path), "%s/%s", dir, FO_SQ_LOCK_FILE);
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
        fo_sq_close(q);
        return rc;
    }
    snprintf(q->path, sizeof(q->path), "%s/%s", dir, FO_SQ_DB_FILE);
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
        fo_sq_close(q);
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
        rc = sqlite3_prepare_v3(q->db, fo_sq_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL);
        if (rc)
            return sq_open_fail(q, err, rc, "preparing statements");
    }
    *impl = q;
    return 0;
}
