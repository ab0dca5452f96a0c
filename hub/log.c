#include "hub/log.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

fo_log_level fo_log_threshold = FO_LOG_INFO;
fo_log_format fo_log_output = FO_LOG_FORMAT_TEXT;

static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

static const char *const json_names[] = {"error", "warn", "info", "debug"};

/* A jansson string; bytes that are not UTF-8 become '?' (json_string refuses them). */
static json_t *jstr(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    char *copy;

    if (j || !(copy = malloc(n + 1)))
        return j;
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)s[i] < 0x80 && s[i] ? s[i] : '?';
    j = json_stringn(copy, n);
    free(copy);
    return j;
}

/* Moves the message's leading `key=value ` words into obj; returns the rest. */
static const char *take_fields(json_t *obj, const char *m)
{
    for (;;) {
        const char *k = m, *eq, *v, *end;
        char key[32];
        while (*k == '_' || (*k >= 'a' && *k <= 'z'))
            k++;
        eq = k;
        if (eq == m || *eq != '=' || (size_t)(eq - m) >= sizeof(key))
            return m;
        v = eq + 1;
        end = strchr(v, ' ');
        if (!end || end == v)
            return m; /* `key=value` with nothing after it is the message */
        memcpy(key, m, (size_t)(eq - m));
        key[eq - m] = '\0';
        if (!strcmp(key, "time") || !strcmp(key, "level") || !strcmp(key, "message") ||
            json_object_get(obj, key))
            return m;
        json_object_set_new(obj, key, jstr(v, (size_t)(end - v)));
        m = end + 1;
    }
}

size_t fo_log_format_line(char *buf, size_t len, fo_log_format format, fo_log_level level,
                          const char *time, const char *message)
{
    const char *rest;
    json_t *obj;
    char *text = NULL;
    size_t n;

    if (format == FO_LOG_FORMAT_JSON && (obj = json_object())) {
        json_object_set_new(obj, "time", json_string(time));
        json_object_set_new(obj, "level", json_string(json_names[level]));
        json_object_set_new(obj, "message", json_null()); /* the key order: time, level, message */
        rest = take_fields(obj, message);
        n = strlen(rest);
        json_object_set_new(obj, "message", jstr(rest, n > 0 && rest[n - 1] == '\n' ? n - 1 : n));
        text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(obj);
        if (text && strlen(text) + 2 <= len) {
            n = (size_t)snprintf(buf, len, "%s\n", text);
            free(text);
            return n;
        }
        free(text); /* out of memory, or longer than buf: written as text */
    }
    n = strlen(message);
    if (n > 0 && message[n - 1] == '\n')
        n--;
    n = (size_t)snprintf(buf, len, "%s %s %.*s\n", time, names[level], (int)n, message);
    if (n >= len) { /* cut: still one line */
        n = len - 1;
        buf[n - 1] = '\n';
    }
    return n;
}

void fo_log_write(fo_log_level level, const char *fmt, ...)
{
    char msg[1024], line[8192], now[96];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    size_t n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(now, sizeof(now), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    n = fo_log_format_line(line, sizeof(line), fo_log_output, level, now, msg);
    /* One write per line so lines from threads do not interleave. */
    fwrite(line, 1, n, stderr);
}

int fo_log_parse_level(const char *s)
{
    int i;

    for (i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return FO_LOG_WARN;
    return -1;
}

static void lws_sink(int level, const char *line)
{
    fo_log_level l = level & LLL_ERR ? FO_LOG_ERROR : level & LLL_WARN ? FO_LOG_WARN : FO_LOG_DEBUG;

    /* lws 4.1 reports every adopted socket at error level: it is the normal path here. */
    if (strstr(line, "adopt_socket_readbuf: calling service"))
        l = FO_LOG_DEBUG;
    FO_LOG(l, "lws: %s", line);
}

void fo_log_route_lws(void)
{
    int levels = LLL_ERR | LLL_WARN;

    if (fo_log_threshold >= FO_LOG_DEBUG)
        levels |= LLL_NOTICE | LLL_INFO;
    lws_set_log_level(levels, lws_sink);
}
