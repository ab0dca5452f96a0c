#include "hub/http.h"
#include "hub/peers.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hub/console.h"
#include "hub/hub.h"
#include "hub/log.h"
#include "hub/model.h"
#include "hub/route.h"
#include "hub/session.h"
#include "proto/json.h"

#define CHUNK (64 * 1024)

struct fo_http_req {
    fo_reply_sink sink;  /* first: model reads are answered through it */
    uint32_t refs;
    fo_hub *hub;
    struct lws *wsi;     /* NULL once the connection closed */
    int status;
    char content_type[64];
    char *body;
    size_t len, off;
    bool ready;          /* the response may be written */
    bool headers_sent;
};

fo_http_req *fo_http_req_ref(fo_http_req *r)
{
    r->refs++;
    return r;
}

void fo_http_req_unref(fo_http_req *r)
{
    if (r && --r->refs == 0) {
        free(r->body);
        free(r);
    }
}

/* ---- the reply sink (reply.h): snapshots and batches as JSON -------------------------------- */

static void sink_ref(fo_reply_sink *k)
{
    fo_http_req_ref((fo_http_req *)k);
}

static void sink_unref(fo_reply_sink *k)
{
    fo_http_req_unref((fo_http_req *)k);
}

static fo_frame *sink_encode(fo_reply_sink *k, const fo_msg *m)
{
    fo_frame *f = NULL;
    fo_buf b;
    int rc;

    (void)k;
    fo_buf_init(&b, 0);
    rc = m->type == FO_MSG_SNAP   ? fo_json_write_snapshot(&m->snapshot, 0, &b)
         : m->type == FO_MSG_DIFF ? fo_json_write_batch(&m->batch, 0, &b)
                                  : FO_EINVAL;
    if (rc == 0)
        f = fo_frame_new(fo_buf_data(&b), b.len);
    fo_buf_destroy(&b);
    return f;
}

static int set_response(fo_http_req *r, int status, const char *content_type,
                        const void *body, size_t len);

static void sink_deliver(fo_reply_sink *k, fo_frame *f)
{
    fo_http_req *r = (fo_http_req *)k;

    if (set_response(r, 200, "application/json", f->data, f->len) == 0)
        fo_http_release(r);
    else
        fo_http_respond_error(r, 500, "out of memory");
}

static void sink_error(fo_reply_sink *k, const fo_msg *req, fo_error_code code, const char *why)
{
    int status = code == FO_ERR_GONE          ? 410
                 : code == FO_ERR_BAD_REQUEST ? 400
                 : code == FO_ERR_FORBIDDEN   ? 403
                 : code == FO_ERR_TOO_LARGE   ? 413
                 : code == FO_ERR_SHUTTING_DOWN || code == FO_ERR_OVERLOADED ? 503
                                                                              : 500;

    (void)req;
    if (code > 0 && code < FO_ERR_CODES)
        ((fo_http_req *)k)->hub->metrics.errors[code]++;
    fo_http_respond_error((fo_http_req *)k, status, why);
}

static const fo_reply_ops http_sink = {sink_ref, sink_unref, sink_encode, sink_deliver,
                                       sink_error};

fo_reply_sink *fo_http_req_sink(fo_http_req *r)
{
    return &r->sink;
}

static int set_response(fo_http_req *r, int status, const char *content_type,
                        const void *body, size_t len)
{
    char *copy = malloc(len ? len : 1);

    if (!copy)
        return FO_ENOMEM;
    if (len)
        memcpy(copy, body, len);
    free(r->body);
    r->body = copy;
    r->len = len;
    r->off = 0;
    r->status = status;
    snprintf(r->content_type, sizeof(r->content_type), "%s", content_type);
    return 0;
}

int fo_http_set_response(fo_http_req *r, int status, const char *content_type,
                         const fo_buf *body)
{
    return set_response(r, status, content_type, fo_buf_data(body), body->len);
}

void fo_http_release(fo_http_req *r)
{
    if (r->ready)
        return;
    r->ready = true;
    if (r->wsi)
        lws_callback_on_writable(r->wsi);
}

void fo_http_respond(fo_http_req *r, int status, const char *content_type, const fo_buf *body)
{
    if (fo_http_set_response(r, status, content_type, body) == 0) {
        fo_http_release(r);
        return;
    }
    r->status = 500;
    r->len = 0;
    fo_http_release(r);
}

