/* wsnet.c - see wsnet.h: the socket and HTTP plumbing under wsclient.c, and fo_http_get. */
#include "tests/support/wsnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/tls.h"
#include "tests/support/wsclient.h"

#define MAX_RESPONSE_HEAD 16384
#define TLS_FDS 4096 /* sockets that can carry TLS: fds below this */

/* ---- small helpers --------------------------------------------------------------------- */

int64_t fo_wsnet_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fo_wsnet_deadline(int timeout_ms)
{
    return fo_wsnet_now_ms() + (timeout_ms < 0 ? FO_WS_DEFAULT_TIMEOUT_MS : timeout_ms);
}

int fo_wsnet_remaining(int64_t deadline)
{
    int64_t left = deadline - fo_wsnet_now_ms();

    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

int fo_wsnet_fail(char *buf, size_t n, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return rc;
}

int fo_wsnet_wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, fo_wsnet_remaining(deadline));

        if (n > 0)
            return 0;
        if (n == 0)
            return FO_WS_ETIMEDOUT;
        if (errno != EINTR)
            return FO_WS_EIO;
    }
}

/* ---- TLS: a socket's TLS, found by its fd --------------------------------------------- */

static fo_tls *tls_of[TLS_FDS];
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;

static fo_tls *tls_get(int fd)
{
    fo_tls *t;

    if (fd < 0 || fd >= TLS_FDS)
        return NULL;
    pthread_mutex_lock(&tls_lock);
    t = tls_of[fd];
    pthread_mutex_unlock(&tls_lock);
    return t;
}

void fo_wsnet_close(int fd)
{
    if (fd < 0)
        return;
    if (fd < TLS_FDS) {
        pthread_mutex_lock(&tls_lock);
        fo_tls_free(tls_of[fd]);
        tls_of[fd] = NULL;
        pthread_mutex_unlock(&tls_lock);
    }
    close(fd);
}

bool fo_wsnet_buffered(int fd)
{
    fo_tls *t = tls_get(fd);

    return t && fo_tls_buffered(t);
}

/* Sends what TLS has ready, waiting up to the deadline. */
static int tls_send_all(int fd, fo_tls *t, int64_t deadline, char *err, size_t errlen)
{
    long left;

    while ((left = fo_tls_send_fd(t, fd)) > 0) {
        int rc = fo_wsnet_wait_fd(fd, POLLOUT, deadline);
        if (rc)
            return fo_wsnet_fail(err, errlen, rc, "send timed out with %ld bytes unsent", left);
    }
    return left < 0 ? fo_wsnet_fail(err, errlen, FO_WS_EIO, "send: %s", strerror(errno)) : 0;
}

int fo_wsnet_tls_start(int fd, const char *ca_file, const char *name, int64_t deadline,
                       char *err, size_t errlen)
{
    char why[512];
    fo_tls_ctx *ctx = fo_tls_ctx_client(ca_file, why, sizeof(why));
    fo_tls *t;
    unsigned char buf[16384];
    int rc;

    if (fd < 0 || fd >= TLS_FDS)
        return fo_wsnet_fail(err, errlen, FO_WS_EIO, "fd %d too large for TLS", fd);
    if (!ctx)
        return fo_wsnet_fail(err, errlen, FO_WS_EIO, "TLS: %s", why);
    t = fo_tls_new(ctx, name);
    fo_tls_ctx_free(ctx); /* the connection holds its own reference */
    if (!t)
        return fo_wsnet_fail(err, errlen, FO_WS_EIO, "TLS: out of memory");
    while ((rc = fo_tls_handshake(t)) == 0) {
        ssize_t r;
        if ((rc = tls_send_all(fd, t, deadline, err, errlen)))
            break;
        if ((rc = fo_wsnet_wait_fd(fd, POLLIN, deadline))) {
            rc = fo_wsnet_fail(err, errlen, rc, "TLS handshake: %s",
                               rc == FO_WS_ETIMEDOUT ? "timed out" : strerror(errno));
            break;
        }
        r = recv(fd, buf, sizeof(buf), 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0) {
            rc = fo_wsnet_fail(err, errlen, FO_WS_EEOF, "TLS handshake: the connection ended");
            break;
        }
        fo_tls_input(t, buf, (size_t)r);
    }
    if (rc == FO_TLS_ERROR)
        rc = fo_wsnet_fail(err, errlen, FO_WS_EPROTO, "TLS: %s", fo_tls_error(t));
    if (rc == 1) /* what came behind the handshake is kept */
        rc = fo_tls_hold(t) ? fo_wsnet_fail(err, errlen, FO_WS_EIO, "out of memory")
                            : tls_send_all(fd, t, deadline, err, errlen);
    if (rc) {
        fo_tls_free(t);
        return rc;
    }
    pthread_mutex_lock(&tls_lock);
    tls_of[fd] = t;
    pthread_mutex_unlock(&tls_lock);
    return 0;
}

