#include "bench/loadgen/ws.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/error.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_RESPONSE_HEAD 16384
#define RX_MIN_FREE 4096
#define RX_FIRST 16384

/* ---- small helpers --------------------------------------------------------------------- */

uint64_t fo_ws_rand(fo_ws_ctx *ctx)
{
    /* xorshift64*: fast, good enough for mask keys (RFC 6455 wants them unpredictable to
     * scripts in a browser, which is not our threat model) and handshake nonces. */
    uint64_t x = ctx->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ctx->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int grow(char **p, size_t *cap, size_t need)
{
    size_t n = *cap ? *cap : 4096;
    char *q;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    if (!(q = realloc(*p, n)))
        return UV_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

const char *fo_ws_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case FO_WS_EHANDSHAKE: return "WebSocket upgrade refused or invalid";
    case FO_WS_EPROTO: return "WebSocket protocol error from the server";
    case FO_WS_ECLOSED: return "server closed the WebSocket";
    case FO_WS_ETOOBIG: return "message too large";
    case FO_WS_ETLS: return "TLS failed";
    default: return uv_strerror(code);
    }
}

/* ---- dirty list and writing ------------------------------------------------------------ */

static void mark_dirty(fo_ws *ws)
{
    fo_ws_ctx *c = ws->ctx;

    if (ws->dirty)
        return;
    ws->dirty = true;
    ws->dirty_prev = NULL;
    ws->dirty_next = c->dirty;
    if (c->dirty)
        c->dirty->dirty_prev = ws;
    c->dirty = ws;
}

static void unlink_dirty(fo_ws *ws)
{
    if (!ws->dirty)
        return;
    if (ws->dirty_prev)
        ws->dirty_prev->dirty_next = ws->dirty_next;
    else
        ws->ctx->dirty = ws->dirty_next;
    if (ws->dirty_next)
        ws->dirty_next->dirty_prev = ws->dirty_prev;
    ws->dirty = false;
    ws->dirty_next = ws->dirty_prev = NULL;
}

static void on_closed(uv_handle_t *h)
{
    fo_ws *ws = h->data;
    int status = ws->status;

    free(ws->rx);
    free(ws->tx);
    free(ws->wr);
    fo_tls_free(ws->tls);
    ws->tls = NULL;
    fo_ws_parser_destroy(&ws->parser);
    ws->rx = ws->tx = ws->wr = NULL;
    ws->rx_len = ws->rx_cap = ws->tx_len = ws->tx_cap = 0;
    ws->wr_len = ws->wr_cap = 0;
    if (!ws->open_fired) {
        ws->open_fired = true;
        if (ws->on_open)
            ws->on_open(ws, status ? status : UV_ECANCELED);
    }
    if (ws->on_close)
        ws->on_close(ws, status); /* may free ws: nothing after this */
}

/* Records the first error and closes the socket. */
static void fail(fo_ws *ws, int status)
{
    if (ws->state == FO_WS_CLOSED || ws->state == FO_WS_IDLE)
        return;
    if (!ws->status)
        ws->status = status;
    ws->state = FO_WS_CLOSED;
    unlink_dirty(ws);
    if (ws->in_batch) /* its write reaches the kernel before uv_close closes the fd */
        fo_sendq_submit(ws->ctx->sendq);
    uv_close((uv_handle_t *)&ws->tcp, on_closed);
}

static void ws_write(fo_ws *ws);

static bool tls_pending(fo_ws *ws)
{
    const unsigned char *p;

    return fo_tls_pending(ws->tls, &p) > 0;
}

static void on_write(uv_write_t *req, int status)
{
    fo_ws *ws = req->data;

    ws->writing = false;
    ws->wr_len = 0;
    if (status < 0) {
        fail(ws, status);
        return;
    }
    if (ws->tx_len || (ws->tls && tls_pending(ws)))
        mark_dirty(ws);
}

/* After a non-blocking write of n bytes at p that took k (or failed with k < 0): one
 * uv_write of the rest, copied into wr (or tx and wr swapped). */
