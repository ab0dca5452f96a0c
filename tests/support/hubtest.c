/* hubtest.c - see hubtest.h. */
#include "tests/support/hubtest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/json.h"
#include "tests/support/natsproc.h"
#include "tests/support/wsnet.h"

/* Registry for ht_cleanup: tests end early on a failed assertion. */
#define MAX_HUBS 16
#define MAX_CLIENTS 512
static fo_hubproc *hubs[MAX_HUBS];
static ht_client *clients[MAX_CLIENTS];

/* Other things to free at cleanup (oracles, logs, proxies a test made). */
typedef struct deferred {
    void (*fn)(void *);
    void *p;
} deferred;
static deferred defers[256];

void ht_defer(void (*fn)(void *), void *p)
{
    for (int i = 0; i < 256; i++)
        if (!defers[i].p) {
            defers[i] = (deferred){fn, p};
            return;
        }
    cr_assert_fail("hubtest: too many deferred frees");
}

void ht_undefer(void *p)
{
    for (int i = 0; i < 256; i++)
        if (defers[i].p == p)
            defers[i].p = NULL;
}

static void reg(void **arr, int n, void *p)
{
    for (int i = 0; i < n; i++)
        if (!arr[i]) {
            arr[i] = p;
            return;
        }
    cr_assert_fail("hubtest: too many live objects (%d)", n);
}

static void unreg(void **arr, int n, void *p)
{
    for (int i = 0; i < n; i++)
        if (arr[i] == p)
            arr[i] = NULL;
}


int64_t ht_now_ms(void)
{
    return fo_wsnet_now_ms();
}

/* ---- hubs ---------------------------------------------------------------------------------- */

void ht_hub_dump(const fo_hubproc *h)
{
    char *tail;

    if (!h)
        return;
    tail = fo_hubproc_log_tail(h, 3000);
    fprintf(stderr, "---- end of the hub's log (%s) ----\n%s\n---- (log ends) ----\n",
            fo_hubproc_log_path(h), tail ? tail : "(unreadable)");
    free(tail);
}

fo_hubproc *ht_hub_start_opts(const fo_hubproc_options *o)
{
    fo_hubproc *h = fo_hubproc_new(o);

    cr_assert_not_null(h, "hubproc: cannot make a temporary folder");
    reg((void **)hubs, MAX_HUBS, h);
    cr_assert_eq(fo_hubproc_start(h), 0, "the hub did not start: %s", fo_hubproc_error(h));
    return h;
}

fo_hubproc *ht_hub_start(const char *store, const char *const *args)
{
    fo_hubproc_options o = {.store = store, .args = args};

    return ht_hub_start_opts(&o);
}

void ht_hub_restart(fo_hubproc *h)
{
    cr_assert_eq(fo_hubproc_start(h), 0, "the hub did not restart: %s", fo_hubproc_error(h));
}

void ht_hub_stop_ok(fo_hubproc *h, int timeout_ms)
{
    int st = -1;
    char s[96];

    if (fo_hubproc_stop(h, timeout_ms, &st) != 0) {
        ht_hub_dump(h);
        cr_assert_fail("the hub did not exit within %d ms of SIGTERM (killed)", timeout_ms);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        ht_hub_dump(h);
        cr_assert_fail("after SIGTERM the hub ended with %s, want exit 0",
                       fo_hubproc_status_str(st, s, sizeof(s)));
    }
}

void ht_cleanup(void)
{
    int i;

    /* Deferred frees first: peers close their own clients. */
    for (i = 0; i < 256; i++) {
        if (defers[i].p) {
            void *p = defers[i].p;
            defers[i].p = NULL;
            defers[i].fn(p);
        }
    }
    for (i = 0; i < MAX_CLIENTS; i++)
        if (clients[i])
            ht_drop(clients[i]);
    for (i = 0; i < MAX_HUBS; i++) {
        fo_hubproc_free(hubs[i]);
        hubs[i] = NULL;
    }
}

static void proxy_free_cb(void *p)
{
    fo_proxy_free(p);
}

fo_proxy *ht_proxy_new(const fo_snapshot *s)
{
    fo_proxy_config cfg = {FO_IDS_SEQUENTIAL, {NULL, NULL}};
    fo_proxy *p = fo_proxy_new(s, &cfg);

    cr_assert_not_null(p);
    ht_defer(proxy_free_cb, p);
    return p;
}

