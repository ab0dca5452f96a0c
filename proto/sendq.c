#include "proto/sendq.h"

#include <errno.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

/* The arena a batch starts with; a larger write grows it (when the batch is empty). */
#define ARENA_MIN (1u << 20)
/* An arena grown past this (one large snapshot push, say) goes back to ARENA_MIN after its
 * batch: it is not kept for the process's life. */
#define ARENA_KEEP (4u << 20)

typedef struct sendq_item {
    void *ctx;
    const unsigned char *buf;
    size_t len;
    bool answered;
} sendq_item;

struct fo_sendq {
    struct io_uring ring;
    unsigned entries;
    unsigned queued;
    bool busy;   /* in fo_sendq_submit: completions being handled */
    bool broken; /* the ring failed once: every write is refused from then on */
    fo_sendq_done done;
    sendq_item *items;
    unsigned char *arena;
    size_t cap, used;
};

fo_sendq *fo_sendq_open(unsigned entries, fo_sendq_done done, const char **why)
{
    fo_sendq *q = calloc(1, sizeof(*q));
    struct io_uring_probe *probe;
    int rc;

    *why = "out of memory";
    if (!q)
        return NULL;
    q->entries = entries;
    q->done = done;
    q->cap = ARENA_MIN;
    if (!(q->items = calloc(entries, sizeof(*q->items))) || !(q->arena = malloc(q->cap))) {
        free(q->items);
        free(q);
        return NULL;
    }
    /* One thread submits, and completions are only wanted when it asks for them. */
    rc = io_uring_queue_init(entries, &q->ring,
                             IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
    if (rc == -EINVAL) /* before Linux 6.1 */
        rc = io_uring_queue_init(entries, &q->ring, 0);
    if (rc < 0) {
        *why = rc == -ENOSYS   ? "io_uring is not in this kernel"
               : rc == -EPERM  ? "io_uring is not permitted here (io_uring_disabled or seccomp)"
               : rc == -ENOMEM ? "no memory for the ring (before Linux 5.12: RLIMIT_MEMLOCK)"
                               : "io_uring_queue_init failed";
        goto fail;
    }
    probe = io_uring_get_probe_ring(&q->ring);
    if (!probe || !io_uring_opcode_supported(probe, IORING_OP_SEND)) {
        io_uring_free_probe(probe);
        io_uring_queue_exit(&q->ring);
        *why = "this kernel's io_uring has no IORING_OP_SEND (Linux 5.6)";
        goto fail;
    }
    io_uring_free_probe(probe);
    *why = NULL;
    return q;
fail:
    free(q->arena);
    free(q->items);
    free(q);
    return NULL;
}

void fo_sendq_close(fo_sendq *q)
{
    if (!q)
        return;
    fo_sendq_submit(q);
    io_uring_queue_exit(&q->ring);
    free(q->arena);
    free(q->items);
    free(q);
}

unsigned char *fo_sendq_reserve(fo_sendq *q, size_t len)
{
    if (q->busy || q->broken)
        return NULL;
    if (q->queued == q->entries)
        return NULL;
    if (len > q->cap - q->used) {
        size_t ncap = q->cap;
        unsigned char *n;

        if (q->queued)
            return NULL;
        while (ncap < len)
            ncap *= 2;
        if (!(n = realloc(q->arena, ncap)))
            return NULL;
        q->arena = n;
        q->cap = ncap;
    }
    return q->arena + q->used;
}

int fo_sendq_add(fo_sendq *q, int fd, const unsigned char *buf, size_t len, void *ctx)
{
    struct io_uring_sqe *sqe;
    sendq_item *it;

    if (q->busy || q->broken || q->queued == q->entries || !(sqe = io_uring_get_sqe(&q->ring)))
        return -1;
    it = &q->items[q->queued];
    it->ctx = ctx;
    it->buf = buf;
    it->len = len;
    it->answered = false;
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    io_uring_sqe_set_data64(sqe, q->queued);
    q->queued++;
    if (buf >= q->arena && buf < q->arena + q->cap) { /* the arena's: the next starts after */
        q->used = (size_t)(buf - q->arena) + len;
        q->used = (q->used + 15) & ~(size_t)15;
        if (q->used > q->cap)
            q->used = q->cap;
    }
    return 0;
}

unsigned fo_sendq_queued(const fo_sendq *q)
{
    return q ? q->queued : 0;
}

bool fo_sendq_broken(const fo_sendq *q)
{
    return q && q->broken;
}

void fo_sendq_submit(fo_sendq *q)
{
    unsigned n, taken, seen = 0;
    int rc;

    if (!q || !q->queued || q->busy) /* busy: a completion ended a session; all is sent */
        return;
    n = q->queued;
    q->busy = true;
    do
        rc = io_uring_submit_and_wait(&q->ring, n);
    while (rc == -EINTR);
    /* The kernel takes the writes in order and, when it takes fewer than asked (not
     * expected: the ring is ours and sized for the batch), returns without waiting: wait
     * for those it took only (waiting for all would never end), fail the rest below. */
    taken = rc < 0 ? 0 : (unsigned)rc < n ? (unsigned)rc : n;
    while (rc >= 0 && seen < taken) {
        struct io_uring_cqe *cqe;
        sendq_item *it;
        ssize_t res;

        if ((rc = io_uring_wait_cqe(&q->ring, &cqe)) == -EINTR) {
            rc = 0;
            continue;
        }
        if (rc < 0)
            break;
        it = &q->items[io_uring_cqe_get_data64(cqe)];
        res = cqe->res;
        io_uring_cqe_seen(&q->ring, cqe);
        it->answered = true;
        q->done(it->ctx, it->buf, it->len, res);
        seen++;
    }
    if (rc < 0 || seen < n) {
        /* The ring failed. What it did not answer fails with -EIO, and every later write
         * is refused (those it did not take stay in its queue, never submitted): the
         * connections end rather than their streams going out of order. */
        q->broken = true;
        for (unsigned i = 0; i < n; i++)
            if (!q->items[i].answered)
                q->done(q->items[i].ctx, q->items[i].buf, q->items[i].len, -EIO);
    }
    q->queued = 0;
    q->used = 0;
    if (q->cap > ARENA_KEEP) {
        unsigned char *a = realloc(q->arena, ARENA_MIN);
        if (a) {
            q->arena = a;
            q->cap = ARENA_MIN;
        }
    }
    q->busy = false;
}
