/* The output of flushout-bench: the progress line, the final table and the JSON. Rates
 * are over the measured window only (from the end of the warm-up to the end of
 * --duration); latencies are of replies received in that window. */
#include <string.h>

#include "bench/loadgen/lg.h"

void fo_lg_counters_take(fo_lg *lg, fo_lg_counters *c)
{
    *c = lg->total;
    c->frames_in = lg->ws.frames_in;
    c->frames_out = lg->ws.frames_out;
    c->bytes_in = lg->ws.bytes_in;
    c->bytes_out = lg->ws.bytes_out;
    c->writes = lg->ws.writes;
    c->cpu_ns = fo_proc_self_cpu_ns();
    c->at_ns = uv_hrtime();
}

static const char *phase_name(fo_lg_phase p)
{
    switch (p) {
    case FO_LG_CONNECT: return "connect";
    case FO_LG_WARMUP: return "warmup";
    case FO_LG_MEASURE: return "measure";
    case FO_LG_DRAIN: return "drain";
    case FO_LG_CLOSE: return "close";
    case FO_LG_DONE: return "done";
    }
    return "?";
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

void fo_lg_report_progress(fo_lg *lg)
{
    fo_lg_counters now;
    char backlog[40] = "";
    double dt;

    if (lg->backlog)
        snprintf(backlog, sizeof(backlog), " (+%llu due)", (unsigned long long)lg->backlog);
    fo_lg_counters_take(lg, &now);
    dt = lg->last_sec.at_ns ? (double)(now.at_ns - lg->last_sec.at_ns) / 1e9 : 1.0;
    if (dt <= 0)
        dt = 1;
    fprintf(stderr,
            "[%6.1fs %-7s] conns %u/%u  flushes/s %.0f  cmds/s %.0f  pushes/s %.0f  "
            "ack p50 %.3f p99 %.3f ms  inflight %llu%s  errors %llu\n",
            (double)(now.at_ns - lg->t_phase) / 1e9, phase_name(lg->phase), lg->ready, lg->nconns,
            (double)(now.acks - lg->last_sec.acks) / dt,
            (double)(now.commands - lg->last_sec.commands) / dt,
            (double)(now.pushes - lg->last_sec.pushes) / dt,
            ms(fo_hist_percentile(&lg->ack_sec, 50)), ms(fo_hist_percentile(&lg->ack_sec, 99)),
            (unsigned long long)lg->inflight, backlog, (unsigned long long)now.errors);
    lg->last_sec = now;
}

/* Everything the two outputs print, computed once. */
typedef struct results {
    double secs;
    double flushes, commands, pushes, frames_in, frames_out, bytes_in, bytes_out, writes;
    double bench_cpu;
    double hub_cpu;      /* -1 when unknown */
    double rss_per_conn; /* bytes; -1 when unknown */
    bool hub_metrics;
    double hub_frames_out, hub_frames_in, hub_writes, hub_flushes;
    uint64_t hub_dropped, hub_catchups;
} results;

static void compute(const fo_lg *lg, results *r)
{
    const fo_lg_counters *a = &lg->w0, *b = &lg->w1;
    double s;

    memset(r, 0, sizeof(*r));
    r->secs = s = b->at_ns > a->at_ns ? (double)(b->at_ns - a->at_ns) / 1e9 : 0;
    if (s <= 0)
        s = 1e-9;
    r->flushes = (double)(b->acks - a->acks) / s;
    r->commands = (double)(b->commands - a->commands) / s;
    r->pushes = (double)(b->pushes - a->pushes) / s;
    r->frames_in = (double)(b->frames_in - a->frames_in) / s;
    r->frames_out = (double)(b->frames_out - a->frames_out) / s;
    r->bytes_in = (double)(b->bytes_in - a->bytes_in) / s;
    r->bytes_out = (double)(b->bytes_out - a->bytes_out) / s;
    r->writes = (double)(b->writes - a->writes) / s;
    r->bench_cpu = (double)(b->cpu_ns - a->cpu_ns) / 1e9 / s * 100;
    r->hub_cpu = -1;
    if (lg->p0.ok && lg->p1.ok && lg->p1.at_ns > lg->p0.at_ns)
        r->hub_cpu =
            (double)(lg->p1.cpu_ns - lg->p0.cpu_ns) / (double)(lg->p1.at_ns - lg->p0.at_ns) * 100;
    r->rss_per_conn = -1;
    /* Only meaningful when the connections carry no documents of their own. */
    if ((lg->o.idle || lg->nwriters == 0) && lg->p_base.ok && lg->p1.ok && lg->ready_max)
        r->rss_per_conn =
            ((double)lg->p1.rss_kb - (double)lg->p_base.rss_kb) * 1024.0 / (double)lg->ready_max;
    r->hub_metrics = lg->m0.ok && lg->m1.ok;
    if (r->hub_metrics) {
        r->hub_frames_out = (double)(lg->m1.frames_out - lg->m0.frames_out) / s;
        r->hub_frames_in = (double)(lg->m1.frames_in - lg->m0.frames_in) / s;
        r->hub_writes = (double)(lg->m1.writes - lg->m0.writes) / s;
        r->hub_flushes = (double)(lg->m1.flushes - lg->m0.flushes) / s;
        r->hub_dropped = lg->m1.dropped_pushes - lg->m0.dropped_pushes;
        r->hub_catchups = lg->m1.catchups - lg->m0.catchups;
    }
}

static void lat_line(FILE *f, const char *name, const fo_hist *h)
{
    if (!h->count) {
        fprintf(f, "  %-20s (no samples)\n", name);
        return;
    }
    fprintf(f, "  %-20s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f  (%llu)\n",
            name, ms(fo_hist_percentile(h, 50)), ms(fo_hist_percentile(h, 90)),
            ms(fo_hist_percentile(h, 99)), ms(fo_hist_percentile(h, 99.9)), ms(h->max),
            fo_hist_mean(h) / 1e6, (unsigned long long)h->count);
}

void fo_lg_report_table(const fo_lg *lg, FILE *f)
{
    results r;
    int k, sep = 0;

    compute(lg, &r);
    fprintf(f, "\nflushout-bench: %s, window %.2f s, %s, K=%u, payload %u B, mix %u:%u:%u\n",
            lg->o.url, r.secs, lg->o.rate > 0 ? "open loop" : "closed loop", lg->o.commands,
            lg->o.payload, lg->o.mix[0], lg->o.mix[1], lg->o.mix[2]);
    if (lg->o.rate > 0)
        fprintf(f, "  %-20s %.0f flushes/s\n", "target rate", lg->o.rate);
    fprintf(f, "  %-20s %u ready of %u (%u models; %u writers + %u subscribers per model)\n",
            "connections", lg->ready_max, lg->nconns, lg->o.models, lg->o.writers,
            lg->o.subscribers);
    if (lg->o.nurls > 1) {
        fprintf(f, "  %-20s %u hubs, connections", "hubs", lg->o.nurls);
        for (uint32_t j = 0; j < lg->o.nurls; j++)
            fprintf(f, " %s%u", j ? "/ " : "", lg->url_conns[j]);
        fprintf(f, " (hub process and /metrics: the first, %s)\n", lg->o.urls[0].url);
    }
    fprintf(f, "  %-20s %.1f\n", "flushes/s (acked)", r.flushes);
    fprintf(f, "  %-20s %.1f\n", "commands/s", r.commands);
    fprintf(f, "  %-20s %.1f\n", "pushes delivered/s", r.pushes);
    fprintf(f, "  %-20s out %.1f  in %.1f\n", "frames/s", r.frames_out, r.frames_in);
    fprintf(f, "  %-20s out %.2f  in %.2f MB/s\n", "bytes/s", r.bytes_out / 1e6, r.bytes_in / 1e6);
    fprintf(f, "  %-20s %.1f\n", "socket writes/s", r.writes);
    lat_line(f, "ack latency (ms)", &lg->ack);
    lat_line(f, "push latency (ms)", &lg->push);
    if (lg->o.rate > 0)
        lat_line(f, "send lag (ms)", &lg->lag); /* our own timer's lateness */
    fprintf(f, "  %-20s %llu", "errors", (unsigned long long)lg->total.errors);
    for (k = 0; k < FO_LGE_NKINDS; k++)
        if (lg->errs[k])
            fprintf(f, "%s%s %llu", sep++ ? ", " : "  (", fo_lg_err_name((fo_lg_err_kind)k),
                    (unsigned long long)lg->errs[k]);
    fprintf(f, "%s\n", sep ? ")" : "");
    if (lg->backlog_at_end)
        fprintf(f,
                "  %-20s %llu flushes were due but waiting for their writer's ack (the hub "
                "did not keep up with --rate)\n",
                "backlog at end", (unsigned long long)lg->backlog_at_end);
    if (lg->hub_pid && lg->p1.ok && r.hub_cpu >= 0)
        fprintf(f,
                "  %-20s pid %d  CPU %.1f %%  RSS %llu kB (peak %llu kB, %llu before "
                "connecting)\n",
                "hub process", lg->hub_pid, r.hub_cpu, (unsigned long long)lg->p1.rss_kb,
                (unsigned long long)lg->p1.hwm_kb, (unsigned long long)lg->p_base.rss_kb);
    else
        fprintf(f, "  %-20s %s\n", "hub process",
                lg->hub_pid ? "not sampled (no measured window)"
                            : "unknown (not local, or use --hub-pid)");
    if (r.rss_per_conn >= 0)
        fprintf(f, "  %-20s %.0f bytes per connection\n", "hub RSS growth", r.rss_per_conn);
    if (r.hub_metrics)
        fprintf(f,
                "  %-20s flushes/s %.1f  frames out/s %.1f  in/s %.1f  packed writes/s "
                "%.1f  dropped pushes %llu  catch-ups %llu\n",
                "hub /metrics", r.hub_flushes, r.hub_frames_out, r.hub_frames_in, r.hub_writes,
                (unsigned long long)r.hub_dropped, (unsigned long long)r.hub_catchups);
    fprintf(f, "  %-20s %.1f %%\n", "bench CPU", r.bench_cpu);
}

static void jnum(FILE *f, const char *k, double v, bool *first)
{
    fprintf(f, "%s\"%s\": %.10g", *first ? "" : ", ", k, v);
    *first = false;
}

/* A /metrics counter's delta over the window, only when both scrapes had it. */
static void jdelta(FILE *f, const char *k, const fo_lg *lg, uint32_t bit, uint64_t d, bool *first)
{
    if (lg->m0.have & lg->m1.have & bit)
        jnum(f, k, (double)d, first);
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void jstr_value(FILE *f, const char *v)
{
    fputc('"', f);
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* --url: "url" as given (the whole list), "urls" its items, "connections_by_url". */
static void jurls(FILE *f, const fo_lg *lg)
{
    uint32_t j;

    fprintf(f, ", \"url\": ");
    jstr_value(f, lg->o.url);
    fprintf(f, ", \"urls\": [");
    for (j = 0; j < lg->o.nurls; j++) {
        fputs(j ? ", " : "", f);
        jstr_value(f, lg->o.urls[j].url);
    }
    fprintf(f, "], \"connections_by_url\": [");
    for (j = 0; j < lg->o.nurls; j++)
        fprintf(f, "%s%u", j ? ", " : "", lg->url_conns[j]);
    fputc(']', f);
}

static void jlat(FILE *f, const char *prefix, const fo_hist *h, bool *first)
{
    static const struct {
        const char *name;
        double p;
    } ps[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}};
    char k[64];
    size_t i;

    for (i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        snprintf(k, sizeof(k), "%s_%s_ms", prefix, ps[i].name);
        jnum(f, k, ms(fo_hist_percentile(h, ps[i].p)), first);
    }
    snprintf(k, sizeof(k), "%s_max_ms", prefix);
    jnum(f, k, ms(h->max), first);
    snprintf(k, sizeof(k), "%s_mean_ms", prefix);
    jnum(f, k, fo_hist_mean(h) / 1e6, first);
    snprintf(k, sizeof(k), "%s_samples", prefix);
    jnum(f, k, (double)h->count, first);
}

void fo_lg_report_json(const fo_lg *lg, FILE *f)
{
    bool first = true;
    results r;
    int k;

    compute(lg, &r);
    fputc('{', f);
    jnum(f, "flushes_per_sec", r.flushes, &first);
    jnum(f, "commands_per_sec", r.commands, &first);
    jnum(f, "pushes_per_sec", r.pushes, &first);
    jnum(f, "ack_p50_ms", ms(fo_hist_percentile(&lg->ack, 50)), &first);
    jnum(f, "ack_p99_ms", ms(fo_hist_percentile(&lg->ack, 99)), &first);
    jnum(f, "errors", (double)lg->total.errors, &first);
    jnum(f, "ack_p90_ms", ms(fo_hist_percentile(&lg->ack, 90)), &first);
    jnum(f, "ack_p999_ms", ms(fo_hist_percentile(&lg->ack, 99.9)), &first);
    jnum(f, "ack_max_ms", ms(lg->ack.max), &first);
    jnum(f, "ack_mean_ms", fo_hist_mean(&lg->ack) / 1e6, &first);
    jnum(f, "ack_samples", (double)lg->ack.count, &first);
    jlat(f, "push", &lg->push, &first);
    if (lg->o.rate > 0)
        jlat(f, "send_lag", &lg->lag, &first);
    jnum(f, "frames_out_per_sec", r.frames_out, &first);
    jnum(f, "frames_in_per_sec", r.frames_in, &first);
    jnum(f, "bytes_out_per_sec", r.bytes_out, &first);
    jnum(f, "bytes_in_per_sec", r.bytes_in, &first);
    jnum(f, "socket_writes_per_sec", r.writes, &first);
    jnum(f, "window_s", r.secs, &first);
    jnum(f, "connections", lg->nconns, &first);
    jnum(f, "connections_ready", lg->ready_max, &first);
    jnum(f, "models", lg->o.models, &first);
    jnum(f, "writers_per_model", lg->o.writers, &first);
    jnum(f, "subscribers_per_model", lg->o.subscribers, &first);
    jnum(f, "commands_per_flush", lg->o.commands, &first);
    jnum(f, "payload_bytes", lg->o.payload, &first);
    jnum(f, "target_rate", lg->o.rate, &first);
    jnum(f, "unacked_at_end", (double)lg->unacked_at_end, &first);
    jnum(f, "backlog_at_end", (double)lg->backlog_at_end, &first);
    jnum(f, "pipeline", lg->o.pipeline, &first);
    jnum(f, "catchup_snaps", (double)lg->total.catchup_snaps, &first);
    jnum(f, "bench_cpu_pct", r.bench_cpu, &first);
    jnum(f, "hub_pid", lg->hub_pid, &first);
    if (lg->p1.ok) {
        jnum(f, "hub_cpu_pct", r.hub_cpu, &first);
        jnum(f, "hub_rss_kb", (double)lg->p1.rss_kb, &first);
        jnum(f, "hub_rss_peak_kb", (double)lg->p1.hwm_kb, &first);
    }
    if (lg->p_base.ok)
        jnum(f, "hub_rss_base_kb", (double)lg->p_base.rss_kb, &first);
    if (r.rss_per_conn >= 0)
        jnum(f, "hub_rss_per_conn_bytes", r.rss_per_conn, &first);
    if (r.hub_metrics) {
        jnum(f, "hub_flushes_per_sec", r.hub_flushes, &first);
        jnum(f, "hub_frames_out_per_sec", r.hub_frames_out, &first);
        jnum(f, "hub_frames_in_per_sec", r.hub_frames_in, &first);
        jnum(f, "hub_writes_per_sec", r.hub_writes, &first);
        jnum(f, "hub_dropped_pushes", (double)r.hub_dropped, &first);
        jnum(f, "hub_catchups", (double)r.hub_catchups, &first);
        jdelta(f, "hub_frames_out", lg, FO_HUB_HAVE_FRAMES_OUT,
               lg->m1.frames_out - lg->m0.frames_out, &first);
        jdelta(f, "hub_socket_writes", lg, FO_HUB_HAVE_WRITES, lg->m1.writes - lg->m0.writes,
               &first);
        jdelta(f, "hub_loop_turns", lg, FO_HUB_HAVE_LOOP_TURNS,
               lg->m1.loop_turns - lg->m0.loop_turns, &first);
        jdelta(f, "hub_write_turns", lg, FO_HUB_HAVE_WRITE_TURNS,
               lg->m1.write_turns - lg->m0.write_turns, &first);
        jdelta(f, "hub_writable_requests", lg, FO_HUB_HAVE_WRITABLE_REQUESTS,
               lg->m1.writable_requests - lg->m0.writable_requests, &first);
        jdelta(f, "hub_partial_writes", lg, FO_HUB_HAVE_PARTIAL_WRITES,
               lg->m1.partial_writes - lg->m0.partial_writes, &first);
    }
    if (lg->nsec) { /* ack latency per second of the window: does it grow? */
        uint32_t i;
        fprintf(f, ", \"ack_p50_by_sec_ms\": [");
        for (i = 0; i < lg->nsec; i++)
            fprintf(f, "%s%.4f", i ? ", " : "", ms(lg->sec_p50[i]));
        fprintf(f, "], \"ack_p99_by_sec_ms\": [");
        for (i = 0; i < lg->nsec; i++)
            fprintf(f, "%s%.4f", i ? ", " : "", ms(lg->sec_p99[i]));
        fputc(']', f);
    }
    if (lg->o.max_flushes)
        jnum(f, "writers_done", lg->writers_done, &first);
    fo_lg_storm_report(lg, f);
    jurls(f, lg);
    fprintf(f, ", \"errors_by_kind\": {");
    for (k = 0, first = true; k < FO_LGE_NKINDS; k++)
        jnum(f, fo_lg_err_name((fo_lg_err_kind)k), (double)lg->errs[k], &first);
    fprintf(f, "}, \"mode\": \"%s\"}\n", lg->o.rate > 0 ? "open" : "closed");
}
