/* session.h - one WebSocket connection: reassembles and decodes inbound frames, answers
 * hello itself and hands model requests to their model's runner; queues outbound frames
 * and writes everything queued during a loop turn in one packed socket write at the end
 * of the turn (fo_session_flush_dirty), straight from the hub's uv_check.
 *
 * Lifetime: created at LWS_CALLBACK_ESTABLISHED, refcounted (the connection holds one
 * reference, every pending reply another), detached from lws at LWS_CALLBACK_CLOSED and
 * freed with the last reference. A detached session drops whatever is sent to it. */
#ifndef FO_SESSION_H
#define FO_SESSION_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "hub/auth.h"
#include "hub/frame.h"
#include "proto/arena.h"
#include "proto/wire.h"

typedef struct fo_hub fo_hub;
typedef struct fo_model fo_model;
typedef struct fo_session fo_session;

/* A session's subscription to a model; linked in both. */
typedef struct fo_sub {
    fo_model *model;
    fo_session *session;
    struct fo_sub *mprev, *mnext; /* in the model's list */
    struct fo_sub *snext;         /* in the session's list */
    uint64_t next_from;  /* the count the subscriber will stand at after what is queued */
    bool active;         /* its snap/diff reply has been queued */
    bool lagging;        /* pushes were dropped: catch up when the socket drains */
    fo_frame *presence;  /* this session's presence event on the model, or NULL */
} fo_sub;

typedef struct fo_outq_item {
    fo_frame *frame;
    fo_sub *sub;     /* pushes only: they may be dropped for a slow subscriber */
    uint64_t from;   /* pushes only: diff.from */
} fo_outq_item;

typedef enum fo_session_state {
    FO_SESSION_OPEN = 0,
    FO_SESSION_CLOSING, /* a close was requested: flush the queue, then close */
    FO_SESSION_DETACHED, /* lws closed the connection */
} fo_session_state;

struct fo_session {
    fo_hub *hub;
    struct lws *wsi;        /* NULL once detached */
    uint32_t refs;
    uint64_t id;
    char sid[24];           /* decimal id: the `session` of welcome and presence */
    fo_session_state state;
    bool hello;
    char client[65];
    fo_rights rights;       /* from the upgrade's token */
    char peer[64];
    /* inbound message being reassembled */
    unsigned char *rx;
    size_t rx_len, rx_cap;
    bool rx_discard;        /* the current message is too large: drop its fragments */
    bool rx_binary;
    /* outbound queue (ring) */
    fo_outq_item *q;
    uint32_t qhead, qlen, qcap;
    size_t qbytes;
    bool want_write;        /* waiting for lws's WRITEABLE callback: lws holds a partial
                             * write (or a close is due); nothing is written before it */
    bool write_failed;      /* the socket failed: close at the WRITEABLE callback */
    bool rx_paused;         /* reading stopped: replies pile up unread (backpressure) */
    bool in_dirty;          /* linked in hub->dirty */
    uint16_t close_code;
    fo_sub *subs;
    fo_session *prev, *next;  /* hub->sessions */
    fo_session *dirty_next;
};

/* What a session needs from the layer above it (models and their runners), so that this
 * module knows nothing of models: hub.c fills it in (hub->session_port). */
typedef struct fo_session_port {
    /* A decoded model request (sub, unsub, flush, get, history, presence) from a session
     * that said hello and has the rights; the callee takes over `arena` (msg lives in it). */
    void (*request)(fo_hub *h, fo_session *s, const fo_msg *msg, fo_arena *arena,
                    uint64_t t_recv);
    /* The session's queue drained while `sub` was lagging (its pushes were dropped). */
    void (*drained)(fo_sub *sub);
    /* The connection is gone: remove `sub` and tell the others its presence is gone. */
    void (*closed)(fo_sub *sub);
} fo_session_port;

/* The lws protocol callback for flushout.v1 (and for upgrades that name no subprotocol);
 * HTTP requests go to fo_http_callback. */
int fo_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                        void *in, size_t len);

fo_session *fo_session_ref(fo_session *s);
void fo_session_unref(fo_session *s);
static inline bool fo_session_attached(const fo_session *s)
{
    return s->state != FO_SESSION_DETACHED;
}

/* Queues a frame (takes a reference of its own). */
void fo_session_send(fo_session *s, fo_frame *f);
/* Queues a push for `sub` covering [from, ...). When the queue is over the hub's
 * --max-queue, the subscriber's queued pushes are dropped instead and it is marked
 * lagging: it catches up (fo_model_catch_up) once the socket drains. */
void fo_session_send_push(fo_session *s, fo_sub *sub, fo_frame *f, uint64_t from);
/* Sends `error {rid?, model?, code, message}` answering `req` (may be NULL). */
void fo_session_send_error(fo_session *s, const fo_msg *req, fo_error_code code,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Encodes and queues a small reply (ok, errors); FO_ENOMEM is logged and dropped. */
void fo_session_send_msg(fo_session *s, const fo_msg *m);
/* End of a loop turn: every session that queued frames writes them, one packed write
 * each; only a write the socket does not take whole waits for lws's writable callback. */
void fo_session_flush_dirty(fo_hub *h);
/* Puts s in this turn's write order now: its frames of the turn leave before those of
 * connections that get their first frame later (an ack before the pushes it caused). */
void fo_session_write_early(fo_session *s);
/* Starts closing with `code` once the queue is written. */
void fo_session_close(fo_session *s, uint16_t code);
/* Frames queued to s and not yet written (0 once the socket took everything). */
static inline uint32_t fo_session_backlog(const fo_session *s)
{
    return s->qlen;
}
/* The subscription of s to model m, or NULL. */
fo_sub *fo_session_find_sub(fo_session *s, const fo_model *m);
/* Unlinks a subscription from the session's list (the model unlinks its side). */
void fo_session_forget_sub(fo_session *s, fo_sub *sub);

#endif
