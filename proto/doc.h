/* doc.h - a Flushout model: a document tree with its command count, and the rules for
 * applying one command to it (the reference's `Inner`).
 *
 * The document owns an arena. Values replaced or deleted by commands become dead bytes
 * in it; when they pass half of the arena, fo_doc_maybe_compact copies the live tree
 * into a new arena (the cost is amortised over the commands that made the garbage).
 * Keys other than integers are interned per document, so `title` costs its bytes once. */
#ifndef FO_DOC_H
#define FO_DOC_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/command.h"
#include "proto/value.h"

typedef enum fo_id_mode {
    FO_IDS_RANDOM = 0,  /* decimal integer in [0, 2^53), from a seeded xoshiro256** */
    FO_IDS_SEQUENTIAL,  /* commandCount + 1 + attempt: the reference's test mode */
} fo_id_mode;

/* Limits enforced when applying commands, so that a document always fits in a frame the
 * wire decoder accepts. */
typedef struct fo_doc_limits {
    uint32_t max_depth; /* maps and arrays nested in the document (root = 1) */
} fo_doc_limits;

#define FO_DOC_DEFAULT_MAX_DEPTH 24

typedef struct fo_doc fo_doc;

/* A new empty document ({commandCount: 0, document: {}}). NULL on out-of-memory. */
fo_doc *fo_doc_new(fo_id_mode mode);
/* A document holding a deep copy of `s`. NULL on out-of-memory or when `s->document` is
 * not a map. */
fo_doc *fo_doc_new_from(const fo_snapshot *s, fo_id_mode mode);
/* A deep copy of another document (same count, same mode, fresh RNG). */
fo_doc *fo_doc_clone(const fo_doc *d);
void fo_doc_free(fo_doc *d); /* NULL is a no-op */

uint64_t fo_doc_count(const fo_doc *d);
/* The root map, borrowed: valid until the next apply or compaction. */
const fo_value *fo_doc_root(const fo_doc *d);
/* {commandCount, document} borrowing the root as above. */
fo_snapshot fo_doc_snapshot(const fo_doc *d);
void fo_doc_set_limits(fo_doc *d, const fo_doc_limits *l);
/* Seeds the random ID generator (tests that need reproducible random IDs). */
void fo_doc_seed(fo_doc *d, uint64_t seed);

/* Result of applying one command. */
typedef struct fo_doc_result {
    bool ok;
    fo_key created_id;     /* create: the key used (lives in the document's arena) */
    const char *error;     /* failure: message in the caller's arena */
} fo_doc_result;

/* Applies one command (the reference's Inner.apply). `proposed` is tried first as the
 * created ID. On success the count grows by one. Failure messages ("No object at document
 * path a,b") are allocated in `msg_arena`. Returns 0 or FO_ENOMEM; an FO_ENOMEM may leave
 * the document partially changed only within the command's own target. */
int fo_doc_apply(fo_doc *d, const fo_command *c, fo_key proposed, fo_arena *msg_arena,
                 fo_doc_result *out);

/* Compacts when dead bytes exceed half of the arena. Returns 0 or FO_ENOMEM (the document
 * is unchanged then). Call between applies, never while holding borrowed pointers. */
int fo_doc_maybe_compact(fo_doc *d);
int fo_doc_compact(fo_doc *d);

/* Memory accounting for benchmarks and the hub's memory budget. */
typedef struct fo_doc_stats {
    size_t arena_bytes;    /* bytes obtained from malloc */
    size_t used_bytes;     /* bytes handed out */
    size_t dead_bytes;     /* bytes known to be unreachable */
    size_t interned_keys;
} fo_doc_stats;
void fo_doc_stats_get(const fo_doc *d, fo_doc_stats *s);

#endif
