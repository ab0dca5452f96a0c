#include "proto/pathmap.h"

#include <string.h>

#include "proto/error.h"

/* Hash of a path prefix, built one segment at a time so that every prefix of a path is
 * hashed in one pass. */
static inline uint32_t hash_step(uint32_t h, fo_key k)
{
    uint64_t x = ((uint64_t)h << 32 | fo_key_hash(k)) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) ^ (uint32_t)x;
}

static uint32_t path_hash(fo_path p)
{
    uint32_t h = 0x811C9DC5u, i;
    for (i = 0; i < p.len; i++)
        h = hash_step(h, p.seg[i]);
    return h;
}

void fo_pathmap_init(fo_pathmap *pm, fo_arena *a)
{
    memset(pm, 0, sizeof(*pm));
    pm->arena = a;
}

static int find(const fo_pathmap *pm, fo_path p, uint32_t h)
{
    uint32_t mask, i;

    if (!pm->icap)
        return -1;
    mask = pm->icap - 1;
    for (i = h & mask; pm->index[i]; i = (i + 1) & mask) {
        uint32_t k = pm->index[i] - 1;
        if (pm->hashes[k] == h && fo_path_eq(pm->items[k].from, p))
            return (int)k;
    }
    return -1;
}

static int grow(fo_pathmap *pm)
{
    uint32_t ncap = pm->cap ? pm->cap * 2 : 8, nicap = ncap * 2, i;
    fo_path_mapping *items = fo_arena_alloc(pm->arena, ncap * sizeof(*items));
    uint32_t *hashes = fo_arena_alloc(pm->arena, ncap * sizeof(*hashes));
    uint32_t *index = fo_arena_calloc(pm->arena, nicap * sizeof(*index));

    if (!items || !hashes || !index)
        return FO_ENOMEM;
    if (pm->len) {
        memcpy(items, pm->items, pm->len * sizeof(*items));
        memcpy(hashes, pm->hashes, pm->len * sizeof(*hashes));
    }
    for (i = 0; i < pm->len; i++) {
        uint32_t j = hashes[i] & (nicap - 1);
        while (index[j])
            j = (j + 1) & (nicap - 1);
        index[j] = i + 1;
    }
    pm->items = items;
    pm->hashes = hashes;
    pm->index = index;
    pm->cap = ncap;
    pm->icap = nicap;
    return 0;
}

static int put_hashed(fo_pathmap *pm, fo_path from, fo_path to, uint32_t h)
{
    int k = find(pm, from, h);
    fo_path tc, fc;
    uint32_t j;

    if (fo_path_copy(pm->arena, to, &tc))
        return FO_ENOMEM;
    if (k >= 0) {
        pm->items[k].to = tc;
        return 0;
    }
    if (pm->len == pm->cap && grow(pm))
        return FO_ENOMEM;
    if (fo_path_copy(pm->arena, from, &fc))
        return FO_ENOMEM;
    pm->items[pm->len].from = fc;
    pm->items[pm->len].to = tc;
    pm->hashes[pm->len] = h;
    for (j = h & (pm->icap - 1); pm->index[j]; j = (j + 1) & (pm->icap - 1))
        ;
    pm->index[j] = pm->len + 1;
    pm->len++;
    return 0;
}

int fo_pathmap_put(fo_pathmap *pm, fo_path from, fo_path to)
{
    return put_hashed(pm, from, to, path_hash(from));
}

int fo_pathmap_load(fo_pathmap *pm, const fo_path_mapping *m, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++)
        if (fo_pathmap_put(pm, m[i].from, m[i].to))
            return FO_ENOMEM;
    return 0;
}

int fo_pathmap_get(fo_pathmap *pm, fo_path p, fo_path *out)
{
    uint32_t stack_h[33], *h = stack_h, i, len;

    if (pm->len == 0 || p.len == 0)
        return 0;
    if (p.len > 32 && !(h = fo_arena_alloc(pm->arena, (p.len + 1) * sizeof(*h))))
        return FO_ENOMEM;
    h[0] = 0x811C9DC5u;
    for (i = 0; i < p.len; i++)
        h[i + 1] = hash_step(h[i], p.seg[i]);
    /* Longest recorded prefix wins. */
    for (len = p.len; len > 0; len--) {
        fo_path prefix = {p.seg, len};
        int k = find(pm, prefix, h[len]);
        fo_path to;
        fo_key *seg;

        if (k < 0)
            continue;
        to = pm->items[k].to;
        if (!(seg = fo_arena_alloc(pm->arena, ((size_t)to.len + p.len - len + 1) *
                                                  sizeof(fo_key))))
            return FO_ENOMEM;
        if (to.len)
            memcpy(seg, to.seg, to.len * sizeof(fo_key));
        if (p.len > len)
            memcpy(seg + to.len, p.seg + len, (p.len - len) * sizeof(fo_key));
        out->seg = seg;
        out->len = to.len + p.len - len;
        /* Remembered for the whole path, as the reference does. */
        if (put_hashed(pm, p, *out, h[p.len]))
            return FO_ENOMEM;
        return 1;
    }
    return 0;
}
