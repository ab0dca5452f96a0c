/* client_impl.h - what client.c (connection, requests, dispatch) and client_model.c
 * (proxies, flush policy, pushes) share. Internal to libflushout-client. */
#ifndef FO_CLIENT_IMPL_H
#define FO_CLIENT_IMPL_H

#include "clients/c/client.h"
#include "clients/c/ws.h"
#include "proto/buf.h"
#include "proto/proxy.h"

/* A get or history waiting for its reply; sent again after a reconnect. */
typedef struct fo_client_req {
    struct fo_client_req *next;
    uint64_t rid;
    fo_client_reply_cb cb;
    void *data;
    fo_buf frame; /* the encoded request */
} fo_client_req;

typedef enum fo_sub_state {
    FO_SUB_NONE = 0, /* not subscribed on this connection (yet) */
    FO_SUB_PENDING,  /* `sub` sent, waiting for its snap/diff */
    FO_SUB_LIVE,     /* pushes flow */
} fo_sub_state;

struct fo_client_model {
    fo_client *c;
    fo_client_model *next;
    char name[201];
    fo_proxy *proxy;
    uv_timer_t timer; /* flush delay; resend backoff */
    fo_sub_state sub;
    uint64_t sub_rid; /* rid of the latest `sub`: older replies are ignored */
    bool ready;       /* a snapshot arrived */
    bool want_full;   /* next `sub` without `from` (the proxy needs a snapshot) */
    bool dead;        /* unsubscribed: freed when its timer has closed */
    /* the flush in flight */
    bool flushing;
    bool flush_sent;      /* sent on the current connection and not answered */
    bool flush_requested; /* fo_client_flush: flush even an empty queue */
    uint64_t flush_seq, flush_rid;
    uint32_t flush_errors; /* consecutive transient errors: resend backoff */
    fo_buf flush_frame;    /* resent as is (same seq) */
    /* a snapshot that arrived during the flight: adopted after the ack when newer */
    fo_arena snap_arena;
    fo_value snap_doc;
    uint64_t snap_count;
    bool has_snap;
    /* our presence, re-sent after every resubscribe */
    fo_arena pres_arena;
    fo_value pres_state;
    bool has_presence;
    uint32_t drop_pushes; /* test hooks */
    uint32_t lose_acks;
    fo_client_model_stats stats;
};

struct fo_client {
    uv_loop_t *loop;
    fo_client_config cfg; /* strings point to the copies below */
    char *url, *token;
    char client_id[65];
    char host[256];
    int port;
    char path[1024];
    bool wss;
    struct fo_tls_ctx *tls; /* wss: the CAs the hub is verified against (proto/tls.h) */
    fo_cws *ws; /* current connection, NULL between attempts */
    fo_client_state state;
    bool welcomed;
    char session[64];
    uint64_t max_frame; /* the welcome's maxFrame: larger flushes are not sent */
    uv_timer_t retry;   /* next connection attempt */
    uint32_t attempt;   /* failures since the last welcome */
    uint64_t next_rid, next_seq;
    fo_client_model *models;
    fo_client_req *reqs;
    uint64_t rng[2];
    uint32_t live; /* open handles and connection objects */
    bool closing;
    fo_client_close_cb close_cb;
    void *close_data;
    fo_arena rx_arena; /* the frame being dispatched */
    fo_wire_limits limits;
};

/* client.c */
int fo_client_send(fo_client *c, const fo_msg *m);
int fo_client_send_buf(fo_client *c, const fo_buf *b);
bool fo_client_is_open(const fo_client *c);
uint64_t fo_client_backoff_ms(fo_client *c, uint32_t failures);
void fo_client_report(fo_client *c, fo_error_code code, const char *model, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fo_client_handle_closed(uv_handle_t *h); /* close cb of a handle whose data is the client */
void fo_client_unlive(fo_client *c);          /* one of the `live` objects is gone */

/* client_model.c */
fo_client_model *fo_client_model_new(fo_client *c, const char *name);
void fo_client_model_close(fo_client_model *m); /* unlinked already; frees via its timer */
void fo_client_model_on_open(fo_client_model *m);
void fo_client_model_on_lost(fo_client_model *m);
/* A snap, diff, push, ack or presence frame for this model. */
void fo_client_model_on_msg(fo_client_model *m, const fo_msg *msg);
/* An error frame that answers this model's `sub` or flush (by rid); false otherwise. */
bool fo_client_model_on_error(fo_client_model *m, const fo_msg *msg);

#endif
