/* diff_replay.c - the C half of the differential test against the reference implementation.
 *
 * Reads a trace written by gen.mjs (JSON lines; stdin or the file named as the only
 * argument), replays every operation against the C core (fo_master, fo_proxy with
 * sequential IDs, the same history retention and the same interceptor rule as gen.mjs),
 * and compares every output and every state the trace records. On the first mismatch it
 * prints the step, the operation and both sides as JSON and exits 1. The last line is
 * always `diff: N passed, N failed` (N = steps).
 *
 * The C side is driven by its own outputs, not by the reference's: the batch sent to the
 * master is the one fo_proxy_begin_flush returned, and the sync given to
 * fo_proxy_end_flush is the one fo_master_apply returned (deep-copied, as it would be after
 * travelling over the wire). The reference's values are only compared against. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/json.h"
#include "proto/master.h"
#include "proto/proxy.h"

#define MAX_PROXIES 64
#define FULL 6 /* gen.mjs: a create into a nested map with this many keys is rejected */

typedef struct flight {
    bool active;            /* between begin and end/cancel */
    bool sent;              /* the master has answered; `result` holds its copy */
    fo_batch batch;         /* from fo_proxy_begin_flush, borrowed from the proxy */
    fo_arena arena;         /* owns `result` */
    fo_apply_result result; /* deep copy of the master's answer */
} flight;

typedef struct slot {
    fo_proxy *proxy;
    flight f;
} slot;

typedef enum { HIST_OFF, HIST_ON, HIST_RETENTION, HIST_TRUNCATE } hist_mode;

typedef struct replay {
    fo_master *master;
    slot proxies[MAX_PROXIES];
    uint32_t nproxies;
    bool icept_master, icept_proxy;
    hist_mode hmode;
    uint64_t retention;
    uint64_t base;       /* the initial command count: history starts there */
    fo_arena hist_arena; /* owns every command in `hist` */
    fo_completion *hist; /* malloc'd; hist[i] took the master from base + i to base + i + 1 */
    uint64_t hist_len, hist_cap;
    /* current step, for messages */
    uint64_t step;
    const char *op;
    long proxy;
    const char *line;
    size_t line_len;
    uint64_t passed;
} replay;

/* ---- small helpers ------------------------------------------------------------------- */

static void die(const char *what, int rc)
{
    fprintf(stderr, "diff_replay: %s: %s (%d)\n", what, fo_strerror(rc), rc);
    exit(2);
}

static const fo_value *field(fo_arena *a, const fo_value *obj, const char *name)
{
    fo_key k;

    if (!obj || fo_value_type(obj) != FO_MAP)
        return NULL;
    if (!(k = fo_key_new_cstr(a, name)))
        die("key", FO_ENOMEM);
    return fo_map_get(fo_value_as_map(obj), k);
}

static bool str_eq(const fo_value *v, const char *s)
{
    size_t l;
    const char *b;

    if (!v || fo_value_type(v) != FO_STR)
        return false;
    b = fo_value_strbuf(v, &l);
    return l == strlen(s) && memcmp(b, s, l) == 0;
}

static bool as_u64(const fo_value *v, uint64_t *out)
{
    if (!v || fo_value_type(v) != FO_INT || v->h.as.i < 0)
        return false;
    *out = (uint64_t)v->h.as.i;
    return true;
}

static bool key_is(fo_key k, const char *s)
{
    char buf[20];
    size_t l;
    const char *t = fo_key_str(k, buf, &l);

    return l == strlen(s) && memcmp(t, s, l) == 0;
}

/* Sorted-key JSON of a value, into a static-lifetime malloc'd string the caller frees. */
static char *to_json(const fo_value *v)
{
    fo_buf b;
    char nul = 0;

    fo_buf_init(&b, 0);
    if (!v) {
        fo_buf_append(&b, "(absent)", 8);
    } else if (fo_json_write_value(v, FO_JSON_SORT_KEYS, &b)) {
        fo_buf_append(&b, "(unprintable)", 13);
    }
    fo_buf_append(&b, &nul, 1);
    return fo_buf_release(&b);
}

/* ---- reporting ----------------------------------------------------------------------- */

static void finish(const replay *r, uint64_t failed)
{
    printf("diff: %" PRIu64 " passed, %" PRIu64 " failed\n", r->passed, failed);
    fflush(stdout);
}

