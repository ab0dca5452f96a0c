/* test_hub_edges.c - the edges people hit first when they try the hub from outside: a
 * port already taken, a --listen host that does not resolve or is a name, --static
 * pointing nowhere or at a folder, a %00 in a path, and store errors that must not show
 * clients the server's file paths. Each runs the real hub binary. (Frame-level edges of
 * RFC 6455 and --allowed-origins are in test_hub_transport.c.) */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
}

TestSuite(hub_edges, .init = setup, .fini = ht_cleanup, .timeout = 120);

/* Starts a hub that must not come up: asserts that it exits with status 1 and that its
 * log says `needle`. */
static void expect_no_start(const char *const *args, const char *needle)
{
    fo_hubproc_options o = {.args = args, .ready_timeout_ms = 20000};
    fo_hubproc *h = fo_hubproc_new(&o);
    char *log;

    cr_assert_not_null(h);
    cr_assert_eq(fo_hubproc_start(h), -1, "the hub started");
    cr_assert(strstr(fo_hubproc_error(h), "(exit 1)"), "want exit 1: %s", fo_hubproc_error(h));
    log = fo_hubproc_log_tail(h, 4096);
    cr_assert(log && strstr(log, needle), "the log does not say `%s`:\n%s", needle, log);
    free(log);
    fo_hubproc_free(h);
}

Test(hub_edges, a_port_in_use_exits_non_zero)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char listen_on[64], needle[128];

    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0 &&
              getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%d", ntohs(sa.sin_port));
    snprintf(needle, sizeof(needle), "cannot listen on %s: Address already in use", listen_on);
    {
        const char *const args[] = {"--listen", listen_on, NULL};
        expect_no_start(args, needle);
    }
    close(fd);
}

Test(hub_edges, an_unresolvable_host_exits_non_zero)
{
    static const char *const args[] = {"--listen", "no-such-host.invalid:0", NULL};

    expect_no_start(args, "cannot listen on no-such-host.invalid:0");
}

