#include "hub/wsconn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hub/hub.h"
#include "hub/log.h"
#include "proto/ws.h"

/* Largest packed write: big enough to amortise the syscall, small enough that one busy
 * connection does not hold the loop for long; also the most a partial write keeps. */
#define PACK_MAX (256 * 1024)
/* What an unfinished frame's first bytes get when its length is not known yet. */
#define RX_MIN 4096
/* A message over --max-frame is answered with `error too_large` (the contract's answer,
 * with the rid read from its start) and its bytes are dropped as they come, never
 * buffered; one that declares more than DROP_FACTOR times --max-frame is not worth reading
 * to its end: the connection is failed at once with 1009. */
#define DROP_FACTOR 4

static void on_io(uv_poll_t *p, int status, int events);

void fo_wsconn_update_poll(fo_session *s)
{
    int ev = 0;

    if (s->fd < 0)
        return;
    if (!s->rx_paused)
        ev |= UV_READABLE;
    if (s->want_write)
        ev |= UV_WRITABLE;
    if (ev == s->poll_events)
        return;
    if ((ev & UV_WRITABLE) && !(s->poll_events & UV_WRITABLE))
        s->hub->metrics.writable_requests++;
    s->poll_events = ev;
    if (ev)
        uv_poll_start(s->poll, ev, on_io);
    else
        uv_poll_stop(s->poll);
}

void fo_wsconn_free(fo_session *s)
{
    fo_tls_free(s->tls);
    s->tls = NULL;
    free(s->rx);
    free(s->msg);
    free(s->wpend);
    s->rx = s->msg = s->wpend = NULL;
    s->rx_len = s->rx_cap = s->msg_len = s->msg_cap = s->wpend_len = s->wpend_off = 0;
}

/* ---- in -------------------------------------------------------------------------------- */

/* A framing violation: nothing more is read; the queue is written, then a close frame. */
static void fail(fo_session *s, uint16_t code, const char *why)
{
    FO_LOG(FO_LOG_INFO, "sid=%s closing with %u: %s", s->sid, code, why);
    s->rx_done = true;
    if (s->state == FO_SESSION_OPEN)
        s->close_why = why;
    fo_session_close(s, code);
}

static void on_control(fo_session *s, int op, const unsigned char *p, size_t len)
{
    if (op == FO_WS_OP_PING) {
        unsigned char frame[2 + FO_WS_CONTROL_MAX];
        size_t n;
        fo_frame *f;

        if (len > FO_WS_CONTROL_MAX)
            return; /* fo_ws_header_parse refuses such a frame; said here for the compiler */
        n = fo_ws_frame_build(frame, FO_WS_OP_PONG, true, p, len, NULL);
        if ((f = fo_frame_new(frame, n))) {
            fo_session_send_control(s, f);
            fo_frame_unref(f);
        }
    } else if (op == FO_WS_OP_CLOSE) {
        unsigned code = len >= 2 ? (unsigned)p[0] << 8 | p[1] : FO_WS_CLOSE_NORMAL;
        fo_ws_utf8 u;

        fo_ws_utf8_reset(&u);
        if (len == 1 || (len >= 2 && !fo_ws_close_code_valid(code)))
            return fail(s, FO_WS_CLOSE_PROTOCOL, "a malformed close frame");
        if (len > 2 && (fo_ws_utf8_feed(&u, p + 2, len - 2) || !fo_ws_utf8_done(&u)))
            return fail(s, FO_WS_CLOSE_INVALID_DATA, "a close reason that is not UTF-8");
        /* Echo the code (RFC 6455 5.5.1) once what is queued has been written. */
        s->rx_done = true;
        fo_session_close(s, (uint16_t)code);
    }
    /* A pong answers nothing. */
}

/* Appends a fragment to the message being reassembled. */
static int msg_append(fo_session *s, const unsigned char *p, size_t len)
{
    if (s->msg_len + len > s->msg_cap) {
        size_t ncap = s->msg_cap ? s->msg_cap : RX_MIN;
        unsigned char *n;
        while (ncap < s->msg_len + len)
            ncap *= 2;
        if (!(n = realloc(s->msg, ncap)))
            return FO_ENOMEM;
        s->msg = n;
        s->msg_cap = ncap;
    }
    memcpy(s->msg + s->msg_len, p, len);
    s->msg_len += len;
    return 0;
}

