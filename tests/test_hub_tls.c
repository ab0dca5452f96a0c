/* test_hub_tls.c - TLS on the hub's port (--tls-cert/--tls-key), over loopback with real
 * TLS: certificates are made at test time with the openssl command. https and wss on one
 * port (flush, ack, push; a large static file through the relay to lws; the console feed),
 * peer verification (no CA, the wrong CA: a clear error), a plain client on the TLS port
 * (a 400 that says so), bad certificate or key files (exit 2 with a message), SIGHUP
 * reloading a renewed certificate (and refusing a broken one), and
 * handshakes that stall or send garbage while others are served. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/hubtest.h"
#include "tests/support/wsnet.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static char dir[64];
static char cert[128], key[128], other_cert[128], other_key[128], static_dir[128];

/* A self-signed certificate for 127.0.0.1 and localhost (it is its own CA). */
static void make_cert(const char *c, const char *k)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             "-keyout %s -out %s >/dev/null 2>&1", k, c);
    cr_assert_eq(system(cmd), 0, "openssl req failed (is the openssl command installed?)");
}

static void setup(void)
{
    char cmd[512];

    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
    snprintf(dir, sizeof(dir), "%s/fo-tls-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(other_cert, sizeof(other_cert), "%s/other.pem", dir);
    snprintf(other_key, sizeof(other_key), "%s/other-key.pem", dir);
    snprintf(static_dir, sizeof(static_dir), "%s/www", dir);
    make_cert(cert, key);
    make_cert(other_cert, other_key);
    snprintf(cmd, sizeof(cmd), "mkdir %s && head -c 1500000 /dev/urandom > %s/big.bin",
             static_dir, static_dir);
    cr_assert_eq(system(cmd), 0);
}

static void teardown(void)
{
    char cmd[160];

    ht_cleanup();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(hub_tls, .init = setup, .fini = teardown, .timeout = 120);

static fo_hubproc *tls_hub(void)
{
    const char *const args[] = {"--tls-cert", cert, "--tls-key", key, "--static", static_dir, NULL};

    return ht_hub_start("memory", args);
}

/* Connects over wss with the test CA and says hello. */
static ht_client *wss(fo_hubproc *h, const char *id)
{
    fo_ws_options o = {.tls_ca = cert};
    ht_client *c = ht_connect_raw(h, &o);
    fo_msg m = {.type = FO_MSG_HELLO, .client = id};
    uint64_t rid = ht_send(c, &m);

    snprintf(c->id, sizeof(c->id), "%s", id);
    ht_expect_reply(c, FO_MSG_WELCOME, rid, &m);
    fo_arena_reset(&c->arena);
    return c;
}

Test(hub_tls, https_and_wss_on_one_port)
{
    fo_hubproc *h = tls_hub();
    ht_client *a, *b;
    fo_arena ar;
    fo_batch bt;
    fo_apply_result r;
    fo_msg m;
    char *body = NULL;
    size_t len = 0;
    int status = 0;

    cr_assert_eq(fo_hubproc_log_count(h, "(wss://127.0.0.1:"), 1, "the log names wss://");
    cr_assert_eq(fo_https_get(cert, "127.0.0.1", fo_hubproc_port(h), "/healthz", NULL, 8000,
                              &status, &body, &len), 0);
    cr_assert_eq(status, 200);
    cr_assert(strstr(body, "ok"), "healthz: %s", body);
    free(body);
    /* A large answer through the relay: lws's end is read only as the client takes it. */
    cr_assert_eq(fo_https_get(cert, "127.0.0.1", fo_hubproc_port(h), "/big.bin", NULL, 20000,
                              &status, &body, &len), 0);
    cr_assert_eq(status, 200);
    cr_assert_eq(len, 1500000, "a static file of 1500000 bytes came with %zu", len);
    free(body);

    a = wss(h, "a");
    b = wss(h, "b");
    ht_sub(a, "m");
    fo_arena_init(&ar, 0);
    bt = ht_batch_json(&ar, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\","
                            "\"props\":{\"who\":\"b\"}},\"createdId\":\"1\"}]}");
    r = ht_flush(b, "m", &bt);
    cr_assert_eq(r.applied.len, 1, "the ack over wss applies the command");
    ht_expect(a, FO_MSG_PUSH, &m);
    cr_assert_eq(m.batch.len, 1, "the push over wss");
    /* A message over several TLS records (about 200 KB: 100 strings of 2000 bytes) each way. */
    {
        size_t cap = 100 * 2100 + 200, k;
        char *big = malloc(cap);
        cr_assert_not_null(big);
        k = (size_t)snprintf(big, cap, "{\"from\":1,\"completions\":[");
        for (int i = 0; i < 100; i++) {
            k += (size_t)snprintf(big + k, cap - k, "%s{\"command\":{\"action\":\"create\","
                                  "\"props\":{\"blob\":\"", i ? "," : "");
            memset(big + k, 'a' + i % 26, 2000);
            k += 2000;
            k += (size_t)snprintf(big + k, cap - k, "\"}},\"createdId\":\"%d\"}", i + 2);
        }
        snprintf(big + k, cap - k, "]}");
        bt = ht_batch_json(&ar, big);
        free(big);
        r = ht_flush(b, "m", &bt);
        cr_assert_eq(r.applied.len, 100);
        ht_expect(a, FO_MSG_PUSH, &m);
        cr_assert_eq(m.batch.from, 1);
        cr_assert_eq(m.batch.len, 100);
    }
    fo_arena_destroy(&ar);
    ht_close(a);
    ht_close(b);
    ht_hub_stop_ok(h, 10000);
}

Test(hub_tls, the_console_feed_over_wss)
{
    fo_hubproc *h = tls_hub();
    fo_ws_options o = {.tls_ca = cert, .path = "/v1/console/feed", .no_protocol = true,
                       .port = fo_hubproc_port(h)};
    fo_ws_result res;
    fo_ws *c = fo_ws_connect(&o, &res);
    fo_ws_message m;
    int rc;

    cr_assert_not_null(c, "feed: %s", res.message);
    rc = fo_ws_recv(c, 5000, &m);
    cr_assert_eq(rc, 0, "a sample within 5 s: %s", fo_ws_error(c));
    cr_assert(m.len > 10 && strstr(m.data, "\"connections\""), "a console sample: %.*s", (int)m.len,
              m.data);
    cr_assert_gt(fo_ws_close(c, 1000, 5000), 0, "the feed answers a close: %s", fo_ws_error(c));
    fo_ws_free(c);
}

/* Whether a wss client that trusts only `ca` completes a handshake with the hub now. */
static bool trusted_by(fo_hubproc *h, const char *ca)
{
    fo_ws_options o = {.tls_ca = ca, .port = fo_hubproc_port(h)};
    fo_ws_result res;
    fo_ws *c = fo_ws_connect(&o, &res);

    if (!c)
        return false;
    fo_ws_free(c);
    return true;
}

/* A counter of /metrics over https, trusting `ca`. */
static uint64_t tls_metric(fo_hubproc *h, const char *ca, const char *name)
{
    char *body = NULL, *p, want[128];
    size_t len = 0;
    int status = 0;
    uint64_t v;

    cr_assert_eq(fo_https_get(ca, "127.0.0.1", fo_hubproc_port(h), "/metrics", NULL, 8000,
                              &status, &body, &len), 0);
    cr_assert_eq(status, 200);
    snprintf(want, sizeof(want), "\n%s ", name);
    p = strstr(body, want);
    cr_assert_not_null(p, "no %s in /metrics", name);
    v = strtoull(p + strlen(want), NULL, 10);
    free(body);
    return v;
}

/* A renewed certificate (certbot's deploy hook: new files, then a reload) takes effect on
 * SIGHUP for new handshakes; connections open keep theirs; files that cannot be used keep
 * the certificate in force. */
Test(hub_tls, sighup_reloads_the_certificate_and_keeps_connections)
{
    char live_cert[160], live_key[160], cmd[768];
    const char *args[] = {"--tls-cert", live_cert, "--tls-key", live_key, NULL};
    fo_hubproc *h;
    ht_client *a;
    fo_msg m;

    snprintf(live_cert, sizeof(live_cert), "%s/live.pem", dir);
    snprintf(live_key, sizeof(live_key), "%s/live-key.pem", dir);
    snprintf(cmd, sizeof(cmd), "cp %s %s && cp %s %s", cert, live_cert, key, live_key);
    cr_assert_eq(system(cmd), 0);
    h = ht_hub_start("memory", args);
    a = wss(h, "a");
    cr_assert(trusted_by(h, cert));
    cr_assert_not(trusted_by(h, other_cert));

    snprintf(cmd, sizeof(cmd), "cp %s %s && cp %s %s", other_cert, live_cert, other_key, live_key);
    cr_assert_eq(system(cmd), 0);
    ht_hup(h, "SIGHUP: TLS certificate reloaded", 1);
    cr_assert(trusted_by(h, other_cert), "a new handshake gets the renewed certificate");
    cr_assert_not(trusted_by(h, cert));
    m = ht_update_msg(a, "m", 1, 0, "k", 0); /* the connection opened before still works */
    cr_assert_eq(ht_flush_reply(a, &m).type, FO_MSG_ACK);
    cr_assert_eq(tls_metric(h, other_cert, "flushout_tls_reloads_total"), 1);

    /* A key of another certificate: refused, the renewed one stays. */
    snprintf(cmd, sizeof(cmd), "cp %s %s", key, live_key);
    cr_assert_eq(system(cmd), 0);
    ht_hup(h, "SIGHUP: TLS certificate not reloaded", 1);
    cr_assert_gt(fo_hubproc_log_count(h, "does not belong to the certificate"), 0);
    cr_assert(trusted_by(h, other_cert));
    cr_assert_eq(tls_metric(h, other_cert, "flushout_tls_reload_errors_total"), 1);
    ht_close(a);
    ht_hub_stop_ok(h, 10000);
}

Test(hub_tls, a_client_without_the_ca_refuses_the_hub)
{
    fo_hubproc *h = tls_hub();
    fo_ws_options o = {.tls_ca = "", .port = fo_hubproc_port(h)};
    fo_ws_result res;
    fo_ws *c = fo_ws_connect(&o, &res);
    char *body = NULL;
    int status = 0;

    cr_assert_null(c, "connected without trusting the hub's certificate");
    cr_assert(strstr(res.message, "not trusted") && strstr(res.message, "self-signed"),
              "a clear reason: %s", res.message);
    o.tls_ca = other_cert; /* another CA */
    cr_assert_null(c = fo_ws_connect(&o, &res));
    cr_assert(strstr(res.message, "not trusted"), "the wrong CA: %s", res.message);
    o.tls_ca = cert; /* the right CA, but a name the certificate does not carry */
    o.tls_name = "hub.example.com";
    cr_assert_null(c = fo_ws_connect(&o, &res));
    cr_assert(strstr(res.message, "not trusted") && strstr(res.message, "mismatch"),
              "the wrong name: %s", res.message);
    cr_assert_neq(fo_https_get("", "127.0.0.1", fo_hubproc_port(h), "/healthz", NULL, 5000,
                               &status, &body, NULL), 0);
    free(body);
    ht_hub_stop_ok(h, 10000);
}

Test(hub_tls, plain_http_on_the_tls_port_is_refused_cleanly)
{
    fo_hubproc *h = tls_hub();
    fo_ws_options o = {.port = fo_hubproc_port(h)};
    fo_ws_result res;
    char *body = NULL;
    int status = 0;

    cr_assert_eq(fo_http_get("127.0.0.1", fo_hubproc_port(h), "/healthz", NULL, 5000, &status,
                             &body, NULL), 0, "a plain GET gets an answer, not a hang");
    cr_assert_eq(status, 400);
    cr_assert(strstr(body, "speaks TLS") && strstr(body, "https://"), "says why: %s", body);
    free(body);
    cr_assert_null(fo_ws_connect(&o, &res));
    cr_assert_eq(res.http_status, 400, "ws:// to a wss port: %s", res.message);
    cr_assert(strstr(res.message, "speaks TLS"), "%s", res.message);
    cr_assert_eq(fo_https_get(cert, "127.0.0.1", fo_hubproc_port(h), "/healthz", NULL, 8000,
                              &status, &body, NULL), 0, "still serving");
    cr_assert_eq(status, 200);
    free(body);
    ht_hub_stop_ok(h, 10000);
}

/* Starts a hub that must refuse to: exit 2, and `needle` in its log. */
static void expect_exit_2(const char *const *args, const char *needle)
{
    fo_hubproc_options o = {.args = args, .ready_timeout_ms = 20000};
    fo_hubproc *h = fo_hubproc_new(&o);
    char *log;

    cr_assert_not_null(h);
    cr_assert_eq(fo_hubproc_start(h), -1, "the hub started");
    cr_assert(strstr(fo_hubproc_error(h), "(exit 2)"), "want exit 2: %s", fo_hubproc_error(h));
    log = fo_hubproc_log_tail(h, 4096);
    cr_assert(log && strstr(log, needle), "the log does not say `%s`:\n%s", needle, log);
    free(log);
    fo_hubproc_free(h);
}

Test(hub_tls, bad_certificate_or_key_files_exit_2)
{
    char missing[160], garbage[160], cmd[400];

    snprintf(missing, sizeof(missing), "%s/no-such.pem", dir);
    snprintf(garbage, sizeof(garbage), "%s/garbage.pem", dir);
    snprintf(cmd, sizeof(cmd), "echo 'not a certificate' > %s", garbage);
    cr_assert_eq(system(cmd), 0);
    {
        const char *const a[] = {"--tls-cert", missing, "--tls-key", key, NULL};
        expect_exit_2(a, "cannot use the TLS certificate");
    }
    {
        const char *const a[] = {"--tls-cert", garbage, "--tls-key", key, NULL};
        expect_exit_2(a, "cannot use the TLS certificate");
    }
    {
        const char *const a[] = {"--tls-cert", cert, "--tls-key", garbage, NULL};
        expect_exit_2(a, "cannot use the TLS key");
    }
    {
        const char *const a[] = {"--tls-cert", cert, "--tls-key", other_key, NULL};
        expect_exit_2(a, "does not belong to the certificate");
    }
    {
        const char *const a[] = {"--tls-cert", cert, NULL};
        expect_exit_2(a, "--tls-cert and --tls-key go together");
    }
}

static int raw_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

/* Whether the hub ends the connection (EOF or reset) within ms. */
static bool ended_within(int fd, int ms)
{
    int64_t deadline = fo_wsnet_deadline(ms);
    char b[512];

    while (fo_wsnet_remaining(deadline) > 0) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, fo_wsnet_remaining(deadline)) <= 0)
            return false;
        n = recv(fd, b, sizeof(b), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
    }
    return false;
}

