#include "hub/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <unistd.h>

#include "hub/hub.h"
#include "hub/log.h"
#include "hub/wsconn.h"

static void session_free(fo_session *s)
{
    uint32_t i;

    for (i = 0; i < s->qlen; i++)
        fo_frame_unref(s->q[(s->qhead + i) % s->qcap].frame);
    free(s->q);
    fo_wsconn_free(s);
    fo_rights_destroy(&s->rights);
    free(s);
}

fo_session *fo_session_ref(fo_session *s)
{
    s->refs++;
    return s;
}

void fo_session_unref(fo_session *s)
{
    if (s && --s->refs == 0)
        session_free(s);
}

/* Appends s to hub->dirty (holding a reference): its frames leave at the end of the turn,
 * connections in the order they got their first frame (a flusher's ack goes out before
 * the pushes it caused when it was queued first). A session with a partial write pending
 * is written when its socket is writable instead. */
static void mark_dirty(fo_session *s)
{
    fo_hub *h = s->hub;

    if (s->in_dirty || s->want_write || s->fd < 0)
        return;
    fo_session_ref(s);
    s->in_dirty = true;
    s->dirty_next = NULL;
    if (h->dirty) {
        h->dirty_tail->dirty_next = s;
    } else {
        h->dirty = s;
        if (!uv_is_closing((uv_handle_t *)&h->kick))
            uv_idle_start(&h->kick, fo_hub_kick); /* no sleep before the check writes */
    }
    h->dirty_tail = s;
}

void fo_session_write_early(fo_session *s)
{
    if (s->state != FO_SESSION_DETACHED)
        mark_dirty(s);
}

static int enqueue(fo_session *s, fo_frame *f, fo_sub *sub, uint64_t from, bool control)
{
    fo_outq_item *it;

    if (s->qlen == s->qcap) {
        uint32_t ncap = s->qcap ? s->qcap * 2 : 16, i;
        fo_outq_item *nq = malloc(ncap * sizeof(*nq));
        if (!nq)
            return -1;
        for (i = 0; i < s->qlen; i++)
            nq[i] = s->q[(s->qhead + i) % s->qcap];
        free(s->q);
        s->q = nq;
        s->qhead = 0;
        s->qcap = ncap;
    }
    it = &s->q[(s->qhead + s->qlen) % s->qcap];
    it->frame = fo_frame_ref(f);
    it->sub = sub;
    it->from = from;
    it->control = control;
    s->qlen++;
    s->qbytes += f->len;
    /* Replies cannot be dropped (one per rid), so a client that sends requests without
     * reading the answers is stopped from sending more until it reads: memory per
     * connection stays bounded. */
    if (!s->rx_paused && s->fd >= 0 && s->qbytes > 2 * s->hub->cfg.max_queue) {
        s->rx_paused = true;
        fo_wsconn_update_poll(s);
    }
    mark_dirty(s);
    return 0;
}

void fo_session_send(fo_session *s, fo_frame *f)
{
    if (!f || s->state == FO_SESSION_DETACHED)
        return;
    if (enqueue(s, f, NULL, 0, false))
        FO_LOG(FO_LOG_ERROR, "sid=%s out of memory queueing a frame", s->sid);
}

void fo_session_send_control(fo_session *s, fo_frame *f)
{
    if (s->state == FO_SESSION_OPEN || s->state == FO_SESSION_CLOSING)
        if (enqueue(s, f, NULL, 0, true))
            FO_LOG(FO_LOG_ERROR, "sid=%s out of memory queueing a control frame", s->sid);
}

/* Drops the queued pushes of `sub`; it will catch up from the first one dropped. */
static void drop_pushes(fo_session *s, fo_sub *sub)
{
    uint32_t i, kept = 0;
    bool first = true;

    for (i = 0; i < s->qlen; i++) {
        fo_outq_item it = s->q[(s->qhead + i) % s->qcap];
        if (it.sub == sub) {
            if (first)
                sub->next_from = it.from;
            first = false;
            s->qbytes -= it.frame->len;
            fo_frame_unref(it.frame);
            s->hub->metrics.dropped_pushes++;
            continue;
        }
        s->q[(s->qhead + kept) % s->qcap] = it;
        kept++;
    }
    s->qlen = kept;
}

