/* ws.h - a lean RFC 6455 WebSocket client on libuv, for load generation.
 *
 * What it does: TCP connect (optionally from a chosen local address), the HTTP/1.1
 * upgrade with `Sec-WebSocket-Protocol: flushout.v1` (or any subprotocol given), the
 * Sec-WebSocket-Accept check, parsing of server frames (the three length encodings,
 * fragmentation, ping/pong, close), and masked client frames. The framing itself (key and
 * accept, headers, masking, the frame parser) is proto/ws.h's; this file does the I/O.
 *
 * Why it is fast: fo_ws_send() masks the payload straight into the connection's pending
 * buffer (a frame is "pre-masked" when the loop writes it) and marks the connection
 * dirty. A uv_prepare handle of the context, which runs once per loop iteration just
 * before the loop polls, hands every dirty connection's pending bytes to the kernel:
 * uv_try_write first, and one uv_write for whatever did not fit. So all the frames that
 * became due on a connection during one loop iteration leave in one write.
 *
 * wss://: with a TLS context in fo_ws_ctx.tls, each connection does the TLS handshake
 * (proto/tls.h: the hub verified against the context's CAs and the connection's name)
 * before the upgrade; the batched write encrypts the pending frames as a whole, then
 * writes the ciphertext the same way.
 *
 * Not supported (not needed against flushout-hub): extensions (permessage-deflate is never
 * offered), redirects, HTTP proxies. */
#ifndef FO_WS_H
#define FO_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/sendq.h"
#include "proto/tls.h"
#include "proto/ws.h"

/* Errors of our own, beside libuv's negative UV_E* codes. */
enum {
    FO_WS_EHANDSHAKE = -30001, /* the upgrade response was not a valid 101 (see http_status) */
    FO_WS_EPROTO = -30002,     /* the server broke RFC 6455 framing */
    FO_WS_ECLOSED = -30003,    /* the server sent a close frame (see close_code) */
    FO_WS_ETOOBIG = -30004,    /* a message above FO_WS_MAX_MESSAGE */
    FO_WS_ETLS = -30005,       /* TLS failed (certificate not trusted, ...): fo_ws.tls_why */
};

#define FO_WS_MAX_MESSAGE ((size_t)64 << 20)

/* Opcodes: FO_WS_OP_* of proto/ws.h. */

typedef enum fo_ws_state {
    FO_WS_IDLE = 0,
    FO_WS_CONNECTING, /* TCP connect in progress */
    FO_WS_TLS,        /* wss: TLS handshake in progress */
    FO_WS_HANDSHAKE,  /* request sent, waiting for the 101 */
    FO_WS_OPEN,
    FO_WS_CLOSING, /* our close frame is queued; the socket closes once it is written */
    FO_WS_CLOSED,  /* uv_close issued; on_close is pending or done */
} fo_ws_state;

typedef struct fo_ws fo_ws;

/* Shared by all connections of one loop: the write batching and the totals. */
typedef struct fo_ws_ctx {
    uv_loop_t *loop;
    uv_prepare_t prepare;
    fo_ws *dirty; /* connections with pending bytes, linked by dirty_next */
    uint64_t rng; /* xorshift64* state for mask keys and handshake keys */
    uint64_t now; /* uv_hrtime() when the current read callback started (ns) */
    /* totals since init: WebSocket frames and wire bytes (headers included) */
    uint64_t frames_in, bytes_in, frames_out, bytes_out;
    uint64_t writes; /* socket writes (uv_try_write or uv_write calls, batched sends) */
    fo_sendq *sendq; /* each flush's writes in one io_uring submission (NULL: one each) */
    fo_tls_ctx *tls; /* wss: set by the owner after init (borrowed); NULL: ws */
    const char *tls_name; /* the name the hub's certificate must carry (borrowed) */
    unsigned char crx[65536]; /* wss: ciphertext read, decrypted at once */
} fo_ws_ctx;

/* Fires once: status 0 when the connection is open, else the reason it failed (then
 * on_close follows). */
typedef void (*fo_ws_open_cb)(fo_ws *ws, int status);
/* One complete message (fragments reassembled), binary or text. `data` is valid only
 * during the call. ws->ctx->now is the time the bytes were read. */
