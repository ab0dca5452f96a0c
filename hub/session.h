/* session.h - one WebSocket connection: decodes inbound messages, answers hello itself and
 * hands model requests up (fo_session_port); queues outbound frames. Its socket is the
 * hub's own (wsconn.h frames it with proto/ws.h; listener.h did the upgrade): everything
 * queued during a loop turn leaves in one packed socket write at the end of the turn
 * (fo_session_flush_dirty), straight from the hub's uv_check.
 *
 * Lifetime: created by fo_session_open after the upgrade, refcounted (the connection holds
 * one reference, every pending reply another), detached when the connection ends and
 * freed with the last reference. A detached session drops whatever is sent to it. */
#ifndef FO_SESSION_H
#define FO_SESSION_H

#include <uv.h>
#include <stdbool.h>
#include <stdint.h>

#include "hub/auth.h"
#include "hub/frame.h"
#include "hub/limits.h"
#include "hub/reply.h"
#include "proto/arena.h"
#include "proto/wire.h"
#include "proto/tls.h"
#include "proto/ws.h"

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
    fo_frame *frame; /* a message's payload; with `control`, a whole WebSocket frame */
    bool control;    /* a pong: written as it is, no header added */
    fo_sub *sub;     /* pushes only: they may be dropped for a slow subscriber */
    uint64_t from;   /* pushes only: diff.from */
} fo_outq_item;

typedef enum fo_session_state {
    FO_SESSION_OPEN = 0,
    FO_SESSION_CLOSING,  /* a close is due: write the queue, then the close frame */
    FO_SESSION_CLOSED,   /* the close frame is sent: waiting for the peer's EOF */
    FO_SESSION_DETACHED, /* the connection is gone */
} fo_session_state;

