/* test_console.c - who may use the console (hub/console.h): the `admin` right of the token
 * file (hub/auth.h, a real file), what it grants and what it does not, and the loopback
 * rule of an open hub (hub/config.h). The console itself, its feed and its refusals over
 * HTTP and WebSockets are tested in a browser: clients/console/test (ctest: console_e2e). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/auth.h"
#include "hub/config.h"
#include "hub/metrics.h"

static char path[64];

static fo_auth *load(const char *text, char *err, size_t errlen)
{
    int fd;

    strcpy(path, "/tmp/fo-console-auth.XXXXXX");
    fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    fo_auth_options o = {path, NULL, NULL};
    fo_auth *a = fo_auth_load(&o, err, errlen);
    unlink(path);
    return a;
}

/* fo_auth_check with the rights of the previous check released first. */
static bool check(fo_auth *a, const char *tok, fo_rights *r)
{
    static bool held;
    char why[128];

    if (held)
        fo_rights_destroy(r);
    held = fo_auth_check(a, tok, fo_auth_now_ms(), r, why, sizeof(why));
    return held;
}

Test(console, admin_right_is_its_own)
{
    char err[256] = "";
    fo_auth *a = load("# token pattern rights\n"
                      "ops     *        admin\n"
                      "narrow  team-*   admin\n"
                      "narrow  team-a   r\n"
                      "editor  *        rw\n",
                      err, sizeof(err));
    fo_rights r;

    cr_assert_not_null(a, "%s", err);
    cr_assert(check(a, "ops", &r));
    cr_assert(fo_rights_admin(&r, NULL));
    cr_assert(fo_rights_admin(&r, "anything"));
    /* admin grants no read and no write */
    cr_assert_not(fo_rights_allow(&r, "anything", false));
    cr_assert_not(fo_rights_allow(&r, "anything", true));

    cr_assert(check(a, "narrow", &r));
    cr_assert(fo_rights_admin(&r, NULL));
    cr_assert(fo_rights_admin(&r, "team-b"));
    cr_assert_not(fo_rights_admin(&r, "other"));
    cr_assert(fo_rights_allow(&r, "team-a", false));
    cr_assert_not(fo_rights_allow(&r, "team-b", false));

    cr_assert(check(a, "editor", &r));
    cr_assert_not(fo_rights_admin(&r, NULL));
    cr_assert_not(fo_rights_admin(&r, "x"));
    cr_assert(fo_rights_allow(&r, "x", true));

    cr_assert_not(check(a, "nobody", &r));
    cr_assert_not(fo_rights_admin(&r, NULL));
    fo_auth_free(a);

    /* an open hub's rights are admin everywhere (http.c adds the loopback rule) */
    r = (fo_rights){.open = true};
    cr_assert(fo_rights_admin(&r, NULL));
}

Test(console, bad_rights_word_is_an_error)
{
    char err[256] = "";

    cr_assert_null(load("ops * admn\n", err, sizeof(err)));
    cr_assert(strstr(err, ":1: expected `TOKEN PATTERN r|rw|admin [NAME]`"), "%s", err);
}

Test(console, loopback_only)
{
    static const struct {
        const char *host;
        bool loopback;
    } cases[] = {
        {"127.0.0.1", true}, {"127.1.2.3", true}, {"::1", true}, {"localhost", true},
        {"0.0.0.0", false},  {"::", false},       {"10.0.0.1", false}, {"192.168.1.5", false},
        {"::ffff:127.0.0.1", false}, {"example.com", false},
    };
    fo_hub_config c;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fo_hub_config_default(&c);
        snprintf(c.host, sizeof(c.host), "%s", cases[i].host);
        cr_assert_eq(fo_hub_config_loopback(&c), cases[i].loopback, "%s", cases[i].host);
    }
}

Test(console, console_dir_flag)
{
    fo_hub_config c;
    char *ok[] = {"hub", "--console-dir", "clients/console/dist", NULL};
    char *empty[] = {"hub", "--console-dir", "", NULL};

    fo_hub_config_default(&c);
    cr_assert_eq(c.console_dir[0], '\0');
    cr_assert_eq(fo_hub_config_parse(&c, 3, ok), 0);
    cr_assert_str_eq(c.console_dir, "clients/console/dist");
    cr_assert_eq(fo_hub_config_parse(&c, 3, empty), -1);
}

/* The feed's latency quantiles come from histogram deltas between two samples. */
Test(console, quantiles_of_a_window)
{
    fo_hist old, now;

    memset(&old, 0, sizeof(old));
    for (int i = 0; i < 100; i++)
        fo_hist_add(&old, 0.2); /* before the window: must not count */
    now = old;
    cr_assert_eq(fo_hist_quantile(&now, &old, 0.5), 0);
    for (int i = 0; i < 99; i++)
        fo_hist_add(&now, 0.0003); /* (0.25 ms, 0.5 ms] */
    fo_hist_add(&now, 0.02);       /* (10 ms, 25 ms] */
    double p50 = fo_hist_quantile(&now, &old, 0.5), p999 = fo_hist_quantile(&now, &old, 0.999);
    cr_assert(p50 > 0.00025 && p50 <= 0.0005, "p50 %g", p50);
    cr_assert(p999 > 0.01 && p999 <= 0.025, "p99.9 %g", p999);
    fo_hist_add(&now, 100); /* +Inf: the highest finite bound */
    cr_assert_eq(fo_hist_quantile(&now, &old, 1.0), 10.0);
}