static void msg_reset(fo_session *s)
{
    free(s->msg);
    s->msg = NULL;
    s->msg_len = s->msg_cap = 0;
}

/* Handles every whole frame of buf[0, len); returns the bytes used. *need gets the size of
 * the unfinished frame at the end when its header shows it, else 0. */
static size_t consume(fo_session *s, unsigned char *buf, size_t len, size_t *need)
{
    size_t off = 0, max = s->hub->cfg.max_frame;

    *need = 0;
    while (off < len) {
        fo_ws_header hd;
        const char *why = NULL;
        unsigned char *pl;
        size_t avail, take;
        uint64_t so_far;
        int rc;

        if (s->rx_done)
            return len; /* after a close or a violation: dropped */
        if (s->rx_skip) {
            take = len - off < s->rx_skip ? len - off : (size_t)s->rx_skip;
            off += take;
            s->rx_skip -= take;
            continue;
        }
        rc = fo_ws_header_parse(buf + off, len - off, FO_WS_SIDE_SERVER, &hd, &why);
        if (rc == FO_EAGAIN)
            break;
        if (rc < 0) {
            fail(s, FO_WS_CLOSE_PROTOCOL, why ? why : "a malformed frame header");
            return len;
        }
        pl = buf + off + hd.size;
        avail = len - off - hd.size;
        if (hd.opcode >= FO_WS_OP_CLOSE) { /* control: whole, at most 125 bytes */
            if (avail < hd.len) {
                *need = hd.size + (size_t)hd.len;
                break;
            }
            fo_ws_mask(pl, pl, (size_t)hd.len, hd.mask, 0);
            on_control(s, hd.opcode, pl, (size_t)hd.len);
            off += hd.size + (size_t)hd.len;
            continue;
        }
        if ((hd.opcode == FO_WS_OP_CONT) != s->in_msg) {
            fail(s, FO_WS_CLOSE_PROTOCOL, s->in_msg ? "a new message inside a fragmented one"
                                                    : "a continuation without a message");
            return len;
        }
        so_far = !s->in_msg ? 0 : s->msg_discard ? s->msg_dropped : s->msg_len;
        if (so_far + hd.len > max) { /* always true while a message is being dropped */
            if (so_far + hd.len > (uint64_t)max * DROP_FACTOR) {
                fail(s, FO_WS_CLOSE_TOO_BIG, "a message far over maxFrame");
                return len;
            }
            /* Too large: answered from what can be read of its start, never buffered. */
            take = avail < hd.len ? avail : (size_t)hd.len;
            if (!s->msg_discard) {
                if (s->in_msg && s->msg_len) {
                    fo_session_too_large(s, s->msg, s->msg_len);
                } else {
                    fo_ws_mask(pl, pl, take, hd.mask, 0);
                    fo_session_too_large(s, pl, take);
                }
                msg_reset(s);
            }
            s->msg_discard = s->in_msg = !hd.fin;
            s->msg_dropped = hd.fin ? 0 : so_far + hd.len;
            off += hd.size + take;
            s->rx_skip = hd.len - take;
            continue;
        }
        if (avail < hd.len) {
            *need = hd.size + (size_t)hd.len;
            break;
        }
        fo_ws_mask(pl, pl, (size_t)hd.len, hd.mask, 0);
        off += hd.size + (size_t)hd.len;
        /* Text must be UTF-8 (RFC 6455 8.1), fragment by fragment so that it fails early.
         * The hub answers text with bad_frame, but invalid text fails the connection. */
        if (hd.opcode == FO_WS_OP_TEXT)
            fo_ws_utf8_reset(&s->msg_utf8);
        if ((hd.opcode == FO_WS_OP_TEXT || (s->in_msg && !s->msg_binary)) &&
            (fo_ws_utf8_feed(&s->msg_utf8, pl, (size_t)hd.len) ||
             (hd.fin && !fo_ws_utf8_done(&s->msg_utf8)))) {
            fail(s, FO_WS_CLOSE_INVALID_DATA, "a text message that is not UTF-8");
            return len;
        }
        if (hd.fin && !s->in_msg) {
            /* The common case: a whole message in one frame, read where it lies. */
            fo_session_on_message(s, pl, (size_t)hd.len, hd.opcode == FO_WS_OP_BINARY);
            continue;
        }
        if (!s->in_msg) {
            s->in_msg = true;
            s->msg_binary = hd.opcode == FO_WS_OP_BINARY;
        }
        if (msg_append(s, pl, (size_t)hd.len)) {
            fail(s, FO_WS_CLOSE_INTERNAL, "out of memory reassembling a message");
            return len;
        }
        if (hd.fin) {
            s->in_msg = false;
            fo_session_on_message(s, s->msg, s->msg_len, s->msg_binary);
            msg_reset(s); /* fragmented messages are rare: no buffer kept between them */
        }
    }
    return off;
}

