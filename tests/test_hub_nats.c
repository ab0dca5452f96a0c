/* The hub over real WebSockets on `--cluster`: its models' logs in NATS JetStream, on a real
 * nats-server each test starts (127.0.0.1, a free port, a temporary storage folder) and
 * stops by its pid. Flush, ack and push; a restarted hub keeps documents, history and the
 * exactly-once outcome of a retried (client, seq); a second writer appending to a model the
 * hub holds: the hub follows it (hub/follow.h), and a flush racing it is refused (the
 * fence) with a clear error, never stored on a stale state; NATS down at start: a clear
 * message and exit 1; NATS killed while running: flushes fail with `overloaded`,
 * retryAfterMs and a clear message, nothing acknowledged is lost, writes resume. Skipped,
 * saying why, without a nats-server binary. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "hub/store.h"
#include "proto/json.h"
#include "proto/wire.h"
#include "tests/support/hubtest.h"
#include "tests/support/natsproc.h"
#include "tests/support/storetest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
}

TestSuite(hub_nats, .init = setup, .fini = ht_cleanup, .timeout = 180);

static fo_hubproc *hub_on(fo_natsproc *n)
{
    const char *args[] = {"--cluster", fo_natsproc_url(n), NULL};

    return ht_hub_start("memory", args); /* --cluster replaces --store */
}

/* Sends a flush and returns the reply's type: FO_MSG_ACK (result in *r) or FO_MSG_ERROR
 * (its text in why). */
/* The last error's code and retryAfterMs (0: none), as flush_once received them. */
static fo_error_code last_code;
static uint64_t last_retry_ms;

static fo_msg_type flush_once(ht_client *c, const char *model, uint64_t seq, const fo_batch *b,
                              fo_apply_result *r, char *why, size_t cap)
{
    fo_msg m = {.type = FO_MSG_FLUSH, .model = model, .model_len = strlen(model), .seq = seq,
                .batch = *b};
    uint64_t rid = ht_send(c, &m);

    ht_recv(c, &m);
    cr_assert_eq(m.rid, rid);
    if (m.type == FO_MSG_ACK)
        *r = m.result;
    else
        snprintf(why, cap, "%s", m.message ? m.message : "");
    last_code = m.code;
    last_retry_ms = m.has_retry_after ? m.retry_after_ms : 0;
    return m.type;
}

Test(hub_nats, flush_ack_push_and_restart)
{
    fo_natsproc *n = ht_nats_start();
    fo_hubproc *h = hub_on(n);
    ht_client *w = ht_connect(h, "writer"), *sub = ht_connect(h, "reader");
    ht_oracle *o = ht_oracle_new();
    fo_arena a;
    fo_batch b;
    fo_apply_result r, want;
    fo_snapshot s;
    fo_msg m;

    fo_arena_init(&a, 0);
    cr_assert(fo_hubproc_log_count(h, "store: nats") == 1, "the hub does not say it uses NATS");
    s = ht_sub(sub, "doc.x");
    cr_assert_eq(s.command_count, 0);
    for (int i = 0; i < 10; i++) {
        ht_flush_update(w, o, "doc.x", i);
        ht_expect(sub, FO_MSG_PUSH, &m);
        cr_assert_eq(m.batch.from, (uint64_t)i);
    }
    /* An ack that is "lost": the client will retry this (client, seq) later. */
    b = ht_update_batch(&a, 10, "once", 1);
    r = ht_flush_seq(w, "doc.x", 500, &b);
    want = ht_oracle_apply(o, &b);
    ht_assert_result_eq(&r, &want, "first ack");
    ht_close(w);
    ht_close(sub);

    ht_hub_stop_ok(h, 15000);
    ht_hub_restart(h);
    w = ht_connect(h, "writer");
    s = ht_get(w, "doc.x");
    ht_assert_oracle_snapshot(&s, o, "doc.x after a restart");
    r = ht_flush_seq(w, "doc.x", 500, &b);
    {
        fo_batch empty = {b.from, 0, NULL};
        want = ht_oracle_apply(o, &empty);
        ht_assert_result_eq(&r, &want, "the retried flush's original outcome");
    }
    s = ht_get(w, "doc.x");
    cr_assert_eq(s.command_count, 11, "the retried flush was applied again");
    s = ht_get_at(w, "doc.x", 4);
    {
        fo_value v = ht_val(&a, ht_oracle_doc_at(o, 4));
        ht_assert_value_eq(s.document, &v, "doc.x at 4");
    }
    b = ht_history(w, "doc.x", 3, true, 6);
    cr_assert_eq(b.from, 3);
    cr_assert_eq(b.len, 3);

    /* A crash loses nothing either. */
    w->seq = 500;
    ht_flush_update(w, o, "doc.x", 11);
    ht_drop(w);
    cr_assert_eq(fo_hubproc_kill(h), 0);
    ht_hub_restart(h);
    w = ht_connect(h, "writer");
    s = ht_get(w, "doc.x");
    ht_assert_oracle_snapshot(&s, o, "doc.x after SIGKILL");
    ht_oracle_free(o);
    fo_arena_destroy(&a);
}

