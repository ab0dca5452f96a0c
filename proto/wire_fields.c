/* wire_fields.c - the Flushout types of the wire decoder (see wire_fields.h and, for the
 * two passes, wire_decode.c). */
#include "proto/wire_fields.h"

#include <stddef.h>

/* ---- struct fields ---------------------------------------------------------------------
 * Optional fields treat nil as absent, since JavaScript encoders write `undefined` as
 * nil; a required field must hold a value of its type. */

#define MAX_FIELDS 8

static unsigned field_find(const fo_wire_field *f, unsigned nf, const fo_mp_item *k)
{
    for (unsigned j = 0; j < nf; j++)
        if (f[j].len == k->n && f[j].name[0] == k->s[0] && memcmp(f[j].name, k->s, k->n) == 0)
            return j;
    return nf;
}

/* Fast pass: fields in byte order, converted where they stand. */
static int st_fast(fo_mp_dec *d, uint32_t pairs, const fo_wire_field *f, unsigned nf, void *out)
{
    uint32_t seen = 0;
    int rc;

    d->depth++;
    for (uint32_t i = 0; i < pairs; i++) {
        fo_mp_item k;
        if ((rc = fo_mp_next_key(d, &k)) != 0)
            return rc;
        unsigned j = field_find(f, nf, &k);
        if (j == nf) {
            if ((rc = fo_mp_skip(d)) != 0)
                return rc;
            continue;
        }
        if (!f[j].req && fo_mp_take_nil(d)) {
            memset((char *)out + f[j].roff, 0, f[j].rsize);
            seen &= ~(1u << j);
            continue;
        }
        fo_mp_push_name(d, f[j].name, f[j].len);
        if ((rc = f[j].fn(d, (char *)out + f[j].off)) != 0)
            return rc;
        fo_mp_pop(d);
        seen |= 1u << j;
    }
    d->depth--;
    for (unsigned j = 0; j < nf; j++)
        if (f[j].req && !(seen & (1u << j)))
            return fo_mp_fail(d, FO_EINVAL, "missing");
    return 0;
}

/* Walks a struct map's keys, noting where each known field's value starts (the last
 * occurrence wins) and skipping every value; leaves d->p after the map. All keys must be
 * str before any field is looked at, as the exact order requires. */
int fo_wire_locate(fo_mp_dec *d, uint32_t pairs, const fo_wire_field *f, unsigned nf, const uint8_t **slot)
{
    int rc;

    for (unsigned j = 0; j < nf; j++)
        slot[j] = NULL;
    for (uint32_t i = 0; i < pairs; i++) {
        fo_mp_item k;
        if ((rc = fo_mp_next_key(d, &k)) != 0)
            return rc;
        unsigned j = field_find(f, nf, &k);
        if (j < nf)
            slot[j] = d->p;
        if ((rc = fo_mp_skip(d)) != 0)
            return rc;
    }
    return 0;
}

/* Converts the value at `at` (NULL: the field is absent) as field `f`; the name stays on
 * the error path when it fails. d->p is restored afterwards. */
static int at_field(fo_mp_dec *d, const uint8_t *at, const fo_wire_field *f, void *out)
{
    fo_mp_push_name(d, f->name, f->len);
    if (!at)
        return fo_mp_fail(d, FO_EINVAL, "missing");
    const uint8_t *resume = d->p;
    d->p = at;
    int rc = f->fn(d, (char *)out + f->off);
    d->p = resume;
    if (rc == 0)
        fo_mp_pop(d);
    return rc;
}

/* Exact order: the fields in table order, each checked whole before the next. The map
 * has been walked by fo_wire_locate(), which checked its structure (in the fast pass, too), so
 * the values are read again without counting them. */
static int st_exact(fo_mp_dec *d, uint32_t pairs, const fo_wire_field *f, unsigned nf, void *out)
{
    const uint8_t *slot[MAX_FIELDS];
    int rc;

    d->depth++;
    if ((rc = fo_wire_locate(d, pairs, f, nf, slot)) != 0)
        return rc;
    bool counting = d->counting;
    uint64_t pending = d->pending;
    d->counting = false;
    for (unsigned j = 0; j < nf && rc == 0; j++)
        if (f[j].req || (slot[j] && !fo_wire_is_nil(slot[j])))
            rc = at_field(d, slot[j], &f[j], out);
    d->counting = counting;
    d->pending = pending;
    d->depth--;
    return rc;
}

