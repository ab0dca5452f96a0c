/* wire_read.h - a bounded MessagePack reader over raw bytes, the base of the wire
 * decoder (wire_decode.c). Internal to the wire module.
 *
 * fo_mp_next() reads one item's header (and a str's or bin's bytes) and checks, as it
 * goes, everything fo_wire_scan() checks for the whole frame: truncation, reserved and
 * ext types, max_str, max_elems, depth, max_total, and that the items promised by the
 * open containers can still fit in the bytes left (each takes one at least), so no
 * declared count can make a caller allocate more than the frame could hold. The caller
 * keeps `depth`: +1 while it reads a container's items.
 *
 * Errors carry the current field path (fo_mp_push_name / fo_mp_push_idx / fo_mp_pop),
 * rendered like `batch.completions[3].command.path[1]` by fo_mp_fail(). */
#ifndef FO_WIRE_READ_H
#define FO_WIRE_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/error.h"
#include "proto/value.h"
#include "proto/wire.h"

typedef enum fo_mp_type {
    FO_MP_NIL,
    FO_MP_BOOL,
    FO_MP_UINT, /* every integer >= 0, whatever its encoding (as msgpack-c reports them) */
    FO_MP_INT,  /* negative integers */
    FO_MP_FLOAT, /* float32 (widened) or float64 */
    FO_MP_STR,
    FO_MP_BIN,
    FO_MP_ARRAY,
    FO_MP_MAP,
} fo_mp_type;

typedef struct fo_mp_item {
    uint8_t t;     /* fo_mp_type */
    uint32_t n;    /* str/bin bytes, array items, map pairs */
    const char *s; /* str/bin bytes, in the frame */
    union {
        bool b;
        uint64_t u;
        int64_t i;
        double f;
    } v;
} fo_mp_item;

#define FO_MP_PATH_SEGS 48

typedef struct fo_mp_seg {
    const char *name; /* NULL: array index */
    uint32_t len;
    uint32_t idx;
} fo_mp_seg;

typedef struct fo_mp_dec {
    const uint8_t *p, *end;
    fo_arena *a;
    const fo_wire_limits *l;
    fo_err_info *err;
    bool exact;    /* the decoder's exact pass (wire_decode.c) */
    bool counting; /* count items against max_total and the bytes left */
    uint32_t depth, max_depth;
    uint32_t max_str, max_elems; /* copies of the limits, read for every item */
    uint64_t max_total;
    uint64_t pending; /* items the open containers still promise */
    uint64_t total;   /* objects so far */
    uint32_t nseg;    /* may exceed FO_MP_PATH_SEGS; only the first ones are named */
    fo_mp_seg path[FO_MP_PATH_SEGS];
} fo_mp_dec;

/* Starts reading data[0, len) for one top-level value. */
void fo_mp_init(fo_mp_dec *d, const void *data, size_t len, const fo_wire_limits *l, fo_arena *a,
                fo_err_info *err, bool exact);

/* Records the error with the current field path in d->err and returns `code`. */
int fo_mp_fail(fo_mp_dec *d, int code, const char *msg);
int fo_mp_nomem(fo_mp_dec *d);
/* The slow half of fo_mp_next: every type byte but positive fixint, fixstr, fixmap and
 * fixarray (`c`, already consumed). */
int fo_mp_next_slow(fo_mp_dec *d, uint8_t c, fo_mp_item *it);
/* Accounts for a container of `items` items (2 per map pair) whose header was just read. */
static inline int fo_mp_open(fo_mp_dec *d, uint32_t n, uint64_t items)
{
    if (n > d->max_elems)
        return fo_mp_fail(d, FO_ELIMIT, "too many elements");
    if (d->depth >= d->max_depth)
        return fo_mp_fail(d, FO_ELIMIT, "nested too deeply");
    if (d->counting) {
        d->total += items;
        if (d->total > d->max_total)
            return fo_mp_fail(d, FO_ELIMIT, "too many objects");
        /* Every promised item takes a byte at least: more than remain means truncated,
         * before anything is allocated for them. */
        d->pending += items;
        if (d->pending > (size_t)(d->end - d->p))
            return fo_mp_fail(d, FO_EAGAIN, "truncated");
    }
    return 0;
}


/* The fast pass keeps no path: its errors are never reported (wire_decode.c). */
static inline void fo_mp_push_name(fo_mp_dec *d, const char *s, size_t n)
{
    if (!d->exact)
        return;
    if (d->nseg < FO_MP_PATH_SEGS)
        d->path[d->nseg] = (fo_mp_seg){s, (uint32_t)n, 0};
    d->nseg++;
}

static inline void fo_mp_push_idx(fo_mp_dec *d, uint32_t i)
{
    if (!d->exact)
        return;
    if (d->nseg < FO_MP_PATH_SEGS)
        d->path[d->nseg] = (fo_mp_seg){NULL, 0, i};
    d->nseg++;
}

static inline void fo_mp_pop(fo_mp_dec *d)
{
    if (d->exact)
        d->nseg--;
}

