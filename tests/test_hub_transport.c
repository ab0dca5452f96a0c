/* test_hub_transport.c - the hub's own WebSocket transport (hub/listener.c, hub/wsconn.c)
 * over raw loopback TCP: the upgrade handshake and its refusals, requests that go to
 * libwebsockets, frames in every shape a client may send them (early data after the head,
 * fragments with a ping between them, a too large message), pings and the close
 * handshake. Frames are built and parsed with proto/ws.h, bytes are read as they come. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/ws.h"
#include "tests/support/hubtest.h"
#include "tests/support/wsnet.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
}

TestSuite(hub_transport, .init = setup, .fini = ht_cleanup, .timeout = 120);

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static int tcp(fo_hubproc *h)
{
    char err[256];
    int fd;

    cr_assert_eq(fo_wsnet_tcp_connect(NULL, fo_hubproc_port(h), 0, fo_wsnet_deadline(5000), &fd,
                                      err, sizeof(err)),
                 0, "connect: %s", err);
    return fd;
}

static void put(int fd, const void *p, size_t n)
{
    char err[256];

    cr_assert_eq(fo_wsnet_write_all(fd, p, n, fo_wsnet_deadline(5000), err, sizeof(err)), 0,
                 "write: %s", err);
}

/* Sends a request head and returns the response's status; *rest gets the bytes after the
 * response head (malloc'd) when rest is not NULL. */
static int request(int fd, const char *head, char **rest, size_t *rest_len)
{
    char err[256], *buf;
    size_t len, hl;
    int status;

    put(fd, head, strlen(head));
    cr_assert_eq(fo_wsnet_read_response(fd, fo_wsnet_deadline(HT_TIMEOUT_MS), false, &buf, &len,
                                        &hl, err, sizeof(err)),
                 0, "no response: %s", err);
    status = fo_wsnet_status(buf);
    if (rest) {
        *rest_len = len - hl;
        *rest = malloc(*rest_len + 1);
        memcpy(*rest, buf + hl, *rest_len);
    }
    free(buf);
    return status;
}

static const char *upgrade_head(const char *extra)
{
    static char head[9000];

    snprintf(head, sizeof(head),
             "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n%s\r\n",
             extra);
    return head;
}

/* A client frame (masked with a fixed key). */
static size_t frame(unsigned char *out, int op, bool fin, const void *p, size_t n)
{
    static const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};

    return fo_ws_frame_build(out, op, fin, p, n, key);
}

/* Reads the next event from the hub (server frames are unmasked). */
typedef struct reader {
    int fd;
    fo_ws_parser p;
    unsigned char buf[1 << 16];
    size_t len, off;
} reader;

static void reader_init(reader *r, int fd, const void *early, size_t n)
{
    fo_ws_parser_config cfg = {.side = FO_WS_SIDE_CLIENT};

    memset(r, 0, sizeof(*r));
    r->fd = fd;
    fo_ws_parser_init(&r->p, &cfg);
    memcpy(r->buf, early, n);
    r->len = n;
}

/* Next message or control frame; opcode -1 on EOF. */
static fo_ws_event next_event(reader *r)
{
    int64_t deadline = fo_wsnet_deadline(HT_TIMEOUT_MS);
    fo_ws_event ev;

    for (;;) {
        int rc = r->off < r->len ? fo_ws_parser_next(&r->p, r->buf + r->off, r->len - r->off, &ev)
                                 : FO_EAGAIN;
        ssize_t n;

        if (rc > 0) {
            r->off += (size_t)rc;
            if (ev.opcode)
                return ev;
            continue;
        }
        cr_assert_eq(rc, FO_EAGAIN, "the hub sent a broken frame: %s", r->p.err);
        if (r->off == r->len)
            r->off = r->len = 0;
        cr_assert_lt(r->len, sizeof(r->buf));
        cr_assert_eq(fo_wsnet_wait_fd(r->fd, POLLIN, deadline), 0, "nothing from the hub");
        n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0);
        if (n == 0) {
            ev.opcode = -1;
            return ev;
        }
        cr_assert_gt(n, 0, "recv: %s", strerror(errno));
        r->len += (size_t)n;
    }
}

