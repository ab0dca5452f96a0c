#define _GNU_SOURCE /* accept4 */
#include "hub/listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "hub/console.h"
#include "hub/hub.h"
#include "hub/log.h"
#include "hub/origin.h"
#include "hub/relay.h"
#include "hub/session.h"
#include "proto/ws.h"

#define HEAD_MAX 8192       /* the largest request head the hub reads itself */
#define ADOPT_MAX 2048      /* what lws takes with an adopted socket (its header buffer) */
#define HEAD_TIMEOUT_MS 30000
#define LINGER_MS 2000      /* a refused connection is read (and dropped) until EOF */
#define ACCEPTS_PER_EVENT 64

struct fo_pending_conn {
    fo_listener *l;
    fo_pending_conn *prev, *next;
    int fd;
    uv_poll_t *poll;        /* handed to the session after a successful upgrade */
    uint64_t since_ms;
    bool refused;           /* answered: what comes is dropped until EOF (no RST) */
    fo_tls *tls;            /* --tls-cert: the head comes through it (handed on with the
                             * socket) */
    size_t len;
    size_t cap;             /* of buf, NUL excluded: ADOPT_MAX, grown to HEAD_MAX for a
                             * /v1/ws head that needs it */
    char *buf;
};

/* ---- the request head ----------------------------------------------------------------- */

typedef struct head {
    const char *target;     /* request target, NUL-terminated in the buffer */
    const char *key, *version, *protocols, *upgrade, *connection, *authorization;
    const char *origin, *host;
} head;

/* Case-insensitive search for a comma-separated token in a header value. */
static bool has_token(const char *value, const char *token)
{
    size_t n = strlen(token);

    while (value && *value) {
        while (*value == ' ' || *value == '\t' || *value == ',')
            value++;
        if (strncasecmp(value, token, n) == 0 &&
            (value[n] == '\0' || value[n] == ',' || value[n] == ' ' || value[n] == '\t'))
            return true;
        value = strchr(value, ',');
    }
    return false;
}

/* Parses the head in buf (NUL-terminated, ends with an empty line) in place. False when it
 * is not an HTTP/1.1 GET request with well-formed header lines. */
static bool parse_head(char *buf, head *hd)
{
    char *line = buf, *eol;

    memset(hd, 0, sizeof(*hd));
    if (strncmp(line, "GET ", 4) != 0 || !(eol = strstr(line, "\r\n")))
        return false;
    *eol = '\0';
    hd->target = line + 4;
    {
        char *sp = strchr(line + 4, ' ');
        if (!sp || strcmp(sp + 1, "HTTP/1.1") != 0)
            return false;
        *sp = '\0';
    }
    for (line = eol + 2; (eol = strstr(line, "\r\n")) && eol != line; line = eol + 2) {
        char *colon = memchr(line, ':', (size_t)(eol - line)), *v, *end = eol;

        if (!colon || colon == line)
            return false;
        *colon = '\0';
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
            ;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        *end = '\0';
        if (!strcasecmp(line, "Sec-WebSocket-Key"))
            hd->key = v;
        else if (!strcasecmp(line, "Sec-WebSocket-Version"))
            hd->version = v;
        else if (!strcasecmp(line, "Sec-WebSocket-Protocol"))
            hd->protocols = v;
        else if (!strcasecmp(line, "Upgrade"))
            hd->upgrade = v;
        else if (!strcasecmp(line, "Connection"))
            hd->connection = v;
        else if (!strcasecmp(line, "Authorization"))
            hd->authorization = v;
        else if (!strcasecmp(line, "Origin"))
            hd->origin = v;
        else if (!strcasecmp(line, "Host"))
            hd->host = v;
    }
    return eol == line;
}

/* The token of ?token=... in a request target, percent-decoding not needed (tokens are
 * plain); copied into tok. */
static void query_token(const char *target, char *tok, size_t cap)
{
    const char *q = strchr(target, '?'), *p;

    tok[0] = '\0';
    for (p = q; p; p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, "token=", 6) == 0) {
            size_t n = strcspn(p + 7, "&#");
            if (n < cap) {
                memcpy(tok, p + 7, n);
                tok[n] = '\0';
            }
            return;
        }
    }
}

/* ---- connections waiting for their head ----------------------------------------------- */

static void on_poll_closed(uv_handle_t *hd)
{
    free(hd);
}

