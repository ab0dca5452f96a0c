/* frame.h - one encoded, immutable outbound message (a MessagePack map), shared by every
 * session it is sent to: a push is encoded once for all its subscribers. */
#ifndef FO_FRAME_H
#define FO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

typedef struct fo_frame {
    uint32_t refs;
    uint32_t len;
    unsigned char data[];
} fo_frame;

/* Encodes `m`. NULL on out-of-memory or an unencodable message; refcount starts at 1. */
fo_frame *fo_frame_encode(const fo_msg *m);
/* Frees the encoder's buffer kept between calls (at exit). */
void fo_frame_scratch_free(void);
/* A frame holding a copy of bytes. */
fo_frame *fo_frame_new(const void *data, size_t len);
/* Every queue that holds the frame owns one reference; the last unref frees it. */
static inline fo_frame *fo_frame_ref(fo_frame *f)
{
    f->refs++;
    return f;
}
void fo_frame_unref(fo_frame *f); /* NULL is a no-op */

#endif
