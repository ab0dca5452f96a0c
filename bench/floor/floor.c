/* fo-floor: the physical limit of a closed-loop fan-out on this machine, measured beside the
 * hub (issue 8, item 7).
 *
 * One thread (pinned to the server's CPU) sends frames of --frame-bytes to each of --sockets
 * loopback TCP sockets in turn, one non-blocking send() per socket per round (TCP_NODELAY);
 * another thread (pinned to the generator's CPU) drains the peer ends with epoll. A server
 * that fans a flush out to N subscribers with one send per subscriber cannot beat the
 * sends/s of --frames-per-send 1; --frames-per-send 10 (ten frames packed into one send) is
 * what packing buys when several frames per subscriber are pending.
 *
 * With --io-uring the same sends of a round go to the kernel in one io_uring submission
 * (proto/sendq.h, as the hub writes a loop turn): the floor under one *system call* per
 * send is the one above; this one is the floor of the hub's own write path.
 *
 * Each mode runs --warmup then --duration seconds (bounded: the sender checks the clock once
 * per round), --repeat times; the JSON reports every repeat and the median. No WebSocket,
 * no parsing: the frame is opaque bytes, so this is a floor under any server's fan-out. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/sendq.h"

#define MAX_MODES 8
#define MAX_REPEAT 15

typedef struct floor_opts {
    int sockets;
    int frame_bytes;
    int modes[MAX_MODES]; /* frames per send */
    int nmodes;
    double warmup, duration;
    int repeat;
    int sender_cpu, drainer_cpu; /* -1: not pinned */
    int json;
    int io_uring; /* each round's sends in one io_uring submission (proto/sendq.h) */
} floor_opts;

typedef struct floor_run {
    int frames_per_send;
    double secs;
    uint64_t sends, eagain, partial, bytes_sent, bytes_drained;
    double sender_cpu_pct, drainer_cpu_pct;
} floor_run;

typedef struct floor_state {
    const floor_opts *o;
    int *tx; /* server-side ends: the sender writes here */
    int *rx; /* client-side ends: the drainer reads here */
    int ep;
    atomic_int stop;
    /* drainer results, read after join */
    uint64_t drained;
    double drainer_cpu_s;
    atomic_ullong drained_live; /* for the measured window's start/end */
    fo_sendq *q;   /* --io-uring */
    ssize_t *res;  /* per socket: what its batched send took */
    size_t *want;  /* per socket: what it asked */
} floor_state;

static void on_sent(void *ctx, const unsigned char *buf, size_t len, ssize_t res)
{
    (void)buf, (void)len;
    *(ssize_t *)ctx = res;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
        fprintf(stderr, "fo-floor: cannot pin a thread to CPU %d (running unpinned)\n", cpu);
}

static void die(const char *what)
{
    fprintf(stderr, "fo-floor: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* N connected loopback pairs: connect N clients to one listener, accept N. */
static void make_pairs(floor_state *st, int n)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int lfd, i, one = 1;

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        die("socket");
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 4096) ||
        getsockname(lfd, (struct sockaddr *)&a, &al))
        die("listen");
    for (i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0), s;
        if (c < 0)
            die("socket (raise ulimit -n)");
        if (connect(c, (struct sockaddr *)&a, sizeof(a)))
            die("connect");
        if ((s = accept(lfd, NULL, NULL)) < 0)
            die("accept");
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
        st->tx[i] = s;
        st->rx[i] = c;
    }
    close(lfd);
}

static void *drainer(void *arg)
{
    floor_state *st = arg;
    struct epoll_event evs[256];
    static char buf[1 << 16];
    uint64_t total = 0;
    double c0;
    int i, n;

    pin(st->o->drainer_cpu);
    c0 = thread_cpu_s();
    while (!atomic_load_explicit(&st->stop, memory_order_relaxed)) {
        n = epoll_wait(st->ep, evs, 256, 50);
        for (i = 0; i < n; i++) {
            ssize_t r;
            /* Level-triggered: one read per ready socket per wait, as a server would. */
            r = read(evs[i].data.fd, buf, sizeof(buf));
            if (r > 0)
                total += (uint64_t)r;
        }
        atomic_store_explicit(&st->drained_live, total, memory_order_relaxed);
    }
    st->drained = total;
    st->drainer_cpu_s = thread_cpu_s() - c0;
    return NULL;
}

