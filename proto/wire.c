/* wire.c - the encoding half of wire.h, plus the name tables and default limits.
 * The decoding half is wire_decode.c. These two files are the only ones that include
 * <msgpack.h>.
 *
 * Encoding is on the hub's hot path (a push is encoded once per batch), so the packer
 * writes straight into the caller's fo_buf through a callback whose fast path is one
 * capacity check and a memcpy, and an allocation failure is recorded in a sticky flag
 * instead of being checked after every msgpack_pack_* call. */
#include <msgpack.h>
#include <string.h>

#include "proto/wire.h"

/* ---- names ----------------------------------------------------------------------------- */

/* clang-format off */
static const char *const msg_names[] = {
    [FO_MSG_HELLO] = "hello",       [FO_MSG_SUB] = "sub",
    [FO_MSG_UNSUB] = "unsub",       [FO_MSG_FLUSH] = "flush",
    [FO_MSG_GET] = "get",           [FO_MSG_HISTORY] = "history",
    [FO_MSG_PRESENCE] = "presence", [FO_MSG_WELCOME] = "welcome",
    [FO_MSG_SNAP] = "snap",         [FO_MSG_DIFF] = "diff",
    [FO_MSG_OK] = "ok",             [FO_MSG_ACK] = "ack",
    [FO_MSG_PUSH] = "push",         [FO_MSG_PRESENCE_EVT] = "presence",
    [FO_MSG_ERROR] = "error",
};
/* clang-format on */

const char *fo_msg_type_name(fo_msg_type t)
{
    if ((unsigned)t >= sizeof msg_names / sizeof msg_names[0])
        return NULL;
    return msg_names[t];
}

/* clang-format off */
static const char *const code_names[] = {
    [FO_ERR_BAD_FRAME] = "bad_frame",       [FO_ERR_BAD_REQUEST] = "bad_request",
    [FO_ERR_UNAUTHORIZED] = "unauthorized", [FO_ERR_FORBIDDEN] = "forbidden",
    [FO_ERR_TOO_LARGE] = "too_large",       [FO_ERR_RATE_LIMITED] = "rate_limited",
    [FO_ERR_GONE] = "gone",                 [FO_ERR_OVERLOADED] = "overloaded",
    [FO_ERR_SHUTTING_DOWN] = "shutting_down", [FO_ERR_INTERNAL] = "internal",
};
/* clang-format on */

#define N_CODES (sizeof code_names / sizeof code_names[0])

const char *fo_error_code_name(fo_error_code c)
{
    if ((unsigned)c >= N_CODES)
        return NULL;
    return code_names[c];
}

fo_error_code fo_error_code_parse(const char *s, size_t len)
{
    for (unsigned i = 1; i < N_CODES; i++)
        if (strlen(code_names[i]) == len && memcmp(code_names[i], s, len) == 0)
            return (fo_error_code)i;
    return (fo_error_code)0;
}

void fo_wire_limits_default(fo_wire_limits *l)
{
    l->max_frame = 1u << 20;
    l->max_depth = 32;
    l->max_path = 32;
    l->max_str = 64u << 10;
    l->max_elems = 100000;
    l->max_total = 1000000;
}

/* ---- packer plumbing -------------------------------------------------------------------- */

typedef struct enc {
    msgpack_packer pk;
    fo_buf *out;
    int err; /* first error; sticky */
} enc;

static int on_write(void *data, const char *p, size_t n)
{
    enc *e = data;
    fo_buf *b = e->out;

    if (n > b->cap - b->len || !b->base) {
        if (fo_buf_reserve(b, n) != 0) {
            if (!e->err)
                e->err = FO_ENOMEM;
            return -1;
        }
    }
    memcpy(b->base + b->headroom + b->len, p, n);
    b->len += n;
    return 0;
}

static void enc_init(enc *e, fo_buf *out)
{
    e->out = out;
    e->err = 0;
    msgpack_packer_init(&e->pk, e, on_write);
}

/* Undoes a partial encoding so that `out` is left as the caller gave it. */
static int enc_finish(enc *e, size_t start)
{
    if (e->err)
        e->out->len = start;
    return e->err;
}

static void enc_bad(enc *e)
{
    if (!e->err)
        e->err = FO_EINVAL;
}

