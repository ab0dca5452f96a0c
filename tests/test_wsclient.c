/* The test client (tests/support/wsclient.h) against a tiny WebSocket server written here with
 * raw sockets, so that the hub's integration tests rest on a client that is itself checked:
 * the handshake (RFC 6455 4.1/4.2, with the RFC's own Accept example), masking, the three
 * length encodings, fragmentation both ways, ping/pong, the closing handshake, refusals. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/wsclient.h"

/* ---- the server ------------------------------------------------------------------------------ */

typedef struct server {
    int lfd;
    int port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    /* what it saw, for the tests */
    char request[4096]; /* the last request head */
    int pong_count;
    char pong[128];
    int client_close_code; /* the code of the close the client sent, -1 none */
    int unmasked_frames;   /* client frames without the mask bit (must stay 0) */
} server;

static server S;

static int read_exact(int fd, void *p, size_t n)
{
    char *s = p;

    while (n) {
        ssize_t r = recv(fd, s, n, 0);
        if (r <= 0)
            return -1;
        s += r;
        n -= (size_t)r;
    }
    return 0;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *s = p;

    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* An unmasked frame from the server; `masked` sets the mask bit (a protocol violation). */
static void send_frame(int fd, int op, bool fin, const void *p, size_t n, bool masked)
{
    unsigned char h[14];
    size_t hl = 2, i;

    h[0] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (n < 126) {
        h[1] = (unsigned char)n;
    } else if (n <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    if (masked) {
        h[1] |= 0x80;
        memset(h + hl, 0, 4); /* a zero key: the payload reads the same */
        hl += 4;
    }
    write_all(fd, h, hl);
    write_all(fd, p, n);
}

/* Reads one client frame; returns the opcode (-1 on EOF) and a malloc'd payload. */
static int read_frame(int fd, bool *fin, char **payload, size_t *len)
{
    unsigned char h[2], ext[8], mask[4] = {0};
    uint64_t n;
    size_t i;

    if (read_exact(fd, h, 2))
        return -1;
    n = h[1] & 0x7f;
    if (n == 126) {
        if (read_exact(fd, ext, 2))
            return -1;
        n = (uint64_t)ext[0] << 8 | ext[1];
    } else if (n == 127) {
        if (read_exact(fd, ext, 8))
            return -1;
        n = 0;
        for (i = 0; i < 8; i++)
            n = n << 8 | ext[i];
    }
    if (h[1] & 0x80) {
        if (read_exact(fd, mask, 4))
            return -1;
    } else {
        pthread_mutex_lock(&S.mu);
        S.unmasked_frames++;
        pthread_mutex_unlock(&S.mu);
    }
    *payload = malloc(n + 1);
    if (!*payload || read_exact(fd, *payload, n))
        return -1;
    for (i = 0; i < n; i++)
        (*payload)[i] ^= (char)mask[i & 3];
    (*payload)[n] = 0;
    *len = n;
    *fin = h[0] & 0x80;
    return h[0] & 0x0f;
}

static bool req_header(const char *req, const char *name, char *out, size_t n)
{
    const char *p = req;
    size_t nl = strlen(name);

    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            size_t len;
            while (*v == ' ')
                v++;
            len = strcspn(v, "\r\n");
            if (len >= n)
                len = n - 1;
            memcpy(out, v, len);
            out[len] = 0;
            return true;
        }
    }
    return false;
}

