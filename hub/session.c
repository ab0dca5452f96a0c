#include "hub/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/http.h"
#include "hub/hub.h"
#include "hub/log.h"

/* Largest packed write: big enough to amortise the syscall, small enough that one busy
 * connection does not hold the loop for long. */
#define PACK_MAX (256 * 1024)

static void session_free(fo_session *s)
{
    uint32_t i;

    for (i = 0; i < s->qlen; i++)
        fo_frame_unref(s->q[(s->qhead + i) % s->qcap].frame);
    free(s->q);
    free(s->rx);
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
 * the pushes it caused when it was queued first). A session waiting for lws's writable
 * callback is written from that callback instead. */
static void mark_dirty(fo_session *s)
{
    fo_hub *h = s->hub;

    if (s->in_dirty || s->want_write || !s->wsi)
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

static int enqueue(fo_session *s, fo_frame *f, fo_sub *sub, uint64_t from)
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
    s->qlen++;
    s->qbytes += f->len;
    /* Replies cannot be dropped (one per rid), so a client that sends requests without
     * reading the answers is stopped from sending more until it reads: memory per
     * connection stays bounded. */
    if (!s->rx_paused && s->wsi && s->qbytes > 2 * s->hub->cfg.max_queue) {
        s->rx_paused = true;
        lws_rx_flow_control(s->wsi, 0);
    }
    mark_dirty(s);
    return 0;
}

void fo_session_send(fo_session *s, fo_frame *f)
{
    if (!f || s->state == FO_SESSION_DETACHED)
        return;
    if (enqueue(s, f, NULL, 0))
        FO_LOG(FO_LOG_ERROR, "sid=%s out of memory queueing a frame", s->sid);
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
    if (enqueue(s, f, sub, from))
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

void fo_session_send_error(fo_session *s, const fo_msg *req, fo_error_code code,
                           const char *fmt, ...)
{
    char text[512];
    fo_msg m;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    memset(&m, 0, sizeof(m));
    m.type = FO_MSG_ERROR;
    m.code = code;
    m.message = text;
    if (req) {
        m.has_rid = req->has_rid;
        m.rid = req->rid;
        m.model = req->model;
        m.model_len = req->model_len;
    }
    if (code == FO_ERR_BAD_FRAME || code == FO_ERR_BAD_REQUEST)
        s->hub->metrics.bad_frames++;
    FO_LOG(FO_LOG_DEBUG, "sid=%s error %s: %s", s->sid, fo_error_code_name(code), text);
    fo_session_send_msg(s, &m);
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
            break;
        }
    }
    /* Queued pushes of this subscription must not outlive it. */
    drop_pushes(s, sub);
}

/* ---- connection events --------------------------------------------------------------- */

static void read_token(struct lws *wsi, char *tok, size_t cap)
{
    char auth[512];
    int n;

    tok[0] = '\0';
    n = lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 7 && strncasecmp(auth, "Bearer ", 7) == 0) {
        snprintf(tok, cap, "%s", auth + 7);
        return;
    }
    if (lws_get_urlarg_by_name(wsi, "token=", auth, sizeof(auth)))
        snprintf(tok, cap, "%s", lws_get_urlarg_by_name(wsi, "token=", auth, sizeof(auth)));
}

/* The upgrade is allowed on /v1/ws only, and with a valid token when --auth is set. */
static int confirm_upgrade(fo_hub *h, struct lws *wsi)
{
    char uri[256], tok[512];
    fo_rights r;

    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/v1/ws")) {
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "WebSocket endpoint is /v1/ws");
        return 1;
    }
    if (h->phase != FO_HUB_RUNNING) {
        lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "shutting down");
        return 1;
    }
    if (h->auth) {
        read_token(wsi, tok, sizeof(tok));
        if (!tok[0] || !fo_auth_check(h->auth, tok, &r)) {
            FO_LOG(FO_LOG_INFO, "upgrade refused: %s token", tok[0] ? "bad" : "missing");
            lws_return_http_status(wsi, HTTP_STATUS_UNAUTHORIZED, "missing or bad token");
            return 1;
        }
    }
    return 0;
}

static int on_established(fo_hub *h, struct lws *wsi, fo_session **slot)
{
    fo_session *s = calloc(1, sizeof(*s));
    char tok[512];

    if (!s)
        return -1;
    s->hub = h;
    s->wsi = wsi;
    s->refs = 1;
    s->id = ++h->next_session_id;
    snprintf(s->sid, sizeof(s->sid), "%llu", (unsigned long long)s->id);
    s->rights.open = h->auth == NULL;
    if (h->auth) {
        read_token(wsi, tok, sizeof(tok));
        fo_auth_check(h->auth, tok, &s->rights);
    }
    lws_get_peer_simple(wsi, s->peer, sizeof(s->peer));
    s->next = h->sessions;
    if (h->sessions)
        h->sessions->prev = s;
    h->sessions = s;
    h->nsessions++;
    h->metrics.connections_total++;
    *slot = s;
    FO_LOG(FO_LOG_INFO, "sid=%s connected from %s", s->sid, s->peer);
    return 0;
}

