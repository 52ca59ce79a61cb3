/* http_resp: writing responses on a server connection.
 *
 * Writes try the socket at once (uv_try_write) and queue only what it did
 * not take, so a small cached response costs one syscall and no copy. The
 * head is held back and sent together with the first body bytes. */
#include "http_conn_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "policy_date.h"

#define LOW_WATER (64 * 1024)

typedef struct wreq {
    uv_write_t req;
    http_conn_t *c;
    size_t bytes;
    void (*release)(void *);
    void *arg;
    uv_buf_t bufs[4];
    char owned[];             /* copies of the parts we could not reference */
} wreq_t;

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 200 ? "Informational" : status < 300 ? "OK" : status < 400 ? "Redirect"
                  : status < 500 ? "Client Error" : "Server Error";
    }
}

const char *http_server_date(http_server_t *s)
{
    int64_t now = (int64_t)time(NULL);
    if (now != s->date_sec) {
        s->date_sec = now;
        policy_date_format(now, s->date);
    }
    return s->date;
}

static void on_write(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    http_conn_t *c = w->c;
    c->pending -= w->bytes;
    if (w->release)
        w->release(w->arg);
    free(w);
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_HANDLING)
        conn_timer_arm(c); /* progress: the send timeout starts over */
    if (c->drain_cb && c->pending < LOW_WATER) {
        void (*cb)(void *) = c->drain_cb;
        c->drain_cb = NULL;
        cb(c->drain_arg);
    }
}

/* Send bufs; buffer zc (if >= 0) is referenced until release(arg) instead
 * of copied. Returns 0 or -1 (connection gone; release already called). */
static int conn_send(http_conn_t *c, const uv_buf_t *bufs, unsigned n, int zc,
                     void (*release)(void *), void *arg)
{
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (c->state == CONN_CLOSED) {
        if (release)
            release(arg);
        return -ENOTCONN;
    }
    if (c->pending == 0) {
        int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (w == (int)total) {
            if (release)
                release(arg);
            return 0;
        }
        if (w > 0) {
            done = (size_t)w;
        } else if (w != UV_EAGAIN) {
            if (release)
                release(arg);
            conn_close(c);
            return -ENOTCONN;
        }
    }
    size_t copy = 0, skip = done;
    for (unsigned i = 0; i < n; i++) {
        size_t l = bufs[i].len, s = skip < l ? skip : l;
        skip -= s;
        if (!(release && (int)i == zc))
            copy += l - s;
    }
    wreq_t *w = malloc(sizeof *w + copy);
    if (!w) {
        if (release)
            release(arg);
        conn_close(c);
        return -ENOTCONN;
    }
    w->c = c;
    w->bytes = total - done;
    w->release = release;
    w->arg = arg;
    unsigned nb = 0;
    size_t at = 0;
    skip = done;
    for (unsigned i = 0; i < n; i++) {
        size_t l = bufs[i].len, s = skip < l ? skip : l;
        skip -= s;
        if (l == s)
            continue;
        if (release && (int)i == zc) {
            w->bufs[nb++] = uv_buf_init(bufs[i].base + s, (unsigned)(l - s));
        } else {
            memcpy(w->owned + at, bufs[i].base + s, l - s);
            w->bufs[nb++] = uv_buf_init(w->owned + at, (unsigned)(l - s));
            at += l - s;
        }
    }
    c->pending += w->bytes;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, nb, on_write);
    if (rc) {
        c->pending -= w->bytes;
        if (release)
            release(arg);
        free(w);
        conn_close(c);
        return -ENOTCONN;
    }
    if (c->state == CONN_HANDLING)
        conn_timer_arm(c);
    return 0;
}

void conn_write_raw(http_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    conn_send(c, bufs, n, -1, NULL, NULL);
}