void fo_session_send_push(fo_session *s, fo_sub *sub, fo_frame *f, uint64_t from)
{
    if (s->state == FO_SESSION_DETACHED)
        return;
    if (sub->lagging) {
        s->hub->metrics.dropped_pushes++;
        return;
    }
    if (s->qbytes + f->len > s->hub->cfg.max_queue) {
        /* Neither buffered without bound nor disconnected: drop and catch up later. */
        sub->next_from = from;
        drop_pushes(s, sub);
        sub->lagging = true;
        s->hub->metrics.dropped_pushes++;
        FO_LOG(FO_LOG_INFO, "sid=%s slow subscriber: dropping pushes (queue %zu bytes)", s->sid,
               s->qbytes);
        return;
    }
    s->hub->metrics.pushes++;
    if (enqueue(s, f, sub, from, false))
        FO_LOG(FO_LOG_ERROR, "sid=%s out of memory queueing a push", s->sid);
}

void fo_session_send_msg(fo_session *s, const fo_msg *m)
{
    fo_frame *f = fo_frame_encode(m);

    if (!f) {
        FO_LOG(FO_LOG_ERROR, "sid=%s cannot encode a %s reply", s->sid, fo_msg_type_name(m->type));
        return;
    }
    fo_session_send(s, f);
    fo_frame_unref(f);
}

static void send_error(fo_session *s, const fo_msg *req, fo_error_code code, uint64_t retry_ms,
                       const char *fmt, va_list ap)
{
    char text[512];
    fo_msg m;

    vsnprintf(text, sizeof(text), fmt, ap);
    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_ERROR;
    m.code = code;
    m.message = text;
    m.has_retry_after = retry_ms > 0;
    m.retry_after_ms = retry_ms;
    if (req) {
        m.has_rid = req->has_rid;
        m.rid = req->rid;
        m.model = req->model;
        m.model_len = req->model_len;
    }
    if (code == FO_ERR_BAD_FRAME || code == FO_ERR_BAD_REQUEST)
        s->hub->metrics.bad_frames++;
    if (code > 0 && code < FO_ERR_CODES)
        s->hub->metrics.errors[code]++;
    FO_LOG(FO_LOG_DEBUG, "sid=%s error %s: %s", s->sid, fo_error_code_name(code), text);
    fo_session_send_msg(s, &m);
}

void fo_session_send_error(fo_session *s, const fo_msg *req, fo_error_code code,
                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    send_error(s, req, code, 0, fmt, ap);
    va_end(ap);
}

void fo_session_send_retry(fo_session *s, const fo_msg *req, fo_error_code code,
                           uint64_t retry_ms, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    send_error(s, req, code, retry_ms ? retry_ms : 1, fmt, ap);
    va_end(ap);
}

void fo_session_close(fo_session *s, uint16_t code)
{
    if (s->state != FO_SESSION_OPEN)
        return;
    s->state = FO_SESSION_CLOSING;
    s->close_code = code;
    mark_dirty(s);
}

fo_sub *fo_session_find_sub(fo_session *s, const fo_model *m)
{
    fo_sub *sub;

    for (sub = s->subs; sub; sub = sub->snext)
        if (sub->model == m)
            return sub;
    return NULL;
}

void fo_session_forget_sub(fo_session *s, fo_sub *sub)
{
    fo_sub **p;

    for (p = &s->subs; *p; p = &(*p)->snext) {
        if (*p == sub) {
            *p = sub->snext;
            s->nsubs--;
            break;
        }
    }
    /* Queued pushes of this subscription must not outlive it. */
    drop_pushes(s, sub);
}

/* ---- the reply sink (reply.h) ------------------------------------------------------------ */

static void sink_ref(fo_reply_sink *k)
{
    fo_session_ref(fo_session_of(k));
}

static void sink_unref(fo_reply_sink *k)
{
    fo_session_unref(fo_session_of(k));
}

