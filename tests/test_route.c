/* test_route.c - hub/route.h: each HTTP route, each error text and status, the argument
 * lookup as lws_get_urlarg_by_name did it, the number rule and the file paths that must not
 * leave their directory. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "hub/route.h"

TestSuite(route);

#define BAD_MODEL "model: 1-200 bytes of [A-Za-z0-9._:-]"

/* Routes `uri` with up to 8 arguments given as "name=value" strings (NULL-terminated list). */
static void route(fo_route *rt, const char *uri, const char *const *argv)
{
    fo_route_arg args[8] = {{0}};
    size_t n = 0;

    for (; argv && argv[n]; n++) {
        args[n].s = argv[n];
        args[n].len = strlen(argv[n]);
    }
    fo_route_parse(uri, args, n, rt);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void expect_ok(const fo_route *rt, fo_route_kind kind)
{
    cr_assert_eq(rt->kind, kind);
    cr_assert_eq(rt->status, 0, "%d %s", rt->status, rt->error);
    cr_assert_null(rt->error);
}

/* `uri` routes to a file of `kind` at the relative `path`. */
static void expect_file(const char *uri, fo_route_kind kind, const char *path)
{
    fo_route rt;

    route(&rt, uri, NULL);
    expect_ok(&rt, kind);
    cr_assert_str_eq(rt.path, path, "%s", uri);
}

static void expect_err(const fo_route *rt, fo_route_kind kind, int status, const char *msg)
{
    cr_assert_eq(rt->kind, kind);
    cr_assert_eq(rt->status, status);
    cr_assert_str_eq(rt->error, msg);
}

Test(route, health_metrics_and_console_redirect)
{
    fo_route rt;

    route(&rt, "/healthz", NULL);
    expect_ok(&rt, FO_ROUTE_HEALTHZ);
    route(&rt, "/metrics", ARGS("x=1"));
    expect_ok(&rt, FO_ROUTE_METRICS);
    route(&rt, "/console", NULL);
    expect_ok(&rt, FO_ROUTE_CONSOLE_REDIRECT);
    cr_assert_str_eq(rt.model, "");
    cr_assert_str_eq(rt.path, "");
    /* near misses are files */
    expect_file("/healthz/", FO_ROUTE_STATIC_FILE, "healthz/index.html");
    expect_file("/metricsx", FO_ROUTE_STATIC_FILE, "metricsx");
}

Test(route, model_get_with_and_without_at)
{
    fo_route rt;

    route(&rt, "/v1/models/A-z_0.9:x", NULL);
    expect_ok(&rt, FO_ROUTE_MODEL_GET);
    cr_assert_str_eq(rt.model, "A-z_0.9:x");
    cr_assert_not(rt.has_at);
    route(&rt, "/v1/models/m", ARGS("x=1", "at=42", "at=7"));
    expect_ok(&rt, FO_ROUTE_MODEL_GET);
    cr_assert(rt.has_at);
    cr_assert_eq(rt.at, 42); /* the first one wins */
    route(&rt, "/v1/models/m", ARGS("at=18446744073709551615"));
    cr_assert(rt.has_at);
    cr_assert_eq(rt.at, UINT64_MAX);
    route(&rt, "/v1/models/m", ARGS("at=007"));
    cr_assert_eq(rt.at, 7);
}

Test(route, model_history_and_audit)
{
    fo_route rt;

    route(&rt, "/v1/models/m/history", ARGS("from=3", "to=9"));
    expect_ok(&rt, FO_ROUTE_MODEL_HISTORY);
    cr_assert_str_eq(rt.model, "m");
    cr_assert(rt.has_from && rt.has_to);
    cr_assert_eq(rt.from, 3);
    cr_assert_eq(rt.to, 9);
    route(&rt, "/v1/models/m/history", ARGS("from=0"));
    expect_ok(&rt, FO_ROUTE_MODEL_HISTORY);
    cr_assert_not(rt.has_to);
    route(&rt, "/v1/models/m/audit", NULL);
    expect_ok(&rt, FO_ROUTE_MODEL_AUDIT);
    cr_assert_not(rt.has_from);
    cr_assert_eq(rt.from, 0);
    route(&rt, "/v1/models/m/audit", ARGS("from=12"));
    expect_ok(&rt, FO_ROUTE_MODEL_AUDIT);
    cr_assert_eq(rt.from, 12);
    /* a %3F in the path decodes to a '?' that lws does not take for the query */
    route(&rt, "/v1/models/m/audit?from=1", NULL);
    expect_ok(&rt, FO_ROUTE_MODEL_AUDIT);
}

Test(route, model_errors_keep_their_texts)
{
    static const struct {
        const char *uri, *arg;
        fo_route_kind kind;
        int status;
        const char *msg;
    } t[] = {
        {"/v1/models/", NULL, FO_ROUTE_ERROR, 400, BAD_MODEL},
        {"/v1/models//history", NULL, FO_ROUTE_ERROR, 400, BAD_MODEL},
        {"/v1/models/a b", NULL, FO_ROUTE_ERROR, 400, BAD_MODEL},
        {"/v1/models/a?at=1", NULL, FO_ROUTE_ERROR, 400, BAD_MODEL},
        {"/v1/models/\xc3\xa9", NULL, FO_ROUTE_ERROR, 400, BAD_MODEL},
        {"/v1/models/m", "at=-1", FO_ROUTE_MODEL_GET, 400, "at: expected an unsigned integer"},
        {"/v1/models/m", "at=", FO_ROUTE_MODEL_GET, 400, "at: expected an unsigned integer"},
        {"/v1/models/m", "at= 5", FO_ROUTE_MODEL_GET, 400, "at: expected an unsigned integer"},
        {"/v1/models/m", "at= -1", FO_ROUTE_MODEL_GET, 400, "at: expected an unsigned integer"},
        {"/v1/models/m", "at=+5", FO_ROUTE_MODEL_GET, 400, "at: expected an unsigned integer"},
        {"/v1/models/m", "at=0x10", FO_ROUTE_MODEL_GET, 400, "at: expected an unsigned integer"},
        {"/v1/models/m", "at=18446744073709551616", FO_ROUTE_MODEL_GET, 400,
         "at: expected an unsigned integer"},
        {"/v1/models/m/history", NULL, FO_ROUTE_MODEL_HISTORY, 400,
         "from: expected an unsigned integer"},
        {"/v1/models/m/history", "from=x", FO_ROUTE_MODEL_HISTORY, 400,
         "from: expected an unsigned integer"},
        {"/v1/models/m/audit", "from=1.5", FO_ROUTE_MODEL_AUDIT, 400,
         "from: expected an unsigned integer"},
        {"/v1/models/m/snapshot", NULL, FO_ROUTE_MODEL_OTHER, 404, "no such endpoint"},
        {"/v1/models/m/", NULL, FO_ROUTE_MODEL_OTHER, 404, "no such endpoint"},
        {"/v1/models/m/history/x", "from=1", FO_ROUTE_MODEL_OTHER, 404, "no such endpoint"},
    };
    fo_route rt;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        route(&rt, t[i].uri, t[i].arg ? ARGS(t[i].arg) : NULL);
        cr_assert_eq(rt.kind, t[i].kind, "%s %s", t[i].uri, t[i].arg);
        cr_assert_eq(rt.status, t[i].status, "%s %s", t[i].uri, t[i].arg);
        cr_assert_str_eq(rt.error, t[i].msg, "%s %s", t[i].uri, t[i].arg);
    }
    route(&rt, "/v1/models/m/history", ARGS("from=1", "to=x"));
    expect_err(&rt, FO_ROUTE_MODEL_HISTORY, 400, "to: expected an unsigned integer");
    cr_assert_str_eq(rt.model, "m"); /* still there: the hub checks rights on it first */
}

