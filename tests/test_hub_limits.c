/* The hub's limits over real WebSockets on loopback (hub/limits.h): each limit refuses what
 * passes it, with the contract's code (and retryAfterMs where waiting helps), a client
 * that waits and sends the same request again loses nothing and gets nothing twice, and
 * traffic under the limits is never refused. Overload: a rule that spins until its time
 * budget makes the loop lag for real. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static fo_arena A;
static char rules_path[64];

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
    fo_arena_init(&A, 0);
}

static void teardown(void)
{
    ht_cleanup();
    fo_arena_destroy(&A);
    if (rules_path[0])
        unlink(rules_path);
}

TestSuite(hub_limits, .init = setup, .fini = teardown, .timeout = 90);

static void sleep_ms(uint64_t ms)
{
    usleep((useconds_t)(ms * 1000));
}

static fo_ws *try_connect(fo_hubproc *h, fo_ws_result *res)
{
    fo_ws_options o = {.port = fo_hubproc_port(h)};

    memset(res, 0, sizeof(*res));
    return fo_ws_connect(&o, res);
}

/* One update {k<i>: i} from `from`, with `pad` bytes of padding in its props. */
static fo_batch update_batch(uint64_t from, int i, size_t pad)
{
    char *json = malloc(pad + 256);
    fo_batch b;
    int n = snprintf(json, 256, "{\"from\":%llu,\"completions\":[{\"command\":{\"action\":"
                     "\"update\",\"props\":{\"k%d\":%d", (unsigned long long)from, i, i);

    if (pad) {
        n += snprintf(json + n, 256, ",\"pad\":\"");
        memset(json + n, 'x', pad);
        n += (int)pad;
        json[n++] = '"';
    }
    snprintf(json + n, 256, "}}}]}");
    b = ht_batch_json(&A, json);
    free(json);
    return b;
}

/* Sends the flush (seq) until it is acked: every refusal must be `code` with a
 * retryAfterMs, after which the same frame (same seq) is sent again. Returns how many
 * times it was refused. */
static int flush_retrying(ht_client *c, const char *model, uint64_t seq, const fo_batch *b,
                          fo_error_code code)
{
    fo_msg m = {.type = FO_MSG_FLUSH, .seq = seq, .batch = *b}, r;
    char d[512];
    int refused = 0;

    m.model = model;
    m.model_len = (uint32_t)strlen(model);
    for (;;) {
        uint64_t rid = ht_send(c, &m);
        ht_recv(c, &r);
        if (r.type == FO_MSG_ACK) {
            if (!r.has_rid || r.rid != rid || r.seq != seq)
                HT_FAIL(c, "ack %s should answer rid %llu seq %llu",
                        fo_ws_describe(&r, d, sizeof(d)), (unsigned long long)rid,
                        (unsigned long long)seq);
            cr_assert_eq(r.result.applied.len, 1, "the flush applied %u commands",
                         r.result.applied.len);
            return refused;
        }
        if (r.type != FO_MSG_ERROR || r.code != code || !r.has_rid || r.rid != rid)
            HT_FAIL(c, "want an ack or error %s for rid %llu, got %s",
                    fo_error_code_name(code), (unsigned long long)rid,
                    fo_ws_describe(&r, d, sizeof(d)));
        if (!r.has_retry_after || r.retry_after_ms == 0 || r.retry_after_ms > 10000)
            HT_FAIL(c, "%s without a sensible retryAfterMs: %s", fo_error_code_name(code),
                    fo_ws_describe(&r, d, sizeof(d)));
        cr_assert_str_eq(r.model, model);
        refused++;
        sleep_ms(r.retry_after_ms);
    }
}

/* The model holds k0..k<n-1> exactly once each: n commands. */
static void assert_all_there(ht_client *c, const char *model, int n)
{
    fo_snapshot s = ht_get(c, model);
    const fo_map *doc = fo_value_as_map(s.document);
    char key[24];

    cr_assert_eq(s.command_count, (uint64_t)n, "%s has %llu commands, want %d", model,
                 (unsigned long long)s.command_count, n);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        cr_assert_not_null(fo_map_get(doc, fo_key_new_cstr(&A, key)), "%s lost %s", model, key);
    }
}

