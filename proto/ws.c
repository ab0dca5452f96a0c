/* ws.c - see ws.h. */
#include "proto/ws.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

#define DEFAULT_MAX_MESSAGE ((size_t)64 << 20)
#define LIMIT_MAX_MESSAGE ((size_t)1 << 30) /* the bytes taken must fit the int returned */
#define KEY_MAX 128

/* ---- handshake ------------------------------------------------------------------------- */

void fo_ws_key_make(const unsigned char nonce[16], char key[FO_WS_KEY_SIZE])
{
    /* 16 bytes are 24 characters with padding; EVP_EncodeBlock writes the NUL too. */
    EVP_EncodeBlock((unsigned char *)key, nonce, 16);
}

int fo_ws_accept_make(const char *key, size_t key_len, char out[FO_WS_ACCEPT_SIZE])
{
    char cat[KEY_MAX + sizeof(FO_WS_GUID)];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (key_len > KEY_MAX)
        return FO_EINVAL;
    memcpy(cat, key, key_len);
    memcpy(cat + key_len, FO_WS_GUID, sizeof(FO_WS_GUID) - 1);
    if (EVP_Digest(cat, key_len + sizeof(FO_WS_GUID) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 ||
        mdlen != 20)
        return FO_ENOMEM;
    EVP_EncodeBlock((unsigned char *)out, md, 20);
    return 0;
}

bool fo_ws_accept_check(const char *key, const char *value, size_t value_len)
{
    char want[FO_WS_ACCEPT_SIZE];

    if (!key || !value || value_len != FO_WS_ACCEPT_SIZE - 1 ||
        fo_ws_accept_make(key, strlen(key), want) != 0)
        return false;
    return memcmp(want, value, value_len) == 0;
}

/* ---- masking (RFC 6455 5.3) ---------------------------------------------------------- */

static inline void mask_xor(void *dst, const void *src, size_t n, const unsigned char key[4],
                            size_t offset)
{
    unsigned char *d = dst, k[4];
    const unsigned char *s = src;
    unsigned r = (unsigned)(offset & 3) * 8;
    uint32_t k32;
    uint64_t k8, w;
    size_t i = 0;

    /* The key rotated so that its memory image starts at key[offset % 4], in a register
     * (building it in memory byte by byte and reading it back as a word stalls store
     * forwarding, which costs small frames more than the XOR does). */
    memcpy(&k32, key, 4);
    if (r) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        k32 = k32 << r | k32 >> (32 - r);
#else
        k32 = k32 >> r | k32 << (32 - r);
#endif
    }
    memcpy(k, &k32, 4);
    /* Both halves alike: the word lines up with the payload whatever the byte order. */
    k8 = (uint64_t)k32 << 32 | k32;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        w ^= k8;
        memcpy(d + i, &w, 8);
    }
    for (; i < n; i++)
        d[i] = s[i] ^ k[i & 3];
}

/* ---- headers --------------------------------------------------------------------------- */

size_t fo_ws_header_size(uint64_t len, bool masked)
{
    return (len < 126 ? 2 : len <= 0xffff ? 4 : 10) + (masked ? 4 : 0);
}

/* fo_proto is compiled position-independent, where exported functions may be interposed
 * and so are not inlined into each other: fo_ws_frame_build, which the load generator calls
 * once per frame, uses the static put_header and mask_xor instead of two calls. */
static inline size_t put_header(unsigned char *out, int opcode, bool fin, uint64_t len,
                                const unsigned char *mask_key)
{
    unsigned char m = mask_key ? 0x80 : 0;
    size_t h;

    out[0] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (unsigned char)(m | len);
        h = 2;
    } else if (len <= 0xffff) {
        out[1] = m | 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        h = 4;
    } else {
        out[1] = m | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        h = 10;
    }
    if (mask_key) {
        memcpy(out + h, mask_key, 4);
        h += 4;
    }
    return h;
}

size_t fo_ws_header_build(unsigned char *out, int opcode, bool fin, uint64_t len,
                          const unsigned char *mask_key)
{
    return put_header(out, opcode, fin, len, mask_key);
}

