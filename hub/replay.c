#include "hub/replay.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "hub/config.h"
#include "hub/rules.h"
#include "hub/store.h"
#include "proto/doc.h"
#include "proto/json.h"
#include "proto/pathmap.h"
#include "proto/wire.h"

int fo_check_interceptors_main(int argc, char **argv)
{
    fo_hub_config c;
    fo_rules_limits lim;
    fo_rules *r;
    char err[512];
    int rc;

    fo_hub_config_default(&c);
    if ((rc = fo_hub_config_parse(&c, argc, argv)) != 0)
        return rc > 0 ? 0 : 2;
    lim.instructions = c.rule_instructions;
    lim.time_ms = c.rule_time_ms;
    lim.memory = c.rule_memory;
    if (!(r = fo_rules_load(c.interceptors, &lim, err, sizeof(err)))) {
        fprintf(stderr, "flushout-hub: %s\n", err);
        return 2;
    }
    printf("%s: %u rules\n", c.interceptors, fo_rules_count(r));
    fo_rules_free(r);
    return 0;
}

typedef struct replay {
    const char *model;
    fo_rules *rules;
    fo_store_result *res;
    char err[512];
    int rc;
    uint64_t batches, commands, differ;
} replay;

static void on_read(fo_store *s, const fo_store_status *st, fo_store_result *r, void *data)
{
    replay *rp = data;

    (void)s;
    rp->rc = st->rc;
    if (st->rc)
        snprintf(rp->err, sizeof(rp->err), "%s", st->msg);
    rp->res = r;
}

static void on_closed(void *data)
{
    (void)data;
}

static void store_limits(fo_wire_limits *l)
{
    fo_wire_limits_default(l);
    l->max_frame = (size_t)1 << 31;
    l->max_elems = l->max_total = l->max_str = UINT32_MAX / 2;
}

/* One command's decision as JSON: {"outcome": ...}. */
static json_t *decision(const fo_rules_action *a)
{
    fo_buf b;
    json_t *j;

    if (!a)
        return json_pack("{s:s}", "outcome", "accepted");
    if (a->rejected)
        return json_pack("{s:s, s:s}", "outcome", "rejected", "message", a->message);
    fo_buf_init(&b, 0);
    if (fo_json_write_value(a->props, 0, &b)) {
        fo_buf_destroy(&b);
        return NULL;
    }
    j = json_pack("{s:s, s:o?}", "outcome", "rewritten", "props",
                  json_loadb((const char *)fo_buf_data(&b), b.len, 0, NULL));
    fo_buf_destroy(&b);
    return j;
}

/* The stored decision of command `index` from the audit's actions. */
static json_t *stored_decision(json_t *actions, uint32_t index)
{
    size_t i;
    json_t *a;

    json_array_foreach(actions, i, a) {
        json_t *idx = json_object_get(a, "index");
        const char *outcome = json_string_value(json_object_get(a, "outcome"));
        if (!json_is_integer(idx) || (uint64_t)json_integer_value(idx) != index || !outcome)
            continue;
        if (strcmp(outcome, "rejected") == 0)
            return json_pack("{s:s, s:O}", "outcome", "rejected", "message",
                             json_object_get(a, "message"));
        return json_pack("{s:s, s:O}", "outcome", "rewritten", "props",
                         json_object_get(a, "props"));
    }
    return json_pack("{s:s}", "outcome", "accepted");
}

