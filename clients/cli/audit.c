/* audit.c - `flushout audit MODEL [--from N]`: what the hub's rules rejected or rewrote,
 * from GET /v1/models/MODEL/audit (plain HTTP on the hub's port; the WebSocket URL gives
 * host and port), every page of it, printed as one JSON object {model, batches}. */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "clients/cli/cli.h"
#include "proto/tls.h"

typedef struct http_answer {
    int status;
    char *body;
    size_t len;
} http_answer;

/* ws[s]://HOST[:PORT][/...] or [::1]: host and port; *tls for wss. */
static bool split_url(const char *url, char *host, size_t hcap, char *port, size_t pcap,
                      bool *tls)
{
    const char *p, *end, *colon;
    size_t n;

    *tls = strncmp(url, "wss://", 6) == 0;
    if (strncmp(url, "ws://", 5) != 0 && !*tls)
        return false;
    p = url + (*tls ? 6 : 5);
    end = p + strcspn(p, "/?");
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return false;
        n = (size_t)(rb - p - 1);
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        p++;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        n = (size_t)((colon ? colon : end) - p);
    }
    if (n == 0 || n >= hcap)
        return false;
    memcpy(host, p, n);
    host[n] = 0;
    n = colon ? (size_t)(end - colon - 1) : *tls ? 3 : 2;
    if (n == 0 || n >= pcap)
        return false;
    memcpy(port, colon ? colon + 1 : *tls ? "443" : "80", n);
    port[n] = 0;
    return true;
}

/* The first case-insensitive occurrence of `needle` in `hay`, or NULL. */
static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

/* TLS on the connected blocking socket (its timeouts set): NULL after a message. */
static fo_tls *tls_start(cli *c, int fd, const char *host, const char *port)
{
    char why[512];
    fo_tls_ctx *ctx = fo_tls_ctx_client(c->ca ? c->ca : getenv("FLUSHOUT_CA"), why, sizeof(why));
    fo_tls *t = ctx ? fo_tls_new(ctx, host) : NULL;
    unsigned char in[16384];
    int hs = 0;

    if (!ctx) {
        fprintf(stderr, "flushout: %s\n", why);
        return NULL;
    }
    fo_tls_ctx_free(ctx);
    while (t && (hs = fo_tls_handshake(t)) == 0) {
        ssize_t n;
        if (fo_tls_send_fd(t, fd) != 0 || (n = recv(fd, in, sizeof(in), 0)) <= 0) {
            fprintf(stderr, "flushout: TLS with %s:%s failed: %s\n", host, port,
                    errno == EAGAIN ? "timed out" : "the connection ended");
            fo_tls_free(t);
            return NULL;
        }
        fo_tls_input(t, in, (size_t)n);
    }
    if (t && (hs < 0 || fo_tls_hold(t))) {
        fprintf(stderr, "flushout: cannot reach the hub at %s:%s: TLS: %s%s\n", host, port,
                fo_tls_error(t),
                fo_tls_verify_failed(t) ? " (for a private CA: --ca FILE or FLUSHOUT_CA)" : "");
        fo_tls_free(t);
        return NULL;
    }
    return t;
}

