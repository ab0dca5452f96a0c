#include "proto/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Output buffers bigger than this are freed once drained (an idle connection keeps none
 * of a large pack). */
#define OUT_KEEP 16384

struct fo_tls_ctx {
    SSL_CTX *ssl;
    bool server;
};

struct fo_tls {
    SSL *ssl;
    const unsigned char *in; /* ciphertext handed in and not yet read by OpenSSL */
    size_t in_len;
    unsigned char *held;     /* a copy of the input, fo_tls_hold */
    unsigned char *out;      /* ciphertext to send: out[out_off, out_len) */
    size_t out_len, out_off, out_cap;
    bool oom;                /* the BIO could not grow out */
    bool verify_failed;
    bool shut;
    char err[256];
};

/* ---- the BIO: reads the bytes handed in, appends writes to t->out ---------------------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *p, int n)
{
    fo_tls *t = BIO_get_data(b);
    size_t need = t->out_len + (size_t)n;

    BIO_clear_retry_flags(b);
    if (n <= 0)
        return 0;
    if (need > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 4096;
        unsigned char *nb;
        while (cap < need)
            cap *= 2;
        if (!(nb = realloc(t->out, cap))) {
            t->oom = true;
            return -1;
        }
        t->out = nb;
        t->out_cap = cap;
    }
    memcpy(t->out + t->out_len, p, (size_t)n);
    t->out_len += (size_t)n;
    return n;
}

static int bio_read(BIO *b, char *p, int n)
{
    fo_tls *t = BIO_get_data(b);
    size_t k;

    BIO_clear_retry_flags(b);
    if (n <= 0)
        return 0;
    if (!t->in_len) {
        BIO_set_retry_read(b);
        return -1;
    }
    k = t->in_len < (size_t)n ? t->in_len : (size_t)n;
    memcpy(p, t->in, k);
    t->in += k;
    t->in_len -= k;
    return (int)k;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    fo_tls *t = BIO_get_data(b);

    (void)num, (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING: return t ? (long)(t->in_len > LONG_MAX ? LONG_MAX : t->in_len) : 0;
    case BIO_CTRL_WPENDING: return t ? (long)(t->out_len - t->out_off) : 0;
    default: return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_init_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "flushout tls");

    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
        BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
        bio_method = m;
    else if (m)
        BIO_meth_free(m);
}

/* ---- errors ---------------------------------------------------------------------------- */

/* SSL_get_error needs an empty error queue before the call. This module empties it after
 * every failure, but other users of OpenSSL in the process may not: clear it only when it
 * holds something (ERR_clear_error itself costs more than an SSL_write of a small record's
 * bookkeeping, and the hot path calls this per read and per write). */
static void queue_empty(void)
{
    if (ERR_peek_error())
        ERR_clear_error();
}

/* The first queued OpenSSL error into buf ("no certificate", ...), the queue emptied. */
static void take_error(char *buf, size_t n, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    snprintf(buf, n, "%s", reason ? reason : fallback);
    ERR_clear_error();
}

/* ---- contexts -------------------------------------------------------------------------- */

static fo_tls_ctx *ctx_new(bool server, char *why, size_t n)
{
    fo_tls_ctx *c = calloc(1, sizeof(*c));

    pthread_once(&bio_once, bio_init_method);
    if (!c || !bio_method || !(c->ssl = SSL_CTX_new(server ? TLS_server_method()
                                                           : TLS_client_method()))) {
        snprintf(why, n, "out of memory setting up TLS");
        free(c);
        return NULL;
    }
    c->server = server;
    SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
    /* Idle connections keep no record buffers; no renegotiation (TLS 1.2). */
    SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION);
    return c;
}

