/* proto/sendq.h on real loopback TCP sockets: a batch's writes arrive whole and in order,
 * each is answered once with what its socket took, a full socket answers at once (-EAGAIN
 * or a short count, never a wait), the batch's limits (writes, arena bytes, being answered)
 * are kept, and a failed socket's write fails alone. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/sendq.h"

#define MAXW 64

typedef struct done_rec {
    void *ctx;
    size_t len;
    ssize_t res;
    unsigned char first;
} done_rec;

static done_rec done[MAXW * 4];
static int ndone;
static fo_sendq *reentrant; /* when set, the callback tries to queue into it */
static int reentrant_refused;

static void on_done(void *ctx, const unsigned char *buf, size_t len, ssize_t res)
{
    cr_assert_lt(ndone, MAXW * 4);
    done[ndone++] = (done_rec){ctx, len, res, len ? buf[0] : 0};
    if (reentrant) {
        unsigned char b = 1;
        if (!fo_sendq_reserve(reentrant, 1) && fo_sendq_add(reentrant, 0, &b, 1, NULL) != 0)
            reentrant_refused++;
    }
}

/* n connected pairs: tx[i] (non-blocking, the writer's end), rx[i] (the reader's). */
static void pairs(int n, int *tx, int *rx, int sndbuf)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
              listen(lfd, 128) == 0 && getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
    for (int i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert(c >= 0);
        if (sndbuf)
            setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
        cr_assert((rx[i] = accept(lfd, NULL, NULL)) >= 0);
        if (sndbuf) /* the reader's window small too, so that the writer's end fills */
            setsockopt(rx[i], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
        tx[i] = c;
    }
    close(lfd);
}

/* Reads exactly len bytes from fd (blocking, bounded by a receive timeout). */
static void read_exactly(int fd, unsigned char *buf, size_t len)
{
    struct timeval tv = {.tv_sec = 5};
    size_t got = 0;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        cr_assert_gt(n, 0, "read: %s after %zu of %zu bytes", n ? strerror(errno) : "EOF", got,
                     len);
        got += (size_t)n;
    }
}

/* Closes the n pairs and the queue. */
static void done_with(fo_sendq *q, int n, int *tx, int *rx)
{
    for (int i = 0; i < n; i++) {
        close(tx[i]);
        close(rx[i]);
    }
    fo_sendq_close(q);
}

static fo_sendq *open_q(unsigned entries)
{
    const char *why = "?";
    fo_sendq *q = fo_sendq_open(entries, on_done, &why);

    ndone = 0;
    reentrant = NULL;
    reentrant_refused = 0;
    if (!q)
        cr_skip_test("io_uring is not available here: %s", why);
    cr_assert_null(why);
    return q;
}

