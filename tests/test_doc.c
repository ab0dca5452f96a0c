/* The rules for applying one command (FLUSHOUT-SEMANTICS.md, "Applying one command"). */
#include "tests/support.h"

#include "proto/doc.h"

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

static fo_doc_result run(const char *json)
{
    fo_command c = tj_cmd(&A, json);
    fo_doc_result r;

    cr_assert_eq(fo_doc_apply(D, &c, FO_KEY_NONE, &A, &r), 0);
    return r;
}

static fo_doc_result run_proposed(const char *json, const char *id)
{
    fo_command c = tj_cmd(&A, json);
    fo_doc_result r;

    cr_assert_eq(fo_doc_apply(D, &c, fo_key_new_cstr(&A, id), &A, &r), 0);
    return r;
}

static const char *id_of(fo_doc_result r)
{
    static char buf[64];
    char tmp[20];
    size_t len;
    const char *s = fo_key_str(r.created_id, tmp, &len);

    snprintf(buf, sizeof(buf), "%.*s", (int)len, s);
    return buf;
}

TestSuite(doc, .init = setup, .fini = teardown);

Test(doc, create_at_root_with_sequential_ids)
{
    fo_doc_result r = run("{\"action\":\"create\",\"props\":{\"title\":\"a\"}}");

    cr_assert(r.ok);
    cr_assert_str_eq(id_of(r), "1");
    cr_assert_eq(fo_doc_count(D), 1);
    r = run("{\"action\":\"create\"}");
    cr_assert_str_eq(id_of(r), "2");
    tj_assert_value(fo_doc_root(D), "{\"1\":{\"title\":\"a\"},\"2\":{}}");
}

Test(doc, proposed_id_is_used_and_collisions_regenerate)
{
    fo_doc_result r = run_proposed("{\"action\":\"create\"}", "2");

    cr_assert_str_eq(id_of(r), "2");
    /* "2" is taken; the next candidate is commandCount + 1 + attempt = 1 + 1 + 1. */
    r = run_proposed("{\"action\":\"create\"}", "2");
    cr_assert(r.ok);
    cr_assert_str_eq(id_of(r), "3");
    r = run_proposed("{\"action\":\"create\"}", "custom-id");
    cr_assert_str_eq(id_of(r), "custom-id");
    cr_assert_eq(fo_doc_count(D), 3);
}

Test(doc, create_nested_and_failure_names_the_failed_segment)
{
    fo_doc_result r;

    run_proposed("{\"action\":\"create\",\"props\":{\"todos\":{}}}", "list");
    r = run("{\"action\":\"create\",\"path\":[\"list\",\"todos\"],\"props\":{\"t\":1}}");
    cr_assert(r.ok);
    r = run("{\"action\":\"create\",\"path\":[\"list\",\"nope\",\"deeper\"]}");
    cr_assert_not(r.ok);
    cr_assert_str_eq(r.error, "No object at document path list,nope");
    cr_assert_eq(fo_doc_count(D), 2); /* a failed command changes nothing */
}

Test(doc, create_into_a_scalar_fails)
{
    fo_doc_result r;

    run("{\"action\":\"update\",\"props\":{\"s\":\"text\"}}");
    r = run("{\"action\":\"create\",\"path\":[\"s\"]}");
    cr_assert_not(r.ok);
    cr_assert_str_eq(r.error, "No object at document path s");
}

Test(doc, parent_default_creates_the_missing_container)
{
    fo_doc_result r = run("{\"action\":\"create\",\"path\":[\"todos\"],\"props\":{\"t\":\"x\"},"
                          "\"parentDefault\":{\"kind\":\"list\"}}");

    cr_assert(r.ok);
    cr_assert_str_eq(id_of(r), "1");
    tj_assert_value(fo_doc_root(D), "{\"todos\":{\"kind\":\"list\",\"1\":{\"t\":\"x\"}}}");
    /* An existing container is used as it is. */
    r = run("{\"action\":\"create\",\"path\":[\"todos\"],\"parentDefault\":{\"other\":1}}");
    tj_assert_value(fo_doc_root(D),
                    "{\"todos\":{\"kind\":\"list\",\"1\":{\"t\":\"x\"},\"2\":{}}}");
}

