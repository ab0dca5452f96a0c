/* The hub over real WebSockets, part 3: many clients on one model. Each client is an fo_proxy
 * plus a connection (hubtest's ht_peer): it applies random commands locally, flushes, applies
 * pushes with fo_proxy_apply_push and ends each flush with its ack's sync. Checked on the way:
 * pushes are gap-free and in model order with the acks, nobody gets a push for its own batch.
 * Checked at the end: every proxy equals the hub's `get`, and replaying the acked flushes in
 * the hub's order through a local fo_master gives every ack and the final state exactly.
 * Then a subscriber that stops reading: the hub's memory stays bounded and it catches up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/support/hubtest.h"
#include "proto/sendq.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
}

TestSuite(hub_sync, .init = setup, .fini = ht_cleanup, .timeout = 120);

static void converge(int n, int rounds, uint64_t seed, const char *const *args)
{
    /* The oracle keeps all history: so must the hub, or a client that falls more than
     * --history (default 1000) commands behind (a loaded machine) gets a full sync where
     * the oracle answers with a diff. */
    static const char *const all_history[] = {"--history", "100000000", NULL};
    fo_hubproc *h = ht_hub_start("memory", args ? args : all_history);
    /* With a short history the hub's syncs depend on its retention, which the oracle does not
     * model: only convergence is checked then. */
    ht_flush_log *log = args ? NULL : ht_flush_log_new();
    ht_peer *ps[16];
    ht_client *obs;
    ht_rng r = ht_rng_seeded(seed);
    fo_snapshot s;
    uint64_t pushes = 0, dropped = 0, batches = 0, full = 0;
    size_t replayed;
    int i, k;

    cr_assert(n <= 16);
    for (i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "peer-%d", i);
        ps[i] = ht_peer_new(h, id, "shared.doc");
        ps[i]->log = log;
    }
    for (k = 0; k < rounds; k++) {
        for (i = 0; i < n; i++) {
            if (ht_rand_below(&r, 4))
                ht_peer_random_edits(ps[i], &r, 1 + (int)ht_rand_below(&r, 4));
            if (ht_rand_below(&r, 3))
                ht_peer_flush(ps[i]);
        }
        /* Read what has arrived, sometimes wait a little so that flushes overlap. */
        while (ht_peer_pump(ps, n, ht_rand_below(&r, 3) ? 0 : 2))
            ;
    }
    ht_peers_settle(ps, n, UINT64_MAX, 60000);
    obs = ht_connect(h, "observer");
    s = ht_get(obs, "shared.doc");
    ht_peers_settle(ps, n, s.command_count, 60000);
    for (i = 0; i < n; i++) {
        char what[128];
        snprintf(what, sizeof(what), "%s's document vs the hub's", ps[i]->c->id);
        cr_assert_eq(fo_proxy_count(ps[i]->p), s.command_count);
        ht_assert_value_eq(fo_proxy_document(ps[i]->p), s.document, what);
        pushes += ps[i]->pushes;
        dropped += ps[i]->dropped;
        batches += ps[i]->own_batches;
        full += ps[i]->full_syncs;
    }
    replayed = log ? ht_flush_log_check(log, &s) : 0;
    cr_log_info("%d peers: %llu commands, %llu batches (%zu replayed, %llu full syncs), %llu "
                "pushes applied, %llu dropped while flushing",
                n, (unsigned long long)s.command_count, (unsigned long long)batches, replayed,
                (unsigned long long)full, (unsigned long long)pushes, (unsigned long long)dropped);
    cr_assert(s.command_count > 0 && batches > 0);
}

Test(hub_sync, two_clients_converge)
{
    converge(2, 300, 1, NULL);
}

Test(hub_sync, ten_clients_converge)
{
    converge(10, 150, 2, NULL);
}

/* Stale flushes older than the history get full syncs, and proxies must converge through them. */
Test(hub_sync, ten_clients_converge_with_a_short_history)
{
    static const char *const args[] = {"--history", "8", NULL};

    converge(10, 100, 3, args);
}

