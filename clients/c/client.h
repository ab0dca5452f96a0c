/* client.h - libflushout-client: Flushout documents kept in sync with a flushout-hub, on a
 * libuv loop that the application owns and runs.
 *
 * A client is one WebSocket connection (ws:// only) that reconnects by itself. Each
 * subscribed model has a local proxy (proto/proxy.h): fo_client_apply changes the local
 * document at once and queues the command; the client flushes in the background and
 * keeps the document in step with everyone else's changes. The rules it follows are the
 * wire contract's (proto/PROTOCOL.md, "Ordering, durability, exactly-once"):
 *  - one flush in flight per model; a flush leaves `flush_delay_ms` after the last local
 *    apply, or at once when `flush_max_queue` commands are queued;
 *  - pushes that arrive while a flush is in flight are skipped (the ack's sync covers
 *    them); a push is applied when its `from` is the committed count; a push that does not
 *    follow (a gap) makes the client resubscribe with `from` = the committed count;
 *  - an unsolicited `snap` is adopted (after the ack when a flush is in flight);
 *  - after a lost connection it reconnects with jittered exponential backoff, resubscribes
 *    with `from` and resends the in-flight flush with the SAME seq: the hub answers a
 *    retry with the sync instead of applying it twice (exactly-once);
 *  - a flush the hub refuses for good (bad_request, too_large, forbidden, unauthorized) is
 *    dropped from the proxy and reported; other errors resend it, with the same seq, after
 *    the error's retryAfterMs (rate_limited, overloaded: the hub applied nothing) or, when
 *    it gives none, a backoff.
 * `seq` starts at the wall clock in microseconds and grows by one per flush, so a client
 * id reused by a later process (fo_client_config.client_id) still sends increasing seqs.
 *
 * Installed: `pkg-config --cflags --libs flushout-client`, `#include <flushout/client.h>`
 * (uv.h needs _POSIX_C_SOURCE=200809L under -std=c11).
 *
 * SIGPIPE: like any libuv program that writes to sockets, the application must ignore it
 * (signal(SIGPIPE, SIG_IGN)); otherwise a write to a connection the hub has just reset
 * kills the process. The library does not change signal dispositions itself.
 *
 * Threads: none. Every function must be called on the loop's thread; every callback runs
 * from the loop, never from inside the call that caused it (except fo_client_close's
 * cancellations, see there). The library never logs and never aborts. */
#ifndef FO_CLIENT_H
#define FO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/command.h"
#include "proto/doc.h"
#include "proto/error.h"
#include "proto/wire.h"

typedef struct fo_client fo_client;
typedef struct fo_client_model fo_client_model;

typedef enum fo_client_state {
    FO_CLIENT_CONNECTING = 1, /* a connection attempt is under way */
    FO_CLIENT_OPEN,           /* connected and welcomed: subscriptions and flushes flow */
    FO_CLIENT_CLOSED,         /* the attempt failed or the connection was lost; the next
                                 attempt follows after a backoff (unless closing) */
} fo_client_state;

/* Why a model's local document changed. */
typedef enum fo_client_change {
    FO_CHANGE_LOCAL = 1, /* fo_client_apply (reported through the return, not a callback) */
    FO_CHANGE_SNAPSHOT,  /* a snapshot was adopted: the first one, or a hub's `snap` */
    FO_CHANGE_PUSH,      /* others' batches were applied (a push, or a resubscribe's diff) */
    FO_CHANGE_SYNC,      /* an ack carried a sync: others' commands, remapped IDs */
    FO_CHANGE_REJECTED,  /* the hub refused a flush for good: its commands were dropped */
} fo_client_change;

/* What the hub answered to a flush. */
typedef struct fo_client_flush_info {
    uint64_t seq;
    const fo_apply_result *result; /* the ack's ApplyResult; NULL for an error */
    fo_error_code code;            /* error: the hub's code; 0 for an ack */
    const char *message;           /* error: the hub's message; NULL for an ack */
    bool dropped;                  /* error: the batch was dropped (else it is resent) */
} fo_client_flush_info;

/* An `error` frame, or a failure of the client itself (code 0). */
typedef struct fo_client_error {
    fo_error_code code;  /* the hub's code; 0 when the client detected the problem */
    const char *message; /* for people */
    const char *model;   /* the model concerned, or NULL */
} fo_client_error;

