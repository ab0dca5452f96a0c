/* buf.h - a growable byte buffer with optional headroom before the data (the hub
 * reserves LWS_PRE bytes there so a frame can be written without a copy). */
#ifndef FO_BUF_H
#define FO_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct fo_buf {
    char *base;      /* malloc'd block: headroom bytes, then data */
    size_t headroom;
    size_t len;      /* data bytes */
    size_t cap;      /* data capacity (excluding headroom) */
} fo_buf;

void fo_buf_init(fo_buf *b, size_t headroom);
void fo_buf_destroy(fo_buf *b);
static inline char *fo_buf_data(const fo_buf *b)
{
    return b->base ? b->base + b->headroom : NULL;
}
/* 0 or FO_ENOMEM. */
int fo_buf_reserve(fo_buf *b, size_t extra);
int fo_buf_append_slow(fo_buf *b, const void *p, size_t n);
static inline int fo_buf_append(fo_buf *b, const void *p, size_t n)
{
    if (b->base && b->cap - b->len >= n) { /* the usual case: it fits */
        if (n)
            memcpy(b->base + b->headroom + b->len, p, n);
        b->len += n;
        return 0;
    }
    return fo_buf_append_slow(b, p, n);
}
/* Hands the block to the caller (free() it); the buffer is left empty. */
char *fo_buf_release(fo_buf *b);

#endif
