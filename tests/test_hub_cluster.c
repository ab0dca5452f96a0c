/* Several hubs on one JetStream log (--cluster, hub/follow.h), each a real process, over real
 * WebSockets, on a real nats-server each test starts and stops by its pid. Clients spread
 * over three hubs edit the same model and converge, every ack checked against a local master
 * (the oracle) replaying the flushes in the order the log holds them; pushes cross hubs;
 * a retried (client, seq) gets its first outcome on another hub, hot or cold there; a hub
 * restarted while the others wrote answers from the log's end; a hub killed with SIGKILL
 * under write load loses nothing it acknowledged, and its clients carry on through another;
 * so does a NATS node of three; a hub paused with SIGSTOP never appends on its stale state.
 * Skipped, saying why, without a nats-server binary. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/json.h"
#include "proto/wire.h"
#include "tests/support/hubtest.h"
#include "tests/support/natsproc.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
}

TestSuite(hub_cluster, .init = setup, .fini = ht_cleanup, .timeout = 240);

enum { HUBS = 3 };

static void free_nats_node(void *n)
{
    fo_natsproc_free(n);
}

/* HUBS hubs on the nats-server n, keeping all history (the oracle does); `optimistic`:
 * no forwarding to owners; `short_log`: a snapshot every 8 commands and 8 of history
 * instead, so that each model's log is purged below its base snapshot as it grows. */
static void start_hubs_opt(fo_natsproc *n, fo_hubproc **h, bool optimistic, bool short_log)
{
    const char *args[] = {"--cluster", fo_natsproc_url(n), "--history", short_log ? "8" : "100000000",
                          "--snapshot-every", short_log ? "8" : "1000",
                          optimistic ? "--optimistic" : NULL, NULL};

    for (int i = 0; i < HUBS; i++)
        h[i] = ht_hub_start("memory", args); /* --cluster replaces --store */
    /* Every hub hears the others' announcements (every 500 ms) before the test writes. */
    for (int i = 0; i < HUBS && !optimistic; i++)
        ht_wait_metric(h[i], "flushout_cluster_hubs", HUBS, 2000);
}

static void start_hubs(fo_natsproc *n, fo_hubproc **h)
{
    start_hubs_opt(n, h, false, false);
}

/* Waits until `c`'s hub answers `get` with `count` commands (it follows the log); returns
 * that snapshot. An error answer (a cold load that timed out, 5 s, while a NATS cluster that
 * lost a node moves its stream's leadership) is asked again, within 45 s in all. */
static fo_snapshot get_when(ht_client *c, const char *model, uint64_t count)
{
    int64_t deadline = ht_now_ms() + 45000;
    fo_snapshot s = {0, NULL};

    for (;;) {
        fo_msg m = {.type = FO_MSG_GET, .model = model, .model_len = (uint32_t)strlen(model)};
        uint64_t rid;
        ht_client_reset_arena(c);
        rid = ht_send(c, &m);
        ht_recv(c, &m);
        cr_assert_eq(m.rid, rid);
        cr_assert(m.type == FO_MSG_SNAP || (m.type == FO_MSG_ERROR && ht_now_ms() < deadline),
                  "[%s] get %s: %s", c->id, model, m.message ? m.message : "not a snap");
        if (m.type == FO_MSG_SNAP)
            s = m.snapshot;
        if ((m.type == FO_MSG_SNAP && s.command_count == count) || ht_now_ms() > deadline)
            break;
        usleep(m.type == FO_MSG_SNAP ? 20000 : 200000);
    }
    cr_assert_eq(s.command_count, count, "[%s] the hub stands at %llu, the log at %llu", c->id,
                 (unsigned long long)s.command_count, (unsigned long long)count);
    return s;
}

