/* hubtest_peer.c - peers (an fo_proxy over a connection) and random commands of hubtest.h. */
#include "tests/support/hubtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/json.h"

static void peer_free_cb(void *p)
{
    ht_peer_free(p);
}

/* ---- peers --------------------------------------------------------------------------------- */

ht_peer *ht_peer_new(fo_hubproc *h, const char *client_id, const char *model)
{
    return ht_peer_new_opts(h, client_id, model, NULL);
}

ht_peer *ht_peer_new_opts(fo_hubproc *h, const char *client_id, const char *model,
                          const fo_ws_options *o)
{
    ht_peer *p = calloc(1, sizeof(*p));
    fo_proxy_config cfg = {FO_IDS_SEQUENTIAL, {NULL, NULL}};
    fo_snapshot s;

    cr_assert_not_null(p);
    ht_defer(peer_free_cb, p);
    snprintf(p->model, sizeof(p->model), "%s", model);
    if (o) {
        fo_msg m = {.type = FO_MSG_HELLO, .client = client_id};
        uint64_t rid;
        p->c = ht_connect_raw(h, o);
        snprintf(p->c->id, sizeof(p->c->id), "%s", client_id);
        rid = ht_send(p->c, &m);
        ht_expect_reply(p->c, FO_MSG_WELCOME, rid, &m);
        snprintf(p->c->session, sizeof(p->c->session), "%s", m.session);
    } else {
        p->c = ht_connect(h, client_id);
    }
    s = ht_sub(p->c, model);
    p->p = fo_proxy_new(&s, &cfg);
    cr_assert_not_null(p->p);
    p->next_from = s.command_count;
    ht_client_reset_arena(p->c);
    return p;
}

void ht_peer_free(ht_peer *p)
{
    if (!p)
        return;
    ht_undefer(p);
    fo_proxy_free(p->p);
    ht_close(p->c);
    free(p);
}

bool ht_peer_flush(ht_peer *p)
{
    fo_msg m = {.type = FO_MSG_FLUSH};

    if (p->in_flight || !fo_proxy_has_unflushed(p->p))
        return false;
    cr_assert_eq(fo_proxy_begin_flush(p->p, &m.batch), 0);
    m.model = p->model;
    m.model_len = (uint32_t)strlen(p->model);
    m.seq = ++p->c->seq;
    p->flight_seq = m.seq;
    p->flight_batch = m.batch; /* the proxy keeps it until the ack */
    if (p->log)
        p->flight_rec = ht_flush_log_add(p->log, &m.batch);
    p->flight_rid = ht_send(p->c, &m);
    p->in_flight = true;
    if (m.batch.len)
        p->own_batches++;
    return true;
}

