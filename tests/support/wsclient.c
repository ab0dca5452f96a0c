/* wsclient.c - see wsclient.h. Everything is synchronous: a non-blocking socket, poll() with
 * a deadline around every read and write, and one receive buffer that frames are parsed out
 * of in place by proto/ws.h's parser (which also checks them). */
#include "tests/support/wsclient.h"

#include <errno.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/error.h"
#include "proto/ws.h"
#include "tests/support/wsnet.h"

#define DEFAULT_MAX_MESSAGE ((size_t)256 << 20)
#define WS_FAIL(c, rc, ...) fo_wsnet_fail((c)->err, sizeof((c)->err), (rc), __VA_ARGS__)

struct fo_ws {
    int fd;
    char *rbuf; /* received bytes; [roff, rlen) not parsed yet */
    size_t roff, rlen, rcap;
    fo_ws_parser parser; /* frames in: checks, reassembly */
    char *msg;           /* a copy of the message handed out, NUL-terminated */
    size_t mlen, mcap;
    bool sent_close, got_close, broken;
    int close_code;
    unsigned pings;
    size_t max_message;
    bool has_protocol;
    char protocol[128];
    char err[512];
};

int fo_ws_accept_key(const char *key, char out[29])
{
    return fo_ws_accept_make(key, strlen(key), out) == 0 ? 0 : FO_WS_EIO;
}

/* ---- connect ----------------------------------------------------------------------------- */

static fo_ws *connect_fail(fo_ws_result *res, int rc, int status, const char *msg, int fd,
                           char *head)
{
    if (res) {
        res->rc = rc;
        res->http_status = status;
        snprintf(res->message, sizeof(res->message), "%s", msg);
    }
    if (fd >= 0)
        fo_wsnet_close(fd);
    free(head);
    return NULL;
}

