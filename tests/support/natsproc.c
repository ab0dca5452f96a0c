/* natsproc.c - see natsproc.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "tests/support/natsproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct fo_natsproc {
    char dir[PATH_MAX];
    char url[64];
    int port;
    pid_t pid;
    /* a node of a cluster: its name, route port and the routes to every node */
    char name[16];
    int cport;
    char routes[512];
};

const char *fo_natsproc_bin(void)
{
    static const char *const dirs[] = {"/usr/sbin", "/usr/bin", "/usr/local/bin"};
    static char found[PATH_MAX];
    const char *env = getenv("FO_NATS_SERVER");

    if (env && env[0])
        return access(env, X_OK) == 0 ? env : NULL;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(found, sizeof(found), "%s/nats-server", dirs[i]);
        if (access(found, X_OK) == 0)
            return found;
    }
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A port nothing listens on right now (the kernel's pick for port 0). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static bool log_says_ready(const fo_natsproc *n, long from)
{
    char path[PATH_MAX + 16], buf[8192];
    FILE *f;
    size_t got;
    bool ready = false;

    snprintf(path, sizeof(path), "%s/nats.log", n->dir);
    if (!(f = fopen(path, "r")))
        return false;
    if (fseek(f, from, SEEK_SET) == 0)
        while ((got = fread(buf, 1, sizeof(buf) - 1, f)) > 0 && !ready) {
            buf[got] = '\0';
            ready = strstr(buf, "Server is ready") != NULL;
        }
    fclose(f);
    return ready;
}

static long log_size(const fo_natsproc *n)
{
    char path[PATH_MAX + 16];
    FILE *f;
    long size = 0;

    snprintf(path, sizeof(path), "%s/nats.log", n->dir);
    if ((f = fopen(path, "r"))) {
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fclose(f);
    }
    return size;
}

static int launch(fo_natsproc *n)
{
    const char *bin = fo_natsproc_bin();
    char port[16], sd[PATH_MAX + 8], logp[PATH_MAX + 16];
    long from = log_size(n);
    int status;

    if (!bin)
        return -1;
    snprintf(port, sizeof(port), "%d", n->port);
    snprintf(sd, sizeof(sd), "%s/js", n->dir);
    snprintf(logp, sizeof(logp), "%s/nats.log", n->dir);
    n->pid = fork();
    if (n->pid < 0) {
        n->pid = 0;
        return -1;
    }
    if (n->pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (n->cport) {
            char cl[64];
            snprintf(cl, sizeof(cl), "nats://127.0.0.1:%d", n->cport);
            execl(bin, bin, "-js", "-a", "127.0.0.1", "-p", port, "-sd", sd, "-n", n->name,
                  "--cluster_name", "fo", "--cluster", cl, "--routes", n->routes, (char *)NULL);
        } else {
            execl(bin, bin, "-js", "-a", "127.0.0.1", "-p", port, "-sd", sd, (char *)NULL);
        }
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) { /* 10 s */
        if (log_says_ready(n, from))
            return 0;
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    fo_natsproc_stop(n, true);
    return -1;
}

static fo_natsproc *make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    fo_natsproc *n = calloc(1, sizeof(*n));

    if (!n)
        return NULL;
    snprintf(n->dir, sizeof(n->dir), "%s/fo-nats-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(n->dir)) {
        fprintf(stderr, "natsproc: mkdtemp: %s\n", strerror(errno));
        free(n);
        return NULL;
    }
    return n;
}

static bool log_has(const fo_natsproc *n, const char *needle)
{
    char path[PATH_MAX + 16], line[1024];
    FILE *f;
    bool found = false;

    snprintf(path, sizeof(path), "%s/nats.log", n->dir);
    if (!(f = fopen(path, "r")))
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int fo_natsproc_start_cluster(fo_natsproc **nodes, int count, char *urls, size_t cap)
{
    char routes[512] = "";
    size_t ul = 0, rl = 0;
    int i;

    if (count < 1 || count > 5)
        return -1;
    urls[0] = '\0';
    for (i = 0; i < count; i++) {
        nodes[i] = make_dir();
        if (!nodes[i] || (nodes[i]->port = free_port()) < 0 ||
            (nodes[i]->cport = free_port()) < 0)
            goto fail;
        snprintf(nodes[i]->name, sizeof(nodes[i]->name), "n%d", i);
        snprintf(nodes[i]->url, sizeof(nodes[i]->url), "nats://127.0.0.1:%d", nodes[i]->port);
        rl += (size_t)snprintf(routes + rl, sizeof(routes) - rl, "%snats://127.0.0.1:%d",
                               i ? "," : "", nodes[i]->cport);
        ul += (size_t)snprintf(urls + ul, cap > ul ? cap - ul : 0, "%s%s", i ? "," : "",
                               nodes[i]->url);
    }
    if (ul >= cap)
        goto fail;
    for (i = 0; i < count; i++) {
        snprintf(nodes[i]->routes, sizeof(nodes[i]->routes), "%s", routes);
        if (launch(nodes[i]) != 0)
            goto fail;
    }
    /* JetStream answers once the nodes have elected a meta leader. */
    for (int t = 0; t < 2000; t++) { /* 20 s */
        for (i = 0; i < count; i++)
            if (log_has(nodes[i], "JetStream cluster new metadata leader") ||
                log_has(nodes[i], "Self is new JetStream cluster metadata leader"))
                return 0;
        sleep_ms(10);
    }
    fprintf(stderr, "natsproc: the cluster elected no JetStream leader (see %s/nats.log)\n",
            nodes[0]->dir);
fail:
    for (i = 0; i < count; i++) {
        fo_natsproc_free(nodes[i]);
        nodes[i] = NULL;
    }
    return -1;
}

fo_natsproc *fo_natsproc_start(void)
{
    fo_natsproc *n = make_dir();

    if (!n)
        return NULL;
    for (int attempt = 0; attempt < 5; attempt++) { /* the port may be taken meanwhile */
        if ((n->port = free_port()) < 0)
            continue;
        snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%d", n->port);
        if (launch(n) == 0)
            return n;
    }
    fprintf(stderr, "natsproc: nats-server did not start (see %s/nats.log)\n", n->dir);
    setenv("FO_KEEP_NATS_DIR", "1", 0);
    fo_natsproc_free(n);
    return NULL;
}

int fo_natsproc_stop(fo_natsproc *n, bool kill_it)
{
    int status;

    if (!n || !n->pid)
        return -1;
    kill(n->pid, kill_it ? SIGKILL : SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            return 0;
        }
        sleep_ms(10);
    }
    kill(n->pid, SIGKILL);
    waitpid(n->pid, &status, 0);
    n->pid = 0;
    return 0;
}

int fo_natsproc_restart(fo_natsproc *n)
{
    if (!n || n->pid)
        return -1;
    for (int i = 0; i < 50; i++) { /* the old socket may linger a moment */
        if (launch(n) == 0)
            return 0;
        sleep_ms(100);
    }
    return -1;
}

const char *fo_natsproc_url(const fo_natsproc *n)
{
    return n->url;
}

int fo_natsproc_port(const fo_natsproc *n)
{
    return n->port;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void fo_natsproc_free(fo_natsproc *n)
{
    if (!n)
        return;
    if (n->pid)
        fo_natsproc_stop(n, false);
    if (getenv("FO_KEEP_NATS_DIR"))
        fprintf(stderr, "natsproc: kept %s\n", n->dir);
    else
        nftw(n->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(n);
}