static void log_request(http_conn_t *c, int status, const char *tag)
{
    http_req_t *r = &c->req;
    uint64_t duration_us = r->start_us ? worker_now_us() - r->start_us : 0;
    if (c->srv->opts.on_done)
        c->srv->opts.on_done(c->srv->opts.ud, c, status, tag, duration_us);
    if (!log_access_enabled())
        return;
    http_slice_t host, ua;
    bool has_host = http_fields_get(&r->hdrs, "host", &host), has_ua = http_fields_get(&r->hdrs, "user-agent", &ua);
    log_access_t a = {
        .client = c->client,
        .method = r->method_name ? r->method_name : "-",
        .target = c->target.data ? c->target.data : "",
        .target_len = c->target.len,
        .host = has_host ? host.p : NULL,
        .host_len = has_host ? host.len : 0,
        .user_agent = has_ua ? ua.p : NULL,
        .user_agent_len = has_ua ? ua.len : 0,
        .status = status,
        .bytes = c->resp_bytes,
        .cache = tag ? tag : "-",
        .duration_us = duration_us,
        .upstream = c->log_upstream,
        .upstream_us = c->log_upstream_us,
    };
    a.request_id = http_conn_request_id(c, &a.request_id_len);
    log_access(worker_log_buf(c->srv->worker), &a);
}

void conn_error(http_conn_t *c, int status, const char *body)
{
    if (c->state == CONN_CLOSED || c->state == CONN_LINGER)
        return;
    if (c->state == CONN_HANDLING && (c->head_started || c->resp_bytes)) {
        conn_close(c); /* a response is already on the wire */
        return;
    }
    char text[128];
    if (!body) {
        snprintf(text, sizeof text, "%d %s\n", status, http_reason(status));
        body = text;
    }
    buf_t *h = &c->head;
    buf_reset(h);
    size_t blen = strlen(body);
    buf_printf(h,
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
               "Connection: close\r\nDate: %s\r\n%s\r\n",
               status, http_reason(status), blen, http_server_date(c->srv),
               c->srv->opts.error_headers ? c->srv->opts.error_headers : "");
    uv_buf_t b[2] = { uv_buf_init(h->data, (unsigned)h->len), uv_buf_init((char *)body, (unsigned)blen) };
    c->resp_bytes = blen;
    log_request(c, status, "error");
    conn_send(c, b, 2, -1, NULL, NULL);
    buf_reset(h);
    conn_linger(c);
}

void http_resp_start(http_conn_t *c, int status, const char *reason)
{
    buf_reset(&c->head);
    buf_printf(&c->head, "HTTP/1.1 %d %s\r\n", status, reason ? reason : http_reason(status));
    c->resp_status = status;
    c->head_started = true;
    c->head_pending = false;
    c->resp_chunked = false;
    c->resp_close = false;
}

int http_resp_interim(http_conn_t *c, int status, const char *block, size_t len)
{
    http_req_t *r = &c->req;
    if (status < 100 || status > 199 || status == 101 || c->state != CONN_HANDLING || c->finished ||
        c->head_started || c->resp_bytes || r->http_major != 1 || r->http_minor < 1)
        return -ENOTCONN;
    char line[64];
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
    uv_buf_t b[3] = { uv_buf_init(line, (unsigned)n), uv_buf_init((char *)block, (unsigned)len),
                      uv_buf_init((char *)"\r\n", 2) };
    return conn_send(c, b, 3, -1, NULL, NULL);
}

void http_resp_header(http_conn_t *c, const char *name, const char *value, size_t vlen)
{
    buf_puts(&c->head, name);
    buf_append(&c->head, ": ", 2);
    buf_append(&c->head, value, vlen);
    buf_append(&c->head, "\r\n", 2);
}

void http_resp_header_block(http_conn_t *c, const char *block, size_t len)
{
    buf_append(&c->head, block, len);
}

buf_t *http_resp_head(http_conn_t *c)
{
    return &c->head;
}

void http_resp_end_head(http_conn_t *c, int64_t content_length)
{
    http_req_t *r = &c->req;
    int st = c->resp_status;
    bool bodyless_status = st < 200 || st == 204 || st == 304;
    c->resp_no_body = r->is_head || bodyless_status;
    if (!bodyless_status) {
        if (content_length >= 0) {
            buf_append(&c->head, "Content-Length: ", 16);
            buf_put_u64(&c->head, (unsigned long long)content_length);
            buf_append(&c->head, "\r\n", 2);
        } else if (r->http_minor >= 1) {
            buf_puts(&c->head, "Transfer-Encoding: chunked\r\n");
            c->resp_chunked = !c->resp_no_body;
        } else {
            c->resp_close = true; /* HTTP/1.0: the body ends at close */
        }
    }
    /* Draining (SIGTERM): clients should move to another node. */
    if (!r->keep_alive || c->force_close || c->srv->stopping || worker_draining(c->srv->worker))
        c->resp_close = true;
    if (c->resp_close)
        buf_puts(&c->head, "Connection: close\r\n");
    else if (r->http_minor == 0)
        buf_puts(&c->head, "Connection: keep-alive\r\n");
    buf_append(&c->head, "\r\n", 2);
    c->head_pending = true;
}

