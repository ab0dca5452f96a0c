/* The rules for applying one command (FLUSHOUT-SEMANTICS.md, "Applying one command"). */
#include "tests/support.h"

#include "proto/doc.h"
#include "proto/wire.h"

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

/* ---- the document's memory layout (value.h): small maps inline, big ones grown by half -- */

/* JSON in insertion order (not sorted), malloc'd. */
static char *dump_ordered(const fo_value *v)
{
    fo_buf b;
    char nul = 0;

    fo_buf_init(&b, 0);
    cr_assert_eq(fo_json_write_value(v, 0, &b), 0);
    fo_buf_append(&b, &nul, 1);
    return fo_buf_release(&b);
}

#define assert_ordered(v, json)                                                              \
    do {                                                                                     \
        char *got_ = dump_ordered(v);                                                        \
        cr_assert_str_eq(got_, json);                                                        \
        free(got_);                                                                          \
    } while (0)

static fo_map *child(const fo_value *parent, const char *key)
{
    fo_value *v = fo_map_get(fo_value_as_map(parent), fo_key_new_cstr(&A, key));

    cr_assert_not_null(v, "no %s", key);
    cr_assert_eq(fo_value_type(v), FO_MAP);
    return fo_value_as_map(v);
}

Test(doc, an_item_grows_past_its_room_and_shrinks_back_keeping_key_order)
{
    char json[256], want[1024];
    size_t wl;
    int i;

    cr_assert(run_proposed("{\"action\":\"create\",\"props\":{\"a\":1,\"b\":2,\"c\":3}}", "x").ok);
    cr_assert_eq(fo_map_bytes(child(fo_doc_root(D), "x")), 8 + 3 * sizeof(fo_entry));
    wl = (size_t)snprintf(want, sizeof(want), "{\"x\":{\"a\":1,\"b\":2,\"c\":3");
    /* One key per command: past the inline room (3), past FO_MAP_LINEAR (the index). */
    for (i = 0; i < 12; i++) {
        snprintf(json, sizeof(json),
                 "{\"action\":\"update\",\"path\":[\"x\"],\"props\":{\"k%d\":%d}}", i, i);
        cr_assert(run(json).ok);
        wl += (size_t)snprintf(want + wl, sizeof(want) - wl, ",\"k%d\":%d", i, i);
        want[wl] = '\0';
        strcat(want, "}}");
        assert_ordered(fo_doc_root(D), want);
        want[wl] = '\0';
        fo_arena_reset(&A);
    }
    cr_assert_gt(fo_map_bytes(child(fo_doc_root(D), "x")), 8 + 15 * sizeof(fo_entry));
    /* Delete all but two; re-adding a deleted key puts it last, as in the reference. */
    for (i = 0; i < 12; i++) {
        snprintf(json, sizeof(json), "{\"action\":\"delete\",\"path\":[\"x\",\"k%d\"]}", i);
        cr_assert(run(json).ok);
    }
    cr_assert(run("{\"action\":\"delete\",\"path\":[\"x\",\"a\"]}").ok);
    cr_assert(
        run("{\"action\":\"update\",\"path\":[\"x\"],\"props\":{\"a\":\"again\",\"c\":4}}").ok);
    assert_ordered(fo_doc_root(D), "{\"x\":{\"b\":2,\"c\":4,\"a\":\"again\"}}");
    /* Compaction makes it an inline map of three entries again. */
    cr_assert_eq(fo_doc_compact(D), 0);
    assert_ordered(fo_doc_root(D), "{\"x\":{\"b\":2,\"c\":4,\"a\":\"again\"}}");
    cr_assert_eq(fo_map_bytes(child(fo_doc_root(D), "x")), 8 + 3 * sizeof(fo_entry));
    cr_assert(run("{\"action\":\"update\",\"path\":[\"x\"],\"props\":{\"d\":5}}").ok);
    assert_ordered(fo_doc_root(D), "{\"x\":{\"b\":2,\"c\":4,\"a\":\"again\",\"d\":5}}");
}

Test(doc, keys_are_interned_once_numeric_ones_not_at_all_and_survive_compaction)
{
    fo_doc_stats st;
    fo_map *root;
    char json[200];
    int i;

    for (i = 0; i < 300; i++) {
        snprintf(json, sizeof(json),
                 "{\"action\":\"create\",\"props\":{\"title\":\"item %d\",\"done\":false,"
                 "\"n\":%d}}",
                 i, i);
        cr_assert(run(json).ok);
        fo_arena_reset(&A);
    }
    run_proposed("{\"action\":\"create\",\"props\":{\"title\":\"odd\"}}", "007");
    fo_doc_stats_get(D, &st);
    cr_assert_eq(st.interned_keys, 4); /* title, done, n, "007"; the IDs 1..300 are numbers */
    root = fo_value_as_map(fo_doc_root(D));
    cr_assert_eq(fo_map_count(root), 301);
    /* The interned key and the numeric one are different keys. */
    cr_assert_not_null(fo_map_get(root, fo_key_new_cstr(&A, "007")));
    cr_assert_null(fo_map_get(root, fo_key_new_cstr(&A, "0007")));
    tj_assert_value(fo_map_get(root, fo_key_new_cstr(&A, "007")), "{\"title\":\"odd\"}");
    tj_assert_value(fo_map_get(root, fo_key_from_u64(7)),
                    "{\"title\":\"item 6\",\"done\":false,\"n\":6}");
    cr_assert_eq(fo_doc_compact(D), 0);
    fo_doc_stats_get(D, &st);
    cr_assert_eq(st.interned_keys, 4);
    cr_assert(run("{\"action\":\"update\",\"path\":[\"007\"],\"props\":{\"title\":\"even\"}}").ok);
    cr_assert(run("{\"action\":\"update\",\"path\":[\"300\"],\"props\":{\"done\":true}}").ok);
    tj_assert_value(fo_map_get(fo_value_as_map(fo_doc_root(D)), fo_key_new_cstr(&A, "007")),
                    "{\"title\":\"even\"}");
    tj_assert_value(fo_map_get(fo_value_as_map(fo_doc_root(D)), fo_key_from_u64(300)),
                    "{\"title\":\"item 299\",\"done\":true,\"n\":299}");
}