static fo_msg decode(reader *r, fo_ws_event ev, fo_arena *a)
{
    fo_wire_limits l;
    fo_msg m;

    (void)r;
    cr_assert_eq(ev.opcode, FO_WS_OP_BINARY, "expected a message, got opcode %d", ev.opcode);
    fo_wire_limits_default(&l);
    cr_assert_eq(fo_wire_decode(ev.data, ev.len, &l, a, &m, NULL), 0);
    return m;
}

static size_t encode(const fo_msg *m, unsigned char *out)
{
    fo_buf b;
    size_t n;

    fo_buf_init(&b, 0);
    cr_assert_eq(fo_wire_encode(m, &b), 0);
    n = frame(out, FO_WS_OP_BINARY, true, fo_buf_data(&b), b.len);
    fo_buf_destroy(&b);
    return n;
}

static int upgraded(fo_hubproc *h, reader *r)
{
    char *rest;
    size_t n;
    int fd = tcp(h);

    cr_assert_eq(request(fd, upgrade_head("Sec-WebSocket-Version: 13\r\n"), &rest, &n), 101);
    reader_init(r, fd, rest, n);
    free(rest);
    return fd;
}

Test(hub_transport, handshake_refusals)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    static const struct {
        const char *head;
        int status;
    } cases[] = {
        {"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n", 426},
        {"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n", 400},
        {"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
        {"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
         "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400},
        {"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n", 400},
        {"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nno colon here\r\n\r\n", 400},
        {"GET /elsewhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", 404},
    };
    char big[9000];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = tcp(h);
        int status = request(fd, cases[i].head, NULL, NULL);
        cr_assert_eq(status, cases[i].status, "case %zu: status %d, want %d", i, status,
                     cases[i].status);
        close(fd);
    }
    /* A head over 8 KiB, and a request line over 2 KiB. */
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /v1/ws HTTP/1.1\r\nX: ", 24);
    big[sizeof(big) - 1] = '\0';
    {
        int fd = tcp(h);
        put(fd, big, strlen(big));
        cr_assert_eq(request(fd, "\r\n\r\n", NULL, NULL), 431);
        close(fd);
    }
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    big[3000] = '\0';
    {
        int fd = tcp(h);
        cr_assert_eq(request(fd, big, NULL, NULL), 414);
        close(fd);
    }
    /* After all that, plain HTTP still goes to lws, and upgrades still work. */
    {
        int fd = tcp(h);
        char *body;
        size_t n;
        cr_assert_eq(request(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &body, &n), 200);
        free(body);
        close(fd);
        fd = tcp(h);
        cr_assert_eq(request(fd, upgrade_head("Sec-WebSocket-Version: 13\r\n"
                                              "Sec-WebSocket-Protocol: chat, flushout.v1\r\n"),
                             NULL, NULL),
                     101);
        close(fd);
    }
}

/* A client may send its first frames in the same segment as the head; a message may come
 * in fragments with a ping between them; the hub answers the ping at once. */
