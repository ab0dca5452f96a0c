/* test_wire_decode.c - the direct decoder (proto/wire_decode.c): its two passes agree on
 * every input, whatever the key order, repetition, nesting or encoding of the frame. The
 * codec's round trips, bad inputs and limits are in test_wire.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"
#include "tests/fuzz/mp_text.h"
#include "tests/fuzz/wire_cmp.h"
#include "tests/wire_text.h"

#define FLUSH1(cmd) "{command: " cmd "}"

static int decode_batch_text(fo_arena *a, const char *text, const fo_wire_limits *l,
                             fo_batch *out, fo_err_info *err)
{
    fo_buf b = mp(text);
    int rc = fo_wire_decode_batch(fo_buf_data(&b), b.len, l, a, out, err);
    fo_buf_destroy(&b);
    return rc;
}

/* Every proper prefix of a frame full of what the decoder skips or converts specially
 * (unknown nested keys, float32, nil, signed encodings, long strings) is FO_EAGAIN for
 * all three entry points, and the whole frame decodes. */
Test(wire_decode, every_prefix_of_a_rich_frame_is_eagain)
{
    static const char *const texts[] = {
        "{t: flush, rid: 18446744073709551615, model: 'a.b:c-d_e', x: {y: [1, {z: nil}], w: bin'q'},"
        " seq: 2, batch: {from: 7, v: [[[]]], completions: [{command: {action: create, path: [a, '1'],"
        " props: {f: f32:2.5, n: nil, s: 'a string that is longer than 31 bytes ....', i: -5,"
        " l: [true, false, 1.5, {}]}, parentDefault: {}, extra: {q: [1]}}, createdId: '12'},"
        " {command: {action: detete, path: nil}, createdId: nil}]}}",
        "{from: 3, completions: [{command: {action: update, path: [k], props: {v: 1}}}]}",
    };
    fo_arena a;
    fo_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        fo_buf b = mp(texts[i]);
        for (size_t n = 0; n < b.len; n++) {
            fo_msg m;
            fo_value v;
            fo_batch bt;
            fo_err_info err;
            cr_assert_eq(fo_wire_decode(fo_buf_data(&b), n, NULL, &a, &m, &err), FO_EAGAIN,
                         "text %zu prefix %zu/%zu: %s", i, n, b.len, err.msg);
            cr_assert_eq(fo_wire_decode_value(fo_buf_data(&b), n, NULL, &a, &v, NULL), FO_EAGAIN);
            cr_assert_eq(fo_wire_decode_batch(fo_buf_data(&b), n, NULL, &a, &bt, NULL), FO_EAGAIN);
        }
        fo_value v;
        cr_assert_eq(fo_wire_decode_value(fo_buf_data(&b), b.len, NULL, &a, &v, NULL), i ? 0 : FO_EINVAL,
                     "text %zu", i); /* bin'q' is refused in a plain value */
        fo_buf_destroy(&b);
    }
    fo_msg m;
    fo_err_info err;
    cr_assert_eq(decode_text(&a, texts[0], NULL, &m, &err), 0, "%s: %s", err.path, err.msg);
    cr_assert_eq(m.rid, UINT64_MAX);
    cr_assert_eq(m.batch.len, 2);
    const fo_value *props = m.batch.items[0].command.props;
    const fo_value *f = fo_map_get(fo_value_as_map(props), fo_key_new_cstr(&a, "f"));
    cr_assert_eq(fo_value_type(f), FO_FLOAT);
    cr_assert_eq(f->h.as.f, 2.5);
    cr_assert_eq(fo_value_type(fo_map_get(fo_value_as_map(props), fo_key_new_cstr(&a, "n"))),
                 FO_NULL);
    cr_assert_eq(fo_value_type(fo_map_get(fo_value_as_map(props), fo_key_new_cstr(&a, "i"))),
                 FO_INT);
    cr_assert_eq(m.batch.items[1].command.action, FO_DELETE);
    cr_assert_eq(m.batch.items[1].created_id, FO_KEY_NONE);
    fo_batch bt;
    cr_assert_eq(decode_batch_text(&a, texts[1], NULL, &bt, &err), 0);
    cr_assert_eq(bt.from, 3);
    fo_arena_destroy(&a);
}

