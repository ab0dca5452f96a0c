/* The hub over real WebSockets, part 4: durability with the sqlite store. A clean restart keeps
 * documents, counts and history; exactly-once survives restarts; SIGKILL during a write load
 * loses nothing that was acked; SIGTERM with flushes in flight exits 0, closes every
 * connection with 1001 and keeps every ack. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "proto/json.h"
#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
}

TestSuite(hub_durability, .init = setup, .fini = ht_cleanup, .timeout = 120);

static char *history_json(ht_client *c, const char *model, uint64_t from)
{
    fo_batch b = ht_history(c, model, from, false, 0);

    return ht_json_batch(&b);
}

Test(hub_durability, restart_keeps_documents_counts_and_history)
{
    fo_hubproc *h = ht_hub_start("sqlite", NULL);
    ht_client *c = ht_connect(h, "c");
    ht_oracle *o1 = ht_oracle_new(), *o2 = ht_oracle_new();
    char *h1, *h2;
    fo_snapshot s;
    fo_msg m;
    uint64_t rid;

    for (int i = 0; i < 12; i++)
        ht_flush_update(c, o1, "p1", i);
    ht_flush_checked(
        c, o1, "p1",
        "{\"from\":12,\"completions\":[{\"command\":{\"action\":\"create\","
        "\"path\":[\"todos\"],\"props\":{\"t\":\"x\"},\"parentDefault\":{}},"
        "\"createdId\":\"13\"},{\"command\":{\"action\":\"create\",\"path\":[\"todos\"]}"
        ",\"createdId\":\"13\"}]}");
    for (int i = 0; i < 5; i++)
        ht_flush_update(c, o2, "p2", i);
    h1 = history_json(c, "p1", 0);
    h2 = history_json(c, "p2", 0);
    ht_close(c);
    ht_hub_stop_ok(h, 15000);

    ht_hub_restart(h);
    c = ht_connect(h, "c");
    c->seq = 13; /* a client's seq goes on increasing across connections */
    s = ht_get(c, "p1");
    ht_assert_oracle_snapshot(&s, o1, "p1 after a restart");
    s = ht_get(c, "p2");
    ht_assert_oracle_snapshot(&s, o2, "p2 after a restart");
    {
        char *g1 = history_json(c, "p1", 0), *g2 = history_json(c, "p2", 0);
        cr_assert_str_eq(g1, h1, "p1's history changed across the restart");
        cr_assert_str_eq(g2, h2, "p2's history changed across the restart");
        free(g1);
        free(g2);
    }
    s = ht_get_at(c, "p1", 5);
    {
        fo_arena a;
        fo_arena_init(&a, 0);
        fo_value want = ht_val(&a, ht_oracle_doc_at(o1, 5));
        cr_assert_eq(s.command_count, 5);
        ht_assert_value_eq(s.document, &want, "p1 at 5 after a restart");
        fo_arena_destroy(&a);
    }
    /* Writing goes on where it stopped: counts, generated IDs, stale syncs. */
    ht_flush_checked(c, o1, "p1",
                     "{\"from\":14,\"completions\":[{\"command\":{\"action\":\"create\","
                     "\"path\":[\"todos\"]}}]}");
    ht_flush_checked(c, o1, "p1",
                     "{\"from\":10,\"completions\":[{\"command\":{\"action\":\"create\","
                     "\"path\":[\"todos\"]},\"createdId\":\"13\"}]}");
    m = (fo_msg){.type = FO_MSG_SUB, .model = "p2", .has_from = true, .from = 5};
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_DIFF, rid, &m);
    cr_assert_eq(m.batch.len, 0, "p2 is at 5: an empty diff");
    free(h1);
    free(h2);
    ht_oracle_free(o1);
    ht_oracle_free(o2);
}

