/* strmap.h - a hash table from strings to pointers (the hub's model table, a model's
 * exactly-once table). Keys are copied; values are the caller's. Seeded XXH3 hashes, so
 * client-chosen names cannot be made to collide. */
#ifndef FO_STRMAP_H
#define FO_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct fo_strmap_entry fo_strmap_entry;

typedef struct fo_strmap {
    fo_strmap_entry **buckets;
    size_t nbuckets; /* power of two, or 0 */
    size_t len;
} fo_strmap;

void fo_strmap_init(fo_strmap *m);
/* Frees the table and its keys, not the values. */
void fo_strmap_destroy(fo_strmap *m);
/* The value stored under key, or NULL. */
void *fo_strmap_get(const fo_strmap *m, const char *key, size_t len);
/* Inserts or replaces. 0 or FO_ENOMEM. */
int fo_strmap_put(fo_strmap *m, const char *key, size_t len, void *value);
/* Removes key; returns its value or NULL. */
void *fo_strmap_del(fo_strmap *m, const char *key, size_t len);
/* Calls fn for each entry; fn must not change the map. */
void fo_strmap_each(const fo_strmap *m, void (*fn)(void *ctx, const char *key, void *value),
                    void *ctx);

#endif
