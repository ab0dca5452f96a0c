/* store_nats_record.c - subject tokens and records of the NATS backend (store_nats.h). */
#include <stdlib.h>
#include <string.h>

#include "hub/store_nats.h"

#define RECORD_MAGIC "FOL1" /* first bytes of every record (a version: readers refuse others) */

/* ---- subject tokens ----------------------------------------------------------------- */

static bool kept(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == ':' || c == '-';
}

int fo_nats_subject_token(const char *name, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (!name || len == 0 || len > (SIZE_MAX - 1) / 3 || cap < 3 * len + 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (kept(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return (int)o;
}

static int unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int fo_nats_subject_name(const char *token, size_t len, char *out, size_t cap)
{
    size_t o = 0;

    if (!token || len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (o + 1 >= cap)
            return -1;
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len) /* needs two more bytes */
                return -1;
            hi = unhex(token[i + 1]);
            lo = unhex(token[i + 2]);
            if (hi < 0 || lo < 0 || kept((unsigned char)(hi << 4 | lo)))
                return -1;
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (kept(c)) {
            out[o++] = (char)c;
        } else {
            return -1;
        }
    }
    out[o] = '\0';
    return (int)o;
}

/* ---- records -------------------------------------------------------------------------- */

/* A write: its flags, the fixed fields, six length-prefixed parts, and a seventh (the
 * snapshot's exactly-once table) only with HAS_CLIENTS, so records written before it read
 * the same. */
enum { HAS_BATCH = 1, HAS_CLIENT = 2, HAS_SNAP = 4, HAS_IDENTITY = 8, HAS_RULES = 16,
       HAS_CLIENTS = 32 };


static unsigned char *put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *put_bytes(unsigned char *p, const void *b, size_t n)
{
    p = put32(p, (uint32_t)n);
    if (n)
        memcpy(p, b, n);
    return p + n;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

size_t fo_nats_write_size(const fo_store_write *w)
{
    return FO_NATS_WRITE_FIXED + (w->batch ? w->batch_size : 0) + slen(w->client) +
           (w->snap ? w->snap_size : 0) + slen(w->identity) +
           (w->audit ? w->original_size + strlen(w->audit) : 0) +
           (w->snap && w->clients ? 4 + w->clients_size : 0);
}

void *fo_nats_record_encode(const fo_store_write *w, size_t n, size_t *size)
{
    size_t total = 4 + 4;
    unsigned char *buf, *p;

    if (n > UINT32_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t parts[6] = {w[i].batch ? w[i].batch_size : 0, slen(w[i].client),
                           w[i].snap ? w[i].snap_size : 0, slen(w[i].identity),
                           w[i].audit ? w[i].original_size : 0, slen(w[i].audit)};
        total += FO_NATS_WRITE_FIXED - 24;
        if (w[i].snap && w[i].clients) {
            if (w[i].clients_size > UINT32_MAX)
                return NULL;
            total += 4 + w[i].clients_size;
        }
        for (int k = 0; k < 6; k++) {
            if (parts[k] > UINT32_MAX)
                return NULL;
            total += 4 + parts[k];
        }
    }
    if (!(buf = malloc(total)))
        return NULL;
    memcpy(buf, RECORD_MAGIC, 4);
    p = put32(buf + 4, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const fo_store_write *x = &w[i];
        *p++ = (unsigned char)((x->batch ? HAS_BATCH : 0) | (x->client && x->client[0] ? HAS_CLIENT : 0) |
                               (x->snap ? HAS_SNAP : 0) | (x->identity ? HAS_IDENTITY : 0) |
                               (x->audit ? HAS_RULES : 0) |
                               (x->snap && x->clients ? HAS_CLIENTS : 0));
        p = put64(p, x->from);
        p = put32(p, x->len);
        p = put64(p, x->seq);
        p = put64(p, (uint64_t)x->now_ms);
        p = put64(p, x->snap_count);
        p = put64(p, x->cut);
        p = put_bytes(p, x->batch, x->batch ? x->batch_size : 0);
        p = put_bytes(p, x->client, slen(x->client));
        p = put_bytes(p, x->snap, x->snap ? x->snap_size : 0);
        p = put_bytes(p, x->identity, slen(x->identity));
        p = put_bytes(p, x->original, x->audit ? x->original_size : 0);
        p = put_bytes(p, x->audit, slen(x->audit));
        if (x->snap && x->clients)
            p = put_bytes(p, x->clients, x->clients_size);
    }
    *size = (size_t)(p - buf);
    return buf;
}

typedef struct reader {
    const unsigned char *p, *end;
    bool bad;
} reader;

static uint64_t get64(reader *r)
{
    uint64_t v = 0;

    if (r->end - r->p < 8) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}

static uint32_t get32(reader *r)
{
    uint32_t v = 0;

    if (r->end - r->p < 4) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)r->p[i] << (8 * i);
    r->p += 4;
    return v;
}

/* A length-prefixed part, copied to *tail and NUL-terminated there. */
static const char *get_part(reader *r, char **tail, size_t *n)
{
    uint32_t len = get32(r);
    char *dst = *tail;

    if (r->bad || (size_t)(r->end - r->p) < len) {
        r->bad = true;
        return NULL;
    }
    memcpy(dst, r->p, len);
    dst[len] = '\0';
    r->p += len;
    *tail += len + 1;
    *n = len;
    return dst;
}

int fo_nats_record_decode(const void *data, size_t size, const char *model, fo_nats_record *out)
{
    reader r = {data, (const unsigned char *)data + size, false};
    fo_store_write *w;
    uint32_t n;
    char *tail;

    memset(out, 0, sizeof(*out));
    /* A JetStream message is megabytes at most: a size past 4 GiB is not a record (and the
     * bound keeps the allocation below in range). */
    if (size < 8 || size > ((size_t)1 << 32) || memcmp(data, RECORD_MAGIC, 4) != 0)
        return FO_STORE_ECORRUPT;
    r.p += 4;
    n = get32(&r);
    /* Every write takes at least FO_NATS_WRITE_FIXED bytes: bounds n before allocating. */
    if (n > size / FO_NATS_WRITE_FIXED)
        return FO_STORE_ECORRUPT;
    /* Parts are copied with a NUL each: at most size + 7 * n bytes of strings. */
    if (!(w = calloc(1, n * sizeof(*w) + size + 7 * (size_t)n + 1)))
        return FO_ENOMEM;
    tail = (char *)(w + n);
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        fo_store_write *x = &w[i];
        unsigned flags;
        size_t clen = 0, ilen = 0, alen = 0, olen = 0;
        const char *batch, *client, *snap, *identity, *orig, *audit;
        if (r.p >= r.end) {
            r.bad = true;
            break;
        }
        flags = *r.p++;
        x->model = model;
        x->from = get64(&r);
        x->len = get32(&r);
        x->seq = get64(&r);
        x->now_ms = (int64_t)get64(&r);
        x->snap_count = get64(&r);
        x->cut = get64(&r);
        batch = get_part(&r, &tail, &x->batch_size);
        client = get_part(&r, &tail, &clen);
        snap = get_part(&r, &tail, &x->snap_size);
        identity = get_part(&r, &tail, &ilen);
        orig = get_part(&r, &tail, &olen);
        audit = get_part(&r, &tail, &alen);
        if (r.bad || flags & ~63u) { /* a later version's flag is not ours to drop */
            r.bad = true;
            break;
        }
        if (flags & HAS_CLIENTS) {
            x->clients = get_part(&r, &tail, &x->clients_size);
            if (r.bad || !(flags & HAS_SNAP)) {
                r.bad = true;
                break;
            }
        }
        x->batch = flags & HAS_BATCH ? batch : NULL;
        x->client = flags & HAS_CLIENT ? client : NULL;
        x->snap = flags & HAS_SNAP ? snap : NULL;
        x->identity = flags & HAS_IDENTITY ? identity : NULL;
        x->audit = flags & HAS_RULES ? audit : NULL;
        x->original = flags & HAS_RULES ? orig : NULL;
        x->original_size = flags & HAS_RULES ? olen : 0;
        if (!x->batch)
            x->batch_size = 0;
        if (!x->snap)
            x->snap_size = 0;
        /* The encoder flags a client only when it is not "" (NULL and "" mean the same). */
        if ((x->batch && x->len == 0) || (x->client && (!x->batch || !x->client[0])))
            r.bad = true;
        /* Nor does it write what no reader could use: strings with a NUL inside (they
         * would be read cut short), a batch ending past 2^64, a truncated table. */
        if ((x->client && strlen(x->client) != clen) ||
            (x->identity && strlen(x->identity) != ilen) ||
            (x->audit && strlen(x->audit) != alen) || (x->batch && x->from + x->len < x->from))
            r.bad = true;
        if (x->clients) {
            size_t off = 0, cl;
            const char *c;
            uint64_t seq;
            while (fo_store_clients_next(x->clients, x->clients_size, &off, &c, &cl, &seq))
                ;
            r.bad |= off != x->clients_size;
        }
    }
    if (r.bad || r.p != r.end) {
        free(w);
        return FO_STORE_ECORRUPT;
    }
    out->writes = w;
    out->n = n;
    return 0;
}

void fo_nats_record_free(fo_nats_record *r)
{
    if (r) {
        free(r->writes);
        r->writes = NULL;
        r->n = 0;
    }
}

uint64_t fo_nats_record_count(const fo_nats_record *r)
{
    uint64_t c = 0;

    for (size_t i = 0; i < r->n; i++) {
        const fo_store_write *w = &r->writes[i];
        uint64_t end = w->batch ? w->from + w->len : w->from;
        if (end > c)
            c = end;
        if (w->snap && w->snap_count > c)
            c = w->snap_count;
    }
    return c;
}
