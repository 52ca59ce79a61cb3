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
static unsigned access_format = CONFIG_LOG_TEXT;

#define ACCESS_FLUSH_AT (32 * 1024)

int log_open(const config_t *cfg)
{
    level = (int)cfg->log_level;
    access_format = cfg->access_log_format;
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

/* --- access lines ---
 *
 * Hand-written formatting rather than buf_printf or jansson: a line is
 * built on every response, hits included, so it must not allocate or
 * parse a format string. The whole worst case of a line is reserved once
 * (the thread's buffer stops growing after the first lines), then written
 * with plain stores; a line that cannot be reserved is dropped whole, so
 * the log never holds half a line. */

/* Bounds on what a client controls, so a line stays small (bytes, before escaping). */
#define TARGET_MAX 2048
#define FIELD_MAX 256
/* Worst-case expansion of one byte (json \u00XX), and the fixed part of a line. */
#define ESC_MAX 6
#define LINE_FIXED 512

static const char hex[] = "0123456789abcdef";

static size_t capped(size_t n, size_t max)
{
    return n < max ? n : max;
}

static char *put(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

static char *put_str(char *w, const char *s)
{
    return put(w, s, strlen(s));
}

static char *put_u64(char *w, uint64_t v)
{
    char d[20];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *w++ = d[--n];
    return w;
}

/* Microseconds as milliseconds with three decimals: "12.345". */
static char *put_ms(char *w, uint64_t us)
{
    w = put_u64(w, us / 1000);
    *w++ = '.';
    *w++ = (char)('0' + us / 100 % 10);
    *w++ = (char)('0' + us / 10 % 10);
    *w++ = (char)('0' + us % 10);
    return w;
}

/* Text: every byte that is not printable ASCII, and '"' and '\\', as
 * \xHH; a space too when the field is not quoted (or, for the target,
 * shares its quotes with the method). Nothing in a field can then end
 * the field, the quotes or the line. */
static char *put_text(char *w, const char *p, size_t n, bool esc_space)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || (c == ' ' && esc_space)) {
            *w++ = '\\';
            *w++ = 'x';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        } else {
            *w++ = (char)c;
        }
    }
    return w;
}

/* A JSON string. Bytes >= 0x80 are written as \u00XX one by one (the
 * code point of the same value), valid UTF-8 or not: the line stays
 * pure ASCII and valid JSON whatever a client sent, and the raw bytes
 * come back by mapping each code point below 256 to a byte. */
static char *put_json(char *w, const char *p, size_t n)
{
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            *w++ = '\\';
            *w++ = (char)c;
        } else if (c == '\n') {
            w = put(w, "\\n", 2);
        } else if (c == '\r') {
            w = put(w, "\\r", 2);
        } else if (c == '\t') {
            w = put(w, "\\t", 2);
        } else if (c < 0x20 || c >= 0x7f) {
            w = put(w, "\\u00", 4);
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        } else {
            *w++ = (char)c;
        }
    }
    *w++ = '"';
    return w;
}

static char *put_json_or_null(char *w, const char *p, size_t n)
{
    return p ? put_json(w, p, n) : put(w, "null", 4);
}

/* The time of the line, RFC 3339 in UTC with milliseconds. The part up
 * to the seconds is formatted once a second per thread. */
static char *put_time(char *w, int64_t us)
{
    static _Thread_local int64_t sec = -1;
    static _Thread_local char text[32];
    if (us <= 0) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    }
    if (us / 1000000 != sec) {
        sec = us / 1000000;
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        if (!strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm))
            text[0] = '\0';
    }
    w = put_str(w, text);
    *w++ = '.';
    int ms = (int)(us / 1000 % 1000);
    *w++ = (char)('0' + ms / 100);
    *w++ = (char)('0' + ms / 10 % 10);
    *w++ = (char)('0' + ms % 10);
    *w++ = 'Z';
    return w;
}

/* The client-chosen and variable-length parts, capped. */
typedef struct fields {
    size_t client, target, host, ua, upstream, id;
} fields_t;

/* A quoted text field; "-" when absent. */
static char *put_text_quoted(char *w, const char *p, size_t n)
{
    *w++ = '"';
    w = p ? put_text(w, p, n, false) : put(w, "-", 1);
    *w++ = '"';
    return w;
}

