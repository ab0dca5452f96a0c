#include "proto/value.h"

#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
/* Inlined: most keys hashed are 8-byte numeric IDs, where a call into the shared library
 * costs more than the hash itself. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "proto/error.h"

/* ---- hashing ------------------------------------------------------------------------- */

/* The only process-wide state of the library: a random hash seed, written once. Keys
 * cache their hash, so every arena of the process must agree on the seed. */
static uint64_t hash_seed;
static int hash_seed_ready; /* acquire/release: pthread_once on every hash showed in profiles */
static pthread_once_t hash_seed_once = PTHREAD_ONCE_INIT;

static void init_hash_seed(void)
{
    uint64_t s = 0;

    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
    }
    hash_seed = s;
    __atomic_store_n(&hash_seed_ready, 1, __ATOMIC_RELEASE);
}

uint64_t fo_hash_seed(void)
{
    if (__atomic_load_n(&hash_seed_ready, __ATOMIC_ACQUIRE))
        return hash_seed;
    pthread_once(&hash_seed_once, init_hash_seed);
    return hash_seed;
}

static uint32_t hash_bytes(const void *p, size_t n)
{
    return (uint32_t)XXH3_64bits_withSeed(p, n, fo_hash_seed());
}

/* ---- keys ---------------------------------------------------------------------------- */

static inline bool key_is_num(fo_key k)
{
    return (k & 1) != 0;
}

static inline const fo_str *key_str(fo_key k)
{
    return (const fo_str *)(uintptr_t)k;
}

fo_key fo_key_from_u64(uint64_t n)
{
    return (n << 1) | 1;
}

fo_key fo_key_new(fo_arena *a, const char *s, size_t len)
{
    fo_str *str;

    /* Canonical decimals (what generated IDs are) live in the key itself. */
    if (len >= 1 && len <= 18 && (len == 1 || s[0] != '0')) {
        uint64_t n = 0;
        size_t i;

        for (i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                break;
            n = n * 10 + (uint64_t)(s[i] - '0');
        }
        if (i == len)
            return fo_key_from_u64(n);
    }
    if (len > FO_KEY_MAXLEN)
        return FO_KEY_NONE;
    str = fo_arena_alloc(a, sizeof(fo_str) + len + 1);
    if (!str)
        return FO_KEY_NONE;
    str->len = (uint32_t)len;
    str->hash = hash_bytes(s, len);
    if (len)
        memcpy(str->data, s, len);
    str->data[len] = '\0';
    return (fo_key)(uintptr_t)str;
}

fo_key fo_key_new_cstr(fo_arena *a, const char *s)
{
    return fo_key_new(a, s, strlen(s));
}

bool fo_key_is_num(fo_key k, uint64_t *n)
{
    if (!key_is_num(k))
        return false;
    if (n)
        *n = k >> 1;
    return true;
}

/* Map lookups compare a key per probe: inlined there, with the common answers first (the
 * same key, or a numeric key against anything else). */
static inline bool key_eq(fo_key a, fo_key b)
{
    const fo_str *x, *y;

    if (a == b)
        return true;
    if (key_is_num(a) || key_is_num(b) || !a || !b)
        return false;
    x = key_str(a);
    y = key_str(b);
    return x->len == y->len && x->hash == y->hash && memcmp(x->data, y->data, x->len) == 0;
}

bool fo_key_eq(fo_key a, fo_key b)
{
    return key_eq(a, b);
}

uint32_t fo_key_hash(fo_key k)
{
    if (key_is_num(k)) {
        uint64_t n = k >> 1;
        return hash_bytes(&n, sizeof(n));
    }
    return k ? key_str(k)->hash : 0;
}

const char *fo_key_str(fo_key k, char buf[20], size_t *len)
{
    if (key_is_num(k)) {
        uint64_t n = k >> 1, m = n;
        size_t i = 1;

        while (m >= 10) { /* the number of digits, then the digits from the last one */
            m /= 10;
            i++;
        }
        *len = i;
        buf[i] = '\0';
        do {
            buf[--i] = (char)('0' + n % 10);
            n /= 10;
        } while (n);
        return buf;
    }
    if (!k) {
        buf[0] = '\0';
        *len = 0;
        return buf;
    }
    *len = key_str(k)->len;
    return key_str(k)->data;
}

