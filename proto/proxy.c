#include "proto/proxy.h"

#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

/* A list of completions whose commands live in the list's own arena. */
typedef struct clist {
    fo_arena arena;
    fo_completion *items; /* malloc'd */
    uint32_t len, cap;
} clist;

struct fo_proxy {
    fo_doc *model;      /* committed state + queue */
    fo_doc *committed;  /* what the master last confirmed */
    fo_proxy_config cfg;
    clist queue;        /* applied locally, not yet flushed */
    clist flight;       /* flushed, waiting for the ack */
    bool flushing;
    bool broken;        /* a diff did not apply: only fo_proxy_reset helps */
    fo_arena scratch;   /* per-call temporaries: error messages, outcomes */
};

static void clist_init(clist *l)
{
    memset(l, 0, sizeof(*l));
    fo_arena_init(&l->arena, 1024);
}

static void clist_destroy(clist *l)
{
    fo_arena_destroy(&l->arena);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Appends a deep copy of c. */
static int clist_push(clist *l, const fo_completion *c)
{
    fo_completion *slot;
    char buf[20];
    size_t len;
    const char *s;

    if (l->len == l->cap) {
        uint32_t ncap = l->cap ? l->cap * 2 : 16;
        fo_completion *n = realloc(l->items, ncap * sizeof(*n));
        if (!n)
            return FO_ENOMEM;
        l->items = n;
        l->cap = ncap;
    }
    slot = &l->items[l->len];
    if (fo_command_copy(&l->arena, &c->command, &slot->command))
        return FO_ENOMEM;
    slot->created_id = FO_KEY_NONE;
    if (c->created_id) {
        s = fo_key_str(c->created_id, buf, &len);
        if (!(slot->created_id = fo_key_new(&l->arena, s, len)))
            return FO_ENOMEM;
    }
    l->len++;
    return 0;
}

fo_proxy *fo_proxy_new(const fo_snapshot *s, const fo_proxy_config *cfg)
{
    fo_proxy *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    if (cfg)
        p->cfg = *cfg;
    clist_init(&p->queue);
    clist_init(&p->flight);
    fo_arena_init(&p->scratch, 4096);
    p->committed = s ? fo_doc_new_from(s, p->cfg.ids) : fo_doc_new(p->cfg.ids);
    p->model = p->committed ? fo_doc_clone(p->committed) : NULL;
    if (!p->model) {
        fo_proxy_free(p);
        return NULL;
    }
    return p;
}

void fo_proxy_free(fo_proxy *p)
{
    if (!p)
        return;
    fo_doc_free(p->model);
    fo_doc_free(p->committed);
    clist_destroy(&p->queue);
    clist_destroy(&p->flight);
    fo_arena_destroy(&p->scratch);
    free(p);
}

const fo_value *fo_proxy_document(const fo_proxy *p)
{
    return fo_doc_root(p->model);
}

uint64_t fo_proxy_count(const fo_proxy *p)
{
    return fo_doc_count(p->model);
}

uint64_t fo_proxy_committed_count(const fo_proxy *p)
{
    return fo_doc_count(p->committed);
}

const fo_value *fo_proxy_committed_document(const fo_proxy *p)
{
    return fo_doc_root(p->committed);
}

bool fo_proxy_flushing(const fo_proxy *p)
{
    return p->flushing;
}

bool fo_proxy_has_unflushed(const fo_proxy *p)
{
    return p->queue.len > 0;
}

uint32_t fo_proxy_queue_len(const fo_proxy *p)
{
    return p->queue.len;
}

int fo_proxy_apply(fo_proxy *p, const fo_command *c, fo_doc_result *out)
{
    fo_interception icp = {FO_INTERCEPT_ACCEPT, NULL, NULL, FO_KEY_NONE, false};
    fo_command cmd = *c;
    fo_completion done;
    int rc;

    fo_arena_reset(&p->scratch);
    memset(out, 0, sizeof(*out));
    if (p->cfg.interceptor.fn &&
        (rc = p->cfg.interceptor.fn(p->cfg.interceptor.data, fo_doc_root(p->model), c, NULL,
                                    &p->scratch, &icp)) != 0)
        return rc;
    if (icp.kind == FO_INTERCEPT_REJECT || (icp.kind == FO_INTERCEPT_REPLACE &&
                                            c->action == FO_DELETE)) {
        out->ok = false;
        out->error = icp.rejection ? icp.rejection : "Rejected by interceptor";
        return 0;
    }
    if (icp.kind == FO_INTERCEPT_REPLACE) {
        cmd.props = icp.new_props;
        cmd.parent_default = NULL;
    }
    if ((rc = fo_doc_apply(p->model, &cmd, FO_KEY_NONE, &p->scratch, out)) != 0)
        return rc;
    if (!out->ok)
        return 0;
    done.command = cmd;
    done.created_id = out->created_id;
    if ((rc = clist_push(&p->queue, &done)) != 0)
        return rc;
    /* Hand back the queue's own copy of the ID: the document may compact. */
    out->created_id = p->queue.items[p->queue.len - 1].created_id;
    return fo_doc_maybe_compact(p->model);
}

int fo_proxy_begin_flush_max(fo_proxy *p, uint32_t max_items, fo_batch *out)
{
    clist tmp, rest;
    uint32_t i;

    if (p->flushing || p->broken)
        return FO_ESTATE;
    clist_init(&rest);
    if (max_items && p->queue.len > max_items) {
        /* The tail stays queued: copied into a list of its own before the swap. */
        for (i = max_items; i < p->queue.len; i++) {
            if (clist_push(&rest, &p->queue.items[i])) {
                clist_destroy(&rest);
                return FO_ENOMEM;
            }
        }
        p->queue.len = max_items;
    }
    tmp = p->flight;
    p->flight = p->queue;
    p->queue = rest;
    clist_destroy(&tmp);
    p->flushing = true;
    out->from = fo_doc_count(p->committed);
    out->len = p->flight.len;
    out->items = p->flight.items;
    return 0;
}

int fo_proxy_begin_flush(fo_proxy *p, fo_batch *out)
{
    return fo_proxy_begin_flush_max(p, 0, out);
}

int fo_proxy_cancel_flush(fo_proxy *p)
{
    uint32_t i;
    clist tmp;

    if (!p->flushing)
        return FO_ESTATE;
    for (i = 0; i < p->queue.len; i++)
        if (clist_push(&p->flight, &p->queue.items[i]))
            return FO_ENOMEM;
    tmp = p->queue;
    p->queue = p->flight;
    p->flight = tmp;
    fo_arena_destroy(&p->flight.arena);
    fo_arena_init(&p->flight.arena, 1024);
    p->flight.len = 0;
    p->flushing = false;
    return 0;
}

static void drop_flight(fo_proxy *p)
{
    fo_arena_destroy(&p->flight.arena);
    fo_arena_init(&p->flight.arena, 1024);
    p->flight.len = 0;
    p->flushing = false;
}

/* Applies a diff (completions with their created IDs) to a document; FO_EFAILED when a
 * completion fails. */
static int apply_diff(fo_proxy *p, fo_doc *d, const fo_batch *diff)
{
    fo_pathmap pm;
    fo_batch_outcome o;
    int rc;

    fo_pathmap_init(&pm, &p->scratch);
    if ((rc = fo_batch_apply(d, diff->items, diff->len, &pm, NULL, NULL, &p->scratch, &o)))
        return rc;
    return o.errors_len ? FO_EFAILED : 0;
}

/* model := committed + queue, the queue re-applied through `mapped` (a sync's
 * mappedPaths). Failing commands are dropped, remapped ones rewritten. */
static int rebase(fo_proxy *p, const fo_path_mapping *mapped, uint32_t nmapped,
                  bool *ids_changed)
{
    fo_doc *model = fo_doc_clone(p->committed);
    fo_pathmap pm;
    fo_batch_outcome o;
    clist q;
    uint32_t i;
    int rc;

    if (!model)
        return FO_ENOMEM;
    fo_pathmap_init(&pm, &p->scratch);
    if ((rc = fo_pathmap_load(&pm, mapped, nmapped)) ||
        (rc = fo_batch_apply(model, p->queue.items, p->queue.len, &pm, NULL, NULL,
                             &p->scratch, &o))) {
        fo_doc_free(model);
        return rc;
    }
    fo_doc_free(p->model);
    p->model = model;
    if (!o.changed)
        return 0;
    *ids_changed = true;
    clist_init(&q);
    for (i = 0; i < o.rebuilt.len; i++) {
        if (clist_push(&q, &o.rebuilt.items[i])) {
            clist_destroy(&q);
            return FO_ENOMEM;
        }
    }
    clist_destroy(&p->queue);
    p->queue = q;
    return 0;
}

int fo_proxy_end_flush(fo_proxy *p, const fo_sync *sync, bool *ids_changed)
{
    bool changed = false;
    int rc;

    fo_arena_reset(&p->scratch);
    if (ids_changed)
        *ids_changed = false;
    if (!p->flushing)
        return FO_ESTATE;
    if (!sync || sync->kind == FO_SYNC_NONE) {
        /* The master took the batch as it was: replaying it on the committed state gives
         * the document the proxy had at begin (IDs are proposed), in O(batch). */
        fo_batch b = {fo_doc_count(p->committed), p->flight.len, p->flight.items};
        rc = apply_diff(p, p->committed, &b);
        drop_flight(p);
        if (rc)
            p->broken = true;
        return rc;
    }
    if (sync->kind == FO_SYNC_PARTIAL) {
        /* As the reference, a diff that cannot be applied reports idsChanged. */
        if (sync->diff.from != fo_doc_count(p->committed)) {
            if (ids_changed)
                *ids_changed = true;
            return FO_EGAP;
        }
        if ((rc = apply_diff(p, p->committed, &sync->diff)) != 0) {
            drop_flight(p);
            p->broken = true;
            if (ids_changed)
                *ids_changed = true;
            return rc;
        }
        changed = sync->has_mapped;
    } else {
        fo_doc *d = fo_doc_new_from(&sync->latest, p->cfg.ids);
        if (!d)
            return FO_ENOMEM;
        fo_doc_free(p->committed);
        p->committed = d;
        changed = true;
    }
    drop_flight(p);
    rc = rebase(p, sync->mapped, sync->mapped_len, &changed);
    if (ids_changed)
        *ids_changed = changed;
    return rc;
}

int fo_proxy_apply_push(fo_proxy *p, const fo_batch *diff, bool *ids_changed)
{
    bool changed = false;
    int rc;

    fo_arena_reset(&p->scratch);
    if (ids_changed)
        *ids_changed = false;
    if (p->flushing || p->broken)
        return FO_ESTATE;
    if (diff->from != fo_doc_count(p->committed))
        return FO_EGAP;
    if ((rc = apply_diff(p, p->committed, diff)) != 0) {
        p->broken = true;
        return rc;
    }
    if (p->queue.len == 0) {
        /* Nothing local: the model equals the committed state, so the same diff brings
         * it along in O(diff) instead of a copy of the whole document. */
        if ((rc = apply_diff(p, p->model, diff)) != 0)
            p->broken = true;
        return rc;
    }
    rc = rebase(p, NULL, 0, &changed);
    if (ids_changed)
        *ids_changed = changed;
    return rc;
}

int fo_proxy_reset(fo_proxy *p, const fo_snapshot *s)
{
    bool changed = false;
    fo_doc *d;

    fo_arena_reset(&p->scratch);
    if (p->flushing)
        return FO_ESTATE;
    if (!(d = fo_doc_new_from(s, p->cfg.ids)))
        return FO_ENOMEM;
    fo_doc_free(p->committed);
    p->committed = d;
    p->broken = false;
    return rebase(p, NULL, 0, &changed);
}