fo_ws *fo_ws_connect(const fo_ws_options *o, fo_ws_result *res)
{
    int64_t deadline =
        fo_wsnet_deadline(o->timeout_ms > 0 ? o->timeout_ms : FO_WS_DEFAULT_TIMEOUT_MS);
    const char *host = o->host ? o->host : "127.0.0.1";
    const char *path = o->path ? o->path : "/v1/ws";
    const char *proto = o->protocol ? o->protocol : "flushout.v1";
    char err[512], req[4096], key[FO_WS_KEY_SIZE], accept[29], got[256], line[256];
    unsigned char nonce[16];
    char *head = NULL;
    size_t len = 0, head_len = 0;
    int fd = -1, rc, status, n;
    fo_ws *c;

    if (res)
        memset(res, 0, sizeof(*res));
    rc = fo_wsnet_tcp_connect(host, o->port, o->rcvbuf, deadline, &fd, err, sizeof(err));
    if (rc)
        return connect_fail(res, rc, 0, err, -1, NULL);
    if (o->tls_ca && (rc = fo_wsnet_tls_start(fd, o->tls_ca, o->tls_name ? o->tls_name : host,
                                              deadline, err, sizeof(err))))
        return connect_fail(res, rc, 0, err, fd, NULL);
    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return connect_fail(res, FO_WS_EIO, 0, "libcrypto failed to make a key", fd, NULL);
    fo_ws_key_make(nonce, key);
    n = snprintf(req, sizeof(req),
                 "GET %s%s%s HTTP/1.1\r\n"
                 "Host: %s%s%s:%d\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "%s%s%s"
                 "%s%s%s"
                 "%s"
                 "\r\n",
                 path, o->query_token ? (strchr(path, '?') ? "&token=" : "?token=") : "",
                 o->query_token ? o->query_token : "", strchr(host, ':') ? "[" : "", host,
                 strchr(host, ':') ? "]" : "", o->port, key,
                 o->no_protocol ? "" : "Sec-WebSocket-Protocol: ", o->no_protocol ? "" : proto,
                 o->no_protocol ? "" : "\r\n", o->bearer ? "Authorization: Bearer " : "",
                 o->bearer ? o->bearer : "", o->bearer ? "\r\n" : "",
                 o->extra_headers ? o->extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(req))
        return connect_fail(res, FO_WS_EIO, 0, "request too long", fd, NULL);
    rc = fo_wsnet_write_all(fd, req, (size_t)n, deadline, err, sizeof(err));
    if (rc)
        return connect_fail(res, rc, 0, err, fd, NULL);
    rc = fo_wsnet_read_response(fd, deadline, false, &head, &len, &head_len, err, sizeof(err));
    if (rc)
        return connect_fail(res, rc, 0, err, fd, NULL);

    fo_wsnet_first_line(head, line, sizeof(line));
    status = fo_wsnet_status(head);
    if (status != 101) {
        /* With the first line of the body when it came with the head (the hub's reason). */
        size_t blen = len - head_len < 200 ? len - head_len : 200;
        const char *body = head + head_len, *nl = memchr(body, '\n', blen);
        snprintf(err, sizeof(err), "upgrade refused: %s%s%.*s", line, blen ? ": " : "",
                 (int)(nl ? (size_t)(nl - body) : blen), body);
        return connect_fail(res, status < 0 ? FO_WS_EPROTO : FO_WS_EHTTP, status < 0 ? 0 : status,
                            err, fd, head);
    }
    if (!fo_wsnet_header(head, head_len, "Upgrade", got, sizeof(got)) ||
        strcasecmp(got, "websocket"))
        return connect_fail(res, FO_WS_EPROTO, 101, "101 without `Upgrade: websocket`", fd, head);
    if (!fo_wsnet_header(head, head_len, "Connection", got, sizeof(got)) ||
        !fo_wsnet_has_token(got, "upgrade"))
        return connect_fail(res, FO_WS_EPROTO, 101, "101 without `Connection: Upgrade`", fd, head);
    if (!fo_wsnet_header(head, head_len, "Sec-WebSocket-Accept", got, sizeof(got)) ||
        !fo_ws_accept_check(key, got, strlen(got))) {
        if (fo_ws_accept_key(key, accept) != 0)
            strcpy(accept, "?");
        snprintf(err, sizeof(err), "bad Sec-WebSocket-Accept `%s` (want `%s`)", got, accept);
        return connect_fail(res, FO_WS_EPROTO, 101, err, fd, head);
    }
    if (fo_wsnet_header(head, head_len, "Sec-WebSocket-Extensions", got, sizeof(got)))
        return connect_fail(res, FO_WS_EPROTO, 101, "server chose an extension we did not offer",
                            fd, head);
    c = calloc(1, sizeof(*c));
    if (!c)
        return connect_fail(res, FO_WS_EIO, 0, "out of memory", fd, head);
    if (fo_wsnet_header(head, head_len, "Sec-WebSocket-Protocol", got, sizeof(got))) {
        if (o->no_protocol || strcmp(got, proto) != 0) {
            free(c);
            snprintf(err, sizeof(err), "server selected subprotocol `%s`, which we did not offer",
                     got);
            return connect_fail(res, FO_WS_EPROTO, 101, err, fd, head);
        }
        c->has_protocol = true;
        snprintf(c->protocol, sizeof(c->protocol), "%.127s", got);
    }
    c->fd = fd;
    c->max_message = o->max_message ? o->max_message : DEFAULT_MAX_MESSAGE;
    fo_ws_parser_init(&c->parser, &(fo_ws_parser_config){.side = FO_WS_SIDE_CLIENT,
                                                         .max_message = c->max_message});
    /* Frames the server sent right behind its 101 are already in the buffer. */
    c->rcap = 65536;
    c->rbuf = malloc(c->rcap);
    if (!c->rbuf) {
        free(c);
        return connect_fail(res, FO_WS_EIO, 0, "out of memory", fd, head);
    }
    c->rlen = len - head_len;
    if (c->rlen > c->rcap) {
        char *nb = realloc(c->rbuf, c->rlen);
        if (!nb) {
            free(c->rbuf);
            free(c);
            return connect_fail(res, FO_WS_EIO, 0, "out of memory", fd, head);
        }
        c->rbuf = nb;
        c->rcap = c->rlen;
    }
    memcpy(c->rbuf, head + head_len, c->rlen);
    free(head);
    return c;
}

