/* client.c - the connection (attempts, backoff, hello), one-shot requests and the
 * dispatch of frames to models. The per-model rules are in client_model.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>

#include "clients/c/client_impl.h"
#include "proto/json.h"
#include "proto/tls.h"

#define DEFAULT_URL "ws://127.0.0.1:7420/v1/ws"

void fo_client_config_default(fo_client_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->url = DEFAULT_URL;
    cfg->ids = FO_IDS_RANDOM;
    cfg->flush_delay_ms = 20;
    cfg->flush_max_queue = 100;
    cfg->backoff_min_ms = 100;
    cfg->backoff_max_ms = 10000;
    cfg->connect_timeout_ms = 10000;
    cfg->ping_ms = 15000;
    cfg->max_message = (size_t)256 << 20;
}

bool fo_client_model_name_valid(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return false;
    }
    return n >= 1 && n <= 200;
}

/* ws[s]://HOST[:PORT][/PATH]; [v6]:PORT accepted. No path means the hub's /v1/ws. FO_EINVAL
 * with *why (a static sentence) when the URL is not one. */
static int parse_url(fo_client *c, const char *url, const char **why)
{
    const char *h, *hend, *p, *colon = NULL;
    size_t hl;

    c->wss = strncmp(url, "wss://", 6) == 0;
    if (strncmp(url, "ws://", 5) != 0 && !c->wss) {
        *why = strncmp(url, "http://", 7) == 0
                   ? "url: http:// is the hub's HTTP address; its WebSocket URL is "
                     "ws://HOST:PORT/v1/ws"
               : strncmp(url, "https://", 8) == 0
                   ? "url: https:// is the hub's HTTP address; its WebSocket URL is "
                     "wss://HOST:PORT/v1/ws"
                   : "url: must start with ws:// or wss:// (ws[s]://HOST[:PORT][/PATH])";
        return FO_EINVAL;
    }
    h = url + (c->wss ? 6 : 5);
    p = h + strcspn(h, "/?#");
    *why = "url: bad host (ws://HOST[:PORT][/PATH]; an IPv6 address goes in brackets)";
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(p - h));
        if (!close)
            return FO_EINVAL;
        hend = close;
        h++;
        if (close + 1 < p) {
            if (close[1] != ':')
                return FO_EINVAL;
            colon = close + 1;
        }
    } else {
        colon = memchr(h, ':', (size_t)(p - h));
        hend = colon ? colon : p;
    }
    hl = (size_t)(hend - h);
    if (hl == 0 || hl >= sizeof(c->host))
        return FO_EINVAL;
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    c->port = c->wss ? 443 : 80;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        *why = "url: the port must be a number from 1 to 65535";
        if (end != p || end == colon + 1 || port < 1 || port > 65535)
            return FO_EINVAL;
        c->port = (int)port;
    }
    *why = "url: a WebSocket URL has no fragment (#)";
    if (strchr(p, '#'))
        return FO_EINVAL;
    *why = "url: the path is too long (1023 bytes at most)";
    if (snprintf(c->path, sizeof(c->path), "%s%s", *p == '/' ? "" : "/v1/ws", p) >=
        (int)sizeof(c->path))
        return FO_EINVAL;
    *why = NULL;
    return 0;
}

/* Why fo_client_new refuses cfg, with c (zeroed) as scratch; NULL when it does not. */
static const char *config_error(fo_client *c, const fo_client_config *cfg)
{
    const char *why = NULL;

    if (parse_url(c, cfg->url ? cfg->url : DEFAULT_URL, &why))
        return why;
    if (cfg->client_id && (!cfg->client_id[0] || strlen(cfg->client_id) > 64))
        return "client_id: must be 1 to 64 bytes";
    if (c->wss) { /* the CAs are loaded once, here */
        const char *ca = cfg->ca_file ? cfg->ca_file : getenv("FLUSHOUT_CA");
        char err[512];
        if (!(c->tls = fo_tls_ctx_client(ca, err, sizeof(err))))
            return ca && *ca ? "ca_file: cannot load the CA certificates (a readable PEM file; "
                               "FLUSHOUT_CA when ca_file is NULL)"
                             : "url: wss:// needs the system's CA certificates, which cannot "
                               "be loaded (set ca_file or FLUSHOUT_CA)";
    }
    return NULL;
}

const char *fo_client_config_error(const fo_client_config *cfg)
{
    fo_client *c = calloc(1, sizeof(*c));
    const char *why;

    if (!c)
        return "out of memory";
    why = config_error(c, cfg);
    fo_tls_ctx_free(c->tls);
    free(c);
    return why;
}

static uint64_t rng_next(fo_client *c)
{
    uint64_t s1 = c->rng[0];
    const uint64_t s0 = c->rng[1];

    c->rng[0] = s0;
    s1 ^= s1 << 23;
    c->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return c->rng[1] + s0;
}

