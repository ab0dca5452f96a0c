#include "proto/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

void fo_buf_init(fo_buf *b, size_t headroom)
{
    b->base = NULL;
    b->headroom = headroom;
    b->len = 0;
    b->cap = 0;
}

void fo_buf_destroy(fo_buf *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}

int fo_buf_reserve(fo_buf *b, size_t extra)
{
    size_t need, ncap;
    char *n;

    if (extra > SIZE_MAX - b->len - b->headroom)
        return FO_ENOMEM;
    need = b->len + extra;
    if (need <= b->cap && b->base)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (!(n = realloc(b->base, b->headroom + ncap)))
        return FO_ENOMEM;
    b->base = n;
    b->cap = ncap;
    return 0;
}

int fo_buf_append_slow(fo_buf *b, const void *p, size_t n)
{
    if (fo_buf_reserve(b, n))
        return FO_ENOMEM;
    if (n)
        memcpy(b->base + b->headroom + b->len, p, n);
    b->len += n;
    return 0;
}

char *fo_buf_release(fo_buf *b)
{
    char *p = b->base;

    b->base = NULL;
    b->len = b->cap = 0;
    return p;
}