void ht_peer_handle(ht_peer *p, const fo_msg *m)
{
    ht_client *c = p->c;
    char d[512];
    bool changed = false;
    int rc;

    fo_ws_describe(m, d, sizeof(d));
    if (m->type == FO_MSG_ERROR && p->retry_refused && p->in_flight && m->has_rid &&
        m->rid == p->flight_rid &&
        (m->code == FO_ERR_INTERNAL || m->code == FO_ERR_OVERLOADED)) {
        fo_msg f = {.type = FO_MSG_FLUSH, .seq = p->flight_seq, .batch = p->flight_batch};
        f.model = p->model;
        f.model_len = (uint32_t)strlen(p->model);
        p->flight_rid = ht_send(c, &f);
        p->retries++;
        return;
    }
    if (m->type != FO_MSG_PUSH && m->type != FO_MSG_ACK && m->type != FO_MSG_SNAP)
        HT_FAIL(c, "[%s] unexpected %s", c->id, d);
    if (!m->model || strcmp(m->model, p->model) != 0)
        HT_FAIL(c, "[%s] %s is not for model %s", c->id, d, p->model);
    switch (m->type) {
    case FO_MSG_PUSH:
        if (m->batch.from < p->next_from)
            HT_FAIL(c, "[%s] %s starts before %llu: a batch seen already (its own, or a duplicate)",
                    c->id, d, (unsigned long long)p->next_from);
        if (m->batch.from > p->next_from)
            HT_FAIL(c, "[%s] %s leaves a gap: the last push or ack ended at %llu", c->id, d,
                    (unsigned long long)p->next_from);
        p->next_from = m->batch.from + m->batch.len;
        if (p->in_flight) {
            p->dropped++; /* the ack's sync covers it */
            return;
        }
        rc = fo_proxy_apply_push(p->p, &m->batch, &changed);
        if (rc)
            HT_FAIL(c, "[%s] fo_proxy_apply_push(%s) = %s (committed count %llu)", c->id, d,
                    fo_strerror(rc), (unsigned long long)fo_proxy_committed_count(p->p));
        p->pushes++;
        if (m->batch.len > p->max_push_len)
            p->max_push_len = m->batch.len;
        return;
    case FO_MSG_ACK:
        if (!p->in_flight || m->seq != p->flight_seq || !m->has_rid || m->rid != p->flight_rid)
            HT_FAIL(c, "[%s] %s does not answer the flush in flight (%s seq=%llu rid=%llu)", c->id,
                    d, p->in_flight ? "in flight:" : "none in flight;",
                    (unsigned long long)p->flight_seq, (unsigned long long)p->flight_rid);
        if (m->result.applied.from != p->next_from)
            HT_FAIL(c, "[%s] %s: applied.from should be %llu, where the pushes before it ended",
                    c->id, d, (unsigned long long)p->next_from);
        p->next_from = m->result.applied.from + m->result.applied.len;
        if (p->log)
            ht_flush_log_ack(p->log, p->flight_rec, &m->result);
        rc = fo_proxy_end_flush(p->p, &m->result.sync, &changed);
        if (rc)
            HT_FAIL(c, "[%s] fo_proxy_end_flush(%s) = %s", c->id, d, fo_strerror(rc));
        if (fo_proxy_committed_count(p->p) != p->next_from)
            HT_FAIL(c, "[%s] after %s the proxy's committed count is %llu, want %llu", c->id, d,
                    (unsigned long long)fo_proxy_committed_count(p->p),
                    (unsigned long long)p->next_from);
        p->in_flight = false;
        p->acks++;
        p->full_syncs += m->result.sync.kind == FO_SYNC_FULL;
        return;
    default: /* snap: a catch-up where history no longer covers the subscriber */
        if (p->in_flight)
            HT_FAIL(c, "[%s] %s while a flush is in flight", c->id, d);
        if (m->snapshot.command_count < p->next_from)
            HT_FAIL(c, "[%s] %s goes back before %llu", c->id, d, (unsigned long long)p->next_from);
        rc = fo_proxy_reset(p->p, &m->snapshot);
        if (rc)
            HT_FAIL(c, "[%s] fo_proxy_reset(%s) = %s", c->id, d, fo_strerror(rc));
        p->next_from = m->snapshot.command_count;
        p->snaps++;
        return;
    }
}

bool ht_peer_pump(ht_peer **ps, int n, int timeout_ms)
{
    fo_ws *ws[256];
    fo_msg m;
    int i, k;

    cr_assert(n <= 256);
    for (i = 0; i < n; i++)
        ws[i] = ps[i] ? ps[i]->c->ws : NULL;
    k = fo_ws_wait_any(ws, n, timeout_ms);
    if (k == FO_WS_ETIMEDOUT)
        return false;
    cr_assert(k >= 0, "poll failed");
    if (fo_ws_recv_msg(ps[k]->c->ws, HT_TIMEOUT_MS, &ps[k]->c->arena, &m) != 0)
        HT_FAIL(ps[k]->c, "[%s] %s", ps[k]->c->id, fo_ws_error(ps[k]->c->ws));
    ht_peer_handle(ps[k], &m);
    fo_arena_reset(&ps[k]->c->arena);
    return true;
}

