/* reference.h - runs ref_bench.mjs (the master workload on npm flushout 1.1.1) in node
 * through popen and reads back its one-line JSON result. */
#ifndef FO_BENCH_REFERENCE_H
#define FO_BENCH_REFERENCE_H

#include <stdint.h>

typedef struct fo_bench_ref_args {
    const char *script; /* path to ref_bench.mjs; its folder holds package-lock.json */
    uint32_t items, batches, reps, seed;
    uint32_t min_ms; /* minimum timed milliseconds of a repetition */
    int cpu_time;    /* time with the process CPU time instead of the monotonic clock */
} fo_bench_ref_args;

typedef struct fo_bench_ref_result {
    int ok;                  /* a figure was read */
    double median, min, max; /* commands/s */
    char node[32];           /* node's version */
    char note[160];          /* why there is no figure, or what looked wrong */
} fo_bench_ref_result;

/* Runs the reference, installing it first (`npm ci` in the script's folder) when its
 * node_modules is missing. Never fails the program: without node, npm or the registry,
 * *out has ok = 0 and a note. Progress and node's stderr go to stderr. */
void fo_bench_ref_run(const fo_bench_ref_args *a, fo_bench_ref_result *out);

#endif
