/* wire_decode_old.c - the wire decoder as it was before the direct decoder replaced it
 * (msgpack-c object tree, then conversion), kept in the fuzz build only as the oracle of
 * fuzz_wire.c's differential check: fo_old_wire_decode* must agree with fo_wire_decode*
 * on every input (with one fix, see push_name). Not part of fo_proto.
 *
 * The old decoder's own description:
 *
 * Three steps, so that no input can make the decoder crash, recurse deeply or allocate
 * more than a small multiple of the frame:
 *  1. fo_wire_scan() (wire_scan.c): an iterative walk over the raw bytes that checks
 *     structure and every limit before msgpack-c allocates anything, and tells a
 *     truncated frame (FO_EAGAIN) from a malformed one (FO_EPROTO).
 *  2. msgpack_unpack_next() builds the object tree; after the scan it can only fail on
 *     out-of-memory.
 *  3. conversion into the caller's arena: every string is copied (and checked to be
 *     UTF-8), so no msgpack_object outlives this file. Errors name the field. */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "proto/wire.h"
#include "proto/wire_scan.h"
#include "tests/fuzz/wire_decode_old.h"

/* ---- conversion ------------------------------------------------------------------- */

#define PATH_SEGS 48

typedef struct path_seg {
    const char *name; /* NULL: array index */
    uint32_t len;
    uint32_t idx;
} path_seg;

typedef struct dec {
    fo_arena *a;
    const fo_wire_limits *l;
    fo_err_info *err;
    uint32_t nseg; /* may exceed PATH_SEGS; only the first PATH_SEGS are named */
    path_seg path[PATH_SEGS];
} dec;

static void push_name(dec *d, const char *s, size_t n)
{
    /* The one change to the old decoder: msgpack-c gives an empty str a NULL pointer,
     * which the path took for an array index ("[0]" for an empty key). The new decoder
     * names an empty key by its (empty) name, e.g. "props." and "" at the top. */
    if (!s)
        s = "";
    if (d->nseg < PATH_SEGS)
        d->path[d->nseg] = (path_seg){s, (uint32_t)n, 0};
    d->nseg++;
}

#define PUSH(d, lit) push_name((d), lit, sizeof(lit) - 1)

static void push_idx(dec *d, uint32_t i)
{
    if (d->nseg < PATH_SEGS)
        d->path[d->nseg] = (path_seg){NULL, 0, i};
    d->nseg++;
}

static void pop(dec *d)
{
    d->nseg--;
}

/* Records the error with the current field path and returns `code`. */
static int fail(dec *d, int code, const char *msg)
{
    fo_err_info *e = d->err;
    size_t o = 0, cap = sizeof e->path;
    uint32_t n = d->nseg < PATH_SEGS ? d->nseg : PATH_SEGS;

    e->code = code;
    e->pos = 0;
    e->path[0] = '\0';
    for (uint32_t i = 0; i < n && o + 1 < cap; i++) {
        const path_seg *s = &d->path[i];
        int w;
        if (s->name)
            w = snprintf(e->path + o, cap - o, "%s%.*s", i ? "." : "", (int)s->len, s->name);
        else
            w = snprintf(e->path + o, cap - o, "[%u]", s->idx);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    return code;
}

static int nomem(dec *d)
{
    return fail(d, FO_ENOMEM, "out of memory");
}

/* Checks that o is a str; the bytes stay in the frame. */
static int check_str(dec *d, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return fail(d, FO_EINVAL, "expected str");
    if (!fo_utf8_valid((const uint8_t *)o->via.str.ptr, o->via.str.size))
        return fail(d, FO_EINVAL, "invalid UTF-8");
    return 0;
}

static int conv_key(dec *d, const msgpack_object *o, fo_key *out)
{
    int rc = check_str(d, o);
    if (rc)
        return rc;
    *out = fo_key_new(d->a, o->via.str.ptr, o->via.str.size);
    return *out == FO_KEY_NONE ? nomem(d) : 0;
}

/* A NUL-terminated copy of a str field. */
static int conv_cstr(dec *d, const msgpack_object *o, const char **out, uint32_t *len)
{
    int rc = check_str(d, o);
    if (rc)
        return rc;
    char *s = fo_arena_strndup(d->a, o->via.str.ptr, o->via.str.size);
    if (!s)
        return nomem(d);
    *out = s;
    if (len)
        *len = o->via.str.size;
    return 0;
}

static int conv_value(dec *d, const msgpack_object *o, fo_value *out);

static int conv_map(dec *d, const msgpack_object *o, fo_value *out)
{
    bool ok = true;
    uint32_t n = o->via.map.size;
    *out = fo_value_map(d->a, n, &ok);
    if (!ok)
        return nomem(d);
    fo_map *m = out->h.as.map;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return fail(d, FO_EINVAL, "map key must be str");
        fo_key k;
        int rc = conv_key(d, &kv->key, &k);
        if (rc)
            return rc;
        fo_value v;
        push_name(d, kv->key.via.str.ptr, kv->key.via.str.size);
        rc = conv_value(d, &kv->val, &v);
        if (rc)
            return rc;
        pop(d);
        if (fo_map_set(m, d->a, k, &v, NULL) != 0)
            return nomem(d);
    }
    return 0;
}

