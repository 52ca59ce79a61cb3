/* log: error log and buffered access log (see include/log.h). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int access_fd = -1;      /* -1: access log off */
static bool access_owned;       /* we opened it (close at exit) */
static int level = LOG_INFO;

#define ACCESS_FLUSH_AT (32 * 1024)

int log_open(const config_t *cfg)
{
    level = (int)cfg->log_level;
    if (strcmp(cfg->access_log, "off") == 0) {
        access_fd = -1;
    } else if (strcmp(cfg->access_log, "stderr") == 0) {
        access_fd = STDERR_FILENO;
    } else if (strcmp(cfg->access_log, "stdout") == 0) {
        access_fd = STDOUT_FILENO;
    } else {
        access_fd = open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (access_fd < 0) {
            int e = errno;
            fprintf(stderr, "access_log: cannot open %s: %s\n", cfg->access_log, strerror(e));
            return -e;
        }
        access_owned = true;
    }
    return 0;
}

void log_close(void)
{
    if (access_owned && access_fd >= 0)
        close(access_fd);
    access_fd = -1;
    access_owned = false;
}

bool log_enabled(int l)
{
    return l <= level;
}

static void iso_time(char *out, size_t n)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t l = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + l, n - l, ".%03dZ", (int)(tv.tv_usec / 1000));
}

void log_msg(int l, const char *fmt, ...)
{
    static const char *names[] = { "error", "warn", "info", "debug" };
    if (l > level)
        return;
    char line[2048], ts[40];
    iso_time(ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s %s: ", ts, names[l]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write per line: lines from several threads never interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

bool log_access_enabled(void)
{
    return access_fd >= 0;
}

void log_access_flush(buf_t *b)
{
    size_t off = 0;
    while (access_fd >= 0 && off < b->len) {
        ssize_t w = write(access_fd, b->data + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* a failing log must not stop serving */
        off += (size_t)w;
    }
    buf_reset(b);
}

/* Escape the request target: a client must not be able to forge log lines. */
static void put_target(buf_t *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (n > 2048)
        n = 2048;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
            buf_append(b, e, 4);
        } else {
            buf_append(b, &p[i], 1);
        }
    }
}

void log_access(buf_t *b, const log_access_t *r)
{
    if (access_fd < 0)
        return;
    char ts[40];
    iso_time(ts, sizeof ts);
    buf_printf(b, "%s %s \"%s ", ts, r->client, r->method);
    put_target(b, r->target, r->target_len);
    buf_printf(b, "\" %d %llu %s %llu.%03llums\n", r->status, (unsigned long long)r->bytes, r->cache,
               (unsigned long long)(r->duration_us / 1000), (unsigned long long)(r->duration_us % 1000));
    if (b->len >= ACCESS_FLUSH_AT)
        log_access_flush(b);
}

void log_set_level(int l)
{
    __atomic_store_n(&level, l, __ATOMIC_RELAXED); /* readers tolerate the old level for a while */
}
