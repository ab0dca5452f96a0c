/* wsnet.h - the plumbing under wsclient.c: monotonic deadlines, a non-blocking loopback TCP
 * connect, writes bounded by a deadline, reading and parsing an HTTP response head. Internal
 * to fo_testsupport (tests use wsclient.h); kept apart so that each file does one job.
 *
 * Every function that can fail returns 0 or a negative FO_WS_E* code and, where it takes
 * `err`/`errlen`, writes one sentence there. */
#ifndef FO_TEST_WSNET_H
#define FO_TEST_WSNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* TLS on a connected socket (proto/tls.h): verifies the server against ca_file ("" or
 * NULL: the system's CAs) and `name`; from then on fo_wsnet_write_all, fo_wsnet_recv and
 * fo_wsnet_read_response go through it, until fo_wsnet_close. */
int fo_wsnet_tls_start(int fd, const char *ca_file, const char *name, int64_t deadline,
                       char *err, size_t errlen);
/* recv(2), decrypted when the socket has TLS (0: EOF or close_notify; -1 with errno EAGAIN
 * when nothing whole came yet, EPROTO on a TLS failure). */
ssize_t fo_wsnet_recv(int fd, void *buf, size_t cap);
/* Whether TLS holds bytes fo_wsnet_recv returns without the socket being readable. */
bool fo_wsnet_buffered(int fd);
/* Closes the socket and drops its TLS. */
void fo_wsnet_close(int fd);
/* Milliseconds on CLOCK_MONOTONIC. */
int64_t fo_wsnet_now_ms(void);
/* now + timeout_ms; a negative timeout means FO_WS_DEFAULT_TIMEOUT_MS. */
int64_t fo_wsnet_deadline(int timeout_ms);
/* Milliseconds left until the deadline, 0 when it has passed (a poll() timeout). */
int fo_wsnet_remaining(int64_t deadline);
/* Formats into buf and returns rc: `return fo_wsnet_fail(err, n, FO_WS_EIO, "...")`. */
int fo_wsnet_fail(char *buf, size_t n, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* poll() for `events` until the deadline: 0, FO_WS_ETIMEDOUT or FO_WS_EIO. */
int fo_wsnet_wait_fd(int fd, short events, int64_t deadline);
/* All n bytes before the deadline (MSG_NOSIGNAL): 0, FO_WS_ETIMEDOUT or FO_WS_EIO. */
int fo_wsnet_write_all(int fd, const void *p, size_t n, int64_t deadline, char *err, size_t errlen);
/* A non-blocking, close-on-exec, TCP_NODELAY socket connected to a numeric IPv4 or IPv6
 * address (NULL: 127.0.0.1), with SO_RCVBUF set first when rcvbuf > 0. */
int fo_wsnet_tcp_connect(const char *host, int port, int rcvbuf, int64_t deadline, int *out,
                         char *err, size_t errlen);
/* Reads until a response head ends ("\r\n\r\n"), or until EOF when to_eof. *buf gets every
 * byte read (malloc'd, NUL-terminated; free it), *head_len the head's length with its blank
 * line. */
int fo_wsnet_read_response(int fd, int64_t deadline, bool to_eof, char **buf, size_t *len,
                           size_t *head_len, char *err, size_t errlen);
/* The status of "HTTP/1.x NNN ...", or -1. */
int fo_wsnet_status(const char *head);
/* The head's first line, cut to n - 1 bytes. */
void fo_wsnet_first_line(const char *head, char *out, size_t n);
/* Header `name` (case-insensitive) of the head, its value trimmed into out. */
bool fo_wsnet_header(const char *head, size_t head_len, const char *name, char *out, size_t n);
/* Whether a comma-separated header value holds `token` (case-insensitive). */
bool fo_wsnet_has_token(const char *list, const char *token);

#endif
