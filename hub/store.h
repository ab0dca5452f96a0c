/* store.h - durable per-model storage for the hub: a log of applied batches, snapshots
 * and the exactly-once table, behind one asynchronous API with two backends.
 *
 * Threading. A store belongs to one libuv loop and every function here must be called on
 * that loop's thread. All blocking work (SQLite, fsync) runs on ONE worker thread that
 * the store owns; results come back through a uv_async_t and every callback runs on the
 * loop thread, never before the call that scheduled it has returned. Jobs run in
 * submission order: a load submitted after a commit sees that commit.
 *
 * The store keeps the loop alive only while it has work outstanding (the async handle is
 * unref'd when idle), so `uv_run(loop, UV_RUN_DEFAULT)` returns once every callback has
 * run, and after fo_store_close's callback the loop can be closed (uv_loop_close() == 0).
 *
 * Group commit. The hub calls fo_store_commit once per loop turn with every batch applied
 * in that turn. When commits queue up behind a slow fsync, the worker runs consecutive
 * queued commits as ONE transaction (one fsync); should that transaction fail, it runs
 * them again one by one, so each callback still reports its own commit's outcome.
 *
 * Data, per model (names: 1..200 bytes of [A-Za-z0-9._:-]):
 *  - log: one row per applied batch (from, len, batch bytes, client, seq, the batch's `now`
 *    and the flusher's identity). A model's log
 *    is contiguous: a batch must start at the model's count, i.e. where the previous row
 *    ended or, when the log is empty, at the newest snapshot's count (0 for a new model);
 *    anything else fails the commit with FO_STORE_ECONFLICT.
 *  - snapshots: (count, document bytes). Snapshot counts must fall on batch boundaries.
 *  - exactly-once rows: (client) -> seq and the command count after that batch, written in
 *    the same transaction as the log row.
 *  - rules rows: for a batch that server-side rules (or failures) changed, the batch as it
 *    was flushed and what the rules did, in order: (from, len applied, original bytes, audit
 *    text). Several may share a `from` (a batch of which nothing applied has len 0).
 * The bytes are opaque to the store (the hub stores fo_wire_encode_batch / _value output).
 *
 * Backends: "sqlite" (DIR/flushout.db, WAL, synchronous=FULL: a commit's callback runs
 * after its transaction is fsync'd; DIR/flushout.lock holds an flock so a second process
 * cannot open the same dir) and "memory" (same rules and errors, nothing on disk, data dies
 * with the store; completes through the same worker and queue) and "nats" (NATS JetStream,
 * store_nats.h: each model's log is a subject of the stream FLUSHOUT; a commit's callback
 * runs once JetStream acknowledged every append; the same rules and reads, plus fencing:
 * an append fails with FO_STORE_EFENCED when another writer appended to that model's log
 * behind this store's back. A nats commit is atomic per model, not across models: when it
 * fails, some of its models' writes may be stored; the hub reloads the models of a failed
 * commit, which makes that safe). */
#ifndef FO_STORE_H
#define FO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hub/model_name.h"
#include "proto/arena.h"
#include "proto/error.h"

typedef struct fo_store fo_store;

/* Errors of this module, beside FO_ENOMEM, FO_EINVAL and FO_ESTATE (proto/error.h). */
enum {
    FO_STORE_EFULL = -100,     /* disk full (SQLITE_FULL) or options.max_bytes reached */
    FO_STORE_EIO = -101,       /* I/O error or another backend failure */
    FO_STORE_EREADONLY = -102, /* the database, its directory or the filesystem is read-only */
    FO_STORE_ECORRUPT = -103,  /* not a database, damaged, or stored data breaks the invariants */
    FO_STORE_ECONFLICT = -104, /* a write does not continue its model's log */
    FO_STORE_EBUSY = -105,     /* the data dir is in use by another process */
    FO_STORE_EVERSION = -106,  /* the schema is newer than this build understands */
    FO_STORE_EFENCED = -107,   /* nats: another writer appended to the model's log since
                                * this store last read or wrote it (the append was refused) */
};

/* "FO_STORE_EFULL", ...; falls back to fo_strerror for the proto codes. Static. */
const char *fo_store_strerror(int code);

typedef enum fo_store_kind {
    FO_STORE_SQLITE = 1,
    FO_STORE_MEMORY = 2,
    FO_STORE_NATS = 3, /* JetStream (store_nats.h); `dir` is the server URL list */
} fo_store_kind;

/* "sqlite" / "memory" / "nats" -> kind; 0 when unknown. */
fo_store_kind fo_store_kind_parse(const char *name);
const char *fo_store_kind_name(fo_store_kind k);

#define FO_STORE_MODEL_MAX FO_MODEL_NAME_MAX

/* True when name[0..len) is a valid model name (1..200 bytes of [A-Za-z0-9._:-]):
 * fo_model_name_valid (model_name.h), for the store's users. */
