/* fuzz_wire.c - libFuzzer target for the wire decoder (built with clang by
 * tests/fuzz/CMakeLists.txt; run by the ctest `fuzz_wire`).
 *
 * Every input goes through fo_wire_decode, fo_wire_decode_value and fo_wire_decode_batch,
 * with the default limits and with tight ones. Whatever decodes must survive a round
 * trip: encode, decode again, compare field by field (wire_cmp.h), and re-encode to the
 * same bytes. Any difference aborts, so libFuzzer saves the input. The sanitizers catch
 * the rest (overflows, leaks, undefined behaviour, and allocations past -malloc_limit_mb).
 *
 * Differential check: the previous decoder (msgpack-c object tree + conversion), built
 * here from wire_decode_old.c, decodes every input too, and both must agree exactly: the
 * return code, err (code, pos, path, message), the decoded message, value or batch, and
 * after FO_EINVAL the addressing fields (type, rid, model). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"
#include "tests/fuzz/wire_cmp.h"
#include "tests/fuzz/wire_decode_old.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const fo_err_info *err)
{
    fprintf(stderr, "fuzz_wire: %s", what);
    if (err)
        fprintf(stderr, " (code %d, %s: %s)", err->code, err->path, err->msg);
    fputc('\n', stderr);
    abort();
}

/* Limits for re-decoding our own output: float32 inputs grow to float64 on the way out,
 * so the frame may get longer; nothing else can grow. */
static const fo_wire_limits *roomy(const fo_wire_limits *l, fo_wire_limits *tmp)
{
    *tmp = *l;
    tmp->max_frame = (size_t)1 << 30;
    return tmp;
}

static void same_bytes(const fo_buf *x, const fo_buf *y, const char *what)
{
    if (x->len != y->len || memcmp(fo_buf_data(x), fo_buf_data(y), x->len) != 0)
        die(what, NULL);
}

static void check_msg(const fo_msg *m, const fo_wire_limits *l, fo_arena *a)
{
    fo_buf b1, b2;
    fo_msg m2;
    fo_err_info err;
    fo_wire_limits tmp;
    fo_buf_init(&b1, 0);
    fo_buf_init(&b2, 0);
    if (fo_wire_encode(m, &b1) != 0)
        die("encode of a decoded message failed", NULL);
    if (fo_wire_decode(fo_buf_data(&b1), b1.len, roomy(l, &tmp), a, &m2, &err) != 0)
        die("re-decode failed", &err);
    if (!wc_msg_eq(m, &m2))
        die("message changed in a round trip", NULL);
    if (fo_wire_encode(&m2, &b2) != 0)
        die("second encode failed", NULL);
    same_bytes(&b1, &b2, "re-encoding is not stable");
    fo_buf_destroy(&b1);
    fo_buf_destroy(&b2);
}

static void check_value(const fo_value *v, const fo_wire_limits *l, fo_arena *a)
{
    fo_buf b1, b2;
    fo_value v2;
    fo_err_info err;
    fo_wire_limits tmp;
    fo_buf_init(&b1, 0);
    fo_buf_init(&b2, 0);
    if (fo_wire_encode_value(v, &b1) != 0)
        die("encode of a decoded value failed", NULL);
    if (fo_wire_decode_value(fo_buf_data(&b1), b1.len, roomy(l, &tmp), a, &v2, &err) != 0)
        die("value re-decode failed", &err);
    if (!wc_value_eq(v, &v2))
        die("value changed in a round trip", NULL);
    if (fo_wire_encode_value(&v2, &b2) != 0)
        die("second value encode failed", NULL);
    same_bytes(&b1, &b2, "value re-encoding is not stable");
    fo_buf_destroy(&b1);
    fo_buf_destroy(&b2);
}

