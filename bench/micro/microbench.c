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

#include "microbench.h"
#include "proto/error.h"
#include "proto/wire.h"
#include "reference.h"
#include "workload.h"

#ifndef FO_MICRO_SRC_DIR
#define FO_MICRO_SRC_DIR "bench/micro"
#endif

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
        fo_micro_write_json(stdout, &o, r);
    else
        fo_micro_print_table(&o, r);
    if (o.json_out) {
        FILE *f = fopen(o.json_out, "w");
        if (!f)
            fo_bench_die("%s: %s", o.json_out, strerror(errno));
        fo_micro_write_json(f, &o, r);
        if (fclose(f) != 0)
            fo_bench_die("%s: %s", o.json_out, strerror(errno));
    }
    fo_arena_destroy(&in);
    free(batches);
    fo_master_free(base);
    free(r);
    return 0;
}
