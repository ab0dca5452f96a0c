/* hubtest.h - Criterion helpers for the hub's integration tests (tests/test_hub*.c): hubs and
 * clients that assert as they go, an oracle master, proxies driven over real WebSockets, and a
 * seeded generator of random commands. Test-only; every helper fails the running test with a
 * message naming the client, what was expected and what came, plus the end of the hub's log.
 *
 * Everything started here is registered, and ht_cleanup() (the suites' .fini) closes clients
 * and kills and removes hubs, also after a failed assertion ended the test early. */
#ifndef FO_TEST_HUBTEST_H
#define FO_TEST_HUBTEST_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/master.h"
#include "proto/proxy.h"
#include "proto/wire.h"
#include "tests/support/hubproc.h"
#include "tests/support/wsclient.h"

/* How long one expected reply may take (the hub under test runs with ASan). */
#define HT_TIMEOUT_MS 8000

/* ---- hubs ---------------------------------------------------------------------------------- */

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t ht_now_ms(void);

/* Starts a hub (store "memory" or "sqlite"; args NULL-terminated or NULL); asserts it is up. */
/* A real nats-server (natsproc.h) freed at the test's end, or the test is skipped, saying
 * why, when there is no nats-server binary. */
struct fo_natsproc *ht_nats_start(void);
fo_hubproc *ht_hub_start(const char *store, const char *const *args);
/* Same with full options (env, bin). */
fo_hubproc *ht_hub_start_opts(const fo_hubproc_options *o);
/* Starts it again on the same data directory and port; asserts. */
void ht_hub_restart(fo_hubproc *h);
/* SIGTERM; asserts that it exits with status 0 within timeout_ms. */
void ht_hub_stop_ok(fo_hubproc *h, int timeout_ms);
/* A counter or gauge of the hub's GET /metrics (the unlabelled sample `name`); asserts that
 * the endpoint answers and has it. */
uint64_t ht_metric(fo_hubproc *h, const char *name);
/* Polls ht_metric every 5 ms until it reaches `min` or timeout_ms pass; returns the last
 * value read (the caller asserts what it needs). */
uint64_t ht_wait_metric(fo_hubproc *h, const char *name, uint64_t min, int timeout_ms);
/* Sends SIGHUP and waits (bounded, 5 s) until the hub's log has `min` lines with `needle`;
 * fails the test with the end of the log otherwise. */
void ht_hup(fo_hubproc *h, const char *needle, int min);
/* Fails the test with a message after printing the end of the client's hub's log. */
#define HT_FAIL(c, ...)                                                                            \
    do {                                                                                           \
        ht_hub_dump((c)->hub);                                                                     \
        cr_assert_fail(__VA_ARGS__);                                                               \
    } while (0)
/* Prints the end of the hub's log to stderr (for failure messages). */
void ht_hub_dump(const fo_hubproc *h);
/* Frees every registered client and hub. Use as the suites' .fini. */
void ht_cleanup(void);

/* Runs fn(p) at ht_cleanup unless ht_undefer(p) was called first. */
void ht_defer(void (*fn)(void *), void *p);
void ht_undefer(void *p);
/* A sequential-ID proxy freed at cleanup if the test ends early. */
fo_proxy *ht_proxy_new(const fo_snapshot *s);
void ht_proxy_free(fo_proxy *p);

/* ---- clients ------------------------------------------------------------------------------- */

typedef struct ht_client {
    fo_ws *ws;
    fo_hubproc *hub;
    fo_arena arena;    /* decoded messages; ht_client_reset_arena() empties it */
    char id[72];       /* the hello `client` */
    char session[128]; /* from welcome */
    char server[128];
    uint64_t max_frame;
    uint64_t rid; /* last rid used by ht_send */
    uint64_t seq; /* last flush seq used by ht_flush */
} ht_client;

/* Connects (options may be NULL: the hub's port, defaults), no hello. */
ht_client *ht_connect_raw(fo_hubproc *h, const fo_ws_options *o);
/* Connects, says hello as `client_id`, expects welcome; asserts on every step. */
ht_client *ht_connect(fo_hubproc *h, const char *client_id);
/* Closing handshake (best effort), then frees. */
void ht_close(ht_client *c);
/* Frees at once: the TCP connection ends without a close frame. */
void ht_drop(ht_client *c);
void ht_client_reset_arena(ht_client *c);