/* Recursion is bounded: the scan limited nesting to 32. */
static int conv_value(dec *d, const msgpack_object *o, fo_value *out)
{
    bool ok = true;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: *out = fo_value_null(); return 0;
    case MSGPACK_OBJECT_BOOLEAN: *out = fo_value_bool(o->via.boolean); return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = fo_value_uint(o->via.u64); return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = fo_value_int(o->via.i64); return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = fo_value_float(o->via.f64); return 0;
    case MSGPACK_OBJECT_STR: {
        int rc = check_str(d, o);
        if (rc)
            return rc;
        *out = fo_value_str(d->a, o->via.str.ptr, o->via.str.size, &ok);
        return ok ? 0 : nomem(d);
    }
    case MSGPACK_OBJECT_ARRAY: {
        uint32_t n = o->via.array.size;
        *out = fo_value_array(d->a, n, &ok);
        if (!ok)
            return nomem(d);
        for (uint32_t i = 0; i < n; i++) {
            push_idx(d, i);
            int rc = conv_value(d, &o->via.array.ptr[i], &out->h.as.items[i]);
            if (rc)
                return rc;
            pop(d);
        }
        return 0;
    }
    case MSGPACK_OBJECT_MAP: return conv_map(d, o, out);
    case MSGPACK_OBJECT_BIN: return fail(d, FO_EINVAL, "bin is not allowed (use str)");
    default: return fail(d, FO_EINVAL, "unsupported type");
    }
}

/* ---- struct fields ---------------------------------------------------------------------
 * A struct map is read in one pass over its keys: each known name fills a slot (the
 * last occurrence wins), unknown keys are skipped. Optional fields treat nil as absent,
 * since JavaScript encoders write `undefined` as nil. */

typedef struct fname {
    const char *s;
    uint8_t n;
} fname;

/* clang-format off */
#define F(lit) {lit, sizeof(lit) - 1}
/* clang-format on */

static int fields(dec *d, const msgpack_object *o, const fname *names, unsigned n,
                  const msgpack_object **slots)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(d, FO_EINVAL, "expected map");
    for (unsigned j = 0; j < n; j++)
        slots[j] = NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return fail(d, FO_EINVAL, "map key must be str");
        uint32_t kn = kv->key.via.str.size;
        for (unsigned j = 0; j < n; j++) {
            if (names[j].n == kn && memcmp(names[j].s, kv->key.via.str.ptr, kn) == 0) {
                slots[j] = &kv->val;
                break;
            }
        }
    }
    return 0;
}

