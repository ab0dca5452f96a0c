#include "hub/model.h"

#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub.h"
#include "hub/log.h"
#include "hub/runner.h"

/* Limits for data read back from the store: our own writes, so generous. */
static void store_limits(fo_wire_limits *l)
{
    fo_wire_limits_default(l);
    l->max_frame = (size_t)1 << 31;
    l->max_elems = UINT32_MAX / 2;
    l->max_total = UINT32_MAX / 2;
    l->max_str = UINT32_MAX / 2;
}

/* ---- references, LRU, table ---------------------------------------------------------- */

fo_model *fo_model_ref(fo_model *m)
{
    m->refs++;
    return m;
}

void fo_model_unref(fo_model *m)
{
    if (m)
        m->refs--;
}

static void lru_unlink(fo_hub *h, fo_model *m)
{
    if (m->lru_prev)
        m->lru_prev->lru_next = m->lru_next;
    else if (h->lru_head == m)
        h->lru_head = m->lru_next;
    if (m->lru_next)
        m->lru_next->lru_prev = m->lru_prev;
    else if (h->lru_tail == m)
        h->lru_tail = m->lru_prev;
    m->lru_prev = m->lru_next = NULL;
}

static void lru_touch(fo_hub *h, fo_model *m)
{
    if (h->lru_head == m)
        return;
    lru_unlink(h, m);
    m->lru_next = h->lru_head;
    if (h->lru_head)
        h->lru_head->lru_prev = m;
    h->lru_head = m;
    if (!h->lru_tail)
        h->lru_tail = m;
}

static void free_dedup(void *ctx, const char *key, void *value)
{
    (void)ctx, (void)key;
    free(value);
}

static void set_mem(fo_model *m, size_t doc, size_t hist, size_t dedup)
{
    fo_hub *h = m->hub;
    size_t v[FO_MEM_KINDS] = {doc, hist, dedup};
    size_t bytes = 0;

    for (int k = 0; k < FO_MEM_KINDS; k++) {
        h->mem.bytes[k] += v[k] - m->mem[k];
        m->mem[k] = v[k];
        bytes += v[k];
    }
    if (bytes)
        bytes += sizeof(*m);
    h->hot_bytes += bytes - m->bytes;
    m->bytes = bytes;
}

/* Drops the in-memory state (master, history, exactly-once table). */
static void unload(fo_model *m)
{
    fo_master_free(m->master);
    m->master = NULL;
    fo_history_destroy(&m->hist);
    fo_strmap_each(&m->dedup, free_dedup, NULL);
    fo_strmap_destroy(&m->dedup);
    set_mem(m, 0, 0, 0);
    m->state = FO_MODEL_COLD;
}

static void model_free(fo_model *m)
{
    fo_hub *h = m->hub;

    unload(m);
    lru_unlink(h, m);
    fo_strmap_del(&h->models, m->name, m->name_len);
    free(m);
}

void fo_model_free_all(fo_hub *h)
{
    h->load_wait = h->load_wait_tail = NULL; /* their references go with the models */
    while (h->lru_head) {
        fo_model *m = h->lru_head;
        while (m->subs)
            fo_model_unsubscribe(m->subs, false);
        while (m->tasks) {
            fo_task *t = m->tasks;
            m->tasks = t->next;
            fo_runner_task_free(t);
        }
        model_free(m);
    }
}

/* A subscribed model whose document may be dropped: nothing runs, waits or is in flight,
 * and its subscribers stand at its count. */
static bool idle_subscribed(const fo_model *m)
{
    if (m->state != FO_MODEL_READY || m->broken || m->npending || m->tasks ||
        m->refs != m->nsubs || m->released != fo_master_snapshot(m->master).command_count)
        return false;
    for (const fo_sub *sub = m->subs; sub; sub = sub->mnext)
        if (sub->lagging || sub->next_from != m->released)
            return false;
    return true;
}

