/* rules_bench.c - fo-rulebench: the per-command cost of a server-side rule. Applies the
 * micro-benchmark's mixed batches (workload.h, 10 commands each) to a document of --items
 * items through fo_batch_apply, as the master does, three ways: no interceptor; rules
 * loaded whose pattern matches no model (one fnmatch per batch: a one-rule file written to
 * a temporary directory, as stamp.lua's "*" matches every model); bench/rules/stamp.lua,
 * which rewrites every command's props. Prints ns per command and the rule's share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workload.h"
#include "hub/rules.h"
#include "proto/pathmap.h"

#define BATCH_SIZE 10

static double run(uint32_t items, uint32_t seed, uint32_t nbatches, fo_rules *rules,
                  const char *model)
{
    fo_bench_gen g;
    fo_master *m = fo_bench_build(items, seed, &g);
    fo_doc *d = fo_master_doc(m);
    fo_arena in, res;
    fo_batch *b = calloc(nbatches, sizeof(*b));
    double t0, t;
    uint64_t count = fo_doc_count(d);

    if (!b)
        fo_bench_die("out of memory");
    fo_arena_init(&in, 1 << 20);
    fo_arena_init(&res, 16384);
    for (uint32_t i = 0; i < nbatches; i++)
        fo_bench_gen_batch(&g, &in, count + (uint64_t)i * BATCH_SIZE, BATCH_SIZE, 1, &b[i]);
    t0 = fo_bench_now();
    for (uint32_t i = 0; i < nbatches; i++) {
        fo_pathmap pm;
        fo_batch_outcome o;
        fo_rules_batch rb;
        fo_arena_reset(&res);
        fo_pathmap_init(&pm, &res);
        fo_rules_batch_init(&rb, rules, model, NULL, 1700000000000);
        if (fo_batch_apply(d, b[i].items, b[i].len, &pm, rules ? &fo_rules_interceptor : NULL,
                           &rb, &res, &o))
            fo_bench_die("fo_batch_apply failed");
        if (o.errors_len)
            fo_bench_die("a command failed: %s", o.errors[0].message);
    }
    t = fo_bench_now() - t0;
    fo_arena_destroy(&res);
    fo_arena_destroy(&in);
    free(b);
    fo_bench_gen_destroy(&g);
    fo_master_free(m);
    return t * 1e9 / ((double)nbatches * BATCH_SIZE);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *file = FO_MICRO_SRC_DIR "/../rules/stamp.lua";
    uint32_t items = 10000, batches = 20000, reps = 7;
    double v[3][32];
    const char *names[3] = {"no rules", "rules, none matching", "stamp rule on every command"};
    char err[512];
    fo_rules *rules, *none;
    char dir[] = "/tmp/fo-rulebench-XXXXXX", path[64];
    FILE *f;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            batches = 5000;
            reps = 3;
        } else if (!strcmp(argv[i], "--rules") && i + 1 < argc) {
            file = argv[++i];
        } else if (!strcmp(argv[i], "--version")) {
            printf("fo-rulebench %s\n", FO_VERSION);
            return 0;
        } else {
            fprintf(stderr, "usage: fo-rulebench [--quick] [--rules FILE.lua]\n");
            return 2;
        }
    }
    if (!(rules = fo_rules_load(file, NULL, err, sizeof(err))))
        fo_bench_die("%s", err);
    if (!mkdtemp(dir))
        fo_bench_die("mkdtemp failed");
    snprintf(path, sizeof(path), "%s/none.lua", dir);
    if (!(f = fopen(path, "w")))
        fo_bench_die("%s: cannot write", path);
    fputs("return {{models = \"matches-no-model\", intercept = function() end}}\n", f);
    fclose(f);
    none = fo_rules_load(path, NULL, err, sizeof(err));
    remove(path);
    rmdir(dir);
    if (!none)
        fo_bench_die("%s", err);
    for (uint32_t r = 0; r < reps; r++) {
        v[0][r] = run(items, 7, batches, NULL, "bench");
        v[1][r] = run(items, 7, batches, none, "bench");
        v[2][r] = run(items, 7, batches, rules, "bench");
    }
    printf("fo-rulebench: %u batches x %u commands on %u items, median of %u (%s)\n", batches,
           BATCH_SIZE, items, reps, file);
    for (int k = 0; k < 3; k++) {
        qsort(v[k], reps, sizeof(double), cmp);
        printf("  %-30s %8.0f ns/command\n", names[k], v[k][reps / 2]);
    }
    printf("  %-30s %8.0f ns/command (Lua state %zu KiB)\n", "the rule's cost",
           v[2][reps / 2] - v[0][reps / 2], fo_rules_memory(rules) >> 10);
    fo_rules_free(rules);
    fo_rules_free(none);
    return 0;
}
