/* pathmap.h - the reference's PathMapper: records that a created ID was changed by the
 * master (`path+[proposed]` -> `path+[created]`) and rewrites later paths under it.
 *
 * Lookups try the path's prefixes from longest to shortest; the first recorded prefix
 * gives `mapped prefix + rest`, which is then remembered for the whole path (so the
 * mappings a master reports include those memo entries, as the reference's do). Keys
 * compare as paths of segments (the reference joins them with ','; the two only differ
 * for segments that contain ',', where the reference is ambiguous). */
#ifndef FO_PATHMAP_H
#define FO_PATHMAP_H

#include <stdbool.h>

#include "proto/command.h"

typedef struct fo_pathmap {
    fo_arena *arena;       /* where recorded paths and the tables live; borrowed */
    fo_path_mapping *items; /* insertion order: the order of mappedPaths */
    uint32_t *hashes;      /* hash of items[i].from */
    uint32_t *index;       /* open addressing over items, 0 = empty, else i + 1 */
    uint32_t len, cap, icap;
} fo_pathmap;

/* An empty mapper allocating from `a` (which must outlive it). */
void fo_pathmap_init(fo_pathmap *pm, fo_arena *a);
/* Seeds the mapper with mappings (a sync's mappedPaths); they are copied. */
int fo_pathmap_load(fo_pathmap *pm, const fo_path_mapping *m, uint32_t n);
/* Records from -> to (replacing an earlier mapping of `from`). 0 or FO_ENOMEM. */
int fo_pathmap_put(fo_pathmap *pm, fo_path from, fo_path to);
/* Maps `p`. Returns 1 and sets *out (allocated in the mapper's arena) when a prefix is
 * mapped, 0 when not, FO_ENOMEM. */
int fo_pathmap_get(fo_pathmap *pm, fo_path p, fo_path *out);
static inline bool fo_pathmap_empty(const fo_pathmap *pm)
{
    return pm->len == 0;
}

#endif
