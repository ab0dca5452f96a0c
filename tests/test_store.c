/* test_store.c - the durable store (hub/store.h), against both backends: a real SQLite file
 * in a fresh temp dir and the memory backend. Every test runs its own uv loop, counts the
 * callbacks, closes the store and asserts uv_loop_close() == 0. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/store.h"
#include "proto/wire.h"
#include "tests/support.h"
#include "tests/support/storetest.h"

/* ---- harness: tests/support/storetest.h ---------------------------------------------- */

#define LOAD(t, m, h) fo_st_read((t), FO_ST_LOAD, (m), (h), 0)
#define READ_LOG(t, m, f, to) fo_st_read((t), FO_ST_LOG, (m), (f), (to))
#define READ_AT(t, m, at) fo_st_read((t), FO_ST_AT, (m), (at), 0)

#define NOSNAP UINT64_MAX

/* Checks a read result's shape: gone, count, rows (and the first row's from when there is
 * one), the snapshot's count (NOSNAP: none); returns r. */
static fo_store_result *shape(fo_store_result *r, bool gone, uint64_t count, uint32_t n,
                              uint64_t first, uint64_t snap)
{
    cr_assert_eq(r->gone, gone);
    cr_assert_eq(r->count, count, "count %llu", (unsigned long long)r->count);
    cr_assert_eq(r->n_entries, n, "%u rows", r->n_entries);
    if (n)
        cr_assert_eq(r->entries[0].from, first);
    cr_assert_eq(r->has_snapshot, snap != NOSNAP);
    cr_assert_eq(r->snap_count, snap == NOSNAP ? 0 : snap);
    cr_assert_eq(r->snap == NULL, snap == NOSNAP);
    return r;
}

#define SHAPE(r, ...) fo_store_result_free(shape((r), __VA_ARGS__))

static void check_client(const fo_store_client *c, const char *client, uint64_t seq, uint64_t count)
{
    cr_assert_str_eq(c->client, client);
    cr_assert_eq(c->seq, seq);
    cr_assert_eq(c->count, count);
}

