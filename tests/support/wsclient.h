/* wsclient.h - a minimal RFC 6455 WebSocket client for the hub's integration tests: one TCP
 * connection over loopback (optionally TLS, proto/tls.h), blocking calls bounded by
 * millisecond timeouts, no extensions. Test-only (library fo_testsupport); it never logs and never aborts.
 *
 * Frames the client sends are masked (RFC 6455 5.3) with a fresh random key each. Frames it
 * receives must pass proto/ws.h's parser: unmasked, no RSV bits, lengths minimally encoded,
 * text and close reasons UTF-8, close codes valid on the wire. Control frames are handled
 * inside fo_ws_recv: a ping is answered with a pong and reading goes on, a pong is dropped, a
 * close is answered once (echoing its code) and reported. Fragmented messages are reassembled.
 *
 * The framing (Sec-WebSocket-Key/Accept, frame build, the checks of received frames, UTF-8 of
 * text) is proto/ws.h's; this file does the I/O. Nonces and masking keys come from OpenSSL's
 * RAND_bytes (pkg-config `libcrypto`, present because libwebsockets-dev pulls libssl-dev). */
#ifndef FO_TEST_WSCLIENT_H
#define FO_TEST_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/arena.h"
#include "proto/wire.h"

enum fo_ws_opcode {
    FO_WS_CONT = 0x0,
    FO_WS_TEXT = 0x1,
    FO_WS_BINARY = 0x2,
    FO_WS_CLOSE = 0x8,
    FO_WS_PING = 0x9,
    FO_WS_PONG = 0xa,
};

/* Errors, negative and apart from the FO_E* codes. fo_ws_error() says more. */
enum {
    FO_WS_ETIMEDOUT = -101, /* the deadline passed; the stream is intact (recv) or broken (send) */
    FO_WS_ECLOSED = -102,   /* a close frame arrived (fo_ws_close_code) or we already closed */
    FO_WS_EEOF = -103,      /* the TCP connection ended without a close frame */
    FO_WS_EIO = -104,       /* a socket call failed (errno in the message) */
    FO_WS_EPROTO = -105,    /* the peer broke RFC 6455 or sent a bad handshake response */
    FO_WS_EHTTP = -106,     /* the upgrade was refused: see fo_ws_result.http_status */
    FO_WS_EDECODE = -107,   /* a binary message that fo_wire_decode refused */
    FO_WS_EUNEXPECTED = -108, /* fo_ws_expect: a message of another type arrived */
    FO_WS_ETOOBIG = -109,     /* a message over fo_ws_options.max_message */
};

#define FO_WS_DEFAULT_TIMEOUT_MS 5000

typedef struct fo_ws_options {
    const char *host; /* numeric address: NULL = "127.0.0.1", or "::1" */
    int port;
    const char *path;          /* request target without the token: NULL = "/v1/ws" */
    const char *protocol;      /* Sec-WebSocket-Protocol: NULL = "flushout.v1" */
    bool no_protocol;          /* send no Sec-WebSocket-Protocol header at all */
    const char *bearer;        /* adds `Authorization: Bearer <bearer>` */
    const char *query_token;   /* adds `?token=<query_token>` (`&` if the path has a query); not
                                * escaped: pass URL-safe text */
    const char *extra_headers; /* raw lines, each ending in "\r\n", added to the request */
    int rcvbuf;                /* SO_RCVBUF set before connect (0: the system's default): a small
                                * one plus not calling recv makes a slow subscriber */
    int timeout_ms;            /* connect + handshake; 0 = FO_WS_DEFAULT_TIMEOUT_MS */
    size_t max_message;        /* largest message fo_ws_recv accepts; 0 = 256 MiB */
    const char *tls_ca;        /* wss: TLS verified against this CA file ("" = the system's
                                * CAs); NULL = plain ws */
    const char *tls_name;      /* the name the certificate must match; NULL = host */
} fo_ws_options;

/* Why a connect failed. */
typedef struct fo_ws_result {
    int rc;            /* FO_WS_E* */
    int http_status;   /* the response's status when rc is FO_WS_EHTTP (e.g. 401), else 0 */
    char message[512]; /* one sentence, with the status line or errno text */
} fo_ws_result;

/* A received message. `data` is borrowed: valid until the next call on the client. */
typedef struct fo_ws_message {
    int opcode; /* FO_WS_TEXT, FO_WS_BINARY or FO_WS_CLOSE */
    const char *data;
    size_t len;
    int close_code; /* FO_WS_CLOSE: the code, 1005 when the frame had none */
} fo_ws_message;

typedef struct fo_ws fo_ws;

/* Connects to host:port and performs the upgrade: checks the 101, Upgrade, Connection,
 * Sec-WebSocket-Accept and that any Sec-WebSocket-Protocol in the response was offered.
 * Returns the client, or NULL with *res filled (res may be NULL). */