static bool present(const msgpack_object *o)
{
    return o && o->type != MSGPACK_OBJECT_NIL;
}

typedef int (*conv_fn)(dec *d, const msgpack_object *o, void *out);

/* A required field: "missing" when absent. The name is on the error path while the
 * field is converted and stays there when conversion fails. */
static int req(dec *d, const char *name, const msgpack_object *o, conv_fn fn, void *out)
{
    push_name(d, name, strlen(name));
    int rc = o ? fn(d, o, out) : fail(d, FO_EINVAL, "missing");
    if (rc == 0)
        pop(d);
    return rc;
}

/* An optional field: absent or nil leaves *out alone and clears *has (when given). */
static int opt(dec *d, const char *name, const msgpack_object *o, conv_fn fn, void *out, bool *has)
{
    if (has)
        *has = present(o);
    return present(o) ? req(d, name, o, fn, out) : 0;
}

static int c_uint(dec *d, const msgpack_object *o, void *out)
{
    /* msgpack-c reports every non-negative integer as POSITIVE_INTEGER. */
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return fail(d, FO_EINVAL, "expected uint");
    *(uint64_t *)out = o->via.u64;
    return 0;
}

static int c_str(dec *d, const msgpack_object *o, void *out)
{
    return conv_cstr(d, o, out, NULL);
}

static int c_key(dec *d, const msgpack_object *o, void *out)
{
    return conv_key(d, o, out);
}

static int c_bool(dec *d, const msgpack_object *o, void *out)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return fail(d, FO_EINVAL, "expected bool");
    *(bool *)out = o->via.boolean;
    return 0;
}

/* A map-typed field (props, parentDefault, document, state), allocated in the arena. */
static int c_map(dec *d, const msgpack_object *o, void *out)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(d, FO_EINVAL, "expected map");
    fo_value *v = fo_arena_alloc(d->a, sizeof *v);
    if (!v)
        return nomem(d);
    int rc = conv_map(d, o, v);
    if (rc == 0)
        *(const fo_value **)out = v;
    return rc;
}

/* An array of structs of `size` bytes each, converted by fn into arena storage. */
static int conv_array(dec *d, const msgpack_object *o, size_t size, conv_fn fn, void **items,
                      uint32_t *len)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return fail(d, FO_EINVAL, "expected array");
    uint32_t n = o->via.array.size;
    char *p = NULL;
    if (n && !(p = fo_arena_calloc(d->a, n * size)))
        return nomem(d);
    for (uint32_t i = 0; i < n; i++) {
        push_idx(d, i);
        int rc = fn(d, &o->via.array.ptr[i], p + i * size);
        if (rc)
            return rc;
        pop(d);
    }
    *items = p;
    *len = n;
    return 0;
}

/* ---- Flushout types ------------------------------------------------------------------- */

static int c_action(dec *d, const msgpack_object *o, void *out)
{
    fo_action *a = out;
    int rc = check_str(d, o);
    if (rc)
        return rc;
    const char *s = o->via.str.ptr;
    *a = FO_ACTION_NONE;
    if (o->via.str.size == 6) {
        if (memcmp(s, "create", 6) == 0)
            *a = FO_CREATE;
        else if (memcmp(s, "update", 6) == 0)
            *a = FO_UPDATE;
        else if (memcmp(s, "delete", 6) == 0 || memcmp(s, "detete", 6) == 0)
            *a = FO_DELETE; /* "detete": the reference implementation's spelling */
    }
    return *a == FO_ACTION_NONE ? fail(d, FO_EINVAL, "unknown action") : 0;
}

static int c_path(dec *d, const msgpack_object *o, void *out)
{
    fo_path *p = out;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return fail(d, FO_EINVAL, "expected array");
    if (o->via.array.size > d->l->max_path)
        return fail(d, FO_ELIMIT, "path too long");
    void *seg = NULL;
    int rc = conv_array(d, o, sizeof(fo_key), c_key, &seg, &p->len);
    p->seg = seg;
    return rc;
}

