/* test_loadgen_opts.c - flushout-bench's command line (bench/loadgen/opts.c): --url with one
 * hub as before, lists of up to FO_LG_MAX_URLS hubs and their errors, and which hub each
 * connection goes to (fo_lg_url_of). */
#include <criterion/criterion.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/loadgen/lg.h"

TestSuite(loadgen_opts);

static fo_lg_opts o; /* large: not on the stack */
static char err[4096];

/* Parses "flushout-bench" + the NULL-terminated args into o; what it printed on stderr
 * lands in err. Returns fo_lg_opts_parse's result. */
static int parse(const char *const *args)
{
    char *argv[32];
    int argc = 0, rc, saved;
    FILE *tmp = tmpfile();
    size_t n;

    cr_assert_not_null(tmp);
    argv[argc++] = "flushout-bench";
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    optind = 0; /* glibc: start over */
    fflush(stderr);
    saved = dup(2);
    dup2(fileno(tmp), 2);
    rc = fo_lg_opts_parse(&o, argc, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    n = fread(err, 1, sizeof(err) - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    return rc;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void expect_bad(const char *const *args, const char *msg)
{
    cr_assert_eq(parse(args), -1, "accepted %s", args[1]);
    cr_assert_not_null(strstr(err, msg), "stderr: %s (wanted %s)", err, msg);
}

Test(loadgen_opts, default_url)
{
    cr_assert_eq(parse(ARGS("--models", "2")), 0, "%s", err);
    cr_assert_eq(o.nurls, 1);
    cr_assert_str_eq(o.url, "ws://127.0.0.1:7420/v1/ws");
    cr_assert_str_eq(o.urls[0].host, "127.0.0.1:7420");
    cr_assert_eq(o.urls[0].port, 7420);
    cr_assert_not(o.tls);
}

Test(loadgen_opts, one_url_as_before)
{
    cr_assert_eq(parse(ARGS("--url", "ws://hub.example:9000/v1/ws?token=abc")), 0, "%s", err);
    cr_assert_eq(o.nurls, 1);
    cr_assert_str_eq(o.url, "ws://hub.example:9000/v1/ws?token=abc");
    cr_assert_str_eq(o.urls[0].url, o.url);
    cr_assert_str_eq(o.urls[0].host, "hub.example:9000");
    cr_assert_str_eq(o.urls[0].hostname, "hub.example");
    cr_assert_str_eq(o.urls[0].path, "/v1/ws?token=abc");
    cr_assert_eq(o.urls[0].port, 9000);

    cr_assert_eq(parse(ARGS("--url", "wss://[::1]?t=1")), 0, "%s", err);
    cr_assert(o.tls);
    cr_assert_str_eq(o.urls[0].hostname, "::1");
    cr_assert_str_eq(o.urls[0].path, "/?t=1");
    cr_assert_eq(o.urls[0].port, 443);

    /* One bad URL: the message of before the lists. */
    expect_bad(ARGS("--url", "http://x/"), "bad value for --url: 'http://x/' (see --help)");
    expect_bad(ARGS("--url", "ws://x:0/v1/ws"), "bad value for --url: 'ws://x:0/v1/ws'");
    expect_bad(ARGS("--url", ""), "bad value for --url: ''");
}

Test(loadgen_opts, two_urls)
{
    const char *list = "ws://127.0.0.1:7001/v1/ws,ws://127.0.0.2:7002/v1/ws?token=t";

    cr_assert_eq(parse(ARGS("--url", list)), 0, "%s", err);
    cr_assert_eq(o.nurls, 2);
    cr_assert_str_eq(o.url, list); /* the JSON's "url": the whole list */
    cr_assert_str_eq(o.urls[0].url, "ws://127.0.0.1:7001/v1/ws");
    cr_assert_str_eq(o.urls[1].url, "ws://127.0.0.2:7002/v1/ws?token=t");
    cr_assert_eq(o.urls[0].port, 7001);
    cr_assert_eq(o.urls[1].port, 7002);
    cr_assert_str_eq(o.urls[0].hostname, "127.0.0.1");
    cr_assert_str_eq(o.urls[1].hostname, "127.0.0.2");
    cr_assert_str_eq(o.urls[1].path, "/v1/ws?token=t");
    cr_assert_not(o.tls);

    cr_assert_eq(parse(ARGS("--url", "wss://a:1/v1/ws,wss://b:2/v1/ws")), 0, "%s", err);
    cr_assert_eq(o.nurls, 2);
    cr_assert(o.tls);
}

Test(loadgen_opts, list_errors_name_the_item)
{
    expect_bad(ARGS("--url", "ws://a:1/v1/ws,wss://b:2/v1/ws"),
               "item 2 'wss://b:2/v1/ws': ws:// and wss:// mixed");
    expect_bad(ARGS("--url", "wss://a:1/v1/ws,ws://b:2/v1/ws"),
               "item 2 'ws://b:2/v1/ws': ws:// and wss:// mixed");
    expect_bad(ARGS("--url", "ws://a:1/v1/ws,,ws://b:2/v1/ws"), "item 2 '': empty");
    expect_bad(ARGS("--url", "ws://a:1/v1/ws,"), "item 2 '': empty");
    expect_bad(ARGS("--url", ",ws://a:1/v1/ws"), "item 1 '': empty");
    expect_bad(ARGS("--url", "ws://a:1/v1/ws,ws://b:70000/v1/ws"),
               "item 2 'ws://b:70000/v1/ws': bad port");
    expect_bad(ARGS("--url", "ws://a:1/v1/ws,ws://b:x/v1/ws"), "item 2 'ws://b:x/v1/ws': bad port");
    expect_bad(ARGS("--url", "ws://a:1/v1/ws,http://b/"),
               "item 2 'http://b/': not ws:// or wss://");
}

Test(loadgen_opts, at_most_16)
{
    char list[2048] = "";
    size_t i;

    for (i = 0; i < FO_LG_MAX_URLS; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%sws://127.0.0.1:%zu/v1/ws",
                 i ? "," : "", 7001 + i);
    cr_assert_eq(parse(ARGS("--url", list)), 0, "%s", err);
    cr_assert_eq(o.nurls, FO_LG_MAX_URLS);
    cr_assert_eq(o.urls[15].port, 7016);

    strcat(list, ",ws://127.0.0.1:7017/v1/ws");
    expect_bad(ARGS("--url", list), "more than 16 URLs (item 17 'ws://127.0.0.1:7017/v1/ws')");
}

/* One URL: every connection on it. */
Test(loadgen_opts, url_of_one)
{
    cr_assert_eq(parse(ARGS("--models", "3")), 0, "%s", err);
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_eq(fo_lg_url_of(&o, i), 0);
}

/* Two hubs, 10 models of 1 writer + 4 subscribers: i % 2 would put all of a model's
 * connections on one hub (10 is even); each model's subscribers must be on both, and
 * the hubs share the connections evenly. */
Test(loadgen_opts, url_of_spreads_each_model)
{
    uint32_t per_url[2] = {0, 0};

    cr_assert_eq(parse(ARGS("--url", "ws://127.0.0.1:7001/v1/ws,ws://127.0.0.1:7002/v1/ws",
                            "--models", "10", "--writers", "1", "--subscribers", "4")),
                 0, "%s", err);
    cr_assert_eq(o.connections, 50);
    for (uint32_t m = 0; m < o.models; m++) {
        uint32_t subs[2] = {0, 0};
        for (uint32_t i = m; i < o.connections; i += o.models) {
            uint32_t u = fo_lg_url_of(&o, i);
            cr_assert_lt(u, 2);
            per_url[u]++;
            if (i / o.models >= o.writers) /* a subscriber (main.c's roles) */
                subs[u]++;
        }
        cr_assert(subs[0] > 0 && subs[1] > 0, "model %u: subscribers %u/%u", m, subs[0], subs[1]);
    }
    cr_assert_eq(per_url[0], 25);
    cr_assert_eq(per_url[1], 25);
}

/* One model: plain round-robin, connection i on URL i % n. */
Test(loadgen_opts, url_of_one_model_round_robin)
{
    cr_assert_eq(parse(ARGS("--url", "ws://a:1/v1/ws,ws://b:2/v1/ws,ws://c:3/v1/ws", "--models",
                            "1", "--connections", "30")),
                 0, "%s", err);
    for (uint32_t i = 0; i < 30; i++)
        cr_assert_eq(fo_lg_url_of(&o, i), i % 3);
}
