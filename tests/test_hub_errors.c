/* The hub over real WebSockets, part 2: errors. Every error code that needs no special setup
 * (bad_frame, bad_request naming the field, too_large, gone is in test_hub.c), every request
 * with a rid answered exactly once, the connection usable after each error, and the token
 * rules (HTTP 401 at the upgrade, `forbidden` per request) with --auth. Frames that the codec
 * cannot produce are written byte by byte with tests/fuzz/mp_text.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/json.h"
#include "tests/fuzz/mp_text.h"
#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static fo_arena A;
static char auth_path[64];

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
    fo_arena_init(&A, 0);
}

static void teardown(void)
{
    ht_cleanup();
    fo_arena_destroy(&A);
    if (auth_path[0])
        unlink(auth_path);
}

TestSuite(hub_errors, .init = setup, .fini = teardown, .timeout = 60);

/* Sends the notation as one binary frame. */
static void send_mp(ht_client *c, const char *text)
{
    fo_buf b = mp(text);

    ht_send_bytes(c, fo_buf_data(&b), b.len);
    fo_buf_destroy(&b);
}

/* The connection still works: a get is answered with its snap. */
static void still_usable(ht_client *c)
{
    fo_snapshot s = ht_get(c, "m");

    (void)s;
}

Test(hub_errors, text_frame_is_bad_frame)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");

    cr_assert_eq(fo_ws_send(c->ws, FO_WS_TEXT, "{\"t\":\"get\",\"rid\":1,\"model\":\"m\"}", 32), 0);
    ht_expect_error(c, FO_ERR_BAD_FRAME, 0, NULL);
    still_usable(c);
}

Test(hub_errors, frames_that_are_not_a_map_are_bad_frame)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *what;
    } cases[] = {
#define B(s) s, sizeof(s) - 1
        {B("\x93\x01\x02\x03"), "an array"},
        {B("\x2a"), "an int"},
        {B("\xa3get"), "a str"},
        {B("\xc0"), "nil"},
        {B("\xc1\xc1\xc1"), "the never-used byte 0xc1"},
        {B("\x82\xa1t\xa3get"), "a map cut short"},
        {B("\x81\xa1t\xa3get\x00"), "a map with a byte after it"},
        {B("\xd4\x01\x00"), "an ext value"},
        {B("\x81\xa1t\xd4\x01\x00"), "a map holding an ext value"},
        {B("\xff\xfe\xfd\xfc garbage \x00\x01"), "garbage"},
        {B(""), "an empty frame"},
#undef B
    };
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fo_msg m;
        char d[512];
        ht_send_bytes(c, cases[i].bytes, cases[i].len);
        ht_expect(c, FO_MSG_ERROR, &m);
        cr_assert_eq(m.code, FO_ERR_BAD_FRAME, "%s: want bad_frame, got %s", cases[i].what,
                     fo_ws_describe(&m, d, sizeof(d)));
    }
    still_usable(c);
}