static int print_diff(uint64_t from, uint32_t index, const fo_completion *c, json_t *stored,
                      json_t *now)
{
    fo_buf b;
    json_t *cmd, *line;
    char *text;

    fo_buf_init(&b, 0);
    if (fo_json_write_command(&c->command, 0, &b)) {
        fo_buf_destroy(&b);
        return -1;
    }
    cmd = json_loadb((const char *)fo_buf_data(&b), b.len, 0, NULL);
    fo_buf_destroy(&b);
    line = json_pack("{s:I, s:i, s:o?, s:O, s:O}", "from", (json_int_t)from, "index", (int)index,
                     "command", cmd, "stored", stored, "replay", now);
    if (!line || !(text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        json_decref(line);
        return -1;
    }
    printf("%s\n", text);
    free(text);
    json_decref(line);
    return 0;
}

/* Decides one stored batch again on a copy of `doc` and prints what differs. */
static int replay_batch(replay *rp, fo_doc *doc, uint64_t from, const void *orig, size_t size,
                        int64_t now_ms, json_t *identity, json_t *actions)
{
    fo_wire_limits l;
    fo_arena a;
    fo_batch b;
    fo_pathmap pm;
    fo_rules_batch rb;
    fo_batch_outcome o;
    fo_err_info err;
    fo_doc *scratch = fo_doc_clone(doc);
    int rc = -1;

    store_limits(&l);
    fo_arena_init(&a, 8192);
    if (!scratch || fo_wire_decode_batch(orig, size, &l, &a, &b, &err)) {
        snprintf(rp->err, sizeof(rp->err), "batch at %llu: cannot decode the stored batch",
                 (unsigned long long)from);
        goto out;
    }
    fo_pathmap_init(&pm, &a);
    fo_rules_batch_init(&rb, rp->rules, rp->model, identity, now_ms);
    if (fo_batch_apply(scratch, b.items, b.len, &pm, &fo_rules_interceptor, &rb, &a, &o)) {
        snprintf(rp->err, sizeof(rp->err), "batch at %llu: out of memory",
                 (unsigned long long)from);
        goto out;
    }
    rp->batches++;
    rp->commands += b.len;
    for (uint32_t i = 0; i < b.len; i++) {
        const fo_rules_action *act = NULL;
        json_t *was = stored_decision(actions, i), *is;
        for (uint32_t k = 0; k < rb.nactions && !act; k++)
            if (rb.actions[k].index == i)
                act = &rb.actions[k];
        is = decision(act);
        if (!was || !is) {
            json_decref(was);
            json_decref(is);
            goto out;
        }
        if (!json_equal(was, is)) {
            rp->differ++;
            if (print_diff(from, i, &b.items[i], was, is)) {
                json_decref(was);
                json_decref(is);
                goto out;
            }
        }
        json_decref(was);
        json_decref(is);
    }
    rc = 0;
out:
    fo_doc_free(scratch);
    fo_arena_destroy(&a);
    return rc;
}

/* What happened: the stored applied batch moves the document on. */
static int advance(replay *rp, fo_doc *doc, const fo_store_entry *e)
{
    fo_wire_limits l;
    fo_arena a;
    fo_batch b;
    fo_pathmap pm;
    fo_batch_outcome o;
    int rc;

    store_limits(&l);
    fo_arena_init(&a, 8192);
    rc = fo_wire_decode_batch(e->batch, e->batch_size, &l, &a, &b, NULL);
    if (!rc) {
        fo_pathmap_init(&pm, &a);
        rc = fo_batch_apply(doc, b.items, b.len, &pm, NULL, NULL, &a, &o);
        rc = rc ? rc : o.changed ? -1 : 0;
    }
    fo_arena_destroy(&a);
    if (rc)
        snprintf(rp->err, sizeof(rp->err), "the log row at %llu does not replay",
                 (unsigned long long)e->from);
    return rc;
}

static int run(replay *rp)
{
    fo_store_result *r = rp->res;
    fo_doc *doc;
    uint32_t i = 0, k = 0;
    int rc = 0;

    if (r->has_snapshot) {
        fo_wire_limits l;
        fo_arena a;
        fo_value v;
        fo_snapshot s;
        store_limits(&l);
        fo_arena_init(&a, r->snap_size * 2 + 256);
        s.command_count = r->snap_count;
        s.document = &v;
        doc = fo_wire_decode_value(r->snap, r->snap_size, &l, &a, &v, NULL) == 0
                  ? fo_doc_new_from(&s, FO_IDS_RANDOM)
                  : NULL;
        fo_arena_destroy(&a);
    } else {
        doc = fo_doc_new(FO_IDS_RANDOM);
    }
    if (!doc) {
        snprintf(rp->err, sizeof(rp->err), "cannot build the document the log starts from");
        return -1;
    }
    while (!rc && (i < r->n_entries || k < r->n_rules)) {
        uint64_t count = fo_doc_count(doc);
        const fo_store_rules_row *row = k < r->n_rules && r->rules[k].from == count
                                            ? &r->rules[k] : NULL;
        const fo_store_entry *e = i < r->n_entries ? &r->entries[i] : NULL;
        json_t *audit = NULL, *identity = NULL, *actions;
        int64_t now_ms = 0;

        if (row) {
            if (!(audit = json_loads(row->audit, 0, NULL))) {
                snprintf(rp->err, sizeof(rp->err), "rules row at %llu: unreadable audit",
                         (unsigned long long)row->from);
                rc = -1;
                break;
            }
            k++;
        } else if (k < r->n_rules && r->rules[k].from < count) {
            k++; /* a row of a batch before the stored log (cut): nothing to decide it on */
            continue;
        }
        if (row && row->len == 0) { /* nothing of it applied */
            identity = json_incref(json_object_get(audit, "identity"));
            now_ms = (int64_t)json_integer_value(json_object_get(audit, "now"));
        } else if (e) {
            if (e->identity)
                identity = json_loads(e->identity, 0, NULL);
            now_ms = e->now_ms;
        } else {
            json_decref(audit);
            break;
        }
        if (json_is_null(identity)) {
            json_decref(identity);
            identity = NULL;
        }
        actions = audit ? json_object_get(audit, "actions") : NULL;
        if (row)
            rc = replay_batch(rp, doc, count, row->original, row->original_size, now_ms,
                              identity, actions);
        else
            rc = replay_batch(rp, doc, count, e->batch, e->batch_size, now_ms, identity, NULL);
        if (!rc && (!row || row->len > 0)) {
            rc = advance(rp, doc, e);
            i++;
        }
        json_decref(identity);
        json_decref(audit);
    }
    fo_doc_free(doc);
    return rc;
}

static const char usage[] =
    "usage: flushout-hub replay MODEL --interceptors FILE [--data DIR] [--config FILE]\n"
    "                           [--rule-instructions N] [--rule-time-ms N] [--rule-memory SIZE]\n";

int fo_replay_main(int argc, char **argv)
{
    const char *data, *file;
    fo_hub_config c;
    fo_rules_limits lim;
    replay rp;
    uv_loop_t loop;
    fo_store *store = NULL;
    fo_err_info err;
    int rc, rest;

    /* The hub's own settings engine: the same flags, FLUSHOUT_* and --config file, so a
     * replay reads the data directory and the rule limits the hub runs with. */
    fo_hub_config_default(&c);
    if ((rc = fo_hub_config_parse_rest(&c, argc, argv, &rest)) != 0) {
        if (rc < 0)
            fputs(usage, stderr);
        return rc > 0 ? 0 : 2;
    }
    if (rest != argc - 1) {
        fprintf(stderr, "flushout-hub replay: %s\n%s",
                rest == argc ? "which model? (one MODEL argument)" : "one MODEL argument only",
                usage);
        return 2;
    }
    if (!c.interceptors[0]) {
        fprintf(stderr, "flushout-hub replay: --interceptors FILE: the rules to replay with\n%s",
                usage);
        return 2;
    }
    if (c.cluster[0] || strcmp(c.store, "sqlite") != 0) {
        fprintf(stderr, "flushout-hub replay: replays a SQLite data directory (--data); the "
                        "settings name %s\n",
                c.cluster[0] ? "a NATS cluster (--cluster)" : "the memory store");
        return 2;
    }
    data = c.data_dir;
    file = c.interceptors;
    lim.instructions = c.rule_instructions;
    lim.time_ms = c.rule_time_ms;
    lim.memory = c.rule_memory;
    memset(&rp, 0, sizeof(rp));
    rp.model = argv[rest];
    if (!fo_store_model_name_valid(rp.model, strlen(rp.model))) {
        fprintf(stderr, "flushout-hub replay: bad model name '%s'\n", rp.model);
        return 2;
    }
    if (!(rp.rules = fo_rules_load(file, &lim, rp.err, sizeof(rp.err)))) {
        fprintf(stderr, "flushout-hub replay: %s\n", rp.err);
        return 2;
    }
    uv_loop_init(&loop);
    rc = fo_store_open(&loop, FO_STORE_SQLITE, data, NULL, &store, &err);
    if (rc) {
        fprintf(stderr, "flushout-hub replay: cannot open %s: %s\n", data,
                err.msg[0] ? err.msg : fo_store_strerror(rc));
        fo_rules_free(rp.rules);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 2;
    }
    rp.rc = fo_store_read_replay(store, rp.model, on_read, &rp);
    if (rp.rc)
        snprintf(rp.err, sizeof(rp.err), "%s", fo_store_strerror(rp.rc));
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = rp.rc == 0 && rp.res ? run(&rp) : -1;
    fo_store_result_free(rp.res);
    fo_store_close(store, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    fo_rules_free(rp.rules);
    if (rc) {
        fprintf(stderr, "flushout-hub replay: %s: %s\n", rp.model, rp.err);
        return 2;
    }
    fprintf(stderr, "replay %s: %llu batches, %llu commands, %llu decided differently\n",
            rp.model, (unsigned long long)rp.batches, (unsigned long long)rp.commands,
            (unsigned long long)rp.differ);
    return rp.differ ? 1 : 0;
}
