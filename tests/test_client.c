/* test_client.c - libflushout-client against a real flushout-hub started here as a child
 * process (FO_HUB_BIN) on a free loopback port, with a fresh mkdtemp data directory.
 * Every test is bounded in time; only the hub's own pid is ever signalled. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients/c/client.h"
#include "proto/json.h"

#ifndef FO_HUB_BIN
#error "FO_HUB_BIN (the flushout-hub executable) must be defined by the build"
#endif

/* ---- the hub as a child process ------------------------------------------------------ */

typedef struct hub {
    pid_t pid;
    int port;
    int runs;
    bool sqlite, sequential;
    const char *extra; /* one more option, or NULL */
    const char *extra2; /* and another */
    char dir[64];
    char log[128];
} hub;

static hub g_hub;          /* one per test process: the fini hook cleans it up */
static uint32_t g_ping_ms; /* peers' ping interval; 0: the default */
static bool g_wss;         /* peers connect with wss:// */
static const char *g_ca;   /* and trust this CA file (NULL: the system's) */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void hub_start(hub *h)
{
    char listen[32], data[96], line[512];

    if (!h->dir[0])
        cr_assert_not_null(mkdtemp(strcpy(h->dir, "/tmp/fo-test-client-XXXXXX")));
    h->runs++;
    snprintf(h->log, sizeof(h->log), "%s/hub.%d.log", h->dir, h->runs);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", h->port);
    snprintf(data, sizeof(data), "%s/data", h->dir);
    h->pid = fork();
    cr_assert_geq(h->pid, 0);
    if (h->pid == 0) {
        const char *argv[] = {FO_HUB_BIN,
                              "--listen",
                              listen,
                              "--store",
                              h->sqlite ? "sqlite" : "memory",
                              "--data",
                              data,
                              h->sequential ? "--sequential-ids" : "--log-level=info",
                              h->extra ? h->extra : "--log-level=info",
                              h->extra2 ? h->extra2 : "--log-level=info",
                              NULL};
        int fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        dup2(fd, 1);
        dup2(fd, 2);
        execv(FO_HUB_BIN, (char **)argv);
        _exit(127);
    }
    for (int waited = 0; waited < 15000; waited += 10) {
        FILE *f = fopen(h->log, "r");
        char *p = NULL;
        while (f && !p && fgets(line, sizeof(line), f))
            p = strstr(line, "listening on 127.0.0.1:");
        if (f)
            fclose(f);
        if (p) {
            h->port = atoi(p + strlen("listening on 127.0.0.1:"));
            return;
        }
        cr_assert_eq(waitpid(h->pid, NULL, WNOHANG), 0, "the hub exited at start (log %s)", h->log);
        sleep_ms(10);
    }
    cr_assert_fail("the hub did not start listening in 15 s (log %s)", h->log);
}

static void hub_kill(hub *h, int sig)
{
    int i;

    if (h->pid <= 0)
        return;
    kill(h->pid, sig);
    for (i = 0; i < 1000 && waitpid(h->pid, NULL, WNOHANG) == 0; i++)
        sleep_ms(10);
    if (i == 1000 && kill(h->pid, SIGKILL) == 0) /* stuck: 10 s is far beyond a clean stop */
        waitpid(h->pid, NULL, 0);
    h->pid = 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Stops the hub and fails on sanitizer reports or errors in any of its logs. */
static void hub_finish(hub *h)
{
    char line[512], path[160];
    int r;

    hub_kill(h, SIGTERM);
    for (r = 1; r <= h->runs; r++) {
        snprintf(path, sizeof(path), "%s/hub.%d.log", h->dir, r);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f))
            cr_assert(!strstr(line, "Sanitizer") && !strstr(line, "runtime error") &&
                          !strstr(line, " ERROR "),
                      "hub log %s: %s", path, line);
        if (f)
            fclose(f);
    }
    nftw(h->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    memset(h, 0, sizeof(*h));
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as client.h asks of applications */
}