static fo_frame *sink_encode(fo_reply_sink *k, const fo_msg *m)
{
    (void)k;
    return fo_frame_encode(m);
}

static void sink_deliver(fo_reply_sink *k, fo_frame *f)
{
    fo_session_send(fo_session_of(k), f);
}

static void sink_error(fo_reply_sink *k, const fo_msg *req, fo_error_code code, const char *why)
{
    fo_session_send_error(fo_session_of(k), req, code, "%s", why);
}

const fo_reply_ops fo_session_sink_ops = {sink_ref, sink_unref, sink_encode, sink_deliver,
                                          sink_error};

/* ---- connection events --------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *hd)
{
    free(hd);
}

static void on_expiry(uv_timer_t *t)
{
    fo_session *s = t->data;

    if (s->state != FO_SESSION_OPEN || s->expired)
        return;
    /* The timer is set from the wall clock; make sure it is due by the same clock. */
    if (fo_auth_now_ms() < s->rights.exp_ms) {
        uv_timer_start(t, on_expiry, (uint64_t)(s->rights.exp_ms - fo_auth_now_ms()), 0);
        return;
    }
    s->expired = true;
    FO_LOG(FO_LOG_INFO, "sid=%s token of %s expired: closing with %d", s->sid,
           fo_rights_sub(&s->rights) ? fo_rights_sub(&s->rights) : "?",
           FO_SESSION_CLOSE_TOKEN_EXPIRED);
    fo_session_close(s, FO_SESSION_CLOSE_TOKEN_EXPIRED);
}

/* (Re)arms the expiry timer for s->rights.exp_ms; stops it when the rights never expire. */
static int arm_expiry(fo_session *s)
{
    int64_t delay;

    if (!s->rights.exp_ms) {
        if (s->expiry)
            uv_timer_stop(s->expiry);
        return 0;
    }
    if (!s->expiry) {
        if (!(s->expiry = malloc(sizeof(*s->expiry))))
            return -1;
        uv_timer_init(&s->hub->loop, s->expiry);
        s->expiry->data = s;
    }
    delay = s->rights.exp_ms - fo_auth_now_ms();
    uv_timer_start(s->expiry, on_expiry, delay > 0 ? (uint64_t)delay : 0, 0);
    return 0;
}

fo_session *fo_session_open(fo_hub *h, int fd, uv_poll_t *poll, fo_tls *tls, fo_rights *rights,
                            unsigned char *early, size_t early_len)
{
    fo_session *s = calloc(1, sizeof(*s));
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    char host[64];

    if (!s) {
        fo_rights_destroy(rights);
        fo_tls_free(tls);
        return NULL;
    }
    s->tls = tls;
    s->sink.ops = &fo_session_sink_ops;
    s->hub = h;
    s->fd = fd;
    s->poll = poll;
    poll->data = s;
    s->refs = 1;
    s->id = ++h->next_session_id;
    snprintf(s->sid, sizeof(s->sid), "%s%llu", h->sid_prefix, (unsigned long long)s->id);
    s->rights = *rights;
    memset(rights, 0, sizeof(*rights));
    s->last_rx_ms = fo_hub_now_ms(h);
    if (arm_expiry(s)) {
        fo_rights_destroy(&s->rights);
        fo_tls_free(tls);
        free(s);
        return NULL;
    }
    if (getpeername(fd, (struct sockaddr *)&sa, &salen) == 0 &&
        getnameinfo((struct sockaddr *)&sa, salen, host, sizeof(host), NULL, 0,
                    NI_NUMERICHOST) == 0)
        snprintf(s->peer, sizeof(s->peer), "%s", host);
    s->next = h->sessions;
    if (h->sessions)
        h->sessions->prev = s;
    h->sessions = s;
    h->nsessions++;
    h->metrics.connections_total++;
    FO_LOG(FO_LOG_INFO, "sid=%s connected from %s%s%s", s->sid, s->peer,
           fo_rights_sub(&s->rights) ? " as " : "",
           fo_rights_sub(&s->rights) ? fo_rights_sub(&s->rights) : "");
    fo_wsconn_update_poll(s);
    fo_wsconn_feed(s, early, early_len);
    return s;
}