fo_tls_ctx *fo_tls_ctx_server(const char *cert_file, const char *key_file, char *why, size_t n)
{
    fo_tls_ctx *c = ctx_new(true, why, n);
    char e[200];

    if (!c)
        return NULL;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(c->ssl, cert_file) != 1) {
        take_error(e, sizeof(e), "unreadable");
        snprintf(why, n, "cannot use the TLS certificate %s: %s (a PEM certificate chain)",
                 cert_file, e);
    } else if (SSL_CTX_use_PrivateKey_file(c->ssl, key_file, SSL_FILETYPE_PEM) != 1) {
        bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
        take_error(e, sizeof(e), "unreadable");
        if (mismatch)
            snprintf(why, n, "the TLS key %s does not belong to the certificate %s", key_file,
                     cert_file);
        else
            snprintf(why, n, "cannot use the TLS key %s: %s (a PEM private key)", key_file, e);
    } else if (SSL_CTX_check_private_key(c->ssl) != 1) {
        take_error(e, sizeof(e), "mismatch");
        snprintf(why, n, "the TLS key %s does not belong to the certificate %s: %s",
                 key_file, cert_file, e);
    } else {
        /* Clients here do not resume sessions: no tickets after each handshake. */
        SSL_CTX_set_num_tickets(c->ssl, 0);
        return c;
    }
    fo_tls_ctx_free(c);
    return NULL;
}

fo_tls_ctx *fo_tls_ctx_client(const char *ca_file, char *why, size_t n)
{
    fo_tls_ctx *c = ctx_new(false, why, n);
    char e[200];

    if (!c)
        return NULL;
    ERR_clear_error();
    SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    if (ca_file && *ca_file) {
        if (SSL_CTX_load_verify_locations(c->ssl, ca_file, NULL) != 1) {
            take_error(e, sizeof(e), "unreadable");
            snprintf(why, n, "cannot load the CA file %s: %s (PEM certificates)", ca_file, e);
            fo_tls_ctx_free(c);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(c->ssl) != 1) {
        take_error(e, sizeof(e), "not found");
        snprintf(why, n, "cannot load the system's CA certificates: %s", e);
        fo_tls_ctx_free(c);
        return NULL;
    }
    return c;
}

void fo_tls_ctx_free(fo_tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ssl);
    free(c);
}

/* ---- connections ----------------------------------------------------------------------- */

fo_tls *fo_tls_new(fo_tls_ctx *c, const char *server_name)
{
    fo_tls *t = calloc(1, sizeof(*t));
    BIO *b;

    if (!t)
        return NULL;
    if (!(t->ssl = SSL_new(c->ssl)) || !(b = BIO_new(bio_method))) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b);
    if (c->server) {
        SSL_set_accept_state(t->ssl);
        return t;
    }
    SSL_set_connect_state(t->ssl);
    if (server_name && *server_name) {
        unsigned char a[16];
        bool ip = inet_pton(AF_INET, server_name, a) == 1 || inet_pton(AF_INET6, server_name, a) == 1;
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name)
                    : SSL_set_tlsext_host_name(t->ssl, server_name) &&
                          SSL_set1_host(t->ssl, server_name);
        if (!ok) {
            fo_tls_free(t);
            ERR_clear_error();
            return NULL;
        }
    }
    return t;
}

void fo_tls_free(fo_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t->out);
    free(t->held);
    free(t);
}

bool fo_tls_ready(const fo_tls *t)
{
    return SSL_is_init_finished(t->ssl);
}

/* Records why the operation that returned rc failed; returns the fo_tls_read code. */
static long failed(fo_tls *t, int rc)
{
    int e = SSL_get_error(t->ssl, rc);
    unsigned long q = ERR_peek_error();
    long vr;

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        queue_empty();
        return FO_TLS_AGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return FO_TLS_CLOSED;
    }
    if (t->oom) {
        snprintf(t->err, sizeof(t->err), "out of memory");
        ERR_clear_error();
        return FO_TLS_ERROR;
    }
    if (ERR_GET_LIB(q) == ERR_LIB_SSL && ERR_GET_REASON(q) == SSL_R_HTTP_REQUEST) {
        snprintf(t->err, sizeof(t->err), "plaintext HTTP on a TLS port");
        ERR_clear_error();
        return FO_TLS_HTTP;
    }
    if (!SSL_is_server(t->ssl) && (vr = SSL_get_verify_result(t->ssl)) != X509_V_OK) {
        t->verify_failed = true;
        snprintf(t->err, sizeof(t->err), "the server's certificate is not trusted: %s",
                 X509_verify_cert_error_string(vr));
        ERR_clear_error();
        return FO_TLS_ERROR;
    }
    take_error(t->err, sizeof(t->err),
               e == SSL_ERROR_SYSCALL ? "the connection ended in the handshake" : "TLS failure");
    return FO_TLS_ERROR;
}