void fo_model_evict(fo_hub *h)
{
    size_t budget = h->cfg.memory_budget, target = budget - budget / 8, share, before;
    uint64_t now;
    fo_model *m, *prev;
    int pass;

    if (h->hot_bytes <= budget)
        return;
    before = h->hot_bytes;
    /* Each model may keep this much history before the others' history goes. */
    share = h->models.len ? budget / 4 / h->models.len : budget;
    for (pass = 0; pass < 4 && h->hot_bytes > target; pass++) {
        for (m = h->lru_tail; m && h->hot_bytes > target; m = prev) {
            prev = m->lru_prev;
            if (pass == 0 && m->refs == 0 && m->npending == 0 && !m->tasks &&
                m->state != FO_MODEL_LOADING && m->state != FO_MODEL_READING) {
                FO_LOG(FO_LOG_INFO, "model=%s evicted (%zu bytes; hot %zu of %zu)", m->name,
                       m->bytes, h->hot_bytes, budget);
                h->metrics.evictions++;
                model_free(m);
            } else if ((pass == 1 || pass == 2) && m->state == FO_MODEL_READY) {
                /* A model waiting for a history read keeps its ring: the rows read back
                 * end where it starts. */
                fo_history_trim(&m->hist, m->released, pass == 1 ? share : 0);
                fo_model_account(m);
            } else if (pass == 3 && m->subs && idle_subscribed(m)) {
                /* Documents last: dropping one costs a reload on the model's next request. */
                FO_LOG(FO_LOG_DEBUG, "model=%s idle: dropped its document (%zu bytes)",
                       m->name, m->bytes);
                h->mem.doc_drops++;
                unload(m);
            }
        }
    }
    /* Freed chunks sit in the allocator's free lists; hand them back to the kernel now and
     * then, so that the process's RSS follows the budget (at most once a second). */
    now = fo_hub_now_ms(h);
    if (h->hot_bytes < before && now - h->mem.trim_ms >= 1000) {
        h->mem.trim_ms = now;
        malloc_trim(0);
    }
}

void fo_model_gauges(fo_hub *h, uint64_t *queued, uint64_t *max_depth)
{
    fo_model *m;

    *queued = *max_depth = 0;
    for (m = h->lru_head; m; m = m->lru_next) {
        *queued += m->ntasks;
        if (m->ntasks > *max_depth)
            *max_depth = m->ntasks;
    }
}

/* Re-estimates the model's memory after a change. */
void fo_model_account(fo_model *m)
{
    fo_doc_stats st;
    size_t doc = 0;

    if (m->master) {
        fo_doc_stats_get(fo_master_doc(m->master), &st);
        doc = st.arena_bytes;
    }
    /* An exactly-once entry: the map's entry and key, the seq, allocator overhead. */
    set_mem(m, doc, m->hist.bytes, m->dedup.len * 112 + m->dedup.nbuckets * sizeof(void *));
}

/* ---- history ------------------------------------------------------------------------- */

static int history_fn(void *ctx, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out)
{
    fo_model *m = ctx;

    if (to > fo_master_snapshot(m->master).command_count)
        return -1;
    if (!a) {
        /* history_by_ref: the runner splices the encoded batches (fo_history_parts). */
        if (!fo_history_covers(&m->hist, from, to))
            return -1;
        out->from = from;
        out->len = (uint32_t)(to - from);
        out->items = NULL;
        return 0;
    }
    return fo_history_get(&m->hist, from, to, a, out);
}

bool fo_model_history_covers(fo_model *m, uint64_t from, uint64_t to)
{
    return to <= fo_master_snapshot(m->master).command_count &&
           fo_history_covers(&m->hist, from, to);
}

int fo_model_history(fo_model *m, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out)
{
    return history_fn(m, from, to, a, out);
}

int fo_model_history_msg(fo_model *m, uint64_t from, uint64_t to, fo_arena *a, fo_msg *msg)
{
    fo_wire_part *parts;
    uint32_t n;

    if (to > fo_master_snapshot(m->master).command_count)
        return -1;
    if (to > from && fo_history_parts(&m->hist, from, to, a, &parts, &n) == 0 && n) {
        msg->batch = (fo_batch){from, (uint32_t)(to - from), NULL};
        msg->ext_parts = parts;
        msg->n_ext_parts = n;
        return 0;
    }
    return fo_model_history(m, from, to, a, &msg->batch);
}