Test(hub_limits, max_connections_refuses_the_upgrade_with_503)
{
    const char *args[] = {"--max-connections", "3", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *c[3];
    fo_ws_result res;
    fo_ws *ws;

    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c%d", i);
        c[i] = ht_connect(h, id); /* up to the limit: all taken */
    }
    ws = try_connect(h, &res);
    cr_assert_null(ws, "a 4th connection was upgraded past --max-connections 3");
    cr_assert_eq(res.http_status, 503, "want 503, got %d: %s", res.http_status, res.message);
    cr_assert_eq(ht_metric(h, "flushout_connections"), 3);
    /* A place that frees up is taken again. */
    ht_close(c[0]);
    for (int i = 0; i < 100 && ht_metric(h, "flushout_connections") != 2; i++)
        sleep_ms(20);
    c[0] = ht_connect(h, "again");
    ht_get(c[0], "m");
}

Test(hub_limits, new_connections_per_address_get_429_past_the_rate)
{
    const char *args[] = {"--conn-rate", "5", NULL}; /* burst: 10 */
    fo_hubproc *h = ht_hub_start("memory", args);
    fo_ws *ws[10];
    fo_ws_result res;
    fo_ws *more;
    uint64_t t0;

    /* Within the burst, connections in a row are all taken. */
    for (int i = 0; i < 10; i++) {
        ws[i] = try_connect(h, &res);
        cr_assert_not_null(ws[i], "connection %d refused within the burst: %s", i, res.message);
    }
    more = try_connect(h, &res);
    cr_assert_null(more, "an 11th connection in a row passed --conn-rate 5 (burst 10)");
    cr_assert_eq(res.http_status, 429, "want 429, got %d: %s", res.http_status, res.message);
    /* The bucket refills at 5/s: one more within a second. */
    t0 = ht_now_ms();
    while (!(more = try_connect(h, &res)) && ht_now_ms() - t0 < 3000) {
        cr_assert_eq(res.http_status, 429);
        sleep_ms(50);
    }
    cr_assert_not_null(more, "no connection taken 3 s after the burst: %s", res.message);
    cr_assert_leq(ht_now_ms() - t0, 1000, "the rate did not refill (%llu ms)",
                  (unsigned long long)(ht_now_ms() - t0));
    fo_ws_free(more);
    for (int i = 0; i < 10; i++)
        fo_ws_free(ws[i]);
}