static void check_batch(const fo_batch *b, const fo_wire_limits *l, fo_arena *a)
{
    fo_buf b1, b2;
    fo_batch bb;
    fo_err_info err;
    fo_wire_limits tmp;
    fo_buf_init(&b1, 0);
    fo_buf_init(&b2, 0);
    if (fo_wire_encode_batch(b, &b1) != 0)
        die("encode of a decoded batch failed", NULL);
    if (fo_wire_decode_batch(fo_buf_data(&b1), b1.len, roomy(l, &tmp), a, &bb, &err) != 0)
        die("batch re-decode failed", &err);
    if (!wc_batch_eq(b, &bb))
        die("batch changed in a round trip", NULL);
    if (fo_wire_encode_batch(&bb, &b2) != 0)
        die("second batch encode failed", NULL);
    same_bytes(&b1, &b2, "batch re-encoding is not stable");
    fo_buf_destroy(&b1);
    fo_buf_destroy(&b2);
}

static void same_err(int rc, const fo_err_info *e, int orc, const fo_err_info *oe, const char *what)
{
    if (rc == orc && e->code == oe->code && e->pos == oe->pos && !strcmp(e->path, oe->path) &&
        !strcmp(e->msg, oe->msg))
        return;
    fprintf(stderr, "fuzz_wire: %s: new %d (code %d, pos %zu, %s: %s), old %d (code %d, pos %zu, %s: %s)\n",
            what, rc, e->code, e->pos, e->path, e->msg, orc, oe->code, oe->pos, oe->path, oe->msg);
    abort();
}

static void differential(const uint8_t *data, size_t size, const fo_wire_limits *l)
{
    fo_arena a, oa;
    fo_msg m, om;
    fo_value v, ov;
    fo_batch b, ob;
    fo_err_info e, oe;
    int rc, orc;

    fo_arena_init(&a, 0);
    fo_arena_init(&oa, 0);
    rc = fo_wire_decode(data, size, l, &a, &m, &e);
    orc = fo_old_wire_decode(data, size, l, &oa, &om, &oe);
    same_err(rc, &e, orc, &oe, "decode differs from the old decoder");
    if (rc == 0 && !wc_msg_eq(&m, &om))
        die("decoded message differs from the old decoder's", NULL);
    if (rc == FO_EINVAL && (m.type != om.type || m.has_rid != om.has_rid || m.rid != om.rid ||
                            !wc_str_eq(m.model, om.model)))
        die("error addressing (type, rid, model) differs from the old decoder's", &e);
    rc = fo_wire_decode_value(data, size, l, &a, &v, &e);
    orc = fo_old_wire_decode_value(data, size, l, &oa, &ov, &oe);
    same_err(rc, &e, orc, &oe, "decode_value differs from the old decoder");
    if (rc == 0 && !wc_value_eq(&v, &ov))
        die("decoded value differs from the old decoder's", NULL);
    rc = fo_wire_decode_batch(data, size, l, &a, &b, &e);
    orc = fo_old_wire_decode_batch(data, size, l, &oa, &ob, &oe);
    same_err(rc, &e, orc, &oe, "decode_batch differs from the old decoder");
    if (rc == 0 && !wc_batch_eq(&b, &ob))
        die("decoded batch differs from the old decoder's", NULL);
    fo_arena_destroy(&a);
    fo_arena_destroy(&oa);
}

static void run(const uint8_t *data, size_t size, const fo_wire_limits *l)
{
    fo_arena a;
    fo_msg m;
    fo_value v;
    fo_batch b;
    fo_err_info err;

    fo_arena_init(&a, 0);
    int rc = fo_wire_decode(data, size, l, &a, &m, &err);
    if (rc == 0)
        check_msg(&m, l, &a);
    else if (rc != err.code || rc < FO_ELIMIT || rc > FO_EINVAL)
        die("unexpected decode error", &err);
    if (fo_wire_decode_value(data, size, l, &a, &v, NULL) == 0)
        check_value(&v, l, &a);
    if (fo_wire_decode_batch(data, size, l, &a, &b, NULL) == 0)
        check_batch(&b, l, &a);
    fo_arena_destroy(&a);
    differential(data, size, l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fo_wire_limits l;
    fo_wire_limits_default(&l);
    run(data, size, &l);
    /* Tight limits reach the limit checks with small inputs. */
    l.max_frame = 2048;
    l.max_depth = 6;
    l.max_path = 4;
    l.max_str = 40;
    l.max_elems = 12;
    l.max_total = 200;
    run(data, size, &l);
    return 0;
}