bool fo_store_model_name_valid(const char *name, size_t len);

typedef struct fo_store_options {
    uint32_t busy_timeout_ms; /* sqlite busy timeout; default 5000 */
    /* Upper bound on stored data, 0 = none (default). sqlite: PRAGMA max_page_count =
     * max_bytes / page_size, a real SQLITE_FULL path; memory: bytes of stored batches,
     * snapshots and client names. A commit that would pass it fails with FO_STORE_EFULL. */
    uint64_t max_bytes;
    /* Most writes the worker merges into one transaction; default 65536. 1 disables
     * merging of queued commits (each fo_store_commit is then its own transaction). */
    uint32_t max_merge_writes;
    /* sqlite: the page cache, in bytes (PRAGMA cache_size); default 16 MiB. The hub gives
     * it a thirty-second of --memory-budget, at most the default. */
    uint64_t cache_bytes;
    /* nats: where the model's log ends as someone following the stream saw it (the hub's
     * follow.h: other hubs' appends); true and *seq (stream sequence) and *count (the
     * model's command count after that record) when known. Called on the worker thread
     * before each append: when newer than what this store saw, the append is fenced on it
     * (and a batch that does not continue its count fails with ECONFLICT). NULL: none. */
    bool (*log_end)(void *ctx, const char *model, uint64_t *seq, uint64_t *count);
    void *log_end_ctx;
} fo_store_options;

void fo_store_options_default(fo_store_options *o);

/* Opens (creating if needed) the store and starts its worker thread. Blocks the caller:
 * sqlite creates `dir` (mode 0750, parents too) and opens, recovers and if needed
 * creates or migrates the database before returning. `dir` is ignored by the memory
 * backend (may be NULL); nats connects to the servers
 * `dir` names ("nats://127.0.0.1:4222,nats://..."), and creates the stream FLUSHOUT or
 * checks the one there; `opt` may be NULL for defaults. On success returns 0 and sets
 * *out. On failure returns FO_EINVAL (bad kind or dir), FO_ENOMEM or an FO_STORE_E*
 * code, fills `err` (may be NULL) with a message and err->path naming the file, and *out
 * is untouched. (Should the worker thread fail to start, the async handle is already being
 * closed: run the loop once more before uv_loop_close.) */
int fo_store_open(uv_loop_t *loop, fo_store_kind kind, const char *dir, const fo_store_options *opt,
                  fo_store **out, fo_err_info *err);

typedef void (*fo_store_close_cb)(void *data);

/* Starts closing: no new job is accepted (FO_ESTATE), every job already submitted still
 * runs and gets its callback, then the worker closes the backend (sqlite checkpoints the
 * WAL) and exits, the thread is joined and the async handle closed. `cb` (may be NULL)
 * runs last, from the loop; the store is freed right after it returns. FO_ESTATE when
 * already closing. May be called from a store callback. */
int fo_store_close(fo_store *s, fo_store_close_cb cb, void *data);

/* How a job ended; valid only during the callback. */
typedef struct fo_store_status {
    int rc;              /* 0, or FO_ENOMEM / FO_STORE_E* */
    const char *msg;     /* "" on success; otherwise e.g. "commit: inserting a log row:
                          * database or disk is full (SQLITE_FULL/13) [/data/flushout.db]" */
    uint64_t latency_ns; /* submission to completion: queue wait plus execution */
    uint64_t exec_ns;    /* execution on the worker (the whole merged transaction) */
    const char *reason;  /* msg without the detail only the operator may see (the file in
                          * brackets): what a client is told; the log gets msg */
} fo_store_status;

/* ---- commit ------------------------------------------------------------------------- */

/* One model's part of a commit. Strings are NUL-terminated. Each part is optional:
 *  - log row when `batch` != NULL: [from, from+len) with len >= 1, `batch_size` bytes;
 *  - exactly-once row when `client` != NULL and non-empty: (model, client) -> seq and
 *    count = from + len (a log row is then required); the log row records client ("" when
 *    NULL) and seq either way;
 *  - snapshot when `snap` != NULL: (snap_count, snap_size bytes); one at the same count
 *    is replaced;
 *  - retention cut when `cut` > 0, applied after the rest of this write: keeps the newest
 *    snapshot with count <= cut and everything after it, and deletes older snapshots and
 *    log rows ending at or before that snapshot's count. No snapshot <= cut: nothing is
 *    deleted. So the newest snapshot and the log after it are never deleted, every state
 *    at a count >= cut stays reconstructible (read_state_at), and read_log from >= cut
 *    still works. Cut at a snapshot's count to keep exactly [cut, now]. */