/* Strings (every key, most values) are the bulk of a frame: they are written straight
 * into the buffer, header and bytes together, without going through the callback. */
static void pack_str(enc *e, const char *s, size_t n)
{
    fo_buf *b = e->out;
    if (n > UINT32_MAX) {
        enc_bad(e);
        return;
    }
    if (!b->base || n + 5 > b->cap - b->len) {
        if (fo_buf_reserve(b, n + 5) != 0) {
            if (!e->err)
                e->err = FO_ENOMEM;
            return;
        }
    }
    unsigned char *p = (unsigned char *)b->base + b->headroom + b->len;
    size_t h;
    if (n < 32) {
        p[0] = (unsigned char)(0xa0 | n);
        h = 1;
    } else if (n < 256) {
        p[0] = 0xd9;
        p[1] = (unsigned char)n;
        h = 2;
    } else if (n < 65536) {
        p[0] = 0xda;
        p[1] = (unsigned char)(n >> 8);
        p[2] = (unsigned char)n;
        h = 3;
    } else {
        p[0] = 0xdb;
        p[1] = (unsigned char)(n >> 24);
        p[2] = (unsigned char)(n >> 16);
        p[3] = (unsigned char)(n >> 8);
        p[4] = (unsigned char)n;
        h = 5;
    }
    if (n)
        memcpy(p + h, s, n);
    b->len += h + n;
}

#define KEY(e, lit) pack_str((e), lit, sizeof(lit) - 1)

static void pack_cstr(enc *e, const char *s)
{
    if (!s) {
        enc_bad(e);
        return;
    }
    pack_str(e, s, strlen(s));
}

static void pack_key(enc *e, fo_key k)
{
    char tmp[20];
    size_t n;
    const char *s = fo_key_str(k, tmp, &n);
    pack_str(e, s, n);
}

static void pack_value(enc *e, const fo_value *v);

static void pack_map(enc *e, const fo_map *m)
{
    const fo_entry *entries = fo_map_entries(m);
    uint32_t written = 0, len = fo_map_len(m), live = fo_map_count(m);

    msgpack_pack_map(&e->pk, live);
    for (uint32_t i = 0; i < len; i++) {
        const fo_entry *en = &entries[i];
        if (en->key == FO_KEY_NONE)
            continue;
        pack_key(e, en->key);
        pack_value(e, &en->value);
        written++;
    }
    /* A map whose live count disagrees with its entries would produce a corrupt frame. */
    if (written != live)
        enc_bad(e);
}

static void pack_value(enc *e, const fo_value *v)
{
    switch (fo_value_type(v)) {
    case FO_NULL: msgpack_pack_nil(&e->pk); return;
    case FO_BOOL:
        if (v->h.as.b)
            msgpack_pack_true(&e->pk);
        else
            msgpack_pack_false(&e->pk);
        return;
    case FO_INT: msgpack_pack_int64(&e->pk, v->h.as.i); return;
    case FO_UINT: msgpack_pack_uint64(&e->pk, v->h.as.u); return;
    case FO_FLOAT: msgpack_pack_double(&e->pk, v->h.as.f); return;
    case FO_STR: {
        size_t n;
        const char *s = fo_value_strbuf(v, &n);
        pack_str(e, s, n);
        return;
    }
    case FO_ARRAY:
        msgpack_pack_array(&e->pk, v->h.len);
        for (uint32_t i = 0; i < v->h.len; i++)
            pack_value(e, &v->h.as.items[i]);
        return;
    case FO_MAP: pack_map(e, v->h.as.map); return;
    }
    enc_bad(e);
}

/* ---- Flushout types ------------------------------------------------------------------ */

static void pack_action(enc *e, fo_action a)
{
    switch (a) {
    case FO_CREATE: KEY(e, "create"); return;
    case FO_UPDATE: KEY(e, "update"); return;
    case FO_DELETE: KEY(e, "delete"); return; /* never the reference's "detete" */
    case FO_ACTION_NONE: break;
    }
    enc_bad(e);
}

static void pack_path(enc *e, fo_path p)
{
    msgpack_pack_array(&e->pk, p.len);
    for (uint32_t i = 0; i < p.len; i++)
        pack_key(e, p.seg[i]);
}

/* The mappedPaths key: segments joined with ',' (fo_path_join's form), written directly
 * into the output instead of through an arena. */
