/* Master.apply (FLUSHOUT-SEMANTICS.md "A batch of completions" and "Master.apply"). The
 * expected results are what flushout@1.1.1 returns for the same inputs. */
#include "tests/support.h"

#include "proto/master.h"

static fo_arena A;

/* History kept by the test: every applied batch's completions, by count. */
typedef struct history {
    fo_completion items[256];
    uint64_t len;
    uint64_t keep_from; /* older entries are "dropped" */
} history;

static int history_get(void *ctx, uint64_t from, uint64_t to, fo_arena *a, fo_batch *out)
{
    history *h = ctx;

    (void)a;
    if (from < h->keep_from || to > h->len)
        return -1;
    out->from = from;
    out->len = (uint32_t)(to - from);
    out->items = &h->items[from];
    return 0;
}

static void record(history *h, const fo_apply_result *r)
{
    uint32_t i;

    for (i = 0; i < r->applied.len; i++) {
        fo_completion *c = &h->items[h->len++];
        cr_assert_eq(fo_command_copy(&A, &r->applied.items[i].command, &c->command), 0);
        c->created_id = r->applied.items[i].created_id;
        if (c->created_id) {
            char buf[20];
            size_t len;
            const char *s = fo_key_str(c->created_id, buf, &len);
            c->created_id = fo_key_new(&A, s, len);
        }
    }
}

static fo_apply_result apply(fo_master *m, history *h, const char *batch_json)
{
    fo_batch b = tj_batch(&A, batch_json);
    fo_apply_result r;

    cr_assert_eq(fo_master_apply(m, &b, NULL, &A, &r), 0);
    if (h)
        record(h, &r);
    return r;
}

static fo_master *new_master(history *h, fo_interceptor ic)
{
    fo_master_config cfg = {FO_IDS_SEQUENTIAL, ic, h ? history_get : NULL, h, false};
    fo_master *m = fo_master_new(NULL, &cfg);

    cr_assert_not_null(m);
    return m;
}

static const fo_interceptor no_ic = {NULL, NULL};

static void setup_arena(void)
{
    fo_arena_init(&A, 0);
}

static void teardown_arena(void)
{
    fo_arena_destroy(&A);
}

TestSuite(master, .init = setup_arena, .fini = teardown_arena);

Test(master, unchanged_batch_from_current_count_needs_no_sync)
{
    fo_master *m = new_master(NULL, no_ic);
    fo_apply_result r = apply(m, NULL,
        "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\",\"props\":{\"t\":1}},"
        "\"createdId\":\"1\"},{\"command\":{\"action\":\"update\",\"path\":[\"1\"],"
        "\"props\":{\"t\":2}}}]}");

    tj_assert_result(&r, "{\"applied\":{\"from\":0,\"completions\":[{\"command\":{\"action\":"
                         "\"create\",\"props\":{\"t\":1}},\"createdId\":\"1\"},{\"command\":{"
                         "\"action\":\"update\",\"path\":[\"1\"],\"props\":{\"t\":2}}}]}}");
    cr_assert_eq(fo_master_snapshot(m).command_count, 2);
    tj_assert_value(fo_master_snapshot(m).document, "{\"1\":{\"t\":2}}");
    fo_master_free(m);
}

Test(master, create_without_proposed_id_is_not_a_change)
{
    fo_master *m = new_master(NULL, no_ic);
    fo_apply_result r = apply(m, NULL, "{\"from\":0,\"completions\":[{\"command\":{\"action\":"
                                       "\"create\"}}]}");

    /* The reference only counts a different created ID as a change when one was proposed. */
    cr_assert_eq(r.sync.kind, FO_SYNC_NONE);
    cr_assert_eq(r.applied.items[0].created_id, FO_KEY_NONE);
    tj_assert_value(fo_master_snapshot(m).document, "{\"1\":{}}");
    fo_master_free(m);
}

Test(master, stale_batch_gets_history_then_its_own_commands)
{
    history h = {.len = 0};
    fo_master *m = new_master(&h, no_ic);
    fo_apply_result r;

    apply(m, &h, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\"},"
                 "\"createdId\":\"1\"}]}");
    r = apply(m, &h, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"update\","
                     "\"props\":{\"x\":1}}}]}");
    tj_assert_result(&r, "{\"applied\":{\"from\":1,\"completions\":[{\"command\":{\"action\":"
                         "\"update\",\"props\":{\"x\":1}}}]},\"sync\":{\"isPartial\":true,"
                         "\"mappedPaths\":{},\"diff\":{\"from\":0,\"completions\":[{\"command\":"
                         "{\"action\":\"create\"},\"createdId\":\"1\"},{\"command\":{\"action\":"
                         "\"update\",\"props\":{\"x\":1}}}]}}}");
    fo_master_free(m);
}

