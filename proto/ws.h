/* ws.h - RFC 6455 WebSocket framing without I/O: the handshake key and accept value, frame
 * headers, masking, and a parser that turns a byte stream into messages and control frames.
 *
 * One module for every WebSocket endpoint of the project (libflushout-client, flushout-bench,
 * the test client; the hub may use the header builder). Each of them keeps its own sockets
 * and buffers; this code only looks at bytes it is handed (hiredis's reader, picohttpparser).
 * No extension is supported: a frame with an RSV bit set is a protocol error.
 *
 * Names: everything is fo_ws_* / FO_WS_*, but the clients that use this header already own
 * some such names (bench/loadgen/ws.h: fo_ws, fo_ws_connect, FO_WS_OPEN...; tests/support/
 * wsclient.h: fo_ws_close_code, fo_ws_accept_key, FO_WS_CLOSE...), so none of those is used
 * here. Opcodes are FO_WS_OP_*, close codes FO_WS_CLOSE_*.
 *
 * Returns follow proto/error.h: 0 or a count on success, a negative FO_E* on failure. No
 * function logs, aborts or keeps global state. */
#ifndef FO_PROTO_WS_H
#define FO_PROTO_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- constants ------------------------------------------------------------------------ */

enum {
    FO_WS_OP_CONT = 0x0,
    FO_WS_OP_TEXT = 0x1,
    FO_WS_OP_BINARY = 0x2,
    FO_WS_OP_CLOSE = 0x8,
    FO_WS_OP_PING = 0x9,
    FO_WS_OP_PONG = 0xa,
};

/* Close codes (RFC 6455 7.4.1 and the IANA registry) that this module produces or names. */
enum {
    FO_WS_CLOSE_NORMAL = 1000,
    FO_WS_CLOSE_GOING_AWAY = 1001,
    FO_WS_CLOSE_PROTOCOL = 1002, /* any framing violation */
    FO_WS_CLOSE_UNSUPPORTED = 1003,
    FO_WS_CLOSE_NO_STATUS = 1005,    /* never on the wire: "the close frame had no code" */
    FO_WS_CLOSE_ABNORMAL = 1006,     /* never on the wire: "the TCP connection just ended" */
    FO_WS_CLOSE_INVALID_DATA = 1007, /* a text message or close reason that is not UTF-8 */
    FO_WS_CLOSE_POLICY = 1008,
    FO_WS_CLOSE_TOO_BIG = 1009,  /* a message over fo_ws_parser_config.max_message */
    FO_WS_CLOSE_INTERNAL = 1011, /* e.g. out of memory */
};

#define FO_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define FO_WS_KEY_SIZE 25    /* Sec-WebSocket-Key: 24 base64 characters and a NUL */
#define FO_WS_ACCEPT_SIZE 29 /* Sec-WebSocket-Accept: 28 base64 characters and a NUL */
#define FO_WS_HEADER_MAX 14  /* 2 + 8 (64-bit length) + 4 (mask key) */
#define FO_WS_CONTROL_MAX 125

/* Which end of the connection the caller is: a client receives unmasked frames and sends
 * masked ones, a server the other way round (RFC 6455 5.1). */
typedef enum fo_ws_side {
    FO_WS_SIDE_CLIENT = 0,
    FO_WS_SIDE_SERVER = 1,
} fo_ws_side;

/* ---- handshake (RFC 6455 4.1, 4.2.2) ---------------------------------------------------- */

/* The client's Sec-WebSocket-Key: base64 of 16 random bytes the caller supplies (from a
 * source that is unpredictable to others: getrandom, RAND_bytes). Writes 24 characters and
 * a NUL into `key`. Cannot fail. */
void fo_ws_key_make(const unsigned char nonce[16], char key[FO_WS_KEY_SIZE]);

/* The Sec-WebSocket-Accept for `key` (key_len bytes, not necessarily NUL-terminated):
 * base64(SHA-1(key + FO_WS_GUID)), with OpenSSL's libcrypto. Writes 28 characters and a NUL
 * into `out`. 0; FO_EINVAL when key_len is over 128 (a real key has 24); FO_ENOMEM when
 * libcrypto fails (its only failure here is allocation). */
