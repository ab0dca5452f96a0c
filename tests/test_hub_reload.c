/* The hub over real WebSockets, part 10: SIGHUP reloads the token file and the JWT keys
 * (hub/reload.h) without dropping a connection. A token added to the file works after the
 * signal while a connection opened before stays open and keeps its rights; a removed token
 * is refused for new connections and HTTP requests; a broken or missing file, or a secret
 * too short, keeps the tokens in force and says why in the log and in /metrics. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>

#include "tests/support/hubtest.h"

#ifndef FO_HUB_BIN
#define FO_HUB_BIN ""
#endif

static char dir[64];

static void setup(void)
{
    setenv("FO_HUB_BIN", FO_HUB_BIN, 0);
    snprintf(dir, sizeof(dir), "/tmp/fo-reload-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    ht_cleanup();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(hub_reload, .init = setup, .fini = teardown, .timeout = 90);

/* Writes `text` to dir/name (replacing it); returns the path in `path`. */
static void put_file(const char *name, const char *text, char *path, size_t cap)
{
    FILE *f;

    snprintf(path, cap, "%s/%s", dir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    cr_assert_eq(fclose(f), 0);
}

/* Connects with `token` as a bearer and says hello as `id`. */
static ht_client *connect_as(fo_hubproc *h, const char *token, const char *id)
{
    fo_ws_options o = {.port = fo_hubproc_port(h), .bearer = token};
    fo_msg m = {.type = FO_MSG_HELLO, .client = id};
    ht_client *c = ht_connect_raw(h, &o);
    uint64_t rid;

    snprintf(c->id, sizeof(c->id), "%s", id);
    rid = ht_send(c, &m);
    ht_expect_reply(c, FO_MSG_WELCOME, rid, &m);
    return c;
}

/* GET /v1/models/<model> with `token`: the HTTP status. */
static int http_status(fo_hubproc *h, const char *token, const char *model)
{
    char hdr[512], target[256];
    char *body = NULL;
    size_t len;
    int status;

    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    snprintf(target, sizeof(target), "/v1/models/%s", model);
    cr_assert_eq(fo_http_get(NULL, fo_hubproc_port(h), target, hdr, 5000, &status, &body, &len),
                 0);
    free(body);
    return status;
}

/* A new upgrade with `token` is refused with 401 and a reason containing `reason`, and so is
 * an HTTP request. */
static void assert_refused(fo_hubproc *h, const char *token, const char *reason)
{
    fo_ws_options o = {.port = fo_hubproc_port(h), .bearer = token};
    fo_ws_result res;
    fo_ws *ws = fo_ws_connect(&o, &res);

    if (ws) {
        fo_ws_free(ws);
        ht_hub_dump(h);
        cr_assert_fail("token %s: the upgrade was accepted", token);
    }
    cr_assert_eq(res.http_status, 401, "token %s: want HTTP 401, got %s", token, res.message);
    cr_assert(strstr(res.message, reason), "token %s: want \"%s\", got \"%s\"", token, reason,
              res.message);
    cr_assert_eq(http_status(h, token, "m1"), 401, "token %s: the HTTP endpoint let it in",
                 token);
}

static void flush_x(ht_client *c, const char *model, uint64_t from, int x)
{
    fo_arena a;
    char json[256];
    fo_batch b;
    fo_apply_result r;

    fo_arena_init(&a, 0);
    snprintf(json, sizeof(json),
             "{\"from\":%llu,\"completions\":[{\"command\":{\"action\":\"update\","
             "\"props\":{\"x\":%d}}}]}",
             (unsigned long long)from, x);
    b = ht_batch_json(&a, json);
    r = ht_flush(c, model, &b);
    cr_assert_eq(r.errors_len, 0, "%s: the flush was refused: %s", c->id,
                 r.errors_len ? r.errors[0].message : "");
    fo_arena_destroy(&a);
}

/* The next message on c must be a push of `model`. */
static void expect_push(ht_client *c, const char *model)
{
    fo_msg m;

    ht_expect(c, FO_MSG_PUSH, &m);
    cr_assert_str_eq(m.model, model);
}

Test(hub_reload, token_file_reload_keeps_connections_and_a_broken_file_keeps_the_tokens)
{
    char path[128];
    const char *args[] = {"--auth", path, NULL};
    fo_hubproc *h;
    ht_client *old, *kept, *fresh;

    put_file("tokens", "# token pattern rights name\n"
                       "tok-old  m*  rw  olga\n"
                       "tok-keep m*  rw  kim\n", path, sizeof(path));
    h = ht_hub_start("memory", args);
    old = connect_as(h, "tok-old", "old");
    ht_sub(old, "m1");
    flush_x(old, "m1", 0, 1);
    assert_refused(h, "tok-new", "unknown token");

    /* tok-new added, tok-old removed. */
    put_file("tokens", "tok-keep m* rw kim\n"
                       "tok-new  m* rw nina\n", path, sizeof(path));
    ht_hup(h, "SIGHUP: tokens reloaded", 1);
    fresh = connect_as(h, "tok-new", "fresh");
    ht_sub(fresh, "m1");
    flush_x(fresh, "m1", 1, 2);
    expect_push(old, "m1"); /* the connection opened under tok-old is still open ... */
    flush_x(old, "m1", 2, 3); /* ... and keeps the rights it was granted */
    expect_push(fresh, "m1");
    assert_refused(h, "tok-old", "unknown token"); /* but no new connection gets in with it */
    cr_assert_eq(http_status(h, "tok-new", "m1"), 200);
    cr_assert_eq(ht_metric(h, "flushout_auth_reloads_total"), 1);

    /* A broken file (bad rights on line 2): the tokens before stay in force. */
    put_file("tokens", "tok-keep m* rw kim\n"
                       "tok-broken m* rwx\n", path, sizeof(path));
    ht_hup(h, "SIGHUP: tokens not reloaded", 1);
    cr_assert_gt(fo_hubproc_log_count(h, "tokens:2: expected `TOKEN PATTERN r|rw|admin"), 0,
                 "the log does not say which line is wrong");
    kept = connect_as(h, "tok-new", "kept");
    ht_get(kept, "m1");
    assert_refused(h, "tok-broken", "unknown token");
    assert_refused(h, "tok-old", "unknown token");

    /* A missing file: the same. */
    cr_assert_eq(unlink(path), 0);
    ht_hup(h, "SIGHUP: tokens not reloaded", 2);
    cr_assert_gt(fo_hubproc_log_count(h, "No such file or directory"), 0);
    ht_close(kept);
    ht_close(connect_as(h, "tok-keep", "keep"));
    cr_assert_eq(ht_metric(h, "flushout_auth_reload_errors_total"), 2);
    cr_assert_eq(ht_metric(h, "flushout_auth_reloads_total"), 1);

    /* Back in place: reloaded again; the first two connections never closed. */
    put_file("tokens", "tok-new m* rw nina\n", path, sizeof(path));
    ht_hup(h, "SIGHUP: tokens reloaded", 2);
    assert_refused(h, "tok-keep", "unknown token");
    flush_x(old, "m1", 3, 4);
    expect_push(fresh, "m1");
    cr_assert_eq(ht_get(fresh, "m1").command_count, 4);
    ht_close(old);
    ht_close(fresh);
    ht_hub_stop_ok(h, 10000);
}

static char *hs256(const char *secret, const char *sub)
{
    jwt_t *j = NULL;
    char claims[256], *out;

    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%ld,\"models\":{\"m*\":\"rw\"}}",
             sub, (long)time(NULL) + 600);
    cr_assert_eq(jwt_new(&j), 0);
    cr_assert_eq(jwt_add_grants_json(j, claims), 0);
    cr_assert_eq(jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)),
                 0);
    out = jwt_encode_str(j);
    cr_assert_not_null(out);
    jwt_free(j);
    return out;
}

