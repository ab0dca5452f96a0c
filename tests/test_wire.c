/* test_wire.c - the MessagePack codec (proto/wire.h): round trips of every message,
 * truncation, limits and field-level errors. Frames are written in the notation of
 * tests/fuzz/mp_text.h, e.g. mp("{t: flush, seq: -1}"). The direct decoder's own cases are in
 * test_wire_decode.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"
#include "tests/fuzz/mp_text.h"
#include "tests/fuzz/wire_cmp.h"
#include "tests/wire_text.h"

/* ---- helpers ------------------------------------------------------------------------- */

static fo_value *val(fo_arena *a, const char *text)
{
    fo_buf b = mp(text);
    fo_value *v = fo_arena_alloc(a, sizeof *v);
    fo_err_info err;
    int rc = fo_wire_decode_value(fo_buf_data(&b), b.len, NULL, a, v, &err);
    cr_assert_eq(rc, 0, "value %s: %s %s", text, err.path, err.msg);
    fo_buf_destroy(&b);
    return v;
}

static fo_path path_of(fo_arena *a, const char *const *segs, uint32_t n)
{
    fo_key *k = fo_arena_alloc(a, sizeof(fo_key) * (n ? n : 1));
    for (uint32_t i = 0; i < n; i++)
        k[i] = fo_key_new_cstr(a, segs[i]);
    return (fo_path){k, n};
}

#define PATH(a, ...)                                                                               \
    path_of((a), (const char *const[]){__VA_ARGS__},                                               \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static bool contains(const fo_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i + n <= b->len; i++)
        if (memcmp(fo_buf_data(b) + i, s, n) == 0)
            return true;
    return false;
}

/* Encodes m, decodes it back, asserts equality; returns the decoded copy. */
static fo_msg roundtrip(fo_arena *a, const fo_msg *m)
{
    fo_buf b;
    fo_msg got;
    fo_err_info err;
    fo_buf_init(&b, 16);
    cr_assert_eq(fo_wire_encode(m, &b), 0);
    int rc = fo_wire_decode(fo_buf_data(&b), b.len, NULL, a, &got, &err);
    cr_assert_eq(rc, 0, "decode of %s failed: %s: %s", fo_msg_type_name(m->type), err.path,
                 err.msg);
    cr_assert(wc_msg_eq(m, &got), "round trip of %s differs", fo_msg_type_name(m->type));
    /* Re-encoding the decoded message gives the same bytes. */
    fo_buf b2;
    fo_buf_init(&b2, 0);
    cr_assert_eq(fo_wire_encode(&got, &b2), 0);
    cr_assert_eq(b.len, b2.len);
    cr_assert_eq(memcmp(fo_buf_data(&b), fo_buf_data(&b2), b.len), 0);
    fo_buf_destroy(&b);
    fo_buf_destroy(&b2);
    return got;
}

static fo_batch sample_batch(fo_arena *a)
{
    fo_completion *c = fo_arena_calloc(a, 3 * sizeof *c);
    c[0].command.action = FO_CREATE;
    c[0].command.path = PATH(a, "lists", "12");
    c[0].command.props = val(a, "{title: 'milk', done: false, n: -5, big: 18446744073709551615,"
                                " ratio: 0.25, tags: [a, 1, nil, {x: 1}], empty: {}}");
    c[0].command.parent_default = val(a, "{kind: list}");
    c[0].created_id = fo_key_new_cstr(a, "4711");
    c[1].command.action = FO_UPDATE;
    c[1].command.path = PATH(a, "lists", "12", "4711");
    c[1].command.props = val(a, "{'d\xc3\xa9j\xc3\xa0': 'vu', '': 'empty key', '007': 7}");
    c[2].command.action = FO_DELETE;
    c[2].command.path = PATH(a, "lists", "12", "4711");
    return (fo_batch){.from = 41, .len = 3, .items = c};
}

/* ---- round trips ----------------------------------------------------------------------- */

Test(wire, roundtrip_requests)
{
    fo_arena a;
    fo_arena_init(&a, 0);

    roundtrip(&a, &(fo_msg){.type = FO_MSG_HELLO, .client = "c1"});
    roundtrip(
        &a, &(fo_msg){.type = FO_MSG_HELLO,
                      .has_rid = true,
                      .rid = 1,
                      .client = "0123456789012345678901234567890123456789012345678901234567890123",
                      .token = "s3cret"});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_SUB, .model = "m", .has_rid = true, .rid = 7});
    roundtrip(
        &a, &(fo_msg){.type = FO_MSG_SUB, .model = "todo:list-1.a_b", .has_from = true, .from = 0});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_UNSUB, .model = "m"});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_FLUSH,
                            .has_rid = true,
                            .rid = UINT64_MAX,
                            .model = "m",
                            .seq = 3,
                            .batch = sample_batch(&a)});
    roundtrip(
        &a,
        &(fo_msg){.type = FO_MSG_FLUSH, .model = "m", .seq = 0, .batch = {.from = 0, .len = 0}});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_GET, .model = "m"});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_GET, .model = "m", .has_at = true, .at = 99});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_HISTORY, .model = "m", .has_from = true, .from = 5});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_HISTORY,
                            .model = "m",
                            .has_from = true,
                            .from = 5,
                            .has_to = true,
                            .to = 1u << 31});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_PRESENCE,
                            .model = "m",
                            .state = val(&a, "{cursor: [1, 2], name: ann}")});
    fo_msg m = roundtrip(&a, &(fo_msg){.type = FO_MSG_PRESENCE, .model = "m", .state = NULL});
    cr_assert_null(m.state);
    fo_arena_destroy(&a);
}