void fo_http_respond_error(fo_http_req *r, int status, const char *message)
{
    fo_buf b;
    size_t i;

    fo_buf_init(&b, 0);
    fo_buf_append(&b, "{\"error\":\"", 10);
    for (i = 0; message[i]; i++) {
        char c = message[i];
        if (c == '"' || c == '\\')
            fo_buf_append(&b, "\\", 1);
        if ((unsigned char)c >= 0x20)
            fo_buf_append(&b, &c, 1);
    }
    fo_buf_append(&b, "\"}\n", 3);
    fo_http_respond(r, status, "application/json", &b);
    fo_buf_destroy(&b);
}

static void respond_text(fo_http_req *r, int status, const char *ctype, const char *text)
{
    fo_buf b;

    fo_buf_init(&b, 0);
    fo_buf_append(&b, text, strlen(text));
    fo_http_respond(r, status, ctype, &b);
    fo_buf_destroy(&b);
}

/* ---- routes -------------------------------------------------------------------------- */

static void metrics(fo_hub *h, fo_http_req *r)
{
    fo_gauges g;
    fo_buf b;
    fo_session *s;

    memset(&g, 0, sizeof(g));
    g.connections = h->nsessions;
    g.hot_models = h->models.len;
    g.cluster_hubs = h->peers ? fo_peers_alive(h->peers) : 0;
    g.hot_bytes = h->hot_bytes;
    g.pending_acks = h->commit.pending;
    fo_model_gauges(h, &g.runner_queued, &g.runner_max_depth);
    for (s = h->sessions; s; s = s->next)
        g.outbound_bytes += s->qbytes;
    {
        fo_store_stats st;
        fo_store_stats_get(h->store, &st);
        g.store_transactions = st.transactions;
    }
    h->mem.snap_pending = h->commit.snap_bytes;
    fo_buf_init(&b, 0);
    if (fo_metrics_render(&h->metrics, &g, &b) == 0 && fo_metrics_render_mem(&h->mem, &b) == 0)
        fo_http_respond(r, 200, "text/plain; version=0.0.4", &b);
    else
        fo_http_respond_error(r, 500, "out of memory");
    fo_buf_destroy(&b);
}

/* The request's token (Authorization: Bearer, or ?token=); "" when it has none. */
static void request_token(struct lws *wsi, const fo_route *rt, char *tok, size_t cap)
{
    char auth[2048];

    tok[0] = '\0';
    if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
        strncasecmp(auth, "Bearer ", 7) == 0)
        snprintf(tok, cap, "%s", auth + 7);
    else if (rt->token)
        snprintf(tok, cap, "%s", rt->token);
}

/* The request's token checked for reading `model`: 0; or the HTTP status to answer (401:
 * no valid token, 403: no rights on the model) with the reason in `why`. */
static int authorize(fo_hub *h, struct lws *wsi, const fo_route *rt, const char *model,
                     char *why, size_t whylen)
{
    char tok[2048];
    fo_rights rights;
    bool ok;

    if (!h->auth)
        return 0;
    request_token(wsi, rt, tok, sizeof(tok));
    if (!tok[0]) {
        snprintf(why, whylen, "missing token");
        return 401;
    }
    if (!fo_auth_check(h->auth, tok, fo_auth_now_ms(), &rights, why, whylen))
        return 401;
    ok = fo_rights_allow(&rights, model, false);
    fo_rights_destroy(&rights);
    if (!ok) {
        snprintf(why, whylen, "forbidden: no read rights on %s", model);
        return 403;
    }
    return 0;
}

static void console_serve(fo_hub *h, fo_http_req *r, const fo_route *rt,
                          const fo_rights *rights);

/* /v1/console/models[/NAME] (console.h); the feed is the listener's (listener.h). */
static void console_route(fo_hub *h, fo_http_req *r, struct lws *wsi, const fo_route *rt)
{
    fo_rights rights;
    char tok[2048], why[256];
    int status;

    request_token(wsi, rt, tok, sizeof(tok));
    status = fo_console_access(h, tok, &rights, why, sizeof(why));
    if (status == 0)
        console_serve(h, r, rt, &rights);
    else
        fo_http_respond_error(r, status, why);
    fo_rights_destroy(&rights);
}

