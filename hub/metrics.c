#include "hub/metrics.h"

#include <stdarg.h>
#include <stdio.h>

#include "proto/error.h"

static const double bounds[FO_HIST_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                               0.005,  0.01,    0.025,  0.05,  0.1,
                                               0.25,   0.5,     1.0,    2.5,   10.0};

void fo_hist_add(fo_hist *h, double s)
{
    int i = 0;

    while (i < FO_HIST_BUCKETS && s > bounds[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum += s;
}

double fo_hist_quantile(const fo_hist *now, const fo_hist *old, double q)
{
    uint64_t n = now->n - old->n, cum = 0, c;
    double rank = q * (double)n, lo = 0;

    if (n == 0)
        return 0;
    for (int i = 0; i <= FO_HIST_BUCKETS; i++) {
        c = now->counts[i] - old->counts[i];
        if (c && (double)(cum + c) >= rank) {
            if (i == FO_HIST_BUCKETS) /* +Inf: the highest finite bound is all we know */
                return bounds[FO_HIST_BUCKETS - 1];
            return lo + (bounds[i] - lo) * ((rank - (double)cum) / (double)c);
        }
        cum += c;
        lo = i < FO_HIST_BUCKETS ? bounds[i] : lo;
    }
    return bounds[FO_HIST_BUCKETS - 1];
}

static int put(fo_buf *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return FO_EINVAL;
    return fo_buf_append(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static int counter(fo_buf *out, const char *name, const char *help, uint64_t v)
{
    return put(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
               (unsigned long long)v);
}

static int gauge(fo_buf *out, const char *name, const char *help, uint64_t v)
{
    return put(out, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name,
               (unsigned long long)v);
}

static int hist(fo_buf *out, const char *name, const char *help, const fo_hist *h)
{
    uint64_t cum = 0;
    int i, rc = put(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);

    for (i = 0; i < FO_HIST_BUCKETS && !rc; i++) {
        cum += h->counts[i];
        rc = put(out, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    if (!rc)
        rc = put(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name,
                 (unsigned long long)h->n, name, h->sum, name, (unsigned long long)h->n);
    return rc;
}

int fo_metrics_render(const fo_metrics *m, const fo_gauges *g, fo_buf *out)
{
    int rc = 0;

    rc |= gauge(out, "flushout_connections", "Open WebSocket connections.", g->connections);
    rc |= counter(out, "flushout_connections_total", "WebSocket connections accepted.",
                  m->connections_total);
    rc |= gauge(out, "flushout_hot_models", "Models held in memory.", g->hot_models);
    rc |= gauge(out, "flushout_cluster_hubs",
                "Hubs alive on the cluster, this one included (0: not on --cluster).",
                g->cluster_hubs);
    rc |= gauge(out, "flushout_hot_model_bytes", "Estimated bytes of hot models.",
                g->hot_bytes);
    rc |= gauge(out, "flushout_runner_queued", "Tasks waiting in model runners.",
                g->runner_queued);
    rc |= gauge(out, "flushout_runner_max_depth", "Deepest model runner queue.",
                g->runner_max_depth);
    rc |= gauge(out, "flushout_pending_replies", "Replies waiting for a durable commit.",
                g->pending_acks);
    rc |= gauge(out, "flushout_outbound_bytes", "Bytes queued to connections.",
                g->outbound_bytes);
    rc |= counter(out, "flushout_flushes_total", "Flushes acknowledged.", m->flushes);
    rc |= counter(out, "flushout_flush_errors_total", "Flushes answered with an error.",
                  m->flush_errors);
    rc |= counter(out, "flushout_flush_duplicates_total",
                  "Retried flushes answered without applying them again.", m->duplicates);
    rc |= counter(out, "flushout_commands_total", "Commands applied.", m->commands);
    rc |= counter(out, "flushout_frames_in_total", "Frames received.", m->frames_in);
    rc |= counter(out, "flushout_bytes_in_total", "Frame bytes received.", m->bytes_in);
    rc |= counter(out, "flushout_frames_out_total", "Frames sent.", m->frames_out);
    rc |= counter(out, "flushout_bytes_out_total", "Frame bytes sent.", m->bytes_out);
    rc |= counter(out, "flushout_socket_writes_total", "Packed socket writes.", m->writes);
    rc |= counter(out, "flushout_loop_turns_total", "Event loop turns.", m->loop_turns);
    rc |= counter(out, "flushout_write_turns_total",
                  "Connection and loop turn pairs that had output.", m->write_turns);
    rc |= counter(out, "flushout_writable_requests_total",
                  "Times a connection waited for POLLOUT (a partial write).",
                  m->writable_requests);
    rc |= counter(out, "flushout_partial_writes_total",
                  "Socket writes not taken whole: the rest waits for the socket to drain.",
                  m->partial_writes);
    rc |= counter(out, "flushout_pushes_total", "Push frames queued to subscribers.",
                  m->pushes);
    rc |= counter(out, "flushout_dropped_pushes_total",
                  "Pushes dropped because a subscriber could not keep up.", m->dropped_pushes);
    rc |= counter(out, "flushout_catchups_total",
                  "Catch-up pushes or snapshots sent to slow subscribers.", m->catchups);
    rc |= counter(out, "flushout_follow_records_total",
                  "Log records of hot models seen by the cluster follower.", m->follow_records);
    rc |= counter(out, "flushout_follow_commands_total",
                  "Commands other hubs appended, applied to hot models and pushed.",
                  m->follow_commands);
    rc |= counter(out, "flushout_follow_gaps_total",
                  "Followed records that did not continue their model (it reloaded).",
                  m->follow_gaps);
    rc |= counter(out, "flushout_forwarded_total",
                  "Flushes sent to the hub that owns their model (--cluster).", m->forwarded);
    rc |= counter(out, "flushout_evictions_total", "Models evicted from memory.", m->evictions);
    rc |= counter(out, "flushout_loads_total", "Models loaded from the store.", m->loads);
    rc |= counter(out, "flushout_store_commits_total", "Group commits made durable (those "
                  "queued behind each other share a store transaction).", m->store_commits);
    rc |= counter(out, "flushout_store_transactions_total", "Store transactions run (a "
                  "commit's fsync each, on SQLite).", g->store_transactions);
    rc |= counter(out, "flushout_store_errors_total", "Store operations that failed.",
                  m->store_errors);
    rc |= counter(out, "flushout_bad_frames_total", "Frames answered with bad_frame or "
                  "bad_request.", m->bad_frames);
    rc |= counter(out, "flushout_rule_rejections_total", "Commands rejected by a rule.",
                  m->rule_rejections);
    rc |= counter(out, "flushout_rule_rewrites_total", "Commands whose props a rule replaced.",
                  m->rule_rewrites);
    rc |= counter(out, "flushout_rule_reloads_total", "Rules files reloaded on SIGHUP.",
                  m->rule_reloads);
    rc |= counter(out, "flushout_rule_reload_errors_total", "Rules files that failed to "
                  "reload on SIGHUP (the rules before stayed).", m->rule_reload_errors);
    rc |= counter(out, "flushout_auth_reloads_total", "Token files and JWT keys reloaded on "
                  "SIGHUP.", m->auth_reloads);
    rc |= counter(out, "flushout_auth_reload_errors_total", "Token files or JWT keys that "
                  "failed to reload on SIGHUP (the tokens before stayed).", m->auth_reload_errors);
    rc |= counter(out, "flushout_tls_reloads_total", "TLS certificates and keys reloaded on "
                  "SIGHUP.", m->tls_reloads);
    rc |= counter(out, "flushout_tls_reload_errors_total", "TLS certificates or keys that "
                  "failed to reload on SIGHUP (the certificate before stayed).",
                  m->tls_reload_errors);
    rc |= hist(out, "flushout_ack_latency_seconds",
               "Time from a flush frame's arrival to its ack leaving for the socket.",
               &m->ack_latency);
    rc |= hist(out, "flushout_store_commit_latency_seconds",
               "Time from a group commit's submission to its durability.", &m->commit_latency);
    rc |= hist(out, "flushout_loop_busy_seconds",
               "The loop's lag: each turn's time from poll's return to the next poll "
               "(what an event that became ready meanwhile waited).", &m->loop_busy);
    rc |= gauge(out, "flushout_overloaded", "1 while new flushes are refused because the loop "
                "lags past --overload-lag-ms.", g->overloaded);
    rc |= counter(out, "flushout_overloads_total", "Times the loop lagged past "
                  "--overload-lag-ms (flushes shed).", m->overloads);
    rc |= put(out, "# HELP flushout_refused_upgrades_total WebSocket upgrades refused by a "
                   "limit.\n# TYPE flushout_refused_upgrades_total counter\n"
                   "flushout_refused_upgrades_total{limit=\"max_connections\"} %llu\n"
                   "flushout_refused_upgrades_total{limit=\"conn_rate\"} %llu\n",
              (unsigned long long)m->refused_full, (unsigned long long)m->refused_rate);
    rc |= counter(out, "flushout_idle_pings_total", "Pings sent to idle connections.",
                  m->idle_pings);
    rc |= counter(out, "flushout_idle_closes_total", "Connections closed by --idle-timeout-ms.",
                  m->idle_closes);
    rc |= put(out, "# HELP flushout_errors_total Error replies sent, by code.\n"
                   "# TYPE flushout_errors_total counter\n");
    for (int c = 1; c < FO_ERR_CODES; c++)
        rc |= put(out, "flushout_errors_total{code=\"%s\"} %llu\n", fo_error_code_name(c),
                  (unsigned long long)m->errors[c]);
    return rc ? FO_ENOMEM : 0;
}

int fo_metrics_render_mem(const fo_mem_stats *s, fo_buf *out)
{
    static const char *const kinds[] = {"document", "history", "dedup"};
    int rc = put(out, "# HELP flushout_memory_bytes Estimated hot bytes by kind "
                      "(bounded by --memory-budget).\n# TYPE flushout_memory_bytes gauge\n");

    for (int k = 0; k < 3; k++)
        rc |= put(out, "flushout_memory_bytes{kind=\"%s\"} %llu\n", kinds[k],
                  (unsigned long long)s->bytes[k]);
    rc |= counter(out, "flushout_history_reads_total",
                  "Requests that waited for history read back from the store.",
                  s->history_reads);
    rc |= counter(out, "flushout_doc_drops_total",
                  "Idle subscribed models whose document was dropped to stay in budget.",
                  s->doc_drops);
    rc |= counter(out, "flushout_load_waits_total",
                  "Model loads that waited for one of the few load slots.", s->load_waits);
    rc |= gauge(out, "flushout_loads_inflight_peak",
                "The most model loads in flight at once since the start.", s->loads_peak);
    rc |= gauge(out, "flushout_snapshot_pending_bytes",
                "Snapshot bytes encoded and not yet written by the store.", s->snap_pending);
    rc |= counter(out, "flushout_snapshots_deferred_total",
                  "Snapshots put off to a later flush while a sixteenth of the budget of "
                  "snapshots waited for the store.",
                  s->snap_deferred);
    return rc ? FO_ENOMEM : 0;
}