typedef struct fo_store_write {
    const char *model;
    uint64_t from;
    uint32_t len;
    const void *batch;
    size_t batch_size;
    const char *client;
    uint64_t seq;
    uint64_t snap_count;
    const void *snap;
    size_t snap_size;
    uint64_t cut;
    int64_t now_ms;       /* stored with the log row: the batch's `now` (0: unknown) */
    const char *identity; /* stored with the log row: JSON of the flusher's claims, or NULL */
    /* A rules row when `audit` != NULL, also with no batch (nothing applied: len 0, no
     * client then): the batch as flushed (opaque bytes) and the audit (JSON text). The
     * retention cut deletes rules rows whose from is below the base it keeps. */
    const void *original;
    size_t original_size;
    const char *audit;
    /* With a snapshot: the model's exactly-once table at snap_count (fo_store_clients_put
     * rows; non-NULL with size 0: an empty table). The nats backend keeps it in the record
     * so that its retention can drop the log before that snapshot without dropping the
     * exactly-once rows those batches carried (fo_store_wants_clients); the others keep
     * their own table and ignore it. */
    const void *clients;
    size_t clients_size;
} fo_store_write;

/* True when the backend wants fo_store_write.clients with each snapshot (nats): without
 * it, its retention keeps the whole log. */
bool fo_store_wants_clients(const fo_store *s);

/* One exactly-once row of a fo_store_write.clients table: a 4-byte length, the client's
 * bytes, an 8-byte seq (little-endian). fo_store_clients_put writes it at out (room for
 * FO_STORE_CLIENT_ROW(len) bytes) and returns the bytes written. fo_store_clients_next
 * reads the row at *off of p[0..n), advancing *off: true with *client (not NUL-terminated),
 * *len and *seq; false at the end or on a truncated row (*off == n tells which). */
#define FO_STORE_CLIENT_ROW(len) (4 + (size_t)(len) + 8)
size_t fo_store_clients_put(void *out, const char *client, size_t len, uint64_t seq);
bool fo_store_clients_next(const void *p, size_t n, size_t *off, const char **client,
                           size_t *len, uint64_t *seq);

typedef void (*fo_store_commit_cb)(fo_store *s, const fo_store_status *st, void *data);

/* True when the backend's commits are atomic per model only (nats: one append per model).
 * A caller that wants one model's failure (another hub appended first) not to fail the
 * others submits one commit per model: queued together they still go out as one round. */
bool fo_store_per_model(const fo_store *s);

/* Writes `writes[0..n)` in ONE transaction, in array order (a model may appear several
 * times). Everything needed is copied before returning (one allocation per call): the
 * caller may free its buffers at once. `cb` runs once the transaction is durable (rc 0)
 * or has been rolled back entirely (rc < 0; nothing of it is visible and the store stays
 * usable). `cb` may be NULL. n == 0 is a valid barrier (its callback runs after every
 * job submitted before it). Returns 0, FO_EINVAL (a bad model name, len == 0 with
 * a batch, a client without a batch), FO_ENOMEM or FO_ESTATE (closing); then cb never runs. */
int fo_store_commit(fo_store *s, const fo_store_write *writes, size_t n, fo_store_commit_cb cb,
                    void *data);

/* ---- reads -------------------------------------------------------------------------- */

/* One log row. Strings and bytes live in the result's arena. */
typedef struct fo_store_entry {
    uint64_t from; /* command count before the batch */
    uint32_t len;  /* commands in it: the count after it is from + len */
    uint64_t seq;
    const char *client; /* NUL-terminated, "" when none */
    const void *batch;
    size_t batch_size;
    int64_t now_ms;       /* 0 when unknown (rows written before the schema had it) */
    const char *identity; /* NULL when none */
} fo_store_entry;

/* One rules row. */
typedef struct fo_store_rules_row {
    uint64_t from;
    uint32_t len;
    const void *original;
    size_t original_size;
    const char *audit; /* NUL-terminated */
} fo_store_rules_row;

/* One exactly-once row. */
typedef struct fo_store_client {
    const char *client;
    uint64_t seq;   /* the last seq applied for this client on this model */
    uint64_t count; /* the model's command count right after that batch */
} fo_store_client;

/* What a read returns. Heap memory owned by the callback that receives it: release it with
 * fo_store_result_free (at once, or keep it as long as needed). */
typedef struct fo_store_result {
    bool exists;       /* the model has any row (log, snapshot or exactly-once) */
    bool gone;         /* read_log / read_state_at: the store no longer covers the request */
    uint64_t count;    /* the model's current command count (end of log or newest snapshot) */
    bool has_snapshot; /* false: start from {commandCount: 0, document: {}} */
    uint64_t snap_count;
    const void *snap; /* document bytes; NULL when !has_snapshot */
    size_t snap_size;
    fo_store_entry *entries; /* in log order, contiguous; none when gone */
    uint32_t n_entries;
    /* load: entries[0..n_before) end at or before snap_count (history only);
     * entries[n_before..] start at snap_count: replay them. 0 for the other reads. */
    uint32_t n_before;
    fo_store_client *clients; /* load only */
    uint32_t n_clients;
    fo_store_rules_row *rules; /* read_audit, read_replay: in order */
    uint32_t n_rules;
    bool more;                 /* read_audit: rows past the limit remain */
    /* private */
    uint32_t cap_entries, cap_clients, cap_rules;
    fo_arena arena;
} fo_store_result;

