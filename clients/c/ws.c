#include "clients/c/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "proto/error.h"
#include "proto/tls.h"
#include "proto/ws.h"

#define HANDSHAKE_MAX 16384
#define READ_CHUNK 65536

typedef enum ws_phase {
    WS_RESOLVING = 0,
    WS_CONNECTING,
    WS_TLS,       /* wss: the TLS handshake */
    WS_UPGRADING,
    WS_OPEN,
} ws_phase;

struct fo_cws {
    uv_loop_t *loop;
    fo_cws_callbacks cbs;
    void *data;
    char *host, *path, *protocol, *token;
    int port;
    uint32_t connect_timeout_ms, ping_ms;
    size_t max_message;

    ws_phase phase;
    bool closing; /* no more callbacks but on_free; handles are closing */
    int refs;     /* open handles and pending getaddrinfo */
    uv_getaddrinfo_t gai;
    bool gai_pending;
    uv_tcp_t tcp;
    bool tcp_init;
    uv_connect_t conn;
    uv_timer_t timer;
    char fail_why[160]; /* set: fail from the timer (a failure noticed inside a call) */

    fo_tls_ctx *tls_ctx;  /* wss (borrowed), NULL: ws */
    fo_tls *tls;
    unsigned char *crx;   /* wss: ciphertext read, decrypted into rx at once */
    char key[FO_WS_KEY_SIZE]; /* Sec-WebSocket-Key */
    unsigned char *rx;
    size_t rx_len, rx_cap;
    fo_ws_parser parser; /* frames in (proto/ws.h): checks them, reassembles fragments */
    uint64_t last_rx_ms;
    uint64_t ping_sent_ms; /* a ping is unanswered since then; 0: none */
    size_t backlog;
    uint64_t rng[2];
};

typedef struct ws_write {
    uv_write_t req;
    fo_cws *ws;
    size_t len;
    unsigned char data[];
} ws_write;

/* ---- small helpers ------------------------------------------------------------------- */

