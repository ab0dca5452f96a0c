/* lg.h - flushout-bench's run state, shared by main.c (options, phases, timers),
 * conn.c (one connection's protocol: hello, sub, flushes, and the checks of everything
 * received) and report.c (the table and the JSON).
 *
 * One process, one libuv loop, one thread: the generator is meant to be pinned to its own
 * core, next to the hub pinned to another. */
#ifndef FO_LG_H
#define FO_LG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "bench/loadgen/hist.h"
#include "bench/loadgen/proc.h"
#include "bench/loadgen/ws.h"
#include "proto/arena.h"
#include "proto/buf.h"
#include "proto/value.h"
#include "proto/wire.h"

#define FO_LG_MAX_SOURCES 64
#define FO_LG_MAX_IDS 256 /* IDs a writer remembers for its updates and deletes */
#define FO_LG_OWN_RING 8  /* applied.from of a writer's latest acks */

#define FO_LG_MAX_URLS 16 /* hubs of one --url list */

/* One hub of --url. */
typedef struct fo_lg_url {
    char url[512];      /* this item of the list, as given */
    char host[256];     /* Host header: host[:port] as in the URL */
    char hostname[256]; /* host without port or brackets */
    char path[512];     /* path and query */
    int port;
} fo_lg_url;

typedef struct fo_lg_opts {
    char url[FO_LG_MAX_URLS * 512]; /* --url as given: one URL or a comma-separated list */
    fo_lg_url urls[FO_LG_MAX_URLS]; /* its items; urls[0] is the hub of --hub-pid's lookup
                                       and of the /metrics scrape */
    uint32_t nurls;                 /* 1..FO_LG_MAX_URLS */
    bool tls;                       /* wss:// (every item: schemes may not mix) */
    char ca[1024];                  /* --ca FILE; empty: $FLUSHOUT_CA, else the system's CAs */
    uint32_t connections, models, writers, subscribers;
    bool has_connections, has_writers, has_subscribers;
    uint32_t commands; /* per flush */
    uint32_t mix[3];   /* create, update, delete weights */
    uint32_t payload;  /* bytes of the "v" prop */
    double rate;       /* flushes/s overall; 0 = closed loop */
    double warmup, duration, drain;
    struct sockaddr_in sources[FO_LG_MAX_SOURCES];
    uint32_t nsources;
    int hub_pid; /* 0: look it up from the first URL's port */
    bool json, idle, progress;
    bool pipeline;        /* open loop: no limit of one flush in flight per writer */
    bool no_hello;        /* --idle without hello */
    uint32_t check_every; /* 1: decode every ack/push fully; N: skim, decode 1 in N */
    char model_prefix[64];
    uint32_t connect_concurrency;
    uint32_t print_errors; /* failures printed in full; all are counted */
    uint32_t max_flushes;  /* per writer; 0: no limit (the window ends when all are done) */
    double storm_at;       /* seconds into the window: the subscribers' reconnect storm; 0 none */
} fo_lg_opts;

#define FO_LG_MAX_SECS 600 /* per-second latency samples kept for the JSON */

typedef enum fo_lg_phase {
    FO_LG_CONNECT = 0, /* opening connections, hello, sub */
    FO_LG_WARMUP,
    FO_LG_MEASURE,
    FO_LG_DRAIN, /* no new flushes; waiting for outstanding acks */
    FO_LG_CLOSE, /* closing handshakes */
    FO_LG_DONE,
} fo_lg_phase;

typedef enum fo_lg_conn_state {
    FO_LGC_NEW = 0,
    FO_LGC_CONNECTING, /* TCP + upgrade */
    FO_LGC_HELLO,      /* hello sent, waiting for welcome */
    FO_LGC_SUB,        /* sub sent, waiting for snap */
    FO_LGC_READY,
    FO_LGC_CLOSED,
} fo_lg_conn_state;

