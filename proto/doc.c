#include "proto/doc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "proto/error.h"

/* Interned non-numeric keys of one document: open addressing over fo_str pointers. */
typedef struct intern_set {
    const fo_str **slots;
    uint32_t cap; /* power of two, or 0 */
    uint32_t len;
} intern_set;

/* A document's arena chunks stop doubling at 64 KiB: the unused tail of the newest chunk
 * is part of the document's memory (with 1 MiB chunks, a fifth of a 10k-item document),
 * and a malloc per 64 KiB is nothing next to the commands that fill it. */
#define DOC_MAX_CHUNK ((size_t)64 << 10)

struct fo_doc {
    fo_arena arena;
    fo_value root; /* always a FO_MAP */
    uint64_t count;
    fo_id_mode mode;
    uint64_t rng[4]; /* xoshiro256** */
    size_t dead;
    intern_set keys;
    fo_doc_limits limits;
};

/* ---- random IDs ---------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void fo_doc_seed(fo_doc *d, uint64_t seed)
{
    int i;
    for (i = 0; i < 4; i++)
        d->rng[i] = splitmix64(&seed);
}

static void seed_from_os(fo_doc *d)
{
    uint64_t s = 0;

    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)d;
    }
    fo_doc_seed(d, s);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(fo_doc *d)
{
    uint64_t *s = d->rng;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static fo_key generate_id(fo_doc *d, uint64_t attempt)
{
    if (d->mode == FO_IDS_SEQUENTIAL)
        return fo_key_from_u64(d->count + 1 + attempt);
    return fo_key_from_u64(rng_next(d) >> 11); /* [0, 2^53) */
}

/* ---- interning ----------------------------------------------------------------------- */

