#include "hub/console.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "hub/http.h"
#include "hub/hub.h"
#include "hub/log.h"
#include "hub/model.h"
#include "hub/session.h"
#include "proto/json.h"

/* ---- JSON helpers -------------------------------------------------------------------- */

static int put(fo_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(fo_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        return FO_EINVAL;
    return fo_buf_append(b, line, (size_t)n);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static int jstr(fo_buf *b, const char *s)
{
    int rc = fo_buf_append(b, "\"", 1);

    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = put(b, "\\%c", c);
        else if (c < 0x20)
            rc = put(b, "\\u%04x", c);
        else
            rc = fo_buf_append(b, s, 1);
    }
    return rc ? rc : fo_buf_append(b, "\"", 1);
}

static void respond_json(fo_http_req *r, fo_buf *b, int rc)
{
    if (rc == 0)
        rc = fo_buf_append(b, "\n", 1);
    if (rc == 0)
        fo_http_respond(r, 200, "application/json", b);
    else
        fo_http_respond_error(r, 500, "out of memory");
    fo_buf_destroy(b);
}

/* ---- the sample ---------------------------------------------------------------------- */

static double rate(uint64_t now, uint64_t old, double dt)
{
    return dt > 0 ? (double)(now - old) / dt : 0;
}

/* Commands per second of every hot model (only while a console looks). */
static void model_rates(fo_hub *h)
{
    for (fo_model *m = h->lru_head; m; m = m->lru_next) {
        uint64_t c = m->released + 1; /* console_mark 0: not seen yet */
        m->console_rate = m->console_mark ? (uint32_t)(c - m->console_mark) : 0;
        m->console_mark = c;
    }
}

static int encode_sample(fo_hub *h, fo_buf *b, double dt)
{
    const fo_metrics *m = &h->metrics, *p = &h->console.prev;
    uint64_t outbound = 0, queued, depth, errs = 0;
    struct timeval tv;
    fo_session *s;
    int rc = 0;

    for (s = h->sessions; s; s = s->next)
        outbound += s->qbytes;
    fo_model_gauges(h, &queued, &depth);
    gettimeofday(&tv, NULL);
    rc |= put(b, "{\"t\":%llu,\"dt\":%.3f,\"connections\":%llu,\"hot_models\":%u,",
              (unsigned long long)tv.tv_sec * 1000 + (unsigned long long)tv.tv_usec / 1000, dt,
              (unsigned long long)h->nsessions, (unsigned)h->models.len);
    rc |= put(b, "\"bytes\":{\"document\":%llu,\"history\":%llu,\"dedup\":%llu},",
              (unsigned long long)h->mem.bytes[FO_MEM_DOC],
              (unsigned long long)h->mem.bytes[FO_MEM_HISTORY],
              (unsigned long long)h->mem.bytes[FO_MEM_DEDUP]);
    rc |= put(b, "\"budget\":%zu,\"outbound_bytes\":%llu,\"pending\":%zu,\"queued\":%llu,",
              h->cfg.memory_budget, (unsigned long long)outbound, h->commit.pending,
              (unsigned long long)queued);
    rc |= put(b, "\"rate\":{\"flushes\":%.1f,\"commands\":%.1f,\"pushes\":%.1f,"
              "\"frames_in\":%.1f,\"frames_out\":%.1f,",
              rate(m->flushes, p->flushes, dt), rate(m->commands, p->commands, dt),
              rate(m->pushes, p->pushes, dt), rate(m->frames_in, p->frames_in, dt),
              rate(m->frames_out, p->frames_out, dt));
    rc |= put(b, "\"bytes_in\":%.0f,\"bytes_out\":%.0f,\"store_commits\":%.1f,"
              "\"loads\":%.1f},",
              rate(m->bytes_in, p->bytes_in, dt), rate(m->bytes_out, p->bytes_out, dt),
              rate(m->store_commits, p->store_commits, dt), rate(m->loads, p->loads, dt));
    rc |= put(b, "\"dropped_pushes\":%llu,\"catchups\":%llu,\"evictions\":%llu,"
              "\"flush_errors\":%llu,\"store_errors\":%llu,",
              (unsigned long long)(m->dropped_pushes - p->dropped_pushes),
              (unsigned long long)(m->catchups - p->catchups),
              (unsigned long long)(m->evictions - p->evictions),
              (unsigned long long)(m->flush_errors - p->flush_errors),
              (unsigned long long)(m->store_errors - p->store_errors));
    rc |= put(b, "\"loop\":{\"lag_ms\":%.3f,\"busy\":%.4f,\"turns\":%.1f},",
              (double)m->loop_busy_max_ns / 1e6,
              dt > 0 ? (double)(m->loop_busy_ns - p->loop_busy_ns) / 1e9 / dt : 0,
              rate(m->loop_turns, p->loop_turns, dt));
    rc |= put(b, "\"commit_ms\":{\"n\":%llu,\"p50\":%.3f,\"p99\":%.3f},",
              (unsigned long long)(m->commit_latency.n - p->commit_latency.n),
              fo_hist_quantile(&m->commit_latency, &p->commit_latency, 0.5) * 1e3,
              fo_hist_quantile(&m->commit_latency, &p->commit_latency, 0.99) * 1e3);
    rc |= put(b, "\"ack_ms\":{\"n\":%llu,\"p50\":%.3f,\"p99\":%.3f},",
              (unsigned long long)(m->ack_latency.n - p->ack_latency.n),
              fo_hist_quantile(&m->ack_latency, &p->ack_latency, 0.5) * 1e3,
              fo_hist_quantile(&m->ack_latency, &p->ack_latency, 0.99) * 1e3);
    rc |= put(b, "\"errors\":{");
    for (int c = 1; c < FO_ERR_CODES; c++) {
        rc |= put(b, "%s\"%s\":%llu", c > 1 ? "," : "", fo_error_code_name(c),
                  (unsigned long long)(m->errors[c] - p->errors[c]));
        errs += m->errors[c];
    }
    rc |= put(b, "},\"totals\":{\"flushes\":%llu,\"commands\":%llu,\"pushes\":%llu,"
              "\"dropped_pushes\":%llu,\"catchups\":%llu,\"evictions\":%llu,\"errors\":%llu,"
              "\"connections\":%llu}}",
              (unsigned long long)m->flushes, (unsigned long long)m->commands,
              (unsigned long long)m->pushes, (unsigned long long)m->dropped_pushes,
              (unsigned long long)m->catchups, (unsigned long long)m->evictions,
              (unsigned long long)errs, (unsigned long long)m->connections_total);
    return rc ? FO_ENOMEM : 0;
}

/* ---- feeds ----------------------------------------------------------------------------- */

struct fo_feed {
    fo_hub *hub;
    fo_feed *prev, *next;
    int fd;
    uv_poll_t *poll;
    unsigned char *out; /* unsent bytes */
    size_t out_len, out_off, out_cap;
    bool want_write;    /* polled for POLLOUT */
    fo_tls *tls;        /* --tls-cert: out is then unused, the TLS output is the backlog */
};

static void on_feed_poll_closed(uv_handle_t *hd)
{
    free(hd);
}

static void feed_close(fo_feed *f)
{
    fo_console *c = &f->hub->console;

    if (f->prev)
        f->prev->next = f->next;
    else
        c->feeds = f->next;
    if (f->next)
        f->next->prev = f->prev;
    c->nfeeds--;
    uv_close((uv_handle_t *)f->poll, on_feed_poll_closed);
    close(f->fd);
    fo_tls_free(f->tls);
    free(f->out);
    free(f);
}

/* Sends what is unsent; polls for POLLOUT while the socket does not take it all. 0, or -1
 * when the connection is gone (the caller closes it). */
static void on_feed_poll(uv_poll_t *p, int status, int events);

static int feed_flush(fo_feed *f)
{
    bool want;
    long left;

    if (f->tls) {
        if ((left = fo_tls_send_fd(f->tls, f->fd)) < 0)
            return -1;
        want = left > 0;
        goto poll;
    }
    while (f->out_off < f->out_len) {
        ssize_t n = send(f->fd, f->out + f->out_off, f->out_len - f->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return -1;
        f->out_off += (size_t)n;
    }
    if (f->out_off == f->out_len)
        f->out_off = f->out_len = 0;
    want = f->out_len > 0;
poll:
    if (want != f->want_write) {
        f->want_write = want;
        uv_poll_start(f->poll, UV_READABLE | (want ? UV_WRITABLE : 0), on_feed_poll);
    }
    return 0;
}

/* Queues bytes and sends. 0, or -1: the feed is gone or too far behind (close it). */
static int feed_send(fo_feed *f, const void *p, size_t n)
{
    if (f->tls) {
        const unsigned char *q;
        if (fo_tls_pending(f->tls, &q) > FO_CONSOLE_FEED_BACKLOG || fo_tls_write(f->tls, p, n))
            return -1;
        return feed_flush(f);
    }
    if (f->out_off) { /* compact: the unsent end moves to the front */
        memmove(f->out, f->out + f->out_off, f->out_len - f->out_off);
        f->out_len -= f->out_off;
        f->out_off = 0;
    }
    if (f->out_len > FO_CONSOLE_FEED_BACKLOG)
        return -1;
    if (f->out_len + n > f->out_cap) {
        size_t cap = f->out_cap ? f->out_cap : 4096;
        unsigned char *nb;
        while (cap < f->out_len + n)
            cap *= 2;
        if (!(nb = realloc(f->out, cap)))
            return -1;
        f->out = nb;
        f->out_cap = cap;
    }
    memcpy(f->out + f->out_len, p, n);
    f->out_len += n;
    return feed_flush(f);
}

static void on_feed_poll(uv_poll_t *p, int status, int events)
{
    fo_feed *f = p->data;
    char drop[512];

    if (status < 0)
        return feed_close(f);
    if (events & UV_READABLE) {
        /* The client has nothing to say: its EOF, or a close frame (a read that starts
         * with one: answered, then the socket is closed); other bytes are dropped. */
        ssize_t n = recv(f->fd, drop, sizeof(drop), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return feed_close(f);
        if (n > 0 && f->tls) { /* decrypted: a read that starts with a close frame ends it */
            unsigned char plain[512];
            long r;
            fo_tls_input(f->tls, (unsigned char *)drop, (size_t)n);
            while ((r = fo_tls_read(f->tls, plain, sizeof(plain))) > 0 && (plain[0] & 0x0f) != 0x8)
                ;
            if (r < 0)
                return feed_close(f);
            if (r > 0) {
                static const unsigned char bye[] = {0x88, 0x02, 0x03, 0xe8}; /* 1000 */
                if (fo_tls_write(f->tls, bye, sizeof(bye)) == 0)
                    fo_tls_shutdown(f->tls);
                if (fo_tls_send_fd(f->tls, f->fd) != 0)
                    FO_LOG(FO_LOG_DEBUG, "console feed: close frame not sent");
                return feed_close(f);
            }
        }
        if (n > 0 && !f->tls && ((unsigned char)drop[0] & 0x0f) == 0x8) {
            static const unsigned char bye[] = {0x88, 0x02, 0x03, 0xe8}; /* 1000 */
            if (send(f->fd, bye, sizeof(bye), MSG_NOSIGNAL) < 0)
                FO_LOG(FO_LOG_DEBUG, "console feed: close frame not sent");
            return feed_close(f);
        }
    }
    if ((events & UV_WRITABLE) && feed_flush(f))
        feed_close(f);
}

bool fo_console_feed_room(const fo_hub *h)
{
    return h->console.started && h->phase == FO_HUB_RUNNING &&
           h->console.nfeeds < FO_CONSOLE_MAX_FEEDS;
}

int fo_console_feed_open(fo_hub *h, int fd, uv_poll_t *poll, fo_tls *tls)
{
    fo_console *c = &h->console;
    fo_feed *f;
    int rc = 0;

    if (!fo_console_feed_room(h) || !(f = calloc(1, sizeof(*f)))) {
        fo_tls_free(tls);
        return -1;
    }
    f->tls = tls;
    f->hub = h;
    f->fd = fd;
    f->poll = poll;
    poll->data = f;
    f->next = c->feeds;
    if (c->feeds)
        c->feeds->prev = f;
    c->feeds = f;
    c->nfeeds++;
    uv_poll_start(poll, UV_READABLE, on_feed_poll);
    /* The ring first: the charts start with the last minutes. */
    for (uint32_t i = 0; i < c->len && !rc; i++) {
        const fo_frame *s = c->ring[(c->head + i) % FO_CONSOLE_SAMPLES];
        rc = feed_send(f, s->data, s->len);
    }
    if (rc) {
        feed_close(f); /* closes fd: the caller must not */
        return 0;
    }
    if (c->nfeeds == 1)
        model_rates(h); /* rates start from here */
    return 0;
}

int fo_console_access(fo_hub *h, const char *token, fo_rights *rights, char *why,
                      size_t whylen)
{
    memset(rights, 0, sizeof(*rights));
    if (!h->auth) {
        rights->open = true;
        snprintf(why, whylen, "the console of an open hub is served on a loopback --listen "
                              "only: start the hub with --auth and use a token with the "
                              "admin right");
        return fo_hub_config_loopback(&h->cfg) ? 0 : 403;
    }
    if (!token || !*token) {
        snprintf(why, whylen, "missing token");
        return 401;
    }
    if (!fo_auth_check(h->auth, token, fo_auth_now_ms(), rights, why, whylen))
        return 401;
    if (fo_rights_admin(rights, NULL))
        return 0;
    snprintf(why, whylen, "the token has no admin right");
    return 403;
}

/* One unmasked WebSocket text frame (FIN) holding `len` bytes of JSON. */
static fo_frame *ws_text(const char *json, size_t len)
{
    unsigned char hdr[10];
    size_t hl = 2;
    fo_frame *f;

    hdr[0] = 0x81;
    if (len < 126) {
        hdr[1] = (unsigned char)len;
    } else if (len < 65536) {
        hdr[1] = 126, hdr[2] = (unsigned char)(len >> 8), hdr[3] = (unsigned char)len;
        hl = 4;
    } else {
        hdr[1] = 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    if (!(f = malloc(sizeof(*f) + hl + len)))
        return NULL;
    f->refs = 1;
    f->len = (uint32_t)(hl + len);
    memcpy(f->data, hdr, hl);
    memcpy(f->data + hl, json, len);
    return f;
}

/* ---- the sampling timer --------------------------------------------------------------- */

static void on_sample(uv_timer_t *t)
{
    fo_hub *h = t->data;
    fo_console *c = &h->console;
    uint64_t now = uv_hrtime();
    double dt = c->prev_ns ? (double)(now - c->prev_ns) / 1e9 : 1.0;
    fo_frame *f = NULL;
    fo_feed *fd, *next;
    fo_buf b;

    if (c->nfeeds)
        model_rates(h);
    fo_buf_init(&b, 16); /* headroom for the WebSocket header */
    if (encode_sample(h, &b, dt) == 0)
        f = ws_text(fo_buf_data(&b), b.len);
    fo_buf_destroy(&b);
    c->prev = h->metrics;
    c->prev_ns = now;
    h->metrics.loop_busy_max_ns = 0;
    c->samples++;
    if (!f) {
        FO_LOG(FO_LOG_WARN, "console: out of memory encoding a sample");
        return;
    }
    if (c->len == FO_CONSOLE_SAMPLES) {
        fo_frame_unref(c->ring[c->head]);
        c->head = (c->head + 1) % FO_CONSOLE_SAMPLES;
        c->len--;
    }
    c->ring[(c->head + c->len++) % FO_CONSOLE_SAMPLES] = f; /* the ring's reference */
    /* The same bytes to every feed; one that is gone or too far behind is closed. */
    for (fd = c->feeds; fd; fd = next) {
        next = fd->next;
        if (feed_send(fd, f->data, f->len))
            feed_close(fd);
    }
}

void fo_console_start(fo_hub *h)
{
    fo_console *c = &h->console;

    uv_timer_init(&h->loop, &c->timer);
    c->timer.data = h;
    uv_timer_start(&c->timer, on_sample, 1000, 1000);
    c->prev = h->metrics;
    c->prev_ns = uv_hrtime();
    c->started = true;
}

void fo_console_stop(fo_hub *h)
{
    fo_console *c = &h->console;

    if (!c->started)
        return;
    c->started = false;
    uv_close((uv_handle_t *)&c->timer, NULL);
    while (c->feeds)
        feed_close(c->feeds);
    for (; c->len; c->len--, c->head = (c->head + 1) % FO_CONSOLE_SAMPLES)
        fo_frame_unref(c->ring[c->head]);
}

/* ---- models -------------------------------------------------------------------------- */

static const char *state_name(fo_model_state s)
{
    switch (s) {
    case FO_MODEL_COLD: return "cold";
    case FO_MODEL_LOADING: return "loading";
    case FO_MODEL_READY: return "ready";
    case FO_MODEL_READING: return "reading";
    }
    return "?";
}

static int model_fields(fo_buf *b, const fo_model *m)
{
    int rc = fo_buf_append(b, "\"name\":", 7);

    rc |= jstr(b, m->name);
    rc |= put(b, ",\"state\":\"%s\",\"count\":%llu,\"rate\":%u,\"subscribers\":%u,"
              "\"queued\":%u,\"bytes\":{\"document\":%zu,\"history\":%zu,\"dedup\":%zu}",
              state_name(m->state), (unsigned long long)m->released, m->console_rate, m->nsubs,
              m->ntasks, m->mem[FO_MEM_DOC], m->mem[FO_MEM_HISTORY], m->mem[FO_MEM_DEDUP]);
    return rc;
}

static int hotter(const void *a, const void *b)
{
    const fo_model *x = *(fo_model *const *)a, *y = *(fo_model *const *)b;

    if (x->console_rate != y->console_rate)
        return x->console_rate > y->console_rate ? -1 : 1;
    if (x->nsubs != y->nsubs)
        return x->nsubs > y->nsubs ? -1 : 1;
    if (x->released != y->released)
        return x->released > y->released ? -1 : 1;
    return strcmp(x->name, y->name);
}

void fo_console_models(fo_hub *h, fo_http_req *r, const fo_rights *rights, const char *q,
                       uint32_t limit)
{
    fo_model **v = malloc((h->models.len + 1) * sizeof(*v));
    size_t n = 0;
    fo_buf b;
    int rc;

    if (!v) {
        fo_http_respond_error(r, 500, "out of memory");
        return;
    }
    for (fo_model *m = h->lru_head; m; m = m->lru_next)
        if ((!q || !*q || strstr(m->name, q)) && fo_rights_admin(rights, m->name))
            v[n++] = m;
    qsort(v, n, sizeof(*v), hotter);
    fo_buf_init(&b, 0);
    rc = put(&b, "{\"matched\":%zu,\"hot_models\":%u,\"models\":[", n, (unsigned)h->models.len);
    for (size_t i = 0; i < n && i < limit && !rc; i++) {
        rc |= fo_buf_append(&b, i ? ",{" : "{", i ? 2 : 1);
        rc |= model_fields(&b, v[i]);
        rc |= fo_buf_append(&b, "}", 1);
    }
    rc |= fo_buf_append(&b, "]}", 2);
    free(v);
    respond_json(r, &b, rc);
}

/* A subscriber's presence state as JSON (decoded from its presence event). */
static int presence_json(fo_hub *h, const fo_frame *f, fo_buf *b)
{
    fo_arena a;
    fo_msg msg;
    int rc;

    fo_arena_init(&a, 512);
    rc = fo_wire_decode(f->data, f->len, &h->limits, &a, &msg, NULL);
    if (rc == 0 && msg.state)
        rc = fo_json_write_value(msg.state, 0, b);
    else
        rc = fo_buf_append(b, "null", 4);
    fo_arena_destroy(&a);
    return rc;
}

void fo_console_model(fo_hub *h, fo_http_req *r, const fo_rights *rights, const char *name)
{
    fo_model *m = fo_strmap_get(&h->models, name, strlen(name));
    bool read = fo_rights_allow(rights, name, false);
    uint64_t start;
    fo_buf b;
    int rc;

    fo_buf_init(&b, 0);
    if (!m) {
        rc = fo_buf_append(&b, "{\"name\":", 8) | jstr(&b, name) |
             put(&b, ",\"hot\":false,\"read\":%s}", read ? "true" : "false");
        respond_json(r, &b, rc);
        return;
    }
    start = fo_history_start(&m->hist);
    rc = fo_buf_append(&b, "{\"hot\":true,", 12);
    rc |= model_fields(&b, m);
    rc |= put(&b, ",\"read\":%s,\"pending\":%u,\"snapshot_count\":%llu,\"history\":{\"from\":",
              read ? "true" : "false", m->npending, (unsigned long long)m->snapshot_count);
    rc |= start == UINT64_MAX ? put(&b, "null") : put(&b, "%llu", (unsigned long long)start);
    rc |= put(&b, ",\"keep\":%u},\"subs\":[", h->cfg.history);
    for (const fo_sub *sub = m->subs; sub && !rc; sub = sub->mnext) {
        const fo_session *s = sub->session;
        rc |= put(&b, "%s{\"session\":\"%s\",\"client\":", sub == m->subs ? "" : ",", s->sid);
        rc |= jstr(&b, s->client);
        rc |= fo_buf_append(&b, ",\"peer\":", 8);
        rc |= jstr(&b, s->peer);
        rc |= put(&b, ",\"at\":%llu,\"active\":%s,\"lagging\":%s,\"backlog\":%u,"
                  "\"backlog_bytes\":%zu,\"has_presence\":%s",
                  (unsigned long long)sub->next_from, sub->active ? "true" : "false",
                  sub->lagging ? "true" : "false", fo_session_backlog(s), s->qbytes,
                  sub->presence ? "true" : "false");
        if (read && sub->presence) {
            rc |= fo_buf_append(&b, ",\"presence\":", 12);
            rc |= presence_json(h, sub->presence, &b);
        }
        rc |= fo_buf_append(&b, "}", 1);
    }
    rc |= fo_buf_append(&b, "]}", 2);
    respond_json(r, &b, rc);
}