/* Keeps the bytes of an unfinished frame (sized for the whole frame when known). */
static int keep_rest(fo_session *s, unsigned char *buf, size_t used, size_t len, size_t need)
{
    size_t rest = len - used, cap = need > rest ? need : rest;

    if (cap < RX_MIN)
        cap = RX_MIN;
    if (buf == s->rx) {
        if (!rest) {
            free(s->rx);
            s->rx = NULL;
            s->rx_len = s->rx_cap = 0;
            return 0;
        }
        memmove(s->rx, s->rx + used, rest);
        s->rx_len = rest;
        if (cap > s->rx_cap) {
            unsigned char *n = realloc(s->rx, cap);
            if (!n)
                return FO_ENOMEM;
            s->rx = n;
            s->rx_cap = cap;
        }
        return 0;
    }
    if (!rest)
        return 0;
    if (!(s->rx = malloc(cap)))
        return FO_ENOMEM;
    memcpy(s->rx, buf + used, rest);
    s->rx_len = rest;
    s->rx_cap = cap;
    return 0;
}

static void handle(fo_session *s, unsigned char *buf, size_t len)
{
    size_t need, used = consume(s, buf, len, &need);

    if (s->fd >= 0 && keep_rest(s, buf, used, len, need))
        fail(s, FO_WS_CLOSE_INTERNAL, "out of memory reading a frame");
}

static void tls_decrypt(fo_session *s);

void fo_wsconn_feed(fo_session *s, unsigned char *data, size_t len)
{
    if (len)
        handle(s, data, len);
    if (s->tls && s->fd >= 0 && fo_tls_buffered(s->tls)) /* what came with the head */
        tls_decrypt(s);
}

/* Where the next bytes read go: the shared buffer, or an unfinished frame's. -1 when its
 * buffer cannot grow (the session is failing). */
static int read_into(fo_session *s, unsigned char **buf, size_t *len, size_t *cap)
{
    fo_hub *h = s->hub;

    *buf = h->rbuf;
    *len = 0;
    *cap = sizeof(h->rbuf);
    if (s->rx_len) { /* an unfinished frame: read on into its buffer */
        if (s->rx_cap == s->rx_len) {
            unsigned char *nb = realloc(s->rx, s->rx_cap * 2);
            if (!nb) {
                fail(s, FO_WS_CLOSE_INTERNAL, "out of memory reading a frame");
                return -1;
            }
            s->rx = nb;
            s->rx_cap *= 2;
        }
        *buf = s->rx;
        *len = s->rx_len;
        *cap = s->rx_cap;
    }
    return 0;
}

/* ---- TLS (--tls-cert): the same path, with OpenSSL between the socket and the frames ---- */

/* Sends pending TLS output; arms POLLOUT while the socket does not take it all. -1 when the
 * socket failed. */