Test(wire, roundtrip_replies)
{
    fo_arena a;
    fo_arena_init(&a, 0);

    roundtrip(&a, &(fo_msg){.type = FO_MSG_WELCOME,
                            .has_rid = true,
                            .rid = 1,
                            .session = "s-1",
                            .server = "flushout/0.1",
                            .max_frame = 1 << 20});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_SNAP,
                            .model = "m",
                            .snapshot = {.command_count = 12,
                                         .document = val(&a, "{lists: {'12': {title: x}}}")}});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_SNAP,
                            .model = "m",
                            .snapshot = {.command_count = 0, .document = val(&a, "{}")}});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_DIFF, .model = "m", .batch = sample_batch(&a)});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_PUSH, .model = "m", .batch = sample_batch(&a)});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_OK});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_OK, .has_rid = true, .rid = 300});
    fo_msg m = roundtrip(&a, &(fo_msg){.type = FO_MSG_PRESENCE_EVT,
                                       .model = "m",
                                       .session = "s-2",
                                       .state = val(&a, "{x: 1}")});
    cr_assert_eq(m.type, FO_MSG_PRESENCE_EVT);
    roundtrip(&a, &(fo_msg){.type = FO_MSG_PRESENCE_EVT, .model = "m", .session = "s-2"});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_ERROR, .code = FO_ERR_GONE, .message = "history"});
    roundtrip(&a, &(fo_msg){.type = FO_MSG_ERROR,
                            .has_rid = true,
                            .rid = 9,
                            .model = "m",
                            .code = FO_ERR_BAD_REQUEST,
                            .message = "seq: expected uint"});
    for (int c = FO_ERR_BAD_FRAME; c <= FO_ERR_INTERNAL; c++)
        roundtrip(&a, &(fo_msg){.type = FO_MSG_ERROR, .code = (fo_error_code)c, .message = ""});
    /* rate_limited and overloaded say when to send the request again. */
    m = roundtrip(&a, &(fo_msg){.type = FO_MSG_ERROR, .has_rid = true, .rid = 4, .model = "m",
                                .code = FO_ERR_RATE_LIMITED, .message = "slow down",
                                .has_retry_after = true, .retry_after_ms = 250});
    cr_assert(m.has_retry_after && m.retry_after_ms == 250);
    m = roundtrip(&a, &(fo_msg){.type = FO_MSG_ERROR, .code = FO_ERR_OVERLOADED, .message = "",
                                .has_retry_after = true, .retry_after_ms = 0});
    cr_assert(m.has_retry_after && m.retry_after_ms == 0);
    m = roundtrip(&a, &(fo_msg){.type = FO_MSG_ERROR, .code = FO_ERR_GONE, .message = "x"});
    cr_assert(!m.has_retry_after);
    fo_arena_destroy(&a);
}

Test(wire, roundtrip_ack)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_batch b = sample_batch(&a);

    /* No sync, no errors. */
    roundtrip(&a, &(fo_msg){.type = FO_MSG_ACK, .model = "m", .seq = 4, .result = {.applied = b}});

    /* Partial sync with mappedPaths and errors. */
    fo_path_mapping *mp2 = fo_arena_calloc(&a, 2 * sizeof *mp2);
    mp2[0].from = PATH(&a, "lists", "5");
    mp2[0].to = PATH(&a, "lists", "6");
    mp2[1].from = PATH(&a, "a", "b", "c");
    mp2[1].to = PATH(&a, "a", "x");
    fo_completion_error *ce = fo_arena_calloc(&a, 2 * sizeof *ce);
    ce[0] = (fo_completion_error){FO_UPDATE, PATH(&a, "nope"), "No object at document path nope"};
    ce[1] = (fo_completion_error){FO_DELETE, {NULL, 0}, ""};
    fo_msg m = {.type = FO_MSG_ACK,
                .has_rid = true,
                .rid = 2,
                .model = "m",
                .seq = 5,
                .result = {.applied = b,
                           .sync = {.kind = FO_SYNC_PARTIAL,
                                    .diff = b,
                                    .has_mapped = true,
                                    .mapped_len = 2,
                                    .mapped = mp2},
                           .errors_len = 2,
                           .errors = ce}};
    fo_msg got = roundtrip(&a, &m);
    cr_assert_eq(got.result.sync.mapped[1].from.len, 3);

    /* Full sync with an empty mappedPaths. */
    m.result.sync = (fo_sync){.kind = FO_SYNC_FULL,
                              .latest = {.command_count = 77, .document = val(&a, "{k: v}")},
                              .has_mapped = true};
    m.result.errors_len = 0;
    got = roundtrip(&a, &m);
    cr_assert(got.result.sync.has_mapped);
    cr_assert_eq(got.result.sync.mapped_len, 0);

    /* Sync without mappedPaths. */
    m.result.sync.has_mapped = false;
    got = roundtrip(&a, &m);
    cr_assert_not(got.result.sync.has_mapped);
    fo_arena_destroy(&a);
}