static void pack_joined_path(enc *e, fo_path p)
{
    char tmp[20];
    size_t n, total = p.len ? p.len - 1 : 0;
    for (uint32_t i = 0; i < p.len; i++) {
        fo_key_str(p.seg[i], tmp, &n);
        total += n;
    }
    msgpack_pack_str(&e->pk, total);
    for (uint32_t i = 0; i < p.len; i++) {
        const char *s = fo_key_str(p.seg[i], tmp, &n);
        if (i)
            on_write(e, ",", 1);
        on_write(e, s, n);
    }
}

/* A map-typed field (props, parentDefault, document, state). */
static void pack_map_value(enc *e, const fo_value *v)
{
    if (!v) {
        msgpack_pack_map(&e->pk, 0);
        return;
    }
    if (fo_value_type(v) != FO_MAP) {
        enc_bad(e);
        return;
    }
    pack_map(e, v->h.as.map);
}

static void pack_command(enc *e, const fo_command *c)
{
    uint32_t n = 1 + (c->path.len > 0) + (c->props != NULL) + (c->parent_default != NULL);
    msgpack_pack_map(&e->pk, n);
    KEY(e, "action");
    pack_action(e, c->action);
    if (c->path.len > 0) {
        KEY(e, "path");
        pack_path(e, c->path);
    }
    if (c->props) {
        KEY(e, "props");
        pack_map_value(e, c->props);
    }
    if (c->parent_default) {
        KEY(e, "parentDefault");
        pack_map_value(e, c->parent_default);
    }
}

static void pack_completion(enc *e, const fo_completion *c)
{
    msgpack_pack_map(&e->pk, c->created_id != FO_KEY_NONE ? 2 : 1);
    KEY(e, "command");
    pack_command(e, &c->command);
    if (c->created_id != FO_KEY_NONE) {
        KEY(e, "createdId");
        pack_key(e, c->created_id);
    }
}

static void pack_batch(enc *e, const fo_batch *b)
{
    msgpack_pack_map(&e->pk, 2);
    KEY(e, "from");
    msgpack_pack_uint64(&e->pk, b->from);
    KEY(e, "completions");
    msgpack_pack_array(&e->pk, b->len);
    for (uint32_t i = 0; i < b->len; i++)
        pack_completion(e, &b->items[i]);
}

/* A diff whose first s->external completions come as encoded bytes (m->ext_parts), then
 * its items: the applied batch, spliced from the ack's raw_batch when it has one. */
static void pack_diff_external(enc *e, const fo_sync *s, const fo_msg *m)
{
    const fo_batch *d = &s->diff;
    uint32_t own = d->len - s->external;
    const void *items;
    size_t len;
    uint32_t count;

    if (!m || s->external > d->len || (!m->ext_parts && m->n_ext_parts)) {
        enc_bad(e);
        return;
    }
    msgpack_pack_map(&e->pk, 2);
    KEY(e, "from");
    msgpack_pack_uint64(&e->pk, d->from);
    KEY(e, "completions");
    msgpack_pack_array(&e->pk, d->len);
    for (uint32_t i = 0; i < m->n_ext_parts; i++)
        on_write(e, m->ext_parts[i].p, m->ext_parts[i].n);
    if (own && m->raw_batch && d->items == m->result.applied.items &&
        own == m->result.applied.len &&
        fo_wire_batch_items(m->raw_batch, m->raw_batch_len, 0, false, &items, &len, &count) == 0 &&
        count == own) {
        on_write(e, items, len);
        return;
    }
    for (uint32_t i = 0; i < own; i++)
        pack_completion(e, &d->items[i]);
}

static void pack_snapshot(enc *e, const fo_snapshot *s)
{
    msgpack_pack_map(&e->pk, 2);
    KEY(e, "commandCount");
    msgpack_pack_uint64(&e->pk, s->command_count);
    KEY(e, "document");
    pack_map_value(e, s->document);
}