Test(sendq, a_batch_arrives_whole_and_in_order)
{
    int tx[8], rx[8];
    fo_sendq *q = open_q(16);
    unsigned char got[300];

    pairs(8, tx, rx, 0);
    /* Two rounds, each one batch: per socket the bytes of round 1 then round 2. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 8; i++) {
            size_t len = 100 + (size_t)i;
            unsigned char *b = fo_sendq_reserve(q, len);
            cr_assert_not_null(b);
            memset(b, 'a' + i + round * 8, len);
            cr_assert_eq(fo_sendq_add(q, tx[i], b, len, &tx[i]), 0);
        }
        cr_assert_eq(fo_sendq_queued(q), 8);
        fo_sendq_submit(q);
        cr_assert_eq(fo_sendq_queued(q), 0);
    }
    cr_assert_eq(ndone, 16, "%d completions for 16 writes", ndone);
    for (int k = 0; k < 16; k++) {
        int i = (int)((int *)done[k].ctx - tx);
        cr_assert(i >= 0 && i < 8);
        cr_assert_eq(done[k].res, (ssize_t)done[k].len, "write %d took %zd of %zu", k,
                     done[k].res, done[k].len);
        cr_assert_eq(done[k].len, 100 + (size_t)i);
    }
    for (int i = 0; i < 8; i++) {
        size_t len = 100 + (size_t)i;
        read_exactly(rx[i], got, 2 * len);
        for (size_t j = 0; j < len; j++) {
            cr_assert_eq(got[j], 'a' + i, "socket %d byte %zu", i, j);
            cr_assert_eq(got[len + j], 'a' + i + 8, "socket %d byte %zu", i, len + j);
        }
        close(tx[i]);
        close(rx[i]);
    }
    fo_sendq_close(q);
}

Test(sendq, the_callers_own_bytes_and_an_empty_submit)
{
    int tx[1], rx[1];
    fo_sendq *q = open_q(4);
    static const unsigned char msg[] = "hello, batch";
    unsigned char got[sizeof(msg)];

    pairs(1, tx, rx, 0);
    fo_sendq_submit(q); /* nothing queued: no completion */
    fo_sendq_submit(NULL);
    cr_assert_eq(ndone, 0);
    cr_assert_eq(fo_sendq_add(q, tx[0], msg, sizeof(msg), NULL), 0);
    fo_sendq_submit(q);
    cr_assert_eq(ndone, 1);
    cr_assert_eq(done[0].res, (ssize_t)sizeof(msg));
    read_exactly(rx[0], got, sizeof(got));
    cr_assert_arr_eq(got, msg, sizeof(msg));
    done_with(q, 1, tx, rx);
}

/* A socket whose buffers are full answers at once: a short count, then -EAGAIN; the batch
 * does not wait for the reader (a wait would hang this test: nobody reads until the end),
 * even on a blocking descriptor. */
Test(sendq, a_full_socket_answers_at_once, .timeout = 20)
{
    int tx[2], rx[2];
    fo_sendq *q = open_q(4);
    size_t chunk = 256 * 1024, sent = 0;
    bool short_seen = false, eagain_seen = false;
    unsigned char *got;
    time_t t0 = time(NULL);

    pairs(2, tx, rx, 4096);
    /* A blocking descriptor even: the write itself must not wait (MSG_DONTWAIT). */
    fcntl(tx[0], F_SETFL, fcntl(tx[0], F_GETFL) & ~O_NONBLOCK);
    for (int round = 0; round < 64 && !eagain_seen; round++) {
        unsigned char *b = fo_sendq_reserve(q, chunk);
        cr_assert_not_null(b);
        for (size_t j = 0; j < chunk; j++)
            b[j] = (unsigned char)(sent + j);
        cr_assert_eq(fo_sendq_add(q, tx[0], b, chunk, NULL), 0);
        /* A second socket in the same batch still gets its bytes. */
        b = fo_sendq_reserve(q, 1);
        cr_assert_not_null(b);
        *b = 'z';
        cr_assert_eq(fo_sendq_add(q, tx[1], b, 1, &tx[1]), 0);
        ndone = 0;
        fo_sendq_submit(q);
        cr_assert_eq(ndone, 2);
        cr_assert_eq(done[1].res, 1);
        if (done[0].res == -EAGAIN) {
            eagain_seen = true;
        } else {
            cr_assert_geq(done[0].res, 0, "%s", strerror((int)-done[0].res));
            if ((size_t)done[0].res < chunk)
                short_seen = true;
            sent += (size_t)done[0].res; /* a short write's rest is the caller's: dropped */
        }
    }
    cr_assert(eagain_seen, "the socket never filled (%zu bytes taken)", sent);
    cr_log_info("%zu bytes taken, a short write seen: %d", sent, short_seen);
    cr_assert_lt(time(NULL) - t0, 10, "a full socket made the batch wait");
    /* The reader gets exactly what was reported taken, in order. */
    got = malloc(sent);
    cr_assert_not_null(got);
    read_exactly(rx[0], got, sent);
    for (size_t j = 0; j < sent; j++)
        cr_assert_eq(got[j], (unsigned char)j, "byte %zu", j);
    free(got);
    done_with(q, 2, tx, rx);
}

