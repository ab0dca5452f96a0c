/* test_history.c - a model's history as encoded bytes (hub/history.h), and old history read
 * back from the store: batches committed to a real SQLite file, the ring trimmed to its
 * newest entries, then [from, to) served from the store's rows plus the ring, after a
 * reopen too. (The store's own read rules are in test_store.c.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "hub/history.h"
#include "hub/store.h"
#include "proto/json.h"
#include "proto/wire.h"
#include "tests/support/storetest.h"

TestSuite(history);

enum { BATCHES = 120, PER = 2 };

/* The encoded batch [from, from + PER): updates with 200-byte payloads. */
static void encode(uint64_t from, fo_arena *a, fo_buf *out)
{
    char json[2048], pad[201];
    size_t n;
    fo_batch b;
    fo_err_info err;

    memset(pad, 'a' + (int)(from % 26), 200);
    pad[200] = 0;
    n = (size_t)snprintf(json, sizeof(json), "{\"from\":%llu,\"completions\":[",
                         (unsigned long long)from);
    for (int i = 0; i < PER; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n,
                              "%s{\"command\":{\"action\":\"update\",\"props\":"
                              "{\"k%llu\":\"%s\"}}}",
                              i ? "," : "", (unsigned long long)from + (uint64_t)i, pad);
    n += (size_t)snprintf(json + n, sizeof(json) - n, "]}");
    cr_assert_eq(fo_json_read_batch(json, n, a, &b, &err), 0, "%s", err.msg);
    fo_buf_init(out, 0);
    cr_assert_eq(fo_wire_encode_batch(&b, out), 0);
}

/* The expected encoding of [from, to) as one batch. */
static void expected(uint64_t from, uint64_t to, fo_buf *out)
{
    fo_arena a;
    fo_completion *all;
    fo_wire_limits l;

    fo_arena_init(&a, 0);
    fo_wire_limits_default(&l);
    all = fo_arena_alloc(&a, (size_t)(to - from + PER) * sizeof(*all));
    for (uint64_t f = from - from % PER; f < to; f += PER) {
        fo_buf one;
        fo_batch b;
        encode(f, &a, &one);
        cr_assert_eq(fo_wire_decode_batch(fo_buf_data(&one), one.len, &l, &a, &b, NULL), 0);
        for (uint32_t i = 0; i < PER; i++)
            if (f + i >= from && f + i < to)
                all[f + i - from] = b.items[i];
        fo_buf_destroy(&one);
    }
    fo_batch want = {from, (uint32_t)(to - from), all};
    fo_buf_init(out, 0);
    cr_assert_eq(fo_wire_encode_batch(&want, out), 0);
    fo_arena_destroy(&a);
}

/* The same range as spliceable runs (what a sync splices into an ack): their bytes are the
 * completions of the expected batch, when `to` ends an entry; FO_EGAP otherwise. */
static void assert_parts(const fo_history *h, uint64_t from, uint64_t to, const fo_buf *want,
                         fo_arena *a)
{
    fo_wire_part *parts;
    uint32_t n, count;
    const void *items;
    size_t len, off = 0;
    int rc = fo_history_parts(h, from, to, a, &parts, &n);

    if (from < to && to % PER != 0) {
        cr_assert_eq(rc, FO_EGAP, "[%llu, %llu) ends inside an entry: rc %d",
                     (unsigned long long)from, (unsigned long long)to, rc);
        return;
    }
    cr_assert_eq(rc, 0, "[%llu, %llu): parts rc %d", (unsigned long long)from,
                 (unsigned long long)to, rc);
    cr_assert_eq(fo_wire_batch_items(fo_buf_data(want), want->len, 0, true, &items, &len, &count),
                 0);
    cr_assert_eq(count, to - from);
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_leq(off + parts[i].n, len);
        cr_assert_eq(memcmp((const char *)items + off, parts[i].p, parts[i].n), 0,
                     "[%llu, %llu): part %u differs", (unsigned long long)from,
                     (unsigned long long)to, i);
        off += parts[i].n;
    }
    cr_assert_eq(off, len, "[%llu, %llu): parts hold %zu bytes, want %zu",
                 (unsigned long long)from, (unsigned long long)to, off, len);
}

static void assert_range(const fo_history *h, uint64_t from, uint64_t to)
{
    fo_arena a;
    fo_batch got;
    fo_buf gb, wb;

    fo_arena_init(&a, 0);
    cr_assert_eq(fo_history_get(h, from, to, &a, &got), 0, "[%llu, %llu) not served",
                 (unsigned long long)from, (unsigned long long)to);
    fo_buf_init(&gb, 0);
    cr_assert_eq(fo_wire_encode_batch(&got, &gb), 0);
    expected(from, to, &wb);
    cr_assert_eq(gb.len, wb.len, "[%llu, %llu): %zu bytes, want %zu", (unsigned long long)from,
                 (unsigned long long)to, gb.len, wb.len);
    cr_assert_eq(memcmp(fo_buf_data(&gb), fo_buf_data(&wb), gb.len), 0);
    assert_parts(h, from, to, &wb, &a);
    fo_buf_destroy(&gb);
    fo_buf_destroy(&wb);
    fo_arena_destroy(&a);
}