/* `m` (may be NULL) carries the applied batch's encoding for an ack. */
static void pack_sync(enc *e, const fo_sync *s, const fo_msg *m)
{
    msgpack_pack_map(&e->pk, 2 + s->has_mapped);
    KEY(e, "isPartial");
    if (s->kind == FO_SYNC_PARTIAL) {
        msgpack_pack_true(&e->pk);
        KEY(e, "diff");
        if (s->external)
            pack_diff_external(e, s, m);
        else if (m && m->raw_batch && s->diff.from == m->result.applied.from &&
            s->diff.len == m->result.applied.len && s->diff.items == m->result.applied.items)
            on_write(e, m->raw_batch, m->raw_batch_len);
        else
            pack_batch(e, &s->diff);
    } else if (s->kind == FO_SYNC_FULL) {
        msgpack_pack_false(&e->pk);
        KEY(e, "latest");
        pack_snapshot(e, &s->latest);
    } else {
        enc_bad(e);
        return;
    }
    if (s->has_mapped) {
        KEY(e, "mappedPaths");
        msgpack_pack_map(&e->pk, s->mapped_len);
        for (uint32_t i = 0; i < s->mapped_len; i++) {
            pack_joined_path(e, s->mapped[i].from);
            pack_path(e, s->mapped[i].to);
        }
    }
}

/* The batch `b`, or its encoding `raw` when the caller has one. */
static void pack_batch_raw(enc *e, const fo_batch *b, const fo_msg *m)
{
    if (m->raw_batch)
        on_write(e, m->raw_batch, m->raw_batch_len);
    else
        pack_batch(e, b);
}

/* A push's or diff's batch whose completions are all given as encoded runs. */
static void pack_batch_parts(enc *e, const fo_batch *b, const fo_msg *m)
{
    msgpack_pack_map(&e->pk, 2);
    KEY(e, "from");
    msgpack_pack_uint64(&e->pk, b->from);
    KEY(e, "completions");
    msgpack_pack_array(&e->pk, b->len);
    for (uint32_t i = 0; i < m->n_ext_parts; i++)
        on_write(e, m->ext_parts[i].p, m->ext_parts[i].n);
}

static void pack_result(enc *e, const fo_apply_result *r, const fo_msg *m)
{
    bool has_sync = r->sync.kind != FO_SYNC_NONE;
    msgpack_pack_map(&e->pk, 1 + has_sync + (r->errors_len > 0));
    KEY(e, "applied");
    pack_batch_raw(e, &r->applied, m);
    if (has_sync) {
        KEY(e, "sync");
        pack_sync(e, &r->sync, m);
    }
    if (r->errors_len > 0) {
        KEY(e, "errors");
        msgpack_pack_array(&e->pk, r->errors_len);
        for (uint32_t i = 0; i < r->errors_len; i++) {
            const fo_completion_error *ce = &r->errors[i];
            msgpack_pack_map(&e->pk, 3);
            KEY(e, "action");
            pack_action(e, ce->action);
            KEY(e, "path");
            pack_path(e, ce->path);
            KEY(e, "errorMessage");
            pack_cstr(e, ce->message ? ce->message : "");
        }
    }
}

/* ---- messages -------------------------------------------------------------------------- */

static void pack_model(enc *e, const fo_msg *m)
{
    KEY(e, "model");
    if (!m->model) {
        enc_bad(e);
        return;
    }
    pack_str(e, m->model, m->model_len ? m->model_len : strlen(m->model));
}

static void pack_state(enc *e, const fo_value *state)
{
    KEY(e, "state");
    if (state)
        pack_map_value(e, state);
    else
        msgpack_pack_nil(&e->pk);
}

/* Entries of the map after `t` and `rid`, per type; -1 for an unknown type. */
static int field_count(const fo_msg *m)
{
    switch (m->type) {
    case FO_MSG_HELLO: return 1 + (m->token != NULL);
    case FO_MSG_SUB: return 1 + m->has_from;
    case FO_MSG_UNSUB: return 1;
    case FO_MSG_FLUSH: return 3;
    case FO_MSG_GET: return 1 + m->has_at;
    case FO_MSG_HISTORY: return 2 + m->has_to;
    case FO_MSG_PRESENCE: return 2;
    case FO_MSG_WELCOME: return 3;
    case FO_MSG_SNAP: return 2;
    case FO_MSG_DIFF: return 2;
    case FO_MSG_OK: return 0;
    case FO_MSG_ACK: return 3;
    case FO_MSG_PUSH: return 2;
    case FO_MSG_PRESENCE_EVT: return 3;
    case FO_MSG_ERROR: return 2 + (m->model != NULL) + m->has_retry_after;
    case FO_MSG_NONE: break;
    }
    return -1;
}