typedef void (*fo_ws_message_cb)(fo_ws *ws, int opcode, const char *data, size_t len);
/* Fires exactly once after a successful fo_ws_connect, when the socket is closed: the
 * fo_ws may be freed from here on. `status` is 0 after our own fo_ws_close, else why the
 * connection ended (UV_EOF, FO_WS_ECLOSED, FO_WS_EPROTO, ...). */
typedef void (*fo_ws_close_cb)(fo_ws *ws, int status);

struct fo_ws {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    fo_ws_ctx *ctx;
    void *data; /* the owner's */
    fo_ws_state state;
    int status;          /* first error, reported to on_close */
    int http_status;     /* status code of the upgrade response, 0 before it */
    uint16_t close_code; /* from the server's close frame, 0 when none */
    fo_ws_open_cb on_open;
    fo_ws_message_cb on_message;
    fo_ws_close_cb on_close;
    char key[FO_WS_KEY_SIZE]; /* our Sec-WebSocket-Key */
    const char *protocol;     /* borrowed, must outlive the connection */
    char *rx;                 /* bytes read, not yet parsed */
    size_t rx_len, rx_cap;
    fo_ws_parser parser; /* frames in: reassembles fragments, answers what to close with */
    char *tx;            /* frames queued, not yet handed to the kernel */
    size_t tx_len, tx_cap;
    char *wr; /* the bytes of the uv_write in flight */
    size_t wr_len, wr_cap;
    bool writing, dirty, open_fired;
    bool in_batch; /* tx is queued in ctx->sendq: untouched until its completion */
    fo_ws *dirty_next, *dirty_prev;
    fo_tls *tls;           /* wss */
    const char *tls_name;  /* wss: the name the hub's certificate must carry when it is
                              not ctx->tls_name (borrowed; set after fo_ws_connect, which
                              clears it, before the loop runs again) */
    char tls_why[160];     /* why TLS failed (FO_WS_ETLS) */
};

/* Starts the context's prepare handle on `loop`. 0 or a UV_E* code. */
int fo_ws_ctx_init(fo_ws_ctx *ctx, uv_loop_t *loop);
/* Closes the prepare handle (async; let uv_run drain). Close every fo_ws first. */
void fo_ws_ctx_close(fo_ws_ctx *ctx);
/* Writes every dirty connection now (the prepare handle does this once per iteration). */
void fo_ws_ctx_flush(fo_ws_ctx *ctx);
/* A random 64-bit number from the context's generator (not cryptographic). */
uint64_t fo_ws_rand(fo_ws_ctx *ctx);

/* Connects to `dst` (IPv4 or IPv6), from `src` when not NULL (its port should be 0), and
 * upgrades with GET `path` (including any query), Host `host` and subprotocol `protocol`
 * (both borrowed; `protocol` must outlive the connection). `ws` must be zeroed or fresh
 * from a previous close. Returns 0, after which on_open and then on_close will fire (an
 * immediate failure is reported through them on a later loop iteration); or UV_EINVAL,
 * UV_ENOMEM with no callback. */
int fo_ws_connect(fo_ws_ctx *ctx, fo_ws *ws, const struct sockaddr *dst, const struct sockaddr *src,
                  const char *host, const char *path, const char *protocol, fo_ws_open_cb on_open,
                  fo_ws_message_cb on_message, fo_ws_close_cb on_close);

/* Queues one masked binary frame (FIN set) carrying `len` bytes; it leaves in the next
 * batched write. 0, UV_ENOMEM, or UV_ENOTCONN when the connection is not open. */
int fo_ws_send(fo_ws *ws, const void *payload, size_t len);
/* Same for any opcode (control frames must carry at most 125 bytes). */
int fo_ws_send_frame(fo_ws *ws, int opcode, const void *payload, size_t len);
/* Bytes queued and not yet written by the kernel (pending plus in-flight write). */
size_t fo_ws_backlog(const fo_ws *ws);

/* Sends a close frame with `code` (when open) and closes the socket when the server's
 * close frame or EOF arrives (closing first would turn the FIN into an RST when bytes are
 * unread); before the connection is open it closes at once. on_close follows with status
 * 0. Safe in any state and more than once; use fo_ws_abort to stop waiting. */
void fo_ws_close(fo_ws *ws, uint16_t code);
/* Closes the socket now, whatever the state; on_close follows (status 0, or the error
 * already recorded). */
void fo_ws_abort(fo_ws *ws);

/* A static description of an error code (ours or libuv's). */
const char *fo_ws_strerror(int code);

#endif