/* ---- loading ------------------------------------------------------------------------- */


/* Answers every queued task with an error (the model could not be loaded). */
static void fail_tasks(fo_model *m, const char *why)
{
    while (m->tasks) {
        fo_task *t = m->tasks;
        m->tasks = t->next;
        m->ntasks--;
        fo_runner_reject(t, FO_ERR_INTERNAL, why);
        fo_runner_task_free(t);
        fo_model_unref(m);
    }
    m->tasks_tail = NULL;
}

int fo_model_replay(fo_model *m, const fo_store_entry *e, bool apply)
{
    fo_wire_limits l;
    fo_arena a;
    fo_batch b;
    fo_err_info err;
    int rc;

    if (apply) {
        fo_pathmap pm;
        fo_batch_outcome o;

        store_limits(&l);
        fo_arena_init(&a, e->batch_size * 2 + 256);
        if ((rc = fo_wire_decode_batch(e->batch, e->batch_size, &l, &a, &b, &err)) != 0 ||
            b.from != e->from || b.len != e->len) {
            FO_LOG(FO_LOG_ERROR, "model=%s log row at %llu does not decode: %s", m->name,
                   (unsigned long long)e->from, rc ? err.msg : "wrong from or length");
            fo_arena_destroy(&a);
            return rc ? rc : FO_EPROTO;
        }
        fo_pathmap_init(&pm, &a);
        rc = fo_batch_apply(fo_master_doc(m->master), b.items, b.len, &pm, NULL, NULL, &a, &o);
        fo_arena_destroy(&a);
        if (rc || o.changed) {
            FO_LOG(FO_LOG_ERROR, "model=%s log row at %llu does not replay", m->name,
                   (unsigned long long)e->from);
            return rc ? rc : FO_EFAILED;
        }
    }
    /* History keeps the row's bytes as they are: decoded only when a sync needs them. */
    return fo_history_add_copy(&m->hist, e->from, e->len, e->batch, e->batch_size,
                               m->hub->cfg.history);
}

static int build(fo_model *m, const fo_store_result *r)
{
    fo_hub *h = m->hub;
    fo_master_config cfg;
    fo_wire_limits l;
    fo_arena a;
    fo_value doc;
    fo_snapshot snap = {0, NULL};
    uint32_t i;
    int rc = 0;

    store_limits(&l);
    memset(&cfg, 0, sizeof(cfg));
    cfg.ids = h->cfg.sequential_ids ? FO_IDS_SEQUENTIAL : FO_IDS_RANDOM;
    cfg.history = history_fn;
    cfg.history_by_ref = true;
    cfg.history_ctx = m;
    if (h->cfg.interceptors[0]) /* the rules of the moment come with each batch */
        cfg.interceptor = fo_rules_interceptor;
    fo_arena_init(&a, r->snap_size * 2 + 256);
    if (r->has_snapshot) {
        fo_err_info err;
        if ((rc = fo_wire_decode_value(r->snap, r->snap_size, &l, &a, &doc, &err)) != 0) {
            FO_LOG(FO_LOG_ERROR, "model=%s snapshot at %llu does not decode: %s", m->name,
                   (unsigned long long)r->snap_count, err.msg);
            fo_arena_destroy(&a);
            return rc;
        }
        snap.command_count = r->snap_count;
        snap.document = &doc;
    }
    m->master = fo_master_new(r->has_snapshot ? &snap : NULL, &cfg);
    fo_arena_destroy(&a);
    if (!m->master)
        return FO_ENOMEM;
    fo_strmap_init(&m->dedup);
    for (i = 0; i < r->n_entries && !rc; i++)
        rc = fo_model_replay(m, &r->entries[i], i >= r->n_before);
    for (i = 0; i < r->n_clients && !rc; i++) {
        uint64_t *seq = malloc(sizeof(*seq));
        if (!seq)
            return FO_ENOMEM;
        *seq = r->clients[i].seq;
        if (fo_strmap_put(&m->dedup, r->clients[i].client, strlen(r->clients[i].client), seq)) {
            free(seq);
            rc = FO_ENOMEM;
        }
    }
    m->snapshot_count = r->has_snapshot ? r->snap_count : 0;
    return rc;
}

