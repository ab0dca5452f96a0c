/* json.c - JSON text to and from fo_value (see json.h); json_typed.c maps the typed
 * structs onto values.
 *
 * Export writes text straight into the fo_buf rather than building a jansson tree and
 * calling json_dumpb: jansson cannot hold a uint64 above INT64_MAX, prints reals with its
 * own precision rules, and a tree would copy every string of a 100k-item document once
 * more.
 *
 * Import parses with jansson, then converts the tree into arena values. jansson refuses
 * integer literals outside int64; when it reports one, a scan marks those literals, they
 * are replaced in a private copy by "0" padded with spaces (same length, so error offsets
 * stay right), and their real values are substituted by their position among the number
 * literals. Duplicate keys are rejected, so that position is well defined. */
#include "proto/json.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/arena.h"
#include "proto/value.h"


/* ---- writer -------------------------------------------------------------------------- */

typedef struct writer {
    fo_buf *out;
    int flags;
    int rc; /* first error; once set, nothing more is written */
} writer;

static void put_slow(writer *w, const char *s, size_t n)
{
    if (w->rc == 0 && n && fo_buf_append(w->out, s, n))
        w->rc = FO_ENOMEM;
}

/* Tokens are short: copied in place when they fit (a failed writer has rc set and
 * appends nothing more; its buffer is cut back by the caller). */
static inline void put(writer *w, const char *s, size_t n)
{
    fo_buf *b = w->out;

    if (b->base && b->cap - b->len >= n && !w->rc) {
        memcpy(b->base + b->headroom + b->len, s, n);
        b->len += n;
        return;
    }
    put_slow(w, s, n);
}

/* Length of the well-formed UTF-8 sequence at s (n bytes available), 0 when ill-formed
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    uint32_t cp;
    size_t len, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return len;
}

/* The general case of write_str (the opening quote is written). */
static void write_str_slow(writer *w, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* bytes [run, i) are pending, copied as they are */

    while (i < n) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char tmp[8];
        size_t l = 1;

        if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c < 0x20) {
            switch (c) {
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default: snprintf(tmp, sizeof(tmp), "\\u%04x", c); esc = tmp;
            }
        } else if (c >= 0x80 && (l = utf8_len(p + i, n - i)) == 0) {
            esc = "\\ufffd";
            l = 1;
        }
        if (esc) {
            put(w, s + run, i - run);
            put(w, esc, strlen(esc));
            run = i + l;
        }
        i += l;
    }
    put(w, s + run, n - run);
    put(w, "\"", 1);
}

static void write_str(writer *w, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    fo_buf *b = w->out;
    char *d;
    size_t i;

    if (w->rc)
        return;
    if (n > SIZE_MAX - 2 || fo_buf_reserve(b, n + 2)) {
        w->rc = FO_ENOMEM;
        return;
    }
    /* The usual case, printable ASCII without quotes or backslashes, in one pass. */
    d = fo_buf_data(b) + b->len;
    *d++ = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            break;
        d[i] = (char)c;
    }
    if (i == n) {
        d[n] = '"';
        b->len += n + 2;
        return;
    }
    b->len += i + 1;
    write_str_slow(w, s + i, n - i);
}

/* Decimal digits of u, right-aligned in buf[0, 20); returns where they start. */
static char *u64_digits(uint64_t u, char buf[20])
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char *q = buf + 20;

    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        q -= 2;
        memcpy(q, pairs + 2 * r, 2);
    }
    if (u >= 10) {
        q -= 2;
        memcpy(q, pairs + 2 * u, 2);
    } else {
        *--q = (char)('0' + u);
    }
    return q;
}

static void write_u64(writer *w, uint64_t u)
{
    char buf[20], *q = u64_digits(u, buf);

    put(w, q, (size_t)(buf + 20 - q));
}

static void write_i64(writer *w, int64_t i)
{
    char buf[21], *q;

    q = u64_digits(i < 0 ? 0 - (uint64_t)i : (uint64_t)i, buf + 1);
    if (i < 0)
        *--q = '-';
    put(w, q, (size_t)(buf + 21 - q));
}

static void write_double(writer *w, double f)
{
    char buf[48];
    int prec, n = 0;

    if (!isfinite(f)) {
        put(w, "null", 4);
        return;
    }
    /* The shortest precision that reads back exactly, so 0.1 prints as 0.1. */
    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof(buf) - 3, "%.*g", prec, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    if (!strpbrk(buf, ".e")) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    put(w, buf, (size_t)n);
}

