#include "hub/frame.h"

#include <stdlib.h>
#include <string.h>

fo_frame *fo_frame_new(const void *data, size_t len)
{
    fo_frame *f;

    if (len > UINT32_MAX || !(f = malloc(sizeof(*f) + len)))
        return NULL;
    f->refs = 1;
    f->len = (uint32_t)len;
    memcpy(f->data, data, len);
    return f;
}

fo_frame *fo_frame_encode(const fo_msg *m)
{
    fo_buf b;
    fo_frame *f;

    /* Encode straight after the frame header so the bytes need no second copy. */
    fo_buf_init(&b, sizeof(fo_frame));
    if (fo_wire_encode(m, &b) != 0 || b.len > UINT32_MAX) {
        fo_buf_destroy(&b);
        return NULL;
    }
    /* The buffer grew by doubling: frames are kept (history, queues) and the memory budget
     * counts their length, so keep an exact copy. A copy rather than a shrinking realloc:
     * that would leave a small free remainder beside every frame kept in history, which
     * fragments the heap; a whole buffer freed is reused by the next encode. */
    if (b.cap - b.len >= 64) {
        char *n = malloc(sizeof(fo_frame) + b.len);
        if (n) {
            memcpy(n, b.base, sizeof(fo_frame) + b.len);
            free(b.base);
            b.base = n;
        }
    }
    f = (fo_frame *)(void *)b.base;
    f->refs = 1;
    f->len = (uint32_t)b.len;
    return f;
}

void fo_frame_unref(fo_frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}
