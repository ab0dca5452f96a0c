/* tree.c - whole-tree operations declared in value.h (copy, equality, sizes, release,
 * depth). They reach maps through value.h's fo_map_* functions only. */
#include "proto/value.h"

#include <math.h>
#include <string.h>

#include "proto/error.h"

/* Copies a key into `a` (numeric keys need no copy); the cached hash comes along. */
static fo_key key_copy(fo_arena *a, fo_key k)
{
    const fo_str *s;
    fo_str *c;

    if (!k || fo_key_is_num(k, NULL))
        return k;
    s = (const fo_str *)(uintptr_t)k;
    c = fo_arena_memdup(a, s, sizeof(fo_str) + s->len + 1);
    return c ? (fo_key)(uintptr_t)c : FO_KEY_NONE;
}

int fo_value_copy(fo_arena *a, const fo_value *v, fo_value *out, fo_key_intern_fn intern, void *ctx)
{
    bool ok = true;

    switch (fo_value_type(v)) {
    case FO_STR: {
        size_t len;
        const char *s;

        if (v->in.ilen) { /* inline: the value is the string */
            *out = *v;
            return 0;
        }
        s = fo_value_strbuf(v, &len);
        *out = fo_value_str(a, s, len, &ok);
        return ok ? 0 : FO_ENOMEM;
    }
    case FO_ARRAY: {
        uint32_t i, n = v->h.len;
        fo_value arr = fo_value_array(a, n, &ok);
        if (!ok)
            return FO_ENOMEM;
        for (i = 0; i < n; i++) {
            int rc = fo_value_copy(a, &v->h.as.items[i], &arr.h.as.items[i], intern, ctx);
            if (rc)
                return rc;
        }
        *out = arr;
        return 0;
    }
    case FO_MAP: {
        const fo_map *src = v->h.as.map;
        const fo_entry *e = fo_map_entries(src);
        uint32_t i, n = fo_map_len(src);
        fo_value mv = fo_value_map(a, fo_map_count(src), &ok);

        if (!ok)
            return FO_ENOMEM;
        for (i = 0; i < n; i++) {
            fo_value val;
            fo_key k;
            int rc;

            if (!e[i].key)
                continue;
            k = intern ? intern(ctx, e[i].key) : key_copy(a, e[i].key);
            if (!k)
                return FO_ENOMEM;
            if ((rc = fo_value_copy(a, &e[i].value, &val, intern, ctx)) != 0)
                return rc;
            /* Keys of a map are distinct and the capacity is exact: no lookup, no growth. */
            if ((rc = fo_map_add(mv.h.as.map, a, k, &val, NULL)) != 0)
                return rc;
        }
        *out = mv;
        return 0;
    }
    default: *out = *v; return 0;
    }
}

bool fo_value_eq(const fo_value *a, const fo_value *b)
{
    fo_type t = fo_value_type(a);

    if (t != fo_value_type(b))
        return false;
    switch (t) {
    case FO_NULL: return true;
    case FO_BOOL: return a->h.as.b == b->h.as.b;
    case FO_INT: return a->h.as.i == b->h.as.i;
    case FO_UINT: return a->h.as.u == b->h.as.u;
    case FO_FLOAT: return a->h.as.f == b->h.as.f || (isnan(a->h.as.f) && isnan(b->h.as.f));
    case FO_STR: {
        size_t la, lb;
        const char *sa = fo_value_strbuf(a, &la), *sb = fo_value_strbuf(b, &lb);
        return la == lb && (la == 0 || memcmp(sa, sb, la) == 0);
    }
    case FO_ARRAY: {
        uint32_t i;
        if (a->h.len != b->h.len)
            return false;
        for (i = 0; i < a->h.len; i++)
            if (!fo_value_eq(&a->h.as.items[i], &b->h.as.items[i]))
                return false;
        return true;
    }
    case FO_MAP: {
        const fo_map *ma = a->h.as.map, *mb = b->h.as.map;
        const fo_entry *e = fo_map_entries(ma);
        uint32_t i, n = fo_map_len(ma);

        if (fo_map_count(ma) != fo_map_count(mb))
            return false;
        for (i = 0; i < n; i++) {
            const fo_value *o;
            if (!e[i].key)
                continue;
            o = fo_map_get(mb, e[i].key);
            if (!o || !fo_value_eq(&e[i].value, o))
                return false;
        }
        return true;
    }
    }
    return false;
}

