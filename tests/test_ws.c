/* The WebSocket framing module (proto/ws.h): handshake values against RFC 6455's own
 * examples, header build/parse for every length encoding, every protocol violation with its
 * close code, streams split at every byte, masking at every offset and alignment, and strict
 * UTF-8 across fragment boundaries. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/ws.h"

static const unsigned char KEY[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 5.7's example key */

/* ---- handshake ------------------------------------------------------------------------ */

Test(ws, key_and_accept_are_the_rfc_example)
{
    char key[FO_WS_KEY_SIZE], acc[FO_WS_ACCEPT_SIZE];

    fo_ws_key_make((const unsigned char *)"the sample nonce", key);
    cr_assert_str_eq(key, "dGhlIHNhbXBsZSBub25jZQ==");
    cr_assert_eq(fo_ws_accept_make(key, strlen(key), acc), 0);
    cr_assert_str_eq(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(ws, accept_check_is_exact)
{
    const char *k = "dGhlIHNhbXBsZSBub25jZQ==", *good = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    char bad[FO_WS_ACCEPT_SIZE], big[200];

    cr_assert(fo_ws_accept_check(k, good, strlen(good)));
    cr_assert_not(fo_ws_accept_check(k, good, strlen(good) - 1));
    cr_assert_not(fo_ws_accept_check(k, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=x", 29));
    strcpy(bad, good);
    bad[0] = 'S'; /* base64 is case-sensitive */
    cr_assert_not(fo_ws_accept_check(k, bad, strlen(bad)));
    cr_assert_not(fo_ws_accept_check(k, NULL, 0));
    cr_assert_not(fo_ws_accept_check(NULL, good, strlen(good)));
    cr_assert_not(fo_ws_accept_check("dGhlIHNhbXBsZSBub25jZQ=!", good, strlen(good)));
    memset(big, 'a', sizeof(big));
    cr_assert_eq(fo_ws_accept_make(big, 129, bad), FO_EINVAL);
    cr_assert_eq(fo_ws_accept_make(big, 128, bad), 0);
    cr_assert_eq(strlen(bad), 28);
}

/* ---- headers --------------------------------------------------------------------------- */

Test(ws, rfc_frame_examples_build_byte_for_byte)
{
    static const unsigned char hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    static const unsigned char masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                           0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const unsigned char h256[] = {0x82, 0x7e, 0x01, 0x00};
    static const unsigned char h64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
    unsigned char out[64];

    cr_assert_eq(fo_ws_frame_build(out, FO_WS_OP_TEXT, true, "Hello", 5, NULL), sizeof(hello));
    cr_assert_eq(memcmp(out, hello, sizeof(hello)), 0);
    cr_assert_eq(fo_ws_frame_build(out, FO_WS_OP_TEXT, true, "Hello", 5, KEY), sizeof(masked));
    cr_assert_eq(memcmp(out, masked, sizeof(masked)), 0);
    cr_assert_eq(fo_ws_header_build(out, FO_WS_OP_BINARY, true, 256, NULL), 4);
    cr_assert_eq(memcmp(out, h256, 4), 0);
    cr_assert_eq(fo_ws_header_build(out, FO_WS_OP_BINARY, true, 65536, NULL), 10);
    cr_assert_eq(memcmp(out, h64k, 10), 0);
    /* Unchecked: a fragmented ping with a reserved bit pattern in the opcode is built. */
    cr_assert_eq(fo_ws_header_build(out, 0x19, false, 0, NULL), 2);
    cr_assert_eq(out[0], 0x09);
    cr_assert_eq(fo_ws_frame_build(out, FO_WS_OP_PING, true, NULL, 0, NULL), 2);
}

Test(ws, header_round_trips_every_length_encoding)
{
    static const uint64_t lens[] = {
        0, 1, 125, 126, 127, 65535, 65536, (uint64_t)1 << 40, ((uint64_t)1 << 63) - 1};
    unsigned char b[FO_WS_HEADER_MAX];

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (int side = 0; side < 2; side++) {
            bool masked = side == FO_WS_SIDE_SERVER;
            size_t n = fo_ws_header_build(b, FO_WS_OP_BINARY, i & 1, lens[i], masked ? KEY : NULL);
            fo_ws_header h;

            cr_assert_eq(n, fo_ws_header_size(lens[i], masked));
            for (size_t k = 0; k < n; k++)
                cr_assert_eq(fo_ws_header_parse(b, k, side, &h, NULL), FO_EAGAIN,
                             "prefix %zu of %zu", k, n);
            cr_assert_eq(fo_ws_header_parse(b, n, side, &h, NULL), (int)n);
            cr_assert_eq(h.size, n);
            cr_assert_eq(h.len, lens[i]);
            cr_assert_eq(h.fin, (bool)(i & 1));
            cr_assert_eq(h.opcode, FO_WS_OP_BINARY);
            cr_assert_eq(h.masked, masked);
            cr_assert_eq(memcmp(h.mask, masked ? KEY : (const unsigned char *)"\0\0\0\0", 4), 0);
        }
    }
}

typedef struct bad_header {
    const char *name;
    int side;
    unsigned char b[14];
    size_t n;
} bad_header;

Test(ws, bad_headers_are_protocol_errors)
{
    static const bad_header t[] = {
        {"rsv1", 0, {0xc2, 0x00}, 2},
        {"rsv2", 0, {0xa2, 0x00}, 2},
        {"rsv3 (told on the first byte)", 0, {0x92}, 1},
        {"opcode 3", 0, {0x83, 0x00}, 2},
        {"opcode 7", 0, {0x87, 0x00}, 2},
        {"opcode 0xb", 0, {0x8b, 0x00}, 2},
        {"opcode 0xf", 0, {0x8f, 0x00}, 2},
        {"fragmented ping", 0, {0x09, 0x00}, 2},
        {"fragmented close", 0, {0x08}, 1},
        {"ping of 126", 0, {0x89, 0x7e, 0x00, 0x7e}, 4},
        {"pong of 64-bit length", 0, {0x8a, 0x7f}, 2},
        {"masked frame to a client", 0, {0x82, 0x81, 1, 2, 3, 4, 0}, 7},
        {"unmasked frame to a server", 1, {0x82, 0x01, 0}, 3},
        {"16-bit length under 126", 0, {0x82, 0x7e, 0x00, 0x7d}, 4},
        {"64-bit length under 65536", 0, {0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 10},
        {"64-bit length top bit", 0, {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10},
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        unsigned char buf[32];
        fo_ws_header h;
        fo_ws_parser p;
        fo_ws_parser_config cfg = {.side = (fo_ws_side)t[i].side};
        fo_ws_event ev;
        const char *why = NULL;

        cr_assert_eq(fo_ws_header_parse(t[i].b, t[i].n, t[i].side, &h, &why), FO_EPROTO, "%s",
                     t[i].name);
        cr_assert_not_null(why, "%s", t[i].name);
        memcpy(buf, t[i].b, t[i].n);
        fo_ws_parser_init(&p, &cfg);
        cr_assert_eq(fo_ws_parser_next(&p, buf, t[i].n, &ev), FO_EPROTO, "%s", t[i].name);
        cr_assert_eq(p.close_code, FO_WS_CLOSE_PROTOCOL, "%s", t[i].name);
        cr_assert_str_eq(p.err, why);
        cr_assert_eq(fo_ws_parser_next(&p, buf, t[i].n, &ev), FO_ESTATE);
        fo_ws_parser_destroy(&p);
    }
}

/* ---- the parser over a stream ---------------------------------------------------------- */

/* Builds frames into a growing byte string, masked when the stream goes to a server. */
typedef struct stream {
    unsigned char b[4096];
    size_t n;
    bool masked;
} stream;

static void put(stream *s, int op, bool fin, const void *p, size_t n)
{
    unsigned char key[4] = {(unsigned char)s->n, 0x5a, (unsigned char)(n * 3), 0xc3};

    cr_assert_leq(s->n + FO_WS_HEADER_MAX + n, sizeof(s->b));
    s->n += fo_ws_frame_build(s->b + s->n, op, fin, p, n, s->masked ? key : NULL);
}

/* A transcript of what a parser hands out, for comparisons. */
typedef struct transcript {
    char text[8192];
    size_t len;
    int rc;        /* the last return: an error, or FO_EAGAIN at the end */
    unsigned code; /* close_code after an error */
} transcript;

static void note(transcript *t, const fo_ws_event *ev)
{
    int k = snprintf(t->text + t->len, sizeof(t->text) - t->len, "[%d %u %zu:", ev->opcode,
                     ev->close_code, ev->len);
    cr_assert(k > 0 && (size_t)k < sizeof(t->text) - t->len);
    t->len += (size_t)k;
    cr_assert_lt(t->len + ev->len + 1, sizeof(t->text));
    if (ev->len)
        memcpy(t->text + t->len, ev->data, ev->len);
    t->len += ev->len;
    t->text[t->len++] = ']';
    t->text[t->len] = 0;
}

/* Feeds `s` in pieces cut at `cuts` (ascending offsets), the way a client reads: append to a
 * buffer, take every whole frame, keep the rest. The stream is copied: a server parser
 * unmasks in place. */
static void feed(const stream *s, fo_ws_side side, size_t max, const size_t *cuts, size_t ncuts,
                 transcript *t)
{
    fo_ws_parser_config cfg = {.side = side, .max_message = max};
    fo_ws_parser p;
    unsigned char *buf = malloc(s->n + 1);
    size_t have = 0, off = 0, next = 0;

    memset(t, 0, sizeof(*t));
    fo_ws_parser_init(&p, &cfg);
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : s->n;
        memcpy(buf + have, s->b + next, end - next);
        have += end - next;
        next = end;
        for (;;) {
            fo_ws_event ev;
            int rc = fo_ws_parser_next(&p, buf + off, have - off, &ev);
            if (rc < 0) {
                t->rc = rc;
                if (rc == FO_EAGAIN && p.need)
                    cr_assert_gt(p.need, have - off);
                if (rc != FO_EAGAIN)
                    t->code = p.close_code;
                break;
            }
            if (ev.opcode)
                note(t, &ev);
            off += (size_t)rc;
        }
        if (t->rc != FO_EAGAIN)
            break;
    }
    fo_ws_parser_destroy(&p);
    free(buf);
}

/* Every split of the stream in two, and one byte at a time, give what one piece gives. */
static void same_at_every_split(const stream *s, fo_ws_side side, size_t max, transcript *whole)
{
    transcript t;
    size_t *every = malloc(s->n * sizeof(size_t));

    feed(s, side, max, NULL, 0, whole);
    for (size_t k = 0; k < s->n; k++) {
        feed(s, side, max, &k, 1, &t);
        cr_assert_str_eq(t.text, whole->text, "split at %zu", k);
        cr_assert_eq(t.rc, whole->rc, "split at %zu", k);
        cr_assert_eq(t.code, whole->code, "split at %zu", k);
        every[k] = k;
    }
    feed(s, side, max, every, s->n, &t);
    cr_assert_str_eq(t.text, whole->text);
    cr_assert_eq(t.rc, whole->rc);
    free(every);
}

static void conversation(stream *s)
{
    static const char e_acute[] = "h\xc3\xa9"; /* "hé": the é is split across fragments */
    unsigned char big[300], close[5] = {0x03, 0xe8, 'b', 'y', 'e'};

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)('a' + i % 26); /* no NUL: transcripts are strings */
    put(s, FO_WS_OP_TEXT, false, e_acute, 2);
    put(s, FO_WS_OP_PING, true, "p0", 2);
    put(s, FO_WS_OP_CONT, false, e_acute + 2, 1);
    put(s, FO_WS_OP_CONT, true, "!", 1);
    put(s, FO_WS_OP_BINARY, true, "one", 3);
    put(s, FO_WS_OP_PONG, true, NULL, 0);
    put(s, FO_WS_OP_BINARY, false, big, 200);
    put(s, FO_WS_OP_CONT, true, big + 200, 100);
    put(s, FO_WS_OP_BINARY, true, big, sizeof(big));
    put(s, FO_WS_OP_TEXT, true, "", 0);
    put(s, FO_WS_OP_CLOSE, true, close, sizeof(close));
}

Test(ws, a_conversation_parses_the_same_at_every_split)
{
    for (int side = 0; side < 2; side++) {
        stream s = {.masked = side == FO_WS_SIDE_SERVER};
        transcript t;
        char want[2048];
        int n;

        conversation(&s);
        /* after the close nothing more is parsed */
        put(&s, FO_WS_OP_BINARY, true, "late", 4);
        same_at_every_split(&s, (fo_ws_side)side, 0, &t);
        cr_assert_eq(t.rc, FO_ESTATE);
        n = snprintf(want, sizeof(want), "[9 0 2:p0][1 0 4:h\xc3\xa9!][2 0 3:one][10 0 0:]");
        cr_assert_eq(strncmp(t.text, want, (size_t)n), 0, "%s", t.text);
        cr_assert(strstr(t.text, "][1 0 0:][8 1000 3:bye]"), "%s", t.text);
        cr_assert_eq(strstr(t.text, "late"), NULL);
    }
}

Test(ws, single_frames_are_zero_copy_and_fragments_are_not)
{
    stream s = {0};
    fo_ws_parser p;
    fo_ws_event ev;
    int rc;

    put(&s, FO_WS_OP_BINARY, true, "abc", 3);
    put(&s, FO_WS_OP_BINARY, false, "de", 2);
    put(&s, FO_WS_OP_CONT, true, "f", 1);
    fo_ws_parser_init(&p, NULL);
    rc = fo_ws_parser_next(&p, s.b, s.n, &ev);
    cr_assert_eq(rc, 5);
    cr_assert_eq(ev.data, s.b + 2);
    cr_assert_eq(fo_ws_parser_next(&p, s.b + 5, s.n - 5, &ev), 4);
    cr_assert_eq(ev.opcode, FO_WS_OP_CONT); /* kept, nothing handed out */
    cr_assert_eq(fo_ws_parser_next(&p, s.b + 9, s.n - 9, &ev), 3);
    cr_assert_eq(ev.opcode, FO_WS_OP_BINARY);
    cr_assert_eq(ev.len, 3);
    cr_assert_eq(memcmp(ev.data, "def", 3), 0);
    cr_assert(ev.data < s.b || ev.data >= s.b + sizeof(s.b));
    cr_assert_eq(fo_ws_parser_next(&p, s.b + 12, 0, &ev), FO_EAGAIN);
    cr_assert_eq(p.need, 0);
    fo_ws_parser_destroy(&p);
}

Test(ws, need_says_how_big_the_frame_is)
{
    unsigned char b[FO_WS_HEADER_MAX];
    size_t h = fo_ws_header_build(b, FO_WS_OP_BINARY, true, 70000, NULL);
    fo_ws_parser p;
    fo_ws_event ev;

    fo_ws_parser_init(&p, NULL);
    cr_assert_eq(fo_ws_parser_next(&p, b, h - 1, &ev), FO_EAGAIN);
    cr_assert_eq(p.need, 0);
    cr_assert_eq(fo_ws_parser_next(&p, b, h, &ev), FO_EAGAIN);
    cr_assert_eq(p.need, h + 70000);
    fo_ws_parser_destroy(&p);
}

Test(ws, masked_frames_are_unmasked_in_place)
{
    stream s = {.masked = true};
    fo_ws_parser_config cfg = {.side = FO_WS_SIDE_SERVER};
    fo_ws_parser p;
    fo_ws_event ev;

    put(&s, FO_WS_OP_TEXT, true, "Hello", 5);
    fo_ws_parser_init(&p, &cfg);
    cr_assert_eq(fo_ws_parser_next(&p, s.b, s.n, &ev), 11);
    cr_assert_eq(ev.data, s.b + 6);
    cr_assert_eq(memcmp(s.b + 6, "Hello", 5), 0);
    fo_ws_parser_destroy(&p);
}

/* One violation per stream: each must stop the parser with its close code, at every split. */
typedef void (*build_fn)(stream *s);

static void b_cont_first(stream *s)
{
    put(s, FO_WS_OP_CONT, true, "x", 1);
}
static void b_new_in_frag(stream *s)
{
    put(s, FO_WS_OP_BINARY, false, "a", 1);
    put(s, FO_WS_OP_PING, true, NULL, 0);
    put(s, FO_WS_OP_TEXT, true, "b", 1);
}
static void b_bad_text(stream *s)
{
    put(s, FO_WS_OP_TEXT, true, "a\xc0\x80", 3);
}
static void b_text_ends_open(stream *s)
{
    put(s, FO_WS_OP_TEXT, false, "a\xf0\x9f", 3);
    put(s, FO_WS_OP_CONT, true, "\x98", 1); /* U+1F600 lacks its last byte */
}
static void b_text_bad_in_2nd(stream *s)
{
    put(s, FO_WS_OP_TEXT, false, "ok\xe2\x82", 4);
    put(s, FO_WS_OP_CONT, false, "A", 1); /* not a continuation byte */
    put(s, FO_WS_OP_CONT, true, "", 0);
}
static void b_close_1(stream *s)
{
    put(s, FO_WS_OP_CLOSE, true, "\x03", 1);
}
static void b_close_bad_reason(stream *s)
{
    put(s, FO_WS_OP_CLOSE, true, "\x03\xe8\xed\xa0\x80", 5);
}
static void b_close_open_reason(stream *s)
{
    put(s, FO_WS_OP_CLOSE, true, "\x03\xe8\xc3", 3);
}
static void b_too_big(stream *s)
{
    static unsigned char big[101];
    put(s, FO_WS_OP_BINARY, true, big, sizeof(big));
}
static void b_too_big_fragments(stream *s)
{
    static unsigned char big[60];
    put(s, FO_WS_OP_BINARY, false, big, sizeof(big));
    put(s, FO_WS_OP_CONT, true, big, 41);
}
static void b_rsv(stream *s)
{
    put(s, FO_WS_OP_BINARY, true, "ok", 2);
    s->b[s->n++] = 0xc2;
    s->b[s->n++] = 0x00;
}

Test(ws, each_violation_gets_its_close_code_at_every_split)
{
    static const struct {
        const char *name;
        build_fn build;
        int rc;
        unsigned code;
    } t[] = {
        {"continuation without a message", b_cont_first, FO_EPROTO, 1002},
        {"new message inside a fragmented one", b_new_in_frag, FO_EPROTO, 1002},
        {"overlong in a text frame", b_bad_text, FO_EPROTO, 1007},
        {"text ends inside a code point", b_text_ends_open, FO_EPROTO, 1007},
        {"bad UTF-8 in a later fragment", b_text_bad_in_2nd, FO_EPROTO, 1007},
        {"close of 1 byte", b_close_1, FO_EPROTO, 1002},
        {"close reason with a surrogate", b_close_bad_reason, FO_EPROTO, 1007},
        {"close reason cut in a code point", b_close_open_reason, FO_EPROTO, 1007},
        {"frame over the limit", b_too_big, FO_ELIMIT, 1009},
        {"fragments over the limit", b_too_big_fragments, FO_ELIMIT, 1009},
        {"rsv bit after a good frame", b_rsv, FO_EPROTO, 1002},
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        for (int side = 0; side < 2; side++) {
            stream s = {.masked = side == FO_WS_SIDE_SERVER};
            transcript w;

            t[i].build(&s);
            same_at_every_split(&s, (fo_ws_side)side, 100, &w);
            cr_assert_eq(w.rc, t[i].rc, "%s: rc %d", t[i].name, w.rc);
            cr_assert_eq(w.code, t[i].code, "%s: code %u", t[i].name, w.code);
        }
    }
}

Test(ws, close_codes_on_the_wire)
{
    static const unsigned ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                  1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        stream s = {0};
        unsigned char c[2] = {(unsigned char)(ok[i] >> 8), (unsigned char)ok[i]};
        transcript t;
        char want[32];

        cr_assert(fo_ws_close_code_valid(ok[i]), "%u", ok[i]);
        put(&s, FO_WS_OP_CLOSE, true, c, 2);
        feed(&s, FO_WS_SIDE_CLIENT, 0, NULL, 0, &t);
        snprintf(want, sizeof(want), "[8 %u 0:]", ok[i]);
        cr_assert_str_eq(t.text, want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        stream s = {0};
        unsigned char c[2] = {(unsigned char)(bad[i] >> 8), (unsigned char)bad[i]};
        transcript t;

        cr_assert_not(fo_ws_close_code_valid(bad[i]), "%u", bad[i]);
        put(&s, FO_WS_OP_CLOSE, true, c, 2);
        feed(&s, FO_WS_SIDE_CLIENT, 0, NULL, 0, &t);
        cr_assert_eq(t.rc, FO_EPROTO, "%u", bad[i]);
        cr_assert_eq(t.code, 1002, "%u", bad[i]);
    }
}

Test(ws, close_without_a_code_is_1005)
{
    stream s = {0};
    transcript t;

    put(&s, FO_WS_OP_CLOSE, true, NULL, 0);
    feed(&s, FO_WS_SIDE_CLIENT, 0, NULL, 0, &t);
    cr_assert_str_eq(t.text, "[8 1005 0:]");
    cr_assert_eq(t.rc, FO_ESTATE);
}

Test(ws, a_zeroed_parser_is_a_client_with_the_default_limit)
{
    fo_ws_parser p;
    unsigned char b[FO_WS_HEADER_MAX];
    fo_ws_event ev;

    memset(&p, 0, sizeof(p));
    memset(b, 0, sizeof(b));
    fo_ws_header_build(b, FO_WS_OP_BINARY, true, ((size_t)64 << 20) + 1, NULL);
    cr_assert_eq(fo_ws_parser_next(&p, b, sizeof(b), &ev), FO_ELIMIT);
    cr_assert_eq(p.close_code, 1009);
    fo_ws_parser_init(&p, NULL);
    fo_ws_header_build(b, FO_WS_OP_BINARY, true, (size_t)64 << 20, NULL);
    cr_assert_eq(fo_ws_parser_next(&p, b, sizeof(b), &ev), FO_EAGAIN);
    fo_ws_parser_destroy(&p);
}

/* ---- masking --------------------------------------------------------------------------- */

Test(ws, masking_round_trips_at_every_offset_and_alignment)
{
    unsigned char src[160], dst[176], back[176], want[160];

    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (unsigned char)(i * 31 + 7);
    for (size_t off = 0; off < 8; off++) {
        for (size_t al = 0; al < 8; al++) {
            for (size_t n = 0; n <= 140; n += (n < 40 ? 1 : 13)) {
                for (size_t i = 0; i < n; i++)
                    want[i] = src[al + i] ^ KEY[(off + i) & 3];
                memset(dst, 0xee, sizeof(dst));
                fo_ws_mask(dst + al, src + al, n, KEY, off);
                cr_assert_eq(memcmp(dst + al, want, n), 0, "off %zu al %zu n %zu", off, al, n);
                cr_assert_eq(dst[al + n], 0xee, "wrote past the end");
                /* back, in place */
                memcpy(back + 7 - al, dst + al, n);
                fo_ws_mask(back + 7 - al, back + 7 - al, n, KEY, off);
                cr_assert_eq(memcmp(back + 7 - al, src + al, n), 0);
            }
        }
    }
}

Test(ws, masking_resumes_at_any_split)
{
    unsigned char src[100], whole[100], parts[100];

    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (unsigned char)(i ^ 0xa5);
    fo_ws_mask(whole, src, sizeof(src), KEY, 0);
    for (size_t a = 0; a <= sizeof(src); a++) {
        for (size_t b = a; b <= sizeof(src); b += 7) {
            fo_ws_mask(parts, src, a, KEY, 0);
            fo_ws_mask(parts + a, src + a, b - a, KEY, a);
            fo_ws_mask(parts + b, src + b, sizeof(src) - b, KEY, b);
            cr_assert_eq(memcmp(parts, whole, sizeof(src)), 0, "%zu %zu", a, b);
        }
    }
}

/* ---- UTF-8 ----------------------------------------------------------------------------- */

typedef struct utf8_case {
    const char *s;
    bool ok;
} utf8_case;

static const utf8_case UTF8[] = {
    {"", true},
    {"plain ascii, long enough for the eight-byte path", true},
    {"\xc2\x80 \xdf\xbf", true},                      /* U+0080, U+07FF */
    {"\xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80", true}, /* U+0800, U+D7FF, U+E000 */
    {"\xef\xbf\xbf", true},                           /* U+FFFF */
    {"\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf", true},      /* U+10000, U+10FFFF */
    {"0123456789abcdef\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true},
    {"\xc0\x80", false},                 /* overlong NUL */
    {"\xc1\xbf", false},                 /* overlong 2-byte */
    {"\xe0\x80\x80", false},             /* overlong 3-byte */
    {"\xe0\x9f\xbf", false},             /* overlong U+07FF */
    {"\xf0\x80\x80\x80", false},         /* overlong 4-byte */
    {"\xf0\x8f\xbf\xbf", false},         /* overlong U+FFFF */
    {"\xed\xa0\x80", false},             /* U+D800 */
    {"\xed\xbf\xbf", false},             /* U+DFFF */
    {"\xed\xa0\x80\xed\xb0\x80", false}, /* a CESU-8 surrogate pair */
    {"\xf4\x90\x80\x80", false},         /* U+110000 */
    {"\xf5\x80\x80\x80", false},
    {"\xf8\x88\x80\x80\x80", false},
    {"\xfe", false},
    {"\xff", false},
    {"\x80", false}, /* a lone continuation byte */
    {"a\xbf", false},
    {"\xe2\x82", false}, /* truncated at the end */
    {"\xe2\x82"
     "A",
     false}, /* truncated, then ASCII */
    {"\xf0\x9f\x98", false},
    {"\xc3", false},
    {"01234567\xc3\xa9"
     "89abcdef\xe2",
     false},
};

Test(ws, utf8_cases_give_the_same_answer_at_every_split)
{
    for (size_t i = 0; i < sizeof(UTF8) / sizeof(UTF8[0]); i++) {
        size_t n = strlen(UTF8[i].s);

        for (size_t a = 0; a <= n; a++) {
            for (size_t b = a; b <= n; b++) {
                fo_ws_utf8 u;
                bool ok;

                fo_ws_utf8_reset(&u);
                ok = fo_ws_utf8_feed(&u, UTF8[i].s, a) == 0 &&
                     fo_ws_utf8_feed(&u, UTF8[i].s + a, b - a) == 0 &&
                     fo_ws_utf8_feed(&u, UTF8[i].s + b, n - b) == 0 && fo_ws_utf8_done(&u);
                cr_assert_eq(ok, UTF8[i].ok, "case %zu split %zu,%zu", i, a, b);
            }
        }
    }
}

Test(ws, a_zeroed_utf8_state_and_parser_take_multibyte_text)
{
    static const char s[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"; /* é € U+1F600 */
    fo_ws_utf8 u;
    fo_ws_parser p;
    unsigned char b[64];
    fo_ws_event ev;
    size_t n;

    memset(&u, 0, sizeof(u));
    cr_assert_eq(fo_ws_utf8_feed(&u, s, sizeof(s) - 1), 0);
    cr_assert(fo_ws_utf8_done(&u));
    memset(&p, 0, sizeof(p));
    n = fo_ws_frame_build(b, FO_WS_OP_TEXT, true, s, sizeof(s) - 1, NULL);
    cr_assert_eq(fo_ws_parser_next(&p, b, n, &ev), (int)n);
    cr_assert_eq(ev.opcode, FO_WS_OP_TEXT);
    cr_assert_eq(ev.len, sizeof(s) - 1);
    fo_ws_parser_destroy(&p);
}

Test(ws, utf8_text_frames_split_across_fragments)
{
    for (size_t i = 0; i < sizeof(UTF8) / sizeof(UTF8[0]); i++) {
        size_t n = strlen(UTF8[i].s);

        for (size_t a = 0; a <= n; a++) {
            stream s = {0};
            transcript t;

            put(&s, FO_WS_OP_TEXT, false, UTF8[i].s, a);
            put(&s, FO_WS_OP_PING, true, NULL, 0);
            put(&s, FO_WS_OP_CONT, true, UTF8[i].s + a, n - a);
            feed(&s, FO_WS_SIDE_CLIENT, 0, NULL, 0, &t);
            if (UTF8[i].ok) {
                char want[128];
                snprintf(want, sizeof(want), "[9 0 0:][1 0 %zu:%s]", n, UTF8[i].s);
                cr_assert_eq(t.rc, FO_EAGAIN, "case %zu split %zu", i, a);
                cr_assert_str_eq(t.text, want);
            } else {
                cr_assert_eq(t.rc, FO_EPROTO, "case %zu split %zu", i, a);
                cr_assert_eq(t.code, 1007);
            }
        }
    }
}

Test(ws, binary_frames_are_not_utf8_checked)
{
    stream s = {0};
    transcript t;

    put(&s, FO_WS_OP_BINARY, true, "\xff\xfe", 2);
    put(&s, FO_WS_OP_PING, true, "\xff", 1);
    feed(&s, FO_WS_SIDE_CLIENT, 0, NULL, 0, &t);
    cr_assert_eq(t.rc, FO_EAGAIN);
    cr_assert_str_eq(t.text, "[2 0 2:\xff\xfe][9 0 1:\xff]");
}