void ht_proxy_free(fo_proxy *p)
{
    ht_undefer(p);
    fo_proxy_free(p);
}

/* ---- clients ------------------------------------------------------------------------------- */

ht_client *ht_connect_raw(fo_hubproc *h, const fo_ws_options *o)
{
    fo_ws_options opts = {0};
    fo_ws_result res;
    ht_client *c;

    if (o)
        opts = *o;
    if (!opts.port)
        opts.port = fo_hubproc_port(h);
    c = calloc(1, sizeof(*c));
    cr_assert_not_null(c);
    c->hub = h;
    fo_arena_init(&c->arena, 0);
    snprintf(c->id, sizeof(c->id), "(no hello)");
    c->ws = fo_ws_connect(&opts, &res);
    if (!c->ws) {
        fo_arena_destroy(&c->arena);
        free(c);
        ht_hub_dump(h);
        cr_assert_fail("connect to the hub on port %d: %s", opts.port, res.message);
    }
    reg((void **)clients, MAX_CLIENTS, c);
    return c;
}

ht_client *ht_connect(fo_hubproc *h, const char *client_id)
{
    ht_client *c = ht_connect_raw(h, NULL);
    fo_msg m = {.type = FO_MSG_HELLO, .client = client_id};
    uint64_t rid;

    snprintf(c->id, sizeof(c->id), "%s", client_id);
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_WELCOME, rid, &m);
    cr_assert_not_null(m.session);
    cr_assert_not_null(m.server);
    snprintf(c->session, sizeof(c->session), "%s", m.session);
    snprintf(c->server, sizeof(c->server), "%s", m.server);
    c->max_frame = m.max_frame;
    fo_arena_reset(&c->arena);
    return c;
}

void ht_drop(ht_client *c)
{
    if (!c)
        return;
    unreg((void **)clients, MAX_CLIENTS, c);
    fo_ws_free(c->ws);
    fo_arena_destroy(&c->arena);
    free(c);
}

void ht_close(ht_client *c)
{
    if (!c)
        return;
    fo_ws_close(c->ws, 1000, 2000);
    ht_drop(c);
}

void ht_client_reset_arena(ht_client *c)
{
    fo_arena_reset(&c->arena);
}

void ht_send_norid(ht_client *c, const fo_msg *m)
{
    int rc = fo_ws_send_msg(c->ws, m);

    if (rc)
        HT_FAIL(c, "[%s] sending `%s`: %s", c->id, fo_msg_type_name(m->type), fo_ws_error(c->ws));
}

uint64_t ht_send(ht_client *c, fo_msg *m)
{
    m->has_rid = true;
    m->rid = ++c->rid;
    ht_send_norid(c, m);
    return m->rid;
}

void ht_send_bytes(ht_client *c, const void *p, size_t n)
{
    if (fo_ws_send(c->ws, FO_WS_BINARY, p, n) != 0)
        HT_FAIL(c, "[%s] sending %zu bytes: %s", c->id, n, fo_ws_error(c->ws));
}

void ht_recv(ht_client *c, fo_msg *out)
{
    if (fo_ws_recv_msg(c->ws, HT_TIMEOUT_MS, &c->arena, out) != 0)
        HT_FAIL(c, "[%s] %s", c->id, fo_ws_error(c->ws));
}

void ht_expect(ht_client *c, fo_msg_type t, fo_msg *out)
{
    if (fo_ws_expect(c->ws, t, HT_TIMEOUT_MS, &c->arena, out) != 0)
        HT_FAIL(c, "[%s] %s", c->id, fo_ws_error(c->ws));
}

void ht_expect_reply(ht_client *c, fo_msg_type t, uint64_t rid, fo_msg *out)
{
    char d[512];

    ht_expect(c, t, out);
    if (!out->has_rid || out->rid != rid)
        HT_FAIL(c, "[%s] reply %s should carry rid=%llu", c->id, fo_ws_describe(out, d, sizeof(d)),
                (unsigned long long)rid);
}