/* A name that resolves is fine: localhost answers on whichever of its addresses bound. */
Test(hub_edges, a_host_name_that_resolves_is_accepted)
{
    static const char *const args[] = {"--listen", "localhost:0", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    const char *hosts[] = {"127.0.0.1", "::1"};
    int ok = 0;

    cr_assert_eq(fo_hubproc_log_count(h, "listening on localhost:"), 1);
    for (size_t i = 0; i < 2; i++) {
        int status = 0, port = fo_hubproc_port(h), rc;
        char *body = NULL;
        size_t n;
        rc = fo_http_get(hosts[i], port, "/healthz", NULL, 3000, &status, &body, &n);
        if (rc == 0 && status == 200)
            ok++;
        free(body);
    }
    cr_assert_geq(ok, 1, "/healthz did not answer on localhost's addresses");
}

static char *make_dir(const char *tmpl)
{
    char *d = malloc(strlen(tmpl) + 1);

    cr_assert_not_null(d);
    strcpy(d, tmpl);
    cr_assert_not_null(mkdtemp(d), "mkdtemp: %s", strerror(errno));
    return d;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static int get_status(fo_hubproc *h, const char *target)
{
    int status = 0;
    char *body = NULL;
    size_t n;

    cr_assert_eq(
        fo_http_get(NULL, fo_hubproc_port(h), target, NULL, HT_TIMEOUT_MS, &status, &body, &n), 0,
        "GET %s got no answer", target);
    free(body);
    return status;
}

Test(hub_edges, static_files_folders_and_nul)
{
    char *dir = make_dir("/tmp/fo-edges-static-XXXXXX"), path[512];
    const char *args[] = {"--static", dir, NULL};
    fo_hubproc *h;

    snprintf(path, sizeof(path), "%s/sub", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/sub/a.txt", dir);
    write_file(path, "a\n", 0644);
    snprintf(path, sizeof(path), "%s/index.html", dir);
    write_file(path, "<p>hi</p>\n", 0644);
    h = ht_hub_start("memory", args);
    cr_assert_eq(get_status(h, "/"), 200);
    cr_assert_eq(get_status(h, "/sub/a.txt"), 200);
    cr_assert_eq(get_status(h, "/sub"), 404, "a folder is not a file");
    cr_assert_eq(get_status(h, "/sub/"), 404, "a folder without index.html");
    cr_assert_eq(get_status(h, "/a%00b"), 400);
    cr_assert_eq(get_status(h, "/v1/models/x%00y"), 400);
    cr_assert_eq(get_status(h, "/healthz"), 200, "the hub stopped answering");
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    cr_assert_eq(system(path), 0);

    /* Now it is gone: a hub asked to serve it refuses to start. */
    expect_no_start(args, "--static");
    {
        const char *const console[] = {"--console-dir", dir, NULL};
        expect_no_start(console, "No such file or directory");
    }
    free(dir);
}

/* A file of --static resolves inside the directory (hub/route.h refuses ".." and empty
 * segments before any lookup; http.c checks the resolved path): a symlink to a sibling
 * folder whose name merely starts with the directory's is refused, one inside is served. */
Test(hub_edges, static_files_stay_inside_the_directory)
{
    char *dir = make_dir("/tmp/fo-edges-inside-XXXXXX"), path[512], target[512];
    const char *args[] = {"--static", dir, NULL};
    fo_hubproc *h;

    snprintf(path, sizeof(path), "%s-x", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(target, sizeof(target), "%s-x/secret.txt", dir);
    write_file(target, "secret\n", 0644);
    snprintf(path, sizeof(path), "%s/sibling.txt", dir);
    cr_assert_eq(symlink(target, path), 0);
    snprintf(target, sizeof(target), "%s/a.txt", dir);
    write_file(target, "a\n", 0644);
    snprintf(path, sizeof(path), "%s/inside.txt", dir);
    cr_assert_eq(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/x..y", dir);
    write_file(path, "dots\n", 0644);
    h = ht_hub_start("memory", args);
    cr_assert_eq(get_status(h, "/inside.txt"), 200);
    cr_assert_eq(get_status(h, "/sibling.txt"), 404, "a symlink out to DIR-x was served");
    cr_assert_eq(get_status(h, "/x..y"), 404, "a name with '..' is refused, even when it exists");
    cr_assert_eq(get_status(h, "/a.txt?x=..%2F..%2Fetc"), 200, "the query is not the path");
    cr_assert_eq(get_status(h, "/healthz"), 200, "the hub stopped answering");
    snprintf(path, sizeof(path), "rm -rf '%s' '%s-x'", dir, dir);
    cr_assert_eq(system(path), 0);
    free(dir);
}

/* The store fails to write (a file size limit the hub runs under, SIGXFSZ ignored so that
 * write() says EFBIG): the client's error says what failed, and not where the files are; the
 * log says both. */
Test(hub_edges, store_errors_sent_to_clients_name_no_file)
{
    char *dir = make_dir("/tmp/fo-edges-store-XXXXXX"), script[512], env_bin[1024];
    const char *env[] = {env_bin, NULL};
    fo_hubproc_options o = {.store = "sqlite", .env = env};
    fo_hubproc *h;
    ht_client *c;
    fo_arena a;
    char *big = malloc(40001);
    bool failed = false;

    snprintf(script, sizeof(script), "%s/hub.sh", dir);
    /* dash counts -f in 512-byte blocks: about 1 MiB per file. */
    write_file(script, "#!/bin/sh\ntrap '' XFSZ\nulimit -f 2048\nexec \"$FO_HUB_REAL\" \"$@\"\n",
               0755);
    snprintf(env_bin, sizeof(env_bin), "FO_HUB_REAL=%s", getenv("FO_HUB_BIN"));
    o.bin = script;
    h = ht_hub_start_opts(&o);
    c = ht_connect(h, "filler");
    fo_arena_init(&a, 0);
    cr_assert_not_null(big);
    memset(big, 'x', 40000);
    big[40000] = '\0';
    for (int i = 0; i < 200 && !failed; i++) {
        char *json = malloc(40100);
        fo_msg m = {.type = FO_MSG_FLUSH, .model = "m", .model_len = 1, .seq = (uint64_t)i + 1};
        uint64_t rid;

        snprintf(json, 40100,
                 "{\"from\":%d,\"completions\":[{\"command\":{\"action\":\"update\","
                 "\"path\":[],\"props\":{\"k%d\":\"%s\"}}}]}",
                 i, i, big);
        m.batch = ht_batch_json(&a, json);
        free(json);
        rid = ht_send(c, &m);
        ht_recv(c, &m);
        cr_assert(m.has_rid && m.rid == rid, "a reply to another request");
        if (m.type == FO_MSG_ERROR) {
            cr_assert_eq(m.code, FO_ERR_INTERNAL, "%s", m.message);
            cr_assert(strstr(m.message, "store write failed"), "%s", m.message);
            cr_assert_null(strstr(m.message, fo_hubproc_data_dir(h)),
                           "the client was told a path: %s", m.message);
            cr_assert_null(strstr(m.message, "flushout.db"), "a file name: %s", m.message);
            failed = true;
        } else {
            cr_assert_eq(m.type, FO_MSG_ACK);
        }
        fo_arena_reset(&a);
    }
    cr_assert(failed, "200 flushes of 40 KB under a 1 MiB file limit all succeeded");
    cr_assert_geq(fo_hubproc_log_count(h, "flushout.db]"), 1,
                  "the log should keep the file the store failed on");
    fo_arena_destroy(&a);
    free(big);
    ht_drop(c);
    fo_hubproc_kill(h);
    snprintf(script, sizeof(script), "rm -rf '%s'", dir);
    cr_assert_eq(system(script), 0);
    free(dir);
}
