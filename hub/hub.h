/* hub.h - flushout-hub: one libuv loop that holds hot masters in memory, serialises
 * each model's requests through a sequential runner, commits applied batches to the
 * store in groups, and pushes them to subscribers over WebSockets (libwebsockets on the
 * same loop). fo_hub_run() is the whole program; the struct is shared by the hub's
 * modules (session, model, commit, http), never by users of the library. */
#ifndef FO_HUB_H
#define FO_HUB_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "hub/auth.h"
#include "hub/commit.h"
#include "hub/config.h"
#include "hub/console.h"
#include "hub/limits.h"
#include "hub/listener.h"
#include "hub/relay.h"
#include "hub/metrics.h"
#include "hub/rules.h"
#include "hub/session.h"
#include "hub/store.h"
#include "hub/strmap.h"
#include "proto/sendq.h"
#include "proto/wire.h"

typedef struct fo_session fo_session;
typedef struct fo_model fo_model;

typedef enum fo_hub_phase {
    FO_HUB_RUNNING = 0,
    FO_HUB_DRAINING,  /* signal received: finishing in-flight flushes */
    FO_HUB_CLOSING,   /* closing connections with 1001 */
    FO_HUB_STOPPING,  /* closing the store, lws and the loop's handles */
} fo_hub_phase;

typedef struct fo_hub {
    fo_hub_config cfg;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sighup;
    uv_check_t check;   /* end of each loop turn: group commit, writable requests */
    uv_timer_t tick;    /* once a second: eviction, shutdown progress */
    uv_idle_t kick;     /* active while sessions have frames to write: no sleep before
                         * the check writes them */
    uv_prepare_t prepare; /* before each poll: the loop's busy time of the turn */
    uint64_t turn_ns, turn_idle_ns; /* the clock and libuv's idle time at the last one */
    fo_console console; /* the console's metrics feed (console.h) */
    fo_limits lim;      /* per-address connection rates, overload (limits.h) */
    fo_listener listener; /* the port: WebSocket upgrades are ours, HTTP goes to lws */
    struct lws_context *lws;
    struct lws_vhost *vhost;
    fo_tls_ctx *tls;    /* --tls-cert/--tls-key: every connection is TLS; NULL: plaintext */
    fo_relay *relays;   /* HTTP requests over TLS, relayed to lws (relay.h) */
    int port;           /* the port actually listened on */
    fo_store *store;
    struct fo_follow *follow; /* --cluster: other hubs' appends to hot models (follow.h) */
    struct fo_peers *peers;   /* --cluster: membership, owners, forwarding (peers.h) */
    struct fo_presence *presence; /* --cluster: other hubs' presence (presence.h) */
    char sid_prefix[12];      /* --cluster: "<8 hex>-" before session numbers; else "" */
    fo_auth *auth;      /* NULL: open hub */
    fo_rules *rules;    /* --interceptors (NULL: none); SIGHUP loads it again */
    fo_commit commit;
    fo_arena flush_arena; /* the runner's scratch for one flush, rewound after each */
    fo_buf flush_buf;     /* the runner's encoding of one applied batch, reused */
    fo_session_port session_port; /* sessions hand requests and drains to the models */
    fo_strmap models;   /* name -> fo_model * */
    fo_model *lru_head; /* most recently used */
    fo_model *lru_tail;
    size_t hot_bytes;
    uint32_t loads_inflight; /* model loads submitted to the store (FO_MAX_LOADS) */
    fo_model *load_wait;     /* models waiting for a load slot (FIFO) */
    fo_model *load_wait_tail;
    fo_mem_stats mem;   /* hot bytes by kind, history reads, dropped documents */
    fo_session *sessions; /* every open session */
    fo_session *dirty;  /* sessions with frames to write at the end of this turn (FIFO) */
    fo_session *dirty_tail;
    uint64_t nsessions;
    uint64_t next_session_id;
    fo_wire_limits limits;
    fo_metrics metrics;
    fo_hub_phase phase;
    uint64_t phase_since_ms;
    int exit_code;
    fo_sendq *sendq;     /* each pass's socket writes together (NULL: one send() each) */
    unsigned char *wbuf; /* packed frames: one socket write (without sendq, or TLS) */
    size_t wbuf_cap;
    unsigned char rbuf[65536]; /* every connection's reads land here first */
    unsigned char tls_in[65536]; /* with TLS, the ciphertext read, before rbuf */
} fo_hub;

/* The process's exit codes (README). */
enum {
    FO_HUB_EXIT_OK = 0,
    FO_HUB_EXIT_FAILED = 1,   /* could not start (cannot listen, a missing --static, ...) */
    FO_HUB_EXIT_USAGE = 2,    /* bad flags */
    FO_HUB_EXIT_DATA_DIR = 3, /* the data dir cannot be used: not creatable, not a directory,
                               * not writable, not a database, a newer schema */
    FO_HUB_EXIT_LOCKED = 4,   /* another process (a running hub) holds the data dir */
};

/* Runs the hub until SIGTERM/SIGINT. Returns the process exit code. */
int fo_hub_run(const fo_hub_config *cfg);

/* The kick's callback (does nothing: being active keeps the loop from blocking). */
void fo_hub_kick(uv_idle_t *idle);

/* Milliseconds and nanoseconds of the loop's clock. */
uint64_t fo_hub_now_ms(const fo_hub *h);
uint64_t fo_now_ns(void);

#endif