Test(hub_transport, early_data_fragments_and_ping)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    unsigned char out[4096], *p = out;
    fo_msg hello = {.type = FO_MSG_HELLO, .client = "early", .has_rid = true, .rid = 7};
    const char *head = upgrade_head("Sec-WebSocket-Version: 13\r\n");
    fo_arena a;
    fo_buf b;
    reader r;
    fo_ws_event ev;
    fo_msg m;
    char *rest;
    size_t n, third;
    int fd = tcp(h);

    fo_arena_init(&a, 0);
    memcpy(p, head, strlen(head));
    p += strlen(head);
    p += encode(&hello, p);
    /* The same hello again in three fragments, a ping in the middle. */
    fo_buf_init(&b, 0);
    hello.rid = 8;
    cr_assert_eq(fo_wire_encode(&hello, &b), 0);
    third = b.len / 3;
    p += frame(p, FO_WS_OP_BINARY, false, fo_buf_data(&b), third);
    p += frame(p, FO_WS_OP_PING, true, "abc", 3);
    p += frame(p, FO_WS_OP_CONT, false, fo_buf_data(&b) + third, third);
    p += frame(p, FO_WS_OP_CONT, true, fo_buf_data(&b) + 2 * third, b.len - 2 * third);
    fo_buf_destroy(&b);
    put(fd, out, (size_t)(p - out));
    {
        char err[256], *buf;
        size_t len, hl;
        cr_assert_eq(fo_wsnet_read_response(fd, fo_wsnet_deadline(HT_TIMEOUT_MS), false, &buf,
                                            &len, &hl, err, sizeof(err)),
                     0);
        cr_assert_eq(fo_wsnet_status(buf), 101);
        n = len - hl;
        rest = malloc(n + 1);
        memcpy(rest, buf + hl, n);
        free(buf);
    }
    reader_init(&r, fd, rest, n);
    free(rest);
    m = decode(&r, next_event(&r), &a);
    cr_assert_eq(m.type, FO_MSG_WELCOME);
    cr_assert_eq(m.rid, 7);
    ev = next_event(&r);
    cr_assert_eq(ev.opcode, FO_WS_OP_PONG, "the ping was not answered (opcode %d)", ev.opcode);
    cr_assert_eq(ev.len, 3);
    cr_assert_eq(memcmp(ev.data, "abc", 3), 0);
    m = decode(&r, next_event(&r), &a);
    cr_assert_eq(m.type, FO_MSG_WELCOME);
    cr_assert_eq(m.rid, 8);
    fo_ws_parser_destroy(&r.p);
    fo_arena_destroy(&a);
    close(fd);
}

/* A message over --max-frame, sent in fragments, is answered with too_large (its rid read
 * from its start) and dropped; the connection goes on. */
