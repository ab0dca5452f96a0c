/* wire_decode.c - the decoding half of wire.h (encoding is wire.c): MessagePack bytes
 * straight into fo_msg / fo_batch / fo_value in the caller's arena, with no object tree
 * and no allocation outside the arena.
 *
 * Two passes share the reader of wire_read.h and the Flushout types of wire_fields.c:
 *  1. The fast pass reads the frame once, in byte order, checking every bound and limit
 *     as it goes (truncation, max_str, max_elems, depth, max_total, and "every promised
 *     item needs a byte", so that a short frame claiming 10^5 elements allocates
 *     nothing). Each struct map's fields are converted where they stand; unknown and
 *     irrelevant values are skipped with the same checks. Any failure at all just ends
 *     the pass: its result would not be the exact one.
 *  2. On failure only, the exact pass: fo_wire_scan() (wire_scan.c) first, so that a
 *     structural error (FO_EAGAIN, FO_EPROTO, FO_ELIMIT) anywhere in the frame wins, as
 *     it always has; then a conversion that locates each struct's fields before
 *     converting them in a fixed order (`rid`, `t`, `model` first), so that the first
 *     error reported and its path do not depend on key order, and a repeated key's last
 *     value wins.
 * A frame the fast pass accepts is one the exact pass would accept with the same
 * result: the fast pass checks every value the exact pass checks (every occurrence of a
 * repeated key, too), and nil clears an optional field to what it was before.
 * tests/fuzz/fuzz_wire.c checks that the two agree with the previous, msgpack-c based,
 * decoder on every input it finds. */
#include <stddef.h>
#include <string.h>

#include "proto/wire.h"
#include "proto/wire_fields.h"
#include "proto/wire_read.h"
#include "proto/wire_scan.h"

/* ---- messages -------------------------------------------------------------------------- */

/* clang-format off */
enum {
    M_T, M_RID, M_MODEL, M_CLIENT, M_TOKEN, M_FROM, M_TO, M_AT, M_SEQ, M_BATCH, M_SNAPSHOT,
    M_DIFF, M_RESULT, M_STATE, M_SESSION, M_SERVER, M_MAXFRAME, M_CODE, M_MESSAGE, M_RETRY,
    M_COUNT
};
/* clang-format on */

static const char *const msg_names[M_COUNT] = {
    "t",        "rid",    "model", "client",  "token",   "from",     "to",
    "at",       "seq",    "batch", "snapshot", "diff",   "result",   "state",
    "session",  "server", "maxFrame", "code",  "message", "retryAfterMs",
};
static const uint8_t msg_name_len[M_COUNT] = {1, 3, 5, 6, 5, 4, 2, 2, 3, 5, 8, 4, 6, 5, 7, 6, 8, 4, 7, 12};

static int msg_field_find(const fo_mp_item *k)
{
    switch (k->n) {
    case 1: return FO_WIRE_KEY_IS(k, "t") ? M_T : M_COUNT;
    case 2: return FO_WIRE_KEY_IS(k, "to") ? M_TO : FO_WIRE_KEY_IS(k, "at") ? M_AT : M_COUNT;
    case 3: return FO_WIRE_KEY_IS(k, "rid") ? M_RID : FO_WIRE_KEY_IS(k, "seq") ? M_SEQ : M_COUNT;
    case 4:
        return FO_WIRE_KEY_IS(k, "from")   ? M_FROM
               : FO_WIRE_KEY_IS(k, "diff") ? M_DIFF
               : FO_WIRE_KEY_IS(k, "code") ? M_CODE
                                   : M_COUNT;
    case 5:
        return FO_WIRE_KEY_IS(k, "model")   ? M_MODEL
               : FO_WIRE_KEY_IS(k, "batch") ? M_BATCH
               : FO_WIRE_KEY_IS(k, "token") ? M_TOKEN
               : FO_WIRE_KEY_IS(k, "state") ? M_STATE
                                    : M_COUNT;
    case 6:
        return FO_WIRE_KEY_IS(k, "client")   ? M_CLIENT
               : FO_WIRE_KEY_IS(k, "result") ? M_RESULT
               : FO_WIRE_KEY_IS(k, "server") ? M_SERVER
                                     : M_COUNT;
    case 7: return FO_WIRE_KEY_IS(k, "session") ? M_SESSION : FO_WIRE_KEY_IS(k, "message") ? M_MESSAGE : M_COUNT;
    case 8: return FO_WIRE_KEY_IS(k, "snapshot") ? M_SNAPSHOT : FO_WIRE_KEY_IS(k, "maxFrame") ? M_MAXFRAME : M_COUNT;
    case 12: return FO_WIRE_KEY_IS(k, "retryAfterMs") ? M_RETRY : M_COUNT;
    default: return M_COUNT;
    }
}