/* Everything points into the client and is borrowed for the duration of the call. */
typedef struct fo_client_callbacks {
    /* Connection state changes; `why` explains a CLOSED ("cannot connect to ...") and is
     * NULL otherwise. */
    void (*on_state)(fo_client *c, fo_client_state state, const char *why, void *data);
    /* The local document of `m` changed (not called for fo_client_apply). `diff` is the
     * batch applied to the committed state for FO_CHANGE_PUSH (the pushed batch), the
     * ack's partial diff for FO_CHANGE_SYNC (NULL for a full sync), NULL otherwise. */
    void (*on_change)(fo_client_model *m, fo_client_change why, const fo_batch *diff, void *data);
    /* The hub answered a flush of `m`. */
    void (*on_flush)(fo_client_model *m, const fo_client_flush_info *info, void *data);
    /* Another session's presence on `m` changed; `state` is NULL when it left or cleared. */
    void (*on_presence)(fo_client_model *m, const char *session, const fo_value *state, void *data);
    /* An error frame that no request callback took, or a failure inside the client. */
    void (*on_error)(fo_client *c, const fo_client_error *e, void *data);
} fo_client_callbacks;

typedef struct fo_client_config {
    const char *url;             /* ws[s]://HOST[:PORT][/PATH[?QUERY]]; default
                                    ws://127.0.0.1:7420/v1/ws (port 80, or 443 for wss, when
                                    absent). wss:// always verifies the hub's certificate
                                    and name: a failure ends the attempt with the reason
                                    ("...the server's certificate is not trusted: ...") */
    const char *ca_file;         /* wss: PEM file of the CAs to trust (a private CA); NULL:
                                    $FLUSHOUT_CA if set, else the system's CAs */
    const char *token;           /* NULL, or sent as `Authorization: Bearer TOKEN` */
    const char *client_id;       /* 1-64 bytes, the hub's exactly-once key; NULL: random */
    fo_id_mode ids;              /* how local creates pick IDs (FO_IDS_RANDOM) */
    uint32_t flush_delay_ms;     /* idle time after the last apply before a flush (20) */
    uint32_t flush_max_queue;    /* flush at once when this many commands are queued (100) */
    bool manual_flush;           /* only fo_client_flush starts flushes (false) */
    uint32_t backoff_min_ms;     /* first reconnect delay (100); doubles per failure */
    uint32_t backoff_max_ms;     /* cap (10000); the delay is jittered in [d/2, d] */
    uint32_t connect_timeout_ms; /* resolve + connect + upgrade + welcome (10000) */
    uint32_t
        ping_ms; /* ping after this much silence; drop when unanswered as long (15000; 0 off) */
    size_t max_message; /* largest frame accepted from the hub (256 MiB) */
    fo_client_callbacks cb;
    void *data; /* passed to every callback */
} fo_client_config;

/* Fills the defaults above (all callbacks NULL). */
void fo_client_config_default(fo_client_config *cfg);

/* Creates a client on `loop` and starts connecting. The strings are copied. Returns 0 and
 * *out; FO_EINVAL when the URL or client id is not valid (nothing is created:
 * fo_client_config_error says why); FO_ENOMEM. */
int fo_client_new(uv_loop_t *loop, const fo_client_config *cfg, fo_client **out);
/* Why fo_client_new refuses `cfg` with FO_EINVAL, as one sentence naming the field ("url:
 * http:// is the hub's HTTP address; its WebSocket URL is ws://HOST:PORT/v1/ws"); NULL
 * when cfg is valid. The text is static. fo_strerror (proto/error.h) names any code. */
const char *fo_client_config_error(const fo_client_config *cfg);

typedef void (*fo_client_close_cb)(fo_client *c, void *data);
/* Closes the connection and every handle, frees the models (unflushed commands are
 * lost: wait for fo_client_idle first to keep them) and cancels pending requests (their
 * callbacks run with NULL from the loop). `cb` (may be NULL) runs when everything is
 * released; the client is freed right after it returns. No other callback runs after
 * this call. Safe inside any callback of the client. */
void fo_client_close(fo_client *c, fo_client_close_cb cb, void *data);

fo_client_state fo_client_get_state(const fo_client *c);
/* The id sent in `hello` (NUL-terminated, stable for the client's life). */
const char *fo_client_id(const fo_client *c);
/* The session id of the current connection ("" when not open). */
const char *fo_client_session(const fo_client *c);
/* True when no model has queued or in-flight commands and every model is subscribed. */
bool fo_client_idle(const fo_client *c);

/* ---- models -------------------------------------------------------------------------- */

/* Starts keeping `model` in sync (sends `sub` now or once connected). Its document is
 * empty until the first snapshot (FO_CHANGE_SNAPSHOT); commands applied before that are
 * queued and flushed once it arrives. Returns 0 and *out; FO_EINVAL for a name that is
 * not 1-200 bytes of [A-Za-z0-9._:-] or a model already subscribed on this client;
 * FO_ENOMEM. */
int fo_client_subscribe(fo_client *c, const char *model, fo_client_model **out);
/* Stops (sends `unsub`) and frees `m`; its unflushed commands are dropped. */
void fo_client_unsubscribe(fo_client_model *m);
fo_client_model *fo_client_find(const fo_client *c, const char *model);
fo_client *fo_client_model_client(const fo_client_model *m);
const char *fo_client_model_name(const fo_client_model *m);