static void intern_destroy(intern_set *s)
{
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

static int intern_grow(intern_set *s)
{
    uint32_t ncap = s->cap ? s->cap * 2 : 64, i;
    const fo_str **ns = calloc(ncap, sizeof(*ns));

    if (!ns)
        return FO_ENOMEM;
    for (i = 0; i < s->cap; i++) {
        const fo_str *k = s->slots[i];
        uint32_t j;
        if (!k)
            continue;
        for (j = k->hash & (ncap - 1); ns[j]; j = (j + 1) & (ncap - 1))
            ;
        ns[j] = k;
    }
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
    return 0;
}

/* The document's own copy of `k`: numeric keys as they are, strings shared. */
static fo_key doc_intern(void *ctx, fo_key k)
{
    fo_doc *d = ctx;
    intern_set *s = &d->keys;
    const fo_str *ks;
    uint32_t h, j;
    fo_key nk;

    if (!k || fo_key_is_num(k, NULL))
        return k;
    if ((s->len + 1) * 2 > s->cap && intern_grow(s))
        return FO_KEY_NONE;
    ks = (const fo_str *)(uintptr_t)k; /* not numeric: an fo_str with its hash */
    h = ks->hash;
    for (j = h & (s->cap - 1); s->slots[j]; j = (j + 1) & (s->cap - 1)) {
        const fo_str *e = s->slots[j];
        if (e == ks || (e->hash == h && e->len == ks->len &&
                        memcmp(e->data, ks->data, ks->len) == 0))
            return (fo_key)(uintptr_t)e;
    }
    nk = fo_key_new(&d->arena, ks->data, ks->len);
    if (!nk)
        return FO_KEY_NONE;
    s->slots[j] = (const fo_str *)(uintptr_t)nk;
    s->len++;
    return nk;
}

/* ---- lifetime ------------------------------------------------------------------------ */

static fo_doc *doc_alloc(fo_id_mode mode)
{
    fo_doc *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    fo_arena_init(&d->arena, 4096);
    d->arena.big_blocks_on_heap = true;
    d->arena.max_chunk = DOC_MAX_CHUNK;
    d->mode = mode;
    d->limits.max_depth = FO_DOC_DEFAULT_MAX_DEPTH;
    seed_from_os(d);
    return d;
}

fo_doc *fo_doc_new(fo_id_mode mode)
{
    fo_doc *d = doc_alloc(mode);
    bool ok = true;

    if (!d)
        return NULL;
    d->root = fo_value_map(&d->arena, 4, &ok);
    if (!ok) {
        fo_doc_free(d);
        return NULL;
    }
    return d;
}

fo_doc *fo_doc_new_from(const fo_snapshot *s, fo_id_mode mode)
{
    fo_doc *d;

    if (!s->document || fo_value_type(s->document) != FO_MAP)
        return NULL;
    if (!(d = doc_alloc(mode)))
        return NULL;
    if (fo_value_copy(&d->arena, s->document, &d->root, doc_intern, d)) {
        fo_doc_free(d);
        return NULL;
    }
    d->count = s->command_count;
    return d;
}

fo_doc *fo_doc_clone(const fo_doc *src)
{
    fo_snapshot s = fo_doc_snapshot(src);
    fo_doc *d = fo_doc_new_from(&s, src->mode);

    if (d)
        d->limits = src->limits;
    return d;
}

void fo_doc_free(fo_doc *d)
{
    if (!d)
        return;
    if (d->arena.heap_bytes)
        fo_value_release(&d->arena, &d->root);
    fo_arena_destroy(&d->arena);
    intern_destroy(&d->keys);
    free(d);
}

uint64_t fo_doc_count(const fo_doc *d)
{
    return d->count;
}

const fo_value *fo_doc_root(const fo_doc *d)
{
    return &d->root;
}

fo_snapshot fo_doc_snapshot(const fo_doc *d)
{
    fo_snapshot s = {d->count, &d->root};
    return s;
}

void fo_doc_set_limits(fo_doc *d, const fo_doc_limits *l)
{
    d->limits = *l;
}

/* ---- applying a command -------------------------------------------------------------- */

/* Walks `n` segments from the root. Returns the map reached, or NULL with *failed_at set
 * to the index of the segment that did not lead to a map. Unlike the reference, null and
 * arrays are not maps (the reference throws or writes into them). */
static fo_map *navigate(const fo_doc *d, const fo_key *seg, uint32_t n, uint32_t *failed_at)
{
    fo_map *m = d->root.h.as.map;
    uint32_t i;

    for (i = 0; i < n; i++) {
        const fo_value *v = fo_map_get(m, seg[i]);
        if (!v || fo_value_type(v) != FO_MAP) {
            *failed_at = i;
            return NULL;
        }
        m = v->h.as.map;
    }
    return m;
}

static int fail(fo_arena *a, const fo_key *seg, uint32_t n, const char *prefix,
                fo_doc_result *out)
{
    static const char base[] = "No object at document path ";
    fo_path p = {seg, n};
    size_t plen, blen = prefix ? strlen(prefix) : sizeof(base) - 1;
    char *joined = fo_path_join(a, p, &plen), *msg;

    out->ok = false;
    if (!joined || !(msg = fo_arena_alloc(a, blen + plen + 1)))
        return FO_ENOMEM;
    memcpy(msg, prefix ? prefix : base, blen);
    memcpy(msg + blen, joined, plen + 1);
    out->error = msg;
    return 0;
}

static int too_deep(fo_arena *a, const fo_command *c, fo_doc_result *out)
{
    return fail(a, c->path.seg, c->path.len, "Document too deep at path ", out);
}

/* Copies `v` into the document and stores it under `k` in `m`; `absent`: the caller
 * has just looked k up and not found it, so it is added without a second lookup. */
static int put(fo_doc *d, fo_map *m, fo_key k, const fo_value *v, bool absent)
{
    fo_value copy;
    fo_key ik = doc_intern(d, k);

    if (!ik || fo_value_copy(&d->arena, v, &copy, doc_intern, d))
        return FO_ENOMEM;
    if (absent)
        return fo_map_add(m, &d->arena, ik, &copy, &d->dead);
    return fo_map_set(m, &d->arena, ik, &copy, &d->dead);
}

static int apply_create(fo_doc *d, const fo_command *c, fo_key proposed, fo_arena *ma,
                        fo_doc_result *out)
{
    const fo_key *seg = c->path.seg;
    uint32_t n = c->path.len, failed = 0, depth, attempt = 0;
    const fo_value *pd = c->parent_default;
    fo_map *target = navigate(d, seg, n, &failed);
    fo_value empty;
    const fo_value *props = c->props;
    fo_key id;
    bool ok = true;
    int rc;

    if (pd && fo_value_type(pd) != FO_MAP)
        pd = NULL;
    if (!props) {
        empty = fo_value_map(ma, 0, &ok);
        if (!ok)
            return FO_ENOMEM;
        props = &empty;
    }
    depth = n + 1 + fo_value_depth(props);
    if (depth > d->limits.max_depth || (pd && n + fo_value_depth(pd) > d->limits.max_depth))
        return too_deep(ma, c, out);
    if (!target) {
        fo_map *parent;
        if (!pd || n == 0)
            return fail(ma, seg, failed + 1, NULL, out);
        if (!(parent = navigate(d, seg, n - 1, &failed)))
            return fail(ma, seg, failed + 1, NULL, out);
        if ((rc = put(d, parent, seg[n - 1], pd, false)) != 0)
            return rc;
        target = fo_map_get(parent, seg[n - 1])->h.as.map;
    }
    do {
        id = (proposed && attempt == 0) ? proposed : generate_id(d, attempt);
        attempt++;
    } while (fo_map_get(target, id));
    if ((rc = put(d, target, id, props, true)) != 0)
        return rc;
    d->count++;
    out->ok = true;
    /* The key as stored: numeric, or interned in the document (valid until compaction). */
    out->created_id = doc_intern(d, id);
    return 0;
}

static int apply_update(fo_doc *d, const fo_command *c, fo_arena *ma, fo_doc_result *out)
{
    uint32_t failed = 0, i;
    fo_map *target = navigate(d, c->path.seg, c->path.len, &failed);
    const fo_map *props;
    int rc;

    if (!target)
        return fail(ma, c->path.seg, failed + 1, NULL, out);
    if (c->props && fo_value_type(c->props) == FO_MAP) {
        if (c->path.len + fo_value_depth(c->props) > d->limits.max_depth)
            return too_deep(ma, c, out);
        props = c->props->h.as.map;
        for (i = 0; i < fo_map_len(props); i++) {
            const fo_entry *e = &fo_map_entries(props)[i];
            if (e->key && (rc = put(d, target, e->key, &e->value, false)) != 0)
                return rc;
        }
    }
    d->count++;
    out->ok = true;
    return 0;
}

static int apply_delete(fo_doc *d, const fo_command *c, fo_arena *ma, fo_doc_result *out)
{
    uint32_t n = c->path.len, failed = 0;
    fo_map *parent;

    /* The reference deletes the key "undefined" here; we refuse. */
    if (n == 0)
        return fail(ma, NULL, 0, NULL, out);
    if (!(parent = navigate(d, c->path.seg, n - 1, &failed)))
        return fail(ma, c->path.seg, failed + 1, NULL, out);
    d->dead += fo_map_del(parent, &d->arena, c->path.seg[n - 1]);
    d->count++;
    out->ok = true;
    return 0;
}

int fo_doc_apply(fo_doc *d, const fo_command *c, fo_key proposed, fo_arena *msg_arena,
                 fo_doc_result *out)
{
    memset(out, 0, sizeof(*out));
    switch (c->action) {
    case FO_CREATE: return apply_create(d, c, proposed, msg_arena, out);
    case FO_UPDATE: return apply_update(d, c, msg_arena, out);
    case FO_DELETE: return apply_delete(d, c, msg_arena, out);
    default:
        out->ok = false;
        out->error = "Unknown command";
        return 0;
    }
}

/* ---- compaction ---------------------------------------------------------------------- */

/* Arena bytes of the interned keys (fo_str header, text and NUL, 8-aligned). */
static size_t keys_bytes(const fo_doc *d)
{
    size_t n = 0;
    uint32_t i;

    for (i = 0; i < d->keys.cap; i++)
        if (d->keys.slots[i])
            n += (sizeof(fo_str) + d->keys.slots[i]->len + 1 + 7) & ~(size_t)7;
    return n;
}

int fo_doc_compact(fo_doc *d)
{
    fo_doc tmp;
    fo_value root = fo_value_null();
    size_t need;

    memset(&tmp, 0, sizeof(tmp));
    /* One chunk of exactly what the copy takes (interned keys: their bytes once each), so
     * the compacted arena has no slack; 1 MiB chunks left up to 1 MiB unused (3.0x the
     * msgpack size at 100k items instead of 2.8x). Allocated at once so that no early
     * request is mistaken for a big one and given a chunk of its own. */
    need = fo_value_copy_size(&d->root, true) + keys_bytes(d) + 64;
    fo_arena_init(&tmp.arena, need);
    tmp.arena.big_blocks_on_heap = true;
    tmp.arena.max_chunk = DOC_MAX_CHUNK; /* and not `need` again at the next create */
    if (!fo_arena_alloc(&tmp.arena, 8))
        return FO_ENOMEM;
    if (fo_value_copy(&tmp.arena, &d->root, &root, doc_intern, &tmp)) {
        fo_value_release(&tmp.arena, &root);
        fo_arena_destroy(&tmp.arena);
        intern_destroy(&tmp.keys);
        return FO_ENOMEM;
    }
    if (d->arena.heap_bytes)
        fo_value_release(&d->arena, &d->root);
    fo_arena_destroy(&d->arena);
    intern_destroy(&d->keys);
    d->arena = tmp.arena;
    d->keys = tmp.keys;
    d->root = root;
    d->dead = 0;
    return 0;
}

int fo_doc_maybe_compact(fo_doc *d)
{
    if (d->dead > 64 * 1024 && d->dead > d->arena.used / 2)
        return fo_doc_compact(d);
    return 0;
}

void fo_doc_stats_get(const fo_doc *d, fo_doc_stats *s)
{
    s->arena_bytes = d->arena.reserved + d->arena.heap_bytes + (size_t)d->keys.cap * sizeof(void *);
    s->used_bytes = d->arena.used;
    s->dead_bytes = d->dead;
    s->interned_keys = d->keys.len;
}