/* Drops the pending entry; with `close_fd`, the socket too. */
static void pending_free(fo_pending_conn *c, bool close_fd)
{
    fo_listener *l = c->l;

    if (c->prev)
        c->prev->next = c->next;
    else
        l->pending = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->poll) /* uv_close stops the poll at once: the fd is free for its next owner */
        uv_close((uv_handle_t *)c->poll, on_poll_closed);
    if (close_fd)
        close(c->fd);
    fo_tls_free(c->tls);
    free(c->buf);
    free(c);
}

/* Sends a short answer (through TLS when the connection has it). */
static void send_small(fo_pending_conn *c, const char *p, size_t n)
{
    if (!c->tls) {
        if (send(c->fd, p, n, MSG_NOSIGNAL) < 0)
            FO_LOG(FO_LOG_DEBUG, "answer not sent: %s", strerror(errno));
        return;
    }
    if (fo_tls_write(c->tls, p, n) || fo_tls_send_fd(c->tls, c->fd) != 0)
        FO_LOG(FO_LOG_DEBUG, "answer not sent whole");
}

/* A short plain-HTTP answer, then the connection is closed. */
static void refuse(fo_pending_conn *c, int status, const char *reason, const char *extra,
                   const char *body)
{
    char out[768];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n%s\n",
                     status, reason, strlen(body) + 1, extra ? extra : "", body);

    FO_LOG(FO_LOG_INFO, "request refused (%d): %s", status, body);
    if (n > 0)
        send_small(c, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
    if (c->tls) {
        fo_tls_shutdown(c->tls);
        fo_tls_send_fd(c->tls, c->fd);
    }
    /* Closing with unread bytes would send an RST that can destroy the answer before the
     * client reads it: end our side, then read until the client's EOF (or LINGER_MS). */
    shutdown(c->fd, SHUT_WR);
    c->refused = true;
    c->since_ms = fo_hub_now_ms(c->l->hub);
}

/* Gives the connection to lws as if lws had accepted it, with what was read so far. */
static void to_lws(fo_pending_conn *c)
{
    fo_hub *h = c->l->hub;
    int fd = c->fd;
    char buf[ADOPT_MAX];
    size_t len = c->len;

    if (c->tls) { /* lws gets the plaintext through a socketpair (relay.h) */
        fo_tls *tls = c->tls;
        uv_poll_t *poll = c->poll;
        c->tls = NULL;
        c->poll = NULL;
        uv_poll_stop(poll);
        fo_relay_open(h, fd, poll, tls, (unsigned char *)c->buf, c->len);
        c->buf[0] = '\0';
        return pending_free(c, false);
    }
    memcpy(buf, c->buf, len);
    pending_free(c, false);
    /* NULL also when lws answered and closed it while reading `buf` (a 404, say): lws
     * owns fd either way. */
    lws_adopt_socket_vhost_readbuf(h->vhost, fd, buf, len);
}

/* Limits (limits.h), before the token is checked (a JWT's signature costs more than this):
 * true when refused. The hub is full: 503, a state of the server. Too many new connections
 * from this address: 429, the client's own rate (RFC 6585), with Retry-After. */
static bool limited(fo_pending_conn *c, char *why, size_t cap)
{
    fo_hub *h = c->l->hub;
    char extra[64];
    uint64_t wait;

    if (h->nsessions >= h->lim.max_connections) {
        h->metrics.refused_full++;
        snprintf(why, cap, "too many connections (--max-connections %u)", h->lim.max_connections);
        refuse(c, 503, "Service Unavailable", "Retry-After: 5\r\n", why);
        return true;
    }
    if ((wait = fo_conn_rate_check(h, c->fd))) {
        h->metrics.refused_rate++;
        snprintf(extra, sizeof(extra), "Retry-After: %llu\r\n",
                 (unsigned long long)((wait + 999) / 1000));
        snprintf(why, cap, "too many new connections from this address (--conn-rate %u/s)",
                 h->cfg.conn_rate);
        refuse(c, 429, "Too Many Requests", extra, why);
        return true;
    }
    return false;
}

/* Checks the handshake in `hd` (the parsed head, head_len bytes of c->buf) and answers
 * 101, handing the socket and any bytes after the head to a new session, or to the
 * console's feed (`feed`: GET /v1/console/feed, console.h); or refuses. */