/* A chain of maps as deep as the limit allows, with siblings at each level so that every
 * level grows past its inline room and FO_MAP_LINEAR; then deletes, compaction, equality. */
Test(doc, deep_trees_grow_shrink_and_compact_at_every_level)
{
    char path[1024], json[1200];
    size_t pl = 0;
    fo_doc *copy;
    fo_doc_stats before, after;
    uint32_t level, i, depth = FO_DOC_DEFAULT_MAX_DEPTH - 1;

    path[0] = '\0';
    for (level = 0; level < depth; level++) {
        for (i = 0; i < 12; i++) {
            char id[16];
            snprintf(id, sizeof(id), "%s%u", i == 0 ? "next" : "s", i);
            snprintf(json, sizeof(json), "{\"action\":\"create\",\"path\":[%s]}", path);
            cr_assert(run_proposed(json, id).ok, "level %u sibling %u", level, i);
            fo_arena_reset(&A);
        }
        pl += (size_t)snprintf(path + pl, sizeof(path) - pl, "%s\"next0\"", pl ? "," : "");
    }
    /* Too deep: the limit still holds with the new layout. */
    snprintf(json, sizeof(json), "{\"action\":\"create\",\"path\":[%s],\"props\":{\"a\":{}}}",
             path);
    cr_assert_not(run(json).ok);
    cr_assert_eq(fo_value_depth(fo_doc_root(D)), depth + 1);
    /* Delete 10 of the 12 children at every level, deepest first. */
    for (level = depth; level-- > 0;) {
        size_t l = 0;
        char p[1024];
        p[0] = '\0';
        for (i = 0; i < level; i++)
            l += (size_t)snprintf(p + l, sizeof(p) - l, "%s\"next0\"", l ? "," : "");
        for (i = 2; i < 12; i++) {
            snprintf(json, sizeof(json), "{\"action\":\"delete\",\"path\":[%s%s\"s%u\"]}", p,
                     l ? "," : "", i);
            cr_assert(run(json).ok);
        }
        fo_arena_reset(&A);
    }
    copy = fo_doc_clone(D);
    fo_doc_stats_get(D, &before);
    cr_assert_eq(fo_doc_compact(D), 0);
    fo_doc_stats_get(D, &after);
    cr_assert_lt(after.used_bytes, before.used_bytes);
    cr_assert(fo_value_eq(fo_doc_root(D), fo_doc_root(copy)));
    {
        char *a = dump_ordered(fo_doc_root(D)), *b = dump_ordered(fo_doc_root(copy));
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
    }
    /* Every level is two entries again: inline. */
    {
        const fo_value *v = fo_doc_root(D);
        for (level = 0; level < depth; level++) {
            fo_map *m = fo_value_as_map(v);
            cr_assert_eq(fo_map_count(m), 2);
            cr_assert_eq(fo_map_bytes(m), 8 + 2 * sizeof(fo_entry), "level %u", level);
            v = fo_map_get(m, fo_key_new_cstr(&A, "next0"));
            cr_assert_not_null(v);
        }
    }
    fo_doc_free(copy);
}

/* The target of issue 8: a document of small items, built by commands as bench/micro
 * builds it (random 53-bit IDs, {title, done, n}), takes at most 3x its MessagePack size,
 * as built and after compaction. */
Test(doc, a_10k_item_document_as_built_is_at_most_3x_its_msgpack_size)
{
    fo_doc *d = fo_doc_new(FO_IDS_RANDOM);
    fo_doc_stats st;
    fo_buf b;
    uint32_t i;
    double built, compacted;

    fo_doc_seed(d, 42);
    for (i = 1; i <= 10000; i++) {
        char json[200];
        fo_command c;
        fo_doc_result r;

        snprintf(json, sizeof(json),
                 "{\"action\":\"create\",\"props\":{\"title\":\"item %u\",\"done\":false,"
                 "\"n\":%u}}",
                 i, i);
        c = tj_cmd(&A, json);
        cr_assert_eq(fo_doc_apply(d, &c, FO_KEY_NONE, &A, &r), 0);
        cr_assert(r.ok);
        fo_arena_reset(&A);
    }
    fo_buf_init(&b, 0);
    cr_assert_eq(fo_wire_encode_value(fo_doc_root(d), &b), 0);
    fo_doc_stats_get(d, &st);
    built = (double)st.arena_bytes / (double)b.len;
    cr_assert_eq(fo_doc_compact(d), 0);
    fo_doc_stats_get(d, &st);
    compacted = (double)st.arena_bytes / (double)b.len;
    cr_log_info("10k items: %.2fx as built, %.2fx compacted", built, compacted);
    cr_assert_leq(built, 3.0, "as built: %.2fx", built);
    cr_assert_leq(compacted, built);
    fo_buf_destroy(&b);
    fo_doc_free(d);
}