static void next_load(fo_hub *h);

static void on_loaded(fo_store *s, const fo_store_status *st, fo_store_result *r, void *data)
{
    fo_model *m = data;
    fo_hub *h = m->hub;
    int rc = st->rc;
    uint64_t t0 = fo_now_ns();
    uint32_t rows = r ? r->n_entries : 0;

    (void)s;
    h->loads_inflight--;
    if (rc == 0)
        rc = build(m, r);
    fo_store_result_free(r);
    fo_model_unref(m);
    if (rc) {
        char why[300];
        snprintf(why, sizeof(why), "cannot load model %s: %s", m->name,
                 st->rc ? st->reason : fo_store_strerror(rc));
        FO_LOG(FO_LOG_ERROR, "model=%s cannot load: %s", m->name,
               st->rc ? st->msg : fo_store_strerror(rc));
        h->metrics.store_errors++;
        unload(m);
        fail_tasks(m, why);
        next_load(h);
        return;
    }
    h->metrics.loads++;
    m->state = FO_MODEL_READY;
    m->released = fo_master_snapshot(m->master).command_count;
    fo_model_account(m);
    FO_LOG(FO_LOG_INFO, "model=%s loaded: count %llu, %u log rows, %.1f ms (store %.1f ms)",
           m->name, (unsigned long long)m->released, rows,
           (double)(fo_now_ns() - t0) / 1e6 + (double)st->latency_ns / 1e6,
           (double)st->latency_ns / 1e6);
    /* Subscribers kept across a reload (a failed commit, a dropped idle document) catch up
     * from what they have. */
    for (fo_sub *sub = m->subs; sub; sub = sub->mnext)
        if (sub->next_from != m->released)
            sub->lagging = true;
    for (fo_sub *sub = m->subs; sub; sub = sub->mnext)
        if (fo_session_backlog(sub->session) == 0)
            fo_model_catch_up(sub);
    fo_model_run(m);
    fo_model_evict(h);
    next_load(h);
}

/* Loads in flight at once. A load's result (the snapshot, the rows after it, then the
 * decoded document) is memory outside the budget until it is built; with every subscribed
 * model's document dropped and wanted again (a budget smaller than the hot set), hundreds
 * of loads at once held hundreds of documents in the store's queue. One store thread
 * reads them one at a time anyway: a few in flight keep it busy. */
#define FO_MAX_LOADS 4

static void submit_load(fo_model *m)
{
    fo_hub *h = m->hub;
    int rc;

    /* History in memory starts at the newest snapshot (the rows replayed after it); older
     * rows are read back from the store when a request needs them. */
    if (++h->loads_inflight > h->mem.loads_peak)
        h->mem.loads_peak = h->loads_inflight;
    rc = fo_store_load(h->store, m->name, UINT64_MAX, on_loaded, fo_model_ref(m));
    if (rc) {
        char why[300];
        h->loads_inflight--;
        fo_model_unref(m);
        snprintf(why, sizeof(why), "cannot load model %s: %s", m->name, fo_store_strerror(rc));
        m->state = FO_MODEL_COLD;
        fail_tasks(m, why);
    }
}

/* A load slot is free: the longest-waiting model takes it. */
static void next_load(fo_hub *h)
{
    while (h->load_wait && h->loads_inflight < FO_MAX_LOADS) {
        fo_model *m = h->load_wait;
        h->load_wait = m->load_next;
        if (!h->load_wait)
            h->load_wait_tail = NULL;
        m->load_next = NULL;
        m->load_waiting = false;
        fo_model_unref(m);
        submit_load(m);
    }
}

static void start_load(fo_model *m)
{
    fo_hub *h = m->hub;

    m->state = FO_MODEL_LOADING;
    if (h->loads_inflight < FO_MAX_LOADS) {
        submit_load(m);
        return;
    }
    m->load_waiting = true;
    h->mem.load_waits++;
    fo_model_ref(m);
    if (h->load_wait_tail)
        h->load_wait_tail->load_next = m;
    else
        h->load_wait = m;
    h->load_wait_tail = m;
}

