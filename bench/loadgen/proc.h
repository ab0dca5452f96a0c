/* proc.h - what the load generator learns about the hub process: CPU time and RSS from
 * /proc (when the hub runs on this machine), and the hub's own counters from its
 * Prometheus endpoint GET /metrics (works remotely too). */
#ifndef FO_PROC_H
#define FO_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

/* The pid of the process listening on TCP `port` (IPv4 or IPv6), found through
 * /proc/net/tcp{,6} and the socket inodes in /proc/PID/fd. 0 when not found (another
 * user's process, another machine, or not listening). */
pid_t fo_proc_find_listener(int port);

typedef struct fo_proc_sample {
    bool ok;
    uint64_t cpu_ns; /* utime + stime */
    uint64_t rss_kb; /* VmRSS */
    uint64_t hwm_kb; /* VmHWM (peak RSS) */
    uint64_t threads;
    uint64_t at_ns; /* uv_hrtime() when sampled */
} fo_proc_sample;

/* Reads /proc/PID/stat and /proc/PID/status. 0, or -1 (s->ok false) when unreadable. */
int fo_proc_sample_read(pid_t pid, fo_proc_sample *s);
/* Our own CPU time (getrusage), user + system, in ns. */
uint64_t fo_proc_self_cpu_ns(void);

/* The counters of the hub's /metrics the report uses (0 when absent). The transport
 * counters (loop turns, write turns, writable requests, partial writes) are newer than
 * some hubs and the Node peer: `have` says which were in the text. */
typedef struct fo_hub_counters {
    bool ok;
    uint64_t flushes, commands, frames_in, frames_out, bytes_in, bytes_out, writes;
    uint64_t pushes, dropped_pushes, catchups, flush_errors, bad_frames, store_commits;
    uint64_t connections;
    uint64_t loop_turns, write_turns, writable_requests, partial_writes;
    uint32_t have; /* FO_HUB_HAVE_* bits */
} fo_hub_counters;

#define FO_HUB_HAVE_LOOP_TURNS (1u << 0)
#define FO_HUB_HAVE_WRITE_TURNS (1u << 1)
#define FO_HUB_HAVE_WRITABLE_REQUESTS (1u << 2)
#define FO_HUB_HAVE_PARTIAL_WRITES (1u << 3)
#define FO_HUB_HAVE_FRAMES_OUT (1u << 4)
#define FO_HUB_HAVE_WRITES (1u << 5)

/* Parses Prometheus text (the lines we know; everything else is ignored). */
void fo_hub_counters_parse(const char *text, size_t len, fo_hub_counters *out);

typedef struct fo_scrape fo_scrape;
/* Fires once with the result (out->ok false on failure or timeout). */
typedef void (*fo_scrape_cb)(fo_scrape *s, void *arg);

struct fo_scrape {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_timer_t timer;
    char req[256];
    char *body;
    size_t len, cap;
    int closing; /* handles still to close */
    bool done;
    fo_hub_counters out;
    fo_scrape_cb cb;
    void *arg;
};

/* Starts GET `path` on `dst` (HTTP/1.1, Connection: close) with a `timeout_ms` bound;
 * `cb` fires from a close callback, when `s` may be reused or freed. 0 or a UV_E* code
 * (then cb never fires). */
int fo_scrape_start(uv_loop_t *loop, fo_scrape *s, const struct sockaddr *dst, const char *host,
                    const char *path, unsigned timeout_ms, fo_scrape_cb cb, void *arg);

#endif