static void on_closed(fo_session *s)
{
    fo_hub *h = s->hub;

    FO_LOG(FO_LOG_INFO, "sid=%s disconnected", s->sid);
    while (s->subs)
        h->session_port.closed(s->subs);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->nsessions--;
    s->state = FO_SESSION_DETACHED;
    s->wsi = NULL;
    fo_session_unref(s);
}

static void on_hello(fo_session *s, const fo_msg *m)
{
    fo_msg w;
    char server[64];

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

static void on_message(fo_session *s, const unsigned char *data, size_t len, bool binary)
{
    fo_hub *h = s->hub;
    fo_arena a;
    fo_msg m;
    fo_err_info err;
    int rc;

    h->metrics.frames_in++;
    h->metrics.bytes_in += len;
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
        if (!fo_rights_allow(&s->rights, m.model,
                             m.type == FO_MSG_FLUSH || m.type == FO_MSG_PRESENCE)) {
            fo_session_send_error(s, &m, FO_ERR_FORBIDDEN, "model: no %s rights on %s",
                                  m.type == FO_MSG_FLUSH || m.type == FO_MSG_PRESENCE ? "write"
                                                                                      : "read",
                                  m.model);
            break;
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

static int on_receive(fo_session *s, struct lws *wsi, const void *in, size_t len)
{
    size_t max = s->hub->cfg.max_frame;
    bool first = lws_is_first_fragment(wsi);
    bool last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;

    if (first && last && len <= max) {
        /* A whole message in lws's buffer: decode it in place, nothing kept per idle
         * connection. */
        on_message(s, in, len, lws_frame_is_binary(wsi));
        return 0;
    }
    if (first) {
        s->rx_len = 0;
        s->rx_discard = false;
        s->rx_binary = lws_frame_is_binary(wsi);
    }
    if (!s->rx_discard) {
        if (s->rx_len + len > max) {
            fo_msg req;
            char model[201];

            /* The frame is dropped unread; its start may still name the rid to answer. */
            memset(&req, 0, sizeof(req));
            model[0] = '\0';
            if (s->rx_len)
                fo_wire_peek(s->rx, s->rx_len, &req.has_rid, &req.rid, model, sizeof(model));
            else
                fo_wire_peek(in, len, &req.has_rid, &req.rid, model, sizeof(model));
            req.model = model[0] ? model : NULL;
            req.model_len = (uint32_t)strlen(model);
            s->rx_discard = true;
            fo_session_send_error(s, &req, FO_ERR_TOO_LARGE,
                                  "frame exceeds maxFrame (%zu bytes)", max);
        } else {
            if (s->rx_len + len > s->rx_cap) {
                size_t ncap = s->rx_cap ? s->rx_cap : 4096;
                unsigned char *n;
                while (ncap < s->rx_len + len)
                    ncap *= 2;
                if (!(n = realloc(s->rx, ncap)))
                    return -1;
                s->rx = n;
                s->rx_cap = ncap;
            }
            memcpy(s->rx + s->rx_len, in, len);
            s->rx_len += len;
        }
    }
    if (last) {
        if (!s->rx_discard)
            on_message(s, s->rx, s->rx_len, s->rx_binary);
        /* Fragmented messages are rare: keep no buffer between them. */
        free(s->rx);
        s->rx = NULL;
        s->rx_len = s->rx_cap = 0;
    }
    return 0;
}

static size_t ws_header(unsigned char *p, size_t len)
{
    p[0] = 0x82; /* FIN, binary */
    if (len < 126) {
        p[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        p[1] = 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        return 4;
    }
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Packs queued frames (each with its own WebSocket header) into one buffer and writes it
 * with one lws_write (LWS_WRITE_RAW: valid because no extension, permessage-deflate, is
 * enabled). -1 when the socket failed. */
static int write_packed(fo_session *s)
{
    fo_hub *h = s->hub;
    size_t off = 0;
    uint32_t n = 0;

    while (s->qlen && off < PACK_MAX) {
        fo_outq_item *it = &s->q[s->qhead];
        size_t need = off + 10 + it->frame->len;

        if (LWS_PRE + need > h->wbuf_cap) {
            size_t ncap = h->wbuf_cap ? h->wbuf_cap : 65536;
            unsigned char *nb;
            while (ncap < LWS_PRE + need)
                ncap *= 2;
            if (!(nb = realloc(h->wbuf, ncap)))
                return -1;
            h->wbuf = nb;
            h->wbuf_cap = ncap;
        }
        off += ws_header(h->wbuf + LWS_PRE + off, it->frame->len);
        memcpy(h->wbuf + LWS_PRE + off, it->frame->data, it->frame->len);
        off += it->frame->len;
        s->qbytes -= it->frame->len;
        h->metrics.bytes_out += it->frame->len;
        fo_frame_unref(it->frame);
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
        n++;
    }
    h->metrics.frames_out += n;
    h->metrics.writes++;
    /* lws 4.1 sends at once (one send(), capped at the protocol's tx_packet_size); what
     * the socket does not take it copies and sends on POLLOUT, then calls WRITEABLE. */
    if (lws_write(s->wsi, h->wbuf + LWS_PRE, off, LWS_WRITE_RAW) < (int)off)
        return -1;
    if (lws_partial_buffered(s->wsi)) {
        /* Nothing more until lws has drained its copy: writing on would append to it
         * without bound. The WRITEABLE callback that follows the drain resumes. */
        s->want_write = true;
        h->metrics.partial_writes++;
    }
    return 0;
}

/* Writes what is queued as long as the socket takes it whole. Returns -1 when the socket
 * failed, 1 when a closing session has written everything (the caller closes it). */
static int write_out(fo_session *s)
{
    while (s->qlen && !s->want_write)
        if (write_packed(s))
            return -1;
    if (s->rx_paused && s->qbytes < s->hub->cfg.max_queue / 2) {
        s->rx_paused = false;
        lws_rx_flow_control(s->wsi, 1);
    }
    if (s->qlen || s->want_write)
        return 0;
    if (s->state == FO_SESSION_CLOSING)
        return 1;
    /* Drained: subscribers whose pushes were dropped catch up now. */
    for (fo_sub *sub = s->subs; sub; sub = sub->snext)
        if (sub->lagging)
            s->hub->session_port.drained(sub);
    return 0;
}

/* Asks lws for a writable callback (for a close, or after a failed write: lws closes the
 * connection when the callback returns -1). */
static void request_writable(fo_session *s)
{
    s->want_write = true;
    s->hub->metrics.writable_requests++;
    lws_callback_on_writable(s->wsi);
}

/* Corked writes: every session that got frames during this loop turn writes them now, in
 * one socket write, straight from here. No writable request and no epoll_ctl per frame:
 * only a write the socket does not take whole waits for POLLOUT. */
void fo_session_flush_dirty(fo_hub *h)
{
    fo_session *s;

    while ((s = h->dirty)) {
        h->dirty = h->dirty_tail = NULL;
        while (s) {
            fo_session *next = s->dirty_next;
            int rc = 0;

            s->in_dirty = false;
            s->dirty_next = NULL;
            if (s->wsi && !s->want_write) {
                h->metrics.write_turns++;
                rc = write_out(s); /* a catch-up may queue more: handled in the next pass */
                if (rc)
                    request_writable(s);
                if (rc < 0)
                    s->write_failed = true;
            }
            fo_session_unref(s);
            s = next;
        }
    }
    uv_idle_stop(&h->kick);
}

/* The WRITEABLE callback: lws has drained a partial write (or a close was requested). */
static int on_writeable(fo_session *s)
{
    int rc;

    s->want_write = false;
    if (s->write_failed)
        return -1;
    rc = s->state == FO_SESSION_CLOSING && !s->qlen ? 1 : write_out(s);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        /* The close frame is written as raw bytes like every other frame: lws 4.1 drops
         * a reason set with lws_close_reason when the callback itself returns -1. */
        static const char reason[] = "shutting down";
        unsigned char frame[LWS_PRE + 4 + sizeof(reason)], *p = frame + LWS_PRE;
        size_t flen = 4 + sizeof(reason) - 1;

        p[0] = 0x88; /* FIN, close */
        p[1] = (unsigned char)(flen - 2);
        p[2] = (unsigned char)(s->close_code >> 8);
        p[3] = (unsigned char)s->close_code;
        memcpy(p + 4, reason, sizeof(reason) - 1);
        lws_write(s->wsi, p, flen, LWS_WRITE_RAW);
        return -1;
    }
    return 0;
}

int fo_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                        void *in, size_t len)
{
    fo_hub *h = lws_context_user(lws_get_context(wsi));
    fo_session **slot = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: return confirm_upgrade(h, wsi);
    case LWS_CALLBACK_ESTABLISHED: return on_established(h, wsi, slot);
    case LWS_CALLBACK_RECEIVE: return slot && *slot ? on_receive(*slot, wsi, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE: return slot && *slot ? on_writeable(*slot) : 0;
    case LWS_CALLBACK_CLOSED:
        if (slot && *slot) {
            on_closed(*slot);
            *slot = NULL;
        }
        return 0;
    default: return fo_http_callback(wsi, reason, user, in, len);
    }
}