/* ---- scalar constructors ------------------------------------------------------------- */

fo_value fo_value_null(void)
{
    fo_value v;
    memset(&v, 0, sizeof(v));
    return v;
}

fo_value fo_value_bool(bool b)
{
    fo_value v = fo_value_null();
    v.h.type = FO_BOOL;
    v.h.as.b = b;
    return v;
}

fo_value fo_value_int(int64_t i)
{
    fo_value v = fo_value_null();
    v.h.type = FO_INT;
    v.h.as.i = i;
    return v;
}

fo_value fo_value_uint(uint64_t u)
{
    fo_value v = fo_value_null();
    if (u <= (uint64_t)INT64_MAX) {
        v.h.type = FO_INT;
        v.h.as.i = (int64_t)u;
    } else {
        v.h.type = FO_UINT;
        v.h.as.u = u;
    }
    return v;
}

fo_value fo_value_float(double f)
{
    fo_value v = fo_value_null();
    v.h.type = FO_FLOAT;
    v.h.as.f = f;
    return v;
}

fo_value fo_value_str_static(const char *s, size_t len)
{
    fo_value v = fo_value_null();

    v.in.type = FO_STR;
    if (len <= FO_STR_INLINE) {
        v.in.ilen = (uint8_t)(len + 1);
        if (len)
            memcpy(v.in.ibuf, s, len);
    } else {
        v.h.len = (uint32_t)len;
        v.h.as.s = s;
    }
    return v;
}

fo_value fo_value_str(fo_arena *a, const char *s, size_t len, bool *ok)
{
    char *copy;

    if (len <= FO_STR_INLINE)
        return fo_value_str_static(s, len);
    if (len > UINT32_MAX || !(copy = fo_arena_strndup(a, s, len))) {
        *ok = false;
        return fo_value_null();
    }
    return fo_value_str_static(copy, len);
}

const char *fo_value_strbuf(const fo_value *v, size_t *len)
{
    if (v->in.ilen) {
        *len = (size_t)v->in.ilen - 1;
        return v->in.ibuf;
    }
    *len = v->h.len;
    return v->h.as.s;
}

fo_value fo_value_array(fo_arena *a, uint32_t n, bool *ok)
{
    fo_value v = fo_value_null();
    fo_value *items = NULL;

    if (n && !(items = fo_arena_calloc(a, (size_t)n * sizeof(fo_value)))) {
        *ok = false;
        return v;
    }
    v.h.type = FO_ARRAY;
    v.h.len = n;
    v.h.as.items = items;
    return v;
}

/* ---- maps ---------------------------------------------------------------------------- */

/* An inline map's room is at least one entry, so that it can hold an fo_map_ext. */
_Static_assert(sizeof(fo_map) == 8, "the map header is 8 bytes");
_Static_assert(sizeof(fo_map_ext) <= sizeof(fo_entry), "fo_map_ext fits in one entry");

static inline fo_map_ext *ext_of(fo_map *m)
{
    return (fo_map_ext *)(void *)(m + 1);
}

static inline fo_entry *inline_entries(fo_map *m)
{
    return (fo_entry *)(void *)(m + 1);
}

static inline uint32_t inline_room(uint32_t cap)
{
    return cap ? cap : 1;
}

/* The index, when there is one, is the start of the block; the entries follow it. */
static inline size_t index_bytes(uint8_t ilog2)
{
    return ilog2 ? sizeof(uint32_t) << ilog2 : 0;
}

static inline uint32_t *ext_index(const fo_map_ext *x)
{
    return (uint32_t *)(void *)((char *)x->entries - index_bytes(x->ilog2));
}

static inline size_t block_size(uint32_t cap, uint8_t ilog2)
{
    return index_bytes(ilog2) + (size_t)cap * sizeof(fo_entry);
}

/* Entries (deleted ones included) an index of 1 << ilog2 slots takes: at most half full,
 * so that probes stay short (slots are 4 bytes: a 3/4 load saved 5% of a 10k-item document's
 * memory but cost 5-10% of apply speed in bench/micro); no index up to FO_MAP_LINEAR. */
static inline uint64_t index_room(uint8_t ilog2)
{
    return ilog2 ? ((uint64_t)1 << ilog2) >> 1 : FO_MAP_LINEAR;
}