size_t fo_ws_frame_build(void *out, int opcode, bool fin, const void *payload, size_t len,
                         const unsigned char *mask_key)
{
    unsigned char *o = out;
    size_t h = put_header(o, opcode, fin, len, mask_key);

    if (mask_key)
        mask_xor(o + h, payload, len, mask_key, 0);
    else if (len)
        memcpy(o + h, payload, len);
    return h + len;
}

int fo_ws_header_parse(const void *buf, size_t n, fo_ws_side side, fo_ws_header *h,
                       const char **why)
{
    const unsigned char *p = buf;
    const char *bad = NULL;
    uint64_t len;
    size_t size = 2;
    int op;

    if (n < 1)
        return FO_EAGAIN;
    /* The first byte alone can be wrong: say so before the rest arrives. */
    op = p[0] & 0x0f;
    if (p[0] & 0x70)
        bad = "a frame with an RSV bit set (no extension was agreed)";
    else if ((op > FO_WS_OP_BINARY && op < FO_WS_OP_CLOSE) || op > FO_WS_OP_PONG)
        bad = "a frame with a reserved opcode";
    else if ((op & 0x8) && !(p[0] & 0x80))
        bad = "a fragmented control frame";
    if (bad)
        goto fail;
    if (n < 2)
        return FO_EAGAIN;
    if (!(p[1] & 0x80) != (side == FO_WS_SIDE_CLIENT)) {
        bad = side == FO_WS_SIDE_CLIENT ? "a masked frame from the server"
                                        : "an unmasked frame from the client";
        goto fail;
    }
    len = p[1] & 0x7f;
    if ((op & 0x8) && len > FO_WS_CONTROL_MAX) {
        bad = "a control frame over 125 bytes";
        goto fail;
    }
    if (len == 126) {
        if (n < 4)
            return FO_EAGAIN;
        len = (uint64_t)p[2] << 8 | p[3];
        size = 4;
        if (len < 126) {
            bad = "a length not in its minimal encoding (16-bit form)";
            goto fail;
        }
    } else if (len == 127) {
        if (n < 10)
            return FO_EAGAIN;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        size = 10;
        if (len >> 63) {
            bad = "a 64-bit length with the top bit set";
            goto fail;
        }
        if (len <= 0xffff) {
            bad = "a length not in its minimal encoding (64-bit form)";
            goto fail;
        }
    }
    h->fin = (p[0] & 0x80) != 0;
    h->opcode = op;
    h->masked = (p[1] & 0x80) != 0;
    h->len = len;
    if (h->masked) {
        if (n < size + 4)
            return FO_EAGAIN;
        memcpy(h->mask, p + size, 4);
        size += 4;
    } else {
        memset(h->mask, 0, 4);
    }
    h->size = size;
    return (int)size;
fail:
    if (why)
        *why = bad;
    return FO_EPROTO;
}

void fo_ws_mask(void *dst, const void *src, size_t n, const unsigned char key[4], size_t offset)
{
    mask_xor(dst, src, n, key, offset);
}

/* ---- UTF-8 and close codes -------------------------------------------------------------- */

void fo_ws_utf8_reset(fo_ws_utf8 *u)
{
    u->need = 0;
    u->lo = 0x80;
    u->hi = 0xbf;
}

