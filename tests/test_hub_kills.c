/* The hub over real WebSockets, part 6: 20 SIGKILLs under a pipelined write load (issue 11
 * item 6). Writers keep several flushes in flight on two models of a SQLite hub that is killed
 * with -9 again and again; after each restart they retry, under their seq, what was never
 * acked. In the end every flush is in its model's history exactly once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
}

TestSuite(hub_kills, .init = setup, .fini = ht_cleanup, .timeout = 240);

#define KW 4         /* writers, two per model */
#define KILLS 20     /* kill -9 cycles */
#define KWINDOW 4    /* flushes in flight per writer */
#define KMAXSEQ 4096 /* seqs per writer */

typedef struct kwriter {
    ht_client *c;
    char id[32];
    const char *model;
    uint64_t sent; /* the last seq sent */
    uint64_t from; /* the count the next flush claims */
    int in_flight;
    bool acked[KMAXSEQ];      /* by seq; a writer's key for seq s is w<writer>_<s> */
    bool retried[KMAXSEQ];    /* sent again after a restart */
    bool superseded[KMAXSEQ]; /* a retry refused as below the last seq stored */
} kwriter;

/* ---- 20 SIGKILLs under a write load ---------------------------------------------------------- */

static void kw_send(kwriter *w, uint64_t seq)
{
    char key[64];
    fo_msg m;

    cr_assert(seq < KMAXSEQ);
    snprintf(key, sizeof(key), "%s_%llu", w->id, (unsigned long long)seq);
    m = ht_update_msg(w->c, w->model, seq, w->from, key, 64);
    ht_send(w->c, &m);
    w->in_flight++;
}

static void kw_handle(kwriter *w, int *dup_answers, int *superseded)
{
    fo_msg m;
    char d[512];
    int rc = fo_ws_recv_msg(w->c->ws, HT_TIMEOUT_MS, &w->c->arena, &m);

    if (rc)
        HT_FAIL(w->c, "[%s] %s", w->id, fo_ws_error(w->c->ws));
    if (m.type == FO_MSG_ERROR && m.code == FO_ERR_BAD_REQUEST && m.model &&
        strstr(m.message, "below")) {
        /* The hub keeps the last seq per (model, client): a retry of an older one is refused
         * as below it. On one connection every flush before the last one stored arrived
         * first, so it was stored too: the history check below proves it. */
        uint64_t seq = w->sent + 1;
        for (uint64_t s = 1; s <= w->sent; s++)
            if (w->retried[s] && !w->acked[s] && !w->superseded[s]) {
                seq = s;
                break;
            }
        cr_assert(seq <= w->sent, "[%s] %s, but no retry is pending", w->id,
                  fo_ws_describe(&m, d, sizeof(d)));
        w->superseded[seq] = true;
        (*superseded)++;
        w->in_flight--;
        ht_client_reset_arena(w->c);
        return;
    }
    if (m.type != FO_MSG_ACK || m.seq == 0 || m.seq > w->sent)
        HT_FAIL(w->c, "[%s] want an ack, got %s", w->id, fo_ws_describe(&m, d, sizeof(d)));
    cr_assert(!w->acked[m.seq], "[%s] seq %llu acked twice", w->id, (unsigned long long)m.seq);
    if (m.result.applied.len == 0) {
        /* The exactly-once answer: only for a retry of a flush stored before the kill. */
        cr_assert(w->retried[m.seq], "[%s] a first flush (seq %llu) applied nothing", w->id,
                  (unsigned long long)m.seq);
        (*dup_answers)++;
    } else {
        cr_assert_eq(m.result.applied.len, 1);
        w->from = m.result.applied.from + 1;
    }
    w->acked[m.seq] = true;
    w->in_flight--;
    ht_client_reset_arena(w->c);
}

/* Waits for one message on any writer and handles it. */
static void kw_pump(kwriter *ws, int *dups, int *superseded)
{
    fo_ws *socks[KW];
    int k;

    for (int i = 0; i < KW; i++)
        socks[i] = ws[i].c->ws;
    k = fo_ws_wait_any(socks, KW, HT_TIMEOUT_MS);
    if (k < 0)
        HT_FAIL(ws[0].c, "no ack within %d ms", HT_TIMEOUT_MS);
    kw_handle(&ws[k], dups, superseded);
}

