/* fuzz_ws.c - libFuzzer target for the WebSocket framing module (proto/ws.h; built with clang
 * by tests/fuzz/CMakeLists.txt, run by the ctest `fuzz_ws`).
 *
 * Input: one control byte, then a byte stream. Bit 0 of the control byte picks the side
 * (client: the stream's frames must be unmasked; server: masked), bits 1-2 a message limit,
 * bits 3-7 the size of the pieces the stream is fed in. Invariants checked, each aborting
 * so that libFuzzer keeps the input:
 *   - feeding the stream whole and in pieces hands out the same events and the same error;
 *   - the events rebuilt as frames (fo_ws_frame_build, masked for a server, with messages cut
 *     into fragments) parse back to the same events: parse(build(x)) == x;
 *   - text messages and close reasons handed out are UTF-8 (checked with fo_utf8_valid);
 *   - a header fo_ws_header_parse accepts is rebuilt byte for byte by fo_ws_header_build;
 *   - fo_ws_utf8_feed, whole or split, agrees with proto's other validator fo_utf8_valid;
 *   - masking twice gives the input back, and masking in two pieces equals masking once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/wire_scan.h"
#include "proto/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
    fprintf(stderr, "fuzz_ws: %s\n", what);
    abort();
}

/* What a parser handed out: events (opcode, close code, bytes), then how it stopped. */
typedef struct events {
    unsigned char *b;
    size_t len, cap;
    int rc;
    unsigned code;
    bool closed; /* a close frame was handed out */
} events;

static void put_bytes(events *e, const void *p, size_t n)
{
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < e->len + n)
            cap *= 2;
        if (!(e->b = realloc(e->b, cap)))
            die("out of memory");
        e->cap = cap;
    }
    if (n)
        memcpy(e->b + e->len, p, n);
    e->len += n;
}

static void note(events *e, const fo_ws_event *ev)
{
    uint32_t head[3] = {(uint32_t)ev->opcode, ev->close_code, (uint32_t)ev->len};

    if ((ev->opcode == FO_WS_OP_TEXT || ev->opcode == FO_WS_OP_CLOSE) &&
        !fo_utf8_valid(ev->data, ev->len))
        die("a text message or close reason that is not UTF-8 was handed out");
    if (ev->opcode == FO_WS_OP_CLOSE)
        e->closed = true;
    put_bytes(e, head, sizeof(head));
    put_bytes(e, ev->data, ev->len);
}

/* Feeds `in` (copied: a server parser unmasks in place) in pieces of `piece` bytes. */
static void run(const unsigned char *in, size_t n, fo_ws_side side, size_t max, size_t piece,
                events *e)
{
    fo_ws_parser_config cfg = {.side = side, .max_message = max};
    fo_ws_parser p;
    unsigned char *buf = malloc(n ? n : 1);
    size_t have = 0, off = 0;

    memset(e, 0, sizeof(*e));
    /* ws.h promises that a zeroed parser is a client with the default limit: use one. */
    if (side == FO_WS_SIDE_CLIENT && max == 0)
        memset(&p, 0, sizeof(p));
    else
        fo_ws_parser_init(&p, &cfg);
    e->rc = FO_EAGAIN;
    while (e->rc == FO_EAGAIN && have < n) {
        size_t k = n - have < piece ? n - have : piece;
        memcpy(buf + have, in + have, k);
        have += k;
        for (;;) {
            fo_ws_event ev;
            int rc = fo_ws_parser_next(&p, buf + off, have - off, &ev);
            if (rc < 0) {
                e->rc = rc;
                if (rc == FO_EAGAIN && p.need && p.need <= have - off)
                    die("FO_EAGAIN with the whole frame there");
                if (rc != FO_EAGAIN && rc != FO_ESTATE && (!p.err || !p.close_code))
                    die("an error without a reason or close code");
                e->code = p.close_code;
                break;
            }
            if (rc == 0 || (size_t)rc > have - off)
                die("took a bad number of bytes");
            if (ev.opcode)
                note(e, &ev);
            off += (size_t)rc;
        }
    }
    fo_ws_parser_destroy(&p);
    free(buf);
}

static bool same(const events *a, const events *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->b, b->b, a->len) == 0);
}

