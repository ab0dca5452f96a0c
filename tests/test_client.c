/* test_client.c - libflushout-client against a real flushout-hub started here as a child
 * process (FO_HUB_BIN) on a free loopback port, with a fresh mkdtemp data directory
 * (tests/clienttest.h). Every test is bounded in time; only the hub's own pid is ever
 * signalled. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients/c/client.h"
#include "proto/json.h"
#include "tests/clienttest.h"

/* ---- tests --------------------------------------------------------------------------- */

TestSuite(client, .init = ct_setup, .fini = ct_teardown, .timeout = 120);

Test(client, convergence_with_id_collisions)
{
    uv_loop_t loop;
    peer p[4];
    driver d = {.p = p, .n = 4, .seed = 0x9e3779b97f4a7c15ull, .left = 1200};
    fo_client_model_stats st;
    uint64_t count, total = 0, flushes = 0, synced = 0;

    ct_hub.sequential = true; /* IDs collide between clients: the hub remaps them */
    ct_start_all(&loop, p, 4, FO_IDS_SEQUENTIAL);
    ct_drive(&loop, &d, 60000);
    count = ct_converge(&loop, p, 4, NULL);
    for (int i = 0; i < 4; i++) {
        fo_client_model_stats_get(p[i].m, &st);
        total += p[i].ok;
        flushes += st.flushes;
        synced += p[i].changes[FO_CHANGE_SYNC];
        cr_assert_eq(p[i].flush_errors, 0);
    }
    cr_log_info("convergence: %llu local commands, hub count %llu, %llu flushes, %llu syncs",
                (unsigned long long)total, (unsigned long long)count, (unsigned long long)flushes,
                (unsigned long long)synced);
    /* Some commands fail at the master (their target was deleted meanwhile). */
    cr_assert_leq(count, total);
    cr_assert_gt(count, total / 2);
    cr_assert_gt(synced, 0, "no flush needed a sync: the test did not race");
    ct_close_all(&loop, p, 4);
}

/* Checks that the hub's `items` hold each n created by the peers exactly once. */
static void check_items_once(const fo_value *doc, peer *p, int n, int64_t max_n)
{
    fo_arena a;
    fo_value *items;
    fo_map *m;
    uint8_t *seen = calloc((size_t)max_n, 1);
    uint64_t created = 0, expect = 0;

    fo_arena_init(&a, 256);
    items = fo_map_get(fo_value_as_map(doc), fo_key_new_cstr(&a, "items"));
    cr_assert_not_null(items);
    m = fo_value_as_map(items);
    for (uint32_t i = 0; i < fo_map_len(m); i++) {
        if (!fo_map_entries(m)[i].key)
            continue;
        fo_value *nv =
            fo_map_get(fo_value_as_map(&fo_map_entries(m)[i].value), fo_key_new_cstr(&a, "n"));
        cr_assert_not_null(nv);
        cr_assert(nv->h.as.i >= 0 && nv->h.as.i < max_n);
        cr_assert_eq(seen[nv->h.as.i], 0, "item n=%lld is there twice", (long long)nv->h.as.i);
        seen[nv->h.as.i] = 1;
        created++;
    }
    for (int i = 0; i < n; i++)
        expect += p[i].creates;
    cr_assert_eq(created, expect, "%llu items, %llu created", (unsigned long long)created,
                 (unsigned long long)expect);
    free(seen);
    fo_arena_destroy(&a);
}

typedef struct restart_ctx {
    uv_loop_t *loop;
    bool armed, killed;
    int in_flight; /* flushes in flight when the hub died */
    int64_t at;    /* start once this many commands were issued */
    int waited;    /* ticks waited for another peer's flush to be in flight */
} restart_ctx;

/* Once `at` commands were issued, peer 0 loses its next ack (the hub has made that flush
 * durable and answered it); right after, while other flushes are in flight, the hub is
 * SIGKILLed and restarted on the same port and sqlite directory. Peer 0 then resends a
 * flush the new hub process knows only from its store. */