Test(wire, mapped_paths_key_form)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    fo_err_info err;
    int rc = decode_text(&a,
                         "{t: ack, model: m, seq: 1, result: {applied: {from: 0, completions: []},"
                         " sync: {isPartial: true, diff: {from: 0, completions: []},"
                         " mappedPaths: {'lists,5': [lists, '6'], '': [], 'a,': [a, '']}}}}",
                         NULL, &m, &err);
    cr_assert_eq(rc, 0, "%s: %s", err.path, err.msg);
    const fo_sync *s = &m.result.sync;
    cr_assert_eq(s->mapped_len, 3);
    cr_assert(wc_path_eq(s->mapped[0].from, PATH(&a, "lists", "5")));
    cr_assert(wc_path_eq(s->mapped[0].to, PATH(&a, "lists", "6")));
    cr_assert_eq(s->mapped[1].from.len, 0); /* "" is the empty path */
    cr_assert(wc_path_eq(s->mapped[2].from, PATH(&a, "a", "")));

    /* Encoding joins with ','. */
    fo_buf b;
    fo_buf_init(&b, 0);
    cr_assert_eq(fo_wire_encode(&m, &b), 0);
    cr_assert(contains(&b, "\xa7lists,5", 8));
    fo_buf_destroy(&b);
    fo_arena_destroy(&a);
}

Test(wire, values)
{
    /* clang-format off */
    static const char *const cases[] = {
        "nil", "true", "false", "0", "127", "128", "65535", "4294967296",
        "9223372036854775807", "9223372036854775808", "18446744073709551615", "-1", "-32",
        "-33", "-9223372036854775808", "0.5", "-1.0e300", "''", "'abc'",
        "'a string that is longer than thirty-one bytes'", "[]", "[1, [2, [3, {}]]]", "{}",
        "{a: {b: {c: [nil, true, 'x']}}, '1': 1, '01': 2}",
    };
    /* clang-format on */
    fo_arena a;
    fo_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fo_value *v = val(&a, cases[i]), out;
        fo_buf b;
        fo_buf_init(&b, 0);
        cr_assert_eq(fo_wire_encode_value(v, &b), 0);
        cr_assert_eq(fo_wire_decode_value(fo_buf_data(&b), b.len, NULL, &a, &out, NULL), 0);
        cr_assert(fo_value_eq(v, &out), "value %s", cases[i]);
        fo_buf_destroy(&b);
    }
    /* Integer and float typing. */
    cr_assert_eq(fo_value_type(val(&a, "9223372036854775807")), FO_INT);
    cr_assert_eq(fo_value_type(val(&a, "9223372036854775808")), FO_UINT);
    cr_assert_eq(val(&a, "-33")->h.as.i, -33);
    fo_value *f = val(&a, "f32:1.5");
    cr_assert_eq(fo_value_type(f), FO_FLOAT);
    cr_assert_float_eq(f->h.as.f, 1.5, 0);
    /* float32 in, float64 out: same value. */
    fo_buf b;
    fo_buf_init(&b, 0);
    cr_assert_eq(fo_wire_encode_value(f, &b), 0);
    cr_assert_eq(b.len, 9);
    cr_assert_eq((uint8_t)fo_buf_data(&b)[0], 0xcb);
    fo_buf_destroy(&b);
    /* NaN keeps its bits. */
    fo_value nan = fo_value_float(NAN), out;
    fo_buf_init(&b, 0);
    cr_assert_eq(fo_wire_encode_value(&nan, &b), 0);
    cr_assert_eq(fo_wire_decode_value(fo_buf_data(&b), b.len, NULL, &a, &out, NULL), 0);
    cr_assert(isnan(out.h.as.f));
    fo_buf_destroy(&b);
    fo_arena_destroy(&a);
}

Test(wire, batch_codec)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_batch b = sample_batch(&a), got;
    fo_buf buf;
    fo_buf_init(&buf, 0);
    cr_assert_eq(fo_wire_encode_batch(&b, &buf), 0);
    cr_assert_eq(fo_wire_decode_batch(fo_buf_data(&buf), buf.len, NULL, &a, &got, NULL), 0);
    cr_assert(wc_batch_eq(&b, &got));
    cr_assert_eq(fo_wire_decode_batch(fo_buf_data(&buf), buf.len - 1, NULL, &a, &got, NULL),
                 FO_EAGAIN);
    fo_buf_destroy(&buf);
    buf = mp("[1]");
    cr_assert_eq(fo_wire_decode_batch(fo_buf_data(&buf), buf.len, NULL, &a, &got, NULL), FO_EPROTO);
    fo_buf_destroy(&buf);
    fo_arena_destroy(&a);
}

/* ---- decoding details ------------------------------------------------------------------- */

Test(wire, detete_alias)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    fo_err_info err;
    int rc = decode_text(&a,
                         "{t: flush, model: m, seq: 1, batch: {from: 0, completions: ["
                         "{command: {action: detete, path: [x]}}]}}",
                         NULL, &m, &err);
    cr_assert_eq(rc, 0, "%s: %s", err.path, err.msg);
    cr_assert_eq(m.batch.items[0].command.action, FO_DELETE);
    fo_buf b;
    fo_buf_init(&b, 0);
    cr_assert_eq(fo_wire_encode(&m, &b), 0);
    cr_assert(contains(&b,
                       "\xa6"
                       "delete",
                       7));
    cr_assert_not(contains(&b, "detete", 6));
    fo_buf_destroy(&b);

    /* CompletionError.action too. */
    rc = decode_text(&a,
                     "{t: ack, model: m, seq: 1, result: {applied: {from: 0, completions: []},"
                     " errors: [{action: detete, path: [], errorMessage: no}]}}",
                     NULL, &m, &err);
    cr_assert_eq(rc, 0, "%s: %s", err.path, err.msg);
    cr_assert_eq(m.result.errors[0].action, FO_DELETE);
    fo_arena_destroy(&a);
}