/* Sends m with a fresh rid (m->rid set); returns the rid. */
uint64_t ht_send(ht_client *c, fo_msg *m);
/* Sends m as it is (no rid added). */
void ht_send_norid(ht_client *c, const fo_msg *m);
/* Sends raw bytes as one binary frame. */
void ht_send_bytes(ht_client *c, const void *p, size_t n);
/* Receives the next message, whatever its type; decoded into c->arena. */
void ht_recv(ht_client *c, fo_msg *out);
/* Receives the next message, which must be of type t; decoded into c->arena. */
void ht_expect(ht_client *c, fo_msg_type t, fo_msg *out);
/* Same, and it must carry `rid`. */
void ht_expect_reply(ht_client *c, fo_msg_type t, uint64_t rid, fo_msg *out);
/* The next message must be `error` with `code`, carrying `rid` (0: must carry none), whose
 * message contains `needle` (NULL: anything). */
void ht_expect_error(ht_client *c, fo_error_code code, uint64_t rid, const char *needle);
/* Asserts that nothing at all arrives within ms. */
void ht_expect_silence(ht_client *c, int ms);
/* The next frame must be a close with `code` (-1: any code); returns the code. */
int ht_expect_close(ht_client *c, int code, int timeout_ms);

/* Requests that assert their reply. Results live in c->arena. */
fo_snapshot ht_sub(ht_client *c, const char *model);
fo_snapshot ht_get(ht_client *c, const char *model);
fo_snapshot ht_get_at(ht_client *c, const char *model, uint64_t at);
fo_batch ht_history(ht_client *c, const char *model, uint64_t from, bool has_to, uint64_t to);
void ht_unsub(ht_client *c, const char *model);
void ht_presence(ht_client *c, const char *model, const fo_value *state);
/* flush with the next seq; returns the ack's result. */
fo_apply_result ht_flush(ht_client *c, const char *model, const fo_batch *b);
/* flush with an explicit seq. */
fo_apply_result ht_flush_seq(ht_client *c, const char *model, uint64_t seq, const fo_batch *b);

/* Flushes that may fail (tests/test_hub_faults.c): the message of update [] {key: "x" * pad}
 * claiming count `from` (in c->arena); send it and get its ack or its error (anything else, or
 * an answer to another rid, fails the test); the key of a one-key update ("?" otherwise). */
fo_msg ht_update_msg(ht_client *c, const char *model, uint64_t seq, uint64_t from, const char *key,
                     size_t pad);
fo_msg ht_flush_reply(ht_client *c, fo_msg *m);
const char *ht_update_key(const fo_completion *c, char *out, size_t n);

/* ---- values -------------------------------------------------------------------------------- */

/* Canonical JSON (sorted keys), malloc'd. */
char *ht_json(const fo_value *v);
char *ht_json_result(const fo_apply_result *r);
char *ht_json_batch(const fo_batch *b);
/* Asserts equal trees; prints both (cut to a few KB) when they differ. */
void ht_assert_value_eq(const fo_value *got, const fo_value *want, const char *what);
/* Compares results as JSON trees (map order ignored). */
void ht_assert_result_eq(const fo_apply_result *got, const fo_apply_result *want, const char *what);
void ht_assert_batch_eq(const fo_batch *got, const fo_batch *want, const char *what);
/* Logs (cr_log_error) where two JSON texts part and both texts, cut to a few KB. */
void ht_log_diff(const char *what, const char *got, const char *want);
/* Parses JSON text into `a` (asserts). */
fo_value ht_val(fo_arena *a, const char *json);
fo_batch ht_batch_json(fo_arena *a, const char *json);
/* {from, completions: [update {key: v}]} in `a`. */
fo_batch ht_update_batch(fo_arena *a, uint64_t from, const char *key, int v);

/* ---- the oracle: a local master with sequential IDs and full history ------------------------ */

typedef struct ht_oracle ht_oracle;
ht_oracle *ht_oracle_new(void);
void ht_oracle_free(ht_oracle *o);
/* Applies b as the hub should have; the result lives in the oracle until the next apply. */
fo_apply_result ht_oracle_apply(ht_oracle *o, const fo_batch *b);
fo_snapshot ht_oracle_snapshot(ht_oracle *o);
/* JSON of the document after `at` commands (recorded after each apply); NULL if never seen. */
const char *ht_oracle_doc_at(ht_oracle *o, uint64_t at);
/* The recorded completion that took the model from n to n+1. */
const fo_completion *ht_oracle_history(ht_oracle *o, uint64_t n);

/* Flushes `batch_json` (a CompletionBatch) from c with the next seq, applies it to the oracle
 * too, and asserts that the ack's ApplyResult is the oracle's. The batch lives in c->arena. */
