#include "hub/strmap.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "proto/error.h"
#include "proto/value.h"

struct fo_strmap_entry {
    fo_strmap_entry *next;
    void *value;
    uint64_t hash;
    size_t len;
    char key[];
};

static uint64_t hash(const char *k, size_t len)
{
    return XXH3_64bits_withSeed(k, len, fo_hash_seed());
}

void fo_strmap_init(fo_strmap *m)
{
    memset(m, 0, sizeof(*m));
}

void fo_strmap_destroy(fo_strmap *m)
{
    size_t i;

    for (i = 0; i < m->nbuckets; i++) {
        fo_strmap_entry *e = m->buckets[i];
        while (e) {
            fo_strmap_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof(*m));
}

static fo_strmap_entry **find(const fo_strmap *m, const char *key, size_t len, uint64_t h)
{
    fo_strmap_entry **p;

    if (!m->nbuckets)
        return NULL;
    for (p = &m->buckets[h & (m->nbuckets - 1)]; *p; p = &(*p)->next)
        if ((*p)->hash == h && (*p)->len == len && memcmp((*p)->key, key, len) == 0)
            return p;
    return NULL;
}

void *fo_strmap_get(const fo_strmap *m, const char *key, size_t len)
{
    fo_strmap_entry **p = find(m, key, len, hash(key, len));
    return p ? (*p)->value : NULL;
}

static int grow(fo_strmap *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16, i;
    fo_strmap_entry **b = calloc(n, sizeof(*b));

    if (!b)
        return FO_ENOMEM;
    for (i = 0; i < m->nbuckets; i++) {
        fo_strmap_entry *e = m->buckets[i];
        while (e) {
            fo_strmap_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

int fo_strmap_put(fo_strmap *m, const char *key, size_t len, void *value)
{
    uint64_t h = hash(key, len);
    fo_strmap_entry **p = find(m, key, len, h), *e;

    if (p) {
        (*p)->value = value;
        return 0;
    }
    if (m->len >= m->nbuckets && grow(m))
        return FO_ENOMEM;
    if (!(e = malloc(sizeof(*e) + len + 1)))
        return FO_ENOMEM;
    e->value = value;
    e->hash = h;
    e->len = len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->next = m->buckets[h & (m->nbuckets - 1)];
    m->buckets[h & (m->nbuckets - 1)] = e;
    m->len++;
    return 0;
}

void *fo_strmap_del(fo_strmap *m, const char *key, size_t len)
{
    fo_strmap_entry **p = find(m, key, len, hash(key, len)), *e;
    void *v;

    if (!p)
        return NULL;
    e = *p;
    *p = e->next;
    v = e->value;
    free(e);
    m->len--;
    return v;
}

void fo_strmap_each(const fo_strmap *m, void (*fn)(void *ctx, const char *key, void *value),
                    void *ctx)
{
    size_t i;
    fo_strmap_entry *e;

    for (i = 0; i < m->nbuckets; i++)
        for (e = m->buckets[i]; e; e = e->next)
            fn(ctx, e->key, e->value);
}