Test(hub_errors, bad_request_names_the_field)
{
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"{t: flush, rid: 1, model: m, seq: 1, batch: {from: 0, completions: "
         "[{command: {action: create, path: [1]}}]}}",
         "batch.completions[0].command.path[0]"},
        {"{t: flush, rid: 2, model: m, seq: 1, batch: {from: 0, completions: "
         "[{command: {action: update}}, {command: {action: fly}}]}}",
         "batch.completions[1].command.action"},
        {"{t: flush, rid: 3, model: m, seq: -1, batch: {from: 0, completions: []}}", "seq"},
        {"{t: flush, rid: 4, model: m, seq: 1}", "batch"},
        {"{t: get, rid: 5}", "model"},
        {"{t: get, rid: 6, model: 'bad name!'}", "model"},
        {"{t: get, rid: 7, model: ''}", "model"},
        {"{t: get, rid: 8, model: m, at: -1}", "at"},
        {"{t: get, rid: 9, model: m, at: 1.5}", "at"},
        {"{t: history, rid: 10, model: m}", "from"},
        {"{t: presence, rid: 11, model: m, state: [1]}", "state"},
        {"{t: sub, rid: 12, model: 7}", "model"},
        {"{t: fly, rid: 13}", NULL},
        {"{rid: 14, model: m}", NULL},
        {"{t: flush, rid: 15, model: m, seq: 1, batch: {from: 0, completions: "
         "[{command: {action: update, props: {k: bin'x'}}}]}}",
         "batch.completions[0].command.props"},
    };
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        send_mp(c, cases[i].text);
        ht_expect_error(c, FO_ERR_BAD_REQUEST, i + 1, cases[i].needle);
    }
    {
        char name[256];
        memset(name, 'a', 201);
        name[201] = 0;
        fo_buf b;
        /* a 201-byte model name, one byte over the limit */
        fo_buf_init(&b, 0);
        put_hdr(&b, 0x80, 15, 0, 0xde, 0xdf, 3);
        put_str(&b, "t", 1);
        put_str(&b, "get", 3);
        put_str(&b, "rid", 3);
        put_uint(&b, 99);
        put_str(&b, "model", 5);
        put_str(&b, name, 201);
        ht_send_bytes(c, fo_buf_data(&b), b.len);
        fo_buf_destroy(&b);
        ht_expect_error(c, FO_ERR_BAD_REQUEST, 99, "model");
    }
    still_usable(c);
}

Test(hub_errors, hello_is_checked)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect_raw(h, NULL);
    char id[80];

    send_mp(c, "{t: hello, rid: 1, client: ''}");
    ht_expect_error(c, FO_ERR_BAD_REQUEST, 1, "client");
    memset(id, 'x', 65);
    id[65] = 0;
    {
        fo_msg m = {.type = FO_MSG_HELLO, .client = id, .has_rid = true, .rid = 2};
        ht_send_norid(c, &m);
    }
    ht_expect_error(c, FO_ERR_BAD_REQUEST, 2, "client");
    send_mp(c, "{t: hello, rid: 3}");
    ht_expect_error(c, FO_ERR_BAD_REQUEST, 3, "client");
    {
        fo_msg m = {.type = FO_MSG_HELLO, .client = "fine", .has_rid = true, .rid = 4};
        ht_send_norid(c, &m);
        ht_expect_reply(c, FO_MSG_WELCOME, 4, &m);
    }
}

Test(hub_errors, unknown_keys_and_nil_optionals_are_accepted)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");
    fo_msg m;

    send_mp(c, "{t: get, rid: 1, model: m, future: {x: [1, 2]}, at: nil}");
    ht_expect_reply(c, FO_MSG_SNAP, 1, &m);
    send_mp(c, "{t: flush, rid: 2, model: m, seq: 1, batch: {from: 0, completions: "
               "[{command: {action: update, props: {a: 1}, path: nil, later: 1}, createdId: nil}],"
               " more: true}}");
    ht_expect_reply(c, FO_MSG_ACK, 2, &m);
    cr_assert_eq(m.result.applied.len, 1);
}

Test(hub_errors, frame_over_max_frame_is_too_large)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");
    size_t pad = (size_t)c->max_frame + 16;
    char *big = malloc(pad);
    fo_buf b;
    fo_msg m;
    char d[512];

    cr_assert_not_null(big);
    memset(big, 'p', pad);
    fo_buf_init(&b, 0);
    put_hdr(&b, 0x80, 15, 0, 0xde, 0xdf, 4);
    put_str(&b, "t", 1);
    put_str(&b, "get", 3);
    put_str(&b, "rid", 3);
    put_uint(&b, 5);
    put_str(&b, "model", 5);
    put_str(&b, "m", 1);
    put_str(&b, "pad", 3);
    put_str(&b, big, pad);
    free(big);
    ht_send_bytes(c, fo_buf_data(&b), b.len);
    fo_buf_destroy(&b);
    ht_expect(c, FO_MSG_ERROR, &m);
    cr_assert_eq(m.code, FO_ERR_TOO_LARGE, "want too_large, got %s",
                 fo_ws_describe(&m, d, sizeof(d)));
    cr_assert(m.has_rid && m.rid == 5, "too_large should answer rid 5 (one reply per rid): %s",
              fo_ws_describe(&m, d, sizeof(d)));
    still_usable(c);
}