static void console_serve(fo_hub *h, fo_http_req *r, const fo_route *rt,
                          const fo_rights *rights)
{
    if (rt->status) /* the feed, an unknown endpoint, a bad limit or name */
        fo_http_respond_error(r, rt->status, rt->error);
    else if (rt->kind == FO_ROUTE_CONSOLE_MODELS)
        fo_console_models(h, r, rights, rt->q, (uint32_t)rt->limit);
    else if (!fo_rights_admin(rights, rt->model))
        fo_http_respond_error(r, 403, "the token's admin right does not cover this model");
    else
        fo_console_model(h, r, rights, rt->model);
}

#define AUDIT_PAGE 1000 /* rules rows per answer of /audit */

/* GET /v1/models/NAME/audit?from=N: the rules rows from the store, as
 * {"model", "batches": [...], "next"?}; `next` is the `from` of the following page. */
static void on_audit_read(fo_store *s, const fo_store_status *st, fo_store_result *res,
                          void *data)
{
    fo_http_req *r = data;
    fo_buf b;
    bool first = true;
    int rc = 0;

    (void)s;
    if (st->rc) {
        FO_LOG(FO_LOG_WARN, "reading the audit: %s", st->msg);
        fo_http_respond_error(r, 500, st->reason);
        fo_http_req_unref(r);
        return;
    }
    fo_buf_init(&b, 0);
    rc |= fo_buf_append(&b, "{\"batches\":[", 12);
    for (uint32_t i = 0; i < res->n_rules; i++) {
        const char *a = res->rules[i].audit;
        size_t n = strlen(a);
        static const char empty[] = "\"actions\":[]}";
        /* a batch that only failed (no rule acted) is kept for replay, not shown */
        if (n >= sizeof(empty) - 1 && strcmp(a + n - (sizeof(empty) - 1), empty) == 0)
            continue;
        rc |= fo_buf_append(&b, first ? "\n" : ",\n", first ? 1 : 2);
        rc |= fo_buf_append(&b, a, n);
        first = false;
    }
    rc |= fo_buf_append(&b, "]", 1);
    if (res->more) {
        char next[48];
        snprintf(next, sizeof(next), ",\"next\":%llu",
                 (unsigned long long)res->rules[res->n_rules - 1].from + 1);
        rc |= fo_buf_append(&b, next, strlen(next));
    }
    rc |= fo_buf_append(&b, "}\n", 2);
    if (rc)
        fo_http_respond_error(r, 500, "out of memory");
    else
        fo_http_respond(r, 200, "application/json", &b);
    fo_buf_destroy(&b);
    fo_store_result_free(res);
    fo_http_req_unref(r);
}

static void audit(fo_hub *h, fo_http_req *r, const char *name, uint64_t from)
{
    int rc;

    fo_http_req_ref(r);
    if ((rc = fo_store_read_audit(h->store, name, from, AUDIT_PAGE, on_audit_read, r))) {
        fo_http_req_unref(r);
        fo_http_respond_error(r, 500, fo_store_strerror(rc));
    }
}

/* /v1/models/NAME[/history|/audit]: the token's read right first, then the route's own
 * error (route.h), then the store. */
static void model_route(fo_hub *h, fo_http_req *r, struct lws *wsi, const fo_route *rt)
{
    size_t nlen = strlen(rt->model);
    fo_arena a;
    fo_msg m;
    char *name, why[256];
    int status;

    fo_arena_init(&a, 1024);
    name = fo_arena_strndup(&a, rt->model, nlen);
    if ((status = authorize(h, wsi, rt, name, why, sizeof(why)))) {
        fo_arena_destroy(&a);
        fo_http_respond_error(r, status, why);
        return;
    }
    if (rt->kind == FO_ROUTE_MODEL_AUDIT) {
        if (h->phase != FO_HUB_RUNNING)
            fo_http_respond_error(r, 503, "shutting down");
        else if (rt->status)
            fo_http_respond_error(r, rt->status, rt->error);
        else
            audit(h, r, name, rt->from);
        fo_arena_destroy(&a);
        return;
    }
    if (rt->status) { /* a bad at, from or to; an unknown endpoint */
        fo_arena_destroy(&a);
        fo_http_respond_error(r, rt->status, rt->error);
        return;
    }
    memset(&m, 0, sizeof(m));
    m.model = name;
    m.model_len = (uint32_t)nlen;
    if (rt->kind == FO_ROUTE_MODEL_GET) {
        m.type = FO_MSG_GET;
        m.at = rt->at;
        m.has_at = rt->has_at;
    } else {
        m.type = FO_MSG_HISTORY;
        m.from = rt->from;
        m.to = rt->to;
        m.has_to = rt->has_to;
    }
    if (h->phase != FO_HUB_RUNNING) {
        fo_arena_destroy(&a);
        fo_http_respond_error(r, 503, "shutting down");
        return;
    }
    fo_model_submit_read(h, &r->sink, &m, &a);
}