void fo_model_mark_broken(fo_model *m)
{
    if (m->broken)
        return;
    FO_LOG(FO_LOG_WARN, "model=%s a commit failed: reloading it from the store", m->name);
    m->broken = true;
    /* Stop running requests on a state the store does not have. */
    if (m->state == FO_MODEL_READY || m->state == FO_MODEL_READING)
        m->state = FO_MODEL_LOADING;
}

void fo_model_mark_stale(fo_model *m)
{
    if (m->stale || m->broken)
        return;
    m->stale = true;
    if (m->state == FO_MODEL_READY || m->state == FO_MODEL_READING)
        m->state = FO_MODEL_LOADING;
}

/* Once the broken (or stale) model's replies are all answered, start over from the store. */
void fo_model_maybe_reload(fo_model *m)
{
    if ((!m->broken && !m->stale) || m->npending)
        return;
    m->broken = m->stale = false;
    unload(m);
    start_load(m);
}

/* ---- the runner ---------------------------------------------------------------------- */

/* The model as a commit owner (commit.h). */
static void owner_hold(fo_commit_owner *o, bool take)
{
    fo_model *m = (fo_model *)((char *)o - offsetof(fo_model, owner));

    if (take)
        fo_model_ref(m);
    else
        fo_model_unref(m);
}

static void owner_failed(fo_commit_owner *o, int rc)
{
    fo_model *m = (fo_model *)((char *)o - offsetof(fo_model, owner));

    if (!m->broken)
        m->broken_rc = rc;
    fo_model_mark_broken(m);
}

static fo_model *get_model(fo_hub *h, const char *name, uint32_t len)
{
    fo_model *m = fo_strmap_get(&h->models, name, len);

    if (m)
        return m;
    if (len > 200 || !(m = calloc(1, sizeof(*m))))
        return NULL;
    m->hub = h;
    memcpy(m->name, name, len);
    m->name_len = len;
    m->owner = (fo_commit_owner){m->name, owner_hold, owner_failed};
    if (fo_strmap_put(&h->models, m->name, len, m)) {
        free(m);
        return NULL;
    }
    lru_touch(h, m);
    return m;
}

void fo_model_run(fo_model *m)
{
    if (m->running) /* a task queued from inside a task: the loop below picks it up */
        return;
    m->running = true;
    while (m->state == FO_MODEL_READY && m->tasks) {
        fo_task *t = m->tasks;
        if (!fo_runner_exec(m, t))
            break; /* waiting for history from the store: runs again from on_history */
        m->tasks = t->next;
        if (!m->tasks)
            m->tasks_tail = NULL;
        m->ntasks--;
        fo_history_clear_disk(&m->hist);
        fo_runner_task_free(t);
        fo_model_unref(m);
    }
    m->running = false;
    fo_model_maybe_reload(m); /* a task found the model broken, and nothing is in flight */
}

/* ---- history read back from the store ------------------------------------------------ */

typedef struct hist_read {
    fo_model *m; /* reference held */
    uint32_t gen;
} hist_read;

static void on_history(fo_store *s, const fo_store_status *st, fo_store_result *r, void *data)
{
    hist_read *c = data;
    fo_model *m = c->m;

    (void)s;
    fo_model_unref(m);
    if (m->state != FO_MODEL_READING || c->gen != m->read_gen) {
        /* The model was reloaded meanwhile (a failed commit): the task asks again. */
        fo_store_result_free(r);
        free(c);
        return;
    }
    free(c);
    if (st->rc) {
        FO_LOG(FO_LOG_WARN, "model=%s reading history back: %s", m->name, st->msg);
        m->hub->metrics.store_errors++;
    }
    m->hub->mem.history_reads++;
    /* A failed or gone read still counts as tried: the task falls back. */
    fo_history_set_disk(&m->hist, r);
    m->state = FO_MODEL_READY;
    fo_model_run(m);
    /* Lagging subscribers that drained meanwhile found the model busy. */
    for (fo_sub *sub = m->subs; sub; sub = sub->mnext)
        if (sub->lagging && sub->session->qlen == 0)
            fo_model_catch_up(sub);
    fo_model_evict(m->hub);
}