static void count_and_restart(driver *d)
{
    restart_ctx *rc = d->hook_data;
    int flying = 0;

    if (!rc->armed && d->next >= rc->at) {
        rc->armed = true;
        fo_client_debug_lose_acks(d->p[0].m, 1);
    }
    if (!rc->armed || rc->killed || d->p[0].states[FO_CLIENT_CLOSED] == 0)
        return;
    for (int i = 1; i < d->n; i++)
        flying += fo_client_model_flushing(d->p[i].m);
    if (flying == 0 && rc->waited++ < 8)
        return; /* peer 0 reconnects after 10 ms at the earliest */
    flying += fo_client_model_flushing(d->p[0].m);
    rc->killed = true;
    rc->in_flight = flying;
    ct_hub_kill(&ct_hub, SIGKILL);
    /* Let the clients see the hub gone and retry against a closed port for a while. */
    for (int k = 0; k < 30; k++)
        uv_run(rc->loop, UV_RUN_NOWAIT), ct_sleep_ms(5);
    ct_hub_start(&ct_hub);
}

Test(client, reconnect_after_hub_restart_mid_flush_exactly_once)
{
    uv_loop_t loop;
    peer p[3];
    restart_ctx rc = {.loop = &loop, .at = 300};
    driver d = {.p = p, .n = 3, .seed = 0x1234567887654321ull, .left = 900, .no_fail = true};

    got hg;
    fo_client_model_stats st;
    uint64_t total = 0, resends = 0;

    ct_hub.sqlite = true;
    d.each = count_and_restart, d.hook_data = &rc;
    ct_start_all(&loop, p, 3, FO_IDS_RANDOM);
    ct_drive(&loop, &d, 60000);
    cr_assert(rc.killed, "the hub was not restarted");
    cr_assert_geq(rc.in_flight, 1, "no flush in flight at the kill");
    ct_converge(&loop, p, 3, &hg);
    for (int i = 0; i < 3; i++) {
        fo_client_model_stats_get(p[i].m, &st);
        total += p[i].ok;
        resends += st.resends;
        cr_assert_geq(p[i].states[FO_CLIENT_CLOSED], 1, "client %d never saw the hub go", i);
    }
    cr_log_info("restart: %d flushes in flight at the kill, %llu resent, %llu commands",
                rc.in_flight, (unsigned long long)resends, (unsigned long long)total);
    /* Nothing lost, nothing applied twice: every local success is one hub command. */
    cr_assert_eq(hg.count, total, "hub has %llu commands, clients applied %llu",
                 (unsigned long long)hg.count, (unsigned long long)total);
    cr_assert_geq(resends, (uint64_t)rc.in_flight);
    check_items_once(&hg.doc, p, 3, d.next);
    fo_arena_destroy(&hg.a);
    ct_close_all(&loop, p, 3);
}

/* A single peer's helpers for the scenario tests below. */
static void apply_json(peer *p, const char *json)
{
    fo_client_result r;

    cr_assert_eq(fo_client_apply_json(p->m, json, strlen(json), &r, NULL), 0);
    cr_assert(r.ok, "%s: %s", json, r.error);
    p->ok++;
}

static bool synced(void *arg)
{
    return fo_client_model_synced(((peer *)arg)->m);
}

Test(client, lost_ack_is_resent_with_the_same_seq)
{
    uv_loop_t loop;
    peer p[2];
    fo_client_model_stats st;
    uint64_t count;

    ct_start_all(&loop, p, 2, FO_IDS_RANDOM);
    /* The flush reaches the hub and is applied; its ack, then the ack of its first resend,
     * are lost with the connection: each resend carries the same seq. */
    fo_client_debug_lose_acks(p[0].m, 2);
    apply_json(&p[0], "{\"action\":\"create\",\"path\":[\"items\"],\"parentDefault\":{}}");
    apply_json(&p[0], "{\"action\":\"update\",\"props\":{\"a\":1}}");
    cr_assert(ct_run_until(&loop, synced, &p[0], 10000));
    apply_json(&p[1], "{\"action\":\"update\",\"props\":{\"b\":2}}");
    apply_json(&p[0], "{\"action\":\"update\",\"props\":{\"a\":3}}");
    count = ct_converge(&loop, p, 2, NULL);
    fo_client_model_stats_get(p[0].m, &st);
    cr_assert_eq(st.resends, 2);
    cr_assert_geq(p[0].states[FO_CLIENT_CLOSED], 2);
    cr_assert_eq(count, p[0].ok + p[1].ok, "applied twice? hub %llu, clients %llu",
                 (unsigned long long)count, (unsigned long long)(p[0].ok + p[1].ok));
    ct_close_all(&loop, p, 2);
}

