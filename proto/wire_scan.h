/* wire_scan.h - bounded structural validation of raw MessagePack bytes. Internal to the
 * wire module: it works on bytes only, allocates nothing and never recurses, so it is
 * safe on any input.
 *
 * The decoder (wire_decode.c) runs it only when its fast pass has failed: it decides the
 * error of a frame that is malformed, truncated or over a limit anywhere, before any
 * field-level error (as the decoder always has), and tells a truncated frame (FO_EAGAIN)
 * from a malformed one (FO_EPROTO). */
#ifndef FO_WIRE_SCAN_H
#define FO_WIRE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/error.h"
#include "proto/wire.h"

/* The deepest nesting any decode accepts (msgpack-c 4.0's MSGPACK_EMBED_STACK_SIZE, the
 * limit of the first decoder); max_depth is capped to it. */
#define FO_WIRE_SCAN_MAX_DEPTH 32

/* Checks that data[0, len) is exactly one MessagePack value within `l` (`need_map`: and
 * that it is a map). Returns 0; FO_EAGAIN when the bytes end before the value does
 * (including when headers promise more items or string bytes than remain); FO_EPROTO
 * for a non-map top level (need_map), reserved byte 0xc1, ext types or trailing bytes;
 * FO_ELIMIT when a limit is exceeded. A limit is checked as soon as the header that
 * breaks it is read, so a truncated frame may report FO_ELIMIT rather than FO_EAGAIN.
 * On error `e` gets the code, the byte offset and a static reason (empty path). */
int fo_wire_scan(const uint8_t *data, size_t len, const fo_wire_limits *l, bool need_map,
                 fo_err_info *e);

/* True when s[0, n) is well-formed UTF-8 (no overlong forms, surrogates or code points
 * above U+10FFFF). */
bool fo_utf8_valid(const uint8_t *s, size_t n);

#endif
