#include "hub/history.h"

#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

/* What one entry costs beside its frame's bytes: the ring slot, the frame header and the
 * allocator's bookkeeping. A frame shared with subscriber queues is counted whole. */
#define ENTRY_OVERHEAD (sizeof(fo_hbatch) + sizeof(fo_frame) + 16)

static size_t entry_bytes(const fo_hbatch *e)
{
    return ENTRY_OVERHEAD + e->frame->len;
}

static fo_hbatch *at(const fo_history *h, uint32_t i)
{
    return &h->ring[(h->head + i) % h->cap];
}

void fo_history_init(fo_history *h)
{
    memset(h, 0, sizeof(*h));
}

static void drop_oldest(fo_history *h)
{
    fo_hbatch *e = at(h, 0);

    h->commands -= e->len;
    h->bytes -= entry_bytes(e);
    fo_frame_unref(e->frame);
    h->head = (h->head + 1) % h->cap;
    h->len--;
}

void fo_history_destroy(fo_history *h)
{
    while (h->len)
        drop_oldest(h);
    free(h->ring);
    fo_history_clear_disk(h);
    memset(h, 0, sizeof(*h));
}

int fo_history_add(fo_history *h, uint64_t from, uint32_t len, fo_frame *f, uint32_t off,
                   uint32_t size, uint32_t keep)
{
    fo_hbatch *e;

    if (!len || !keep)
        return 0;
    if (h->len && at(h, h->len - 1)->from + at(h, h->len - 1)->len != from)
        return FO_EGAP;
    if (h->len == h->cap) {
        uint32_t ncap = h->cap ? h->cap * 2 : 4, j;
        fo_hbatch *n = malloc(ncap * sizeof(*n));
        if (!n)
            return FO_ENOMEM;
        for (j = 0; j < h->len; j++)
            n[j] = *at(h, j);
        free(h->ring);
        h->bytes += (ncap - h->cap) * sizeof(*n);
        h->ring = n;
        h->head = 0;
        h->cap = ncap;
    }
    e = at(h, h->len);
    e->from = from;
    e->len = len;
    e->off = off;
    e->size = size;
    e->items_off = 0;
    {
        const void *items;
        size_t ilen;
        uint32_t count;
        /* Where its completions start, once: syncs splice them from there. */
        if (fo_wire_batch_items(f->data + off, size, 0, false, &items, &ilen, &count) == 0 &&
            count == len)
            e->items_off = (uint32_t)((const unsigned char *)items - (f->data + off));
    }
    e->frame = fo_frame_ref(f);
    h->len++;
    h->commands += len;
    h->bytes += entry_bytes(e);
    while (h->len > 1 && h->commands - at(h, 0)->len >= keep)
        drop_oldest(h);
    return 0;
}

int fo_history_add_copy(fo_history *h, uint64_t from, uint32_t len, const void *p, size_t n,
                        uint32_t keep)
{
    fo_frame *f;
    int rc;

    if (!len || !keep)
        return 0;
    if (n > UINT32_MAX)
        return FO_ELIMIT;
    if (!(f = fo_frame_new(p, n)))
        return FO_ENOMEM;
    rc = fo_history_add(h, from, len, f, 0, (uint32_t)n, keep);
    fo_frame_unref(f);
    return rc;
}

uint64_t fo_history_start(const fo_history *h)
{
    return h->len ? at(h, 0)->from : UINT64_MAX;
}

size_t fo_history_trim(fo_history *h, uint64_t durable, size_t max_bytes)
{
    size_t before = h->bytes;

    while (h->len && h->bytes > max_bytes && at(h, 0)->from + at(h, 0)->len <= durable)
        drop_oldest(h);
    if (!h->len && h->ring) {
        h->bytes -= h->cap * sizeof(fo_hbatch);
        free(h->ring);
        h->ring = NULL;
        h->cap = h->head = 0;
    }
    return before - h->bytes;
}

/* Limits for our own bytes (pushed or read back from the store): generous. */
static void own_limits(fo_wire_limits *l)
{
    fo_wire_limits_default(l);
    l->max_frame = (size_t)1 << 31;
    l->max_elems = UINT32_MAX / 2;
    l->max_total = UINT32_MAX / 2;
    l->max_str = UINT32_MAX / 2;
}

/* Decodes the batch [efrom, efrom + elen) at p[0..n) and appends its part in [*pos, to)
 * to items; *pos advances. */
static int take(const void *p, size_t n, uint64_t efrom, uint32_t elen, uint64_t from,
                uint64_t *pos, uint64_t to, fo_completion *items, fo_arena *a)
{
    fo_wire_limits l;
    fo_batch b;
    uint64_t skip, take;
    int rc;

    if (efrom + elen <= *pos || *pos >= to)
        return 0;
    if (efrom > *pos)
        return FO_EGAP;
    own_limits(&l);
    if ((rc = fo_wire_decode_batch(p, n, &l, a, &b, NULL)) != 0)
        return rc;
    if (b.from != efrom || b.len != elen)
        return FO_EPROTO;
    skip = *pos - efrom;
    take = elen - skip;
    if (take > to - *pos)
        take = to - *pos;
    memcpy(items + (*pos - from), b.items + skip, (size_t)take * sizeof(*items));
    *pos += take;
    return 0;
}

static fo_completion *alloc_items(fo_arena *a, uint64_t from, uint64_t to)
{
    return fo_arena_alloc(a, (size_t)(to - from + 1) * sizeof(fo_completion));
}