Test(sendq, limits_of_a_batch)
{
    int tx[3], rx[3];
    fo_sendq *q = open_q(2);
    unsigned char *b, *big;
    size_t bigsz = 3u << 20; /* over the arena's first size: grows when the batch is empty */

    pairs(3, tx, rx, 0);
    cr_assert_not_null(b = fo_sendq_reserve(q, 10));
    memset(b, 'x', 10);
    cr_assert_eq(fo_sendq_add(q, tx[0], b, 10, NULL), 0);
    cr_assert_null(fo_sendq_reserve(q, bigsz), "a non-empty batch grew its arena");
    cr_assert_not_null(b = fo_sendq_reserve(q, 10));
    memset(b, 'y', 10);
    cr_assert_eq(fo_sendq_add(q, tx[1], b, 10, NULL), 0);
    /* Two writes: the batch is full. */
    cr_assert_null(fo_sendq_reserve(q, 1));
    cr_assert_eq(fo_sendq_add(q, tx[2], (const unsigned char *)"z", 1, NULL), -1);
    /* While completions are handled nothing can be queued. */
    reentrant = q;
    fo_sendq_submit(q);
    reentrant = NULL;
    cr_assert_eq(ndone, 2);
    cr_assert_eq(reentrant_refused, 2, "a write was queued into a batch being answered");
    cr_assert_eq(fo_sendq_queued(q), 0);
    cr_assert_not_null(big = fo_sendq_reserve(q, bigsz));
    memset(big, 'q', bigsz);
    cr_assert_eq(fo_sendq_add(q, tx[2], big, 64, NULL), 0);
    fo_sendq_submit(q);
    cr_assert_eq(done[2].res, 64);
    /* Past 4 MiB the arena shrinks back after its batch; the next batch still works (a
     * stale arena pointer would show here under ASan and valgrind). */
    cr_assert_not_null(big = fo_sendq_reserve(q, 6u << 20));
    memset(big, 'r', 6u << 20);
    cr_assert_eq(fo_sendq_add(q, tx[2], big, 64, NULL), 0);
    fo_sendq_submit(q);
    cr_assert_eq(done[3].res, 64);
    cr_assert_not_null(b = fo_sendq_reserve(q, 10));
    memset(b, 's', 10);
    cr_assert_eq(fo_sendq_add(q, tx[2], b, 10, NULL), 0);
    fo_sendq_submit(q);
    cr_assert_eq(ndone, 5);
    cr_assert_eq(done[4].res, 10);
    cr_assert_not(fo_sendq_broken(q));
    done_with(q, 3, tx, rx);
}

/* A peer that is gone fails its own write (EPIPE or ECONNRESET), not the others', and the
 * process gets no SIGPIPE. */
Test(sendq, a_closed_peer_fails_alone)
{
    int tx[2], rx[2];
    fo_sendq *q = open_q(8);
    unsigned char got[5];

    pairs(2, tx, rx, 0);
    close(rx[0]);
    for (int round = 0; round < 3; round++) { /* the first may still be taken (then RST) */
        cr_assert_eq(fo_sendq_add(q, tx[0], (const unsigned char *)"gone!", 5, &tx[0]), 0);
        cr_assert_eq(fo_sendq_add(q, tx[1], (const unsigned char *)"alive", 5, &tx[1]), 0);
        ndone = 0;
        fo_sendq_submit(q);
        cr_assert_eq(ndone, 2);
        for (int k = 0; k < 2; k++)
            if (done[k].ctx == &tx[1])
                cr_assert_eq(done[k].res, 5);
        usleep(20000);
    }
    {
        ssize_t r0 = done[0].ctx == &tx[0] ? done[0].res : done[1].res;
        cr_assert(r0 == -EPIPE || r0 == -ECONNRESET, "the write to a closed peer: %zd", r0);
    }
    for (int round = 0; round < 3; round++) {
        read_exactly(rx[1], got, 5);
        cr_assert_arr_eq(got, "alive", 5);
    }
    close(tx[0]);
    close(tx[1]);
    close(rx[1]);
    fo_sendq_close(q);
}