static void serve_messages(int fd)
{
    char *msg = NULL;
    size_t mlen = 0;
    int mop = 0;

    for (;;) {
        bool fin;
        char *p;
        size_t n;
        int op = read_frame(fd, &fin, &p, &n);

        if (op < 0)
            break;
        if (op == 0x9) {
            send_frame(fd, 0xa, true, p, n, false);
        } else if (op == 0xa) {
            pthread_mutex_lock(&S.mu);
            S.pong_count++;
            snprintf(S.pong, sizeof(S.pong), "%s", p);
            pthread_mutex_unlock(&S.mu);
        } else if (op == 0x8) {
            pthread_mutex_lock(&S.mu);
            S.client_close_code = n >= 2 ? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : 1005;
            pthread_mutex_unlock(&S.mu);
            send_frame(fd, 0x8, true, p, n >= 2 ? 2 : 0, false);
            free(p);
            break;
        } else {
            if (op != 0) {
                mop = op;
                mlen = 0;
            }
            msg = realloc(msg, mlen + n + 1);
            memcpy(msg + mlen, p, n);
            mlen += n;
            msg[mlen] = 0;
            if (fin) {
                if (strcmp(msg, "frag") == 0) {
                    send_frame(fd, 0x2, false, "ab", 2, false);
                    send_frame(fd, 0x9, true, "p0", 2, false);
                    send_frame(fd, 0x0, false, "cd", 2, false);
                    send_frame(fd, 0x0, true, "ef", 2, false);
                } else if (strcmp(msg, "ping") == 0) {
                    send_frame(fd, 0x9, true, "p1", 2, false);
                    send_frame(fd, 0x1, true, "after-ping", 10, false);
                } else if (strncmp(msg, "close:", 6) == 0) {
                    int code = atoi(msg + 6);
                    unsigned char cp[5] = {(unsigned char)(code >> 8), (unsigned char)code, 'b',
                                           'y', 'e'};
                    send_frame(fd, 0x8, true, cp, 5, false);
                } else if (strncmp(msg, "big:", 4) == 0) {
                    size_t bn = strtoul(msg + 4, NULL, 10), i;
                    char *b = malloc(bn);
                    for (i = 0; i < bn; i++)
                        b[i] = (char)(i * 7);
                    send_frame(fd, 0x2, true, b, bn, false);
                    free(b);
                } else if (strcmp(msg, "masked") == 0) {
                    send_frame(fd, 0x2, true, "m", 1, true);
                } else if (strcmp(msg, "eof") == 0) {
                    free(p);
                    break;
                } else {
                    send_frame(fd, mop, true, msg, mlen, false);
                }
            }
        }
        free(p);
    }
    free(msg);
}