Test(hub_durability, retried_flush_is_applied_once_across_restarts)
{
    fo_hubproc *h = ht_hub_start("sqlite", NULL);
    ht_client *c = ht_connect(h, "eo-client"), *other;
    fo_proxy *p = ht_proxy_new(NULL);
    ht_oracle *o = ht_oracle_new();
    fo_arena a;
    fo_batch b, empty;
    fo_apply_result r, want;
    fo_doc_result dr;
    fo_command cmd;
    fo_snapshot s;
    bool changed;

    fo_arena_init(&a, 0);
    {
        static const char text[] = "{\"action\":\"create\",\"props\":{\"t\":\"once\"}}";
        cr_assert_eq(fo_json_read_command(text, sizeof(text) - 1, &a, &cmd, NULL), 0);
    }
    cr_assert_eq(fo_proxy_apply(p, &cmd, &dr), 0);
    cr_assert_eq(fo_proxy_begin_flush(p, &b), 0);
    r = ht_flush_seq(c, "eo", 7, &b); /* the ack is "lost" */
    want = ht_oracle_apply(o, &b);
    ht_assert_result_eq(&r, &want, "first ack");
    ht_drop(c);
    other = ht_connect(h, "other");
    ht_flush_update(other, o, "eo", 1);
    ht_close(other);

    /* A clean stop, then the retry. */
    ht_hub_stop_ok(h, 15000);
    ht_hub_restart(h);
    c = ht_connect(h, "eo-client");
    empty = (fo_batch){b.from, 0, NULL};
    r = ht_flush_seq(c, "eo", 7, &b);
    want = ht_oracle_apply(o, &empty);
    ht_assert_result_eq(&r, &want, "retry after a clean restart");
    ht_drop(c);

    /* A crash, then the retry again. */
    cr_assert_eq(fo_hubproc_kill(h), 0);
    ht_hub_restart(h);
    c = ht_connect(h, "eo-client");
    r = ht_flush_seq(c, "eo", 7, &b);
    want = ht_oracle_apply(o, &empty);
    ht_assert_result_eq(&r, &want, "retry after SIGKILL");
    s = ht_get(c, "eo");
    cr_assert_eq(s.command_count, 2, "the retried flush was applied again");
    cr_assert_eq(fo_proxy_end_flush(p, &r.sync, &changed), 0);
    ht_assert_value_eq(fo_proxy_document(p), s.document, "proxy after the retry's sync");
    ht_proxy_free(p);
    ht_oracle_free(o);
    fo_arena_destroy(&a);
}

/* ---- writers under load ---------------------------------------------------------------------- */

#define MAX_ACKED 100000

typedef struct acked {
    int writer;
    int k;
    uint64_t at; /* applied.from */
} acked;

typedef struct writer {
    ht_client *c;
    const char *model;
    int id;
    int next_k;         /* the next key to write */
    int k_of_seq[4096]; /* k sent under each seq (seq < 4096) */
    uint64_t from;      /* the count the next batch claims (the last ack's end) */
    int in_flight;
    int acks, shutting_down;
} writer;

typedef struct load {
    writer w[8];
    int n;
    acked *acks;
    int nacks;
} load;

static void load_start(load *l, fo_hubproc *h, int n)
{
    static const char *const models[] = {"load.a", "load.b"};

    memset(l, 0, sizeof(*l));
    l->n = n;
    l->acks = calloc(MAX_ACKED, sizeof(*l->acks));
    cr_assert_not_null(l->acks);
    ht_defer(free, l->acks);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "writer-%d", i);
        l->w[i].c = ht_connect(h, id);
        l->w[i].model = models[i % 2];
        l->w[i].id = i;
    }
}

/* One flush: update [] {"w<id>_<k>": k}. */
static void writer_send(writer *w)
{
    fo_completion c = {0};
    fo_value props;
    fo_value v = fo_value_int(w->next_k);
    char key[32];
    bool ok = true;
    fo_msg m = {.type = FO_MSG_FLUSH, .model = w->model};

    cr_assert(w->c->seq + 1 < 4096);
    snprintf(key, sizeof(key), "w%d_%d", w->id, w->next_k);
    props = fo_value_map(&w->c->arena, 1, &ok);
    cr_assert(ok);
    cr_assert_eq(fo_map_set(fo_value_as_map(&props), &w->c->arena,
                            fo_key_new_cstr(&w->c->arena, key), &v, NULL),
                 0);
    c.command.action = FO_UPDATE;
    c.command.props = &props;
    m.seq = ++w->c->seq;
    m.batch = (fo_batch){w->from, 1, &c};
    w->k_of_seq[m.seq] = w->next_k++;
    ht_send(w->c, &m);
    w->in_flight++;
}

