#include "hub/log.h"

#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

fo_log_level fo_log_threshold = FO_LOG_INFO;

static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void fo_log_write(fo_log_level level, const char *fmt, ...)
{
    char line[1024];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (int)(tv.tv_usec / 1000), names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so lines from threads do not interleave. */
    n = (int)strlen(line);
    if (n > 0 && line[n - 1] == '\n')
        n--;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
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
    fo_log_level l = level & LLL_ERR ? FO_LOG_ERROR : level & LLL_WARN ? FO_LOG_WARN
                                                                        : FO_LOG_DEBUG;

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