void ht_peers_settle(ht_peer **ps, int n, uint64_t count, int timeout_ms)
{
    int64_t deadline = ht_now_ms() + timeout_ms;
    int i;

    for (;;) {
        bool done = true;
        for (i = 0; i < n; i++) {
            ht_peer_flush(ps[i]);
            if (ps[i]->in_flight || fo_proxy_has_unflushed(ps[i]->p) ||
                (count != UINT64_MAX && fo_proxy_committed_count(ps[i]->p) != count))
                done = false;
        }
        if (done)
            return;
        if (ht_now_ms() > deadline)
            break;
        ht_peer_pump(ps, n, 100);
    }
    for (i = 0; i < n; i++)
        cr_log_error("peer %s: in_flight=%d unflushed=%d committed=%llu want=%lld next_from=%llu",
                     ps[i]->c->id, ps[i]->in_flight, fo_proxy_has_unflushed(ps[i]->p),
                     (unsigned long long)fo_proxy_committed_count(ps[i]->p),
                     count == UINT64_MAX ? -1LL : (long long)count,
                     (unsigned long long)ps[i]->next_from);
    ht_hub_dump(ps[0]->c->hub);
    cr_assert_fail("peers did not settle within %d ms", timeout_ms);
}

/* ---- random commands ------------------------------------------------------------------------- */

ht_rng ht_rng_seeded(uint64_t fallback)
{
    const char *s = getenv("FO_HUB_SEED");
    ht_rng r = {s && *s ? strtoull(s, NULL, 0) : fallback};

    cr_log_info("random seed %llu (set FO_HUB_SEED to repeat another)", (unsigned long long)r.s);
    if (!r.s)
        r.s = 1;
    return r;
}

