/* wire_scan.c - bounded structural validation of MessagePack bytes (see wire_scan.h). */
#include "proto/wire_scan.h"

#include <stdio.h>
#include <string.h>

static int scan_fail(fo_err_info *e, int code, size_t pos, const char *msg)
{
    e->code = code;
    e->pos = pos;
    e->path[0] = '\0';
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    return code;
}

static uint64_t be_read(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

enum { K_SCALAR, K_STR, K_BIN, K_ARRAY, K_MAP, K_EXT, K_RESERVED };

/* Classifies the object starting with byte b. `lenbytes` gets the size of the
 * big-endian length or count after the type byte (0 when the type byte holds it; it is
 * then returned in *fix). For K_SCALAR, *fix is the size of the payload after the type
 * byte. */
static int classify(uint8_t b, unsigned *lenbytes, uint64_t *fix)
{
    *lenbytes = 0;
    *fix = 0;
    if (b <= 0x7f || b >= 0xe0)
        return K_SCALAR; /* fixint */
    if (b <= 0x8f) {
        *fix = b & 0x0f;
        return K_MAP;
    }
    if (b <= 0x9f) {
        *fix = b & 0x0f;
        return K_ARRAY;
    }
    if (b <= 0xbf) {
        *fix = b & 0x1f;
        return K_STR;
    }
    switch (b) {
    case 0xc0:
    case 0xc2:
    case 0xc3: return K_SCALAR;
    case 0xc1: return K_RESERVED;
    case 0xc4: *lenbytes = 1; return K_BIN;
    case 0xc5: *lenbytes = 2; return K_BIN;
    case 0xc6: *lenbytes = 4; return K_BIN;
    case 0xca: *fix = 4; return K_SCALAR;
    case 0xcb: *fix = 8; return K_SCALAR;
    case 0xcc:
    case 0xd0: *fix = 1; return K_SCALAR;
    case 0xcd:
    case 0xd1: *fix = 2; return K_SCALAR;
    case 0xce:
    case 0xd2: *fix = 4; return K_SCALAR;
    case 0xcf:
    case 0xd3: *fix = 8; return K_SCALAR;
    case 0xd9: *lenbytes = 1; return K_STR;
    case 0xda: *lenbytes = 2; return K_STR;
    case 0xdb: *lenbytes = 4; return K_STR;
    case 0xdc: *lenbytes = 2; return K_ARRAY;
    case 0xdd: *lenbytes = 4; return K_ARRAY;
    case 0xde: *lenbytes = 2; return K_MAP;
    case 0xdf: *lenbytes = 4; return K_MAP;
    default: return K_EXT; /* 0xc7-0xc9, 0xd4-0xd8 */
    }
}

/* Validates that data[0, len) is exactly one MessagePack value within the limits. The
 * walk keeps, per open container, the number of items still to read, and in `pending`
 * their sum: every item takes at least one byte, so a frame whose headers promise more
 * items than bytes remain is necessarily truncated, and nothing is allocated for it. */
int fo_wire_scan(const uint8_t *p, size_t len, const fo_wire_limits *l, bool need_map,
                 fo_err_info *e)
{
    uint64_t left[FO_WIRE_SCAN_MAX_DEPTH];
    uint32_t depth = 0;
    uint32_t max_depth = l->max_depth;
    if (max_depth > FO_WIRE_SCAN_MAX_DEPTH)
        max_depth = FO_WIRE_SCAN_MAX_DEPTH;
    uint64_t pending = 1, total = 1;
    size_t pos = 0;

    if (len > l->max_frame)
        return scan_fail(e, FO_ELIMIT, 0, "frame too large");
    if (len == 0)
        return scan_fail(e, FO_EAGAIN, 0, "truncated");
    if (need_map && !((p[0] & 0xf0) == 0x80 || p[0] == 0xde || p[0] == 0xdf))
        return scan_fail(e, FO_EPROTO, 0, "not a map");

    for (;;) {
        if (pos >= len)
            return scan_fail(e, FO_EAGAIN, pos, "truncated");
        unsigned lb;
        uint64_t n;
        int kind = classify(p[pos], &lb, &n);
        if (kind == K_RESERVED)
            return scan_fail(e, FO_EPROTO, pos, "reserved type 0xc1");
        if (kind == K_EXT)
            return scan_fail(e, FO_EPROTO, pos, "ext types are not allowed");
        if (len - pos < 1 + (size_t)lb)
            return scan_fail(e, FO_EAGAIN, pos, "truncated");
        if (lb)
            n = be_read(p + pos + 1, lb);
        size_t start = pos;
        pos += 1 + lb;
        pending--;
        if (depth)
            left[depth - 1]--;

        if (kind == K_SCALAR || kind == K_STR || kind == K_BIN) {
            if (kind != K_SCALAR && n > l->max_str)
                return scan_fail(e, FO_ELIMIT, start, "string too long");
            if (len - pos < n)
                return scan_fail(e, FO_EAGAIN, start, "truncated");
            pos += (size_t)n;
        } else {
            uint64_t items = kind == K_MAP ? 2 * n : n;
            if (n > l->max_elems)
                return scan_fail(e, FO_ELIMIT, start, "too many elements");
            if (depth + 1 > max_depth)
                return scan_fail(e, FO_ELIMIT, start, "nested too deeply");
            total += items;
            if (total > l->max_total)
                return scan_fail(e, FO_ELIMIT, start, "too many objects");
            pending += items;
            if (pending > len - pos)
                return scan_fail(e, FO_EAGAIN, start, "truncated");
            if (items)
                left[depth++] = items;
        }
        while (depth && left[depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    if (pos != len)
        return scan_fail(e, FO_EPROTO, pos, "trailing bytes");
    return 0;
}

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF), with a fast
 * path for runs of ASCII. */
bool fo_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return false;
        }
        if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        i += need + 1;
    }
    return true;
}