int http_resp_write(http_conn_t *c, const void *p, size_t n, void (*release)(void *), void *arg)
{
    if (c->state != CONN_HANDLING || c->finished) {
        if (release)
            release(arg);
        return -ENOTCONN;
    }
    uv_buf_t b[4];
    unsigned nb = 0;
    int zc = -1;
    char sizeline[20];
    if (c->head_pending) {
        b[nb++] = uv_buf_init(c->head.data, (unsigned)c->head.len);
        c->head_pending = false;
    }
    if (!c->resp_no_body && n) {
        c->resp_bytes += n;
        if (c->resp_chunked) {
            int l = snprintf(sizeline, sizeof sizeline, "%zx\r\n", n);
            b[nb++] = uv_buf_init(sizeline, (unsigned)l);
        }
        zc = (int)nb;
        b[nb++] = uv_buf_init((char *)p, (unsigned)n);
        if (c->resp_chunked)
            b[nb++] = uv_buf_init((char *)"\r\n", 2);
    }
    if (nb == 0) {
        if (release)
            release(arg);
        return 0;
    }
    if (zc < 0 && release) {
        release(arg); /* nothing of p is sent (HEAD, 304) */
        release = NULL;
    }
    return conn_send(c, b, nb, zc, release, arg);
}

void http_resp_finish(http_conn_t *c)
{
    if (c->state != CONN_HANDLING || c->finished)
        return;
    uv_buf_t b[2];
    unsigned nb = 0;
    if (c->head_pending) {
        b[nb++] = uv_buf_init(c->head.data, (unsigned)c->head.len);
        c->head_pending = false;
    }
    if (c->resp_chunked)
        b[nb++] = uv_buf_init((char *)"0\r\n\r\n", 5);
    if (nb)
        conn_send(c, b, nb, -1, NULL, NULL);
    c->finished = true;
    c->abort_cb = NULL;
    c->drain_cb = NULL;
    c->head_started = false;
    log_request(c, c->resp_status, c->log_tag);
    if (c->state == CONN_CLOSED)
        return;
    if (c->resp_close)
        conn_linger(c);
    else
        conn_next_request(c);
}

void http_resp_simple(http_conn_t *c, int status, const char *extra_headers, const char *ctype,
                      const char *body, size_t len)
{
    http_resp_start(c, status, NULL);
    if (extra_headers)
        buf_puts(&c->head, extra_headers);
    if (ctype)
        http_resp_header(c, "Content-Type", ctype, strlen(ctype));
    http_resp_header(c, "Date", http_server_date(c->srv), 29);
    http_resp_end_head(c, (int64_t)len);
    if (len)
        http_resp_write(c, body, len, NULL, NULL);
    http_resp_finish(c);
}

void http_resp_abort(http_conn_t *c)
{
    if (c->state == CONN_CLOSED)
        return;
    c->finished = true;
    c->abort_cb = NULL;
    log_request(c, c->resp_status, "aborted");
    conn_close(c);
}

size_t http_conn_pending(const http_conn_t *c) { return c->pending; }
uint64_t http_resp_bytes(const http_conn_t *c) { return c->resp_bytes; }
int http_resp_status(const http_conn_t *c) { return c->resp_status; }
void http_conn_set_close(http_conn_t *c) { c->force_close = true; }

void http_conn_on_drain(http_conn_t *c, void (*cb)(void *), void *arg)
{
    c->drain_cb = cb;
    c->drain_arg = arg;
    if (c->pending < LOW_WATER) {
        c->drain_cb = NULL;
        cb(arg);
    }
}

void http_conn_on_abort(http_conn_t *c, void (*cb)(void *), void *arg)
{
    c->abort_cb = cb;
    c->abort_arg = arg;
}
