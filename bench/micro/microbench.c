/* fo-microbench - the core's micro-benchmark (bench/micro/run.sh runs it in full):
 *   master   commands/s of fo_master_apply on batches of 10 mixed completions (half creates
 *            at the root proposing an ID, half updates of an item) against a document of
 *            --items items, on the no-sync path (batch.from == count). Timed twice: with
 *            glibc's default trimming ("cold heap": each round's freed document goes back
 *            to the kernel and is faulted in again) and with trimming off ("warm heap", a
 *            long-running hub; the headline figure);
 *   wire     encode/decode MB/s of a `push` frame (10 completions) and of a `snap` frame
 *            of the whole document, default limits;
 *   decode   instructions and ns per fo_wire_decode of a `flush` request with K=1 and K=10
 *            completions, and per fo_wire_decode_batch of a stored 10-completion batch
 *            (user-space instructions from perf_event_open; "-" where the kernel refuses);
 *   memory   the document's arena bytes per node and against its MessagePack size, after
 *            building it through applies and after fo_doc_compact; RSS delta of the larger;
 *   node     the same master workload on the reference (npm flushout 1.1.1, ref_bench.mjs,
 *            same generator and seed) in the same run, and the ratio C / reference.
 * Every figure is the median of several repetitions, timed with CLOCK_MONOTONIC (or the
 * process CPU time with --cpu-time). Nothing is pinned; `taskset -c N` steadies it. */
#include <errno.h>
#include <linux/perf_event.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto/error.h"
#include "proto/wire.h"
#include "reference.h"
#include "workload.h"

#ifndef FO_MICRO_SRC_DIR
#define FO_MICRO_SRC_DIR "bench/micro"
#endif

#define BATCH_SIZE 10
#define MEM_TARGET 3.0    /* arena bytes <= 3x the document's MessagePack size */
#define SPEED_TARGET 20.0 /* C commands/s >= 20x the reference's */

typedef struct options {
    uint32_t items;   /* items in the master's document */
    uint32_t batches; /* batches of BATCH_SIZE applied per repetition */
    uint32_t reps;
    uint32_t seed;
    double rep_sec; /* minimum timed duration of one repetition */
    int quick, json, no_node, cpu_time;
    const char *only; /* "master", "wire", "decode" or "memory": run that section alone (profiling) */
    const char *json_out;
    const char *script;
} options;

typedef struct stat3 {
    double median, min, max;
} stat3;

typedef struct wire_fig {
    size_t bytes;
    stat3 enc, dec; /* MB/s (10^6 bytes) */
    int limits_raised;
} wire_fig;

typedef struct dec_fig {
    const char *name;
    size_t bytes;
    stat3 ns, insns; /* per operation; insns.median < 0: not measured */
} dec_fig;

typedef struct mem_fig {
    uint32_t items;
    uint64_t nodes;
    size_t msgpack, arena, used, dead, compact_arena, compact_used;
    long rss_delta; /* bytes, -1 when not measured */
} mem_fig;

typedef struct results {
    int have_master, have_wire, have_mem;
    stat3 master;      /* commands/s, warm heap (the headline figure) */
    stat3 master_cold; /* commands/s, glibc's default trimming (fresh-process behaviour) */
    uint64_t master_errors, master_syncs;
    uint64_t final_items;
    wire_fig push, snap;
    int have_dec;
    dec_fig dec[3]; /* flush K=1, flush K=10, stored batch */
    mem_fig mem[2];
    int have_ref;
    stat3 ref; /* commands/s */
    char ref_node[32];
    char ref_note[160];
    double load_start, load_end; /* 1-minute load average: other work skews the figures */
} results;

