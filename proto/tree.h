/* tree.h - operations on whole fo_value trees: deep copy between arenas, equality, the
 * bytes a tree holds or would take, releasing its heap blocks. value.h includes this
 * header; the maps' layout stays private to value.c (these go through fo_map_*). */
#ifndef FO_TREE_H
#define FO_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/arena.h"
#include "proto/value.h"

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

#endif