/* Appends to `at` (a path like `.sync.mappedPaths["5"]`) the place where the two values
 * first differ; false when they are equal. */
static bool locate(const fo_value *w, const fo_value *g, char *at, size_t cap)
{
    size_t len = strlen(at);
    uint32_t i;

    if (!w || !g || fo_value_type(w) != fo_value_type(g))
        return !(w == NULL && g == NULL);
    if (fo_value_type(w) == FO_ARRAY) {
        for (i = 0; i < w->h.len && i < g->h.len; i++) {
            snprintf(at + len, cap - len, "[%" PRIu32 "]", i);
            if (locate(&w->h.as.items[i], &g->h.as.items[i], at, cap))
                return true;
        }
        snprintf(at + len, cap - len, " (length %" PRIu32 " vs %" PRIu32 ")", w->h.len, g->h.len);
        return w->h.len != g->h.len;
    }
    if (fo_value_type(w) == FO_MAP) {
        const fo_map *mw = fo_value_as_map(w), *mg = fo_value_as_map(g);
        for (int pass = 0; pass < 2; pass++) {
            const fo_map *a = pass ? mg : mw, *b = pass ? mw : mg;
            for (i = 0; i < fo_map_len(a); i++) {
                const fo_entry *e = &fo_map_entries(a)[i];
                const fo_value *other;
                char buf[20];
                size_t kl;
                const char *k;

                if (!e->key)
                    continue;
                k = fo_key_str(e->key, buf, &kl);
                snprintf(at + len, cap - len, "[\"%.*s\"]", (int)kl, k);
                other = fo_map_get(b, e->key);
                if (!other) {
                    snprintf(at + strlen(at), cap - strlen(at), " only in the %s",
                             pass ? "C core" : "reference");
                    return true;
                }
                if (!pass && locate(&e->value, other, at, cap))
                    return true;
            }
        }
        at[len] = '\0';
        return false;
    }
    return !fo_value_eq(w, g);
}

/* Prints the mismatch and exits 1. */
static void mismatch(replay *r, const char *what, const fo_value *want, const fo_value *got,
                     const char *detail)
{
    char *w = to_json(want), *g = to_json(got), at[512] = "";
    int shown = r->line_len > 4000 ? 4000 : (int)r->line_len;
    int ws = strlen(w) > 20000 ? 20000 : (int)strlen(w);
    int gs = strlen(g) > 20000 ? 20000 : (int)strlen(g);

    printf("MISMATCH at step %" PRIu64 ": op %s, proxy %ld: %s%s%s\n", r->step, r->op, r->proxy,
           what, detail ? ": " : "", detail ? detail : "");
    if (locate(want, got, at, sizeof(at)))
        printf("  first difference at: %s%s\n", what, at);
    printf("  trace line: %.*s%s\n", shown, r->line, (size_t)shown < r->line_len ? "..." : "");
    printf("  reference: %.*s%s\n", ws, w, (size_t)ws < strlen(w) ? "..." : "");
    printf("  C core:    %.*s%s\n", gs, g, (size_t)gs < strlen(g) ? "..." : "");
    free(w);
    free(g);
    finish(r, 1);
    exit(1);
}

static void mismatch_u64(replay *r, const char *what, uint64_t want, uint64_t got)
{
    fo_value w = fo_value_uint(want), g = fo_value_uint(got);
    mismatch(r, what, &w, &g, NULL);
}

/* ---- the interceptor gen.mjs also implements ----------------------------------------- */

static bool props_has(const fo_value *props, const char *k)
{
    const fo_map *m;
    uint32_t i;

    if (!props || !(m = fo_value_as_map(props)))
        return false;
    for (i = 0; i < fo_map_len(m); i++)
        if (fo_map_entries(m)[i].key && key_is(fo_map_entries(m)[i].key, k))
            return true;
    return false;
}