/* Two peers per hub on one model: random edits and flushes, overlapping. Every peer ends
 * level with every hub, every ack is the oracle's, and pushes crossed hubs (each peer saw
 * batches it did not flush). Flushes go to the model's owner (forwarded from the two other
 * hubs: no conflict), or with --optimistic every hub appends and conflicts are retried with
 * the same seq. */
static void converge(bool optimistic)
{
    fo_natsproc *n = ht_nats_start();
    fo_hubproc *h[HUBS];
    ht_flush_log *log = ht_flush_log_new();
    ht_peer *ps[2 * HUBS];
    ht_rng r = ht_rng_seeded(7);
    ht_client *obs[HUBS];
    fo_snapshot s;
    uint64_t retries = 0, pushes = 0;
    size_t replayed;
    const int np = 2 * HUBS;

    start_hubs_opt(n, h, optimistic, false);
    for (int i = 0; i < np; i++) {
        char id[32];
        snprintf(id, sizeof(id), "peer-%d", i);
        ps[i] = ht_peer_new(h[i % HUBS], id, "shared.doc");
        ps[i]->log = log;
        ps[i]->retry_refused = true;
    }
    for (int k = 0; k < 120; k++) {
        for (int i = 0; i < np; i++) {
            if (ht_rand_below(&r, 4))
                ht_peer_random_edits(ps[i], &r, 1 + (int)ht_rand_below(&r, 4));
            if (ht_rand_below(&r, 3))
                ht_peer_flush(ps[i]);
        }
        while (ht_peer_pump(ps, np, ht_rand_below(&r, 3) ? 0 : 3))
            ;
    }
    ht_peers_settle(ps, np, UINT64_MAX, 60000);
    obs[0] = ht_connect(h[0], "observer-0");
    s = ht_get(obs[0], "shared.doc");
    ht_peers_settle(ps, np, s.command_count, 60000);
    for (int i = 1; i < HUBS; i++) {
        char id[32];
        snprintf(id, sizeof(id), "observer-%d", i);
        obs[i] = ht_connect(h[i], id);
        fo_snapshot o = get_when(obs[i], "shared.doc", s.command_count);
        ht_assert_value_eq(o.document, s.document, "another hub's document vs the first's");
    }
    for (int i = 0; i < np; i++) {
        char what[128];
        snprintf(what, sizeof(what), "%s's document", ps[i]->c->id);
        ht_assert_value_eq(fo_proxy_document(ps[i]->p), s.document, what);
        cr_assert_gt(ps[i]->pushes + ps[i]->dropped, 0, "%s saw no push from the others",
                     ps[i]->c->id);
        retries += ps[i]->retries;
        pushes += ps[i]->pushes;
    }
    replayed = ht_flush_log_check(log, &s);
    cr_log_info("%d peers on %d hubs: %llu commands, %zu flushes replayed, %llu retried after a "
                "conflict, %llu pushes",
                np, HUBS, (unsigned long long)s.command_count, replayed,
                (unsigned long long)retries, (unsigned long long)pushes);
    {
        uint64_t fwd = 0, follow = 0;
        for (int i = 0; i < HUBS; i++) {
            fwd += ht_metric(h[i], "flushout_forwarded_total");
            follow += ht_metric(h[i], "flushout_follow_commands_total");
        }
        cr_assert_gt(follow, 0, "no hub applied another hub's batches");
        if (optimistic)
            cr_assert_eq(fwd, 0);
        else
            cr_assert_gt(fwd, 0, "nothing was forwarded to the owner");
        cr_log_info("forwarded %llu flushes", (unsigned long long)fwd);
    }
    ht_flush_log_free(log);
    (void)n;
}

Test(hub_cluster, clients_on_three_hubs_converge)
{
    converge(false);
}

Test(hub_cluster, clients_on_three_hubs_converge_optimistic)
{
    converge(true);
}

/* A flush acknowledged by hub 0, retried with the same (client, seq) on hub 1 (holding the
 * model, so following it) and on hub 2 (cold): each answers with the batch as applied once
 * (an empty batch whose sync carries it), and the count does not move. */