Test(doc, parent_default_replaces_a_scalar_and_needs_the_grandparent)
{
    fo_doc_result r;

    run("{\"action\":\"update\",\"props\":{\"c\":5}}");
    r = run("{\"action\":\"create\",\"path\":[\"c\"],\"parentDefault\":{}}");
    cr_assert(r.ok);
    tj_assert_value(fo_doc_root(D), "{\"c\":{\"2\":{}}}");
    r = run("{\"action\":\"create\",\"path\":[\"x\",\"y\",\"z\"],\"parentDefault\":{}}");
    cr_assert_not(r.ok);
    cr_assert_str_eq(r.error, "No object at document path x");
    /* With an empty path parentDefault plays no part: the root always exists. */
    r = run("{\"action\":\"create\",\"parentDefault\":{\"ignored\":true}}");
    cr_assert(r.ok);
}

Test(doc, update_is_a_shallow_merge_and_may_have_no_props)
{
    fo_doc_result r;

    run_proposed("{\"action\":\"create\",\"props\":{\"a\":1,\"n\":{\"x\":1}}}", "i");
    r = run("{\"action\":\"update\",\"path\":[\"i\"],\"props\":{\"n\":{\"y\":2},\"b\":[1,2]}}");
    cr_assert(r.ok);
    tj_assert_value(fo_doc_root(D), "{\"i\":{\"a\":1,\"n\":{\"y\":2},\"b\":[1,2]}}");
    r = run("{\"action\":\"update\",\"path\":[\"i\"]}");
    cr_assert(r.ok);
    cr_assert_eq(fo_doc_count(D), 3);
    r = run("{\"action\":\"update\",\"path\":[\"missing\"],\"props\":{\"a\":1}}");
    cr_assert_not(r.ok);
    cr_assert_str_eq(r.error, "No object at document path missing");
}

Test(doc, props_are_copied)
{
    fo_arena tmp;
    fo_command c;
    fo_doc_result r;

    fo_arena_init(&tmp, 0);
    c = tj_cmd(&tmp, "{\"action\":\"update\",\"props\":{\"long\":\"a string well past inline\"}}");
    cr_assert_eq(fo_doc_apply(D, &c, FO_KEY_NONE, &A, &r), 0);
    fo_arena_destroy(&tmp);
    tj_assert_value(fo_doc_root(D), "{\"long\":\"a string well past inline\"}");
}

Test(doc, delete_removes_and_absent_keys_succeed)
{
    fo_doc_result r;

    run_proposed("{\"action\":\"create\",\"props\":{\"a\":1}}", "i");
    r = run("{\"action\":\"delete\",\"path\":[\"i\",\"a\"]}");
    cr_assert(r.ok);
    r = run("{\"action\":\"delete\",\"path\":[\"i\",\"absent\"]}");
    cr_assert(r.ok);
    tj_assert_value(fo_doc_root(D), "{\"i\":{}}");
    r = run("{\"action\":\"delete\",\"path\":[\"nope\",\"a\"]}");
    cr_assert_not(r.ok);
    cr_assert_str_eq(r.error, "No object at document path nope");
    r = run("{\"action\":\"delete\",\"path\":[\"i\"]}");
    cr_assert(r.ok);
    tj_assert_value(fo_doc_root(D), "{}");
    cr_assert_eq(fo_doc_count(D), 4);
}

Test(doc, random_ids_are_decimal_below_2_pow_53)
{
    fo_doc *d = fo_doc_new(FO_IDS_RANDOM);
    fo_command c = tj_cmd(&A, "{\"action\":\"create\"}");
    int i;

    for (i = 0; i < 1000; i++) {
        fo_doc_result r;
        uint64_t n;
        cr_assert_eq(fo_doc_apply(d, &c, FO_KEY_NONE, &A, &r), 0);
        cr_assert(fo_key_is_num(r.created_id, &n));
        cr_assert_lt(n, (uint64_t)1 << 53);
    }
    cr_assert_eq(fo_map_count(fo_value_as_map(fo_doc_root(d))), 1000);
    fo_doc_free(d);
}

