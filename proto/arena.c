#include "proto/arena.h"

#include <stdlib.h>
#include <string.h>

struct fo_arena_chunk {
    fo_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    /* data follows, 16-byte aligned */
};

#define CHUNK_HDR ((sizeof(fo_arena_chunk) + 15) & ~(size_t)15)
#define DEFAULT_MAX_CHUNK ((size_t)1 << 20)

void fo_arena_init(fo_arena *a, size_t first_chunk)
{
    memset(a, 0, sizeof(*a));
    a->next_size = first_chunk ? first_chunk : 4096;
    a->max_chunk = DEFAULT_MAX_CHUNK;
}

void fo_arena_destroy(fo_arena *a)
{
    fo_arena_chunk *c = a->head;

    while (c) {
        fo_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->ptr = a->end = NULL;
    a->used = a->reserved = 0;
}

void fo_arena_reset(fo_arena *a)
{
    fo_arena_chunk *c;

    if (!a->head)
        return;
    c = a->head->next;
    while (c) {
        fo_arena_chunk *next = c->next;
        a->reserved -= CHUNK_HDR + c->size;
        free(c);
        c = next;
    }
    a->head->next = NULL;
    a->ptr = (char *)a->head + CHUNK_HDR;
    a->end = a->ptr + a->head->size;
    a->used = 0;
}

/* Slow path: a new chunk. Big requests get a chunk of their own, linked behind the head
 * so the head's free space is not wasted. */
static void *alloc_chunk(fo_arena *a, size_t n)
{
    size_t next = a->next_size ? a->next_size : 4096, size = next, max;
    fo_arena_chunk *c;

    if (n > size / 4 && n > 1024) {
        if (n > SIZE_MAX - CHUNK_HDR)
            return NULL;
        c = malloc(CHUNK_HDR + n);
        if (!c)
            return NULL;
        c->size = n;
        a->reserved += CHUNK_HDR + n;
        if (a->head) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = NULL;
            a->head = c;
            a->ptr = a->end = (char *)c + CHUNK_HDR + n;
        }
        a->used += n;
        return (char *)c + CHUNK_HDR;
    }
    while (size < n)
        size *= 2;
    c = malloc(CHUNK_HDR + size);
    if (!c)
        return NULL;
    c->size = size;
    c->next = a->head;
    a->head = c;
    a->reserved += CHUNK_HDR + size;
    a->ptr = (char *)c + CHUNK_HDR + n;
    a->end = (char *)c + CHUNK_HDR + size;
    max = a->max_chunk ? a->max_chunk : DEFAULT_MAX_CHUNK;
    a->next_size = next < max / 2 ? next * 2 : max;
    a->used += n;
    return (char *)c + CHUNK_HDR;
}

void *fo_arena_alloc(fo_arena *a, size_t n)
{
    void *p;

    n = (n + 7) & ~(size_t)7;
    if (n == 0)
        n = 8;
    if ((size_t)(a->end - a->ptr) < n)
        return alloc_chunk(a, n);
    p = a->ptr;
    a->ptr += n;
    a->used += n;
    return p;
}

void *fo_arena_calloc(fo_arena *a, size_t n)
{
    void *p = fo_arena_alloc(a, n);

    if (p)
        memset(p, 0, n);
    return p;
}

char *fo_arena_strndup(fo_arena *a, const char *s, size_t n)
{
    char *p;

    if (n == SIZE_MAX)
        return NULL;
    p = fo_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *fo_arena_memdup(fo_arena *a, const void *src, size_t n)
{
    void *p = fo_arena_alloc(a, n);

    if (p && n)
        memcpy(p, src, n);
    return p;
}