void fo_ws_free(fo_ws *c)
{
    if (!c)
        return;
    fo_wsnet_close(c->fd);
    free(c->rbuf);
    free(c->msg);
    fo_ws_parser_destroy(&c->parser);
    free(c);
}

const char *fo_ws_error(const fo_ws *c)
{
    return c->err;
}

const char *fo_ws_protocol(const fo_ws *c)
{
    return c->has_protocol ? c->protocol : NULL;
}

int fo_ws_fd(const fo_ws *c)
{
    return c->fd;
}

int fo_ws_close_code(const fo_ws *c)
{
    return c->got_close ? c->close_code : 0;
}

unsigned fo_ws_pings_answered(const fo_ws *c)
{
    return c->pings;
}

/* ---- sending ------------------------------------------------------------------------------ */

int fo_ws_send_frame(fo_ws *c, int opcode, bool fin, const void *p, size_t n, int timeout_ms)
{
    unsigned char mask[4];
    unsigned char *f;
    size_t len;
    int rc;

    if (c->broken)
        return WS_FAIL(c, FO_WS_EIO, "the stream broke earlier; not sending");
    if (c->sent_close)
        return WS_FAIL(c, FO_WS_ECLOSED, "we already sent a close frame");
    if (RAND_bytes(mask, 4) != 1)
        return WS_FAIL(c, FO_WS_EIO, "RAND_bytes failed");
    f = malloc(n + FO_WS_HEADER_MAX);
    if (!f)
        return WS_FAIL(c, FO_WS_EIO, "out of memory for a %zu-byte frame", n);
    /* Unchecked on purpose: tests send frames the hub must refuse. */
    len = fo_ws_frame_build(f, opcode, fin, p, n, mask);
    rc = fo_wsnet_write_all(c->fd, f, len, fo_wsnet_deadline(timeout_ms), c->err, sizeof(c->err));
    free(f);
    if (rc) {
        c->broken = true;
        return rc;
    }
    if (opcode == FO_WS_CLOSE)
        c->sent_close = true;
    return 0;
}

int fo_ws_send(fo_ws *c, int opcode, const void *p, size_t n)
{
    return fo_ws_send_frame(c, opcode, true, p, n, -1);
}

int fo_ws_send_raw(fo_ws *c, const void *p, size_t n, int timeout_ms)
{
    int rc = fo_wsnet_write_all(c->fd, p, n, fo_wsnet_deadline(timeout_ms), c->err, sizeof(c->err));

    if (rc)
        c->broken = true;
    return rc;
}

int fo_ws_send_msg(fo_ws *c, const fo_msg *m)
{
    fo_buf b;
    int rc;

    fo_buf_init(&b, 0);
    rc = fo_wire_encode(m, &b);
    if (rc) {
        fo_buf_destroy(&b);
        return WS_FAIL(c, FO_WS_EIO, "fo_wire_encode(%s): %s",
                       fo_msg_type_name(m->type) ? fo_msg_type_name(m->type) : "?",
                       fo_strerror(rc));
    }
    rc = fo_ws_send(c, FO_WS_BINARY, fo_buf_data(&b), b.len);
    fo_buf_destroy(&b);
    return rc;
}

/* ---- receiving ---------------------------------------------------------------------------- */