static int intercept(void *data, const fo_value *document, const fo_command *cmd, void *context,
                     fo_arena *arena, fo_interception *out)
{
    (void)data;
    (void)context;
    memset(out, 0, sizeof(*out));
    if (cmd->action == FO_UPDATE && props_has(cmd->props, "reject")) {
        out->kind = FO_INTERCEPT_REJECT;
        out->rejection = "rejected: update carries reject";
        return 0;
    }
    if (cmd->action == FO_DELETE && cmd->path.len &&
        key_is(cmd->path.seg[cmd->path.len - 1], "keep")) {
        out->kind = FO_INTERCEPT_REJECT;
        out->rejection = "rejected: keep is protected";
        return 0;
    }
    if (cmd->action == FO_CREATE && cmd->path.len > 0) {
        const fo_value *n = document;
        uint32_t i;

        for (i = 0; n && i < cmd->path.len; i++)
            n = fo_value_as_map(n) ? fo_map_get(fo_value_as_map(n), cmd->path.seg[i]) : NULL;
        if (n && fo_value_as_map(n) && fo_map_count(fo_value_as_map(n)) >= FULL) {
            out->kind = FO_INTERCEPT_REJECT;
            out->rejection = "rejected: container full";
            return 0;
        }
    }
    if ((cmd->action == FO_CREATE || cmd->action == FO_UPDATE) &&
        props_has(cmd->props, "rewrite")) {
        bool ok = true;
        fo_value *np = fo_arena_alloc(arena, sizeof(*np));
        fo_value t = fo_value_bool(true);
        fo_key k;

        if (!np)
            return FO_ENOMEM;
        *np = fo_value_map(arena, 1, &ok);
        if (!ok || !(k = fo_key_new_cstr(arena, "rewritten")) ||
            fo_map_set(fo_value_as_map(np), arena, k, &t, NULL))
            return FO_ENOMEM;
        out->kind = FO_INTERCEPT_REPLACE;
        out->new_props = np;
    }
    return 0;
}

/* ---- history ------------------------------------------------------------------------- */

static fo_key key_copy(fo_arena *a, fo_key k)
{
    char buf[20];
    size_t l;
    const char *s;

    if (!k || fo_key_is_num(k, NULL))
        return k;
    s = fo_key_str(k, buf, &l);
    if (!(k = fo_key_new(a, s, l)))
        die("copy", FO_ENOMEM);
    return k;
}

static void copy_batch(fo_arena *a, const fo_batch *in, fo_batch *out)
{
    fo_completion *items = NULL;
    uint32_t i;

    if (in->len)
        items = fo_arena_alloc(a, (size_t)in->len * sizeof(*items));
    if (in->len && !items)
        die("copy", FO_ENOMEM);
    for (i = 0; i < in->len; i++) {
        if (fo_command_copy(a, &in->items[i].command, &items[i].command))
            die("copy", FO_ENOMEM);
        items[i].created_id = key_copy(a, in->items[i].created_id);
    }
    out->from = in->from;
    out->len = in->len;
    out->items = items;
}

static void copy_result(fo_arena *a, const fo_apply_result *in, fo_apply_result *out)
{
    uint32_t i;

    memset(out, 0, sizeof(*out));
    copy_batch(a, &in->applied, &out->applied);
    out->sync.kind = in->sync.kind;
    if (in->sync.kind == FO_SYNC_PARTIAL) {
        copy_batch(a, &in->sync.diff, &out->sync.diff);
    } else if (in->sync.kind == FO_SYNC_FULL) {
        fo_value *doc = fo_arena_alloc(a, sizeof(*doc));
        if (!doc || fo_value_copy(a, in->sync.latest.document, doc, NULL, NULL))
            die("copy", FO_ENOMEM);
        out->sync.latest.command_count = in->sync.latest.command_count;
        out->sync.latest.document = doc;
    }
    out->sync.has_mapped = in->sync.has_mapped;
    if (in->sync.mapped_len) {
        fo_path_mapping *m = fo_arena_alloc(a, in->sync.mapped_len * sizeof(*m));
        if (!m)
            die("copy", FO_ENOMEM);
        for (i = 0; i < in->sync.mapped_len; i++)
            if (fo_path_copy(a, in->sync.mapped[i].from, &m[i].from) ||
                fo_path_copy(a, in->sync.mapped[i].to, &m[i].to))
                die("copy", FO_ENOMEM);
        out->sync.mapped = m;
        out->sync.mapped_len = in->sync.mapped_len;
    }
    /* Errors are not needed by end_flush; only compared before the copy. */
}

static void hist_append(replay *r, const fo_batch *applied)
{
    uint32_t i;

    for (i = 0; i < applied->len; i++) {
        fo_completion *c;

        if (r->hist_len == r->hist_cap) {
            r->hist_cap = r->hist_cap ? 2 * r->hist_cap : 256;
            r->hist = realloc(r->hist, r->hist_cap * sizeof(*r->hist));
            if (!r->hist)
                die("history", FO_ENOMEM);
        }
        c = &r->hist[r->hist_len++];
        if (fo_command_copy(&r->hist_arena, &applied->items[i].command, &c->command))
            die("history", FO_ENOMEM);
        c->created_id = key_copy(&r->hist_arena, applied->items[i].created_id);
    }
}