Test(wire, unknown_keys_and_nil_optionals)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    fo_err_info err;
    int rc = decode_text(&a,
                         "{future: [1, {deep: bin'x'}], t: flush, rid: nil, model: m, seq: 2,"
                         " extra: f32:2.5, batch: {from: 3, v2: true, completions: ["
                         "{command: {action: create, path: nil, props: nil, parentDefault: nil,"
                         " hint: 1}, createdId: nil, meta: {}}]}}",
                         NULL, &m, &err);
    cr_assert_eq(rc, 0, "%s: %s", err.path, err.msg);
    cr_assert_eq(m.type, FO_MSG_FLUSH);
    cr_assert_not(m.has_rid);
    cr_assert_eq(m.batch.from, 3);
    const fo_completion *c = &m.batch.items[0];
    cr_assert_eq(c->command.path.len, 0);
    cr_assert_null(c->command.props);
    cr_assert_null(c->command.parent_default);
    cr_assert_eq(c->created_id, FO_KEY_NONE);
    cr_assert_eq(m.model_len, 1);
    cr_assert_str_eq(m.model, "m");
    fo_arena_destroy(&a);
}

Test(wire, presence_forms)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    cr_assert_eq(decode_text(&a, "{t: presence, model: m, state: nil}", NULL, &m, NULL), 0);
    cr_assert_eq(m.type, FO_MSG_PRESENCE);
    cr_assert_null(m.state);
    cr_assert_eq(
        decode_text(&a, "{t: presence, model: m, session: nil, state: {}}", NULL, &m, NULL), 0);
    cr_assert_eq(m.type, FO_MSG_PRESENCE);
    cr_assert_not_null(m.state);
    cr_assert_eq(
        decode_text(&a, "{t: presence, model: m, session: s1, state: {a: 1}}", NULL, &m, NULL), 0);
    cr_assert_eq(m.type, FO_MSG_PRESENCE_EVT);
    cr_assert_str_eq(m.session, "s1");
    fo_arena_destroy(&a);
}

Test(wire, rid_survives_a_bad_field)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    fo_err_info err;
    cr_assert_eq(decode_text(&a, "{t: flush, rid: 42, model: m, seq: -1}", NULL, &m, &err),
                 FO_EINVAL);
    cr_assert(m.has_rid);
    cr_assert_eq(m.rid, 42);
    cr_assert_eq(m.type, FO_MSG_FLUSH);
    cr_assert_str_eq(m.model, "m");
    cr_assert_str_eq(err.path, "seq");
    fo_arena_destroy(&a);
}

Test(wire, every_prefix_is_eagain)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_batch b = sample_batch(&a);
    const fo_msg msgs[] = {
        {.type = FO_MSG_FLUSH, .has_rid = true, .rid = 70000, .model = "m", .seq = 3, .batch = b},
        {.type = FO_MSG_SNAP,
         .model = "m",
         .snapshot = {.command_count = 1u << 20,
                      .document = val(&a, "{s: 'a string that is longer than 31 bytes ....',"
                                          " f: 1.5, n: -100000, u: 18446744073709551615}")}},
        {.type = FO_MSG_OK},
        {.type = FO_MSG_HELLO, .client = "c", .token = "t"},
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        fo_buf buf;
        fo_buf_init(&buf, 0);
        cr_assert_eq(fo_wire_encode(&msgs[i], &buf), 0);
        for (size_t n = 0; n < buf.len; n++) {
            fo_msg m;
            fo_err_info err;
            int rc = fo_wire_decode(fo_buf_data(&buf), n, NULL, &a, &m, &err);
            cr_assert_eq(rc, FO_EAGAIN, "msg %zu prefix %zu/%zu: rc %d %s", i, n, buf.len, rc,
                         err.msg);
        }
        fo_msg m;
        cr_assert_eq(fo_wire_decode(fo_buf_data(&buf), buf.len, NULL, &a, &m, NULL), 0);
        fo_buf_destroy(&buf);
    }
    fo_arena_destroy(&a);
}

/* ---- bad input --------------------------------------------------------------------------- */

typedef struct bad_case {
    const char *text; /* notation; NULL: use raw/rawlen */
    const char *raw;
    size_t rawlen;
    int rc;
    const char *path; /* NULL: not checked */
    const char *msg;  /* substring of err.msg; NULL: not checked */
} bad_case;

#define RAW(s) NULL, s, sizeof(s) - 1
#define TXT(s) s, NULL, 0

