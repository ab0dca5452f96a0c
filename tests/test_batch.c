/* fo_batch_apply: the reference's applyCompletions. */
#include "tests/support.h"

#include "proto/batch.h"

static fo_arena A;
static fo_doc *D;

static void setup(void)
{
    fo_arena_init(&A, 0);
    D = fo_doc_new(FO_IDS_SEQUENTIAL);
}

static void teardown(void)
{
    fo_doc_free(D);
    fo_arena_destroy(&A);
}

TestSuite(batch, .init = setup, .fini = teardown);

static fo_batch_outcome run(fo_pathmap *pm, const fo_interceptor *ic, const char *json)
{
    fo_batch b = tj_batch(&A, json);
    fo_batch_outcome o;

    cr_assert_eq(fo_batch_apply(D, b.items, b.len, pm, ic, NULL, &A, &o), 0);
    return o;
}

Test(batch, unchanged_when_nothing_is_modified_or_fails)
{
    fo_pathmap pm;
    fo_batch_outcome o;

    fo_pathmap_init(&pm, &A);
    o = run(&pm, NULL, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\"},"
                       "\"createdId\":\"1\"},{\"command\":{\"action\":\"update\",\"path\":[\"1\"]}}]}");
    cr_assert_not(o.changed);
    cr_assert_eq(o.errors_len, 0);
    cr_assert_eq(fo_doc_count(D), 2);
}

Test(batch, rebuilt_batch_keeps_the_prefix_and_drops_failures)
{
    fo_pathmap pm;
    fo_batch_outcome o;

    fo_pathmap_init(&pm, &A);
    o = run(&pm, NULL, "{\"from\":0,\"completions\":["
                       "{\"command\":{\"action\":\"update\",\"props\":{\"a\":1}}},"
                       "{\"command\":{\"action\":\"update\",\"path\":[\"x\"]}},"
                       "{\"command\":{\"action\":\"update\",\"props\":{\"b\":1}}}]}");
    cr_assert(o.changed);
    cr_assert_eq(o.rebuilt.from, 0);
    cr_assert_eq(o.rebuilt.len, 2);
    cr_assert_eq(o.errors_len, 1);
    cr_assert_str_eq(o.errors[0].message, "No object at document path x");
}

Test(batch, seeded_mappings_rewrite_paths_and_count_as_changes)
{
    fo_pathmap pm;
    fo_batch_outcome o;
    fo_key from = fo_key_from_u64(1), to = fo_key_from_u64(9);
    fo_path_mapping mp = {{&from, 1}, {&to, 1}};

    fo_pathmap_init(&pm, &A);
    cr_assert_eq(fo_pathmap_load(&pm, &mp, 1), 0);
    run(&pm, NULL, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\"},"
                   "\"createdId\":\"9\"}]}");
    o = run(&pm, NULL, "{\"from\":1,\"completions\":[{\"command\":{\"action\":\"update\","
                       "\"path\":[\"1\"],\"props\":{\"v\":1}}}]}");
    cr_assert(o.changed);
    cr_assert_str_eq(fo_path_join(&A, o.rebuilt.items[0].command.path, NULL), "9");
    tj_assert_value(fo_doc_root(D), "{\"9\":{\"v\":1}}");
}

static int replace_everything(void *data, const fo_value *doc, const fo_command *c, void *ctx,
                              fo_arena *a, fo_interception *out)
{
    (void)data, (void)doc, (void)c, (void)ctx;
    out->kind = FO_INTERCEPT_REPLACE;
    out->new_props = tj_valp(a, "{\"forced\":1}");
    return 0;
}

Test(batch, replace_on_a_delete_is_a_rejection)
{
    fo_pathmap pm;
    fo_batch_outcome o;
    fo_interceptor ic = {replace_everything, NULL};

    fo_pathmap_init(&pm, &A);
    o = run(&pm, &ic, "{\"from\":0,\"completions\":["
                      "{\"command\":{\"action\":\"update\",\"props\":{\"a\":1}}},"
                      "{\"command\":{\"action\":\"delete\",\"path\":[\"a\"]}}]}");
    cr_assert(o.changed);
    cr_assert_eq(o.rebuilt.len, 1);
    cr_assert_eq(o.errors_len, 1);
    cr_assert_eq(o.errors[0].action, FO_DELETE);
    cr_assert_str_eq(o.errors[0].message, "Interceptor replaced the props of a delete");
    tj_assert_value(fo_doc_root(D), "{\"forced\":1}");
}
