/* wire_read.c - the bounded MessagePack reader of the wire decoder (see wire_read.h). */
#include "proto/wire_read.h"

#include <stdio.h>

#include "proto/wire_scan.h"

void fo_mp_init(fo_mp_dec *d, const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                fo_err_info *err, bool exact)
{
    d->p = data;
    d->end = d->p + len;
    d->a = a;
    d->l = l;
    d->err = err;
    d->exact = exact;
    d->counting = !exact; /* the exact pass reads what fo_wire_scan has accepted */
    d->depth = 0;
    d->max_depth = l->max_depth < FO_WIRE_SCAN_MAX_DEPTH ? l->max_depth : FO_WIRE_SCAN_MAX_DEPTH;
    d->max_str = l->max_str;
    d->max_elems = l->max_elems;
    d->max_total = l->max_total;
    d->pending = 1;
    d->total = 1;
    d->nseg = 0;
}

int fo_mp_fail(fo_mp_dec *d, int code, const char *msg)
{
    fo_err_info *e = d->err;
    size_t o = 0, cap = sizeof e->path;
    uint32_t n = d->nseg < FO_MP_PATH_SEGS ? d->nseg : FO_MP_PATH_SEGS;

    e->code = code;
    e->pos = 0;
    e->path[0] = '\0';
    for (uint32_t i = 0; i < n && o + 1 < cap; i++) {
        const fo_mp_seg *s = &d->path[i];
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

int fo_mp_nomem(fo_mp_dec *d)
{
    return fo_mp_fail(d, FO_ENOMEM, "out of memory");
}

static uint64_t be_read(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads the n-byte big-endian length or value after the type byte. */
static int fixed(fo_mp_dec *d, unsigned n, uint64_t *v)
{
    if ((size_t)(d->end - d->p) < n)
        return fo_mp_fail(d, FO_EAGAIN, "truncated");
    *v = be_read(d->p, n);
    d->p += n;
    return 0;
}

static int bytes(fo_mp_dec *d, fo_mp_item *it, uint8_t t, uint64_t n)
{
    if (n > d->max_str)
        return fo_mp_fail(d, FO_ELIMIT, "string too long");
    if ((size_t)(d->end - d->p) < n)
        return fo_mp_fail(d, FO_EAGAIN, "truncated");
    it->t = t;
    it->n = (uint32_t)n;
    it->s = (const char *)d->p;
    d->p += n;
    return 0;
}

static int container(fo_mp_dec *d, fo_mp_item *it, uint8_t t, uint64_t n)
{
    it->t = t;
    it->n = (uint32_t)n; /* the count field is at most 32 bits */
    return fo_mp_open(d, it->n, t == FO_MP_MAP ? 2 * n : n);
}

int fo_mp_next_slow(fo_mp_dec *d, uint8_t c, fo_mp_item *it)
{
    static const uint8_t width[4] = {1, 2, 4, 8};
    uint64_t v = 0;
    int rc;

    if (c >= 0xe0) {
        it->t = FO_MP_INT;
        it->v.i = (int8_t)c;
        return 0;
    }
    switch (c) {
    case 0xc0: it->t = FO_MP_NIL; return 0;
    case 0xc2:
    case 0xc3:
        it->t = FO_MP_BOOL;
        it->v.b = c == 0xc3;
        return 0;
    case 0xc1: return fo_mp_fail(d, FO_EPROTO, "reserved type 0xc1");
    case 0xc4:
    case 0xc5:
    case 0xc6:
        if ((rc = fixed(d, width[c - 0xc4], &v)) != 0)
            return rc;
        return bytes(d, it, FO_MP_BIN, v);
    case 0xd9:
    case 0xda:
    case 0xdb:
        if ((rc = fixed(d, width[c - 0xd9], &v)) != 0)
            return rc;
        return bytes(d, it, FO_MP_STR, v);
    case 0xca: {
        if ((rc = fixed(d, 4, &v)) != 0)
            return rc;
        uint32_t bits = (uint32_t)v;
        float f;
        memcpy(&f, &bits, sizeof f);
        it->t = FO_MP_FLOAT;
        it->v.f = f;
        return 0;
    }
    case 0xcb:
        if ((rc = fixed(d, 8, &v)) != 0)
            return rc;
        it->t = FO_MP_FLOAT;
        memcpy(&it->v.f, &v, sizeof v);
        return 0;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if ((rc = fixed(d, width[c - 0xcc], &v)) != 0)
            return rc;
        it->t = FO_MP_UINT;
        it->v.u = v;
        return 0;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        unsigned w = width[c - 0xd0];
        if ((rc = fixed(d, w, &v)) != 0)
            return rc;
        int64_t i = w == 8 ? (int64_t)v : (int64_t)(v << (64 - 8 * w)) >> (64 - 8 * w);
        if (i >= 0) {
            it->t = FO_MP_UINT;
            it->v.u = (uint64_t)i;
        } else {
            it->t = FO_MP_INT;
            it->v.i = i;
        }
        return 0;
    }
    case 0xdc:
    case 0xdd:
        if ((rc = fixed(d, c == 0xdc ? 2 : 4, &v)) != 0)
            return rc;
        return container(d, it, FO_MP_ARRAY, v);
    case 0xde:
    case 0xdf:
        if ((rc = fixed(d, c == 0xde ? 2 : 4, &v)) != 0)
            return rc;
        return container(d, it, FO_MP_MAP, v);
    default: return fo_mp_fail(d, FO_EPROTO, "ext types are not allowed");
    }
}

/* Recursion is bounded: fo_mp_next refuses containers past max_depth (<= 32). */
int fo_mp_skip(fo_mp_dec *d)
{
    fo_mp_item it;
    int rc = fo_mp_next(d, &it);
    if (rc || (it.t != FO_MP_ARRAY && it.t != FO_MP_MAP))
        return rc;
    uint64_t k = it.t == FO_MP_MAP ? 2 * (uint64_t)it.n : it.n;
    d->depth++;
    for (; k; k--)
        if ((rc = fo_mp_skip(d)) != 0)
            return rc;
    d->depth--;
    return 0;
}

int fo_mp_check_str_slow(fo_mp_dec *d, const fo_mp_item *it)
{
    if (it->t != FO_MP_STR)
        return fo_mp_fail(d, FO_EINVAL, "expected str");
    if (!fo_utf8_valid((const uint8_t *)it->s, it->n))
        return fo_mp_fail(d, FO_EINVAL, "invalid UTF-8");
    return 0;
}

/* Building a small map, a key whose bytes no earlier key has is added without a lookup
 * (equal keys have equal bytes: a numeric key has one canonical spelling). */
#define DUP_CHECK FO_MAP_LINEAR

static int conv_map(fo_mp_dec *d, uint32_t n, fo_value *out)
{
    struct {
        const char *s;
        uint32_t n;
    } seen[DUP_CHECK];
    bool ok = true;
    *out = fo_value_map(d->a, n, &ok);
    if (!ok)
        return fo_mp_nomem(d);
    fo_map *m = out->h.as.map;
    d->depth++;
    for (uint32_t i = 0; i < n; i++) {
        fo_mp_item k, v;
        int rc = fo_mp_next_key(d, &k);
        if (rc)
            return rc;
        if ((rc = fo_mp_check_str(d, &k)) != 0)
            return rc;
        fo_key key = fo_key_new(d->a, k.s, k.n);
        if (key == FO_KEY_NONE)
            return fo_mp_nomem(d);
        fo_value val;
        fo_mp_push_name(d, k.s, k.n);
        if ((rc = fo_mp_next(d, &v)) != 0 || (rc = fo_mp_conv_item(d, &v, &val)) != 0)
            return rc;
        fo_mp_pop(d);
        bool fresh = n <= DUP_CHECK;
        for (uint32_t j = 0; fresh && j < i; j++)
            fresh = seen[j].n != k.n || memcmp(seen[j].s, k.s, k.n) != 0;
        if (n <= DUP_CHECK) {
            seen[i].s = k.s;
            seen[i].n = k.n;
        }
        if ((fresh ? fo_map_add : fo_map_set)(m, d->a, key, &val, NULL) != 0)
            return fo_mp_nomem(d);
    }
    d->depth--;
    return 0;
}

int fo_mp_conv_item(fo_mp_dec *d, const fo_mp_item *it, fo_value *out)
{
    bool ok = true;
    int rc;

    switch ((fo_mp_type)it->t) {
    case FO_MP_NIL: *out = fo_value_null(); return 0;
    case FO_MP_BOOL: *out = fo_value_bool(it->v.b); return 0;
    case FO_MP_UINT: *out = fo_value_uint(it->v.u); return 0;
    case FO_MP_INT: *out = fo_value_int(it->v.i); return 0;
    case FO_MP_FLOAT: *out = fo_value_float(it->v.f); return 0;
    case FO_MP_STR:
        if ((rc = fo_mp_check_str(d, it)) != 0)
            return rc;
        *out = fo_value_str(d->a, it->s, it->n, &ok);
        return ok ? 0 : fo_mp_nomem(d);
    case FO_MP_BIN: return fo_mp_fail(d, FO_EINVAL, "bin is not allowed (use str)");
    case FO_MP_ARRAY:
        *out = fo_value_array(d->a, it->n, &ok);
        if (!ok)
            return fo_mp_nomem(d);
        d->depth++;
        for (uint32_t i = 0; i < it->n; i++) {
            fo_mp_item e;
            fo_mp_push_idx(d, i);
            if ((rc = fo_mp_next(d, &e)) != 0 ||
                (rc = fo_mp_conv_item(d, &e, &out->h.as.items[i])) != 0)
                return rc;
            fo_mp_pop(d);
        }
        d->depth--;
        return 0;
    case FO_MP_MAP: return conv_map(d, it->n, out);
    }
    return fo_mp_fail(d, FO_EINVAL, "unsupported type");
}

/* ---- spliceable completions of an encoded batch -------------------------------------- */

static bool key_is(const fo_mp_item *k, const char *name)
{
    size_t n = strlen(name);
    return k->t == FO_MP_STR && k->n == n && memcmp(k->s, name, n) == 0;
}

int fo_wire_batch_items(const void *p, size_t n, uint32_t skip, bool check, const void **items,
                        size_t *len, uint32_t *count)
{
    fo_wire_limits l;
    fo_err_info err;
    fo_mp_dec d;
    fo_mp_item it;
    const uint8_t *start;

    fo_wire_limits_default(&l);
    fo_mp_init(&d, p, n, &l, NULL, &err, false);
    d.counting = false; /* bounded reads only: nothing is allocated from the counts */
    /* {from: uint, completions: [...]}, in that order: the completions end the bytes. */
    if (fo_mp_next(&d, &it) || it.t != FO_MP_MAP || it.n != 2 || fo_mp_open(&d, it.n, 4))
        return FO_EPROTO;
    if (fo_mp_next(&d, &it) || !key_is(&it, "from") || fo_mp_next(&d, &it) || it.t != FO_MP_UINT)
        return FO_EPROTO;
    if (fo_mp_next(&d, &it) || !key_is(&it, "completions") || fo_mp_next(&d, &it) ||
        it.t != FO_MP_ARRAY || fo_mp_open(&d, it.n, it.n))
        return FO_EPROTO;
    if (skip > it.n)
        return FO_ELIMIT;
    d.depth++;
    for (uint32_t i = 0; i < skip; i++)
        if (fo_mp_skip(&d))
            return FO_EPROTO;
    start = d.p;
    if (check) {
        for (uint32_t i = skip; i < it.n; i++)
            if (fo_mp_skip(&d))
                return FO_EPROTO;
        if (d.p != d.end)
            return FO_EPROTO;
    }
    *items = start;
    *len = (size_t)(d.end - start);
    *count = it.n - skip;
    return 0;
}