/* One mode, one repeat: the sender runs on the calling thread. */
static void run_mode(floor_state *st, int fps, floor_run *out)
{
    const floor_opts *o = st->o;
    int n = o->sockets, i;
    size_t len = (size_t)fps * (size_t)o->frame_bytes;
    char *frame = malloc(len);
    size_t *pending = calloc((size_t)n, sizeof(*pending)); /* bytes of a partial send left */
    pthread_t th;
    uint64_t t_start, t_measure, t_end, now, d0 = 0, d1;
    uint64_t sends = 0, eagain = 0, partial = 0, bytes = 0;
    uint64_t m_sends = 0, m_eagain = 0, m_partial = 0, m_bytes = 0;
    double c0 = 0, c1, dc;
    int measuring = 0;

    if (!frame || !pending)
        die("malloc");
    /* A WebSocket binary frame header (0x82, 7-bit length) then opaque payload. */
    for (i = 0; i < fps; i++) {
        char *f = frame + (size_t)i * (size_t)o->frame_bytes;
        memset(f, 'a' + i, (size_t)o->frame_bytes);
        f[0] = (char)0x82;
        f[1] = (char)(o->frame_bytes - 2 < 126 ? o->frame_bytes - 2 : 125);
    }
    atomic_store(&st->stop, 0);
    atomic_store(&st->drained_live, 0);
    if (pthread_create(&th, NULL, drainer, st))
        die("pthread_create");
    t_start = now_ns();
    t_measure = t_start + (uint64_t)(o->warmup * 1e9);
    t_end = t_measure + (uint64_t)(o->duration * 1e9);
    for (;;) {
        now = now_ns(); /* once per round of n sends */
        if (!measuring && now >= t_measure) {
            measuring = 1;
            m_sends = sends, m_eagain = eagain, m_partial = partial, m_bytes = bytes;
            d0 = atomic_load(&st->drained_live);
            c0 = thread_cpu_s();
            t_measure = now;
        }
        if (now >= t_end)
            break;
        if (st->q) { /* the same sends, one submission per round */
            for (i = 0; i < n; i++) {
                const char *p = pending[i] ? frame + (len - pending[i]) : frame;
                st->want[i] = pending[i] ? pending[i] : len;
                if (fo_sendq_add(st->q, st->tx[i], (const unsigned char *)p, st->want[i],
                                 &st->res[i]))
                    die("io_uring queue");
            }
            fo_sendq_submit(st->q);
            for (i = 0; i < n; i++) {
                ssize_t w = st->res[i];
                if (w < 0) {
                    if (w != -EAGAIN)
                        errno = (int)-w, die("io_uring send");
                    eagain++;
                    continue;
                }
                bytes += (uint64_t)w;
                if ((size_t)w < st->want[i]) {
                    partial++;
                    pending[i] = st->want[i] - (size_t)w;
                } else {
                    pending[i] = 0;
                    sends++;
                }
            }
            continue;
        }
        for (i = 0; i < n; i++) {
            /* A socket with a partial send left finishes it first, so frames stay whole. */
            const char *p = pending[i] ? frame + (len - pending[i]) : frame;
            size_t want = pending[i] ? pending[i] : len;
            ssize_t w = send(st->tx[i], p, want, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    die("send");
                eagain++;
                continue;
            }
            bytes += (uint64_t)w;
            if ((size_t)w < want) {
                partial++;
                pending[i] = want - (size_t)w;
            } else {
                pending[i] = 0;
                sends++;
            }
        }
    }
    c1 = thread_cpu_s();
    d1 = atomic_load(&st->drained_live);
    atomic_store(&st->stop, 1);
    pthread_join(th, NULL);
    /* Empty the sockets so the next mode starts clean. */
    for (i = 0; i < n; i++) {
        char buf[65536];
        while (read(st->rx[i], buf, sizeof(buf)) > 0)
            ;
    }
    dc = (double)(now - t_measure) / 1e9;
    memset(out, 0, sizeof(*out));
    out->frames_per_send = fps;
    out->secs = dc;
    out->sends = sends - m_sends;
    out->eagain = eagain - m_eagain;
    out->partial = partial - m_partial;
    out->bytes_sent = bytes - m_bytes;
    out->bytes_drained = d1 - d0;
    out->sender_cpu_pct = dc > 0 ? (c1 - c0) / dc * 100 : 0;
    out->drainer_cpu_pct =
        o->warmup + dc > 0 ? st->drainer_cpu_s / (o->warmup + dc) * 100 : 0; /* whole run */
    free(frame);
    free(pending);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char usage[] =
    "usage: fo-floor [options]\n"
    "\n"
    "The fan-out floor: one thread sends frames to each of N loopback TCP sockets in turn\n"
    "(one non-blocking send per socket per round, TCP_NODELAY), another drains them with\n"
    "epoll. Prints sends/s and frames/s per mode (JSON with --json).\n"
    "\n"
    "  --sockets N            loopback TCP connections (default 1000)\n"
    "  --frame-bytes B        bytes of one frame (default 60, 2..127)\n"
    "  --modes A,B,...        frames per send, one run each (default 1,10)\n"
    "  --warmup S             before measuring (default 0.3)\n"
    "  --duration S           measured window per run (default 2)\n"
    "  --repeat R             runs per mode; the median is reported (default 1, max 15)\n"
    "  --sender-cpu C         pin the sender (default 0; -1: not pinned)\n"
    "  --drainer-cpu C        pin the drainer (default 1; -1: not pinned)\n"
    "  --io-uring             each round's sends in one io_uring submission (as the hub\n"
    "                         writes), not one send() system call each\n"
    "  --json                 one JSON object on stdout\n";

static int parse(floor_opts *o, int argc, char **argv)
{
    int i;

    o->sockets = 1000;
    o->frame_bytes = 60;
    o->modes[0] = 1, o->modes[1] = 10, o->nmodes = 2;
    o->warmup = 0.3;
    o->duration = 2;
    o->repeat = 1;
    o->sender_cpu = 0, o->drainer_cpu = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!strcmp(a, "--io-uring")) {
            o->io_uring = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(a, "--version")) {
            printf("fo-floor %s\n", FO_VERSION);
            exit(0);
        }
        if (!v)
            goto bad;
        i++;
        if (!strcmp(a, "--sockets"))
            o->sockets = atoi(v);
        else if (!strcmp(a, "--frame-bytes"))
            o->frame_bytes = atoi(v);
        else if (!strcmp(a, "--warmup"))
            o->warmup = atof(v);
        else if (!strcmp(a, "--duration"))
            o->duration = atof(v);
        else if (!strcmp(a, "--repeat"))
            o->repeat = atoi(v);
        else if (!strcmp(a, "--sender-cpu"))
            o->sender_cpu = atoi(v);
        else if (!strcmp(a, "--drainer-cpu"))
            o->drainer_cpu = atoi(v);
        else if (!strcmp(a, "--modes")) {
            char *s = strdup(v), *tok, *save = NULL;
            o->nmodes = 0;
            for (tok = strtok_r(s, ",", &save); tok && o->nmodes < MAX_MODES;
                 tok = strtok_r(NULL, ",", &save))
                if ((o->modes[o->nmodes++] = atoi(tok)) < 1 || o->modes[o->nmodes - 1] > 1000)
                    goto bad;
            free(s);
        } else
            goto bad;
    }
    if (o->sockets < 1 || o->sockets > 100000 || o->frame_bytes < 2 || o->frame_bytes > 127 ||
        !(o->duration > 0) || o->duration > 600 || !(o->warmup >= 0) || o->warmup > 60 ||
        o->repeat < 1 || o->repeat > MAX_REPEAT || o->nmodes < 1)
        goto bad;
    return 0;