void fo_store_result_free(fo_store_result *r); /* NULL is a no-op */

/* On success `r` is the callback's to free; on error r is NULL and st->rc < 0. */
typedef void (*fo_store_read_cb)(fo_store *s, const fo_store_status *st, fo_store_result *r,
                                 void *data);

/* Everything the hub needs to bring `model` into memory: exists, the newest snapshot (or
 * none), the log rows after it (to replay, entries[n_before..]), the rows before it back to
 * the one covering `history_from` as far as they are still stored (entries[0..n_before),
 * for in-memory history; pass UINT64_MAX for none), and the model's exactly-once rows.
 * A model that does not exist gives exists == false, count 0, no rows. Returns 0, FO_EINVAL
 * (bad name), FO_ENOMEM or FO_ESTATE; then cb never runs. */
int fo_store_load(fo_store *s, const char *model, uint64_t history_from, fo_store_read_cb cb,
                  void *data);

/* The log rows covering [from, to) (to = UINT64_MAX: to the end), whole rows: the first may
 * start before `from` and the last end after `to`. from >= the model's count gives no rows
 * (not gone). `gone` when the log no longer reaches back to `from`; a gone result has no
 * rows and no snapshot (count and exists are still set). Returns as load. */
int fo_store_read_log(fo_store *s, const char *model, uint64_t from, uint64_t to,
                      fo_store_read_cb cb, void *data);

/* The state after `at` commands: the newest snapshot with count <= at (or none: the empty
 * document at 0) and the log rows from it up to `at` (the last row may end after `at`
 * when `at` is not on a batch boundary: apply only its first at - from commands). `at`
 * beyond the model's count gives the state at `count` (check it against your own count).
 * `gone` (no rows, no snapshot) when no stored snapshot and log reach `at`. Returns as
 * load. */
int fo_store_read_state_at(fo_store *s, const char *model, uint64_t at, fo_store_read_cb cb,
                           void *data);

/* The rules rows with from >= `from`, in order, at most about `limit` of them (0: all; the
 * rows that share the last one's `from` are included); `more` when rows remain. Returns
 * as load. */
int fo_store_read_audit(fo_store *s, const char *model, uint64_t from, uint32_t limit,
                        fo_store_read_cb cb, void *data);

/* Everything `flushout-hub replay` needs: the snapshot where the stored log starts (none
 * when it starts at 0), every log row and every rules row. ECORRUPT when the log does not
 * start on a snapshot. Returns as load. */
int fo_store_read_replay(fo_store *s, const char *model, fo_store_read_cb cb, void *data);

/* ---- stats -------------------------------------------------------------------------- */

/* Commit latency histogram bounds in microseconds (Prometheus `le`); the last bucket is
 * +Inf. Buckets are not cumulative here: bucket[i] counts latencies in (bound[i-1], bound[i]]. */
#define FO_STORE_LAT_BUCKETS 12
extern const uint64_t fo_store_lat_bounds_us[FO_STORE_LAT_BUCKETS - 1];

typedef struct fo_store_stats {
    uint64_t commits;               /* fo_store_commit calls completed with rc 0 */
    uint64_t commit_errors;         /* ... with rc < 0 */
    uint64_t transactions;          /* commit transactions run (fewer than commits when merged) */
    uint64_t writes;                /* writes in successful commits */
    uint64_t bytes_written;         /* batch + snapshot bytes in successful commits */
    uint64_t commit_latency_ns_sum; /* submission -> completion, every commit */
    uint64_t commit_latency_ns_max;
    uint64_t commit_exec_ns_sum;
    uint64_t lat_buckets[FO_STORE_LAT_BUCKETS];
    uint64_t reads; /* load / read_log / read_state_at completed */
    uint64_t read_errors;
    uint64_t queued; /* jobs submitted whose callback has not run yet */
} fo_store_stats;

/* The memory store runs its jobs on the loop thread as they are submitted (nothing in it
 * blocks) and keeps their callbacks for this call, which runs them in order and returns
 * how many ran: the hub calls it at the end of each loop turn so that the replies a
 * commit releases leave in that same turn. An idle handle runs them otherwise, so none
 * waits for I/O. The sqlite store's callbacks come through its async handle: 0. */
size_t fo_store_run_completions(fo_store *s);

/* Copies the counters (loop thread). */
void fo_store_stats_get(const fo_store *s, fo_store_stats *out);

#endif
