#include "hub/runner.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/follow.h"
#include "hub/hub.h"
#include "hub/presence.h"
#include "hub/log.h"
#include "proto/json.h"

void fo_runner_task_free(fo_task *t)
{
    fo_arena_destroy(&t->arena);
    fo_reply_unref(t->sink);
    json_decref(t->identity);
    fo_follow_record_free(t->record);
    free(t);
}

void fo_runner_pending_free(fo_pending *p)
{
    fo_frame_unref(p->reply);
    fo_frame_unref(p->push);
    fo_reply_unref(p->sink);
    fo_model_unref(p->model);
    free(p);
}

void fo_runner_reject(fo_task *t, fo_error_code code, const char *why)
{
    if (t->msg.type == FO_MSG_PUSH) /* an internal catch-up: nobody waits for a reply */
        return;
    fo_reply_error(t->sink, &t->msg, code, why);
}

static fo_msg reply_to(const fo_model *m, const fo_msg *req, fo_msg_type type)
{
    fo_msg r;

    memset(&r, 0, sizeof(r));
    r.type = type;
    r.has_rid = req->has_rid;
    r.rid = req->rid;
    r.model = m->name;
    r.model_len = m->name_len;
    return r;
}

/* Queues a reply that shows the model's state: it leaves once that state is durable. */
static void pend_reply(fo_model *m, fo_task *t, fo_pend_kind kind, const fo_msg *reply,
                       uint64_t from)
{
    fo_frame *f = t->sink->ops->encode(t->sink, reply);
    fo_pending *p;

    if (!f || !(p = fo_model_pend(m, kind))) {
        fo_frame_unref(f);
        fo_runner_reject(t, FO_ERR_INTERNAL, "out of memory");
        return;
    }
    p->reply = f;
    p->sink = fo_reply_ref(t->sink);
    p->from = from;
    p->has_rid = t->msg.has_rid;
    p->rid = t->msg.rid;
}

/* ---- sub, unsub, presence ------------------------------------------------------------ */

static bool exec_sub(fo_model *m, fo_task *t)
{
    fo_session *s = t->session;
    fo_sub *sub = fo_session_find_sub(s, m);
    uint64_t count = fo_master_snapshot(m->master).command_count;
    fo_arena a;
    fo_msg r;

    if (t->msg.has_from && t->msg.from <= count &&
        !fo_model_need_history(m, t->msg.from, count))
        return false;
    if (!sub) {
        if (s->nsubs >= m->hub->cfg.max_subs) {
            char why[160];
            snprintf(why, sizeof(why), "model: at most %u subscriptions per connection "
                     "(--max-subs): unsub from another model first", m->hub->cfg.max_subs);
            fo_runner_reject(t, FO_ERR_TOO_LARGE, why);
            return true;
        }
        if (!(sub = calloc(1, sizeof(*sub)))) {
            fo_runner_reject(t, FO_ERR_INTERNAL, "out of memory");
            return true;
        }
        sub->model = fo_model_ref(m);
        sub->session = s;
        sub->mnext = m->subs;
        if (m->subs)
            m->subs->mprev = sub;
        m->subs = sub;
        m->nsubs++;
        sub->snext = s->subs;
        s->subs = sub;
        s->nsubs++;
    }
    /* A resubscription (after a gap) starts over from this reply. */
    sub->active = false;
    sub->lagging = false;
    sub->next_from = count;
    fo_arena_init(&a, 4096);
    r = reply_to(m, &t->msg, FO_MSG_SNAP);
    if (t->msg.has_from && t->msg.from <= count &&
        fo_model_history_msg(m, t->msg.from, count, &a, &r) == 0)
        r.type = FO_MSG_DIFF;
    else
        r.snapshot = fo_master_snapshot(m->master);
    pend_reply(m, t, FO_PEND_SUB, &r, count);
    fo_arena_destroy(&a);
    return true;
}

static void send_ok(fo_model *m, fo_task *t)
{
    fo_msg r = reply_to(m, &t->msg, FO_MSG_OK);

    r.model = NULL;
    fo_session_send_msg(t->session, &r);
}

