/* The hub over real WebSockets, part 1: the request/reply surface of the wire contract
 * (proto/PROTOCOL.md). Each test starts its own flushout-hub (--sequential-ids, so that an
 * fo_master with FO_IDS_SEQUENTIAL is an exact oracle for every ack) and talks to it with the
 * test client of tests/support. Other parts: test_hub_errors.c (error codes, auth),
 * test_hub_sync.c (many clients, slow subscribers), test_hub_durability.c (restarts, crashes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"
#include "tests/fuzz/mp_text.h"
#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static fo_arena A;

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
    fo_arena_init(&A, 0);
}

static void teardown(void)
{
    ht_cleanup();
    fo_arena_destroy(&A);
}

TestSuite(hub, .init = setup, .fini = teardown, .timeout = 60);

static fo_command json_cmd(const char *json)
{
    fo_command c;
    fo_err_info err;

    cr_assert_eq(fo_json_read_command(json, strlen(json), &A, &c, &err), 0, "bad command %s: %s",
                 json, err.msg);
    return c;
}

Test(hub, hello_gets_welcome)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *a = ht_connect(h, "client-a"), *b = ht_connect(h, "client-b");

    cr_assert_str_eq(fo_ws_protocol(a->ws), "flushout.v1", "the hub must select flushout.v1");
    cr_assert(a->session[0] && a->server[0], "welcome needs session and server");
    cr_assert(a->max_frame >= 1024, "maxFrame %llu", (unsigned long long)a->max_frame);
    cr_assert(strcmp(a->session, b->session) != 0, "two connections share session %s", a->session);
}

Test(hub, new_model_starts_empty)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");
    fo_value empty = ht_val(&A, "{}");
    fo_snapshot s = ht_sub(c, "fresh.model:1");

    cr_assert_eq(s.command_count, 0);
    ht_assert_value_eq(s.document, &empty, "snap of a new model");
    s = ht_get(c, "another-new_model");
    cr_assert_eq(s.command_count, 0);
    ht_assert_value_eq(s.document, &empty, "get of a new model");
}

Test(hub, flush_acks_match_the_oracle)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c1 = ht_connect(h, "c1"), *c2 = ht_connect(h, "c2");
    ht_oracle *o = ht_oracle_new();
    fo_snapshot s;
    fo_apply_result r;

    /* Unchanged batch: no sync. */
    r = ht_flush_checked(c1, o, "m",
                         "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\","
                         "\"props\":{\"t\":\"a\"}},\"createdId\":\"1\"},{\"command\":{\"action\":"
                         "\"update\",\"path\":[\"1\"],\"props\":{\"done\":false}}}]}");
    cr_assert_eq(r.sync.kind, FO_SYNC_NONE);
    /* Stale and colliding: "1" is taken, remapped, partial sync with mappedPaths. */
    r = ht_flush_checked(c2, o, "m",
                         "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\","
                         "\"props\":{\"t\":\"b\"}},\"createdId\":\"1\"},{\"command\":{\"action\":"
                         "\"update\",\"path\":[\"1\"],\"props\":{\"by\":\"c2\"}}}]}");
    cr_assert_eq(r.sync.kind, FO_SYNC_PARTIAL);
    cr_assert_eq(r.sync.mapped_len, 1);
    /* A failing command (errors), and a create with parentDefault. */
    r = ht_flush_checked(c1, o, "m",
                         "{\"from\":2,\"completions\":[{\"command\":{\"action\":\"update\","
                         "\"path\":[\"nope\"],\"props\":{\"x\":1}}},{\"command\":{\"action\":"
                         "\"create\",\"path\":[\"todos\"],\"props\":{\"t\":\"c\"},"
                         "\"parentDefault\":{\"kind\":\"list\"}},\"createdId\":\"3\"}]}");
    cr_assert_eq(r.errors_len, 1);
    /* Values of every type survive the round trip. */
    ht_flush_checked(
        c2, o, "m",
        "{\"from\":5,\"completions\":[{\"command\":{\"action\":\"update\",\"props\":"
        "{\"i\":-7,\"big\":18446744073709551615,\"f\":0.25,\"one\":1.0,\"s\":\"\xc3\xa9t\xc3\xa9\","
        "\"n\":null,\"b\":true,\"arr\":[1,\"x\",[2],{\"k\":null}],\"m\":{}}}}]}");
    ht_flush_checked(
        c1, o, "m",
        "{\"from\":6,\"completions\":[{\"command\":{\"action\":\"delete\","
        "\"path\":[\"1\"]}},{\"command\":{\"action\":\"delete\",\"path\":[\"absent\"]}}]}");
    s = ht_get(c1, "m");
    ht_assert_oracle_snapshot(&s, o, "document after the flushes");
    ht_oracle_free(o);
}