static void serve(int fd)
{
    char req[4096], key[128], proto[128], auth[128], accept[29], resp[1024];
    size_t n = 0;
    const char *path;

    while (n < sizeof(req) - 1) {
        ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = 0;
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    pthread_mutex_lock(&S.mu);
    snprintf(S.request, sizeof(S.request), "%s", req);
    pthread_mutex_unlock(&S.mu);
    path = req + 4; /* "GET " */
    if (strncmp(path, "/http", 5) == 0) {
        static const char r[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";
        write_all(fd, r, sizeof(r) - 1);
        return;
    }
    if (strncmp(path, "/auth", 5) == 0 && !strstr(req, "token=good ") &&
        !(req_header(req, "Authorization", auth, sizeof(auth)) && !strcmp(auth, "Bearer good"))) {
        static const char r[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
        write_all(fd, r, sizeof(r) - 1);
        return;
    }
    if (strncmp(path, "/noupgrade", 10) == 0) {
        static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        write_all(fd, r, sizeof(r) - 1);
        return;
    }
    if (!req_header(req, "Sec-WebSocket-Key", key, sizeof(key)))
        return;
    if (fo_ws_accept_key(key, accept) != 0)
        return;
    if (strncmp(path, "/badaccept", 10) == 0)
        accept[3] ^= 1;
    n = (size_t)snprintf(resp, sizeof(resp),
                         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                         accept);
    if (strncmp(path, "/otherproto", 11) == 0)
        n += (size_t)snprintf(resp + n, sizeof(resp) - n, "Sec-WebSocket-Protocol: other.v9\r\n");
    else if (req_header(req, "Sec-WebSocket-Protocol", proto, sizeof(proto)))
        n += (size_t)snprintf(resp + n, sizeof(resp) - n, "Sec-WebSocket-Protocol: %s\r\n", proto);
    n += (size_t)snprintf(resp + n, sizeof(resp) - n, "\r\n");
    write_all(fd, resp, n);
    serve_messages(fd);
}

static void *server_main(void *arg)
{
    (void)arg;
    while (!S.stop) {
        struct pollfd p = {S.lfd, POLLIN, 0};
        int fd;
        struct timeval tv = {5, 0};

        if (poll(&p, 1, 50) <= 0)
            continue;
        fd = accept(S.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        serve(fd);
        close(fd);
    }
    return NULL;
}

static int start_server(int family)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int one = 1;

    memset(&ss, 0, sizeof(ss));
    memset(&S, 0, sizeof(S));
    S.client_close_code = -1;
    pthread_mutex_init(&S.mu, NULL);
    S.lfd = socket(family, SOCK_STREAM, 0);
    cr_assert(S.lfd >= 0);
    setsockopt(S.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    if (bind(S.lfd, (struct sockaddr *)&ss, len) != 0 || listen(S.lfd, 8) != 0) {
        close(S.lfd);
        return -1;
    }
    len = sizeof(ss);
    getsockname(S.lfd, (struct sockaddr *)&ss, &len);
    S.port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
    cr_assert_eq(pthread_create(&S.thread, NULL, server_main, NULL), 0);
    return 0;
}

static void setup(void)
{
    cr_assert_eq(start_server(AF_INET), 0);
}

static void teardown(void)
{
    S.stop = 1;
    pthread_join(S.thread, NULL);
    close(S.lfd);
    pthread_mutex_destroy(&S.mu);
}

TestSuite(wsclient, .init = setup, .fini = teardown, .timeout = 30);

static fo_ws *open_path(const char *path)
{
    fo_ws_options o = {.port = S.port, .path = path};
    fo_ws_result res;
    fo_ws *c = fo_ws_connect(&o, &res);

    cr_assert_not_null(c, "connect: %s", res.message);
    return c;
}

static void echo(fo_ws *c, int op, const char *p, size_t n)
{
    fo_ws_message m;

    cr_assert_eq(fo_ws_send(c, op, p, n), 0, "%s", fo_ws_error(c));
    cr_assert_eq(fo_ws_recv(c, 5000, &m), 0, "%s", fo_ws_error(c));
    cr_assert_eq(m.opcode, op);
    cr_assert_eq(m.len, n);
    cr_assert_eq(memcmp(m.data, p, n), 0, "echo of %zu bytes differs", n);
}

/* ---- tests ------------------------------------------------------------------------------------
 */

Test(wsclient, accept_key_is_the_rfc_example)
{
    char out[29];

    cr_assert_eq(fo_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 section 1.3 */
}

Test(wsclient, handshake_sends_the_headers_and_checks_the_subprotocol)
{
    fo_ws *c = open_path(NULL);
    char v[128];

    cr_assert_str_eq(fo_ws_protocol(c), "flushout.v1");
    cr_assert(strncmp(S.request, "GET /v1/ws HTTP/1.1\r\n", 21) == 0, "%s", S.request);
    cr_assert(req_header(S.request, "Sec-WebSocket-Version", v, sizeof(v)));
    cr_assert_str_eq(v, "13");
    cr_assert(req_header(S.request, "Upgrade", v, sizeof(v)));
    cr_assert_str_eq(v, "websocket");
    cr_assert(req_header(S.request, "Host", v, sizeof(v)));
    cr_assert(strncmp(v, "127.0.0.1:", 10) == 0);
    cr_assert_not(req_header(S.request, "Authorization", v, sizeof(v)));
    fo_ws_free(c);
}

Test(wsclient, echo_of_every_length_encoding)
{
    static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 300000};
    fo_ws *c = open_path(NULL);
    char *buf = malloc(300000);

    for (size_t i = 0; i < 300000; i++)
        buf[i] = (char)(i * 31 + 7);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        echo(c, FO_WS_BINARY, buf, sizes[i]);
    echo(c, FO_WS_TEXT, "text frame", 10);
    cr_assert_eq(S.unmasked_frames, 0, "the client sent unmasked frames");
    free(buf);
    fo_ws_free(c);
}

Test(wsclient, big_message_from_the_server)
{
    fo_ws *c = open_path(NULL);
    fo_ws_message m;

    cr_assert_eq(fo_ws_send(c, FO_WS_BINARY, "big:5000000", 11), 0);
    cr_assert_eq(fo_ws_recv(c, 10000, &m), 0, "%s", fo_ws_error(c));
    cr_assert_eq(m.len, 5000000);
    cr_assert_eq((unsigned char)m.data[4999999], (unsigned char)(4999999 * 7));
    fo_ws_free(c);
}

Test(wsclient, fragments_from_the_server_with_a_ping_between)
{
    fo_ws *c = open_path(NULL);
    fo_ws_message m;

    cr_assert_eq(fo_ws_send(c, FO_WS_BINARY, "frag", 4), 0);
    cr_assert_eq(fo_ws_recv(c, 5000, &m), 0, "%s", fo_ws_error(c));
    cr_assert_eq(m.opcode, FO_WS_BINARY);
    cr_assert_eq(m.len, 6);
    cr_assert_eq(memcmp(m.data, "abcdef", 6), 0);
    cr_assert_eq(fo_ws_pings_answered(c), 1);
    echo(c, FO_WS_BINARY, "sync", 4); /* the pong reached the server before this echo */
    cr_assert_eq(S.pong_count, 1);
    cr_assert_str_eq(S.pong, "p0");
    fo_ws_free(c);
}

Test(wsclient, ping_is_answered_inside_recv)
{
    fo_ws *c = open_path(NULL);
    fo_ws_message m;

    cr_assert_eq(fo_ws_send(c, FO_WS_BINARY, "ping", 4), 0);
    cr_assert_eq(fo_ws_recv(c, 5000, &m), 0, "%s", fo_ws_error(c));
    cr_assert_eq(m.opcode, FO_WS_TEXT);
    cr_assert_eq(m.len, 10);
    echo(c, FO_WS_BINARY, "sync", 4);
    cr_assert_str_eq(S.pong, "p1");
    fo_ws_free(c);
}

Test(wsclient, fragmented_send_is_reassembled_by_the_server)
{
    fo_ws *c = open_path(NULL);
    fo_ws_message m;

    cr_assert_eq(fo_ws_send_frame(c, FO_WS_BINARY, false, "ab", 2, 1000), 0);
    cr_assert_eq(fo_ws_send_frame(c, FO_WS_CONT, false, "cd", 2, 1000), 0);
    cr_assert_eq(fo_ws_send_frame(c, FO_WS_CONT, true, "e", 1, 1000), 0);
    cr_assert_eq(fo_ws_recv(c, 5000, &m), 0, "%s", fo_ws_error(c));
    cr_assert_eq(m.len, 5);
    cr_assert_eq(memcmp(m.data, "abcde", 5), 0);
    fo_ws_free(c);
}

Test(wsclient, server_close_is_reported_and_answered)
{
    fo_ws *c = open_path(NULL);
    fo_ws_message m;
    fo_msg msg;
    fo_arena a;

    cr_assert_eq(fo_ws_send(c, FO_WS_BINARY, "close:1001", 10), 0);
    cr_assert_eq(fo_ws_recv(c, 5000, &m), 0, "%s", fo_ws_error(c));
    cr_assert_eq(m.opcode, FO_WS_CLOSE);
    cr_assert_eq(m.close_code, 1001);
    cr_assert_eq(m.len, 3);
    cr_assert_eq(memcmp(m.data, "bye", 3), 0);
    cr_assert_eq(fo_ws_close_code(c), 1001);
    fo_arena_init(&a, 0);
    cr_assert_eq(fo_ws_recv_msg(c, 100, &a, &msg), FO_WS_ECLOSED);
    fo_arena_destroy(&a);
    cr_assert_eq(fo_ws_send(c, FO_WS_BINARY, "x", 1), FO_WS_ECLOSED); /* we answered already */
    fo_ws_free(c);
    usleep(100000);
    cr_assert_eq(S.client_close_code, 1001, "the client echoes the close code");
}

Test(wsclient, client_close_handshake)
{
    fo_ws *c = open_path(NULL);

    cr_assert_eq(fo_ws_close(c, 1000, 5000), 1000, "%s", fo_ws_error(c));
    cr_assert_eq(S.client_close_code, 1000);
    fo_ws_free(c);
}

Test(wsclient, refusal_reports_the_http_status)
{
    fo_ws_options o = {.port = S.port, .path = "/auth"};
    fo_ws_result res;
    fo_ws *c = fo_ws_connect(&o, &res);
    char v[128];

    cr_assert_null(c);
    cr_assert_eq(res.rc, FO_WS_EHTTP);
    cr_assert_eq(res.http_status, 401);
    cr_assert(strstr(res.message, "401"), "%s", res.message);

    o.bearer = "good";
    c = fo_ws_connect(&o, &res);
    cr_assert_not_null(c, "%s", res.message);
    cr_assert(req_header(S.request, "Authorization", v, sizeof(v)));
    cr_assert_str_eq(v, "Bearer good");
    fo_ws_free(c);

    o.bearer = NULL;
    o.query_token = "good";
    c = fo_ws_connect(&o, &res);
    cr_assert_not_null(c, "%s", res.message);
    cr_assert(strncmp(S.request, "GET /auth?token=good HTTP/1.1", 29) == 0, "%s", S.request);
    fo_ws_free(c);

    o.path = "/noupgrade";
    o.query_token = NULL;
    cr_assert_null(fo_ws_connect(&o, &res));
    cr_assert_eq(res.rc, FO_WS_EHTTP);
    cr_assert_eq(res.http_status, 200);
}

Test(wsclient, bad_accept_and_unoffered_protocol_are_refused)
{
    fo_ws_options o = {.port = S.port, .path = "/badaccept"};
    fo_ws_result res;

    cr_assert_null(fo_ws_connect(&o, &res));
    cr_assert_eq(res.rc, FO_WS_EPROTO);
    cr_assert(strstr(res.message, "Accept"), "%s", res.message);
    o.path = "/otherproto";
    cr_assert_null(fo_ws_connect(&o, &res));
    cr_assert_eq(res.rc, FO_WS_EPROTO);
    cr_assert(strstr(res.message, "other.v9"), "%s", res.message);
}

Test(wsclient, subprotocol_can_be_left_out_or_replaced)
{
    fo_ws_options o = {.port = S.port, .no_protocol = true};
    fo_ws_result res;
    fo_ws *c = fo_ws_connect(&o, &res);
    char v[128];

    cr_assert_not_null(c, "%s", res.message);
    cr_assert_null(fo_ws_protocol(c));
    cr_assert_not(req_header(S.request, "Sec-WebSocket-Protocol", v, sizeof(v)));
    fo_ws_free(c);
    o.no_protocol = false;
    o.protocol = "bogus.v0";
    c = fo_ws_connect(&o, &res);
    cr_assert_not_null(c, "%s", res.message);
    cr_assert(req_header(S.request, "Sec-WebSocket-Protocol", v, sizeof(v)));
    cr_assert_str_eq(v, "bogus.v0");
    fo_ws_free(c);
}

Test(wsclient, masked_server_frame_is_a_protocol_error)
{
    fo_ws *c = open_path(NULL);
    fo_ws_message m;

    cr_assert_eq(fo_ws_send(c, FO_WS_BINARY, "masked", 6), 0);
    cr_assert_eq(fo_ws_recv(c, 5000, &m), FO_WS_EPROTO);
    cr_assert(strstr(fo_ws_error(c), "masked"), "%s", fo_ws_error(c));
    fo_ws_free(c);
}

Test(wsclient, text_that_is_not_utf8_is_a_protocol_error)
{
    fo_ws *c = open_path(NULL);
    fo_ws_message m;

    /* The server echoes it: an overlong NUL in a text frame (RFC 6455 8.1: fail, 1007). */
    cr_assert_eq(fo_ws_send(c, FO_WS_TEXT, "a\xc0\x80", 3), 0);
    cr_assert_eq(fo_ws_recv(c, 5000, &m), FO_WS_EPROTO);
    cr_assert(strstr(fo_ws_error(c), "UTF-8"), "%s", fo_ws_error(c));
    cr_assert(strstr(fo_ws_error(c), "1007"), "%s", fo_ws_error(c));
    fo_ws_free(c);
}

Test(wsclient, eof_and_timeout_are_told_apart)
{
    fo_ws *c = open_path(NULL);
    fo_ws_message m;
    struct timespec t0, t1;
    long ms;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(fo_ws_recv(c, 150, &m), FO_WS_ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_assert(ms >= 140 && ms < 2000, "timeout took %ld ms", ms);
    cr_assert_eq(fo_ws_recv(c, 0, &m), FO_WS_ETIMEDOUT);
    cr_assert_eq(fo_ws_send(c, FO_WS_BINARY, "eof", 3), 0);
    cr_assert_eq(fo_ws_recv(c, 5000, &m), FO_WS_EEOF);
    fo_ws_free(c);
}

Test(wsclient, messages_round_trip_and_expect_names_the_surprise)
{
    fo_ws *c = open_path(NULL);
    fo_msg out, m = {.type = FO_MSG_HELLO, .client = "me", .has_rid = true, .rid = 42};
    fo_arena a;

    fo_arena_init(&a, 0);
    cr_assert_eq(fo_ws_send_msg(c, &m), 0);
    cr_assert_eq(fo_ws_recv_msg(c, 5000, &a, &out), 0, "%s", fo_ws_error(c));
    cr_assert_eq(out.type, FO_MSG_HELLO);
    cr_assert_eq(out.rid, 42);
    cr_assert_str_eq(out.client, "me");
    cr_assert_eq(fo_ws_send_msg(c, &m), 0);
    cr_assert_eq(fo_ws_expect(c, FO_MSG_WELCOME, 5000, &a, &out), FO_WS_EUNEXPECTED);
    cr_assert(strstr(fo_ws_error(c), "expected `welcome`, got `hello` rid=42"), "%s",
              fo_ws_error(c));
    cr_assert_eq(fo_ws_send(c, FO_WS_BINARY, "\x93\x01\x02\x03", 4), 0);
    cr_assert_eq(fo_ws_recv_msg(c, 5000, &a, &out), FO_WS_EDECODE);
    cr_assert_eq(fo_ws_send(c, FO_WS_TEXT, "{}", 2), 0);
    cr_assert_eq(fo_ws_recv_msg(c, 5000, &a, &out), FO_WS_EPROTO);
    fo_arena_destroy(&a);
    fo_ws_free(c);
}

Test(wsclient, wait_any_finds_the_ready_client)
{
    fo_ws *c[2] = {open_path(NULL), NULL};
    fo_ws_message m;

    /* The server serves one connection at a time: use one client, and a NULL slot. */
    cr_assert_eq(fo_ws_wait_any(c, 2, 50), FO_WS_ETIMEDOUT);
    cr_assert_eq(fo_ws_send(c[0], FO_WS_BINARY, "x", 1), 0);
    cr_assert_eq(fo_ws_wait_any(c, 2, 5000), 0);
    cr_assert_eq(fo_ws_recv(c[0], 5000, &m), 0);
    fo_ws_free(c[0]);
}

Test(wsclient, small_receive_buffer_still_works)
{
    fo_ws_options o = {.port = S.port, .rcvbuf = 4096};
    fo_ws_result res;
    fo_ws *c = fo_ws_connect(&o, &res);
    int v = 0;
    socklen_t len = sizeof(v);
    fo_ws_message m;

    cr_assert_not_null(c, "%s", res.message);
    getsockopt(fo_ws_fd(c), SOL_SOCKET, SO_RCVBUF, &v, &len);
    cr_assert(v <= 16384, "SO_RCVBUF is %d", v);
    cr_assert_eq(fo_ws_send(c, FO_WS_BINARY, "big:1000000", 11), 0);
    cr_assert_eq(fo_ws_recv(c, 10000, &m), 0, "%s", fo_ws_error(c));
    cr_assert_eq(m.len, 1000000);
    fo_ws_free(c);
}

Test(wsclient, plain_http_get_with_chunked_body)
{
    int status;
    char *body;
    size_t len;

    cr_assert_eq(fo_http_get(NULL, S.port, "/http", NULL, 5000, &status, &body, &len), 0);
    cr_assert_eq(status, 200);
    cr_assert_str_eq(body, "hello world");
    cr_assert_eq(len, 11);
    free(body);
}

Test(wsclient, ipv6_loopback)
{
    fo_ws_options o = {.host = "::1"};
    fo_ws_result res;
    fo_ws *c;
    char v[128];

    teardown();
    if (start_server(AF_INET6) != 0) {
        cr_assert_eq(start_server(AF_INET), 0); /* for the fini */
        cr_skip_test("no IPv6 loopback here");
    }
    o.port = S.port;
    c = fo_ws_connect(&o, &res);
    cr_assert_not_null(c, "%s", res.message);
    cr_assert(req_header(S.request, "Host", v, sizeof(v)));
    cr_assert(strncmp(v, "[::1]:", 6) == 0, "%s", v);
    echo(c, FO_WS_BINARY, "v6", 2);
    fo_ws_free(c);
}
