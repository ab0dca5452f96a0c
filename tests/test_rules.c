/* The rules engine (hub/rules.h) on its own: rules files loaded from real files, batches
 * applied to real documents through the interceptor, as the master does in the hub. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub/rules.h"
#include "proto/doc.h"
#include "proto/pathmap.h"
#include "tests/support.h"

static fo_arena A;

static void setup(void)
{
    fo_arena_init(&A, 0);
}

static void teardown(void)
{
    fo_arena_destroy(&A);
}

TestSuite(rules, .init = setup, .fini = teardown, .timeout = 60);

static char *write_file(const char *src)
{
    static char path[64];
    int fd;

    strcpy(path, "/tmp/fo-rules-XXXXXX.lua");
    fd = mkstemps(path, 4);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
    return path;
}

static fo_rules *load_lim(const char *src, const fo_rules_limits *lim)
{
    char err[512];
    char *path = write_file(src);
    fo_rules *r = fo_rules_load(path, lim, err, sizeof(err));

    unlink(path);
    cr_assert(r, "load failed: %s", err);
    return r;
}

static fo_rules *load(const char *src)
{
    return load_lim(src, NULL);
}

static void load_fails(const char *src, const char *needle)
{
    char err[512];
    char *path = write_file(src);
    fo_rules *r = fo_rules_load(path, NULL, err, sizeof(err));

    unlink(path);
    cr_assert_null(r, "loaded, expected an error with '%s'", needle);
    cr_assert(strstr(err, needle), "error '%s' does not contain '%s'", err, needle);
}

typedef struct run {
    fo_rules_batch rb;
    fo_batch_outcome o;
} run;

/* Applies the batch (JSON) to d through the rules, as the master does. */
static run apply_id(fo_rules *r, fo_doc *d, const char *model, const json_t *identity,
                    const char *batch)
{
    run x;
    fo_batch b = tj_batch(&A, batch);
    fo_pathmap pm;

    fo_pathmap_init(&pm, &A);
    fo_rules_batch_init(&x.rb, r, model, identity, 1700000000123);
    cr_assert_eq(fo_batch_apply(d, b.items, b.len, &pm, &fo_rules_interceptor, &x.rb, &A, &x.o), 0);
    return x;
}

static run apply(fo_rules *r, fo_doc *d, const char *batch)
{
    return apply_id(r, d, "todos:1", NULL, batch);
}

#define B1(cmd) "{\"from\":0,\"completions\":[{\"command\":" cmd "}]}"

static void assert_error(const run *x, uint32_t i, const char *needle)
{
    cr_assert_gt(x->o.errors_len, i, "expected an error #%u with '%s'", i, needle);
    cr_assert(strstr(x->o.errors[i].message, needle), "error '%s' does not contain '%s'",
              x->o.errors[i].message, needle);
}