static void teardown(void)
{
    if (g_hub.pid > 0)
        kill(g_hub.pid, SIGKILL);
    if (g_hub.dir[0])
        nftw(g_hub.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- peers: clients under test ------------------------------------------------------- */

typedef struct peer {
    fo_client *c;
    fo_client_model *m;
    int idx;
    uint64_t ok, creates; /* successful local applies; creates of the no-fail stream */
    uint64_t changes[6], states[4], flush_errors; /* callbacks by reason, by state */
    char presence_session[64], presence[64];      /* the last presence heard: JSON, "" for nil */
    bool has_presence;
    char last_why[256];
} peer;

static void on_state(fo_client *c, fo_client_state s, const char *why, void *data)
{
    peer *p = data;

    p->states[s] += c != NULL;
    if (why)
        snprintf(p->last_why, sizeof(p->last_why), "%s", why);
}

static void on_change(fo_client_model *m, fo_client_change why, const fo_batch *d, void *data)
{
    (void)m, (void)d;
    ((peer *)data)->changes[why]++;
}

static void on_flush(fo_client_model *m, const fo_client_flush_info *info, void *data)
{
    (void)m;
    ((peer *)data)->flush_errors += info->result == NULL;
}

static void on_presence(fo_client_model *m, const char *session, const fo_value *st, void *data)
{
    peer *p = data;
    fo_buf b;

    (void)m;
    fo_buf_init(&b, 0);
    if (st)
        fo_json_write_value(st, FO_JSON_COMPACT, &b);
    snprintf(p->presence, sizeof(p->presence), "%.*s", (int)b.len, b.len ? fo_buf_data(&b) : "");
    snprintf(p->presence_session, sizeof(p->presence_session), "%s", session);
    p->has_presence = true;
    fo_buf_destroy(&b);
}

static void on_error(fo_client *c, const fo_client_error *e, void *data)
{
    (void)c, (void)data;
    cr_log_warn("client error %d: %s", (int)e->code, e->message);
}

static void peer_open(peer *p, uv_loop_t *loop, int port, int idx, fo_id_mode ids)
{
    fo_client_config cfg;
    char url[64];

    memset(p, 0, sizeof(*p));
    p->idx = idx;
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d/v1/ws", g_wss ? "wss" : "ws", port);
    fo_client_config_default(&cfg);
    cfg.url = url;
    cfg.ca_file = g_ca;
    cfg.ids = ids;
    cfg.flush_delay_ms = 3;
    cfg.flush_max_queue = 8;
    cfg.backoff_min_ms = 20;
    cfg.backoff_max_ms = 200;
    if (g_ping_ms)
        cfg.ping_ms = g_ping_ms;
    cfg.cb = (fo_client_callbacks){on_state, on_change, on_flush, on_presence, on_error};
    cfg.data = p;
    cr_assert_eq(fo_client_new(loop, &cfg, &p->c), 0);
    cr_assert_eq(fo_client_subscribe(p->c, "conv", &p->m), 0);
}

/* Runs the loop until pred(arg) holds; false after timeout_ms. */
static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, int timeout_ms)
{
    uv_timer_t tick;
    uint64_t end;
    bool ok;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uv_update_time(loop);
    end = uv_now(loop) + (uint64_t)timeout_ms;
    while (!(ok = pred(arg)) && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

typedef struct group {
    peer *p;
    int n;
} group;

static bool all_ready(void *arg)
{
    group *g = arg;
    for (int i = 0; i < g->n; i++)
        if (!fo_client_model_ready(g->p[i].m))
            return false;
    return true;
}

static bool all_idle(void *arg)
{
    group *g = arg;
    for (int i = 0; i < g->n; i++)
        if (!fo_client_idle(g->p[i].c) || fo_client_get_state(g->p[i].c) != FO_CLIENT_OPEN)
            return false;
    return true;
}

/* `get` through a client, waited for. */
typedef struct got {
    bool done;
    fo_arena a;
    fo_value doc;
    uint64_t count;
    fo_error_code err;
} got;

static void on_got(fo_client *c, const fo_msg *r, void *data)
{
    got *g = data;

    (void)c;
    g->done = true;
    if (r && r->type != FO_MSG_SNAP)
        g->err = r->code ? r->code : FO_ERR_INTERNAL;
    if (!r || r->type != FO_MSG_SNAP)
        return;
    g->count = r->snapshot.command_count;
    cr_assert_eq(fo_value_copy(&g->a, r->snapshot.document, &g->doc, NULL, NULL), 0);
}

static bool got_done(void *arg)
{
    return ((got *)arg)->done;
}

static void hub_get(uv_loop_t *loop, fo_client *c, const char *model, got *g)
{
    memset(g, 0, sizeof(*g));
    fo_arena_init(&g->a, 4096);
    cr_assert_eq(fo_client_get(c, model, false, 0, on_got, g), 0);
    cr_assert(run_until(loop, got_done, g, 10000), "no reply to get");
    cr_assert_eq(g->err, 0);
}

/* Waits until every peer is idle at the hub's count, then checks that each local
 * document equals the hub's `get` (kept in *out when not NULL). Returns the count. */
static uint64_t converge(uv_loop_t *loop, peer *p, int n, got *out)
{
    group g = {p, n};
    got hg;
    int tries, i;

    for (tries = 0; tries < 50; tries++) {
        bool same = true;
        cr_assert(run_until(loop, all_idle, &g, 20000), "clients did not become idle");
        hub_get(loop, p[0].c, "conv", &hg);
        for (i = 0; i < n; i++)
            same = same && fo_client_committed_count(p[i].m) == hg.count;
        if (same && all_idle(&g)) {
            for (i = 0; i < n; i++) {
                cr_assert(fo_value_eq(fo_client_document(p[i].m), &hg.doc),
                          "client %d's document differs from the hub's", i);
                cr_assert_eq(fo_client_count(p[i].m), hg.count);
            }
            if (out)
                *out = hg;
            else
                fo_arena_destroy(&hg.a);
            return hg.count;
        }
        fo_arena_destroy(&hg.a);
        sleep_ms(20);
    }
    cr_assert_fail("clients never reached the hub's count");
    return 0;
}

/* Closes the clients (the loop must close cleanly), then stops the hub and checks its logs. */
static void close_all(uv_loop_t *loop, peer *p, int n)
{
    for (int i = 0; i < n; i++)
        fo_client_close(p[i].c, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(loop), 0);
    if (g_hub.runs)
        hub_finish(&g_hub);
}

/* Starts the hub and n peers on model "conv", and waits for their first snapshots. */
static void start_all(uv_loop_t *loop, peer *p, int n, fo_id_mode ids)
{
    group g = {p, n};

    hub_start(&g_hub);
    uv_loop_init(loop);
    for (int i = 0; i < n; i++)
        peer_open(&p[i], loop, g_hub.port, i, ids);
    cr_assert(run_until(loop, all_ready, &g, 10000));
}

/* ---- random commands ----------------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A key of items, written into buf; false when there is none. */
static bool pick_item(const fo_value *doc, uint64_t *s, char buf[32])
{
    fo_value *items;
    fo_map *m;
    uint32_t want, i, seen = 0;
    char kb[20];
    size_t len;
    fo_arena a;

    fo_arena_init(&a, 64);
    items = fo_map_get(fo_value_as_map(doc), fo_key_new_cstr(&a, "items"));
    fo_arena_destroy(&a);
    if (!items || !(m = fo_value_as_map(items)) || fo_map_count(m) == 0)
        return false;
    want = (uint32_t)(rnd(s) % fo_map_count(m));
    for (i = 0; i < fo_map_len(m); i++) {
        if (fo_map_entries(m)[i].key && seen++ == want) {
            const char *t = fo_key_str(fo_map_entries(m)[i].key, kb, &len);
            snprintf(buf, 32, "%.*s", (int)len, t);
            return true;
        }
    }
    return false;
}

/* Applies a random create/update/delete to p (mostly valid on its local document). With
 * no_fail: only creates of items {c, n} (n unique) and root updates, which cannot fail. */
static void random_command(peer *p, uint64_t *s, int64_t n, bool no_fail)
{
    char cmd[256], k[32];
    fo_client_result res;
    uint64_t r = rnd(s) % 100;

    if (no_fail)
        r = r < 70 ? 0 : 99;
    if (r >= 40 && r < 92 && !pick_item(fo_client_document(p->m), s, k))
        r = 0;
    if (r < 40) /* an item; the container on first use */
        snprintf(cmd, sizeof(cmd),
                 "{\"action\":\"create\",\"path\":[\"items\"],"
                 "\"parentDefault\":{},\"props\":{\"c\":%d,\"n\":%lld}}",
                 p->idx, (long long)n);
    else if (r < 55) /* nested: sequential IDs collide across clients */
        snprintf(cmd, sizeof(cmd),
                 "{\"action\":\"create\",\"path\":[\"items\",\"%s\",\"sub\"],"
                 "\"parentDefault\":{},\"props\":{\"w\":%lld}}",
                 k, (long long)n);
    else if (r < 80)
        snprintf(cmd, sizeof(cmd),
                 "{\"action\":\"update\",\"path\":[\"items\",\"%s\"],"
                 "\"props\":{\"v\":%lld}}",
                 k, (long long)n);
    else if (r < 92)
        snprintf(cmd, sizeof(cmd), "{\"action\":\"delete\",\"path\":[\"items\",\"%s\"]}", k);
    else
        snprintf(cmd, sizeof(cmd), "{\"action\":\"update\",\"props\":{\"r%d\":%lld}}", p->idx % 2,
                 (long long)n);
    cr_assert_eq(fo_client_apply_json(p->m, cmd, strlen(cmd), &res, NULL), 0, "%s", cmd);
    cr_assert(res.ok || !no_fail, "a command that cannot fail failed: %s", res.error);
    p->ok += res.ok;
    p->creates += res.ok && no_fail && r == 0;
}

/* Drives random commands from a timer: `left` of them, one per tick per peer. */
typedef struct driver {
    uv_timer_t t;
    peer *p;
    int n;
    uint64_t seed;
    int64_t left, next;
    bool no_fail;
    void (*each)(struct driver *d); /* optional hook after each tick */
    void *hook_data;
} driver;

static void on_drive(uv_timer_t *t)
{
    driver *d = t->data;
    int k = (int)(rnd(&d->seed) % 3) + 1;

    while (k-- > 0 && d->left > 0) {
        peer *p = &d->p[rnd(&d->seed) % (uint64_t)d->n];
        if (!fo_client_model_ready(p->m))
            continue;
        random_command(p, &d->seed, d->next++, d->no_fail);
        d->left--;
    }
    if (d->each)
        d->each(d);
    if (d->left <= 0)
        uv_timer_stop(t);
}

static bool drive_done(void *arg)
{
    return ((driver *)arg)->left <= 0;
}

static void drive(uv_loop_t *loop, driver *d, int timeout_ms)
{
    uv_timer_init(loop, &d->t);
    d->t.data = d;
    uv_timer_start(&d->t, on_drive, 1, 1);
    cr_assert(run_until(loop, drive_done, d, timeout_ms), "commands not all applied");
    uv_close((uv_handle_t *)&d->t, NULL);
}

/* ---- tests --------------------------------------------------------------------------- */

TestSuite(client, .init = setup, .fini = teardown, .timeout = 120);

Test(client, convergence_with_id_collisions)
{
    uv_loop_t loop;
    peer p[4];
    driver d = {.p = p, .n = 4, .seed = 0x9e3779b97f4a7c15ull, .left = 1200};
    fo_client_model_stats st;
    uint64_t count, total = 0, flushes = 0, synced = 0;

    g_hub.sequential = true; /* IDs collide between clients: the hub remaps them */
    start_all(&loop, p, 4, FO_IDS_SEQUENTIAL);
    drive(&loop, &d, 60000);
    count = converge(&loop, p, 4, NULL);
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
    close_all(&loop, p, 4);
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
    hub_kill(&g_hub, SIGKILL);
    /* Let the clients see the hub gone and retry against a closed port for a while. */
    for (int k = 0; k < 30; k++)
        uv_run(rc->loop, UV_RUN_NOWAIT), sleep_ms(5);
    hub_start(&g_hub);
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

    g_hub.sqlite = true;
    d.each = count_and_restart, d.hook_data = &rc;
    start_all(&loop, p, 3, FO_IDS_RANDOM);
    drive(&loop, &d, 60000);
    cr_assert(rc.killed, "the hub was not restarted");
    cr_assert_geq(rc.in_flight, 1, "no flush in flight at the kill");
    converge(&loop, p, 3, &hg);
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
    close_all(&loop, p, 3);
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

    start_all(&loop, p, 2, FO_IDS_RANDOM);
    /* The flush reaches the hub and is applied; its ack, then the ack of its first resend,
     * are lost with the connection: each resend carries the same seq. */
    fo_client_debug_lose_acks(p[0].m, 2);
    apply_json(&p[0], "{\"action\":\"create\",\"path\":[\"items\"],\"parentDefault\":{}}");
    apply_json(&p[0], "{\"action\":\"update\",\"props\":{\"a\":1}}");
    cr_assert(run_until(&loop, synced, &p[0], 10000));
    apply_json(&p[1], "{\"action\":\"update\",\"props\":{\"b\":2}}");
    apply_json(&p[0], "{\"action\":\"update\",\"props\":{\"a\":3}}");
    count = converge(&loop, p, 2, NULL);
    fo_client_model_stats_get(p[0].m, &st);
    cr_assert_eq(st.resends, 2);
    cr_assert_geq(p[0].states[FO_CLIENT_CLOSED], 2);
    cr_assert_eq(count, p[0].ok + p[1].ok, "applied twice? hub %llu, clients %llu",
                 (unsigned long long)count, (unsigned long long)(p[0].ok + p[1].ok));
    close_all(&loop, p, 2);
}

Test(client, gap_in_pushes_resubscribes_from_the_committed_count)
{
    uv_loop_t loop;
    peer p[2];
    group g = {p, 2};
    fo_client_model_stats st;

    start_all(&loop, p, 2, FO_IDS_RANDOM);
    fo_client_debug_drop_pushes(p[0].m, 1); /* the network "loses" the next push */
    apply_json(&p[1], "{\"action\":\"update\",\"props\":{\"x\":1}}");
    cr_assert(run_until(&loop, synced, &p[1], 10000));
    cr_assert(run_until(&loop, all_idle, &g, 10000));
    cr_assert_eq(fo_client_committed_count(p[0].m), 0, "the dropped push was applied");
    apply_json(&p[1], "{\"action\":\"update\",\"props\":{\"x\":2}}");
    cr_assert_eq(converge(&loop, p, 2, NULL), 2);
    fo_client_model_stats_get(p[0].m, &st);
    cr_assert_eq(st.gaps, 1);
    cr_assert_eq(st.resubscribes, 1);
    cr_assert_geq(p[0].changes[FO_CHANGE_PUSH], 1);
    close_all(&loop, p, 2);
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

    g_ping_ms = 100; /* idle connections ping; the hub answers, nobody drops */
    start_all(&loop, p, 2, FO_IDS_RANDOM);
    fo_arena_init(&a, 256);
    cr_assert_eq(fo_json_read_value("{\"n\":7}", 7, 8, &a, &st, NULL), 0);
    cr_assert_eq(fo_client_set_presence(p[0].m, &st), 0);
    cr_assert(run_until(&loop, saw_presence, &p[1], 10000));
    cr_assert_str_eq(p[1].presence_session, fo_client_session(p[0].c));
    cr_assert_eq(p[0].has_presence, false, "a session hears its own presence");
    /* A later subscriber hears the current presence right after its snapshot. */
    peer_open(&p[2], &loop, g_hub.port, 2, FO_IDS_RANDOM);
    cr_assert(run_until(&loop, saw_presence, &p[2], 10000));
    cr_assert_eq(fo_client_set_presence(p[0].m, NULL), 0);
    cr_assert(run_until(&loop, saw_clear, &p[1], 10000));
    cr_assert(run_until(&loop, saw_clear, &p[2], 10000));
    run_until(&loop, never, NULL, 500); /* idle: only pings */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(p[i].states[FO_CLIENT_CLOSED], 0, "ping: %s", p[i].last_why);
    fo_arena_destroy(&a);
    close_all(&loop, p, 3);
}

Test(client, flush_over_max_frame_is_rejected_and_dropped)
{
    uv_loop_t loop;
    peer p[1];
    fo_client_model_stats st;
    char big[3000];

    g_hub.extra = "--max-frame=1024";
    start_all(&loop, p, 1, FO_IDS_RANDOM);
    snprintf(big, sizeof(big), "{\"action\":\"update\",\"props\":{\"big\":\"%02000d\"}}", 0);
    apply_json(&p[0], big);
    cr_assert(run_until(&loop, synced, &p[0], 10000));
    fo_client_model_stats_get(p[0].m, &st);
    cr_assert_eq(st.rejected, 1);
    cr_assert_eq(p[0].flush_errors, 1);
    cr_assert_eq(p[0].changes[FO_CHANGE_REJECTED], 1);
    cr_assert_eq(fo_map_count(fo_value_as_map(fo_client_document(p[0].m))), 0);
    apply_json(&p[0], "{\"action\":\"update\",\"props\":{\"small\":1}}");
    cr_assert_eq(converge(&loop, p, 1, NULL), 1);
    close_all(&loop, p, 1);
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
    peer_open(&p[0], &loop, 1, 0, FO_IDS_RANDOM); /* nothing listens on port 1 */
    memset(&g, 0, sizeof(g));
    cr_assert_eq(fo_client_get(p[0].c, "conv", false, 0, on_got, &g), 0);
    cr_assert_eq(fo_client_get(p[0].c, "bad name", false, 0, on_got, &g), FO_EINVAL);
    cr_assert(run_until(&loop, three_failures, &p[0], 5000));
    cr_assert(strstr(p[0].last_why, "connection refused"), "why: %s", p[0].last_why);
    cr_assert_geq(p[0].states[FO_CLIENT_CONNECTING], 3);
    cr_assert_eq(p[0].states[FO_CLIENT_OPEN], 0);
    cr_assert_eq(g.done, false);
    close_all(&loop, p, 1);
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
             ">/dev/null 2>&1", key, cert);
    cr_assert_eq(system(cmd), 0, "openssl req failed");
    snprintf(a1, sizeof(a1), "--tls-cert=%s", cert);
    snprintf(a2, sizeof(a2), "--tls-key=%s", key);
    g_hub.extra = a1;
    g_hub.extra2 = a2;
    g_wss = true;
    g_ca = cert;
    unsetenv("FLUSHOUT_CA");
    start_all(&loop, p, 2, FO_IDS_RANDOM);
    apply_json(&p[0], "{\"action\":\"update\",\"props\":{\"over\":\"tls\"}}");
    cr_assert_eq(converge(&loop, p, 2, NULL), 1);
    g_ca = NULL; /* the system's CAs do not know this one */
    peer_open(&p[2], &loop, g_hub.port, 2, FO_IDS_RANDOM);
    cr_assert(run_until(&loop, one_failure, &p[2], 10000));
    cr_assert(strstr(p[2].last_why, "certificate is not trusted: self-signed certificate"),
              "the reason: %s", p[2].last_why);
    cr_assert_eq(fo_client_get_state(p[2].c) == FO_CLIENT_OPEN, false);
    close_all(&loop, p, 3);
    g_wss = false;
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
        {"ws://[::1/x", "url: bad host (ws://HOST[:PORT][/PATH]; an IPv6 address goes in brackets)"},
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
    cr_assert_str_eq(fo_client_config_error(&cfg), "ca_file: cannot load the CA certificates (a "
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

    g_hub.extra = "--flush-rate=2"; /* bursts of 4 flushes, then one every 500 ms */
    start_all(&loop, p, 1, FO_IDS_RANDOM);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    /* Eight flushes in a row: the last four are refused with rate_limited and resent (same
     * seq) by the client itself after the hub's retryAfterMs. */
    for (int i = 0; i < 8; i++) {
        snprintf(json, sizeof(json), "{\"action\":\"update\",\"props\":{\"k%d\":%d}}", i, i);
        apply_json(&p[0], json);
        cr_assert_eq(fo_client_flush(p[0].m), 0);
        cr_assert(run_until(&loop, synced, &p[0], 10000), "flush %d never acked", i);
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    count = converge(&loop, p, 1, NULL);
    fo_client_model_stats_get(p[0].m, &st);
    cr_log_info("8 flushes at --flush-rate 2: %llu refusals resent after retryAfterMs, %llu ms",
                (unsigned long long)st.retry_after,
                (unsigned long long)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 -
                                     t0));
    cr_assert_geq(st.retry_after, 4, "refusals resent after retryAfterMs: %llu",
                  (unsigned long long)st.retry_after);
    cr_assert_eq(st.rejected, 0);
    cr_assert_eq(st.flushes, 8);
    /* Nothing lost, nothing applied twice. */
    cr_assert_eq(count, p[0].ok, "hub %llu commands, client %llu", (unsigned long long)count,
                 (unsigned long long)p[0].ok);
    close_all(&loop, p, 1);
}
