#include "hub/relay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "hub/hub.h"
#include "hub/log.h"

#define CHUNK 16384 /* plaintext moved per read, either way */

struct fo_relay {
    fo_hub *hub;
    fo_relay *prev, *next;
    int fd;               /* the client's socket */
    uv_poll_t *poll;
    fo_tls *tls;
    int pfd;              /* our end of the socketpair; lws has the other */
    uv_poll_t *ppoll;
    int ev, pev;          /* what poll and ppoll are started with */
    unsigned char *plain; /* decrypted, not yet taken by lws: plain[off, len) */
    size_t len, off, cap;
    bool client_eof;      /* the client ended (EOF or close_notify) */
    bool lws_eof;         /* lws closed its end: flush, then close */
};

static void on_net(uv_poll_t *p, int status, int events);
static void on_plain(uv_poll_t *p, int status, int events);

static void on_closed(uv_handle_t *hd)
{
    free(hd);
}

static void relay_free(fo_relay *r)
{
    fo_hub *h = r->hub;

    if (r->prev)
        r->prev->next = r->next;
    else
        h->relays = r->next;
    if (r->next)
        r->next->prev = r->prev;
    uv_close((uv_handle_t *)r->poll, on_closed);
    close(r->fd);
    if (r->ppoll) {
        uv_close((uv_handle_t *)r->ppoll, on_closed);
        close(r->pfd);
    }
    fo_tls_free(r->tls);
    free(r->plain);
    free(r);
}

/* Polls each side for what the state asks. */
static void relay_poll(fo_relay *r)
{
    const unsigned char *p;
    bool out = fo_tls_pending(r->tls, &p) > 0, in = r->off < r->len;
    int ev = (!r->client_eof && !in && !r->lws_eof ? UV_READABLE : 0) | (out ? UV_WRITABLE : 0);
    int pev = (!r->lws_eof && !out ? UV_READABLE : 0) | (in ? UV_WRITABLE : 0);

    if (ev != r->ev) {
        r->ev = ev;
        ev ? uv_poll_start(r->poll, ev, on_net) : uv_poll_stop(r->poll);
    }
    if (pev != r->pev) {
        r->pev = pev;
        pev ? uv_poll_start(r->ppoll, pev, on_plain) : uv_poll_stop(r->ppoll);
    }
}

/* Sends the encrypted output the client's socket takes. -1 when it failed. */
static int flush_net(fo_relay *r)
{
    return fo_tls_send_fd(r->tls, r->fd) < 0 ? -1 : 0;
}

/* Gives lws what it takes of the decrypted bytes. When lws no longer reads (it answered
 * and shut its end), they are dropped: its answer is still to be relayed. */
static void flush_plain(fo_relay *r)
{
    while (r->off < r->len) {
        ssize_t n = send(r->pfd, r->plain + r->off, r->len - r->off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0)
            break;
        r->off += (size_t)n;
    }
    r->off = r->len = 0;
    if (r->client_eof)
        shutdown(r->pfd, SHUT_WR);
}

static int keep_plain(fo_relay *r, const unsigned char *p, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : CHUNK;
        unsigned char *nb;
        while (cap < r->len + n)
            cap *= 2;
        if (!(nb = realloc(r->plain, cap)))
            return -1;
        r->plain = nb;
        r->cap = cap;
    }
    memcpy(r->plain + r->len, p, n);
    r->len += n;
    return 0;
}

/* Decrypts what was handed in (or is held) into plain. -1: the connection is over. */
static int decrypt(fo_relay *r)
{
    unsigned char buf[CHUNK];
    long n;

    while ((n = fo_tls_read(r->tls, buf, sizeof(buf))) > 0)
        if (keep_plain(r, buf, (size_t)n))
            return -1;
    if (n == FO_TLS_CLOSED) {
        r->client_eof = true;
        return 0;
    }
    if (n < 0) {
        FO_LOG(FO_LOG_INFO, "https: %s", fo_tls_error(r->tls));
        return -1;
    }
    return 0;
}

/* Once lws's end is closed and the client has the answer: close. */
static void finish_if_done(fo_relay *r)
{
    const unsigned char *p;

    if (r->lws_eof && fo_tls_pending(r->tls, &p) == 0)
        relay_free(r);
    else
        relay_poll(r);
}

static void on_net(uv_poll_t *p, int status, int events)
{
    fo_relay *r = p->data;
    fo_hub *h = r->hub;

    if (status < 0)
        return relay_free(r);
    if ((events & UV_WRITABLE) && flush_net(r))
        return relay_free(r);
    if ((events & UV_READABLE) && r->ev & UV_READABLE) {
        ssize_t n = recv(r->fd, h->rbuf, sizeof(h->rbuf), 0);
        if (n == 0) {
            r->client_eof = true;
        } else if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return relay_free(r);
        } else {
            fo_tls_input(r->tls, h->rbuf, (size_t)n);
            if (decrypt(r))
                return relay_free(r);
        }
        flush_plain(r);
        if (flush_net(r))
            return relay_free(r);
    }
    finish_if_done(r);
}

static void on_plain(uv_poll_t *p, int status, int events)
{
    fo_relay *r = p->data;
    unsigned char buf[CHUNK];

    if (status < 0)
        return relay_free(r);
    if (events & UV_WRITABLE)
        flush_plain(r);
    if ((events & UV_READABLE) && r->pev & UV_READABLE) {
        ssize_t n = recv(r->pfd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            r->lws_eof = true;
            fo_tls_shutdown(r->tls);
        } else if (n > 0 && fo_tls_write(r->tls, buf, (size_t)n)) {
            return relay_free(r);
        }
        if (flush_net(r))
            return relay_free(r);
    }
    finish_if_done(r);
}

void fo_relay_open(fo_hub *h, int fd, uv_poll_t *poll, fo_tls *tls, const unsigned char *head,
                   size_t len)
{
    fo_relay *r = calloc(1, sizeof(*r));
    int sv[2] = {-1, -1};

    if (!r || !(r->ppoll = malloc(sizeof(*r->ppoll))) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) ||
        uv_poll_init(&h->loop, r->ppoll, sv[0])) {
        FO_LOG(FO_LOG_WARN, "https: cannot relay a request to lws: %s", strerror(errno));
        if (sv[0] >= 0)
            close(sv[0]), close(sv[1]);
        if (r)
            free(r->ppoll);
        free(r);
        uv_close((uv_handle_t *)poll, on_closed);
        close(fd);
        fo_tls_free(tls);
        return;
    }
    r->hub = h;
    r->fd = fd;
    r->poll = poll;
    r->tls = tls;
    r->pfd = sv[0];
    poll->data = r;
    r->ppoll->data = r;
    r->next = h->relays;
    if (h->relays)
        h->relays->prev = r;
    h->relays = r;
    /* lws owns sv[1] from here, also when it answered and closed it while reading head. */
    if (keep_plain(r, head, len) || (fo_tls_buffered(tls) && decrypt(r))) {
        close(sv[1]);
        return relay_free(r);
    }
    lws_adopt_socket_vhost(h->vhost, sv[1]);
    flush_plain(r);
    if (flush_net(r))
        return relay_free(r);
    relay_poll(r);
}

void fo_relay_close_all(fo_hub *h)
{
    while (h->relays)
        relay_free(h->relays);
}