static int tls_flush(fo_session *s)
{
    long left = fo_tls_send_fd(s->tls, s->fd);

    if (left < 0)
        return -1;
    if ((left > 0) != s->want_write) {
        s->want_write = left > 0;
        if (left > 0)
            s->hub->metrics.partial_writes++;
        fo_wsconn_update_poll(s);
    }
    return 0;
}

/* Decrypts what was handed in (and what OpenSSL holds) and handles it as plaintext reads
 * are handled. May end the session. */
static void tls_decrypt(fo_session *s)
{
    for (;;) {
        unsigned char *buf;
        size_t len, cap;
        long n;

        if (read_into(s, &buf, &len, &cap))
            return;
        n = fo_tls_read(s->tls, buf + len, cap - len);
        if (n == FO_TLS_AGAIN)
            break;
        if (n < 0) { /* close_notify, or a TLS failure: nothing more can be read */
            if (n != FO_TLS_CLOSED)
                FO_LOG(FO_LOG_INFO, "sid=%s TLS: %s", s->sid, fo_tls_error(s->tls));
            fo_session_end(s);
            return;
        }
        if (s->state != FO_SESSION_CLOSED)
            handle(s, buf, len + (size_t)n);
        if (s->fd < 0)
            return;
    }
    if (tls_flush(s)) /* a key update's answer, say */
        fo_session_end(s);
}

static void on_readable_tls(fo_session *s)
{
    ssize_t n = recv(s->fd, s->hub->tls_in, sizeof(s->hub->tls_in), 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        fo_session_end(s);
        return;
    }
    s->last_rx_ms = fo_hub_now_ms(s->hub); /* --idle-timeout-ms: bytes on the socket */
    s->pinged = false;
    fo_tls_input(s->tls, s->hub->tls_in, (size_t)n);
    tls_decrypt(s);
}

static void on_readable(fo_session *s)
{
    unsigned char *buf;
    size_t len, cap;
    ssize_t n;

    if (s->tls)
        return on_readable_tls(s);
    if (read_into(s, &buf, &len, &cap))
        return;
    n = recv(s->fd, buf + len, cap - len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) { /* EOF (the peer closed, or answered our close) or a socket error */
        fo_session_end(s);
        return;
    }
    s->last_rx_ms = fo_hub_now_ms(s->hub); /* --idle-timeout-ms: anything, a pong too */
    s->pinged = false;
    if (s->state == FO_SESSION_CLOSED)
        return; /* our close frame is out: what still comes is dropped */
    handle(s, buf, len + (size_t)n);
}

/* ---- out ------------------------------------------------------------------------------- */

/* How many queued frames the next pack takes (up to PACK_MAX, at least one) and the bytes
 * it may need (headers counted at their largest). */
static size_t pack_bound(const fo_session *s, uint32_t *count)
{
    size_t bound = 0;
    uint32_t n = 0, i = s->qhead;

    while (n < s->qlen && bound < PACK_MAX) {
        bound += FO_WS_HEADER_MAX + s->q[i].frame->len;
        i = (i + 1) % s->qcap;
        n++;
    }
    *count = n;
    return bound;
}

/* Moves the next `count` queued frames into dst, framed; returns the bytes written. */
static size_t pack(fo_session *s, unsigned char *dst, uint32_t count)
{
    fo_hub *h = s->hub;
    size_t off = 0;

    for (uint32_t n = 0; n < count; n++) {
        fo_outq_item *it = &s->q[s->qhead];

        if (!it->control)
            off += fo_ws_header_build(dst + off, FO_WS_OP_BINARY, true, it->frame->len, NULL);
        memcpy(dst + off, it->frame->data, it->frame->len);
        off += it->frame->len;
        s->qbytes -= it->frame->len;
        h->metrics.bytes_out += it->frame->len;
        fo_frame_unref(it->frame);
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
    }
    h->metrics.frames_out += count;
    h->metrics.writes++;
    return off;
}

/* A write of buf[0, len) took n bytes (or failed with -n): an unsent end is kept and
 * written when the socket is writable, before anything else. -1 when the socket failed. */