Test(hub, detete_is_accepted_as_delete)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");
    ht_oracle *o = ht_oracle_new();
    fo_buf raw;
    fo_msg m;
    fo_batch bt;
    fo_apply_result want;

    ht_flush_update(c, o, "m", 1);
    raw = mp("{t: flush, rid: 77, model: m, seq: 50, batch: {from: 1, completions: "
             "[{command: {action: detete, path: [k1]}}]}}");
    ht_send_bytes(c, fo_buf_data(&raw), raw.len);
    fo_buf_destroy(&raw);
    ht_expect_reply(c, FO_MSG_ACK, 77, &m);
    bt = ht_batch_json(&A, "{\"from\":1,\"completions\":[{\"command\":{\"action\":\"delete\","
                           "\"path\":[\"k1\"]}}]}");
    want = ht_oracle_apply(o, &bt);
    ht_assert_result_eq(&m.result, &want, "ack of a `detete`");
    cr_assert_eq(m.result.applied.items[0].command.action, FO_DELETE);
    ht_oracle_free(o);
}

Test(hub, stale_flush_gets_a_partial_sync)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *a = ht_connect(h, "a"), *b = ht_connect(h, "b");
    ht_oracle *o = ht_oracle_new();
    fo_apply_result r;

    for (int i = 0; i < 3; i++)
        ht_flush_update(a, o, "m", i);
    r = ht_flush_checked(b, o, "m",
                         "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"update\","
                         "\"props\":{\"b\":1}}}]}");
    cr_assert_eq(r.sync.kind, FO_SYNC_PARTIAL);
    cr_assert_eq(r.sync.diff.from, 0);
    cr_assert_eq(r.sync.diff.len, 4, "history [0,3) then its own command");
    ht_oracle_free(o);
}