static char *format_text(char *w, const log_access_t *r, const fields_t *f)
{
    w = put_time(w, r->time_us);
    *w++ = ' ';
    w = put_text(w, r->client, f->client, true);
    *w++ = ' ';
    *w++ = '"';
    w = put_str(w, r->method);
    *w++ = ' ';
    w = put_text(w, r->target, f->target, true);
    w = put(w, "\" ", 2);
    w = put_u64(w, (uint64_t)(r->status < 0 ? 0 : r->status));
    *w++ = ' ';
    w = put_u64(w, r->bytes);
    *w++ = ' ';
    w = put_str(w, r->cache);
    *w++ = ' ';
    w = put_ms(w, r->duration_us);
    w = put(w, "ms ", 3);
    if (r->upstream) {
        w = put_text(w, r->upstream, f->upstream, true);
        *w++ = ' ';
        w = put_ms(w, r->upstream_us);
        w = put(w, "ms ", 3);
    } else {
        w = put(w, "- - ", 4);
    }
    w = f->id ? put_text(w, r->request_id, f->id, true) : put(w, "-", 1);
    *w++ = ' ';
    w = put_text_quoted(w, r->host, f->host);
    *w++ = ' ';
    w = put_text_quoted(w, r->user_agent, f->ua);
    return w;
}

static char *format_json(char *w, const log_access_t *r, const fields_t *f)
{
    w = put_str(w, "{\"time\":\"");
    w = put_time(w, r->time_us);
    w = put_str(w, "\",\"client\":");
    w = put_json(w, r->client, f->client);
    w = put_str(w, ",\"method\":");
    w = put_json(w, r->method, strlen(r->method));
    w = put_str(w, ",\"target\":");
    w = put_json(w, r->target, f->target);
    w = put_str(w, ",\"host\":");
    w = put_json_or_null(w, r->host, f->host);
    w = put_str(w, ",\"status\":");
    w = put_u64(w, (uint64_t)(r->status < 0 ? 0 : r->status));
    w = put_str(w, ",\"bytes\":");
    w = put_u64(w, r->bytes);
    w = put_str(w, ",\"outcome\":");
    w = put_json(w, r->cache, strlen(r->cache));
    w = put_str(w, ",\"duration_ms\":");
    w = put_ms(w, r->duration_us);
    w = put_str(w, ",\"upstream\":");
    w = put_json_or_null(w, r->upstream, f->upstream);
    w = put_str(w, ",\"upstream_ms\":");
    w = r->upstream ? put_ms(w, r->upstream_us) : put(w, "null", 4);
    w = put_str(w, ",\"request_id\":");
    w = put_json_or_null(w, f->id ? r->request_id : NULL, f->id);
    w = put_str(w, ",\"user_agent\":");
    w = put_json_or_null(w, r->user_agent, f->ua);
    *w++ = '}';
    return w;
}

void log_access_format(buf_t *b, unsigned format, const log_access_t *r)
{
    fields_t f = {
        .client = capped(strlen(r->client), 64),
        .target = capped(r->target_len, TARGET_MAX),
        .host = r->host ? capped(r->host_len, FIELD_MAX) : 0,
        .ua = r->user_agent ? capped(r->user_agent_len, FIELD_MAX) : 0,
        .upstream = r->upstream ? capped(strlen(r->upstream), FIELD_MAX) : 0,
        .id = r->request_id ? capped(r->request_id_len, FIELD_MAX) : 0,
    };
    /* method and cache are the node's own short static strings */
    size_t worst = LINE_FIXED + ESC_MAX * (f.client + f.target + f.host + f.ua + f.upstream + f.id +
                                           strlen(r->method) + strlen(r->cache));
    if (buf_reserve(b, worst))
        return; /* dropped whole: a failing log must not stop serving */
    char *start = b->data + b->len;
    char *w = format == CONFIG_LOG_JSON ? format_json(start, r, &f) : format_text(start, r, &f);
    *w++ = '\n';
    b->len += (size_t)(w - start);
    b->data[b->len] = '\0';
}

void log_access(buf_t *b, const log_access_t *r)
{
    if (access_fd < 0)
        return;
    log_access_format(b, access_format, r);
    if (b->len >= ACCESS_FLUSH_AT)
        log_access_flush(b);
}

void log_set_level(int l)
{
    __atomic_store_n(&level, l, __ATOMIC_RELAXED); /* readers tolerate the old level for a while */
}
