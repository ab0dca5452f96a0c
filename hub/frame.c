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

/* Frames are encoded into one buffer kept between calls (the loop's thread), then copied
 * out at their exact size: one allocation per frame, none to grow. Frames are kept
 * (history, queues) and the memory budget counts their length, so no slack rides along. */
static _Thread_local fo_buf scratch;

/* Past this the scratch buffer is not kept for the next frame (a big snapshot was sent). */
#define SCRATCH_KEEP (256 * 1024)

fo_frame *fo_frame_encode(const fo_msg *m)
{
    fo_frame *f = NULL;

    scratch.len = 0;
    if (fo_wire_encode(m, &scratch) == 0 && scratch.len <= UINT32_MAX &&
        (f = malloc(sizeof(*f) + scratch.len))) {
        f->refs = 1;
        f->len = (uint32_t)scratch.len;
        memcpy(f->data, fo_buf_data(&scratch), scratch.len);
    }
    if (scratch.cap > SCRATCH_KEEP)
        fo_buf_destroy(&scratch);
    return f;
}

void fo_frame_scratch_free(void)
{
    fo_buf_destroy(&scratch);
}

void fo_frame_unref(fo_frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}