/* Handles one message for w: an ack is recorded; `error shutting_down` is counted when
 * allowed; anything else fails. Returns false on a close frame. */
static bool writer_handle(load *l, writer *w, bool allow_shutdown, int *close_code)
{
    fo_msg m;
    char d[512];
    int rc = fo_ws_recv_msg(w->c->ws, HT_TIMEOUT_MS, &w->c->arena, &m);

    if (rc == FO_WS_ECLOSED || (rc == FO_WS_EEOF && allow_shutdown)) {
        *close_code = fo_ws_close_code(w->c->ws); /* 0: TCP ended without a close frame */
        return false;
    }
    if (rc) {
        ht_hub_dump(w->c->hub);
        cr_assert_fail("[%s] %s", w->c->id, fo_ws_error(w->c->ws));
    }
    fo_ws_describe(&m, d, sizeof(d));
    if (m.type == FO_MSG_ACK) {
        acked *a = &l->acks[l->nacks++];
        cr_assert(l->nacks < MAX_ACKED);
        cr_assert_eq(m.result.applied.len, 1, "[%s] %s: the update did not apply", w->c->id, d);
        a->writer = w->id;
        a->k = w->k_of_seq[m.seq];
        a->at = m.result.applied.from;
        w->from = m.result.applied.from + 1;
        w->in_flight--;
        w->acks++;
    } else if (m.type == FO_MSG_ERROR && allow_shutdown && m.code == FO_ERR_SHUTTING_DOWN) {
        w->in_flight--;
        w->shutting_down++;
    } else {
        ht_hub_dump(w->c->hub);
        cr_assert_fail("[%s] unexpected %s", w->c->id, d);
    }
    fo_arena_reset(&w->c->arena);
    return true;
}

/* Keeps `window` flushes in flight per writer until `acks` more were acked. */
static void load_run(load *l, int window, int acks)
{
    fo_ws *ws[8];
    int target = l->nacks + acks, close_code;

    for (int i = 0; i < l->n; i++)
        ws[i] = l->w[i].c->ws;
    while (l->nacks < target) {
        int k;
        for (int i = 0; i < l->n; i++)
            while (l->w[i].in_flight < window)
                writer_send(&l->w[i]);
        k = fo_ws_wait_any(ws, l->n, HT_TIMEOUT_MS);
        cr_assert(k >= 0, "no ack within %d ms", HT_TIMEOUT_MS);
        cr_assert(writer_handle(l, &l->w[k], false, &close_code), "closed with %d", close_code);
    }
}

/* After a restart: every acked key is in its model's document, and history has it where the
 * ack said. */
static void load_verify(load *l, fo_hubproc *h)
{
    static const char *const models[] = {"load.a", "load.b"};
    ht_client *c = ht_connect(h, "verifier");

    for (int mi = 0; mi < 2 && mi < l->n; mi++) {
        fo_snapshot s = ht_get(c, models[mi]);
        fo_batch hist = ht_history(c, models[mi], 0, false, 0);
        const fo_map *doc = fo_value_as_map(s.document);
        int checked = 0;
        cr_assert_eq(hist.len, s.command_count, "%s: history has %u of %llu commands", models[mi],
                     hist.len, (unsigned long long)s.command_count);
        for (int i = 0; i < l->nacks; i++) {
            acked *a = &l->acks[i];
            char key[32];
            fo_value *v;
            const fo_value *props;
            if (strcmp(l->w[a->writer].model, models[mi]) != 0)
                continue;
            snprintf(key, sizeof(key), "w%d_%d", a->writer, a->k);
            cr_assert(a->at < s.command_count, "%s: acked at %llu, the count is %llu after restart",
                      models[mi], (unsigned long long)a->at, (unsigned long long)s.command_count);
            v = fo_map_get(doc, fo_key_new_cstr(&c->arena, key));
            cr_assert_not_null(v, "%s: acked key %s is gone after the restart", models[mi], key);
            cr_assert(fo_value_type(v) == FO_INT && v->h.as.i == a->k, "%s: %s has changed",
                      models[mi], key);
            props = hist.items[a->at].command.props;
            cr_assert(props && fo_map_get(fo_value_as_map(props), fo_key_new_cstr(&c->arena, key)),
                      "%s: history at %llu is not the acked update of %s", models[mi],
                      (unsigned long long)a->at, key);
            checked++;
        }
        cr_log_info("%s: %d acked commands found after the restart (count %llu)", models[mi],
                    checked, (unsigned long long)s.command_count);
    }
}