Test(hub_errors, nesting_past_the_limit_is_too_large)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");
    char text[512];
    size_t n = 0;
    fo_msg m;
    char d[512];

    n += (size_t)snprintf(text + n, sizeof(text) - n, "{t: presence, rid: 6, model: m, state: ");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "{a: ");
    n += (size_t)snprintf(text + n, sizeof(text) - n, "1");
    for (int i = 0; i < 41; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "}");
    send_mp(c, text);
    ht_expect(c, FO_MSG_ERROR, &m);
    cr_assert_eq(m.code, FO_ERR_TOO_LARGE, "want too_large, got %s",
                 fo_ws_describe(&m, d, sizeof(d)));
    cr_assert(m.has_rid && m.rid == 6, "too_large should answer rid 6 (one reply per rid): %s",
              fo_ws_describe(&m, d, sizeof(d)));
    still_usable(c);
}

Test(hub_errors, fragmented_request_is_reassembled)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");
    fo_buf b = mp("{t: get, rid: 7, model: m}");
    const char *p = fo_buf_data(&b);
    fo_msg m;

    cr_assert_eq(fo_ws_send_frame(c->ws, FO_WS_BINARY, false, p, 3, 1000), 0);
    cr_assert_eq(fo_ws_send_frame(c->ws, FO_WS_CONT, false, p + 3, 4, 1000), 0);
    cr_assert_eq(fo_ws_send_frame(c->ws, FO_WS_CONT, true, p + 7, b.len - 7, 1000), 0);
    fo_buf_destroy(&b);
    ht_expect_reply(c, FO_MSG_SNAP, 7, &m);
}

Test(hub_errors, every_request_with_a_rid_gets_exactly_one_reply)
{
    static const char *const burst[] = {
        "{t: get, rid: 1, model: m}",
        "{t: get, rid: 2}",
        "{t: sub, rid: 3, model: m}",
        "{t: nope, rid: 4}",
        "{t: history, rid: 5, model: m, from: 0}",
        "{t: flush, rid: 6, model: m, seq: 1, batch: {from: 0, completions: "
        "[{command: {action: create}, createdId: '1'}]}}",
        "{t: presence, rid: 7, model: m, state: {a: 1}}",
        "{t: get, rid: 8, model: m, at: 99}",
        "{t: unsub, rid: 9, model: m}",
        "{t: unsub, rid: 10, model: never_subscribed}",
        "{t: flush, rid: 11, model: m, seq: 2, batch: {from: 0, completions: "
        "[{command: {action: bogus}}]}}",
        "{t: hello, rid: 12, client: again}",
        "{t: get, rid: 13, model: 'bad model'}",
        "{t: history, rid: 14, model: m, from: 5, to: 2}",
        "{t: history, rid: 15, model: m, from: 0, to: 99}",
        "{t: flush, rid: 16, model: m, seq: 1, batch: {from: 0, completions: "
        "[{command: {action: create}, createdId: '1'}]}}",
        "{t: sub, rid: 17, model: other, from: 12345}",
        "{t: get, rid: 18, model: m, at: 0}",
        "{t: presence, rid: 19, model: never_subscribed, state: nil}",
        "{t: welcome, rid: 20, session: s, server: x, maxFrame: 1}",
    };
    enum { N = sizeof(burst) / sizeof(burst[0]) };
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");
    int seen[N + 1] = {0};
    int got = 0;
    fo_msg m;
    char d[512];

    for (int i = 0; i < N; i++)
        send_mp(c, burst[i]);
    while (got < N) {
        if (fo_ws_recv_msg(c->ws, HT_TIMEOUT_MS, &c->arena, &m) != 0) {
            char missing[256] = "";
            for (int i = 1; i <= N; i++)
                if (!seen[i])
                    snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
                             "\n  rid %d: %s", i, burst[i - 1]);
            ht_hub_dump(h);
            cr_assert_fail("%d of %d requests got no reply (%s); unanswered:%s", N - got, N,
                           fo_ws_error(c->ws), missing);
        }
        fo_ws_describe(&m, d, sizeof(d));
        cr_assert(m.type != FO_MSG_PUSH && m.type != FO_MSG_PRESENCE_EVT,
                  "nobody else is here: unexpected %s", d);
        cr_assert(m.has_rid, "a reply without a rid: %s", d);
        cr_assert(m.rid >= 1 && m.rid <= N, "a reply to a rid never sent: %s", d);
        cr_assert_eq(seen[m.rid], 0, "a second reply to rid %llu: %s", (unsigned long long)m.rid,
                     d);
        seen[m.rid]++;
        got++;
    }
    /* Nothing more for the burst: the next frame answers the sentinel. */
    {
        fo_msg g = {.type = FO_MSG_GET, .model = "m", .has_rid = true, .rid = 1000};
        ht_send_norid(c, &g);
        ht_expect_reply(c, FO_MSG_SNAP, 1000, &m);
    }
}

