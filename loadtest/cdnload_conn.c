/* cdnload_conn: a keep-alive client connection (see cdnload_conn.h). */
#include "cdnload_conn.h"

#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "synth.h"

/* One TCP connection of c: its own allocation, so a new one can open
 * while libuv still closes the old (a handle cannot be reused before its
 * close callback). A callback for a socket that is no longer c->sock is
 * ignored. */
typedef struct sock {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    bool reading;
    struct cdnload_conn *c;
} sock_t;

struct cdnload_conn {
    uv_loop_t *loop;
    uv_timer_t timer;
    sock_t *sock;              /* the open connection, or NULL */
    struct sockaddr_storage addr, src;
    bool has_src, busy, complete, closing;
    int handles;               /* libuv handles not yet closed; c is freed at 0 once closing */
    uint64_t timeout_ms;
    cdnload_done_fn done;
    void *ud;
    llhttp_t parser;
    buf_t out;                 /* the request being sent */
    char target[2048];
    size_t path_len;           /* target[0, path_len) is the path */
    char field[32];            /* the header being parsed, when it may be Cache-Status */
    size_t field_len;
    bool in_cs;
    char cs[1024];             /* Cache-Status value */
    size_t cs_len;
    int64_t check_len;
    bool keep_alive, keep_bodies;
    buf_t body;                /* kept bodies */
    uint64_t start_us;
    cdnload_result_t res;
    char rbuf[65536];
};

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

static void finish(cdnload_conn_t *c, cdnload_err_t err)
{
    if (!c->busy)
        return;
    c->busy = false;
    c->complete = false;
    uv_timer_stop(&c->timer);
    c->res.err = err;
    c->res.latency_us = now_us() - c->start_us;
    c->res.at = cdnload_cache_status_at(c->cs, c->cs_len);
    c->cs[c->cs_len] = '\0'; /* cs_len < sizeof cs: appends stop short of it */
    if (c->body.len && buf_reserve(&c->body, 1) == 0)
        c->body.data[c->body.len] = '\0';
    else if (c->body.len)
        c->body.len = 0; /* no room for the NUL: keep nothing rather than an unterminated string */
    if (err == CDNLOAD_OK && c->check_len >= 0 && c->res.status == 200 && !c->res.mismatch &&
        c->res.bytes != (uint64_t)c->check_len) {
        c->res.mismatch = true; /* short or long */
        c->res.mismatch_at = c->res.bytes;
    }
    if (!c->closing && c->done)
        c->done(c->ud, c, &c->res);
}

static void handle_gone(cdnload_conn_t *c)
{
    if (--c->handles == 0 && c->closing) {
        buf_free(&c->out);
        buf_free(&c->body);
        free(c);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_t *s = h->data;
    cdnload_conn_t *c = s->c;
    free(s);
    handle_gone(c);
}

/* The server closed (or broke) the connection: the next request reopens. */
static void drop_socket(cdnload_conn_t *c)
{
    sock_t *s = c->sock;
    if (!s)
        return;
    c->sock = NULL;
    uv_close((uv_handle_t *)&s->tcp, on_sock_closed);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    cdnload_conn_t *c = p->data;
    if (c->field_len + n < sizeof c->field) {
        memcpy(c->field + c->field_len, at, n);
        c->field_len += n;
    } else {
        c->field_len = sizeof c->field; /* too long to be Cache-Status */
    }
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    cdnload_conn_t *c = p->data;
    if (c->field_len) {
        c->in_cs = c->field_len == 12 && strncasecmp(c->field, "cache-status", 12) == 0;
        if (c->in_cs && c->cs_len && c->cs_len + 2 < sizeof c->cs) {
            memcpy(c->cs + c->cs_len, ", ", 2); /* a second field line continues the list */
            c->cs_len += 2;
        }
        c->field_len = 0;
    }
    if (c->in_cs && c->cs_len + n < sizeof c->cs) {
        memcpy(c->cs + c->cs_len, at, n);
        c->cs_len += n;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    cdnload_conn_t *c = p->data;
    c->res.status = p->status_code;
    c->keep_alive = llhttp_should_keep_alive(p);
    c->field_len = 0;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    cdnload_conn_t *c = p->data;
    if (c->keep_bodies && c->body.len + n <= (1u << 20))
        buf_append(&c->body, at, n);
    if (c->check_len == CDNLOAD_HASH_BODY)
        c->res.body_hash = synth_fnv1a(c->res.body_hash, at, n);
    if (c->check_len >= 0 && c->res.status == 200 && !c->res.mismatch) {
        size_t d = synth_compare(c->target, c->path_len, c->res.bytes, at, n);
        if (d != n) {
            c->res.mismatch = true;
            c->res.mismatch_at = c->res.bytes + d;
        }
    }
    c->res.bytes += n;
    return 0;
}

/* Only marked here: the caller of llhttp_execute finishes the request
 * once the parser has returned (the done callback may start the next
 * request, which re-initialises this parser). */
static int on_message_complete(llhttp_t *p)
{
    cdnload_conn_t *c = p->data;
    c->complete = true;
    return HPE_PAUSED;
}

static void complete(cdnload_conn_t *c)
{
    if (!c->keep_alive)
        drop_socket(c);
    finish(c, CDNLOAD_OK);
}

/* The same callbacks for every connection (llhttp keeps a pointer). */
static const llhttp_settings_t parser_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    cdnload_conn_t *c = ((sock_t *)h->data)->c;
    (void)hint;
    *b = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    sock_t *s = st->data;
    cdnload_conn_t *c = s->c;
    if (n == 0 || c->sock != s)
        return;
    if (n < 0) {
        /* EOF ends a close-delimited body; otherwise the response broke. */
        if (n == UV_EOF && c->busy)
            llhttp_finish(&c->parser);
        drop_socket(c);
        if (c->complete)
            complete(c);
        else
            finish(c, CDNLOAD_ERR_RESET);
        return;
    }
    if (!c->busy) {
        drop_socket(c); /* bytes nobody asked for */
        return;
    }
    llhttp_errno_t e = llhttp_execute(&c->parser, b->base, (size_t)n);
    if (c->complete) {
        complete(c); /* bytes after the response (none are asked for) are dropped with it */
        return;
    }
    if (e != HPE_OK) {
        drop_socket(c);
        finish(c, CDNLOAD_ERR_PARSE);
    }
}

static void on_written(uv_write_t *w, int status)
{
    sock_t *s = w->data;
    cdnload_conn_t *c = s->c;
    if (status && c->sock == s && c->busy) {
        drop_socket(c);
        finish(c, CDNLOAD_ERR_RESET);
    }
}

static void start_request(cdnload_conn_t *c)
{
    sock_t *s = c->sock;
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    s->write.data = s;
    bool was_reading = s->reading;
    s->reading = true;
    if ((!was_reading && uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read)) ||
        uv_write(&s->write, (uv_stream_t *)&s->tcp, &b, 1, on_written)) {
        drop_socket(c);
        finish(c, CDNLOAD_ERR_RESET);
    }
}