static void on_poll_closed(uv_handle_t *hd)
{
    free(hd);
}

void fo_session_end(fo_session *s)
{
    fo_hub *h = s->hub;

    if (s->state == FO_SESSION_DETACHED)
        return;
    FO_LOG(FO_LOG_INFO, "sid=%s disconnected", s->sid);
    s->state = FO_SESSION_DETACHED;
    while (s->subs)
        h->session_port.closed(s->subs);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->nsessions--;
    if (s->sending) /* its write must reach the kernel before its descriptor is closed */
        fo_sendq_submit(h->sendq);
    uv_close((uv_handle_t *)s->poll, on_poll_closed); /* stops watching at once */
    if (s->expiry) {
        uv_close((uv_handle_t *)s->expiry, on_timer_closed);
        s->expiry = NULL;
    }
    close(s->fd);
    s->fd = -1;
    s->poll = NULL;
    fo_wsconn_free(s);
    fo_session_unref(s);
}

/* A ping to a connection that has been silent for half the idle timeout: any answer (its
 * pong, or anything else) shows it is alive. */
static void ping(fo_session *s)
{
    unsigned char frame[2 + 8];
    size_t n = fo_ws_frame_build(frame, FO_WS_OP_PING, true, (const unsigned char *)"idle", 4,
                                 NULL);
    fo_frame *f = fo_frame_new(frame, n);

    if (!f)
        return;
    fo_session_send_control(s, f);
    fo_frame_unref(f);
    s->pinged = true;
    s->ping_ms = fo_hub_now_ms(s->hub);
    s->hub->metrics.idle_pings++;
}

void fo_session_sweep(fo_hub *h)
{
    uint64_t now = fo_hub_now_ms(h), idle = h->cfg.idle_timeout_ms, quiet;
    fo_session *s = h->sessions, *next;

    for (; s; s = next) {
        next = s->next;
        if (s->state == FO_SESSION_CLOSED && now - s->closed_ms > 2000) {
            fo_session_end(s); /* the peer never answered our close */
            continue;
        }
        if (!idle)
            continue;
        quiet = now - s->last_rx_ms;
        if (quiet > idle + 5000) {
            fo_session_end(s); /* closing, but our queue never drained to the close frame */
        } else if (quiet >= idle && s->pinged && now - s->ping_ms >= idle / 2 &&
                   s->state == FO_SESSION_OPEN) {
            FO_LOG(FO_LOG_INFO, "sid=%s idle for %llu ms (no pong): closing with %d", s->sid,
                   (unsigned long long)quiet, FO_SESSION_CLOSE_IDLE);
            h->metrics.idle_closes++;
            s->close_why = "idle timeout";
            s->rx_done = true;
            fo_session_close(s, FO_SESSION_CLOSE_IDLE);
        } else if (quiet >= idle / 2 && !s->pinged && s->state == FO_SESSION_OPEN) {
            ping(s);
        }
    }
}

/* A token in hello: checked as at the upgrade; valid, it becomes the connection's identity
 * (renewal). False (answered with `error unauthorized`) when it is not. */
static bool renew(fo_session *s, const fo_msg *m)
{
    fo_rights fresh;
    char why[256];

    if (!m->token || !s->hub->auth)
        return true; /* an open hub has no identities: a token is ignored */
    if (!fo_auth_check(s->hub->auth, m->token, fo_auth_now_ms(), &fresh, why, sizeof(why))) {
        fo_session_send_error(s, m, FO_ERR_UNAUTHORIZED, "token: %s (the identity is unchanged)",
                              why);
        return false;
    }
    fo_rights_destroy(&s->rights);
    s->rights = fresh;
    if (arm_expiry(s)) {
        fo_rights_destroy(&s->rights); /* no timer, no identity: no rights */
        fo_session_send_error(s, m, FO_ERR_INTERNAL, "out of memory");
        return false;
    }
    return true;
}