int fo_ws_utf8_feed(fo_ws_utf8 *u, const void *buf, size_t n)
{
    const unsigned char *s = buf;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];

        if (u->need) {
            if (c < u->lo || c > u->hi)
                return FO_EPROTO;
            u->need--;
            u->lo = 0x80;
            u->hi = 0xbf;
            i++;
            continue;
        }
        if (c < 0x80) {
            /* ASCII runs, the common case, eight bytes at a time. */
            uint64_t w;
            while (n - i >= 8) {
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            if (i < n && s[i] < 0x80)
                i++;
            continue;
        }
        /* A lead byte: set the whole state, so that a zeroed fo_ws_utf8 works too. */
        u->lo = 0x80;
        u->hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            u->need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            u->need = 2;
            if (c == 0xe0)
                u->lo = 0xa0; /* overlong */
            else if (c == 0xed)
                u->hi = 0x9f; /* UTF-16 surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            u->need = 3;
            if (c == 0xf0)
                u->lo = 0x90; /* overlong */
            else if (c == 0xf4)
                u->hi = 0x8f; /* past U+10FFFF */
        } else {
            return FO_EPROTO; /* continuation byte first, 0xc0/0xc1 overlong, or 0xf5.. */
        }
        i++;
    }
    return 0;
}

bool fo_ws_utf8_done(const fo_ws_utf8 *u)
{
    return u->need == 0;
}