int fo_history_from_rows(const fo_store_entry *rows, uint32_t n, uint64_t from, uint64_t to,
                         fo_arena *a, fo_batch *out)
{
    fo_completion *items = alloc_items(a, from, to);
    uint64_t pos = from;
    uint32_t i;
    int rc;

    if (!items)
        return FO_ENOMEM;
    for (i = 0; i < n && pos < to; i++)
        if ((rc = take(rows[i].batch, rows[i].batch_size, rows[i].from, rows[i].len, from, &pos, to,
                       items, a)) != 0)
            return rc;
    if (pos != to)
        return FO_EGAP;
    out->from = from;
    out->len = (uint32_t)(to - from);
    out->items = items;
    return 0;
}

/* The ring's index of the entry holding `pos` (which must be within the ring). */
static uint32_t find(const fo_history *h, uint64_t pos)
{
    uint32_t lo = 0, hi = h->len - 1;

    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        if (at(h, mid)->from <= pos)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static bool disk_covers(const fo_history *h, uint64_t from, uint64_t to)
{
    const fo_store_result *r = h->disk;

    if (from >= to)
        return true;
    if (!r || r->gone || !r->n_entries)
        return false;
    return r->entries[0].from <= from &&
           r->entries[r->n_entries - 1].from + r->entries[r->n_entries - 1].len >= to;
}

bool fo_history_covers(const fo_history *h, uint64_t from, uint64_t to)
{
    uint64_t start = fo_history_start(h);

    if (from >= to)
        return true;
    if (from >= start)
        return h->len && to <= at(h, h->len - 1)->from + at(h, h->len - 1)->len;
    /* The older part from the disk rows, the rest from the ring. */
    return disk_covers(h, from, to < start ? to : start) &&
           (to <= start || fo_history_covers(h, start, to));
}

int fo_history_get(const fo_history *h, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out)
{
    uint64_t start = fo_history_start(h), pos = from;
    fo_completion *items;
    uint32_t i;
    int rc;

    if (from == to) {
        out->from = from;
        out->len = 0;
        out->items = NULL;
        return 0;
    }
    if (from > to || !fo_history_covers(h, from, to))
        return -1;
    if (!(items = alloc_items(a, from, to)))
        return FO_ENOMEM;
    if (pos < start) {
        const fo_store_result *r = h->disk;
        uint64_t end = to < start ? to : start;
        for (i = 0; i < r->n_entries && pos < end; i++) {
            const fo_store_entry *e = &r->entries[i];
            if ((rc = take(e->batch, e->batch_size, e->from, e->len, from, &pos, end, items, a)) !=
                0)
                return rc;
        }
    }
    for (i = pos < to ? find(h, pos) : h->len; i < h->len && pos < to; i++) {
        const fo_hbatch *e = at(h, i);
        if ((rc = take(e->frame->data + e->off, e->size, e->from, e->len, from, &pos, to, items,
                       a)) != 0)
            return rc;
    }
    if (pos != to)
        return -1;
    out->from = from;
    out->len = (uint32_t)(to - from);
    out->items = items;
    return 0;
}

/* Adds entry [efrom, efrom + elen) at p[0, n) from `*pos` on, when it ends by `to`. */
static int part(const void *p, size_t n, uint64_t efrom, uint32_t elen, bool check, uint64_t *pos,
                uint64_t to, fo_wire_part *parts, uint32_t *np)
{
    const void *items;
    size_t len;
    uint32_t count;

    if (efrom + elen <= *pos)
        return 0;
    if (efrom > *pos || efrom + elen > to)
        return FO_EGAP; /* a gap, or a range that ends inside the entry: decode instead */
    if (fo_wire_batch_items(p, n, (uint32_t)(*pos - efrom), check, &items, &len, &count) ||
        count != efrom + elen - *pos)
        return FO_EPROTO;
    if (len)
        parts[(*np)++] = (fo_wire_part){items, len};
    *pos = efrom + elen;
    return 0;
}

int fo_history_parts(const fo_history *h, uint64_t from, uint64_t to, fo_arena *a,
                     fo_wire_part **parts, uint32_t *n)
{
    uint64_t start = fo_history_start(h), pos = from;
    uint32_t i, cap = h->len + (h->disk ? h->disk->n_entries : 0);
    fo_wire_part *ps;
    int rc;

    *parts = NULL;
    *n = 0;
    if (from >= to)
        return from == to ? 0 : FO_EINVAL;
    if (!fo_history_covers(h, from, to))
        return FO_EGAP;
    if (!(ps = fo_arena_alloc(a, (size_t)(cap + 1) * sizeof(*ps))))
        return FO_ENOMEM;
    if (pos < start) {
        const fo_store_result *r = h->disk;
        uint64_t end = to < start ? to : start;
        for (i = 0; i < r->n_entries && pos < end; i++) {
            const fo_store_entry *e = &r->entries[i];
            if ((rc = part(e->batch, e->batch_size, e->from, e->len, true, &pos, end, ps, n)))
                return rc;
        }
    }
    for (i = pos < to ? find(h, pos) : h->len; i < h->len && pos < to; i++) {
        const fo_hbatch *e = at(h, i);
        if (e->items_off && e->from == pos && e->from + e->len <= to) {
            ps[(*n)++] = (fo_wire_part){e->frame->data + e->off + e->items_off,
                                        e->size - e->items_off};
            pos += e->len;
        } else if ((rc = part(e->frame->data + e->off, e->size, e->from, e->len, false, &pos, to,
                              ps, n))) {
            return rc;
        }
    }
    if (pos != to)
        return FO_EGAP;
    *parts = ps;
    return 0;
}

void fo_history_set_disk(fo_history *h, fo_store_result *r)
{
    fo_store_result_free(h->disk);
    h->disk = r;
    h->disk_tried = true;
}

void fo_history_clear_disk(fo_history *h)
{
    fo_store_result_free(h->disk);
    h->disk = NULL;
    h->disk_tried = false;
}