static int history(void *ctx, uint64_t from, uint64_t to, fo_arena *arena, fo_batch *out)
{
    replay *r = ctx;

    (void)arena;
    if (from < r->base || from > to || to > r->base + r->hist_len)
        return -1;
    if (r->hmode == HIST_RETENTION && from + r->retention < to)
        return -1;
    out->from = from;
    if (r->hmode == HIST_TRUNCATE && from + r->retention < to) {
        /* Too short on purpose: the master must answer with a full sync. */
        out->len = (uint32_t)r->retention;
        out->items = &r->hist[to - r->base - r->retention];
        return 0;
    }
    out->len = (uint32_t)(to - from);
    out->items = &r->hist[from - r->base];
    return 0;
}

/* ---- comparing ----------------------------------------------------------------------- */

/* A command with an empty `path` is written without it by the C side and may carry
 * `path: []` on the reference's: the wire treats both alike, so compare them alike. */
static void normalize(fo_arena *a, fo_value *v)
{
    fo_map *m;
    uint32_t i;

    if (fo_value_type(v) == FO_ARRAY) {
        for (i = 0; i < v->h.len; i++)
            normalize(a, &v->h.as.items[i]);
        return;
    }
    if (!(m = fo_value_as_map(v)))
        return;
    for (i = 0; i < fo_map_len(m); i++)
        if (fo_map_entries(m)[i].key)
            normalize(a, &fo_map_entries(m)[i].value);
    if (field(a, v, "action")) {
        const fo_value *p = field(a, v, "path");
        if (p && fo_value_type(p) == FO_ARRAY && p->h.len == 0)
            fo_map_del(m, a, fo_key_new_cstr(a, "path"));
    }
}

/* A C struct (a batch or an apply result) as a JSON value, through the exporter,
 * normalized. */
static fo_value struct_value(fo_arena *a, const fo_batch *batch, const fo_apply_result *res)
{
    fo_buf b;
    fo_value v;
    fo_err_info err;
    int rc;

    fo_buf_init(&b, 0);
    rc = batch ? fo_json_write_batch(batch, 0, &b) : fo_json_write_result(res, 0, &b);
    if (rc != 0)
        die("export", rc);
    if ((rc = fo_json_read_value(fo_buf_data(&b), b.len, 256, a, &v, &err)) != 0)
        die(err.msg, rc);
    fo_buf_destroy(&b);
    normalize(a, &v);
    return v;
}

/* A copy of a trace field, normalized (the trace value itself stays as read). */
static fo_value expected_value(replay *r, fo_arena *a, const fo_value *v, const char *what)
{
    fo_value c;

    if (!v)
        mismatch(r, what, NULL, NULL, "missing in the trace");
    if (fo_value_copy(a, v, &c, NULL, NULL))
        die("copy", FO_ENOMEM);
    normalize(a, &c);
    return c;
}

static void check_doc(replay *r, const char *what, const fo_value *want, const fo_value *got)
{
    if (!want || !got || !fo_value_eq(want, got))
        mismatch(r, what, want, got, NULL);
}

static void check_u64(replay *r, fo_arena *a, const fo_value *obj, const char *name,
                      const char *what, uint64_t got)
{
    uint64_t want;

    if (!as_u64(field(a, obj, name), &want))
        mismatch(r, what, field(a, obj, name), NULL, "not a count in the trace");
    if (want != got)
        mismatch_u64(r, what, want, got);
}

static void check_proxy_state(replay *r, fo_arena *a, const fo_value *line, const slot *s)
{
    const fo_value *st = field(a, line, "proxyState"), *f;
    fo_value got;

    if (!st)
        return;
    check_u64(r, a, st, "commandCount", "proxyState.commandCount", fo_proxy_count(s->proxy));
    check_doc(r, "proxyState.document", field(a, st, "document"), fo_proxy_document(s->proxy));
    check_u64(r, a, st, "committedCount", "proxyState.committedCount",
              fo_proxy_committed_count(s->proxy));
    if ((f = field(a, st, "committedDocument")) != NULL)
        check_doc(r, "proxyState.committedDocument", f, fo_proxy_committed_document(s->proxy));
    check_u64(r, a, st, "queueLen", "proxyState.queueLen", fo_proxy_queue_len(s->proxy));
    f = field(a, st, "flushing");
    got = fo_value_bool(fo_proxy_flushing(s->proxy));
    if (!f || !fo_value_eq(f, &got))
        mismatch(r, "proxyState.flushing", f, &got, NULL);
    check_u64(r, a, line, "masterCount", "masterCount",
              fo_master_snapshot(r->master).command_count);
}

