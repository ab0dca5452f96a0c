/* The hub over real WebSockets, part 5: a --memory-budget far too small for the history.
 * One hub on SQLite with a 64K budget (history is pushed out of memory and read back from
 * the store), one with the default budget (everything stays in memory), the same flushes to
 * both. Every answer that needs old history (`sub` with an old `from`, `history`, `get` with
 * `at`, a stale proxy's flush, a retried flush) must equal the oracle's and be identical on
 * both hubs; a subscriber that stayed subscribed throughout must have every push in order. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
}

TestSuite(hub_budget, .init = setup, .fini = ht_cleanup, .timeout = 180);

enum { FLUSHES = 300 };

/* What one hub answered, as canonical JSON (malloc'd). */
typedef struct answers {
    char *sub_diff, *history, *get_at, *stale_flush, *retry;
} answers;

static void answers_free(answers *a)
{
    free(a->sub_diff);
    free(a->history);
    free(a->get_at);
    free(a->stale_flush);
    free(a->retry);
}

/* The oracle's completions of [from, to). */
static fo_batch oracle_range(ht_oracle *o, fo_arena *a, uint64_t from, uint64_t to)
{
    fo_completion *items = fo_arena_alloc(a, (size_t)(to - from + 1) * sizeof(*items));
    fo_batch b = {from, (uint32_t)(to - from), items};

    cr_assert_not_null(items);
    for (uint64_t n = from; n < to; n++)
        items[n - from] = *ht_oracle_history(o, n);
    return b;
}

static void flush_padded(ht_client *c, ht_oracle *o, uint64_t from, int k)
{
    char json[600], pad[201];

    memset(pad, 'a' + k % 26, 200);
    pad[200] = 0;
    snprintf(json, sizeof(json),
             "{\"from\":%llu,\"completions\":[{\"command\":{\"action\":\"update\","
             "\"props\":{\"k%d\":%d,\"pad\":\"%s\"}}}]}",
             (unsigned long long)from, k % 50, k, pad);
    ht_flush_checked(c, o, "m", json);
    ht_client_reset_arena(c);
}

static void run(fo_hubproc *h, answers *out)
{
    ht_oracle *o = ht_oracle_new();
    ht_client *w = ht_connect(h, "writer"), *late = ht_connect(h, "late");
    ht_client *s = ht_connect(h, "subscriber"), *r = ht_connect(h, "reader");
    fo_apply_result res;
    fo_batch want;
    fo_snapshot snap;
    fo_msg m;
    uint64_t rid, late_from, late_seq;
    char json[300], *got;

    ht_sub(s, "m");
    /* `late` flushes once early; its retry comes after the history moved out of memory. */
    flush_padded(late, o, 0, 0);
    late_seq = late->seq;
    late_from = 0;
    for (int k = 1; k < FLUSHES; k++)
        flush_padded(w, o, (uint64_t)k, k);
    /* The subscriber, subscribed all along, has every batch, in order. */
    for (uint64_t n = 0; n < FLUSHES; n++) {
        ht_expect(s, FO_MSG_PUSH, &m);
        cr_assert_eq(m.batch.from, n, "push %llu starts at %llu", (unsigned long long)n,
                     (unsigned long long)m.batch.from);
        cr_assert_eq(m.batch.len, 1);
        ht_client_reset_arena(s);
    }
    ht_client_reset_arena(r);

    /* sub with an old `from`: a diff of everything since. */
    m = (fo_msg){.type = FO_MSG_SUB, .model = "m", .has_from = true, .from = 10};
    rid = ht_send(r, &m);
    ht_expect_reply(r, FO_MSG_DIFF, rid, &m);
    want = oracle_range(o, &r->arena, 10, FLUSHES);
    ht_assert_batch_eq(&m.batch, &want, "sub from 10");
    out->sub_diff = ht_json_batch(&m.batch);

    /* history of an old range. */
    m.batch = ht_history(r, "m", 5, true, 200);
    want = oracle_range(o, &r->arena, 5, 200);
    ht_assert_batch_eq(&m.batch, &want, "history [5, 200)");
    out->history = ht_json_batch(&m.batch);

    /* get with an old `at`. */
    snap = ht_get_at(r, "m", 123);
    cr_assert_eq(snap.command_count, 123);
    got = ht_json(snap.document);
    cr_assert_str_eq(got, ht_oracle_doc_at(o, 123), "get at 123");
    out->get_at = got;
    ht_client_reset_arena(r);

    /* A proxy far behind: its ack's sync carries every batch since its `from`. */
    snprintf(json, sizeof(json),
             "{\"from\":20,\"completions\":[{\"command\":{\"action\":\"update\","
             "\"props\":{\"stale\":true}}}]}");
    res = ht_flush_checked(r, o, "m", json);
    cr_assert_eq(res.sync.kind, FO_SYNC_PARTIAL, "a stale flush within --history gets a diff");
    out->stale_flush = ht_json_result(&res);
    ht_client_reset_arena(r);

    /* The retry of `late`'s first flush: answered with a sync from its old `from`. */
    {
        fo_batch empty = {late_from, 0, NULL};
        char pad[201];
        memset(pad, 'a', 200);
        pad[200] = 0;
        snprintf(json, sizeof(json),
                 "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"update\","
                 "\"props\":{\"k0\":0,\"pad\":\"%s\"}}}]}",
                 pad);
        fo_batch b = ht_batch_json(&late->arena, json);
        fo_apply_result want_res;
        res = ht_flush_seq(late, "m", late_seq, &b);
        want_res = ht_oracle_apply(o, &empty);
        ht_assert_result_eq(&res, &want_res, "a retried flush after its history left memory");
        cr_assert_eq(res.sync.kind, FO_SYNC_PARTIAL);
        out->retry = ht_json_result(&res);
    }
    ht_oracle_free(o);
}