Test(hub_cluster, a_retry_gets_its_first_outcome_on_any_hub)
{
    fo_natsproc *n = ht_nats_start();
    fo_hubproc *h[HUBS];
    fo_arena a;
    ht_client *w, *hot, *again;
    fo_apply_result first, r;

    start_hubs(n, h);
    fo_arena_init(&a, 0);
    hot = ht_connect(h[1], "reader");
    cr_assert_eq(ht_get(hot, "once").command_count, 0); /* hub 1 holds the model */
    w = ht_connect(h[0], "writer");
    first = ht_flush_seq(w, "once", 1, (fo_batch[]){ht_update_batch(&a, 0, "k", 1)});
    cr_assert_eq(first.applied.from, 0);
    cr_assert_eq(first.applied.len, 1);
    ht_close(w);
    get_when(hot, "once", 1);
    for (int i = 1; i < HUBS; i++) {
        char what[64];
        again = ht_connect(h[i], "writer");
        r = ht_flush_seq(again, "once", 1, (fo_batch[]){ht_update_batch(&a, 0, "k", 1)});
        snprintf(what, sizeof(what), "the retry on hub %d", i);
        cr_assert_eq(r.applied.len, 0, "%s applied again", what);
        cr_assert_eq(get_when(again, "once", 1).command_count, 1);
        ht_close(again);
    }
    fo_arena_destroy(&a);
}

/* Hub 2 stops; the others write (hub 1 once it has followed hub 0's flushes: a client
 * ahead of its hub makes it read the log again, also checked here by a client of hub 0
 * flushing through hub 1 at once); restarted, hub 2's first answer is the log's end. */
Test(hub_cluster, a_restarted_hub_answers_from_the_logs_end)
{
    fo_natsproc *n = ht_nats_start();
    fo_hubproc *h[HUBS];
    ht_oracle *o = ht_oracle_new();
    ht_client *w[2], *c;
    fo_snapshot s;

    start_hubs(n, h);
    c = ht_connect(h[2], "late");
    cr_assert_eq(ht_get(c, "later").command_count, 0);
    ht_close(c);
    ht_hub_stop_ok(h[2], 15000);
    w[0] = ht_connect(h[0], "w0");
    w[1] = ht_connect(h[1], "w1");
    for (int i = 0; i < 20; i++)
        ht_flush_update(w[i < 10 ? 0 : 1], o, "later", i);
    ht_hub_restart(h[2]);
    c = ht_connect(h[2], "late");
    s = ht_get(c, "later");
    ht_assert_oracle_snapshot(&s, o, "the restarted hub's first answer");
    ht_oracle_free(o);
}

/* ---- faults under write load ------------------------------------------------------------ */

/* A writer of distinct keys through one hub: every flush sent until acknowledged (the same
 * seq each time: an error or a lost hub is retried, through `next` hubs in turn when its own
 * is gone), and every acknowledged key remembered. */
typedef struct writer {
    ht_client *c;
    char id[32];
    int hub;          /* index into the hubs it may use */
    int acked[400];   /* keys acknowledged, in order */
    int nacked;
    uint64_t errors, moves;
} writer;

/* The next message, or false when the connection closed or nothing came in 10 s. */
static bool recv_or_closed(ht_client *c, fo_msg *m)
{
    return fo_ws_recv_msg(c->ws, 10000, &c->arena, m) == 0;
}