static void pack_body(enc *e, const fo_msg *m)
{
    switch (m->type) {
    case FO_MSG_HELLO:
        KEY(e, "client");
        pack_cstr(e, m->client);
        if (m->token) {
            KEY(e, "token");
            pack_cstr(e, m->token);
        }
        return;
    case FO_MSG_SUB:
        pack_model(e, m);
        if (m->has_from) {
            KEY(e, "from");
            msgpack_pack_uint64(&e->pk, m->from);
        }
        return;
    case FO_MSG_UNSUB: pack_model(e, m); return;
    case FO_MSG_FLUSH:
    case FO_MSG_ACK:
        pack_model(e, m);
        KEY(e, "seq");
        msgpack_pack_uint64(&e->pk, m->seq);
        if (m->type == FO_MSG_FLUSH) {
            KEY(e, "batch");
            pack_batch(e, &m->batch);
        } else {
            KEY(e, "result");
            pack_result(e, &m->result, m);
        }
        return;
    case FO_MSG_GET:
        pack_model(e, m);
        if (m->has_at) {
            KEY(e, "at");
            msgpack_pack_uint64(&e->pk, m->at);
        }
        return;
    case FO_MSG_HISTORY:
        pack_model(e, m);
        KEY(e, "from");
        msgpack_pack_uint64(&e->pk, m->from);
        if (m->has_to) {
            KEY(e, "to");
            msgpack_pack_uint64(&e->pk, m->to);
        }
        return;
    case FO_MSG_PRESENCE:
    case FO_MSG_PRESENCE_EVT:
        pack_model(e, m);
        if (m->type == FO_MSG_PRESENCE_EVT) {
            KEY(e, "session");
            pack_cstr(e, m->session);
        }
        pack_state(e, m->state);
        return;
    case FO_MSG_WELCOME:
        KEY(e, "session");
        pack_cstr(e, m->session);
        KEY(e, "server");
        pack_cstr(e, m->server);
        KEY(e, "maxFrame");
        msgpack_pack_uint64(&e->pk, m->max_frame);
        return;
    case FO_MSG_SNAP:
        pack_model(e, m);
        KEY(e, "snapshot");
        pack_snapshot(e, &m->snapshot);
        return;
    case FO_MSG_DIFF:
    case FO_MSG_PUSH:
        pack_model(e, m);
        KEY(e, "diff");
        if (m->n_ext_parts && !m->raw_batch && !m->batch.items)
            pack_batch_parts(e, &m->batch, m);
        else
            pack_batch_raw(e, &m->batch, m);
        return;
    case FO_MSG_OK: return;
    case FO_MSG_ERROR: {
        const char *code = fo_error_code_name(m->code);
        if (m->model)
            pack_model(e, m);
        KEY(e, "code");
        pack_cstr(e, code);
        KEY(e, "message");
        pack_cstr(e, m->message);
        if (m->has_retry_after) {
            KEY(e, "retryAfterMs");
            msgpack_pack_uint64(&e->pk, m->retry_after_ms);
        }
        return;
    }
    case FO_MSG_NONE: break;
    }
    enc_bad(e);
}

int fo_wire_encode(const fo_msg *m, fo_buf *out)
{
    int n = field_count(m);
    if (n < 0)
        return FO_EINVAL;
    enc e;
    size_t start = out->len;
    enc_init(&e, out);
    msgpack_pack_map(&e.pk, (size_t)n + 1 + m->has_rid);
    KEY(&e, "t");
    pack_cstr(&e, fo_msg_type_name(m->type));
    if (m->has_rid) {
        KEY(&e, "rid");
        msgpack_pack_uint64(&e.pk, m->rid);
    }
    pack_body(&e, m);
    return enc_finish(&e, start);
}

int fo_wire_encode_value(const fo_value *v, fo_buf *out)
{
    enc e;
    size_t start = out->len;
    enc_init(&e, out);
    pack_value(&e, v);
    return enc_finish(&e, start);
}

int fo_wire_encode_batch(const fo_batch *b, fo_buf *out)
{
    enc e;
    size_t start = out->len;
    enc_init(&e, out);
    pack_batch(&e, b);
    return enc_finish(&e, start);
}
