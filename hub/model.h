/* model.h - a hot model: its master, a bounded in-memory history, the exactly-once table
 * of its clients, its subscribers, and its runner: requests run one at a time in arrival
 * order; while the model loads from the store they wait, and other models go on.
 *
 * Models are refcounted: tasks, pending replies, store writes and subscribers hold
 * references.
 *
 * --memory-budget bounds the hot bytes (documents, histories, exactly-once tables; see
 * fo_model_evict). A request that needs history older than what is in memory (a `sub` or
 * `history` from an old count, a flush whose proxy is behind, a lagging subscriber's
 * catch-up) makes its model wait: the task stays at the head of the runner while the
 * store's thread reads the rows, the loop and other models go on, and the task runs again
 * with the rows at hand. Only ranges within --history commands of the count are read
 * back; past that (or if the store no longer has them) the request falls back as the
 * contract says: a snap, a full sync, `error gone`. */
#ifndef FO_MODEL_H
#define FO_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "hub/commit.h"
#include "hub/history.h"
#include "hub/session.h"
#include "hub/strmap.h"
#include "proto/master.h"

typedef struct fo_hub fo_hub;

typedef enum fo_model_state {
    FO_MODEL_COLD = 0, /* not in memory (new, or its load failed): the next task loads it */
    FO_MODEL_LOADING,
    FO_MODEL_READY,
    FO_MODEL_READING, /* the task at the head waits for history read back from the store */
} fo_model_state;

/* Hot bytes by kind, for --memory-budget and /metrics. */
enum { FO_MEM_DOC = 0, FO_MEM_HISTORY, FO_MEM_DEDUP, FO_MEM_KINDS };

typedef enum fo_pend_kind {
    FO_PEND_ACK = 1, /* a flush's ack, and its push to the other subscribers */
    FO_PEND_REPLY,   /* a reply showing the model's state (get, history) */
    FO_PEND_SUB,     /* a subscriber's snap/diff: activates the subscription */
} fo_pend_kind;

/* One reply waiting for its group to be durable (a commit waiter). It holds a reference on
 * its model and on the sink it answers through. */
typedef struct fo_pending {
    fo_commit_waiter w; /* first */
    fo_pend_kind kind;
    fo_model *model;
    fo_reply_sink *sink; /* a session (ACK and SUB: always) or an HTTP request */
    fo_frame *reply;  /* ack, snap, diff, in the sink's form (sink->ops->encode) */
    fo_frame *push;   /* ACK with applied commands: the push for the other subscribers */
    uint64_t from;    /* ACK: applied.from; SUB: the count the reply brings it to */
    uint64_t len;     /* ACK: applied commands */
    uint64_t t_recv;  /* ACK: when the flush frame arrived (ns) */
    bool has_rid;     /* the request's rid, for an error reply if the commit fails */
    uint64_t rid;
} fo_pending;

typedef struct fo_task {
    struct fo_task *next;
    fo_reply_sink *sink; /* where the answer goes (reference held): a session or HTTP */
    fo_session *session; /* the same session for requests from one (sub, flush, ...);
                          * NULL for HTTP and for flushes another hub forwarded */
    const char *client;  /* flush: the flusher's client id (the session's, or in arena) */
    fo_msg msg;          /* lives in arena */
    fo_arena arena;
    uint64_t t_recv;     /* ns */
    json_t *identity;    /* flush: the session's claims when it was queued (a reference) */
    bool reread;         /* --cluster: the model was read again from the log for it */
    void *record;        /* a record another hub appended, decoded (follow.h), or NULL */
} fo_task;

struct fo_model {
    fo_commit_owner owner; /* for the commit group: its writes extend this model's log */
    fo_hub *hub;
    char name[201];
    uint32_t name_len;
    uint32_t refs;
    uint32_t npending;    /* replies waiting in commit groups */
    fo_model_state state;
    bool broken;          /* a commit failed: reload from the store once drained */
    bool stale;           /* --cluster: behind the log; reload once drained (nothing failed) */
    int broken_rc;        /* the store's error code of the commit that broke it */
    uint32_t fwd_unanswered; /* --cluster: flushes of its subscribers forwarded, no answer yet */
    uint32_t fwd_empty;      /* ... answered with an ack that applied nothing, not sent yet */
    fo_master *master;
    fo_history hist;      /* recent batches as encoded bytes (hub/history.h) */
    fo_strmap dedup;      /* client -> uint64_t * (last seq applied) */
    fo_task *tasks, *tasks_tail;
    uint32_t ntasks;
    fo_sub *subs;
    uint32_t nsubs;
    uint64_t released;    /* pushes up to this count have left (durable) */
    uint64_t snapshot_count; /* newest snapshot in the store */
    size_t bytes;         /* estimate for the memory budget: the sum of mem[] */
    size_t mem[FO_MEM_KINDS];
    uint32_t read_gen;    /* history reads started: a late answer to an old one is ignored */
    bool running;         /* inside run(): tasks queued meanwhile wait for the loop in it */
    uint64_t console_mark; /* the count at the console's last sample (console.c) */
    uint32_t console_rate; /* commands in the second before it */
    struct fo_model *lru_prev, *lru_next;
    struct fo_model *load_next; /* in the hub's load_wait queue */
    bool load_waiting;
};