/* One GET with Connection: close; CLI_OK or an exit code after a message on stderr. */
static int http_get(cli *c, const char *host, const char *port, bool tls, const char *target,
                    http_answer *out)
{
    fo_tls *t = NULL;
    struct addrinfo hints, *ai = NULL;
    struct timeval tv;
    char req[1024], *buf = NULL, *body;
    size_t len = 0, cap = 0;
    int fd = -1, rc = CLI_EUNREACHABLE;
    ssize_t n;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0 ||
        (fd = socket(ai->ai_family, ai->ai_socktype, 0)) < 0) {
        fprintf(stderr, "flushout: cannot resolve %s:%s\n", host, port);
        goto out;
    }
    tv.tv_sec = (time_t)c->timeout_s;
    tv.tv_usec = (suseconds_t)((c->timeout_s - (double)tv.tv_sec) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "flushout: cannot reach the hub at %s:%s: %s\n", host, port,
                strerror(errno));
        goto out;
    }
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n%s%s%s\r\n", target, host,
             port, c->token ? "Authorization: Bearer " : "", c->token ? c->token : "",
             c->token ? "\r\n" : "");
    if (tls && !(t = tls_start(c, fd, host, port)))
        goto out;
    if (t ? fo_tls_write(t, req, strlen(req)) != 0 || fo_tls_send_fd(t, fd) != 0
          : send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        fprintf(stderr, "flushout: cannot send to %s:%s: %s\n", host, port, strerror(errno));
        goto out;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (!nb) {
                rc = CLI_EHUB;
                goto out;
            }
            buf = nb;
        }
        n = t ? fo_tls_recv_fd(t, fd, buf + len, cap - len - 1)
              : recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            fprintf(stderr, "flushout: timed out waiting for the hub\n");
            rc = CLI_ETIMEOUT;
            goto out;
        }
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = 0;
        /* lws keeps the connection open: stop at Content-Length */
        if ((body = strstr(buf, "\r\n\r\n"))) {
            const char *cl = find_ci(buf, "\r\ncontent-length:");
            if (cl && cl < body && (size_t)(body + 4 - buf) + strtoul(cl + 17, NULL, 10) <= len)
                break;
        }
    }
    if (!buf || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1 ||
        !(body = strstr(buf, "\r\n\r\n"))) {
        fprintf(stderr, "flushout: the hub's answer is not HTTP\n");
        goto out;
    }
    body += 4;
    out->len = len - (size_t)(body - buf);
    memmove(buf, body, out->len + 1);
    out->body = buf;
    buf = NULL;
    rc = CLI_OK;
out:
    free(buf);
    fo_tls_free(t);
    if (fd >= 0)
        close(fd);
    if (ai)
        freeaddrinfo(ai);
    return rc;
}

int cli_audit(cli *c)
{
    char host[256], port[16], target[512];
    uint64_t from = c->has_from ? c->from : 0;
    json_t *all = json_array(), *outj;
    char *text;
    bool tls;
    int rc;

    if (!split_url(c->url, host, sizeof(host), port, sizeof(port), &tls)) {
        fprintf(stderr, "flushout: bad --url '%s': ws[s]://HOST[:PORT][/PATH] expected\n",
                c->url);
        json_decref(all);
        return CLI_EUSAGE;
    }
    for (;;) {
        http_answer a = {0, NULL, 0};
        json_t *page, *batches, *next;
        json_error_t err;
        snprintf(target, sizeof(target), "/v1/models/%s/audit?from=%llu", c->model,
                 (unsigned long long)from);
        if ((rc = http_get(c, host, port, tls, target, &a)) != CLI_OK) {
            json_decref(all);
            return rc;
        }
        page = json_loadb(a.body, a.len, 0, &err);
        if (a.status != 200 || !page) {
            json_t *e = page ? json_object_get(page, "error") : NULL;
            fprintf(stderr, "flushout: audit %s: HTTP %d%s%s\n", c->model, a.status,
                    e ? ": " : "", e ? json_string_value(e) : "");
            free(a.body);
            json_decref(page);
            json_decref(all);
            return CLI_EHUB;
        }
        free(a.body);
        batches = json_object_get(page, "batches");
        json_array_extend(all, batches);
        next = json_object_get(page, "next");
        if (!json_is_integer(next)) {
            json_decref(page);
            break;
        }
        from = (uint64_t)json_integer_value(next);
        json_decref(page);
    }
    outj = json_pack("{s:s, s:o}", "model", c->model, "batches", all);
    text = outj ? json_dumps(outj, c->pretty ? JSON_INDENT(2) : JSON_COMPACT) : NULL;
    json_decref(outj);
    if (!text)
        return CLI_EHUB;
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    return CLI_OK;
}