static const bad_case bad_cases[] = {
    /* not a MessagePack map */
    {RAW("hello world"), FO_EPROTO, "", "not a map"},
    {RAW("{\"t\":\"hello\"}"), FO_EPROTO, "", "not a map"},
    {TXT("[t, hello]"), FO_EPROTO, "", "not a map"},
    {TXT("'hello'"), FO_EPROTO, "", "not a map"},
    {TXT("nil"), FO_EPROTO, "", "not a map"},
    {RAW("\x80\x00"), FO_EPROTO, "", "trailing"},
    {RAW("\x81\xa1t\xa2ok\x81"), FO_EPROTO, "", "trailing"},
    {RAW("\x81\xa1t\xc1"), FO_EPROTO, "", "0xc1"},
    {RAW("\x81\xa1t\xd4\x01\x00"), FO_EPROTO, "", "ext"},
    {RAW("\x81\xa1t\xc7\x01\x05\x00"), FO_EPROTO, "", "ext"},
    {RAW("\x81\xa1t\xd6\xff\x00\x00\x00\x00"), FO_EPROTO, "", "ext"}, /* timestamp */
    /* truncation that headers give away */
    {RAW("\x81\xa1t\xdc\x10\x00"), FO_EAGAIN, NULL, NULL},
    {RAW("\x81\xa1t\xdb\x00\x00\x10\x00xyz"), FO_EAGAIN, NULL, NULL},
    /* limits */
    {RAW("\x81\xa1t\xdd\xff\xff\xff\xff"), FO_ELIMIT, "", "too many elements"},
    {RAW("\xdf\xff\xff\xff\xff"), FO_ELIMIT, "", "too many elements"},
    {RAW("\x81\xa1t\xdb\xff\xff\xff\xff"), FO_ELIMIT, "", "string too long"},
    {RAW("\x81\xa1t\xc6\xff\xff\xff\xff"), FO_ELIMIT, "", "string too long"},
    /* envelope */
    {TXT("{}"), FO_EINVAL, "t", "missing"},
    {TXT("{t: 1}"), FO_EINVAL, "t", "expected str"},
    {TXT("{t: hullo}"), FO_EINVAL, "t", "unknown message type"},
    {TXT("{t: ''}"), FO_EINVAL, "t", "unknown message type"},
    {TXT("{t: ok, rid: -1}"), FO_EINVAL, "rid", "expected uint"},
    {TXT("{t: ok, rid: 1.0}"), FO_EINVAL, "rid", "expected uint"},
    {TXT("{t: ok, 1: 2}"), FO_EINVAL, "", "map key must be str"},
    {TXT("{t: ok, nil: 2}"), FO_EINVAL, "", "map key must be str"},
    {TXT("{t: ok, bin'x': 2}"), FO_EINVAL, "", "map key must be str"},
    /* models */
    {TXT("{t: sub}"), FO_EINVAL, "model", "missing"},
    {TXT("{t: sub, model: nil}"), FO_EINVAL, "model", "expected str"},
    {TXT("{t: sub, model: ''}"), FO_EINVAL, "model", "1-200 bytes"},
    {TXT("{t: sub, model: 'a b'}"), FO_EINVAL, "model", "[A-Za-z0-9._:-]"},
    {TXT("{t: sub, model: 'a/b'}"), FO_EINVAL, "model", "[A-Za-z0-9._:-]"},
    {TXT("{t: sub, model: '\xc3\xa9'}"), FO_EINVAL, "model", "[A-Za-z0-9._:-]"},
    {TXT("{t: sub, model: m, from: -3}"), FO_EINVAL, "from", "expected uint"},
    {TXT("{t: get, model: m, at: '3'}"), FO_EINVAL, "at", "expected uint"},
    {TXT("{t: history, model: m}"), FO_EINVAL, "from", "missing"},
    {TXT("{t: history, model: m, from: 1, to: true}"), FO_EINVAL, "to", "expected uint"},
    /* hello */
    {TXT("{t: hello}"), FO_EINVAL, "client", "missing"},
    {TXT("{t: hello, client: ''}"), FO_EINVAL, "client", "1-64 bytes"},
    {TXT("{t: hello, client: "
         "'01234567890123456789012345678901234567890123456789012345678901234'}"),
     FO_EINVAL, "client", "1-64 bytes"},
    {TXT("{t: hello, client: c, token: 5}"), FO_EINVAL, "token", "expected str"},
    /* flush */
    {TXT("{t: flush, model: m, seq: -1, batch: {from: 0, completions: []}}"), FO_EINVAL, "seq",
     "expected uint"},
    {TXT("{t: flush, model: m, seq: 1.5, batch: {from: 0, completions: []}}"), FO_EINVAL, "seq",
     "expected uint"},
    {TXT("{t: flush, model: m, seq: 1}"), FO_EINVAL, "batch", "missing"},
    {TXT("{t: flush, model: m, seq: 1, batch: []}"), FO_EINVAL, "batch", "expected map"},
    {TXT("{t: flush, model: m, seq: 1, batch: {completions: []}}"), FO_EINVAL, "batch.from",
     "missing"},
    {TXT("{t: flush, model: m, seq: 1, batch: {from: -1, completions: []}}"), FO_EINVAL,
     "batch.from", "expected uint"},
    {TXT("{t: flush, model: m, seq: 1, batch: {from: 0}}"), FO_EINVAL, "batch.completions",
     "missing"},
    {TXT("{t: flush, model: m, seq: 1, batch: {from: 0, completions: {}}}"), FO_EINVAL,
     "batch.completions", "expected array"},
    {TXT("{t: flush, model: m, seq: 1, batch: {from: 0, completions: [nil]}}"), FO_EINVAL,
     "batch.completions[0]", "expected map"},
    {TXT("{t: flush, model: m, seq: 1, batch: {from: 0, completions: [{}]}}"), FO_EINVAL,
     "batch.completions[0].command", "missing"},
    {TXT(CMD("{path: [a]}")), FO_EINVAL, COMP ".action", "missing"},
    {TXT(CMD("{action: move}")), FO_EINVAL, COMP ".action", "unknown action"},
    {TXT(CMD("{action: Create}")), FO_EINVAL, COMP ".action", "unknown action"},
    {TXT(CMD("{action: 1}")), FO_EINVAL, COMP ".action", "expected str"},
    {TXT(CMD("{action: create, path: a}")), FO_EINVAL, COMP ".path", "expected array"},
    {TXT(CMD("{action: create, path: [a, 1]}")), FO_EINVAL, COMP ".path[1]", "expected str"},
    {TXT(CMD("{action: create, path: [a, nil]}")), FO_EINVAL, COMP ".path[1]", "expected str"},
    {TXT(CMD("{action: create, path: [a, '\xff']}")), FO_EINVAL, COMP ".path[1]", "invalid UTF-8"},
    {TXT(CMD("{action: create, path: [a, '\xc0\xaf']}")), FO_EINVAL, COMP ".path[1]",
     "invalid UTF-8"},
    {TXT(CMD("{action: create, path: [a, '\xed\xa0\x80']}")), FO_EINVAL, COMP ".path[1]",
     "invalid UTF-8"},
    {TXT(CMD("{action: create, props: []}")), FO_EINVAL, COMP ".props", "expected map"},
    {TXT(CMD("{action: create, props: {a: {1: x}}}")), FO_EINVAL, COMP ".props.a",
     "map key must be str"},
    {TXT(CMD("{action: create, props: {a: [1, bin'x']}}")), FO_EINVAL, COMP ".props.a[1]", "bin"},
    {TXT(CMD("{action: create, props: {a: '\xe2\x82'}}")), FO_EINVAL, COMP ".props.a",
     "invalid UTF-8"},
    {TXT(CMD("{action: create, parentDefault: 3}")), FO_EINVAL, COMP ".parentDefault",
     "expected map"},
    {TXT("{t: flush, model: m, seq: 1, batch: {from: 0, completions: [{command: "
         "{action: create}}, {command: {action: create}, createdId: 5}]}}"),
     FO_EINVAL, "batch.completions[1].createdId", "expected str"},
    /* replies */
    {TXT("{t: welcome, session: s, server: x}"), FO_EINVAL, "maxFrame", "missing"},
    {TXT("{t: snap, model: m, snapshot: {commandCount: 1}}"), FO_EINVAL, "snapshot.document",
     "missing"},
    {TXT("{t: snap, model: m, snapshot: {commandCount: 1, document: []}}"), FO_EINVAL,
     "snapshot.document", "expected map"},
    {TXT("{t: snap, model: m, snapshot: {commandCount: -1, document: {}}}"), FO_EINVAL,
     "snapshot.commandCount", "expected uint"},
    {TXT("{t: ack, model: m, seq: 1, result: {}}"), FO_EINVAL, "result.applied", "missing"},
    {TXT("{t: ack, model: m, seq: 1, result: {applied: {from: 0, completions: []}, sync: {}}}"),
     FO_EINVAL, "result.sync.isPartial", "missing"},
    {TXT("{t: ack, model: m, seq: 1, result: {applied: {from: 0, completions: []},"
         " sync: {isPartial: 1}}}"),
     FO_EINVAL, "result.sync.isPartial", "expected bool"},
    {TXT("{t: ack, model: m, seq: 1, result: {applied: {from: 0, completions: []},"
         " sync: {isPartial: true, latest: {commandCount: 0, document: {}}}}}"),
     FO_EINVAL, "result.sync.diff", "missing"},
    {TXT("{t: ack, model: m, seq: 1, result: {applied: {from: 0, completions: []},"
         " sync: {isPartial: false, latest: {commandCount: 0, document: {}},"
         " mappedPaths: {'a,b': [a, 1]}}}}"),
     FO_EINVAL, "result.sync.mappedPaths.a,b[1]", "expected str"},
    {TXT("{t: ack, model: m, seq: 1, result: {applied: {from: 0, completions: []},"
         " sync: {isPartial: false, latest: {commandCount: 0, document: {}},"
         " mappedPaths: {7: [a]}}}}"),
     FO_EINVAL, "result.sync.mappedPaths", "map key must be str"},
    {TXT("{t: ack, model: m, seq: 1, result: {applied: {from: 0, completions: []},"
         " errors: [{action: update, path: [a]}]}}"),
     FO_EINVAL, "result.errors[0].errorMessage", "missing"},
    {TXT("{t: ack, model: m, seq: 1, result: {applied: {from: 0, completions: []},"
         " errors: [{action: update, errorMessage: x}]}}"),
     FO_EINVAL, "result.errors[0].path", "missing"},
    {TXT("{t: presence, model: m}"), FO_EINVAL, "state", "missing"},
    {TXT("{t: presence, model: m, state: 1}"), FO_EINVAL, "state", "expected map or nil"},
    {TXT("{t: presence, model: m, session: 1, state: nil}"), FO_EINVAL, "session", "expected str"},
    {TXT("{t: error, code: nope, message: x}"), FO_EINVAL, "code", "unknown error code"},
    {TXT("{t: error, code: gone}"), FO_EINVAL, "message", "missing"},
    {TXT("{t: error, model: '', code: gone, message: x}"), FO_EINVAL, "model", "1-200"},
};