static const char *mime(const char *path)
{
    const char *dot = strrchr(path, '.');
    static const char *const map[][2] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript"},
        {".mjs", "text/javascript"},           {".css", "text/css"},
        {".json", "application/json"},         {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".ico", "image/x-icon"},
        {".map", "application/json"},          {".txt", "text/plain"},
    };
    size_t i;

    for (i = 0; dot && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(dot, map[i][0]) == 0)
            return map[i][1];
    return "application/octet-stream";
}

/* Serves the file rt->path (route.h: relative, no "..") of `dir` (--static, --console-dir).
 * The resolved path must still be inside `dir`: a symlink may point anywhere. Returns 1
 * when lws took over the transaction. */
static int static_file(const char *dir, fo_http_req *r, struct lws *wsi, const fo_route *rt)
{
    char path[PATH_MAX], real[PATH_MAX], root[PATH_MAX];
    struct stat st;
    size_t rlen;
    int n;

    if (!dir[0] || rt->status || !realpath(dir, root)) {
        fo_http_respond_error(r, 404, "not found");
        return 0;
    }
    rlen = strlen(root);
    /* inside: root itself or below it; "/srv/www" must not admit "/srv/www-old/x" */
    if (snprintf(path, sizeof(path), "%s/%s", root, rt->path) >= (int)sizeof(path) ||
        !realpath(path, real) || strncmp(real, root, rlen) != 0 ||
        (rlen > 1 && real[rlen] != '/' && real[rlen] != '\0') || stat(real, &st) != 0 ||
        !S_ISREG(st.st_mode)) { /* a folder is not a file */
        fo_http_respond_error(r, 404, "not found");
        return 0;
    }
    n = lws_serve_http_file(wsi, real, mime(real), NULL, 0);
    if (n < 0)
        return -1;
    r->ready = true;
    r->headers_sent = true;
    r->off = r->len = 0;
    return 1;
}

/* Answers the routed request; -1 closes the connection. */
static int serve(fo_hub *h, fo_http_req *r, struct lws *wsi, const fo_route *rt)
{
    unsigned char hbuf[LWS_PRE + 512], *p = hbuf + LWS_PRE, *end = hbuf + sizeof(hbuf) - 1;

    switch (rt->kind) {
    case FO_ROUTE_ERROR: fo_http_respond_error(r, rt->status, rt->error); return 0;
    case FO_ROUTE_HEALTHZ:
        respond_text(r, h->phase == FO_HUB_RUNNING ? 200 : 503, "text/plain",
                     h->phase == FO_HUB_RUNNING ? "ok\n" : "shutting down\n");
        return 0;
    case FO_ROUTE_METRICS: metrics(h, r); return 0;
    case FO_ROUTE_MODEL_GET:
    case FO_ROUTE_MODEL_HISTORY:
    case FO_ROUTE_MODEL_AUDIT:
    case FO_ROUTE_MODEL_OTHER: model_route(h, r, wsi, rt); return 0;
    case FO_ROUTE_CONSOLE_FEED:
    case FO_ROUTE_CONSOLE_MODELS:
    case FO_ROUTE_CONSOLE_MODEL:
    case FO_ROUTE_CONSOLE_OTHER: console_route(h, r, wsi, rt); return 0;
    case FO_ROUTE_CONSOLE_REDIRECT:
        if (lws_http_redirect(wsi, HTTP_STATUS_MOVED_PERMANENTLY,
                              (const unsigned char *)"/console/", 9, &p, end) < 0)
            return -1;
        r->ready = r->headers_sent = true; /* lws wrote the redirect itself */
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case FO_ROUTE_CONSOLE_FILE:
        if (!h->cfg.console_dir[0]) {
            fo_http_respond_error(r, 404, "the console is not installed: build "
                                          "clients/console (npm run build) and start the "
                                          "hub with --console-dir clients/console/dist");
            return 0;
        }
        return static_file(h->cfg.console_dir, r, wsi, rt) < 0 ? -1 : 0;
    case FO_ROUTE_STATIC_FILE: return static_file(h->cfg.static_dir, r, wsi, rt) < 0 ? -1 : 0;
    }
    return -1;
}