static void upgrade(fo_pending_conn *c, const head *hd, size_t head_len, bool feed)
{
    fo_hub *h = c->l->hub;
    char accept[FO_WS_ACCEPT_SIZE], out[512], tok[HEAD_MAX], why[256];
    const char *protocol = NULL;
    fo_rights rights;
    fo_session *s;
    fo_tls *tls;
    uv_poll_t *poll;
    size_t n;

    if (!hd->connection || !has_token(hd->connection, "upgrade"))
        return refuse(c, 400, "Bad Request", NULL, "Connection: Upgrade is missing");
    if (!hd->version || strcmp(hd->version, "13") != 0)
        return refuse(c, 426, "Upgrade Required", "Sec-WebSocket-Version: 13\r\n",
                      "WebSocket version 13 only");
    if (!hd->key || strlen(hd->key) != 24 || fo_ws_accept_make(hd->key, 24, accept) != 0)
        return refuse(c, 400, "Bad Request", NULL, "Sec-WebSocket-Key is missing or malformed");
    if (hd->protocols && !feed) {
        if (!has_token(hd->protocols, "flushout.v1"))
            return refuse(c, 400, "Bad Request", NULL,
                          "unsupported subprotocol: this hub speaks flushout.v1");
        protocol = "flushout.v1";
    }
    if (h->phase != FO_HUB_RUNNING)
        return refuse(c, 503, "Service Unavailable", NULL, "shutting down");
    if (!feed && limited(c, why, sizeof(why)))
        return;
    if (!fo_origins_allow(h->cfg.allowed_origins, hd->origin, hd->host)) {
        snprintf(why, sizeof(why), "origin %.200s is not allowed (see --allowed-origins)",
                 hd->origin);
        return refuse(c, 403, "Forbidden", NULL, why);
    }
    if (h->auth || feed) {
        tok[0] = '\0';
        if (hd->authorization && strncasecmp(hd->authorization, "Bearer ", 7) == 0)
            snprintf(tok, sizeof(tok), "%s", hd->authorization + 7);
        else
            query_token(hd->target, tok, sizeof(tok));
    }
    if (feed) {
        int status = fo_console_access(h, tok, &rights, why, sizeof(why));
        fo_rights_destroy(&rights); /* the feed only sends: it needs no rights */
        if (status)
            return refuse(c, status, status == 401 ? "Unauthorized" : "Forbidden",
                          status == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL, why);
        if (!fo_console_feed_room(h))
            return refuse(c, 503, "Service Unavailable", NULL, "too many console feeds open");
    } else if (h->auth) {
        if (!tok[0])
            return refuse(c, 401, "Unauthorized", "WWW-Authenticate: Bearer\r\n", "missing token");
        if (!fo_auth_check(h->auth, tok, fo_auth_now_ms(), &rights, why, sizeof(why)))
            return refuse(c, 401, "Unauthorized", "WWW-Authenticate: Bearer\r\n", why);
    } else {
        fo_rights_init_open(&rights);
    }
    n = (size_t)snprintf(out, sizeof(out),
                         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                         accept, protocol ? "Sec-WebSocket-Protocol: " : "",
                         protocol ? protocol : "", protocol ? "\r\n" : "");
    /* A fresh socket's send buffer takes a 150-byte answer whole. */
    if (c->tls ? fo_tls_write(c->tls, out, n) || fo_tls_send_fd(c->tls, c->fd) != 0
               : send(c->fd, out, n, MSG_NOSIGNAL) != (ssize_t)n) {
        FO_LOG(FO_LOG_INFO, "upgrade answer not sent: %s", strerror(errno));
        fo_rights_destroy(&rights);
        return pending_free(c, true);
    }
    poll = c->poll;
    c->poll = NULL;
    tls = c->tls;
    c->tls = NULL; /* handed on with the socket */
    if (feed) /* it sends only: whatever the client sent after the head is dropped */
        return pending_free(c, fo_console_feed_open(h, c->fd, poll, tls) != 0);
    /* The session takes the rights and the TLS over (also when it cannot be created). */
    s = fo_session_open(h, c->fd, poll, tls, &rights, (unsigned char *)c->buf + head_len,
                        c->len - head_len);
    pending_free(c, s == NULL);
}

static bool is_path(const char *buf, const char *path)
{
    size_t n = strlen(path);

    return strncmp(buf, path, n) == 0 && (buf[n] == ' ' || buf[n] == '?');
}

