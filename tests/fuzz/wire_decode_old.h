/* wire_decode_old.h - the previous wire decoder (msgpack-c object tree + conversion),
 * built into the fuzz target only as the reference of its differential check, which
 * stays: the direct decoder's two passes (wire_decode.c) must keep agreeing with it.
 * Same contracts as fo_wire_decode, fo_wire_decode_value and fo_wire_decode_batch
 * (wire.h). A deliberate change to what the decoder accepts or reports must be made
 * here too (or the check dropped). */
#ifndef FO_TEST_WIRE_DECODE_OLD_H
#define FO_TEST_WIRE_DECODE_OLD_H

#include "proto/wire.h"

int fo_old_wire_decode(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                       fo_msg *out, fo_err_info *err);
int fo_old_wire_decode_value(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                             fo_value *out, fo_err_info *err);
int fo_old_wire_decode_batch(const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                             fo_batch *out, fo_err_info *err);

#endif