void ht_expect_error(ht_client *c, fo_error_code code, uint64_t rid, const char *needle)
{
    fo_msg m;
    char d[512];

    ht_expect(c, FO_MSG_ERROR, &m);
    fo_ws_describe(&m, d, sizeof(d));
    if (m.code != code)
        HT_FAIL(c, "[%s] want error code %s, got %s", c->id, fo_error_code_name(code), d);
    if (rid && (!m.has_rid || m.rid != rid))
        HT_FAIL(c, "[%s] want error with rid=%llu, got %s", c->id, (unsigned long long)rid, d);
    if (!rid && m.has_rid)
        HT_FAIL(c, "[%s] want error without rid, got %s", c->id, d);
    if (needle && (!m.message || !strstr(m.message, needle)))
        HT_FAIL(c, "[%s] want error message naming `%s`, got %s", c->id, needle, d);
}

void ht_expect_silence(ht_client *c, int ms)
{
    fo_msg m;
    char d[512];
    int rc = fo_ws_recv_msg(c->ws, ms, &c->arena, &m);

    if (rc == FO_WS_ETIMEDOUT)
        return;
    if (rc)
        HT_FAIL(c, "[%s] want silence for %d ms: %s", c->id, ms, fo_ws_error(c->ws));
    HT_FAIL(c, "[%s] want silence for %d ms, got %s", c->id, ms, fo_ws_describe(&m, d, sizeof(d)));
}

int ht_expect_close(ht_client *c, int code, int timeout_ms)
{
    fo_ws_message wm;
    int rc = fo_ws_recv(c->ws, timeout_ms, &wm);

    if (rc)
        HT_FAIL(c, "[%s] want a close frame: %s", c->id, fo_ws_error(c->ws));
    if (wm.opcode != FO_WS_CLOSE)
        HT_FAIL(c, "[%s] want a close frame, got a %s frame of %zu bytes", c->id,
                wm.opcode == FO_WS_TEXT ? "text" : "binary", wm.len);
    if (code >= 0 && wm.close_code != code)
        HT_FAIL(c, "[%s] want close code %d, got %d (%.*s)", c->id, code, wm.close_code,
                (int)wm.len, wm.data);
    return wm.close_code;
}

static void set_model(fo_msg *m, const char *model)
{
    m->model = model;
    m->model_len = (uint32_t)strlen(model);
}

static void check_model(ht_client *c, const fo_msg *m, const char *model)
{
    char d[512];

    if (!m->model || strcmp(m->model, model) != 0)
        HT_FAIL(c, "[%s] reply %s should name model %s", c->id, fo_ws_describe(m, d, sizeof(d)),
                model);
}

fo_snapshot ht_sub(ht_client *c, const char *model)
{
    fo_msg m = {.type = FO_MSG_SUB};
    uint64_t rid;

    set_model(&m, model);
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_SNAP, rid, &m);
    check_model(c, &m, model);
    return m.snapshot;
}

static fo_snapshot get(ht_client *c, const char *model, bool has_at, uint64_t at)
{
    fo_msg m = {.type = FO_MSG_GET, .has_at = has_at, .at = at};
    uint64_t rid;

    set_model(&m, model);
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_SNAP, rid, &m);
    check_model(c, &m, model);
    return m.snapshot;
}

fo_snapshot ht_get(ht_client *c, const char *model)
{
    return get(c, model, false, 0);
}

fo_snapshot ht_get_at(ht_client *c, const char *model, uint64_t at)
{
    return get(c, model, true, at);
}

fo_batch ht_history(ht_client *c, const char *model, uint64_t from, bool has_to, uint64_t to)
{
    fo_msg m = {.type = FO_MSG_HISTORY, .from = from, .has_to = has_to, .to = to};
    uint64_t rid;

    set_model(&m, model);
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_DIFF, rid, &m);
    check_model(c, &m, model);
    return m.batch;
}

void ht_unsub(ht_client *c, const char *model)
{
    fo_msg m = {.type = FO_MSG_UNSUB};
    uint64_t rid;

    set_model(&m, model);
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_OK, rid, &m);
}

void ht_presence(ht_client *c, const char *model, const fo_value *state)
{
    fo_msg m = {.type = FO_MSG_PRESENCE, .state = state};
    uint64_t rid;

    set_model(&m, model);
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_OK, rid, &m);
}

fo_apply_result ht_flush_seq(ht_client *c, const char *model, uint64_t seq, const fo_batch *b)
{
    fo_msg m = {.type = FO_MSG_FLUSH, .seq = seq, .batch = *b};
    uint64_t rid;
    char d[512];

    set_model(&m, model);
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_ACK, rid, &m);
    check_model(c, &m, model);
    if (m.seq != seq)
        HT_FAIL(c, "[%s] ack %s should carry seq=%llu", c->id, fo_ws_describe(&m, d, sizeof(d)),
                (unsigned long long)seq);
    return m.result;
}