static void write_rest(fo_ws *ws, const char *p, size_t n, bool from_tx, int k)
{
    fo_ws_ctx *c = ws->ctx;
    uv_buf_t b;
    char *old;
    size_t oldcap, off;

    if (k >= 0 && (size_t)k == n) {
        if (from_tx)
            ws->tx_len = 0;
        return;
    }
    if (k < 0 && k != UV_EAGAIN) {
        fail(ws, k);
        return;
    }
    off = k < 0 ? 0 : (size_t)k;
    if (from_tx) {
        /* Hand the rest to one uv_write; new frames go to the other buffer meanwhile. */
        old = ws->wr;
        oldcap = ws->wr_cap;
        ws->wr = ws->tx;
        ws->wr_cap = ws->tx_cap;
        ws->wr_len = ws->tx_len - off;
        ws->tx = old;
        ws->tx_cap = oldcap;
        ws->tx_len = 0;
        b = uv_buf_init(ws->wr + off, (unsigned)ws->wr_len);
    } else {
        if (grow(&ws->wr, &ws->wr_cap, n - off)) {
            fail(ws, UV_ENOMEM);
            return;
        }
        memcpy(ws->wr, p + off, n - off);
        ws->wr_len = n - off;
        b = uv_buf_init(ws->wr, (unsigned)ws->wr_len);
    }
    ws->write_req.data = ws;
    k = uv_write(&ws->write_req, (uv_stream_t *)&ws->tcp, &b, 1, on_write);
    c->writes++;
    if (k < 0) {
        fail(ws, k);
        return;
    }
    ws->writing = true;
}

/* Writes n bytes at p (uv_try_write, then one uv_write of the rest). */
static void write_out(fo_ws *ws, const char *p, size_t n, bool from_tx)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int k = uv_try_write((uv_stream_t *)&ws->tcp, &b, 1);

    ws->ctx->writes++;
    write_rest(ws, p, n, from_tx, k);
}

/* The completion of a batched write of tx (proto/sendq.h): as after uv_try_write (libuv's
 * error codes are -errno). */
static void on_sent(void *arg, const unsigned char *buf, size_t len, ssize_t res)
{
    fo_ws *ws = arg;

    (void)buf;
    ws->in_batch = false;
    ws->ctx->writes++;
    if (ws->state != FO_WS_CLOSED)
        write_rest(ws, ws->tx, len, true, (int)res);
}

/* Queues tx in the context's batch instead of writing it now: plaintext, nothing in
 * flight. false: write it directly. */
static bool queue_tx(fo_ws *ws)
{
    fo_sendq *q = ws->ctx->sendq;
    uv_os_fd_t fd;

    if (!q || ws->tls || ws->writing || ws->in_batch || ws->state == FO_WS_CLOSED ||
        ws->state < FO_WS_HANDSHAKE || !ws->tx_len || uv_fileno((uv_handle_t *)&ws->tcp, &fd))
        return false;
    if (fo_sendq_add(q, fd, (const unsigned char *)ws->tx, ws->tx_len, ws)) {
        fo_sendq_submit(q); /* full: this batch goes now, the next starts with ws */
        if (fo_sendq_add(q, fd, (const unsigned char *)ws->tx, ws->tx_len, ws))
            return false;
    }
    ws->in_batch = true;
    return true;
}

/* wss: writes the ciphertext TLS has ready (unless a write is in flight: on_write comes
 * back here through the dirty list). */
static void tls_out(fo_ws *ws)
{
    const unsigned char *p;
    size_t n;

    if (ws->writing || ws->state == FO_WS_CLOSED || !(n = fo_tls_pending(ws->tls, &p)))
        return;
    write_out(ws, (const char *)p, n, false);
    if (ws->state != FO_WS_CLOSED)
        fo_tls_sent(ws->tls, n); /* written or copied into wr */
}