int fo_ws_accept_make(const char *key, size_t key_len, char out[FO_WS_ACCEPT_SIZE]);

/* Whether a handshake response's Sec-WebSocket-Accept value (value_len bytes, surrounding
 * whitespace already trimmed) is the one `key` (NUL-terminated) asks for. The comparison is
 * exact (base64 is case-sensitive). False also when value is NULL. */
bool fo_ws_accept_check(const char *key, const char *value, size_t value_len);

/* ---- frame headers (RFC 6455 5.2) ------------------------------------------------------- */

/* One parsed frame header. */
typedef struct fo_ws_header {
    bool fin;
    int opcode; /* FO_WS_OP_*: reserved opcodes never get through the parser */
    bool masked;
    unsigned char mask[4]; /* the key when masked, else zeros */
    uint64_t len;          /* payload length */
    size_t size;           /* header length: 2 to FO_WS_HEADER_MAX */
} fo_ws_header;

/* Bytes of the header of a frame with a payload of `len` bytes: 2, 4 or 10, plus 4 when
 * masked. */
size_t fo_ws_header_size(uint64_t len, bool masked);

/* Writes a header into `out` (room for FO_WS_HEADER_MAX bytes) and returns its length.
 * `mask_key` NULL: unmasked (a server's frame); else the frame is marked masked and the 4
 * bytes are written as its key (the caller masks the payload: fo_ws_mask). Nothing is
 * checked, only opcode & 0xf is kept, so that tests can build frames a peer must refuse
 * (fragmented control frames, reserved opcodes); lengths use the minimal encoding. */
size_t fo_ws_header_build(unsigned char *out, int opcode, bool fin, uint64_t len,
                          const unsigned char *mask_key);

/* A whole frame: header, then the payload masked with `mask_key` (or copied as it is when
 * mask_key is NULL). `out` must hold fo_ws_header_size(len, mask_key != NULL) + len bytes
 * and must not overlap `payload`. Returns the frame's length. Unchecked, like
 * fo_ws_header_build. */
size_t fo_ws_frame_build(void *out, int opcode, bool fin, const void *payload, size_t len,
                         const unsigned char *mask_key);

/* Parses the header at the start of buf[0, n), as a `side` endpoint receives it. Pure: call
 * again with more bytes after FO_EAGAIN. Returns the header's length (h->size, > 0) with *h
 * filled, FO_EAGAIN when buf is a proper prefix of a valid header, or FO_EPROTO (the close
 * code is then FO_WS_CLOSE_PROTOCOL) with *why (when why is not NULL) set to a static
 * sentence: an RSV bit, a reserved opcode, a fragmented control frame or one over 125
 * bytes, a mask bit that does not fit `side`, a length not in its minimal encoding, or a
 * 64-bit length with the top bit set. The payload length is not bounded here. */
int fo_ws_header_parse(const void *buf, size_t n, fo_ws_side side, fo_ws_header *h,
                       const char **why);

/* ---- masking (RFC 6455 5.3) -------------------------------------------------------------- */

/* dst[i] = src[i] ^ key[(offset + i) % 4] for i < n: masks or unmasks (the same operation).
 * `offset` is the position of src[0] within the frame's payload, so a payload can be done
 * in pieces. dst and src may be the same (in place) but may not overlap otherwise; any
 * alignment. Eight bytes at a time. */
void fo_ws_mask(void *dst, const void *src, size_t n, const unsigned char key[4], size_t offset);

/* ---- UTF-8 and close codes --------------------------------------------------------------- */

/* Incremental strict UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past
 * U+10FFFF), for text messages that arrive in fragments: a code point may be split across
 * them. Zero-initialise (or fo_ws_utf8_reset), feed the pieces in order. */
typedef struct fo_ws_utf8 {
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* the range allowed for the next continuation byte */
} fo_ws_utf8;

void fo_ws_utf8_reset(fo_ws_utf8 *u);
/* Validates the next n bytes. 0 when they are valid so far (a code point may be left
 * open), FO_EPROTO as soon as a byte cannot be part of valid UTF-8 (*u is then
 * meaningless: reset it before reuse). */