/* [A-Za-z0-9._:-], the bytes of a model name (bytes >= 0x80: 0). */
static const uint8_t model_char[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
};

static int c_model(fo_mp_dec *d, void *out)
{
    fo_msg *m = out;
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_STR)
        return fo_mp_fail(d, FO_EINVAL, "expected str");
    if (it.n < 1 || it.n > 200)
        return fo_mp_fail(d, FO_EINVAL, "model name must be 1-200 bytes");
    for (uint32_t i = 0; i < it.n; i++) {
        if (!model_char[(unsigned char)it.s[i]])
            return fo_mp_fail(d, FO_EINVAL, "model name allows only [A-Za-z0-9._:-]");
    }
    char *s = fo_arena_strndup(d->a, it.s, it.n);
    if (!s)
        return fo_mp_nomem(d);
    m->model = s;
    m->model_len = it.n;
    return 0;
}

/* A NUL would make two client ids compare equal as C strings (exactly-once keys on it). */
static int c_client(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t == FO_MP_STR && (it.n < 1 || it.n > 64 || memchr(it.s, 0, it.n)))
        return fo_mp_fail(d, FO_EINVAL, "client id must be 1-64 bytes, no NUL");
    if ((rc = fo_mp_check_str(d, &it)) != 0)
        return rc;
    char *s = fo_arena_strndup(d->a, it.s, it.n);
    if (!s)
        return fo_mp_nomem(d);
    *(const char **)out = s;
    return 0;
}

/* `state`: a map, or nil to clear it; the key itself is required. */
static int c_state(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t == FO_MP_NIL) {
        *(const fo_value **)out = NULL;
        return 0;
    }
    if (it.t != FO_MP_MAP)
        return fo_mp_fail(d, FO_EINVAL, "expected map or nil");
    return fo_wire_map_node(d, &it, out);
}

static int c_code(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_wire_read_str(d, &it);
    if (rc)
        return rc;
    fo_error_code c = fo_error_code_parse(it.s, it.n);
    *(fo_error_code *)out = c;
    return c ? 0 : fo_mp_fail(d, FO_EINVAL, "unknown error code");
}

static int c_type(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_STR)
        return fo_mp_fail(d, FO_EINVAL, "expected str");
    /* "presence" is the request's spelling; the event is told apart by its `session`. */
    fo_msg_type t = FO_MSG_NONE;
    switch (it.n) {
    case 2: t = FO_WIRE_KEY_IS(&it, "ok") ? FO_MSG_OK : t; break;
    case 3:
        t = FO_WIRE_KEY_IS(&it, "sub")   ? FO_MSG_SUB
            : FO_WIRE_KEY_IS(&it, "get") ? FO_MSG_GET
            : FO_WIRE_KEY_IS(&it, "ack") ? FO_MSG_ACK
                                 : t;
        break;
    case 4:
        t = FO_WIRE_KEY_IS(&it, "snap")   ? FO_MSG_SNAP
            : FO_WIRE_KEY_IS(&it, "diff") ? FO_MSG_DIFF
            : FO_WIRE_KEY_IS(&it, "push") ? FO_MSG_PUSH
                                  : t;
        break;
    case 5:
        t = FO_WIRE_KEY_IS(&it, "flush")   ? FO_MSG_FLUSH
            : FO_WIRE_KEY_IS(&it, "hello") ? FO_MSG_HELLO
            : FO_WIRE_KEY_IS(&it, "unsub") ? FO_MSG_UNSUB
            : FO_WIRE_KEY_IS(&it, "error") ? FO_MSG_ERROR
                                   : t;
        break;
    case 7: t = FO_WIRE_KEY_IS(&it, "history") ? FO_MSG_HISTORY : FO_WIRE_KEY_IS(&it, "welcome") ? FO_MSG_WELCOME : t; break;
    case 8: t = FO_WIRE_KEY_IS(&it, "presence") ? FO_MSG_PRESENCE : t; break;
    }
    if (t != FO_MSG_NONE) {
        *(fo_msg_type *)out = t;
        return 0;
    }
    return fo_mp_fail(d, FO_EINVAL, "unknown message type");
}