/* ---- peeking at a frame that will not be decoded ------------------------------------- */

/* Reads the header of the item at p[*off]. *n gets the count of a container, the byte
 * length of a str/bin/ext payload or the payload size of a scalar. False when truncated. */
static bool read_head(const uint8_t *p, size_t len, size_t *off, int *kind, uint64_t *n)
{
    unsigned lb;
    uint64_t fix;

    if (*off >= len)
        return false;
    *kind = classify(p[*off], &lb, &fix);
    (*off)++;
    if (*kind == K_EXT) {
        /* fixext 1..16 (0xd4-0xd8) or ext 8/16/32: type byte after the length. */
        uint8_t b = p[*off - 1];
        if (b >= 0xd4) {
            *n = ((uint64_t)1 << (b - 0xd4)) + 1;
            return true;
        }
        lb = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
        if (len - *off < lb)
            return false;
        *n = be_read(p + *off, lb) + 1;
        *off += lb;
        return true;
    }
    if (lb) {
        if (len - *off < lb)
            return false;
        fix = be_read(p + *off, lb);
        *off += lb;
    }
    *n = fix;
    return *kind != K_RESERVED;
}

/* Skips one value without recursion: `pending` counts the items still to skip. */
static bool skip_value(const uint8_t *p, size_t len, size_t *off)
{
    uint64_t pending = 1, n;
    int kind;

    while (pending) {
        if (!read_head(p, len, off, &kind, &n))
            return false;
        pending--;
        if (kind == K_ARRAY || kind == K_MAP) {
            pending += kind == K_MAP ? 2 * n : n;
            if (pending > len - *off) /* every item takes a byte: truncated */
                return false;
        } else {
            if (n > len - *off)
                return false;
            *off += (size_t)n;
        }
    }
    return true;
}

void fo_wire_peek(const void *data, size_t len, bool *has_rid, uint64_t *rid, char *model,
                  size_t model_cap)
{
    const uint8_t *p = data;
    size_t off = 0;
    uint64_t n, i;
    int kind;

    *has_rid = false;
    if (model_cap)
        model[0] = '\0';
    if (!read_head(p, len, &off, &kind, &n) || kind != K_MAP)
        return;
    for (i = 0; i < n; i++) {
        uint64_t kl, vl;
        size_t key, voff;
        int vk;

        if (!read_head(p, len, &off, &kind, &kl) || kind != K_STR || kl > len - off)
            return;
        key = off;
        off += (size_t)kl;
        voff = off;
        if (kl == 3 && memcmp(p + key, "rid", 3) == 0 && voff < len &&
            (p[voff] <= 0x7f || (p[voff] >= 0xcc && p[voff] <= 0xcf))) {
            if (!read_head(p, len, &off, &vk, &vl) || vl > len - off)
                return;
            *rid = p[voff] <= 0x7f ? p[voff] : be_read(p + off, (unsigned)vl);
            *has_rid = true;
            off += (size_t)vl;
            continue;
        }
        if (kl == 5 && memcmp(p + key, "model", 5) == 0) {
            if (read_head(p, len, &off, &vk, &vl) && vk == K_STR && vl < model_cap &&
                vl <= len - off) {
                memcpy(model, p + off, (size_t)vl);
                model[vl] = '\0';
                off += (size_t)vl;
                continue;
            }
            off = voff;
        }
        if (!skip_value(p, len, &off))
            return;
    }
}