static int c_command(dec *d, const msgpack_object *o, void *out)
{
    static const fname names[] = {F("action"), F("path"), F("props"), F("parentDefault")};
    fo_command *c = out;
    const msgpack_object *f[4];
    int rc = fields(d, o, names, 4, f);
    if (rc == 0)
        rc = req(d, "action", f[0], c_action, &c->action);
    if (rc == 0)
        rc = opt(d, "path", f[1], c_path, &c->path, NULL);
    if (rc == 0)
        rc = opt(d, "props", f[2], c_map, &c->props, NULL);
    if (rc == 0)
        rc = opt(d, "parentDefault", f[3], c_map, &c->parent_default, NULL);
    return rc;
}

static int c_completion(dec *d, const msgpack_object *o, void *out)
{
    static const fname names[] = {F("command"), F("createdId")};
    fo_completion *c = out;
    const msgpack_object *f[2];
    int rc = fields(d, o, names, 2, f);
    if (rc == 0)
        rc = req(d, "command", f[0], c_command, &c->command);
    if (rc == 0)
        rc = opt(d, "createdId", f[1], c_key, &c->created_id, NULL);
    return rc;
}

static int c_completions(dec *d, const msgpack_object *o, void *out)
{
    fo_batch *b = out;
    void *items = NULL;
    int rc = conv_array(d, o, sizeof(fo_completion), c_completion, &items, &b->len);
    b->items = items;
    return rc;
}

static int c_batch(dec *d, const msgpack_object *o, void *out)
{
    static const fname names[] = {F("from"), F("completions")};
    fo_batch *b = out;
    const msgpack_object *f[2];
    int rc = fields(d, o, names, 2, f);
    if (rc == 0)
        rc = req(d, "from", f[0], c_uint, &b->from);
    if (rc == 0)
        rc = req(d, "completions", f[1], c_completions, b);
    return rc;
}

static int c_snapshot(dec *d, const msgpack_object *o, void *out)
{
    static const fname names[] = {F("commandCount"), F("document")};
    fo_snapshot *s = out;
    const msgpack_object *f[2];
    int rc = fields(d, o, names, 2, f);
    if (rc == 0)
        rc = req(d, "commandCount", f[0], c_uint, &s->command_count);
    if (rc == 0)
        rc = req(d, "document", f[1], c_map, &s->document);
    return rc;
}

/* One mappedPaths entry. The key is the `from` path joined with ',' and is split on
 * every ',' ("" is the empty path), so a segment that contains ',' cannot be told apart
 * from two segments: the reference's string-keyed map has the same ambiguity. */
static int c_mapping(dec *d, const msgpack_object_kv *kv, fo_path_mapping *m)
{
    if (kv->key.type != MSGPACK_OBJECT_STR)
        return fail(d, FO_EINVAL, "map key must be str");
    int rc = check_str(d, &kv->key);
    if (rc)
        return rc;
    const char *k = kv->key.via.str.ptr;
    uint32_t klen = kv->key.via.str.size, nseg = 0;
    if (klen) {
        nseg = 1;
        for (uint32_t j = 0; j < klen; j++)
            nseg += k[j] == ',';
    }
    push_name(d, k, klen);
    if (nseg > d->l->max_path)
        return fail(d, FO_ELIMIT, "path too long");
    fo_key *seg = NULL;
    if (nseg && !(seg = fo_arena_alloc(d->a, (size_t)nseg * sizeof *seg)))
        return nomem(d);
    for (uint32_t j = 0, start = 0; j < nseg; j++) {
        uint32_t end = start;
        while (end < klen && k[end] != ',')
            end++;
        if ((seg[j] = fo_key_new(d->a, k + start, end - start)) == FO_KEY_NONE)
            return nomem(d);
        start = end + 1;
    }
    m->from = (fo_path){seg, nseg};
    if ((rc = c_path(d, &kv->val, &m->to)) == 0)
        pop(d);
    return rc;
}