static double loadavg(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double l = -1;

    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* ---- statistics ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static stat3 summarize(double *v, uint32_t n)
{
    stat3 s;

    qsort(v, n, sizeof(*v), cmp_double);
    s.min = v[0];
    s.max = v[n - 1];
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return s;
}

static double *xcalloc_d(uint32_t n)
{
    double *p = calloc(n, sizeof(double));
    if (!p)
        fo_bench_die("out of memory");
    return p;
}

/* ---- (a) master commands/s -------------------------------------------------------------- */

/* One repetition: rounds of (build a fresh document of `items` items, untimed; apply the
 * prepared batches, timed) until the timed part reaches o->rep_sec. Rebuilding keeps the
 * document near `items` items however fast the core is. Returns commands/s. */
static double master_rep(const options *o, const fo_batch *batches, results *r)
{
    double timed = 0;
    uint64_t cmds = 0;
    fo_arena res;

    fo_arena_init(&res, 16384);
    do {
        fo_bench_gen g;
        fo_master *m = fo_bench_build(o->items, o->seed, &g);
        double t0, t1;
        uint32_t i;

        fo_bench_gen_destroy(&g);
        t0 = fo_bench_now();
        for (i = 0; i < o->batches; i++) {
            fo_apply_result ar;
            int rc;

            /* One result arena reused per batch, as the hub does once the ack is sent. */
            fo_arena_reset(&res);
            if ((rc = fo_master_apply(m, &batches[i], NULL, &res, &ar)) != 0)
                fo_bench_die("fo_master_apply: %s", fo_strerror(rc));
            r->master_errors += ar.errors_len;
            r->master_syncs += ar.sync.kind != FO_SYNC_NONE;
        }
        t1 = fo_bench_now();
        timed += t1 - t0;
        cmds += (uint64_t)o->batches * BATCH_SIZE;
        r->final_items = fo_map_count(fo_value_as_map(fo_doc_root(fo_master_doc(m))));
        fo_master_free(m);
    } while (timed < o->rep_sec);
    fo_arena_destroy(&res);
    return (double)cmds / timed;
}

static void bench_master(const options *o, const fo_batch *batches, results *r, stat3 *out)
{
    double *v = xcalloc_d(o->reps);
    uint32_t i;

    fprintf(stderr, "master: %u reps of >= %.2f s, rounds of %u batches x %u on %u items\n",
            o->reps, o->rep_sec, o->batches, BATCH_SIZE, o->items);
    master_rep(o, batches, r); /* warm-up: caches, page faults of the allocator */
    r->master_errors = r->master_syncs = 0;
    for (i = 0; i < o->reps; i++)
        v[i] = master_rep(o, batches, r);
    *out = summarize(v, o->reps);
    r->have_master = 1;
    free(v);
}

/* ---- (b) wire MB/s ---------------------------------------------------------------------- */

typedef struct wire_ctx {
    const fo_msg *msg;
    fo_buf buf;
    const char *data;
    size_t len;
    fo_wire_limits lim;
    fo_arena arena;
} wire_ctx;

static void wire_encode_once(wire_ctx *c)
{
    int rc;

    c->buf.len = 0;
    if ((rc = fo_wire_encode(c->msg, &c->buf)) != 0)
        fo_bench_die("fo_wire_encode: %s", fo_strerror(rc));
}

static int try_decode(wire_ctx *c, fo_msg *out, fo_err_info *err)
{
    fo_arena_reset(&c->arena);
    return fo_wire_decode(c->data, c->len, &c->lim, &c->arena, out, err);
}

static void wire_decode_once(wire_ctx *c)
{
    fo_msg out;
    fo_err_info err;
    int rc;

    if ((rc = try_decode(c, &out, &err)) != 0)
        fo_bench_die("fo_wire_decode: %s at %s: %s", fo_strerror(rc), err.path, err.msg);
}

/* The decoded frame must say what was encoded. */
static void check_decoded(const fo_msg *in, const fo_msg *out)
{
    bool same = out->type == in->type;

    if (same && in->type == FO_MSG_PUSH)
        same = out->batch.from == in->batch.from && out->batch.len == in->batch.len;
    if (same && in->type == FO_MSG_SNAP)
        same = out->snapshot.command_count == in->snapshot.command_count &&
               fo_value_eq(out->snapshot.document, in->snapshot.document);
    if (!same)
        fo_bench_die("%s frame: decoded message differs from the encoded one",
                     fo_msg_type_name(in->type));
}

/* Runs one operation for at least `sec` seconds; returns MB/s. */
static double wire_rep(wire_ctx *c, int decode, double sec)
{
    double t0 = fo_bench_now(), t = t0;
    uint64_t n = 0;

    while (t - t0 < sec) {
        uint32_t k;
        for (k = 0; k < 16; k++) {
            if (decode)
                wire_decode_once(c);
            else
                wire_encode_once(c);
        }
        n += 16;
        t = fo_bench_now();
    }
    return (double)n * (double)c->len / (t - t0) / 1e6;
}

static void bench_wire_msg(const options *o, const fo_msg *msg, wire_fig *f)
{
    wire_ctx c;
    double *enc = xcalloc_d(o->reps), *dec = xcalloc_d(o->reps);
    fo_msg out;
    fo_err_info err;
    uint32_t i;
    int rc;

    memset(&c, 0, sizeof(c));
    c.msg = msg;
    fo_buf_init(&c.buf, 0);
    fo_arena_init(&c.arena, 65536);
    fo_wire_limits_default(&c.lim);
    wire_encode_once(&c);
    c.data = fo_buf_data(&c.buf);
    c.len = c.buf.len;
    f->bytes = c.len;
    /* Decoding reads c.data while encoding rewrites c.buf: decode from a private copy. */
    if (!(c.data = malloc(c.len)))
        fo_bench_die("out of memory");
    memcpy((char *)c.data, fo_buf_data(&c.buf), c.len);
    /* A document too large for the default limits (--items above 100k) is still measured,
     * with limits wide enough for it; the output flags it. */
    if ((rc = try_decode(&c, &out, &err)) == FO_ELIMIT) {
        c.lim.max_frame = c.len;
        c.lim.max_elems = o->items + 1024;
        c.lim.max_total = UINT32_MAX;
        f->limits_raised = 1;
        rc = try_decode(&c, &out, &err);
    }
    if (rc != 0)
        fo_bench_die("fo_wire_decode: %s at %s: %s", fo_strerror(rc), err.path, err.msg);
    check_decoded(msg, &out);
    for (i = 0; i < o->reps; i++) {
        enc[i] = wire_rep(&c, 0, o->rep_sec);
        dec[i] = wire_rep(&c, 1, o->rep_sec);
    }
    f->enc = summarize(enc, o->reps);
    f->dec = summarize(dec, o->reps);
    free((char *)c.data);
    free(enc);
    free(dec);
    fo_buf_destroy(&c.buf);
    fo_arena_destroy(&c.arena);
}

static void bench_wire(const options *o, fo_master *base, const fo_batch *first, results *r)
{
    fo_msg m;

    fprintf(stderr, "wire: push and snap frames, %u reps of %.2f s each way\n", o->reps,
            o->rep_sec);
    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_PUSH;
    m.model = "bench.items";
    m.model_len = (uint32_t)strlen(m.model);
    m.batch = *first;
    bench_wire_msg(o, &m, &r->push);
    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_SNAP;
    m.model = "bench.items";
    m.model_len = (uint32_t)strlen(m.model);
    m.snapshot = fo_master_snapshot(base);
    bench_wire_msg(o, &m, &r->snap);
    r->have_wire = 1;
}

/* ---- (b2) request decode: instructions and ns per operation ----------------------------- */

/* A user-space instruction counter for this thread, or -1 when perf events are refused
 * (perf_event_paranoid, seccomp). */
static int insn_counter_open(void)
{
    struct perf_event_attr pa;

    memset(&pa, 0, sizeof(pa));
    pa.type = PERF_TYPE_HARDWARE;
    pa.size = sizeof(pa);
    pa.config = PERF_COUNT_HW_INSTRUCTIONS;
    pa.disabled = 1;
    pa.exclude_kernel = 1;
    pa.exclude_hv = 1;
    return (int)syscall(SYS_perf_event_open, &pa, 0, -1, -1, 0);
}

static double insn_read(int fd)
{
    uint64_t v = 0;

    if (fd < 0 || read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
        return -1;
    return (double)v;
}

/* One decode of c->data: a request frame, or a stored batch when `batch` is set. */
static void dec_once(wire_ctx *c, int batch)
{
    fo_err_info err;
    int rc;

    fo_arena_reset(&c->arena);
    if (batch) {
        fo_batch b;
        rc = fo_wire_decode_batch(c->data, c->len, &c->lim, &c->arena, &b, &err);
    } else {
        fo_msg m;
        rc = fo_wire_decode(c->data, c->len, &c->lim, &c->arena, &m, &err);
    }
    if (rc != 0)
        fo_bench_die("decode: %s at %s: %s", fo_strerror(rc), err.path, err.msg);
}

#define DEC_OPS 4096

/* noinline: bench/micro/decode_insns.sh dumps a callgrind profile per call. */
__attribute__((noinline)) static void bench_decode_one(const options *o, wire_ctx *c, int batch,
                                                      dec_fig *f)
{
    double *ns = xcalloc_d(o->reps), *in = xcalloc_d(o->reps);
    int fd = insn_counter_open();
    uint32_t i, k;

    f->bytes = c->len;
    for (k = 0; k < DEC_OPS; k++) /* warm-up: the arena's chunk, caches */
        dec_once(c, batch);
    for (i = 0; i < o->reps; i++) {
        double t0, t1, i0, i1;

        if (fd >= 0) {
            ioctl(fd, PERF_EVENT_IOC_RESET, 0);
            ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
        }
        i0 = insn_read(fd);
        t0 = fo_bench_now();
        for (k = 0; k < DEC_OPS; k++)
            dec_once(c, batch);
        t1 = fo_bench_now();
        i1 = insn_read(fd);
        ns[i] = (t1 - t0) * 1e9 / DEC_OPS;
        in[i] = i0 < 0 || i1 < 0 ? -1 : (i1 - i0) / DEC_OPS;
    }
    if (fd >= 0)
        close(fd);
    f->ns = summarize(ns, o->reps);
    f->insns = summarize(in, o->reps);
    free(ns);
    free(in);
}

/* `flush` requests as a client sends them (rid, model, seq, batch of K completions taken
 * from the workload), then the 10-completion batch alone, as the hub's store keeps it. */
static void bench_decode(const options *o, const fo_batch *first, results *r)
{
    static const uint32_t ks[2] = {1, BATCH_SIZE};
    wire_ctx c;
    uint32_t i;

    fprintf(stderr, "decode: %u reps of %u decodes\n", o->reps, DEC_OPS);
    memset(&c, 0, sizeof(c));
    fo_buf_init(&c.buf, 0);
    fo_arena_init(&c.arena, 65536);
    fo_wire_limits_default(&c.lim);
    for (i = 0; i < 3; i++) {
        fo_msg m;
        int rc;

        c.buf.len = 0;
        if (i < 2) {
            memset(&m, 0, sizeof(m));
            m.type = FO_MSG_FLUSH;
            m.has_rid = true;
            m.rid = 4242;
            m.model = "bench.items";
            m.model_len = (uint32_t)strlen(m.model);
            m.seq = 1234;
            m.batch = *first;
            m.batch.len = ks[i] < first->len ? ks[i] : first->len;
            rc = fo_wire_encode(&m, &c.buf);
        } else {
            rc = fo_wire_encode_batch(first, &c.buf);
        }
        if (rc != 0)
            fo_bench_die("encode: %s", fo_strerror(rc));
        c.data = fo_buf_data(&c.buf);
        c.len = c.buf.len;
        r->dec[i].name = i == 0 ? "flush request K=1" : i == 1 ? "flush request K=10"
                                                               : "stored batch K=10";
        bench_decode_one(o, &c, i == 2, &r->dec[i]);
    }
    r->have_dec = 1;
    fo_buf_destroy(&c.buf);
    fo_arena_destroy(&c.arena);
}

/* ---- (c) memory ------------------------------------------------------------------------- */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = -1;

    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

static void bench_memory(uint32_t items, uint32_t seed, int with_rss, mem_fig *f)
{
    long rss0;
    fo_bench_gen g;
    fo_master *m;
    fo_doc *d;
    fo_doc_stats st;
    fo_buf b;
    int rc;

    fprintf(stderr, "memory: %u items\n", items);
    /* Hand the heap's free pages back first, so that the delta is the document's. */
    malloc_trim(0);
    rss0 = with_rss ? rss_bytes() : -1;
    m = fo_bench_build(items, seed, &g);
    d = fo_master_doc(m);
    fo_bench_gen_destroy(&g);
    f->items = items;
    f->rss_delta = with_rss && rss0 >= 0 ? rss_bytes() - rss0 : -1;
    fo_doc_stats_get(d, &st);
    f->arena = st.arena_bytes;
    f->used = st.used_bytes;
    f->dead = st.dead_bytes;
    f->nodes = fo_bench_count_nodes(fo_doc_root(d));
    fo_buf_init(&b, 0);
    if ((rc = fo_wire_encode_value(fo_doc_root(d), &b)) != 0)
        fo_bench_die("fo_wire_encode_value: %s", fo_strerror(rc));
    f->msgpack = b.len;
    fo_buf_destroy(&b);
    if ((rc = fo_doc_compact(d)) != 0)
        fo_bench_die("fo_doc_compact: %s", fo_strerror(rc));
    fo_doc_stats_get(d, &st);
    f->compact_arena = st.arena_bytes;
    f->compact_used = st.used_bytes;
    fo_master_free(m);
}

/* ---- (d) the reference, in node (reference.c) ------------------------------------------ */

static void run_reference(const options *o, results *r)
{
    fo_bench_ref_args a;
    fo_bench_ref_result res;

    memset(&a, 0, sizeof(a));
    a.script = o->script;
    a.items = o->items;
    a.batches = o->batches;
    a.reps = o->reps;
    a.seed = o->seed;
    a.min_ms = (uint32_t)(o->rep_sec * 1000);
    a.cpu_time = o->cpu_time;
    fprintf(stderr, "node: reference master, %u reps\n", o->reps);
    fo_bench_ref_run(&a, &res);
    r->have_ref = res.ok;
    r->ref.median = res.median;
    r->ref.min = res.min;
    r->ref.max = res.max;
    memcpy(r->ref_node, res.node, sizeof(r->ref_node));
    memcpy(r->ref_note, res.note, sizeof(r->ref_note));
}

/* ---- output ----------------------------------------------------------------------------- */

static double mem_ratio(size_t arena, size_t msgpack)
{
    return msgpack ? (double)arena / (double)msgpack : 0;
}

static void json_stat(FILE *f, const char *name, stat3 s, const char *sep)
{
    fprintf(f, "\"%s\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}%s", name, s.median, s.min,
            s.max, sep);
}

static void json_wire(FILE *f, const char *name, const wire_fig *w, const char *sep)
{
    fprintf(f, "    \"%s\": {\"frame_bytes\": %zu, \"limits_raised\": %s, ", name, w->bytes,
            w->limits_raised ? "true" : "false");
    json_stat(f, "encode_mb_per_sec", w->enc, ", ");
    json_stat(f, "decode_mb_per_sec", w->dec, "");
    fprintf(f, "}%s\n", sep);
}

static void write_json(FILE *f, const options *o, const results *r)
{
    double ratio = r->have_ref && r->have_master ? r->master.median / r->ref.median : 0;
    double worst = 0;
    uint32_t i;

    fprintf(f,
            "{\n  \"config\": {\"items\": %u, \"batch_size\": %u, \"batches_per_rep\": %u, "
            "\"reps\": %u, \"rep_sec\": %.2f, \"seed\": %u, \"quick\": %s, \"clock\": \"%s\"},\n",
            o->items, BATCH_SIZE, o->batches, o->reps, o->rep_sec, o->seed,
            o->quick ? "true" : "false", o->cpu_time ? "process_cputime" : "monotonic");
    fprintf(f, "  \"loadavg\": {\"start\": %.2f, \"end\": %.2f, \"cpus\": %ld},\n", r->load_start,
            r->load_end, sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(f, "  \"master\": ");
    if (r->have_master) {
        fprintf(f, "{\"commands_per_sec\": %.1f, ", r->master.median);
        json_stat(f, "commands_per_sec_stats", r->master, ", ");
        json_stat(f, "cold_heap_commands_per_sec_stats", r->master_cold, ", ");
        fprintf(f, "\"errors\": %llu, \"syncs\": %llu, \"items_after_round\": %llu},\n",
                (unsigned long long)r->master_errors, (unsigned long long)r->master_syncs,
                (unsigned long long)r->final_items);
    } else {
        fprintf(f, "null,\n");
    }
    fprintf(f, "  \"wire\": ");
    if (r->have_wire) {
        fprintf(f, "{\n");
        json_wire(f, "push", &r->push, ",");
        json_wire(f, "snap", &r->snap, "");
        fprintf(f, "  },\n");
    } else {
        fprintf(f, "null,\n");
    }
    fprintf(f, "  \"decode\": ");
    if (r->have_dec) {
        fprintf(f, "[\n");
        for (i = 0; i < 3; i++) {
            fprintf(f, "    {\"name\": \"%s\", \"frame_bytes\": %zu, ", r->dec[i].name,
                    r->dec[i].bytes);
            json_stat(f, "ns_per_op", r->dec[i].ns, ", ");
            json_stat(f, "instructions_per_op", r->dec[i].insns, "");
            fprintf(f, "}%s\n", i < 2 ? "," : "");
        }
        fprintf(f, "  ],\n");
    } else {
        fprintf(f, "null,\n");
    }
    fprintf(f, "  \"memory\": ");
    if (r->have_mem) {
        fprintf(f, "[\n");
        for (i = 0; i < 2; i++) {
            const mem_fig *m = &r->mem[i];
            double ra = mem_ratio(m->arena, m->msgpack);
            double rc = mem_ratio(m->compact_arena, m->msgpack);

            worst = ra > worst ? ra : worst;
            fprintf(f,
                    "    {\"items\": %u, \"nodes\": %llu, \"msgpack_bytes\": %zu, "
                    "\"arena_bytes\": %zu, \"used_bytes\": %zu, \"dead_bytes\": %zu, "
                    "\"bytes_per_node\": %.2f, \"ratio_to_msgpack\": %.3f, "
                    "\"compacted_arena_bytes\": %zu, \"compacted_used_bytes\": %zu, "
                    "\"compacted_bytes_per_node\": %.2f, \"compacted_ratio_to_msgpack\": %.3f, "
                    "\"rss_delta_bytes\": %ld}%s\n",
                    m->items, (unsigned long long)m->nodes, m->msgpack, m->arena, m->used, m->dead,
                    (double)m->arena / (double)m->nodes, ra, m->compact_arena, m->compact_used,
                    (double)m->compact_arena / (double)m->nodes, rc, m->rss_delta,
                    i == 0 ? "," : "");
        }
        fprintf(f, "  ],\n");
    } else {
        fprintf(f, "null,\n");
    }
    fprintf(f, "  \"reference\": ");
    if (r->have_ref) {
        fprintf(f,
                "{\"impl\": \"flushout 1.1.1 (npm)\", \"node\": \"%s\", \"commands_per_sec\": "
                "%.1f, ",
                r->ref_node, r->ref.median);
        json_stat(f, "commands_per_sec_stats", r->ref, "},\n");
    } else {
        fprintf(f, "null,\n");
    }
    if (ratio > 0)
        fprintf(f,
                "  \"ratio_c_over_reference\": %.2f,\n  \"ratio_c_cold_heap_over_reference\": "
                "%.2f,\n",
                ratio, r->master_cold.median / r->ref.median);
    else
        fprintf(f, "  \"ratio_c_over_reference\": null,\n");
    fprintf(f,
            "  \"targets\": {\"memory_ratio_max\": %.1f, \"memory_ok\": %s, "
            "\"speedup_min\": %.1f, \"speedup_ok\": %s}\n}\n",
            MEM_TARGET,
            !r->have_mem          ? "null"
            : worst <= MEM_TARGET ? "true"
                                  : "false",
            SPEED_TARGET,
            ratio <= 0              ? "null"
            : ratio >= SPEED_TARGET ? "true"
                                    : "false");
}

static void row(const char *name, const char *unit, stat3 s, const char *note)
{
    printf("  %-30s %14.0f %14.0f %14.0f  %-6s %s\n", name, s.median, s.min, s.max, unit, note);
}

static void print_speed(const options *o, const results *r)
{
    char name[64], note[128];

    printf("fo-microbench: %u items, rounds of %u batches x %u, %u reps of >= %.2f s%s\n", o->items,
           o->batches, BATCH_SIZE, o->reps, o->rep_sec, o->cpu_time ? " (CPU time)" : "");
    if (r->load_start > 0.5 || r->load_end > 1.5)
        printf("  warning: load average %.2f at start, %.2f at end on %ld CPUs: other work "
               "skews these figures\n",
               r->load_start, r->load_end, sysconf(_SC_NPROCESSORS_ONLN));
    printf("  %-30s %14s %14s %14s  %-6s\n", "", "median", "min", "max", "unit");
    if (r->have_master) {
        snprintf(note, sizeof(note), "%llu errors, %llu syncs, %llu items after a round",
                 (unsigned long long)r->master_errors, (unsigned long long)r->master_syncs,
                 (unsigned long long)r->final_items);
        row("master apply (C, warm heap)", "cmd/s", r->master, note);
        row("master apply (C, cold heap)", "cmd/s", r->master_cold,
            "glibc trims between rounds: page faults");
    }
    if (r->have_ref) {
        snprintf(note, sizeof(note), "node %.31s %.80s", r->ref_node, r->ref_note);
        row("master apply (flushout 1.1.1)", "cmd/s", r->ref, note);
    }
    if (r->have_wire) {
        snprintf(name, sizeof(name), "wire push encode (%zu B)", r->push.bytes);
        row(name, "MB/s", r->push.enc, "");
        row("wire push decode", "MB/s", r->push.dec, "");
        snprintf(name, sizeof(name), "wire snap encode (%zu B)", r->snap.bytes);
        row(name, "MB/s", r->snap.enc, r->snap.limits_raised ? "limits raised to fit" : "");
        row("wire snap decode", "MB/s", r->snap.dec, "");
    }
    for (int i = 0; r->have_dec && i < 3; i++) {
        const dec_fig *d = &r->dec[i];
        snprintf(name, sizeof(name), "decode %s (%zu B)", d->name, d->bytes);
        row(name, "ns/op", d->ns, "");
        if (d->insns.median >= 0)
            row("  instructions", "ins/op", d->insns, "user space, perf_event_open");
        else
            printf("  %-30s %14s  (perf_event_open refused)\n", "  instructions", "-");
    }
}

static void print_table(const options *o, const results *r)
{
    uint32_t i;

    print_speed(o, r);
    if (r->have_mem) {
        printf("\n  %-9s %9s %11s %11s %7s %7s %11s %7s %7s %10s\n", "memory", "nodes", "msgpack B",
               "arena B", "B/node", "ratio", "compact B", "B/node", "ratio", "RSS delta");
        for (i = 0; i < 2; i++) {
            const mem_fig *m = &r->mem[i];
            char rss[24] = "-";

            if (m->rss_delta >= 0)
                snprintf(rss, sizeof(rss), "%.1f MB", (double)m->rss_delta / 1e6);
            printf("  %-9u %9llu %11zu %11zu %7.1f %6.2fx %11zu %7.1f %6.2fx %10s\n", m->items,
                   (unsigned long long)m->nodes, m->msgpack, m->arena,
                   (double)m->arena / (double)m->nodes, mem_ratio(m->arena, m->msgpack),
                   m->compact_arena, (double)m->compact_arena / (double)m->nodes,
                   mem_ratio(m->compact_arena, m->msgpack), rss);
        }
    }
    printf("\n");
    for (i = 0; r->have_mem && i < 2; i++) {
        double ra = mem_ratio(r->mem[i].arena, r->mem[i].msgpack);
        printf("  memory, %u items: %.2fx the msgpack size (target <= %.0fx): %s\n",
               r->mem[i].items, ra, MEM_TARGET, ra <= MEM_TARGET ? "ok" : "MISSED");
    }
    if (r->have_ref && r->have_master) {
        double ratio = r->master.median / r->ref.median;
        printf("  speed, C / reference: %.1fx (target >= %.0fx): %s; cold heap %.1fx\n", ratio,
               SPEED_TARGET, ratio >= SPEED_TARGET ? "ok" : "MISSED",
               r->master_cold.median / r->ref.median);
    } else if (r->have_master) {
        printf("  speed, C / reference: not measured (%s)\n",
               r->ref_note[0] ? r->ref_note : "skipped");
    }
}

/* ---- main ------------------------------------------------------------------------------- */

static int want(const options *o, const char *section)
{
    return !o->only || !strcmp(o->only, section);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fo-microbench [--quick] [--json] [--json-out FILE] [--items N]\n"
            "                     [--batches N] [--reps N] [--rep-ms N] [--seed N] [--no-node]\n"
            "                     [--node-script PATH] [--only master|wire|decode|memory] [--cpu-time]\n"
            "  --quick        fewer repetitions (about 10 s in all)\n"
            "  --json         print one JSON object instead of the table\n"
            "  --json-out F   also write the JSON object to F\n"
            "  --items N      items in the master's document (default 10000); memory is\n"
            "                 measured at N and 10 N items\n"
            "  --batches N    batches of 10 applied per round (default 1000)\n"
            "  --reps N       repetitions (default 11, --quick 3)\n"
            "  --rep-ms N     minimum timed milliseconds of a repetition (default 200,\n"
            "                 --quick 50); 0 makes a master repetition exactly one round\n"
            "  --no-node      skip the reference (npm flushout 1.1.1 in node)\n"
            "  --cpu-time     time with process CPU time instead of CLOCK_MONOTONIC (both\n"
            "                 sides), for a machine shared with other work\n"
            "  --node-script  default %s/ref_bench.mjs\n"
            "  --only S       run section S alone (master, wire, decode or memory), for profiling;\n"
            "                 with master, the reference runs too unless --no-node\n",
            FO_MICRO_SRC_DIR);
}

static uint32_t parse_num(const char *s, const char *opt, unsigned long min)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = s ? strtoul(s, &end, 10) : 0;
    if (!s || errno || *end || v < min || v > UINT32_MAX / 16)
        fo_bench_die("%s needs an integer >= %lu", opt, min);
    return (uint32_t)v;
}

static void parse_args(int argc, char **argv, options *o)
{
    static char script[1024];
    uint32_t reps = 0;
    int i, rep_ms = -1;

    memset(o, 0, sizeof(*o));
    o->items = 10000;
    o->batches = 1000;
    o->seed = 20240601u;
    snprintf(script, sizeof(script), "%s/ref_bench.mjs", FO_MICRO_SRC_DIR);
    o->script = script;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(a, "--quick"))
            o->quick = 1;
        else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--no-node"))
            o->no_node = 1;
        else if (!strcmp(a, "--cpu-time"))
            o->cpu_time = 1;
        else if (!strcmp(a, "--json-out") && next)
            o->json_out = argv[++i];
        else if (!strcmp(a, "--only") && next)
            o->only = argv[++i];
        else if (!strcmp(a, "--node-script") && next)
            o->script = argv[++i];
        else if (!strcmp(a, "--items"))
            o->items = parse_num(argv[++i], a, 1);
        else if (!strcmp(a, "--batches"))
            o->batches = parse_num(argv[++i], a, 1);
        else if (!strcmp(a, "--reps"))
            reps = parse_num(argv[++i], a, 1);
        else if (!strcmp(a, "--seed"))
            o->seed = parse_num(argv[++i], a, 1);
        else if (!strcmp(a, "--rep-ms"))
            rep_ms = (int)parse_num(argv[++i], a, 0);
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("fo-microbench %s\n", FO_VERSION);
            exit(0);
        } else {
            usage(stderr);
            exit(2);
        }
    }
    o->reps = reps ? reps : o->quick ? 3 : 11;
    o->rep_sec = rep_ms >= 0 ? rep_ms / 1000.0 : o->quick ? 0.05 : 0.2;
    if (o->cpu_time)
        fo_bench_use_cpu_time();
}

