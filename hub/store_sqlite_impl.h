/* store_sqlite_impl.h - what the files of the SQLite backend share (store_sqlite.c:
 * commits, reads and the log ends it remembers; store_sqlite_open.c: the schema, its
 * migrations, open and close). Private to them.
 *
 * Schema 5: the log is keyed by one integer, its rowid, pos = model id << 38 | from_count,
 * with the ids in `models` (name -> id), so a log row is one B-tree entry and no second
 * index; a model's rows are the pos range [id << 38, (id + 1) << 38). So a model's log holds
 * fewer than 2^38 commands (2.7e11: eight years at a thousand a second) and a store gives
 * out fewer than 2^25 model ids (33.5 million; never reused): both fail a commit with
 * FO_ELIMIT. Snapshots, exactly-once and rules rows keep the model's name. */
#ifndef FO_STORE_SQLITE_IMPL_H
#define FO_STORE_SQLITE_IMPL_H

#include <sqlite3.h>

#include "hub/store_backend.h"
#include "hub/strmap.h"

#define FO_SQ_DB_FILE "flushout.db"
#define FO_SQ_LOCK_FILE "flushout.lock"
#define FO_SQ_SCHEMA_VERSION 5
#define FO_SQ_POS_BITS 38
#define FO_SQ_POS_SPAN ((uint64_t)1 << FO_SQ_POS_BITS) /* commands a model's log can hold */
#define FO_SQ_IDS ((uint64_t)1 << (63 - FO_SQ_POS_BITS))   /* ids a store can give out */

enum {
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_MODEL_ID,
    ST_MODEL_NEW,
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

/* What the statements say, in the order above (store_sqlite_open.c prepares them). */
extern const char *const fo_sq_stmt_sql[ST_COUNT];

/* What this process remembers of a model: where its log ends (its count), so that a batch
 * is checked against it without reading the log's tail, and its id. Only this process
 * writes the database (the lock file), so the committed values stay true until this
 * process changes them. */
typedef struct fo_sq_end {
    uint64_t end;  /* committed, when `known` */
    uint64_t pend; /* after the writes of transaction `txn` */
    uint64_t txn;
    int64_t id;    /* in `models`, 0 when not known yet */
    bool known;
} fo_sq_end;

#define FO_SQ_ENDS_MAX 100000 /* more models than this: the table starts over */

typedef struct fo_sq {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int lock_fd;
    fo_strmap ends;       /* model -> fo_sq_end */
    uint64_t txn;         /* the current write transaction's number */
    fo_sq_end **touched;  /* entries with `pend` set by this transaction */
    size_t ntouched, touched_cap;
    bool ends_reset;      /* a count changed other than by a batch: start over after this one */
    char path[4096];
} fo_sq;

/* Fills msg with "WHAT: <sqlite's message> (SQLITE_FULL/13) [/data/flushout.db]" and
 * returns the FO_STORE_E* code for rc. */
int fo_sq_fail(fo_sq *q, int rc, char *msg, size_t ml, const char *what);

/* The backend's open and close (store_backend.h). */
int fo_sq_open(const char *dir, const fo_store_options *o, void **impl, fo_err_info *err);
void fo_sq_close(void *impl);

/* Rolls back the open transaction, if any. */
void fo_sq_rollback(fo_sq *q);

/* Forgets every remembered end and id (store_sqlite.c). */
void fo_sq_ends_clear(fo_sq *q);

#endif
