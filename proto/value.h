/* value.h - JSON-like values: the document tree, command props and everything the wire
 * carries. Every node lives in an fo_arena; a tree is copied between arenas with
 * fo_value_copy and is never freed node by node.
 *
 * Memory layout is chosen for documents of 100k+ items (the target is at most 3x the
 * document's MessagePack size, as built by commands):
 *  - fo_value is 16 bytes; strings of up to 14 bytes are stored inline.
 *  - map keys are fo_key: a canonical decimal integer (what Flushout's generated IDs are)
 *    is stored in the key itself, any other key points to an fo_str.
 *  - fo_map keeps entries in insertion order. A small map (a document item) is one block:
 *    an 8-byte header and its entries inline. A map that outgrows that room, or is created
 *    with more than FO_MAP_LINEAR entries, keeps them in a block of its own, grown by
 *    half, with an open-addressing index once it has more than FO_MAP_LINEAR entries, so
 *    lookups stay O(1) at 100k keys. Hashes use XXH3 with a per-process random seed, so
 *    keys cannot be chosen to collide. */
#ifndef FO_VALUE_H
#define FO_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/arena.h"

/* ---- keys ---------------------------------------------------------------------------- */

/* A key string: its bytes (NUL-terminated), length and seeded hash. */
typedef struct fo_str {
    uint32_t len;
    uint32_t hash;
    char data[];
} fo_str;

/* A map key or path segment. 0 means "no key". Bit 0 set: the key is the canonical
 * decimal integer `k >> 1` (no sign, no leading zero, at most 18 digits). Otherwise it
 * is a `const fo_str *`. Two keys are equal iff fo_key_eq. */
typedef uint64_t fo_key;

#define FO_KEY_NONE ((fo_key)0)
#define FO_KEY_MAXLEN (UINT32_MAX / 2)

/* Makes a key from bytes. Numeric keys allocate nothing; others copy into `a`.
 * Returns FO_KEY_NONE on out-of-memory. */
fo_key fo_key_new(fo_arena *a, const char *s, size_t len);
/* Key from a NUL-terminated string. */
fo_key fo_key_new_cstr(fo_arena *a, const char *s);
/* Key for the decimal representation of n (n < 10^18: never allocates). */
fo_key fo_key_from_u64(uint64_t n);
bool fo_key_eq(fo_key a, fo_key b);
uint32_t fo_key_hash(fo_key k);
/* Writes the key's text into buf (at least 20 bytes) when it is numeric and returns
 * buf; otherwise returns the fo_str's own bytes. *len gets the length. */
const char *fo_key_str(fo_key k, char buf[20], size_t *len);
/* True when the key is numeric; *n gets its value. */
bool fo_key_is_num(fo_key k, uint64_t *n);
/* Process-wide hash seed (random, set once on first use). */
uint64_t fo_hash_seed(void);

/* ---- values -------------------------------------------------------------------------- */

typedef enum fo_type {
    FO_NULL = 0,
    FO_BOOL,
    FO_INT,    /* int64 */
    FO_UINT,   /* uint64 above INT64_MAX only; smaller unsigned ints are FO_INT */
    FO_FLOAT,  /* double */
    FO_STR,
    FO_ARRAY,  /* a leaf for Flushout paths */
    FO_MAP,
} fo_type;

typedef struct fo_map fo_map;
typedef struct fo_value fo_value;

#define FO_STR_INLINE 14

struct fo_value {
    union {
        struct {
            uint8_t type;
            uint8_t ilen; /* inline string length + 1; 0 for a heap string */
            char ibuf[FO_STR_INLINE];
        } in;
        struct {
            uint8_t type;
            uint8_t ilen;
            uint8_t pad[2];
            uint32_t len; /* heap string bytes, array items */
            union {
                bool b;
                int64_t i;
                uint64_t u;
                double f;
                const char *s;
                fo_value *items;
                fo_map *map;
            } as;
        } h;
    };
};

typedef struct fo_entry {
    fo_key key; /* FO_KEY_NONE marks a deleted entry */
    fo_value value;
} fo_entry;

/* A map with insertion order. Its layout is private to value.c: read it through the
 * functions below and iterate with
 *     const fo_entry *e = fo_map_entries(m);
 *     for (i = 0; i < fo_map_len(m); i++) if (e[i].key) ...
 * Entry pointers (fo_map_entries, fo_map_get) are valid until the map's next insertion;
 * the fo_map itself never moves.
 *
 * Layout. The header is 8 bytes. An inline map (ext == 0, at most FO_MAP_LINEAR entries)
 * keeps its `cap` entries right after it, so a 3-key item costs 8 + 3 * 24 bytes. An
 * external map (ext == 1) keeps an fo_map_ext in that room instead (the room is at least
 * one entry, 24 bytes, so that any map can become external in place). */
typedef struct fo_map_ext {
    fo_entry *entries; /* cap entries, preceded in the same block by the index, if any */
    uint32_t len;      /* entries used, deleted ones included */
    uint32_t live;     /* entries not deleted */
    uint32_t cap;      /* entries allocated */
    uint8_t ilog2;     /* the index has 1 << ilog2 slots; 0 when there is no index */
    uint8_t heap;      /* the block is malloc'd (arena.h, big_blocks_on_heap) */
    uint8_t pad[2];
} fo_map_ext;

struct fo_map {
    uint8_t ext;  /* 0: inline map, the fields below hold; 1: an fo_map_ext follows */
    uint8_t len;  /* inline: entries used, deleted ones included */
    uint8_t live; /* inline: entries not deleted */
    uint8_t cap;  /* inline: entries the room holds */
    uint32_t pad;
};

