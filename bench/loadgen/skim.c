#include "bench/loadgen/skim.h"

#include <string.h>

#include "proto/error.h"

typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
} rd;

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static bool need(rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}

/* Container headers: the element count, or -1 (and r->bad) when it is something else. */
static int64_t hdr(rd *r, uint8_t fix, uint8_t fixmask, uint8_t b16, uint8_t b32)
{
    uint8_t b;

    if (!need(r, 1))
        return -1;
    b = *r->p;
    if ((b & fixmask) == fix) {
        r->p++;
        return b & (uint8_t)~fixmask;
    }
    if (b == b16 && need(r, 3)) {
        r->p += 3;
        return (int64_t)be(r->p - 2, 2);
    }
    if (b == b32 && need(r, 5)) {
        r->p += 5;
        return (int64_t)be(r->p - 4, 4);
    }
    r->bad = true;
    return -1;
}

static int64_t map_len(rd *r)
{
    return hdr(r, 0x80, 0xF0, 0xde, 0xdf);
}

static int64_t arr_len(rd *r)
{
    return hdr(r, 0x90, 0xF0, 0xdc, 0xdd);
}

static bool str(rd *r, const char **s, uint32_t *n)
{
    uint8_t b;
    uint64_t len;

    if (!need(r, 1))
        return false;
    b = *r->p;
    if ((b & 0xE0) == 0xA0) {
        len = b & 0x1F;
        r->p++;
    } else if (b >= 0xd9 && b <= 0xdb) {
        int w = 1 << (b - 0xd9);
        if (!need(r, 1 + (size_t)w))
            return false;
        len = be(r->p + 1, w);
        r->p += 1 + w;
    } else {
        r->bad = true;
        return false;
    }
    if (!need(r, len))
        return false;
    *s = (const char *)r->p;
    *n = (uint32_t)len;
    r->p += len;
    return true;
}

/* Any integer (negative ones included), as int64; uint64 above INT64_MAX is refused. */
static bool integer(rd *r, int64_t *v)
{
    uint8_t b;

    if (!need(r, 1))
        return false;
    b = *r->p;
    if (b <= 0x7f || b >= 0xe0) {
        *v = b <= 0x7f ? (int64_t)b : (int64_t)(int8_t)b;
        r->p++;
        return true;
    }
    if (b >= 0xcc && b <= 0xd3) {
        int w = 1 << ((b - 0xcc) & 3), sh = 64 - 8 * (1 << ((b - 0xcc) & 3));
        uint64_t u;
        if (!need(r, 1 + (size_t)w))
            return false;
        u = be(r->p + 1, w);
        r->p += 1 + w;
        if (b <= 0xcf && u > INT64_MAX) {
            r->bad = true;
            return false;
        }
        /* signed forms: sign-extend from w bytes */
        *v = b <= 0xcf || sh == 0 ? (int64_t)u : (int64_t)(u << sh) >> sh;
        return true;
    }
    r->bad = true;
    return false;
}

/* The next byte, or -1 at the end. */
static int peek(const rd *r)
{
    return r->p < r->end ? *r->p : -1;
}

static bool uint_(rd *r, uint64_t *v)
{
    int64_t i;

    if (!integer(r, &i) || i < 0) {
        r->bad = true;
        return false;
    }
    *v = (uint64_t)i;
    return true;
}

/* Skips one value, however nested, without recursion. */
static void skip(rd *r)
{
    uint64_t todo = 1;

    while (todo && !r->bad) {
        uint8_t b;
        uint64_t n = 0;
        todo--;
        if (!need(r, 1))
            return;
        b = *r->p;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            r->p++;
        } else if ((b & 0xF0) == 0x80 || b == 0xde || b == 0xdf) {
            todo += 2 * (uint64_t)map_len(r);
        } else if ((b & 0xF0) == 0x90 || b == 0xdc || b == 0xdd) {
            todo += (uint64_t)arr_len(r);
        } else if ((b & 0xE0) == 0xA0 || (b >= 0xd9 && b <= 0xdb)) {
            const char *s;
            uint32_t len;
            str(r, &s, &len);
        } else if (b >= 0xc4 && b <= 0xc6) { /* bin */
            int w = 1 << (b - 0xc4);
            if (need(r, 1 + (size_t)w)) {
                n = be(r->p + 1, w);
                r->p += 1 + w;
                if (need(r, n))
                    r->p += n;
            }
        } else if (b == 0xca || b == 0xcb) {
            n = b == 0xca ? 4 : 8;
            if (need(r, 1 + n))
                r->p += 1 + n;
        } else if (b >= 0xcc && b <= 0xd3) {
            int64_t v;
            integer(r, &v);
        } else {
            r->bad = true; /* ext types and 0xc1 do not occur in the wire contract */
        }
    }
}

static bool key_is(const char *k, uint32_t n, const char *want)
{
    return n == strlen(want) && memcmp(k, want, n) == 0;
}