struct fo_session {
    fo_reply_sink sink;     /* first: requests from this session are answered through it */
    fo_hub *hub;
    int fd;                 /* the socket; -1 once detached */
    fo_tls *tls;            /* its TLS (--tls-cert), NULL: plaintext (wsconn.c) */
    uv_poll_t *poll;        /* its watcher (allocated: it outlives the session's close) */
    int poll_events;        /* what poll is started with */
    uint64_t closed_ms;     /* FO_SESSION_CLOSED since */
    uint32_t refs;
    uint64_t id;
    char sid[24];           /* decimal id: the `session` of welcome and presence */
    fo_session_state state;
    bool hello;
    char client[65];
    fo_rights rights;       /* from the upgrade's token, replaced by a renewal (a hello
                             * with a token); owned */
    uv_timer_t *expiry;     /* fires at rights.exp_ms (NULL: the identity never expires);
                             * allocated: it outlives the session's close */
    bool expired;           /* the token expired: requests are refused, a close is due */
    char peer[64];
    /* inbound: the bytes of an unfinished frame (none kept while idle) */
    unsigned char *rx;
    size_t rx_len, rx_cap;
    uint64_t rx_skip;       /* payload bytes of a too large frame still to drop */
    /* a fragmented message being reassembled */
    unsigned char *msg;
    size_t msg_len, msg_cap;
    bool in_msg;            /* fragments of a message are coming */
    bool msg_binary;
    bool msg_discard;       /* the message is too large: drop its fragments */
    uint64_t msg_dropped;   /* bytes of that message dropped so far */
    fo_ws_utf8 msg_utf8;    /* a fragmented text message: UTF-8 checked fragment by fragment */
    /* outbound: the unsent end of a write the socket did not take whole */
    unsigned char *wpend;
    size_t wpend_len, wpend_off;
    /* outbound queue (ring) */
    fo_outq_item *q;
    uint32_t qhead, qlen, qcap;
    size_t qbytes;
    bool want_write;        /* a partial write is pending: nothing more is written until
                             * the socket is writable and it has gone out */
    bool rx_paused;         /* reading stopped: replies pile up unread (backpressure) */
    bool rx_done;           /* a close came, or a framing violation: input is dropped */
    bool in_dirty;          /* linked in hub->dirty */
    bool sending;           /* a write is in the hub's send batch (sendq.h), not yet
                             * answered: nothing else is written until it is */
    uint16_t close_code;
    const char *close_why;  /* static: the reason sent in our close frame (NULL: by code) */
    fo_sub *subs;
    uint32_t nsubs;         /* in `subs` (--max-subs) */
    /* limits (limits.h), on the loop's cached clock */
    fo_bucket flush_bucket;    /* --flush-rate */
    fo_bucket rx_bucket;       /* --bytes-rate */
    fo_bucket presence_bucket; /* --presence-rate */
    uint64_t last_rx_ms;    /* when bytes last came (--idle-timeout-ms) */
    bool pinged;            /* an idle ping is out since then */
    uint64_t ping_ms;       /* ... sent then */
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

/* The close code of a connection whose token expired (reason "token expired"). */
#define FO_SESSION_CLOSE_TOKEN_EXPIRED 4401
/* The close code of a connection that sent nothing, not even a pong, for
 * --idle-timeout-ms (reason "idle timeout"). */
#define FO_SESSION_CLOSE_IDLE 4408

/* A connection the listener upgraded: takes over fd, its (started or not) poll watcher,
 * tls (the connection's TLS, NULL for plaintext; freed on failure too) and
 * *rights (left empty, also on failure); `early` holds bytes that came after the request
 * head (handled in place: a frame's payload is unmasked where it lies). NULL on
 * out-of-memory (the caller closes fd).
 *
 * A token with an exp (a JWT) arms a timer: at exp the session refuses requests
 * (`unauthorized`) and closes with FO_SESSION_CLOSE_TOKEN_EXPIRED, unless a `hello` with a
 * fresh valid token came first (renewal: the identity, rights and exp become the new
 * token's; a bad token gets `error unauthorized` and changes nothing). */
fo_session *fo_session_open(fo_hub *h, int fd, uv_poll_t *poll, fo_tls *tls, fo_rights *rights,
                            unsigned char *early, size_t early_len);
/* Once a second: ends connections that did not answer our close frame in time; pings
 * connections silent for half of --idle-timeout-ms and closes those silent for all of it
 * whose ping has had half of it to be answered (a live peer's pong always has). */
void fo_session_sweep(fo_hub *h);
/* A whole message from the connection (wsconn.c): decoded and dispatched. */
void fo_session_on_message(fo_session *s, const unsigned char *data, size_t len, bool binary);
/* A frame that is too large to read: answered with too_large (rid and model peeked from
 * its first `len` bytes where they show), the frame itself is dropped. */
void fo_session_too_large(fo_session *s, const unsigned char *start, size_t len);
/* The connection is gone (EOF, error, or the close handshake is over): unsubscribe,
 * unlink, close the socket, drop the connection's reference. */
void fo_session_end(fo_session *s);

extern const fo_reply_ops fo_session_sink_ops;

/* The session behind a sink of a session's request; NULL for another sink (HTTP, a flush
 * another hub forwarded). */
static inline fo_session *fo_session_of(fo_reply_sink *sink)
{
    return sink && sink->ops == &fo_session_sink_ops ? (fo_session *)sink : NULL;
}

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
/* Queues a control frame (a pong: f holds the whole WebSocket frame). */
void fo_session_send_control(fo_session *s, fo_frame *f);
/* Sends `error {rid?, model?, code, message}` answering `req` (may be NULL). */
void fo_session_send_error(fo_session *s, const fo_msg *req, fo_error_code code,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same with `retryAfterMs` (rate_limited, overloaded): the request may be sent again,
 * unchanged, after retry_ms. */
void fo_session_send_retry(fo_session *s, const fo_msg *req, fo_error_code code,
                           uint64_t retry_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Encodes and queues a small reply (ok, errors); FO_ENOMEM is logged and dropped. */
void fo_session_send_msg(fo_session *s, const fo_msg *m);
/* End of a loop turn: every session that queued frames writes them, one packed write
 * each; only a write the socket does not take whole waits for POLLOUT. */
void fo_session_flush_dirty(fo_hub *h);
/* Puts s in this turn's write order now: its frames of the turn leave before those of
 * connections that get their first frame later (an ack before the pushes it caused). */
void fo_session_write_early(fo_session *s);
/* Starts closing with `code` once the queue is written (a close frame, then EOF). */
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