Test(client, gap_in_pushes_resubscribes_from_the_committed_count)
{
    uv_loop_t loop;
    peer p[2];
    group g = {p, 2};
    fo_client_model_stats st;

    ct_start_all(&loop, p, 2, FO_IDS_RANDOM);
    fo_client_debug_drop_pushes(p[0].m, 1); /* the network "loses" the next push */
    apply_json(&p[1], "{\"action\":\"update\",\"props\":{\"x\":1}}");
    cr_assert(ct_run_until(&loop, synced, &p[1], 10000));
    cr_assert(ct_run_until(&loop, ct_all_idle, &g, 10000));
    cr_assert_eq(fo_client_committed_count(p[0].m), 0, "the dropped push was applied");
    apply_json(&p[1], "{\"action\":\"update\",\"props\":{\"x\":2}}");
    cr_assert_eq(ct_converge(&loop, p, 2, NULL), 2);
    fo_client_model_stats_get(p[0].m, &st);
    cr_assert_eq(st.gaps, 1);
    cr_assert_eq(st.resubscribes, 1);
    cr_assert_geq(p[0].changes[FO_CHANGE_PUSH], 1);
    ct_close_all(&loop, p, 2);
}

static bool saw_presence(void *arg)
{
    return strcmp(((peer *)arg)->presence, "{\"n\":7}") == 0;
}

static bool saw_clear(void *arg)
{
    return ((peer *)arg)->has_presence && !((peer *)arg)->presence[0];
}

static bool never(void *arg)
{
    return arg == NULL && false;
}

Test(client, presence_reaches_the_others)
{
    uv_loop_t loop;
    peer p[3];
    fo_arena a;
    fo_value st;

    ct_ping_ms = 100; /* idle connections ping; the hub answers, nobody drops */
    ct_start_all(&loop, p, 2, FO_IDS_RANDOM);
    fo_arena_init(&a, 256);
    cr_assert_eq(fo_json_read_value("{\"n\":7}", 7, 8, &a, &st, NULL), 0);
    cr_assert_eq(fo_client_set_presence(p[0].m, &st), 0);
    cr_assert(ct_run_until(&loop, saw_presence, &p[1], 10000));
    cr_assert_str_eq(p[1].presence_session, fo_client_session(p[0].c));
    cr_assert_eq(p[0].has_presence, false, "a session hears its own presence");
    /* A later subscriber hears the current presence right after its snapshot. */
    ct_peer_open(&p[2], &loop, ct_hub.port, 2, FO_IDS_RANDOM);
    cr_assert(ct_run_until(&loop, saw_presence, &p[2], 10000));
    cr_assert_eq(fo_client_set_presence(p[0].m, NULL), 0);
    cr_assert(ct_run_until(&loop, saw_clear, &p[1], 10000));
    cr_assert(ct_run_until(&loop, saw_clear, &p[2], 10000));
    ct_run_until(&loop, never, NULL, 500); /* idle: only pings */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(p[i].states[FO_CLIENT_CLOSED], 0, "ping: %s", p[i].last_why);
    fo_arena_destroy(&a);
    ct_close_all(&loop, p, 3);
}

Test(client, flush_over_max_frame_is_rejected_and_dropped)
{
    uv_loop_t loop;
    peer p[1];
    fo_client_model_stats st;
    char big[3000];

    ct_hub.extra = "--max-frame=1024";
    ct_start_all(&loop, p, 1, FO_IDS_RANDOM);
    snprintf(big, sizeof(big), "{\"action\":\"update\",\"props\":{\"big\":\"%02000d\"}}", 0);
    apply_json(&p[0], big);
    cr_assert(ct_run_until(&loop, synced, &p[0], 10000));
    fo_client_model_stats_get(p[0].m, &st);
    cr_assert_eq(st.rejected, 1);
    cr_assert_eq(p[0].flush_errors, 1);
    cr_assert_eq(p[0].changes[FO_CHANGE_REJECTED], 1);
    cr_assert_eq(fo_map_count(fo_value_as_map(fo_client_document(p[0].m))), 0);
    apply_json(&p[0], "{\"action\":\"update\",\"props\":{\"small\":1}}");
    cr_assert_eq(ct_converge(&loop, p, 1, NULL), 1);
    ct_close_all(&loop, p, 1);
}

