/* report.c - fo-microbench's output: the JSON object and the table (microbench.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "microbench.h"

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

void fo_micro_write_json(FILE *f, const options *o, const results *r)
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

void fo_micro_print_table(const options *o, const results *r)
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