static void on_hello(fo_session *s, const fo_msg *m)
{
    fo_msg w;
    char server[64];

    if (s->expired) {
        fo_session_send_error(s, m, FO_ERR_UNAUTHORIZED, "token expired");
        return;
    }
    if (!renew(s, m))
        return;
    snprintf(s->client, sizeof(s->client), "%s", m->client);
    s->hello = true;
    snprintf(server, sizeof(server), "flushout-hub/0.1");
    memset(&w, 0, sizeof(w));
    w.type = FO_MSG_WELCOME;
    w.has_rid = m->has_rid;
    w.rid = m->rid;
    w.session = s->sid;
    w.server = server;
    w.max_frame = s->hub->cfg.max_frame;
    fo_session_send_msg(s, &w);
}

void fo_session_on_message(fo_session *s, const unsigned char *data, size_t len, bool binary)
{
    fo_hub *h = s->hub;
    fo_arena a;
    fo_msg m;
    fo_err_info err;
    uint64_t now = fo_hub_now_ms(h), wait;
    int rc;

    h->metrics.frames_in++;
    h->metrics.bytes_in += len;
    /* Over its byte budget, a frame is answered without being decoded (and still counted:
     * the budget is what the connection sends). */
    if ((wait = fo_bucket_charge(&s->rx_bucket, (double)h->cfg.bytes_rate,
                                 fo_limits_bytes_burst(h), (double)len, now))) {
        char model[201];

        memset(&m, 0, sizeof(m));
        fo_wire_peek(data, len, &m.has_rid, &m.rid, model, sizeof(model));
        m.model = model[0] ? model : NULL;
        m.model_len = (uint32_t)strlen(model);
        fo_session_send_retry(s, &m, FO_ERR_RATE_LIMITED, wait,
                              "over %zu inbound bytes per second (--bytes-rate): send it again "
                              "after retryAfterMs", h->cfg.bytes_rate);
        return;
    }
    if (!binary) {
        fo_session_send_error(s, NULL, FO_ERR_BAD_FRAME, "text frames are not accepted: "
                              "send one MessagePack map per binary frame");
        return;
    }
    fo_arena_init(&a, len < 2048 ? 4096 : len * 2);
    memset(&err, 0, sizeof(err));
    rc = fo_wire_decode(data, len, &h->limits, &a, &m, &err);
    if (rc != 0) {
        fo_error_code code = rc == FO_EINVAL ? FO_ERR_BAD_REQUEST
                             : rc == FO_ELIMIT ? FO_ERR_TOO_LARGE
                             : rc == FO_ENOMEM ? FO_ERR_INTERNAL
                                               : FO_ERR_BAD_FRAME;
        char model[201];

        /* Address the error with what can be read of rid and model: one reply per rid. */
        if (rc != FO_EINVAL) {
            memset(&m, 0, sizeof(m));
            fo_wire_peek(data, len, &m.has_rid, &m.rid, model, sizeof(model));
            m.model = model[0] ? model : NULL;
            m.model_len = (uint32_t)strlen(model);
        }
        fo_session_send_error(s, &m, code, "%s%s%s", err.path, err.path[0] ? ": " : "",
                              err.msg[0] ? err.msg : "malformed frame");
        fo_arena_destroy(&a);
        return;
    }
    switch (m.type) {
    case FO_MSG_HELLO:
        on_hello(s, &m);
        fo_arena_destroy(&a);
        return;
    case FO_MSG_SUB:
    case FO_MSG_UNSUB:
    case FO_MSG_FLUSH:
    case FO_MSG_GET:
    case FO_MSG_HISTORY:
    case FO_MSG_PRESENCE:
        if (!s->hello) {
            fo_session_send_error(s, &m, FO_ERR_BAD_REQUEST, "t: send hello first");
            break;
        }
        if (h->phase != FO_HUB_RUNNING) {
            fo_session_send_error(s, &m, FO_ERR_SHUTTING_DOWN, "the hub is shutting down");
            break;
        }
        if (s->expired) {
            fo_session_send_error(s, &m, FO_ERR_UNAUTHORIZED, "token expired");
            break;
        }
        if (!fo_rights_allow(&s->rights, m.model,
                             m.type == FO_MSG_FLUSH || m.type == FO_MSG_PRESENCE)) {
            fo_session_send_error(s, &m, FO_ERR_FORBIDDEN, "model: no %s rights on %s",
                                  m.type == FO_MSG_FLUSH || m.type == FO_MSG_PRESENCE ? "write"
                                                                                      : "read",
                                  m.model);
            break;
        }
        if (m.type == FO_MSG_FLUSH) {
            /* Shed before queueing: a refused flush was never seen, the same seq later
             * is applied once. */
            if ((wait = fo_overload_retry_ms(h))) {
                h->metrics.flush_errors++;
                fo_session_send_retry(s, &m, FO_ERR_OVERLOADED, wait,
                                      "the hub is overloaded: send the flush again after "
                                      "retryAfterMs");
                break;
            }
            if ((wait = fo_bucket_take(&s->flush_bucket, h->cfg.flush_rate,
                                       fo_limits_flush_burst(h), 1, now))) {
                h->metrics.flush_errors++;
                fo_session_send_retry(s, &m, FO_ERR_RATE_LIMITED, wait,
                                      "over %u flushes per second (--flush-rate): send it "
                                      "again after retryAfterMs", h->cfg.flush_rate);
                break;
            }
        } else if (m.type == FO_MSG_PRESENCE) {
            if (len > h->cfg.max_presence) {
                fo_session_send_error(s, &m, FO_ERR_TOO_LARGE, "state: a presence frame of %zu "
                                      "bytes is over %zu (--max-presence)", len,
                                      h->cfg.max_presence);
                break;
            }
            if ((wait = fo_bucket_take(&s->presence_bucket, h->cfg.presence_rate,
                                       fo_limits_presence_burst(h), 1, now))) {
                fo_session_send_retry(s, &m, FO_ERR_RATE_LIMITED, wait,
                                      "over %u presence updates per second "
                                      "(--presence-rate): send it again after retryAfterMs",
                                      h->cfg.presence_rate);
                break;
            }
        }
        h->session_port.request(h, s, &m, &a, fo_now_ns());
        return; /* the model owns the arena now */
    default:
        fo_session_send_error(s, &m, FO_ERR_BAD_REQUEST, "t: %s is not a request",
                              fo_msg_type_name(m.type));
        break;
    }
    fo_arena_destroy(&a);
}