static bool three_failures(void *arg)
{
    return ((peer *)arg)->states[FO_CLIENT_CLOSED] >= 3;
}

Test(client, unreachable_hub_backs_off_and_close_cancels_requests)
{
    uv_loop_t loop;
    peer p[1];
    got g;

    uv_loop_init(&loop);
    ct_peer_open(&p[0], &loop, 1, 0, FO_IDS_RANDOM); /* nothing listens on port 1 */
    memset(&g, 0, sizeof(g));
    cr_assert_eq(fo_client_get(p[0].c, "conv", false, 0, ct_on_got, &g), 0);
    cr_assert_eq(fo_client_get(p[0].c, "bad name", false, 0, ct_on_got, &g), FO_EINVAL);
    cr_assert(ct_run_until(&loop, three_failures, &p[0], 5000));
    cr_assert(strstr(p[0].last_why, "connection refused"), "why: %s", p[0].last_why);
    cr_assert_geq(p[0].states[FO_CLIENT_CONNECTING], 3);
    cr_assert_eq(p[0].states[FO_CLIENT_OPEN], 0);
    cr_assert_eq(g.done, false);
    ct_close_all(&loop, p, 1);
    cr_assert_eq(g.done, true, "a pending request's callback did not run at close");
}

static bool one_failure(void *arg)
{
    return ((peer *)arg)->states[FO_CLIENT_CLOSED] >= 1;
}

/* wss:// to a hub with --tls-cert: with its CA the peers converge; without, every attempt
 * fails with the reason (the certificate is not trusted), never a silent skip. */