static void newline(writer *w, unsigned depth)
{
    static const char spaces[] = "                                ";
    size_t n = 2 * (size_t)depth;

    if (!(w->flags & FO_JSON_PRETTY))
        return;
    put(w, "\n", 1);
    while (n) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        put(w, spaces, k);
        n -= k;
    }
}

static int cmp_entries(const void *x, const void *y)
{
    const fo_entry *a = *(const fo_entry *const *)x, *b = *(const fo_entry *const *)y;
    char ba[20], bb[20];
    size_t la, lb;
    const char *sa = fo_key_str(a->key, ba, &la), *sb = fo_key_str(b->key, bb, &lb);
    int c = memcmp(sa, sb, la < lb ? la : lb);

    return c ? c : (la > lb) - (la < lb);
}

static void write_value(writer *w, const fo_value *v, unsigned depth);

static void write_map(writer *w, const fo_map *m, unsigned depth)
{
    const fo_entry **order = NULL;
    const fo_entry *entries = fo_map_entries(m);
    uint32_t i, n = fo_map_len(m), k = 0, live = fo_map_count(m);

    if ((w->flags & FO_JSON_SORT_KEYS) && live > 1) {
        if (!(order = malloc((size_t)live * sizeof(*order)))) {
            w->rc = FO_ENOMEM;
            return;
        }
        for (i = 0, n = 0; i < fo_map_len(m); i++)
            if (entries[i].key)
                order[n++] = &entries[i];
        qsort(order, n, sizeof(*order), cmp_entries);
    }
    put(w, "{", 1);
    for (i = 0; i < n && !w->rc; i++) {
        const fo_entry *e = order ? order[i] : &entries[i];
        char buf[20];
        size_t l;
        const char *s;

        if (!e->key)
            continue;
        if (k++)
            put(w, ",", 1);
        newline(w, depth + 1);
        s = fo_key_str(e->key, buf, &l);
        write_str(w, s, l);
        put(w, ": ", (w->flags & FO_JSON_PRETTY) ? 2 : 1);
        write_value(w, &e->value, depth + 1);
    }
    if (k)
        newline(w, depth);
    put(w, "}", 1);
    free(order);
}

static void write_value(writer *w, const fo_value *v, unsigned depth)
{
    uint32_t i;

    if (w->rc)
        return;
    switch (fo_value_type(v)) {
    case FO_NULL: put(w, "null", 4); break;
    case FO_BOOL: v->h.as.b ? put(w, "true", 4) : put(w, "false", 5); break;
    case FO_INT: write_i64(w, v->h.as.i); break;
    case FO_UINT: write_u64(w, v->h.as.u); break;
    case FO_FLOAT: write_double(w, v->h.as.f); break;
    case FO_STR: {
        size_t l;
        const char *s = fo_value_strbuf(v, &l);
        write_str(w, s, l);
        break;
    }
    case FO_ARRAY:
        put(w, "[", 1);
        for (i = 0; i < v->h.len; i++) {
            if (i)
                put(w, ",", 1);
            newline(w, depth + 1);
            write_value(w, &v->h.as.items[i], depth + 1);
        }
        if (v->h.len)
            newline(w, depth);
        put(w, "]", 1);
        break;
    case FO_MAP: write_map(w, v->h.as.map, depth); break;
    default: w->rc = FO_EINVAL;
    }
}

int fo_json_write_str(const char *s, size_t n, fo_buf *out)
{
    writer w = {out, 0, 0};
    size_t len0 = out->len;

    write_str(&w, s, n);
    if (w.rc)
        out->len = len0;
    return w.rc;
}

int fo_json_write_u64(uint64_t u, fo_buf *out)
{
    writer w = {out, 0, 0};

    write_u64(&w, u);
    return w.rc;
}

int fo_json_write_i64(int64_t i, fo_buf *out)
{
    writer w = {out, 0, 0};

    write_i64(&w, i);
    return w.rc;
}

int fo_json_write_value(const fo_value *v, int flags, fo_buf *out)
{
    writer w = {out, flags, 0};
    size_t len0 = out->len;

    write_value(&w, v, 0);
    if (w.rc)
        out->len = len0;
    return w.rc;
}

/* ---- import: text to values ---------------------------------------------------------- */

/* An integer literal jansson could not hold, with the value it stands for. */
typedef struct bignum {
    uint64_t ordinal; /* 1-based position among all number literals */
    fo_value v;
} bignum;

typedef struct scan_state {
    size_t deep_pos; /* offset of the first container past max_depth, SIZE_MAX if none */
    size_t bad_pos;  /* offset of an integer literal beyond double range, SIZE_MAX if none */
    bignum *big;     /* malloc'd, in ordinal order */
    size_t nbig, cap;
} scan_state;