static uint64_t rng_next(fo_cws *ws)
{
    /* xorshift128+: masking keys only need to be unpredictable to intermediaries. */
    uint64_t s1 = ws->rng[0];
    const uint64_t s0 = ws->rng[1];

    ws->rng[0] = s0;
    s1 ^= s1 << 23;
    ws->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return ws->rng[1] + s0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void ws_free(fo_cws *ws)
{
    void (*on_free)(void *) = ws->cbs.on_free;
    void *data = ws->data;

    free(ws->host);
    free(ws->path);
    free(ws->protocol);
    free(ws->token);
    free(ws->rx);
    free(ws->crx);
    fo_tls_free(ws->tls);
    fo_ws_parser_destroy(&ws->parser);
    free(ws);
    if (on_free)
        on_free(data);
}

static void unref(fo_cws *ws)
{
    if (--ws->refs == 0 && ws->closing)
        ws_free(ws);
}

static void on_handle_closed(uv_handle_t *h)
{
    unref(h->data);
}

/* Closes every handle; the object goes when the last one is closed. */
static void shut(fo_cws *ws)
{
    if (ws->closing)
        return;
    ws->closing = true;
    ws->refs++; /* held until the end of this function */
    if (ws->gai_pending)
        uv_cancel((uv_req_t *)&ws->gai);
    if (ws->tcp_init)
        uv_close((uv_handle_t *)&ws->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&ws->timer, on_handle_closed);
    unref(ws);
}

/* The connection is over: tell the owner once, then close. */
static void fail(fo_cws *ws, const char *why)
{
    void (*on_close)(fo_cws *, const char *, void *) = ws->cbs.on_close;
    char text[192];

    if (ws->closing)
        return;
    snprintf(text, sizeof(text), "%s", why);
    shut(ws);
    if (on_close)
        on_close(ws, text, ws->data);
}

static void on_timer(uv_timer_t *t);

/* A failure noticed inside a call from the owner: report it from the loop instead. */
static void fail_later(fo_cws *ws, const char *why)
{
    if (ws->closing || ws->fail_why[0])
        return;
    snprintf(ws->fail_why, sizeof(ws->fail_why), "%s", why);
    uv_timer_start(&ws->timer, on_timer, 0, 0);
}

/* ---- writing ------------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    ws_write *w = (ws_write *)req;
    fo_cws *ws = w->ws;

    ws->backlog -= w->len;
    free(w);
    if (status < 0 && status != UV_ECANCELED && !ws->closing) {
        char why[128];
        snprintf(why, sizeof(why), "write failed: %s", uv_strerror(status));
        fail(ws, why);
    }
}

static int write_wire(fo_cws *ws, ws_write *w);

/* wss: writes what TLS has ready. 0, or FO_ESTATE/FO_ENOMEM (then failing). */
static int tls_push(fo_cws *ws)
{
    const unsigned char *p;
    size_t n = fo_tls_pending(ws->tls, &p);
    ws_write *w;

    if (!n)
        return 0;
    if (!(w = malloc(sizeof(*w) + n))) {
        fail_later(ws, "out of memory");
        return FO_ENOMEM;
    }
    memcpy(w->data, p, n);
    w->len = n;
    fo_tls_sent(ws->tls, n);
    return write_wire(ws, w);
}

/* Writes w (taken over) as it is. */
static int write_wire(fo_cws *ws, ws_write *w)
{
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    int rc;

    w->ws = ws;
    if ((rc = uv_write(&w->req, (uv_stream_t *)&ws->tcp, &b, 1, on_written)) < 0) {
        free(w);
        fail_later(ws, uv_strerror(rc));
        return FO_ESTATE;
    }
    ws->backlog += w->len;
    return 0;
}

/* Writes w (taken over), encrypted first with wss. */
static int write_raw(fo_cws *ws, ws_write *w)
{
    int rc;

    if (!ws->tls)
        return write_wire(ws, w);
    rc = fo_tls_write(ws->tls, w->data, w->len);
    free(w);
    if (rc) {
        fail_later(ws, fo_tls_error(ws->tls));
        return FO_ESTATE;
    }
    return tls_push(ws);
}

static int send_frame(fo_cws *ws, unsigned op, const void *p, size_t len)
{
    size_t hdr = fo_ws_header_size(len, true);
    ws_write *w = malloc(sizeof(*w) + hdr + len);
    unsigned char mask[4];
    uint64_t r;

    if (!w)
        return FO_ENOMEM;
    r = rng_next(ws);
    memcpy(mask, &r, 4);
    w->len = fo_ws_frame_build(w->data, (int)op, true, p, len, mask);
    return write_raw(ws, w);
}

int fo_cws_send(fo_cws *ws, const void *p, size_t len)
{
    if (ws->closing || ws->phase != WS_OPEN || ws->fail_why[0])
        return FO_ESTATE;
    return send_frame(ws, 0x2, p, len);
}

size_t fo_cws_backlog(const fo_cws *ws)
{
    return ws->backlog;
}

void fo_cws_close(fo_cws *ws)
{
    if (ws)
        shut(ws);
}

/* ---- reading ------------------------------------------------------------------------- */

static void deliver(fo_cws *ws, const unsigned char *p, size_t len, bool binary)
{
    if (ws->cbs.on_message)
        ws->cbs.on_message(ws, p, len, binary, ws->data);
}

static void on_control(fo_cws *ws, const fo_ws_event *ev)
{
    unsigned char code[2] = {(unsigned char)(ev->close_code >> 8), (unsigned char)ev->close_code};
    char why[192];

    if (ev->opcode == FO_WS_OP_PING) {
        send_frame(ws, FO_WS_OP_PONG, ev->data, ev->len);
    } else if (ev->opcode == FO_WS_OP_CLOSE) { /* echo the code, then end */
        int rlen = (int)ev->len;
        send_frame(ws, FO_WS_OP_CLOSE, code,
                   ev->close_code == FO_WS_CLOSE_NO_STATUS ? 0 : sizeof(code));
        snprintf(why, sizeof(why), "the hub closed the connection (%u%s%.*s)", ev->close_code,
                 rlen ? ": " : "", rlen, (const char *)ev->data);
        fail(ws, why);
    }
    /* pong: last_rx_ms is already fresh */
}

/* Parses the frames in rx; returns the bytes consumed. */
static size_t parse_frames(fo_cws *ws, size_t off)
{
    char why[192];

    while (!ws->closing) {
        fo_ws_event ev;
        int rc = fo_ws_parser_next(&ws->parser, ws->rx + off, ws->rx_len - off, &ev);

        if (rc == FO_EAGAIN)
            break;
        if (rc == FO_ELIMIT) {
            fail(ws, "message from the hub too large");
            break;
        }
        if (rc < 0) {
            snprintf(why, sizeof(why), "protocol error: %s",
                     rc == FO_ENOMEM ? "out of memory" : ws->parser.err);
            fail(ws, why);
            break;
        }
        off += (size_t)rc;
        if (ev.opcode == FO_WS_OP_TEXT || ev.opcode == FO_WS_OP_BINARY)
            deliver(ws, ev.data, ev.len, ev.opcode == FO_WS_OP_BINARY);
        else if (ev.opcode)
            on_control(ws, &ev);
    }
    return off;
}

static const char *header_value(const char *head, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *line = strstr(head, "\r\n");

    while (line && line[2] != '\r') {
        const char *l = line + 2, *eol = strstr(l, "\r\n"), *v;
        if (!eol)
            break;
        if ((size_t)(eol - l) > nlen && strncasecmp(l, name, nlen) == 0 && l[nlen] == ':') {
            for (v = l + nlen + 1; *v == ' ' || *v == '\t'; v++)
                ;
            *vlen = (size_t)(eol - v);
            while (*vlen && (v[*vlen - 1] == ' ' || v[*vlen - 1] == '\t'))
                (*vlen)--;
            return v;
        }
        line = eol;
    }
    return NULL;
}

static void on_open(fo_cws *ws);

/* Parses the upgrade response; returns the bytes it took, 0 when incomplete. */
static size_t parse_handshake(fo_cws *ws)
{
    char *head = (char *)ws->rx, *end, why[192];
    const char *v;
    size_t vlen = 0, n;
    int status;

    end = NULL;
    for (n = 0; n + 4 <= ws->rx_len && !end; n++)
        if (memcmp(ws->rx + n, "\r\n\r\n", 4) == 0)
            end = head + n;
    if (!end) {
        if (ws->rx_len > HANDSHAKE_MAX)
            fail(ws, "bad upgrade response: headers too long");
        return 0;
    }
    n = (size_t)(end - head) + 4;
    end[2] = '\0'; /* the header block, each line ending in \r\n */
    if (sscanf(head, "HTTP/1.%*1d %3d", &status) != 1) {
        fail(ws, "bad upgrade response: not HTTP");
        return 0;
    }
    if (status != 101) {
        /* "HTTP/1.x 401 Unauthorized" -> "HTTP 401 Unauthorized" */
        const char *eol = strstr(head, "\r\n"), *code = strchr(head, ' ');
        if (!code || code > eol)
            code = head;
        const char *body = end + 4;
        size_t blen = ws->rx_len - n;

        snprintf(why, sizeof(why), "upgrade refused: HTTP %.*s", (int)(eol - code - 1), code + 1);
        /* The reason, when the body (the hub's one line) came with the head. */
        if (blen && memchr(body, '\n', blen)) {
            size_t len = strlen(why);
            blen = (size_t)((const char *)memchr(body, '\n', blen) - body);
            if (blen && len + 3 < sizeof(why))
                snprintf(why + len, sizeof(why) - len, ": %.*s", (int)blen, body);
        }
        fail(ws, why);
        return 0;
    }
    v = header_value(head, "Sec-WebSocket-Accept", &vlen);
    if (!fo_ws_accept_check(ws->key, v, vlen)) {
        fail(ws, "bad upgrade response: wrong Sec-WebSocket-Accept");
        return 0;
    }
    v = header_value(head, "Upgrade", &vlen);
    if (!v || vlen != 9 || strncasecmp(v, "websocket", 9) != 0) {
        fail(ws, "bad upgrade response: no Upgrade: websocket");
        return 0;
    }
    if (ws->protocol) {
        v = header_value(head, "Sec-WebSocket-Protocol", &vlen);
        if (!v || vlen != strlen(ws->protocol) || memcmp(v, ws->protocol, vlen) != 0) {
            fail(ws, "bad upgrade response: the server did not accept the subprotocol");
            return 0;
        }
    }
    on_open(ws);
    return ws->closing ? 0 : n;
}

static uint64_t now_ms(fo_cws *ws)
{
    return uv_now(ws->loop);
}

/* Makes room for READ_CHUNK more bytes in rx. */
static bool rx_room(fo_cws *ws)
{
    if (ws->rx_cap - ws->rx_len < READ_CHUNK) {
        size_t ncap = ws->rx_cap ? ws->rx_cap * 2 : 2 * READ_CHUNK;
        unsigned char *n;
        while (ncap - ws->rx_len < READ_CHUNK)
            ncap *= 2;
        if (!(n = realloc(ws->rx, ncap)))
            return false;
        ws->rx = n;
        ws->rx_cap = ncap;
    }
    return true;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    fo_cws *ws = h->data;

    (void)hint;
    if (ws->tls) /* ciphertext first */
        *buf = uv_buf_init((char *)ws->crx, ws->crx ? READ_CHUNK : 0);
    else if (!rx_room(ws))
        *buf = uv_buf_init(NULL, 0);
    else
        *buf = uv_buf_init((char *)ws->rx + ws->rx_len, (unsigned)(ws->rx_cap - ws->rx_len));
}

static int send_upgrade(fo_cws *ws);

/* wss: decrypts n bytes of crx into rx (the handshake goes on meanwhile). The plaintext
 * bytes, or -1 after a failure (reported). */
static ssize_t tls_in(fo_cws *ws, size_t n)
{
    size_t got = 0;
    long r;
    char why[320];

    fo_tls_input(ws->tls, ws->crx, n);
    for (;;) {
        if (!rx_room(ws)) {
            fail(ws, "out of memory");
            return -1;
        }
        r = fo_tls_read(ws->tls, ws->rx + ws->rx_len + got, ws->rx_cap - ws->rx_len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (r == FO_TLS_ERROR || r == FO_TLS_CLOSED) {
        snprintf(why, sizeof(why), r == FO_TLS_CLOSED ? "the hub closed the connection"
                                   : "TLS with %s:%d failed: %s", ws->host, ws->port,
                 fo_tls_error(ws->tls));
        fail(ws, why);
        return -1;
    }
    if (tls_push(ws))
        return -1;
    if (ws->phase == WS_TLS && fo_tls_ready(ws->tls)) {
        ws->phase = WS_UPGRADING;
        if (send_upgrade(ws) < 0) {
            fail(ws, "out of memory");
            return -1;
        }
    }
    return (ssize_t)got;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    fo_cws *ws = s->data;
    size_t off = 0;
    char why[160];

    (void)buf;
    if (ws->closing)
        return;
    if (nread > 0 && ws->tls && (nread = tls_in(ws, (size_t)nread)) <= 0)
        return; /* failed, or nothing decrypted yet */
    if (nread < 0) {
        if (nread == UV_EOF)
            snprintf(why, sizeof(why), "the hub closed the connection");
        else if (nread == UV_ENOBUFS)
            snprintf(why, sizeof(why), "out of memory");
        else
            snprintf(why, sizeof(why), "connection lost: %s", uv_strerror((int)nread));
        fail(ws, why);
        return;
    }
    ws->rx_len += (size_t)nread;
    ws->last_rx_ms = now_ms(ws);
    ws->ping_sent_ms = 0; /* anything from the hub shows the connection is alive */
    if (ws->phase == WS_UPGRADING) {
        if ((off = parse_handshake(ws)) == 0)
            return;
    }
    off = parse_frames(ws, off);
    if (ws->closing)
        return;
    memmove(ws->rx, ws->rx + off, ws->rx_len - off);
    ws->rx_len -= off;
    if (ws->rx_cap > 16 * READ_CHUNK && ws->rx_len < READ_CHUNK) {
        /* Give back the room a big message needed. */
        unsigned char *n = realloc(ws->rx, 2 * READ_CHUNK);
        if (n) {
            ws->rx = n;
            ws->rx_cap = 2 * READ_CHUNK;
        }
    }
}

/* ---- connecting ---------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    fo_cws *ws = t->data;
    uint64_t idle;

    if (ws->closing)
        return;
    if (ws->fail_why[0]) {
        fail(ws, ws->fail_why);
        return;
    }
    if (ws->phase != WS_OPEN) {
        fail(ws, "timed out connecting");
        return;
    }
    /* Drop only after a ping went unanswered for a whole interval: a late tick of a busy
     * loop must not count as silence. */
    if (ws->ping_sent_ms && now_ms(ws) - ws->ping_sent_ms >= ws->ping_ms) {
        fail(ws, "connection lost: no reply to ping");
        return;
    }
    idle = now_ms(ws) - ws->last_rx_ms;
    if (!ws->ping_sent_ms && idle >= ws->ping_ms) {
        ws->ping_sent_ms = now_ms(ws) ? now_ms(ws) : 1;
        send_frame(ws, 0x9, NULL, 0);
    }
}

static void on_open(fo_cws *ws)
{
    ws->phase = WS_OPEN;
    ws->last_rx_ms = now_ms(ws);
    uv_timer_stop(&ws->timer);
    if (ws->ping_ms)
        uv_timer_start(&ws->timer, on_timer, ws->ping_ms, ws->ping_ms);
    if (ws->cbs.on_open)
        ws->cbs.on_open(ws, ws->data);
}

static int send_upgrade(fo_cws *ws)
{
    size_t cap = 512 + strlen(ws->host) + strlen(ws->path) +
                 (ws->protocol ? strlen(ws->protocol) : 0) + (ws->token ? strlen(ws->token) : 0);
    ws_write *w = malloc(sizeof(*w) + cap);
    int n;

    if (!w)
        return FO_ENOMEM;
    n = snprintf((char *)w->data, cap,
                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s%s%s%s%s%s\r\n",
                 ws->path, ws->host, ws->port, ws->key,
                 ws->protocol ? "Sec-WebSocket-Protocol: " : "", ws->protocol ? ws->protocol : "",
                 ws->protocol ? "\r\n" : "", ws->token ? "Authorization: Bearer " : "",
                 ws->token ? ws->token : "", ws->token ? "\r\n" : "");
    w->len = (size_t)n;
    return write_raw(ws, w);
}

static void on_connected(uv_connect_t *req, int status)
{
    fo_cws *ws = req->data;
    char why[160];
    int rc;

    if (status == UV_ECANCELED || ws->closing)
        return;
    if (status < 0) {
        snprintf(why, sizeof(why), "cannot connect to %s:%d: %s", ws->host, ws->port,
                 uv_strerror(status));
        fail(ws, why);
        return;
    }
    ws->phase = WS_UPGRADING;
    uv_tcp_nodelay(&ws->tcp, 1);
    if (ws->tls_ctx) { /* wss: the TLS handshake first, the upgrade once it is done */
        ws->phase = WS_TLS;
        if (!(ws->crx = malloc(READ_CHUNK)) || !(ws->tls = fo_tls_new(ws->tls_ctx, ws->host))) {
            fail(ws, "out of memory");
            return;
        }
        if (fo_tls_handshake(ws->tls) < 0) {
            snprintf(why, sizeof(why), "TLS with %s:%d failed: %s", ws->host, ws->port,
                     fo_tls_error(ws->tls));
            fail(ws, why);
            return;
        }
        if ((rc = uv_read_start((uv_stream_t *)&ws->tcp, on_alloc, on_read)) < 0 ||
            (rc = tls_push(ws)) < 0)
            fail(ws, rc == FO_ENOMEM ? "out of memory" : "cannot start reading");
        return;
    }
    if ((rc = uv_read_start((uv_stream_t *)&ws->tcp, on_alloc, on_read)) < 0 ||
        (rc = send_upgrade(ws)) < 0)
        fail(ws, rc == FO_ENOMEM ? "out of memory" : "cannot start reading");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    fo_cws *ws = req->data;
    struct addrinfo *ai, *pick = NULL;
    char why[192];
    int rc;

    ws->gai_pending = false;
    if (ws->closing) {
        uv_freeaddrinfo(res);
        unref(ws);
        return;
    }
    ws->refs--; /* cannot reach 0: the timer holds a reference */
    if (status < 0) {
        snprintf(why, sizeof(why), "cannot resolve %s: %s", ws->host, uv_strerror(status));
        fail(ws, why);
        uv_freeaddrinfo(res);
        return;
    }
    /* The hub listens on IPv4 by default: prefer it when a name has both. */
    for (ai = res; ai && !pick; ai = ai->ai_next)
        if (ai->ai_family == AF_INET)
            pick = ai;
    if (!pick)
        pick = res;
    ws->phase = WS_CONNECTING;
    if ((rc = uv_tcp_init(ws->loop, &ws->tcp)) == 0) {
        ws->tcp_init = true;
        ws->refs++;
        ws->tcp.data = ws;
        ws->conn.data = ws;
        rc = uv_tcp_connect(&ws->conn, &ws->tcp, pick->ai_addr, on_connected);
    }
    uv_freeaddrinfo(res);
    if (rc < 0) {
        snprintf(why, sizeof(why), "cannot connect to %s:%d: %s", ws->host, ws->port,
                 uv_strerror(rc));
        fail(ws, why);
    }
}

fo_cws *fo_cws_connect(uv_loop_t *loop, const fo_cws_config *cfg, const fo_cws_callbacks *cbs,
                       void *data)
{
    fo_cws *ws = calloc(1, sizeof(*ws));
    struct addrinfo hints;
    unsigned char raw[16];
    char port[16];
    uint64_t seed[2] = {0, 0};

    if (!ws)
        return NULL;
    ws->loop = loop;
    ws->cbs = *cbs;
    ws->data = data;
    ws->port = cfg->port;
    ws->connect_timeout_ms = cfg->connect_timeout_ms;
    ws->ping_ms = cfg->ping_ms;
    ws->max_message = cfg->max_message ? cfg->max_message : (size_t)256 << 20;
    ws->tls_ctx = cfg->tls;
    ws->host = strdup(cfg->host);
    ws->path = strdup(cfg->path && *cfg->path ? cfg->path : "/");
    ws->protocol = dup_or_null(cfg->protocol);
    ws->token = dup_or_null(cfg->token);
    if (!ws->host || !ws->path || (cfg->protocol && !ws->protocol) || (cfg->token && !ws->token)) {
        ws->closing = true;
        ws->cbs.on_free = NULL;
        ws_free(ws);
        return NULL;
    }
    if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        seed[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)ws;
        seed[1] = uv_hrtime();
    }
    ws->rng[0] = seed[0] | 1;
    ws->rng[1] = seed[1];
    for (int i = 0; i < 2; i++) {
        uint64_t r = rng_next(ws);
        memcpy(raw + 8 * i, &r, 8);
    }
    fo_ws_key_make(raw, ws->key);
    fo_ws_parser_init(&ws->parser, &(fo_ws_parser_config){.side = FO_WS_SIDE_CLIENT,
                                                          .max_message = ws->max_message});

    uv_timer_init(loop, &ws->timer);
    ws->timer.data = ws;
    ws->refs = 1;
    if (ws->connect_timeout_ms)
        uv_timer_start(&ws->timer, on_timer, ws->connect_timeout_ms, 0);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", ws->port);
    ws->gai.data = ws;
    if (uv_getaddrinfo(loop, &ws->gai, on_resolved, ws->host, port, &hints) == 0) {
        ws->gai_pending = true;
        ws->refs++;
    } else {
        fail_later(ws, "cannot start resolving the hub's address");
    }
    return ws;
}