int main(int argc, char **argv)
{
    options o;
    results *r = calloc(1, sizeof(*r));
    fo_bench_gen g;
    fo_master *base;
    fo_batch *batches;
    fo_arena in;
    uint64_t count;
    uint32_t i;

    if (!r)
        fo_bench_die("out of memory");
    parse_args(argc, argv, &o);
    r->load_start = loadavg();
    /* The workload: the batches that follow the base build of `items` creates. */
    base = fo_bench_build(o.items, o.seed, &g);
    count = fo_doc_count(fo_master_doc(base));
    if (!(batches = calloc(o.batches, sizeof(*batches))))
        fo_bench_die("out of memory");
    fo_arena_init(&in, 1 << 20);
    for (i = 0; i < o.batches; i++)
        fo_bench_gen_batch(&g, &in, count + (uint64_t)i * BATCH_SIZE, BATCH_SIZE, 1, &batches[i]);
    fo_bench_gen_destroy(&g);

    /* Cold heap first, while glibc's thresholds are still the defaults: every round frees
     * its document, glibc gives the pages back, and the next round faults them in again.
     * Then a warm heap, as in a long-running hub: freed memory stays in the process. */
    if (want(&o, "master"))
        bench_master(&o, batches, r, &r->master_cold);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    if (want(&o, "master"))
        bench_master(&o, batches, r, &r->master);
    if (want(&o, "wire"))
        bench_wire(&o, base, &batches[0], r);
    if (want(&o, "decode"))
        bench_decode(&o, &batches[0], r);
    if (want(&o, "memory")) {
        bench_memory(o.items * 10, o.seed, 1, &r->mem[1]);
        bench_memory(o.items, o.seed, 0, &r->mem[0]);
        r->have_mem = 1;
    }
    if (!o.no_node && want(&o, "master"))
        run_reference(&o, r);
    r->load_end = loadavg();

    if (o.json)
        write_json(stdout, &o, r);
    else
        print_table(&o, r);
    if (o.json_out) {
        FILE *f = fopen(o.json_out, "w");
        if (!f)
            fo_bench_die("%s: %s", o.json_out, strerror(errno));
        write_json(f, &o, r);
        if (fclose(f) != 0)
            fo_bench_die("%s: %s", o.json_out, strerror(errno));
    }
    fo_arena_destroy(&in);
    free(batches);
    fo_master_free(base);
    free(r);
    return 0;
}