/* The query arguments as lws holds them (route.h), copied into buf (total length + 1
 * bytes: each fragment and its NUL). Fragment by fragment at most 2048 bytes, the largest
 * buffer the routes ever used: the first longer one ends the list, as it ended every
 * lws_get_urlarg_by_name search. lws keeps fewer than WSI_TOKEN_COUNT fragments. */
static size_t query_args(struct lws *wsi, char *buf, size_t cap, fo_route_arg *args)
{
    size_t n = 0, used = 0;
    int len;

    while (n < WSI_TOKEN_COUNT && cap - used > 1) {
        size_t room = cap - used < 2048 ? cap - used : 2048;
        len = lws_hdr_copy_fragment(wsi, buf + used, (int)room, WSI_TOKEN_HTTP_URI_ARGS, (int)n);
        if (len < 0)
            break;
        args[n].s = buf + used;
        args[n].len = (size_t)len;
        used += (size_t)len + 1;
        n++;
    }
    return n;
}

static int on_request(fo_hub *h, struct lws *wsi, fo_http_req **slot, const char *uri)
{
    fo_http_req *r = calloc(1, sizeof(*r));
    fo_route_arg args[WSI_TOKEN_COUNT];
    size_t cap;
    char *buf;
    fo_route *rt;
    int rc;

    if (!r)
        return -1;
    r->sink.ops = &http_sink;
    r->refs = 1;
    r->hub = h;
    r->wsi = wsi;
    *slot = r;
    if (!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)) {
        fo_http_respond_error(r, 405, "only GET is supported");
        return 0;
    }
    cap = (size_t)lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) + 1;
    buf = malloc(cap);
    rt = malloc(sizeof(*rt));
    if (!buf || !rt) {
        free(buf);
        free(rt);
        fo_http_respond_error(r, 500, "out of memory");
        return 0;
    }
    fo_route_parse(uri, args, query_args(wsi, buf, cap, args), rt);
    rc = serve(h, r, wsi, rt);
    free(rt);
    free(buf);
    return rc;
}

static int on_writeable(fo_http_req *r, struct lws *wsi)
{
    unsigned char buf[LWS_PRE + CHUNK + 1024], *start = buf + LWS_PRE, *p = start,
                                               *end = buf + sizeof(buf) - 1;
    size_t n;

    if (!r || !r->ready)
        return 0;
    if (!r->headers_sent) {
        if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->content_type,
                                        (lws_filepos_t)r->len, &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end) ||
            (r->status == 401 &&
             lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                         (const unsigned char *)"Bearer", 6, &p, end)) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        r->headers_sent = true;
        if (r->len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    n = r->len - r->off;
    if (n > CHUNK)
        n = CHUNK;
    if (n)
        memcpy(start, r->body + r->off, n);
    r->off += n;
    if (lws_write(wsi, start, n, r->off == r->len ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
        (int)n)
        return -1;
    if (r->off < r->len) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    r->ready = false; /* written: nothing more for this transaction */
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static void detach(fo_http_req **slot)
{
    if (slot && *slot) {
        (*slot)->wsi = NULL;
        fo_http_req_unref(*slot);
        *slot = NULL;
    }
}

int fo_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    fo_hub *h = lws_context_user(lws_get_context(wsi));
    fo_http_req **slot = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        detach(slot); /* keep-alive: a new transaction on the same connection */
        return slot ? on_request(h, wsi, slot, in) : -1;
    case LWS_CALLBACK_HTTP_WRITEABLE: return on_writeable(slot ? *slot : NULL, wsi);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        /* The hub takes upgrades on /v1/ws itself (listener.h): lws sees the others. */
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "WebSocket endpoint is /v1/ws");
        return 1;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        detach(slot);
        return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
