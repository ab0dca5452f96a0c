/* log.h - one line per event on stderr: `2026-11-26T12:00:00.123Z INFO sid=12 message`.
 * FO_LOG checks the level before it evaluates its arguments. lws's own log lines go to
 * the same sink (fo_log_route_lws). */
#ifndef FO_LOG_H
#define FO_LOG_H

typedef enum fo_log_level {
    FO_LOG_ERROR = 0,
    FO_LOG_WARN,
    FO_LOG_INFO,
    FO_LOG_DEBUG,
} fo_log_level;

/* The process's log threshold: the one mutable global of the hub, set once from
 * --log-level before the loop starts (like Redis's verbosity). */
extern fo_log_level fo_log_threshold;

#define FO_LOG(level, ...)                                                                   \
    do {                                                                                     \
        if ((level) <= fo_log_threshold)                                                     \
            fo_log_write((level), __VA_ARGS__);                                              \
    } while (0)

void fo_log_write(fo_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int fo_log_parse_level(const char *s);
/* Sends libwebsockets' log output through fo_log_write (errors and warnings only, or
 * more at debug). */
void fo_log_route_lws(void);

#endif