/* ---- operations ---------------------------------------------------------------------- */

static slot *proxy_of(replay *r, fo_arena *a, const fo_value *line)
{
    uint64_t k;

    if (!as_u64(field(a, line, "proxy"), &k) || k >= r->nproxies)
        mismatch(r, "proxy index", field(a, line, "proxy"), NULL, "out of range in the trace");
    r->proxy = (long)k;
    return &r->proxies[k];
}

static void flight_drop(slot *s)
{
    if (s->f.sent)
        fo_arena_destroy(&s->f.arena);
    memset(&s->f, 0, sizeof(s->f));
}

static void op_config(replay *r, fo_arena *a, const fo_value *line)
{
    const fo_value *v = field(a, line, "initialSnapshot");
    fo_snapshot snap;
    fo_err_info err;
    fo_master_config mc;
    fo_proxy_config pc;
    uint64_t n, i;
    int rc;

    if ((rc = fo_json_snapshot_from_value(v, a, &snap, &err)) != 0)
        die(err.path, rc);
    v = field(a, line, "intercept");
    r->icept_master = str_eq(v, "master") || str_eq(v, "both");
    r->icept_proxy = str_eq(v, "proxy") || str_eq(v, "both");
    v = field(a, line, "history");
    r->hmode = str_eq(v, "on")          ? HIST_ON
               : str_eq(v, "retention") ? HIST_RETENTION
               : str_eq(v, "truncate")  ? HIST_TRUNCATE
                                        : HIST_OFF;
    if (!as_u64(field(a, line, "retention"), &r->retention) ||
        !as_u64(field(a, line, "proxies"), &n) || n > MAX_PROXIES)
        die("config line", FO_EINVAL);
    r->base = snap.command_count;

    memset(&mc, 0, sizeof(mc));
    mc.ids = FO_IDS_SEQUENTIAL;
    if (r->icept_master)
        mc.interceptor.fn = intercept;
    if (r->hmode != HIST_OFF) {
        mc.history = history;
        mc.history_ctx = r;
    }
    if (!(r->master = fo_master_new(&snap, &mc)))
        die("fo_master_new", FO_ENOMEM);
    memset(&pc, 0, sizeof(pc));
    pc.ids = FO_IDS_SEQUENTIAL;
    if (r->icept_proxy)
        pc.interceptor.fn = intercept;
    for (i = 0; i < n; i++)
        if (!(r->proxies[r->nproxies++].proxy = fo_proxy_new(&snap, &pc)))
            die("fo_proxy_new", FO_ENOMEM);
}

static void op_join(replay *r, fo_arena *a, const fo_value *line)
{
    fo_snapshot snap = fo_master_snapshot(r->master), want;
    fo_proxy_config pc;
    fo_err_info err;
    uint64_t k;
    int rc;

    if (!as_u64(field(a, line, "proxy"), &k) || k != r->nproxies || k >= MAX_PROXIES)
        die("join: proxy index", FO_EINVAL);
    r->proxy = (long)k;
    if ((rc = fo_json_snapshot_from_value(field(a, line, "snapshot"), a, &want, &err)) != 0)
        die(err.path, rc);
    if (want.command_count != snap.command_count)
        mismatch_u64(r, "snapshot.commandCount", want.command_count, snap.command_count);
    check_doc(r, "snapshot.document", want.document, snap.document);
    memset(&pc, 0, sizeof(pc));
    pc.ids = FO_IDS_SEQUENTIAL;
    if (r->icept_proxy)
        pc.interceptor.fn = intercept;
    if (!(r->proxies[r->nproxies++].proxy = fo_proxy_new(&snap, &pc)))
        die("fo_proxy_new", FO_ENOMEM);
    check_proxy_state(r, a, line, &r->proxies[k]);
}