Test(wire, bad_inputs)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        fo_arena a;
        fo_buf b;
        fo_msg m;
        fo_err_info err;
        fo_arena_init(&a, 0);
        if (c->text) {
            b = mp(c->text);
        } else {
            fo_buf_init(&b, 0);
            put(&b, c->raw, c->rawlen);
        }
        memset(&err, 0x55, sizeof err);
        int rc = fo_wire_decode(fo_buf_data(&b), b.len, NULL, &a, &m, &err);
        const char *what = c->text ? c->text : c->raw;
        cr_assert_eq(rc, c->rc, "case %zu (%s): rc %d, want %d (%s: %s)", i, what, rc, c->rc,
                     err.path, err.msg);
        cr_assert_eq(err.code, rc, "case %zu", i);
        if (c->path)
            cr_assert_str_eq(err.path, c->path, "case %zu (%s): msg %s", i, what, err.msg);
        if (c->msg)
            cr_assert(strstr(err.msg, c->msg), "case %zu (%s): msg '%s', want '%s'", i, what,
                      err.msg, c->msg);
        /* The same bytes never crash the value and batch decoders either. */
        fo_value v;
        fo_batch bt;
        (void)fo_wire_decode_value(fo_buf_data(&b), b.len, NULL, &a, &v, NULL);
        (void)fo_wire_decode_batch(fo_buf_data(&b), b.len, NULL, &a, &bt, NULL);
        fo_buf_destroy(&b);
        fo_arena_destroy(&a);
    }
}