/* What kind of failure: each is counted once, in one kind. */
typedef enum fo_lg_err_kind {
    FO_LGE_CONNECT = 0, /* connect, upgrade, hello/sub failures; connection lost or closed */
    FO_LGE_ERROR_FRAME, /* an `error` frame from the hub */
    FO_LGE_FRAME,       /* a text, undecodable or unexpected frame */
    FO_LGE_ACK,         /* an ack that answers no outstanding flush, or out of order */
    FO_LGE_APPLY,       /* an ack with failed commands, or fewer applied than sent */
    FO_LGE_ORDER,       /* ack's applied batch not where the connection's frames stand */
    FO_LGE_GAP,         /* a push beyond the connection's count (batches missing) */
    FO_LGE_OVERLAP,     /* a push behind the connection's count (batches repeated) */
    FO_LGE_OWN_PUSH,    /* a push of the connection's own batch */
    FO_LGE_UNACKED,     /* a flush never answered */
    FO_LGE_LOCAL,       /* the generator's own failure (encoding, memory) */
    FO_LGE_NKINDS
} fo_lg_err_kind;

const char *fo_lg_err_name(fo_lg_err_kind k);

typedef struct fo_lg_flight {
    uint64_t seq;
    uint64_t t_intended; /* latency is measured from here (send time in closed loop) */
    uint32_t ncmds;
} fo_lg_flight;

typedef struct fo_lg fo_lg;

typedef struct fo_lg_conn {
    fo_ws ws;
    fo_lg *lg;
    uint32_t idx, model;
    uint32_t url; /* index into o.urls and lg->dst: the hub it talks to */
    bool writer;
    bool was_ready;  /* reached FO_LGC_READY once */
    bool quota_done; /* --flushes: all sent and acked */
    fo_lg_conn_state state;
    uint64_t pos;     /* model count as this connection's frames have taken it */
    uint64_t seq;     /* last seq sent */
    fo_lg_flight *fl; /* outstanding flushes in send order (a ring) */
    uint32_t fl_head, fl_len, fl_cap;
    uint64_t ids[FO_LG_MAX_IDS]; /* IDs this writer created and has not deleted */
    uint32_t nids;
    uint64_t own_from[FO_LG_OWN_RING];
    uint32_t own_n;
    bool storming;     /* dropped by the storm, not subscribed again yet (storm.c) */
    bool storm_closed; /* its socket is closed: to reconnect */
    uint64_t *due;     /* open loop: due times of flushes waiting for the one in flight */
    uint32_t due_head, due_len, due_cap;
} fo_lg_conn;

/* Monotonic totals; the report subtracts two snapshots (window start and end). */
typedef struct fo_lg_counters {
    uint64_t flushes_sent, acks, commands, pushes, push_cmds, errors, catchup_snaps;
    uint64_t frames_in, frames_out, bytes_in, bytes_out, writes;
    uint64_t cpu_ns; /* our own */
    uint64_t at_ns;
} fo_lg_counters;

/* The reconnect storm (storm.c). */
typedef struct fo_lg_storm {
    uv_timer_t timer;
    bool active; /* some subscribers are not back yet */
    uint32_t clients, back, failed, snaps, to_restart;
    uint64_t t0, t_done; /* the drop; every one back */
    fo_hist ack;         /* the writers' acks while it is active */
} fo_lg_storm;

struct fo_lg {
    fo_lg_opts o;
    uv_loop_t loop;
    fo_ws_ctx ws;
    uv_timer_t tick, second, phase_timer;
    uv_poll_t tpoll; /* the open-loop schedule's timerfd */
    int tfd;
    uv_signal_t sigint, sigterm;
    struct sockaddr_storage dst[FO_LG_MAX_URLS]; /* o.urls resolved */
    uint32_t url_conns[FO_LG_MAX_URLS];          /* connections assigned to each URL */
    fo_lg_phase phase;
    int exit_code;

    fo_lg_conn *conns;
    uint32_t nconns, next_connect, in_connect, ready, closed, connect_failed;
    uint32_t ready_max; /* most connections ready at once */
    uint32_t *writers;  /* indices of writer connections */
    uint32_t nwriters;
    char **model_names;

    /* codec scratch */
    fo_arena enc, dec, keys;
    fo_buf out;
    fo_wire_limits limits;
    fo_key key_t, key_v;
    char *payload;
    char client_prefix[48];

    /* open loop schedule: flush n is due at ol_start + n / rate */
    uint64_t ol_start, ol_n;