/* Connects every writer and retries, under their seq, the flushes never acked. */
static void kw_reconnect(fo_hubproc *h, kwriter *ws, int *dups, int *superseded, int *retries)
{
    for (int i = 0; i < KW; i++) {
        kwriter *w = &ws[i];
        w->c = ht_connect(h, w->id);
        w->in_flight = 0;
        for (uint64_t s = 1; s <= w->sent; s++) {
            if (w->acked[s] || w->superseded[s])
                continue;
            w->retried[s] = true;
            kw_send(w, s);
            (*retries)++;
        }
    }
    for (int i = 0; i < KW; i++)
        while (ws[i].in_flight)
            kw_pump(ws, dups, superseded);
}

Test(hub_kills, twenty_sigkills_under_write_load_lose_no_ack_and_apply_once)
{
    static const char *const args[] = {"--history", "100000000", NULL};
    static const char *const models[] = {"kill.a", "kill.b"};
    fo_hubproc *h = ht_hub_start("sqlite", args);
    kwriter *ws = calloc(KW, sizeof(*ws));
    int dups = 0, superseded = 0, retries = 0, acks_total = 0;
    int64_t t0 = ht_now_ms();

    cr_assert_not_null(ws);
    ht_defer(free, ws);
    for (int i = 0; i < KW; i++) {
        snprintf(ws[i].id, sizeof(ws[i].id), "w%d", i);
        ws[i].model = models[i % 2];
    }
    for (int cycle = 0; cycle < KILLS; cycle++) {
        int target = 20 + (cycle * 37) % 60, got = 0;
        if (cycle > 0)
            ht_hub_restart(h);
        kw_reconnect(h, ws, &dups, &superseded, &retries);
        /* Load: every writer keeps KWINDOW flushes in flight until `target` more acks. */
        while (got < target) {
            int before = 0, after = 0;
            for (int i = 0; i < KW; i++) {
                while (ws[i].in_flight < KWINDOW)
                    kw_send(&ws[i], ++ws[i].sent);
                before += ws[i].in_flight;
            }
            kw_pump(ws, &dups, &superseded);
            for (int i = 0; i < KW; i++)
                after += ws[i].in_flight;
            got += before - after;
        }
        acks_total += got;
        /* Top the windows up and kill it with those in flight. */
        for (int i = 0; i < KW; i++)
            while (ws[i].in_flight < KWINDOW)
                kw_send(&ws[i], ++ws[i].sent);
        cr_assert_eq(fo_hubproc_kill(h), 0);
        for (int i = 0; i < KW; i++) {
            ht_drop(ws[i].c);
            ws[i].c = NULL;
        }
    }
    ht_hub_restart(h);
    kw_reconnect(h, ws, &dups, &superseded, &retries);
    cr_log_info("%d kill -9 cycles in %lld ms: %d acks under load, %d flushes retried after a "
                "kill: %d answered as stored (the last seq), %d refused as below the last seq",
                KILLS, (long long)(ht_now_ms() - t0), acks_total, retries, dups, superseded);

    /* Every flush was acked once; each is in its model's history exactly once. */
    {
        ht_client *v = ht_connect(h, "verifier");
        for (int mi = 0; mi < 2; mi++) {
            fo_snapshot s = ht_get(v, models[mi]);
            fo_batch hist = ht_history(v, models[mi], 0, false, 0);
            uint64_t want = 0;
            char **keys;
            cr_assert_eq(hist.len, s.command_count, "%s: history %u, count %llu", models[mi],
                         hist.len, (unsigned long long)s.command_count);
            keys = calloc(hist.len + 1, sizeof(*keys));
            cr_assert_not_null(keys);
            for (uint32_t j = 0; j < hist.len; j++) {
                char k[64];
                keys[j] = strdup(ht_update_key(&hist.items[j], k, sizeof(k)));
            }
            for (int i = 0; i < KW; i++) {
                kwriter *w = &ws[i];
                if (w->model != models[mi])
                    continue;
                for (uint64_t sq = 1; sq <= w->sent; sq++) {
                    char key[64];
                    int n = 0;
                    cr_assert(w->acked[sq] || w->superseded[sq], "[%s] seq %llu never acked", w->id,
                              (unsigned long long)sq);
                    snprintf(key, sizeof(key), "%s_%llu", w->id, (unsigned long long)sq);
                    for (uint32_t j = 0; j < hist.len; j++)
                        n += strcmp(keys[j], key) == 0;
                    cr_assert_eq(n, 1, "%s: %s is in the history %d times", models[mi], key, n);
                    want++;
                }
            }
            cr_assert_eq(s.command_count, want, "%s: %llu commands, %llu flushes acked", models[mi],
                         (unsigned long long)s.command_count, (unsigned long long)want);
            for (uint32_t j = 0; j < hist.len; j++)
                free(keys[j]);
            free(keys);
            ht_client_reset_arena(v);
        }
    }
}