Test(hub_transport, too_large_fragments_are_dropped_and_answered)
{
    static const char *const args[] = {"--max-frame", "4K", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    fo_msg hello = {.type = FO_MSG_HELLO, .client = "big", .has_rid = true, .rid = 1};
    fo_msg get = {.type = FO_MSG_GET, .model = "m", .has_rid = true, .rid = 3};
    unsigned char *out = malloc(64 * 1024), *p = out, chunk[3000];
    fo_arena a;
    reader r;
    fo_msg m;
    int fd = upgraded(h, &r), i;

    fo_arena_init(&a, 0);
    p += encode(&hello, p);
    /* {rid: 2, t: "get", model: "m", pad: <9000 bytes>} in three fragments */
    memset(chunk, 'x', sizeof(chunk));
    {
        static const unsigned char start[] = {0x84, 0xa3, 'r', 'i', 'd', 0x02, 0xa1, 't',
                                              0xa3, 'g', 'e', 't', 0xa5, 'm', 'o', 'd',
                                              'e', 'l', 0xa1, 'm', 0xa3, 'p', 'a', 'd',
                                              0xda, 0x23, 0x28};
        unsigned char first[sizeof(start) + 100];
        memcpy(first, start, sizeof(start));
        memset(first + sizeof(start), 'x', 100);
        p += frame(p, FO_WS_OP_BINARY, false, first, sizeof(first));
        for (i = 0; i < 3; i++)
            p += frame(p, FO_WS_OP_CONT, i == 2, chunk, i == 2 ? 9000 - 100 - 6000 : 3000);
    }
    p += encode(&get, p);
    put(fd, out, (size_t)(p - out));
    m = decode(&r, next_event(&r), &a);
    cr_assert_eq(m.type, FO_MSG_WELCOME);
    m = decode(&r, next_event(&r), &a);
    cr_assert_eq(m.type, FO_MSG_ERROR);
    cr_assert_eq(m.code, FO_ERR_TOO_LARGE);
    cr_assert(m.has_rid && m.rid == 2, "too_large must answer rid 2");
    m = decode(&r, next_event(&r), &a);
    cr_assert_eq(m.type, FO_MSG_SNAP, "the connection did not go on after the dropped frame");
    cr_assert_eq(m.rid, 3);
    fo_ws_parser_destroy(&r.p);
    fo_arena_destroy(&a);
    free(out);
    close(fd);
}

/* The close handshake: the hub echoes the client's code, then ends the TCP connection; a
 * framing violation gets 1002. */
Test(hub_transport, close_handshake)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    unsigned char out[64], code[2] = {0x0f, 0xa0}; /* 4000 */
    fo_ws_event ev;
    reader r;
    int fd = upgraded(h, &r);

    put(fd, out, frame(out, FO_WS_OP_CLOSE, true, code, 2));
    ev = next_event(&r);
    cr_assert_eq(ev.opcode, FO_WS_OP_CLOSE);
    cr_assert_eq(ev.close_code, 4000, "close code %u, want the client's 4000", ev.close_code);
    fo_ws_parser_destroy(&r.p);
    fo_ws_parser_init(&r.p, &(fo_ws_parser_config){.side = FO_WS_SIDE_CLIENT});
    cr_assert_eq(next_event(&r).opcode, -1, "the hub did not end the connection");
    fo_ws_parser_destroy(&r.p);
    close(fd);

    /* A continuation without a message. */
    fd = upgraded(h, &r);
    put(fd, out, frame(out, FO_WS_OP_CONT, true, "x", 1));
    ev = next_event(&r);
    cr_assert_eq(ev.opcode, FO_WS_OP_CLOSE);
    cr_assert_eq(ev.close_code, 1002);
    fo_ws_parser_destroy(&r.p);
    close(fd);
}

/* The next event must be a close frame with `code`, then the hub ends the connection. */
static void expect_close(reader *r, unsigned code, const char *what)
{
    fo_ws_event ev = next_event(r);

    cr_assert_eq(ev.opcode, FO_WS_OP_CLOSE, "%s: got opcode %d, want a close", what, ev.opcode);
    cr_assert_eq(ev.close_code, code, "%s: close code %u, want %u", what, ev.close_code, code);
    fo_ws_parser_destroy(&r->p);
    fo_ws_parser_init(&r->p, &(fo_ws_parser_config){.side = FO_WS_SIDE_CLIENT});
    cr_assert_eq(next_event(r).opcode, -1, "%s: the hub did not end the connection", what);
    fo_ws_parser_destroy(&r->p);
}

/* RFC 6455: a client frame without a mask fails the connection with 1002 (5.1); a close
 * frame with a 1-byte payload is a protocol error, one whose reason is not UTF-8 is 1007
 * (5.5.1, 8.1). */
Test(hub_transport, unmasked_frames_and_bad_close_frames_fail_the_connection)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    unsigned char out[64], bad_reason[4] = {0x03, 0xe8, 0xc3, 0x28}; /* 1000, "\xc3(" */
    reader r;
    int fd = upgraded(h, &r);

    put(fd, out, fo_ws_frame_build(out, FO_WS_OP_BINARY, true, "\x80", 1, NULL));
    expect_close(&r, 1002, "an unmasked frame");
    close(fd);

    fd = upgraded(h, &r);
    put(fd, out, frame(out, FO_WS_OP_CLOSE, true, "\x03", 1));
    expect_close(&r, 1002, "a close frame with a 1-byte payload");
    close(fd);

    fd = upgraded(h, &r);
    put(fd, out, frame(out, FO_WS_OP_CLOSE, true, bad_reason, sizeof(bad_reason)));
    expect_close(&r, 1007, "a close reason that is not UTF-8");
    close(fd);
}