static void write_auth_file(void)
{
    static const char text[] = "# token pattern rights\n"
                               "tok-rw team.* rw\n"
                               "tok-r team.* r\n";
    int fd;

    snprintf(auth_path, sizeof(auth_path), "/tmp/fo-auth-XXXXXX");
    fd = mkstemp(auth_path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
}

Test(hub_errors, tokens_are_checked_at_the_upgrade_and_per_model)
{
    const char *args[] = {"--auth", auth_path, NULL};
    fo_hubproc *h;
    fo_ws_options o = {0};
    fo_ws_result res;
    fo_ws *raw;
    ht_client *rw, *ro;
    fo_msg m = {0};
    fo_batch b = {0, 0, NULL};
    uint64_t rid;

    write_auth_file();
    h = ht_hub_start("memory", args);
    o.port = fo_hubproc_port(h);
    raw = fo_ws_connect(&o, &res);
    cr_assert_null(raw, "an upgrade without a token was accepted");
    cr_assert_eq(res.http_status, 401, "no token: %s", res.message);
    o.bearer = "wrong";
    raw = fo_ws_connect(&o, &res);
    cr_assert_null(raw, "an upgrade with a bad token was accepted");
    cr_assert_eq(res.http_status, 401, "bad token: %s", res.message);

    o.bearer = "tok-rw";
    rw = ht_connect_raw(h, &o);
    m = (fo_msg){.type = FO_MSG_HELLO, .client = "rw"};
    rid = ht_send(rw, &m);
    ht_expect_reply(rw, FO_MSG_WELCOME, rid, &m);
    ht_sub(rw, "team.a");
    ht_flush(rw, "team.a", &b);
    m = (fo_msg){.type = FO_MSG_SUB, .model = "elsewhere"};
    rid = ht_send(rw, &m);
    ht_expect_error(rw, FO_ERR_FORBIDDEN, rid, NULL);
    ht_get(rw, "team.a"); /* only that request was refused */

    o.bearer = NULL;
    o.query_token = "tok-r";
    ro = ht_connect_raw(h, &o);
    m = (fo_msg){.type = FO_MSG_HELLO, .client = "ro"};
    rid = ht_send(ro, &m);
    ht_expect_reply(ro, FO_MSG_WELCOME, rid, &m);
    ht_get(ro, "team.a");
    m = (fo_msg){.type = FO_MSG_FLUSH, .model = "team.a", .seq = 1, .batch = b};
    rid = ht_send(ro, &m);
    ht_expect_error(ro, FO_ERR_FORBIDDEN, rid, NULL);
    ht_sub(ro, "team.a");

    {
        int status;
        char *body;
        size_t len;
        cr_assert_eq(
            fo_http_get(NULL, o.port, "/v1/models/team.a", NULL, 5000, &status, &body, &len), 0);
        cr_assert_eq(status, 401, "HTTP model endpoint without a token: %d %s", status, body);
        free(body);
        cr_assert_eq(fo_http_get(NULL, o.port, "/v1/models/team.a",
                                 "Authorization: Bearer tok-r\r\n", 5000, &status, &body, &len),
                     0);
        cr_assert_eq(status, 200, "HTTP model endpoint with a token: %d %s", status, body);
        free(body);
        cr_assert_eq(fo_http_get(NULL, o.port, "/v1/models/elsewhere?token=tok-r", NULL, 5000,
                                 &status, &body, &len),
                     0);
        cr_assert_eq(status, 403, "HTTP model outside the token's pattern: %d %s", status, body);
        free(body);
    }
}

/* A sub still loading its model when the unsub comes: both requests get their reply, and the
 * client ends unsubscribed (the unsub was sent last). Ten models, to hit the race every time. */
Test(hub_errors, sub_then_unsub_at_once_both_answered)
{
    enum { N = 10 };
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c"), *w = ht_connect(h, "w");
    bool snap[N] = {false}, ok[N] = {false};
    char d[512], text[96];
    fo_batch b;
    fo_msg m;

    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "{t: sub, rid: %d, model: fresh%d}", 2 * i + 1, i);
        send_mp(c, text);
        snprintf(text, sizeof(text), "{t: unsub, rid: %d, model: fresh%d}", 2 * i + 2, i);
        send_mp(c, text);
    }
    for (int k = 0; k < 2 * N; k++) {
        if (fo_ws_recv_msg(c->ws, HT_TIMEOUT_MS, &c->arena, &m) != 0) {
            char lost[256] = "";
            for (int i = 0; i < N; i++)
                snprintf(lost + strlen(lost), sizeof(lost) - strlen(lost), "%s%s",
                         snap[i] ? "" : " sub", ok[i] ? "" : " unsub");
            ht_hub_dump(h);
            cr_assert_fail("requests without a reply:%s (%s)", lost, fo_ws_error(c->ws));
        }
        fo_ws_describe(&m, d, sizeof(d));
        cr_assert(m.has_rid && m.rid >= 1 && m.rid <= 2 * N, "unexpected %s", d);
        if (m.rid % 2 == 1) {
            cr_assert(m.type == FO_MSG_SNAP && !snap[m.rid / 2], "unexpected %s", d);
            snap[m.rid / 2] = true;
        } else {
            cr_assert(m.type == FO_MSG_OK && !ok[m.rid / 2 - 1], "unexpected %s", d);
            ok[m.rid / 2 - 1] = true;
        }
    }
    b = ht_batch_json(&A, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"update\","
                          "\"props\":{\"a\":1}}}]}");
    ht_flush(w, "fresh0", &b);
    ht_expect_silence(c, 300);
}

