/* log: the error log (stderr) and the access log (one line per request).
 *
 * Access lines are appended to a per-thread buffer and written with one
 * write(2) when it fills or on a timer, so logging costs no syscall per
 * request on the hit path. Lines are never split across writes. */
#ifndef CDN_LOG_H
#define CDN_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

/* Open the access log named by cfg->access_log ("stderr", "off" or a path)
 * and set the error-log level. Returns 0 or the negative errno of open(2)
 * (message on stderr). */
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

/* One access-log record; strings are borrowed for the call only. */
typedef struct log_access {
    const char *client;
    const char *method;
    const char *target;
    size_t target_len;
    int status;
    uint64_t bytes;        /* body bytes sent */
    const char *cache;     /* "hit", "miss", "pass", ... */
    uint64_t duration_us;
} log_access_t;

/* True when an access log is configured (callers may skip building records). */
bool log_access_enabled(void);
/* Append one line to the thread's buffer b; flushes when b passes 32 KiB. */
void log_access(buf_t *b, const log_access_t *r);
/* Write out whatever b holds. */
void log_access_flush(buf_t *b);

#endif