static bool is_numch(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* 0: an int64 (or not an integer literal at all: jansson judges it); 1: *out holds its
 * FO_UINT or FO_FLOAT value; 2: out of double range too; FO_ENOMEM. */
static int big_literal(const char *s, size_t n, fo_value *out)
{
    bool neg = s[0] == '-', over = false;
    uint64_t m = 0;
    size_t i;
    char *tmp;
    double d;

    /* A leading zero makes it no JSON literal at all: it must stay in the copy, for the
     * second parse to refuse it (blanked to "0", it would read as a number). */
    if (n == (size_t)neg || (s[neg] == '0' && n > (size_t)neg + 1))
        return 0;
    for (i = neg; i < n; i++) {
        unsigned dig = (unsigned)(s[i] - '0');
        if (dig > 9)
            return 0;
        if (m > (UINT64_MAX - dig) / 10)
            over = true;
        else if (!over)
            m = m * 10 + dig;
    }
    if (!over) {
        if (neg ? m <= (uint64_t)INT64_MAX + 1 : m <= (uint64_t)INT64_MAX)
            return 0;
        if (!neg) {
            *out = fo_value_uint(m);
            return 1;
        }
    }
    if (!(tmp = malloc(n + 1)))
        return FO_ENOMEM;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    d = strtod(tmp, NULL);
    free(tmp);
    if (!isfinite(d))
        return 2;
    *out = fo_value_float(d);
    return 1;
}

/* One pass over the text outside strings: finds the first container nested deeper than
 * max_depth and, when `copy` is given, the integer literals beyond int64 (blanked in
 * `copy`). Meaningful only for text jansson accepts (or rejects for such a literal). */
static int scan(const char *t, size_t n, uint32_t max_depth, char *copy, scan_state *s)
{
    size_t i = 0;
    uint64_t depth = 0, ordinal = 0;

    s->deep_pos = s->bad_pos = SIZE_MAX;
    while (i < n) {
        char c = t[i];

        if (c == '"') {
            for (i++; i < n && t[i] != '"'; i++)
                if (t[i] == '\\')
                    i++;
            i++;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth && s->deep_pos == SIZE_MAX)
                s->deep_pos = i;
            i++;
        } else if (c == ']' || c == '}') {
            depth -= depth > 0;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i;
            fo_value v;
            int rc;

            while (i < n && is_numch(t[i]))
                i++;
            ordinal++;
            if (!copy || (rc = big_literal(t + start, i - start, &v)) == 0)
                continue;
            if (rc < 0)
                return rc;
            if (rc == 2) {
                s->bad_pos = s->bad_pos == SIZE_MAX ? start : s->bad_pos;
                continue;
            }
            if (s->nbig == s->cap) {
                size_t ncap = s->cap ? 2 * s->cap : 8;
                bignum *nb = realloc(s->big, ncap * sizeof(*nb));
                if (!nb)
                    return FO_ENOMEM;
                s->big = nb;
                s->cap = ncap;
            }
            s->big[s->nbig].ordinal = ordinal;
            s->big[s->nbig++].v = v;
            memset(copy + start, ' ', i - start);
            copy[start] = '0';
        } else {
            i++;
        }
    }
    return 0;
}

typedef struct importer {
    fo_arena *a;
    const bignum *big;
    size_t nbig, ibig;
    uint64_t ordinal;
} importer;

static int import(importer *im, json_t *j, fo_value *out)
{
    bool ok = true;
    size_t i, n;
    int rc;

    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        size_t klen;
        json_t *val;

        if ((n = json_object_size(j)) > UINT32_MAX)
            return FO_ELIMIT;
        *out = fo_value_map(im->a, (uint32_t)n, &ok);
        if (!ok)
            return FO_ENOMEM;
        json_object_keylen_foreach(j, key, klen, val)
        {
            fo_value v;
            fo_key k;

            if ((rc = import(im, val, &v)) != 0)
                return rc;
            k = fo_key_new(im->a, key, klen);
            if (!k || fo_map_set(fo_value_as_map(out), im->a, k, &v, NULL))
                return FO_ENOMEM;
        }
        return 0;
    }
    case JSON_ARRAY:
        if ((n = json_array_size(j)) > UINT32_MAX)
            return FO_ELIMIT;
        *out = fo_value_array(im->a, (uint32_t)n, &ok);
        if (!ok)
            return FO_ENOMEM;
        for (i = 0; i < n; i++)
            if ((rc = import(im, json_array_get(j, i), &out->h.as.items[i])) != 0)
                return rc;
        return 0;
    case JSON_STRING:
        *out = fo_value_str(im->a, json_string_value(j), json_string_length(j), &ok);
        return ok ? 0 : FO_ENOMEM;
    case JSON_INTEGER:
    case JSON_REAL:
        im->ordinal++;
        if (im->ibig < im->nbig && im->big[im->ibig].ordinal == im->ordinal)
            *out = im->big[im->ibig++].v;
        else if (json_is_integer(j))
            *out = fo_value_int((int64_t)json_integer_value(j));
        else
            *out = fo_value_float(json_real_value(j));
        return 0;
    case JSON_TRUE: *out = fo_value_bool(true); return 0;
    case JSON_FALSE: *out = fo_value_bool(false); return 0;
    default: *out = fo_value_null(); return 0;
    }
}