static void op_apply(replay *r, fo_arena *a, const fo_value *line)
{
    slot *s = proxy_of(r, a, line);
    const fo_value *want = field(a, line, "result"), *w;
    fo_command cmd;
    fo_doc_result res;
    fo_err_info err;
    int rc;

    if ((rc = fo_json_command_from_value(field(a, line, "command"), a, &cmd, &err)) != 0)
        die(err.path, rc);
    if ((rc = fo_proxy_apply(s->proxy, &cmd, &res)) != 0)
        die("fo_proxy_apply", rc);
    w = field(a, want, "isSuccess");
    {
        fo_value ok = fo_value_bool(res.ok);
        if (!w || !fo_value_eq(w, &ok))
            mismatch(r, "result.isSuccess", want, &ok, res.ok ? NULL : res.error);
    }
    if (res.ok) {
        w = field(a, want, "createdId");
        if (w || res.created_id) {
            char buf[20];
            size_t l;
            const char *id = fo_key_str(res.created_id, buf, &l);
            fo_value got = fo_value_str_static(id, l);
            if (!w || !res.created_id || !fo_value_eq(w, &got))
                mismatch(r, "result.createdId", w, res.created_id ? &got : NULL, NULL);
        }
    } else {
        fo_value got = fo_value_str_static(res.error, strlen(res.error));
        w = field(a, want, "error");
        if (!w || !fo_value_eq(w, &got))
            mismatch(r, "result.error", w, &got, NULL);
    }
    check_proxy_state(r, a, line, s);
}

static void op_begin(replay *r, fo_arena *a, const fo_value *line)
{
    slot *s = proxy_of(r, a, line);
    const fo_value *want_err = field(a, line, "error");
    fo_batch batch;
    int rc = fo_proxy_begin_flush(s->proxy, &batch);

    if (want_err) {
        if (rc != FO_ESTATE) {
            fo_value got = fo_value_str_static(fo_strerror(rc), strlen(fo_strerror(rc)));
            mismatch(r, "beginFlush error", want_err, &got, "want FO_ESTATE");
        }
    } else {
        fo_value want, got;

        if (rc != 0)
            die("fo_proxy_begin_flush", rc);
        want = expected_value(r, a, field(a, line, "batch"), "batch");
        got = struct_value(a, &batch, NULL);
        if (!fo_value_eq(&want, &got))
            mismatch(r, "beginFlush batch", &want, &got, NULL);
        memset(&s->f, 0, sizeof(s->f));
        s->f.active = true;
        s->f.batch = batch;
    }
    check_proxy_state(r, a, line, s);
}

static void op_master(replay *r, fo_arena *a, const fo_value *line)
{
    slot *s = proxy_of(r, a, line);
    const fo_value *m = field(a, line, "master");
    fo_apply_result res;
    fo_snapshot snap;
    fo_value want, got;
    int rc;

    if (!s->f.active || s->f.sent)
        die("master: the proxy has no unsent flush", FO_ESTATE);
    if ((rc = fo_master_apply(r->master, &s->f.batch, NULL, a, &res)) != 0)
        die("fo_master_apply", rc);
    want = expected_value(r, a, field(a, line, "result"), "result");
    got = struct_value(a, NULL, &res);
    if (!fo_value_eq(&want, &got))
        mismatch(r, "master ApplyResult", &want, &got, NULL);
    fo_arena_init(&s->f.arena, 0);
    copy_result(&s->f.arena, &res, &s->f.result);
    s->f.sent = true;
    hist_append(r, &res.applied);
    snap = fo_master_snapshot(r->master);
    check_u64(r, a, m, "commandCount", "master.commandCount", snap.command_count);
    check_doc(r, "master.document", field(a, m, "document"), snap.document);
    if (r->hist_len != snap.command_count - r->base)
        mismatch_u64(r, "history length (applied completions vs count)",
                     snap.command_count - r->base, r->hist_len);
}

