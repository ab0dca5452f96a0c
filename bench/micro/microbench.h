/* microbench.h - fo-microbench's options and figures, shared by the measuring part
 * (microbench.c) and the report (report.c: the JSON object and the table). */
#ifndef FO_MICROBENCH_H
#define FO_MICROBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
    /* "master", "wire", "decode" or "memory": run that section alone (profiling) */
    const char *only;
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

/* The figures as one JSON object (--json, --json-out). */
void fo_micro_write_json(FILE *f, const options *o, const results *r);
/* The figures as the table run.sh prints, with the targets' verdicts. */
void fo_micro_print_table(const options *o, const results *r);

#endif
