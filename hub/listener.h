/* listener.h - the hub's port: accepts TCP connections on the loop, reads each request's
 * head and routes it. WebSocket upgrades on /v1/ws are the hub's own: this module checks
 * the handshake (RFC 6455 4.2: version 13, a key, the flushout.v1 subprotocol when one is
 * asked for, the token when --auth is set), answers 101 and hands the socket to a new
 * session (session.h), which frames it itself. A WebSocket upgrade on /v1/console/feed is
 * the hub's own as well: the socket goes to the console's feed (console.h), after the
 * console's access check (401, 403; 503 when too many feeds are open). Every other request (GET /healthz,
 * /metrics, /v1/models/..., the static files, upgrades elsewhere) is given to libwebsockets
 * with the bytes already read (lws_adopt_socket_vhost_readbuf): lws serves HTTP, the hub
 * serves WebSockets.
 *
 * Refusals are plain HTTP/1.1 answers followed by a close: 400 (a malformed head or
 * handshake), 401 (missing or bad token; the body says why: auth.h, jwt.h), 426 (a WebSocket version other than 13), 431
 * (a head over 8 KiB), 503 (shutting down, or --max-connections reached), 429 with
 * Retry-After (--conn-rate: too many new WebSockets from the address; limits.h). A connection that has not sent a whole head
 * within 30 s is closed. */
#ifndef FO_LISTENER_H
#define FO_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct fo_hub fo_hub;
typedef struct fo_pending_conn fo_pending_conn;

typedef struct fo_listener {
    fo_hub *hub;
    int fd;
    uv_poll_t poll;
    bool open;
    fo_pending_conn *pending; /* connections whose head is not read yet */
    int port;                 /* the port actually bound */
} fo_listener;

/* Binds and listens on host:port (port 0: an ephemeral one, see l->port). 0, or -1 with
 * the reason logged. */
int fo_listener_start(fo_listener *l, fo_hub *h, const char *host, int port);
/* Closes the listening socket and the connections still sending their head. */
void fo_listener_stop(fo_listener *l);
/* Once a second: closes connections whose head did not come in time. */
void fo_listener_sweep(fo_listener *l, uint64_t now_ms);

#endif