int fo_tls_handshake(fo_tls *t)
{
    int rc;
    long f;

    queue_empty();
    rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return 1;
    f = failed(t, rc);
    return f == FO_TLS_AGAIN ? 0 : FO_TLS_ERROR;
}

static void drop_held(fo_tls *t)
{
    free(t->held);
    t->held = NULL;
}

void fo_tls_input(fo_tls *t, const unsigned char *p, size_t len)
{
    drop_held(t);
    t->in = p;
    t->in_len = len;
}

long fo_tls_read(fo_tls *t, unsigned char *out, size_t cap)
{
    int rc;
    long f;

    queue_empty();
    rc = SSL_read(t->ssl, out, cap > INT_MAX ? INT_MAX : (int)cap);
    if (rc > 0)
        return rc;
    f = failed(t, rc);
    if (f == FO_TLS_AGAIN && t->in_len)
        return FO_TLS_AGAIN; /* cannot happen: OpenSSL reads until the BIO is empty */
    if (f != FO_TLS_AGAIN)
        t->in = NULL, t->in_len = 0;
    if (!t->in_len)
        drop_held(t);
    return f;
}

int fo_tls_hold(fo_tls *t)
{
    unsigned char *c;

    if (!t->in_len || t->held) /* held already: in points into it */
        return 0;
    if (!(c = malloc(t->in_len)))
        return FO_TLS_ERROR;
    memcpy(c, t->in, t->in_len);
    drop_held(t);
    t->held = c;
    t->in = c;
    return 0;
}

bool fo_tls_buffered(const fo_tls *t)
{
    return t->in_len > 0 || SSL_pending(t->ssl) > 0;
}

int fo_tls_write(fo_tls *t, const void *p, size_t len)
{
    const unsigned char *b = p;

    queue_empty();
    while (len) {
        int chunk = len > INT_MAX ? INT_MAX : (int)len, rc = SSL_write(t->ssl, b, chunk);
        if (rc <= 0) {
            failed(t, rc);
            if (!t->err[0])
                snprintf(t->err, sizeof(t->err), "TLS write failed");
            return FO_TLS_ERROR;
        }
        b += rc;
        len -= (size_t)rc;
    }
    return 0;
}

void fo_tls_shutdown(fo_tls *t)
{
    if (t->shut)
        return;
    t->shut = true;
    ERR_clear_error();
    if (SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
}

size_t fo_tls_pending(fo_tls *t, const unsigned char **p)
{
    *p = t->out + t->out_off;
    return t->out_len - t->out_off;
}

void fo_tls_sent(fo_tls *t, size_t n)
{
    t->out_off += n;
    if (t->out_off < t->out_len)
        return;
    t->out_off = t->out_len = 0;
    if (t->out_cap > OUT_KEEP) {
        free(t->out);
        t->out = NULL;
        t->out_cap = 0;
    }
}

long fo_tls_send_fd(fo_tls *t, int fd)
{
    while (t->out_off < t->out_len) {
        ssize_t n = send(fd, t->out + t->out_off, t->out_len - t->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0)
            return -1;
        fo_tls_sent(t, (size_t)n);
    }
    return (long)(t->out_len - t->out_off);
}

long fo_tls_recv_fd(fo_tls *t, int fd, void *buf, size_t cap)
{
    unsigned char in[16384 + 512]; /* one record */
    ssize_t r;
    long d = FO_TLS_AGAIN;

    if (fo_tls_buffered(t))
        d = fo_tls_read(t, buf, cap);
    if (d == FO_TLS_AGAIN) {
        if ((r = recv(fd, in, sizeof(in), 0)) <= 0)
            return r;
        fo_tls_input(t, in, (size_t)r);
        d = fo_tls_read(t, buf, cap);
        if (d > 0 && fo_tls_hold(t))
            d = FO_TLS_ERROR;
    }
    fo_tls_send_fd(t, fd);
    if (d > 0)
        return d;
    if (d == FO_TLS_CLOSED)
        return 0;
    errno = d == FO_TLS_AGAIN ? EAGAIN : EPROTO;
    return -1;
}

const char *fo_tls_error(const fo_tls *t)
{
    return t->err[0] ? t->err : "TLS failure";
}

bool fo_tls_verify_failed(const fo_tls *t)
{
    return t->verify_failed;
}
