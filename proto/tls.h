/* tls.h - TLS as a byte transformer (OpenSSL), for the hub's own sockets and the C clients.
 *
 * The caller does all the I/O: it reads ciphertext from its socket however it likes (a
 * recv into a shared buffer, a libuv read callback) and hands it in; it writes out the
 * ciphertext this module has ready, whenever and in as many pieces as the socket takes.
 * OpenSSL sees neither the socket nor the loop: its BIO reads from the bytes handed in
 * (by reference, no copy) and appends what it writes to one buffer per connection. So a
 * corked write stays one send(): the caller encrypts the whole pack, then sends the
 * ciphertext once.
 *
 * Server contexts load a certificate chain and key (PEM); client contexts verify the peer
 * (the system's CAs, or one CA file) and its name (DNS name or IP address), always: there
 * is no switch to turn verification off. TLS 1.2 and 1.3. Not thread-safe per connection;
 * contexts may be shared between threads. */
#ifndef FO_TLS_H
#define FO_TLS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fo_tls_ctx fo_tls_ctx;
typedef struct fo_tls fo_tls;

/* Results of fo_tls_read (bytes are > 0). */
enum {
    FO_TLS_AGAIN = 0,   /* every byte handed in is used: read more from the socket */
    FO_TLS_CLOSED = -1, /* the peer ended TLS (close_notify) */
    FO_TLS_ERROR = -2,  /* a TLS failure: fo_tls_error() says which; the connection is over */
    FO_TLS_HTTP = -3,   /* a server got plaintext HTTP (someone used http:// or ws://) */
};

/* A server context from a PEM certificate chain and private key. NULL with one sentence in
 * why (which file, what is wrong with it). */
fo_tls_ctx *fo_tls_ctx_server(const char *cert_file, const char *key_file, char *why, size_t n);
/* A client context that verifies the peer with ca_file's certificates (PEM), or the
 * system's CAs when ca_file is NULL or empty. NULL with a sentence in why. */
fo_tls_ctx *fo_tls_ctx_client(const char *ca_file, char *why, size_t n);
void fo_tls_ctx_free(fo_tls_ctx *c);

/* A connection: a server one when server_name is NULL and the context is a server's,
 * else a client one that sends server_name (SNI, when it is not an address) and requires
 * the certificate to match it. NULL on out-of-memory. */
fo_tls *fo_tls_new(fo_tls_ctx *c, const char *server_name);
void fo_tls_free(fo_tls *t);

/* Client: starts (or continues) the handshake; its output is then pending. 1 when the
 * handshake is done, 0 while it waits for the peer, FO_TLS_ERROR. */
int fo_tls_handshake(fo_tls *t);
/* Whether the handshake is done (application data may be written). */
bool fo_tls_ready(const fo_tls *t);

/* Hands in ciphertext read from the socket. The bytes are borrowed until fo_tls_read
 * returns FO_TLS_AGAIN (or fails): call it until then before reading the socket again. */
void fo_tls_input(fo_tls *t, const unsigned char *p, size_t len);
/* Decrypts into out: the number of bytes (> 0; call again), or FO_TLS_AGAIN when all the
 * input is used, FO_TLS_CLOSED, FO_TLS_ERROR, FO_TLS_HTTP. Drives the handshake too: look
 * at fo_tls_pending afterwards, there may be something to send even with nothing read. */
long fo_tls_read(fo_tls *t, unsigned char *out, size_t cap);

/* For a caller that stops calling fo_tls_read before FO_TLS_AGAIN (its buffer is full):
 * the input not read yet is copied, so the socket's buffer may be reused; fo_tls_read
 * goes on from it later. 0, or FO_TLS_ERROR (out of memory). */
int fo_tls_hold(fo_tls *t);
/* Whether fo_tls_read has something without more input (held input, or decrypted bytes
 * that did not fit the last call's buffer). */
bool fo_tls_buffered(const fo_tls *t);

/* Encrypts all of p (after the handshake) into the pending output. 0, or FO_TLS_ERROR. */
int fo_tls_write(fo_tls *t, const void *p, size_t len);
/* Queues a close_notify (once). */
void fo_tls_shutdown(fo_tls *t);
/* The ciphertext waiting to be sent: its length, *p its start (valid until the next call
 * on t). */
size_t fo_tls_pending(fo_tls *t, const unsigned char **p);
/* n bytes of the pending output went out. */
void fo_tls_sent(fo_tls *t, size_t n);

/* Sends the pending output on a non-blocking socket (send, MSG_NOSIGNAL) until it is all
 * out or the socket is full. The bytes still pending (0: all sent), or -1 when the socket
 * failed (errno). */
long fo_tls_send_fd(fo_tls *t, int fd);

/* recv(2) through TLS on a socket (blocking or not): one recv of ciphertext unless
 * decrypted bytes are already there. > 0 plaintext bytes; 0 at the end (EOF or
 * close_notify); -1 with errno: EAGAIN (nothing whole yet), EPROTO (a TLS failure:
 * fo_tls_error), or recv's. What TLS has to say meanwhile (a key update) is sent. */
long fo_tls_recv_fd(fo_tls *t, int fd, void *buf, size_t cap);

/* The last failure, one sentence ("the hub's certificate is not trusted: self-signed
 * certificate", "unexpected message", ...). */
const char *fo_tls_error(const fo_tls *t);
/* Whether the last failure was the peer's certificate failing verification. */
bool fo_tls_verify_failed(const fo_tls *t);

#endif
