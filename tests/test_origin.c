/* test_origin.c - hub/origin.h: which --allowed-origins values are accepted, and which
 * handshakes (Origin, Host) each one lets through. */
#include <criterion/criterion.h>
#include <string.h>

#include "hub/origin.h"

TestSuite(origin);

Test(origin, check_accepts_origins_and_star_alone)
{
    static const char *const good[] = {
        "*",
        "https://app.example.com",
        "http://localhost:5173",
        "https://a.example, http://b.example:8080",
        "http://[::1]:7420",
        "null,http://x",
    };
    static const struct {
        const char *list, *why;
    } bad[] = {
        {"", "an empty list (leave the flag out for the default)"},
        {"https://a.example/",
         "'https://a.example/' is not an origin (http[s]://HOST[:PORT], no path)"},
        {"a.example", "'a.example' is not an origin (http[s]://HOST[:PORT], no path)"},
        {"ws://a.example", "'ws://a.example' is not an origin (http[s]://HOST[:PORT], no path)"},
        {"http://a:99999x", "'http://a:99999x' is not an origin (http[s]://HOST[:PORT], no path)"},
        {"https://a.example,*", "'*' must be the whole list"},
        {"https://a.example,", "a trailing comma"},
        {"http://a http://b", "origins are separated by commas"},
    };
    char why[300];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert_eq(fo_origins_check(good[i], why, sizeof(why)), 0, "%s: %s", good[i], why);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        cr_assert_eq(fo_origins_check(bad[i].list, why, sizeof(why)), -1, "%s", bad[i].list);
        cr_assert_str_eq(why, bad[i].why, "%s", bad[i].list);
    }
}

Test(origin, allow)
{
    const char *list = "https://app.example.com, http://localhost:5173";

    /* No Origin: not a browser. */
    cr_assert(fo_origins_allow(NULL, NULL, NULL));
    cr_assert(fo_origins_allow(list, NULL, "h"));
    /* The hub's own origin, whatever the list, any scheme, case-insensitive. */
    cr_assert(fo_origins_allow(NULL, "http://hub.example:7420", "hub.example:7420"));
    cr_assert(fo_origins_allow(list, "https://HUB.example", "hub.example"));
    cr_assert(!fo_origins_allow(NULL, "http://hub.example", "hub.example:7420"));
    cr_assert(!fo_origins_allow(NULL, "http://hub.example", NULL));
    cr_assert(!fo_origins_allow(NULL, "hub.example", "hub.example"));
    /* The list: exact. */
    cr_assert(fo_origins_allow(list, "https://app.example.com", "h"));
    cr_assert(fo_origins_allow(list, "http://localhost:5173", "h"));
    cr_assert(!fo_origins_allow(list, "http://app.example.com", "h"));
    cr_assert(!fo_origins_allow(list, "https://app.example.com:443", "h"));
    cr_assert(!fo_origins_allow(list, "https://app.example.co", "h"));
    cr_assert(!fo_origins_allow(list, "null", "h"));
    cr_assert(fo_origins_allow("null", "null", "h"));
    cr_assert(fo_origins_allow("*", "https://anything.example", "h"));
    cr_assert(!fo_origins_allow("", "https://anything.example", "h"));
}
