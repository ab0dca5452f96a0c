/* hubproc.c - see hubproc.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "tests/support/hubproc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define READY_MARK "listening on "
#define MAX_ARGS 64
#define MAX_ENV 512

struct fo_hubproc {
    char bin[PATH_MAX];
    char store[32];
    char *args[MAX_ARGS];
    int nargs;
    char *env[MAX_ENV]; /* the child's whole environment, built once */
    int ready_timeout_ms;
    bool random_ids;

    char dir[PATH_MAX];
    char data_dir[PATH_MAX + 8];
    char log_path[PATH_MAX + 8];
    char err[4096];

    pid_t pid; /* 0 when not running */
    int port;  /* 0 until the first run reported it */
    int run;   /* runs started */

    /* drain thread of the current run */
    pthread_t thread;
    bool thread_live;
    int pipe_fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready, eof;
    int ready_port;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int set_err(fo_hubproc *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int set_err(fo_hubproc *h, const char *fmt, ...)
{
    va_list ap;
    char *tail;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(h->err, sizeof(h->err), fmt, ap);
    va_end(ap);
    tail = fo_hubproc_log_tail(h, 1500);
    n = strlen(h->err);
    if (tail && *tail && n < sizeof(h->err))
        snprintf(h->err + n, sizeof(h->err) - n, "\n--- end of the hub's log ---\n%.*s",
                 (int)(sizeof(h->err) - n - 32), tail);
    free(tail);
    return -1;
}

/* ---- environment -------------------------------------------------------------------------- */

static bool env_key_eq(const char *a, const char *b)
{
    size_t la = strcspn(a, "="), lb = strcspn(b, "=");

    return la == lb && strncmp(a, b, la) == 0;
}

static int build_env(fo_hubproc *h, const char *const *extra)
{
    int n = 0, i, j;

    for (i = 0; environ[i] && n < MAX_ENV - 1; i++) {
        if (!(h->env[n] = strdup(environ[i])))
            return -1;
        n++;
    }
    for (j = 0; extra && extra[j]; j++) {
        for (i = 0; i < n; i++)
            if (env_key_eq(h->env[i], extra[j]))
                break;
        if (i < n && strncmp(extra[j], "ASAN_OPTIONS=", 13) == 0) {
            size_t len = strlen(h->env[i]) + strlen(extra[j]) + 2;
            char *s = malloc(len);
            if (!s)
                return -1;
            snprintf(s, len, "%s:%s", h->env[i], extra[j] + 13);
            free(h->env[i]);
            h->env[i] = s;
            continue;
        }
        if (i == n) {
            if (n >= MAX_ENV - 1)
                return -1;
            n++;
        } else {
            free(h->env[i]);
        }
        if (!(h->env[i] = strdup(extra[j])))
            return -1;
    }
    h->env[n] = NULL;
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

fo_hubproc *fo_hubproc_new(const fo_hubproc_options *o)
{
    fo_hubproc *h = calloc(1, sizeof(*h));
    const char *bin = o && o->bin ? o->bin : getenv("FO_HUB_BIN");
    const char *tmp = getenv("TMPDIR");
    int i;

    if (!h)
        return NULL;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->pipe_fd = -1;
    snprintf(h->bin, sizeof(h->bin), "%s", bin ? bin : "");
    snprintf(h->store, sizeof(h->store), "%s", o && o->store ? o->store : "memory");
    h->ready_timeout_ms = o && o->ready_timeout_ms > 0 ? o->ready_timeout_ms : 10000;
    h->random_ids = o && o->random_ids;
    for (i = 0; o && o->args && o->args[i]; i++) {
        if (i >= MAX_ARGS - 16 || !(h->args[i] = strdup(o->args[i])))
            goto bad;
        h->nargs++;
    }
    if (build_env(h, o ? o->env : NULL) != 0)
        goto bad;
    snprintf(h->dir, sizeof(h->dir), "%s/fo-hub-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(h->dir)) {
        h->dir[0] = 0;
        goto bad;
    }
    snprintf(h->data_dir, sizeof(h->data_dir), "%s/data", h->dir);
    snprintf(h->log_path, sizeof(h->log_path), "%s/hub.log", h->dir);
    if (mkdir(h->data_dir, 0700) != 0)
        goto bad;
    return h;
bad:
    fo_hubproc_free(h);
    return NULL;
}

/* Scans one complete line of hub output for the listening mark. */
static void scan_line(fo_hubproc *h, const char *line)
{
    const char *p = strstr(line, READY_MARK), *colon = NULL, *q;
    long port;

    if (!p || h->ready)
        return;
    p += strlen(READY_MARK);
    for (q = p; *q && *q != ' ' && *q != '\n' && *q != '\r'; q++)
        if (*q == ':')
            colon = q;
    if (!colon)
        return;
    port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535)
        return;
    pthread_mutex_lock(&h->mu);
    h->ready = true;
    h->ready_port = (int)port;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void *drain_main(void *arg)
{
    fo_hubproc *h = arg;
    FILE *log = fopen(h->log_path, "a");
    char buf[8192], line[4096];
    size_t ll = 0;

    for (;;) {
        ssize_t n = read(h->pipe_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (log) {
            fwrite(buf, 1, (size_t)n, log);
            fflush(log);
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' || ll == sizeof(line) - 1) {
                line[ll] = 0;
                scan_line(h, line);
                ll = 0;
                if (buf[i] == '\n')
                    continue;
            }
            line[ll++] = buf[i];
        }
    }
    if (ll) {
        line[ll] = 0;
        scan_line(h, line);
    }
    if (log)
        fclose(log);
    pthread_mutex_lock(&h->mu);
    h->eof = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void join_drain(fo_hubproc *h)
{
    if (h->thread_live) {
        pthread_join(h->thread, NULL);
        h->thread_live = false;
    }
    if (h->pipe_fd >= 0) {
        close(h->pipe_fd);
        h->pipe_fd = -1;
    }
}

int fo_hubproc_start(fo_hubproc *h)
{
    char listen[64], *argv[MAX_ARGS + 16];
    int argc = 0, fds[2], i, rc;
    pid_t parent = getpid(), pid;
    struct timespec until;
    int64_t deadline;
    FILE *log;

    if (h->pid)
        return set_err(h, "the hub is still running (pid %d)", (int)h->pid);
    if (!h->bin[0])
        return set_err(h, "no hub binary: set FO_HUB_BIN");
    if (access(h->bin, X_OK) != 0)
        return set_err(h, "hub binary %s: %s", h->bin, strerror(errno));
    join_drain(h);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", h->port);
    argv[argc++] = h->bin;
    argv[argc++] = "--listen";
    argv[argc++] = listen;
    argv[argc++] = "--data";
    argv[argc++] = h->data_dir;
    argv[argc++] = "--store";
    argv[argc++] = h->store;
    if (!h->random_ids)
        argv[argc++] = "--sequential-ids";
    argv[argc++] = "--log-level";
    argv[argc++] = "info";
    /* These tests speak the protocol raw and do not retry: no shedding because a loaded
     * test machine stalled a turn, and no per-connection flush or byte rate (some drive one
     * connection far past the defaults on purpose). The limits' own tests pass the flags
     * again (last wins). */
    argv[argc++] = "--overload-lag-ms";
    argv[argc++] = "0";
    argv[argc++] = "--flush-rate";
    argv[argc++] = "0";
    argv[argc++] = "--bytes-rate";
    argv[argc++] = "0";
    for (i = 0; i < h->nargs; i++)
        argv[argc++] = h->args[i];
    argv[argc] = NULL;

    log = fopen(h->log_path, "a");
    if (log) {
        fprintf(log, "==== hubproc: run %d:", h->run + 1);
        for (i = 0; i < argc; i++)
            fprintf(log, " %s", argv[i]);
        fprintf(log, "\n");
        fclose(log);
    }
    if (pipe(fds) != 0)
        return set_err(h, "pipe: %s", strerror(errno));
    /* Later children must not inherit this pipe: it would keep the drain thread waiting. */
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return set_err(h, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* Child: async-signal-safe calls only. */
        int devnull = open("/dev/null", O_RDONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execve(h->bin, argv, h->env);
        {
            static const char msg[] = "hubproc: execve failed\n";
            ssize_t w = write(2, msg, sizeof(msg) - 1);
            (void)w;
        }
        _exit(127);
    }
    close(fds[1]);
    h->pid = pid;
    h->run++;
    h->pipe_fd = fds[0];
    h->ready = h->eof = false;
    h->ready_port = 0;
    rc = pthread_create(&h->thread, NULL, drain_main, h);
    if (rc != 0) {
        fo_hubproc_kill(h);
        return set_err(h, "pthread_create: %s", strerror(rc));
    }
    h->thread_live = true;

    deadline = now_ms() + h->ready_timeout_ms;
    pthread_mutex_lock(&h->mu);
    while (!h->ready && !h->eof) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        clock_gettime(CLOCK_REALTIME, &until);
        if (left > 100)
            left = 100; /* wake up now and then to notice an early exit */
        until.tv_sec += left / 1000;
        until.tv_nsec += (left % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &until);
    }
    rc = h->ready ? h->ready_port : h->eof ? -2 : -1;
    pthread_mutex_unlock(&h->mu);
    if (rc > 0) {
        if (h->port && rc != h->port) {
            fo_hubproc_kill(h);
            return set_err(h, "hub restarted on port %d, not %d", rc, h->port);
        }
        h->port = rc;
        return 0;
    }
    if (rc == -2) {
        int st = 0;
        char s[64];
        if (fo_hubproc_wait(h, 2000, &st) == 0)
            return set_err(h, "the hub ended before it was listening (%s)",
                           fo_hubproc_status_str(st, s, sizeof(s)));
        fo_hubproc_kill(h);
        return set_err(h, "the hub closed its output before it was listening");
    }
    fo_hubproc_kill(h);
    return set_err(h, "no `%s127.0.0.1:PORT` line within %d ms", READY_MARK, h->ready_timeout_ms);
}

int fo_hubproc_wait(fo_hubproc *h, int timeout_ms, int *wstatus)
{
    int64_t deadline = now_ms() + timeout_ms;
    int st = 0;

    if (!h->pid)
        return -1;
    for (;;) {
        pid_t r = waitpid(h->pid, &st, WNOHANG);
        if (r == h->pid) {
            h->pid = 0;
            if (wstatus)
                *wstatus = st;
            join_drain(h);
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            h->pid = 0;
            join_drain(h);
            return -1;
        }
        if (now_ms() >= deadline)
            return -1;
        sleep_ms(5);
    }
}

int fo_hubproc_signal(fo_hubproc *h, int sig)
{
    if (!h->pid)
        return -1;
    return kill(h->pid, sig) == 0 ? 0 : -1;
}

int fo_hubproc_stop(fo_hubproc *h, int timeout_ms, int *wstatus)
{
    if (!h->pid)
        return -1;
    kill(h->pid, SIGTERM);
    if (fo_hubproc_wait(h, timeout_ms > 0 ? timeout_ms : 10000, wstatus) == 0)
        return 0;
    fo_hubproc_kill(h);
    return -1;
}

int fo_hubproc_kill(fo_hubproc *h)
{
    if (!h->pid)
        return -1;
    kill(h->pid, SIGKILL);
    return fo_hubproc_wait(h, 10000, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Copies every line that a sanitizer wrote to our stderr: ctest fails the test on it. */
static void echo_sanitizer_reports(const fo_hubproc *h)
{
    FILE *f = fopen(h->log_path, "r");
    char line[4096];
    int shown = 0;

    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (shown == 0 && !strstr(line, "Sanitizer") && !strstr(line, "runtime error"))
            continue;
        if (shown == 0)
            fprintf(stderr, "hubproc: the hub's log %s has a sanitizer report:\n", h->log_path);
        fprintf(stderr, "  hub| %s", line);
        if (++shown >= 60)
            break;
    }
    fclose(f);
}

void fo_hubproc_free(fo_hubproc *h)
{
    int i;

    if (!h)
        return;
    /* SIGTERM first: an ASan hub then runs LeakSanitizer at exit, and any report it writes
     * is echoed below. A hub that does not stop in time is killed. */
    if (h->pid && fo_hubproc_stop(h, 5000, NULL) != 0)
        fprintf(stderr, "hubproc: the hub (pid %d) did not exit within 5 s of SIGTERM\n",
                (int)h->pid);
    if (h->pid)
        fo_hubproc_kill(h);
    join_drain(h);
    if (h->dir[0]) {
        echo_sanitizer_reports(h);
        if (getenv("FO_KEEP_HUB_DIR"))
            fprintf(stderr, "hubproc: kept %s\n", h->dir);
        else
            nftw(h->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    for (i = 0; i < h->nargs; i++)
        free(h->args[i]);
    for (i = 0; i < MAX_ENV && h->env[i]; i++)
        free(h->env[i]);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

/* ---- queries ------------------------------------------------------------------------------ */

bool fo_hubproc_running(const fo_hubproc *h)
{
    return h->pid != 0;
}

int fo_hubproc_port(const fo_hubproc *h)
{
    return h->port;
}

pid_t fo_hubproc_pid(const fo_hubproc *h)
{
    return h->pid;
}

const char *fo_hubproc_dir(const fo_hubproc *h)
{
    return h->dir;
}

const char *fo_hubproc_data_dir(const fo_hubproc *h)
{
    return h->data_dir;
}

const char *fo_hubproc_log_path(const fo_hubproc *h)
{
    return h->log_path;
}

const char *fo_hubproc_error(const fo_hubproc *h)
{
    return h->err;
}

long fo_hubproc_rss_kb(const fo_hubproc *h)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    if (!h->pid)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)h->pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

char *fo_hubproc_log_tail(const fo_hubproc *h, size_t max)
{
    FILE *f = fopen(h->log_path, "r");
    char *buf;
    long size;
    size_t n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    if (size < 0)
        size = 0;
    if ((size_t)size > max)
        fseek(f, size - (long)max, SEEK_SET);
    else
        fseek(f, 0, SEEK_SET);
    buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, max, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

int fo_hubproc_log_count(const fo_hubproc *h, const char *needle)
{
    FILE *f = fopen(h->log_path, "r");
    char line[4096];
    int n = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

const char *fo_hubproc_status_str(int st, char *buf, size_t n)
{
    if (WIFEXITED(st))
        snprintf(buf, n, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, n, "status 0x%x", st);
    return buf;
}