/* Deviations from the reference (FLUSHOUT-SEMANTICS.md, last section). */
Test(doc, deviation_paths_through_null_and_arrays_fail)
{
    fo_doc_result r;

    run("{\"action\":\"update\",\"props\":{\"n\":null,\"arr\":[{\"x\":1}]}}");
    r = run("{\"action\":\"update\",\"path\":[\"n\",\"x\"],\"props\":{\"a\":1}}");
    cr_assert_not(r.ok);
    cr_assert_str_eq(r.error, "No object at document path n");
    r = run("{\"action\":\"create\",\"path\":[\"arr\",\"0\"]}");
    cr_assert_not(r.ok);
    cr_assert_str_eq(r.error, "No object at document path arr");
    r = run("{\"action\":\"delete\",\"path\":[\"n\",\"x\"]}");
    cr_assert_not(r.ok);
}

Test(doc, deviation_delete_with_empty_path_fails)
{
    fo_doc_result r = run("{\"action\":\"delete\"}");

    cr_assert_not(r.ok);
    cr_assert_str_eq(r.error, "No object at document path ");
    cr_assert_eq(fo_doc_count(D), 0);
}

Test(doc, deviation_proto_keys_are_ordinary)
{
    fo_doc_result r = run_proposed("{\"action\":\"create\",\"props\":{\"__proto__\":{\"p\":1}}}",
                                   "__proto__");

    cr_assert(r.ok);
    cr_assert_str_eq(id_of(r), "__proto__");
    r = run_proposed("{\"action\":\"create\"}", "constructor");
    cr_assert_str_eq(id_of(r), "constructor");
    tj_assert_value(fo_doc_root(D),
                    "{\"__proto__\":{\"__proto__\":{\"p\":1}},\"constructor\":{}}");
}

Test(doc, depth_limit_keeps_documents_encodable)
{
    fo_doc_limits l = {4};
    fo_doc_result r;

    fo_doc_set_limits(D, &l);
    r = run("{\"action\":\"update\",\"props\":{\"a\":{\"b\":{\"c\":{}}}}}");
    cr_assert(r.ok); /* root, a, b, c: four levels */
    r = run("{\"action\":\"update\",\"props\":{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}}");
    cr_assert_not(r.ok);
    cr_assert_str_eq(r.error, "Document too deep at path ");
    r = run("{\"action\":\"create\",\"path\":[\"a\",\"b\"]}");
    cr_assert(r.ok);
    r = run("{\"action\":\"create\",\"path\":[\"a\",\"b\",\"c\"]}");
    cr_assert_not(r.ok);
}

Test(doc, compaction_frees_dead_space_and_keeps_the_tree)
{
    fo_doc_stats before, after;
    fo_doc *copy;
    int i;

    for (i = 0; i < 2000; i++) {
        char json[200];
        snprintf(json, sizeof(json),
                 "{\"action\":\"update\",\"props\":{\"k%d\":\"a value that is not inline %d\"}}",
                 i % 10, i);
        run(json);
        fo_arena_reset(&A);
    }
    copy = fo_doc_clone(D);
    fo_doc_stats_get(D, &before);
    cr_assert_gt(before.dead_bytes, 0);
    cr_assert_eq(fo_doc_compact(D), 0);
    fo_doc_stats_get(D, &after);
    cr_assert_eq(after.dead_bytes, 0);
    cr_assert_lt(after.used_bytes, before.used_bytes / 4);
    cr_assert(fo_value_eq(fo_doc_root(D), fo_doc_root(copy)));
    cr_assert_eq(fo_doc_count(D), 2000);
    fo_doc_free(copy);
}

Test(doc, big_maps_live_on_the_heap_and_are_freed_with_their_subtree)
{
    fo_doc_stats st;
    int i;

    run_proposed("{\"action\":\"create\"}", "big");
    for (i = 0; i < 2000; i++) {
        fo_doc_result r = run("{\"action\":\"create\",\"path\":[\"big\"],\"props\":{\"n\":1}}");
        cr_assert(r.ok);
        fo_arena_reset(&A);
    }
    fo_doc_stats_get(D, &st);
    /* 2000 entries of 24 bytes and their index: on the heap, no outgrown blocks left dead. */
    cr_assert_lt(st.dead_bytes, 4096);
    run("{\"action\":\"update\",\"props\":{\"big\":0}}");
    cr_assert_eq(fo_map_count(fo_value_as_map(fo_doc_root(D))), 1);
    cr_assert_eq(fo_doc_compact(D), 0);
    tj_assert_value(fo_doc_root(D), "{\"big\":0}");
}
