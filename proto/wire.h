/* wire.h - the MessagePack codec for every message of the wire contract (PROTOCOL.md).
 * Encoding (wire.c) is the only code that includes <msgpack.h>; no msgpack type escapes
 * it. Decoding (wire_decode.c) reads the bytes itself, straight into the caller's arena.
 *
 * Decoding is strict and bounded: the frame must be exactly one MessagePack map, every
 * known field must have its type, and the size, depth, string, element-count and path
 * limits are checked on the raw bytes before anything is allocated for the part that
 * breaks them, so allocations stay within a small multiple of the frame. Strings must
 * be valid UTF-8; nil in an optional field means absent; float32 is accepted and
 * re-emitted as float64. Errors name the offending field, e.g.
 * `batch.completions[3].command.path[1]: expected str`. Unknown keys are ignored. */
#ifndef FO_WIRE_H
#define FO_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/buf.h"
#include "proto/command.h"
#include "proto/error.h"

typedef enum fo_msg_type {
    FO_MSG_NONE = 0,
    /* client -> hub */
    FO_MSG_HELLO,
    FO_MSG_SUB,
    FO_MSG_UNSUB,
    FO_MSG_FLUSH,
    FO_MSG_GET,
    FO_MSG_HISTORY,
    FO_MSG_PRESENCE,
    /* hub -> client */
    FO_MSG_WELCOME,
    FO_MSG_SNAP,
    FO_MSG_DIFF,
    FO_MSG_OK,
    FO_MSG_ACK,
    FO_MSG_PUSH,
    FO_MSG_PRESENCE_EVT, /* `presence` from the hub: {model, session, state} */
    FO_MSG_ERROR,
} fo_msg_type;

/* The `t` field's spelling ("hello", ..., "presence" for both presence forms). */
const char *fo_msg_type_name(fo_msg_type t);

typedef enum fo_error_code {
    FO_ERR_BAD_FRAME = 1,
    FO_ERR_BAD_REQUEST,
    FO_ERR_UNAUTHORIZED,
    FO_ERR_FORBIDDEN,
    FO_ERR_TOO_LARGE,
    FO_ERR_RATE_LIMITED,
    FO_ERR_GONE,
    FO_ERR_OVERLOADED,
    FO_ERR_SHUTTING_DOWN,
    FO_ERR_INTERNAL,
} fo_error_code;
/* "bad_frame", ...; NULL for an unknown code. */
const char *fo_error_code_name(fo_error_code c);
fo_error_code fo_error_code_parse(const char *s, size_t len); /* 0 when unknown */

/* A run of encoded bytes that the encoder copies verbatim. */
typedef struct fo_wire_part {
    const void *p;
    size_t n;
} fo_wire_part;

/* One decoded or to-be-encoded message. Which fields matter depends on `type`; strings
 * are NUL-terminated and, when decoded, live in the decode arena. */
typedef struct fo_msg {
    fo_msg_type type;
    bool has_rid;
    uint64_t rid;
    const char *model;     /* every model-scoped message */
    uint32_t model_len;
    /* hello */
    const char *client;
    const char *token;     /* NULL when absent */
    /* sub (from), get (at), history (from, to) */
    bool has_from, has_to, has_at;
    uint64_t from, to, at;
    /* flush, ack */
    uint64_t seq;
    /* flush.batch, diff.diff, push.diff */
    fo_batch batch;
    /* Encoding only: when non-NULL, raw_batch[0..raw_batch_len) is a CompletionBatch
     * already encoded by fo_wire_encode_batch, written verbatim in place of `batch` (diff,
     * push) or of result.applied (ack, and the sync's diff when that is the applied batch
     * itself). A batch is packed once and its bytes reused (hub: push, ack, store row and
     * history share one encoding). A push's or diff's `diff` is its last field, so those
     * bytes end the frame. Borrowed. */
    const void *raw_batch;
    size_t raw_batch_len;
    /* Encoding only, runs of encoded completions (each from fo_wire_batch_items) whose
     * concatenation is: for an ack, the sync's first result.sync.external completions;
     * for a push or diff whose batch.items is NULL (and no raw_batch), all batch.len
     * completions of its batch. */
    const struct fo_wire_part *ext_parts;
    uint32_t n_ext_parts;
    /* snap.snapshot */
    fo_snapshot snapshot;
    /* ack.result */
    fo_apply_result result;
    /* presence (request and event): NULL for nil */
    const fo_value *state;
    /* welcome, presence event */
    const char *session;
    const char *server;
    uint64_t max_frame;
    /* error */
    fo_error_code code;
    const char *message;
    /* error: `retryAfterMs`, when the request may be sent again as it is after that many
     * milliseconds (rate_limited, overloaded); absent when has_retry_after is false */
    bool has_retry_after;
    uint64_t retry_after_ms;
} fo_msg;

