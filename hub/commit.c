#include "hub/commit.h"

#include <stdlib.h>
#include <string.h>

#include "hub/hub.h"
#include "hub/log.h"
#include "hub/store.h"

/* Entries an array kept for the next turn may have (fo_commit.spare, .wbuf): a thousand
 * flushes in a turn are common, a burst past this gives its arrays back. */
#define FO_COMMIT_KEEP 4096

void fo_commit_init(fo_commit *c)
{
    memset(c, 0, sizeof(*c));
}

/* Keeps a released group's writes array for the next group (the larger of it and the one
 * kept, within FO_COMMIT_KEEP), frees the other. */
static void keep_writes(fo_commit *c, fo_commit_write *writes, size_t cap)
{
    if (cap > FO_COMMIT_KEEP || (c->spare && c->spare_cap >= cap)) {
        free(writes);
        return;
    }
    free(c->spare);
    c->spare = writes;
    c->spare_cap = writes ? cap : 0;
}

static void group_free(fo_group *g)
{
    size_t i;

    for (i = 0; i < g->nwrites; i++) {
        fo_frame_unref(g->writes[i].frame);
        free(g->writes[i].snapshot);
        free(g->writes[i].clients);
        free(g->writes[i].identity);
        free(g->writes[i].original);
        free(g->writes[i].audit);
        g->writes[i].owner->hold(g->writes[i].owner, false);
    }
    keep_writes(&g->hub->commit, g->writes, g->cap);
    g->hub->commit.snap_bytes -= g->snap_bytes;
    free(g);
}

void fo_commit_destroy(fo_commit *c)
{
    /* Only reached with every group released (the hub drains before it stops). */
    while (c->first) {
        fo_group *g = c->first;
        c->first = g->next;
        group_free(g);
    }
    free(c->spare);
    free(c->wbuf);
    memset(c, 0, sizeof(*c));
}

static fo_group *open_group(fo_hub *h)
{
    fo_commit *c = &h->commit;
    fo_group *g;

    if (c->open)
        return c->open;
    if (!(g = calloc(1, sizeof(*g))))
        return NULL;
    g->hub = h;
    g->writes = c->spare;
    g->cap = c->spare_cap;
    c->spare = NULL;
    c->spare_cap = 0;
    if (c->last)
        c->last->next = g;
    else
        c->first = g;
    c->last = g;
    c->open = g;
    c->groups++;
    return g;
}

int fo_commit_wait(fo_hub *h, fo_commit_waiter *w)
{
    fo_group *g = open_group(h);

    if (!g)
        return FO_ENOMEM;
    w->next = NULL;
    if (g->tail)
        g->tail->next = w;
    else
        g->head = w;
    g->tail = w;
    h->commit.pending++;
    return 0;
}

int fo_commit_add_write(fo_hub *h, fo_commit_write *w)
{
    fo_group *g = open_group(h);

    if (!g)
        return FO_ENOMEM;
    if (g->nwrites == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 16;
        fo_commit_write *n = realloc(g->writes, ncap * sizeof(*n));
        if (!n)
            return FO_ENOMEM;
        g->writes = n;
        g->cap = ncap;
    }
    g->writes[g->nwrites] = *w;
    g->snap_bytes += w->snapshot ? w->snapshot_len + w->clients_len : 0;
    h->commit.snap_bytes += w->snapshot ? w->snapshot_len + w->clients_len : 0;
    w->owner->hold(w->owner, true);
    if (w->frame)
        fo_frame_ref(w->frame);
    g->nwrites++;
    return 0;
}

/* Releases answered groups from the front, in order. */
static void release_ready(fo_hub *h)
{
    fo_commit *c = &h->commit;

    while (c->first && c->first->done) {
        fo_group *g = c->first;
        fo_commit_waiter *w = g->head;

        c->first = g->next;
        if (!c->first)
            c->last = NULL;
        c->groups--;
        while (w) {
            fo_commit_waiter *next = w->next;
            c->pending--;
            w->settle(w, g->rc, g->rc ? g->err : NULL);
            w = next;
        }
        group_free(g);
    }
    if (c->released)
        c->released(h);
}