static void op_end(replay *r, fo_arena *a, const fo_value *line)
{
    slot *s = proxy_of(r, a, line);
    const fo_value *want = field(a, line, "result"), *w;
    const fo_sync *sync = NULL;
    bool ids = false;
    int rc;

    if (s->f.sent && s->f.result.sync.kind != FO_SYNC_NONE)
        sync = &s->f.result.sync;
    rc = fo_proxy_end_flush(s->proxy, sync, &ids);
    w = field(a, want, "error");
    if ((w != NULL) != (rc != 0)) {
        fo_value got = fo_value_str_static(fo_strerror(rc), strlen(fo_strerror(rc)));
        mismatch(r, "endFlush error", w, rc ? &got : NULL, NULL);
    }
    w = field(a, want, "idsChanged");
    {
        fo_value got = fo_value_bool(ids);
        if (!w || !fo_value_eq(w, &got))
            mismatch(r, "endFlush idsChanged", w, &got, NULL);
    }
    if (rc == 0)
        flight_drop(s);
    check_proxy_state(r, a, line, s);
}

static void op_cancel(replay *r, fo_arena *a, const fo_value *line)
{
    slot *s = proxy_of(r, a, line);
    int rc = fo_proxy_cancel_flush(s->proxy);

    if (rc != 0)
        die("fo_proxy_cancel_flush", rc);
    flight_drop(s);
    check_proxy_state(r, a, line, s);
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    replay r;
    FILE *in = stdin;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    fo_arena a;
    bool done = false;
    uint32_t i;

    if (argc > 2 || (argc == 2 && strcmp(argv[1], "-") != 0 && !(in = fopen(argv[1], "r")))) {
        fprintf(stderr, "usage: diff_replay [TRACE.jsonl | -]\n");
        return 2;
    }
    memset(&r, 0, sizeof(r));
    fo_arena_init(&r.hist_arena, 0);
    fo_arena_init(&a, 0);
    while ((n = getline(&buf, &cap, in)) > 0) {
        fo_value line;
        fo_err_info err;
        const fo_value *op;
        int rc;

        if (buf[n - 1] == '\n')
            n--;
        if (n == 0)
            continue;
        fo_arena_reset(&a);
        r.line = buf;
        r.line_len = (size_t)n;
        r.proxy = -1;
        if ((rc = fo_json_read_value(buf, (size_t)n, 256, &a, &line, &err)) != 0) {
            fprintf(stderr, "diff_replay: bad trace line (%s at %zu): %.200s\n", err.msg, err.pos,
                    buf);
            finish(&r, 1);
            return 2;
        }
        op = field(&a, &line, "op");
        if (!as_u64(field(&a, &line, "i"), &r.step))
            r.step = 0;
        r.op = str_eq(op, "config")   ? "config"
               : str_eq(op, "apply")  ? "apply"
               : str_eq(op, "begin")  ? "begin"
               : str_eq(op, "master") ? "master"
               : str_eq(op, "end")    ? "end"
               : str_eq(op, "cancel") ? "cancel"
               : str_eq(op, "join")   ? "join"
               : str_eq(op, "done")   ? "done"
                                      : "?";
        if (!strcmp(r.op, "config")) {
            if (r.master) {
                fprintf(stderr, "diff_replay: one run per trace\n");
                return 2;
            }
            op_config(&r, &a, &line);
            continue;
        }
        if (!r.master) {
            fprintf(stderr, "diff_replay: the trace does not start with a config line\n");
            return 2;
        }
        if (!strcmp(r.op, "apply"))
            op_apply(&r, &a, &line);
        else if (!strcmp(r.op, "begin"))
            op_begin(&r, &a, &line);
        else if (!strcmp(r.op, "master"))
            op_master(&r, &a, &line);
        else if (!strcmp(r.op, "end"))
            op_end(&r, &a, &line);
        else if (!strcmp(r.op, "cancel"))
            op_cancel(&r, &a, &line);
        else if (!strcmp(r.op, "join"))
            op_join(&r, &a, &line);
        else if (!strcmp(r.op, "done")) {
            done = true;
            break;
        } else {
            fprintf(stderr, "diff_replay: unknown op in: %.200s\n", buf);
            return 2;
        }
        r.passed++;
    }
    if (!done) {
        /* A trace cut short (gen.mjs crashed) must not pass. */
        fprintf(stderr, "diff_replay: the trace ended without its `done` line\n");
        finish(&r, 1);
        return 1;
    }
    finish(&r, 0);
    for (i = 0; i < r.nproxies; i++) {
        flight_drop(&r.proxies[i]);
        fo_proxy_free(r.proxies[i].proxy);
    }
    fo_master_free(r.master);
    fo_arena_destroy(&r.hist_arena);
    fo_arena_destroy(&a);
    free(r.hist);
    free(buf);
    if (in != stdin)
        fclose(in);
    return 0;
}