int fo_json_read_value(const char *text, size_t len, uint32_t max_depth, fo_arena *a, fo_value *out,
                       fo_err_info *err)
{
    const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES;
    scan_state s = {SIZE_MAX, SIZE_MAX, NULL, 0, 0};
    json_error_t je;
    json_t *root;
    char *copy = NULL;
    const char *nul;
    importer im;
    int rc = 0;

    fo_err_clear(err);
    if (max_depth > FO_JSON_DEPTH_CAP)
        max_depth = FO_JSON_DEPTH_CAP;
    root = json_loadb(text, len, flags, &je);
    if (!root && json_error_code(&je) == json_error_numeric_overflow) {
        if (!(copy = malloc(len ? len : 1)))
            return fo_err_set(err, FO_ENOMEM, 0, "", "out of memory");
        memcpy(copy, text, len);
        if ((rc = scan(text, len, max_depth, copy, &s)) != 0) {
            fo_err_set(err, rc, 0, "", "out of memory");
            goto out;
        }
        if (s.bad_pos != SIZE_MAX) {
            rc = fo_err_set(err, FO_EPROTO, s.bad_pos, "", "integer out of range");
            goto out;
        }
        root = json_loadb(copy, len, flags, &je);
    }
    if (!root) {
        enum json_error_code code = json_error_code(&je);

        rc = code == json_error_out_of_memory    ? FO_ENOMEM
             : code == json_error_stack_overflow ? FO_ELIMIT
                                                 : FO_EPROTO;
        /* A raw NUL that jansson read past (see below) is the first error when it comes
         * before the one jansson saw (found by fuzz_json: "1\0" deep in a text nested past
         * jansson's own limit was refused for its depth, not for the NUL). */
        if (rc != FO_ENOMEM && (nul = memchr(text, '\0', len)) != NULL &&
            (je.position < 0 || (size_t)(nul - text) < (size_t)je.position)) {
            rc = fo_err_set(err, FO_EPROTO, (size_t)(nul - text), "", "NUL byte outside a string");
            goto out;
        }
        /* Too deep for jansson means past FO_JSON_DEPTH_CAP: say so where our own rule
         * does, at the container that opened past the limit. */
        if (rc == FO_ELIMIT && !copy && scan(text, len, max_depth, NULL, &s) == 0 &&
            s.deep_pos != SIZE_MAX) {
            fo_err_set(err, rc, s.deep_pos, "", "nesting deeper than the limit");
            goto out;
        }
        fo_err_set(err, rc, je.position, "", je.text);
        goto out;
    }
    /* jansson's lexer marks its empty read-ahead buffer with a NUL byte, so a NUL it pushes
     * back after a number or a literal is lost: "7\0" and "[1\0,2]" would be accepted. A raw
     * NUL is never valid JSON (strings hold it only as \u0000), so any left is an error. */
    if ((nul = memchr(text, '\0', len)) != NULL) {
        rc = fo_err_set(err, FO_EPROTO, (size_t)(nul - text), "", "NUL byte outside a string");
        goto out;
    }
    if (!copy)
        scan(text, len, max_depth, NULL, &s);
    if (s.deep_pos != SIZE_MAX) {
        rc = fo_err_set(err, FO_ELIMIT, s.deep_pos, "", "nesting deeper than the limit");
        goto out;
    }
    im.a = a;
    im.big = s.big;
    im.nbig = s.nbig;
    im.ibig = 0;
    im.ordinal = 0;
    if ((rc = import(&im, root, out)) != 0)
        fo_err_set(err, rc, 0, "", rc == FO_ENOMEM ? "out of memory" : "container too large");
out:
    json_decref(root);
    free(copy);
    free(s.big);
    return rc;
}