ssize_t fo_wsnet_recv(int fd, void *buf, size_t cap)
{
    fo_tls *t = tls_get(fd);

    return t ? fo_tls_recv_fd(t, fd, buf, cap) : recv(fd, buf, cap, 0);
}

/* Writes all bytes before the deadline. */
int fo_wsnet_write_all(int fd, const void *p, size_t n, int64_t deadline, char *err, size_t errlen)
{
    const char *s = p;
    fo_tls *t = tls_get(fd);

    if (t) {
        if (fo_tls_write(t, p, n))
            return fo_wsnet_fail(err, errlen, FO_WS_EIO, "TLS: %s", fo_tls_error(t));
        return tls_send_all(fd, t, deadline, err, errlen);
    }

    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = fo_wsnet_wait_fd(fd, POLLOUT, deadline);
            if (rc == FO_WS_ETIMEDOUT)
                return fo_wsnet_fail(err, errlen, rc, "send timed out with %zu bytes unsent", n);
            if (rc)
                return fo_wsnet_fail(err, errlen, rc, "poll: %s", strerror(errno));
            continue;
        }
        return fo_wsnet_fail(err, errlen, FO_WS_EIO, "send: %s", strerror(errno));
    }
    return 0;
}

/* ---- TCP ---------------------------------------------------------------------------------- */

int fo_wsnet_tcp_connect(const char *host, int port, int rcvbuf, int64_t deadline, int *out,
                         char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd, one = 1, soerr = 0, rc;
    socklen_t len = sizeof(soerr);

    memset(&ss, 0, sizeof(ss));
    if (!host)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*sin6);
    } else {
        return fo_wsnet_fail(err, errlen, FO_WS_EIO, "not a numeric address: %s", host);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fo_wsnet_fail(err, errlen, FO_WS_EIO, "socket: %s", strerror(errno));
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0) {
        rc = fo_wsnet_fail(err, errlen, FO_WS_EIO, "SO_RCVBUF: %s", strerror(errno));
        goto bad;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&ss, sslen) != 0) {
        if (errno != EINPROGRESS) {
            rc = fo_wsnet_fail(err, errlen, FO_WS_EIO, "connect to %s port %d: %s", host, port,
                               strerror(errno));
            goto bad;
        }
        rc = fo_wsnet_wait_fd(fd, POLLOUT, deadline);
        if (rc) {
            rc = fo_wsnet_fail(err, errlen, rc, "connect to %s port %d: %s", host, port,
                               rc == FO_WS_ETIMEDOUT ? "timed out" : strerror(errno));
            goto bad;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            rc = fo_wsnet_fail(err, errlen, FO_WS_EIO, "connect to %s port %d: %s", host, port,
                               strerror(soerr ? soerr : errno));
            goto bad;
        }
    }
    *out = fd;
    return 0;
bad:
    close(fd);
    return rc;
}

/* Reads until "\r\n\r\n" ends a response head (or EOF when `to_eof`). The bytes read are in
 * *buf (malloc'd, NUL-terminated), the head's length in *head_len. */
int fo_wsnet_read_response(int fd, int64_t deadline, bool to_eof, char **buf, size_t *len,
                           size_t *head_len, char *err, size_t errlen)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);

    *buf = NULL;
    if (!b)
        return fo_wsnet_fail(err, errlen, FO_WS_EIO, "out of memory");
    for (;;) {
        ssize_t r;
        char *end;

        b[n] = 0;
        end = strstr(b, "\r\n\r\n");
        if (end && !to_eof) {
            *head_len = (size_t)(end - b) + 4;
            break;
        }
        if (!end && n > MAX_RESPONSE_HEAD) {
            free(b);
            return fo_wsnet_fail(err, errlen, FO_WS_EPROTO, "response head over %d bytes",
                                 MAX_RESPONSE_HEAD);
        }
        if (cap - n < 2048) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return fo_wsnet_fail(err, errlen, FO_WS_EIO, "out of memory");
            }
            b = nb;
            cap *= 2;
        }
        r = fo_wsnet_recv(fd, b + n, cap - n - 1);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r == 0) {
            b[n] = 0;
            end = strstr(b, "\r\n\r\n");
            if (!end) {
                free(b);
                return fo_wsnet_fail(err, errlen, FO_WS_EEOF,
                                     "connection closed before a whole response head (%zu bytes)",
                                     n);
            }
            *head_len = (size_t)(end - b) + 4;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = fo_wsnet_wait_fd(fd, POLLIN, deadline);
            if (rc) {
                free(b);
                return fo_wsnet_fail(err, errlen, rc, "waiting for the response: %s",
                                     rc == FO_WS_ETIMEDOUT ? "timed out" : strerror(errno));
            }
            continue;
        }
        free(b);
        return fo_wsnet_fail(err, errlen, FO_WS_EIO, "recv: %s", strerror(errno));
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