/* Flushes {key: key} with seq = key + 1 until acknowledged (at most 60 s). */
static void write_key(writer *w, fo_hubproc **h, int nh, const char *model, int key)
{
    int64_t deadline = ht_now_ms() + 60000;
    char name[16];
    fo_arena a;

    fo_arena_init(&a, 0);
    snprintf(name, sizeof(name), "k%d", key);
    for (;;) {
        fo_msg m = {.type = FO_MSG_FLUSH, .model = model, .model_len = strlen(model),
                    .seq = (uint64_t)key + 1, .batch = ht_update_batch(&a, 0, name, key)};
        uint64_t rid;
        bool got;
        cr_assert(ht_now_ms() < deadline, "[%s] key %d: no ack within 60 s", w->id, key);
        if (!fo_hubproc_running(h[w->hub])) { /* its hub is gone: the next one */
            ht_drop(w->c);
            w->hub = (w->hub + 1) % nh;
            w->c = ht_connect(h[w->hub], w->id);
            w->moves++;
        }
        rid = ht_send(w->c, &m);
        /* Replies to earlier sends of this key may come first: the flush in flight when its
         * owner died is run by the hub it went through once the owner stops answering. */
        while ((got = recv_or_closed(w->c, &m)) && m.rid != rid)
            cr_assert(m.rid < rid && (m.type == FO_MSG_ACK || m.type == FO_MSG_ERROR),
                      "[%s] key %d: a stray message (type %d, rid %llu; sent %llu)", w->id, key,
                      (int)m.type, (unsigned long long)m.rid, (unsigned long long)rid);
        if (got) {
            if (m.type == FO_MSG_ACK) {
                w->acked[w->nacked++] = key;
                break;
            }
            cr_assert_eq(m.type, FO_MSG_ERROR, "[%s] key %d: neither ack nor error", w->id, key);
            w->errors++;
        }
        usleep(50000);
    }
    fo_arena_destroy(&a);
}

/* Every acknowledged key is in the document each hub answers with, once the hubs stand at
 * the log's end (the count: one command per key acknowledged, nothing applied twice). */
static void check_keys(fo_hubproc **h, int nh, const char *model, writer *ws, int nw)
{
    int total = 0;

    for (int i = 0; i < nw; i++)
        total += ws[i].nacked;
    for (int i = 0; i < nh; i++) {
        ht_client *c;
        fo_snapshot s;
        char id[32];
        if (!fo_hubproc_running(h[i]))
            continue;
        snprintf(id, sizeof(id), "checker-%d", i);
        c = ht_connect(h[i], id);
        s = get_when(c, model, (uint64_t)total);
        for (int k = 0; k < nw; k++)
            for (int j = 0; j < ws[k].nacked; j++) {
                char key[16];
                const fo_value *v;
                fo_arena ka;
                fo_arena_init(&ka, 64);
                snprintf(key, sizeof(key), "k%d", ws[k].acked[j]);
                v = fo_map_get(fo_value_as_map(s.document), fo_key_new_cstr(&ka, key));
                cr_assert(v && fo_value_type(v) == FO_INT && v->h.as.i == ws[k].acked[j],
                          "hub %d lost the acknowledged key %s", i, key);
                fo_arena_destroy(&ka);
            }
        ht_close(c);
    }
}

/* Three NATS nodes (replicas 3), two hubs, two writers: one node is killed with SIGKILL a
 * third of the way; writes go on (an append in flight may fail and is retried with its seq),
 * and every acknowledged command is in the log, once. */
Test(hub_cluster, a_nats_node_killed_under_load_loses_nothing)
{
    enum { KEYS = 90 };
    fo_natsproc *nodes[3];
    char urls[256];
    const char *args[] = {"--cluster", urls, NULL};
    fo_hubproc *h[2];
    writer ws[2];

    if (!fo_natsproc_bin())
        cr_skip_test("no nats-server binary: the NATS cluster is not tested");
    cr_assert_eq(fo_natsproc_start_cluster(nodes, 3, urls, sizeof(urls)), 0);
    for (int i = 0; i < 3; i++)
        ht_defer(free_nats_node, nodes[i]);
    for (int i = 0; i < 2; i++) {
        h[i] = ht_hub_start("memory", args);
        memset(&ws[i], 0, sizeof(ws[i]));
        snprintf(ws[i].id, sizeof(ws[i].id), "writer-%d", i);
        ws[i].hub = i;
        ws[i].c = ht_connect(h[i], ws[i].id);
    }
    for (int k = 0; k < KEYS; k++) {
        if (k == KEYS / 3)
            cr_assert_eq(fo_natsproc_stop(nodes[0], true), 0);
        write_key(&ws[k % 2], h, 2, "busy", k);
    }
    cr_log_info("after killing a NATS node: %llu + %llu flushes retried",
                (unsigned long long)ws[0].errors, (unsigned long long)ws[1].errors);
    check_keys(h, 2, "busy", ws, 2);
}

