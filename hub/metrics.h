/* metrics.h - the hub's counters and latency histograms, rendered as Prometheus text at
 * GET /metrics. Loop-thread only: plain integers, no atomics. */
#ifndef FO_METRICS_H
#define FO_METRICS_H

#include <stdint.h>

#include "proto/buf.h"
#include "proto/wire.h"

#define FO_HIST_BUCKETS 15

/* A Prometheus histogram with fixed bucket bounds (seconds, from 100 us to 2.5 s). */
typedef struct fo_hist {
    uint64_t counts[FO_HIST_BUCKETS + 1]; /* last: +Inf */
    uint64_t n;
    double sum;
} fo_hist;

void fo_hist_add(fo_hist *h, double seconds);
/* The q-quantile (0..1) of what was added between `old` and `now` (a snapshot taken
 * earlier), in seconds, interpolated inside its bucket as Prometheus's
 * histogram_quantile does; 0 when nothing was added. */
double fo_hist_quantile(const fo_hist *now, const fo_hist *old, double q);

#define FO_ERR_CODES (FO_ERR_INTERNAL + 1) /* index: fo_error_code */

typedef struct fo_metrics {
    uint64_t connections_total;
    uint64_t flushes;          /* acked flushes */
    uint64_t flush_errors;     /* flushes answered with an error */
    uint64_t duplicates;       /* retried flushes answered without applying */
    uint64_t commands;         /* commands applied */
    uint64_t frames_in, bytes_in;
    uint64_t frames_out, bytes_out;
    uint64_t writes;           /* packed socket writes */
    uint64_t loop_turns;       /* libuv loop turns (end-of-turn checks) */
    uint64_t write_turns;      /* (connection, loop turn) pairs that had output */
    uint64_t writable_requests; /* times a connection's socket was polled for POLLOUT */
    uint64_t partial_writes;   /* writes the socket did not take whole (lws holds the rest) */
    uint64_t pushes;           /* push frames queued to subscribers */
    uint64_t dropped_pushes;   /* pushes dropped for slow subscribers */
    uint64_t catchups;         /* catch-up pushes or snaps sent after a drain */
    uint64_t follow_records;   /* --cluster: log records of hot models seen by the follower */
    uint64_t follow_commands;  /* ... commands in them applied (appended by other hubs) */
    uint64_t follow_gaps;      /* ... records that did not continue a model (reloaded) */
    uint64_t forwarded;        /* flushes sent to the hub that owns their model */
    uint64_t evictions;
    uint64_t loads;
    uint64_t store_commits;
    uint64_t store_errors;
    uint64_t bad_frames;       /* bad_frame and bad_request errors sent */
    uint64_t rule_rejections;  /* commands rejected by --interceptors rules */
    uint64_t rule_rewrites;    /* commands whose props a rule replaced */
    uint64_t rule_reloads;     /* SIGHUP reloads of the rules file that took */
    uint64_t rule_reload_errors; /* ... that failed (the old rules stayed) */
    uint64_t auth_reloads;     /* SIGHUP reloads of the token file and JWT keys that took */
    uint64_t auth_reload_errors; /* ... that failed (the old tokens and keys stayed) */
    uint64_t tls_reloads;      /* SIGHUP reloads of the TLS certificate and key that took */
    uint64_t tls_reload_errors; /* ... that failed (the certificate before stayed) */
    fo_hist ack_latency;       /* frame received -> ack queued */
    fo_hist commit_latency;    /* store commit submitted -> durable */
    uint64_t errors[FO_ERR_CODES]; /* error replies, by code (WebSocket and HTTP) */
    /* The loop's busy time per turn (everything but waiting in poll; libuv's idle-time
     * metric): how long an event that arrives may wait for the loop. */
    fo_hist loop_busy;
    uint64_t loop_busy_ns;     /* summed */
    uint64_t loop_busy_max_ns; /* the longest turn since the console's last sample */
    /* limits (limits.h); refusals of requests are in errors[] by code */
    uint64_t overloads;         /* times the hub became overloaded */
    uint64_t refused_full;      /* upgrades refused: --max-connections */
    uint64_t refused_rate;      /* upgrades refused: --conn-rate */
    uint64_t idle_pings;        /* pings sent to idle connections */
    uint64_t idle_closes;       /* connections closed by --idle-timeout-ms */
} fo_metrics;

/* Gauges (and the store's counters) the hub reads when rendering. */
typedef struct fo_gauges {
    uint64_t connections;
    uint64_t hot_models;
    uint64_t hot_bytes;
    uint64_t runner_queued;    /* tasks waiting in all models' runners */
    uint64_t runner_max_depth; /* the deepest runner queue */
    uint64_t pending_acks;     /* replies waiting for a durable commit */
    uint64_t outbound_bytes;   /* bytes queued to connections */
    uint64_t overloaded;       /* 1 while new flushes are shed (limits.h) */
    uint64_t cluster_hubs;     /* --cluster: hubs alive, this one included (0: no cluster) */
    uint64_t store_transactions; /* counter: store transactions run (fo_store_stats) */
} fo_gauges;

/* Appends the Prometheus text. 0 or FO_ENOMEM. */
int fo_metrics_render(const fo_metrics *m, const fo_gauges *g, fo_buf *out);

/* Hot memory under --memory-budget, by kind (model.c keeps it current), and what the
 * budget costs: history read back from the store, idle documents dropped. */
typedef struct fo_mem_stats {
    uint64_t bytes[3];      /* FO_MEM_DOC, FO_MEM_HISTORY, FO_MEM_DEDUP (hub/model.h) */
    uint64_t history_reads; /* requests that waited for history from the store */
    uint64_t doc_drops;     /* idle subscribed models whose document was dropped */
    uint64_t load_waits;    /* model loads that waited for a slot (model.c, FO_MAX_LOADS) */
    uint64_t loads_peak;    /* the most model loads in flight at once */
    uint64_t snap_pending;  /* snapshot bytes not yet written (set when rendered) */
    uint64_t snap_deferred; /* snapshots put off while too many were pending (runner.c) */
    uint64_t trim_ms;       /* private to model.c: when freed memory was last returned */
} fo_mem_stats;

/* Appends flushout_memory_bytes{kind=...}, the counters and the loads' peak. 0 or FO_ENOMEM. */
int fo_metrics_render_mem(const fo_mem_stats *s, fo_buf *out);

#endif
