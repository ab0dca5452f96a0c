/* relay.h - HTTP over TLS for libwebsockets: the listener decrypts a request itself (it
 * must read the request line to route it, listener.h), so lws cannot take the TLS socket
 * over. Instead lws adopts one end of a socketpair and serves plaintext there, and the
 * relay carries bytes between the client's TLS socket and the other end: decrypted
 * requests in, encrypted answers out, on the hub's loop.
 *
 * Backpressure both ways: while lws has not read what was decrypted for it, the client's
 * socket is not read; while the client has not taken an encrypted answer, lws's end is
 * not read. When lws closes its end (an answer with Connection: close, lws's own
 * timeouts) the relay sends close_notify and closes the client's socket; when the client
 * ends, lws's end is shut for writing so that lws sees EOF. Only the few HTTP routes take
 * this path (/healthz, /metrics, /v1/models/..., static files); WebSockets never do. */
#ifndef FO_RELAY_H
#define FO_RELAY_H

#include <stddef.h>
#include <uv.h>

#include "proto/tls.h"

typedef struct fo_hub fo_hub;
typedef struct fo_relay fo_relay;

/* Takes over fd (the client's socket), its poll watcher (allocated, not started) and tls,
 * and hands lws a socketpair end with the plaintext read so far (`head`, copied). On
 * failure everything taken over is closed and freed. */
void fo_relay_open(fo_hub *h, int fd, uv_poll_t *poll, fo_tls *tls, const unsigned char *head,
                   size_t len);
/* Closes every relay (at shutdown, before lws is destroyed). */
void fo_relay_close_all(fo_hub *h);

#endif