size_t fo_value_copy_size(const fo_value *v, bool big_blocks_on_heap)
{
    switch (fo_value_type(v)) {
    case FO_STR: return v->in.ilen ? 0 : (((size_t)v->h.len + 8) & ~(size_t)7);
    case FO_ARRAY: {
        size_t n = ((size_t)v->h.len * sizeof(fo_value) + 7) & ~(size_t)7;
        uint32_t i;
        for (i = 0; i < v->h.len; i++)
            n += fo_value_copy_size(&v->h.as.items[i], big_blocks_on_heap);
        return n;
    }
    case FO_MAP: {
        const fo_map *m = v->h.as.map;
        const fo_entry *e = fo_map_entries(m);
        size_t n = fo_map_new_bytes(fo_map_count(m), big_blocks_on_heap);
        uint32_t i, len = fo_map_len(m);

        for (i = 0; i < len; i++)
            if (e[i].key)
                n += fo_value_copy_size(&e[i].value, big_blocks_on_heap);
        return n;
    }
    default: return 0;
    }
}

void fo_value_release(fo_arena *a, const fo_value *v)
{
    uint32_t i;

    switch (fo_value_type(v)) {
    case FO_ARRAY:
        for (i = 0; i < v->h.len; i++)
            fo_value_release(a, &v->h.as.items[i]);
        break;
    case FO_MAP: {
        fo_map *m = v->h.as.map;
        const fo_entry *e = fo_map_entries(m);
        uint32_t n = fo_map_len(m);

        for (i = 0; i < n; i++)
            if (e[i].key)
                fo_value_release(a, &e[i].value);
        fo_map_free_block(m, a);
        break;
    }
    default: break;
    }
}

size_t fo_value_footprint(const fo_value *v)
{
    switch (fo_value_type(v)) {
    case FO_STR: return v->in.ilen ? 0 : (((size_t)v->h.len + 8) & ~(size_t)7);
    case FO_ARRAY: {
        size_t n = (size_t)v->h.len * sizeof(fo_value);
        uint32_t i;
        for (i = 0; i < v->h.len; i++)
            n += fo_value_footprint(&v->h.as.items[i]);
        return n;
    }
    case FO_MAP: {
        const fo_map *m = v->h.as.map;
        const fo_entry *e = fo_map_entries(m);
        size_t n = fo_map_bytes(m);
        uint32_t i, len = fo_map_len(m);

        for (i = 0; i < len; i++)
            if (e[i].key)
                n += fo_value_footprint(&e[i].value);
        return n;
    }
    default: return 0;
    }
}

uint32_t fo_value_depth(const fo_value *v)
{
    uint32_t d = 0, i;

    switch (fo_value_type(v)) {
    case FO_ARRAY:
        for (i = 0; i < v->h.len; i++) {
            uint32_t c = fo_value_depth(&v->h.as.items[i]);
            if (c > d)
                d = c;
        }
        return d + 1;
    case FO_MAP: {
        const fo_map *m = v->h.as.map;
        const fo_entry *e = fo_map_entries(m);
        uint32_t n = fo_map_len(m);

        for (i = 0; i < n; i++) {
            if (e[i].key) {
                uint32_t c = fo_value_depth(&e[i].value);
                if (c > d)
                    d = c;
            }
        }
        return d + 1;
    }
    default: return 0;
    }
}
