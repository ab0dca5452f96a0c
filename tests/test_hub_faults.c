/* The hub over real WebSockets, part 5: the faults of production (issue 11 item 6). The disk
 * fills during a group commit (a real tmpfs, in a private mount namespace: root only), clients
 * vanish mid-flush (after sending it, or with half its frame sent). 20 SIGKILLs under a write
 * load are test_hub_kills.c; start-up faults of the data directory tests/test_faults.sh. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/ws.h"
#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
}

TestSuite(hub_faults, .init = setup, .fini = ht_cleanup, .timeout = 180);

/* How many commands of a model's whole history update `key`. */
static int history_count(ht_client *c, const char *model, const char *key)
{
    fo_batch h = ht_history(c, model, 0, false, 0);
    int n = 0;

    for (uint32_t i = 0; i < h.len; i++) {
        char k[64];
        n += strcmp(ht_update_key(&h.items[i], k, sizeof(k)), key) == 0;
    }
    return n;
}

/* ---- the disk fills during a group commit ---------------------------------------------------- */

typedef struct small_disk {
    fo_hubproc *h;
    bool mounted;
} small_disk;

static void small_disk_free(void *p)
{
    small_disk *d = p;

    if (fo_hubproc_running(d->h))
        fo_hubproc_kill(d->h);
    if (d->mounted)
        umount2(fo_hubproc_data_dir(d->h), MNT_DETACH);
    fo_hubproc_free(d->h);
    free(d);
}

/* A private mount namespace for this test's process (and the hubs it starts). Skips the
 * test, saying why, where that is not possible. */
static void enter_mount_namespace(void)
{
    if (geteuid() != 0)
        cr_skip_test("needs root for a small tmpfs in a private mount namespace (CI runs as "
                     "root): the disk-full fault was NOT tested");
    if (unshare(CLONE_NEWNS) != 0)
        cr_skip_test("unshare(CLONE_NEWNS): %s: the disk-full fault was NOT tested",
                     strerror(errno));
    cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0,
                 "making / private in the new namespace: %s", strerror(errno));
}

/* Fills the file system under `path` with one file; returns the bytes written. */
static long fill_disk(const char *path)
{
    static char buf[65536];
    size_t chunk = sizeof(buf);
    long total = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    memset(buf, 0xa5, sizeof(buf));
    while (chunk >= 512) {
        ssize_t w = write(fd, buf, chunk);
        if (w > 0)
            total += w;
        else if (w < 0 && errno == ENOSPC)
            chunk /= 2;
        else
            cr_assert_fail("write %s: %s", path, strerror(errno));
    }
    fsync(fd);
    close(fd);
    return total;
}

typedef struct keyed {
    char key[32];
    uint64_t seq, from;
} keyed;

#define PAD 4000
#define MAX_AT 1024

/* The reader's pushes: key at each count (NULL until seen); returns the count pushes reached. */
static uint64_t drain_pushes(ht_client *r, const char *model, char **at, uint64_t count,
                             uint64_t want, int timeout_ms)
{
    int64_t end = ht_now_ms() + timeout_ms;
    char d[512];

    for (;;) {
        fo_msg m;
        int left = (int)(end - ht_now_ms()), rc;
        if (count >= want && !fo_ws_pending(r->ws))
            left = 0;
        if (left < 0 || fo_ws_wait_any(&r->ws, 1, left) < 0)
            return count;
        rc = fo_ws_recv_msg(r->ws, HT_TIMEOUT_MS, &r->arena, &m);
        cr_assert_eq(rc, 0, "[reader] %s", fo_ws_error(r->ws));
        if (m.type != FO_MSG_PUSH)
            HT_FAIL(r, "[reader] only pushes expected, got %s", fo_ws_describe(&m, d, sizeof(d)));
        cr_assert_eq(m.batch.from, count, "[reader] a push from %llu after %llu: a gap",
                     (unsigned long long)m.batch.from, (unsigned long long)count);
        (void)model;
        for (uint32_t i = 0; i < m.batch.len; i++) {
            char k[64];
            cr_assert(count < MAX_AT);
            at[count++] = strdup(ht_update_key(&m.batch.items[i], k, sizeof(k)));
        }
        ht_client_reset_arena(r);
    }
}

static void free_at(void *p)
{
    char **at = p;

    for (int i = 0; i < MAX_AT; i++)
        free(at[i]);
    free(at);
}