static void on_committed(fo_store *s, const fo_store_status *st, void *data)
{
    fo_group *g = data;
    fo_hub *h = g->hub;
    size_t i;

    (void)s;
    g->done = true;
    g->rc = st->rc;
    h->commit.snap_bytes -= g->snap_bytes;
    g->snap_bytes = 0;
    h->metrics.store_commits++;
    fo_hist_add(&h->metrics.commit_latency, (double)st->latency_ns / 1e9);
    if (st->rc) {
        snprintf(g->err, sizeof(g->err), "store write failed: %s", st->reason);
        h->metrics.store_errors++;
        FO_LOG(FO_LOG_ERROR, "commit of %zu batches failed: %s", g->nwrites, st->msg);
        for (i = 0; i < g->nwrites; i++)
            g->writes[i].owner->failed(g->writes[i].owner, st->rc);
    }
    release_ready(h);
}

/* One model's part of a group on a per-model store. */
typedef struct part {
    fo_group *g;
    size_t first, n; /* g->writes[order[first .. first + n)] */
    size_t *order;   /* shared by the group's parts; freed by the last answer */
} part;

static void on_part(fo_store *s, const fo_store_status *st, void *data)
{
    part *pt = data;
    fo_group *g = pt->g;
    fo_hub *h = g->hub;

    (void)s;
    fo_hist_add(&h->metrics.commit_latency, (double)st->latency_ns / 1e9);
    if (st->rc) {
        /* Only this model's replies fail (its owner is broken: subs.c settles them so). */
        h->metrics.store_errors++;
        FO_LOG(FO_LOG_ERROR, "commit of %zu batches of %s failed: %s", pt->n,
               g->writes[pt->order[pt->first]].owner->name, st->msg);
        for (size_t i = 0; i < pt->n; i++)
            g->writes[pt->order[pt->first + i]].owner->failed(
                g->writes[pt->order[pt->first + i]].owner, st->rc);
    }
    if (--g->parts == 0) {
        free(pt->order);
        g->done = true;
        h->commit.snap_bytes -= g->snap_bytes;
        g->snap_bytes = 0;
        h->metrics.store_commits++;
        release_ready(h);
    }
    free(pt);
}

/* A write's place in its group, sorted by owner (then place). */
typedef struct slot {
    uintptr_t owner;
    size_t i;
} slot;

static int by_owner(const void *a, const void *b)
{
    const slot *x = a, *y = b;

    if (x->owner != y->owner)
        return x->owner < y->owner ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Submits the group as one commit per model (writes kept in order within each). 0, or an
 * error when not even the first could be submitted; a later refusal fails that model. */
static int submit_parts(fo_hub *h, fo_group *g, const fo_store_write *w)
{
    size_t *order = malloc(g->nwrites * sizeof(*order)), i, start;
    slot *sl = malloc(g->nwrites * sizeof(*sl));
    fo_store_write *run = malloc(g->nwrites * sizeof(*run));
    int rc = 0;

    if (!order || !sl || !run) {
        free(order);
        free(sl);
        free(run);
        return FO_ENOMEM;
    }
    for (i = 0; i < g->nwrites; i++)
        sl[i] = (slot){(uintptr_t)g->writes[i].owner, i};
    qsort(sl, g->nwrites, sizeof(*sl), by_owner);
    for (i = 0; i < g->nwrites; i++)
        order[i] = sl[i].i;
    free(sl);
    g->parts = 1; /* held until every part is submitted */
    for (start = 0; start < g->nwrites; start = i) {
        part *pt;
        for (i = start; i < g->nwrites && g->writes[order[i]].owner == g->writes[order[start]].owner; i++)
            run[i - start] = w[order[i]];
        if (!(pt = malloc(sizeof(*pt))) ||
            (rc = fo_store_commit(h->store, run, i - start, on_part, pt)) != 0) {
            free(pt);
            rc = rc ? rc : FO_ENOMEM;
            for (size_t k = start; k < i; k++)
                g->writes[order[k]].owner->failed(g->writes[order[k]].owner, rc);
            continue;
        }
        *pt = (part){g, start, i - start, order};
        g->parts++;
    }
    free(run);
    if (start == 0 && g->parts == 1) { /* nothing to submit (no writes) */
        free(order);
        g->parts = 0;
        return rc ? rc : FO_EINVAL;
    }
    /* Drop the hold: answered parts may all be in already (never: callbacks run later). */
    g->parts--;
    if (g->parts == 0) { /* every part was refused at submission */
        free(order);
        return rc ? rc : FO_EINVAL;
    }
    return 0;
}

/* n zeroed store writes in c->wbuf (grown as needed), or NULL without memory. */
static fo_store_write *writes_buf(fo_commit *c, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > c->wbuf_cap) {
        fo_store_write *w = n <= SIZE_MAX / sizeof(*w) ? malloc(n * sizeof(*w)) : NULL;
        if (!w)
            return NULL;
        free(c->wbuf);
        c->wbuf = w;
        c->wbuf_cap = n;
    }
    memset(c->wbuf, 0, n * sizeof(*c->wbuf));
    return c->wbuf;
}