typedef struct fo_wire_limits {
    size_t max_frame;        /* bytes in one frame */
    uint32_t max_depth;      /* nested maps/arrays, the frame's own map included (<= 32) */
    uint32_t max_path;       /* segments in one path */
    uint32_t max_str;        /* bytes in one string or key */
    uint32_t max_elems;      /* entries in one map or array */
    uint32_t max_total;      /* objects in the whole frame */
} fo_wire_limits;

/* Safe defaults: 1 MiB frame, depth 32, path 32, string 64 KiB, 100k elements per
 * container, 1M objects per frame. */
void fo_wire_limits_default(fo_wire_limits *l);

/* Decodes one frame (a complete WebSocket message). `l` NULL means the defaults;
 * max_depth is capped at 32. On success returns 0 and
 * fills *out (allocated in `a`). err->code holds the returned value. After FO_EINVAL,
 * out->type, has_rid/rid and model are set when they could be read, so an error reply
 * can be addressed. A complete message that returns FO_EAGAIN is truncated: answer it
 * with bad_frame.
 * FO_EAGAIN: the bytes are a proper prefix of a MessagePack value; FO_EPROTO: not a
 * MessagePack map, or trailing bytes (code bad_frame); FO_EINVAL: a field is missing or
 * has the wrong type (code bad_request; err->path names it); FO_ELIMIT: a limit was
 * exceeded (code too_large); FO_ENOMEM. `err` may be NULL. */
int fo_wire_decode(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                   fo_msg *out, fo_err_info *err);

/* Best effort on a frame that will not be decoded (too large, over a limit, or cut
 * short): finds the top-level `rid` (uint) and `model` (str shorter than model_cap) so
 * that the error reply can be addressed. Never reads past len; allocates nothing. */
void fo_wire_peek(const void *data, size_t len, bool *has_rid, uint64_t *rid, char *model,
                  size_t model_cap);

/* Appends the encoding of *m to `out`. 0 or FO_ENOMEM / FO_EINVAL (unknown type). */
int fo_wire_encode(const fo_msg *m, fo_buf *out);

/* The completions of an encoded CompletionBatch p[0, n), as fo_wire_encode_batch writes it
 * ({from, completions}, completions last), from the `skip`-th on: *items[0, *len) holds
 * *count encoded CommandCompletion values back to back, ready to splice (ext_parts). With
 * `check`, every item is read through (bytes from elsewhere, e.g. a store row); otherwise
 * only the skipped ones. 0, FO_EPROTO when the bytes are not such a batch, FO_ELIMIT
 * when skip > its completions. */
int fo_wire_batch_items(const void *p, size_t n, uint32_t skip, bool check, const void **items,
                        size_t *len, uint32_t *count);

/* Standalone values and batches (the store keeps snapshots and log entries in this form). */
int fo_wire_encode_value(const fo_value *v, fo_buf *out);
int fo_wire_decode_value(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                         fo_value *out, fo_err_info *err);
int fo_wire_encode_batch(const fo_batch *b, fo_buf *out);
int fo_wire_decode_batch(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                         fo_batch *out, fo_err_info *err);

#endif