/* Text frames are answered with bad_frame (the contract wants binary) while they are
 * UTF-8, also when a character is split between fragments; text that is not UTF-8 fails
 * the connection with 1007 (RFC 6455 8.1), in one frame or in fragments. */
Test(hub_transport, text_that_is_not_utf8_fails_with_1007)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    unsigned char out[256], *p;
    fo_arena a;
    reader r;
    fo_msg m;
    int fd = upgraded(h, &r);

    fo_arena_init(&a, 0);
    /* "é" split in two fragments: valid, so only bad_frame, and the connection goes on. */
    p = out;
    p += frame(p, FO_WS_OP_TEXT, false, "caf\xc3", 4);
    p += frame(p, FO_WS_OP_CONT, true, "\xa9", 1);
    put(fd, out, (size_t)(p - out));
    m = decode(&r, next_event(&r), &a);
    cr_assert_eq(m.type, FO_MSG_ERROR);
    cr_assert_eq(m.code, FO_ERR_BAD_FRAME);
    put(fd, out, frame(out, FO_WS_OP_TEXT, true, "ok \xff", 4));
    expect_close(&r, 1007, "a text frame with 0xff");
    close(fd);

    /* In fragments: the second one breaks the character the first one opened. */
    fd = upgraded(h, &r);
    p = out;
    p += frame(p, FO_WS_OP_TEXT, false, "\xe2\x82", 2);
    p += frame(p, FO_WS_OP_CONT, true, "x", 1);
    put(fd, out, (size_t)(p - out));
    expect_close(&r, 1007, "a fragmented text message that is not UTF-8");
    close(fd);

    /* A text message that ends inside a character. */
    fd = upgraded(h, &r);
    put(fd, out, frame(out, FO_WS_OP_TEXT, true, "abc\xe2\x82", 5));
    expect_close(&r, 1007, "a text message cut inside a character");
    close(fd);
    fo_arena_destroy(&a);
}

/* A version the hub does not speak (12 here; 8 in handshake_refusals) gets 426 with the
 * version it does speak (RFC 6455 4.4). */
Test(hub_transport, other_versions_get_426_naming_13)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    char err[256], *buf, value[64];
    size_t len, hl;
    int fd = tcp(h);
    const char *head = upgrade_head("Sec-WebSocket-Version: 12\r\n");

    put(fd, head, strlen(head));
    cr_assert_eq(fo_wsnet_read_response(fd, fo_wsnet_deadline(HT_TIMEOUT_MS), false, &buf, &len,
                                        &hl, err, sizeof(err)),
                 0, "no response: %s", err);
    cr_assert_eq(fo_wsnet_status(buf), 426, "%s", buf);
    cr_assert(fo_wsnet_header(buf, hl, "Sec-WebSocket-Version", value, sizeof(value)),
              "426 without Sec-WebSocket-Version: %s", buf);
    cr_assert_str_eq(value, "13");
    free(buf);
    close(fd);
}

/* A frame that declares far more than --max-frame (over 4x) closes with 1009 as soon as
 * its header is in: the hub does not wait for (or read) the gigabyte it announces. */
