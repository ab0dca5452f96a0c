/* hubtest_oracle.c - the oracle master, oracle-checked flushes and the flush log of hubtest.h. */
#include "tests/support/hubtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/json.h"

/* ---- oracle -------------------------------------------------------------------------------- */

#define ORACLE_CAP (1u << 18)

struct ht_oracle {
    fo_master *m;
    fo_arena keep;       /* history and document texts */
    fo_arena result;     /* the last result */
    fo_completion *hist; /* fixed capacity: results may borrow from it, so it never moves */
    uint64_t len;
    char **docs; /* JSON of the document after n commands, at batch boundaries */
};

static int oracle_history(void *ctx, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out)
{
    ht_oracle *o = ctx;

    (void)a;
    if (from > to || to > o->len)
        return -1;
    out->from = from;
    out->len = (uint32_t)(to - from);
    out->items = &o->hist[from];
    return 0;
}

static void oracle_free_cb(void *p)
{
    ht_oracle_free(p);
}

ht_oracle *ht_oracle_new(void)
{
    ht_oracle *o = calloc(1, sizeof(*o));
    fo_master_config cfg = {FO_IDS_SEQUENTIAL, {NULL, NULL}, oracle_history, NULL, false};

    cr_assert_not_null(o);
    cfg.history_ctx = o;
    o->hist = calloc(ORACLE_CAP, sizeof(*o->hist));
    o->docs = calloc(ORACLE_CAP + 1, sizeof(*o->docs));
    cr_assert(o->hist && o->docs);
    fo_arena_init(&o->keep, 0);
    fo_arena_init(&o->result, 0);
    o->m = fo_master_new(NULL, &cfg);
    cr_assert_not_null(o->m);
    o->docs[0] = fo_arena_strndup(&o->keep, "{}", 2);
    ht_defer(oracle_free_cb, o);
    return o;
}

void ht_oracle_free(ht_oracle *o)
{
    if (!o)
        return;
    ht_undefer(o);
    fo_master_free(o->m);
    fo_arena_destroy(&o->keep);
    fo_arena_destroy(&o->result);
    free(o->hist);
    free(o->docs);
    free(o);
}

fo_apply_result ht_oracle_apply(ht_oracle *o, const fo_batch *b)
{
    fo_apply_result r;
    fo_snapshot s;
    char *doc;
    uint32_t i;

    fo_arena_reset(&o->result);
    cr_assert_eq(fo_master_apply(o->m, b, NULL, &o->result, &r), 0);
    cr_assert(o->len + r.applied.len < ORACLE_CAP, "oracle history full");
    for (i = 0; i < r.applied.len; i++) {
        fo_completion *c = &o->hist[o->len++];
        cr_assert_eq(fo_command_copy(&o->keep, &r.applied.items[i].command, &c->command), 0);
        c->created_id = FO_KEY_NONE;
        if (r.applied.items[i].created_id) {
            char buf[20];
            size_t len;
            const char *s2 = fo_key_str(r.applied.items[i].created_id, buf, &len);
            c->created_id = fo_key_new(&o->keep, s2, len);
        }
    }
    s = fo_master_snapshot(o->m);
    cr_assert_eq(s.command_count, o->len);
    doc = ht_json(s.document);
    o->docs[o->len] = fo_arena_strndup(&o->keep, doc, strlen(doc));
    free(doc);
    return r;
}

fo_snapshot ht_oracle_snapshot(ht_oracle *o)
{
    return fo_master_snapshot(o->m);
}

const char *ht_oracle_doc_at(ht_oracle *o, uint64_t at)
{
    return at <= o->len ? o->docs[at] : NULL;
}

const fo_completion *ht_oracle_history(ht_oracle *o, uint64_t n)
{
    return n < o->len ? &o->hist[n] : NULL;
}

/* ---- checked flushes
 * --------------------------------------------------------------------------------- */

fo_apply_result ht_flush_checked(ht_client *c, ht_oracle *o, const char *model,
                                 const char *batch_json)
{
    fo_batch b = ht_batch_json(&c->arena, batch_json);
    fo_apply_result got = ht_flush(c, model, &b);
    fo_apply_result want = ht_oracle_apply(o, &b);
    char what[160];

    snprintf(what, sizeof(what), "[%s] ack of seq %llu on %s vs the oracle", c->id,
             (unsigned long long)c->seq, model);
    ht_assert_result_eq(&got, &want, what);
    return got;
}

void ht_flush_update(ht_client *c, ht_oracle *o, const char *model, int i)
{
    char json[200];

    snprintf(json, sizeof(json),
             "{\"from\":%llu,\"completions\":[{\"command\":{\"action\":\"update\","
             "\"props\":{\"k%d\":%d}}}]}",
             (unsigned long long)ht_oracle_snapshot(o).command_count, i, i);
    ht_flush_checked(c, o, model, json);
}

