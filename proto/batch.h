/* batch.h - applying a list of completions to a document: path mapping, interceptors,
 * created-ID remapping and the rebuilt batch (the reference's applyCompletions). Used
 * by the master for flushes and by the proxy when rebasing its queue. */
#ifndef FO_BATCH_H
#define FO_BATCH_H

#include "proto/command.h"
#include "proto/doc.h"
#include "proto/pathmap.h"

typedef enum fo_intercept_kind {
    FO_INTERCEPT_ACCEPT = 0,  /* apply the command as is */
    FO_INTERCEPT_REJECT,      /* the command fails with `rejection` */
    FO_INTERCEPT_REPLACE,     /* create/update: apply with `new_props` instead */
} fo_intercept_kind;

typedef struct fo_interception {
    fo_intercept_kind kind;
    const char *rejection;     /* REJECT: NUL-terminated, must live as long as the result */
    const fo_value *new_props; /* REPLACE: a FO_MAP, must live as long as the result */
    fo_key proposed_id;        /* input: the completion's createdId (FO_KEY_NONE: none) */
    /* REPLACE: keep the command's parentDefault in the rewritten command. The reference
     * keeps only action, path and the new props (false, its behaviour); the hub's Lua rules
     * set it, so that a rule stamping a create does not break the create of a missing
     * container (README: writing a rule). */
    bool keep_parent_default;
} fo_interception;

/* Called before each command is applied. `document` is the current root (read only),
 * `cmd` the command after path mapping, `context` the caller's per-batch context, `arena`
 * the result arena (allocate rejection strings and new props there). Leave *out as it
 * comes (accept; `out->proposed_id` is set on the way in) to accept. Return 0, or a
 * negative FO_E* to abort the whole apply with that error.
 * REPLACE on a delete is treated as a rejection (the reference fails such a command too,
 * with an undefined message). */
typedef int (*fo_interceptor_fn)(void *data, const fo_value *document, const fo_command *cmd,
                                 void *context, fo_arena *arena, fo_interception *out);

typedef struct fo_interceptor {
    fo_interceptor_fn fn; /* NULL: no interceptor */
    void *data;
} fo_interceptor;

typedef struct fo_batch_outcome {
    bool changed;              /* some completion was modified or failed */
    fo_batch rebuilt;          /* when changed: the completions as applied */
    uint32_t errors_len;
    fo_completion_error *errors;
} fo_batch_outcome;

/* Applies `items` in order to `d` through `pm`, calling `ic` when given. Everything the
 * outcome points to is in `arena` or borrowed from `items`. Returns 0 or a negative
 * FO_E* (FO_ENOMEM, or an interceptor's error). */
int fo_batch_apply(fo_doc *d, const fo_completion *items, uint32_t n, fo_pathmap *pm,
                   const fo_interceptor *ic, void *context, fo_arena *arena,
                   fo_batch_outcome *out);

#endif
