/* flushout-bench: load generator for flushout-hub (wire contract flushout.v1).
 * Phases, timers and setup here; options in opts.c, the protocol of one connection in
 * conn.c, the WebSocket client in ws.c, the output in report.c. */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen/lg.h"

#define CONNECT_TIMEOUT_MS 120000

/* ---- phases ---------------------------------------------------------------------------- */

static void start_close(fo_lg *lg);
static void on_tick(uv_timer_t *t);

bool fo_lg_sending(const fo_lg *lg)
{
    return lg->phase == FO_LG_WARMUP || lg->phase == FO_LG_MEASURE;
}

static void connect_more(fo_lg *lg)
{
    while (lg->phase == FO_LG_CONNECT && lg->in_connect < lg->o.connect_concurrency &&
           lg->next_connect < lg->nconns) {
        fo_lg_conn *c = &lg->conns[lg->next_connect++];
        int rc = fo_lg_conn_start(lg, c);
        if (rc) {
            fo_lg_error(lg, c, FO_LGE_CONNECT, "cannot open a socket: %s", uv_strerror(rc));
            lg->connect_failed++;
            c->state = FO_LGC_CLOSED;
            lg->closed++;
            continue;
        }
        lg->in_connect++;
    }
}

static void on_scraped(fo_scrape *s, void *arg)
{
    fo_lg *lg = arg;

    if (lg->scraping == 1)
        lg->m0 = s->out;
    else
        lg->m1 = s->out;
    lg->scraping = 0;
    lg->scrape_busy = false;
}

static void scrape(fo_lg *lg, int slot)
{
    if (lg->scrape_busy)
        return;
    lg->scraping = slot;
    if (fo_scrape_start(&lg->loop, &lg->scrape, (const struct sockaddr *)&lg->dst[0],
                        lg->o.urls[0].host, "/metrics", 2000, on_scraped, lg) == 0)
        lg->scrape_busy = true;
}

static void end_measure(uv_timer_t *t)
{
    fo_lg *lg = t->data;

    if (lg->phase != FO_LG_MEASURE)
        return;
    fo_lg_counters_take(lg, &lg->w1);
    fo_proc_sample_read(lg->hub_pid, &lg->p1);
    if (!lg->o.idle)
        scrape(lg, 2);
    lg->phase = FO_LG_DRAIN;
    lg->t_phase = uv_hrtime();
    uv_poll_stop(&lg->tpoll);
    uv_timer_start(&lg->tick, on_tick, 10, 10);
}

static void start_measure(uv_timer_t *t)
{
    fo_lg *lg = t->data;

    lg->phase = FO_LG_MEASURE;
    lg->t_phase = uv_hrtime();
    fo_hist_init(&lg->ack);
    fo_hist_init(&lg->push);
    fo_hist_init(&lg->lag);
    fo_lg_counters_take(lg, &lg->w0);
    fo_proc_sample_read(lg->hub_pid, &lg->p0);
    if (!lg->o.idle)
        scrape(lg, 1);
    fo_lg_storm_arm(lg);
    uv_timer_start(&lg->phase_timer, end_measure, (uint64_t)(lg->o.duration * 1000), 0);
}

void fo_lg_on_writer_done(fo_lg *lg, fo_lg_conn *c)
{
    (void)c;
    if (++lg->writers_done < lg->nwriters)
        return;
    /* Every writer has sent its --flushes and had them acked: the window ends now. */
    if (lg->phase == FO_LG_WARMUP) {
        uv_timer_stop(&lg->phase_timer);
        start_measure(&lg->phase_timer);
    }
    if (lg->phase == FO_LG_MEASURE) {
        uv_timer_stop(&lg->phase_timer);
        end_measure(&lg->phase_timer);
    }
}