static int sent(fo_session *s, const unsigned char *buf, size_t len, ssize_t n)
{
    if (n < 0) {
        if (n != -EAGAIN && n != -EINTR)
            return -1;
        n = 0;
    }
    if ((size_t)n < len) {
        if (!(s->wpend = malloc(len - (size_t)n)))
            return -1;
        memcpy(s->wpend, buf + n, len - (size_t)n);
        s->wpend_len = len - (size_t)n;
        s->wpend_off = 0;
        s->want_write = true;
        s->hub->metrics.partial_writes++;
        fo_wsconn_update_poll(s);
    }
    return 0;
}

/* The hub's write buffer is freed after a write that grew it past this. */
#define WBUF_KEEP (4u << 20)

/* Packs queued frames into the hub's buffer and sends them now. -1 when the socket
 * failed. */
static int send_pack(fo_session *s)
{
    fo_hub *h = s->hub;
    uint32_t count;
    size_t need = pack_bound(s, &count), off;
    ssize_t n;
    int rc;

    if (need > h->wbuf_cap) {
        size_t ncap = h->wbuf_cap ? h->wbuf_cap : 65536;
        unsigned char *nb;
        while (ncap < need)
            ncap *= 2;
        if (!(nb = realloc(h->wbuf, ncap)))
            return -1;
        h->wbuf = nb;
        h->wbuf_cap = ncap;
    }
    off = pack(s, h->wbuf, count);
    if (s->tls) { /* encrypted whole, then sent as one write */
        rc = fo_tls_write(s->tls, h->wbuf, off) ? -1 : tls_flush(s);
    } else {
        n = send(s->fd, h->wbuf, off, MSG_NOSIGNAL);
        rc = sent(s, h->wbuf, off, n < 0 ? -errno : n);
    }
    /* A buffer grown for one big write (a large document's sync) is not kept: what was not
     * sent is in s->wpend (or the TLS layer's buffer). */
    if (h->wbuf_cap > WBUF_KEEP) {
        free(h->wbuf);
        h->wbuf = NULL;
        h->wbuf_cap = 0;
    }
    return rc;
}

/* Packs queued frames into the hub's send batch (sendq.h); fo_wsconn_sent finishes the
 * write when the batch is submitted. false when the batch cannot take it (it is being
 * answered, or out of memory): the caller sends directly. */
static bool queue_pack(fo_session *s)
{
    fo_sendq *q = s->hub->sendq;
    uint32_t count;
    size_t need = pack_bound(s, &count), off;
    unsigned char *dst = fo_sendq_reserve(q, need);

    if (!dst && fo_sendq_queued(q)) { /* the batch is full: it goes now, then this one */
        fo_sendq_submit(q);
        if (s->fd < 0 || s->want_write || s->state == FO_SESSION_CLOSED || !s->qlen)
            return true; /* an answer in that batch changed this session: nothing to do */
        need = pack_bound(s, &count);
        dst = fo_sendq_reserve(q, need);
    }
    if (!dst)
        return false;
    fo_session_ref(s);
    s->sending = true;
    off = pack(s, dst, count);
    if (fo_sendq_add(q, s->fd, dst, off, s)) { /* not expected: there was room */
        ssize_t n = send(s->fd, dst, off, MSG_NOSIGNAL);
        fo_wsconn_sent(s, dst, off, n < 0 ? -errno : n);
    }
    return true;
}

/* Sends the rest of a partial write. -1 when the socket failed. */
static int send_pending(fo_session *s)
{
    ssize_t n;

    if (s->tls) {
        s->hub->metrics.writes++;
        return tls_flush(s);
    }
    n = send(s->fd, s->wpend + s->wpend_off, s->wpend_len - s->wpend_off, MSG_NOSIGNAL);

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    s->hub->metrics.writes++;
    s->wpend_off += (size_t)n;
    if (s->wpend_off == s->wpend_len) {
        free(s->wpend);
        s->wpend = NULL;
        s->wpend_len = s->wpend_off = 0;
        s->want_write = false;
        fo_wsconn_update_poll(s);
    }
    return 0;
}

