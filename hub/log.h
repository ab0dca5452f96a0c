/* log.h - one line per event on stderr: `2026-11-26T12:00:00.123Z INFO sid=12 message`, or
 * with --log-format json one JSON object per line:
 *   {"time":"2026-11-26T12:00:00.123Z","level":"info","message":"message","sid":"12"}
 * Fields are the message's leading `key=value` words (key: [a-z_]+, value without spaces),
 * taken out of the message, their values as strings; escaping is jansson's (bytes that are
 * not UTF-8 become '?'). FO_LOG checks the level before it evaluates its arguments. lws's own
 * log lines go to the same sink (fo_log_route_lws). */
#ifndef FO_LOG_H
#define FO_LOG_H

#include <stddef.h>

typedef enum fo_log_level {
    FO_LOG_ERROR = 0,
    FO_LOG_WARN,
    FO_LOG_INFO,
    FO_LOG_DEBUG,
} fo_log_level;

typedef enum fo_log_format {
    FO_LOG_FORMAT_TEXT = 0,
    FO_LOG_FORMAT_JSON,
} fo_log_format;

/* The process's log threshold and format: the mutable globals of the hub, set once from
 * --log-level and --log-format before the loop starts (like Redis's verbosity). */
extern fo_log_level fo_log_threshold;
extern fo_log_format fo_log_output;

#define FO_LOG(level, ...)                                                                   \
    do {                                                                                     \
        if ((level) <= fo_log_threshold)                                                     \
            fo_log_write((level), __VA_ARGS__);                                              \
    } while (0)

void fo_log_write(fo_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The line fo_log_write writes for `message` in `format` (newline included) into buf; returns
 * its length. `time` is the ISO 8601 timestamp. For tests. */
size_t fo_log_format_line(char *buf, size_t len, fo_log_format format, fo_log_level level,
                          const char *time, const char *message);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int fo_log_parse_level(const char *s);
/* Sends libwebsockets' log output through fo_log_write (errors and warnings only, or
 * more at debug). */
void fo_log_route_lws(void);

#endif
