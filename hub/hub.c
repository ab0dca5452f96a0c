#include "hub/hub.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hub/follow.h"
#include "hub/peers.h"
#include "hub/http.h"
#include "hub/log.h"
#include "hub/model.h"
#include "hub/reload.h"
#include "hub/session.h"
#include "hub/wsconn.h"

#define DRAIN_TIMEOUT_MS 10000
#define CLOSE_TIMEOUT_MS 3000
/* Writes per io_uring submission: more connections with output in one pass take two. */
#define SENDQ_ENTRIES 4096

uint64_t fo_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t fo_hub_now_ms(const fo_hub *h)
{
    return uv_now(&h->loop);
}

static const struct lws_protocols *protocols(void)
{
    /* lws serves HTTP only (the listener keeps WebSocket upgrades on /v1/ws for the hub
     * and gives lws everything else); the per-connection slot is an fo_http_req. */
    static const struct lws_protocols list[] = {
        {"http", fo_http_callback, sizeof(void *), 0, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    return list;
}

/* Released batches are durable: history the budget has no room for may go. */
static void on_released(fo_hub *h)
{
    if (h->hot_bytes > h->cfg.memory_budget)
        fo_model_evict(h);
}

static void on_sub_closed(fo_sub *sub)
{
    fo_model_unsubscribe(sub, true);
}

static void set_phase(fo_hub *h, fo_hub_phase p)
{
    h->phase = p;
    h->phase_since_ms = fo_hub_now_ms(h);
}

/* Stops following the stream (its handle closes with the loop's next run). */
static void stop_follow(fo_hub *h)
{
    fo_follow_stop(h->follow);
    h->follow = NULL;
}

static void on_store_closed(void *data)
{
    fo_hub *h = data;

    h->store = NULL;
    stop_follow(h);
    /* First destroy: lws starts closing its handles on our loop; uv_run then returns
     * once they and ours are closed, and fo_hub_run destroys the context for good. */
    lws_context_destroy(h->lws);
    uv_close((uv_handle_t *)&h->sigterm, NULL);
    uv_close((uv_handle_t *)&h->sigint, NULL);
    uv_close((uv_handle_t *)&h->sighup, NULL);
    uv_close((uv_handle_t *)&h->check, NULL);
    uv_close((uv_handle_t *)&h->tick, NULL);
    uv_close((uv_handle_t *)&h->kick, NULL);
    uv_close((uv_handle_t *)&h->prepare, NULL);
}

static void stop(fo_hub *h)
{
    set_phase(h, FO_HUB_STOPPING);
    fo_listener_stop(&h->listener);
    fo_relay_close_all(h);
    fo_console_stop(h);
    while (h->sessions) /* those that did not finish their close handshake in time */
        fo_session_end(h->sessions);
    FO_LOG(FO_LOG_INFO, "stopping: closing the store");
    fo_peers_stop(h->peers); /* before the models: forwarded flushes hold them */
    h->peers = NULL;
    fo_model_free_all(h);
    fo_commit_destroy(&h->commit);
    fo_arena_destroy(&h->flush_arena);
    fo_buf_destroy(&h->flush_buf);
    fo_frame_scratch_free();
    if (!h->store || fo_store_close(h->store, on_store_closed, h) != 0)
        on_store_closed(h);
}

static bool drained(fo_hub *h)
{
    fo_store_stats st;
    uint64_t queued, depth;

    fo_model_gauges(h, &queued, &depth);
    fo_store_stats_get(h->store, &st);
    return fo_commit_idle(h) && queued == 0 && st.queued == 0;
}

static void on_tick(uv_timer_t *t)
{
    fo_hub *h = t->data;
    uint64_t waited = fo_hub_now_ms(h) - h->phase_since_ms;
    fo_session *s;

    fo_listener_sweep(&h->listener, fo_hub_now_ms(h));
    fo_session_sweep(h);
    fo_conn_rate_sweep(h);
    switch (h->phase) {
    case FO_HUB_RUNNING: fo_model_evict(h); break;
    case FO_HUB_DRAINING:
        if (drained(h) || waited > DRAIN_TIMEOUT_MS) {
            if (!drained(h))
                FO_LOG(FO_LOG_WARN, "drain timed out: %zu replies still pending",
                       h->commit.pending);
            FO_LOG(FO_LOG_INFO, "closing %llu connections with 1001",
                   (unsigned long long)h->nsessions);
            set_phase(h, FO_HUB_CLOSING);
            for (s = h->sessions; s; s = s->next)
                fo_session_close(s, LWS_CLOSE_STATUS_GOINGAWAY);
            fo_session_flush_dirty(h);
        }
        break;
    case FO_HUB_CLOSING:
        if (h->nsessions == 0 || waited > CLOSE_TIMEOUT_MS)
            stop(h);
        break;
    case FO_HUB_STOPPING: break;
    }
}

static void on_signal(uv_signal_t *sig, int signum)
{
    fo_hub *h = sig->data;

    if (h->phase == FO_HUB_RUNNING) {
        FO_LOG(FO_LOG_INFO, "%s: finishing in-flight flushes", strsignal(signum));
        set_phase(h, FO_HUB_DRAINING);
        uv_timer_start(&h->tick, on_tick, 20, 20);
    } else if (h->phase < FO_HUB_STOPPING) {
        FO_LOG(FO_LOG_WARN, "%s again: stopping now", strsignal(signum));
        stop(h);
    }
}

static void rule_limits(const fo_hub_config *c, fo_rules_limits *l)
{
    l->instructions = c->rule_instructions;
    l->time_ms = c->rule_time_ms;
    l->memory = c->rule_memory;
}

/* SIGHUP: tokens, keys, origins and rules again (reload.h); connections stay open. */
static void on_sighup(uv_signal_t *sig, int signum)
{
    (void)signum;
    fo_hub_reload(sig->data);
}

void fo_hub_kick(uv_idle_t *idle)
{
    (void)idle;
}

/* Before the loop polls: the turn that ends here ran for (now - last) minus what libuv
 * spent waiting in poll meanwhile (UV_METRICS_IDLE_TIME). */
static void on_prepare(uv_prepare_t *p)
{
    fo_hub *h = p->data;
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(&h->loop), busy;

    if (h->turn_ns) {
        busy = now - h->turn_ns - (idle - h->turn_idle_ns);
        if (busy > now - h->turn_ns) /* idle counted past our clock: nothing ran */
            busy = 0;
        fo_hist_add(&h->metrics.loop_busy, (double)busy / 1e9);
        fo_overload_turn(h, busy);
        h->metrics.loop_busy_ns += busy;
        if (busy > h->metrics.loop_busy_max_ns)
            h->metrics.loop_busy_max_ns = busy;
    }
    h->turn_ns = now;
    h->turn_idle_ns = idle;
}

/* End of every loop turn: what was applied goes to the store as one group, and every
 * session that queued frames writes them (corked: one write per connection per turn). */
static void on_check(uv_check_t *c)
{
    fo_hub *h = c->data;

    h->metrics.loop_turns++;
    /* With the memory store a commit settles at once: what it releases (acks, pushes, the
     * next queued flush and its commit) runs here, bounded, before the writes. */
    for (int i = 0; i < 16; i++) {
        fo_commit_turn(h);
        if (!fo_store_run_completions(h->store))
            break;
    }
    fo_session_flush_dirty(h);
    if (h->commit.open)
        uv_idle_start(&h->kick, fo_hub_kick); /* a group opened by a late callback */
}

/* --cluster: the JetStream store, and the follower of other hubs' appends. */
static int open_cluster(fo_hub *h, fo_store_options *opt)
{
    fo_err_info err;
    char why[512];
    int rc;

    memset(&err, 0, sizeof(err));
    if (fo_follow_new(h, &h->follow)) {
        FO_LOG(FO_LOG_ERROR, "--cluster: out of memory");
        return FO_HUB_EXIT_FAILED;
    }
    opt->log_end = fo_follow_log_end;
    opt->log_end_ctx = h->follow;
    rc = fo_store_open(&h->loop, FO_STORE_NATS, h->cfg.cluster, opt, &h->store, &err);
    if (rc) {
        FO_LOG(FO_LOG_ERROR, "cannot open the nats store (--cluster %s): %s", h->cfg.cluster,
               err.msg[0] ? err.msg : fo_store_strerror(rc));
        stop_follow(h);
        uv_run(&h->loop, UV_RUN_DEFAULT);
        return FO_HUB_EXIT_FAILED;
    }
    if ((rc = fo_follow_start(h->follow, h->cfg.cluster, why, sizeof(why)))) {
        FO_LOG(FO_LOG_ERROR, "--cluster %s: %s", h->cfg.cluster, why);
        stop_follow(h);
        fo_store_close(h->store, NULL, NULL);
        h->store = NULL;
        uv_run(&h->loop, UV_RUN_DEFAULT);
        return FO_HUB_EXIT_FAILED;
    }
    if ((rc = fo_peers_start(h, h->cfg.cluster, &h->peers, why, sizeof(why)))) {
        FO_LOG(FO_LOG_ERROR, "--cluster %s: %s", h->cfg.cluster, why);
        fo_peers_stop(h->peers);
        h->peers = NULL;
        stop_follow(h);
        fo_store_close(h->store, NULL, NULL);
        h->store = NULL;
        uv_run(&h->loop, UV_RUN_DEFAULT);
        return FO_HUB_EXIT_FAILED;
    }
    FO_LOG(FO_LOG_INFO, "store: nats (JetStream stream FLUSHOUT) at %s, following other hubs' "
           "appends", h->cfg.cluster);
    return 0;
}

/* Opens the store; returns 0 or the exit code (FO_HUB_EXIT_*). */
static int open_store(fo_hub *h)
{
    fo_err_info err;
    fo_store_options opt;
    struct stat sb;
    bool sqlite, existed;
    int rc;

    fo_store_options_default(&opt);
    if (h->cfg.memory_budget / 32 < opt.cache_bytes)
        opt.cache_bytes = h->cfg.memory_budget / 32; /* the store counts in the budget too */
    memset(&err, 0, sizeof(err));
    if (h->cfg.cluster[0])
        return open_cluster(h, &opt);
    sqlite = strcmp(h->cfg.store, "sqlite") == 0;
    existed = stat(h->cfg.data_dir, &sb) == 0;
    rc = fo_store_open(&h->loop, fo_store_kind_parse(h->cfg.store), h->cfg.data_dir, &opt,
                       &h->store, &err);
    if (rc) {
        FO_LOG(FO_LOG_ERROR, "cannot open the %s store in %s: %s", h->cfg.store,
               h->cfg.data_dir, err.msg[0] ? err.msg : fo_store_strerror(rc));
        return rc == FO_STORE_EBUSY ? FO_HUB_EXIT_LOCKED : FO_HUB_EXIT_DATA_DIR;
    }
    if (sqlite && !existed)
        FO_LOG(FO_LOG_INFO, "created the data dir %s", h->cfg.data_dir);
    FO_LOG(FO_LOG_INFO, "store: %s%s%s", h->cfg.store, sqlite ? " in " : "",
           sqlite ? h->cfg.data_dir : "");
    return 0;
}

/* A folder a flag names must exist at start: a typo would otherwise serve 404s silently. */
static int check_dir(const char *flag, const char *dir)
{
    struct stat st;

    if (!dir[0])
        return 0;
    if (stat(dir, &st) != 0) {
        FO_LOG(FO_LOG_ERROR, "%s %s: %s", flag, dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        FO_LOG(FO_LOG_ERROR, "%s %s: not a directory", flag, dir);
        return -1;
    }
    return 0;
}

static int start_lws(fo_hub *h)
{
    struct lws_context_creation_info info;
    void *loops[1] = {&h->loop};

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 * 0;
    info.foreign_loops = loops;
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* the listener accepts, lws adopts */
    info.protocols = protocols();
    info.user = h;
    info.vhost_name = "default";
    info.ka_time = 60;
    info.ka_probes = 3;
    info.ka_interval = 10;
    info.timeout_secs = 30;
    if (fo_listener_start(&h->listener, h, h->cfg.host, h->cfg.port))
        return -1;
    if (!(h->lws = lws_create_context(&info)) ||
        !(h->vhost = lws_get_vhost_by_name(h->lws, "default"))) {
        FO_LOG(FO_LOG_ERROR, "cannot start libwebsockets (is its libuv event library, "
               "libwebsockets-evlib-uv, installed?)");
        fo_listener_stop(&h->listener);
        return -1;
    }
    h->port = h->listener.port;
    return 0;
}

int fo_hub_run(const fo_hub_config *cfg)
{
    fo_hub *h = calloc(1, sizeof(*h));
    char err[256];
    int rc = 1;

    if (!h)
        return 1;
    h->cfg = *cfg;
    fo_log_threshold = (fo_log_level)cfg->log_level;
    fo_log_output = (fo_log_format)cfg->log_format;
    fo_log_route_lws();
    signal(SIGPIPE, SIG_IGN);
    fo_wire_limits_default(&h->limits);
    h->limits.max_frame = cfg->max_frame;
    fo_strmap_init(&h->models);
    fo_limits_init(h);
    fo_commit_init(&h->commit);
    fo_arena_init(&h->flush_arena, 16384);
    fo_buf_init(&h->flush_buf, 0);
    h->commit.released = on_released;
    h->session_port = (fo_session_port){fo_peers_request, fo_model_catch_up, on_sub_closed};
    if (uv_loop_init(&h->loop)) {
        free(h);
        return 1;
    }
    uv_loop_configure(&h->loop, UV_METRICS_IDLE_TIME); /* the loop's busy time (on_prepare) */
    if (check_dir("--static", cfg->static_dir) || check_dir("--console-dir", cfg->console_dir))
        goto out_loop;
    if (cfg->tls_cert[0]) {
        char terr[1400];
        if (!(h->tls = fo_tls_ctx_server(cfg->tls_cert, cfg->tls_key, terr, sizeof(terr)))) {
            FO_LOG(FO_LOG_ERROR, "%s", terr);
            rc = 2; /* a bad flag value, as the parser's */
            goto out_loop;
        }
    }
    {
        fo_auth_options ao = {cfg->auth_file, cfg->jwt_secret_file, cfg->jwt_public_key};
        if (fo_auth_configured(&ao)) {
            if (!(h->auth = fo_auth_load(&ao, err, sizeof(err)))) {
                FO_LOG(FO_LOG_ERROR, "%s", err);
                goto out_loop;
            }
            fo_auth_describe(h->auth, err, sizeof(err));
            FO_LOG(FO_LOG_INFO, "%s", err);
        }
    }
    if (cfg->interceptors[0]) {
        fo_rules_limits lim;
        char rerr[512];
        rule_limits(cfg, &lim);
        if (!(h->rules = fo_rules_load(cfg->interceptors, &lim, rerr, sizeof(rerr)))) {
            FO_LOG(FO_LOG_ERROR, "--interceptors: %s", rerr);
            goto out_loop;
        }
        FO_LOG(FO_LOG_INFO, "interceptors: %u rules from %s", fo_rules_count(h->rules),
               cfg->interceptors);
    }
    if ((rc = open_store(h)) != 0)
        goto out_loop;
    rc = FO_HUB_EXIT_FAILED;
    if (start_lws(h)) {
        fo_peers_stop(h->peers);
        h->peers = NULL;
        stop_follow(h);
        fo_store_close(h->store, NULL, NULL);
        uv_run(&h->loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    if (!cfg->io_uring) {
        FO_LOG(FO_LOG_INFO, "socket writes: one send() per connection (--io-uring=false)");
    } else {
        const char *why;
        if ((h->sendq = fo_sendq_open(SENDQ_ENTRIES, fo_wsconn_sent, &why)))
            FO_LOG(FO_LOG_INFO, "socket writes: io_uring, one submission per pass");
        else
            FO_LOG(FO_LOG_WARN, "socket writes: one send() per connection (%s)", why);
    }
    uv_signal_init(&h->loop, &h->sigterm);
    uv_signal_init(&h->loop, &h->sigint);
    uv_signal_init(&h->loop, &h->sighup);
    uv_check_init(&h->loop, &h->check);
    uv_timer_init(&h->loop, &h->tick);
    uv_idle_init(&h->loop, &h->kick);
    uv_prepare_init(&h->loop, &h->prepare);
    h->sigterm.data = h->sigint.data = h->sighup.data = h->check.data = h->tick.data = h->kick.data = h;
    h->prepare.data = h;
    uv_prepare_start(&h->prepare, on_prepare);
    fo_console_start(h);
    uv_signal_start(&h->sigterm, on_signal, SIGTERM);
    uv_signal_start(&h->sigint, on_signal, SIGINT);
    uv_signal_start(&h->sighup, on_sighup, SIGHUP);
    uv_check_start(&h->check, on_check);
    uv_timer_start(&h->tick, on_tick, 1000, 1000);
    FO_LOG(FO_LOG_INFO, "listening on %s:%d (%s://%s:%d/v1/ws, store %s, history %u)",
           cfg->host, h->port, h->tls ? "wss" : "ws", cfg->host, h->port,
           cfg->cluster[0] ? "nats" : cfg->store,
           cfg->history);

    uv_run(&h->loop, UV_RUN_DEFAULT);

    lws_context_destroy(h->lws); /* second call: frees the context */
    h->lws = NULL;
    rc = 0;
out_loop:
    if (uv_loop_close(&h->loop) != 0) {
        FO_LOG(FO_LOG_ERROR, "the loop still had handles at exit");
        rc = rc ? rc : 1;
    } else {
        FO_LOG(FO_LOG_INFO, "stopped");
    }
    fo_auth_free(h->auth);
    fo_rules_free(h->rules);
    fo_tls_ctx_free(h->tls);
    fo_strmap_destroy(&h->models);
    fo_limits_destroy(h);
    fo_sendq_close(h->sendq);
    free(h->wbuf);
    free(h);
    return rc;
}