/* A frame nested `depth` maps deep (the frame's own map included), as presence state. */
static fo_buf nested_presence(uint32_t depth)
{
    fo_buf b;
    fo_buf_init(&b, 0);
    static const char head[] = "\x83\xa1t\xa8presence\xa5model\xa1m\xa5state";
    put(&b, head, sizeof head - 1);
    for (uint32_t i = 1; i < depth; i++)
        put(&b, i + 1 < depth ? "\x81\xa1k" : "\x80", i + 1 < depth ? 3 : 1);
    return b;
}

Test(wire, limits)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    fo_msg m;
    fo_err_info err;
    fo_wire_limits l;
    fo_wire_limits_default(&l);
    cr_assert_eq(l.max_frame, 1u << 20);
    cr_assert_eq(l.max_depth, 32);

    /* Depth: 32 decodes (msgpack-c's own ceiling), 33 is refused before msgpack-c runs. */
    fo_buf b = nested_presence(32);
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, NULL, &a, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(fo_value_depth(m.state), 31);
    fo_buf_destroy(&b);
    b = nested_presence(33);
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, NULL, &a, &m, &err), FO_ELIMIT);
    cr_assert(strstr(err.msg, "deep"));
    l.max_depth = 100; /* capped at 32 */
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, &l, &a, &m, &err), FO_ELIMIT);
    fo_buf_destroy(&b);
    fo_wire_limits_default(&l);
    l.max_depth = 3;
    b = nested_presence(3);
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, &l, &a, &m, &err), 0);
    fo_buf_destroy(&b);
    b = nested_presence(4);
    cr_assert_eq(fo_wire_decode(fo_buf_data(&b), b.len, &l, &a, &m, &err), FO_ELIMIT);
    fo_buf_destroy(&b);

    /* String length. */
    fo_wire_limits_default(&l);
    l.max_str = 16;
    cr_assert_eq(decode_text(&a, "{t: hello, client: '0123456789abcdef'}", &l, &m, &err), 0);
    cr_assert_eq(decode_text(&a, "{t: hello, client: '0123456789abcdefg'}", &l, &m, &err),
                 FO_ELIMIT);
    cr_assert(strstr(err.msg, "string too long"));
    cr_assert_eq(err.pos, 16);

    /* Elements per container, objects per frame. */
    fo_wire_limits_default(&l);
    l.max_elems = 3;
    cr_assert_eq(decode_text(&a, "{t: presence, model: m, state: {a: [1, 2, 3]}}", &l, &m, &err),
                 0);
    cr_assert_eq(decode_text(&a, "{t: presence, model: m, state: {a: [1, 2, 3, 4]}}", &l, &m, &err),
                 FO_ELIMIT);
    cr_assert_eq(decode_text(&a, "{t: ok, rid: 1, a: 1, b: 2}", &l, &m, &err), FO_ELIMIT);
    fo_wire_limits_default(&l);
    l.max_total = 10; /* the map, 4 keys, 4 values, and 1 array item */
    cr_assert_eq(decode_text(&a, "{t: ok, a: 1, b: 2, c: [1]}", &l, &m, &err), 0);
    cr_assert_eq(decode_text(&a, "{t: ok, a: 1, b: 2, c: [1, 2]}", &l, &m, &err), FO_ELIMIT);
    cr_assert(strstr(err.msg, "too many objects"));

    /* Path segments, in commands and in mappedPaths keys. */
    fo_wire_limits_default(&l);
    l.max_path = 2;
    cr_assert_eq(decode_text(&a, CMD("{action: delete, path: [a, b]}"), &l, &m, &err), 0);
    cr_assert_eq(decode_text(&a, CMD("{action: delete, path: [a, b, c]}"), &l, &m, &err),
                 FO_ELIMIT);
    cr_assert_str_eq(err.path, COMP ".path");
    cr_assert_eq(decode_text(&a,
                             "{t: ack, model: m, seq: 1, result: {applied: {from: 0, "
                             "completions: []}, sync: {isPartial: false, latest: {commandCount: "
                             "0, document: {}}, mappedPaths: {'a,b,c': [a]}}}}",
                             &l, &m, &err),
                 FO_ELIMIT);
    cr_assert_str_eq(err.path, "result.sync.mappedPaths.a,b,c");

    /* Frame size. */
    fo_wire_limits_default(&l);
    l.max_frame = 11;
    cr_assert_eq(decode_text(&a, "{t: ok, rid: 1}", &l, &m, &err), 0);
    cr_assert_eq(decode_text(&a, "{t: ok, rid: 1000}", &l, &m, &err), FO_ELIMIT);
    fo_arena_destroy(&a);
}