fo_apply_result ht_flush_checked(ht_client *c, ht_oracle *o, const char *model,
                                 const char *batch_json);
/* ht_flush_checked of `{from: <oracle's count>, completions: [update [] {k<i>: i}]}`. */
void ht_flush_update(ht_client *c, ht_oracle *o, const char *model, int i);
/* Asserts that a snapshot equals the oracle's current one. */
void ht_assert_oracle_snapshot(const fo_snapshot *got, ht_oracle *o, const char *what);

/* ---- peers: an fo_proxy driven over a WebSocket --------------------------------------------- */

/* Every flush peers sent and the ack they got, to replay through an oracle afterwards. */
typedef struct ht_flush_log ht_flush_log;
ht_flush_log *ht_flush_log_new(void);
void ht_flush_log_free(ht_flush_log *l);
/* Records a flush about to be sent; returns its record for ht_flush_log_ack. */
size_t ht_flush_log_add(ht_flush_log *l, const fo_batch *b);
/* Records the ack of record `rec`. */
void ht_flush_log_ack(ht_flush_log *l, size_t rec, const fo_apply_result *r);
/* Replays the acked flushes in the order the hub applied them (by the ack's applied.from;
 * batches that applied nothing first) through a fresh oracle: every ack must equal the
 * oracle's result, and `final` the oracle's last snapshot. Returns the flushes replayed. */
size_t ht_flush_log_check(ht_flush_log *l, const fo_snapshot *final);

typedef struct ht_peer {
    ht_client *c;
    fo_proxy *p;
    char model[208];
    bool in_flight;
    uint64_t flight_seq, flight_rid;
    uint64_t next_from; /* the count the next push or ack must start at (gap checking) */
    uint64_t pushes, acks, dropped, snaps;
    uint32_t max_push_len; /* completions in the biggest push applied */
    uint64_t full_syncs;   /* acks whose sync was a full snapshot */
    uint64_t own_batches;  /* non-empty batches this peer flushed */
    ht_flush_log *log;     /* NULL, or where flushes and acks are recorded */
    size_t flight_rec;
    /* Several hubs on one log: a flush another hub's append overtook is answered
     * `overloaded` with retryAfterMs (`internal` when it failed otherwise; the hub reloads
     * the model); such a peer sends it again with the same seq, as the error says. Off:
     * any error fails the test. */
    bool retry_refused;
    uint64_t retries;
    fo_batch flight_batch;
} ht_peer;

/* Connects as client_id, subscribes to model, builds a sequential-ID proxy on the snap. */
ht_peer *ht_peer_new(fo_hubproc *h, const char *client_id, const char *model);
/* Same with connect options (e.g. a small rcvbuf); o may be NULL. */
ht_peer *ht_peer_new_opts(fo_hubproc *h, const char *client_id, const char *model,
                          const fo_ws_options *o);
void ht_peer_free(ht_peer *p); /* closes the client too */
/* Starts a flush when none is in flight and the queue is not empty; true if one was sent. */
bool ht_peer_flush(ht_peer *p);
/* Handles one message for this peer's model: push (gap-free, never its own batch: asserted),
 * ack (applied.from must be where the pushes left off; ends the flush), snap (reset).
 * Anything else fails the test. */
void ht_peer_handle(ht_peer *p, const fo_msg *m);
/* Waits up to timeout_ms for a message on any peer and handles it; false on timeout. */
bool ht_peer_pump(ht_peer **ps, int n, int timeout_ms);
/* Pumps until no peer has a flush in flight or unflushed commands (flushing as needed) and
 * every peer's committed count equals `count` (pass UINT64_MAX to skip that). */
void ht_peers_settle(ht_peer **ps, int n, uint64_t count, int timeout_ms);

/* ---- random commands ------------------------------------------------------------------------- */

typedef struct ht_rng {
    uint64_t s;
} ht_rng;
/* Seed from $FO_HUB_SEED when set, else `fallback`; the seed is logged. */
ht_rng ht_rng_seeded(uint64_t fallback);
uint64_t ht_rand(ht_rng *r);
uint32_t ht_rand_below(ht_rng *r, uint32_t n);
/* A random command (create / update / delete, sometimes with parentDefault) aimed at the
 * current local document, allocated in a. */
fo_command ht_random_command(ht_rng *r, fo_arena *a, const fo_value *doc);
/* Applies `n` random commands to the peer's proxy (commands failing locally are skipped). */
void ht_peer_random_edits(ht_peer *p, ht_rng *r, int n);

#endif