/* Rebuilds the events as frames; `cut` (1-255) decides fragment sizes and mask keys. */
static unsigned char *rebuild(const events *e, fo_ws_side side, unsigned cut, size_t *out_len)
{
    events s = {0};
    size_t at = 0;

    while (at < e->len) {
        uint32_t head[3];
        const unsigned char *d;
        unsigned char key[4] = {(unsigned char)cut, (unsigned char)at, 0x5a, (unsigned char)~cut};
        const unsigned char *k = side == FO_WS_SIDE_SERVER ? key : NULL;
        unsigned char frame[FO_WS_HEADER_MAX + FO_WS_CONTROL_MAX + 2];

        memcpy(head, e->b + at, sizeof(head));
        d = e->b + at + sizeof(head);
        at += sizeof(head) + head[2];
        if (head[0] & 0x8) {
            unsigned char payload[FO_WS_CONTROL_MAX + 2];
            size_t n = head[2];
            const unsigned char *p = d;
            if (head[0] == FO_WS_OP_CLOSE && head[1] != FO_WS_CLOSE_NO_STATUS) {
                payload[0] = (unsigned char)(head[1] >> 8);
                payload[1] = (unsigned char)head[1];
                memcpy(payload + 2, d, n);
                p = payload;
                n += 2;
            }
            if (n > FO_WS_CONTROL_MAX)
                die("a control frame over 125 bytes was handed out");
            put_bytes(&s, frame, fo_ws_frame_build(frame, (int)head[0], true, p, n, k));
            continue;
        }
        /* A data message: fragments of `cut` bytes. */
        for (size_t off = 0, first = 1;; first = 0) {
            size_t n = head[2] - off < cut ? head[2] - off : cut;
            bool fin = off + n == head[2];
            unsigned char *f = malloc(FO_WS_HEADER_MAX + n);
            if (!f)
                die("out of memory");
            put_bytes(
                &s, f,
                fo_ws_frame_build(f, first ? (int)head[0] : FO_WS_OP_CONT, fin, d + off, n, k));
            free(f);
            off += n;
            if (fin)
                break;
        }
    }
    *out_len = s.len;
    return s.b;
}

static void check_header(const unsigned char *in, size_t n, fo_ws_side side)
{
    fo_ws_header h;
    unsigned char out[FO_WS_HEADER_MAX];
    int rc = fo_ws_header_parse(in, n, side, &h, NULL);

    if (rc == FO_EAGAIN || rc == FO_EPROTO)
        return;
    if (rc <= 0 || (size_t)rc != h.size || h.size != fo_ws_header_size(h.len, h.masked) ||
        fo_ws_header_build(out, h.opcode, h.fin, h.len, h.masked ? h.mask : NULL) != h.size ||
        memcmp(out, in, h.size) != 0)
        die("a parsed header does not rebuild to the same bytes");
    for (size_t k = 0; k < h.size; k++)
        if (fo_ws_header_parse(in, k, side, &h, NULL) != FO_EAGAIN)
            die("a prefix of a valid header is not FO_EAGAIN");
}

static void check_utf8(const unsigned char *in, size_t n, size_t split)
{
    fo_ws_utf8 u;
    bool whole, parts, ref = fo_utf8_valid(in, n);

    fo_ws_utf8_reset(&u);
    whole = fo_ws_utf8_feed(&u, in, n) == 0 && fo_ws_utf8_done(&u);
    fo_ws_utf8_reset(&u);
    parts = fo_ws_utf8_feed(&u, in, split) == 0 &&
            fo_ws_utf8_feed(&u, in + split, n - split) == 0 && fo_ws_utf8_done(&u);
    if (whole != ref || parts != ref)
        die("the UTF-8 validators disagree");
}

static void check_mask(const unsigned char *in, size_t n, size_t split)
{
    unsigned char *a = malloc(n + 1), *b = malloc(n + 1);
    unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};

    if (!a || !b)
        die("out of memory");
    if (n >= 4)
        memcpy(key, in, 4);
    fo_ws_mask(a, in, n, key, split);
    fo_ws_mask(b, in, split, key, split);
    fo_ws_mask(b + split, in + split, n - split, key, 2 * split);
    if (memcmp(a, b, n) != 0)
        die("masking in two pieces differs from masking once");
    fo_ws_mask(a, a, n, key, split);
    if (memcmp(a, in, n) != 0)
        die("masking twice does not give the input back");
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[4] = {0, 16, 300, 70000};
    fo_ws_side side;
    size_t max, piece, n, rlen;
    const unsigned char *in;
    unsigned char *re;
    events whole, pieces, again;

    if (size < 1)
        return 0;
    side = (data[0] & 1) ? FO_WS_SIDE_SERVER : FO_WS_SIDE_CLIENT;
    max = limits[(data[0] >> 1) & 3];
    piece = (size_t)(data[0] >> 3) + 1;
    in = data + 1;
    n = size - 1;

    run(in, n, side, max, n ? n : 1, &whole);
    run(in, n, side, max, piece, &pieces);
    if (!same(&whole, &pieces) || whole.rc != pieces.rc || whole.code != pieces.code)
        die("the stream parses differently in pieces");

    re = rebuild(&whole, side, (unsigned)piece * 7 % 255 + 1, &rlen);
    run(re, rlen, side, max, rlen ? rlen : 1, &again);
    if (!same(&whole, &again) || again.rc != (whole.closed ? FO_ESTATE : FO_EAGAIN))
        die("parse(build(events)) differs from the events");
    free(re);

    check_header(in, n, side);
    check_utf8(in, n, n ? piece % (n + 1) : 0);
    check_mask(in, n, n ? piece % (n + 1) : 0);
    free(whole.b);
    free(pieces.b);
    free(again.b);
    return 0;
}