Test(hub_durability, sigkill_under_load_keeps_every_acked_command)
{
    fo_hubproc *h = ht_hub_start("sqlite", NULL);
    load l;
    int64_t t0 = ht_now_ms();

    load_start(&l, h, 4);
    load_run(&l, 4, 400);
    /* Kill it with flushes in flight. */
    for (int i = 0; i < l.n; i++)
        writer_send(&l.w[i]);
    cr_assert_eq(fo_hubproc_kill(h), 0);
    cr_log_info("%d acks in %lld ms before SIGKILL", l.nacks, (long long)(ht_now_ms() - t0));
    for (int i = 0; i < l.n; i++)
        ht_drop(l.w[i].c);
    ht_hub_restart(h);
    load_verify(&l, h);
}

Test(hub_durability, sigterm_with_flushes_in_flight_exits_0_and_keeps_acks)
{
    fo_hubproc *h = ht_hub_start("sqlite", NULL);
    ht_client *idle = ht_connect(h, "idle");
    load l;
    int st = -1, after = 0, refused = 0, unanswered = 0, close_code, codes[8], idle_code;
    char s[96];

    ht_sub(idle, "load.a");
    ht_client_reset_arena(idle);
    load_start(&l, h, 4);
    load_run(&l, 4, 200);
    for (int i = 0; i < l.n; i++)
        while (l.w[i].in_flight < 16)
            writer_send(&l.w[i]);
    cr_assert_eq(fo_hubproc_signal(h, SIGTERM), 0);
    for (int i = 0; i < l.n; i++) {
        writer *w = &l.w[i];
        int before = w->acks;
        close_code = 0;
        while (writer_handle(&l, w, true, &close_code))
            ;
        codes[i] = close_code;
        after += w->acks - before;
        refused += w->shutting_down;
        unanswered += w->in_flight;
    }
    /* The idle subscriber sees pushes, then the close. */
    for (;;) {
        fo_msg m;
        int rc = fo_ws_recv_msg(idle->ws, HT_TIMEOUT_MS, &idle->arena, &m);
        if (rc == FO_WS_ECLOSED || rc == FO_WS_EEOF)
            break;
        cr_assert_eq(rc, 0, "[idle] %s", fo_ws_error(idle->ws));
        cr_assert_eq(m.type, FO_MSG_PUSH, "[idle] only pushes before the close");
        ht_client_reset_arena(idle);
    }
    idle_code = fo_ws_close_code(idle->ws);
    if (fo_hubproc_wait(h, 15000, &st) != 0) {
        ht_hub_dump(h);
        cr_assert_fail("the hub did not exit within 15 s of SIGTERM");
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "after SIGTERM the hub ended with %s",
              fo_hubproc_status_str(st, s, sizeof(s)));
    cr_log_info("after SIGTERM: %d flushes acked, %d refused with shutting_down, %d unanswered "
                "before the close",
                after, refused, unanswered);
    if (unanswered)
        cr_log_warn("%d flushes sent before SIGTERM got neither an ack nor an error before the "
                    "close frame",
                    unanswered);
    for (int i = 0; i < l.n; i++)
        ht_drop(l.w[i].c);
    ht_drop(idle);
    ht_hub_restart(h);
    load_verify(&l, h);
    /* Checked last, so that a missing close frame does not hide the checks above. */
    for (int i = 0; i < l.n; i++)
        cr_assert_eq(codes[i], 1001,
                     "[writer-%d] close code %d, want 1001 (going away); 0 "
                     "means the TCP connection ended without a close frame",
                     i, codes[i]);
    cr_assert_eq(idle_code, 1001, "[idle] close code %d, want 1001 (0: no close frame)", idle_code);
}