Test(master, stale_batch_without_history_gets_the_latest_snapshot)
{
    fo_master *m = new_master(NULL, no_ic);
    fo_apply_result r;

    apply(m, NULL, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\"},"
                   "\"createdId\":\"1\"}]}");
    r = apply(m, NULL, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"update\","
                       "\"props\":{\"x\":1}}}]}");
    tj_assert_result(&r, "{\"applied\":{\"from\":1,\"completions\":[{\"command\":{\"action\":"
                         "\"update\",\"props\":{\"x\":1}}}]},\"sync\":{\"isPartial\":false,"
                         "\"mappedPaths\":{},\"latest\":{\"commandCount\":2,\"document\":"
                         "{\"1\":{},\"x\":1}}}}");
    fo_master_free(m);
}

Test(master, history_past_retention_or_future_from_gives_full_sync)
{
    history h = {.len = 0};
    fo_master *m = new_master(&h, no_ic);
    fo_apply_result r;
    int i;

    for (i = 0; i < 3; i++)
        apply(m, &h, "{\"from\":0,\"completions\":[]}"), h.len = h.len; /* no-ops */
    for (i = 0; i < 3; i++) {
        char json[160];
        snprintf(json, sizeof(json), "{\"from\":%d,\"completions\":[{\"command\":{\"action\":"
                                     "\"update\",\"props\":{\"n\":%d}}}]}", i, i);
        apply(m, &h, json);
    }
    h.keep_from = 2;
    r = apply(m, &h, "{\"from\":1,\"completions\":[]}");
    cr_assert_eq(r.sync.kind, FO_SYNC_FULL);
    r = apply(m, &h, "{\"from\":2,\"completions\":[]}");
    cr_assert_eq(r.sync.kind, FO_SYNC_PARTIAL);
    cr_assert_eq(r.sync.diff.len, 1);
    r = apply(m, &h, "{\"from\":9,\"completions\":[]}");
    cr_assert_eq(r.sync.kind, FO_SYNC_FULL);
    cr_assert_eq(r.sync.latest.command_count, 3);
    fo_master_free(m);
}

Test(master, colliding_created_id_is_remapped_with_later_paths)
{
    history h = {.len = 0};
    fo_master *m = new_master(&h, no_ic);
    fo_apply_result r;

    apply(m, &h, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\"},"
                 "\"createdId\":\"1\"}]}");
    r = apply(m, &h,
              "{\"from\":1,\"completions\":["
              "{\"command\":{\"action\":\"create\"},\"createdId\":\"1\"},"
              "{\"command\":{\"action\":\"update\",\"path\":[\"1\"],\"props\":{\"a\":1}}},"
              "{\"command\":{\"action\":\"create\",\"path\":[\"1\"]},\"createdId\":\"3\"}]}");
    tj_assert_result(&r,
        "{\"applied\":{\"from\":1,\"completions\":["
        "{\"command\":{\"action\":\"create\"},\"createdId\":\"3\"},"
        "{\"command\":{\"action\":\"update\",\"path\":[\"3\"],\"props\":{\"a\":1}}},"
        "{\"command\":{\"action\":\"create\",\"path\":[\"3\"]},\"createdId\":\"3\"}]},"
        "\"sync\":{\"isPartial\":true,\"mappedPaths\":{\"1\":[\"3\"]},\"diff\":{\"from\":1,"
        "\"completions\":["
        "{\"command\":{\"action\":\"create\"},\"createdId\":\"3\"},"
        "{\"command\":{\"action\":\"update\",\"path\":[\"3\"],\"props\":{\"a\":1}}},"
        "{\"command\":{\"action\":\"create\",\"path\":[\"3\"]},\"createdId\":\"3\"}]}}}");
    tj_assert_value(fo_master_snapshot(m).document, "{\"1\":{},\"3\":{\"a\":1,\"3\":{}}}");
    fo_master_free(m);
}

Test(master, failures_are_reported_and_left_out)
{
    fo_master *m = new_master(NULL, no_ic);
    fo_apply_result r = apply(m, NULL,
        "{\"from\":0,\"completions\":["
        "{\"command\":{\"action\":\"update\",\"props\":{\"a\":1}}},"
        "{\"command\":{\"action\":\"detete\",\"path\":[\"x\",\"y\"]}},"
        "{\"command\":{\"action\":\"update\",\"props\":{\"b\":2}}}]}");

    tj_assert_result(&r,
        "{\"applied\":{\"from\":0,\"completions\":["
        "{\"command\":{\"action\":\"update\",\"props\":{\"a\":1}}},"
        "{\"command\":{\"action\":\"update\",\"props\":{\"b\":2}}}]},"
        "\"sync\":{\"isPartial\":true,\"mappedPaths\":{},\"diff\":{\"from\":0,\"completions\":["
        "{\"command\":{\"action\":\"update\",\"props\":{\"a\":1}}},"
        "{\"command\":{\"action\":\"update\",\"props\":{\"b\":2}}}]}},"
        "\"errors\":[{\"action\":\"delete\",\"path\":[\"x\",\"y\"],"
        "\"errorMessage\":\"No object at document path x\"}]}");
    cr_assert_eq(fo_master_snapshot(m).command_count, 2);
    fo_master_free(m);
}