Test(hub_budget, old_history_read_back_from_the_store)
{
    static const char *const small[] = {
        "--memory-budget", "64K", "--snapshot-every", "50", "--log-level", "debug", NULL};
    static const char *const big[] = {"--snapshot-every", "50", NULL};
    fo_hubproc *a = ht_hub_start("sqlite", small);
    fo_hubproc *b = ht_hub_start("sqlite", big);
    answers x = {0}, y = {0};

    run(a, &x);
    run(b, &y);
    cr_assert(fo_hubproc_log_count(a, "history read back") > 0,
              "the 64K hub never read history back: the test proved nothing");
    cr_assert_eq(fo_hubproc_log_count(b, "history read back"), 0);
    cr_assert_str_eq(x.sub_diff, y.sub_diff);
    cr_assert_str_eq(x.history, y.history);
    cr_assert_str_eq(x.get_at, y.get_at);
    cr_assert_str_eq(x.stale_flush, y.stale_flush);
    cr_assert_str_eq(x.retry, y.retry);
    answers_free(&x);
    answers_free(&y);
}

/* Sends round r's flush to `model` without waiting: update [] {"rR": PAD bytes of one
 * letter} at count r. Returns its rid; *sent is the batch (in c's arena). */
static uint64_t send_round(ht_client *c, const char *model, int r, int letter, size_t pad,
                           fo_batch *sent)
{
    char *json = malloc(pad + 300), *fill = malloc(pad + 1);
    fo_msg m;
    uint64_t rid;

    cr_assert(json && fill);
    memset(fill, 'a' + letter % 26, pad);
    fill[pad] = 0;
    snprintf(json, pad + 300,
             "{\"from\":%d,\"completions\":[{\"command\":{\"action\":\"update\","
             "\"props\":{\"r%d\":\"%s\"}}}]}", r, r, fill);
    ht_client_reset_arena(c);
    *sent = ht_batch_json(&c->arena, json);
    m = (fo_msg){.type = FO_MSG_FLUSH, .model = model, .seq = ++c->seq, .batch = *sent};
    rid = ht_send(c, &m);
    free(json);
    free(fill);
    return rid;
}

/* Connects writers writer-0..n-1, each with a fresh oracle. */
static void writers_connect(fo_hubproc *h, int n, ht_client **w, ht_oracle **o)
{
    char id[32];

    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "writer-%d", i);
        w[i] = ht_connect(h, id);
        o[i] = ht_oracle_new();
    }
}