/* A hello carrying `token` on an open connection: `error unauthorized` naming `reason`. */
static void renew_refused(ht_client *c, const char *token, const char *reason)
{
    fo_msg m = {.type = FO_MSG_HELLO, .client = c->id, .token = token};
    uint64_t rid = ht_send(c, &m);

    ht_expect_error(c, FO_ERR_UNAUTHORIZED, rid, reason);
}

Test(hub_reload, jwt_secret_rotation)
{
    static const char S1[] = "first-secret-0123456789abcdef0123456789";
    static const char S2[] = "second-secret-0123456789abcdef012345678";
    char path[128];
    const char *args[] = {"--jwt-secret-file", path, NULL};
    char *t1 = hs256(S1, "one"), *t2 = hs256(S2, "two");
    fo_hubproc *h;
    ht_client *c1, *c2;

    put_file("secret", S1, path, sizeof(path));
    h = ht_hub_start("memory", args);
    c1 = connect_as(h, t1, "c1");
    ht_sub(c1, "m1");
    assert_refused(h, t2, "signature");

    put_file("secret", S2, path, sizeof(path));
    ht_hup(h, "SIGHUP: tokens reloaded", 1);
    c2 = connect_as(h, t2, "c2");
    flush_x(c2, "m1", 0, 1);
    expect_push(c1, "m1");        /* open under the old key, still subscribed */
    flush_x(c1, "m1", 1, 2);      /* and still allowed to write */
    assert_refused(h, t1, "signature");
    renew_refused(c1, t1, "the identity is unchanged"); /* renewals use the new key */

    /* Too short a secret: refused, the second secret stays. */
    put_file("secret", "short", path, sizeof(path));
    ht_hup(h, "SIGHUP: tokens not reloaded", 1);
    cr_assert_gt(fo_hubproc_log_count(h, "at least"), 0, "the log does not say why");
    ht_close(connect_as(h, t2, "c3"));
    assert_refused(h, t1, "signature");
    ht_close(c1);
    ht_close(c2);
    ht_hub_stop_ok(h, 10000);
    free(t1);
    free(t2);
}

