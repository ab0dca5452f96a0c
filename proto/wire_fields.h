/* wire_fields.h - the Flushout types of the wire decoder (wire_fields.c): struct maps read
 * field by field, in either of the decoder's two passes (see wire_decode.c), and the
 * converters that wire_decode.c's messages share. Internal to the wire module.
 *
 * A converter reads one value at d->p into `out` and leaves d->p after it; it returns 0
 * or an error recorded with fo_mp_fail (the path names the field). */
#ifndef FO_WIRE_FIELDS_H
#define FO_WIRE_FIELDS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto/command.h"
#include "proto/wire_read.h"

typedef int (*fo_wire_conv_fn)(fo_mp_dec *d, void *out);

/* One field of a struct map. */
typedef struct fo_wire_field {
    const char *name;
    uint8_t len;
    uint8_t req;    /* 1: required, nil is a type error; 0: optional, nil means absent */
    uint16_t off;   /* what `fn` receives: (char *)struct + off */
    uint16_t roff;  /* what nil clears (an optional field): [roff, roff + rsize) */
    uint16_t rsize;
    fo_wire_conv_fn fn;
} fo_wire_field;

/* A key equal to a literal (a constant-size memcmp the compiler expands inline). */
#define FO_WIRE_KEY_IS(k, lit) \
    ((k)->n == sizeof(lit) - 1 && memcmp((k)->s, lit, sizeof(lit) - 1) == 0)

/* True when the value at `at` (not NULL) is nil. */
static inline bool fo_wire_is_nil(const uint8_t *at)
{
    return at && *at == 0xc0;
}

/* Walks a struct map's `pairs` keys (the header is read; d->depth counts the map), noting
 * in slot[j] where field j's value starts (the last occurrence wins; NULL: absent) and
 * skipping every value, so that d->p ends after the map. Every key must be a str. */
int fo_wire_locate(fo_mp_dec *d, uint32_t pairs, const fo_wire_field *f, unsigned nf,
                   const uint8_t **slot);

/* Converters: uint (any integer >= 0), NUL-terminated str copied into d->a, batch,
 * snapshot and apply result (struct maps). */
int fo_wire_conv_uint(fo_mp_dec *d, void *out);
int fo_wire_conv_str(fo_mp_dec *d, void *out);
int fo_wire_conv_batch(fo_mp_dec *d, void *out);
int fo_wire_conv_snapshot(fo_mp_dec *d, void *out);
int fo_wire_conv_result(fo_mp_dec *d, void *out);
/* Reads a str that must be valid UTF-8; its bytes stay in the frame. */
int fo_wire_read_str(fo_mp_dec *d, fo_mp_item *it);
/* A map value whose header `it` has been read, converted into a new arena node. */
int fo_wire_map_node(fo_mp_dec *d, const fo_mp_item *it, const fo_value **out);

#endif