/* Reads the next item at d->p and moves past its header (and a str's or bin's bytes; a
 * container's items follow). 0, or FO_EAGAIN / FO_EPROTO / FO_ELIMIT via fo_mp_fail. */
static inline int fo_mp_next(fo_mp_dec *d, fo_mp_item *it)
{
    if (d->p == d->end)
        return fo_mp_fail(d, FO_EAGAIN, "truncated");
    uint8_t c = *d->p++;
    d->pending--;
    if (c <= 0x7f) {
        it->t = FO_MP_UINT;
        it->v.u = c;
        return 0;
    }
    if ((c & 0xe0) == 0xa0) {
        uint32_t n = c & 0x1f;
        if (n > d->max_str)
            return fo_mp_fail(d, FO_ELIMIT, "string too long");
        if ((size_t)(d->end - d->p) < n)
            return fo_mp_fail(d, FO_EAGAIN, "truncated");
        it->t = FO_MP_STR;
        it->n = n;
        it->s = (const char *)d->p;
        d->p += n;
        return 0;
    }
    if ((c & 0xf0) == 0x80) {
        it->t = FO_MP_MAP;
        it->n = c & 0x0f;
        return fo_mp_open(d, it->n, 2 * (uint64_t)it->n);
    }
    if ((c & 0xf0) == 0x90) {
        it->t = FO_MP_ARRAY;
        it->n = c & 0x0f;
        return fo_mp_open(d, it->n, it->n);
    }
    /* The other common ones: nil, booleans, uint 8 and 16. */
    switch (c) {
    case 0xc0: it->t = FO_MP_NIL; return 0;
    case 0xc2:
    case 0xc3:
        it->t = FO_MP_BOOL;
        it->v.b = c & 1;
        return 0;
    case 0xcc:
        if (d->p == d->end)
            break;
        it->t = FO_MP_UINT;
        it->v.u = *d->p++;
        return 0;
    case 0xcd:
        if (d->end - d->p < 2)
            break;
        it->t = FO_MP_UINT;
        it->v.u = (uint64_t)d->p[0] << 8 | d->p[1];
        d->p += 2;
        return 0;
    }
    return fo_mp_next_slow(d, c, it);
}

/* Reads past one whole value, with every check of fo_mp_next. */
int fo_mp_skip(fo_mp_dec *d);

/* Takes a nil at d->p, if there is one. */
static inline bool fo_mp_take_nil(fo_mp_dec *d)
{
    if (d->p == d->end || *d->p != 0xc0)
        return false;
    d->p++;
    d->pending--;
    return true;
}

/* Loads a str or bin of at most 16 bytes into two words, the bytes past its end zeroed,
 * when the frame has 16 bytes from its start on (little-endian only); false otherwise. */
static inline bool fo_mp_load16(const fo_mp_dec *d, const fo_mp_item *it, uint64_t *a,
                                uint64_t *b)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t n = it->n;
    if (n > 16 || d->end - (const uint8_t *)it->s < 16)
        return false;
    memcpy(a, it->s, 8);
    memcpy(b, it->s + 8, 8);
    *a &= n >= 8 ? ~0ull : (1ull << (8 * n)) - 1;
    *b &= n >= 16 ? ~0ull : n <= 8 ? 0 : (1ull << (8 * (n - 8))) - 1;
    return true;
#else
    (void)d, (void)it, (void)a, (void)b;
    return false;
#endif
}

/* FO_EINVAL "expected str" or "invalid UTF-8" unless `it` is a UTF-8 str. */
int fo_mp_check_str_slow(fo_mp_dec *d, const fo_mp_item *it);

static inline int fo_mp_check_str(fo_mp_dec *d, const fo_mp_item *it)
{
    /* Short ASCII strings (keys, names, IDs) need no call. */
    uint64_t a, b;
    if (it->t == FO_MP_STR && it->n <= 16) {
        if (fo_mp_load16(d, it, &a, &b))
            return (a | b) & 0x8080808080808080ull ? fo_mp_check_str_slow(d, it) : 0;
        uint8_t any = 0; /* too close to the frame's end for the words */
        for (uint32_t i = 0; i < it->n; i++)
            any |= (uint8_t)it->s[i];
        if (any < 0x80)
            return 0;
    }
    return fo_mp_check_str_slow(d, it);
}

/* Converts a whole value whose first item `it` has been read into `out` (strings and
 * keys copied into d->a; map keys must be UTF-8 str; bin is refused). Recursion is
 * bounded by max_depth (<= 32). */
int fo_mp_conv_item(fo_mp_dec *d, const fo_mp_item *it, fo_value *out);

/* The next item as a map key: a str (its UTF-8 is not checked here), else
 * "map key must be str". */
static inline int fo_mp_next_key(fo_mp_dec *d, fo_mp_item *k)
{
    int rc = fo_mp_next(d, k);

    if (rc)
        return rc;
    return k->t == FO_MP_STR ? 0 : fo_mp_fail(d, FO_EINVAL, "map key must be str");
}

#endif