static int c_mapped(dec *d, const msgpack_object *o, void *out)
{
    fo_sync *s = out;
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(d, FO_EINVAL, "expected map");
    uint32_t n = o->via.map.size;
    fo_path_mapping *m = NULL;
    if (n && !(m = fo_arena_calloc(d->a, (size_t)n * sizeof *m)))
        return nomem(d);
    for (uint32_t i = 0; i < n; i++) {
        int rc = c_mapping(d, &o->via.map.ptr[i], &m[i]);
        if (rc)
            return rc;
    }
    s->mapped_len = n;
    s->mapped = m;
    return 0;
}

static int c_sync(dec *d, const msgpack_object *o, void *out)
{
    static const fname names[] = {F("isPartial"), F("diff"), F("latest"), F("mappedPaths")};
    fo_sync *s = out;
    const msgpack_object *f[4];
    bool partial = false;
    int rc = fields(d, o, names, 4, f);
    if (rc || (rc = req(d, "isPartial", f[0], c_bool, &partial)) != 0)
        return rc;
    s->kind = partial ? FO_SYNC_PARTIAL : FO_SYNC_FULL;
    if (partial)
        rc = req(d, "diff", f[1], c_batch, &s->diff);
    else
        rc = req(d, "latest", f[2], c_snapshot, &s->latest);
    if (rc == 0)
        rc = opt(d, "mappedPaths", f[3], c_mapped, s, &s->has_mapped);
    return rc;
}

static int c_cerror(dec *d, const msgpack_object *o, void *out)
{
    static const fname names[] = {F("action"), F("path"), F("errorMessage")};
    fo_completion_error *ce = out;
    const msgpack_object *f[3];
    int rc = fields(d, o, names, 3, f);
    if (rc == 0)
        rc = req(d, "action", f[0], c_action, &ce->action);
    if (rc == 0)
        rc = req(d, "path", f[1], c_path, &ce->path);
    if (rc == 0)
        rc = req(d, "errorMessage", f[2], c_str, &ce->message);
    return rc;
}

static int c_cerrors(dec *d, const msgpack_object *o, void *out)
{
    fo_apply_result *r = out;
    void *items = NULL;
    int rc = conv_array(d, o, sizeof(fo_completion_error), c_cerror, &items, &r->errors_len);
    r->errors = items;
    return rc;
}

static int c_result(dec *d, const msgpack_object *o, void *out)
{
    static const fname names[] = {F("applied"), F("sync"), F("errors")};
    fo_apply_result *r = out;
    const msgpack_object *f[3];
    int rc = fields(d, o, names, 3, f);
    if (rc == 0)
        rc = req(d, "applied", f[0], c_batch, &r->applied);
    if (rc == 0)
        rc = opt(d, "sync", f[1], c_sync, &r->sync, NULL);
    if (rc == 0)
        rc = opt(d, "errors", f[2], c_cerrors, r, NULL);
    return rc;
}

/* ---- messages -------------------------------------------------------------------------- */

/* clang-format off */
enum {
    M_T, M_RID, M_MODEL, M_CLIENT, M_TOKEN, M_FROM, M_TO, M_AT, M_SEQ, M_BATCH, M_SNAPSHOT,
    M_DIFF, M_RESULT, M_STATE, M_SESSION, M_SERVER, M_MAXFRAME, M_CODE, M_MESSAGE, M_COUNT
};
/* clang-format on */

/* clang-format off */
static const fname msg_fields[M_COUNT] = {
    F("t"),        F("rid"),      F("model"),  F("client"), F("token"),
    F("from"),     F("to"),       F("at"),     F("seq"),    F("batch"),
    F("snapshot"), F("diff"),     F("result"), F("state"),  F("session"),
    F("server"),   F("maxFrame"), F("code"),   F("message"),
};
/* clang-format on */