/* Broken WebSocket framing (RSV bits without an extension, a reserved opcode: RFC 6455 5.2)
 * ends that connection with 1002, and only that one: the hub keeps serving the others. */
static void broken_framing(const unsigned char *frame, size_t n, const char *what)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *bad = ht_connect(h, "bad"), *good = ht_connect(h, "good");
    fo_ws_message wm;
    int rc;

    ht_sub(good, "m");
    cr_assert_eq(fo_ws_send_raw(bad->ws, frame, n, 1000), 0);
    rc = fo_ws_recv(bad->ws, HT_TIMEOUT_MS, &wm);
    cr_assert(rc == 0 || rc == FO_WS_EEOF, "%s: %s", what, fo_ws_error(bad->ws));
    if (rc == 0) {
        cr_assert_eq(wm.opcode, FO_WS_CLOSE, "%s: the hub answered with a data frame", what);
        cr_assert_eq(wm.close_code, 1002, "%s: close code %d, want 1002 (protocol error)", what,
                     wm.close_code);
    }
    still_usable(good);
    ht_drop(bad);
    bad = ht_connect(h, "bad-again");
    still_usable(bad);
}

Test(hub_errors, rsv_bits_end_only_that_connection)
{
    /* FIN + RSV1 + binary, masked with a zero key, payload {} */
    static const unsigned char f[] = {0xc2, 0x81, 0, 0, 0, 0, 0x80};

    broken_framing(f, sizeof(f), "RSV1 set");
}

Test(hub_errors, reserved_opcode_ends_only_that_connection)
{
    static const unsigned char f[] = {0x83, 0x81, 0, 0, 0, 0, 0x80};

    broken_framing(f, sizeof(f), "opcode 3");
}
