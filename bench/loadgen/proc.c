#include "bench/loadgen/proc.h"

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- /proc ----------------------------------------------------------------------------- */

/* The inode of a socket listening on `port` in /proc/net/tcp or tcp6 (state 0A). */
static unsigned long listen_inode(const char *file, int port)
{
    char line[512];
    unsigned long inode = 0;
    FILE *f = fopen(file, "r");

    if (!f)
        return 0;
    if (!fgets(line, sizeof(line), f)) { /* header */
        fclose(f);
        return 0;
    }
    while (!inode && fgets(line, sizeof(line), f)) {
        char local[64], remote[64], *colon;
        unsigned st;
        unsigned long ino;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*s %63s %63s %x %*s %*s %*s %*s %*s %lu", local, remote, &st, &ino) !=
            4)
            continue;
        colon = strrchr(local, ':');
        if (st == 0x0A && colon && strtol(colon + 1, NULL, 16) == port)
            inode = ino;
    }
    fclose(f);
    return inode;
}

static bool pid_has_socket(const char *pid, const char *want)
{
    char dir[300], path[600], target[64];
    struct dirent *e;
    bool found = false;
    DIR *d;

    snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
    if (!(d = opendir(dir)))
        return false;
    while (!found && (e = readdir(d))) {
        ssize_t n;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        n = readlink(path, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            found = strcmp(target, want) == 0;
        }
    }
    closedir(d);
    return found;
}

pid_t fo_proc_find_listener(int port)
{
    unsigned long inode = listen_inode("/proc/net/tcp", port);
    char want[64];
    struct dirent *e;
    pid_t pid = 0;
    DIR *d;

    if (!inode)
        inode = listen_inode("/proc/net/tcp6", port);
    if (!inode || !(d = opendir("/proc")))
        return 0;
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    while (!pid && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        if (pid_has_socket(e->d_name, want))
            pid = (pid_t)atol(e->d_name);
    }
    closedir(d);
    return pid;
}

int fo_proc_sample_read(pid_t pid, fo_proc_sample *s)
{
    char path[64], buf[4096], *p;
    unsigned long long ut = 0, st = 0;
    long tck = sysconf(_SC_CLK_TCK);
    size_t n;
    FILE *f;

    memset(s, 0, sizeof(*s));
    s->at_ns = uv_hrtime();
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields resume after the last ')'.
     * Then: state(3) ... utime(14) stime(15). */
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    s->cpu_ns = (uint64_t)((ut + st) * (1000000000ULL / (unsigned long long)(tck > 0 ? tck : 100)));
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(buf, sizeof(buf), f)) {
        unsigned long long v;
        if (sscanf(buf, "VmRSS: %llu", &v) == 1)
            s->rss_kb = v;
        else if (sscanf(buf, "VmHWM: %llu", &v) == 1)
            s->hwm_kb = v;
        else if (sscanf(buf, "Threads: %llu", &v) == 1)
            s->threads = v;
    }
    fclose(f);
    s->ok = true;
    return 0;
}

uint64_t fo_proc_self_cpu_ns(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

/* ---- /metrics -------------------------------------------------------------------------- */

void fo_hub_counters_parse(const char *text, size_t len, fo_hub_counters *out)
{
    static const struct {
        const char *name;
        size_t off;
        uint32_t have;
    } known[] = {
#define H(n, f, b) {n, offsetof(fo_hub_counters, f), b}
#define K(n, f) H(n, f, 0)
        H("flushout_loop_turns_total", loop_turns, FO_HUB_HAVE_LOOP_TURNS),
        H("flushout_write_turns_total", write_turns, FO_HUB_HAVE_WRITE_TURNS),
        H("flushout_writable_requests_total", writable_requests, FO_HUB_HAVE_WRITABLE_REQUESTS),
        H("flushout_partial_writes_total", partial_writes, FO_HUB_HAVE_PARTIAL_WRITES),
        H("flushout_frames_out_total", frames_out, FO_HUB_HAVE_FRAMES_OUT),
        H("flushout_socket_writes_total", writes, FO_HUB_HAVE_WRITES),
        K("flushout_flushes_total", flushes),
        K("flushout_commands_total", commands),
        K("flushout_frames_in_total", frames_in),
        K("flushout_bytes_in_total", bytes_in),
        K("flushout_bytes_out_total", bytes_out),
        K("flushout_pushes_total", pushes),
        K("flushout_dropped_pushes_total", dropped_pushes),
        K("flushout_catchups_total", catchups),
        K("flushout_flush_errors_total", flush_errors),
        K("flushout_bad_frames_total", bad_frames),
        K("flushout_store_commits_total", store_commits),
        K("flushout_connections", connections),
#undef K
#undef H
    };
    const char *p = text, *end = text + len;
    size_t i;

    memset(out, 0, sizeof(*out));
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (n && *p != '#') {
            for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
                size_t k = strlen(known[i].name);
                if (n > k + 1 && memcmp(p, known[i].name, k) == 0 && p[k] == ' ') {
                    *(uint64_t *)((char *)out + known[i].off) = strtoull(p + k + 1, NULL, 10);
                    out->have |= known[i].have;
                    out->ok = true;
                }
            }
        }
        p += n + 1;
    }
}