fo_apply_result ht_flush(ht_client *c, const char *model, const fo_batch *b)
{
    return ht_flush_seq(c, model, ++c->seq, b);
}

/* ---- values -------------------------------------------------------------------------------- */

static char *finish_json(fo_buf *b, int rc)
{
    char nul = 0;

    cr_assert_eq(rc, 0, "JSON export failed: %s", fo_strerror(rc));
    cr_assert_eq(fo_buf_append(b, &nul, 1), 0);
    return fo_buf_release(b);
}

char *ht_json(const fo_value *v)
{
    fo_buf b;

    fo_buf_init(&b, 0);
    return finish_json(&b, fo_json_write_value(v, FO_JSON_SORT_KEYS, &b));
}

char *ht_json_result(const fo_apply_result *r)
{
    fo_buf b;

    fo_buf_init(&b, 0);
    return finish_json(&b, fo_json_write_result(r, FO_JSON_SORT_KEYS, &b));
}

char *ht_json_batch(const fo_batch *bt)
{
    fo_buf b;

    fo_buf_init(&b, 0);
    return finish_json(&b, fo_json_write_batch(bt, FO_JSON_SORT_KEYS, &b));
}

fo_value ht_val(fo_arena *a, const char *json)
{
    fo_value v;
    fo_err_info err;
    int rc = fo_json_read_value(json, strlen(json), 64, a, &v, &err);

    cr_assert_eq(rc, 0, "bad test JSON %.200s: %s", json, err.msg);
    return v;
}

fo_batch ht_batch_json(fo_arena *a, const char *json)
{
    fo_batch b;
    fo_err_info err;
    int rc = fo_json_read_batch(json, strlen(json), a, &b, &err);

    cr_assert_eq(rc, 0, "bad test batch %.200s: %s %s", json, err.path, err.msg);
    return b;
}

void ht_log_diff(const char *what, const char *got, const char *want)
{
    size_t i = 0;

    while (got[i] && got[i] == want[i])
        i++;
    cr_log_error("%s differs at byte %zu", what, i);
    cr_log_error("got  %.3000s%s", got, strlen(got) > 3000 ? " ..." : "");
    cr_log_error("want %.3000s%s", want, strlen(want) > 3000 ? " ..." : "");
}

void ht_assert_value_eq(const fo_value *got, const fo_value *want, const char *what)
{
    char *g, *w;

    if (fo_value_eq(got, want))
        return;
    g = ht_json(got);
    w = ht_json(want);
    ht_log_diff(what, g, w);
    free(g);
    free(w);
    cr_assert_fail("%s differs (see the log above)", what);
}

/* Results and batches compare as JSON trees: map order does not matter, list order does. */
static void assert_json_eq(char *g, char *w, const char *what)
{
    fo_arena a;
    fo_value gv, wv;
    bool eq;

    fo_arena_init(&a, 0);
    gv = ht_val(&a, g);
    wv = ht_val(&a, w);
    eq = fo_value_eq(&gv, &wv);
    fo_arena_destroy(&a);
    if (!eq)
        ht_log_diff(what, g, w);
    free(g);
    free(w);
    if (!eq)
        cr_assert_fail("%s differs (see the log above)", what);
}

void ht_assert_result_eq(const fo_apply_result *got, const fo_apply_result *want, const char *what)
{
    assert_json_eq(ht_json_result(got), ht_json_result(want), what);
}

void ht_assert_batch_eq(const fo_batch *got, const fo_batch *want, const char *what)
{
    assert_json_eq(ht_json_batch(got), ht_json_batch(want), what);
}

void ht_hup(fo_hubproc *h, const char *needle, int min)
{
    int i;

    cr_assert_eq(fo_hubproc_signal(h, SIGHUP), 0);
    for (i = 0; i < 500 && fo_hubproc_log_count(h, needle) < min; i++)
        usleep(10 * 1000);
    if (fo_hubproc_log_count(h, needle) < min) {
        ht_hub_dump(h);
        cr_assert_fail("after SIGHUP the log never had %d lines with '%s'", min, needle);
    }
}