Test(hub_limits, max_subs_per_connection_is_too_large)
{
    const char *args[] = {"--max-subs", "2", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *c = ht_connect(h, "c");
    fo_msg m = {.type = FO_MSG_SUB, .model = "m3", .model_len = 2};
    uint64_t rid;

    ht_sub(c, "m1");
    ht_sub(c, "m2");
    rid = ht_send(c, &m);
    ht_expect_error(c, FO_ERR_TOO_LARGE, rid, "--max-subs");
    ht_sub(c, "m1"); /* a resubscription is no new subscription */
    ht_unsub(c, "m2");
    ht_sub(c, "m3");
    ht_get(c, "m2"); /* reads need no subscription */
}

Test(hub_limits, flush_rate_refuses_with_retry_after_and_loses_nothing)
{
    const char *args[] = {"--flush-rate", "10", NULL}; /* burst: 20 */
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *c = ht_connect(h, "fast");
    int refused = 0, n = 40;

    /* As fast as acks come: past the burst, refusals; each waits and resends the same seq. */
    for (int i = 0; i < n; i++) {
        fo_batch b = update_batch((uint64_t)i, i, 0);
        refused += flush_retrying(c, "r", (uint64_t)i + 1, &b, FO_ERR_RATE_LIMITED);
    }
    cr_assert_geq(refused, 1, "40 flushes in a row never hit --flush-rate 10");
    assert_all_there(c, "r", n);
    cr_assert_eq(ht_metric(h, "flushout_flush_duplicates_total"), 0);
}

Test(hub_limits, a_client_flushing_under_the_rate_is_never_limited)
{
    const char *args[] = {"--flush-rate", "10", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *c = ht_connect(h, "calm");

    /* 25 flushes at 8/s (3 s): every one is acked at once (flush_retrying fails on any
     * error other than rate_limited, and this counts those). */
    for (int i = 0; i < 25; i++) {
        fo_batch b = update_batch((uint64_t)i, i, 0);
        uint64_t t = ht_now_ms();
        cr_assert_eq(flush_retrying(c, "calm", (uint64_t)i + 1, &b, FO_ERR_RATE_LIMITED), 0,
                     "flush %d was limited at 8/s under --flush-rate 10", i);
        if (ht_now_ms() - t < 125)
            sleep_ms(125 - (ht_now_ms() - t));
    }
    assert_all_there(c, "calm", 25);
}

Test(hub_limits, bytes_rate_refuses_with_retry_after_and_loses_nothing)
{
    /* burst = max(2 x 16K, 2 x 8K) = 32K; six 6 KB flushes overdraw it */
    const char *args[] = {"--bytes-rate", "16K", "--max-frame", "8K", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *c = ht_connect(h, "big");
    int refused = 0, n = 12;

    for (int i = 0; i < n; i++) {
        fo_batch b = update_batch((uint64_t)i, i, 6000);
        refused += flush_retrying(c, "b", (uint64_t)i + 1, &b, FO_ERR_RATE_LIMITED);
    }
    cr_assert_geq(refused, 1, "72 KB in a row never hit --bytes-rate 16K");
    sleep_ms(500); /* the last flush overdrew the budget again: a get now would wait too */
    assert_all_there(c, "b", n);
}

Test(hub_limits, presence_size_and_rate)
{
    const char *args[] = {"--max-presence", "512", "--presence-rate", "2", NULL}; /* burst 4 */
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *c = ht_connect(h, "p");
    char big[800];
    fo_value st;
    fo_msg m = {.type = FO_MSG_PRESENCE, .model = "p", .model_len = 1}, r;
    uint64_t rid;
    int ok = 0;

    ht_sub(c, "p");
    snprintf(big, sizeof(big), "{\"name\":\"%0600d\"}", 7);
    st = ht_val(&A, big);
    m.state = &st;
    rid = ht_send(c, &m);
    ht_expect_error(c, FO_ERR_TOO_LARGE, rid, "--max-presence");
    st = ht_val(&A, "{\"x\":1}");
    /* The 4-update burst passes (the too large one was refused before the rate). */
    for (; ok < 4; ok++)
        ht_presence(c, "p", &st);
    rid = ht_send(c, &m);
    ht_recv(c, &r);
    cr_assert(r.type == FO_MSG_ERROR && r.code == FO_ERR_RATE_LIMITED && r.rid == rid,
              "a 5th presence update in a row was not rate_limited");
    cr_assert(r.has_retry_after && r.retry_after_ms > 0 && r.retry_after_ms <= 1000);
    sleep_ms(r.retry_after_ms);
    ht_presence(c, "p", &st);
}

Test(hub_limits, idle_connection_is_pinged_then_closed)
{
    const char *args[] = {"--idle-timeout-ms", "1000", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *mute = ht_connect(h, "mute");
    ht_client *live = ht_connect(h, "live");

    /* `live` reads (and so answers the hub's pings) for 3.5 s; `mute` reads nothing. */
    ht_expect_silence(live, 3500);
    cr_assert_geq(fo_ws_pings_answered(live->ws), 1, "the idle reader was never pinged");
    ht_get(live, "m"); /* still open */
    /* mute's ping is waiting unread, then the close. */
    ht_expect_close(mute, 4408, 2000);
    cr_assert_eq(fo_ws_pings_answered(mute->ws), 1);
    cr_assert_geq(ht_metric(h, "flushout_idle_closes_total"), 1);
    cr_assert_geq(ht_metric(h, "flushout_idle_pings_total"), 2);
}

/* A flush on model `name` whose rule spins for its whole 400 ms budget: one loop turn of
 * 400 ms once it is read. */
static void send_slow(ht_client *c, const char *name, uint64_t seq)
{
    fo_msg m = {.type = FO_MSG_FLUSH, .seq = seq};

    m.model = name;
    m.model_len = (uint32_t)strlen(name);
    m.batch = update_batch(0, 0, 0);
    ht_send(c, &m);
}

static void expect_rule_failed(ht_client *c, uint64_t seq)
{
    fo_msg r;

    ht_expect(c, FO_MSG_ACK, &r);
    cr_assert_eq(r.seq, seq);
    cr_assert_eq(r.result.errors_len, 1);
}

Test(hub_limits, overload_sheds_new_flushes_then_clears)
{
    const char *rule = "return { { name = \"spin\", models = \"slow*\", intercept = "
                       "function(cmd, ctx) while true do end end } }\n";
    const char *args[] = {"--interceptors", rules_path, "--rule-time-ms", "400",
                          "--rule-instructions", "4000000000", "--overload-lag-ms", "100",
                          NULL};
    fo_hubproc *h;
    ht_client *slow, *slow2, *other;
    FILE *f;
    int refused, n = 0;

    snprintf(rules_path, sizeof(rules_path), "/tmp/fo-limits-rules-%d.lua", getpid());
    cr_assert_not_null(f = fopen(rules_path, "w"));
    fputs(rule, f);
    fclose(f);
    h = ht_hub_start("memory", args);
    slow = ht_connect(h, "slow");
    slow2 = ht_connect(h, "slow2");
    other = ht_connect(h, "other");
    cr_assert_eq(ht_metric(h, "flushout_overloaded"), 0);

    /* One turn of 400 ms (a big model loading, a stall) is no overload: nothing is shed. */
    send_slow(slow, "slow-a", 1);
    sleep_ms(100); /* the hub is inside the rule now, unless this machine is very busy */
    for (refused = 0; n < 3; n++) {
        fo_batch b = update_batch((uint64_t)n, n, 0);
        refused += flush_retrying(other, "fast", (uint64_t)n + 1, &b, FO_ERR_OVERLOADED);
    }
    cr_assert_eq(refused, 0, "%d flushes shed after one slow loop turn", refused);
    expect_rule_failed(slow, 1);
    cr_assert_eq(ht_metric(h, "flushout_overloads_total"), 0);

    /* Slow turns back to back (800 ms of the last second): new flushes are shed. */
    sleep_ms(1100); /* the first slow turn leaves the window */
    send_slow(slow, "slow-a", 2);
    sleep_ms(100);
    send_slow(slow2, "slow-b", 1); /* read in the turn after the first one */
    sleep_ms(150);
    for (refused = 0; !refused && n < 6; n++) {
        fo_batch b = update_batch((uint64_t)n, n, 0);
        refused = flush_retrying(other, "fast", (uint64_t)n + 1, &b, FO_ERR_OVERLOADED);
    }
    cr_assert_geq(refused, 1, "no flush was shed after two 400 ms loop turns in a row");
    /* The flushes already accepted are still answered (their commands failed the rule). */
    expect_rule_failed(slow, 2);
    expect_rule_failed(slow2, 1);
    cr_assert_geq(ht_metric(h, "flushout_overloads_total"), 1);
    /* It clears once the slow turns leave the window: flushes are taken at once again (one
     * more slow turn of a loaded test machine may still shed one of them). */
    sleep_ms(1100);
    for (refused = 0; n < 11; n++) {
        fo_batch b = update_batch((uint64_t)n, n, 0);
        refused += flush_retrying(other, "fast", (uint64_t)n + 1, &b, FO_ERR_OVERLOADED);
    }
    cr_assert_lt(refused, 3, "still shedding: %d refusals of the flushes after", refused);
    cr_assert_eq(ht_metric(h, "flushout_overloaded"), 0);
    assert_all_there(other, "fast", n);
}