static void scrape_closed(uv_handle_t *h)
{
    fo_scrape *s = h->data;

    if (--s->closing == 0) {
        const char *body = NULL;
        size_t i;
        for (i = 0; s->body && i + 4 <= s->len; i++)
            if (memcmp(s->body + i, "\r\n\r\n", 4) == 0) {
                body = s->body + i + 4;
                break;
            }
        if (body && s->len > 12 && memcmp(s->body + 9, "200", 3) == 0)
            fo_hub_counters_parse(body, s->len - (size_t)(body - s->body), &s->out);
        free(s->body);
        s->body = NULL;
        s->cb(s, s->arg);
    }
}

static void scrape_finish(fo_scrape *s)
{
    if (s->done)
        return;
    s->done = true;
    s->closing = 2;
    uv_close((uv_handle_t *)&s->timer, scrape_closed);
    uv_close((uv_handle_t *)&s->tcp, scrape_closed);
}

static void scrape_alloc(uv_handle_t *h, size_t sugg, uv_buf_t *b)
{
    fo_scrape *s = h->data;
    char *nb;

    (void)sugg;
    if (s->cap - s->len < 4096) {
        size_t nc = s->cap ? s->cap * 2 : 16384;
        if (!(nb = realloc(s->body, nc))) {
            *b = uv_buf_init(NULL, 0);
            return;
        }
        s->body = nb;
        s->cap = nc;
    }
    *b = uv_buf_init(s->body + s->len, (unsigned)(s->cap - s->len));
}

static void scrape_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    fo_scrape *s = st->data;

    (void)b;
    if (n < 0)
        scrape_finish(s); /* EOF: Connection: close ends the body */
    else
        s->len += (size_t)n;
}

static void scrape_written(uv_write_t *w, int status)
{
    fo_scrape *s = w->data;

    if (status < 0)
        scrape_finish(s);
}

static void scrape_connected(uv_connect_t *c, int status)
{
    fo_scrape *s = c->data;
    uv_buf_t b = uv_buf_init(s->req, (unsigned)strlen(s->req));

    if (status < 0 || s->done || uv_read_start((uv_stream_t *)&s->tcp, scrape_alloc, scrape_read) ||
        uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, scrape_written))
        scrape_finish(s);
}

static void scrape_timeout(uv_timer_t *t)
{
    scrape_finish(t->data);
}

int fo_scrape_start(uv_loop_t *loop, fo_scrape *s, const struct sockaddr *dst, const char *host,
                    const char *path, unsigned timeout_ms, fo_scrape_cb cb, void *arg)
{
    int rc;

    memset(s, 0, sizeof(*s));
    s->cb = cb;
    s->arg = arg;
    snprintf(s->req, sizeof(s->req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
             path, host);
    if ((rc = uv_tcp_init(loop, &s->tcp)) != 0)
        return rc;
    uv_timer_init(loop, &s->timer);
    s->tcp.data = s->timer.data = s->creq.data = s->wreq.data = s;
    uv_timer_start(&s->timer, scrape_timeout, timeout_ms, 0);
    if ((rc = uv_tcp_connect(&s->creq, &s->tcp, dst, scrape_connected)) != 0)
        scrape_finish(s);
    return 0;
}