/* Rejects updates whose props have "reject"; replaces the props of creates that have
 * "rewrite"; counts its calls in `data`. */
static int test_interceptor(void *data, const fo_value *doc, const fo_command *c, void *ctx,
                            fo_arena *a, fo_interception *out)
{
    (*(int *)data)++;
    cr_assert_not_null(doc);
    cr_assert_str_eq((const char *)ctx, "ctx");
    if (!c->props)
        return 0;
    if (c->action == FO_UPDATE && fo_map_get(fo_value_as_map(c->props), fo_key_new_cstr(a, "reject"))) {
        out->kind = FO_INTERCEPT_REJECT;
        out->rejection = "not allowed";
    } else if (c->action == FO_CREATE &&
               fo_map_get(fo_value_as_map(c->props), fo_key_new_cstr(a, "rewrite"))) {
        out->kind = FO_INTERCEPT_REPLACE;
        out->new_props = tj_valp(a, "{\"rewritten\":true}");
    }
    return 0;
}

Test(master, interceptor_rejects_and_rewrites_with_a_partial_sync)
{
    int calls = 0;
    fo_interceptor ic = {test_interceptor, &calls};
    fo_master *m = new_master(NULL, ic);
    fo_batch b = tj_batch(&A,
        "{\"from\":0,\"completions\":["
        "{\"command\":{\"action\":\"create\",\"path\":[\"l\"],\"props\":{\"rewrite\":1},"
        "\"parentDefault\":{}},\"createdId\":\"1\"},"
        "{\"command\":{\"action\":\"create\",\"props\":{\"rewrite\":1}},\"createdId\":\"2\"},"
        "{\"command\":{\"action\":\"update\",\"path\":[\"2\"],\"props\":{\"reject\":1}}},"
        "{\"command\":{\"action\":\"update\",\"path\":[\"2\"],\"props\":{\"ok\":1}}}]}");
    fo_apply_result r;

    cr_assert_eq(fo_master_apply(m, &b, "ctx", &A, &r), 0);
    cr_assert_eq(calls, 4);
    /* The rewritten create loses its parentDefault, so it fails: "l" does not exist. */
    tj_assert_result(&r,
        "{\"applied\":{\"from\":0,\"completions\":["
        "{\"command\":{\"action\":\"create\",\"props\":{\"rewritten\":true}},\"createdId\":\"2\"},"
        "{\"command\":{\"action\":\"update\",\"path\":[\"2\"],\"props\":{\"ok\":1}}}]},"
        "\"sync\":{\"isPartial\":true,\"mappedPaths\":{},\"diff\":{\"from\":0,\"completions\":["
        "{\"command\":{\"action\":\"create\",\"props\":{\"rewritten\":true}},\"createdId\":\"2\"},"
        "{\"command\":{\"action\":\"update\",\"path\":[\"2\"],\"props\":{\"ok\":1}}}]}},"
        "\"errors\":["
        "{\"action\":\"create\",\"path\":[\"l\"],\"errorMessage\":\"No object at document path l\"},"
        "{\"action\":\"update\",\"path\":[\"2\"],\"errorMessage\":\"not allowed\"}]}");
    tj_assert_value(fo_master_snapshot(m).document, "{\"2\":{\"rewritten\":true,\"ok\":1}}");
    fo_master_free(m);
}

static int failing_interceptor(void *data, const fo_value *doc, const fo_command *c, void *ctx,
                               fo_arena *a, fo_interception *out)
{
    (void)data, (void)doc, (void)c, (void)ctx, (void)a, (void)out;
    return FO_EFAILED;
}

Test(master, interceptor_error_aborts_the_apply)
{
    fo_interceptor ic = {failing_interceptor, NULL};
    fo_master *m = new_master(NULL, ic);
    fo_batch b = tj_batch(&A, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\"}}]}");
    fo_apply_result r;

    cr_assert_eq(fo_master_apply(m, &b, NULL, &A, &r), FO_EFAILED);
    cr_assert_eq(fo_master_snapshot(m).command_count, 0);
    fo_master_free(m);
}