/* Key order changes neither the result nor the error reported: the fields are checked
 * in a fixed order (rid, t, model, then the type's), whichever comes first on the wire. */
Test(wire_decode, key_order_does_not_matter)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m1, m2;
    fo_err_info err;
    cr_assert_eq(decode_text(&a,
                             "{t: flush, rid: 9, model: m, seq: 4, batch: {from: 1, completions: "
                             "[{command: {action: update, path: [x], props: {a: 1}}}]}}",
                             NULL, &m1, &err),
                 0);
    cr_assert_eq(decode_text(&a,
                             "{batch: {completions: [{command: {props: {a: 1}, path: [x], action: "
                             "update}}], from: 1}, seq: 4, model: m, rid: 9, t: flush}",
                             NULL, &m2, &err),
                 0, "%s: %s", err.path, err.msg);
    cr_assert(wc_msg_eq(&m1, &m2));
    static const struct {
        const char *text, *path, *msg;
    } cases[] = {
        {"{batch: {from: 0, completions: [{}]}, seq: x, model: m, t: flush}", "seq",
         "expected uint"},
        {"{t: flush, batch: {from: 0, completions: [{}]}, seq: x, model: m}", "seq",
         "expected uint"},
        {"{t: flush, batch: 1, seq: 1, model: '', rid: -1}", "rid", "expected uint"},
        {"{seq: 1, batch: 1, model: 'a b', t: flush}", "model", "[A-Za-z0-9._:-]"},
        {"{t: flush, model: m, seq: 1, batch: {completions: [{command: {path: [1], action: x}}],"
         " from: -1}}",
         "batch.from", "expected uint"},
        {"{t: flush, model: m, seq: 1, batch: {from: 0, completions: [{command: {path: [1],"
         " action: x}}]}}",
         COMP ".action", "unknown action"},
        {"{t: flush, model: m, seq: 1, batch: {from: 0, completions: [{createdId: 1, command: "
         "{props: 1, action: create}}]}}",
         COMP ".props", "expected map"},
        {"{t: flush, 1: 2, model: m, seq: x}", "", "map key must be str"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(decode_text(&a, cases[i].text, NULL, &m1, &err), FO_EINVAL, "case %zu", i);
        cr_assert_str_eq(err.path, cases[i].path, "case %zu: %s", i, err.msg);
        cr_assert(strstr(err.msg, cases[i].msg), "case %zu: %s", i, err.msg);
    }
    /* The addressing fields are read first even when they come last. */
    cr_assert_eq(decode_text(&a, "{seq: x, model: m2, rid: 5, t: flush}", NULL, &m1, &err),
                 FO_EINVAL);
    cr_assert_eq(m1.type, FO_MSG_FLUSH);
    cr_assert(m1.has_rid);
    cr_assert_eq(m1.rid, 5);
    cr_assert_str_eq(m1.model, "m2");
    /* A bad rid is still there (has_rid) when the error is reported. */
    cr_assert_eq(decode_text(&a, "{t: flush, model: m, rid: x}", NULL, &m1, &err), FO_EINVAL);
    cr_assert(m1.has_rid);
    cr_assert_str_eq(err.path, "rid");
    fo_arena_destroy(&a);
}