int fo_ws_utf8_feed(fo_ws_utf8 *u, const void *p, size_t n);
/* True when no code point is left open: the text fed so far is complete UTF-8. */
bool fo_ws_utf8_done(const fo_ws_utf8 *u);

/* Whether `code` may appear in a close frame: 1000-1003, 1007-1014 and 3000-4999. 1004,
 * 1005, 1006 and 1015 are reserved and never sent, 1016-2999 are unassigned, and codes
 * under 1000 or from 5000 are invalid. */
bool fo_ws_close_code_valid(unsigned code);

/* ---- the message parser ------------------------------------------------------------------ */

typedef struct fo_ws_parser_config {
    fo_ws_side side;    /* which end the caller is; decides which frames must be masked */
    size_t max_message; /* largest message (data frames together), bytes; 0 = 64 MiB;
                         * more than 1 GiB is taken as 1 GiB */
} fo_ws_parser_config;

/* What one call produced. Pointers are borrowed: a whole message that came as one frame and
 * every control frame point into the caller's buffer (zero copy: valid as long as those
 * bytes are), a message reassembled from fragments into the parser's own buffer (valid until
 * the next call that takes a data frame, or fo_ws_parser_destroy). */
typedef struct fo_ws_event {
    int opcode; /* FO_WS_OP_TEXT or _BINARY: a whole message; FO_WS_OP_PING, _PONG, _CLOSE: a
                 * control frame; FO_WS_OP_CONT (0): nothing to hand out (a fragment was kept) */
    const unsigned char *data; /* the message, the ping/pong payload, or the close reason */
    size_t len;
    unsigned close_code; /* FO_WS_OP_CLOSE: the code, FO_WS_CLOSE_NO_STATUS when none came */
} fo_ws_event;

/* Caller-owned storage (_init/_destroy). Fields are readable, not writable. */
typedef struct fo_ws_parser {
    fo_ws_side side;
    size_t max_message;
    unsigned close_code; /* after an error: the code to close with (FO_WS_CLOSE_*) */
    const char *err;     /* after an error: a static sentence saying what was wrong */
    size_t need;         /* after FO_EAGAIN: bytes the next frame takes in all, 0 if unknown */
    bool closed;         /* a close frame was handed out: nothing more is parsed */
    bool failed;         /* an error was returned: nothing more is parsed */
    int msg_opcode;      /* TEXT or BINARY while a fragmented message is open, else 0 */
    unsigned char *msg;  /* the fragments so far (malloc'd, owned) */
    size_t msg_len, msg_cap;
    fo_ws_utf8 utf8; /* of the open text message */
} fo_ws_parser;

/* Prepares *p. Allocates nothing (a zeroed parser with side CLIENT and max_message 0 is
 * also ready), so it cannot fail. cfg NULL: a client with the default limit. */
void fo_ws_parser_init(fo_ws_parser *p, const fo_ws_parser_config *cfg);
/* Frees the reassembly buffer; *p may be initialised again. */
void fo_ws_parser_destroy(fo_ws_parser *p);

/* Looks at buf[0, n), the next unparsed bytes of the stream, and takes at most one whole
 * frame from its start. A masked frame's payload is unmasked in place (hence not const).
 * Returns:
 *   > 0        the bytes taken (the frame); *ev says what it completed (opcode 0: nothing
 *              yet). Call again on the bytes after it.
 *   FO_EAGAIN  no whole frame yet: nothing was taken; p->need is the frame's full size
 *              once its header is there (grow the buffer to it), else 0. Every proper
 *              prefix of a valid stream gives this.
 *   FO_EPROTO  a violation: a bad header (fo_ws_header_parse), a continuation without a
 *              message, a new message inside a fragmented one, a text message or close
 *              reason that is not UTF-8 (close code 1007, checked frame by frame so it fails
 *              early), a close frame of 1 byte or with an invalid code (1002).
 *   FO_ELIMIT  a frame or message over max_message (1009), told as soon as the header says so.
 *   FO_ENOMEM  the reassembly buffer could not grow (1011).
 *   FO_ESTATE  after a close frame or an error: the stream is over.
 * After an error p->close_code and p->err say why; the caller closes the connection. */
int fo_ws_parser_next(fo_ws_parser *p, unsigned char *buf, size_t n, fo_ws_event *ev);

#endif
