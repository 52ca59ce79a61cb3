/* log: the error log (stderr) and the access log (one line per request).
 *
 * Access lines are appended to a per-thread buffer and written with one
 * write(2) when it fills or on a timer, so logging costs no syscall per
 * request on the hit path. Lines are never split across writes.
 *
 * Two formats (access_log_format): text, one space-separated line with
 * the fields in a fixed order, and json, one object per line. Either way
 * every byte a client chose is escaped, so no request can forge or break
 * a line; the field list and an example of each are in the README. */
#ifndef CDN_LOG_H
#define CDN_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

/* Open the access log named by cfg->access_log ("stderr", "off" or a path),
 * take its format (access_log_format) and set the error-log level.
 * Returns 0 or the negative errno of open(2) (message on stderr). */
int log_open(const config_t *cfg);
/* Set the error-log level (LOG_ERROR..LOG_DEBUG): a reload's log_level. */
void log_set_level(int l);
/* Flush nothing (buffers are per thread), close the access log file. */
void log_close(void);
/* Error log line at level (LOG_ERROR..LOG_DEBUG), prefixed with time and level. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
/* True when messages at level would be printed. */
bool log_enabled(int level);

/* One access-log record; strings are borrowed for the call only. Bytes
 * from the client (target, host, user agent) may be anything: the
 * formatter escapes them. */
typedef struct log_access {
    const char *client;
    const char *method;
    const char *target;
    size_t target_len;
    const char *host;          /* Host field, or NULL */
    size_t host_len;
    const char *user_agent;    /* User-Agent field, or NULL */
    size_t user_agent_len;
    int status;
    uint64_t bytes;            /* body bytes sent */
    const char *cache;         /* outcome tag: "hit", "miss", "pass", ... */
    uint64_t duration_us;      /* from the request's first byte to its end */
    const char *upstream;      /* upstream target that answered (a pool name), or NULL */
    uint64_t upstream_us;      /* its time; ignored when upstream is NULL */
    const char *request_id;    /* request_id.h: sane, so never escaped in practice */
    size_t request_id_len;
    int64_t time_us;           /* wall clock of the line, microseconds since the epoch (0: now) */
} log_access_t;

/* Append r's line, in format CONFIG_LOG_TEXT or CONFIG_LOG_JSON, to b
 * (the formatter behind log_access; for tests). */
void log_access_format(buf_t *b, unsigned format, const log_access_t *r);
/* True when an access log is configured (callers may skip building records). */
bool log_access_enabled(void);
/* Append one line to the thread's buffer b; flushes when b passes 32 KiB. */
void log_access(buf_t *b, const log_access_t *r);
/* Write out whatever b holds. */
void log_access_flush(buf_t *b);

#endif