Test(hub, flush_older_than_history_gets_the_full_snapshot)
{
    static const char *const args[] = {"--history", "5", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *a = ht_connect(h, "a"), *b = ht_connect(h, "b");
    ht_oracle *o = ht_oracle_new();
    fo_batch bt = ht_batch_json(&A, "{\"from\":0,\"completions\":[{\"command\":{\"action\":"
                                    "\"create\",\"props\":{\"who\":\"b\"}},\"createdId\":\"1\"}]}");
    fo_apply_result r, want;
    fo_snapshot s;

    for (int i = 0; i < 10; i++)
        ht_flush_update(a, o, "m", i);
    r = ht_flush(b, "m", &bt);
    want = ht_oracle_apply(o, &bt); /* the oracle keeps all history: compare all but the sync */
    cr_assert_eq(r.sync.kind, FO_SYNC_FULL, "from 0 is 10 commands back, history keeps 5");
    ht_assert_batch_eq(&r.applied, &want.applied, "applied batch");
    cr_assert_eq(r.sync.has_mapped, true, "a master's sync always has mappedPaths");
    cr_assert_eq(r.sync.mapped_len, want.sync.mapped_len);
    ht_assert_oracle_snapshot(&r.sync.latest, o, "sync.latest");
    s = ht_get(a, "m");
    ht_assert_oracle_snapshot(&s, o, "get after the flush");
    ht_oracle_free(o);
}

Test(hub, retried_flush_is_applied_once)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "retry-client"), *other = ht_connect(h, "other");
    fo_proxy *p = ht_proxy_new(NULL);
    ht_oracle *o = ht_oracle_new();
    fo_command cmd;
    fo_doc_result dr;
    fo_batch b;
    fo_apply_result r, want;
    fo_snapshot s;
    bool changed;

    cmd = json_cmd("{\"action\":\"create\",\"props\":{\"t\":\"mine\"}}");
    cr_assert_eq(fo_proxy_apply(p, &cmd, &dr), 0);
    cmd = json_cmd("{\"action\":\"update\",\"props\":{\"x\":1}}");
    cr_assert_eq(fo_proxy_apply(p, &cmd, &dr), 0);
    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    r = ht_flush_seq(c, "m", 1, &b); /* this ack is "lost" */
    want = ht_oracle_apply(o, &b);
    ht_assert_result_eq(&r, &want, "first ack");
    ht_flush_update(other, o, "m", 9);

    /* The retry: same client, same seq, same batch. Answered as an empty batch from the same
     * `from` would be: nothing applied, a sync that covers its own commands. */
    for (int i = 0; i < 2; i++) {
        fo_batch empty = {b.from, 0, NULL};
        r = ht_flush_seq(c, "m", 1, &b);
        want = ht_oracle_apply(o, &empty);
        ht_assert_result_eq(&r, &want, "ack of the retried flush");
        cr_assert_eq(r.applied.len, 0);
    }
    s = ht_get(other, "m");
    cr_assert_eq(s.command_count, 3, "the retried batch was applied again");
    cr_assert_eq(fo_proxy_end_flush(p, &r.sync, &changed), 0);
    cr_assert_eq(fo_proxy_count(p), 3);
    ht_assert_value_eq(fo_proxy_document(p), s.document, "proxy after the retry's sync");
    ht_proxy_free(p);
    ht_oracle_free(o);
}

Test(hub, get_latest_at_and_history)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");
    ht_oracle *o = ht_oracle_new();
    fo_snapshot s;
    fo_batch d;
    uint64_t n = 8, k;

    for (k = 0; k < n; k++)
        ht_flush_update(c, o, "m", (int)k);
    s = ht_get(c, "m");
    ht_assert_oracle_snapshot(&s, o, "get latest");
    for (k = 0; k <= n; k++) {
        fo_value want = ht_val(&A, ht_oracle_doc_at(o, k));
        char what[64];
        s = ht_get_at(c, "m", k);
        snprintf(what, sizeof(what), "get at %llu", (unsigned long long)k);
        cr_assert_eq(s.command_count, k, "%s: commandCount %llu", what,
                     (unsigned long long)s.command_count);
        ht_assert_value_eq(s.document, &want, what);
    }
    d = ht_history(c, "m", 2, false, 0);
    cr_assert_eq(d.from, 2);
    cr_assert_eq(d.len, n - 2);
    for (k = 2; k < n; k++) {
        fo_batch one = {k, 1, &d.items[k - 2]}, want = {k, 1, ht_oracle_history(o, k)};
        ht_assert_batch_eq(&one, &want, "history entry");
    }
    d = ht_history(c, "m", 3, true, 5);
    cr_assert_eq(d.from, 3);
    cr_assert_eq(d.len, 2, "history from 3 to 5");
    d = ht_history(c, "m", n, false, 0);
    cr_assert_eq(d.from, n);
    cr_assert_eq(d.len, 0, "history from the current count is empty");
    ht_oracle_free(o);
}