static void ws_write(fo_ws *ws)
{
    if (ws->writing || ws->in_batch || ws->state == FO_WS_CLOSED || ws->state < FO_WS_TLS)
        return;
    if (ws->tls) {
        if (ws->tx_len && ws->state >= FO_WS_HANDSHAKE) { /* the whole batch, encrypted */
            if (fo_tls_write(ws->tls, ws->tx, ws->tx_len)) {
                snprintf(ws->tls_why, sizeof(ws->tls_why), "%s", fo_tls_error(ws->tls));
                fail(ws, FO_WS_ETLS);
                return;
            }
            ws->tx_len = 0;
        }
        tls_out(ws);
        return;
    }
    if (!ws->tx_len || ws->state < FO_WS_HANDSHAKE)
        return;
    write_out(ws, ws->tx, ws->tx_len, true);
}

void fo_ws_ctx_flush(fo_ws_ctx *ctx)
{
    fo_ws *ws;

    while ((ws = ctx->dirty)) {
        unlink_dirty(ws);
        if (!queue_tx(ws))
            ws_write(ws);
    }
    fo_sendq_submit(ctx->sendq);
}

static void on_prepare(uv_prepare_t *p)
{
    fo_ws_ctx_flush(p->data);
}

int fo_ws_ctx_init(fo_ws_ctx *ctx, uv_loop_t *loop)
{
    int rc;

    memset(ctx, 0, sizeof(*ctx));
    ctx->loop = loop;
    if (getrandom(&ctx->rng, sizeof(ctx->rng), 0) != (ssize_t)sizeof(ctx->rng))
        ctx->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    ctx->rng |= 1;
    {
        const char *why;
        if (!getenv("FO_BENCH_NO_IO_URING"))
            ctx->sendq = fo_sendq_open(4096, on_sent, &why); /* NULL: one write each */
    }
    if ((rc = uv_prepare_init(loop, &ctx->prepare)) != 0)
        return rc;
    ctx->prepare.data = ctx;
    if ((rc = uv_prepare_start(&ctx->prepare, on_prepare)) != 0)
        return rc;
    /* Writing pending frames is no reason to keep the loop alive on its own. */
    uv_unref((uv_handle_t *)&ctx->prepare);
    return 0;
}

void fo_ws_ctx_close(fo_ws_ctx *ctx)
{
    fo_sendq_close(ctx->sendq);
    ctx->sendq = NULL;
    if (!uv_is_closing((uv_handle_t *)&ctx->prepare))
        uv_close((uv_handle_t *)&ctx->prepare, NULL);
}

/* ---- frames out ------------------------------------------------------------------------ */

/* Appends one masked frame to tx: the payload is masked as it is copied (proto/ws.h, eight
 * bytes at a time), so the frame is ready for the wire. */
static int put_frame(fo_ws *ws, int opcode, const void *payload, size_t n)
{
    size_t hdr = fo_ws_header_size(n, true);
    uint32_t mask = (uint32_t)(fo_ws_rand(ws->ctx) >> 32);
    unsigned char mk[4];
    int rc;

    if ((rc = grow(&ws->tx, &ws->tx_cap, ws->tx_len + hdr + n)) != 0)
        return rc;
    memcpy(mk, &mask, 4);
    fo_ws_frame_build(ws->tx + ws->tx_len, opcode, true, payload, n, mk);
    ws->tx_len += hdr + n;
    ws->ctx->frames_out++;
    ws->ctx->bytes_out += hdr + n;
    mark_dirty(ws);
    return 0;
}

int fo_ws_send_frame(fo_ws *ws, int opcode, const void *payload, size_t len)
{
    if (ws->state != FO_WS_OPEN)
        return UV_ENOTCONN;
    if (opcode >= 8 && len > 125)
        return UV_EINVAL;
    return put_frame(ws, opcode, payload, len);
}

int fo_ws_send(fo_ws *ws, const void *payload, size_t len)
{
    return fo_ws_send_frame(ws, FO_WS_OP_BINARY, payload, len);
}

size_t fo_ws_backlog(const fo_ws *ws)
{
    return ws->tx_len + ws->wr_len;
}

void fo_ws_abort(fo_ws *ws)
{
    fail(ws, 0);
}