Test(rules, nothing_accepts)
{
    fo_rules *r = load("return {{models='*', intercept=function(cmd, ctx) end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, B1("{\"action\":\"update\",\"props\":{\"a\":1}}"));

    cr_assert_not(x.o.changed);
    cr_assert_eq(x.rb.nactions, 0);
    tj_assert_value(fo_doc_root(d), "{\"a\":1}");
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, false_and_message_rejects)
{
    fo_rules *r = load("return {{name='no', models='todos:*', intercept=function(cmd, ctx)\n"
                       "  return false, 'not today' end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, B1("{\"action\":\"update\",\"props\":{\"a\":1}}"));

    assert_error(&x, 0, "not today");
    cr_assert_eq(x.rb.nactions, 1);
    cr_assert(x.rb.actions[0].rejected);
    cr_assert(strncmp(x.rb.actions[0].rules, "rule 1 \"no\" (fo-rules-", 22) == 0 &&
                  strstr(x.rb.actions[0].rules, ".lua:1)"),
              "%s", x.rb.actions[0].rules);
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, false_alone_names_the_rule)
{
    fo_rules *r = load("return {\n{models='todos:*', intercept=function() return false end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, B1("{\"action\":\"update\",\"props\":{\"a\":1}}"));

    assert_error(&x, 0, "rejected by rule 1 \"todos:*\" (fo-rules-");
    assert_error(&x, 0, ".lua:2)");
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, table_replaces_props_and_later_rules_see_it)
{
    fo_rules *r = load(
        "return {\n"
        " {models='*', intercept=function(cmd, ctx)\n"
        "   local p = cmd.props or {}; p.createdAt = ctx.now; return p end},\n"
        " {models='*', intercept=function(cmd, ctx)\n"
        "   if cmd.props.createdAt ~= ctx.now then return false, 'not stamped' end\n"
        "   local p = cmd.props; p.second = true; return p end},\n"
        "}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\","
                        "\"props\":{\"text\":\"a\",\"n\":1.5,\"l\":[1,\"x\"],\"z\":null}},"
                        "\"createdId\":\"1\"}]}");

    cr_assert_eq(x.o.errors_len, 0);
    cr_assert(x.o.changed);
    tj_assert_value(fo_doc_root(d), "{\"1\":{\"text\":\"a\",\"n\":1.5,\"l\":[1,\"x\"],\"z\":null,"
                                    "\"createdAt\":1700000000123,\"second\":true}}");
    cr_assert_eq(x.rb.nactions, 1);
    cr_assert_not(x.rb.actions[0].rejected);
    cr_assert(strstr(x.rb.actions[0].rules, "rule 1") && strstr(x.rb.actions[0].rules, "rule 2"));
    fo_doc_free(d);
    fo_rules_free(r);
}

/* rules.lua's stamp on the first todo of a new list: the create's parentDefault makes
 * `todos`; the reference's interceptor would drop it with the old props, and fail. */