/* Without any token source, SIGHUP keeps the hub open and reloads nothing it does not have;
 * --allowed-origins stays as it was given. */
Test(hub_reload, open_hub_stays_open)
{
    const char *args[] = {"--allowed-origins", "https://app.example.com", NULL};
    fo_hubproc *h = ht_hub_start("memory", args);
    ht_client *c = ht_connect(h, "c");

    ht_sub(c, "m1");
    ht_hup(h, "SIGHUP: reload done", 1);
    cr_assert_eq(fo_hubproc_log_count(h, "not reloaded"), 0);
    cr_assert_eq(http_status(h, "anything", "m1"), 200);
    flush_x(c, "m1", 0, 1);
    ht_close(ht_connect(h, "d"));
    ht_close(c);
    ht_hub_stop_ok(h, 10000);
}

/* Upgrades with `Origin: origin`; the HTTP status (101 when it was accepted). */
static int upgrade_from(fo_hubproc *h, const char *origin)
{
    char extra[256];
    fo_ws_options o = {.port = fo_hubproc_port(h), .extra_headers = extra};
    fo_ws_result res;
    fo_ws *ws;

    snprintf(extra, sizeof(extra), "Origin: %s\r\n", origin);
    if ((ws = fo_ws_connect(&o, &res))) {
        fo_ws_free(ws);
        return 101;
    }
    return res.http_status;
}

/* With --config, SIGHUP reads the file again: an edited allowed-origins takes effect for new
 * upgrades; a file that no longer parses keeps everything in force. */
Test(hub_reload, config_file_read_again)
{
    char path[128], args_path[160];
    const char *args[] = {"--config", args_path, NULL};
    fo_hubproc *h;
    ht_client *c;

    put_file("hub.ini", "allowed-origins = https://a.example.com\n", path, sizeof(path));
    snprintf(args_path, sizeof(args_path), "%s", path);
    h = ht_hub_start("memory", args);
    c = ht_connect(h, "c");
    ht_sub(c, "m1");
    cr_assert_eq(upgrade_from(h, "https://a.example.com"), 101);
    cr_assert_eq(upgrade_from(h, "https://b.example.com"), 403);

    put_file("hub.ini", "allowed-origins = https://b.example.com\n", path, sizeof(path));
    ht_hup(h, "SIGHUP: allowed origins now https://b.example.com", 1);
    cr_assert_eq(upgrade_from(h, "https://b.example.com"), 101);
    cr_assert_eq(upgrade_from(h, "https://a.example.com"), 403);

    put_file("hub.ini", "allowed-origins = https://c.example.com\nno-such-key = 1\n", path,
             sizeof(path));
    ht_hup(h, "SIGHUP: nothing reloaded", 1);
    cr_assert_eq(upgrade_from(h, "https://b.example.com"), 101, "a broken file changed the origins");
    flush_x(c, "m1", 0, 1); /* the open connection went on throughout */
    ht_close(c);
    ht_hub_stop_ok(h, 10000);
}