bool fo_model_need_history(fo_model *m, uint64_t from, uint64_t to)
{
    fo_hub *h = m->hub;
    uint64_t count = fo_master_snapshot(m->master).command_count;
    uint64_t end = fo_history_start(&m->hist);
    hist_read *c;

    if (from >= to || to > count || m->hist.disk_tried || fo_history_covers(&m->hist, from, to))
        return true;
    /* Older than --history: gone by the rules, whatever the store still has. */
    if (h->cfg.history == 0 || from + h->cfg.history < count)
        return true;
    /* The ring holds [end, count); what is before it was trimmed when durable. */
    if (end > to)
        end = to;
    if (end > m->released || !(c = malloc(sizeof(*c))))
        return true;
    c->m = fo_model_ref(m);
    c->gen = ++m->read_gen;
    if (fo_store_read_log(h->store, m->name, from, end, on_history, c) != 0) {
        fo_model_unref(m);
        free(c);
        return true;
    }
    m->state = FO_MODEL_READING;
    FO_LOG(FO_LOG_DEBUG, "model=%s history read back [%llu, %llu)", m->name,
           (unsigned long long)from, (unsigned long long)end);
    return false;
}

static void enqueue(fo_hub *h, fo_task *t, const fo_msg *msg, fo_arena *arena)
{
    fo_model *m = get_model(h, msg->model, msg->model_len);

    t->msg = *msg;
    t->arena = *arena;
    if (!m) {
        fo_runner_reject(t, FO_ERR_INTERNAL, "out of memory");
        fo_runner_task_free(t);
        return;
    }
    lru_touch(h, m);
    fo_model_queue(m, t);
}

void fo_model_queue(fo_model *m, fo_task *t)
{
    fo_model_ref(m);
    if (m->tasks_tail)
        m->tasks_tail->next = t;
    else
        m->tasks = t;
    m->tasks_tail = t;
    m->ntasks++;
    if (m->state == FO_MODEL_COLD)
        start_load(m);
    fo_model_run(m);
}

void fo_model_submit(fo_hub *h, fo_session *s, const fo_msg *msg, fo_arena *arena,
                     uint64_t t_recv)
{
    fo_task *t = calloc(1, sizeof(*t));

    if (!t) {
        fo_session_send_error(s, msg, FO_ERR_INTERNAL, "out of memory");
        fo_arena_destroy(arena);
        return;
    }
    t->sink = fo_reply_ref(&s->sink);
    t->session = s;
    t->client = s->client;
    t->t_recv = t_recv;
    if (msg->type == FO_MSG_FLUSH && s->rights.claims)
        t->identity = json_incref(s->rights.claims);
    enqueue(h, t, msg, arena);
}

void fo_model_submit_forwarded(fo_hub *h, fo_reply_sink *sink, const char *client,
                               json_t *identity, const fo_msg *msg, fo_arena *arena,
                               uint64_t t_recv)
{
    fo_task *t = calloc(1, sizeof(*t));
    size_t cl = strlen(client);
    char *c = fo_arena_alloc(arena, cl + 1);

    if (!t || !c) {
        free(t);
        fo_reply_error(sink, msg, FO_ERR_INTERNAL, "out of memory");
        json_decref(identity);
        fo_arena_destroy(arena);
        return;
    }
    memcpy(c, client, cl + 1);
    t->sink = fo_reply_ref(sink);
    t->client = c;
    t->identity = identity;
    t->t_recv = t_recv;
    enqueue(h, t, msg, arena);
}

void fo_model_submit_read(fo_hub *h, fo_reply_sink *sink, const fo_msg *msg, fo_arena *arena)
{
    fo_task *t = calloc(1, sizeof(*t));

    if (!t) {
        fo_reply_error(sink, msg, FO_ERR_INTERNAL, "out of memory");
        fo_arena_destroy(arena);
        return;
    }
    t->sink = fo_reply_ref(sink);
    t->t_recv = fo_now_ns();
    enqueue(h, t, msg, arena);
}