Test(wire, huge_counts_allocate_little)
{
    /* Each of these claims far more than the frame holds; a decoder that trusted the
     * header would ask for gigabytes. The decoder may have built the containers before the
     * one that lies, but no more than a small multiple of the frame's own bytes. */
    static const struct {
        const char *p;
        size_t n;
    } frames[] = {
        FRAME("\x81\xa1t\xdd\x7f\xff\xff\xff"), FRAME("\x81\xa1t\xdf\x7f\xff\xff\xff"),
        FRAME("\xdf\x00\x01\x86\xa0"),          FRAME("\x81\xa1t\xdc\xff\xff"),
        FRAME("\x91\xdd\x00\x01\x86\xa0"),
    };
    fo_arena a;
    fo_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        fo_msg m;
        fo_value v;
        fo_batch b;
        size_t used = a.used;
        int rc = fo_wire_decode(frames[i].p, frames[i].n, NULL, &a, &m, NULL);
        cr_assert(rc == FO_ELIMIT || rc == FO_EAGAIN || rc == FO_EPROTO, "frame %zu: %d", i, rc);
        rc = fo_wire_decode_value(frames[i].p, frames[i].n, NULL, &a, &v, NULL);
        cr_assert(rc == FO_ELIMIT || rc == FO_EAGAIN, "frame %zu: %d", i, rc);
        rc = fo_wire_decode_batch(frames[i].p, frames[i].n, NULL, &a, &b, NULL);
        cr_assert(rc == FO_ELIMIT || rc == FO_EAGAIN || rc == FO_EPROTO, "frame %zu: %d", i, rc);
        cr_assert_leq(a.used - used, 64 * frames[i].n, "frame %zu: %zu bytes", i, a.used - used);
    }
    fo_arena_destroy(&a);
}

/* ---- encoding ------------------------------------------------------------------------------ */

Test(wire, encode_rejects_and_leaves_buffer)
{
    fo_buf b;
    fo_buf_init(&b, 0);
    cr_assert_eq(fo_buf_append(&b, "xy", 2), 0);
    cr_assert_eq(fo_wire_encode(&(fo_msg){.type = FO_MSG_NONE}, &b), FO_EINVAL);
    cr_assert_eq(fo_wire_encode(&(fo_msg){.type = (fo_msg_type)99}, &b), FO_EINVAL);
    cr_assert_eq(fo_wire_encode(&(fo_msg){.type = FO_MSG_SUB}, &b), FO_EINVAL); /* no model */
    cr_assert_eq(fo_wire_encode(&(fo_msg){.type = FO_MSG_ERROR, .message = "x"}, &b),
                 FO_EINVAL); /* code 0 */
    fo_completion c = {.command = {.action = FO_ACTION_NONE}};
    cr_assert_eq(
        fo_wire_encode(
            &(fo_msg){.type = FO_MSG_FLUSH, .model = "m", .batch = {.len = 1, .items = &c}}, &b),
        FO_EINVAL);
    cr_assert_eq(b.len, 2);
    cr_assert_eq(memcmp(fo_buf_data(&b), "xy", 2), 0);
    fo_buf_destroy(&b);
}

Test(wire, encode_appends_after_headroom)
{
    fo_buf b;
    fo_buf_init(&b, 16);
    cr_assert_eq(fo_wire_encode(&(fo_msg){.type = FO_MSG_OK, .has_rid = true, .rid = 5}, &b), 0);
    cr_assert_eq(b.len, 11);
    cr_assert_eq(memcmp(fo_buf_data(&b), "\x82\xa1t\xa2ok\xa3rid\x05", 11), 0);
    cr_assert_eq(fo_buf_data(&b), b.base + 16);
    size_t first = b.len;
    cr_assert_eq(fo_wire_encode(&(fo_msg){.type = FO_MSG_OK}, &b), 0);
    cr_assert_eq(b.len, first + 6);
    char *p = fo_buf_release(&b);
    cr_assert_not_null(p);
    cr_assert_null(b.base);
    cr_assert_eq(b.len, 0);
    free(p);
    fo_buf_destroy(&b);
}

Test(wire, names)
{
    cr_assert_str_eq(fo_msg_type_name(FO_MSG_PRESENCE_EVT), "presence");
    cr_assert_str_eq(fo_msg_type_name(FO_MSG_ERROR), "error");
    cr_assert_null(fo_msg_type_name(FO_MSG_NONE));
    cr_assert_null(fo_msg_type_name((fo_msg_type)1000));
    for (int c = FO_ERR_BAD_FRAME; c <= FO_ERR_INTERNAL; c++) {
        const char *n = fo_error_code_name((fo_error_code)c);
        cr_assert_not_null(n);
        cr_assert_eq(fo_error_code_parse(n, strlen(n)), (fo_error_code)c);
    }
    cr_assert_str_eq(fo_error_code_name(FO_ERR_SHUTTING_DOWN), "shutting_down");
    cr_assert_null(fo_error_code_name((fo_error_code)0));
    cr_assert_eq(fo_error_code_parse("gon", 3), 0);
}

Test(wire, large_batch_roundtrip)
{
    fo_arena a;
    fo_arena_init(&a, 0);
    enum { N = 5000 };
    fo_completion *c = fo_arena_calloc(&a, N * sizeof *c);
    for (uint32_t i = 0; i < N; i++) {
        char id[24];
        snprintf(id, sizeof id, "%u", i * 7919u);
        c[i].command.action = FO_CREATE;
        c[i].command.path = PATH(&a, "items");
        c[i].command.props = val(&a, "{title: 'buy milk', done: false, prio: 3}");
        c[i].created_id = fo_key_new_cstr(&a, id);
    }
    roundtrip(&a, &(fo_msg){.type = FO_MSG_PUSH, .model = "big", .batch = {0, N, c}});
    fo_arena_destroy(&a);
}