/* How each field of a message is read: its converter, where it goes and, for an
 * optional field, the flag that says it was there. */
typedef struct msg_field {
    fo_wire_conv_fn fn;
    size_t off;
    ptrdiff_t has; /* offset of the has_ flag, -1 when none */
} msg_field;

/* clang-format off */
#define MF(fn, member, hasm) {fn, offsetof(fo_msg, member), hasm}
#define NOHAS (-1)
#define HAS(m) ((ptrdiff_t)offsetof(fo_msg, m))
static const msg_field msg_fields[M_COUNT] = {
    [M_T] = MF(c_type, type, NOHAS),          [M_RID] = MF(fo_wire_conv_uint, rid, HAS(has_rid)),
    [M_MODEL] = {c_model, 0, NOHAS},          [M_CLIENT] = MF(c_client, client, NOHAS),
    [M_TOKEN] = MF(fo_wire_conv_str, token, NOHAS),      [M_FROM] = MF(fo_wire_conv_uint, from, HAS(has_from)),
    [M_TO] = MF(fo_wire_conv_uint, to, HAS(has_to)),     [M_AT] = MF(fo_wire_conv_uint, at, HAS(has_at)),
    [M_SEQ] = MF(fo_wire_conv_uint, seq, NOHAS),         [M_BATCH] = MF(fo_wire_conv_batch, batch, NOHAS),
    [M_SNAPSHOT] = MF(fo_wire_conv_snapshot, snapshot, NOHAS), [M_DIFF] = MF(fo_wire_conv_batch, batch, NOHAS),
    [M_RESULT] = MF(fo_wire_conv_result, result, NOHAS), [M_STATE] = MF(c_state, state, NOHAS),
    [M_SESSION] = MF(fo_wire_conv_str, session, NOHAS),  [M_SERVER] = MF(fo_wire_conv_str, server, NOHAS),
    [M_MAXFRAME] = MF(fo_wire_conv_uint, max_frame, NOHAS), [M_CODE] = MF(c_code, code, NOHAS),
    [M_MESSAGE] = MF(fo_wire_conv_str, message, NOHAS),
    [M_RETRY] = MF(fo_wire_conv_uint, retry_after_ms, HAS(has_retry_after)),
};
/* clang-format on */

#define B(f) (1u << (f))

/* The fields a message type reads after `rid` and `t`, and those it requires. A request
 * `presence` also looks at `session`: a hub-sent presence names the session it comes
 * from (FO_MSG_PRESENCE_EVT). */
static void msg_shape(fo_msg_type t, uint32_t *reads, uint32_t *reqs)
{
    uint32_t r = 0, q = 0;
    switch (t) {
    case FO_MSG_HELLO: q = B(M_CLIENT), r = B(M_TOKEN); break;
    case FO_MSG_SUB: q = B(M_MODEL), r = B(M_FROM); break;
    case FO_MSG_UNSUB: q = B(M_MODEL); break;
    case FO_MSG_FLUSH: q = B(M_MODEL) | B(M_SEQ) | B(M_BATCH); break;
    case FO_MSG_ACK: q = B(M_MODEL) | B(M_SEQ) | B(M_RESULT); break;
    case FO_MSG_GET: q = B(M_MODEL), r = B(M_AT); break;
    case FO_MSG_HISTORY: q = B(M_MODEL) | B(M_FROM), r = B(M_TO); break;
    case FO_MSG_PRESENCE: q = B(M_MODEL) | B(M_STATE), r = B(M_SESSION); break;
    case FO_MSG_PRESENCE_EVT: q = B(M_MODEL) | B(M_STATE) | B(M_SESSION); break;
    case FO_MSG_WELCOME: q = B(M_SESSION) | B(M_SERVER) | B(M_MAXFRAME); break;
    case FO_MSG_SNAP: q = B(M_MODEL) | B(M_SNAPSHOT); break;
    case FO_MSG_DIFF:
    case FO_MSG_PUSH: q = B(M_MODEL) | B(M_DIFF); break;
    case FO_MSG_ERROR: q = B(M_CODE) | B(M_MESSAGE), r = B(M_MODEL) | B(M_RETRY); break;
    case FO_MSG_OK:
    case FO_MSG_NONE: break;
    }
    *reads = r | q;
    *reqs = q;
}