/* The acks of one round sent to models PREFIX.0..n-1: each equals its oracle's result. */
static void expect_round(ht_client **w, ht_oracle **o, const fo_batch *sent,
                         const uint64_t *rid, int n, int r, const char *prefix)
{
    fo_msg m;
    char what[64];

    for (int i = 0; i < n; i++) {
        fo_apply_result want = ht_oracle_apply(o[i], &sent[i]);
        ht_expect_reply(w[i], FO_MSG_ACK, rid[i], &m);
        snprintf(what, sizeof(what), "round %d, model %s.%d", r, prefix, i);
        ht_assert_result_eq(&m.result, &want, what);
    }
}

/* A budget smaller than the subscribed models' documents together: every round, each
 * model's document has been dropped (its subscriber stays) and the round's flushes, sent to
 * all models at once, reload them all. Loads go to the store a few at a time (model.c,
 * FO_MAX_LOADS: hundreds at once held hundreds of documents outside the budget); every ack
 * still equals the oracle's and every subscriber ends level with the hub. */
Test(hub_budget, reloads_go_a_few_at_a_time_and_lose_nothing)
{
    enum { MODELS = 24, ROUNDS = 8, PAD = 1000 };
    static const char *const args[] = {"--memory-budget", "64K", NULL};
    fo_hubproc *h = ht_hub_start("sqlite", args);
    ht_client *w[MODELS];
    ht_peer *sub[MODELS];
    ht_oracle *o[MODELS];
    fo_batch sent[MODELS];
    uint64_t rid[MODELS];
    char model[32], id[32];

    writers_connect(h, MODELS, w, o);
    for (int i = 0; i < MODELS; i++) {
        snprintf(model, sizeof(model), "bl.%d", i);
        snprintf(id, sizeof(id), "sub-%d", i);
        sub[i] = ht_peer_new(h, id, model);
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < MODELS; i++) { /* every model's flush first, then the acks */
            snprintf(model, sizeof(model), "bl.%d", i);
            rid[i] = send_round(w[i], model, r, r + i, PAD, &sent[i]);
        }
        expect_round(w, o, sent, rid, MODELS, r, "bl");
        while (ht_peer_pump(sub, MODELS, 0))
            ;
    }
    ht_peers_settle(sub, MODELS, ROUNDS, 60000);
    for (int i = 0; i < MODELS; i++) {
        char what[64];
        snprintf(what, sizeof(what), "bl.%d's subscriber", i);
        cr_assert_eq(fo_proxy_count(sub[i]->p), ROUNDS);
        ht_assert_value_eq(fo_proxy_document(sub[i]->p), ht_oracle_snapshot(o[i]).document, what);
        ht_oracle_free(o[i]);
    }
    cr_assert_gt(ht_metric(h, "flushout_doc_drops_total"), 0,
                 "no document was dropped: the budget did not bind and the test proved nothing");
    cr_assert_gt(ht_metric(h, "flushout_load_waits_total"), 0,
                 "no load ever waited for a slot: the loads did not overlap");
    cr_assert_leq(ht_metric(h, "flushout_loads_inflight_peak"), 4);
}

/* The newest snapshot's count of a model in the hub's SQLite file (0: none). */
static uint64_t newest_snapshot(fo_hubproc *h, const char *model)
{
    char path[4096];
    sqlite3 *db;
    sqlite3_stmt *st;
    uint64_t n = 0;

    snprintf(path, sizeof(path), "%s/flushout.db", fo_hubproc_data_dir(h));
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT max(cmd_count) FROM snapshots WHERE model = ?",
                                    -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* The hub's SQLite file opened by the test with its write lock taken (BEGIN IMMEDIATE):
 * the store's commits wait for it (busy timeout 5 s), as they would for a slow disk. */
static sqlite3 *lock_store(fo_hubproc *h)
{
    char path[4096];
    sqlite3 *db;

    snprintf(path, sizeof(path), "%s/flushout.db", fo_hubproc_data_dir(h));
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(db));
    return db;
}