Test(route, model_name_length_limit)
{
    char uri[300];
    fo_route rt;

    snprintf(uri, sizeof(uri), "/v1/models/%0*d", FO_MODEL_NAME_MAX, 0);
    route(&rt, uri, NULL);
    expect_ok(&rt, FO_ROUTE_MODEL_GET);
    cr_assert_eq(strlen(rt.model), FO_MODEL_NAME_MAX);
    snprintf(uri, sizeof(uri), "/v1/models/%0*d/history", FO_MODEL_NAME_MAX + 1, 0);
    route(&rt, uri, ARGS("from=1"));
    expect_err(&rt, FO_ROUTE_ERROR, 400, BAD_MODEL);
}

Test(route, console_api)
{
    fo_route rt;

    route(&rt, "/v1/console/models", NULL);
    expect_ok(&rt, FO_ROUTE_CONSOLE_MODELS);
    cr_assert_null(rt.q);
    cr_assert_not(rt.has_limit);
    cr_assert_eq(rt.limit, 50);
    route(&rt, "/v1/console/models", ARGS("q=ab c", "limit=1000"));
    expect_ok(&rt, FO_ROUTE_CONSOLE_MODELS);
    cr_assert_str_eq(rt.q, "ab c");
    cr_assert_eq(rt.limit, 1000);
    route(&rt, "/v1/console/models/m.1", NULL);
    expect_ok(&rt, FO_ROUTE_CONSOLE_MODEL);
    cr_assert_str_eq(rt.model, "m.1");

    route(&rt, "/v1/console/models", ARGS("limit=0"));
    expect_err(&rt, FO_ROUTE_CONSOLE_MODELS, 400, "limit: 1 to 1000");
    route(&rt, "/v1/console/models", ARGS("limit=1001"));
    expect_err(&rt, FO_ROUTE_CONSOLE_MODELS, 400, "limit: 1 to 1000");
    route(&rt, "/v1/console/models", ARGS("limit=ten"));
    expect_err(&rt, FO_ROUTE_CONSOLE_MODELS, 400, "limit: 1 to 1000");
    route(&rt, "/v1/console/models/a/b", NULL);
    expect_err(&rt, FO_ROUTE_CONSOLE_MODEL, 400, BAD_MODEL);
    route(&rt, "/v1/console/models/", NULL);
    expect_err(&rt, FO_ROUTE_CONSOLE_MODEL, 400, BAD_MODEL);
    route(&rt, "/v1/console/feed", NULL);
    expect_err(&rt, FO_ROUTE_CONSOLE_FEED, 400,
               "the feed is a WebSocket: ws://HOST:PORT/v1/console/feed");
    route(&rt, "/v1/console/", NULL);
    expect_err(&rt, FO_ROUTE_CONSOLE_OTHER, 404, "no such endpoint");
    route(&rt, "/v1/console/modelsx", NULL);
    expect_err(&rt, FO_ROUTE_CONSOLE_OTHER, 404, "no such endpoint");
}