    /* statistics */
    fo_lg_counters total;       /* live */
    fo_lg_counters w0, w1;      /* window start and end */
    fo_lg_counters last_sec;    /* for the progress line */
    fo_hist ack, push, ack_sec; /* ack and push latency in the window; ack this second */
    fo_hist lag;                /* open loop: how late the generator's timer woke, per flush */
    uint64_t t_phase;           /* when the current phase began */
    uint64_t unacked_at_end;    /* outstanding flushes after the drain */
    uint64_t inflight;          /* flushes sent, not yet answered */
    uint64_t backlog;           /* open loop: flushes due, waiting for their writer */
    uint64_t backlog_at_end;
    uint64_t errs[FO_LGE_NKINDS];
    uint32_t errors_printed;
    uint64_t skimmed; /* acks and pushes read by the skim */
    uint64_t sec_p50[FO_LG_MAX_SECS], sec_p99[FO_LG_MAX_SECS]; /* ack, per measured second */
    uint32_t nsec;
    uint32_t writers_done; /* --flushes: writers that sent all theirs and got the acks */

    /* the hub process and its counters */
    int hub_pid;
    fo_proc_sample p0, p1, p_base; /* window start/end; before connecting (idle) */
    fo_scrape scrape;
    fo_hub_counters m0, m1;
    int scraping; /* 0 idle, 1 window start, 2 window end */
    bool scrape_busy;
    fo_lg_storm storm;
};

/* opts.c: parses argv into *o (defaults first). 0 ok, 1 after --help, -1 bad usage
 * (already reported on stderr). */
int fo_lg_opts_parse(fo_lg_opts *o, int argc, char **argv);
/* The index into o->urls of connection i (model i % models, rank i / models within its
 * model): (model + rank) % nurls. Round-robin over the URLs like i % nurls, but a model's
 * writers and subscribers land on different hubs even when nurls divides --models (with
 * i % nurls every connection of a model would share one hub). One URL: always 0. */
uint32_t fo_lg_url_of(const fo_lg_opts *o, uint32_t i);

/* conn.c */
/* Starts connection c (connect, upgrade, hello, sub). 0 or a UV_E* code. */
int fo_lg_conn_start(fo_lg *lg, fo_lg_conn *c);
/* Sends one flush from writer c, latency measured from t_intended. 0 or an FO_E code. */
int fo_lg_conn_flush(fo_lg_conn *c, uint64_t t_intended);
/* Open loop: a flush of writer c falls due at `due`. Sent now when nothing is in flight
 * (or with --pipeline), else queued until the ack. */
void fo_lg_conn_due(fo_lg_conn *c, uint64_t due);
/* Counts one failure of kind k; prints the first o.print_errors failures on stderr. */
void fo_lg_error(fo_lg *lg, const fo_lg_conn *c, fo_lg_err_kind k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Frees a connection's buffers (after its on_close). */
void fo_lg_conn_destroy(fo_lg_conn *c);

/* main.c: called by conn.c */
void fo_lg_on_ready(fo_lg *lg, fo_lg_conn *c);
void fo_lg_on_closed(fo_lg *lg, fo_lg_conn *c, int status);
/* Whether writers may send new flushes now (warm-up and measurement). */
bool fo_lg_sending(const fo_lg *lg);
/* --flushes: writer c has sent its last flush and had it acked. */
void fo_lg_on_writer_done(fo_lg *lg, fo_lg_conn *c);

/* report.c */
void fo_lg_counters_take(fo_lg *lg, fo_lg_counters *c);
void fo_lg_report_table(const fo_lg *lg, FILE *f);
void fo_lg_report_json(const fo_lg *lg, FILE *f);
/* The per-second progress line on stderr. */
void fo_lg_report_progress(fo_lg *lg);

/* storm.c: the reconnect storm of --storm-at. init with the loop's handles, arm when the
 * window starts; conn.c calls closed (true: the storm handled the close) and back (the sub
 * was answered); report adds its JSON fields. */
void fo_lg_storm_init(fo_lg *lg);
void fo_lg_storm_arm(fo_lg *lg);
bool fo_lg_storm_closed(fo_lg *lg, fo_lg_conn *c, fo_lg_conn_state was);
void fo_lg_storm_back(fo_lg *lg, fo_lg_conn *c, bool snap);
void fo_lg_storm_report(const fo_lg *lg, FILE *f);

#endif