/* A struct-typed value: reads the map header, then its fields in the pass's order. */
static int conv_struct(fo_mp_dec *d, const fo_wire_field *f, unsigned nf, void *out)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_MAP)
        return fo_mp_fail(d, FO_EINVAL, "expected map");
    return d->exact ? st_exact(d, it.n, f, nf, out) : st_fast(d, it.n, f, nf, out);
}

/* ---- scalar and array fields ----------------------------------------------------------- */

int fo_wire_conv_uint(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    /* A signed encoding of a value >= 0 is a uint too, as msgpack-c has it. */
    if (it.t != FO_MP_UINT)
        return fo_mp_fail(d, FO_EINVAL, "expected uint");
    *(uint64_t *)out = it.v.u;
    return 0;
}

static int c_bool(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_BOOL)
        return fo_mp_fail(d, FO_EINVAL, "expected bool");
    *(bool *)out = it.v.b;
    return 0;
}

/* Reads a str that must be valid UTF-8; its bytes stay in the frame. */
int fo_wire_read_str(fo_mp_dec *d, fo_mp_item *it)
{
    int rc = fo_mp_next(d, it);
    if (rc)
        return rc;
    return fo_mp_check_str(d, it);
}

/* A NUL-terminated copy of a str field. */
int fo_wire_conv_str(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_wire_read_str(d, &it);
    if (rc)
        return rc;
    char *s = fo_arena_strndup(d->a, it.s, it.n);
    if (!s)
        return fo_mp_nomem(d);
    *(const char **)out = s;
    return 0;
}

static int c_key(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_wire_read_str(d, &it);
    if (rc)
        return rc;
    fo_key k = fo_key_new(d->a, it.s, it.n);
    if (k == FO_KEY_NONE)
        return fo_mp_nomem(d);
    *(fo_key *)out = k;
    return 0;
}

/* A map value (its header `it` read) copied into a new arena node. */
int fo_wire_map_node(fo_mp_dec *d, const fo_mp_item *it, const fo_value **out)
{
    fo_value *v = fo_arena_alloc(d->a, sizeof *v);
    if (!v)
        return fo_mp_nomem(d);
    int rc = fo_mp_conv_item(d, it, v);
    if (rc == 0)
        *out = v;
    return rc;
}

/* A map-typed field (props, parentDefault, document). */
static int c_map(fo_mp_dec *d, void *out)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_MAP)
        return fo_mp_fail(d, FO_EINVAL, "expected map");
    return fo_wire_map_node(d, &it, out);
}

/* An array of structs of `size` bytes each, converted by fn into zeroed arena storage. */
static int conv_array(fo_mp_dec *d, size_t size, fo_wire_conv_fn fn, void **items, uint32_t *len)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_ARRAY)
        return fo_mp_fail(d, FO_EINVAL, "expected array");
    char *p = NULL;
    if (it.n && !(p = fo_arena_calloc(d->a, it.n * size)))
        return fo_mp_nomem(d);
    d->depth++;
    for (uint32_t i = 0; i < it.n; i++) {
        fo_mp_push_idx(d, i);
        if ((rc = fn(d, p + i * size)) != 0)
            return rc;
        fo_mp_pop(d);
    }
    d->depth--;
    *items = p;
    *len = it.n;
    return 0;
}

static int c_path(fo_mp_dec *d, void *out)
{
    fo_path *path = out;
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_ARRAY)
        return fo_mp_fail(d, FO_EINVAL, "expected array");
    if (it.n > d->l->max_path)
        return fo_mp_fail(d, FO_ELIMIT, "path too long");
    fo_key *seg = NULL;
    if (it.n && !(seg = fo_arena_alloc(d->a, (size_t)it.n * sizeof *seg)))
        return fo_mp_nomem(d);
    d->depth++;
    for (uint32_t i = 0; i < it.n; i++) {
        fo_mp_push_idx(d, i);
        if ((rc = c_key(d, &seg[i])) != 0)
            return rc;
        fo_mp_pop(d);
    }
    d->depth--;
    path->seg = seg;
    path->len = it.n;
    return 0;
}