void fo_ws_close(fo_ws *ws, uint16_t code)
{
    unsigned char b[2] = {(unsigned char)(code >> 8), (unsigned char)code};

    if (ws->state == FO_WS_OPEN) {
        ws->state = FO_WS_CLOSING;
        if (put_frame(ws, FO_WS_OP_CLOSE, b, 2) != 0)
            fail(ws, 0);
    } else if (ws->state == FO_WS_CONNECTING || ws->state == FO_WS_HANDSHAKE) {
        fail(ws, 0);
    }
}

/* ---- frames in ------------------------------------------------------------------------- */

static void deliver(fo_ws *ws, int opcode, const char *p, size_t n)
{
    if (ws->state == FO_WS_OPEN && ws->on_message)
        ws->on_message(ws, opcode, p, n);
}

static void on_control(fo_ws *ws, const fo_ws_event *ev)
{
    unsigned char code[2] = {(unsigned char)(ev->close_code >> 8), (unsigned char)ev->close_code};

    switch (ev->opcode) {
    case FO_WS_OP_CLOSE:
        ws->close_code = (uint16_t)ev->close_code;
        if (ws->state == FO_WS_OPEN) {
            /* Echo the close, then close the socket once it is written: the server
             * started the closing handshake and waits for ours. */
            ws->status = FO_WS_ECLOSED;
            ws->state = FO_WS_CLOSING;
            put_frame(ws, FO_WS_OP_CLOSE, code,
                      ev->close_code == FO_WS_CLOSE_NO_STATUS ? 0 : sizeof(code));
            unlink_dirty(ws);
            ws_write(ws);
        }
        fail(ws, 0);
        break;
    case FO_WS_OP_PING:
        if (ws->state == FO_WS_OPEN)
            put_frame(ws, FO_WS_OP_PONG, ev->data, ev->len);
        break;
    default: break; /* pong */
    }
}

/* Parses every complete frame in rx; keeps the incomplete tail. A message that came as one
 * frame is handed out where it lies in rx (no copy). */
static void parse_frames(fo_ws *ws)
{
    size_t off = 0;

    while (ws->state == FO_WS_OPEN || ws->state == FO_WS_CLOSING) {
        fo_ws_event ev;
        int rc =
            fo_ws_parser_next(&ws->parser, (unsigned char *)ws->rx + off, ws->rx_len - off, &ev);

        if (rc == FO_EAGAIN)
            break;
        if (rc < 0) {
            fail(ws, rc == FO_ELIMIT ? FO_WS_ETOOBIG : rc == FO_ENOMEM ? UV_ENOMEM : FO_WS_EPROTO);
            return;
        }
        ws->ctx->frames_in++;
        off += (size_t)rc;
        if (ev.opcode == FO_WS_OP_TEXT || ev.opcode == FO_WS_OP_BINARY)
            deliver(ws, ev.opcode, (const char *)ev.data, ev.len);
        else if (ev.opcode)
            on_control(ws, &ev);
    }
    if (ws->state == FO_WS_CLOSED)
        return;
    if (off) {
        memmove(ws->rx, ws->rx + off, ws->rx_len - off);
        ws->rx_len -= off;
    }
    if (ws->parser.need && grow(&ws->rx, &ws->rx_cap, ws->parser.need + RX_MIN_FREE))
        fail(ws, UV_ENOMEM);
}

/* ---- handshake ------------------------------------------------------------------------- */

static const char *find_head_end(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i + 4 <= n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return p + i;
    return NULL;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t k = strlen(name);

    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return false;
    line += k + 1;
    n -= k + 1;
    while (n && (*line == ' ' || *line == '\t'))
        line++, n--;
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    *val = line;
    *vlen = n;
    return true;
}