static void send_close(fo_session *s)
{
    const char *reason = s->close_why                                 ? s->close_why
                         : s->close_code == FO_WS_CLOSE_GOING_AWAY ? "shutting down"
                         : s->close_code == FO_WS_CLOSE_PROTOCOL ? "protocol error"
                         : s->close_code == FO_SESSION_CLOSE_TOKEN_EXPIRED ? "token expired"
                                                                           : "";
    unsigned char payload[FO_WS_CONTROL_MAX], frame[2 + sizeof(payload)];
    size_t rlen = strlen(reason), n;

    if (rlen > sizeof(payload) - 2)
        rlen = sizeof(payload) - 2; /* the reasons are static ASCII sentences */

    payload[0] = (unsigned char)(s->close_code >> 8);
    payload[1] = (unsigned char)s->close_code;
    memcpy(payload + 2, reason, rlen);
    n = fo_ws_frame_build(frame, FO_WS_OP_CLOSE, true, payload, 2 + rlen, NULL);
    /* Small, and the socket has just taken everything before it. */
    if (s->tls) {
        if (fo_tls_write(s->tls, frame, n) == 0)
            fo_tls_shutdown(s->tls);
        if (fo_tls_send_fd(s->tls, s->fd) != 0)
            FO_LOG(FO_LOG_DEBUG, "sid=%s close frame not sent whole", s->sid);
    } else if (send(s->fd, frame, n, MSG_NOSIGNAL) < 0) {
        FO_LOG(FO_LOG_DEBUG, "sid=%s close frame not sent: %s", s->sid, strerror(errno));
    }
    shutdown(s->fd, SHUT_WR);
    s->state = FO_SESSION_CLOSED;
    s->closed_ms = fo_hub_now_ms(s->hub);
    s->rx_done = true;
    if (s->rx_paused) { /* read on: the peer's EOF ends the session */
        s->rx_paused = false;
        fo_wsconn_update_poll(s);
    }
}

/* After the queue went out (or what the socket took of it): reading resumes below half of
 * --max-queue, a closing session sends its close frame, a drained one's lagging
 * subscribers catch up. */
static void written(fo_session *s)
{
    if (s->rx_paused && s->qbytes < s->hub->cfg.max_queue / 2) {
        s->rx_paused = false;
        fo_wsconn_update_poll(s);
    }
    if (s->qlen || s->want_write)
        return;
    if (s->state == FO_SESSION_CLOSING)
        return send_close(s);
    /* Drained: subscribers whose pushes were dropped catch up now. */
    for (fo_sub *sub = s->subs; sub; sub = sub->snext)
        if (sub->lagging)
            s->hub->session_port.drained(sub);
}

void fo_wsconn_write(fo_session *s)
{
    if (s->fd < 0 || s->want_write || s->sending || s->state == FO_SESSION_CLOSED)
        return;
    if (s->qlen && !s->tls && s->hub->sendq && queue_pack(s))
        return; /* fo_wsconn_sent goes on */
    while (s->qlen && !s->want_write) {
        if (send_pack(s)) {
            fo_session_end(s);
            return;
        }
    }
    written(s);
}

void fo_wsconn_sent(void *ctx, const unsigned char *buf, size_t len, ssize_t res)
{
    fo_session *s = ctx;

    s->sending = false;
    if (s->fd >= 0 && s->state != FO_SESSION_CLOSED) {
        if (sent(s, buf, len, res))
            fo_session_end(s);
        else if (s->qlen && !s->want_write)
            fo_session_write_early(s); /* more than one pack queued: the rest next pass */
        else
            written(s);
    }
    fo_session_unref(s);
}

static void on_io(uv_poll_t *p, int status, int events)
{
    fo_session *s = p->data;

    if (status < 0) {
        fo_session_end(s);
        return;
    }
    fo_session_ref(s);
    if ((events & UV_WRITABLE) && s->want_write) {
        if (send_pending(s))
            fo_session_end(s);
        else if (!s->want_write)
            fo_wsconn_write(s);
    }
    if ((events & UV_READABLE) && s->fd >= 0)
        on_readable(s);
    fo_session_unref(s);
}