Test(hub_faults, disk_full_during_group_commit_acks_nothing_unstored)
{
    static const char *const model = "full.a";
    fo_hubproc_options o = {.store = "sqlite"};
    small_disk *sd = calloc(1, sizeof(*sd));
    ht_client *w, *reader, *late;
    char fill[4200], d[512];
    char **pushed = calloc(MAX_AT, sizeof(char *));   /* the reader's pushes by count */
    char **acked_at = calloc(MAX_AT, sizeof(char *)); /* the writer's acks by count */
    keyed refused[64];
    int nrefused = 0, i;
    uint64_t count = 0, reader_count = 0, seq = 0;
    long filled;
    fo_snapshot s;

    cr_assert(sd && pushed && acked_at);
    ht_defer(free_at, pushed);
    ht_defer(free_at, acked_at);
    enter_mount_namespace();
    cr_assert_not_null(sd->h = fo_hubproc_new(&o));
    ht_defer(small_disk_free, sd);
    cr_assert_eq(
        mount("flushout-faults", fo_hubproc_data_dir(sd->h), "tmpfs", 0, "size=1536k,mode=0700"), 0,
        "mount tmpfs: %s", strerror(errno));
    sd->mounted = true;
    cr_assert_eq(fo_hubproc_start(sd->h), 0, "%s", fo_hubproc_error(sd->h));

    w = ht_connect(sd->h, "writer");
    reader = ht_connect(sd->h, "reader");
    ht_sub(reader, model);
    ht_client_reset_arena(reader);
    for (i = 0; i < 5; i++) {
        char key[32];
        fo_msg m, r;
        snprintf(key, sizeof(key), "before%d", i);
        m = ht_update_msg(w, model, ++seq, count, key, PAD);
        r = ht_flush_reply(w, &m);
        cr_assert_eq(r.type, FO_MSG_ACK, "a flush before the disk filled: %s",
                     fo_ws_describe(&r, d, sizeof(d)));
        acked_at[count++] = strdup(key);
        ht_client_reset_arena(w);
    }

    snprintf(fill, sizeof(fill), "%s/fill", fo_hubproc_data_dir(sd->h));
    filled = fill_disk(fill);
    cr_log_info("filled the data dir's tmpfs with %ld KiB", filled / 1024);

    /* Flush until the store refuses; then a few more, all of which must be refused. */
    for (i = 0; i < 300 && nrefused < 4; i++) {
        keyed *k = &refused[nrefused];
        fo_msg m, r;
        snprintf(k->key, sizeof(k->key), "full%d", i);
        k->seq = ++seq;
        k->from = count;
        m = ht_update_msg(w, model, k->seq, k->from, k->key, PAD);
        r = ht_flush_reply(w, &m);
        if (r.type == FO_MSG_ACK) {
            cr_assert_eq(nrefused, 0,
                         "a flush was acked after an earlier one was refused with "
                         "the disk still full");
            cr_assert_eq(r.result.applied.len, 1);
            cr_assert_eq(r.result.applied.from, count);
            acked_at[count++] = strdup(k->key);
        } else {
            cr_assert_eq(r.code, FO_ERR_INTERNAL, "disk full: %s",
                         fo_ws_describe(&r, d, sizeof(d)));
            cr_assert(strstr(r.message, "full"), "the error does not say the disk is full: %s",
                      r.message);
            cr_assert(!strstr(r.message, fo_hubproc_dir(sd->h)) && !strstr(r.message, ".db"),
                      "an error sent to a client names a server path: %s", r.message);
            cr_assert(strstr(r.message, "retry"), "the error does not say to retry: %s", r.message);
            nrefused++;
        }
        reader_count = drain_pushes(reader, model, pushed, reader_count, count, 0);
        ht_client_reset_arena(w);
    }
    cr_assert_eq(nrefused, 4, "%d flushes of %d bytes were acked on a full disk", i, PAD);
    cr_log_info("the disk filled after %llu acked flushes; %d refused", (unsigned long long)count,
                nrefused);
    cr_assert(fo_hubproc_log_count(sd->h, "SQLITE_FULL") > 0,
              "the log does not have the store's detail");

    /* Reads keep working on the full disk: get, history, a new subscriber, sub with from. */
    s = ht_get(w, model);
    cr_assert_eq(s.command_count, count, "get on a full disk: count %llu, want %llu",
                 (unsigned long long)s.command_count, (unsigned long long)count);
    for (i = 0; i < nrefused; i++)
        cr_assert_eq(history_count(w, model, refused[i].key), 0, "refused %s is in the history",
                     refused[i].key);
    cr_assert_eq(history_count(w, model, "before0"), 1);
    late = ht_connect(sd->h, "late");
    s = ht_sub(late, model);
    cr_assert_eq(s.command_count, count, "sub on a full disk");
    {
        fo_msg m = {.type = FO_MSG_SUB, .model = "full.b", .model_len = 6, .has_from = true};
        ht_expect_reply(late, FO_MSG_DIFF, ht_send(late, &m), &m);
    }
    ht_client_reset_arena(late);
    /* A crash on the full disk: the hub starts again and serves reads. */
    reader_count = drain_pushes(reader, model, pushed, reader_count, count, HT_TIMEOUT_MS);
    cr_assert_eq(fo_hubproc_kill(sd->h), 0);
    ht_drop(w);
    ht_drop(late);
    ht_drop(reader);
    cr_assert_eq(fo_hubproc_start(sd->h), 0, "restart on a full disk: %s", fo_hubproc_error(sd->h));
    w = ht_connect(sd->h, "writer");
    s = ht_get(w, model);
    cr_assert_eq(s.command_count, count, "get after a restart on a full disk");
    reader = ht_connect(sd->h, "reader");
    {
        fo_msg m = {.type = FO_MSG_SUB,
                    .model = model,
                    .model_len = (uint32_t)strlen(model),
                    .has_from = true,
                    .from = reader_count};
        ht_expect_reply(reader, FO_MSG_DIFF, ht_send(reader, &m), &m);
        cr_assert_eq(m.batch.from + m.batch.len, count, "sub with from on a full disk");
        for (uint32_t k = 0; k < m.batch.len; k++) {
            char key[64];
            pushed[reader_count++] = strdup(ht_update_key(&m.batch.items[k], key, sizeof(key)));
        }
        ht_client_reset_arena(reader);
    }

    /* Space comes back: the refused flushes, retried under their seq, apply; then new ones. */
    cr_assert_eq(unlink(fill), 0, "unlink %s: %s", fill, strerror(errno));
    for (i = 0; i < nrefused + 3; i++) {
        keyed k, *rk = i < nrefused ? &refused[i] : &k;
        fo_msg m, r;
        if (i >= nrefused) {
            snprintf(k.key, sizeof(k.key), "after%d", i);
            k.seq = ++seq;
            k.from = count;
        }
        m = ht_update_msg(w, model, rk->seq, rk->from, rk->key, PAD);
        r = ht_flush_reply(w, &m);
        if (r.type != FO_MSG_ACK)
            HT_FAIL(w, "a flush after the space came back: %s", fo_ws_describe(&r, d, sizeof(d)));
        cr_assert_eq(r.result.applied.len, 1, "%s was not applied", rk->key);
        cr_assert_eq(r.result.applied.from, count);
        acked_at[count++] = strdup(rk->key);
        ht_client_reset_arena(w);
    }
    reader_count = drain_pushes(reader, model, pushed, reader_count, count, HT_TIMEOUT_MS);
    cr_assert_eq(reader_count, count, "the reader got pushes up to %llu of %llu",
                 (unsigned long long)reader_count, (unsigned long long)count);
    for (uint64_t n = 0; n < count; n++)
        cr_assert_str_eq(pushed[n], acked_at[n], "the push at %llu is not the acked batch",
                         (unsigned long long)n);

    /* A crash, then everything acked is there, once. */
    cr_assert_eq(fo_hubproc_kill(sd->h), 0);
    ht_drop(w);
    ht_drop(reader);
    ht_hub_restart(sd->h);
    w = ht_connect(sd->h, "verifier");
    s = ht_get(w, model);
    cr_assert_eq(s.command_count, count, "after a restart: count %llu, want %llu",
                 (unsigned long long)s.command_count, (unsigned long long)count);
    for (uint64_t n = 0; n < count; n++) {
        cr_assert_eq(history_count(w, model, acked_at[n]), 1, "acked %s is not in the history once",
                     acked_at[n]);
        ht_client_reset_arena(w);
    }
}