uint64_t ht_metric(fo_hubproc *h, const char *name)
{
    size_t nlen = strlen(name), len;
    int status;
    char *body, *p;
    uint64_t v = 0;
    bool found = false;

    cr_assert_eq(fo_http_get(NULL, fo_hubproc_port(h), "/metrics", NULL, HT_TIMEOUT_MS, &status,
                             &body, &len),
                 0, "GET /metrics failed");
    cr_assert_eq(status, 200);
    for (p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, nlen) == 0 && p[nlen] == ' ') {
            v = strtoull(p + nlen + 1, NULL, 10);
            found = true;
            break;
        }
    }
    free(body);
    cr_assert(found, "/metrics has no %s", name);
    return v;
}

uint64_t ht_wait_metric(fo_hubproc *h, const char *name, uint64_t min, int timeout_ms)
{
    int64_t until = ht_now_ms() + timeout_ms;
    uint64_t v;

    while ((v = ht_metric(h, name)) < min && ht_now_ms() < until)
        usleep(5000);
    return v;
}

/* ---- flushes that may fail ------------------------------------------------------------------- */

/* The message of update [] {key: "x" * pad} claiming count `from`, in c->arena. */
fo_msg ht_update_msg(ht_client *c, const char *model, uint64_t seq, uint64_t from, const char *key,
                     size_t pad)
{
    char *json = malloc(pad + 256);
    fo_msg m = {.type = FO_MSG_FLUSH, .model = model, .model_len = (uint32_t)strlen(model)};
    int n;

    cr_assert_not_null(json);
    n = snprintf(json, pad + 256,
                 "{\"from\":%llu,\"completions\":[{\"command\":{\"action\":\"update\","
                 "\"props\":{\"%s\":\"",
                 (unsigned long long)from, key);
    memset(json + n, 'x', pad);
    snprintf(json + n + pad, 256 - (size_t)n, "\"}}}]}");
    m.seq = seq;
    m.batch = ht_batch_json(&c->arena, json);
    free(json);
    return m;
}

/* Sends a flush and returns its answer: an ack or an error carrying its rid (anything else
 * fails the test). */
fo_msg ht_flush_reply(ht_client *c, fo_msg *m)
{
    uint64_t rid = ht_send(c, m);
    fo_msg r;
    char d[512];

    ht_recv(c, &r);
    if ((r.type != FO_MSG_ACK && r.type != FO_MSG_ERROR) || !r.has_rid || r.rid != rid)
        HT_FAIL(c, "[%s] want the flush's ack or error (rid %llu), got %s", c->id,
                (unsigned long long)rid, fo_ws_describe(&r, d, sizeof(d)));
    return r;
}

/* The key of a one-key update into out ("?" if it is not one); returns out. */
const char *ht_update_key(const fo_completion *c, char *out, size_t n)
{
    const fo_map *props;
    const fo_entry *e;
    char num[20];
    const char *k;
    size_t len;

    snprintf(out, n, "?");
    if (!c->command.props || fo_value_type(c->command.props) != FO_MAP)
        return out;
    props = fo_value_as_map(c->command.props);
    if (fo_map_count(props) != 1)
        return out;
    e = fo_map_entries(props);
    for (uint32_t i = 0; i < fo_map_len(props); i++) {
        if (!e[i].key)
            continue;
        k = fo_key_str(e[i].key, num, &len);
        snprintf(out, n, "%.*s", (int)len, k);
    }
    return out;
}

static void free_nats(void *n)
{
    fo_natsproc_free(n);
}

struct fo_natsproc *ht_nats_start(void)
{
    fo_natsproc *n;

    if (!fo_natsproc_bin())
        cr_skip_test("no nats-server binary (install Debian's nats-server, or set "
                     "FO_NATS_SERVER): --cluster is not tested");
    n = fo_natsproc_start();
    cr_assert_not_null(n, "nats-server did not start");
    ht_defer(free_nats, n);
    return n;
}

fo_batch ht_update_batch(fo_arena *a, uint64_t from, const char *key, int v)
{
    char json[200];

    snprintf(json, sizeof(json),
             "{\"from\":%llu,\"completions\":[{\"command\":{\"action\":\"update\","
             "\"props\":{\"%s\":%d}}}]}",
             (unsigned long long)from, key, v);
    return ht_batch_json(a, json);
}