Test(hub_transport, a_frame_far_over_max_frame_closes_with_1009_at_once)
{
    static const char *const args[] = {"--max-frame", "4K", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    static const unsigned char key[4] = {1, 2, 3, 4};
    unsigned char hdr[FO_WS_HEADER_MAX];
    reader r;
    int fd = upgraded(h, &r);

    put(fd, hdr, fo_ws_header_build(hdr, FO_WS_OP_BINARY, true, (uint64_t)1 << 30, key));
    expect_close(&r, 1009, "a frame declaring 1 GiB");
    close(fd);

    /* Fragments: each under the limit, together far over it. */
    fd = upgraded(h, &r);
    {
        unsigned char *out = calloc(1, 64 * 1024), *p = out;
        cr_assert_not_null(out);
        p += frame(p, FO_WS_OP_BINARY, false, out + 40000, 3000);
        for (int i = 0; i < 6; i++)
            p += frame(p, FO_WS_OP_CONT, false, out + 40000, 3000);
        put(fd, out, (size_t)(p - out));
        free(out);
    }
    {
        fo_arena a;
        fo_msg m;
        fo_arena_init(&a, 0);
        m = decode(&r, next_event(&r), &a); /* the too_large answer once it passed 4K */
        cr_assert_eq(m.code, FO_ERR_TOO_LARGE);
        fo_arena_destroy(&a);
    }
    expect_close(&r, 1009, "fragments adding up to over 4x --max-frame");
    close(fd);
}

/* Browsers send Origin: by default only the hub's own pages (Origin matching Host) may
 * open a WebSocket; clients that send none (not browsers) always may; --allowed-origins
 * adds exact origins, `*` any. A refusal is 403 with the reason in the body. */
static int upgrade_with(fo_hubproc *h, const char *extra, char **body)
{
    char head[1024];
    size_t n;
    int fd = tcp(h), status;

    snprintf(head, sizeof(head),
             "GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
             extra);
    status = request(fd, head, body, &n);
    close(fd);
    return status;
}

Test(hub_transport, allowed_origins)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    static const char *const list[] = {"--allowed-origins",
                                       "https://app.example.com, http://localhost:5173", NULL};
    static const char *const any[] = {"--allowed-origins", "*", NULL};
    char own[128], *body = NULL;
    int status;

    snprintf(own, sizeof(own), "Host: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\n",
             fo_hubproc_port(h), fo_hubproc_port(h));
    cr_assert_eq(upgrade_with(h, own, NULL), 101, "the hub's own origin was refused");
    cr_assert_eq(upgrade_with(h, "Host: 127.0.0.1\r\n", NULL), 101, "no Origin was refused");
    status = upgrade_with(h, "Host: 127.0.0.1\r\nOrigin: https://evil.example\r\n", &body);
    cr_assert_eq(status, 403, "a foreign origin got %d", status);
    cr_assert(strstr(body, "origin https://evil.example is not allowed (see --allowed-origins)"),
              "403 body: %s", body);
    free(body);
    cr_assert_eq(upgrade_with(h, "Host: 127.0.0.1\r\nOrigin: null\r\n", NULL), 403);
    /* The console's feed is a browser page's socket too. */
    {
        int fd = tcp(h);
        cr_assert_eq(request(fd,
                             "GET /v1/console/feed HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Origin: https://evil.example\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n",
                             NULL, NULL),
                     403);
        close(fd);
    }

    h = ht_hub_start("memory", list);
    snprintf(own, sizeof(own), "Host: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\n",
             fo_hubproc_port(h), fo_hubproc_port(h));
    cr_assert_eq(upgrade_with(h, "Host: h\r\nOrigin: https://app.example.com\r\n", NULL), 101);
    cr_assert_eq(upgrade_with(h, "Host: h\r\nOrigin: http://LOCALHOST:5173\r\n", NULL), 101);
    cr_assert_eq(upgrade_with(h, own, NULL), 101, "a list must not refuse the hub's own pages");
    cr_assert_eq(upgrade_with(h, "Host: h\r\nOrigin: http://app.example.com\r\n", NULL), 403,
                 "the scheme is part of the origin");
    cr_assert_eq(upgrade_with(h, "Host: h\r\nOrigin: https://app.example.com:444\r\n", NULL), 403,
                 "the port is part of the origin");

    h = ht_hub_start("memory", any);
    cr_assert_eq(upgrade_with(h, "Host: h\r\nOrigin: https://evil.example\r\n", NULL), 101);
}