void fo_session_too_large(fo_session *s, const unsigned char *start, size_t len)
{
    fo_msg req;
    char model[201];

    /* The frame is dropped unread; its start may still name the rid to answer. */
    memset(&req, 0, sizeof(req));
    model[0] = '\0';
    fo_wire_peek(start, len, &req.has_rid, &req.rid, model, sizeof(model));
    req.model = model[0] ? model : NULL;
    req.model_len = (uint32_t)strlen(model);
    fo_session_send_error(s, &req, FO_ERR_TOO_LARGE, "frame exceeds maxFrame (%zu bytes)",
                          s->hub->cfg.max_frame);
}

/* Corked writes: every session that got frames during this loop turn writes them now, in
 * one socket write, straight from here. Nothing changes what a socket is polled for unless
 * a write is partial. */
void fo_session_flush_dirty(fo_hub *h)
{
    fo_session *s;

    do {
        s = h->dirty;
        h->dirty = h->dirty_tail = NULL;
        while (s) {
            fo_session *next = s->dirty_next;

            s->in_dirty = false;
            s->dirty_next = NULL;
            if (s->fd >= 0 && !s->want_write) {
                h->metrics.write_turns++;
                fo_wsconn_write(s); /* a catch-up may queue more: handled in the next pass */
            }
            fo_session_unref(s);
            s = next;
        }
        /* This pass's writes (and any queued since the last pass, by a socket that drained
         * during the poll), together (sendq.h); their answers may queue more. */
        fo_sendq_submit(h->sendq);
        if (fo_sendq_broken(h->sendq)) {
            FO_LOG(FO_LOG_ERROR, "io_uring failed: its batch's connections end; socket "
                                 "writes are one send() each from now on");
            fo_sendq_close(h->sendq);
            h->sendq = NULL;
        }
    } while (h->dirty);
    uv_idle_stop(&h->kick);
}