Test(route, arguments_are_looked_up_as_lws_did)
{
    char long_arg[80];
    fo_route rt;

    memset(long_arg, 'x', sizeof(long_arg) - 1);
    long_arg[sizeof(long_arg) - 1] = '\0';
    /* a fragment that did not fit the 64-byte buffer ended the search for at= */
    route(&rt, "/v1/models/m", ARGS(long_arg, "at=5"));
    expect_ok(&rt, FO_ROUTE_MODEL_GET);
    cr_assert_not(rt.has_at);
    /* ... but not the one for token=, whose buffer was 2048 bytes */
    route(&rt, "/v1/models/m", ARGS(long_arg, "token=abc", "at=5"));
    cr_assert_str_eq(rt.token, "abc");
    /* at=<63 bytes> fit, at=<64 bytes> did not */
    route(&rt, "/v1/models/m",
          ARGS("at=000000000000000000000000000000000000000000000000000000000001"));
    cr_assert(rt.has_at);
    cr_assert_eq(rt.at, 1);
    route(&rt, "/v1/models/m",
          ARGS("at=0000000000000000000000000000000000000000000000000000000000001"));
    cr_assert_not(rt.has_at);
    /* names match from the start of a fragment, whole */
    route(&rt, "/v1/models/m", ARGS("xat=1", "at", "tokens=1"));
    cr_assert_not(rt.has_at);
    cr_assert_null(rt.token);
    route(&rt, "/v1/console/models", ARGS("token=t", "q="));
    cr_assert_str_eq(rt.q, "");
    cr_assert_str_eq(rt.token, "t");
}