/* Converts field j of a message (its value at d->p), with its name on the error path. */
static int msg_conv(fo_mp_dec *d, fo_msg *m, int j)
{
    const msg_field *f = &msg_fields[j];
    fo_mp_push_name(d, msg_names[j], msg_name_len[j]);
    int rc = f->fn(d, j == M_MODEL ? (void *)m : (char *)m + f->off);
    if (rc == 0)
        fo_mp_pop(d);
    return rc;
}

/* Clears an optional field that is nil (or, in the fast pass, nil in a later occurrence):
 * back to what fo_wire_decode's memset made it. */
static void msg_clear(fo_msg *m, int j)
{
    const msg_field *f = &msg_fields[j];
    if (j == M_MODEL) {
        m->model = NULL;
        m->model_len = 0;
        return;
    }
    if (f->has >= 0)
        *(bool *)((char *)m + f->has) = false;
    switch (j) {
    case M_TOKEN:
    case M_SESSION:
    case M_STATE: *(void **)((char *)m + f->off) = NULL; break;
    default: *(uint64_t *)((char *)m + f->off) = 0; break;
    }
}

/* Fast pass: `t` must come before every field but `rid` (fo_wire_encode and the
 * JavaScript client write it first); any other order, or a second `t`, is left to the
 * exact pass. */
static int msg_fast(fo_mp_dec *d, uint32_t pairs, fo_msg *m)
{
    uint32_t reads = 0, reqs = 0, seen = 0;
    bool typed = false;
    int rc;

    d->depth++;
    for (uint32_t i = 0; i < pairs; i++) {
        fo_mp_item k;
        if ((rc = fo_mp_next_key(d, &k)) != 0)
            return rc;
        int j = msg_field_find(&k);
        if (j == M_T) {
            if (typed || (rc = msg_conv(d, m, M_T)) != 0)
                return typed ? FO_EINVAL : rc;
            typed = true;
            msg_shape(m->type, &reads, &reqs);
            continue;
        }
        if (j != M_RID && !(reads & B(j))) {
            if (!typed && j != M_COUNT)
                return FO_EINVAL; /* the exact pass will say */
            if ((rc = fo_mp_skip(d)) != 0)
                return rc;
            continue;
        }
        /* nil: absent, unless the field is required (then its converter refuses it);
         * `state` takes nil as a value. */
        bool optional = j == M_RID || !(reqs & B(j));
        if (optional && fo_mp_take_nil(d)) {
            msg_clear(m, j);
            seen &= ~B(j);
            continue;
        }
        if ((rc = msg_conv(d, m, j)) != 0)
            return rc;
        if (msg_fields[j].has >= 0)
            *(bool *)((char *)m + msg_fields[j].has) = true;
        seen |= B(j);
    }
    d->depth--;
    if (!typed)
        return fo_mp_fail(d, FO_EINVAL, "missing");
    if (m->type == FO_MSG_PRESENCE && (seen & B(M_SESSION)))
        m->type = FO_MSG_PRESENCE_EVT;
    if (m->type == FO_MSG_HISTORY)
        m->has_from = true;
    return (seen & reqs) == reqs ? 0 : fo_mp_fail(d, FO_EINVAL, "missing");
}

/* An entry of msg_exact: field j, required or optional (nil or absent: absent). As it
 * always has, an optional field's has_ flag says the field is there even when its value
 * then fails; a required one's (history's `from`) that it was read. */
static int msg_at(fo_mp_dec *d, fo_msg *m, const uint8_t **slot, int j, bool required)
{
    const msg_field *f = &msg_fields[j];
    bool *has = f->has >= 0 ? (bool *)((char *)m + f->has) : NULL;
    if (!required) {
        bool present = slot[j] && !fo_wire_is_nil(slot[j]);
        if (has)
            *has = present;
        if (!present)
            return 0;
    } else if (!slot[j]) {
        fo_mp_push_name(d, msg_names[j], msg_name_len[j]);
        return fo_mp_fail(d, FO_EINVAL, "missing");
    }
    const uint8_t *resume = d->p;
    d->p = slot[j];
    int rc = msg_conv(d, m, j);
    d->p = resume;
    if (required && has)
        *has = rc == 0;
    return rc;
}

/* Exact pass: `rid`, `t` and, for model-scoped messages, `model` come first, so that a
 * hub can still address its error reply when a later field is bad; then the type's
 * fields in a fixed order. */
