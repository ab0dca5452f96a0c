/* arena.h - a bump allocator. Everything allocated from an arena dies with
 * fo_arena_destroy(); nothing is freed one at a time.
 *
 * Used for decoded messages (one arena per frame), for results, and for documents (a
 * document counts the bytes that became unreachable and compacts itself into a fresh
 * arena when they pass half of it, see doc.h). */
#ifndef FO_ARENA_H
#define FO_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fo_arena_chunk fo_arena_chunk;

typedef struct fo_arena {
    fo_arena_chunk *head;  /* current chunk; older chunks are linked behind it */
    char *ptr;             /* next free byte of head */
    char *end;             /* end of head */
    size_t next_size;      /* size of the next chunk to allocate */
    /* Chunks double up to this size (fo_arena_init sets 1 MiB). A document lowers it: the
     * unused tail of its newest chunk counts against its memory, and with 1 MiB chunks
     * that tail was a fifth of a 10k-item document. Set it before the first allocation. */
    size_t max_chunk;
    size_t used;           /* bytes handed out (after alignment) */
    size_t reserved;       /* bytes obtained from malloc */
    /* Documents set this: maps then keep entry blocks of FO_MAP_HEAP_MIN bytes or more
     * on the heap (realloc'd as they grow, freed with their map) instead of leaving every
     * outgrown block dead in the arena. Such trees must be released with
     * fo_value_release before the arena is destroyed (value.h). */
    bool big_blocks_on_heap;
    size_t heap_bytes;     /* bytes of those heap blocks */
} fo_arena;

/* Initialises an empty arena; it allocates nothing until the first fo_arena_alloc.
 * `first_chunk` is the size of the first chunk (0 picks 4 KiB); chunks then double up to
 * max_chunk (1 MiB; a bigger first chunk is followed by chunks of max_chunk). */
void fo_arena_init(fo_arena *a, size_t first_chunk);
/* Frees every chunk. The arena may be initialised again afterwards. */
void fo_arena_destroy(fo_arena *a);
/* Frees all chunks but the newest and rewinds it: cheap reuse between frames. */
void fo_arena_reset(fo_arena *a);

/* 8-byte aligned memory, uninitialised. NULL on out-of-memory. */
void *fo_arena_alloc(fo_arena *a, size_t n);
/* Zeroed memory. */
void *fo_arena_calloc(fo_arena *a, size_t n);
/* Copies n bytes and appends a NUL. */
char *fo_arena_strndup(fo_arena *a, const char *s, size_t n);
void *fo_arena_memdup(fo_arena *a, const void *p, size_t n);

#endif
