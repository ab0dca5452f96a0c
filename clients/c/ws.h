/* ws.h - a lean RFC 6455 WebSocket client connection on a libuv loop (internal to
 * libflushout-client; names fo_cws_* so they never meet the test helpers' fo_ws_*).
 *
 * Why not the libwebsockets client: the library must not log or touch process-wide state
 * (lws's log level is global), must close like a libuv handle (one close path, memory
 * released when the last handle is closed; a foreign-loop lws context needs two
 * lws_context_destroy calls around a drained loop) and must not load plugins at run time.
 * One connection is one object: resolve, connect, (TLS,) upgrade, then frames. wss:// through
 * proto/tls.h (the peer verified against the context's CAs and the host name); no
 * extensions. Frames sent are binary and masked with a fresh key each; frames received
 * must be unmasked; pings are answered, fragmented messages reassembled. The framing (key
 * and accept, frame build, the checks of frames received) is proto/ws.h's: this file does
 * the I/O. */
#ifndef FO_CLIENT_WS_H
#define FO_CLIENT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct fo_cws fo_cws;

typedef struct fo_cws_config {
    const char *host; /* name or address, copied */
    int port;
    const char *path;            /* request target with any query, e.g. "/v1/ws"; copied */
    const char *protocol;        /* Sec-WebSocket-Protocol to ask for and require; copied */
    const char *token;           /* NULL, or sent as `Authorization: Bearer TOKEN`; copied */
    uint32_t connect_timeout_ms; /* resolve + connect + upgrade; 0: none */
    uint32_t ping_ms;   /* ping after this much silence, fail when unanswered as long; 0: off */
    size_t max_message; /* larger inbound messages fail the connection */
    struct fo_tls_ctx *tls; /* wss: a client context (proto/tls.h), borrowed for the
                             * connection's life; NULL: ws */
} fo_cws_config;

typedef struct fo_cws_callbacks {
    /* The upgrade succeeded: fo_cws_send may be called from now on. */
    void (*on_open)(fo_cws *ws, void *data);
    /* One complete message (borrowed for the call). */
    void (*on_message)(fo_cws *ws, const unsigned char *p, size_t len, bool binary, void *data);
    /* The connection is over (never opened, lost, or closed by the peer): `why` says how,
     * for people. Called at most once, and never after fo_cws_close. */
    void (*on_close)(fo_cws *ws, const char *why, void *data);
    /* Every handle is closed and the object is freed: always called exactly once. */
    void (*on_free)(void *data);
} fo_cws_callbacks;

/* Starts connecting. Callbacks run from the loop, never before this returns. NULL on
 * out-of-memory (then no callback runs). */
fo_cws *fo_cws_connect(uv_loop_t *loop, const fo_cws_config *cfg, const fo_cws_callbacks *cbs,
                       void *data);
/* Sends one binary message (copied). 0, FO_ESTATE when not open, FO_ENOMEM. */
int fo_cws_send(fo_cws *ws, const void *p, size_t len);
/* Bytes handed to the socket and not yet written. */
size_t fo_cws_backlog(const fo_cws *ws);
/* Ends the connection at once (no close handshake: the peer sees the TCP connection end).
 * No callback but on_free runs afterwards. Safe inside the object's own callbacks. */
void fo_cws_close(fo_cws *ws);

#endif