static uint8_t index_log2_for(uint64_t n)
{
    uint8_t l = 4;

    if (n <= FO_MAP_LINEAR)
        return 0;
    while (index_room(l) < n)
        l++;
    return l;
}

static inline bool block_on_heap(const fo_arena *a, size_t size)
{
    return a->big_blocks_on_heap && size >= FO_MAP_HEAP_MIN;
}

/* An index slot is 0 (empty) or the entry's position + 1. Indexes of up to 2^24 slots (so
 * positions below 2^23) keep the top 8 bits of the key's hash in the slot's top
 * byte, so that a probe passes other keys without loading their entries (each such load
 * is a cache miss in a big map). Depends on the index size only: growing the entries
 * alone keeps the index as it is. */
#define TAG_MASK 0xFF000000u
#define TAGGED(x) ((x)->ilog2 <= 24)

static void index_insert(fo_map_ext *x, uint32_t pos, uint32_t hash)
{
    uint32_t mask = ((uint32_t)1 << x->ilog2) - 1;
    uint32_t *idx = ext_index(x);
    uint32_t i = hash & mask;

    while (idx[i])
        i = (i + 1) & mask;
    idx[i] = (pos + 1) | (TAGGED(x) ? hash & TAG_MASK : 0);
}

/* Squeezes deleted entries out of `e[0..*len)`; returns how many were removed. */
static uint32_t squeeze(fo_entry *e, uint32_t *len)
{
    uint32_t i, j = 0, n = *len;

    for (i = 0; i < n; i++) {
        if (e[i].key) {
            if (i != j)
                e[j] = e[i];
            j++;
        }
    }
    *len = j;
    return n - j;
}

/* Rebuilds the index of an external map from its entries. */
static void index_rebuild(fo_map_ext *x)
{
    uint32_t i;

    if (!x->ilog2)
        return;
    memset(ext_index(x), 0, index_bytes(x->ilog2));
    for (i = 0; i < x->len; i++)
        index_insert(x, i, fo_key_hash(x->entries[i].key));
}

size_t fo_map_new_bytes(uint32_t cap, bool big_blocks_on_heap)
{
    size_t block;

    if (cap <= FO_MAP_LINEAR)
        return sizeof(fo_map) + (size_t)inline_room(cap) * sizeof(fo_entry);
    block = block_size(cap, index_log2_for(cap));
    return sizeof(fo_map) + sizeof(fo_entry) +
           (big_blocks_on_heap && block >= FO_MAP_HEAP_MIN ? 0 : block);
}

size_t fo_map_bytes(const fo_map *m)
{
    const fo_map_ext *x;

    if (!m->ext)
        return sizeof(fo_map) + (size_t)inline_room(m->cap) * sizeof(fo_entry);
    x = fo_map_ext_of(m);
    return sizeof(fo_map) + sizeof(fo_entry) + (x->heap ? 0 : block_size(x->cap, x->ilog2));
}

void fo_map_free_block(fo_map *m, fo_arena *a)
{
    fo_map_ext *x;

    if (!m->ext || !(x = ext_of(m))->heap)
        return;
    a->heap_bytes -= block_size(x->cap, x->ilog2);
    free(ext_index(x));
    memset(x, 0, sizeof(*x));
}

/* Gives `x` a block of `cap` entries and 1 << ilog2 index slots, from the heap when it is
 * big in an arena that asks for it. */
static int ext_alloc(fo_map_ext *x, fo_arena *a, uint32_t cap, uint8_t ilog2)
{
    size_t size = block_size(cap, ilog2);
    char *block;

    x->heap = block_on_heap(a, size);
    block = x->heap ? malloc(size) : fo_arena_alloc(a, size);
    if (!block)
        return FO_ENOMEM;
    if (x->heap)
        a->heap_bytes += size;
    x->entries = (fo_entry *)(void *)(block + index_bytes(ilog2));
    x->cap = cap;
    x->ilog2 = ilog2;
    if (ilog2)
        memset(block, 0, index_bytes(ilog2));
    return 0;
}

