#include "proto/value.h"

#include <math.h>
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

bool fo_key_eq(fo_key a, fo_key b)
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
        uint64_t n = k >> 1;
        char tmp[20];
        size_t i = 0, j;

        do {
            tmp[i++] = (char)('0' + n % 10);
            n /= 10;
        } while (n);
        for (j = 0; j < i; j++)
            buf[j] = tmp[i - 1 - j];
        buf[i] = '\0';
        *len = i;
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

/* Copies a key into `a` (numeric keys need no copy). */
static fo_key key_copy(fo_arena *a, fo_key k)
{
    const fo_str *s;
    fo_str *c;

    if (key_is_num(k) || !k)
        return k;
    s = key_str(k);
    c = fo_arena_memdup(a, s, sizeof(fo_str) + s->len + 1);
    return c ? (fo_key)(uintptr_t)c : FO_KEY_NONE;
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

static inline uint32_t *map_index(const fo_map *m)
{
    return (uint32_t *)(m->entries + m->cap);
}

static uint8_t index_log2_for(uint32_t cap)
{
    uint8_t l = 4;

    if (cap <= FO_MAP_LINEAR)
        return 0;
    /* Load at most 2/3 when the entry block is full. */
    while (((uint64_t)1 << l) * 2 < (uint64_t)cap * 3)
        l++;
    return l;
}

static size_t entry_block_size(uint32_t cap, uint8_t ilog2)
{
    return (size_t)cap * sizeof(fo_entry) + (ilog2 ? sizeof(uint32_t) << ilog2 : 0);
}

/* An index slot is 0 (empty) or the entry's position + 1. Maps of fewer than 2^24 entries
 * keep the top 8 bits of the key's hash in the slot's top byte, so that a probe passes
 * other keys without loading their entries (each such load is a cache miss in a big map). */
#define TAG_MASK 0xFF000000u
#define TAGGED(m) ((m)->cap < (1u << 24))

static void index_insert(fo_map *m, uint32_t pos, uint32_t hash)
{
    uint32_t mask = ((uint32_t)1 << m->ilog2) - 1;
    uint32_t *idx = map_index(m);
    uint32_t i = hash & mask;

    while (idx[i])
        i = (i + 1) & mask;
    idx[i] = (pos + 1) | (TAGGED(m) ? hash & TAG_MASK : 0);
}

/* Squeezes deleted entries out and rebuilds the index, in place. */
static void map_rebuild(fo_map *m)
{
    uint32_t i, j = 0;

    for (i = 0; i < m->len; i++) {
        if (m->entries[i].key) {
            if (i != j)
                m->entries[j] = m->entries[i];
            j++;
        }
    }
    m->len = j;
    if (m->ilog2) {
        memset(map_index(m), 0, sizeof(uint32_t) << m->ilog2);
        for (i = 0; i < m->len; i++)
            index_insert(m, i, fo_key_hash(m->entries[i].key));
    }
}

fo_value fo_value_map(fo_arena *a, uint32_t cap, bool *ok)
{
    fo_value v = fo_value_null();
    uint8_t ilog2 = index_log2_for(cap);
    size_t block = entry_block_size(cap, ilog2);
    bool heap = a->big_blocks_on_heap && block >= FO_MAP_HEAP_MIN;
    fo_map *m = fo_arena_alloc(a, sizeof(fo_map) + (heap ? 0 : block));

    if (!m) {
        *ok = false;
        return v;
    }
    memset(m, 0, sizeof(*m));
    m->cap = cap;
    m->ilog2 = ilog2;
    if (heap) {
        if (!(m->entries = malloc(block))) {
            *ok = false;
            return v;
        }
        m->heap = 1;
        a->heap_bytes += block;
    } else {
        m->entries = (fo_entry *)(m + 1);
    }
    if (ilog2)
        memset(map_index(m), 0, sizeof(uint32_t) << ilog2);
    v.h.type = FO_MAP;
    v.h.as.map = m;
    return v;
}

static fo_entry *map_find(const fo_map *m, fo_key k)
{
    uint32_t i;

    if (!k)
        return NULL;
    if (!m->ilog2) {
        for (i = 0; i < m->len; i++)
            if (fo_key_eq(m->entries[i].key, k))
                return &m->entries[i];
        return NULL;
    } else {
        uint32_t mask = ((uint32_t)1 << m->ilog2) - 1, h = fo_key_hash(k);
        uint32_t tag = TAGGED(m) ? h & TAG_MASK : 0, pos = TAGGED(m) ? ~TAG_MASK : ~0u;
        const uint32_t *idx = map_index(m);

        for (i = h & mask; idx[i]; i = (i + 1) & mask) {
            fo_entry *e;
            if ((idx[i] & ~pos) != tag)
                continue;
            e = &m->entries[(idx[i] & pos) - 1];
            if (fo_key_eq(e->key, k))
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

/* Makes room for one more entry: squeeze deleted entries when they are many, else move
 * to a block twice as large. */
static int map_make_room(fo_map *m, fo_arena *a, size_t *dead)
{
    uint32_t ncap;
    uint8_t ilog2;
    fo_entry *block;
    size_t nsize;

    if (m->len < m->cap)
        return 0;
    if (m->cap >= 8 && m->live <= m->len / 2) {
        map_rebuild(m);
        return 0;
    }
    if (m->cap >= UINT32_MAX / 2)
        return FO_ENOMEM;
    ncap = m->cap < 4 ? 4 : m->cap * 2;
    ilog2 = index_log2_for(ncap);
    nsize = entry_block_size(ncap, ilog2);
    if (a->big_blocks_on_heap && nsize >= FO_MAP_HEAP_MIN) {
        /* Outgrown blocks go back to malloc instead of staying dead in the arena. */
        if (!(block = malloc(nsize)))
            return FO_ENOMEM;
        a->heap_bytes += nsize;
    } else if (!(block = fo_arena_alloc(a, nsize))) {
        return FO_ENOMEM;
    }
    if (m->len)
        memcpy(block, m->entries, (size_t)m->len * sizeof(fo_entry));
    if (m->heap) {
        a->heap_bytes -= entry_block_size(m->cap, m->ilog2);
        free(m->entries);
    } else if (dead) {
        *dead += entry_block_size(m->cap, m->ilog2);
    }
    m->heap = block != NULL && a->big_blocks_on_heap && nsize >= FO_MAP_HEAP_MIN;
    m->entries = block;
    m->cap = ncap;
    m->ilog2 = ilog2;
    if (ilog2)
        memset(map_index(m), 0, sizeof(uint32_t) << ilog2);
    map_rebuild(m);
    return 0;
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
    fo_entry *e;
    int rc;

    if (!k)
        return FO_ENOMEM;
    if ((rc = map_make_room(m, a, dead)) != 0)
        return rc;
    e = &m->entries[m->len];
    e->key = k;
    e->value = *v;
    if (m->ilog2)
        index_insert(m, m->len, fo_key_hash(k));
    m->len++;
    m->live++;
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
    m->live--;
    return fp;
}

/* ---- whole trees --------------------------------------------------------------------- */

int fo_value_copy(fo_arena *a, const fo_value *v, fo_value *out, fo_key_intern_fn intern,
                  void *ctx)
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
        fo_value mv = fo_value_map(a, src->live, &ok);
        fo_map *dst;
        uint32_t i;

        if (!ok)
            return FO_ENOMEM;
        dst = mv.h.as.map;
        for (i = 0; i < src->len; i++) {
            const fo_entry *e = &src->entries[i];
            fo_entry *d;
            int rc;

            if (!e->key)
                continue;
            d = &dst->entries[dst->len];
            d->key = intern ? intern(ctx, e->key) : key_copy(a, e->key);
            if (!d->key)
                return FO_ENOMEM;
            if ((rc = fo_value_copy(a, &e->value, &d->value, intern, ctx)) != 0)
                return rc;
            if (dst->ilog2)
                index_insert(dst, dst->len, fo_key_hash(d->key));
            dst->len++;
            dst->live++;
        }
        *out = mv;
        return 0;
    }
    default:
        *out = *v;
        return 0;
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
    case FO_FLOAT:
        return a->h.as.f == b->h.as.f || (isnan(a->h.as.f) && isnan(b->h.as.f));
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
        uint32_t i;
        if (ma->live != mb->live)
            return false;
        for (i = 0; i < ma->len; i++) {
            const fo_entry *e = &ma->entries[i];
            const fo_value *o;
            if (!e->key)
                continue;
            o = fo_map_get(mb, e->key);
            if (!o || !fo_value_eq(&e->value, o))
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
        size_t block = entry_block_size(m->live, index_log2_for(m->live));
        size_t n = sizeof(fo_map);
        uint32_t i;

        if (!(big_blocks_on_heap && block >= FO_MAP_HEAP_MIN))
            n += block;
        for (i = 0; i < m->len; i++)
            if (m->entries[i].key)
                n += fo_value_copy_size(&m->entries[i].value, big_blocks_on_heap);
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
        for (i = 0; i < m->len; i++)
            if (m->entries[i].key)
                fo_value_release(a, &m->entries[i].value);
        if (m->heap) {
            a->heap_bytes -= entry_block_size(m->cap, m->ilog2);
            free(m->entries);
            m->entries = NULL;
            m->heap = 0;
            m->len = m->live = m->cap = 0;
            m->ilog2 = 0;
        }
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
        size_t n = sizeof(fo_map) + (m->heap ? 0 : entry_block_size(m->cap, m->ilog2));
        uint32_t i;
        for (i = 0; i < m->len; i++)
            if (m->entries[i].key)
                n += fo_value_footprint(&m->entries[i].value);
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
        for (i = 0; i < m->len; i++) {
            if (m->entries[i].key) {
                uint32_t c = fo_value_depth(&m->entries[i].value);
                if (c > d)
                    d = c;
            }
        }
        return d + 1;
    }
    default: return 0;
    }
}