Test(history, ring_of_encoded_batches)
{
    fo_history h;
    fo_arena a;
    size_t full;

    fo_history_init(&h);
    fo_arena_init(&a, 0);
    for (uint64_t f = 0; f < BATCHES * PER; f += PER) {
        fo_buf b;
        encode(f, &a, &b);
        cr_assert_eq(fo_history_add_copy(&h, f, PER, fo_buf_data(&b), b.len, 1000), 0);
        fo_buf_destroy(&b);
    }
    cr_assert_eq(fo_history_start(&h), 0);
    assert_range(&h, 0, BATCHES * PER);
    assert_range(&h, 3, 77);
    /* A batch that does not continue the ring is refused. */
    cr_assert_eq(fo_history_add_copy(&h, 5, 1, "x", 1, 1000), FO_EGAP);
    /* Only durable batches may leave memory. */
    full = h.bytes;
    cr_assert_eq(fo_history_trim(&h, 0, 0), 0);
    cr_assert_eq(h.bytes, full);
    cr_assert_gt(fo_history_trim(&h, 100, 0), 0);
    cr_assert_eq(fo_history_start(&h), 100);
    cr_assert_not(fo_history_covers(&h, 99, 120));
    cr_assert_neq(fo_history_get(&h, 99, 120, &a, &(fo_batch){0}), 0);
    assert_range(&h, 100, 150);
    /* --history: a ring keeps what reaches `keep` commands back, no more. */
    fo_history_destroy(&h);
    for (uint64_t f = 0; f < 40; f += PER) {
        fo_buf b;
        encode(f, &a, &b);
        cr_assert_eq(fo_history_add_copy(&h, f, PER, fo_buf_data(&b), b.len, 10), 0);
        fo_buf_destroy(&b);
    }
    cr_assert_eq(fo_history_start(&h), 30);
    fo_history_destroy(&h);
    fo_arena_destroy(&a);
}

/* ---- read back from SQLite -------------------------------------------------------------- */

Test(history, old_history_read_back_from_sqlite)
{
    fo_st t;
    fo_history h;
    fo_arena a;
    uint64_t count = BATCHES * PER;

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    fo_history_init(&h);
    fo_arena_init(&a, 0);
    /* Every batch goes to the store and to the ring, as the hub does; a snapshot at 100 with
     * a retention cut there. */
    for (uint64_t f = 0; f < count; f += PER) {
        fo_buf b;
        fo_store_write wr = {.model = "m", .from = f, .len = PER, .client = "c", .seq = f + 1};
        encode(f, &a, &b);
        wr.batch = fo_buf_data(&b);
        wr.batch_size = b.len;
        if (f + PER == 100) {
            wr.snap = "\x80"; /* an empty map: the test reads the log only */
            wr.snap_size = 1;
            wr.snap_count = 100;
        }
        if (f + PER == 200)
            wr.cut = 100;
        cr_assert_eq(fo_st_commit(&t, &wr, 1, NULL), 0);
        cr_assert_eq(fo_history_add_copy(&h, f, PER, fo_buf_data(&b), b.len, 1000), 0);
        fo_buf_destroy(&b);
    }
    /* Out of memory: everything but the newest 40 commands. */
    fo_history_trim(&h, count, 0);
    cr_assert_eq(fo_history_start(&h), UINT64_MAX);
    for (uint64_t f = count - 40; f < count; f += PER) {
        fo_buf b;
        encode(f, &a, &b);
        cr_assert_eq(fo_history_add_copy(&h, f, PER, fo_buf_data(&b), b.len, 1000), 0);
        fo_buf_destroy(&b);
    }
    cr_assert_not(fo_history_covers(&h, 150, count));
    /* What a sync from 151 needs: the rows before the ring, read back, then the ring. */
    fo_history_set_disk(&h, fo_st_read(&t, FO_ST_LOG, "m", 151, count - 40));
    cr_assert(fo_history_covers(&h, 151, count));
    assert_range(&h, 151, count);
    assert_range(&h, 151, 160);
    fo_history_clear_disk(&h);
    cr_assert_not(fo_history_covers(&h, 151, count));
    /* The same after a reopen: the rows are on disk. */
    fo_st_close(&t);
    fo_st_open(&t, NULL);
    fo_history_set_disk(&h, fo_st_read(&t, FO_ST_LOG, "m", 100, count - 40));
    assert_range(&h, 100, count);
    /* Past the retention cut the store has nothing: the request falls back. */
    fo_history_set_disk(&h, fo_st_read(&t, FO_ST_LOG, "m", 10, count - 40));
    cr_assert(h.disk->gone);
    cr_assert_not(fo_history_covers(&h, 10, count));
    cr_assert_neq(fo_history_get(&h, 10, count, &a, &(fo_batch){0}), 0);
    fo_history_destroy(&h);
    fo_arena_destroy(&a);
    fo_st_finish(&t);
}