/* ---- Flushout types ------------------------------------------------------------------- */

static int c_action(fo_mp_dec *d, void *out)
{
    fo_action *a = out;
    fo_mp_item it;
    int rc = fo_wire_read_str(d, &it);
    if (rc)
        return rc;
    *a = FO_ACTION_NONE;
    if (it.n == 6) {
        if (memcmp(it.s, "create", 6) == 0)
            *a = FO_CREATE;
        else if (memcmp(it.s, "update", 6) == 0)
            *a = FO_UPDATE;
        else if (memcmp(it.s, "delete", 6) == 0 || memcmp(it.s, "detete", 6) == 0)
            *a = FO_DELETE; /* "detete": the reference implementation's spelling */
    }
    return *a == FO_ACTION_NONE ? fo_mp_fail(d, FO_EINVAL, "unknown action") : 0;
}

/* clang-format off */
#define FLD(type, lit, req, member, fn) \
    {lit, sizeof(lit) - 1, req, offsetof(type, member), offsetof(type, member), \
     sizeof(((type *)0)->member), fn}
/* clang-format on */

static const fo_wire_field command_fields[] = {
    FLD(fo_command, "action", 1, action, c_action),
    FLD(fo_command, "path", 0, path, c_path),
    FLD(fo_command, "props", 0, props, c_map),
    FLD(fo_command, "parentDefault", 0, parent_default, c_map),
};

static int c_command(fo_mp_dec *d, void *out)
{
    return conv_struct(d, command_fields, 4, out);
}

static const fo_wire_field completion_fields[] = {
    FLD(fo_completion, "command", 1, command, c_command),
    FLD(fo_completion, "createdId", 0, created_id, c_key),
};

static int c_completion(fo_mp_dec *d, void *out)
{
    return conv_struct(d, completion_fields, 2, out);
}

/* `completions` fills the batch's len and items. */
static int c_completions(fo_mp_dec *d, void *out)
{
    fo_batch *b = out;
    void *items = NULL;
    int rc = conv_array(d, sizeof(fo_completion), c_completion, &items, &b->len);
    b->items = items;
    return rc;
}

static const fo_wire_field batch_fields[] = {
    FLD(fo_batch, "from", 1, from, fo_wire_conv_uint),
    {"completions", 11, 1, 0, 0, 0, c_completions},
};

int fo_wire_conv_batch(fo_mp_dec *d, void *out)
{
    return conv_struct(d, batch_fields, 2, out);
}

static const fo_wire_field snapshot_fields[] = {
    FLD(fo_snapshot, "commandCount", 1, command_count, fo_wire_conv_uint),
    FLD(fo_snapshot, "document", 1, document, c_map),
};

int fo_wire_conv_snapshot(fo_mp_dec *d, void *out)
{
    return conv_struct(d, snapshot_fields, 2, out);
}

/* One mappedPaths entry. The key is the `from` path joined with ',' and is split on
 * every ',' ("" is the empty path), so a segment that contains ',' cannot be told apart
 * from two segments: the reference's string-keyed map has the same ambiguity. */
static int c_mapping(fo_mp_dec *d, fo_path_mapping *m)
{
    fo_mp_item k;
    int rc = fo_mp_next_key(d, &k);
    if (rc)
        return rc;
    if ((rc = fo_mp_check_str(d, &k)) != 0)
        return rc;
    uint32_t klen = k.n, nseg = 0;
    if (klen) {
        nseg = 1;
        for (uint32_t j = 0; j < klen; j++)
            nseg += k.s[j] == ',';
    }
    fo_mp_push_name(d, k.s, klen);
    if (nseg > d->l->max_path)
        return fo_mp_fail(d, FO_ELIMIT, "path too long");
    fo_key *seg = NULL;
    if (nseg && !(seg = fo_arena_alloc(d->a, (size_t)nseg * sizeof *seg)))
        return fo_mp_nomem(d);
    for (uint32_t j = 0, start = 0; j < nseg; j++) {
        uint32_t end = start;
        while (end < klen && k.s[end] != ',')
            end++;
        if ((seg[j] = fo_key_new(d->a, k.s + start, end - start)) == FO_KEY_NONE)
            return fo_mp_nomem(d);
        start = end + 1;
    }
    m->from = (fo_path){seg, nseg};
    if ((rc = c_path(d, &m->to)) == 0)
        fo_mp_pop(d);
    return rc;
}