Test(client, wss_verifies_the_hub)
{
    char dir[64], cert[96], key[96], cmd[512], a1[128], a2[128];
    uv_loop_t loop;
    peer p[3];

    cr_assert_not_null(mkdtemp(strcpy(dir, "/tmp/fo-test-client-tls-XXXXXX")));
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
             ">/dev/null 2>&1",
             key, cert);
    cr_assert_eq(system(cmd), 0, "openssl req failed");
    snprintf(a1, sizeof(a1), "--tls-cert=%s", cert);
    snprintf(a2, sizeof(a2), "--tls-key=%s", key);
    ct_hub.extra = a1;
    ct_hub.extra2 = a2;
    ct_wss = true;
    ct_ca = cert;
    unsetenv("FLUSHOUT_CA");
    ct_start_all(&loop, p, 2, FO_IDS_RANDOM);
    apply_json(&p[0], "{\"action\":\"update\",\"props\":{\"over\":\"tls\"}}");
    cr_assert_eq(ct_converge(&loop, p, 2, NULL), 1);
    ct_ca = NULL; /* the system's CAs do not know this one */
    ct_peer_open(&p[2], &loop, ct_hub.port, 2, FO_IDS_RANDOM);
    cr_assert(ct_run_until(&loop, one_failure, &p[2], 10000));
    cr_assert(strstr(p[2].last_why, "certificate is not trusted: self-signed certificate"),
              "the reason: %s", p[2].last_why);
    cr_assert_eq(fo_client_get_state(p[2].c) == FO_CLIENT_OPEN, false);
    ct_close_all(&loop, p, 3);
    ct_wss = false;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(client, rejects_bad_urls_and_names)
{
    /* Each refusal is explained: fo_client_config_error names the field and the fix. */
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"http://x/v1/ws", "url: http:// is the hub's HTTP address; its WebSocket URL is "
                           "ws://HOST:PORT/v1/ws"},
        {"https://x/v1/ws", "url: https:// is the hub's HTTP address; its WebSocket URL is "
                            "wss://HOST:PORT/v1/ws"},
        {"ftp://x", "url: must start with ws:// or wss:// (ws[s]://HOST[:PORT][/PATH])"},
        {"ws://", "url: bad host (ws://HOST[:PORT][/PATH]; an IPv6 address goes in brackets)"},
        {"ws://h:0/", "url: the port must be a number from 1 to 65535"},
        {"ws://h:99999", "url: the port must be a number from 1 to 65535"},
        {"ws://[::1/x",
         "url: bad host (ws://HOST[:PORT][/PATH]; an IPv6 address goes in brackets)"},
        {"ws://h:12x/", "url: the port must be a number from 1 to 65535"},
        {"ws://h/#x", "url: a WebSocket URL has no fragment (#)"},
    };
    uv_loop_t loop;
    fo_client_config cfg;
    fo_client *c;
    fo_client_model *m;

    uv_loop_init(&loop);
    fo_client_config_default(&cfg);
    cr_assert_null(fo_client_config_error(&cfg));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.url = bad[i].url;
        cr_assert_eq(fo_client_new(&loop, &cfg, &c), FO_EINVAL, "%s", bad[i].url);
        cr_assert_str_eq(fo_client_config_error(&cfg), bad[i].why, "%s", bad[i].url);
    }
    cfg.url = "ws://127.0.0.1:1";
    cfg.client_id = "";
    cr_assert_eq(fo_client_new(&loop, &cfg, &c), FO_EINVAL);
    cr_assert_str_eq(fo_client_config_error(&cfg), "client_id: must be 1 to 64 bytes");
    cfg.client_id = "me";
    cr_assert_null(fo_client_config_error(&cfg));
    cfg.url = "wss://127.0.0.1:1";
    cfg.ca_file = "/nonexistent/ca.pem";
    cr_assert_eq(fo_client_new(&loop, &cfg, &c), FO_EINVAL);
    cr_assert_str_eq(fo_client_config_error(&cfg),
                     "ca_file: cannot load the CA certificates (a "
                     "readable PEM file; FLUSHOUT_CA when ca_file is NULL)");
    cfg.url = "ws://127.0.0.1:1";
    cfg.ca_file = NULL;
    cr_assert_eq(fo_client_new(&loop, &cfg, &c), 0);
    cr_assert_str_eq(fo_client_id(c), "me");
    cr_assert_eq(fo_client_subscribe(c, "", &m), FO_EINVAL);
    cr_assert_eq(fo_client_subscribe(c, "a b", &m), FO_EINVAL);
    cr_assert_eq(fo_client_subscribe(c, "ok:name-1.x_y", &m), 0);
    cr_assert_eq(fo_client_subscribe(c, "ok:name-1.x_y", &m), FO_EINVAL);
    fo_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(client, rate_limited_flush_is_resent_after_retry_after)
{
    uv_loop_t loop;
    peer p[1];
    fo_client_model_stats st;
    uint64_t count, t0;
    char json[96];
    struct timespec ts;

    ct_hub.extra = "--flush-rate=2"; /* bursts of 4 flushes, then one every 500 ms */
    ct_start_all(&loop, p, 1, FO_IDS_RANDOM);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    /* Eight flushes in a row: the last four are refused with rate_limited and resent (same
     * seq) by the client itself after the hub's retryAfterMs. */
    for (int i = 0; i < 8; i++) {
        snprintf(json, sizeof(json), "{\"action\":\"update\",\"props\":{\"k%d\":%d}}", i, i);
        apply_json(&p[0], json);
        cr_assert_eq(fo_client_flush(p[0].m), 0);
        cr_assert(ct_run_until(&loop, synced, &p[0], 10000), "flush %d never acked", i);
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    count = ct_converge(&loop, p, 1, NULL);
    fo_client_model_stats_get(p[0].m, &st);
    cr_log_info(
        "8 flushes at --flush-rate 2: %llu refusals resent after retryAfterMs, %llu ms",
        (unsigned long long)st.retry_after,
        (unsigned long long)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 - t0));
    cr_assert_geq(st.retry_after, 4, "refusals resent after retryAfterMs: %llu",
                  (unsigned long long)st.retry_after);
    cr_assert_eq(st.rejected, 0);
    cr_assert_eq(st.flushes, 8);
    /* Nothing lost, nothing applied twice. */
    cr_assert_eq(count, p[0].ok, "hub %llu commands, client %llu", (unsigned long long)count,
                 (unsigned long long)p[0].ok);
    ct_close_all(&loop, p, 1);
}