static int c_model(dec *d, const msgpack_object *o, void *out)
{
    fo_msg *m = out;
    if (o->type != MSGPACK_OBJECT_STR)
        return fail(d, FO_EINVAL, "expected str");
    uint32_t n = o->via.str.size;
    if (n < 1 || n > 200)
        return fail(d, FO_EINVAL, "model name must be 1-200 bytes");
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)o->via.str.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return fail(d, FO_EINVAL, "model name allows only [A-Za-z0-9._:-]");
    }
    return conv_cstr(d, o, &m->model, &m->model_len);
}

/* A NUL would make two client ids compare equal as C strings (exactly-once keys on it). */
static int c_client(dec *d, const msgpack_object *o, void *out)
{
    if (o->type == MSGPACK_OBJECT_STR &&
        (o->via.str.size < 1 || o->via.str.size > 64 || memchr(o->via.str.ptr, 0, o->via.str.size)))
        return fail(d, FO_EINVAL, "client id must be 1-64 bytes, no NUL");
    return conv_cstr(d, o, out, NULL);
}

/* `state`: a map, or nil to clear it; the key itself is required. */
static int c_state(dec *d, const msgpack_object *o, void *out)
{
    if (o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(d, FO_EINVAL, "expected map or nil");
    return c_map(d, o, out);
}

static int c_code(dec *d, const msgpack_object *o, void *out)
{
    int rc = check_str(d, o);
    if (rc)
        return rc;
    fo_error_code c = fo_error_code_parse(o->via.str.ptr, o->via.str.size);
    *(fo_error_code *)out = c;
    return c ? 0 : fail(d, FO_EINVAL, "unknown error code");
}

static int c_type(dec *d, const msgpack_object *o, void *out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return fail(d, FO_EINVAL, "expected str");
    for (int t = FO_MSG_HELLO; t <= FO_MSG_ERROR; t++) {
        const char *name = fo_msg_type_name((fo_msg_type)t);
        if (strlen(name) == o->via.str.size && memcmp(name, o->via.str.ptr, o->via.str.size) == 0) {
            *(fo_msg_type *)out = (fo_msg_type)t;
            return 0;
        }
    }
    return fail(d, FO_EINVAL, "unknown message type");
}

/* `rid`, `t` and, for model-scoped messages, `model` are decoded first, so that a hub can
 * still address its error reply when a later field is bad. */
static int c_msg(dec *d, const msgpack_object *o, void *out)
{
    fo_msg *m = out;
    const msgpack_object *f[M_COUNT];
    int rc = fields(d, o, msg_fields, M_COUNT, f);
    if (rc || (rc = opt(d, "rid", f[M_RID], c_uint, &m->rid, &m->has_rid)) != 0 ||
        (rc = req(d, "t", f[M_T], c_type, &m->type)) != 0)
        return rc;
    /* A hub-sent presence names the session it comes from; a request does not. */
    if (m->type == FO_MSG_PRESENCE && present(f[M_SESSION]))
        m->type = FO_MSG_PRESENCE_EVT;
    switch (m->type) {
    case FO_MSG_HELLO:
    case FO_MSG_WELCOME:
    case FO_MSG_OK:
    case FO_MSG_NONE: break;
    case FO_MSG_ERROR: rc = opt(d, "model", f[M_MODEL], c_model, m, NULL); break;
    default: rc = req(d, "model", f[M_MODEL], c_model, m); break;
    }
    if (rc)
        return rc;

    switch (m->type) {
    case FO_MSG_HELLO:
        rc = req(d, "client", f[M_CLIENT], c_client, &m->client);
        return rc ? rc : opt(d, "token", f[M_TOKEN], c_str, &m->token, NULL);
    case FO_MSG_SUB: return opt(d, "from", f[M_FROM], c_uint, &m->from, &m->has_from);
    case FO_MSG_UNSUB:
    case FO_MSG_OK: return 0;
    case FO_MSG_FLUSH:
        rc = req(d, "seq", f[M_SEQ], c_uint, &m->seq);
        return rc ? rc : req(d, "batch", f[M_BATCH], c_batch, &m->batch);
    case FO_MSG_ACK:
        rc = req(d, "seq", f[M_SEQ], c_uint, &m->seq);
        return rc ? rc : req(d, "result", f[M_RESULT], c_result, &m->result);
    case FO_MSG_GET: return opt(d, "at", f[M_AT], c_uint, &m->at, &m->has_at);
    case FO_MSG_HISTORY:
        rc = req(d, "from", f[M_FROM], c_uint, &m->from);
        m->has_from = rc == 0;
        return rc ? rc : opt(d, "to", f[M_TO], c_uint, &m->to, &m->has_to);
    case FO_MSG_PRESENCE_EVT:
        if ((rc = req(d, "session", f[M_SESSION], c_str, &m->session)) != 0)
            return rc;
        /* fall through */
    case FO_MSG_PRESENCE: return req(d, "state", f[M_STATE], c_state, &m->state);
    case FO_MSG_WELCOME:
        if ((rc = req(d, "session", f[M_SESSION], c_str, &m->session)) != 0 ||
            (rc = req(d, "server", f[M_SERVER], c_str, &m->server)) != 0)
            return rc;
        return req(d, "maxFrame", f[M_MAXFRAME], c_uint, &m->max_frame);
    case FO_MSG_SNAP: return req(d, "snapshot", f[M_SNAPSHOT], c_snapshot, &m->snapshot);
    case FO_MSG_DIFF:
    case FO_MSG_PUSH: return req(d, "diff", f[M_DIFF], c_batch, &m->batch);
    case FO_MSG_ERROR:
        rc = req(d, "code", f[M_CODE], c_code, &m->code);
        return rc ? rc : req(d, "message", f[M_MESSAGE], c_str, &m->message);
    case FO_MSG_NONE: break;
    }
    return fail(d, FO_EINVAL, "unknown message type");
}

/* ---- entry points ---------------------------------------------------------------------- */

static int decode(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a, bool need_map,
                  conv_fn fn, void *out, fo_err_info *err)
{
    fo_err_info local;
    fo_wire_limits defaults;
    if (!err)
        err = &local;
    if (!l) {
        fo_wire_limits_default(&defaults);
        l = &defaults;
    }
    int rc = fo_wire_scan(data, len, l, need_map, err);
    if (rc)
        return rc;

    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&up, data, len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        /* The scan accepted the bytes, so only an allocation can have failed. */
        msgpack_unpacked_destroy(&up);
        err->code = ur == MSGPACK_UNPACK_NOMEM_ERROR ? FO_ENOMEM : FO_EPROTO;
        err->pos = off;
        err->path[0] = '\0';
        snprintf(err->msg, sizeof err->msg, "msgpack-c: unpack failed (%d)", (int)ur);
        return err->code;
    }
    dec d = {.a = a, .l = l, .err = err, .nseg = 0};
    rc = fn(&d, &up.data, out);
    msgpack_unpacked_destroy(&up);
    if (rc == 0) {
        err->code = 0;
        err->pos = 0;
        err->path[0] = '\0';
        err->msg[0] = '\0';
    }
    return rc;
}

static int c_value(dec *d, const msgpack_object *o, void *out)
{
    return conv_value(d, o, out);
}

int fo_old_wire_decode(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a, fo_msg *out,
                   fo_err_info *err)
{
    memset(out, 0, sizeof *out);
    return decode(data, len, l, a, true, c_msg, out, err);
}

int fo_old_wire_decode_value(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                         fo_value *out, fo_err_info *err)
{
    *out = fo_value_null();
    return decode(data, len, l, a, false, c_value, out, err);
}

int fo_old_wire_decode_batch(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                         fo_batch *out, fo_err_info *err)
{
    memset(out, 0, sizeof *out);
    return decode(data, len, l, a, true, c_batch, out, err);
}