/* Reads more bytes into the buffer, waiting until the deadline. */
static int fill(fo_ws *c, int64_t deadline)
{
    ssize_t r;

    if (c->roff == c->rlen) {
        c->roff = c->rlen = 0;
    } else if (c->roff > 0 && c->rcap - c->rlen < 65536) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    if (c->rcap - c->rlen < 65536) {
        size_t ncap = c->rcap * 2;
        char *nb = realloc(c->rbuf, ncap);
        if (!nb)
            return WS_FAIL(c, FO_WS_EIO, "out of memory for the receive buffer (%zu)", ncap);
        c->rbuf = nb;
        c->rcap = ncap;
    }
    for (;;) {
        r = fo_wsnet_recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (r > 0) {
            c->rlen += (size_t)r;
            return 0;
        }
        if (r == 0) {
            c->broken = true;
            return WS_FAIL(c, FO_WS_EEOF, "the connection ended without a close frame%s",
                           c->parser.msg_opcode ? " (inside a fragmented message)" : "");
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = fo_wsnet_wait_fd(c->fd, POLLIN, deadline);
            if (rc == FO_WS_ETIMEDOUT)
                return WS_FAIL(c, rc, "no message within the timeout");
            if (rc)
                return WS_FAIL(c, rc, "poll: %s", strerror(errno));
            continue;
        }
        c->broken = true;
        return WS_FAIL(c, FO_WS_EIO, "recv: %s", strerror(errno));
    }
}

/* Copies what the parser handed out, so that it stays valid until the next call whatever
 * happens to the receive buffer, and ends in a NUL. */
static int msg_set(fo_ws *c, const void *p, size_t n)
{
    if (c->mcap < n + 1) {
        size_t ncap = c->mcap ? c->mcap : 4096;
        char *nb;
        while (ncap < n + 1)
            ncap *= 2;
        nb = realloc(c->msg, ncap);
        if (!nb)
            return WS_FAIL(c, FO_WS_EIO, "out of memory for a message of %zu bytes", n);
        c->msg = nb;
        c->mcap = ncap;
    }
    if (n)
        memcpy(c->msg, p, n);
    c->mlen = n;
    c->msg[n] = 0;
    return 0;
}

/* Our answer to a ping or a close; control frames are small, so the default timeout. */
static int send_control(fo_ws *c, int opcode, const void *p, size_t n)
{
    return fo_ws_send_frame(c, opcode, true, p, n, FO_WS_DEFAULT_TIMEOUT_MS);
}

int fo_ws_recv(fo_ws *c, int timeout_ms, fo_ws_message *out)
{
    int64_t deadline = fo_wsnet_deadline(timeout_ms);
    unsigned char code[2];
    fo_ws_event ev;
    int rc;

    memset(out, 0, sizeof(*out));
    if (c->got_close)
        return WS_FAIL(c, FO_WS_ECLOSED, "the peer closed the connection earlier (code %d)",
                       c->close_code);
    if (c->broken)
        return WS_FAIL(c, FO_WS_EIO, "the stream broke earlier");
    for (;;) {
        rc = fo_ws_parser_next(&c->parser, (unsigned char *)c->rbuf + c->roff, c->rlen - c->roff,
                               &ev);
        if (rc == FO_EAGAIN) {
            if ((rc = fill(c, deadline)) != 0)
                return rc;
            continue;
        }
        if (rc < 0) {
            c->broken = true;
            if (rc == FO_ELIMIT)
                return WS_FAIL(c, FO_WS_ETOOBIG, "a message over the limit of %zu bytes",
                               c->max_message);
            if (rc == FO_ENOMEM)
                return WS_FAIL(c, FO_WS_EIO, "out of memory for a message");
            return WS_FAIL(c, FO_WS_EPROTO, "the server sent %s (close code %u)", c->parser.err,
                           c->parser.close_code);
        }
        c->roff += (size_t)rc;
        switch (ev.opcode) {
        case FO_WS_CONT: continue; /* a fragment, kept by the parser */
        case FO_WS_PING:
            /* The payload still sits in rbuf: sending does not touch it. */
            rc = send_control(c, FO_WS_PONG, ev.data, ev.len);
            if (rc)
                return rc;
            c->pings++;
            continue;
        case FO_WS_PONG: continue;
        case FO_WS_CLOSE:
            c->got_close = true;
            c->close_code = (int)ev.close_code;
            if ((rc = msg_set(c, ev.data, ev.len)))
                return rc;
            if (!c->sent_close) {
                code[0] = (unsigned char)(ev.close_code >> 8);
                code[1] = (unsigned char)ev.close_code;
                rc = send_control(c, FO_WS_CLOSE, code,
                                  ev.close_code == FO_WS_CLOSE_NO_STATUS ? 0 : 2);
                if (rc && rc != FO_WS_EIO)
                    return rc;
            }
            out->opcode = FO_WS_CLOSE;
            out->close_code = c->close_code;
            out->data = c->msg;
            out->len = c->mlen;
            snprintf(c->err, sizeof(c->err), "the peer closed the connection with code %d%s%.*s",
                     c->close_code, c->mlen ? ": " : "", (int)(c->mlen > 120 ? 120 : c->mlen),
                     c->msg);
            return 0;
        default: /* a whole text or binary message */
            if ((rc = msg_set(c, ev.data, ev.len)))
                return rc;
            out->opcode = ev.opcode;
            out->data = c->msg;
            out->len = c->mlen;
            return 0;
        }
    }
}