/* A writes, B watches: B's pushes come in order and without gaps, A gets only acks. */
Test(hub_sync, pushes_are_in_order_and_never_echo_the_flusher)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *a = ht_connect(h, "a"), *b = ht_connect(h, "b");
    fo_arena ar;
    fo_msg m;
    uint64_t k;

    fo_arena_init(&ar, 0);
    ht_sub(a, "m");
    ht_sub(b, "m");
    for (k = 0; k < 20; k++) {
        char json[128];
        fo_batch bt;
        fo_apply_result res;
        snprintf(json, sizeof(json),
                 "{\"from\":%llu,\"completions\":[{\"command\":{\"action\":\"create\"},"
                 "\"createdId\":\"%llu\"}]}",
                 (unsigned long long)k, (unsigned long long)k + 1);
        bt = ht_batch_json(&ar, json);
        res = ht_flush(a, "m", &bt);
        cr_assert_eq(res.applied.from, k);
        cr_assert_eq(res.sync.kind, FO_SYNC_NONE);
    }
    for (k = 0; k < 20; k++) {
        ht_expect(b, FO_MSG_PUSH, &m);
        cr_assert_eq(m.batch.from, k, "push %llu starts at %llu", (unsigned long long)k,
                     (unsigned long long)m.batch.from);
        cr_assert_eq(m.batch.len, 1);
    }
    ht_expect_silence(a, 300);
    ht_expect_silence(b, 100);
    fo_arena_destroy(&ar);
}

/* Sends `n` pipelined single-update flushes of a `blob`-byte string from w, the only writer
 * of `model`, whose count is `base` (so batch.from is known), keeping `window` in flight;
 * keeps `fast` reading; samples the hub's RSS into *peak_kb. Each blob is the new value of
 * the key "blob", or with `own_keys` of a key of its own ("b<i>": the document grows). */
static void write_blobs(fo_hubproc *h, ht_client *w, const char *model, uint64_t base, int n,
                        size_t blob, int window, ht_peer *fast, long *peak_kb, bool own_keys)
{
    char *text = malloc(blob);
    uint64_t seq0 = w->seq;
    fo_arena ar;
    int sent = 0, acked = 0;
    fo_msg m;

    cr_assert_not_null(text);
    memset(text, 'b', blob);
    fo_arena_init(&ar, 0);
    while (acked < n) {
        while (sent < n && sent - acked < window) {
            fo_msg f = {.type = FO_MSG_FLUSH, .model = model, .seq = ++w->seq};
            fo_completion *c = fo_arena_calloc(&ar, sizeof(*c));
            fo_value *props = fo_arena_alloc(&ar, sizeof(*props));
            bool ok = true;
            fo_value sv, iv = fo_value_int(sent);
            cr_assert(c && props);
            *props = fo_value_map(&ar, 2, &ok);
            text[0] = (char)('a' + sent % 26); /* consecutive blobs differ */
            sv = fo_value_str(&ar, text, blob, &ok);
            cr_assert(ok);
            char key[16] = "blob";
            if (own_keys)
                snprintf(key, sizeof(key), "b%d", sent);
            cr_assert_eq(
                fo_map_set(fo_value_as_map(props), &ar, fo_key_new_cstr(&ar, key), &sv, NULL), 0);
            cr_assert_eq(
                fo_map_set(fo_value_as_map(props), &ar, fo_key_new_cstr(&ar, "i"), &iv, NULL), 0);
            c->command.action = FO_UPDATE;
            c->command.props = props;
            f.batch = (fo_batch){base + (uint64_t)sent, 1, c};
            ht_send(w, &f);
            sent++;
        }
        ht_expect(w, FO_MSG_ACK, &m);
        cr_assert_eq(m.seq, seq0 + (uint64_t)acked + 1, "acks out of order");
        cr_assert_eq(m.result.applied.from, base + (uint64_t)acked);
        cr_assert_eq(m.result.sync.kind, FO_SYNC_NONE);
        acked++;
        fo_arena_reset(&w->arena);
        if (fast)
            while (ht_peer_pump(&fast, 1, 0))
                ;
        if (acked % 32 == 0) {
            long rss = fo_hubproc_rss_kb(h);
            if (rss > *peak_kb)
                *peak_kb = rss;
            if (sent == acked)
                fo_arena_reset(&ar);
        }
    }
    fo_arena_destroy(&ar);
    free(text);
}

/* Whether this process may use io_uring (proto/sendq.h's own probe): then the hub must. */
static bool io_uring_here(void)
{
    const char *why;
    fo_sendq *q = fo_sendq_open(4, NULL, &why);

    fo_sendq_close(q);
    return q != NULL;
}