static void unlock_store(sqlite3 *db)
{
    cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* Models reaching --snapshot-every together: the snapshots waiting for the store stay
 * within a sixteenth of the budget (here 1 MB of a 16M budget, for documents that grow by
 * 60 KB a flush and eight models flushing at once), the others are deferred and taken by a
 * later flush, and nothing of the documents is lost (a restart loads them all). The store
 * is held up (its write lock taken) while one round's flushes come in: on a fast disk the
 * snapshots may be written as fast as they come, and the cap would not bind. That round's
 * flushes come one per loop turn, a group commit each: the groups queued behind the held
 * store share one transaction (one fsync). */
Test(hub_budget, snapshots_wait_their_turn)
{
    enum { MODELS = 8, ROUNDS = 6, PAD = 60000 };
    static const char *const args[] = {"--memory-budget", "16M", "--snapshot-every", "1", NULL};
    fo_hubproc *h = ht_hub_start("sqlite", args);
    ht_client *w[MODELS];
    ht_oracle *o[MODELS];
    fo_batch sent[MODELS];
    uint64_t rid[MODELS];
    char model[32];
    fo_msg m;
    uint64_t commits = 0, txs = 0;

    writers_connect(h, MODELS, w, o);
    for (int r = 0; r <= ROUNDS; r++) {
        /* Rounds 0..ROUNDS-1: every model's flush first, then the acks. The last round goes
         * one model at a time, so nothing else waits and each takes its snapshot. */
        sqlite3 *held = r == 3 ? lock_store(h) : NULL; /* 8 x 240 KB of documents */
        for (int i = 0; i < MODELS; i++) {
            snprintf(model, sizeof(model), "snap.%d", i);
            rid[i] = send_round(w[i], model, r, r + i, PAD, &sent[i]);
            if (held) /* one flush per loop turn: a group commit each */
                cr_assert_geq(ht_wait_metric(h, "flushout_pending_replies", (uint64_t)i + 1, 5000),
                              (uint64_t)i + 1, "flush %d did not reach the commit queue", i);
            if (r == ROUNDS) {
                fo_apply_result want = ht_oracle_apply(o[i], &sent[i]);
                ht_expect_reply(w[i], FO_MSG_ACK, rid[i], &m);
                ht_assert_result_eq(&m.result, &want, "the last round");
            }
        }
        if (held) {
            commits = ht_metric(h, "flushout_store_commits_total");
            txs = ht_metric(h, "flushout_store_transactions_total");
            unlock_store(held);
        }
        if (r < ROUNDS)
            expect_round(w, o, sent, rid, MODELS, r, "snap");
        if (held) {
            /* The first group waited in its transaction; the seven behind it share one
             * (or all eight one, had the worker woken only after the last was queued). */
            uint64_t ran = ht_metric(h, "flushout_store_transactions_total") - txs;
            cr_assert_eq(ht_metric(h, "flushout_store_commits_total") - commits, MODELS);
            cr_assert(ran >= 1 && ran <= 2,
                      "%llu transactions for %d queued groups: they were not merged",
                      (unsigned long long)ran, MODELS);
        }
    }
    cr_assert_gt(ht_metric(h, "flushout_snapshots_deferred_total"), 0,
                 "no snapshot was deferred: the cap did not bind and the test proved nothing");
    cr_assert_eq(ht_metric(h, "flushout_snapshot_pending_bytes"), 0);
    for (int i = 0; i < MODELS; i++) {
        snprintf(model, sizeof(model), "snap.%d", i);
        cr_assert_eq(newest_snapshot(h, model), ROUNDS + 1,
                     "%s: the last flush, with nothing else waiting, took no snapshot", model);
        ht_close(w[i]);
    }
    ht_hub_stop_ok(h, 15000);
    ht_hub_restart(h);
    {
        ht_client *r = ht_connect(h, "reader");
        for (int i = 0; i < MODELS; i++) {
            snprintf(model, sizeof(model), "snap.%d", i);
            ht_assert_oracle_snapshot((fo_snapshot[]){ht_get(r, model)}, o[i], model);
            ht_client_reset_arena(r);
            ht_oracle_free(o[i]);
        }
    }
}
