/* clienttest.c - test_client's harness (clienttest.h): the hub as a child process, peers
 * (libflushout-client instances) on one loop, convergence checks and random commands. */
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

#include "proto/json.h"
#include "tests/clienttest.h"

#ifndef FO_HUB_BIN
#error "FO_HUB_BIN (the flushout-hub executable) must be defined by the build"
#endif

/* ---- the hub as a child process ------------------------------------------------------ */

hub ct_hub;          /* one per test process: the fini hook cleans it up */
uint32_t ct_ping_ms; /* peers' ping interval; 0: the default */
bool ct_wss;         /* peers connect with wss:// */
const char *ct_ca;   /* and trust this CA file (NULL: the system's) */

void ct_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void ct_hub_start(hub *h)
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
        ct_sleep_ms(10);
    }
    cr_assert_fail("the hub did not start listening in 15 s (log %s)", h->log);
}

void ct_hub_kill(hub *h, int sig)
{
    int i;

    if (h->pid <= 0)
        return;
    kill(h->pid, sig);
    for (i = 0; i < 1000 && waitpid(h->pid, NULL, WNOHANG) == 0; i++)
        ct_sleep_ms(10);
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

    ct_hub_kill(h, SIGTERM);
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

void ct_setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as client.h asks of applications */
}

void ct_teardown(void)
{
    if (ct_hub.pid > 0)
        kill(ct_hub.pid, SIGKILL);
    if (ct_hub.dir[0])
        nftw(ct_hub.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- peers: clients under test ------------------------------------------------------- */

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

void ct_peer_open(peer *p, uv_loop_t *loop, int port, int idx, fo_id_mode ids)
{
    fo_client_config cfg;
    char url[64];

    memset(p, 0, sizeof(*p));
    p->idx = idx;
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d/v1/ws", ct_wss ? "wss" : "ws", port);
    fo_client_config_default(&cfg);
    cfg.url = url;
    cfg.ca_file = ct_ca;
    cfg.ids = ids;
    cfg.flush_delay_ms = 3;
    cfg.flush_max_queue = 8;
    cfg.backoff_min_ms = 20;
    cfg.backoff_max_ms = 200;
    if (ct_ping_ms)
        cfg.ping_ms = ct_ping_ms;
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

bool ct_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, int timeout_ms)
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

static bool all_ready(void *arg)
{
    group *g = arg;
    for (int i = 0; i < g->n; i++)
        if (!fo_client_model_ready(g->p[i].m))
            return false;
    return true;
}

bool ct_all_idle(void *arg)
{
    group *g = arg;
    for (int i = 0; i < g->n; i++)
        if (!fo_client_idle(g->p[i].c) || fo_client_get_state(g->p[i].c) != FO_CLIENT_OPEN)
            return false;
    return true;
}

void ct_on_got(fo_client *c, const fo_msg *r, void *data)
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
    cr_assert_eq(fo_client_get(c, model, false, 0, ct_on_got, g), 0);
    cr_assert(ct_run_until(loop, got_done, g, 10000), "no reply to get");
    cr_assert_eq(g->err, 0);
}

/* Waits until every peer is idle at the hub's count, then checks that each local
 * document equals the hub's `get` (kept in *out when not NULL). Returns the count. */
uint64_t ct_converge(uv_loop_t *loop, peer *p, int n, got *out)
{
    group g = {p, n};
    got hg;
    int tries, i;

    for (tries = 0; tries < 50; tries++) {
        bool same = true;
        cr_assert(ct_run_until(loop, ct_all_idle, &g, 20000), "clients did not become idle");
        hub_get(loop, p[0].c, "conv", &hg);
        for (i = 0; i < n; i++)
            same = same && fo_client_committed_count(p[i].m) == hg.count;
        if (same && ct_all_idle(&g)) {
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
        ct_sleep_ms(20);
    }
    cr_assert_fail("clients never reached the hub's count");
    return 0;
}

/* Closes the clients (the loop must close cleanly), then stops the hub and checks its logs. */
void ct_close_all(uv_loop_t *loop, peer *p, int n)
{
    for (int i = 0; i < n; i++)
        fo_client_close(p[i].c, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(loop), 0);
    if (ct_hub.runs)
        hub_finish(&ct_hub);
}

/* Starts the hub and n peers on model "conv", and waits for their first snapshots. */
void ct_start_all(uv_loop_t *loop, peer *p, int n, fo_id_mode ids)
{
    group g = {p, n};

    ct_hub_start(&ct_hub);
    uv_loop_init(loop);
    for (int i = 0; i < n; i++)
        ct_peer_open(&p[i], loop, ct_hub.port, i, ids);
    cr_assert(ct_run_until(loop, all_ready, &g, 10000));
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

void ct_drive(uv_loop_t *loop, driver *d, int timeout_ms)
{
    uv_timer_init(loop, &d->t);
    d->t.data = d;
    uv_timer_start(&d->t, on_drive, 1, 1);
    cr_assert(ct_run_until(loop, drive_done, d, timeout_ms), "commands not all applied");
    uv_close((uv_handle_t *)&d->t, NULL);
}