/* The hub says which write path it took; by default io_uring wherever it can be had. */
static void check_write_path(fo_hubproc *h, bool want_uring)
{
    bool uring = fo_hubproc_log_count(h, "socket writes: io_uring") > 0;

    cr_assert_eq(fo_hubproc_log_count(h, "socket writes: "), 1,
                 "the hub did not say (once) how it writes");
    if (want_uring && io_uring_here())
        cr_assert(uring, "io_uring works here but the hub writes with send()");
    if (!want_uring)
        cr_assert_not(uring, "--io-uring=false, but the hub uses io_uring");
}

/* Corked writes (hub/session.c): every frame a connection gets in a loop turn leaves in one
 * socket write at the end of the turn, straight from the hub's uv_check, without asking
 * libwebsockets for a writable callback (each of those costs epoll_ctl calls). All
 * subscribers here read, so no write is partial and no writable request may be made. Both
 * write paths: the turn's writes in one io_uring submission, and one send() each. */
static fo_hubproc *corked(const fo_hubproc_options *ho, bool want_uring)
{
    enum { NSUB = 40, N = 200 };
    fo_hubproc *h = ht_hub_start_opts(ho);
    ht_peer *subs[NSUB];
    ht_client *w;
    uint64_t frames0, frames, writes, turns;
    char id[32];
    long rss_peak = 0;
    int i;

    for (i = 0; i < NSUB; i++) {
        snprintf(id, sizeof(id), "sub-%d", i);
        subs[i] = ht_peer_new(h, id, "fan");
    }
    w = ht_connect(h, "writer");
    frames0 = ht_metric(h, "flushout_frames_out_total");
    write_blobs(h, w, "fan", 0, N, 48, 16, NULL, &rss_peak, false);
    for (i = 0; i < NSUB; i++) {
        while (fo_proxy_committed_count(subs[i]->p) < N)
            cr_assert(ht_peer_pump(&subs[i], 1, HT_TIMEOUT_MS), "subscriber %d stalled at %llu", i,
                      (unsigned long long)fo_proxy_committed_count(subs[i]->p));
    }
    frames = ht_metric(h, "flushout_frames_out_total") - frames0;
    writes = ht_metric(h, "flushout_socket_writes_total");
    turns = ht_metric(h, "flushout_write_turns_total");
    cr_log_info("fan-out: %llu frames, %llu socket writes over %llu connection-turns",
                (unsigned long long)frames, (unsigned long long)writes, (unsigned long long)turns);
    cr_assert_geq(frames, (uint64_t)NSUB * N, "%llu frames for %d pushes",
                  (unsigned long long)frames, NSUB * N);
    cr_assert_eq(ht_metric(h, "flushout_writable_requests_total"), 0,
                 "the hub asked lws for writable callbacks while every socket took its writes");
    cr_assert_eq(ht_metric(h, "flushout_partial_writes_total"), 0);
    cr_assert_leq(writes, turns, "%llu writes for %llu connection-turns: more than one write per "
                  "connection per loop turn", (unsigned long long)writes,
                  (unsigned long long)turns);
    check_write_path(h, want_uring);
    for (i = 0; i < NSUB; i++)
        ht_peer_free(subs[i]);
    return h;
}

Test(hub_sync, fan_out_writes_are_corked, .timeout = 120)
{
    fo_hubproc_options ho = {.store = "memory"};
    corked(&ho, true);
}

Test(hub_sync, fan_out_writes_are_corked_with_send, .timeout = 120)
{
    static const char *const args[] = {"--io-uring=false", NULL};
    fo_hubproc_options ho = {.store = "memory", .args = args};
    corked(&ho, false);
}

/* Where io_uring is refused (a seccomp profile, as containers have by default) the hub
 * starts all the same, says why, and writes with send(). */
Test(hub_sync, io_uring_refused_falls_back_to_send, .timeout = 120)
{
    static const char *const env[] = {"FO_NORING_EXEC=" FO_HUB_BIN, NULL};
    fo_hubproc_options ho = {.bin = FO_NORING_BIN, .store = "memory", .env = env};
    fo_hubproc *h = corked(&ho, false);

    cr_assert_eq(fo_hubproc_log_count(h, "io_uring is not permitted here"), 1,
                 "the hub did not say why it cannot use io_uring");
}