fo_value fo_value_map(fo_arena *a, uint32_t cap, bool *ok)
{
    fo_value v = fo_value_null();
    fo_map *m;

    if (cap <= FO_MAP_LINEAR) {
        m = fo_arena_alloc(a, sizeof(fo_map) + (size_t)inline_room(cap) * sizeof(fo_entry));
        if (!m) {
            *ok = false;
            return v;
        }
        memset(m, 0, sizeof(*m));
        m->cap = (uint8_t)cap;
    } else {
        fo_map_ext *x;

        if (!(m = fo_arena_alloc(a, sizeof(fo_map) + sizeof(fo_entry)))) {
            *ok = false;
            return v;
        }
        memset(m, 0, sizeof(*m) + sizeof(fo_entry));
        m->ext = 1;
        x = ext_of(m);
        if (ext_alloc(x, a, cap, index_log2_for(cap))) {
            *ok = false;
            return v;
        }
    }
    v.h.type = FO_MAP;
    v.h.as.map = m;
    return v;
}

static fo_entry *linear_find(fo_entry *e, uint32_t n, fo_key k)
{
    uint32_t i;

    for (i = 0; i < n; i++)
        if (key_eq(e[i].key, k))
            return &e[i];
    return NULL;
}

static fo_entry *map_find(const fo_map *m, fo_key k)
{
    const fo_map_ext *x;

    if (!k)
        return NULL;
    if (!m->ext)
        return linear_find(fo_map_entries(m), m->len, k);
    x = fo_map_ext_of(m);
    if (!x->ilog2) {
        return linear_find(x->entries, x->len, k);
    } else {
        uint32_t mask = ((uint32_t)1 << x->ilog2) - 1, h = fo_key_hash(k), i;
        uint32_t tag = TAGGED(x) ? h & TAG_MASK : 0, pos = TAGGED(x) ? ~TAG_MASK : ~0u;
        const uint32_t *idx = ext_index(x);

        for (i = h & mask; idx[i]; i = (i + 1) & mask) {
            fo_entry *e;
            if ((idx[i] & ~pos) != tag)
                continue;
            e = &x->entries[(idx[i] & pos) - 1];
            if (key_eq(e->key, k))
                return e;
        }
        return NULL;
    }
}

fo_value *fo_map_get(const fo_map *m, fo_key k)
{
    fo_entry *e = map_find(m, k);
    return e ? &e->value : NULL;
}

/* An inline map that is full moves its entries to a block of its own (twice its room, as
 * arena blocks grow), and its room (apart from the fo_map_ext written over it) is dead. */
static int inline_to_ext(fo_map *m, fo_arena *a, size_t *dead)
{
    fo_map_ext x;
    uint32_t len = m->len, cap = m->cap < 4 ? 4 : m->cap * 2;

    memset(&x, 0, sizeof(x));
    if (ext_alloc(&x, a, cap, index_log2_for(cap)))
        return FO_ENOMEM;
    if (len)
        memcpy(x.entries, inline_entries(m), (size_t)len * sizeof(fo_entry));
    x.len = len;
    x.live = m->live;
    index_rebuild(&x);
    if (dead)
        *dead += (size_t)(inline_room(m->cap) - 1) * sizeof(fo_entry);
    m->ext = 1;
    m->len = m->live = m->cap = 0;
    *ext_of(m) = x;
    return 0;
}

/* Moves an external map to a block of `cap` entries and 1 << ilog2 index slots. A heap
 * block is realloc'd (no copy when glibc can grow it in place); the index is rebuilt only
 * when its size changes, since entry positions do not. */
static int ext_reshape(fo_map_ext *x, fo_arena *a, uint32_t cap, uint8_t ilog2, size_t *dead)
{
    size_t osize = block_size(x->cap, x->ilog2), size = block_size(cap, ilog2);
    size_t oib = index_bytes(x->ilog2), ib = index_bytes(ilog2);
    char *old = (char *)ext_index(x), *block;
    bool heap = block_on_heap(a, size);

    if (heap && x->heap) {
        if (!(block = realloc(old, size)))
            return FO_ENOMEM;
        if (x->len && ib != oib)
            memmove(block + ib, block + oib, (size_t)x->len * sizeof(fo_entry));
        a->heap_bytes += size - osize;
    } else {
        if (!(block = heap ? malloc(size) : fo_arena_alloc(a, size)))
            return FO_ENOMEM;
        if (ib == oib)
            memcpy(block, old, oib + (size_t)x->len * sizeof(fo_entry));
        else if (x->len)
            memcpy(block + ib, old + oib, (size_t)x->len * sizeof(fo_entry));
        if (heap)
            a->heap_bytes += size;
        if (x->heap) { /* cannot happen (blocks only grow) but keeps the books right */
            a->heap_bytes -= osize;
            free(old);
        } else if (dead) {
            *dead += osize;
        }
    }
    x->heap = heap;
    x->entries = (fo_entry *)(void *)(block + ib);
    x->cap = cap;
    if (ilog2 != x->ilog2) {
        x->ilog2 = ilog2;
        index_rebuild(x);
    }
    return 0;
}