#define BOTH(fn)                                                                                   \
    Test(store, fn##_sqlite)                                                                       \
    {                                                                                              \
        fn(FO_STORE_SQLITE);                                                                       \
    }                                                                                              \
    Test(store, fn##_memory)                                                                       \
    {                                                                                              \
        fn(FO_STORE_MEMORY);                                                                       \
    }

/* ---- commit then load --------------------------------------------------------------- */

static void commit_load(fo_store_kind kind)
{
    fo_st t;
    char b[4][96];
    fo_store_result *r;
    fo_store_stats st;
    fo_arena a;
    fo_buf wire;
    fo_batch in, out;

    fo_st_init(&t, kind, NULL);
    /* a real CompletionBatch in wire form for the last write */
    fo_arena_init(&a, 0);
    fo_buf_init(&wire, 0);
    in = tj_batch(&a, "{\"from\": 5, \"completions\": [{\"command\": {\"action\": \"create\", "
                      "\"path\": [\"items\", \"7\"], \"props\": {\"title\": \"x\"}}, "
                      "\"createdId\": \"7\"}]}");
    cr_assert_eq(fo_wire_encode_batch(&in, &wire), 0);

    fo_store_write w[4] = {
        fo_st_row(b[0], "doc.1", 0, 3, "alice", 1),
        fo_st_row(b[1], "doc.1", 3, 2, "bob", 9),
        fo_st_row(b[2], "other:model", 0, 1, NULL, 0),
        {.model = "doc.1",
         .from = 5,
         .len = 1,
         .batch = fo_buf_data(&wire),
         .batch_size = wire.len,
         .client = "alice",
         .seq = 2},
    };
    cr_assert_eq(fo_st_commit(&t, w, 4, NULL), 0);

    r = shape(LOAD(&t, "doc.1", 0), false, 6, 3, 0, NOSNAP);
    cr_assert(r->exists);
    cr_assert_eq(r->n_before, 0);
    fo_st_check_row(&r->entries[0], "doc.1", 0, 3, "alice", 1);
    fo_st_check_row(&r->entries[1], "doc.1", 3, 2, "bob", 9);
    cr_assert_eq(r->entries[2].batch_size, wire.len);
    cr_assert_eq(
        fo_wire_decode_batch(r->entries[2].batch, r->entries[2].batch_size, NULL, &a, &out, NULL),
        0);
    cr_assert_eq(out.from, 5);
    cr_assert_eq(out.len, 1);
    cr_assert_eq(r->n_clients, 2);
    check_client(&r->clients[0], "alice", 2, 6);
    check_client(&r->clients[1], "bob", 9, 5);
    fo_store_result_free(r);

    r = shape(LOAD(&t, "other:model", UINT64_MAX), false, 1, 1, 0, NOSNAP);
    cr_assert(r->exists);
    fo_st_check_row(&r->entries[0], "other:model", 0, 1, "", 0);
    cr_assert_eq(r->n_clients, 0);
    fo_store_result_free(r);

    r = shape(LOAD(&t, "missing", 0), false, 0, 0, 0, NOSNAP);
    cr_assert_not(r->exists);
    cr_assert_eq(r->n_clients, 0);
    fo_store_result_free(r);

    fo_store_stats_get(t.s, &st);
    cr_assert_eq(st.commits, 1);
    cr_assert_eq(st.commit_errors, 0);
    cr_assert_eq(st.transactions, 1);
    cr_assert_eq(st.writes, 4);
    cr_assert_eq(st.bytes_written, w[0].batch_size + w[1].batch_size + w[2].batch_size + wire.len);
    cr_assert_eq(st.reads, 3);
    cr_assert_eq(st.queued, 0);
    cr_assert(st.commit_latency_ns_sum > 0);
    uint64_t nb = 0;
    for (int i = 0; i < FO_STORE_LAT_BUCKETS; i++)
        nb += st.lat_buckets[i];
    cr_assert_eq(nb, 1);
    fo_buf_destroy(&wire);
    fo_arena_destroy(&a);
    fo_st_finish(&t);
}
BOTH(commit_load)

/* ---- one commit, many writes --------------------------------------------------------- */

static void many_writes(fo_store_kind kind)
{
    enum { MODELS = 10, PER = 100, N = MODELS * PER };
    fo_st t;
    char(*bufs)[96] = calloc(N, 96);
    fo_store_write *w = calloc(N, sizeof(*w));
    char names[MODELS][16];
    fo_store_stats st;

    fo_st_init(&t, kind, NULL);
    for (int m = 0; m < MODELS; m++)
        snprintf(names[m], sizeof(names[m]), "m%d", m);
    /* interleaved models, each contiguous */
    for (int i = 0; i < N; i++) {
        int m = i % MODELS, k = i / MODELS;
        w[i] = fo_st_row(bufs[i], names[m], (uint64_t)k * 2, 2, "c", (uint64_t)k + 1);
    }
    cr_assert_eq(fo_st_commit(&t, w, N, NULL), 0);
    free(w);
    free(bufs);
    for (int m = 0; m < MODELS; m++) {
        fo_store_result *r = shape(LOAD(&t, names[m], 0), false, PER * 2, PER, 0, NOSNAP);
        for (int k = 0; k < PER; k++)
            fo_st_check_row(&r->entries[k], names[m], (uint64_t)k * 2, 2, "c", (uint64_t)k + 1);
        cr_assert_eq(r->n_clients, 1);
        check_client(&r->clients[0], "c", PER, PER * 2);
        fo_store_result_free(r);
    }
    fo_store_stats_get(t.s, &st);
    cr_assert_eq(st.commits, 1);
    cr_assert_eq(st.transactions, 1);
    cr_assert_eq(st.writes, N);
    fo_st_finish(&t);
}
BOTH(many_writes)

/* ---- restart ----------------------------------------------------------------------- */

Test(store, reopen_sqlite)
{
    fo_st t;
    char b[3][96];
    fo_store *second;
    fo_err_info err;
    fo_store_result *r;

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    fo_store_write w[3] = {fo_st_row(b[0], "m", 0, 1, "a", 1), fo_st_row(b[1], "m", 1, 4, "a", 2),
                           fo_st_row(b[2], "n", 0, 2, "b", 5)};
    w[1].snap = "SNAP@5";
    w[1].snap_size = 6;
    w[1].snap_count = 5;
    cr_assert_eq(fo_st_commit(&t, w, 3, NULL), 0);

    /* the data dir is locked while the store is open */
    cr_assert_eq(fo_store_open(&t.loop, FO_STORE_SQLITE, t.dir, NULL, &second, &err),
                 FO_STORE_EBUSY);
    cr_assert_neq(strstr(err.msg, "in use"), NULL, "%s", err.msg);

    fo_st_close(&t);
    fo_st_open(&t, NULL); /* the restart */
    r = shape(LOAD(&t, "m", 0), false, 5, 2, 0, 5);
    cr_assert_eq(r->snap_size, 6);
    cr_assert_eq(memcmp(r->snap, "SNAP@5", 6), 0);
    cr_assert_eq(r->n_before, 2);
    fo_st_check_row(&r->entries[0], "m", 0, 1, "a", 1);
    fo_st_check_row(&r->entries[1], "m", 1, 4, "a", 2);
    cr_assert_eq(r->n_clients, 1);
    check_client(&r->clients[0], "a", 2, 5);
    fo_store_result_free(r);
    r = shape(LOAD(&t, "n", UINT64_MAX), false, 2, 1, 0, NOSNAP);
    fo_st_check_row(&r->entries[0], "n", 0, 2, "b", 5);
    fo_store_result_free(r);
    /* the log continues where it was */
    fo_store_write more = fo_st_row(b[0], "m", 5, 1, "a", 3);
    cr_assert_eq(fo_st_commit(&t, &more, 1, NULL), 0);
    r = shape(LOAD(&t, "m", UINT64_MAX), false, 6, 1, 5, 5);
    cr_assert_eq(r->n_before, 0);
    fo_store_result_free(r);
    fo_st_finish(&t);
}

/* Log rows of a typical batch (ten 100-byte commands, ~1.4 KB) live in the table's pages:
 * in the WITHOUT ROWID tables of schema 2 each such row spilled ~400 bytes into an overflow
 * page of its own, and the file was several times the rows it held. */
Test(store, sqlite_file_is_about_its_rows)
{
    enum { N = 400, SIZE = 1400 };
    fo_st t;
    char *blob = malloc(SIZE), path[128];
    fo_store_write w[N];
    struct stat sb;
    off_t total = 0;

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    for (int i = 0; i < SIZE; i++)
        blob[i] = (char)('a' + i % 26);
    for (int i = 0; i < N; i++) {
        w[i] = (fo_store_write){.model = i % 2 ? "list:b" : "list:a", .from = (uint64_t)i / 2 * 10,
                                .len = 10, .client = "c", .seq = (uint64_t)i / 2 + 1};
        w[i].batch = blob;
        w[i].batch_size = SIZE;
    }
    cr_assert_eq(fo_st_commit(&t, w, N, NULL), 0);
    fo_st_close(&t); /* the WAL is checkpointed into the file */
    for (const char *f = "flushout.db"; f; f = strcmp(f, "flushout.db") ? NULL : "flushout.db-wal") {
        snprintf(path, sizeof(path), "%s/%s", t.dir, f);
        if (stat(path, &sb) == 0)
            total += sb.st_size;
    }
    free(blob);
    fo_st_finish(&t);
    /* two such rows fit a 4 KB page: ~1.5x; schema 2 took ~6x */
    cr_assert_lt(total, (off_t)N * SIZE * 2, "%lld bytes on disk for %d rows of %d bytes",
                 (long long)total, N, SIZE);
}

/* ---- retention ----------------------------------------------------------------------- */

static void commit_range(fo_st *t, const char *model, uint64_t from, uint64_t to, uint32_t step,
                         uint64_t snap_every)
{
    for (uint64_t f = from; f < to; f += step) {
        char buf[96], snap[32];
        fo_store_write w = fo_st_row(buf, model, f, step, "c", f / step + 1);
        if (snap_every && (f + step) % snap_every == 0) {
            w.snap = snap;
            w.snap_size =
                (size_t)snprintf(snap, sizeof(snap), "doc@%llu", (unsigned long long)(f + step));
            w.snap_count = f + step;
        }
        cr_assert_eq(fo_st_commit(t, &w, 1, NULL), 0);
    }
}

static void retention(fo_store_kind kind)
{
    fo_st t;
    char buf[96], msg[512];
    fo_store_result *r;

    fo_st_init(&t, kind, NULL);
    commit_range(&t, "m", 0, 20, 2, 6); /* snapshots at 6, 12, 18 */
    fo_store_write w = {.model = "m", .cut = 10};
    cr_assert_eq(fo_st_commit(&t, &w, 1, NULL), 0); /* base: the snapshot at 6 */
    r = shape(LOAD(&t, "m", 0), false, 20, 7, 6, 18);
    cr_assert_eq(r->n_before, 6); /* [6, 18) */
    cr_assert_eq(r->entries[6].from, 18);
    fo_store_result_free(r);
    SHAPE(READ_LOG(&t, "m", 5, UINT64_MAX), true, 20, 0, 0, NOSNAP);
    r = shape(READ_LOG(&t, "m", 10, 12), false, 20, 1, 10, NOSNAP);
    fo_st_check_row(&r->entries[0], "m", 10, 2, "c", 6);
    fo_store_result_free(r);
    r = shape(READ_AT(&t, "m", 9), false, 20, 2, 6, 6); /* the snapshot at 6 + [6,8) [8,10) */
    cr_assert_eq(memcmp(r->snap, "doc@6", 5), 0);
    fo_store_result_free(r);
    SHAPE(READ_AT(&t, "m", 5), true, 20, 0, 0, NOSNAP);

    /* cut at the newest snapshot, in the same write: every log row goes, the snapshot stays */
    w = fo_st_row(buf, "m", 20, 2, "c", 11);
    w.snap = "doc@22";
    w.snap_size = 6;
    w.snap_count = 22;
    w.cut = 1000;
    cr_assert_eq(fo_st_commit(&t, &w, 1, NULL), 0);
    r = shape(LOAD(&t, "m", 0), false, 22, 0, 0, 22);
    cr_assert(r->exists);
    cr_assert_eq(r->n_clients, 1);
    cr_assert_eq(r->clients[0].seq, 11);
    fo_store_result_free(r);
    SHAPE(READ_AT(&t, "m", 22), false, 22, 0, 0, 22);
    SHAPE(READ_LOG(&t, "m", 22, UINT64_MAX), false, 22, 0, 0, NOSNAP);
    SHAPE(READ_LOG(&t, "m", 21, UINT64_MAX), true, 22, 0, 0, NOSNAP);

    /* an empty log continues at the newest snapshot, nowhere else */
    w = fo_st_row(buf, "m", 23, 1, "c", 12);
    cr_assert_eq(fo_st_commit(&t, &w, 1, msg), FO_STORE_ECONFLICT);
    cr_assert_neq(strstr(msg, "ends at 22"), NULL, "%s", msg);
    w = fo_st_row(buf, "m", 22, 1, "c", 12);
    cr_assert_eq(fo_st_commit(&t, &w, 1, NULL), 0);
    r = shape(LOAD(&t, "m", UINT64_MAX), false, 23, 1, 22, 22);
    cr_assert_eq(r->n_before, 0);
    fo_store_result_free(r);

    /* no snapshot at or before the cut: nothing is deleted */
    commit_range(&t, "x", 0, 10, 1, 0);
    w = (fo_store_write){.model = "x", .cut = 8};
    cr_assert_eq(fo_st_commit(&t, &w, 1, NULL), 0);
    SHAPE(READ_LOG(&t, "x", 0, UINT64_MAX), false, 10, 10, 0, NOSNAP);
    fo_st_finish(&t);
}
BOTH(retention)

/* ---- read_log, read_state_at --------------------------------------------------------- */

static void reads(fo_store_kind kind)
{
    fo_st t;
    fo_store_result *r;

    fo_st_init(&t, kind, NULL);
    commit_range(&t, "m", 0, 30, 3, 15); /* snapshots at 15 and 30 */

    r = shape(READ_LOG(&t, "m", 4, 10), false, 30, 3, 3, NOSNAP); /* [3,6) [6,9) [9,12) */
    fo_st_check_row(&r->entries[0], "m", 3, 3, "c", 2);
    fo_st_check_row(&r->entries[2], "m", 9, 3, "c", 4);
    fo_store_result_free(r);
    SHAPE(READ_LOG(&t, "m", 0, UINT64_MAX), false, 30, 10, 0, NOSNAP);
    SHAPE(READ_LOG(&t, "m", 30, UINT64_MAX), false, 30, 0, 0, NOSNAP); /* up to date */
    SHAPE(READ_LOG(&t, "m", 100, 200), false, 30, 0, 0, NOSNAP);
    SHAPE(READ_LOG(&t, "m", 7, 7), false, 30, 0, 0, NOSNAP);

    r = shape(READ_AT(&t, "m", 16), false, 30, 1, 15, 15); /* snapshot 15 + [15,18) */
    cr_assert_eq(memcmp(r->snap, "doc@15", 6), 0);
    fo_st_check_row(&r->entries[0], "m", 15, 3, "c", 6);
    fo_store_result_free(r);
    /* nothing <= 14: the empty document + [0, 15) */
    r = shape(READ_AT(&t, "m", 14), false, 30, 5, 0, NOSNAP);
    fo_st_check_row(&r->entries[4], "m", 12, 3, "c", 5);
    fo_store_result_free(r);
    SHAPE(READ_AT(&t, "m", 0), false, 30, 0, 0, NOSNAP);
    /* a snapshot-only write replaces the one at the same count */
    fo_store_write w = {.model = "m", .snap = "doc@30b", .snap_size = 7, .snap_count = 30};
    cr_assert_eq(fo_st_commit(&t, &w, 1, NULL), 0);
    r = shape(READ_AT(&t, "m", 1000), false, 30, 0, 0, 30); /* beyond the end: at 30 */
    cr_assert_eq(r->snap_size, 7);
    cr_assert_eq(memcmp(r->snap, "doc@30b", 7), 0);
    fo_store_result_free(r);

    r = shape(READ_LOG(&t, "nothing", 0, UINT64_MAX), false, 0, 0, 0, NOSNAP);
    cr_assert_not(r->exists);
    fo_store_result_free(r);
    r = shape(READ_AT(&t, "nothing", 5), false, 0, 0, 0, NOSNAP);
    cr_assert_not(r->exists);
    fo_store_result_free(r);
    fo_st_finish(&t);
}
BOTH(reads)

/* ---- exactly-once rows --------------------------------------------------------------- */

static void exactly_once(fo_store_kind kind)
{
    fo_st t;
    char b[4][96];
    fo_store_result *r;

    fo_st_init(&t, kind, NULL);
    fo_store_write w1[2] = {fo_st_row(b[0], "m", 0, 1, "zed", 1), fo_st_row(b[1], "m", 1, 1, "amy", 7)};
    cr_assert_eq(fo_st_commit(&t, w1, 2, NULL), 0);
    /* the same client twice in one commit: the later row wins */
    fo_store_write w2[3] = {fo_st_row(b[0], "m", 2, 2, "zed", 2), fo_st_row(b[1], "m", 4, 1, "new", 1),
                            fo_st_row(b[2], "m", 5, 3, "new", 2)};
    cr_assert_eq(fo_st_commit(&t, w2, 3, NULL), 0);
    fo_store_write w3 = fo_st_row(b[3], "other", 0, 1, "zed", 40);
    cr_assert_eq(fo_st_commit(&t, &w3, 1, NULL), 0);

    r = LOAD(&t, "m", UINT64_MAX);
    cr_assert_eq(r->n_clients, 3);
    check_client(&r->clients[0], "amy", 7, 2);
    check_client(&r->clients[1], "new", 2, 8);
    check_client(&r->clients[2], "zed", 2, 4);
    fo_store_result_free(r);
    r = LOAD(&t, "other", UINT64_MAX);
    cr_assert_eq(r->n_clients, 1);
    check_client(&r->clients[0], "zed", 40, 1);
    fo_store_result_free(r);
    fo_st_finish(&t);
}
BOTH(exactly_once)

/* ---- order, queued commits, close with work in flight ------------------------------- */

static void order_and_drain(fo_store_kind kind)
{
    fo_st t;
    char b[3][96];
    fo_st_req c[3] = {{.t = &t}, {.t = &t}, {.t = &t}}, l = {.t = &t};
    fo_store_stats st;

    fo_st_init(&t, kind, NULL);
    /* A big commit keeps the worker busy, so the next three queue up behind it and are
     * merged into one transaction; it fails, and each is retried on its own. */
    enum { BIG = 3000 };
    char(*bb)[96] = calloc(BIG, 96);
    fo_store_write *big = calloc(BIG, sizeof(*big));
    for (int i = 0; i < BIG; i++)
        big[i] = fo_st_row(bb[i], "big", (uint64_t)i, 1, NULL, 0);
    cr_assert_eq(fo_store_commit(t.s, big, BIG, NULL, NULL), 0); /* cb may be NULL */
    free(big);
    free(bb);
    fo_store_write w0 = fo_st_row(b[0], "m", 0, 1, "a", 1);
    fo_store_write w1 = fo_st_row(b[1], "m", 5, 1, "a", 2); /* gap */
    fo_store_write w2 = fo_st_row(b[2], "n", 0, 1, "a", 3);
    cr_assert_eq(fo_store_commit(t.s, &w0, 1, fo_st_on_commit, &c[0]), 0);
    cr_assert_eq(fo_store_commit(t.s, &w1, 1, fo_st_on_commit, &c[1]), 0);
    cr_assert_eq(fo_store_commit(t.s, &w2, 1, fo_st_on_commit, &c[2]), 0);
    cr_assert_eq(fo_store_load(t.s, "m", 0, fo_st_on_read, &l), 0); /* sees the commits before it */
    cr_assert_eq(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(c[i].done, 1);
        cr_assert_eq(c[i].order, i + 1);
    }
    cr_assert_eq(c[0].rc, 0);
    cr_assert_eq(c[1].rc, FO_STORE_ECONFLICT);
    cr_assert_neq(strstr(c[1].msg, "ends at 1"), NULL, "%s", c[1].msg);
    cr_assert_eq(c[2].rc, 0);
    cr_assert_eq(l.done, 1);
    cr_assert_eq(l.order, 4);
    cr_assert_eq(l.res->count, 1);
    cr_assert_eq(l.res->n_entries, 1);
    fo_store_result_free(l.res);
    fo_store_stats_get(t.s, &st);
    cr_assert_eq(st.commits, 3);
    cr_assert_eq(st.commit_errors, 1);
    /* 1 + 3 unmerged, or 1 + 1 failed merge + 3 retries (the usual case) */
    cr_assert(st.transactions == 4 || st.transactions == 5, "%llu",
              (unsigned long long)st.transactions);
    cr_log_info("%s: %llu transactions for 4 commits", fo_store_kind_name(kind),
                (unsigned long long)st.transactions);

    /* close with work queued: every callback runs, then the close callback */
    memset(c, 0, sizeof(c));
    for (int i = 0; i < 3; i++) {
        c[i].t = &t;
        w0 = fo_st_row(b[i], "n", 1 + (uint64_t)i, 1, "a", 4 + (uint64_t)i);
        cr_assert_eq(fo_store_commit(t.s, &w0, 1, fo_st_on_commit, &c[i]), 0);
    }
    cr_assert_eq(fo_store_close(t.s, fo_st_on_closed, &t), 0);
    cr_assert_eq(fo_store_commit(t.s, &w0, 1, fo_st_on_commit, &c[0]), FO_ESTATE);
    cr_assert_eq(fo_store_load(t.s, "n", 0, fo_st_on_read, &l), FO_ESTATE);
    cr_assert_eq(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(c[i].done, 1);
        cr_assert_eq(c[i].rc, 0);
    }
    cr_assert_eq(t.close_cbs, 1);
    cr_assert(t.close_order > c[2].order);
    t.s = NULL;
    if (kind == FO_STORE_SQLITE) {
        fo_store_result *r;
        fo_st_open(&t, NULL);
        r = LOAD(&t, "n", 0);
        cr_assert_eq(r->count, 4);
        fo_store_result_free(r);
    }
    fo_st_finish(&t);
}
BOTH(order_and_drain)

static void close_from_callback_cb(fo_store *s, const fo_store_status *st, void *data)
{
    fo_st *t = data;

    cr_assert_eq(st->rc, 0);
    cr_assert_eq(fo_store_close(s, fo_st_on_closed, t), 0);
    t->order++;
}

static void close_in_callback(fo_store_kind kind)
{
    fo_st t;

    fo_st_init(&t, kind, NULL);
    cr_assert_eq(fo_store_commit(t.s, NULL, 0, close_from_callback_cb, &t), 0); /* a barrier */
    cr_assert_eq(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(t.close_cbs, 1);
    t.s = NULL;
    fo_st_finish(&t);
}
BOTH(close_in_callback)

/* ---- argument errors ----------------------------------------------------------------- */

static void bad_args(fo_store_kind kind)
{
    fo_st t;
    char buf[96];
    fo_st_req r = {.t = &t};
    char long_name[FO_STORE_MODEL_MAX + 2];
    static const char *const bad[] = {"", "a b", "a/b", "é", "x\n"};

    fo_st_init(&t, kind, NULL);
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fo_store_write w = fo_st_row(buf, "ok", 0, 1, NULL, 0);
        w.model = bad[i];
        cr_assert_eq(fo_store_commit(t.s, &w, 1, fo_st_on_commit, &r), FO_EINVAL, "%s", bad[i]);
        cr_assert_eq(fo_store_load(t.s, bad[i], 0, fo_st_on_read, &r), FO_EINVAL);
        cr_assert_eq(fo_store_read_log(t.s, bad[i], 0, 1, fo_st_on_read, &r), FO_EINVAL);
        cr_assert_eq(fo_store_read_state_at(t.s, bad[i], 0, fo_st_on_read, &r), FO_EINVAL);
    }
    cr_assert_eq(fo_store_load(t.s, long_name, 0, fo_st_on_read, &r), FO_EINVAL);
    long_name[FO_STORE_MODEL_MAX] = 0;
    cr_assert(fo_store_model_name_valid(long_name, FO_STORE_MODEL_MAX));
    cr_assert(fo_store_model_name_valid("A-z_0.9:x", 9));
    cr_assert_eq(fo_store_load(t.s, NULL, 0, fo_st_on_read, &r), FO_EINVAL);
    fo_store_write w = fo_st_row(buf, "ok", 0, 1, NULL, 0);
    w.len = 0;
    cr_assert_eq(fo_store_commit(t.s, &w, 1, fo_st_on_commit, &r), FO_EINVAL);
    w = (fo_store_write){.model = "ok", .client = "c", .seq = 1}; /* client without a batch */
    cr_assert_eq(fo_store_commit(t.s, &w, 1, fo_st_on_commit, &r), FO_EINVAL);
    cr_assert_eq(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(r.done, 0);
    cr_assert_eq(fo_store_kind_parse("sqlite"), FO_STORE_SQLITE);
    cr_assert_eq(fo_store_kind_parse("memory"), FO_STORE_MEMORY);
    cr_assert_eq(fo_store_kind_parse("redis"), 0);
    cr_assert_str_eq(fo_store_strerror(FO_STORE_EFULL), "FO_STORE_EFULL");
    cr_assert_str_eq(fo_store_strerror(FO_EINVAL), "FO_EINVAL");
    fo_st_finish(&t);
}
BOTH(bad_args)

/* ---- a real disk-full path ----------------------------------------------------------- */

static void disk_full(fo_store_kind kind)
{
    fo_st t;
    char b[3][96], msg[512];
    fo_store_options o;
    fo_store_result *r;
    fo_store_stats st;
    size_t big_size = 512 * 1024;
    char *big = malloc(big_size);

    fo_st_init(&t, kind, NULL);
    fo_st_close(&t);
    fo_store_options_default(&o);
    o.max_bytes = 256 * 1024; /* sqlite: max_page_count = 64 pages */
    fo_st_open(&t, &o);
    commit_range(&t, "m", 0, 20, 1, 0);
    memset(big, 'x', big_size);
    /* one transaction: a small row that fits, and one that cannot */
    fo_store_write w[3] = {fo_st_row(b[0], "m", 20, 1, "c", 21), fo_st_row(b[1], "big", 0, 1, "c", 1),
                           fo_st_row(b[2], "m", 21, 1, "c", 22)};
    w[1].batch = big;
    w[1].batch_size = big_size;
    cr_assert_eq(fo_st_commit(&t, w, 3, msg), FO_STORE_EFULL, "%s", msg);
    cr_assert_neq(strstr(msg, "full"), NULL, "%s", msg);
    if (kind == FO_STORE_SQLITE) {
        cr_assert_neq(strstr(msg, "SQLITE_FULL"), NULL, "%s", msg);
        cr_assert_neq(strstr(msg, "flushout.db"), NULL, "%s", msg);
    }
    /* nothing of it is visible */
    r = shape(LOAD(&t, "m", 0), false, 20, 20, 0, NOSNAP);
    check_client(&r->clients[0], "c", 20, 20);
    fo_store_result_free(r);
    r = shape(LOAD(&t, "big", 0), false, 0, 0, 0, NOSNAP);
    cr_assert_not(r->exists);
    fo_store_result_free(r);
    /* and the store goes on */
    cr_assert_eq(fo_st_commit(&t, &w[0], 1, NULL), 0);
    r = shape(LOAD(&t, "m", 0), false, 21, 21, 0, NOSNAP);
    check_client(&r->clients[0], "c", 21, 21);
    fo_store_result_free(r);
    fo_store_stats_get(t.s, &st);
    cr_assert_eq(st.commit_errors, 1);
    free(big);
    fo_st_finish(&t);
}
BOTH(disk_full)

/* ---- open errors --------------------------------------------------------------------- */

Test(store, open_errors_sqlite)
{
    fo_st t;
    fo_store *s = NULL;
    fo_err_info err;
    char path[128], junk[8192];
    sqlite3 *db;
    struct stat sb;
    int fd;

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    fo_st_close(&t);
    /* the data dir is a regular file */
    snprintf(path, sizeof(path), "%s/file", t.dir);
    fd = open(path, O_CREAT | O_WRONLY, 0640);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_lt(fo_store_open(&t.loop, FO_STORE_SQLITE, path, NULL, &s, &err), 0);
    cr_assert_eq(s, NULL);
    cr_assert_neq(err.msg[0], 0);
    unlink(path);
    /* a schema from the future */
    snprintf(path, sizeof(path), "%s/flushout.db", t.dir);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(fo_store_open(&t.loop, FO_STORE_SQLITE, t.dir, NULL, &s, &err), FO_STORE_EVERSION);
    cr_assert_neq(strstr(err.msg, "newer"), NULL, "%s", err.msg);
    /* not a database */
    memset(junk, 'j', sizeof(junk));
    fd = open(path, O_TRUNC | O_WRONLY);
    cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    cr_assert_eq(fo_store_open(&t.loop, FO_STORE_SQLITE, t.dir, NULL, &s, &err), FO_STORE_ECORRUPT,
                 "%s", err.msg);
    cr_assert_eq(fo_store_open(&t.loop, FO_STORE_SQLITE, NULL, NULL, &s, &err), FO_EINVAL);
    cr_assert_eq(fo_store_open(&t.loop, 7, t.dir, NULL, &s, &err), FO_EINVAL);
    cr_assert_eq(s, NULL);
    /* a nested dir that does not exist yet is created */
    unlink(path);
    snprintf(path, sizeof(path), "%s/a/b", t.dir);
    cr_assert_eq(fo_store_open(&t.loop, FO_STORE_SQLITE, path, NULL, &t.s, &err), 0, "%s", err.msg);
    fo_st_close(&t);
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0750);
    fo_st_rm_dir(path);
    snprintf(path, sizeof(path), "%s/a", t.dir);
    rmdir(path);
    fo_st_finish(&t);
}

/* ---- crash durability ---------------------------------------------------------------- */

enum { CRASH_SEQUENTIAL = 40, CRASH_EXTRA = 37, CRASH_INFLIGHT = 4 };

static uint32_t crash_len(uint32_t i)
{
    return 1 + i % 3;
}

typedef struct crash_child {
    uv_loop_t loop;
    fo_store *s;
    int fd;
    uint32_t next;  /* index of the next commit to submit */
    uint32_t acked; /* callbacks run so far */
    uint64_t from;  /* the next commit's from */
} crash_child;

static void crash_on_commit(fo_store *s, const fo_store_status *st, void *data);

/* Child side: commit i writes batch i to models "a" and "b" in one transaction. */
static void crash_submit(crash_child *c)
{
    char ba[96], bb[96];
    uint32_t i = c->next++, len = crash_len(i);
    fo_store_write w[2] = {fo_st_row(ba, "a", c->from, len, "crash", i + 1),
                           fo_st_row(bb, "b", c->from, len, "crash", i + 1)};

    c->from += len;
    if (fo_store_commit(c->s, w, 2, crash_on_commit, c) != 0)
        _exit(3);
}

/* Callbacks come in submission order: the n-th callback acks commit n - 1. */
static void crash_on_commit(fo_store *s, const fo_store_status *st, void *data)
{
    crash_child *c = data;
    uint32_t i = c->acked++;

    (void)s;
    if (st->rc != 0)
        _exit(4);
    if (write(c->fd, &i, sizeof(i)) != (ssize_t)sizeof(i))
        _exit(5);
    if (c->acked == CRASH_SEQUENTIAL) /* from now on, keep several commits in flight */
        for (int k = 0; k < CRASH_INFLIGHT - 1; k++)
            crash_submit(c);
    crash_submit(c);
}

static void crash_child_main(const char *dir, int fd)
{
    crash_child c = {.fd = fd};

    if (uv_loop_init(&c.loop) != 0 ||
        fo_store_open(&c.loop, FO_STORE_SQLITE, dir, NULL, &c.s, NULL) != 0)
        _exit(2);
    crash_submit(&c);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    _exit(6); /* not reached: the stream never ends */
}

static bool read_ack(int fd, uint32_t *ack)
{
    ssize_t n;

    do
        n = read(fd, ack, sizeof(*ack));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(*ack);
}

/* A child commits CRASH_SEQUENTIAL batches one by one, then streams more with several in
 * flight, acking each through a pipe once its callback ran; it is SIGKILLed mid-stream.
 * Everything acked must be there after a restart, the log contiguous, "a" and "b" equal
 * (a transaction is all or nothing). */
Test(store, crash_durability_sqlite)
{
    fo_st t;
    int p[2], status;
    uint32_t ack, acked = 0;
    pid_t pid;
    fo_store_result *ra, *rb;
    uint64_t from = 0;

    fo_st_init(&t, FO_STORE_SQLITE, NULL);
    fo_st_close(&t); /* the child opens the dir: it must not be locked */
    cr_assert_eq(pipe(p), 0);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        crash_child_main(t.dir, p[1]);
    }
    close(p[1]);
    while (acked < CRASH_SEQUENTIAL + CRASH_EXTRA) {
        if (!read_ack(p[0], &ack)) {
            waitpid(pid, &status, 0);
            cr_assert_fail("the child died after %u acks (status %d)", acked, status);
        }
        cr_assert_eq(ack, acked);
        acked++;
    }
    kill(pid, SIGKILL);
    while (read_ack(p[0], &ack)) { /* acks written before it died count too */
        cr_assert_eq(ack, acked);
        acked++;
    }
    close(p[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);

    fo_st_open(&t, NULL);
    ra = LOAD(&t, "a", 0);
    rb = LOAD(&t, "b", 0);
    cr_assert_geq(ra->n_entries, acked, "%u rows, %u acked", ra->n_entries, acked);
    cr_assert_eq(ra->n_entries, rb->n_entries);
    for (uint32_t i = 0; i < ra->n_entries; i++) {
        fo_st_check_row(&ra->entries[i], "a", from, crash_len(i), "crash", i + 1);
        fo_st_check_row(&rb->entries[i], "b", from, crash_len(i), "crash", i + 1);
        from += crash_len(i);
    }
    cr_assert_eq(ra->count, from);
    cr_assert_eq(rb->count, from);
    cr_assert_eq(ra->n_clients, 1);
    cr_assert_eq(ra->clients[0].seq, ra->n_entries);
    cr_assert_eq(ra->clients[0].count, from);
    fo_store_result_free(ra);
    fo_store_result_free(rb);
    fo_st_finish(&t);
}