Test(hub_sync, slow_subscriber_is_bounded_and_catches_up, .timeout = 240)
{
    /* ASan keeps freed blocks in a quarantine (256 MB by default) that would look like growth:
     * keep it small so that RSS says what the hub holds. */
    static const char *const env[] = {"ASAN_OPTIONS=quarantine_size_mb=4", NULL};
    static const char *const args[] = {"--max-queue", "1M", "--history", "100", NULL};
    fo_hubproc_options ho = {.store = "sqlite", .args = args, .env = env};
    const int warm = 1000, n = 8000;
    const size_t blob = 8192;
    const double pushed_mb = (double)n * blob / (1 << 20);
    fo_hubproc *h = ht_hub_start_opts(&ho);
    fo_ws_options slow_opts = {.rcvbuf = 4096};
    ht_peer *slow, *fast;
    ht_client *w, *obs;
    long before, peak, after;
    int64_t t0;
    fo_snapshot s;
    uint64_t target = (uint64_t)warm + (uint64_t)n;

    slow = ht_peer_new_opts(h, "slow", "big", &slow_opts);
    fast = ht_peer_new(h, "fast", "big");
    w = ht_connect(h, "writer");
    obs = ht_connect(h, "observer");
    /* Warm-up: the first allocations of a model, sqlite's cache, lws's buffers; the slow peer
     * reads along here. */
    peak = 0;
    write_blobs(h, w, "big", 0, warm, blob, 32, fast, &peak, false);
    while (fo_proxy_committed_count(slow->p) < (uint64_t)warm)
        cr_assert(ht_peer_pump(&slow, 1, HT_TIMEOUT_MS), "the slow peer got nothing in warm-up");
    before = peak = fo_hubproc_rss_kb(h);

    /* Now the slow peer stops reading while the writer pushes n * blob bytes at it. Measured
     * on the ASan build: the hub grows by ~13 MB here with or without a slow subscriber (its
     * allocator and sqlite settle), and that plateau does not move with n; a hub that queued
     * everything would grow by about n * blob. Half of that is the bound. */
    t0 = ht_now_ms();
    write_blobs(h, w, "big", (uint64_t)warm, n, blob, 32, fast, &peak, false);
    while (fo_proxy_committed_count(fast->p) < target)
        cr_assert(ht_peer_pump(&fast, 1, HT_TIMEOUT_MS), "the fast subscriber stalled");
    after = fo_hubproc_rss_kb(h);
    cr_log_info("slow subscriber: %.1f MB pushed in %lld ms; hub RSS %ld KB before, peak %ld KB, "
                "%ld KB after",
                pushed_mb, (long long)(ht_now_ms() - t0), before, peak, after);
    cr_assert(peak - before < (long)(pushed_mb * 1024 / 2),
              "the hub grew by %ld KB while %.1f MB were pushed at a subscriber that does not read:"
              " its backlog is not bounded",
              peak - before, pushed_mb);
    /* The bound above holds only if the hub stops writing while lws holds the rest of a
     * partial write (lws would append every later write to its own copy): this run must have
     * taken that path. */
    cr_assert_gt(ht_metric(h, "flushout_partial_writes_total"), 0,
                 "no write was partial: the slow subscriber's socket never filled");

    /* It reads again: it must end equal to the hub, through fewer messages than batches. */
    t0 = ht_now_ms();
    while (fo_proxy_committed_count(slow->p) < target) {
        if (!ht_peer_pump(&slow, 1, HT_TIMEOUT_MS)) {
            ht_hub_dump(h);
            cr_assert_fail("the slow subscriber stopped at %llu of %llu (pushes %llu, snaps %llu)",
                           (unsigned long long)fo_proxy_committed_count(slow->p),
                           (unsigned long long)target, (unsigned long long)slow->pushes,
                           (unsigned long long)slow->snaps);
        }
    }
    s = ht_get(obs, "big");
    cr_assert_eq(s.command_count, target);
    ht_assert_value_eq(fo_proxy_document(slow->p), s.document, "the slow subscriber's document");
    ht_assert_value_eq(fo_proxy_document(fast->p), s.document, "the fast subscriber's document");
    cr_log_info("slow subscriber caught up in %lld ms; %llu pushes and %llu snaps in all for %d "
                "batches",
                (long long)(ht_now_ms() - t0), (unsigned long long)slow->pushes,
                (unsigned long long)slow->snaps, warm + n);
    cr_assert(slow->pushes + slow->snaps < (uint64_t)warm + (uint64_t)n,
              "%llu pushes + %llu snaps for %d batches: nothing was coalesced",
              (unsigned long long)slow->pushes, (unsigned long long)slow->snaps, warm + n);
    ht_expect_silence(slow->c, 200);
}