/* 1: complete and valid; 0: need more bytes; <0: error. */
static int parse_handshake(fo_ws *ws)
{
    const char *end = find_head_end(ws->rx, ws->rx_len), *line, *v;
    bool accept_ok = false, proto_ok = false, upgrade_ok = false;
    size_t vlen, head;
    int status = 0;

    if (!end)
        return ws->rx_len > MAX_RESPONSE_HEAD ? FO_WS_EHANDSHAKE : 0;
    head = (size_t)(end - ws->rx) + 4;
    if (sscanf(ws->rx, "HTTP/1.%*d %d", &status) != 1)
        return FO_WS_EHANDSHAKE;
    ws->http_status = status;
    if (!(line = memchr(ws->rx, '\n', head)))
        return FO_WS_EHANDSHAKE;
    line++;
    while (line < end) {
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
        size_t n = (size_t)(eol - line);
        if (header_is(line, n, "Sec-WebSocket-Accept", &v, &vlen))
            accept_ok = fo_ws_accept_check(ws->key, v, vlen);
        else if (header_is(line, n, "Sec-WebSocket-Protocol", &v, &vlen))
            proto_ok = vlen == strlen(ws->protocol) && memcmp(v, ws->protocol, vlen) == 0;
        else if (header_is(line, n, "Upgrade", &v, &vlen))
            upgrade_ok = vlen == 9 && strncasecmp(v, "websocket", 9) == 0;
        line = eol + 2;
    }
    if (status != 101 || !accept_ok || !proto_ok || !upgrade_ok)
        return FO_WS_EHANDSHAKE;
    memmove(ws->rx, ws->rx + head, ws->rx_len - head);
    ws->rx_len -= head;
    return 1;
}

/* ---- reading and connecting ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fo_ws *ws = h->data;

    (void)suggested;
    if (ws->tls) { /* ciphertext: the context's buffer, decrypted in on_read at once */
        *buf = uv_buf_init((char *)ws->ctx->crx, sizeof(ws->ctx->crx));
        return;
    }
    if (ws->rx_cap - ws->rx_len < RX_MIN_FREE &&
        grow(&ws->rx, &ws->rx_cap, ws->rx_cap < RX_FIRST ? RX_FIRST : ws->rx_cap * 2)) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init(ws->rx + ws->rx_len, (unsigned)(ws->rx_cap - ws->rx_len));
}

/* wss: decrypts n bytes of ctx->crx after rx (the TLS handshake goes on meanwhile); the
 * plaintext bytes, or -1 after failing the connection. */
