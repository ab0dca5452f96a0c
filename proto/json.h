/* json.h - JSON export and import of values, snapshots, batches and apply results, for
 * the CLI, the hub's HTTP endpoints and the tests. Import is built on jansson (Debian's
 * libjansson); export writes the text directly.
 *
 * Numbers: JSON has one number type. On import an integer literal (no '.', no exponent)
 * that fits int64 becomes FO_INT, one in (INT64_MAX, UINT64_MAX] FO_UINT, any other
 * integer literal and every literal with a fraction or exponent FO_FLOAT. On export
 * FO_INT and FO_UINT are written as integer literals, FO_FLOAT with the shortest of
 * %.15g/%.16g/%.17g that reads back to the same double, always with a '.' or an exponent
 * so that it reads back as FO_FLOAT (1.0 stays 1.0). NaN and infinities, which JSON
 * cannot express, are written as null (what JavaScript's JSON.stringify does).
 *
 * Strings: export escapes '"', '\\' and control characters and writes other UTF-8 as is;
 * bytes that are not valid UTF-8 (possible in values that came over the wire) are written
 * as \ufffd. Import accepts "\u0000" inside string values but not inside object keys
 * (jansson refuses those).
 *
 * Import is strict: one JSON text, nothing after it but whitespace; duplicate object keys
 * are an error (JSON leaves their meaning open); objects keep their key order. The
 * caller bounds the text's size; depth is bounded here (max_depth, FO_JSON_MAX_DEPTH for
 * the typed readers) before any fo_value is built. */
#ifndef FO_JSON_H
#define FO_JSON_H

#include "proto/buf.h"
#include "proto/command.h"
#include "proto/error.h"

/* Flags for export. */
enum {
    FO_JSON_COMPACT = 0,
    FO_JSON_PRETTY = 1,    /* two-space indentation, "key": value (JSON.stringify(v, null, 2)) */
    FO_JSON_SORT_KEYS = 2, /* keys in byte order, at every level (tests, diffs) */
};

/* The deepest nesting fo_json_read_value accepts, whatever max_depth says: jansson refuses
 * values 2048 deep (JSON_PARSER_MAX_DEPTH), counting the innermost scalar, so 2047
 * containers is the deepest that always parses. */
#define FO_JSON_DEPTH_CAP 2047

/* Nesting bound of the typed readers below: the wire's depth (a snapshot of a document at
 * FO_DOC_DEFAULT_MAX_DEPTH fits, as does a result carrying it). */
#define FO_JSON_MAX_DEPTH 32

/* Export: each appends one JSON text (no trailing newline) to `out`. Returns 0,
 * FO_ENOMEM (out->len is restored then) or FO_EINVAL (a struct holds an action that has no
 * name, a document that is not a map). Commands are written as {action, path?, props?,
 * parentDefault?} with `path` left out when empty (as the wire codec does); completions {command,
 * createdId?}; batches {from, completions}; snapshots {commandCount, document}; results {applied,
 * sync?, errors?} with sync {isPartial, diff | latest, mappedPaths?}, mappedPaths keyed by the path
 * joined with ',' as the reference does. */
int fo_json_write_value(const fo_value *v, int flags, fo_buf *out);
int fo_json_write_snapshot(const fo_snapshot *s, int flags, fo_buf *out);
int fo_json_write_batch(const fo_batch *b, int flags, fo_buf *out);
int fo_json_write_result(const fo_apply_result *r, int flags, fo_buf *out);
int fo_json_write_command(const fo_command *c, int flags, fo_buf *out);
/* Pieces for writers of other JSON texts: a string (escaped as above, s[0, n)), an integer.
 * 0 or FO_ENOMEM (out->len restored). */
int fo_json_write_str(const char *s, size_t n, fo_buf *out);
int fo_json_write_u64(uint64_t u, fo_buf *out);
int fo_json_write_i64(int64_t i, fo_buf *out);

/* Import. Everything is allocated in `a` (also on failure: destroy or reset the arena).
 * Returns 0; FO_EPROTO for a syntax error (err->msg is jansson's text, err->pos the byte
 * offset where it was noticed); FO_ELIMIT past max_depth or FO_JSON_DEPTH_CAP (err->pos: the
 * byte that opened the container too deep); FO_EINVAL for a wrong shape (err->path names the field as the
 * wire codec does, `completions[3].command.path[1]`, err->msg says what was expected);
 * FO_ENOMEM. `err` may be NULL. */
int fo_json_read_value(const char *text, size_t len, uint32_t max_depth, fo_arena *a, fo_value *out,
                       fo_err_info *err);
/* A command: {"action": ..., "path": [...], "props": {...}, "parentDefault": {...}}.
 * "detete" (the reference's spelling) is accepted for "delete". Unknown keys are ignored. */
int fo_json_read_command(const char *text, size_t len, fo_arena *a, fo_command *out,
                         fo_err_info *err);
int fo_json_read_snapshot(const char *text, size_t len, fo_arena *a, fo_snapshot *out,
                          fo_err_info *err);
int fo_json_read_batch(const char *text, size_t len, fo_arena *a, fo_batch *out, fo_err_info *err);
int fo_json_read_sync(const char *text, size_t len, fo_arena *a, fo_sync *out, fo_err_info *err);
int fo_json_read_result(const char *text, size_t len, fo_arena *a, fo_apply_result *out,
                        fo_err_info *err);

/* The typed readers' second half, for a value already imported (e.g. one field of a larger
 * JSON document, as the differential test reads its trace). The result borrows from `v`
 * (props, documents) and allocates paths and strings in `a`. Returns 0, FO_EINVAL (err as
 * above, the field path relative to `v`) or FO_ENOMEM. */
int fo_json_command_from_value(const fo_value *v, fo_arena *a, fo_command *out, fo_err_info *err);
int fo_json_snapshot_from_value(const fo_value *v, fo_arena *a, fo_snapshot *out, fo_err_info *err);
int fo_json_batch_from_value(const fo_value *v, fo_arena *a, fo_batch *out, fo_err_info *err);
int fo_json_sync_from_value(const fo_value *v, fo_arena *a, fo_sync *out, fo_err_info *err);
int fo_json_result_from_value(const fo_value *v, fo_arena *a, fo_apply_result *out,
                              fo_err_info *err);

#endif