/* A repeated key: its last value wins, and an earlier bad value is not an error. */
Test(wire_decode, repeated_keys_last_wins)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    fo_err_info err;
    cr_assert_eq(decode_text(&a,
                             "{t: flush, model: m, seq: bad, seq: 2, batch: 5, batch: {from: 1, "
                             "completions: [{command: {action: x, action: create, path: [a], "
                             "path: nil, props: {k: 1, k: 2, j: 3}}}]}}",
                             NULL, &m, &err),
                 0, "%s: %s", err.path, err.msg);
    cr_assert_eq(m.seq, 2);
    const fo_command *c = &m.batch.items[0].command;
    cr_assert_eq(c->action, FO_CREATE);
    cr_assert_eq(c->path.len, 0);
    cr_assert_null(c->path.seg);
    cr_assert_eq(fo_map_count(fo_value_as_map(c->props)), 2);
    const fo_value *k = fo_map_get(fo_value_as_map(c->props), fo_key_new_cstr(&a, "k"));
    cr_assert_eq(k->h.as.i, 2);
    /* nil after a value: absent, and the value is gone too. */
    cr_assert_eq(decode_text(&a, "{t: sub, model: m, from: 5, from: nil, rid: 3, rid: nil}", NULL,
                             &m, &err),
                 0);
    cr_assert_not(m.has_from);
    cr_assert_eq(m.from, 0);
    cr_assert_not(m.has_rid);
    cr_assert_eq(m.rid, 0);
    /* The last `t` decides the type, and the fields are read for that type. */
    cr_assert_eq(decode_text(&a, "{t: hello, client: c, t: sub, model: m}", NULL, &m, &err), 0);
    cr_assert_eq(m.type, FO_MSG_SUB);
    cr_assert_null(m.client);
    cr_assert_eq(decode_text(&a, "{t: sub, model: m, t: hello}", NULL, &m, &err), FO_EINVAL);
    cr_assert_str_eq(err.path, "client");
    /* A presence's session: the last one decides whether it is the hub's event. */
    cr_assert_eq(decode_text(&a, "{t: presence, model: m, session: s, session: nil, state: nil}",
                             NULL, &m, &err),
                 0);
    cr_assert_eq(m.type, FO_MSG_PRESENCE);
    cr_assert_eq(decode_text(&a, "{t: presence, model: m, session: 5, session: s, state: nil}",
                             NULL, &m, &err),
                 0);
    cr_assert_eq(m.type, FO_MSG_PRESENCE_EVT);
    cr_assert_str_eq(m.session, "s");
    fo_arena_destroy(&a);
}

/* A malformed, truncated or oversized part anywhere beats a bad field before it. */
Test(wire_decode, structural_errors_beat_field_errors)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    fo_err_info err;
    fo_buf b = mp("{t: flush, rid: x, model: m, seq: 1, z: 1}");
    /* cut the last value off: truncated */
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len - 1, NULL, &a, &m, &err), FO_EAGAIN);
    /* an ext type where it was */
    fo_buf_data(&b)[b.len - 1] = (char)0xd4;
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, NULL, &a, &m, &err), FO_EPROTO);
    cr_assert(strstr(err.msg, "ext"));
    fo_buf_destroy(&b);
    fo_wire_limits l;
    fo_wire_limits_default(&l);
    l.max_str = 8;
    cr_assert_eq(decode_text(&a, "{t: flush, rid: x, unknown: '0123456789'}", &l, &m, &err),
                 FO_ELIMIT);
    cr_assert(strstr(err.msg, "string too long"));
    cr_assert_eq(decode_text(&a, "{t: flush, rid: x}", NULL, &m, &err), FO_EINVAL);
    cr_assert_str_eq(err.path, "rid");
    fo_arena_destroy(&a);
}

/* Unknown keys: anything nested is skipped, within the limits; strings in it are not
 * checked for UTF-8, but bin and ext are what they always were (bin skipped, ext refused). */
Test(wire_decode, unknown_nested_values)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    fo_err_info err;
    cr_assert_eq(decode_text(&a,
                             "{t: ok, a: {b: [1, {c: [[[], {}]], '\xff': '\xfe'}], d: bin'x'},"
                             " '\xc0': 1, e: f32:1.5}",
                             NULL, &m, &err),
                 0, "%s", err.msg);
    cr_assert_eq(m.type, FO_MSG_OK);
    fo_wire_limits l;
    fo_wire_limits_default(&l);
    l.max_depth = 3;
    cr_assert_eq(decode_text(&a, "{t: ok, x: [[1]]}", &l, &m, &err), 0);
    cr_assert_eq(decode_text(&a, "{t: ok, x: [[[1]]]}", &l, &m, &err), FO_ELIMIT);
    cr_assert(strstr(err.msg, "deep"));
    cr_assert_eq(decode_text(&a, "{t: ok, x: [{}], y: {z: [[]]}}", &l, &m, &err), FO_ELIMIT);
    /* The default depth (32) counts unknown values too. */
    fo_buf b;
    fo_buf_init(&b, 0);
    put(&b, "\x82\xa1t\xa2ok\xa1x", 8);
    for (int i = 0; i < 30; i++)
        put(&b, "\x91", 1);
    put(&b, "\x90", 1);
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, NULL, &a, &m, &err), 0, "%s", err.msg);
    fo_buf_destroy(&b);
    fo_buf_init(&b, 0);
    put(&b, "\x82\xa1t\xa2ok\xa1x", 8);
    for (int i = 0; i < 31; i++)
        put(&b, "\x91", 1);
    put(&b, "\x90", 1);
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, NULL, &a, &m, &err), FO_ELIMIT);
    fo_buf_destroy(&b);
    /* Elements and objects in skipped values count. */
    fo_wire_limits_default(&l);
    l.max_elems = 2;
    cr_assert_eq(decode_text(&a, "{t: ok, x: [1, 2, 3]}", &l, &m, &err), FO_ELIMIT);
    fo_wire_limits_default(&l);
    l.max_total = 7; /* the map, 2 keys, 2 values, 2 items */
    cr_assert_eq(decode_text(&a, "{t: ok, x: [1, 2]}", &l, &m, &err), 0);
    cr_assert_eq(decode_text(&a, "{t: ok, x: [1, 2, 3]}", &l, &m, &err), FO_ELIMIT);
    fo_arena_destroy(&a);
}