static void exec_unsub(fo_model *m, fo_task *t)
{
    fo_sub *sub = fo_session_find_sub(t->session, m);

    if (sub)
        fo_model_unsubscribe(sub, true);
    send_ok(m, t);
}

static void exec_presence(fo_model *m, fo_task *t)
{
    fo_sub *sub = fo_session_find_sub(t->session, m);
    fo_msg ev;
    fo_frame *f;

    if (!sub) {
        fo_runner_reject(t, FO_ERR_BAD_REQUEST, "model: subscribe before sending presence");
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.type = FO_MSG_PRESENCE_EVT;
    ev.model = m->name;
    ev.model_len = m->name_len;
    ev.session = t->session->sid;
    ev.state = t->msg.state;
    if (!(f = fo_frame_encode(&ev))) {
        fo_runner_reject(t, FO_ERR_INTERNAL, "out of memory");
        return;
    }
    for (fo_sub *o = m->subs; o; o = o->mnext)
        if (o != sub && o->active)
            fo_session_send(o->session, f);
    fo_presence_publish(m->hub, m, f);
    fo_frame_unref(sub->presence);
    sub->presence = t->msg.state ? f : NULL;
    if (!t->msg.state)
        fo_frame_unref(f);
    send_ok(m, t);
}

/* ---- flush --------------------------------------------------------------------------- */

/* What the store keeps with a batch beside its applied commands (malloc'd; a write that
 * takes a buffer sets it to NULL). */
typedef struct batch_meta {
    int64_t now_ms;
    char *identity; /* JSON, or NULL */
    char *original; /* the batch as flushed (MessagePack), when it has a rules row */
    size_t original_len;
    char *audit;    /* JSON: what the rules did, when it has a rules row */
} batch_meta;

static void meta_free(batch_meta *mt)
{
    free(mt->identity);
    free(mt->original);
    free(mt->audit);
}

static void meta_move(batch_meta *mt, fo_commit_write *w)
{
    w->now_ms = mt->now_ms;
    w->identity = mt->identity;
    w->original = mt->original;
    w->original_len = mt->original_len;
    w->audit = mt->audit;
}

static void meta_taken(batch_meta *mt)
{
    mt->identity = mt->original = mt->audit = NULL;
}

/* A rules row is kept when rules are in force and changed the batch (or it failed in
 * part): the original batch for `flushout-hub replay`, what the rules did for the audit. */
static int build_meta(fo_model *m, fo_task *t, const fo_batch *b, const fo_rules_batch *rb,
                      const fo_apply_result *res, batch_meta *mt)
{
    fo_buf buf;
    bool changed = res->applied.items != b->items || res->errors_len;
    int rc;

    mt->now_ms = rb->now_ms;
    if (t->identity && !(mt->identity = json_dumps(t->identity, JSON_COMPACT | JSON_SORT_KEYS)))
        return FO_ENOMEM;
    if (!m->hub->rules || (!rb->nactions && !changed))
        return 0;
    fo_buf_init(&buf, 0);
    if ((rc = fo_wire_encode_batch(b, &buf)) != 0) {
        fo_buf_destroy(&buf);
        return rc;
    }
    mt->original_len = buf.len;
    mt->original = fo_buf_release(&buf);
    fo_buf_init(&buf, 0);
    {
        const char *id = mt->identity ? mt->identity : "null";
        rc = fo_buf_append(&buf, "{\"from\":", 8) ||
             fo_json_write_u64(res->applied.from, &buf) ||
             fo_buf_append(&buf, ",\"applied\":", 11) ||
             fo_json_write_u64(res->applied.len, &buf) ||
             fo_buf_append(&buf, ",\"now\":", 7) || fo_json_write_i64(mt->now_ms, &buf) ||
             fo_buf_append(&buf, ",\"seq\":", 7) || fo_json_write_u64(t->msg.seq, &buf) ||
             fo_buf_append(&buf, ",\"client\":", 10) ||
             fo_json_write_str(t->client, strlen(t->client), &buf) ||
             fo_buf_append(&buf, ",\"identity\":", 12) || fo_buf_append(&buf, id, strlen(id)) ||
             fo_buf_append(&buf, ",\"actions\":", 11) || fo_rules_write_actions(rb, &buf) ||
             fo_buf_append(&buf, "}", 2);
    }
    if (rc) {
        fo_buf_destroy(&buf);
        return FO_ENOMEM;
    }
    mt->audit = fo_buf_release(&buf); /* NUL-terminated: the "}" above appended 2 bytes */
    return 0;
}

/* A batch of which nothing applied still leaves its rules row. */
static int add_rules_write(fo_model *m, uint64_t from, batch_meta *mt)
{
    fo_commit_write w;

    memset(&w, 0, sizeof(w));
    w.owner = &m->owner;
    w.from = from;
    meta_move(mt, &w);
    if (fo_commit_add_write(m->hub, &w))
        return FO_ENOMEM;
    meta_taken(mt);
    return 0;
}

/* Whether a snapshot may be encoded now: at most a sixteenth of --memory-budget (and at
 * least 1 MB) of snapshots may wait for the store. A snapshot is a copy of the whole
 * document; when many models reach --snapshot-every together, copies of all of them would
 * otherwise sit in the commit queue at once, outside the budget. A deferred snapshot is
 * taken on a later flush; until then a cold load reads a longer log tail. */
static bool snapshot_room(const fo_hub *h)
{
    size_t cap = h->cfg.memory_budget / 16;

    return h->commit.snap_bytes < (cap > (1u << 20) ? cap : (1u << 20));
}

typedef struct table_ctx {
    char *p;
    size_t len;
    const char *skip; /* the flusher: its row is the batch's, added last */
} table_ctx;

static void table_size(void *ctx, const char *key, void *value)
{
    (void)value;
    ((table_ctx *)ctx)->len += FO_STORE_CLIENT_ROW(strlen(key));
}

static void table_row(void *ctx, const char *key, void *value)
{
    table_ctx *t = ctx;

    if (key[0] && strcmp(key, t->skip) != 0)
        t->len += fo_store_clients_put(t->p + t->len, key, strlen(key), *(uint64_t *)value);
}

/* The model's exactly-once table once this batch (client, seq) is applied, for a snapshot
 * the store keeps it with (fo_store_wants_clients). NULL when out of memory. */
static char *encode_table(fo_model *m, const char *client, uint64_t seq, size_t *len)
{
    table_ctx t = {NULL, FO_STORE_CLIENT_ROW(strlen(client)), client};

    fo_strmap_each(&m->dedup, table_size, &t);
    if (!(t.p = malloc(t.len + 1)))
        return NULL;
    t.len = 0;
    fo_strmap_each(&m->dedup, table_row, &t);
    if (client[0])
        t.len += fo_store_clients_put(t.p + t.len, client, strlen(client), seq);
    *len = t.len;
    return t.p;
}

/* Queues the store row of an applied batch: the bytes of the push frame's `diff`. */
static int add_write(fo_model *m, const char *client, uint64_t seq, const fo_batch *applied,
                     fo_frame *push, uint32_t off, uint32_t len, batch_meta *mt)
{
    fo_hub *h = m->hub;
    fo_commit_write w;
    fo_buf snap;
    uint64_t count = applied->from + applied->len;
    int rc;

    memset(&w, 0, sizeof(w));
    fo_buf_init(&snap, 0);
    w.owner = &m->owner;
    w.from = applied->from;
    w.len = applied->len;
    w.frame = push;
    w.batch_off = off;
    w.batch_len = len;
    {
        size_t cl = strnlen(client, sizeof(w.client) - 1);
        memcpy(w.client, client, cl);
        w.client[cl] = '\0';
    }
    w.seq = seq;
    if (count - m->snapshot_count >= h->cfg.snapshot_every && !snapshot_room(h)) {
        h->mem.snap_deferred++; /* the model's next flush tries again */
    } else if (count - m->snapshot_count >= h->cfg.snapshot_every) {
        /* A cold load then reads this snapshot and a short log tail. */
        if ((rc = fo_wire_encode_value(fo_master_snapshot(m->master).document, &snap)) != 0) {
            fo_buf_destroy(&snap);
            return rc;
        }
        w.snapshot_len = snap.len;
        if (fo_store_wants_clients(h->store) &&
            !(w.clients = encode_table(m, client, seq, &w.clients_len))) {
            fo_buf_destroy(&snap);
            return FO_ENOMEM;
        }
        /* Keep what --history needs for diffs, and at least this snapshot. */
        w.drop_before = count > h->cfg.history ? count - h->cfg.history : 0;
    }
    w.snapshot = w.snapshot_len ? fo_buf_release(&snap) : NULL;
    meta_move(mt, &w);
    if ((rc = fo_commit_add_write(h, &w)) != 0) {
        free(w.snapshot);
        free(w.clients);
        return rc;
    }
    meta_taken(mt);
    if (w.snapshot)
        m->snapshot_count = count;
    return 0;
}

/* Encodes an applied batch once, as a push frame whose `diff` (its last field) is also
 * the store row and the history entry; the ack splices in the same bytes. */
static int encode_applied(fo_model *m, const fo_msg *q, const fo_batch *applied,
                          fo_frame **push, uint32_t *off, uint32_t *len, fo_buf *raw)
{
    fo_msg msg = reply_to(m, q, FO_MSG_PUSH);
    int rc;

    if ((rc = fo_wire_encode_batch(applied, raw)) != 0)
        return rc;
    if (raw->len > UINT32_MAX)
        return FO_ELIMIT;
    msg.has_rid = false;
    msg.batch = *applied;
    msg.raw_batch = fo_buf_data(raw);
    msg.raw_batch_len = raw->len;
    if (!(*push = fo_frame_encode(&msg)))
        return FO_ENOMEM;
    *len = (uint32_t)raw->len;
    *off = (*push)->len - *len;
    return 0;
}

/* A partial sync whose history part the master left out (sync.external): the encoded
 * batches from the history, spliced into the ack. When they cannot be spliced (a range
 * that ends inside an entry), the commands are decoded into the diff instead. */
static int splice_history(fo_model *m, fo_apply_result *res, fo_arena *a,
                          const fo_wire_part **xp, uint32_t *nxp)
{
    fo_sync *sy = &res->sync;
    uint64_t from = sy->diff.from, to = from + sy->external;
    uint32_t own = sy->diff.len - sy->external;
    fo_wire_part *parts;
    fo_completion *all;
    fo_batch hist;
    int rc;

    rc = fo_history_parts(&m->hist, from, to, a, &parts, nxp);
    if (rc == 0) {
        *xp = parts;
        return 0;
    }
    if (rc != FO_EGAP)
        return rc;
    *nxp = 0;
    /* fo_history_get's "not covered" is -1, which reads as FO_ENOMEM: ask first. */
    if (!fo_history_covers(&m->hist, from, to))
        return FO_EGAP;
    if ((rc = fo_history_get(&m->hist, from, to, a, &hist)) != 0)
        return rc;
    if (!(all = fo_arena_alloc(a, ((size_t)sy->diff.len + 1) * sizeof(*all))))
        return FO_ENOMEM;
    memcpy(all, hist.items, (size_t)sy->external * sizeof(*all));
    if (own)
        memcpy(all + sy->external, sy->diff.items, (size_t)own * sizeof(*all));
    sy->diff.items = all;
    sy->external = 0;
    return 0;
}

/* An error answering the flush, through its sink (a session, or the hub it was forwarded
 * from). */
static void flush_error(fo_task *t, fo_error_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void flush_error(fo_task *t, fo_error_code code, const char *fmt, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    fo_reply_error(t->sink, &t->msg, code, text);
}

static bool exec_flush(fo_model *m, fo_task *t)
{
    fo_hub *h = m->hub;
    fo_session *s = t->session; /* NULL: forwarded by another hub */
    const fo_msg *q = &t->msg;
    uint64_t *last = fo_strmap_get(&m->dedup, t->client, strlen(t->client));
    fo_batch empty = {q->batch.from, 0, NULL};
    const fo_batch *b = &q->batch;
    fo_apply_result res;
    fo_arena *ra = &h->flush_arena;
    fo_buf *raw = &h->flush_buf;
    fo_rules_batch rb;
    batch_meta meta;
    fo_msg ack;
    fo_pending *p;
    const fo_wire_part *xp = NULL;
    uint32_t nxp = 0;
    bool dup = false;
    int rc;

    if (last && q->seq <= *last) {
        if (q->seq < *last) {
            flush_error(t, FO_ERR_BAD_REQUEST,
                        "seq: %llu is below %llu, the last seq applied for client %s on this "
                        "model",
                        (unsigned long long)q->seq, (unsigned long long)*last, t->client);
            return true;
        }
        /* A retry of the last flush: answer as an empty batch from the same `from`, whose
         * sync carries the batch as it was applied. */
        dup = true;
        b = &empty;
    }
    /* --cluster: a proxy ahead of the master saw more of the log through another hub; the
     * model reads the log again first (once), and the flush runs on that. */
    if (h->follow && !t->reread && b->from > fo_master_snapshot(m->master).command_count) {
        t->reread = true;
        fo_model_mark_stale(m);
        return false;
    }
    /* A proxy behind the count gets the commands since its `from` in the sync, and a
     * lagging flusher (pushes dropped, or a reload moved the model on) its catch-up before
     * this flush runs, so that its ack follows the pushes it missed: when either is older
     * than the history in memory, the store reads both at once first (one read a task). */
    {
        fo_sub *fs = s ? fo_session_find_sub(s, m) : NULL;
        uint64_t lo = fs && fs->lagging && fs->next_from < b->from ? fs->next_from : b->from;
        if (!fo_model_need_history(m, lo, fo_master_snapshot(m->master).command_count) ||
            !fo_model_exec_catch_up(m, t))
            return false;
    }
    if (dup)
        h->metrics.duplicates++;
    memset(&meta, 0, sizeof(meta));
    /* The rules see this batch's now and identity, nothing else from outside: both are
     * stored with it, so that a replay decides the same. */
    fo_rules_batch_init(&rb, h->rules, m->name, t->identity, fo_rules_now_ms());
    rc = fo_master_apply(m->master, b, &rb, ra, &res);
    if (rc) {
        FO_LOG(FO_LOG_ERROR, "model=%s client=%s apply failed: %s", m->name, t->client,
               fo_strerror(rc));
        flush_error(t, FO_ERR_INTERNAL, "apply failed: %s", fo_strerror(rc));
        fo_arena_reset(ra);
        fo_model_mark_broken(m);
        return true;
    }
    if (dup && res.sync.kind == FO_SYNC_NONE) {
        /* The original ack had a sync if any of its commands failed or were rewritten;
         * a retry must never tell the proxy to replay its batch as it sent it. */
        res.sync.kind = FO_SYNC_PARTIAL;
        res.sync.diff.from = q->batch.from;
        res.sync.has_mapped = true;
    }
    if (res.sync.external && (rc = splice_history(m, &res, ra, &xp, &nxp)) != 0) {
        FO_LOG(FO_LOG_ERROR, "model=%s history for a sync: %s", m->name, fo_strerror(rc));
        flush_error(t, FO_ERR_INTERNAL, "history unreadable: %s", fo_strerror(rc));
        fo_arena_reset(ra);
        fo_model_mark_broken(m);
        return true;
    }
    ack = reply_to(m, q, FO_MSG_ACK);
    ack.seq = q->seq;
    ack.result = res;
    ack.ext_parts = xp;
    ack.n_ext_parts = nxp;
    if (raw->cap > (1u << 20))
        fo_buf_destroy(raw); /* not kept past one big batch */
    raw->len = 0;
    for (uint32_t i = 0; i < rb.nactions; i++) {
        h->metrics.rule_rejections += rb.actions[i].rejected;
        h->metrics.rule_rewrites += !rb.actions[i].rejected;
    }
    if (!dup && build_meta(m, t, b, &rb, &res, &meta))
        goto oom;
    if (!(p = fo_model_pend(m, FO_PEND_ACK)))
        goto oom;
    p->sink = fo_reply_ref(t->sink);
    p->t_recv = t->t_recv;
    p->has_rid = q->has_rid;
    p->rid = q->rid;
    p->from = res.applied.from;
    if (!dup && res.applied.len) {
        uint32_t off, len;
        if (encode_applied(m, q, &res.applied, &p->push, &off, &len, raw) ||
            add_write(m, t->client, q->seq, &res.applied, p->push, off, len, &meta))
            goto oom;
        ack.raw_batch = fo_buf_data(raw);
        ack.raw_batch_len = raw->len;
        p->len = res.applied.len;
        h->metrics.commands += res.applied.len;
        /* The ack first: its sync borrows the ring's frames, which the add may drop. */
        if (!(p->reply = fo_frame_encode(&ack)) ||
            fo_history_add(&m->hist, res.applied.from, res.applied.len, p->push, off, len,
                           h->cfg.history))
            goto oom;
    } else {
        if (!dup && meta.audit && add_rules_write(m, res.applied.from, &meta))
            goto oom;
        if (!(p->reply = fo_frame_encode(&ack)))
            goto oom;
    }
    if (!dup) {
        if (!last) {
            if (!(last = malloc(sizeof(*last))) ||
                fo_strmap_put(&m->dedup, t->client, strlen(t->client), last)) {
                free(last);
                goto oom;
            }
        }
        *last = q->seq;
    }
    fo_arena_reset(ra);
    meta_free(&meta);
    fo_model_account(m);
    return true;
oom:
    /* The batch may be applied in memory without its write: the model must reload. */
    meta_free(&meta);
    fo_arena_reset(ra);
    flush_error(t, FO_ERR_INTERNAL, "out of memory");
    fo_model_mark_broken(m);
    return true;
}

/* ---- get and history ----------------------------------------------------------------- */

typedef struct read_ctx {
    fo_model *m;
    fo_reply_sink *sink;
    fo_msg req; /* rid, type, at/from/to; model points to m->name */
} read_ctx;

static void read_ctx_free(read_ctx *rc)
{
    fo_reply_unref(rc->sink);
    fo_model_unref(rc->m);
    free(rc);
}

static void read_reply(read_ctx *c, const fo_msg *r)
{
    fo_reply_send(c->sink, &c->req, r);
}

static void read_fail(read_ctx *c, fo_error_code code, const char *why)
{
    fo_reply_error(c->sink, &c->req, code, why);
}

static void on_state_read(fo_store *s, const fo_store_status *st, fo_store_result *r,
                          void *data)
{
    read_ctx *c = data;
    fo_arena a;
    fo_msg reply = reply_to(c->m, &c->req, FO_MSG_SNAP);
    fo_doc *d = NULL;
    fo_batch b;

    (void)s;
    fo_arena_init(&a, 8192);
    if (st->rc) {
        FO_LOG(FO_LOG_WARN, "reading a state back: %s", st->msg);
        read_fail(c, FO_ERR_INTERNAL, st->reason);
        goto out;
    }
    if (r->gone) {
        read_fail(c, FO_ERR_GONE, "at: the state after that many commands is no longer kept");
        goto out;
    }
    if (r->has_snapshot) {
        fo_wire_limits l;
        fo_value v;
        fo_snapshot snap;
        fo_wire_limits_default(&l);
        l.max_frame = (size_t)1 << 31;
        l.max_elems = l.max_total = l.max_str = UINT32_MAX / 2;
        if (fo_wire_decode_value(r->snap, r->snap_size, &l, &a, &v, NULL) == 0) {
            snap.command_count = r->snap_count;
            snap.document = &v;
            d = fo_doc_new_from(&snap, FO_IDS_SEQUENTIAL);
        }
    } else {
        d = fo_doc_new(FO_IDS_SEQUENTIAL);
    }
    if (!d || fo_history_from_rows(r->entries, r->n_entries, fo_doc_count(d), c->req.at, &a, &b)) {
        read_fail(c, FO_ERR_GONE, "at: the state after that many commands is no longer kept");
        goto out;
    } else {
        fo_pathmap pm;
        fo_batch_outcome o;
        fo_pathmap_init(&pm, &a);
        if (fo_batch_apply(d, b.items, b.len, &pm, NULL, NULL, &a, &o) || o.changed) {
            read_fail(c, FO_ERR_INTERNAL, "stored history does not replay");
            goto out;
        }
    }
    reply.snapshot = fo_doc_snapshot(d);
    read_reply(c, &reply);
out:
    fo_doc_free(d);
    fo_arena_destroy(&a);
    fo_store_result_free(r);
    read_ctx_free(c);
}

static void store_read(fo_model *m, fo_task *t)
{
    read_ctx *c = calloc(1, sizeof(*c));
    int rc;

    if (!c) {
        fo_runner_reject(t, FO_ERR_INTERNAL, "out of memory");
        return;
    }
    c->m = fo_model_ref(m);
    c->sink = fo_reply_ref(t->sink);
    c->req = t->msg;
    c->req.model = m->name;
    rc = fo_store_read_state_at(m->hub->store, m->name, t->msg.at, on_state_read, c);
    if (rc) {
        fo_runner_reject(t, FO_ERR_INTERNAL, fo_store_strerror(rc));
        read_ctx_free(c);
    }
}

static void exec_get(fo_model *m, fo_task *t)
{
    uint64_t count = fo_master_snapshot(m->master).command_count;
    fo_msg r = reply_to(m, &t->msg, FO_MSG_SNAP);

    if (t->msg.has_at && t->msg.at > count) {
        char why[120];
        snprintf(why, sizeof(why), "at: %llu is beyond the model's count %llu",
                 (unsigned long long)t->msg.at, (unsigned long long)count);
        fo_runner_reject(t, FO_ERR_BAD_REQUEST, why);
        return;
    }
    if (t->msg.has_at && t->msg.at < count) {
        if (t->msg.at + m->hub->cfg.history < count) {
            fo_runner_reject(t, FO_ERR_GONE, "at: older than the history kept (--history)");
            return;
        }
        /* Older states come from the store's snapshots and log: off the loop. */
        if (t->msg.at > m->released) {
            fo_runner_reject(t, FO_ERR_GONE, "at: that state is not durable yet; retry");
            return;
        }
        store_read(m, t);
        return;
    }
    r.snapshot = fo_master_snapshot(m->master);
    pend_reply(m, t, FO_PEND_REPLY, &r, 0);
}

static bool exec_history(fo_model *m, fo_task *t)
{
    uint64_t count = fo_master_snapshot(m->master).command_count;
    uint64_t to = t->msg.has_to ? t->msg.to : count;
    fo_msg r = reply_to(m, &t->msg, FO_MSG_DIFF);
    fo_arena a;

    if (t->msg.from > to || to > count) {
        char why[160];
        snprintf(why, sizeof(why), "%s: range [%llu, %llu) is outside [0, %llu]",
                 t->msg.from > to ? "from" : "to", (unsigned long long)t->msg.from,
                 (unsigned long long)to, (unsigned long long)count);
        fo_runner_reject(t, FO_ERR_BAD_REQUEST, why);
        return true;
    }
    /* Older than the history in memory: read back from the store first. */
    if (!fo_model_need_history(m, t->msg.from, to))
        return false;
    fo_arena_init(&a, 8192);
    if (fo_model_history(m, t->msg.from, to, &a, &r.batch) != 0) {
        fo_arena_destroy(&a);
        fo_runner_reject(t, FO_ERR_GONE, t->msg.from + m->hub->cfg.history < count
                                             ? "from: older than the history kept (--history)"
                                             : "history: no longer kept for that range");
        return true;
    }
    pend_reply(m, t, FO_PEND_REPLY, &r, 0);
    fo_arena_destroy(&a);
    return true;
}

bool fo_runner_exec(fo_model *m, fo_task *t)
{
    if (t->record)
        return fo_model_exec_follow(m, t);
    switch (t->msg.type) {
    case FO_MSG_SUB: return exec_sub(m, t);
    case FO_MSG_UNSUB: exec_unsub(m, t); break;
    case FO_MSG_FLUSH: return exec_flush(m, t);
    case FO_MSG_GET: exec_get(m, t); break;
    case FO_MSG_HISTORY: return exec_history(m, t);
    case FO_MSG_PRESENCE: exec_presence(m, t); break;
    case FO_MSG_PUSH: return fo_model_exec_catch_up(m, t);
    default: fo_runner_reject(t, FO_ERR_BAD_REQUEST, "t: not a model request"); break;
    }
    return true;
}