/* Maps of up to this many entries have no index: a linear scan is faster. Only maps of up
 * to this many entries are inline. */
#define FO_MAP_LINEAR 8
/* Entry blocks from this size on live on the heap in arenas that ask for it. */
#define FO_MAP_HEAP_MIN 4096

static inline const fo_map_ext *fo_map_ext_of(const fo_map *m)
{
    return (const fo_map_ext *)(const void *)(m + 1);
}

/* The entries, deleted ones (key FO_KEY_NONE) included, in insertion order. */
static inline fo_entry *fo_map_entries(const fo_map *m)
{
    return m->ext ? fo_map_ext_of(m)->entries : (fo_entry *)(uintptr_t)(m + 1);
}

/* Entries used, deleted ones included: the bound for iterating fo_map_entries. */
static inline uint32_t fo_map_len(const fo_map *m)
{
    return m->ext ? fo_map_ext_of(m)->len : m->len;
}

static inline fo_type fo_value_type(const fo_value *v)
{
    return (fo_type)v->in.type;
}

fo_value fo_value_null(void);
fo_value fo_value_bool(bool b);
fo_value fo_value_int(int64_t i);
fo_value fo_value_uint(uint64_t u); /* FO_INT when it fits */
fo_value fo_value_float(double f);
/* Copies the bytes into `a` unless they fit inline. Returns a FO_NULL value with
 * `ok` cleared on out-of-memory. */
fo_value fo_value_str(fo_arena *a, const char *s, size_t len, bool *ok);
/* A string that borrows `s` (must outlive the value); inline when short. */
fo_value fo_value_str_static(const char *s, size_t len);
/* An array of n items, all FO_NULL; fill `v->h.as.items`. */
fo_value fo_value_array(fo_arena *a, uint32_t n, bool *ok);
/* An empty map with room for `cap` entries without growing. */
fo_value fo_value_map(fo_arena *a, uint32_t cap, bool *ok);

/* The bytes of a FO_STR value (not NUL-terminated when inline). */
const char *fo_value_strbuf(const fo_value *v, size_t *len);
static inline fo_map *fo_value_as_map(const fo_value *v)
{
    return v->in.type == FO_MAP ? v->h.as.map : NULL;
}

/* ---- whole trees (tree.c: split off value.c, which keeps keys and maps; value.h stays
 * the one header of values, as installed with the client library) ------------------- */

/* Deep copy of `v` into `a`. When `intern` is not NULL, keys are passed through it
 * (documents intern their keys); otherwise they are copied. Returns 0 or FO_ENOMEM
 * (then `out` is unspecified but everything allocated belongs to `a`). */
typedef fo_key (*fo_key_intern_fn)(void *ctx, fo_key k);
int fo_value_copy(fo_arena *a, const fo_value *v, fo_value *out, fo_key_intern_fn intern,
                  void *ctx);
/* Deep equality; maps compare as unordered, ints and uints by value, floats by
 * value (so 1.0 != 1: Flushout values keep their wire type). */
bool fo_value_eq(const fo_value *a, const fo_value *b);
/* Approximate bytes the tree holds in its arena (for dead-space accounting); heap entry
 * blocks are not counted. */
size_t fo_value_footprint(const fo_value *v);
/* Arena bytes (keys aside) that fo_value_copy of `v` allocates: maps get capacity = live;
 * with `big_blocks_on_heap`, the entry blocks such an arena keeps on the heap are left out. */
size_t fo_value_copy_size(const fo_value *v, bool big_blocks_on_heap);
/* Frees the heap entry blocks of the tree's maps (arena.h, big_blocks_on_heap) and
 * subtracts them from a->heap_bytes. The tree is unusable afterwards. */
void fo_value_release(fo_arena *a, const fo_value *v);
/* Nesting depth: scalars 0, an empty map or array 1. */
uint32_t fo_value_depth(const fo_value *v);

/* ---- maps ---------------------------------------------------------------------------- */

/* The value stored under k, or NULL. */
fo_value *fo_map_get(const fo_map *m, fo_key k);
/* Inserts or replaces. The key is stored as is: it must live as long as the map (use a
 * key from the same arena, or an interned one). `*dead` (if not NULL) grows by the
 * bytes that became unreachable in the arena (a replaced value, an outgrown block); a
 * replaced value's heap blocks are released. Returns 0 or FO_ENOMEM (the map is
 * unchanged then). */
int fo_map_set(fo_map *m, fo_arena *a, fo_key k, const fo_value *v, size_t *dead);
/* fo_map_set for a key the caller knows is absent: no lookup. */
int fo_map_add(fo_map *m, fo_arena *a, fo_key k, const fo_value *v, size_t *dead);
/* Removes k if present; the removed value's heap blocks are released into `a` (the
 * map's arena). Returns the footprint of what was removed (0 when absent). */
size_t fo_map_del(fo_map *m, fo_arena *a, fo_key k);
/* Number of live entries. */
static inline uint32_t fo_map_count(const fo_map *m)
{
    return m->ext ? fo_map_ext_of(m)->live : m->live;
}
/* Arena bytes of the map's own storage (header, inline room, entry block unless it is on
 * the heap), its values left out. */
size_t fo_map_bytes(const fo_map *m);
/* Arena bytes that fo_value_map(a, cap) takes from an arena with that big_blocks_on_heap. */
size_t fo_map_new_bytes(uint32_t cap, bool big_blocks_on_heap);
/* Frees the map's own heap block (not its values') and subtracts it from a->heap_bytes;
 * the map is then empty. No-op for a map without one. */
void fo_map_free_block(fo_map *m, fo_arena *a);

#endif