/* Three hubs on one NATS, writers on hubs 0 and 1; halfway, the hub that owns the model is
 * killed with SIGKILL (found by who forwarded: its own writer's flushes were not), with a
 * flush in flight through it or to it. Writers of the dead hub move to the next one and
 * retry with the same seq; the others' flushes, forwarded to a hub with no subscriber left,
 * run where they are, and ownership moves once the dead hub stops announcing itself. Every
 * acknowledged command is in the log, once, and the surviving hubs agree. */
Test(hub_cluster, the_owner_killed_under_load_loses_nothing)
{
    enum { KEYS = 80 };
    fo_natsproc *n = ht_nats_start();
    fo_hubproc *h[HUBS];
    writer ws[2];
    int owner;

    /* Its log is purged as it grows: the new owner loads the base snapshot and the tail,
     * and the retry of the flush in flight still gets its one outcome. */
    start_hubs_opt(n, h, false, true);
    for (int i = 0; i < 2; i++) {
        memset(&ws[i], 0, sizeof(ws[i]));
        snprintf(ws[i].id, sizeof(ws[i].id), "writer-%d", i);
        ws[i].hub = i;
        ws[i].c = ht_connect(h[i], ws[i].id);
    }
    for (int k = 0; k < KEYS / 2; k++)
        write_key(&ws[k % 2], h, HUBS, "busy", k);
    owner = ht_metric(h[0], "flushout_forwarded_total") == 0   ? 0
            : ht_metric(h[1], "flushout_forwarded_total") == 0 ? 1
                                                               : 2;
    {
        /* The flush in flight at the kill: sent, never answered by the dead hub. */
        writer *w = &ws[owner < 2 ? owner : 0];
        int k = KEYS / 2;
        fo_arena a;
        fo_msg m = {.type = FO_MSG_FLUSH, .model = "busy", .model_len = 4,
                    .seq = (uint64_t)k + 1};
        char name[16];
        fo_arena_init(&a, 0);
        snprintf(name, sizeof(name), "k%d", k);
        m.batch = ht_update_batch(&a, 0, name, k);
        ht_send(w->c, &m);
        cr_assert_eq(fo_hubproc_kill(h[owner]), 0);
        fo_arena_destroy(&a);
        write_key(w, h, HUBS, "busy", k); /* the retry: the same seq */
    }
    for (int k = KEYS / 2 + 1; k < KEYS; k++)
        write_key(&ws[k % 2], h, HUBS, "busy", k);
    cr_log_info("owner: hub %d; moves %llu/%llu, retries %llu/%llu", owner,
                (unsigned long long)ws[0].moves, (unsigned long long)ws[1].moves,
                (unsigned long long)ws[0].errors, (unsigned long long)ws[1].errors);
    if (owner < 2)
        cr_assert_eq(ws[owner].moves, 1, "the dead hub's writer did not move");
    check_keys(h, HUBS, "busy", ws, 2);
}

/* ht_flush_update that sends the flush again (same seq) while it gets an error: an owner
 * that is paused or gone, a conflict while hubs disagree on the owner. The ack must be the
 * oracle's. */
