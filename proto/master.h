/* master.h - the authoritative model of one document: applies flushed batches in order
 * and answers each with an ApplyResult carrying the sync a proxy needs (the reference's
 * Master, made synchronous: the caller fetches history before calling). */
#ifndef FO_MASTER_H
#define FO_MASTER_H

#include "proto/batch.h"
#include "proto/doc.h"

/* History source: fill *out with the completions that took the model from `from` to `to`
 * (out->from = from, out->len = to - from), allocated in `arena` or borrowed from
 * storage that outlives the result. Return 0 when covered; any other return (or a
 * different length) means "not available" and yields a full sync. */
typedef int (*fo_history_fn)(void *ctx, uint64_t from, uint64_t to, fo_arena *arena,
                             fo_batch *out);

typedef struct fo_master_config {
    fo_id_mode ids;
    fo_interceptor interceptor;
    fo_history_fn history; /* NULL: no history, stale flushes get full syncs */
    void *history_ctx;
    /* The history source is asked only whether it covers [from, to): it is called with
     * arena NULL and answers 0 with out->len = to - from (items NULL) when it does. A
     * partial sync then leaves those completions out of diff.items (sync.external): the
     * caller splices their encoded bytes in, so nothing is decoded (the hub). */
    bool history_by_ref;
} fo_master_config;

typedef struct fo_master fo_master;

/* A master over a deep copy of `s` (NULL: an empty model). NULL on out-of-memory. */
fo_master *fo_master_new(const fo_snapshot *s, const fo_master_config *cfg);
void fo_master_free(fo_master *m);

/* The live document. Borrowed: valid until the next apply. */
fo_doc *fo_master_doc(fo_master *m);
fo_snapshot fo_master_snapshot(const fo_master *m);

/* Applies a batch. The result is allocated in `arena` or borrows from `b` and from the
 * master's document (a full sync's `latest`): encode or copy it before the next apply.
 * Returns 0, FO_ENOMEM, or an interceptor's error (commands applied before the failure
 * stay applied; the hub treats that as fatal for the model). */
int fo_master_apply(fo_master *m, const fo_batch *b, void *context, fo_arena *arena,
                    fo_apply_result *out);

#endif