fo_ws *fo_ws_connect(const fo_ws_options *o, fo_ws_result *res);
/* Closes the socket at once, without a close handshake. NULL is a no-op. */
void fo_ws_free(fo_ws *c);

/* The last error, as a sentence (empty when none). Borrowed from the client. */
const char *fo_ws_error(const fo_ws *c);
/* The subprotocol the server selected, or NULL when its response named none. */
const char *fo_ws_protocol(const fo_ws *c);
int fo_ws_fd(const fo_ws *c);
/* Code of the close frame received: 0 when none came, 1005 when it carried no code. */
int fo_ws_close_code(const fo_ws *c);
/* Pings the peer sent and we answered. */
unsigned fo_ws_pings_answered(const fo_ws *c);

/* Sends one frame, masked. `fin` false starts or continues a fragmented message (follow with
 * FO_WS_CONT frames). Returns 0, FO_WS_ETIMEDOUT (the stream is then unusable: part of a
 * frame may be out), FO_WS_EIO or FO_WS_ECLOSED (we already sent a close). */
int fo_ws_send_frame(fo_ws *c, int opcode, bool fin, const void *p, size_t n, int timeout_ms);
/* One unfragmented frame with the default timeout. */
int fo_ws_send(fo_ws *c, int opcode, const void *p, size_t n);
/* Bytes as they are, no framing (to break the framing on purpose). */
int fo_ws_send_raw(fo_ws *c, const void *p, size_t n, int timeout_ms);
/* fo_wire_encode(m) sent as one binary frame. */
int fo_ws_send_msg(fo_ws *c, const fo_msg *m);

/* Receives one whole message, answering pings on the way. Returns 0 (also for a close frame,
 * the first time: out->opcode is FO_WS_CLOSE; our close reply is sent before returning),
 * FO_WS_ETIMEDOUT, FO_WS_ECLOSED (after a close frame), FO_WS_EEOF, FO_WS_EIO, FO_WS_EPROTO,
 * FO_WS_ETOOBIG. timeout_ms 0 only looks at what is already there; < 0 = the default. */
int fo_ws_recv(fo_ws *c, int timeout_ms, fo_ws_message *out);
/* Receives one binary message and decodes it into `a` (generous limits, so that catch-up
 * pushes and big snapshots pass). A close frame is FO_WS_ECLOSED, a text frame FO_WS_EPROTO,
 * a decode failure FO_WS_EDECODE (the message names the field). */
int fo_ws_recv_msg(fo_ws *c, int timeout_ms, fo_arena *a, fo_msg *out);
/* fo_ws_recv_msg, then checks the type: another type is FO_WS_EUNEXPECTED, and the error
 * message describes what came instead (its type, rid, model, and for an `error` its code and
 * message). Nothing is skipped: the unexpected message is consumed and left in *out. */
int fo_ws_expect(fo_ws *c, fo_msg_type type, int timeout_ms, fo_arena *a, fo_msg *out);

/* One line about a decoded message (type, rid, model, and the fields that tell messages of
 * that type apart), for failure messages. Returns `out`. */
const char *fo_ws_describe(const fo_msg *m, char *out, size_t n);

/* True when a whole frame is already buffered (fo_ws_recv(c, 0, ...) will not time out). */
bool fo_ws_pending(const fo_ws *c);
/* Waits until one of `cs` has something to read (buffered or on its socket). Returns its
 * index, FO_WS_ETIMEDOUT or FO_WS_EIO. Entries may be NULL (skipped). */
int fo_ws_wait_any(fo_ws *const *cs, int n, int timeout_ms);

/* Starts the closing handshake (if we have not already) with `code`, then reads and drops
 * messages until the peer's close frame or EOF. Returns the peer's close code (> 0), or
 * FO_WS_ETIMEDOUT, FO_WS_EEOF (TCP closed first), FO_WS_EIO, FO_WS_EPROTO. The client still
 * has to be freed. */
int fo_ws_close(fo_ws *c, int code, int timeout_ms);

/* One HTTP/1.1 GET with `Connection: close`, for the hub's plain HTTP endpoints. On success
 * returns 0 with *status and a malloc'd, NUL-terminated *body (free it); headers are dropped.
 * `extra_headers` as in fo_ws_options (may be NULL). FO_WS_E* on failure. */
int fo_http_get(const char *host, int port, const char *target, const char *extra_headers,
                int timeout_ms, int *status, char **body, size_t *body_len);
/* fo_http_get over TLS, the server verified against ca_file ("" = the system's CAs). */
int fo_https_get(const char *ca_file, const char *host, int port, const char *target,
                 const char *extra_headers, int timeout_ms, int *status, char **body,
                 size_t *body_len);

/* The Sec-WebSocket-Accept for a key (RFC 6455 4.2.2): base64(SHA-1(key + GUID)). `out` gets
 * 28 characters and a NUL. Returns 0, or FO_WS_EIO if libcrypto failed. */
int fo_ws_accept_key(const char *key, char out[29]);

#endif
