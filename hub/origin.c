/* origin.c - see origin.h. */
#include "hub/origin.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Length of the "http://" or "https://" prefix of s (n bytes), 0 when it has neither. */
static size_t scheme_len(const char *s, size_t n)
{
    if (n >= 7 && strncasecmp(s, "http://", 7) == 0)
        return 7;
    if (n >= 8 && strncasecmp(s, "https://", 8) == 0)
        return 8;
    return 0;
}

/* Whether s[0, n) is HOST[:PORT] as an origin writes it: a name or IPv4 address of
 * [A-Za-z0-9.-], or [IPv6], then an optional port of 1-5 digits. */
static bool host_port_ok(const char *s, size_t n)
{
    size_t i = 0, digits = 0;

    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close == s + 1)
            return false;
        for (i = 1; s + i < close; i++)
            if (!strchr("0123456789abcdefABCDEF:.", s[i]))
                return false;
        i++;
    } else {
        for (; i < n && s[i] != ':'; i++)
            if (!(s[i] == '.' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9') ||
                  ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z')))
                return false;
        if (i == 0)
            return false;
    }
    if (i == n)
        return true;
    if (s[i] != ':')
        return false;
    for (i++; i < n; i++, digits++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return digits >= 1 && digits <= 5;
}

int fo_origins_check(const char *list, char *why, size_t cap)
{
    const char *p = list;

    if (!list || !*list) {
        snprintf(why, cap, "an empty list (leave the flag out for the default)");
        return -1;
    }
    if (strcmp(list, "*") == 0)
        return 0;
    while (*p) {
        size_t n, sl;

        while (*p == ' ')
            p++;
        n = strcspn(p, ", ");
        sl = scheme_len(p, n);

        if (n == 1 && *p == '*') {
            snprintf(why, cap, "'*' must be the whole list");
            return -1;
        }
        if (!(n == 4 && strncmp(p, "null", 4) == 0) && (!sl || !host_port_ok(p + sl, n - sl))) {
            snprintf(why, cap, "'%.*s' is not an origin (http[s]://HOST[:PORT], no path)",
                     (int)(n > 200 ? 200 : n), p);
            return -1;
        }
        p += n;
        while (*p == ' ')
            p++;
        if (*p && *p != ',') {
            snprintf(why, cap, "origins are separated by commas");
            return -1;
        }
        if (*p == ',' && !*++p) {
            snprintf(why, cap, "a trailing comma");
            return -1;
        }
    }
    return 0;
}

bool fo_origins_allow(const char *list, const char *origin, const char *host)
{
    size_t on, sl;

    if (!origin)
        return true;
    on = strlen(origin);
    sl = scheme_len(origin, on);
    if (sl && host && strcasecmp(origin + sl, host) == 0)
        return true;
    if (!list || !*list)
        return false;
    if (strcmp(list, "*") == 0)
        return true;
    for (const char *p = list; *p;) {
        size_t n;
        while (*p == ' ')
            p++;
        n = strcspn(p, ", ");
        if (n == on && strncasecmp(p, origin, n) == 0)
            return true;
        p += n;
        while (*p == ' ' || *p == ',')
            p++;
    }
    return false;
}