bool fo_ws_pending(const fo_ws *c)
{
    const char *p = c->rbuf + c->roff;
    size_t avail = c->rlen - c->roff;
    fo_ws_header h;
    int rc;

    if (c->got_close || c->broken)
        return true;
    /* A header that is bad, or one whose whole frame is there: fo_ws_recv will not wait. */
    rc = fo_ws_header_parse(p, avail, FO_WS_SIDE_CLIENT, &h, NULL);
    if (rc == FO_EAGAIN)
        return false;
    return rc < 0 || h.len > c->max_message || avail - h.size >= h.len;
}

int fo_ws_wait_any(fo_ws *const *cs, int n, int timeout_ms)
{
    struct pollfd fds[256];
    int map[256], k = 0, i, r;

    for (i = 0; i < n; i++)
        if (cs[i] && (fo_ws_pending(cs[i]) || fo_wsnet_buffered(cs[i]->fd)))
            return i;
    for (i = 0; i < n && k < 256; i++) {
        if (!cs[i])
            continue;
        fds[k].fd = cs[i]->fd;
        fds[k].events = POLLIN;
        fds[k].revents = 0;
        map[k++] = i;
    }
    for (;;) {
        r = poll(fds, (nfds_t)k, timeout_ms < 0 ? FO_WS_DEFAULT_TIMEOUT_MS : timeout_ms);
        if (r > 0)
            break;
        if (r == 0)
            return FO_WS_ETIMEDOUT;
        if (errno != EINTR)
            return FO_WS_EIO;
    }
    for (i = 0; i < k; i++)
        if (fds[i].revents)
            return map[i];
    return FO_WS_ETIMEDOUT;
}

/* ---- messages ----------------------------------------------------------------------------- */

static const char *type_name(fo_msg_type t)
{
    const char *s = fo_msg_type_name(t);

    return s ? s : "(none)";
}