static void on_tick(uv_timer_t *t)
{
    fo_lg *lg = t->data;
    uint64_t now = uv_hrtime();

    if (lg->phase == FO_LG_DRAIN &&
        (lg->inflight == 0 || now - lg->t_phase > (uint64_t)(lg->o.drain * 1e9)) &&
        (!lg->scrape_busy || now - lg->t_phase > 3000000000ULL))
        start_close(lg);
}

/* Open loop: a timerfd armed at the next flush's due time, to the nanosecond (a uv_timer
 * has millisecond resolution, which would add up to 1 ms of our own lateness to every
 * latency measured from the intended send time). */
static void arm_schedule(fo_lg *lg, uint64_t due)
{
    struct itimerspec its;

    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(due / 1000000000ULL);
    its.it_value.tv_nsec = (long)(due % 1000000000ULL);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1; /* zero would disarm */
    timerfd_settime(lg->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_schedule(uv_poll_t *p, int status, int events)
{
    fo_lg *lg = p->data;
    uint64_t now = uv_hrtime(), expirations, due;

    (void)status, (void)events;
    if (read(lg->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        return;
    if (!fo_lg_sending(lg) || !lg->nwriters)
        return;
    for (;;) {
        fo_lg_conn *c;
        due = lg->ol_start + (uint64_t)((double)lg->ol_n * 1e9 / lg->o.rate);
        if (due > now)
            break;
        c = &lg->conns[lg->writers[lg->ol_n % lg->nwriters]];
        lg->ol_n++;
        if (lg->phase == FO_LG_MEASURE)
            fo_hist_record(&lg->lag, now - due);
        fo_lg_conn_due(c, due);
    }
    arm_schedule(lg, due);
}

static void start_load(fo_lg *lg)
{
    uint32_t i;

    lg->phase = FO_LG_WARMUP;
    lg->t_phase = uv_hrtime();
    if (!lg->o.idle) {
        if (lg->o.rate > 0) {
            lg->ol_start = uv_hrtime();
            lg->ol_n = 0;
            uv_poll_start(&lg->tpoll, UV_READABLE, on_schedule);
            arm_schedule(lg, lg->ol_start);
        } else {
            for (i = 0; i < lg->nwriters; i++) {
                fo_lg_conn *c = &lg->conns[lg->writers[i]];
                if (c->state == FO_LGC_READY && fo_lg_conn_flush(c, uv_hrtime()))
                    fo_lg_error(lg, c, FO_LGE_LOCAL, "cannot send a flush");
            }
        }
    }
    if (lg->o.warmup > 0 && !lg->o.idle)
        uv_timer_start(&lg->phase_timer, start_measure, (uint64_t)(lg->o.warmup * 1000), 0);
    else
        start_measure(&lg->phase_timer);
}

static void maybe_start(fo_lg *lg)
{
    if (lg->phase == FO_LG_CONNECT && lg->next_connect == lg->nconns && lg->in_connect == 0) {
        if (lg->o.progress)
            fprintf(stderr, "flushout-bench: %u of %u connections ready (%u failed) in %.2f s\n",
                    lg->ready, lg->nconns, lg->connect_failed,
                    (double)(uv_hrtime() - lg->t_phase) / 1e9);
        if (lg->ready == 0)
            start_close(lg);
        else
            start_load(lg);
    }
}

void fo_lg_on_ready(fo_lg *lg, fo_lg_conn *c)
{
    bool late = fo_lg_sending(lg);

    c->was_ready = true;
    lg->ready++;
    if (lg->ready > lg->ready_max)
        lg->ready_max = lg->ready;
    lg->in_connect--;
    connect_more(lg);
    maybe_start(lg);
    /* A connection that became ready after the start still joins a closed loop. */
    if (late && c->writer && lg->o.rate <= 0 && !lg->o.idle)
        fo_lg_conn_flush(c, uv_hrtime());
}

static void finish(fo_lg *lg)
{
    lg->phase = FO_LG_DONE;
    uv_timer_stop(&lg->tick);
    uv_timer_stop(&lg->second);
    uv_timer_stop(&lg->phase_timer);
    uv_timer_stop(&lg->storm.timer);
    uv_poll_stop(&lg->tpoll);
    uv_stop(&lg->loop);
}

void fo_lg_on_closed(fo_lg *lg, fo_lg_conn *c, int status)
{
    (void)status;
    lg->closed++;
    if (!c->was_ready) {
        lg->in_connect--;
        if (lg->phase == FO_LG_CONNECT) {
            connect_more(lg);
            maybe_start(lg);
        }
    } else {
        lg->ready--;
    }
    if (lg->phase == FO_LG_CLOSE && lg->closed == lg->next_connect)
        finish(lg);
    else if (lg->phase < FO_LG_CLOSE && lg->phase != FO_LG_CONNECT && lg->ready == 0)
        start_close(lg); /* nothing left to drive */
}

static void abort_all(uv_timer_t *t)
{
    fo_lg *lg = t->data;
    uint32_t i;

    for (i = 0; i < lg->next_connect; i++)
        if (lg->conns[i].state != FO_LGC_CLOSED)
            fo_ws_abort(&lg->conns[i].ws);
}

static void start_close(fo_lg *lg)
{
    uint32_t i, j;

    if (lg->phase >= FO_LG_CLOSE)
        return;
    if (lg->phase < FO_LG_DRAIN) { /* interrupted or everything closed: report so far */
        fo_lg_counters_take(lg, &lg->w1);
        fo_proc_sample_read(lg->hub_pid, &lg->p1);
        if (lg->phase < FO_LG_MEASURE)
            lg->w0 = lg->w1;
    }
    lg->unacked_at_end = lg->inflight;
    lg->backlog_at_end = lg->backlog;
    for (i = 0; i < lg->next_connect; i++) {
        fo_lg_conn *c = &lg->conns[i];
        for (j = 0; j < c->fl_len; j++) {
            fo_lg_flight *f = &c->fl[(c->fl_head + j) % c->fl_cap];
            fo_lg_error(lg, c, FO_LGE_UNACKED,
                        "no ack for flush seq %llu within %.1f s after the window "
                        "(sent %.3f s before the end of the run)",
                        (unsigned long long)f->seq, lg->o.drain,
                        (double)(uv_hrtime() - f->t_intended) / 1e9);
        }
    }
    lg->phase = FO_LG_CLOSE;
    uv_timer_stop(&lg->tick);
    uv_poll_stop(&lg->tpoll);
    for (i = 0; i < lg->next_connect; i++)
        if (lg->conns[i].state != FO_LGC_CLOSED)
            fo_ws_close(&lg->conns[i].ws, 1000);
    uv_timer_start(&lg->phase_timer, abort_all, 2000, 0);
    if (lg->closed == lg->next_connect)
        finish(lg);
}

static void on_second(uv_timer_t *t)
{
    fo_lg *lg = t->data;

    if (lg->o.progress)
        fo_lg_report_progress(lg);
    if (lg->phase == FO_LG_MEASURE && lg->ack_sec.count && lg->nsec < FO_LG_MAX_SECS) {
        lg->sec_p50[lg->nsec] = fo_hist_percentile(&lg->ack_sec, 50);
        lg->sec_p99[lg->nsec++] = fo_hist_percentile(&lg->ack_sec, 99);
    }
    fo_hist_init(&lg->ack_sec);
    if (lg->phase == FO_LG_CONNECT &&
        uv_hrtime() - lg->t_phase > (uint64_t)CONNECT_TIMEOUT_MS * 1000000) {
        fo_lg_error(lg, NULL, FO_LGE_CONNECT,
                    "%u connection(s) not ready after %d s; going on without them", lg->in_connect,
                    CONNECT_TIMEOUT_MS / 1000);
        lg->next_connect = lg->nconns;
        lg->in_connect = 0;
        maybe_start(lg);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    fo_lg *lg = s->data;

    (void)signum;
    if (lg->phase == FO_LG_MEASURE)
        end_measure(&lg->phase_timer);
    else if (lg->phase < FO_LG_CLOSE)
        start_close(lg);
    else
        abort_all(&lg->phase_timer);
}

/* ---- setup ----------------------------------------------------------------------------- */

/* Every URL's address, once: lg->dst[j] for o.urls[j]. */
static int resolve(fo_lg *lg)
{
    for (uint32_t j = 0; j < lg->o.nurls; j++) {
        const fo_lg_url *u = &lg->o.urls[j];
        struct addrinfo hints, *res = NULL;
        char port[16];

        snprintf(port, sizeof(port), "%d", u->port);
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(u->hostname, port, &hints, &res) != 0 || !res) {
            fprintf(stderr, "flushout-bench: cannot resolve '%s'\n", u->hostname);
            return -1;
        }
        memcpy(&lg->dst[j], res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
    }
    return 0;
}

/* Whether the first URL's hub runs on this machine (its pid can be looked up). */
static bool local_dst(const fo_lg *lg)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)&lg->dst[0];

    if (lg->dst[0].ss_family == AF_INET)
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    return lg->dst[0].ss_family == AF_INET6; /* ::1 mostly; /proc decides */
}

static int setup(fo_lg *lg)
{
    struct rlimit rl;
    uint32_t i, per;

    /* 10k connections need more than the default soft limit of file descriptors. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < lg->o.connections + 64)
        fprintf(stderr,
                "flushout-bench: warning: only %llu file descriptors for %u "
                "connections\n",
                (unsigned long long)rl.rlim_cur, lg->o.connections);
    if (resolve(lg))
        return -1;
    lg->hub_pid = lg->o.hub_pid   ? lg->o.hub_pid
                  : local_dst(lg) ? (int)fo_proc_find_listener(lg->o.urls[0].port)
                                  : 0;
    fo_proc_sample_read(lg->hub_pid, &lg->p_base);
    lg->nconns = lg->o.connections;
    lg->conns = calloc(lg->nconns, sizeof(*lg->conns));
    lg->writers = calloc(lg->nconns, sizeof(*lg->writers));
    lg->model_names = calloc(lg->o.models, sizeof(*lg->model_names));
    lg->payload = malloc(lg->o.payload + 1);
    if (!lg->conns || !lg->writers || !lg->model_names || !lg->payload)
        return -1;
    for (i = 0; i < lg->o.payload; i++)
        lg->payload[i] = (char)('a' + i % 26);
    for (i = 0; i < lg->o.models; i++) {
        char name[96];
        snprintf(name, sizeof(name), "%s%u", lg->o.model_prefix, i);
        if (!(lg->model_names[i] = strdup(name)))
            return -1;
    }
    per = lg->o.writers;
    for (i = 0; i < lg->nconns; i++) {
        fo_lg_conn *c = &lg->conns[i];
        c->lg = lg;
        c->idx = i;
        c->model = i % lg->o.models;
        c->url = fo_lg_url_of(&lg->o, i);
        lg->url_conns[c->url]++;
        c->writer = !lg->o.idle && i / lg->o.models < per;
        if (c->writer)
            lg->writers[lg->nwriters++] = i;
    }
    snprintf(lg->client_prefix, sizeof(lg->client_prefix), "bench-%d-%04x", (int)getpid(),
             (unsigned)(uv_hrtime() & 0xFFFF));
    fo_arena_init(&lg->enc, 16384);
    fo_arena_init(&lg->dec, 65536);
    fo_arena_init(&lg->keys, 256);
    fo_buf_init(&lg->out, 0);
    fo_wire_limits_default(&lg->limits);
    lg->limits.max_frame = FO_WS_MAX_MESSAGE;
    lg->limits.max_elems = UINT32_MAX / 2;
    lg->limits.max_str = (uint32_t)FO_WS_MAX_MESSAGE;
    lg->limits.max_total = UINT32_MAX / 2;
    lg->key_t = fo_key_new_cstr(&lg->keys, "t");
    lg->key_v = fo_key_new_cstr(&lg->keys, "v");
    if (!lg->key_t || !lg->key_v)
        return -1;
    fo_hist_init(&lg->ack);
    fo_hist_init(&lg->push);
    fo_hist_init(&lg->ack_sec);
    if (uv_loop_init(&lg->loop) || fo_ws_ctx_init(&lg->ws, &lg->loop))
        return -1;
    uv_timer_init(&lg->loop, &lg->tick);
    uv_timer_init(&lg->loop, &lg->second);
    uv_timer_init(&lg->loop, &lg->phase_timer);
    fo_lg_storm_init(lg);
    if ((lg->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
        uv_poll_init(&lg->loop, &lg->tpoll, lg->tfd))
        return -1;
    lg->tpoll.data = lg;
    uv_signal_init(&lg->loop, &lg->sigint);
    uv_signal_init(&lg->loop, &lg->sigterm);
    lg->tick.data = lg->second.data = lg->phase_timer.data = lg;
    lg->sigint.data = lg->sigterm.data = lg;
    uv_signal_start(&lg->sigint, on_signal, SIGINT);
    uv_signal_start(&lg->sigterm, on_signal, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void teardown(fo_lg *lg)
{
    uint32_t i;

    fo_ws_ctx_close(&lg->ws);
    uv_walk(&lg->loop, close_walk, NULL);
    uv_run(&lg->loop, UV_RUN_DEFAULT);
    uv_loop_close(&lg->loop);
    if (lg->tfd > 0)
        close(lg->tfd);
    for (i = 0; i < lg->nconns; i++)
        fo_lg_conn_destroy(&lg->conns[i]);
    for (i = 0; lg->model_names && i < lg->o.models; i++)
        free(lg->model_names[i]);
    free(lg->model_names);
    free(lg->conns);
    free(lg->writers);
    free(lg->payload);
    fo_arena_destroy(&lg->enc);
    fo_arena_destroy(&lg->dec);
    fo_arena_destroy(&lg->keys);
    fo_buf_destroy(&lg->out);
}

int main(int argc, char **argv)
{
    static fo_lg lg; /* large (histograms): not on the stack */
    int rc = fo_lg_opts_parse(&lg.o, argc, argv);

    if (rc)
        return rc > 0 ? 0 : 2;
    if (setup(&lg)) {
        fprintf(stderr, "flushout-bench: setup failed\n");
        return 2;
    }
    if (lg.o.tls) { /* wss: the CAs once, shared by every connection */
        char why[1400];
        const char *ca = lg.o.ca[0] ? lg.o.ca : getenv("FLUSHOUT_CA");
        if (!(lg.ws.tls = fo_tls_ctx_client(ca, why, sizeof(why)))) {
            fprintf(stderr, "flushout-bench: %s\n", why);
            teardown(&lg);
            return 2;
        }
        lg.ws.tls_name = lg.o.urls[0].hostname; /* each connection names its own */
    }
    if (!lg.o.json || lg.o.progress)
        fprintf(stderr,
                "flushout-bench: %s, %u connections, %u models (%u writers + %u subscribers "
                "per model), K=%u, %s, hub pid %d\n",
                lg.o.url, lg.nconns, lg.o.models, lg.o.writers, lg.o.subscribers, lg.o.commands,
                lg.o.rate > 0 ? "open loop" : "closed loop", lg.hub_pid);
    lg.t_phase = uv_hrtime();
    uv_timer_start(&lg.second, on_second, 1000, 1000);
    connect_more(&lg);
    uv_run(&lg.loop, UV_RUN_DEFAULT);
    if (lg.o.json)
        fo_lg_report_json(&lg, stdout);
    else
        fo_lg_report_table(&lg, stdout);
    fflush(stdout);
    rc = lg.total.errors ? 1 : 0;
    teardown(&lg);
    fo_tls_ctx_free(lg.ws.tls);
    return rc;
}