/* Whether the request line (the first line of buf) holds "%00". */
static bool nul_escape(const char *buf)
{
    size_t n = strcspn(buf, "\r");

    for (const char *p = buf; (p = memchr(p, '%', n - (size_t)(p - buf))) != NULL; p++)
        if ((size_t)(p - buf) + 2 < n && p[1] == '0' && p[2] == '0')
            return true;
    return false;
}

/* With TLS: reads ciphertext and decrypts into the head buffer (what does not fit is held
 * for whoever takes the socket on). Plaintext bytes, or as recv: 0 at the end, -1 with
 * errno EAGAIN (nothing yet: a handshake in progress) or another errno (over). A client
 * speaking plain HTTP to the TLS port is answered in plain HTTP (and c->refused is set). */
static ssize_t tls_recv(fo_pending_conn *c)
{
    fo_hub *h = c->l->hub;
    ssize_t n = recv(c->fd, h->tls_in, sizeof(h->tls_in), 0);
    size_t got = 0;
    long r = FO_TLS_AGAIN;

    if (n <= 0)
        return n;
    fo_tls_input(c->tls, h->tls_in, (size_t)n);
    while (got < c->cap - c->len &&
           (r = fo_tls_read(c->tls, (unsigned char *)c->buf + c->len + got,
                            c->cap - c->len - got)) > 0)
        got += (size_t)r;
    if (r > 0 && fo_tls_hold(c->tls))
        r = FO_TLS_ERROR;
    if (r == FO_TLS_HTTP) {
        fo_tls_free(c->tls);
        c->tls = NULL;
        refuse(c, 400, "Bad Request", NULL,
               "this port speaks TLS: use https:// or wss://");
        errno = EAGAIN;
        return -1;
    }
    if (fo_tls_send_fd(c->tls, c->fd) < 0 || r == FO_TLS_ERROR || r == FO_TLS_CLOSED) {
        if (r == FO_TLS_ERROR)
            FO_LOG(FO_LOG_INFO, "TLS handshake failed: %s", fo_tls_error(c->tls));
        errno = ECONNRESET;
        return -1;
    }
    if (!got)
        errno = EAGAIN;
    return got ? (ssize_t)got : -1;
}

