/* store_backend.h - the interface between store.c (queue, worker, read logic) and a
 * backend (store_sqlite.c, store_mem.c). Private to the store: the hub includes
 * store.h only.
 *
 * `open` runs on the loop thread inside fo_store_open; every other function runs on the
 * worker thread only, one at a time, so backends need no locking. Functions return 0 or a
 * negative error (FO_ENOMEM, FO_STORE_E*) and then write a message into msg[0..msglen). */
#ifndef FO_STORE_BACKEND_H
#define FO_STORE_BACKEND_H

#include "hub/store.h"

/* A run of writes: one fo_store_commit call. A backend commit gets several when the worker
 * merges queued commits into one transaction. */
typedef struct fo_store_seg {
    const fo_store_write *w;
    size_t n;
    /* A backend whose commits are not atomic across models (nats: one append per model)
     * sets each segment's own outcome here: rc and a message in msg[0..msglen) (the
     * commit's buffer). Others leave them alone. */
    int rc;
    char *msg;
    size_t msglen;
} fo_store_seg;

/* Set by a read primitive that found a row. */
typedef struct fo_store_span {
    uint64_t from;
    uint64_t len;
} fo_store_span;

typedef struct fo_store_backend {
    const char *name;
    /* true: commit sets segs[i].rc for every segment and a failed commit may have stored
     * part of its writes (each segment's rc says which failed; a failed segment's models
     * must be reloaded, which the hub does). The store then never re-runs segments one by
     * one. false: commit is all-or-nothing. */
    bool per_segment;
    /* `dir`: the sqlite directory, or the nats server URLs (comma-separated). */
    int (*open)(const char *dir, const fo_store_options *o, void **impl, fo_err_info *err);
    void (*close)(void *impl);
    /* All writes of all segments in one transaction, all-or-nothing. */
    int (*commit)(void *impl, const fo_store_seg *segs, size_t nsegs, char *msg, size_t msglen);
    /* A read job runs between read_begin and read_end (a read transaction in sqlite). */
    int (*read_begin)(void *impl, char *msg, size_t msglen);
    void (*read_end)(void *impl);
    /* Newest snapshot with count <= at: *found, *count, and when r != NULL its bytes
     * through fo_store_result_set_snapshot(r, ...). */
    int (*snapshot_le)(void *impl, const char *model, uint64_t at, fo_store_result *r, bool *found,
                       uint64_t *count, char *msg, size_t msglen);
    /* The last log row with from <= x: *found and *out (from, len). */
    int (*log_cover)(void *impl, const char *model, uint64_t x, bool *found, fo_store_span *out,
                     char *msg, size_t msglen);
    /* The last log row of the model. */
    int (*log_last)(void *impl, const char *model, bool *found, fo_store_span *out, char *msg,
                    size_t msglen);
    /* Appends every row with lo <= from < hi, in order (fo_store_result_add_entry). */
    int (*log_scan)(void *impl, const char *model, uint64_t lo, uint64_t hi, fo_store_result *r,
                    char *msg, size_t msglen);
    /* Appends the model's exactly-once rows (fo_store_result_add_client). */
    int (*clients)(void *impl, const char *model, fo_store_result *r, char *msg, size_t msglen);
    /* Appends the rules rows with from >= lo in order (fo_store_result_add_rules), at most
     * `limit` plus those sharing the last one's from (limit 0: all); sets r->more. */
    int (*rules_scan)(void *impl, const char *model, uint64_t lo, uint32_t limit,
                      fo_store_result *r, char *msg, size_t msglen);
} fo_store_backend;

extern const fo_store_backend fo_store_backend_sqlite;
extern const fo_store_backend fo_store_backend_memory;
extern const fo_store_backend fo_store_backend_nats;

/* Memory backend only: sets the model's exactly-once rows from a snapshot's table
 * (fo_store_write.clients, rows[0..n)), each with `count`, as if written before anything
 * else (the nats backend's read view, when the log starts at that snapshot). 0, FO_ENOMEM,
 * or FO_STORE_ECORRUPT for a truncated table. */
int fo_store_mem_seed_clients(void *impl, const char *model, const void *rows, size_t n,
                              uint64_t count);

/* A new, empty result (NULL on out-of-memory). */
fo_store_result *fo_store_result_new(void);
/* Result builders (store_result.c). Each copies its bytes into the result; 0 or FO_ENOMEM. */
int fo_store_result_set_snapshot(fo_store_result *r, uint64_t count, const void *p, size_t n);
int fo_store_result_add_entry(fo_store_result *r, uint64_t from, uint32_t len, uint64_t seq,
                              const char *client, size_t client_len, const void *p, size_t n);
/* Sets the last entry's now and identity (NULL: none). */
int fo_store_result_entry_meta(fo_store_result *r, int64_t now_ms, const char *identity,
                               size_t identity_len);
int fo_store_result_add_rules(fo_store_result *r, uint64_t from, uint32_t len, const void *orig,
                              size_t orig_size, const char *audit, size_t audit_len);
int fo_store_result_add_client(fo_store_result *r, const char *client, size_t client_len,
                               uint64_t seq, uint64_t count);

/* snprintf into msg, never overflowing; returns `code` for `return fo_store_fail(...)`.
 * Detail for the operator only (a file path) goes last, in brackets after a space
 * ("... (SQLITE_FULL/13) [/data/flushout.db]"): fo_store_status.reason leaves it out, and
 * that is what clients are told. */
int fo_store_fail(int code, char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A read job (store_read.c), run on the worker thread between read_begin and read_end. */
typedef enum fo_store_read_kind {
    FO_STORE_READ_LOAD,   /* fo_store_load: a = history_from */
    FO_STORE_READ_LOG,    /* fo_store_read_log: [a, b) */
    FO_STORE_READ_AT,     /* fo_store_read_state_at: a = at */
    FO_STORE_READ_AUDIT,  /* fo_store_read_audit: from a, at most b rows */
    FO_STORE_READ_REPLAY, /* fo_store_read_replay */
} fo_store_read_kind;

typedef struct fo_store_read_req {
    const fo_store_backend *be;
    void *impl;
    fo_store_read_kind kind;
    const char *model;
    uint64_t a, b;
    char *msg; /* the reason of a failure */
    size_t msglen;
} fo_store_read_req;

/* Fills r as the job's kind asks (store.h says what each answers). 0, or an error code with
 * the reason in q->msg. */
int fo_store_read_run(const fo_store_read_req *q, fo_store_result *r);

#endif