Test(hub, past_the_history_is_gone)
{
    static const char *const args[] = {"--history", "5", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *c = ht_connect(h, "c");
    ht_oracle *o = ht_oracle_new();
    fo_msg m = {.type = FO_MSG_HISTORY, .model = "m", .from = 0};
    uint64_t rid;
    fo_batch d;

    for (int i = 0; i < 10; i++)
        ht_flush_update(c, o, "m", i);
    rid = ht_send(c, &m);
    ht_expect_error(c, FO_ERR_GONE, rid, NULL);
    m = (fo_msg){.type = FO_MSG_GET, .model = "m", .has_at = true, .at = 1};
    rid = ht_send(c, &m);
    ht_expect_error(c, FO_ERR_GONE, rid, NULL);
    d = ht_history(c, "m", 9, false, 0); /* still usable, and recent history is there */
    cr_assert_eq(d.len, 1);
    ht_oracle_free(o);
}

Test(hub, sub_from_gets_a_diff_or_a_snap)
{
    static const char *const args[] = {"--history", "5", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *w = ht_connect(h, "w"), *a = ht_connect(h, "a"), *b = ht_connect(h, "b"),
              *c = ht_connect(h, "c");
    ht_oracle *o = ht_oracle_new();
    fo_msg m;
    uint64_t rid;

    for (int i = 0; i < 8; i++)
        ht_flush_update(w, o, "m", i);
    m = (fo_msg){.type = FO_MSG_SUB, .model = "m", .has_from = true, .from = 6};
    rid = ht_send(a, &m);
    ht_expect_reply(a, FO_MSG_DIFF, rid, &m);
    cr_assert_eq(m.batch.from, 6);
    cr_assert_eq(m.batch.len, 2);
    m = (fo_msg){.type = FO_MSG_SUB, .model = "m", .has_from = true, .from = 8};
    rid = ht_send(b, &m);
    ht_expect_reply(b, FO_MSG_DIFF, rid, &m);
    cr_assert_eq(m.batch.from, 8);
    cr_assert_eq(m.batch.len, 0, "up to date: an empty diff");
    m = (fo_msg){.type = FO_MSG_SUB, .model = "m", .has_from = true, .from = 0};
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_SNAP, rid, &m); /* history keeps 5: a snap */
    cr_assert_eq(m.snapshot.command_count, 8);
    /* All three are subscribed now and get the next batch as a push. */
    ht_flush_update(w, o, "m", 100);
    ht_expect(a, FO_MSG_PUSH, &m);
    cr_assert_eq(m.batch.from, 8);
    ht_expect(b, FO_MSG_PUSH, &m);
    ht_expect(c, FO_MSG_PUSH, &m);
    ht_expect_silence(w, 200); /* the flusher gets its ack, never a push */
    ht_oracle_free(o);
}

Test(hub, unsub_stops_pushes)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *w = ht_connect(h, "w"), *s = ht_connect(h, "s");
    ht_oracle *o = ht_oracle_new();
    fo_msg m;

    ht_sub(s, "m");
    ht_flush_update(w, o, "m", 1);
    ht_expect(s, FO_MSG_PUSH, &m);
    ht_unsub(s, "m");
    ht_flush_update(w, o, "m", 2);
    ht_expect_silence(s, 400);
    ht_oracle_free(o);
}

static void expect_presence(ht_client *c, const char *model, const char *session, const char *json)
{
    fo_msg m;

    ht_expect(c, FO_MSG_PRESENCE_EVT, &m);
    cr_assert_str_eq(m.model, model, "[%s] presence for another model", c->id);
    cr_assert_str_eq(m.session, session, "[%s] presence of the wrong session", c->id);
    if (!json) {
        cr_assert_null(m.state, "[%s] want a nil state (cleared)", c->id);
    } else {
        fo_value want = ht_val(&A, json);
        cr_assert_not_null(m.state, "[%s] want state %s, got nil", c->id, json);
        ht_assert_value_eq(m.state, &want, "presence state");
    }
}