/* Parses "HTTP/1.1 NNN ..." at the start of `head`; -1 when it is not a status line. */
int fo_wsnet_status(const char *head)
{
    int status = -1;

    if (strncmp(head, "HTTP/1.", 7) != 0 || sscanf(head + 8, " %3d", &status) != 1)
        return -1;
    return status;
}

void fo_wsnet_first_line(const char *head, char *out, size_t n)
{
    size_t len = strcspn(head, "\r\n");

    if (len >= n)
        len = n - 1;
    memcpy(out, head, len);
    out[len] = 0;
}

/* Finds header `name` (case-insensitive) in the head; copies its trimmed value. */
bool fo_wsnet_header(const char *head, size_t head_len, const char *name, char *out, size_t n)
{
    const char *p = strstr(head, "\r\n"), *end = head + head_len;
    size_t nl = strlen(name);

    while (p && p + 2 < end) {
        const char *line = p + 2, *eol = strstr(line, "\r\n");
        if (!eol || eol == line)
            return false;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            size_t len;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            len = (size_t)(eol - v);
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            if (len >= n)
                len = n - 1;
            memcpy(out, v, len);
            out[len] = 0;
            return true;
        }
        p = eol;
    }
    return false;
}

bool fo_wsnet_has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *p = list;

    while (*p) {
        size_t len;
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        len = strcspn(p, ", \t");
        if (len == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p += len;
    }
    return false;
}

/* ---- plain HTTP ---------------------------------------------------------------------------- */

/* Decodes a chunked body in place; returns its length or -1. */
static long dechunk(char *b, size_t n)
{
    size_t in = 0, outp = 0;

    for (;;) {
        char *end;
        unsigned long len;
        const char *eol;

        if (in >= n)
            return -1;
        len = strtoul(b + in, &end, 16);
        eol = strstr(end, "\r\n");
        if (end == b + in || !eol)
            return -1;
        in = (size_t)(eol - b) + 2;
        if (len == 0)
            return (long)outp;
        if (in + len > n)
            return -1;
        memmove(b + outp, b + in, len);
        outp += len;
        in += len + 2;
    }
}

int fo_http_get(const char *host, int port, const char *target, const char *extra_headers,
                int timeout_ms, int *status, char **body, size_t *body_len)
{
    return fo_https_get(NULL, host, port, target, extra_headers, timeout_ms, status, body,
                        body_len);
}

int fo_https_get(const char *ca_file, const char *host, int port, const char *target,
                 const char *extra_headers, int timeout_ms, int *status, char **body,
                 size_t *body_len)
{
    int64_t deadline = fo_wsnet_deadline(timeout_ms);
    char err[512], req[2048], te[64], cl[64];
    char *buf = NULL;
    size_t len = 0, head_len = 0, blen;
    int fd = -1, rc, n;

    *body = NULL;
    *status = 0;
    if (!host)
        host = "127.0.0.1";
    rc = fo_wsnet_tcp_connect(host, port, 0, deadline, &fd, err, sizeof(err));
    if (rc)
        return rc;
    if (ca_file && (rc = fo_wsnet_tls_start(fd, ca_file, host, deadline, err, sizeof(err)))) {
        close(fd);
        return rc;
    }
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nConnection: close\r\n%s\r\n", target,
                 strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port,
                 extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(req)) {
        fo_wsnet_close(fd);
        return FO_WS_EIO;
    }
    rc = fo_wsnet_write_all(fd, req, (size_t)n, deadline, err, sizeof(err));
    if (!rc)
        rc = fo_wsnet_read_response(fd, deadline, true, &buf, &len, &head_len, err, sizeof(err));
    fo_wsnet_close(fd);
    if (rc)
        return rc;
    *status = fo_wsnet_status(buf);
    blen = len - head_len;
    if (fo_wsnet_header(buf, head_len, "Transfer-Encoding", te, sizeof(te)) &&
        fo_wsnet_has_token(te, "chunked")) {
        long d = dechunk(buf + head_len, blen);
        if (d < 0) {
            free(buf);
            return FO_WS_EPROTO;
        }
        blen = (size_t)d;
    } else if (fo_wsnet_header(buf, head_len, "Content-Length", cl, sizeof(cl))) {
        unsigned long want = strtoul(cl, NULL, 10);
        if (want < blen)
            blen = want;
    }
    memmove(buf, buf + head_len, blen);
    buf[blen] = 0;
    *body = buf;
    if (body_len)
        *body_len = blen;
    return 0;
}