/* ---- clients vanishing mid-flush ------------------------------------------------------------- */

enum { VANISH_CLOSE, VANISH_RESET, VANISH_HALF_FRAME, VANISH_WAYS };
static const char *const vanish_names[] = {"close after the flush", "RST after the flush",
                                           "close with half the frame sent"};

/* Sends the flush and vanishes as `how` says. */
static void send_and_vanish(ht_client *c, fo_msg *m, int how)
{
    if (how == VANISH_HALF_FRAME) {
        static const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
        fo_buf b;
        unsigned char *frame;
        size_t n;
        m->has_rid = true;
        m->rid = ++c->rid;
        fo_buf_init(&b, 0);
        cr_assert_eq(fo_wire_encode(m, &b), 0);
        frame = malloc(b.len + 16);
        cr_assert_not_null(frame);
        n = fo_ws_frame_build(frame, FO_WS_OP_BINARY, true, fo_buf_data(&b), b.len, key);
        cr_assert_eq(fo_ws_send_raw(c->ws, frame, n / 2, HT_TIMEOUT_MS), 0);
        free(frame);
        fo_buf_destroy(&b);
    } else {
        ht_send(c, m);
    }
    if (how == VANISH_RESET) {
        struct linger l = {1, 0};
        cr_assert_eq(setsockopt(fo_ws_fd(c->ws), SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
    }
    ht_drop(c);
}

Test(hub_faults, clients_vanishing_mid_flush_get_the_original_outcome_on_retry)
{
    enum { ROUNDS = 30 };
    static const char *const model = "vanish";
    fo_hubproc *h = ht_hub_start("sqlite", NULL);
    ht_client *watcher = ht_connect(h, "watcher"), *bystander = ht_connect(h, "bystander");
    int applied_before[VANISH_WAYS] = {0}, applied_on_retry[VANISH_WAYS] = {0};
    uint64_t count = 0;
    char d[512];

    ht_sub(watcher, model);
    ht_client_reset_arena(watcher);
    for (int i = 0; i < ROUNDS; i++) {
        int how = i % VANISH_WAYS;
        char key[32];
        ht_client *c = ht_connect(h, "vanisher");
        fo_msg m, r;
        fo_apply_result br;
        fo_batch b;
        snprintf(key, sizeof(key), "v%d", i);
        m = ht_update_msg(c, model, (uint64_t)i + 1, count, key, 16);
        send_and_vanish(c, &m, how);

        /* The hub goes on serving others. */
        b = ht_batch_json(&bystander->arena,
                          "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"update\","
                          "\"props\":{\"b\":1}}}]}");
        br = ht_flush(bystander, "vanish.other", &b);
        cr_assert_eq(br.applied.len, 1);
        ht_client_reset_arena(bystander);

        /* The client comes back and retries (client, seq): the original outcome. */
        c = ht_connect(h, "vanisher");
        m = ht_update_msg(c, model, (uint64_t)i + 1, count, key, 16);
        r = ht_flush_reply(c, &m);
        if (r.type != FO_MSG_ACK)
            HT_FAIL(c, "retry after \"%s\": %s", vanish_names[how],
                    fo_ws_describe(&r, d, sizeof(d)));
        if (r.result.applied.len == 0) {
            cr_assert_neq(how, VANISH_HALF_FRAME, "half a frame was applied");
            applied_before[how]++;
        } else {
            cr_assert_eq(r.result.applied.len, 1);
            applied_on_retry[how]++;
        }
        ht_close(c);
        count++;
    }
    /* Every flush is there once; the watcher saw each once, in order. */
    {
        ht_client *v = ht_connect(h, "verifier");
        fo_snapshot s = ht_get(v, model);
        fo_batch hist;
        cr_assert_eq(s.command_count, count, "count %llu, want %llu",
                     (unsigned long long)s.command_count, (unsigned long long)count);
        hist = ht_history(v, model, 0, false, 0);
        for (int i = 0; i < ROUNDS; i++) {
            char key[32], k[64];
            int n = 0;
            snprintf(key, sizeof(key), "v%d", i);
            for (uint32_t j = 0; j < hist.len; j++)
                n += strcmp(ht_update_key(&hist.items[j], k, sizeof(k)), key) == 0;
            cr_assert_eq(n, 1, "%s is in the history %d times", key, n);
        }
    }
    {
        char **seen = calloc(MAX_AT, sizeof(char *));
        uint64_t got;
        cr_assert_not_null(seen);
        ht_defer(free_at, seen);
        got = drain_pushes(watcher, model, seen, 0, count, HT_TIMEOUT_MS);
        cr_assert_eq(got, count, "the watcher got %llu of %llu pushes", (unsigned long long)got,
                     (unsigned long long)count);
    }
    for (int k = 0; k < VANISH_WAYS; k++)
        cr_log_info("%s: applied before the retry %d, applied by the retry %d", vanish_names[k],
                    applied_before[k], applied_on_retry[k]);
}

#define KW 4         /* writers, two per model */
#define KWINDOW 4    /* flushes in flight per writer */
#define KMAXSEQ 4096 /* seqs per writer */

typedef struct kwriter {
    ht_client *c;
    char id[32];
    const char *model;
    uint64_t sent; /* the last seq sent */
    uint64_t from; /* the count the next flush claims */
    int in_flight;
    bool acked[KMAXSEQ];   /* by seq; a writer's key for seq s is w<writer>_<s> */
    bool refused[KMAXSEQ]; /* refused with the disk full */
} kwriter;

/* ---- the disk fills under a pipelined load: groups of several models ------------------------- */

/* Handles one answer: an ack, or (allow_full) a refusal because the disk is full. */
static void gw_handle(kwriter *w, bool allow_full, int *refusals)
{
    fo_msg m;
    char d[512];
    int rc = fo_ws_recv_msg(w->c->ws, HT_TIMEOUT_MS, &w->c->arena, &m);
    uint64_t seq = 0;

    if (rc)
        HT_FAIL(w->c, "[%s] %s", w->id, fo_ws_error(w->c->ws));
    /* Answers come in seq order: this one is for the oldest flush not yet answered. */
    for (uint64_t s = 1; s <= w->sent && !seq; s++)
        if (!w->acked[s] && !w->refused[s])
            seq = s;
    cr_assert(seq, "[%s] an answer with nothing in flight", w->id);
    if (m.type == FO_MSG_ACK) {
        cr_assert_eq(m.seq, seq, "[%s] ack of seq %llu, want %llu", w->id,
                     (unsigned long long)m.seq, (unsigned long long)seq);
        cr_assert_eq(m.result.applied.len, 1, "[%s] %s", w->id, fo_ws_describe(&m, d, sizeof(d)));
        w->from = m.result.applied.from + 1;
        w->acked[seq] = true;
    } else if (allow_full && m.type == FO_MSG_ERROR && m.code == FO_ERR_INTERNAL &&
               strstr(m.message, "retry")) {
        w->refused[seq] = true;
        (*refusals)++;
    } else {
        HT_FAIL(w->c, "[%s] seq %llu: %s", w->id, (unsigned long long)seq,
                fo_ws_describe(&m, d, sizeof(d)));
    }
    w->in_flight--;
    ht_client_reset_arena(w->c);
}

/* Keeps KWINDOW flushes in flight per writer (when `send`) and handles one answer. */
static void gw_step(kwriter *ws, bool send, bool allow_full, int *refusals)
{
    fo_ws *socks[KW];
    int k;

    for (int i = 0; i < KW; i++) {
        while (send && ws[i].in_flight < KWINDOW) {
            char key[64];
            fo_msg m;
            uint64_t seq = ++ws[i].sent;
            cr_assert(seq < KMAXSEQ);
            snprintf(key, sizeof(key), "%s_%llu", ws[i].id, (unsigned long long)seq);
            m = ht_update_msg(ws[i].c, ws[i].model, seq, ws[i].from, key, 2000);
            ht_send(ws[i].c, &m);
            ws[i].in_flight++;
        }
        socks[i] = ws[i].c->ws;
    }
    k = fo_ws_wait_any(socks, KW, HT_TIMEOUT_MS);
    if (k < 0)
        HT_FAIL(ws[0].c, "no answer within %d ms", HT_TIMEOUT_MS);
    gw_handle(&ws[k], allow_full, refusals);
}

static int gw_acked(const kwriter *ws)
{
    int n = 0;

    for (int i = 0; i < KW; i++)
        for (uint64_t s = 1; s <= ws[i].sent; s++)
            n += ws[i].acked[s];
    return n;
}

Test(hub_faults, disk_full_under_a_pipelined_load_of_two_models)
{
    static const char *const models[] = {"gfull.a", "gfull.b"};
    fo_hubproc_options o = {.store = "sqlite"};
    small_disk *sd = calloc(1, sizeof(*sd));
    kwriter *ws = calloc(KW, sizeof(*ws));
    int refusals = 0, acked_before, acked_full, i;
    char fill[4200];

    cr_assert(sd && ws);
    ht_defer(free, ws);
    enter_mount_namespace();
    cr_assert_not_null(sd->h = fo_hubproc_new(&o));
    ht_defer(small_disk_free, sd);
    cr_assert_eq(
        mount("flushout-faults", fo_hubproc_data_dir(sd->h), "tmpfs", 0, "size=2m,mode=0700"), 0,
        "mount tmpfs: %s", strerror(errno));
    sd->mounted = true;
    cr_assert_eq(fo_hubproc_start(sd->h), 0, "%s", fo_hubproc_error(sd->h));
    for (i = 0; i < KW; i++) {
        snprintf(ws[i].id, sizeof(ws[i].id), "g%d", i);
        ws[i].model = models[i % 2];
        ws[i].c = ht_connect(sd->h, ws[i].id);
    }
    while (gw_acked(ws) < 40)
        gw_step(ws, true, false, &refusals);
    acked_before = gw_acked(ws);

    snprintf(fill, sizeof(fill), "%s/fill", fo_hubproc_data_dir(sd->h));
    fill_disk(fill);
    /* Load goes on until every writer had a refusal (or a bound that fails the test). */
    for (i = 0; i < 4000; i++) {
        int writers_refused = 0;
        for (int k = 0; k < KW; k++) {
            bool any = false;
            for (uint64_t s = 1; s <= ws[k].sent && !any; s++)
                any = ws[k].refused[s];
            writers_refused += any;
        }
        if (writers_refused == KW)
            break;
        gw_step(ws, true, true, &refusals);
    }
    cr_assert_lt(i, 4000, "flushes went on being acked on a full disk");
    for (int k = 0; k < KW; k++)
        while (ws[k].in_flight)
            gw_step(ws, false, true, &refusals);
    acked_full = gw_acked(ws) - acked_before;

    /* Reads on the full disk see exactly what was acked. */
    {
        ht_client *v = ht_connect(sd->h, "reader");
        for (int mi = 0; mi < 2; mi++) {
            fo_snapshot s = ht_get(v, models[mi]);
            uint64_t want = 0;
            for (int k = mi; k < KW; k += 2)
                for (uint64_t sq = 1; sq <= ws[k].sent; sq++)
                    want += ws[k].acked[sq];
            cr_assert_eq(s.command_count, want, "%s on the full disk: %llu commands, %llu acked",
                         models[mi], (unsigned long long)s.command_count, (unsigned long long)want);
            ht_client_reset_arena(v);
        }
        ht_drop(v);
    }

    /* Space comes back: new flushes are all acked. */
    cr_assert_eq(unlink(fill), 0);
    {
        int target = gw_acked(ws) + 40, refused_before = refusals;
        while (gw_acked(ws) < target)
            gw_step(ws, true, false, &refusals);
        for (int k = 0; k < KW; k++)
            while (ws[k].in_flight)
                gw_step(ws, false, false, &refusals);
        cr_assert_eq(refusals, refused_before);
    }
    cr_log_info("pipelined: %d acked before the disk filled, %d acked while it filled, %d "
                "refused, %d acked after space came back",
                acked_before, acked_full, refusals, gw_acked(ws) - acked_before - acked_full);

    /* After SIGKILL: every acked flush once, no refused one. */
    cr_assert_eq(fo_hubproc_kill(sd->h), 0);
    for (int k = 0; k < KW; k++) {
        ht_drop(ws[k].c);
        ws[k].c = NULL;
    }
    ht_hub_restart(sd->h);
    {
        ht_client *v = ht_connect(sd->h, "verifier");
        for (int mi = 0; mi < 2; mi++) {
            fo_batch hist = ht_history(v, models[mi], 0, false, 0);
            uint64_t want = 0;
            for (int k = mi; k < KW; k += 2) {
                for (uint64_t sq = 1; sq <= ws[k].sent; sq++) {
                    char key[64], kk[64];
                    int n = 0;
                    snprintf(key, sizeof(key), "%s_%llu", ws[k].id, (unsigned long long)sq);
                    for (uint32_t j = 0; j < hist.len; j++)
                        n += strcmp(ht_update_key(&hist.items[j], kk, sizeof(kk)), key) == 0;
                    cr_assert_eq(n, ws[k].acked[sq] ? 1 : 0,
                                 "%s: %s (%s) is in the history %d times", models[mi], key,
                                 ws[k].acked[sq] ? "acked" : "refused", n);
                    want += ws[k].acked[sq];
                }
            }
            cr_assert_eq(hist.len, want, "%s: %u commands, %llu acked", models[mi], hist.len,
                         (unsigned long long)want);
            ht_client_reset_arena(v);
        }
    }
}