Test(route, number_rule)
{
    static const char *const bad[] = {"",
                                      "-0",
                                      "+1",
                                      " 1",
                                      "1 ",
                                      "1\t",
                                      "0x1",
                                      "1e3",
                                      "١",
                                      "18446744073709551616",
                                      "99999999999999999999"};
    uint64_t v = 77;

    cr_assert(fo_route_u64("0", &v) && v == 0);
    cr_assert(fo_route_u64("18446744073709551615", &v) && v == UINT64_MAX);
    cr_assert(fo_route_u64("18446744073709551610", &v) && v == UINT64_MAX - 5);
    cr_assert_not(fo_route_u64(NULL, &v));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 77;
        cr_assert_not(fo_route_u64(bad[i], &v), "%s", bad[i]);
        cr_assert_eq(v, 77, "%s", bad[i]);
    }
}

Test(route, static_and_console_files)
{
    fo_route rt;

    expect_file("/", FO_ROUTE_STATIC_FILE, "index.html");
    route(&rt, "/app/main.js", ARGS("v=2"));
    expect_ok(&rt, FO_ROUTE_STATIC_FILE);
    cr_assert_str_eq(rt.path, "app/main.js");
    route(&rt, "/docs/", NULL);
    cr_assert_str_eq(rt.path, "docs/index.html");
    route(&rt, "/.well-known/x", NULL);
    cr_assert_str_eq(rt.path, ".well-known/x");
    expect_file("/console/", FO_ROUTE_CONSOLE_FILE, "index.html");
    expect_file("/console/assets/a.css", FO_ROUTE_CONSOLE_FILE, "assets/a.css");
    expect_file("/consolex", FO_ROUTE_STATIC_FILE, "consolex");
}

Test(route, file_paths_never_escape)
{
    static const char *const bad[] = {
        "/..",
        "/../etc/passwd",
        "/a/../../b",
        "/a/..",
        "/...",
        "/a..b",
        "/..\\x",
        "/a\\..\\..\\b",
        "//etc/passwd",
        "/a//b",
        "",
        "etc/passwd",
        "a/../b",
        "/console/..",
        "/console/../x",
        "/console//x",
        "/console/a/../../b",
    };
    char longp[FO_ROUTE_PATH_MAX + 8];
    fo_route rt;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        route(&rt, bad[i], NULL);
        cr_assert(rt.kind == FO_ROUTE_STATIC_FILE || rt.kind == FO_ROUTE_CONSOLE_FILE, "%s",
                  bad[i]);
        cr_assert_eq(rt.status, 404, "%s", bad[i]);
        cr_assert_str_eq(rt.error, "not found", "%s", bad[i]);
        cr_assert_str_eq(rt.path, "", "%s", bad[i]);
    }
    /* a decoded %00 ends the C string lws hands over: what follows is not seen */
    expect_file("/a\0/../../etc/passwd", FO_ROUTE_STATIC_FILE, "a");
    /* a backslash is an ordinary byte of a file name on POSIX */
    expect_file("/a\\b", FO_ROUTE_STATIC_FILE, "a\\b");
    /* too long for a path: 404, not a cut path */
    longp[0] = '/';
    memset(longp + 1, 'a', sizeof(longp) - 2);
    longp[sizeof(longp) - 1] = '\0';
    route(&rt, longp, NULL);
    expect_err(&rt, FO_ROUTE_STATIC_FILE, 404, "not found");
    longp[FO_ROUTE_PATH_MAX - 1] = '/';
    longp[FO_ROUTE_PATH_MAX] = '\0';
    route(&rt, longp, NULL);
    expect_err(&rt, FO_ROUTE_STATIC_FILE, 404, "not found"); /* with index.html it is */
    longp[FO_ROUTE_PATH_MAX] = 'a';
    longp[FO_ROUTE_PATH_MAX - 1] = '\0'; /* 4094 bytes + NUL: fits */
    route(&rt, longp, NULL);
    expect_ok(&rt, FO_ROUTE_STATIC_FILE);
    cr_assert_eq(strlen(rt.path), FO_ROUTE_PATH_MAX - 2);
}

Test(route, token_on_any_route)
{
    fo_route rt;

    route(&rt, "/healthz", ARGS("token=a.b.c"));
    cr_assert_str_eq(rt.token, "a.b.c");
    route(&rt, "/v1/models/m/history", ARGS("from=1", "token=t"));
    cr_assert_str_eq(rt.token, "t");
    route(&rt, "/v1/models/m", NULL);
    cr_assert_null(rt.token);
}