/* `mappedPaths` fills the sync's mapped_len and mapped. */
static int c_mapped(fo_mp_dec *d, void *out)
{
    fo_sync *s = out;
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_MAP)
        return fo_mp_fail(d, FO_EINVAL, "expected map");
    fo_path_mapping *m = NULL;
    if (it.n && !(m = fo_arena_calloc(d->a, (size_t)it.n * sizeof *m)))
        return fo_mp_nomem(d);
    d->depth++;
    for (uint32_t i = 0; i < it.n; i++)
        if ((rc = c_mapping(d, &m[i])) != 0)
            return rc;
    d->depth--;
    s->mapped_len = it.n;
    s->mapped = m;
    return 0;
}

/* A sync's fields depend on isPartial, so it is always read in the exact order (syncs
 * come to clients, in acks; the hub never decodes one). */
static const fo_wire_field sync_fields[] = {
    FLD(fo_sync, "isPartial", 1, kind, c_bool), /* converted by hand below */
    FLD(fo_sync, "diff", 1, diff, fo_wire_conv_batch),
    FLD(fo_sync, "latest", 1, latest, fo_wire_conv_snapshot),
    {"mappedPaths", 11, 0, 0, 0, 0, c_mapped},
};

static int c_sync(fo_mp_dec *d, void *out)
{
    fo_sync *s = out;
    const uint8_t *slot[4];
    fo_mp_item it;
    bool partial = false;
    int rc = fo_mp_next(d, &it);
    if (rc)
        return rc;
    if (it.t != FO_MP_MAP)
        return fo_mp_fail(d, FO_EINVAL, "expected map");
    d->depth++;
    if ((rc = fo_wire_locate(d, it.n, sync_fields, 4, slot)) != 0)
        return rc;
    bool counting = d->counting, exact = d->exact;
    uint64_t pending = d->pending;
    d->counting = false;
    d->exact = true;
    fo_wire_field is_partial = sync_fields[0];
    is_partial.off = 0;
    rc = at_field(d, slot[0], &is_partial, &partial);
    if (rc == 0) {
        s->kind = partial ? FO_SYNC_PARTIAL : FO_SYNC_FULL;
        rc = at_field(d, slot[partial ? 1 : 2], &sync_fields[partial ? 1 : 2], s);
    }
    s->has_mapped = slot[3] && !fo_wire_is_nil(slot[3]);
    if (rc == 0 && s->has_mapped)
        rc = at_field(d, slot[3], &sync_fields[3], s);
    d->counting = counting;
    d->exact = exact;
    d->pending = pending;
    d->depth--;
    return rc;
}

static const fo_wire_field cerror_fields[] = {
    FLD(fo_completion_error, "action", 1, action, c_action),
    FLD(fo_completion_error, "path", 1, path, c_path),
    FLD(fo_completion_error, "errorMessage", 1, message, fo_wire_conv_str),
};

static int c_cerror(fo_mp_dec *d, void *out)
{
    return conv_struct(d, cerror_fields, 3, out);
}

/* `errors` fills the result's errors_len and errors. */
static int c_cerrors(fo_mp_dec *d, void *out)
{
    fo_apply_result *r = out;
    void *items = NULL;
    int rc = conv_array(d, sizeof(fo_completion_error), c_cerror, &items, &r->errors_len);
    r->errors = items;
    return rc;
}

static const fo_wire_field result_fields[] = {
    FLD(fo_apply_result, "applied", 1, applied, fo_wire_conv_batch),
    FLD(fo_apply_result, "sync", 0, sync, c_sync),
    {"errors", 6, 0, 0, offsetof(fo_apply_result, errors_len),
     offsetof(fo_apply_result, errors) + sizeof(void *) - offsetof(fo_apply_result, errors_len),
     c_cerrors},
};

int fo_wire_conv_result(fo_mp_dec *d, void *out)
{
    return conv_struct(d, result_fields, 3, out);
}