void ht_assert_oracle_snapshot(const fo_snapshot *got, ht_oracle *o, const char *what)
{
    fo_snapshot want = ht_oracle_snapshot(o);

    cr_assert_eq(got->command_count, want.command_count, "%s: commandCount %llu, want %llu", what,
                 (unsigned long long)got->command_count, (unsigned long long)want.command_count);
    ht_assert_value_eq(got->document, want.document, what);
}

/* ---- flush log ------------------------------------------------------------------------------ */

typedef struct flush_rec {
    char *batch;  /* JSON of the batch sent */
    char *result; /* JSON of the ack's result; NULL until acked */
    uint64_t applied_from;
    uint32_t applied_len;
} flush_rec;

struct ht_flush_log {
    flush_rec *items;
    size_t len, cap;
};

static void log_free_cb(void *p)
{
    ht_flush_log_free(p);
}

ht_flush_log *ht_flush_log_new(void)
{
    ht_flush_log *l = calloc(1, sizeof(*l));

    cr_assert_not_null(l);
    ht_defer(log_free_cb, l);
    return l;
}

void ht_flush_log_free(ht_flush_log *l)
{
    if (!l)
        return;
    ht_undefer(l);
    for (size_t i = 0; i < l->len; i++) {
        free(l->items[i].batch);
        free(l->items[i].result);
    }
    free(l->items);
    free(l);
}

size_t ht_flush_log_add(ht_flush_log *l, const fo_batch *b)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = realloc(l->items, l->cap * sizeof(*l->items));
        cr_assert_not_null(l->items);
    }
    memset(&l->items[l->len], 0, sizeof(l->items[0]));
    l->items[l->len].batch = ht_json_batch(b);
    return l->len++;
}

void ht_flush_log_ack(ht_flush_log *l, size_t rec, const fo_apply_result *r)
{
    flush_rec *fr = &l->items[rec];

    cr_assert(rec < l->len && !fr->result, "flush log: record %zu acked twice", rec);
    fr->result = ht_json_result(r);
    fr->applied_from = r->applied.from;
    fr->applied_len = r->applied.len;
}

static int rec_cmp(const void *a, const void *b)
{
    const flush_rec *x = a, *y = b;

    if (x->applied_from != y->applied_from)
        return x->applied_from < y->applied_from ? -1 : 1;
    return (x->applied_len > y->applied_len) - (x->applied_len < y->applied_len);
}

size_t ht_flush_log_check(ht_flush_log *l, const fo_snapshot *final)
{
    ht_oracle *o = ht_oracle_new();
    fo_arena a;
    size_t i, n = 0;
    fo_snapshot s;

    qsort(l->items, l->len, sizeof(*l->items), rec_cmp);
    fo_arena_init(&a, 0);
    for (i = 0; i < l->len; i++) {
        flush_rec *r = &l->items[i];
        fo_batch b;
        fo_apply_result want;
        char *w;
        char what[96];
        if (!r->result)
            continue; /* never acked */
        b = ht_batch_json(&a, r->batch);
        want = ht_oracle_apply(o, &b);
        w = ht_json_result(&want);
        snprintf(what, sizeof(what), "ack of the flush applied at %llu (replay #%zu)",
                 (unsigned long long)r->applied_from, n);
        {
            fo_value gv = ht_val(&a, r->result), wv = ht_val(&a, w);
            if (!fo_value_eq(&gv, &wv)) {
                cr_log_error("batch sent: %.2000s", r->batch);
                ht_log_diff(what, r->result, w);
                free(w);
                cr_assert_fail("%s differs from the oracle's result", what);
            }
        }
        free(w);
        fo_arena_reset(&a);
        n++;
    }
    fo_arena_destroy(&a);
    {
        size_t syncs = 0, errors = 0, remaps = 0, full = 0;
        for (i = 0; i < l->len; i++) {
            const char *r = l->items[i].result;
            if (!r)
                continue;
            syncs += strstr(r, "\"sync\":") != NULL;
            full += strstr(r, "\"isPartial\":false") != NULL;
            errors += strstr(r, "\"errors\":") != NULL;
            remaps += strstr(r, "\"mappedPaths\":{\"") != NULL;
        }
        cr_log_info("replayed %zu acks: %zu with a sync (%zu full), %zu with errors, %zu with "
                    "remapped IDs",
                    n, syncs, full, errors, remaps);
    }
    s = ht_oracle_snapshot(o);
    cr_assert_eq(final->command_count, s.command_count,
                 "final commandCount %llu, the oracle's replay gives %llu",
                 (unsigned long long) final->command_count, (unsigned long long)s.command_count);
    ht_assert_value_eq(final->document, s.document, "final document vs the oracle's replay");
    ht_oracle_free(o);
    return n;
}
