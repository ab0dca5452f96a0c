/* workload.h - the micro-benchmark's input: documents of small items and batches of
 * mixed completions, generated from a seed.
 *
 * The generator is mirrored line for line by ref_bench.mjs (mulberry32, the same draw
 * order), so the C core and the reference apply the very same batches to the very same
 * documents. An item is {"title": "item <k>", "done": false, "n": <k>} stored at the root
 * under a random 53-bit decimal ID, proposed by the creating command as a proxy does. */
#ifndef FO_BENCH_WORKLOAD_H
#define FO_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/command.h"
#include "proto/master.h"

typedef struct fo_bench_gen {
    uint32_t rng;    /* mulberry32 state */
    uint64_t serial; /* items created so far: the <k> of the next item is serial + 1 */
    uint64_t *ids;   /* IDs of every item created so far, in order */
    uint32_t nids, cap;
} fo_bench_gen;

void fo_bench_gen_init(fo_bench_gen *g, uint32_t seed);
void fo_bench_gen_destroy(fo_bench_gen *g);
uint32_t fo_bench_rng_next(fo_bench_gen *g);
/* Uniform in [0, n) for n < 2^21 (floor(r * n / 2^32), exact in JS doubles too). */
uint32_t fo_bench_rng_below(fo_bench_gen *g, uint32_t n);

/* One batch of `n` completions starting at count `from`, allocated in `a`. Mixed: each
 * completion is a create at the root (coin flip) or an update of a random existing
 * item's `done` and `n`; otherwise all are creates. Aborts on out-of-memory. */
void fo_bench_gen_batch(fo_bench_gen *g, fo_arena *a, uint64_t from, uint32_t n, bool mixed,
                        fo_batch *out);

/* A master (random IDs) whose document holds `items` items, built through
 * fo_master_apply with batches of 10 creates. `g` is initialised from `seed` and left
 * after the build, ready to generate the workload. Aborts on any failure. */
fo_master *fo_bench_build(uint32_t items, uint32_t seed, fo_bench_gen *g);

/* Maps, arrays and leaves in the tree, the root included. */
uint64_t fo_bench_count_nodes(const fo_value *v);

/* Aborting helpers for the benchmark program. */
void fo_bench_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Seconds on CLOCK_MONOTONIC, or on CLOCK_PROCESS_CPUTIME_ID after fo_bench_use_cpu_time()
 * (for shared machines: time the process spent preempted is not counted). */
double fo_bench_now(void);
void fo_bench_use_cpu_time(void);

#endif