uint64_t fo_client_backoff_ms(fo_client *c, uint32_t failures)
{
    uint64_t d = c->cfg.backoff_min_ms ? c->cfg.backoff_min_ms : 1;
    uint32_t i;

    for (i = 0; i < failures && d < c->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > c->cfg.backoff_max_ms)
        d = c->cfg.backoff_max_ms;
    /* Jitter in [d/2, d]: clients that lost the same hub do not come back in step. */
    return d / 2 + rng_next(c) % (d / 2 + 1);
}

void fo_client_report(fo_client *c, fo_error_code code, const char *model, const char *fmt, ...)
{
    fo_client_error e;
    char text[512];
    va_list ap;

    if (c->closing || !c->cfg.cb.on_error)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    e.code = code;
    e.message = text;
    e.model = model;
    c->cfg.cb.on_error(c, &e, c->cfg.data);
}

bool fo_client_is_open(const fo_client *c)
{
    return c->ws && c->welcomed && !c->closing;
}

int fo_client_send_buf(fo_client *c, const fo_buf *b)
{
    if (!c->ws || c->closing)
        return FO_ESTATE;
    return fo_cws_send(c->ws, fo_buf_data(b), b->len);
}

int fo_client_send(fo_client *c, const fo_msg *m)
{
    fo_buf b;
    int rc;

    fo_buf_init(&b, 0);
    rc = fo_wire_encode(m, &b);
    if (rc == 0)
        rc = fo_client_send_buf(c, &b);
    fo_buf_destroy(&b);
    return rc;
}

static void set_state(fo_client *c, fo_client_state s, const char *why)
{
    c->state = s;
    if (!c->closing && c->cfg.cb.on_state)
        c->cfg.cb.on_state(c, s, why, c->cfg.data);
}

/* ---- closing ------------------------------------------------------------------------- */

static void finish(fo_client *c)
{
    fo_client_close_cb cb = c->close_cb;
    void *data = c->close_data;

    while (c->reqs) {
        fo_client_req *r = c->reqs;
        c->reqs = r->next;
        if (r->cb)
            r->cb(c, NULL, r->data);
        fo_buf_destroy(&r->frame);
        free(r);
    }
    if (cb)
        cb(c, data);
    fo_arena_destroy(&c->rx_arena);
    free(c->url);
    free(c->token);
    fo_tls_ctx_free(c->tls);
    free(c);
}

void fo_client_unlive(fo_client *c)
{
    if (--c->live == 0 && c->closing)
        finish(c);
}

void fo_client_handle_closed(uv_handle_t *h)
{
    fo_client_unlive(h->data);
}

static void on_ws_free(void *data)
{
    fo_client_unlive(data);
}