void fo_commit_turn(fo_hub *h)
{
    fo_commit *c = &h->commit;
    fo_group *g = c->open;
    fo_store_write *w;
    size_t i;
    int rc;

    if (!g)
        return;
    c->open = NULL;
    g->submitted = true;
    if (g->nwrites == 0 && c->first == g) {
        /* Nothing to write and nothing before it: durable already. */
        g->done = true;
        release_ready(h);
        return;
    }
    if (!(w = writes_buf(c, g->nwrites))) {
        rc = FO_ENOMEM;
        goto failed;
    }
    for (i = 0; i < g->nwrites; i++) {
        const fo_commit_write *cw = &g->writes[i];
        w[i].model = cw->owner->name;
        w[i].from = cw->from;
        w[i].len = cw->len;
        w[i].batch = cw->frame ? cw->frame->data + cw->batch_off : NULL;
        w[i].batch_size = cw->frame ? cw->batch_len : 0;
        w[i].client = cw->frame ? cw->client : NULL;
        w[i].seq = cw->seq;
        w[i].snap = cw->snapshot;
        w[i].snap_size = cw->snapshot_len;
        w[i].snap_count = cw->from + cw->len;
        w[i].clients = cw->snapshot ? cw->clients : NULL;
        w[i].clients_size = cw->snapshot ? cw->clients_len : 0;
        w[i].cut = cw->drop_before;
        w[i].now_ms = cw->now_ms;
        w[i].identity = cw->identity;
        w[i].original = cw->original;
        w[i].original_size = cw->original_len;
        w[i].audit = cw->audit;
    }
    /* A group without writes still goes through the store as a barrier: the store runs
     * jobs in order, so its replies cannot overtake the writes of earlier groups. */
    if (g->nwrites > 1 && fo_store_per_model(h->store))
        rc = submit_parts(h, g, w);
    else
        rc = fo_store_commit(h->store, w, g->nwrites, on_committed, g);
    if (c->wbuf_cap > FO_COMMIT_KEEP) { /* the store copied them or read them already */
        free(c->wbuf);
        c->wbuf = NULL;
        c->wbuf_cap = 0;
    }
    if (rc == 0) {
        /* The store's job holds its own copy: one copy of each document, not two. */
        for (i = 0; i < g->nwrites; i++) {
            free(g->writes[i].snapshot);
            free(g->writes[i].clients);
            g->writes[i].snapshot = g->writes[i].clients = NULL;
        }
        return;
    }
failed:
    g->done = true;
    g->rc = rc;
    snprintf(g->err, sizeof(g->err), "store refused the commit: %s", fo_store_strerror(rc));
    for (i = 0; i < g->nwrites; i++)
        g->writes[i].owner->failed(g->writes[i].owner, rc);
    release_ready(h);
}

bool fo_commit_idle(const fo_hub *h)
{
    return h->commit.first == NULL;
}