/* Appends one update batch to `model` through a store of its own: a second writer. */
static void second_writer_append(fo_natsproc *n, const char *model, const char *key, int v,
                                 ht_oracle *o)
{
    uv_loop_t loop;
    fo_store *s;
    fo_err_info err;
    fo_arena a;
    fo_buf wire;
    fo_batch b;
    int rc;

    fo_arena_init(&a, 0);
    fo_buf_init(&wire, 0);
    b = ht_update_batch(&a, ht_oracle_snapshot(o).command_count, key, v);
    cr_assert_eq(fo_wire_encode_batch(&b, &wire), 0);
    ht_oracle_apply(o, &b);
    cr_assert_eq(uv_loop_init(&loop), 0);
    rc = fo_store_open(&loop, FO_STORE_NATS, fo_natsproc_url(n), NULL, &s, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    {
        fo_store_write w = {.model = model, .from = b.from, .len = 1,
                            .batch = fo_buf_data(&wire), .batch_size = wire.len,
                            .client = "second-writer", .seq = 1};
        cr_assert_eq(fo_store_commit(s, &w, 1, NULL, NULL), 0);
    }
    cr_assert_eq(fo_store_close(s, NULL, NULL), 0);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    fo_buf_destroy(&wire);
    fo_arena_destroy(&a);
}

/* The second writer's append reaches the hub's follower; the flush behind it either runs
 * after the followed batch (an ack whose sync brings the proxy over it) or races it and is
 * refused by the fence ("another writer appended", or the store's count check once the
 * follower saw the log's new end), and then its retry applies. Either way: nothing stored on
 * the stale state, and the final document is the oracle's. */
Test(hub_nats, a_second_writers_append_is_followed_or_fenced)
{
    fo_natsproc *n = ht_nats_start();
    fo_hubproc *h = hub_on(n);
    ht_client *c = ht_connect(h, "c");
    ht_oracle *o = ht_oracle_new();
    fo_arena a;
    fo_batch b;
    fo_apply_result r;
    fo_snapshot s;
    char why[512];

    fo_arena_init(&a, 0);
    for (int i = 0; i < 3; i++)
        ht_flush_update(c, o, "fenced", i);
    second_writer_append(n, "fenced", "behind", 7, o); /* now at 4; the hub thinks 3 */

    b = ht_update_batch(&a, 3, "mine", 1);
    ++c->seq;
    for (int i = 0;; i++) {
        fo_msg_type t = flush_once(c, "fenced", c->seq, &b, &r, why, sizeof(why));
        if (t == FO_MSG_ACK)
            break;
        cr_assert(strstr(why, "another writer appended to the log of fenced") ||
                      strstr(why, "the log of fenced ends at 4, a batch starts at 3"),
                  "error: %s", why);
        /* Another writer first is a passing state: retry soon, with the same seq. */
        cr_assert_eq(last_code, FO_ERR_OVERLOADED, "error code %d: %s", (int)last_code, why);
        cr_assert(last_retry_ms > 0 && last_retry_ms <= 1000, "retryAfterMs %llu",
                  (unsigned long long)last_retry_ms);
        cr_assert(i < 20, "the hub did not catch up: %s", why);
        uv_sleep(100);
    }
    cr_assert_eq(r.applied.from, 4, "the flush was not applied after the other writer's");
    {
        fo_apply_result want = ht_oracle_apply(o, &b);
        ht_assert_result_eq(&r, &want, "the retry after the fence");
    }
    s = ht_get(c, "fenced");
    ht_assert_oracle_snapshot(&s, o, "fenced after catching up");
    ht_oracle_free(o);
    fo_arena_destroy(&a);
}

/* Retention on JetStream: with a snapshot every 10 commands and 10 commands of history, the
 * model's subject is purged below its base snapshot (about 20 records, not one per batch);
 * a restarted hub loads that snapshot and the tail, and a client whose only batch was purged
 * still gets its original outcome for a retried (client, seq). */
Test(hub_nats, retention_purges_the_log_and_keeps_exactly_once)
{
    fo_natsproc *n = ht_nats_start();
    const char *args[] = {"--cluster", fo_natsproc_url(n), "--snapshot-every", "10",
                          "--history", "10", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *alice = ht_connect(h, "alice"), *bob = ht_connect(h, "bob");
    ht_oracle *o = ht_oracle_new();
    fo_arena a;
    fo_batch once;
    fo_apply_result r, want;
    fo_snapshot s;
    int64_t records;


    fo_arena_init(&a, 0);
    once = ht_update_batch(&a, 0, "alice", 1);
    r = ht_flush_seq(alice, "doc.r", 700, &once);
    want = ht_oracle_apply(o, &once);
    ht_assert_result_eq(&r, &want, "alice's flush");
    for (int i = 0; i < 60; i++)
        ht_flush_update(bob, o, "doc.r", i);
    records = fo_st_nats_records(fo_natsproc_url(n), "doc.r");
    cr_assert(records > 0 && records <= 21, "%lld records of 61 batches are kept",
              (long long)records);
    ht_close(alice);
    ht_close(bob);

    ht_hub_stop_ok(h, 15000);
    ht_hub_restart(h);
    alice = ht_connect(h, "alice");
    s = ht_get(alice, "doc.r");
    ht_assert_oracle_snapshot(&s, o, "doc.r after a restart");
    r = ht_flush_seq(alice, "doc.r", 700, &once);
    /* Nothing applied; history back to 0 is gone (--history 10): the sync is the document. */
    cr_assert_eq(r.applied.len, 0, "the retried flush was applied again");
    cr_assert_eq(r.applied.from, 61);
    cr_assert_eq(r.sync.kind, FO_SYNC_FULL);
    ht_assert_oracle_snapshot(&r.sync.latest, o, "the retried flush's sync");
    s = ht_get(alice, "doc.r");
    cr_assert_eq(s.command_count, 61, "alice's purged batch was applied again");
    s = ht_get_at(alice, "doc.r", 55);
    {
        fo_value v = ht_val(&a, ht_oracle_doc_at(o, 55));
        ht_assert_value_eq(s.document, &v, "doc.r at 55");
    }
    ht_close(alice);
    ht_oracle_free(o);
    fo_arena_destroy(&a);
}

Test(hub_nats, nats_down_at_start)
{
    fo_natsproc *n = ht_nats_start();
    const char *args[] = {"--cluster", NULL, NULL};
    char url[64];
    fo_hubproc_options opt = {.store = "memory", .args = args};
    fo_hubproc *h;
    int st = -1;

    snprintf(url, sizeof(url), "%s", fo_natsproc_url(n));
    args[1] = url;
    cr_assert_eq(fo_natsproc_stop(n, false), 0);
    h = fo_hubproc_new(&opt);
    cr_assert_not_null(h);
    (void)st;
    cr_assert_neq(fo_hubproc_start(h), 0, "the hub started without NATS");
    cr_assert(strstr(fo_hubproc_error(h), "ended before it was listening (exit 1)"), "%s",
              fo_hubproc_error(h));
    cr_assert_eq(fo_hubproc_log_count(h, "cannot connect to NATS at nats://127.0.0.1:"), 1);
    fo_hubproc_free(h);
}

Test(hub_nats, nats_killed_while_running)
{
    fo_natsproc *n = ht_nats_start();
    fo_hubproc *h = hub_on(n);
    ht_client *c = ht_connect(h, "c");
    ht_oracle *o = ht_oracle_new();
    fo_arena a;
    fo_batch b;
    fo_apply_result r;
    fo_snapshot s;
    char why[512];
    uint64_t seq;
    int tries = 0;

    fo_arena_init(&a, 0);
    for (int i = 0; i < 5; i++)
        ht_flush_update(c, o, "k", i);
    cr_assert_eq(fo_natsproc_stop(n, true), 0);
    b = ht_update_batch(&a, 5, "during", 1);
    seq = ++c->seq;
    cr_assert_eq(flush_once(c, "k", seq, &b, &r, why, sizeof(why)), FO_MSG_ERROR,
                 "a flush was acknowledged with NATS down");
    cr_assert(strstr(why, "JetStream did not acknowledge"), "error: %s", why);
    cr_assert_eq(last_code, FO_ERR_OVERLOADED, "NATS down is a passing state: %s",
                 fo_error_code_name(last_code));
    cr_assert_eq(last_retry_ms, 1000);

    /* NATS is back: the same (client, seq) is retried until the hub takes writes again;
     * applied once whatever happened to the first attempt. */
    cr_assert_eq(fo_natsproc_restart(n), 0);
    for (;; tries++) {
        fo_msg_type t = flush_once(c, "k", seq, &b, &r, why, sizeof(why));
        if (t == FO_MSG_ACK)
            break;
        cr_assert(tries < 60, "writes did not resume: %s", why);
        uv_sleep(250);
    }
    {
        /* The first attempt may have been stored after all (nats.c sends what it buffered
         * once it reconnects; the fence keeps that safe): then the retry is answered as a
         * duplicate, applying nothing. Either way the batch is applied once. */
        fo_apply_result want = ht_oracle_apply(o, &b);
        if (r.applied.len != 0)
            ht_assert_result_eq(&r, &want, "the retry once NATS is back");
    }
    ht_flush_update(c, o, "k", 6);
    s = ht_get(c, "k");
    ht_assert_oracle_snapshot(&s, o, "k after NATS came back");
    ht_oracle_free(o);
    fo_arena_destroy(&a);
}