static int msg_exact(fo_mp_dec *d, uint32_t pairs, fo_msg *m)
{
    static const fo_wire_field names[M_COUNT] = {
#define N(lit) {lit, sizeof(lit) - 1, 0, 0, 0, 0, NULL}
        N("t"),        N("rid"),    N("model"),  N("client"), N("token"),
        N("from"),     N("to"),     N("at"),     N("seq"),    N("batch"),
        N("snapshot"), N("diff"),   N("result"), N("state"),  N("session"),
        N("server"),   N("maxFrame"), N("code"), N("message"), N("retryAfterMs"),
#undef N
    };
    const uint8_t *slot[M_COUNT];
    uint32_t reads, reqs;
    int rc;

    d->depth++;
    if ((rc = fo_wire_locate(d, pairs, names, M_COUNT, slot)) != 0)
        return rc;
    if ((rc = msg_at(d, m, slot, M_RID, false)) != 0 || (rc = msg_at(d, m, slot, M_T, true)) != 0)
        return rc;
    if (m->type == FO_MSG_PRESENCE && slot[M_SESSION] && !fo_wire_is_nil(slot[M_SESSION]))
        m->type = FO_MSG_PRESENCE_EVT;
    msg_shape(m->type, &reads, &reqs);
    if ((reads & B(M_MODEL)) && (rc = msg_at(d, m, slot, M_MODEL, reqs & B(M_MODEL))) != 0)
        return rc;
    /* The remaining fields in the order each type has always checked them. */
    static const int order[] = {M_CLIENT, M_TOKEN,  M_SEQ,   M_FROM,     M_TO,
                                M_AT,     M_SESSION, M_STATE, M_SERVER,  M_MAXFRAME,
                                M_SNAPSHOT, M_BATCH, M_DIFF, M_RESULT, M_CODE, M_MESSAGE, M_RETRY};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        int j = order[i];
        if (!(reads & B(j)) || (m->type == FO_MSG_PRESENCE && j == M_SESSION))
            continue;
        if ((rc = msg_at(d, m, slot, j, reqs & B(j))) != 0)
            return rc;
    }
    d->depth--;
    return 0;
}

/* ---- entry points ---------------------------------------------------------------------- */

typedef int (*top_fn)(fo_mp_dec *d, void *out);

static int top_msg(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_MAP) /* the fast pass only: fo_wire_scan has refused it otherwise */
        return fo_mp_fail(d, FO_EPROTO, "not a map");
    return d->exact ? msg_exact(d, it.n, out) : msg_fast(d, it.n, out);
}

static int top_value(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    return rc ? rc : fo_mp_conv_item(d, &it, out);
}

static int top_batch(fo_mp_dec *d, void *out)
{
    return fo_wire_conv_batch(d, out);
}

/* `reset` puts *out back as the entry point received it before the exact pass. */
static int decode(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a, bool need_map,
                  top_fn fn, void *out, void (*reset)(void *out), fo_err_info *err)
{
    fo_err_info local;
    fo_wire_limits defaults;
    fo_mp_dec d;
    int rc;

    if (!err)
        err = &local;
    if (!l) {
        fo_wire_limits_default(&defaults);
        l = &defaults;
    }
    if (len <= l->max_frame) {
        fo_mp_init(&d, data, len, l, a, err, false);
        if ((rc = fn(&d, out)) == 0 && d.p == d.end)
            goto done;
        reset(out);
    }
    if ((rc = fo_wire_scan(data, len, l, need_map, err)) != 0)
        return rc;
    fo_mp_init(&d, data, len, l, a, err, true);
    if ((rc = fn(&d, out)) != 0)
        return rc;
done:
    err->code = 0;
    err->pos = 0;
    err->path[0] = '\0';
    err->msg[0] = '\0';
    return 0;
}

static void reset_msg(void *out)
{
    memset(out, 0, sizeof(fo_msg));
}

static void reset_value(void *out)
{
    *(fo_value *)out = fo_value_null();
}

static void reset_batch(void *out)
{
    memset(out, 0, sizeof(fo_batch));
}

int fo_wire_decode(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a, fo_msg *out,
                   fo_err_info *err)
{
    reset_msg(out);
    return decode(data, len, l, a, true, top_msg, out, reset_msg, err);
}

int fo_wire_decode_value(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                         fo_value *out, fo_err_info *err)
{
    reset_value(out);
    return decode(data, len, l, a, false, top_value, out, reset_value, err);
}

int fo_wire_decode_batch(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                         fo_batch *out, fo_err_info *err)
{
    reset_batch(out);
    return decode(data, len, l, a, true, top_batch, out, reset_batch, err);
}