static ssize_t tls_in(fo_ws *ws, size_t n)
{
    size_t got = 0;
    long r;

    fo_tls_input(ws->tls, ws->ctx->crx, n);
    for (;;) {
        if (ws->rx_cap - ws->rx_len - got < RX_MIN_FREE &&
            grow(&ws->rx, &ws->rx_cap, ws->rx_cap < RX_FIRST ? RX_FIRST : ws->rx_cap * 2)) {
            fail(ws, UV_ENOMEM);
            return -1;
        }
        r = fo_tls_read(ws->tls, (unsigned char *)ws->rx + ws->rx_len + got,
                        ws->rx_cap - ws->rx_len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (r == FO_TLS_ERROR || r == FO_TLS_CLOSED) {
        snprintf(ws->tls_why, sizeof(ws->tls_why), "%s",
                 r == FO_TLS_CLOSED ? "the hub ended TLS" : fo_tls_error(ws->tls));
        fail(ws, r == FO_TLS_CLOSED ? UV_EOF : FO_WS_ETLS);
        return -1;
    }
    if (ws->state == FO_WS_TLS && fo_tls_ready(ws->tls))
        ws->state = FO_WS_HANDSHAKE; /* the upgrade request goes out now */
    ws_write(ws);
    return (ssize_t)got;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    fo_ws *ws = s->data;
    int rc;

    (void)buf;
    if (nread < 0) {
        /* EOF after our close frame is the normal end. */
        fail(ws, ws->state == FO_WS_CLOSING && !ws->status ? 0 : (int)nread);
        return;
    }
    if (nread == 0)
        return;
    if (ws->tls && (nread = tls_in(ws, (size_t)nread)) <= 0)
        return; /* failed, or nothing to read yet */
    ws->ctx->now = uv_hrtime();
    ws->rx_len += (size_t)nread;
    ws->ctx->bytes_in += (uint64_t)nread;
    if (ws->state == FO_WS_HANDSHAKE) {
        rc = parse_handshake(ws);
        if (rc < 0) {
            fail(ws, rc);
            return;
        }
        if (rc == 0)
            return;
        ws->state = FO_WS_OPEN;
        ws->open_fired = true;
        if (ws->on_open)
            ws->on_open(ws, 0);
    }
    parse_frames(ws);
}

static void on_connect(uv_connect_t *req, int status)
{
    fo_ws *ws = req->data;
    int rc;

    if (ws->state != FO_WS_CONNECTING)
        return; /* closed meanwhile: on_closed reports it */
    if (status < 0) {
        fail(ws, status);
        return;
    }
    ws->state = FO_WS_HANDSHAKE;
    if (ws->ctx->tls) { /* wss: TLS first; the upgrade request waits in tx */
        ws->state = FO_WS_TLS;
        if (!(ws->tls =
                  fo_tls_new(ws->ctx->tls, ws->tls_name ? ws->tls_name : ws->ctx->tls_name))) {
            fail(ws, UV_ENOMEM);
            return;
        }
        if (fo_tls_handshake(ws->tls) < 0) {
            snprintf(ws->tls_why, sizeof(ws->tls_why), "%s", fo_tls_error(ws->tls));
            fail(ws, FO_WS_ETLS);
            return;
        }
    }
    if ((rc = uv_read_start((uv_stream_t *)&ws->tcp, on_alloc, on_read)) != 0) {
        fail(ws, rc);
        return;
    }
    ws_write(ws); /* the upgrade request, queued by fo_ws_connect (wss: the ClientHello) */
}

int fo_ws_connect(fo_ws_ctx *ctx, fo_ws *ws, const struct sockaddr *dst, const struct sockaddr *src,
                  const char *host, const char *path, const char *protocol, fo_ws_open_cb on_open,
                  fo_ws_message_cb on_message, fo_ws_close_cb on_close)
{
    unsigned char nonce[16];
    char req[1024];
    uint64_t r1, r2;
    int n, rc, one = 1;
    uv_os_fd_t fd;

    if (!ctx || !ws || !dst || !host || !path || !protocol ||
        (dst->sa_family != AF_INET && dst->sa_family != AF_INET6))
        return UV_EINVAL;
    memset(ws, 0, sizeof(*ws));
    ws->ctx = ctx;
    ws->protocol = protocol;
    ws->on_open = on_open;
    ws->on_message = on_message;
    ws->on_close = on_close;
    r1 = fo_ws_rand(ctx);
    r2 = fo_ws_rand(ctx);
    memcpy(nonce, &r1, 8);
    memcpy(nonce + 8, &r2, 8);
    fo_ws_key_make(nonce, ws->key);
    fo_ws_parser_init(&ws->parser, &(fo_ws_parser_config){.side = FO_WS_SIDE_CLIENT,
                                                          .max_message = FO_WS_MAX_MESSAGE});
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Protocol: %s\r\n\r\n",
                 path, host, ws->key, protocol);
    if (n <= 0 || (size_t)n >= sizeof(req))
        return UV_EINVAL;
    if (grow(&ws->tx, &ws->tx_cap, (size_t)n))
        return UV_ENOMEM;
    memcpy(ws->tx, req, (size_t)n);
    ws->tx_len = (size_t)n;
    ws->ctx->bytes_out += (uint64_t)n;
    if ((rc = uv_tcp_init_ex(ctx->loop, &ws->tcp, dst->sa_family)) != 0) {
        free(ws->tx);
        ws->tx = NULL;
        return rc; /* EMFILE lands here: no handle, no callback */
    }
    ws->tcp.data = ws;
    ws->connect_req.data = ws;
    ws->state = FO_WS_CONNECTING;
    uv_tcp_nodelay(&ws->tcp, 1);
    rc = 0;
    if (src) {
        /* Choose the port at connect time, so one source address serves ~28k
         * connections per destination instead of one ephemeral port per bind. */
        if (uv_fileno((uv_handle_t *)&ws->tcp, &fd) == 0 && src->sa_family == AF_INET)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        rc = uv_tcp_bind(&ws->tcp, src, 0);
    }
    if (rc == 0)
        rc = uv_tcp_connect(&ws->connect_req, &ws->tcp, dst, on_connect);
    if (rc != 0)
        fail(ws, rc); /* reported by on_closed, on a later iteration */
    return 0;
}
