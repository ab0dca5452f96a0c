/* store_nats_impl.h - what the files of the NATS backend share (store_nats.c: commit, open
 * and close; store_nats_read.c: the read view and the log's start). Private to them.
 *
 * Retention. A snapshot write that carries the model's exactly-once table (the hub sends it
 * on nats, fo_store_wants_clients) can start the model's log: everything before the record
 * holding it may go. When a commit's retention cut passes such a snapshot, the commit purges
 * the model's subject below that record (JetStream purge, filtered by subject, up to a
 * sequence), so every subject begins at its base snapshot and a cold load reads that
 * snapshot and the tail after it, no more than --history plus --snapshot-every commands.
 * A reader that meets a record not continuing its view (the first one left, or a purge that
 * ran while it read) starts the view again at that record's snapshot. */
#ifndef FO_STORE_NATS_IMPL_H
#define FO_STORE_NATS_IMPL_H

#include <nats/nats.h>
#include <pthread.h>

#include "hub/store_backend.h"
#include "hub/store_nats.h"
#include "hub/strmap.h"

#define FO_NATS_WAIT_MS 5000 /* an API request, a publish ack, the next message of a read */
#define FO_NATS_MAX_MARKS 64 /* snapshot marks kept per model (oldest dropped) */

/* A record holding a snapshot with its exactly-once table: where the log may start. */
typedef struct fo_nats_mark {
    uint64_t count; /* the snapshot's command count */
    uint64_t seq;   /* the record's stream sequence */
} fo_nats_mark;

/* Where a model's log ends, as this store last saw it: the fence of its next append. */
typedef struct fo_nats_fence {
    uint64_t seq;   /* stream sequence of the model's last record; 0: none yet */
    uint64_t count; /* the model's command count after it */
    /* An append of the model failed: the commits queued behind it were applied on top of
     * it, so none is appended (even one that happens to continue the log's real end) until
     * a read of the model (the hub's reload) sets the fence again. */
    bool failed;
    /* The marks this store appended or read, oldest first (malloc'd). */
    fo_nats_mark *marks;
    size_t nmarks;
    uint64_t start; /* the log's first record as last known: nothing below it to purge */
} fo_nats_fence;

/* One record in flight. The ack handler (a nats.c thread) fills it under nb->mu. */
typedef struct fo_nats_slot {
    natsMsg *msg; /* identifies the message; nats.c owns it until the handler */
    bool done;
    uint64_t seq;
    natsStatus st;
    jsErrCode jerr;
    char text[160];
} fo_nats_slot;

typedef struct fo_nats_be {
    natsConnection *nc;
    jsCtx *js;
    char where[200]; /* the URLs, for messages */
    fo_strmap fences; /* model -> fo_nats_fence */
    /* the read view: the model's records replayed into a memory backend */
    void *view;
    char view_model[FO_STORE_MODEL_MAX + 1];
    pthread_mutex_t mu;
    fo_nats_slot *slots;
    size_t nslots;
    /* fo_store_options.log_end: where a follower of the stream saw a model's log end */
    bool (*log_end)(void *ctx, const char *model, uint64_t *seq, uint64_t *count);
    void *log_end_ctx;
} fo_nats_be;

/* The model's subject into out[0..cap); -1 for a bad name. */
int fo_nats_subject_of(const char *model, char *out, size_t cap);

/* The last record of a model's subject: *seq (0 when the subject is empty) and, when f is
 * not NULL, its seq and count (the rest of *f is left alone). 0 or an error with msg. */
int fo_nats_read_last(fo_nats_be *nb, const char *model, const char *subject, uint64_t *seq,
                      fo_nats_fence *f, char *msg, size_t ml);

/* The model's fence, NULL when none is kept. fo_nats_fence_put makes one (zeroed) when
 * missing: NULL when out of memory. */
fo_nats_fence *fo_nats_fence_get(fo_nats_be *nb, const char *model);
fo_nats_fence *fo_nats_fence_put(fo_nats_be *nb, const char *model);
void fo_nats_fences_free(fo_nats_be *nb);
/* Past 100,000 fences, drops all but the failed ones (the others are read again when
 * needed). Only between jobs' uses of fence pointers: at the start of a commit or read. */
void fo_nats_fences_trim(fo_nats_be *nb);

/* Appends a mark (count, seq) to f, dropping the oldest past FO_NATS_MAX_MARKS and any
 * with a count not below a newer one's. Out of memory: not kept (a purge then waits). */
void fo_nats_mark_add(fo_nats_fence *f, uint64_t count, uint64_t seq);

/* The read primitives of fo_store_backend_nats (store_nats_read.c) and the view's end. */
int fo_nats_read_begin(void *impl, char *msg, size_t ml);
void fo_nats_read_end(void *impl);
void fo_nats_drop_view(fo_nats_be *nb);
int fo_nats_snapshot_le(void *impl, const char *model, uint64_t at, fo_store_result *r,
                        bool *found, uint64_t *count, char *msg, size_t ml);
int fo_nats_log_cover(void *impl, const char *model, uint64_t x, bool *found,
                      fo_store_span *out, char *msg, size_t ml);
int fo_nats_log_last(void *impl, const char *model, bool *found, fo_store_span *out,
                     char *msg, size_t ml);
int fo_nats_log_scan(void *impl, const char *model, uint64_t lo, uint64_t hi,
                     fo_store_result *r, char *msg, size_t ml);
int fo_nats_clients(void *impl, const char *model, fo_store_result *r, char *msg, size_t ml);
int fo_nats_rules_scan(void *impl, const char *model, uint64_t lo, uint32_t limit,
                       fo_store_result *r, char *msg, size_t ml);

#endif