Test(hub_tls, stalled_or_garbage_handshakes_do_not_block_others)
{
    fo_hubproc *h = tls_hub();
    int port = fo_hubproc_port(h);
    int stall = raw_connect(port), half = raw_connect(port), junk = raw_connect(port);
    static const unsigned char hello_start[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    static const char garbage[] = "\x16\x03\x01\x00\x08" "garbage!" "\xff\xfe\xfd";
    ht_client *a, *b;
    fo_arena ar;
    fo_batch bt;

    /* One sends nothing, one the start of a ClientHello, one garbage. */
    cr_assert_eq(send(half, hello_start, sizeof(hello_start), 0), (ssize_t)sizeof(hello_start));
    cr_assert_eq(send(junk, garbage, sizeof(garbage) - 1, 0), (ssize_t)sizeof(garbage) - 1);
    cr_assert(ended_within(junk, 3000), "a garbage handshake is closed at once");
    a = wss(h, "a");
    b = wss(h, "b");
    ht_sub(a, "m");
    fo_arena_init(&ar, 0);
    bt = ht_batch_json(&ar, "{\"from\":0,\"completions\":[{\"command\":{\"action\":\"create\","
                            "\"props\":{}},\"createdId\":\"1\"}]}");
    cr_assert_eq(ht_flush(b, "m", &bt).applied.len, 1, "served while handshakes stall");
    {
        fo_msg m;
        ht_expect(a, FO_MSG_PUSH, &m);
    }
    fo_arena_destroy(&ar);
    cr_assert_not(ended_within(stall, 200), "a silent client waits for the head timeout");
    close(stall);
    close(half);
    close(junk);
    ht_close(a);
    ht_close(b);
    ht_hub_stop_ok(h, 10000);
}