bool fo_ws_close_code_valid(unsigned code)
{
    if (code >= 3000)
        return code <= 4999;
    return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

/* ---- the parser ------------------------------------------------------------------------ */

void fo_ws_parser_init(fo_ws_parser *p, const fo_ws_parser_config *cfg)
{
    memset(p, 0, sizeof(*p));
    if (cfg) {
        p->side = cfg->side;
        p->max_message = cfg->max_message;
    }
    if (p->max_message > LIMIT_MAX_MESSAGE)
        p->max_message = LIMIT_MAX_MESSAGE;
    fo_ws_utf8_reset(&p->utf8);
}

void fo_ws_parser_destroy(fo_ws_parser *p)
{
    free(p->msg);
    p->msg = NULL;
    p->msg_len = p->msg_cap = 0;
}

static int fail(fo_ws_parser *p, int rc, unsigned code, const char *why)
{
    p->failed = true;
    p->close_code = code;
    p->err = why;
    return rc;
}

static size_t max_message(const fo_ws_parser *p)
{
    return p->max_message ? p->max_message : DEFAULT_MAX_MESSAGE;
}

static int on_close_frame(fo_ws_parser *p, const unsigned char *d, size_t n, fo_ws_event *ev)
{
    fo_ws_utf8 u;

    if (n == 1)
        return fail(p, FO_EPROTO, FO_WS_CLOSE_PROTOCOL, "a close frame with a 1-byte payload");
    ev->close_code = FO_WS_CLOSE_NO_STATUS;
    if (n >= 2) {
        ev->close_code = (unsigned)d[0] << 8 | d[1];
        if (!fo_ws_close_code_valid(ev->close_code))
            return fail(p, FO_EPROTO, FO_WS_CLOSE_PROTOCOL, "a close frame with an invalid code");
        ev->data = d + 2;
        ev->len = n - 2;
        fo_ws_utf8_reset(&u);
        if (fo_ws_utf8_feed(&u, ev->data, ev->len) || !fo_ws_utf8_done(&u))
            return fail(p, FO_EPROTO, FO_WS_CLOSE_INVALID_DATA, "a close reason that is not UTF-8");
    }
    p->closed = true;
    return 0;
}

/* Appends a fragment to the reassembly buffer. */
static int keep(fo_ws_parser *p, const unsigned char *d, size_t n)
{
    if (p->msg_len + n > p->msg_cap) {
        size_t cap = p->msg_cap ? p->msg_cap : 4096;
        unsigned char *m;
        while (cap < p->msg_len + n)
            cap *= 2;
        if (!(m = realloc(p->msg, cap)))
            return fail(p, FO_ENOMEM, FO_WS_CLOSE_INTERNAL, "out of memory for a message");
        p->msg = m;
        p->msg_cap = cap;
    }
    if (n)
        memcpy(p->msg + p->msg_len, d, n);
    p->msg_len += n;
    return 0;
}

/* A data frame: a whole message, or a fragment of one. */
static int on_data_frame(fo_ws_parser *p, const fo_ws_header *h, const unsigned char *d,
                         fo_ws_event *ev)
{
    size_t n = (size_t)h->len;
    int op = h->opcode;
    int rc;

    if (op == FO_WS_OP_CONT) {
        if (!p->msg_opcode)
            return fail(p, FO_EPROTO, FO_WS_CLOSE_PROTOCOL,
                        "a continuation frame without a message");
        if (n > max_message(p) - p->msg_len)
            return fail(p, FO_ELIMIT, FO_WS_CLOSE_TOO_BIG, "a message over the size limit");
        op = p->msg_opcode;
    } else if (p->msg_opcode) {
        return fail(p, FO_EPROTO, FO_WS_CLOSE_PROTOCOL, "a new message inside a fragmented one");
    }
    if (op == FO_WS_OP_TEXT &&
        (fo_ws_utf8_feed(&p->utf8, d, n) || (h->fin && !fo_ws_utf8_done(&p->utf8))))
        return fail(p, FO_EPROTO, FO_WS_CLOSE_INVALID_DATA, "a text message that is not UTF-8");
    if (h->fin && !p->msg_opcode) {
        /* The common case: one frame, one message, handed out where it lies. */
        ev->opcode = op;
        ev->data = d;
        ev->len = n;
        fo_ws_utf8_reset(&p->utf8);
        return 0;
    }
    if (!p->msg_opcode)
        p->msg_len = 0;
    if ((rc = keep(p, d, n)) != 0)
        return rc;
    p->msg_opcode = op;
    if (h->fin) {
        ev->opcode = op;
        ev->data = p->msg;
        ev->len = p->msg_len;
        p->msg_opcode = 0;
        fo_ws_utf8_reset(&p->utf8);
    }
    return 0;
}

int fo_ws_parser_next(fo_ws_parser *p, unsigned char *buf, size_t n, fo_ws_event *ev)
{
    fo_ws_header h;
    const char *why = NULL;
    unsigned char *d;
    int rc;

    /* The load generator's case, first and without a call: a whole unfragmented binary
     * message of under 64 KiB, unmasked, to a client. */
    if (n >= 2 && buf[0] == (0x80 | FO_WS_OP_BINARY) && buf[1] <= 126 && !p->msg_opcode &&
        p->side == FO_WS_SIDE_CLIENT && !p->closed && !p->failed) {
        size_t len = buf[1], size = 2;
        bool ok = len < 126;
        if (len == 126 && n >= 4) {
            len = (size_t)buf[2] << 8 | buf[3];
            size = 4;
            ok = len >= 126; /* else not minimal: the general path says so */
        }
        if (ok && n - size >= len && len <= max_message(p)) {
            ev->opcode = FO_WS_OP_BINARY;
            ev->data = buf + size;
            ev->len = len;
            ev->close_code = 0;
            p->need = 0;
            return (int)(size + len);
        }
    }
    ev->opcode = FO_WS_OP_CONT;
    ev->data = NULL;
    ev->len = 0;
    ev->close_code = 0;
    p->need = 0;
    if (p->closed || p->failed)
        return FO_ESTATE;
    rc = fo_ws_header_parse(buf, n, p->side, &h, &why);
    if (rc == FO_EAGAIN)
        return rc;
    if (rc < 0)
        return fail(p, rc, FO_WS_CLOSE_PROTOCOL, why);
    if (h.len > max_message(p))
        return fail(p, FO_ELIMIT, FO_WS_CLOSE_TOO_BIG, "a frame over the message size limit");
    if (n - h.size < h.len) {
        p->need = h.size + (size_t)h.len;
        return FO_EAGAIN;
    }
    d = buf + h.size;
    if (h.masked)
        mask_xor(d, d, (size_t)h.len, h.mask, 0);
    if (h.opcode & 0x8) {
        ev->opcode = h.opcode;
        ev->data = d;
        ev->len = (size_t)h.len;
        if (h.opcode == FO_WS_OP_CLOSE && (rc = on_close_frame(p, d, (size_t)h.len, ev)) != 0)
            return rc;
    } else if ((rc = on_data_frame(p, &h, d, ev)) != 0) {
        return rc;
    }
    return (int)(h.size + (size_t)h.len);
}