/* Routes on what the head shows: the hub's own WebSocket endpoint, or lws. */
static void on_head(uv_poll_t *p, int status, int events)
{
    fo_pending_conn *c = p->data;
    size_t hl;
    char copy[HEAD_MAX + 1], *end;
    ssize_t n;
    head hd;
    bool feed;

    (void)events;
    if (status < 0)
        return pending_free(c, true);
    if (c->refused) {
        char drop[4096];
        n = recv(c->fd, drop, sizeof(drop), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            pending_free(c, true);
        return;
    }
    if (c->len == ADOPT_MAX && c->cap == ADOPT_MAX) {
        char *nb = realloc(c->buf, HEAD_MAX + 1);
        if (!nb)
            return pending_free(c, true);
        c->buf = nb;
        c->cap = HEAD_MAX;
    }
    n = c->tls ? tls_recv(c) : recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return pending_free(c, true);
    if (n < 0 || c->refused)
        return;
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (!strstr(c->buf, "\r\n")) {
        if (c->len >= ADOPT_MAX)
            return refuse(c, 414, "URI Too Long", NULL, "request line too long");
        return;
    }
    /* lws drops a request whose target decodes to a NUL without a word: answer it. */
    if (nul_escape(c->buf))
        return refuse(c, 400, "Bad Request", NULL, "%00 in the request target");
    /* Ours: GET /v1/ws or /v1/ws?..., and GET /v1/console/feed, asking for a WebSocket. */
    feed = is_path(c->buf, "GET /v1/console/feed");
    if (!feed && !is_path(c->buf, "GET /v1/ws"))
        return c->len <= ADOPT_MAX || c->tls ? to_lws(c)
                                             : refuse(c, 400, "Bad Request", NULL, "bad head");
    if (!(end = strstr(c->buf, "\r\n\r\n"))) {
        if (c->len >= HEAD_MAX)
            return refuse(c, 431, "Request Header Fields Too Large", NULL, "head over 8 KiB");
        return;
    }
    /* Parsed in a copy: lws must get the bytes as they came, and the session the bytes
     * after the head. Upgrade: websocket decides; a plain GET of /v1/ws is lws's (404). */
    hl = (size_t)(end - c->buf) + 4;
    memcpy(copy, c->buf, hl);
    copy[hl] = '\0';
    if (!parse_head(copy, &hd))
        return refuse(c, 400, "Bad Request", NULL, "malformed request head");
    if (hd.upgrade && has_token(hd.upgrade, "websocket"))
        return upgrade(c, &hd, hl, feed);
    return c->len <= ADOPT_MAX || c->tls ? to_lws(c)
                                         : refuse(c, 400, "Bad Request", NULL, "bad head");
}

static void accept_one(fo_listener *l, int fd)
{
    fo_pending_conn *c = calloc(1, sizeof(*c));
    int one = 1, idle = 60, intvl = 10, cnt = 3;

    if (!c || !(c->poll = malloc(sizeof(*c->poll))) || !(c->buf = malloc(ADOPT_MAX + 1))) {
        if (c)
            free(c->poll);
        free(c);
        close(fd);
        return;
    }
    c->cap = ADOPT_MAX;
    if (l->hub->tls) { /* the head is decrypted whole; lws gets it through the relay */
        char *nb = realloc(c->buf, HEAD_MAX + 1);
        if (!nb || !(c->tls = fo_tls_new(l->hub->tls, NULL))) {
            free(nb ? nb : c->buf);
            free(c->poll);
            free(c);
            close(fd);
            return;
        }
        c->buf = nb;
        c->cap = HEAD_MAX;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    c->l = l;
    c->fd = fd;
    c->since_ms = fo_hub_now_ms(l->hub);
    if (uv_poll_init(&l->hub->loop, c->poll, fd) != 0) {
        fo_tls_free(c->tls);
        free(c->poll);
        free(c->buf);
        free(c);
        close(fd);
        return;
    }
    c->poll->data = c;
    c->next = l->pending;
    if (l->pending)
        l->pending->prev = c;
    l->pending = c;
    uv_poll_start(c->poll, UV_READABLE, on_head);
}

static void on_accept(uv_poll_t *p, int status, int events)
{
    fo_listener *l = p->data;
    int i, fd;

    (void)events;
    if (status < 0)
        return;
    for (i = 0; i < ACCEPTS_PER_EVENT; i++) {
        fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                FO_LOG(FO_LOG_WARN, "accept: %s", strerror(errno));
            return;
        }
        accept_one(l, fd);
    }
}

int fo_listener_start(fo_listener *l, fo_hub *h, const char *host, int port)
{
    struct addrinfo hints, *ai = NULL, *p;
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    char service[16];
    int one = 1, rc, err = 0;

    memset(l, 0, sizeof(*l));
    l->hub = h;
    l->fd = -1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof(service), "%d", port);
    if ((rc = getaddrinfo(host, service, &hints, &ai)) != 0) {
        FO_LOG(FO_LOG_ERROR, "cannot listen on %s:%d: %s (--listen HOST:PORT: a name that "
               "resolves or a numeric address)", host, port,
               rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    /* A name may resolve to several addresses (localhost: ::1 and 127.0.0.1): the first
     * one that binds is used. */
    for (p = ai; p && l->fd < 0; p = p->ai_next) {
        l->fd = socket(p->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            bind(l->fd, p->ai_addr, p->ai_addrlen) || listen(l->fd, 1024) ||
            getsockname(l->fd, (struct sockaddr *)&sa, &salen)) {
            err = errno;
            if (l->fd >= 0)
                close(l->fd);
            l->fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (l->fd < 0) {
        FO_LOG(FO_LOG_ERROR, "cannot listen on %s:%d: %s%s", host, port, strerror(err),
               err == EADDRINUSE ? " (another process has that port: pick another with "
                                   "--listen, or stop it)" : "");
        return -1;
    }
    l->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    uv_poll_init(&h->loop, &l->poll, l->fd);
    l->poll.data = l;
    uv_poll_start(&l->poll, UV_READABLE, on_accept);
    l->open = true;
    return 0;
}

void fo_listener_stop(fo_listener *l)
{
    while (l->pending)
        pending_free(l->pending, true);
    if (l->open) {
        uv_close((uv_handle_t *)&l->poll, NULL);
        close(l->fd);
        l->open = false;
    }
}

void fo_listener_sweep(fo_listener *l, uint64_t now_ms)
{
    fo_pending_conn *c = l->pending, *next;

    for (; c; c = next) {
        next = c->next;
        if (now_ms - c->since_ms > (c->refused ? LINGER_MS : HEAD_TIMEOUT_MS))
            pending_free(c, true);
    }
}
