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
typedef struct fo_http_req fo_http_req;

typedef enum fo_model_state {
    FO_MODEL_COLD = 0, /* not in memory (new, or its load failed): the next task loads it */
    FO_MODEL_LOADING,
    FO_MODEL_READY,
    FO_MODEL_READING, /* the task at the head waits for history read back from the store */
} fo_model_state;

/* Hot bytes by kind, for --memory-budget and /metrics. */
enum { FO_MEM_DOC = 0, FO_MEM_HISTORY, FO_MEM_DEDUP, FO_MEM_KINDS };

typedef struct fo_task {
    struct fo_task *next;
    fo_session *session; /* reference held; NULL for HTTP */
    fo_http_req *http;   /* reference held; HTTP requests only */
    fo_msg msg;          /* lives in arena */
    fo_arena arena;
    uint64_t t_recv;     /* ns */
} fo_task;

struct fo_model {
    fo_hub *hub;
    char name[201];
    uint32_t name_len;
    uint32_t refs;
    uint32_t npending;    /* replies waiting in commit groups */
    fo_model_state state;
    bool broken;          /* a commit failed: reload from the store once drained */
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
    struct fo_model *lru_prev, *lru_next;
};

/* Queues a model request (sub, unsub, flush, get, history, presence) from a session.
 * Takes over `arena`, in which `msg` lives. */
void fo_model_submit(fo_hub *h, fo_session *s, const fo_msg *msg, fo_arena *arena,
                     uint64_t t_recv);
/* Queues an HTTP read (a `get` or `history` message) answered through `req`. */
void fo_model_submit_http(fo_hub *h, fo_http_req *req, const fo_msg *msg, fo_arena *arena);

/* Removes a subscription (unsub or disconnect); `announce` tells the others that its
 * presence is gone. */
void fo_model_unsubscribe(fo_sub *sub, bool announce);
/* A lagging subscriber's socket has drained: queue one push covering what it missed
 * (from history) or a snap. */
void fo_model_catch_up(fo_sub *sub);

/* Group commit outcome for one pending reply (commit.c calls these in group order). */
void fo_model_release(fo_pending *p);
void fo_model_fail(fo_pending *p, const char *why);
/* A commit that contained writes of this model failed. */
void fo_model_mark_broken(fo_model *m);

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
