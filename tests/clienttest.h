/* clienttest.h - the harness of test_client.c: a real flushout-hub started as a child
 * process (FO_HUB_BIN) on a free loopback port with a fresh mkdtemp data directory, and
 * libflushout-client peers on one libuv loop. Every wait is bounded; only the hub's own
 * pid is ever signalled. Failures are Criterion assertions. */
#ifndef FO_TESTS_CLIENTTEST_H
#define FO_TESTS_CLIENTTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "clients/c/client.h"

typedef struct hub {
    pid_t pid;
    int port;
    int runs;
    bool sqlite, sequential;
    const char *extra;  /* one more option, or NULL */
    const char *extra2; /* and another */
    char dir[64];
    char log[128];
} hub;

typedef struct peer {
    fo_client *c;
    fo_client_model *m;
    int idx;
    uint64_t ok, creates; /* successful local applies; creates of the no-fail stream */
    uint64_t changes[6], states[4], flush_errors; /* callbacks by reason, by state */
    char presence_session[64], presence[64];      /* the last presence heard: JSON, "" for nil */
    bool has_presence;
    char last_why[256];
} peer;

typedef struct group {
    peer *p;
    int n;
} group;

/* `get` through a client, waited for. */
typedef struct got {
    bool done;
    fo_arena a;
    fo_value doc;
    uint64_t count;
    fo_error_code err;
} got;

/* Drives random commands from a timer: `left` of them, one per tick per peer. */
typedef struct driver {
    uv_timer_t t;
    peer *p;
    int n;
    uint64_t seed;
    int64_t left, next;
    bool no_fail;
    void (*each)(struct driver *d); /* optional hook after each tick */
    void *hook_data;
} driver;

extern hub ct_hub;          /* one per test process: the fini hook cleans it up */
extern uint32_t ct_ping_ms; /* peers' ping interval; 0: the default */
extern bool ct_wss;         /* peers connect with wss:// */
extern const char *ct_ca;   /* and trust this CA file (NULL: the system's) */

void ct_sleep_ms(int ms);
/* Starts h (again: same directory, a new log hub.N.log) and waits until it listens. */
void ct_hub_start(hub *h);
/* Sends sig and reaps it (SIGKILL after 10 s). */
void ct_hub_kill(hub *h, int sig);
/* The suite's init (SIGPIPE ignored, as client.h asks) and fini (the hub killed, its
 * directory removed). */
void ct_setup(void);
void ct_teardown(void);

/* A peer subscribed to model "conv" of the hub on `port`. */
void ct_peer_open(peer *p, uv_loop_t *loop, int port, int idx, fo_id_mode ids);
/* Runs the loop until pred(arg) holds; false after timeout_ms. */
bool ct_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, int timeout_ms);
/* A predicate on a group: every client idle and open. */
bool ct_all_idle(void *arg);
/* fo_client_get's callback filling a `got`. */
void ct_on_got(fo_client *c, const fo_msg *r, void *data);
/* Waits until every peer is idle at the hub's count, then checks that each local
 * document equals the hub's `get` (kept in *out when not NULL). Returns the count. */
uint64_t ct_converge(uv_loop_t *loop, peer *p, int n, got *out);
/* Closes the clients (the loop must close cleanly), then stops the hub and checks its logs. */
void ct_close_all(uv_loop_t *loop, peer *p, int n);
/* Starts the hub and n peers on model "conv", and waits for their first snapshots. */
void ct_start_all(uv_loop_t *loop, peer *p, int n, fo_id_mode ids);
/* Drives d->left random commands from a timer (1-3 per millisecond over random peers). */
void ct_drive(uv_loop_t *loop, driver *d, int timeout_ms);

#endif