/* Lengths and counts that promise more than the frame holds: FO_EAGAIN, in a field, in a
 * value and in a skipped key alike, with hardly anything allocated. */
Test(wire_decode, huge_declared_lengths_with_short_data)
{
    static const struct {
        const char *p;
        size_t n;
    } frames[] = {
        FRAME("\x82\xa1t\xa2ok\xa1x\xdb\x00\x00\xff\xff" "abc"),    /* str32 in an unknown key */
        FRAME("\x82\xa1t\xa2ok\xa1x\xc6\x00\x00\xff\xff" "abc"),    /* bin32 */
        FRAME("\x82\xa1t\xa2ok\xa1x\xdd\x00\x01\x00\x00\x01\x02"),    /* array32 */
        FRAME("\x82\xa1t\xa2ok\xa1x\xdf\x00\x01\x00\x00\xa1k\x01"),   /* map32 */
        FRAME("\x82\xa1t\xa5hello\xa6" "client\xda\xff\xf0xy"),     /* str16 in a field */
        FRAME("\x83\xa1t\xa8presence\xa5model\xa1m\xa5state\xde\x10\x00\xa1k"), /* map16 */
        FRAME("\xdc\x10\x00\x01\x02\x03"),                            /* a value */
    };
    fo_arena a;
    fo_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        fo_msg m;
        fo_value v;
        fo_err_info err;
        size_t used = a.used;
        int rc = fo_wire_decode(frames[i].p, frames[i].n, NULL, &a, &m, &err);
        cr_assert_eq(rc, i == 6 ? FO_EPROTO : FO_EAGAIN, "frame %zu: %d %s", i, rc, err.msg);
        cr_assert_eq(fo_wire_decode_value(frames[i].p, frames[i].n, NULL, &a, &v, NULL), FO_EAGAIN,
                     "frame %zu", i);
        cr_assert_leq(a.used - used, 64 * frames[i].n, "frame %zu", i);
    }
    fo_arena_destroy(&a);
}

/* Integers: a signed encoding of a value >= 0 is a uint (as msgpack-c reads it); float32
 * widens to the same double; nil in every optional field means absent. */