Test(rules, rewrite_keeps_parent_default)
{
    fo_rules *r = load("return {{models='todos:*', intercept=function(cmd, ctx)\n"
                       "  if cmd.action ~= 'create' then return end\n"
                       "  local p = cmd.props or {}; p.createdAt = ctx.now; return p end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\","
                        "\"path\":[\"todos\"],\"props\":{\"text\":\"a\"},\"parentDefault\":{}},"
                        "\"createdId\":\"1\"},{\"command\":{\"action\":\"create\","
                        "\"path\":[\"todos\"],\"props\":{\"text\":\"b\"},\"parentDefault\":{}},"
                        "\"createdId\":\"2\"}]}");

    cr_assert_eq(x.o.errors_len, 0, "%s", x.o.errors_len ? x.o.errors[0].message : "");
    tj_assert_value(fo_doc_root(d), "{\"todos\":{\"1\":{\"text\":\"a\",\"createdAt\":1700000000123},"
                                    "\"2\":{\"text\":\"b\",\"createdAt\":1700000000123}}}");
    /* The command as applied (what history and syncs carry) keeps it too. */
    cr_assert(x.o.changed);
    cr_assert_not_null(x.o.rebuilt.items[0].command.parent_default);
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, first_rejection_stops_in_file_order)
{
    fo_rules *r = load("return {\n"
                       " {models='other', intercept=function() return false, 'wrong model' end},\n"
                       " {models='todos:*', intercept=function() return false, 'first' end},\n"
                       " {models='*', intercept=function() error('must not run') end},\n"
                       "}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, B1("{\"action\":\"update\",\"props\":{\"a\":1}}"));

    cr_assert_eq(x.o.errors_len, 1);
    cr_assert_str_eq(x.o.errors[0].message, "first");
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, bad_returns_reject)
{
    fo_rules *r = load("return {{models='*', intercept=function(cmd)\n"
                       "  if cmd.action == 'delete' then return {a=1} end\n"
                       "  if cmd.props.kind == 'num' then return 42 end\n"
                       "  if cmd.props.kind == 'list' then return {1, 2} end\n"
                       "  if cmd.props.kind == 'fn' then return {f = pairs} end\n"
                       "  return true end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, "{\"from\":0,\"completions\":["
                        "{\"command\":{\"action\":\"update\",\"props\":{\"kind\":\"num\"}}},"
                        "{\"command\":{\"action\":\"update\",\"props\":{\"kind\":\"list\"}}},"
                        "{\"command\":{\"action\":\"update\",\"props\":{\"kind\":\"fn\"}}},"
                        "{\"command\":{\"action\":\"delete\",\"path\":[\"x\"]}},"
                        "{\"command\":{\"action\":\"update\",\"props\":{\"kind\":\"ok\"}}}]}");

    for (uint32_t i = 0; i < x.o.errors_len; i++)
        cr_log_info("error %u: %s", i, x.o.errors[i].message);
    cr_assert_eq(x.o.errors_len, 4);
    assert_error(&x, 0, "returned a number: expected nothing, false and a message, or a table");
    assert_error(&x, 1, "props: a list, where a map of props was expected");
    assert_error(&x, 2, "cannot be stored");
    assert_error(&x, 3, "returned props for a delete");
    tj_assert_value(fo_doc_root(d), "{\"kind\":\"ok\"}");
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, runtime_error_names_rule_and_line)
{
    fo_rules *r = load("return {{name='oops', models='*', intercept=function(cmd)\n"
                       "  local t = nil\n"
                       "  return t.x end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, B1("{\"action\":\"update\"}"));

    assert_error(&x, 0, "rule 1 \"oops\" (fo-rules-");
    assert_error(&x, 0, ".lua:1) failed: fo-rules-");
    assert_error(&x, 0, ".lua:3: attempt to index");
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, endless_loop_stopped_and_uncatchable)
{
    fo_rules_limits lim;
    fo_rules *r;

    fo_rules_limits_default(&lim);
    lim.time_ms = 5000; /* the instruction budget stops it, even on a loaded machine */
    r = load_lim("return {{models='*', intercept=function(cmd)\n"
                 "  if cmd.props.p then\n"
                 "    while true do pcall(function() while true do end end) end\n"
                 "  end\n"
                 "  while true do end end}}", &lim);
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    struct timespec t0, t1;
    run x;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    x = apply(r, d, "{\"from\":0,\"completions\":["
                    "{\"command\":{\"action\":\"update\",\"props\":{\"p\":true}}},"
                    "{\"command\":{\"action\":\"update\",\"props\":{\"p\":false}}}]}");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(x.o.errors_len, 2);
    assert_error(&x, 0, "stopped at fo-rules-");
    assert_error(&x, 0, ".lua:3: instruction budget of 1000000 exceeded");
    assert_error(&x, 1, ".lua:5: instruction budget of 1000000 exceeded");
    cr_log_info("two stopped commands: %.1f ms",
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, time_budget)
{
    fo_rules_limits lim;
    fo_rules *r;
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x;

    fo_rules_limits_default(&lim);
    lim.instructions = (uint64_t)1 << 40;
    lim.time_ms = 3;
    r = load_lim("return {{models='*', intercept=function() while true do end end}}", &lim);
    x = apply(r, d, B1("{\"action\":\"update\"}"));
    assert_error(&x, 0, "time budget of 3 ms exceeded");
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, memory_cap)
{
    fo_rules_limits lim;
    fo_rules *r;
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x;

    fo_rules_limits_default(&lim);
    lim.memory = (size_t)4 << 20;
    lim.instructions = (uint64_t)1 << 40;
    lim.time_ms = 5000;
    r = load_lim("return {{models='*', intercept=function(cmd)\n"
                 "  if not cmd.props.big then return end\n"
                 "  local t = {}\n"
                 "  local ok = pcall(function() for i = 1, 1e8 do t[i] = {i} end end)\n"
                 "  return {survived = ok} end}}",
                 &lim);
    x = apply(r, d, B1("{\"action\":\"update\",\"props\":{\"big\":true}}"));
    assert_error(&x, 0, "reached their memory cap of 4194304 bytes");
    cr_assert_leq(fo_rules_memory(r), lim.memory);
    /* the state goes on */
    x = apply(r, d, B1("{\"action\":\"update\",\"props\":{\"big\":false}}"));
    cr_assert_eq(x.o.errors_len, 0);
    tj_assert_value(fo_doc_root(d), "{\"big\":false}");
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, forbidden_globals_are_absent)
{
    static const char *const names[] = {
        "io", "os", "require", "package", "load", "loadstring", "dofile", "loadfile", "debug",
        "ffi", "jit", "coroutine", "getfenv", "setfenv", "rawset", "module", "newproxy",
        "gcinfo", "_G", "print", NULL};
    fo_rules *r;
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    char batch[256];

    for (int i = 0; names[i]; i++) {
        char src[1024];
        fo_rules *ri;
        run x;
        snprintf(src, sizeof(src),
                 "return {{models='*', intercept=function(cmd)\n"
                 "  return {present = %s ~= nil} end}}",
                 names[i]);
        ri = load(src);
        x = apply(ri, d, B1("{\"action\":\"update\"}"));
        cr_assert_eq(x.o.errors_len, 0, "%s: %s", names[i],
                     x.o.errors_len ? x.o.errors[0].message : "");
        cr_assert(fo_value_eq(fo_map_get(fo_value_as_map(fo_doc_root(d)),
                                         fo_key_new_cstr(&A, "present")),
                              tj_valp(&A, "false")),
                  "%s is reachable from a rule", names[i]);
        fo_rules_free(ri);
    }
    r = load("return {{models='*', intercept=function(cmd)\n"
             "  local name = cmd.props.name\n"
             "  if name == 'string.dump' then return {v = string.dump == nil} end\n"
             "  if name == 'math.random' then return {v = math.random == nil} end\n"
             "  if name == 'gc' then return {v = type(collectgarbage('count')) == 'number' and\n"
             "     not pcall(collectgarbage, 'collect') and not pcall(collectgarbage)} end\n"
             "  if name == 'strmeta' then return {v = getmetatable('') == false} end\n"
             "end}}");
    {
        static const char *const probes[] = {"string.dump", "math.random", "gc", "strmeta", NULL};
        for (int i = 0; probes[i]; i++) {
            run x;
            snprintf(batch, sizeof(batch), B1("{\"action\":\"update\",\"props\":{\"name\":\"%s\"}}"),
                     probes[i]);
            x = apply(r, d, batch);
            cr_assert_eq(x.o.errors_len, 0, "%s: %s", probes[i],
                         x.o.errors_len ? x.o.errors[0].message : "");
            cr_assert(fo_value_eq(fo_map_get(fo_value_as_map(fo_doc_root(d)),
                                             fo_key_new_cstr(&A, "v")),
                                  tj_valp(&A, "true")),
                      "%s is reachable from a rule", probes[i]);
        }
    }
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, globals_and_libraries_do_not_survive_a_call)
{
    fo_rules *r = load("helper = function(x) return x * 2 end\n"
                       "return {{models='*', intercept=function(cmd)\n"
                       "  if seen then return false, 'a global survived' end\n"
                       "  seen = true\n"
                       "  if cmd.props.poke then string.upper = nil end\n"
                       "  return {n = helper(cmd.props.n), up = string.upper('a')} end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, "{\"from\":0,\"completions\":["
                        "{\"command\":{\"action\":\"update\",\"props\":{\"n\":1,\"poke\":true}}},"
                        "{\"command\":{\"action\":\"update\",\"props\":{\"n\":2}}}]}");

    cr_assert_eq(x.o.errors_len, 1);
    assert_error(&x, 0, "read-only");
    tj_assert_value(fo_doc_root(d), "{\"n\":4,\"up\":\"A\"}");
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, context_identity_now_model_get_id)
{
    fo_rules *r = load("return {{models='*', intercept=function(cmd, ctx)\n"
                       "  if cmd.action ~= 'create' then return end\n"
                       "  return {by = ctx.identity.sub, role = ctx.identity.roles[2],\n"
                       "          now = ctx.now, model = ctx.model, id = cmd.id,\n"
                       "          seen = ctx.get({'x', 'y'}), none = ctx.get({'nope', 'y'}) == nil,\n"
                       "          path = table.concat(cmd.path, '/')} end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    json_t *id = json_pack("{s:s, s:[s,s]}", "sub", "ann", "roles", "a", "b");
    run x = apply_id(r, d, "lists:7", id,
                     "{\"from\":0,\"completions\":["
                     "{\"command\":{\"action\":\"update\",\"props\":{\"x\":{\"y\":{\"z\":[1]}}}}},"
                     "{\"command\":{\"action\":\"create\",\"path\":[\"x\"]},\"createdId\":\"42\"}]}");

    cr_assert_eq(x.o.errors_len, 0, "%s", x.o.errors_len ? x.o.errors[0].message : "");
    tj_assert_value(fo_map_get(fo_value_as_map(fo_doc_root(d)), fo_key_new_cstr(&A, "x")),
                    "{\"y\":{\"z\":[1]},\"42\":{\"by\":\"ann\",\"role\":\"b\",\"now\":1700000000123,"
                    "\"model\":\"lists:7\",\"id\":\"42\",\"seen\":{\"z\":[1]},\"none\":true,"
                    "\"path\":\"x\"}}");
    json_decref(id);
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, bad_files)
{
    load_fails("return {", ".lua:1: unexpected symbol near '<eof>'");
    load_fails("return 5", "must return a list of rules (a table), not a number");
    load_fails("return {{models='*'}}", "rule 1: 'intercept' must be a function");
    load_fails("return {{models='*', intercept=function() end, model='x'}}",
               "rule 1: unknown field 'model'");
    load_fails("return {{intercept=function() end}}", "'models' must be a fnmatch pattern");
    /* Stopped by a budget: the instructions' on a machine of normal speed, the 10 ms one
     * first under valgrind on a loaded machine (seen once). */
    load_fails("while true do end", " budget of ");
    load_fails("\x1bLJ\x02", "bytecode is not accepted");
    load_fails("error('bad config')", "bad config");
}

Test(rules, actions_as_json)
{
    fo_rules *r = load("return {{models='*', intercept=function(cmd)\n"
                       "  if cmd.props.bad then return false, 'bad \"one\"' end\n"
                       "  return {ok = true} end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, "{\"from\":0,\"completions\":["
                        "{\"command\":{\"action\":\"update\",\"props\":{\"bad\":true}}},"
                        "{\"command\":{\"action\":\"update\",\"props\":{\"bad\":false}}}]}");
    fo_buf b;
    json_t *j;
    json_error_t e;

    fo_buf_init(&b, 0);
    cr_assert_eq(fo_rules_write_actions(&x.rb, &b), 0);
    j = json_loadb((const char *)fo_buf_data(&b), b.len, 0, &e);
    cr_assert(j, "not JSON: %s", e.text);
    cr_assert_eq(json_array_size(j), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "message")),
                     "bad \"one\"");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 1), "outcome")),
                     "rewritten");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(j, 1), "index")), 1);
    json_decref(j);
    fo_buf_destroy(&b);
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, ctx_is_read_only_and_follows_each_batch)
{
    fo_rules *r = load("return {{models='*', intercept=function(cmd, ctx)\n"
                       "  if cmd.props.poke then ctx.extra = 1 end\n"
                       "  if cmd.props.reset then ctx.now = 0 end\n"
                       "  return {now = ctx.now, model = ctx.model,\n"
                       "          by = ctx.identity and ctx.identity.sub or 'nobody'} end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    json_t *id = json_pack("{s:s}", "sub", "ann");
    run x = apply_id(r, d, "a:1", id, "{\"from\":0,\"completions\":["
                                      "{\"command\":{\"action\":\"update\",\"props\":{\"poke\":1}}},"
                                      "{\"command\":{\"action\":\"update\",\"props\":{\"reset\":1}}},"
                                      "{\"command\":{\"action\":\"update\",\"props\":{}}}]}");

    cr_assert_eq(x.o.errors_len, 2);
    assert_error(&x, 0, "ctx is read-only");
    assert_error(&x, 1, "ctx is read-only");
    tj_assert_value(fo_doc_root(d), "{\"now\":1700000000123,\"model\":\"a:1\",\"by\":\"ann\"}");
    /* The next batch: another model, no identity, another now. */
    fo_rules_batch_init(&x.rb, r, "b:2", NULL, 1800000000000);
    {
        fo_batch b = tj_batch(&A, B1("{\"action\":\"update\",\"props\":{}}"));
        fo_pathmap pm;
        fo_pathmap_init(&pm, &A);
        cr_assert_eq(fo_batch_apply(d, b.items, b.len, &pm, &fo_rules_interceptor, &x.rb, &A,
                                    &x.o), 0);
    }
    cr_assert_eq(x.o.errors_len, 0);
    tj_assert_value(fo_doc_root(d), "{\"now\":1800000000000,\"model\":\"b:2\",\"by\":\"nobody\"}");
    json_decref(id);
    fo_doc_free(d);
    fo_rules_free(r);
}

Test(rules, returned_tables_of_every_shape)
{
    fo_rules *r = load("return {{models='*', intercept=function(cmd)\n"
                       "  local k = cmd.props.k\n"
                       "  if k == 'many' then local t = {}\n"
                       "    for i = 1, 40 do t['f' .. i] = i end return t end\n"
                       "  if k == 'nested' then return {a = {1, 2, {b = {}}}, e = array(), m = {}} end\n"
                       "  if k == 'mixed' then return {x = 1, [3] = 2} end\n"
                       "  if k == 'numkey' then return {[5] = 1} end\n"
                       "  if k == 'list' then return {1, 2} end\n"
                       "end}}");
    fo_doc *d = fo_doc_new(FO_IDS_SEQUENTIAL);
    run x = apply(r, d, "{\"from\":0,\"completions\":["
                        "{\"command\":{\"action\":\"update\",\"props\":{\"k\":\"mixed\"}}},"
                        "{\"command\":{\"action\":\"update\",\"props\":{\"k\":\"numkey\"}}},"
                        "{\"command\":{\"action\":\"update\",\"props\":{\"k\":\"list\"}}},"
                        "{\"command\":{\"action\":\"update\",\"props\":{\"k\":\"nested\"}}},"
                        "{\"command\":{\"action\":\"update\",\"props\":{\"k\":\"many\"}}}]}");
    const fo_map *m = fo_value_as_map(fo_doc_root(d));

    cr_assert_eq(x.o.errors_len, 3);
    assert_error(&x, 0, "map keys must be strings");
    assert_error(&x, 1, "map keys must be strings");
    assert_error(&x, 2, "a list, where a map of props was expected");
    cr_assert_eq(fo_map_count(m), 3 + 40);
    tj_assert_value(fo_map_get(m, fo_key_new_cstr(&A, "a")), "[1,2,{\"b\":{}}]");
    tj_assert_value(fo_map_get(m, fo_key_new_cstr(&A, "e")), "[]");
    tj_assert_value(fo_map_get(m, fo_key_new_cstr(&A, "m")), "{}");
    tj_assert_value(fo_map_get(m, fo_key_new_cstr(&A, "f40")), "40");
    fo_doc_free(d);
    fo_rules_free(r);
}