uint64_t ht_rand(ht_rng *r)
{
    /* splitmix64: small, and good enough for choosing commands */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint32_t ht_rand_below(ht_rng *r, uint32_t n)
{
    return n ? (uint32_t)(ht_rand(r) % n) : 0;
}

#define MAX_NODES 64
#define MAX_DEPTH 3

typedef struct node {
    fo_key seg[MAX_DEPTH];
    uint32_t depth;
    const fo_map *map;
} node;

static void collect(const fo_map *m, node *cur, node *out, int *n)
{
    uint32_t i;

    if (*n < MAX_NODES) {
        out[*n] = *cur;
        out[*n].map = m;
        (*n)++;
    }
    if (cur->depth >= MAX_DEPTH)
        return;
    for (i = 0; i < fo_map_len(m) && *n < MAX_NODES; i++) {
        const fo_entry *e = &fo_map_entries(m)[i];
        if (!e->key || fo_value_type(&e->value) != FO_MAP)
            continue;
        cur->seg[cur->depth++] = e->key;
        collect(fo_value_as_map(&e->value), cur, out, n);
        cur->depth--;
    }
}

static fo_key copy_key(fo_arena *a, fo_key k)
{
    char buf[20];
    size_t len;
    const char *s = fo_key_str(k, buf, &len);
    fo_key out = fo_key_new(a, s, len);

    cr_assert(out != FO_KEY_NONE);
    return out;
}

static fo_path make_path(fo_arena *a, const fo_key *seg, uint32_t n, fo_key last)
{
    fo_key *s = fo_arena_alloc(a, sizeof(*s) * (n + 1));
    uint32_t i;

    cr_assert_not_null(s);
    for (i = 0; i < n; i++)
        s[i] = copy_key(a, seg[i]);
    if (last)
        s[n++] = copy_key(a, last);
    return (fo_path){s, n};
}

static fo_value random_scalar(ht_rng *r, fo_arena *a)
{
    static const char *const words[] = {"alpha", "beta", "a much longer string value, past inline",
                                        "", "ünïcødé"};
    bool ok = true;
    fo_value v;

    switch (ht_rand_below(r, 7)) {
    case 0: return fo_value_int((int64_t)ht_rand_below(r, 1000) - 500);
    case 1: return fo_value_bool(ht_rand_below(r, 2));
    case 2: return fo_value_null();
    case 3: return fo_value_float((double)ht_rand_below(r, 100) / 8.0);
    case 4: {
        v = fo_value_array(a, 2, &ok);
        cr_assert(ok);
        v.h.as.items[0] = fo_value_int(1);
        v.h.as.items[1] = fo_value_str(a, "x", 1, &ok);
        return v;
    }
    default: {
        const char *w = words[ht_rand_below(r, 5)];
        v = fo_value_str(a, w, strlen(w), &ok);
        cr_assert(ok);
        return v;
    }
    }
}

static const fo_value *random_props(ht_rng *r, fo_arena *a)
{
    static const char *const keys[] = {"a", "b", "name", "n", "done", "deep"};
    fo_value *v = fo_arena_alloc(a, sizeof(*v));
    uint32_t i, n = 1 + ht_rand_below(r, 3);
    bool ok = true;

    cr_assert_not_null(v);
    *v = fo_value_map(a, 4, &ok);
    cr_assert(ok);
    for (i = 0; i < n; i++) {
        uint32_t k = ht_rand_below(r, 6);
        fo_value x = random_scalar(r, a);
        if (k == 5) { /* a nested map value: a leaf for commands unless navigated into */
            fo_value inner = fo_value_map(a, 1, &ok);
            cr_assert(ok);
            cr_assert_eq(fo_map_set(fo_value_as_map(&inner), a, fo_key_new_cstr(a, "z"), &x, NULL),
                         0);
            x = inner;
        }
        cr_assert_eq(fo_map_set(fo_value_as_map(v), a, fo_key_new_cstr(a, keys[k]), &x, NULL), 0);
    }
    return v;
}

fo_command ht_random_command(ht_rng *r, fo_arena *a, const fo_value *doc)
{
    node nodes[MAX_NODES], cur = {{0}, 0, NULL};
    int n = 0;
    fo_command c = {0};
    uint32_t pick = ht_rand_below(r, 100);
    const node *t;

    collect(fo_value_as_map(doc), &cur, nodes, &n);
    t = &nodes[ht_rand_below(r, (uint32_t)n)];
    if (pick < 40 || n == 1) {
        c.action = FO_CREATE;
        if (t->depth == MAX_DEPTH)
            t = &nodes[0];
        c.path = make_path(a, t->seg, t->depth, FO_KEY_NONE);
        if (ht_rand_below(r, 4))
            c.props = random_props(r, a);
    } else if (pick < 52) {
        static const char *const lists[] = {"todos", "notes", "list:2", "x.y"};
        fo_key k = fo_key_new_cstr(a, lists[ht_rand_below(r, 4)]);
        fo_value *pd = fo_arena_alloc(a, sizeof(*pd));
        bool ok = true;
        cr_assert_not_null(pd);
        c.action = FO_CREATE;
        c.path = make_path(a, NULL, 0, k);
        c.props = random_props(r, a);
        *pd = fo_value_map(a, 1, &ok);
        cr_assert(ok);
        c.parent_default = pd;
    } else if (pick < 82) {
        c.action = FO_UPDATE;
        c.path = make_path(a, t->seg, t->depth, FO_KEY_NONE);
        c.props = random_props(r, a);
    } else {
        /* delete one entry of a node (a child map or a prop) */
        const fo_map *m = t->map;
        uint32_t i, live = 0, want;
        c.action = FO_DELETE;
        for (i = 0; i < fo_map_len(m); i++)
            live += fo_map_entries(m)[i].key != FO_KEY_NONE;
        if (!live) {
            c.action = FO_UPDATE;
            c.path = make_path(a, t->seg, t->depth, FO_KEY_NONE);
            c.props = random_props(r, a);
            return c;
        }
        want = ht_rand_below(r, live);
        for (i = 0; i < fo_map_len(m); i++) {
            if (!fo_map_entries(m)[i].key)
                continue;
            if (want-- == 0)
                break;
        }
        c.path = make_path(a, t->seg, t->depth, fo_map_entries(m)[i].key);
    }
    return c;
}

void ht_peer_random_edits(ht_peer *p, ht_rng *r, int n)
{
    fo_arena a;
    int i;

    fo_arena_init(&a, 0);
    for (i = 0; i < n; i++) {
        fo_command c = ht_random_command(r, &a, fo_proxy_document(p->p));
        fo_doc_result res;
        cr_assert_eq(fo_proxy_apply(p->p, &c, &res), 0);
    }
    fo_arena_destroy(&a);
}