/* Result of a local apply. */
typedef struct fo_client_result {
    bool ok;
    char created_id[32]; /* create: the new key (later remapped if it collides: see
                            FO_CHANGE_SYNC); "" otherwise */
    char error[256];     /* failure: "No object at document path a,b", ... */
} fo_client_result;

/* Applies `cmd` (copied) to the local document at once and queues it for the hub.
 * Returns 0 (see out->ok: a command that fails changes nothing and is not queued) or
 * FO_ENOMEM. */
int fo_client_apply(fo_client_model *m, const fo_command *cmd, fo_client_result *out);
/* The same with a command as JSON ({"action": ..., "path": [...], "props": {...}}):
 * FO_EPROTO / FO_EINVAL / FO_ELIMIT for bad JSON, described in *err (may be NULL). */
int fo_client_apply_json(fo_client_model *m, const char *json, size_t len, fo_client_result *out,
                         fo_err_info *err);
/* Flushes as soon as allowed (connected, subscribed, nothing in flight: otherwise right
 * after the ack), even with an empty queue (an empty flush brings the proxy up to date).
 * This is how a client with manual_flush flushes. 0, or FO_ESTATE after unsubscribe. */
int fo_client_flush(fo_client_model *m);

/* The local document (committed state + queued and in-flight commands), borrowed until
 * the next call into the client or the next callback. */
const fo_value *fo_client_document(const fo_client_model *m);
uint64_t fo_client_count(const fo_client_model *m);
/* The count the hub last confirmed (what a resubscribe asks `from`). */
uint64_t fo_client_committed_count(const fo_client_model *m);
/* The first snapshot has arrived. */
bool fo_client_model_ready(const fo_client_model *m);
/* Ready, subscribed, nothing queued and nothing in flight. */
bool fo_client_model_synced(const fo_client_model *m);
/* A flush is in flight (waiting for its ack). */
bool fo_client_model_flushing(const fo_client_model *m);
uint32_t fo_client_queue_len(const fo_client_model *m);

/* Sets this client's presence on `m` (`state` a FO_MAP, copied; NULL clears it). It is
 * sent now when subscribed, and again after every resubscribe. 0, FO_EINVAL (not a map)
 * or FO_ENOMEM. */
int fo_client_set_presence(fo_client_model *m, const fo_value *state);

typedef struct fo_client_model_stats {
    uint64_t flushes; /* acks received */
    uint64_t resends; /* in-flight flushes sent again (reconnect, transient error) */
    uint64_t pushes_applied;
    uint64_t pushes_skipped; /* arrived while a flush was in flight, or already covered */
    uint64_t gaps;           /* pushes that did not follow the committed count */
    uint64_t resubscribes;   /* after a gap, a failed diff or a reconnect */
    uint64_t snapshots;      /* snapshots adopted */
    uint64_t rejected;       /* flushes dropped after a permanent error */
    uint64_t retry_after;    /* refusals (rate_limited, overloaded) resent after the hub's
                              * retryAfterMs */
} fo_client_model_stats;
void fo_client_model_stats_get(const fo_client_model *m, fo_client_model_stats *out);

/* ---- one-shot requests --------------------------------------------------------------- */

/* The reply to a request: type FO_MSG_SNAP (get), FO_MSG_DIFF (history) or FO_MSG_ERROR
 * (code, message); NULL when the client closed first. Borrowed for the call. A request
 * waits for the connection and is sent again after a reconnect (reads are idempotent). */
typedef void (*fo_client_reply_cb)(fo_client *c, const fo_msg *reply, void *data);

/* `get`: the latest snapshot of `model`, or the state after `at` commands when has_at.
 * 0, FO_EINVAL (bad model name), FO_ENOMEM; on success `cb` runs exactly once. */
int fo_client_get(fo_client *c, const char *model, bool has_at, uint64_t at, fo_client_reply_cb cb,
                  void *data);
/* `history`: the completions [from, to) (to: the latest count when !has_to). */
int fo_client_history(fo_client *c, const char *model, uint64_t from, bool has_to, uint64_t to,
                      fo_client_reply_cb cb, void *data);

/* True for 1-200 bytes of [A-Za-z0-9._:-] (the wire's model names). */
bool fo_client_model_name_valid(const char *model);

/* ---- test hooks ---------------------------------------------------------------------- */

/* Ignores the next `n` pushes of `m` as if the network had lost them (tests of gap
 * detection). */
void fo_client_debug_drop_pushes(fo_client_model *m, uint32_t n);
/* Drops the connection at once, as a network failure would (tests of reconnects). */
void fo_client_debug_disconnect(fo_client *c);
/* The next `n` acks of `m` are lost: the connection drops just as each arrives, so the
 * flush, which the hub has applied, is resent with its seq (tests of exactly-once). */
void fo_client_debug_lose_acks(fo_client_model *m, uint32_t n);

#endif