void fo_client_close(fo_client *c, fo_client_close_cb cb, void *data)
{
    fo_client_model *m;

    if (!c || c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    c->live++; /* held until the end of this function */
    if (c->ws) {
        fo_cws_close(c->ws);
        c->ws = NULL;
    }
    uv_close((uv_handle_t *)&c->retry, fo_client_handle_closed);
    while ((m = c->models)) {
        c->models = m->next;
        fo_client_model_close(m);
    }
    fo_client_unlive(c);
}

/* ---- connection ---------------------------------------------------------------------- */

static void connect_now(fo_client *c);

static void on_retry(uv_timer_t *t)
{
    connect_now(t->data);
}

static void on_ws_close(fo_cws *ws, const char *why, void *data);

static void on_ws_open(fo_cws *ws, void *data)
{
    fo_client *c = data;
    fo_msg m;

    (void)ws;
    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_HELLO;
    m.client = c->client_id;
    if (fo_client_send(c, &m) != 0) { /* out of memory: try again later */
        fo_cws_close(ws);
        on_ws_close(ws, "out of memory", c);
    }
}

static void on_ws_close(fo_cws *ws, const char *why, void *data)
{
    fo_client *c = data;
    fo_client_model *m;
    bool was_open = c->welcomed;

    (void)ws;
    c->ws = NULL;
    c->welcomed = false;
    c->session[0] = '\0';
    for (m = c->models; m; m = m->next)
        fo_client_model_on_lost(m);
    uv_timer_start(&c->retry, on_retry, fo_client_backoff_ms(c, c->attempt), 0);
    c->attempt++;
    set_state(c, FO_CLIENT_CLOSED, why ? why : (was_open ? "connection lost" : "cannot connect"));
}

static void on_welcome(fo_client *c, const fo_msg *msg)
{
    fo_client_model *m;
    fo_client_req *r;

    c->welcomed = true;
    c->attempt = 0;
    snprintf(c->session, sizeof(c->session), "%s", msg->session ? msg->session : "");
    c->max_frame = msg->max_frame;
    set_state(c, FO_CLIENT_OPEN, NULL);
    for (m = c->models; m && fo_client_is_open(c); m = m->next)
        fo_client_model_on_open(m);
    for (r = c->reqs; r && fo_client_is_open(c); r = r->next)
        fo_client_send_buf(c, &r->frame);
}

static fo_client_req *take_req(fo_client *c, const fo_msg *msg)
{
    fo_client_req **p, *r;

    if (!msg->has_rid)
        return NULL;
    for (p = &c->reqs; (r = *p); p = &r->next) {
        if (r->rid == msg->rid) {
            *p = r->next;
            return r;
        }
    }
    return NULL;
}

static void on_ws_message(fo_cws *ws, const unsigned char *p, size_t len, bool binary, void *data)
{
    fo_client *c = data;
    fo_client_model *m;
    fo_client_req *r;
    fo_err_info err;
    fo_msg msg;
    int rc;

    (void)ws;
    if (!binary) {
        fo_client_report(c, 0, NULL, "the hub sent a text frame (%zu bytes)", len);
        return;
    }
    fo_arena_reset(&c->rx_arena);
    memset(&err, 0, sizeof(err));
    if ((rc = fo_wire_decode(p, len, &c->limits, &c->rx_arena, &msg, &err)) != 0) {
        fo_client_report(c, 0, NULL, "undecodable frame from the hub: %s%s%s", err.path,
                         err.path[0] ? ": " : "", err.msg[0] ? err.msg : fo_strerror(rc));
        return;
    }
    switch (msg.type) {
    case FO_MSG_WELCOME: on_welcome(c, &msg); return;
    case FO_MSG_SNAP:
    case FO_MSG_DIFF:
    case FO_MSG_OK:
    case FO_MSG_ERROR:
        if ((r = take_req(c, &msg))) {
            if (r->cb)
                r->cb(c, &msg, r->data);
            fo_buf_destroy(&r->frame);
            free(r);
            return;
        }
        break;
    default: break;
    }
    if (msg.type == FO_MSG_OK)
        return; /* unsub and presence replies */
    m = msg.model ? fo_client_find(c, msg.model) : NULL;
    if (msg.type == FO_MSG_ERROR) {
        if (m && fo_client_model_on_error(m, &msg))
            return;
        fo_client_report(c, msg.code, msg.model, "%s", msg.message ? msg.message : "");
        return;
    }
    if (m)
        fo_client_model_on_msg(m, &msg);
}

static void connect_now(fo_client *c)
{
    static const fo_cws_callbacks cbs = {on_ws_open, on_ws_message, on_ws_close, on_ws_free};
    fo_cws_config wc;

    if (c->closing || c->ws)
        return;
    memset(&wc, 0, sizeof(wc));
    wc.host = c->host;
    wc.port = c->port;
    wc.path = c->path;
    wc.protocol = "flushout.v1";
    wc.token = c->token;
    wc.connect_timeout_ms = c->cfg.connect_timeout_ms;
    wc.ping_ms = c->cfg.ping_ms;
    wc.max_message = c->cfg.max_message;
    wc.tls = c->tls;
    set_state(c, FO_CLIENT_CONNECTING, NULL);
    if (c->closing)
        return;
    if (!(c->ws = fo_cws_connect(c->loop, &wc, &cbs, c))) {
        uv_timer_start(&c->retry, on_retry, fo_client_backoff_ms(c, c->attempt++), 0);
        return;
    }
    c->live++;
}

int fo_client_new(uv_loop_t *loop, const fo_client_config *cfg, fo_client **out)
{
    fo_client *c = calloc(1, sizeof(*c));
    uint64_t seed[2] = {0, 0};
    struct timeval tv;

    *out = NULL;
    if (!c)
        return FO_ENOMEM;
    c->loop = loop;
    c->cfg = *cfg;
    if (!cfg->url)
        c->cfg.url = DEFAULT_URL;
    if (config_error(c, &c->cfg)) {
        fo_tls_ctx_free(c->tls);
        free(c);
        return FO_EINVAL;
    }
    c->url = strdup(c->cfg.url);
    c->token = cfg->token ? strdup(cfg->token) : NULL;
    if (!c->url || (cfg->token && !c->token)) {
        free(c->url);
        free(c->token);
        fo_tls_ctx_free(c->tls);
        free(c);
        return FO_ENOMEM;
    }
    c->cfg.url = c->url;
    c->cfg.token = c->token;
    if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        seed[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
        seed[1] = uv_hrtime();
    }
    c->rng[0] = seed[0] | 1;
    c->rng[1] = seed[1];
    if (cfg->client_id)
        snprintf(c->client_id, sizeof(c->client_id), "%s", cfg->client_id);
    else
        snprintf(c->client_id, sizeof(c->client_id), "c-%016llx", (unsigned long long)rng_next(c));
    c->cfg.client_id = c->client_id;
    /* Wall-clock microseconds: a later process reusing this client id starts higher. */
    gettimeofday(&tv, NULL);
    c->next_seq = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    c->next_rid = 1;
    fo_arena_init(&c->rx_arena, 16384);
    fo_wire_limits_default(&c->limits);
    c->limits.max_frame = c->cfg.max_message;
    c->limits.max_str = UINT32_MAX / 2;
    c->limits.max_elems = UINT32_MAX / 2;
    c->limits.max_total = UINT32_MAX / 2;
    c->state = FO_CLIENT_CONNECTING;
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    c->live = 1;
    /* The first attempt starts from the loop, so no callback runs inside this call. */
    uv_timer_start(&c->retry, on_retry, 0, 0);
    *out = c;
    return 0;
}

fo_client_state fo_client_get_state(const fo_client *c)
{
    return c->state;
}

const char *fo_client_id(const fo_client *c)
{
    return c->client_id;
}

const char *fo_client_session(const fo_client *c)
{
    return c->session;
}

bool fo_client_idle(const fo_client *c)
{
    for (const fo_client_model *m = c->models; m; m = m->next)
        if (!fo_client_model_synced(m))
            return false;
    return true;
}

void fo_client_debug_disconnect(fo_client *c)
{
    fo_cws *ws = c->ws;

    if (!ws || c->closing)
        return;
    fo_cws_close(ws);
    on_ws_close(ws, "disconnected by fo_client_debug_disconnect", c);
}

/* ---- models and requests ------------------------------------------------------------- */

fo_client_model *fo_client_find(const fo_client *c, const char *model)
{
    for (fo_client_model *m = c->models; m; m = m->next)
        if (strcmp(m->name, model) == 0)
            return m;
    return NULL;
}

int fo_client_subscribe(fo_client *c, const char *model, fo_client_model **out)
{
    fo_client_model *m;

    *out = NULL;
    if (c->closing)
        return FO_ESTATE;
    if (!fo_client_model_name_valid(model) || fo_client_find(c, model))
        return FO_EINVAL;
    if (!(m = fo_client_model_new(c, model)))
        return FO_ENOMEM;
    c->live++;
    m->next = c->models;
    c->models = m;
    if (fo_client_is_open(c))
        fo_client_model_on_open(m);
    *out = m;
    return 0;
}

void fo_client_unsubscribe(fo_client_model *m)
{
    fo_client *c = m->c;
    fo_client_model **p;
    fo_msg msg;

    if (m->dead)
        return;
    for (p = &c->models; *p; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    if (fo_client_is_open(c) && m->sub != FO_SUB_NONE) {
        memset(&msg, 0, sizeof(msg));
        msg.type = FO_MSG_UNSUB;
        msg.model = m->name;
        fo_client_send(c, &msg);
    }
    fo_client_model_close(m);
}

static int add_req(fo_client *c, fo_msg *msg, fo_client_reply_cb cb, void *data)
{
    fo_client_req *r, **tail;
    int rc;

    if (c->closing)
        return FO_ESTATE;
    if (!fo_client_model_name_valid(msg->model))
        return FO_EINVAL;
    if (!(r = calloc(1, sizeof(*r))))
        return FO_ENOMEM;
    r->rid = c->next_rid++;
    r->cb = cb;
    r->data = data;
    msg->has_rid = true;
    msg->rid = r->rid;
    fo_buf_init(&r->frame, 0);
    if ((rc = fo_wire_encode(msg, &r->frame)) != 0) {
        fo_buf_destroy(&r->frame);
        free(r);
        return rc;
    }
    for (tail = &c->reqs; *tail; tail = &(*tail)->next)
        ;
    *tail = r;
    if (fo_client_is_open(c))
        fo_client_send_buf(c, &r->frame);
    return 0;
}

int fo_client_get(fo_client *c, const char *model, bool has_at, uint64_t at, fo_client_reply_cb cb,
                  void *data)
{
    fo_msg msg;

    memset(&msg, 0, sizeof(msg));
    msg.type = FO_MSG_GET;
    msg.model = model;
    msg.has_at = has_at;
    msg.at = at;
    return add_req(c, &msg, cb, data);
}

int fo_client_history(fo_client *c, const char *model, uint64_t from, bool has_to, uint64_t to,
                      fo_client_reply_cb cb, void *data)
{
    fo_msg msg;

    memset(&msg, 0, sizeof(msg));
    msg.type = FO_MSG_HISTORY;
    msg.model = model;
    msg.from = from;
    msg.has_to = has_to;
    msg.to = to;
    return add_req(c, &msg, cb, data);
}