Test(wire_decode, scalar_encodings)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    fo_err_info err;
    fo_buf b;
    fo_buf_init(&b, 0);
    /* {t: get, model: m, at: int64 7, rid: int8 0} */
    put(&b, "\x84\xa1t\xa3get\xa5model\xa1m\xa2" "at\xd3\x00\x00\x00\x00\x00\x00\x00\x07"
            "\xa3rid\xd0\x00", 33);
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, NULL, &a, &m, &err), 0, "%s", err.msg);
    cr_assert(m.has_at);
    cr_assert_eq(m.at, 7);
    cr_assert(m.has_rid);
    cr_assert_eq(m.rid, 0);
    fo_buf_destroy(&b);
    fo_buf_init(&b, 0);
    put(&b, "\x83\xa1t\xa3get\xa5model\xa1m\xa2" "at\xd1\xff\xfe", 21); /* int16 -2 */
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, NULL, &a, &m, &err), FO_EINVAL);
    cr_assert_str_eq(err.path, "at");
    fo_buf_destroy(&b);
    fo_value v;
    b = mp("[f32:0.1, -1, -128, -129, -32769, -2147483649, 255, 65536, 4294967296]");
    cr_assert_eq(fo_wire_decode_value(fo_buf_data(&b), b.len, NULL, &a, &v, &err), 0);
    cr_assert_eq(v.h.as.items[0].h.as.f, (double)0.1f);
    static const int64_t want[] = {-1, -128, -129, -32769, -2147483649LL, 255, 65536, 4294967296LL};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(v.h.as.items[1 + i].h.as.i, want[i], "item %d", i + 1);
    fo_buf_destroy(&b);
    cr_assert_eq(decode_text(&a, "{t: hello, client: c, token: nil}", NULL, &m, &err), 0);
    cr_assert_null(m.token);
    cr_assert_eq(decode_text(&a, "{t: get, model: m, at: nil}", NULL, &m, &err), 0);
    cr_assert_not(m.has_at);
    cr_assert_eq(decode_text(&a, "{t: history, model: m, from: 1, to: nil}", NULL, &m, &err), 0);
    cr_assert_not(m.has_to);
    cr_assert(m.has_from);
    cr_assert_eq(decode_text(&a, "{t: error, model: nil, code: gone, message: x}", NULL, &m, &err),
                 0);
    cr_assert_null(m.model);
    cr_assert_eq(decode_text(&a, "{t: flush, model: m, seq: nil, batch: {from: 0, completions: []}}",
                             NULL, &m, &err),
                 FO_EINVAL);
    cr_assert_str_eq(err.path, "seq");
    fo_arena_destroy(&a);
}

/* Non-UTF-8 strings: refused wherever a string is read, with the field's path. */
Test(wire_decode, invalid_utf8_everywhere)
{
    static const struct {
        const char *text, *path;
    } cases[] = {
        {"{t: hello, client: c, token: '\xff'}", "token"},
        {"{t: hello, client: 'a\xe2\x82'}", "client"},
        {CMD("{action: create, props: {'\xff': 1}}"), COMP ".props"},
        {CMD("{action: create, props: {a: {b: ['\xed\xa0\x80']}}}"), COMP ".props.a.b[0]"},
        {"{t: flush, model: m, seq: 1, batch: {from: 0, completions: [{command: "
         "{action: create}, createdId: '\xf5\x80\x80\x80'}]}}",
         "batch.completions[0].createdId"},
        {"{t: error, code: gone, message: 'long enough to leave the short path \xc3'}", "message"},
        /* an empty key is named by its empty name (the msgpack-c decoder said "[0]") */
        {CMD("{action: create, props: {'': {'': '\xff'}}}"), COMP ".props.."},
    };
    fo_arena a;
    fo_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fo_msg m;
        fo_err_info err;
        cr_assert_eq(decode_text(&a, cases[i].text, NULL, &m, &err), FO_EINVAL, "case %zu", i);
        cr_assert_str_eq(err.path, cases[i].path, "case %zu", i);
        cr_assert(strstr(err.msg, "UTF-8"), "case %zu: %s", i, err.msg);
    }
    fo_value v;
    fo_buf b = mp("{ok: 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 and a long tail of ascii'}");
    cr_assert_eq(fo_wire_decode_value(fo_buf_data(&b), b.len, NULL, &a, &v, NULL), 0);
    fo_buf_destroy(&b);
    fo_arena_destroy(&a);
}

/* A stored batch: any key order, its own errors. */
Test(wire_decode, stored_batch_errors)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_batch bt;
    fo_err_info err;
    cr_assert_eq(decode_batch_text(&a, "{completions: [], from: 3, more: [1]}", NULL, &bt, &err), 0);
    cr_assert_eq(bt.from, 3);
    cr_assert_eq(decode_batch_text(&a, "{from: 0}", NULL, &bt, &err), FO_EINVAL);
    cr_assert_str_eq(err.path, "completions");
    cr_assert_eq(decode_batch_text(&a, "{from: 0, completions: [{command: {action: create, path: "
                                       "[a, 1]}}]}",
                                   NULL, &bt, &err),
                 FO_EINVAL);
    cr_assert_str_eq(err.path, "completions[0].command.path[1]");
    cr_assert_str_eq(err.msg, "expected str");
    cr_assert_eq(decode_batch_text(&a, "[1]", NULL, &bt, &err), FO_EPROTO);
    fo_arena_destroy(&a);
}
