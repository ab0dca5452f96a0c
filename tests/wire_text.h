/* wire_text.h - what test_wire.c and test_wire_decode.c share: decoding a frame written
 * in mp_text.h's notation, and the shorthands of their tables. Test-only, header-only. */
#ifndef FO_TEST_WIRE_TEXT_H
#define FO_TEST_WIRE_TEXT_H

#include "proto/wire.h"
#include "tests/fuzz/mp_text.h"

/* A flush whose one completion is `c`, and the field path its errors name. */
#define CMD(c) "{t: flush, model: m, seq: 1, batch: {from: 0, completions: [{command: " c "}]}}"
#define COMP "batch.completions[0].command"
/* {bytes, length} of a string literal that may hold NULs. */
#define FRAME(s)                                                                                   \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

/* fo_wire_decode of mp(text). */
static inline int decode_text(fo_arena *a, const char *text, const fo_wire_limits *l, fo_msg *out,
                              fo_err_info *err)
{
    fo_buf b = mp(text);
    int rc = fo_wire_decode(fo_buf_data(&b), b.len, l, a, out, err);
    fo_buf_destroy(&b);
    return rc;
}

#endif
