/* mp_text.h - a small text notation compiled to MessagePack, for tests that must say
 * exactly which bytes go on the wire (including wrong ones). Test-only, header-only.
 *   {k: v, ...}  map        [a, b]  array      'text' or bare word  str
 *   12 -3        int        1.5     float64    f32:1.5              float32
 *   nil true false          bin'x'  bin        keys may be any item ({1: 2})
 * Commas are optional separators. mp("...") returns a buffer the caller destroys. */
#ifndef FO_TEST_MP_TEXT_H
#define FO_TEST_MP_TEXT_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/buf.h"

static void put(fo_buf *b, const void *p, size_t n)
{
    cr_assert_eq(fo_buf_append(b, p, n), 0);
}

static void put_be(fo_buf *b, uint8_t type, uint64_t v, int bytes)
{
    uint8_t tmp[9];
    tmp[0] = type;
    for (int i = 0; i < bytes; i++)
        tmp[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    put(b, tmp, 1 + (size_t)bytes);
}

static void put_hdr(fo_buf *b, uint8_t fix, uint32_t fixmax, uint8_t t8, uint8_t t16, uint8_t t32,
                    uint32_t n)
{
    if (n <= fixmax)
        put_be(b, (uint8_t)(fix | n), 0, 0);
    else if (t8 && n <= 0xff)
        put_be(b, t8, n, 1);
    else if (n <= 0xffff)
        put_be(b, t16, n, 2);
    else
        put_be(b, t32, n, 4);
}

static void put_str(fo_buf *b, const char *s, size_t n)
{
    put_hdr(b, 0xa0, 31, 0xd9, 0xda, 0xdb, (uint32_t)n);
    put(b, s, n);
}

static void put_uint(fo_buf *b, uint64_t u)
{
    if (u < 128)
        put_be(b, (uint8_t)u, 0, 0);
    else if (u <= 0xff)
        put_be(b, 0xcc, u, 1);
    else if (u <= 0xffff)
        put_be(b, 0xcd, u, 2);
    else if (u <= 0xffffffff)
        put_be(b, 0xce, u, 4);
    else
        put_be(b, 0xcf, u, 8);
}

static void put_int(fo_buf *b, int64_t i)
{
    if (i >= 0)
        put_uint(b, (uint64_t)i);
    else if (i >= -32)
        put_be(b, (uint8_t)i, 0, 0);
    else
        put_be(b, 0xd3, (uint64_t)i, 8);
}

static void skip_ws(const char **s)
{
    while (**s == ' ' || **s == ',' || **s == '\n')
        (*s)++;
}

/* Parses one item of the notation at *s, appends its encoding to b. */
static void mp_item(const char **s, fo_buf *b)
{
    skip_ws(s);
    const char *p = *s;
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        fo_buf body;
        uint32_t n = 0;
        fo_buf_init(&body, 0);
        p++;
        for (;;) {
            skip_ws(&p);
            if (*p == close)
                break;
            cr_assert(*p, "unterminated container");
            mp_item(&p, &body);
            if (close == '}') {
                skip_ws(&p);
                cr_assert_eq(*p, ':', "expected ':' at %s", p);
                p++;
                mp_item(&p, &body);
            }
            n++;
        }
        if (close == '}')
            put_hdr(b, 0x80, 15, 0, 0xde, 0xdf, n);
        else
            put_hdr(b, 0x90, 15, 0, 0xdc, 0xdd, n);
        put(b, fo_buf_data(&body), body.len);
        fo_buf_destroy(&body);
        *s = p + 1;
        return;
    }
    if (*p == '\'' || strncmp(p, "bin'", 4) == 0) {
        bool bin = *p == 'b';
        p += bin ? 4 : 1;
        const char *end = strchr(p, '\'');
        cr_assert(end, "unterminated string");
        if (bin) {
            put_be(b, 0xc4, (uint64_t)(end - p), 1);
            put(b, p, (size_t)(end - p));
        } else {
            put_str(b, p, (size_t)(end - p));
        }
        *s = end + 1;
        return;
    }
    if (strncmp(p, "f32:", 4) == 0) {
        char *end;
        float f = strtof(p + 4, &end);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        put_be(b, 0xca, bits, 4);
        *s = end;
        return;
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        size_t n = strspn(p, "-0123456789.e");
        char *end;
        if (memchr(p, '.', n) || memchr(p, 'e', n)) {
            double d = strtod(p, &end);
            uint64_t bits;
            memcpy(&bits, &d, 8);
            put_be(b, 0xcb, bits, 8);
        } else if (*p == '-') {
            put_int(b, strtoll(p, &end, 10));
        } else {
            put_uint(b, strtoull(p, &end, 10));
        }
        *s = end;
        return;
    }
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
    cr_assert(n > 0, "bad notation at '%s'", p);
    if (n == 3 && strncmp(p, "nil", 3) == 0)
        put_be(b, 0xc0, 0, 0);
    else if (n == 4 && strncmp(p, "true", 4) == 0)
        put_be(b, 0xc3, 0, 0);
    else if (n == 5 && strncmp(p, "false", 5) == 0)
        put_be(b, 0xc2, 0, 0);
    else
        put_str(b, p, n);
    *s = p + n;
}

/* The encoding of `text`, in a buffer the caller destroys. */
static fo_buf mp(const char *text)
{
    fo_buf b;
    fo_buf_init(&b, 0);
    mp_item(&text, &b);
    skip_ws(&text);
    cr_assert_eq(*text, '\0', "trailing notation: %s", text);
    return b;
}

#endif