const char *fo_ws_describe(const fo_msg *m, char *out, size_t n)
{
    int w = snprintf(out, n, "`%s%s`", type_name(m->type),
                     m->type == FO_MSG_PRESENCE_EVT ? " (event)" : "");
    size_t u = w > 0 ? (size_t)w : 0;

#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (u < n) {                                                                               \
            int k_ = snprintf(out + u, n - u, __VA_ARGS__);                                        \
            u += k_ > 0 ? (size_t)k_ : 0;                                                          \
        }                                                                                          \
    } while (0)
    if (m->has_rid)
        ADD(" rid=%llu", (unsigned long long)m->rid);
    if (m->model)
        ADD(" model=%s", m->model);
    switch (m->type) {
    case FO_MSG_ERROR:
        ADD(" code=%s message=\"%s\"",
            fo_error_code_name(m->code) ? fo_error_code_name(m->code) : "?",
            m->message ? m->message : "");
        break;
    case FO_MSG_ACK:
        ADD(" seq=%llu applied={from %llu, %u completions} sync=%s errors=%u",
            (unsigned long long)m->seq, (unsigned long long)m->result.applied.from,
            m->result.applied.len,
            m->result.sync.kind == FO_SYNC_NONE      ? "none"
            : m->result.sync.kind == FO_SYNC_PARTIAL ? "partial"
                                                     : "full",
            m->result.errors_len);
        break;
    case FO_MSG_PUSH:
    case FO_MSG_DIFF:
        ADD(" diff={from %llu, %u completions}", (unsigned long long)m->batch.from, m->batch.len);
        break;
    case FO_MSG_SNAP:
        ADD(" commandCount=%llu", (unsigned long long)m->snapshot.command_count);
        break;
    case FO_MSG_PRESENCE_EVT:
        ADD(" session=%s state=%s", m->session ? m->session : "?", m->state ? "map" : "nil");
        break;
    case FO_MSG_WELCOME: ADD(" session=%s server=%s", m->session, m->server); break;
    default: break;
    }
#undef ADD
    return out;
}

int fo_ws_recv_msg(fo_ws *c, int timeout_ms, fo_arena *a, fo_msg *out)
{
    fo_ws_message wm;
    fo_wire_limits l;
    fo_err_info e;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = fo_ws_recv(c, timeout_ms, &wm);
    if (rc)
        return rc;
    if (wm.opcode == FO_WS_CLOSE)
        return FO_WS_ECLOSED; /* c->err already says so, with the code */
    if (wm.opcode != FO_WS_BINARY)
        return WS_FAIL(c, FO_WS_EPROTO, "text frame from the hub (%zu bytes): %.80s", wm.len,
                       wm.data);
    fo_wire_limits_default(&l);
    l.max_frame = c->max_message;
    l.max_str = 1u << 24;
    l.max_elems = 10000000;
    l.max_total = 100000000;
    memset(&e, 0, sizeof(e));
    rc = fo_wire_decode(wm.data, wm.len, &l, a, out, &e);
    if (rc)
        return WS_FAIL(c, FO_WS_EDECODE,
                       "undecodable frame from the hub (%zu bytes, first 0x%02x): %s%s%s (%s)",
                       wm.len, wm.len ? (unsigned char)wm.data[0] : 0, e.path,
                       e.path[0] ? ": " : "", e.msg, fo_strerror(rc));
    return 0;
}

int fo_ws_expect(fo_ws *c, fo_msg_type type, int timeout_ms, fo_arena *a, fo_msg *out)
{
    char what[400];
    int rc = fo_ws_recv_msg(c, timeout_ms, a, out);

    if (rc) {
        char prev[sizeof(c->err)];
        memcpy(prev, c->err, sizeof(prev));
        return WS_FAIL(c, rc, "expected `%s`: %s", type_name(type), prev);
    }
    if (out->type == type)
        return 0;
    fo_ws_describe(out, what, sizeof(what));
    return WS_FAIL(c, FO_WS_EUNEXPECTED, "expected `%s`%s, got %s", type_name(type),
                   type == FO_MSG_PRESENCE_EVT ? " (event)" : "", what);
}

int fo_ws_close(fo_ws *c, int code, int timeout_ms)
{
    int64_t deadline = fo_wsnet_deadline(timeout_ms);
    unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    fo_ws_message m;
    int rc;

    if (c->got_close)
        return c->close_code;
    if (!c->sent_close && (rc = send_control(c, FO_WS_CLOSE, p, 2)) != 0)
        return rc;
    for (;;) {
        rc = fo_ws_recv(c, fo_wsnet_remaining(deadline), &m);
        if (rc)
            return rc;
        if (m.opcode == FO_WS_CLOSE)
            return m.close_code;
    }
}