/* Queues a model request (sub, unsub, flush, get, history, presence) from a session.
 * Takes over `arena`, in which `msg` lives. */
void fo_model_submit(fo_hub *h, fo_session *s, const fo_msg *msg, fo_arena *arena,
                     uint64_t t_recv);
/* Queues a flush another hub forwarded (peers.h): answered through `sink`, run as client
 * `client` with the claims `identity` (a reference taken over; may be NULL). Takes over
 * `arena`, in which `msg` lives. */
void fo_model_submit_forwarded(fo_hub *h, fo_reply_sink *sink, const char *client,
                               json_t *identity, const fo_msg *msg, fo_arena *arena,
                               uint64_t t_recv);
/* Queues a read (a `get` or `history` message) from elsewhere than a session (HTTP),
 * answered through `sink`. */
void fo_model_submit_read(fo_hub *h, fo_reply_sink *sink, const fo_msg *msg, fo_arena *arena);

/* Removes a subscription (unsub or disconnect); `announce` tells the others that its
 * presence is gone. */
void fo_model_unsubscribe(fo_sub *sub, bool announce);
/* A lagging subscriber's socket has drained: queue one push covering what it missed
 * (from history) or a snap. */
void fo_model_catch_up(fo_sub *sub);

/* A reply of `kind` that waits for the open commit group (zeroed but for kind and model;
 * the caller fills it, taking the references it stores). When the group is durable it is
 * released (sent, pushes fanned out); when it failed, or an earlier commit of the model
 * did, the request is answered with `internal`. NULL on out-of-memory. */
fo_pending *fo_model_pend(fo_model *m, fo_pend_kind kind);
/* Appends a task (holding a model reference for it), loads a cold model, runs. */
void fo_model_queue(fo_model *m, fo_task *t);
/* Runs the queued tasks of a ready model (one at a time, until one waits). */
void fo_model_run(fo_model *m);
/* A pending reply of m is gone: a broken model reloads once none is left. */
void fo_model_maybe_reload(fo_model *m);
/* A commit that contained writes of this model failed. */
void fo_model_mark_broken(fo_model *m);
/* --cluster: the log holds more than the master (a followed record that does not continue
 * it, a client that saw more through another hub): requests wait, and once nothing of the
 * model is in flight it loads again from the log. */
void fo_model_mark_stale(fo_model *m);

/* Applies a stored log row to the master (apply) and adds it to the history; 0 or an
 * error (a row that does not decode or replay). */
int fo_model_replay(fo_model *m, const fo_store_entry *e, bool apply);
/* Sends the push of [from, from + len), applied and durable, to the model's subscribers but
 * `except`'s (the flusher, who gets the ack; NULL: none); those behind it catch up. */
void fo_model_fan_out(fo_model *m, fo_frame *push, uint64_t from, uint64_t len,
                      const fo_session *except);

fo_model *fo_model_ref(fo_model *m);
void fo_model_unref(fo_model *m);
/* While the hot bytes exceed --memory-budget, frees memory in this order, each step going
 * through models least recently used first and stopping once 7/8 of the budget is
 * reached: evicts idle models with no subscribers; trims histories to a share of the
 * budget (only durable batches: the store has them); trims the remaining durable
 * history; drops the document, history and exactly-once table of idle subscribed models
 * (their subscriptions stay; the next request reloads them). Then, at most once a
 * second, returns freed heap to the kernel (malloc_trim) so that RSS follows. */
void fo_model_evict(fo_hub *h);
/* For the task being run: true when [from, to) of history can be served now (in memory,
 * out of --history's reach, or already read back); false when a read from the store was
 * started: the caller must return without side effects, its task runs again later. */
bool fo_model_need_history(fo_model *m, uint64_t from, uint64_t to);
/* Frees every model (shutdown, after all replies were released). */
void fo_model_free_all(fo_hub *h);
/* Runner depth gauges for /metrics. */
void fo_model_gauges(fo_hub *h, uint64_t *queued, uint64_t *max_depth);

#endif
