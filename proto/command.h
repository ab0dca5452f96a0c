/* command.h - Flushout's data-only types: commands, completions, batches, errors, syncs
 * and apply results, with their field names from the reference implementation.
 *
 * These structs do not own memory: everything they point to lives in an arena chosen by
 * whoever built them (a decoded frame's arena, a result arena, a history store). */
#ifndef FO_COMMAND_H
#define FO_COMMAND_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/value.h"

typedef enum fo_action {
    FO_ACTION_NONE = 0,
    FO_CREATE = 1,
    FO_UPDATE = 2,
    FO_DELETE = 3,
} fo_action;

/* "create", "update", "delete" (the wire's spelling; the reference's "detete" is only
 * accepted on input, see fo_action_parse). */
const char *fo_action_name(fo_action a);
fo_action fo_action_parse(const char *s, size_t len);

typedef struct fo_path {
    const fo_key *seg;
    uint32_t len;
} fo_path;

typedef struct fo_command {
    fo_action action;
    fo_path path;                  /* absent on the wire = empty */
    const fo_value *props;         /* NULL when absent; a FO_MAP otherwise */
    const fo_value *parent_default; /* create only; NULL when absent */
} fo_command;

typedef struct fo_completion {
    fo_command command;
    fo_key created_id; /* FO_KEY_NONE when absent */
} fo_completion;

typedef struct fo_batch {
    uint64_t from;
    uint32_t len;
    const fo_completion *items;
} fo_batch;

typedef struct fo_completion_error {
    fo_action action;
    fo_path path;
    const char *message; /* NUL-terminated */
} fo_completion_error;

/* One mappedPaths entry: `from` (a path joined with ',' in the wire form) maps to `to`. */
typedef struct fo_path_mapping {
    fo_path from;
    fo_path to;
} fo_path_mapping;

typedef struct fo_snapshot {
    uint64_t command_count;
    const fo_value *document; /* a FO_MAP */
} fo_snapshot;

typedef enum fo_sync_kind {
    FO_SYNC_NONE = 0,
    FO_SYNC_PARTIAL, /* isPartial: true,  diff */
    FO_SYNC_FULL,    /* isPartial: false, latest */
} fo_sync_kind;

typedef struct fo_sync {
    fo_sync_kind kind;
    fo_batch diff;       /* FO_SYNC_PARTIAL */
    /* FO_SYNC_PARTIAL from a master with history_by_ref: the first `external` completions
     * of diff (its history part) are not in diff.items, which holds the other
     * diff.len - external; whoever encodes the sync supplies their encoded bytes
     * (fo_msg.ext_parts). 0 otherwise. */
    uint32_t external;
    fo_snapshot latest;  /* FO_SYNC_FULL */
    bool has_mapped;     /* mappedPaths present (a master always sets it) */
    uint32_t mapped_len;
    const fo_path_mapping *mapped;
} fo_sync;

typedef struct fo_apply_result {
    fo_batch applied;
    fo_sync sync;        /* kind FO_SYNC_NONE when absent */
    uint32_t errors_len; /* `errors` is absent on the wire when 0 */
    const fo_completion_error *errors;
} fo_apply_result;

/* Path helpers. fo_path_join writes segments joined by ',' (the reference's
 * Array.toString, the key form of mappedPaths) into `a`. */
char *fo_path_join(fo_arena *a, fo_path p, size_t *len);
bool fo_path_eq(fo_path a, fo_path b);
/* Copies segments (keys are copied too) into `a`; 0 or FO_ENOMEM. */
int fo_path_copy(fo_arena *a, fo_path p, fo_path *out);
/* Deep copy of a command (props and parentDefault included). */
int fo_command_copy(fo_arena *a, const fo_command *c, fo_command *out);

#endif
