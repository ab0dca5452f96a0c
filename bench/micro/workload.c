#include "workload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/error.h"

void fo_bench_die(const char *fmt, ...)
{
    va_list ap;

    fputs("fo-microbench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* The program's one setting outside `options`: which clock fo_bench_now reads. */
static clockid_t bench_clock = CLOCK_MONOTONIC;

void fo_bench_use_cpu_time(void)
{
    bench_clock = CLOCK_PROCESS_CPUTIME_ID;
}

double fo_bench_now(void)
{
    struct timespec ts;

    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- generator ------------------------------------------------------------------------ */

void fo_bench_gen_init(fo_bench_gen *g, uint32_t seed)
{
    memset(g, 0, sizeof(*g));
    g->rng = seed;
}

void fo_bench_gen_destroy(fo_bench_gen *g)
{
    free(g->ids);
    memset(g, 0, sizeof(*g));
}

/* mulberry32, written as ref_bench.mjs writes it with Math.imul. */
uint32_t fo_bench_rng_next(fo_bench_gen *g)
{
    uint32_t t;

    g->rng += 0x6D2B79F5u;
    t = g->rng;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return t ^ (t >> 14);
}

uint32_t fo_bench_rng_below(fo_bench_gen *g, uint32_t n)
{
    return (uint32_t)(((uint64_t)fo_bench_rng_next(g) * n) >> 32);
}

static void *xalloc(fo_arena *a, size_t n)
{
    void *p = fo_arena_alloc(a, n);

    if (!p)
        fo_bench_die("out of memory");
    return p;
}

static void put(fo_map *m, fo_arena *a, const char *key, fo_value v)
{
    fo_key k = fo_key_new_cstr(a, key);

    if (!k || fo_map_set(m, a, k, &v, NULL))
        fo_bench_die("out of memory");
}

static fo_value *new_map(fo_arena *a, uint32_t cap)
{
    fo_value *v = xalloc(a, sizeof(*v));
    bool ok = true;

    *v = fo_value_map(a, cap, &ok);
    if (!ok)
        fo_bench_die("out of memory");
    return v;
}

/* A create at the root proposing a fresh 53-bit ID, as a proxy would send it. */
static void gen_create(fo_bench_gen *g, fo_arena *a, fo_completion *c)
{
    uint64_t hi = fo_bench_rng_next(g) >> 11, lo = fo_bench_rng_next(g);
    uint64_t id = hi << 32 | lo;
    fo_value *props = new_map(a, 3);
    char title[32];
    int tlen;
    bool ok = true;

    g->serial++;
    tlen = snprintf(title, sizeof(title), "item %llu", (unsigned long long)g->serial);
    put(props->h.as.map, a, "title", fo_value_str(a, title, (size_t)tlen, &ok));
    put(props->h.as.map, a, "done", fo_value_bool(false));
    put(props->h.as.map, a, "n", fo_value_int((int64_t)g->serial));
    if (!ok)
        fo_bench_die("out of memory");
    memset(c, 0, sizeof(*c));
    c->command.action = FO_CREATE;
    c->command.props = props;
    c->created_id = fo_key_from_u64(id);
    if (g->nids == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        if (!(g->ids = realloc(g->ids, g->cap * sizeof(*g->ids))))
            fo_bench_die("out of memory");
    }
    g->ids[g->nids++] = id;
}

/* An update of `done` and `n` of a random existing item. */
static void gen_update(fo_bench_gen *g, fo_arena *a, fo_completion *c)
{
    uint64_t id = g->ids[fo_bench_rng_below(g, g->nids)];
    bool done = (fo_bench_rng_next(g) & 1) != 0;
    int64_t n = fo_bench_rng_below(g, 1000000);
    fo_value *props = new_map(a, 2);
    fo_key *seg = xalloc(a, sizeof(*seg));

    put(props->h.as.map, a, "done", fo_value_bool(done));
    put(props->h.as.map, a, "n", fo_value_int(n));
    seg[0] = fo_key_from_u64(id);
    memset(c, 0, sizeof(*c));
    c->command.action = FO_UPDATE;
    c->command.path.seg = seg;
    c->command.path.len = 1;
    c->command.props = props;
}

void fo_bench_gen_batch(fo_bench_gen *g, fo_arena *a, uint64_t from, uint32_t n, bool mixed,
                        fo_batch *out)
{
    fo_completion *items = xalloc(a, (size_t)n * sizeof(*items));
    uint32_t i;

    for (i = 0; i < n; i++) {
        /* Nothing to update yet: the first completion of an empty document creates. */
        bool create = !mixed || g->nids == 0 || (fo_bench_rng_next(g) & 1) == 0;

        if (create)
            gen_create(g, a, &items[i]);
        else
            gen_update(g, a, &items[i]);
    }
    out->from = from;
    out->len = n;
    out->items = items;
}

fo_master *fo_bench_build(uint32_t items, uint32_t seed, fo_bench_gen *g)
{
    fo_master_config cfg;
    fo_master *m;
    fo_arena in, res;
    uint32_t done = 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.ids = FO_IDS_RANDOM;
    if (!(m = fo_master_new(NULL, &cfg)))
        fo_bench_die("out of memory");
    fo_bench_gen_init(g, seed);
    fo_arena_init(&in, 16384);
    fo_arena_init(&res, 16384);
    while (done < items) {
        uint32_t n = items - done < 10 ? items - done : 10;
        fo_batch b;
        fo_apply_result r;
        int rc;

        fo_arena_reset(&in);
        fo_arena_reset(&res);
        fo_bench_gen_batch(g, &in, fo_doc_count(fo_master_doc(m)), n, false, &b);
        if ((rc = fo_master_apply(m, &b, NULL, &res, &r)) != 0)
            fo_bench_die("build: fo_master_apply: %s", fo_strerror(rc));
        if (r.errors_len || r.sync.kind != FO_SYNC_NONE)
            fo_bench_die("build: unexpected errors or sync");
        done += n;
    }
    fo_arena_destroy(&in);
    fo_arena_destroy(&res);
    return m;
}

uint64_t fo_bench_count_nodes(const fo_value *v)
{
    uint64_t n = 1;
    uint32_t i;

    switch (fo_value_type(v)) {
    case FO_MAP: {
        const fo_map *m = v->h.as.map;
        for (i = 0; i < fo_map_len(m); i++)
            if (fo_map_entries(m)[i].key)
                n += fo_bench_count_nodes(&fo_map_entries(m)[i].value);
        return n;
    }
    case FO_ARRAY:
        for (i = 0; i < v->h.len; i++)
            n += fo_bench_count_nodes(&v->h.as.items[i]);
        return n;
    default: return n;
    }
}