/* Makes room for one more entry in an external map: squeeze deleted entries when they
 * are half of them, else grow.
 *  - A block in the arena doubles, with an index sized for all of it: every step leaves the
 *    old block dead until compaction, so steps are few and the dead blocks sum to less
 *    than the live one.
 *  - A block on the heap (big maps: the document's root) is realloc'd and leaves nothing
 *    dead, so it grows by half, and its index doubles on its own when it is half full:
 *    the unused entries of a big map are at most half of the used ones instead of all. */
static int ext_make_room(fo_map_ext *x, fo_arena *a, size_t *dead)
{
    bool full = x->len == x->cap;
    uint32_t cap = x->cap;
    uint8_t ilog2 = x->ilog2;

    if (!full && x->len < index_room(x->ilog2))
        return 0;
    if (x->len >= FO_MAP_LINEAR && x->live <= x->len / 2) {
        squeeze(x->entries, &x->len);
        index_rebuild(x);
        return 0;
    }
    if (cap >= UINT32_MAX / 4)
        return FO_ENOMEM;
    if (!x->heap) {
        cap = full ? (cap < 4 ? 4 : cap * 2) : cap;
        ilog2 = index_log2_for(cap);
        if (ilog2 < x->ilog2)
            ilog2 = x->ilog2;
        return ext_reshape(x, a, cap, ilog2, dead); /* maybe onto the heap */
    }
    if (full)
        cap = cap < 4 ? 4 : cap + cap / 2;
    if (x->len >= index_room(ilog2))
        ilog2 = index_log2_for((uint64_t)x->len + 1);
    return ext_reshape(x, a, cap, ilog2, dead);
}

int fo_map_set(fo_map *m, fo_arena *a, fo_key k, const fo_value *v, size_t *dead)
{
    fo_entry *e = map_find(m, k);

    if (!k)
        return FO_ENOMEM;
    if (e) {
        /* Replacing a scalar (the common update) leaves nothing behind. */
        if (fo_value_type(&e->value) >= FO_STR) {
            if (dead)
                *dead += fo_value_footprint(&e->value);
            if (a->heap_bytes)
                fo_value_release(a, &e->value);
        }
        e->value = *v;
        return 0;
    }
    return fo_map_add(m, a, k, v, dead);
}

int fo_map_add(fo_map *m, fo_arena *a, fo_key k, const fo_value *v, size_t *dead)
{
    fo_map_ext *x;
    fo_entry *e;
    int rc;

    if (!k)
        return FO_ENOMEM;
    if (!m->ext) {
        if (m->len == m->cap && m->live < m->len) {
            uint32_t len = m->len;
            squeeze(inline_entries(m), &len);
            m->len = (uint8_t)len;
        }
        if (m->len < m->cap) {
            e = &inline_entries(m)[m->len++];
            e->key = k;
            e->value = *v;
            m->live++;
            return 0;
        }
        if ((rc = inline_to_ext(m, a, dead)) != 0)
            return rc;
    }
    x = ext_of(m);
    if ((rc = ext_make_room(x, a, dead)) != 0)
        return rc;
    e = &x->entries[x->len];
    e->key = k;
    e->value = *v;
    if (x->ilog2)
        index_insert(x, x->len, fo_key_hash(k));
    x->len++;
    x->live++;
    return 0;
}

size_t fo_map_del(fo_map *m, fo_arena *a, fo_key k)
{
    fo_entry *e = map_find(m, k);
    size_t fp;

    if (!e)
        return 0;
    fp = fo_value_footprint(&e->value) + sizeof(fo_entry);
    if (a && a->heap_bytes)
        fo_value_release(a, &e->value);
    e->key = FO_KEY_NONE;
    e->value = fo_value_null();
    if (m->ext)
        ext_of(m)->live--;
    else
        m->live--;
    return fp;
}