static void flush_until_acked(ht_client *c, ht_oracle *o, const char *model, int i)
{
    int64_t deadline = ht_now_ms() + 30000;
    uint64_t seq = ++c->seq;
    char key[16];
    fo_arena a;
    fo_batch b;
    fo_msg m;

    fo_arena_init(&a, 0);
    snprintf(key, sizeof(key), "k%d", i);
    b = ht_update_batch(&a, ht_oracle_snapshot(o).command_count, key, i);
    for (;;) {
        uint64_t rid;
        m = (fo_msg){.type = FO_MSG_FLUSH, .model = model, .model_len = strlen(model),
                     .seq = seq, .batch = b};
        rid = ht_send(c, &m);
        ht_recv(c, &m);
        cr_assert_eq(m.rid, rid);
        if (m.type == FO_MSG_ACK)
            break;
        cr_assert(m.type == FO_MSG_ERROR && ht_now_ms() < deadline, "[%s] %s: no ack in 30 s: %s",
                  c->id, model, m.message ? m.message : "?");
        /* A refused append, an owner paused or gone: passing states, never `internal`. */
        cr_assert(m.code == FO_ERR_OVERLOADED && m.has_retry_after, "[%s] %s: code %d: %s",
                  c->id, model, (int)m.code, m.message ? m.message : "?");
        usleep(200000);
    }
    {
        fo_apply_result want = ht_oracle_apply(o, &b);
        char what[128];
        snprintf(what, sizeof(what), "[%s] flush %d", c->id, i);
        ht_assert_result_eq(&m.result, &want, what);
    }
    fo_arena_destroy(&a);
}

/* A hub paused with SIGSTOP past the 2 s after which the others count it dead (it may own
 * the model: the others take over) while another hub's client writes the model; resumed, it
 * has not followed those batches yet, so whatever it appends is refused (the fence: it can
 * never append after a state the log does not have), its client's flush is answered with an
 * error saying to retry, and the retry applies on top of the other hub's batches, as the
 * oracle says. With forwarding, the resumed hub usually hears the others before it runs
 * the flush and forwards it (no refusal); with --optimistic it appends itself. */
static void paused(bool optimistic)
{
    fo_natsproc *n = ht_nats_start();
    fo_hubproc *h[HUBS];
    ht_oracle *o = ht_oracle_new();
    ht_client *stale, *other;
    fo_snapshot s;
    int errors = 0;

    start_hubs_opt(n, h, optimistic, false);
    stale = ht_connect(h[0], "paused-writer");
    other = ht_connect(h[1], "other-writer");
    for (int i = 0; i < 3; i++)
        flush_until_acked(stale, o, "contended", i);
    get_when(other, "contended", 3);
    cr_assert_eq(fo_hubproc_signal(h[0], SIGSTOP), 0);
    usleep(2500000);
    for (int i = 3; i < 8; i++)
        flush_until_acked(other, o, "contended", i);
    {
        /* The flush reaches the paused hub's socket; it runs once the hub resumes, on a
         * state without the other hub's batches (its follower's records wait behind it on
         * the loop, or not): never stored there. */
        fo_arena a;
        fo_msg m;
        fo_batch b;
        uint64_t rid, seq = ++stale->seq;
        fo_arena_init(&a, 0);
        b = ht_update_batch(&a, 3, "late", 1);
        m = (fo_msg){.type = FO_MSG_FLUSH, .model = "contended", .model_len = 9, .seq = seq,
                     .batch = b};
        rid = ht_send(stale, &m);
        usleep(200000);
        cr_assert_eq(fo_hubproc_signal(h[0], SIGCONT), 0);
        for (;;) {
            ht_recv(stale, &m);
            cr_assert_eq(m.rid, rid);
            if (m.type == FO_MSG_ACK)
                break;
            cr_assert_eq(m.type, FO_MSG_ERROR);
            cr_assert(++errors < 50, "the paused hub never caught up: %s", m.message);
            usleep(200000);
            m = (fo_msg){.type = FO_MSG_FLUSH, .model = "contended", .model_len = 9,
                         .seq = seq, .batch = b};
            rid = ht_send(stale, &m);
        }
        cr_assert_eq(m.result.applied.from, 8, "applied at %llu: not after the other hub's batches",
                     (unsigned long long)m.result.applied.from);
        {
            fo_apply_result want = ht_oracle_apply(o, &b);
            ht_assert_result_eq(&m.result, &want, "the paused hub's flush");
        }
        fo_arena_destroy(&a);
    }
    s = get_when(other, "contended", 9);
    ht_assert_oracle_snapshot(&s, o, "after the paused hub's flush");
    cr_log_info("the paused hub's flush: %d refusals before its ack", errors);
    ht_oracle_free(o);
}