/* {command: {props: {t: int}}} -> stamp, when present. */
static void completion_stamp(rd *r, fo_skim *out)
{
    int64_t n = map_len(r), m, q;
    const char *k;
    uint32_t kn;

    for (; n > 0 && !r->bad; n--) {
        if (!str(r, &k, &kn))
            return;
        if (!key_is(k, kn, "command")) {
            skip(r);
            continue;
        }
        for (m = map_len(r); m > 0 && !r->bad; m--) {
            if (!str(r, &k, &kn))
                return;
            if (!key_is(k, kn, "props") || peek(r) == 0xc0) {
                skip(r);
                continue;
            }
            for (q = map_len(r); q > 0 && !r->bad; q--) {
                int64_t t;
                if (!str(r, &k, &kn))
                    return;
                if (key_is(k, kn, "t") && out->nstamps < FO_SKIM_MAX_STAMPS && peek(r) != 0xca &&
                    peek(r) != 0xcb && integer(r, &t))
                    out->stamps[out->nstamps++] = t;
                else
                    skip(r);
            }
        }
    }
}

/* CompletionBatch: from and the number of completions (stamps when `stamps`). */
static void batch(rd *r, uint64_t *from, uint32_t *len, fo_skim *stamps)
{
    int64_t n = map_len(r), c;
    const char *k;
    uint32_t kn;
    bool has_from = false, has_items = false;

    for (; n > 0 && !r->bad; n--) {
        if (!str(r, &k, &kn))
            return;
        if (key_is(k, kn, "from")) {
            has_from = uint_(r, from);
        } else if (key_is(k, kn, "completions")) {
            c = arr_len(r);
            if (c < 0)
                return;
            *len = (uint32_t)c;
            has_items = true;
            for (; c > 0 && !r->bad; c--) {
                if (stamps)
                    completion_stamp(r, stamps);
                else
                    skip(r);
            }
        } else {
            skip(r);
        }
    }
    if (!has_from || !has_items)
        r->bad = true;
}

/* 1 when the result needs the full decoder (errors, mappedPaths). */
static int result(rd *r, fo_skim *out)
{
    int64_t n = map_len(r), m;
    const char *k;
    uint32_t kn;
    bool partial = false, has_applied = false;

    for (; n > 0 && !r->bad; n--) {
        if (!str(r, &k, &kn))
            return 0;
        if (key_is(k, kn, "applied")) {
            batch(r, &out->from, &out->len, NULL);
            has_applied = true;
        } else if (key_is(k, kn, "errors") && peek(r) != 0xc0) {
            if (arr_len(r) != 0)
                return 1; /* failed commands: the full decoder reports them */
        } else if (key_is(k, kn, "sync") && peek(r) != 0xc0) {
            for (m = map_len(r); m > 0 && !r->bad; m--) {
                if (!str(r, &k, &kn))
                    return 0;
                if (key_is(k, kn, "isPartial") && (peek(r) == 0xc2 || peek(r) == 0xc3)) {
                    partial = *r->p++ == 0xc3;
                } else if (key_is(k, kn, "diff")) {
                    batch(r, &out->sync_from, &out->sync_len, NULL);
                    out->sync = FO_SYNC_PARTIAL;
                } else if (key_is(k, kn, "latest")) {
                    int64_t s = map_len(r);
                    for (; s > 0 && !r->bad; s--) {
                        if (!str(r, &k, &kn))
                            return 0;
                        if (key_is(k, kn, "commandCount"))
                            uint_(r, &out->latest_count);
                        else
                            skip(r);
                    }
                    out->sync = FO_SYNC_FULL;
                } else if (key_is(k, kn, "mappedPaths") && peek(r) != 0xc0) {
                    if (map_len(r) != 0)
                        return 1; /* remapped IDs: the full decoder has them */
                } else {
                    skip(r);
                }
            }
            if ((out->sync == FO_SYNC_PARTIAL) != partial)
                r->bad = true;
        } else {
            skip(r);
        }
    }
    if (!has_applied)
        r->bad = true;
    return 0;
}

int fo_skim_frame(const void *data, size_t len, fo_skim *out)
{
    rd r = {data, (const uint8_t *)data + len, false};
    const uint8_t *body;
    const char *k, *t = NULL;
    uint32_t kn, tn = 0;
    int64_t n, i;
    int full = 0;

    memset(out, 0, sizeof(*out));
    /* `t` first: the encoder writes it first, but be correct if it does not. */
    n = map_len(&r);
    body = r.p;
    for (i = 0; i < n && !r.bad && !t; i++) {
        if (!str(&r, &k, &kn))
            break;
        if (key_is(k, kn, "t"))
            str(&r, &t, &tn);
        else
            skip(&r);
    }
    if (r.bad || !t)
        return FO_EPROTO;
    if (key_is(t, tn, "ack"))
        out->type = FO_MSG_ACK;
    else if (key_is(t, tn, "push"))
        out->type = FO_MSG_PUSH;
    else
        return FO_EAGAIN;
    r.p = body;
    for (i = 0; i < n && !r.bad && !full; i++) {
        if (!str(&r, &k, &kn))
            break;
        if (key_is(k, kn, "model"))
            str(&r, &out->model, &out->model_len);
        else if (key_is(k, kn, "seq") && out->type == FO_MSG_ACK)
            uint_(&r, &out->seq);
        else if (key_is(k, kn, "result") && out->type == FO_MSG_ACK)
            full = result(&r, out);
        else if (key_is(k, kn, "diff") && out->type == FO_MSG_PUSH)
            batch(&r, &out->from, &out->len, out);
        else
            skip(&r);
    }
    if (full)
        return FO_EAGAIN;
    if (r.bad || r.p != r.end || !out->model)
        return FO_EPROTO;
    return 0;
}