bad:
    fprintf(stderr, "fo-floor: bad arguments (see --help)\n");
    return -1;
}

int main(int argc, char **argv)
{
    static floor_run runs[MAX_MODES][MAX_REPEAT];
    floor_opts o;
    floor_state st;
    struct epoll_event ev;
    int m, r, i;

    memset(&o, 0, sizeof(o));
    if (parse(&o, argc, argv))
        return 2;
    memset(&st, 0, sizeof(st));
    st.o = &o;
    st.tx = calloc((size_t)o.sockets, sizeof(int));
    st.rx = calloc((size_t)o.sockets, sizeof(int));
    if (!st.tx || !st.rx)
        die("calloc");
    make_pairs(&st, o.sockets);
    if (o.io_uring) {
        const char *why;
        st.res = calloc((size_t)o.sockets, sizeof(*st.res));
        st.want = calloc((size_t)o.sockets, sizeof(*st.want));
        if (!st.res || !st.want)
            die("calloc");
        if (!(st.q = fo_sendq_open((unsigned)o.sockets, on_sent, &why))) {
            fprintf(stderr, "fo-floor: --io-uring: %s\n", why);
            return 2;
        }
    }
    if ((st.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    for (i = 0; i < o.sockets; i++) {
        ev.events = EPOLLIN;
        ev.data.fd = st.rx[i];
        if (epoll_ctl(st.ep, EPOLL_CTL_ADD, st.rx[i], &ev))
            die("epoll_ctl");
    }
    pin(o.sender_cpu);
    for (r = 0; r < o.repeat; r++) /* interleaved, so a noisy moment hits every mode */
        for (m = 0; m < o.nmodes; m++)
            run_mode(&st, o.modes[m], &runs[m][r]);

    if (o.json)
        printf("{\"sockets\": %d, \"frame_bytes\": %d, \"duration_s\": %g, \"repeat\": %d, "
               "\"sender_cpu\": %d, \"drainer_cpu\": %d, \"io_uring\": %s, \"modes\": [",
               o.sockets, o.frame_bytes, o.duration, o.repeat, o.sender_cpu, o.drainer_cpu,
               o.io_uring ? "true" : "false");
    for (m = 0; m < o.nmodes; m++) {
        double fr[MAX_REPEAT], med;
        int fps = o.modes[m];
        for (r = 0; r < o.repeat; r++)
            fr[r] = (double)runs[m][r].sends * fps / runs[m][r].secs;
        qsort(fr, (size_t)o.repeat, sizeof(double), cmp_double);
        med = fr[(o.repeat - 1) / 2];
        if (o.json) {
            printf("%s{\"frames_per_send\": %d, \"frames_per_sec\": %.0f, \"sends_per_sec\": %.0f, "
                   "\"runs\": [",
                   m ? ", " : "", fps, med, med / fps);
            for (r = 0; r < o.repeat; r++) {
                floor_run *x = &runs[m][r];
                printf("%s{\"frames_per_sec\": %.0f, \"sends\": %llu, \"secs\": %.3f, "
                       "\"eagain\": %llu, \"partial\": %llu, \"bytes_sent\": %llu, "
                       "\"bytes_drained\": %llu, \"sender_cpu_pct\": %.1f, "
                       "\"drainer_cpu_pct\": %.1f}",
                       r ? ", " : "", (double)x->sends * fps / x->secs,
                       (unsigned long long)x->sends, x->secs, (unsigned long long)x->eagain,
                       (unsigned long long)x->partial, (unsigned long long)x->bytes_sent,
                       (unsigned long long)x->bytes_drained, x->sender_cpu_pct, x->drainer_cpu_pct);
            }
            printf("]}");
        } else {
            printf("%4d frame(s) of %d B per send to %d sockets%s: %12.0f frames/s (%.0f "
                   "sends/s; median of %d)\n",
                   fps, o.frame_bytes, o.sockets, o.io_uring ? " (io_uring)" : "", med, med / fps,
                   o.repeat);
            for (r = 0; r < o.repeat; r++) {
                floor_run *x = &runs[m][r];
                printf("     run %d: %.0f frames/s, EAGAIN %llu, partial %llu, sender CPU %.0f%%, "
                       "drainer CPU %.0f%%\n",
                       r + 1, (double)x->sends * fps / x->secs, (unsigned long long)x->eagain,
                       (unsigned long long)x->partial, x->sender_cpu_pct, x->drainer_cpu_pct);
            }
        }
    }
    if (o.json)
        printf("]}\n");
    for (i = 0; i < o.sockets; i++) {
        close(st.tx[i]);
        close(st.rx[i]);
    }
    close(st.ep);
    fo_sendq_close(st.q);
    free(st.res);
    free(st.want);
    free(st.tx);
    free(st.rx);
    return 0;
}