Test(hub_cluster, a_paused_hub_cannot_append_on_a_stale_state)
{
    paused(false);
}

/* The same with --optimistic: the resumed hub appends itself, on its stale state, every
 * time (the fence's refusal is what this one exercises). */
Test(hub_cluster, a_paused_hub_cannot_append_on_a_stale_state_optimistic)
{
    paused(true);
}

/* Presence crosses hubs: a session on hub 0 sets its presence, a subscriber on hub 1 gets the
 * event, a new subscriber on hub 1 gets it after its snap, and when the session on hub 0
 * goes, both get its presence cleared; so they do when a hub is killed. Session names do
 * not collide between hubs. */
Test(hub_cluster, presence_crosses_hubs)
{
    fo_natsproc *n = ht_nats_start();
    fo_hubproc *h[HUBS];
    ht_client *a, *b, *c;
    fo_arena ar;
    fo_value state;
    fo_msg m;

    start_hubs(n, h);
    fo_arena_init(&ar, 0);
    a = ht_connect(h[0], "alice");
    b = ht_connect(h[1], "bob");
    cr_assert_str_neq(a->session, b->session, "two hubs named their sessions alike");
    ht_sub(a, "room");
    ht_sub(b, "room");
    state = ht_val(&ar, "{\"cursor\":7}");
    ht_presence(a, "room", &state);
    ht_expect(b, FO_MSG_PRESENCE_EVT, &m);
    cr_assert_str_eq(m.session, a->session);
    cr_assert_not_null(m.state);
    ht_assert_value_eq(m.state, &state, "alice's presence as bob sees it");
    c = ht_connect(h[1], "carol");
    ht_sub(c, "room");
    ht_expect(c, FO_MSG_PRESENCE_EVT, &m);
    cr_assert_str_eq(m.session, a->session);
    ht_assert_value_eq(m.state, &state, "alice's presence as carol, new, sees it");
    {
        char alice[128];
        snprintf(alice, sizeof(alice), "%s", a->session);
        ht_close(a);
        ht_expect(b, FO_MSG_PRESENCE_EVT, &m);
        cr_assert_str_eq(m.session, alice);
    }
    cr_assert_null(m.state, "alice left: her presence is cleared");
    ht_expect(c, FO_MSG_PRESENCE_EVT, &m);
    cr_assert_null(m.state);
    /* A hub that dies takes its sessions' presence with it (within the 2 s after which it
     * counts dead, and a tick). */
    {
        ht_client *d = ht_connect(h[2], "dave");
        char dave[128];
        snprintf(dave, sizeof(dave), "%s", d->session);
        ht_sub(d, "room");
        ht_presence(d, "room", &state);
        ht_expect(b, FO_MSG_PRESENCE_EVT, &m);
        cr_assert_str_eq(m.session, dave);
        cr_assert_eq(fo_hubproc_kill(h[2]), 0);
        ht_drop(d);
        ht_expect(b, FO_MSG_PRESENCE_EVT, &m);
        cr_assert_str_eq(m.session, dave);
        cr_assert_null(m.state, "a dead hub's session kept its presence");
    }
    fo_arena_destroy(&ar);
}