Test(hub, presence_reaches_the_others_and_is_cleared)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *a = ht_connect(h, "a"), *b = ht_connect(h, "b"), *c = ht_connect(h, "c"), *d;
    fo_value cursor = ht_val(&A, "{\"cursor\":[3,4],\"name\":\"Ann\"}");
    fo_value other = ht_val(&A, "{\"x\":1}");
    char sa[128];

    ht_sub(a, "room");
    ht_sub(b, "room");
    ht_sub(c, "room");
    ht_presence(a, "room", &cursor);
    expect_presence(b, "room", a->session, "{\"cursor\":[3,4],\"name\":\"Ann\"}");
    expect_presence(c, "room", a->session, "{\"cursor\":[3,4],\"name\":\"Ann\"}");
    ht_expect_silence(a, 200); /* not echoed to its sender */

    /* A newcomer gets the snap, then the others' current presence. */
    d = ht_connect(h, "d");
    ht_sub(d, "room");
    expect_presence(d, "room", a->session, "{\"cursor\":[3,4],\"name\":\"Ann\"}");
    ht_expect_silence(d, 200);

    ht_presence(b, "room", &other);
    expect_presence(a, "room", b->session, "{\"x\":1}");
    expect_presence(c, "room", b->session, "{\"x\":1}");
    expect_presence(d, "room", b->session, "{\"x\":1}");

    ht_presence(a, "room", NULL); /* nil clears */
    expect_presence(b, "room", a->session, NULL);
    expect_presence(c, "room", a->session, NULL);
    expect_presence(d, "room", a->session, NULL);

    ht_presence(a, "room", &cursor);
    expect_presence(b, "room", a->session, "{\"cursor\":[3,4],\"name\":\"Ann\"}");
    expect_presence(c, "room", a->session, "{\"cursor\":[3,4],\"name\":\"Ann\"}");
    expect_presence(d, "room", a->session, "{\"cursor\":[3,4],\"name\":\"Ann\"}");
    snprintf(sa, sizeof(sa), "%s", a->session);
    ht_drop(a); /* disconnect clears */
    expect_presence(b, "room", sa, NULL);
    expect_presence(c, "room", sa, NULL);
    expect_presence(d, "room", sa, NULL);

    ht_unsub(b, "room"); /* unsub clears */
    expect_presence(c, "room", b->session, NULL);
    expect_presence(d, "room", b->session, NULL);
    /* Presence is not a command. */
    cr_assert_eq(ht_get(c, "room").command_count, 0);
}

Test(hub, plain_http_endpoints)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *c = ht_connect(h, "c");
    ht_oracle *o = ht_oracle_new();
    fo_snapshot s, hs;
    fo_batch hb;
    int status;
    char *body;
    size_t len;

    for (int i = 0; i < 3; i++)
        ht_flush_update(c, o, "doc.1", i);
    cr_assert_eq(
        fo_http_get(NULL, fo_hubproc_port(h), "/healthz", NULL, 5000, &status, &body, &len), 0);
    cr_assert_eq(status, 200);
    cr_assert(strncmp(body, "ok", 2) == 0, "/healthz said %s", body);
    free(body);

    cr_assert_eq(
        fo_http_get(NULL, fo_hubproc_port(h), "/v1/models/doc.1", NULL, 5000, &status, &body, &len),
        0);
    cr_assert_eq(status, 200, "GET /v1/models/doc.1: %d %s", status, body);
    cr_assert_eq(fo_json_read_snapshot(body, len, &A, &hs, NULL), 0, "not a snapshot: %s", body);
    free(body);
    s = ht_get(c, "doc.1");
    cr_assert_eq(hs.command_count, s.command_count);
    ht_assert_value_eq(hs.document, s.document, "HTTP snapshot");

    cr_assert_eq(fo_http_get(NULL, fo_hubproc_port(h), "/v1/models/doc.1/history?from=1", NULL,
                             5000, &status, &body, &len),
                 0);
    cr_assert_eq(status, 200, "history: %d %s", status, body);
    cr_assert_eq(fo_json_read_batch(body, len, &A, &hb, NULL), 0, "not a batch: %s", body);
    free(body);
    {
        fo_batch ws = ht_history(c, "doc.1", 1, false, 0);
        ht_assert_batch_eq(&hb, &ws, "HTTP history");
    }
    ht_oracle_free(o);
}

Test(hub, unknown_subprotocol_is_refused)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    fo_ws_options o = {.port = fo_hubproc_port(h), .protocol = "bogus.v0"};
    fo_ws_result res;
    fo_ws *c = fo_ws_connect(&o, &res);

    if (c) {
        const char *p = fo_ws_protocol(c);
        fo_ws_free(c);
        cr_assert_fail("an upgrade asking for bogus.v0 was accepted (selected %s)",
                       p ? p : "no subprotocol");
    }
    cr_log_info("bogus.v0 refused: %s", res.message);
}