/* A backlog that history still covers comes back as one push (or a few), never as a snap.
 * The slow subscriber's socket fills: partial writes, POLLOUT, and what is queued meanwhile,
 * on both write paths. */
static void within_history(const char *const *args, bool want_uring)
{
    const int n = 1200;
    const size_t blob = 8192;
    fo_hubproc *h = ht_hub_start("memory", args);
    fo_ws_options slow_opts = {.rcvbuf = 4096};
    ht_peer *slow = ht_peer_new_opts(h, "slow", "m", &slow_opts);
    ht_client *w = ht_connect(h, "writer"), *obs = ht_connect(h, "observer");
    long peak = 0;
    fo_snapshot s;

    write_blobs(h, w, "m", 0, n, blob, 32, NULL, &peak, false);
    while (fo_proxy_committed_count(slow->p) < (uint64_t)n)
        if (!ht_peer_pump(&slow, 1, HT_TIMEOUT_MS))
            cr_assert_fail("the slow subscriber stopped at %llu of %d",
                           (unsigned long long)fo_proxy_committed_count(slow->p), n);
    s = ht_get(obs, "m");
    ht_assert_value_eq(fo_proxy_document(slow->p), s.document, "the slow subscriber's document");
    cr_log_info("%d batches (%.1f MB) reached the slow subscriber as %llu pushes (largest %u) and "
                "%llu snaps",
                n, (double)n * blob / (1 << 20), (unsigned long long)slow->pushes,
                slow->max_push_len, (unsigned long long)slow->snaps);
    cr_assert_eq(slow->snaps, 0, "history covers the backlog: want pushes, got %llu snaps",
                 (unsigned long long)slow->snaps);
    cr_assert(slow->max_push_len > 1, "no push covered more than one batch: nothing was dropped "
                                      "and caught up (is --max-queue honoured?)");
    cr_assert_gt(ht_metric(h, "flushout_partial_writes_total"), 0, "no write was partial");
    check_write_path(h, want_uring);
}

Test(hub_sync, slow_subscriber_within_history_gets_a_catch_up_push, .timeout = 120)
{
    static const char *const args[] = {"--max-queue", "64K", "--history", "5000", NULL};
    within_history(args, true);
}

Test(hub_sync, slow_subscriber_within_history_with_send, .timeout = 120)
{
    static const char *const args[] = {"--max-queue", "64K", "--history", "5000",
                                       "--io-uring=false", NULL};
    within_history(args, false);
}

/* Writes of several megabytes on the send() path (a late subscriber's snapshot of a 6 MB
 * document): the hub's write buffer grown for one is freed after it (hub/wsconn.c,
 * WBUF_KEEP), and the writes after it are whole and in order. Under ASan a buffer freed too
 * early, or written after it was freed, fails here. */
Test(hub_sync, big_writes_then_small_ones_with_send, .timeout = 120)
{
    static const char *const args[] = {"--io-uring=false", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *w = ht_connect(h, "writer"), *obs = ht_connect(h, "observer");
    ht_peer *early = ht_peer_new(h, "early", "m"), *late[2];
    long peak = 0;
    fo_snapshot s;

    write_blobs(h, w, "m", 0, 100, 60000, 16, early, &peak, true);
    for (int i = 0; i < 2; i++) {
        late[i] = ht_peer_new(h, i ? "late1" : "late0", "m");
        write_blobs(h, w, "m", 100 + 10 * (uint64_t)i, 10, 100, 4, early, &peak, true);
    }
    ht_peer *all[3] = {early, late[0], late[1]};
    for (int i = 0; i < 3; i++) {
        ht_peer *p = all[i];
        while (fo_proxy_committed_count(p->p) < 120)
            if (!ht_peer_pump(&p, 1, HT_TIMEOUT_MS))
                cr_assert_fail("subscriber %d stopped at %llu of 120", i,
                               (unsigned long long)fo_proxy_committed_count(p->p));
    }
    s = ht_get(obs, "m");
    for (int i = 0; i < 3; i++)
        ht_assert_value_eq(fo_proxy_document(all[i]->p), s.document, "a subscriber's document");
    check_write_path(h, false);
}