static void on_connect(uv_connect_t *r, int status)
{
    sock_t *s = r->data;
    cdnload_conn_t *c = s->c;
    if (c->sock != s)
        return; /* dropped meanwhile (a timeout, a close) */
    if (status) {
        drop_socket(c);
        finish(c, CDNLOAD_ERR_CONNECT);
        return;
    }
    start_request(c);
}

static void on_timeout(uv_timer_t *t)
{
    cdnload_conn_t *c = t->data;
    drop_socket(c);
    finish(c, CDNLOAD_ERR_TIMEOUT);
}

cdnload_conn_t *cdnload_conn_new(uv_loop_t *loop, const struct sockaddr *addr, const struct sockaddr *src,
                                 uint64_t timeout_ms, cdnload_done_fn done, void *ud)
{
    cdnload_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    memcpy(&c->addr, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    if (src) {
        memcpy(&c->src, src, src->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
        c->has_src = true;
    }
    c->timeout_ms = timeout_ms;
    c->done = done;
    c->ud = ud;
    buf_init(&c->out, 0);
    buf_init(&c->body, 0);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles = 1; /* the timer */
    return c;
}

int cdnload_conn_send(cdnload_conn_t *c, const char *method, const char *target, const char *host,
                      const char *extra, const char *body, size_t body_len, int64_t check_len)
{
    if (c->busy || c->closing)
        return -EBUSY;
    snprintf(c->target, sizeof c->target, "%s", target);
    const char *q = strchr(c->target, '?');
    c->path_len = q ? (size_t)(q - c->target) : strlen(c->target);
    buf_reset(&c->out);
    buf_printf(&c->out, "%s %s HTTP/1.1\r\nHost: %s\r\n%s", method, target, host, extra ? extra : "");
    if (body)
        buf_printf(&c->out, "Content-Length: %zu\r\n", body_len);
    buf_puts(&c->out, "\r\n");
    if (body)
        buf_append(&c->out, body, body_len);
    memset(&c->res, 0, sizeof c->res);
    c->res.body_hash = SYNTH_FNV_INIT;
    buf_reset(&c->body);
    c->cs_len = 0;
    c->field_len = 0;
    c->in_cs = false;
    c->complete = false;
    c->check_len = strcmp(method, "HEAD") == 0 ? CDNLOAD_NO_CHECK : check_len;
    c->busy = true;
    c->start_us = now_us();
    llhttp_init(&c->parser, HTTP_RESPONSE, &parser_settings);
    c->parser.data = c;
    uv_timer_start(&c->timer, on_timeout, c->timeout_ms, 0);
    if (c->sock) {
        start_request(c);
        return 0;
    }
    sock_t *s = calloc(1, sizeof *s);
    if (!s) {
        finish(c, CDNLOAD_ERR_CONNECT);
        return 0;
    }
    s->c = c;
    uv_tcp_init(c->loop, &s->tcp);
    s->tcp.data = s;
    c->handles++;
    c->sock = s;
    uv_tcp_nodelay(&s->tcp, 1);
    s->connect.data = s;
    if ((c->has_src && uv_tcp_bind(&s->tcp, (struct sockaddr *)&c->src, 0)) ||
        uv_tcp_connect(&s->connect, &s->tcp, (struct sockaddr *)&c->addr, on_connect)) {
        drop_socket(c);
        finish(c, CDNLOAD_ERR_CONNECT);
    }
    return 0;
}

static size_t addr_len(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

void cdnload_conn_retarget(cdnload_conn_t *c, const struct sockaddr *addr)
{
    if (memcmp(&c->addr, addr, addr_len(addr)) == 0)
        return;
    drop_socket(c);
    memset(&c->addr, 0, sizeof c->addr);
    memcpy(&c->addr, addr, addr_len(addr));
}

void cdnload_conn_close(cdnload_conn_t *c)
{
    if (!c)
        return;
    c->closing = true;
    c->busy = false;
    uv_timer_stop(&c->timer);
    drop_socket(c);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

const char *cdnload_conn_target(const cdnload_conn_t *c)
{
    return c->target;
}

const char *cdnload_conn_cache_status(const cdnload_conn_t *c)
{
    return c->cs;
}

void cdnload_conn_keep_bodies(cdnload_conn_t *c)
{
    c->keep_bodies = true;
}

const char *cdnload_conn_body(const cdnload_conn_t *c, size_t *len)
{
    *len = c->body.len;
    return c->body.len ? c->body.data : "";
}