Test(hub_durability, sigterm_closes_idle_connections_with_1001)
{
    fo_hubproc *h = ht_hub_start("memory", NULL);
    ht_client *a = ht_connect(h, "a"), *b = ht_connect(h, "b");
    int st = -1;
    char s[96];

    ht_sub(b, "m");
    cr_assert_eq(fo_hubproc_signal(h, SIGTERM), 0);
    ht_expect_close(a, 1001, HT_TIMEOUT_MS);
    ht_expect_close(b, 1001, HT_TIMEOUT_MS);
    cr_assert_eq(fo_hubproc_wait(h, 15000, &st), 0, "the hub did not exit after SIGTERM");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "after SIGTERM the hub ended with %s",
              fo_hubproc_status_str(st, s, sizeof(s)));
}

/* Under a small --memory-budget the hub evicts idle models and loads them back from the store
 * on the next request: every model must come back whole, and writing must go on from there
 * (counts, generated IDs, the exactly-once table). */
Test(hub_durability, evicted_models_come_back_whole)
{
    static const char *const args[] = {"--memory-budget", "64K", NULL};
    enum { MODELS = 12, WRITES = 12 };
    fo_hubproc *h = ht_hub_start("sqlite", args);
    ht_client *c = ht_connect(h, "c");
    ht_oracle *o[MODELS];
    char model[32], json[2400], pad[2001];
    fo_batch retry[MODELS];
    uint64_t retry_seq[MODELS];

    memset(pad, 'x', 2000);
    pad[2000] = 0;
    for (int i = 0; i < MODELS; i++)
        o[i] = ht_oracle_new();
    for (int k = 0; k < WRITES; k++) {
        for (int i = 0; i < MODELS; i++) {
            snprintf(model, sizeof(model), "evict.%d", i);
            snprintf(json, sizeof(json),
                     "{\"from\":%llu,\"completions\":[{\"command\":{\"action\":\"create\","
                     "\"path\":[\"items\"],\"props\":{\"k\":%d,\"pad\":\"%s\"},"
                     "\"parentDefault\":{}}}]}",
                     (unsigned long long)ht_oracle_snapshot(o[i]).command_count, k, pad);
            ht_flush_checked(c, o[i], model, json);
            if (k == WRITES - 1) {
                /* keep the last batch to retry it after the eviction */
                retry[i] = ht_batch_json(&c->arena, json);
                retry_seq[i] = c->seq;
            }
        }
    }
    cr_log_info("evictions logged: %d", fo_hubproc_log_count(h, "evicted"));
    for (int i = 0; i < MODELS; i++) {
        fo_snapshot s;
        fo_apply_result r, want;
        fo_batch empty = {retry[i].from, 0, NULL};
        snprintf(model, sizeof(model), "evict.%d", i);
        s = ht_get(c, model);
        ht_assert_oracle_snapshot(&s, o[i], model);
        r = ht_flush_seq(c, model, retry_seq[i], &retry[i]);
        want = ht_oracle_apply(o[i], &empty);
        ht_assert_result_eq(&r, &want, "a retried flush after the model was evicted");
        ht_flush_update(c, o[i], model, 1000 + i);
    }
    cr_assert(fo_hubproc_log_count(h, "evicted") > 0,
              "no model was evicted under a 64K budget: the test proved nothing");
    for (int i = 0; i < MODELS; i++)
        ht_oracle_free(o[i]);
}
