/* http_conn: server connections: reading, parsing with llhttp, limits,
 * timeouts and the connection state machine. Response writing is in
 * http_resp.c; both share http_conn_internal.h.
 *
 * States:  IDLE --first byte--> READING --complete--> HANDLING
 *          HANDLING --finish, keep-alive--> IDLE (pipelined bytes parsed next)
 *          any --error/close--> LINGER (drain, then close) or CLOSED */
#include "http_conn_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "request_id.h"

#define READ_BUF_SIZE (64 * 1024)
#define LINGER_MS 2000

static const llhttp_settings_t *parser_settings(void);
static void conn_init_parsing(http_conn_t *c);
static void conn_free_parsing(http_conn_t *c);
static void conn_read_start(http_conn_t *c);
static void on_close(uv_handle_t *h);

void conn_set_state(http_conn_t *c, conn_state_t to)
{
    conn_state_t from = c->state;
    /* Legal transitions only; anything else is a bug in this file. */
    assert((from == CONN_IDLE && (to == CONN_READING || to == CONN_HANDLING)) ||
           (from == CONN_READING && to == CONN_HANDLING) ||
           (from == CONN_HANDLING && to == CONN_IDLE) ||
           (from != CONN_CLOSED && (to == CONN_LINGER || to == CONN_CLOSED)));
    (void)from;
    c->state = to;
}

/* Milliseconds between checks of a request's receive rate. */
#define RATE_CHECK_MS 1000
/* The rate is not judged in a request's first moments (a slow start). */
#define RATE_GRACE_MS 2000

static uint64_t now_ms(void)
{
    return worker_now_us() / 1000;
}

/* While a request is read: past header_timeout, or slower on average than
 * min_recv_rate (a slowloris trickling bytes to keep the connection)? */
static bool reading_too_slow(const http_conn_t *c, uint64_t now)
{
    const http_server_opts_t *o = &c->srv->opts;
    uint64_t elapsed = now - c->read_start_ms;
    if (elapsed >= o->header_timeout_ms)
        return true;
    return o->min_recv_rate && elapsed >= RATE_GRACE_MS && c->read_bytes * 1000 < (uint64_t)o->min_recv_rate * elapsed;
}

static void on_timer(uv_timer_t *t)
{
    http_conn_t *c = t->data;
    switch (c->state) {
    case CONN_READING:
        if (!reading_too_slow(c, now_ms())) {
            conn_timer_arm(c);
            break;
        }
        /* Headers or body too slow: 408, then close. */
        log_debug("%s: request not received in time (%llu bytes in %llu ms)", c->client,
                  (unsigned long long)c->read_bytes, (unsigned long long)(now_ms() - c->read_start_ms));
        conn_error(c, 408, "request not received in time\n");
        break;
    case CONN_HANDLING:
        log_debug("%s: client stopped reading; closing", c->client);
        conn_close(c);
        break;
    default:
        conn_close(c);
        break;
    }
}

void conn_timer_arm(http_conn_t *c)
{
    if (c->no_io)
        return; /* http_parse_requests: no loop, no timer */
    const http_server_opts_t *o = &c->srv->opts;
    uint64_t ms = 0;
    switch (c->state) {
    case CONN_IDLE:
        /* A connection that never sent a request gets the header timeout:
         * idle keep-alive time is for clients that did. */
        ms = c->requests ? o->idle_timeout_ms : o->header_timeout_ms;
        break;
    case CONN_READING: {
        uint64_t elapsed = now_ms() - c->read_start_ms;
        ms = elapsed < o->header_timeout_ms ? o->header_timeout_ms - elapsed : 1;
        if (o->min_recv_rate && ms > RATE_CHECK_MS)
            ms = RATE_CHECK_MS;
        break;
    }
    case CONN_HANDLING: ms = c->pending ? o->send_timeout_ms : 0; break;
    case CONN_LINGER: ms = LINGER_MS; break;
    case CONN_CLOSED: ms = 0; break;
    }
    if (ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

static void req_reset(http_conn_t *c)
{
    http_req_t *r = &c->req;
    buf_reset(&c->target);
    http_fields_reset(&r->hdrs);
    buf_reset(&r->body);
    if (r->body.cap > 64 * 1024)
        buf_free(&r->body); /* don't keep a big body's memory on an idle connection */
    r->target = NULL;
    r->method_name = NULL; /* an error before the request line ends logs "-", not the last method */
    r->target_len = r->path_len = 0;
    r->keep_alive = false;
    r->is_head = false;
    c->head_bytes = 0;
    c->last_cb = 0;
    c->err_status = 0;
    c->fold_tail = false;
    c->in_trailers = false;
    c->log_tag = NULL;
    c->log_upstream = NULL;
    c->log_upstream_us = 0;
    c->req_id_len = 0;
}

/* --- llhttp callbacks: copy into the request, enforce the bounds --- */

static int count_head(http_conn_t *c, size_t n)
{
    c->head_bytes += n;
    if (c->head_bytes > c->srv->opts.max_header_size) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    http_conn_t *c = p->data;
    req_reset(c);
    c->req.start_us = worker_now_us();
    unsigned max = c->srv->opts.max_requests_per_connection;
    if (++c->requests >= max && max)
        c->force_close = true; /* the last one on this connection */
    if (c->state == CONN_IDLE) {
        c->read_start_ms = now_ms();
        c->read_bytes = 0;
        conn_set_state(c, CONN_READING);
        conn_timer_arm(c);
    }
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    if (c->target.len + n > c->srv->opts.max_uri_size) {
        c->err_status = 414;
        return -1;
    }
    if (count_head(c, n) || buf_append(&c->target, at, n)) {
        c->err_status = c->err_status ? c->err_status : 431;
        return -1;
    }
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    int rc;
    if (count_head(c, n + (c->last_cb != 1 ? 4 : 0)))
        return -1;
    if (c->in_trailers)
        return 0; /* counted against the bound, never merged into the headers */
    if (c->last_cb != 1)
        rc = http_fields_add(&c->req.hdrs, at, n, "", 0);
    else
        rc = http_fields_extend_name(&c->req.hdrs, at, n);
    c->last_cb = 1;
    if (rc) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

/* llhttp 8.1 accepts obs-fold (a line starting with SP/HTAB continuing
 * the previous field) and passes the continuation on as more value bytes.
 * Intermediaries disagree on folded fields, which makes them a smuggling
 * vector, so we reject them (RFC 9112 5.2 allows 400). A value piece
 * follows a fold when the byte before it, skipping SP/HTAB, is LF; at the
 * start of the parsed bytes, fold_tail says how the previous ones ended. */
static bool follows_fold(const http_conn_t *c, const char *at)
{
    const char *q = at;
    while (q > c->exec_start && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    return q > c->exec_start ? q[-1] == '\n' : c->fold_tail;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    if (follows_fold(c, at)) {
        c->err_status = 400;
        return -1;
    }
    if (count_head(c, n))
        return -1;
    if (c->in_trailers)
        return 0;
    c->last_cb = 2;
    if (http_fields_extend_value(&c->req.hdrs, at, n)) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    http_conn_t *c = p->data;
    http_fields_t *h = &c->req.hdrs;
    if (!h->n || c->in_trailers)
        return 0;
    http_field_t *f = &h->f[h->n - 1];
    /* llhttp 8.1 takes a line starting with ':' as a field with an empty
     * name. A field name is a token (RFC 9110 5.1): such a line is a bad
     * request, and forwarding it would send ": value" upstream. */
    if (f->name_len == 0) {
        c->err_status = 400;
        return -1;
    }
    /* Trailing whitespace is not part of a field value (RFC 9110 5.5). */
    while (f->value_len && (h->mem.data[f->value_off + f->value_len - 1] == ' ' ||
                            h->mem.data[f->value_off + f->value_len - 1] == '\t'))
        f->value_len--;
    c->last_cb = 2;
    return 0;
}

/* Request-level checks llhttp leaves to us (RFC 9112 section 3.2, 6.3). */
static int check_headers(http_conn_t *c)
{
    http_req_t *r = &c->req;
    size_t hosts = http_fields_count(&r->hdrs, "host");
    if (hosts > 1 || (hosts == 0 && r->http_major == 1 && r->http_minor >= 1))
        return 400;
    /* RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing
     * (a 1.0 hop would read the body differently): refuse it. */
    if (r->http_major == 1 && r->http_minor == 0 && http_fields_get(&r->hdrs, "transfer-encoding", NULL))
        return 400;
    if (r->method == HTTP_CONNECT)
        return 405;
    http_slice_t v;
    if (http_fields_get(&r->hdrs, "expect", &v)) {
        if (!(v.len == 12 && strncasecmp(v.p, "100-continue", 12) == 0))
            return 417;
    }
    uint64_t cl = c->parser.content_length;
    if ((c->parser.flags & F_CONTENT_LENGTH) && cl > c->srv->opts.max_body_size)
        return 413;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    http_conn_t *c = p->data;
    http_req_t *r = &c->req;
    /* Fields after the body (chunked trailers) are not header fields: a
     * proxy must not merge them into the request it forwards (RFC 9110 6.5.1). */
    c->in_trailers = true;
    r->method = llhttp_get_method(p);
    r->method_name = llhttp_method_name((llhttp_method_t)r->method);
    r->http_major = llhttp_get_http_major(p);
    r->http_minor = llhttp_get_http_minor(p);
    r->is_head = r->method == HTTP_HEAD;
    r->target = c->target.data ? c->target.data : (char *)"";
    r->target_len = c->target.len;
    const char *q = memchr(r->target, '?', r->target_len);
    r->path_len = q ? (size_t)(q - r->target) : r->target_len;
    if (r->target_len == 0) {
        c->err_status = 400;
        return -1;
    }
    int st = check_headers(c);
    if (st) {
        c->err_status = st;
        return -1;
    }
    bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    if (has_body && http_fields_get(&r->hdrs, "expect", NULL) && r->http_minor >= 1 && !c->no_io) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
        conn_write_raw(c, &b, 1);
    }
    /* Upgrades are not supported: serve the request as a plain one. */
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    if (c->req.body.len + n > c->srv->opts.max_body_size || buf_append(&c->req.body, at, n)) {
        c->err_status = 413;
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    http_conn_t *c = p->data;
    c->req.keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED;
}

static const llhttp_settings_t *parser_settings(void)
{
    static llhttp_settings_t s;
    static int init;
    if (!init) {
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_header_field = on_header_field;
        s.on_header_value = on_header_value;
        s.on_header_value_complete = on_header_value_complete;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        init = 1;
    }
    return &s;
}

/* --- dispatch and the input loop --- */

static void dispatch(http_conn_t *c)
{
    conn_set_state(c, CONN_HANDLING);
    conn_timer_arm(c);
    c->resp_status = 0;
    c->resp_bytes = 0;
    c->finished = false;
    c->req.client = c->client;
    c->srv->opts.on_request(c, &c->req, c->srv->opts.ud);
}

/* Remember whether data ends in LF + SP/HTAB*, for a value piece that
 * starts the next read (see follows_fold). */
static void note_fold_tail(http_conn_t *c, const char *data, size_t len)
{
    const char *q = data + len;
    while (q > data && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    if (q > data)
        c->fold_tail = q[-1] == '\n';
}

/* Run the parser over data[0, len), the next bytes of the connection.
 * Returns 0 when all of them were taken (a request may be under way),
 * PARSE_COMPLETE when a request is complete after the first *used bytes
 * (the parser is resumed: the rest starts the next request), or the
 * status to answer a bad request with. */
#define PARSE_COMPLETE 1
static int conn_parse(http_conn_t *c, const char *data, size_t len, size_t *used)
{
    c->exec_start = data;
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (e == HPE_OK) {
        note_fold_tail(c, data, len);
        return 0;
    }
    if (e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE)
        return c->err_status ? c->err_status : 400;
    *used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
    if (e == HPE_PAUSED_UPGRADE)
        llhttp_resume_after_upgrade(&c->parser);
    else
        llhttp_resume(&c->parser);
    return PARSE_COMPLETE;
}

/* Parse what we have, dispatching complete requests; loops (rather than
 * recursing) while responses finish synchronously, so a client that
 * pipelines thousands of requests cannot grow the stack. */
void conn_process(http_conn_t *c, const char *data, size_t len, bool from_saved)
{
    while (c->state == CONN_IDLE || c->state == CONN_READING) {
        if (len == 0)
            break;
        size_t used = 0;
        int st = conn_parse(c, data, len, &used);
        if (st == 0) {
            if (from_saved)
                buf_reset(&c->saved);
            return;
        }
        if (st != PARSE_COMPLETE) {
            if (st == 400)
                log_debug("%s: bad request: %s", c->client, llhttp_get_error_reason(&c->parser));
            conn_error(c, st, NULL);
            return;
        }
        /* Keep the unparsed rest: it is the next pipelined request. */
        if (from_saved) {
            buf_consume(&c->saved, used);
        } else if (used < len) {
            buf_reset(&c->saved);
            buf_append(&c->saved, data + used, len - used);
        }
        from_saved = true;
        c->in_dispatch = true;
        dispatch(c);
        c->in_dispatch = false;
        if (c->state != CONN_IDLE)
            break; /* response in progress (or connection closing) */
        data = c->saved.data;
        len = c->saved.len;
    }
    if (c->state == CONN_HANDLING && c->reading) {
        /* Async response: stop reading so a pipelining client can't make us buffer. */
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    } else if (c->state == CONN_IDLE || c->state == CONN_READING) {
        conn_read_start(c);
    }
}

/* Called by http_resp_finish once a response is complete. */
void conn_next_request(http_conn_t *c)
{
    conn_set_state(c, CONN_IDLE);
    conn_timer_arm(c);
    if (c->in_dispatch)
        return; /* conn_process's loop continues with the saved bytes */
    conn_process(c, c->saved.data, c->saved.len, true);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    http_conn_t *c = h->data;
    (void)suggested;
    /* One read buffer per worker: bytes are parsed (copied out) at once. */
    b->base = c->srv->readbuf;
    b->len = READ_BUF_SIZE;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    http_conn_t *c = s->data;
    if (n == 0)
        return;
    if (c->state == CONN_LINGER) {
        if (n < 0)
            conn_close(c);
        return; /* discard */
    }
    if (n < 0) {
        if (n != UV_EOF)
            log_debug("%s: read: %s", c->client, uv_strerror((int)n));
        if (c->state == CONN_HANDLING) {
            /* The client half-closed after its request: answer, then close. */
            c->force_close = true;
            uv_read_stop(s);
            c->reading = false;
        } else {
            conn_close(c);
        }
        return;
    }
    if (c->state == CONN_HANDLING) {
        /* Bytes arriving while a response is in progress: keep them for later. */
        if (buf_append(&c->saved, b->base, (size_t)n)) {
            conn_close(c);
            return;
        }
        if (c->saved.len > READ_BUF_SIZE) {
            uv_read_stop(s);
            c->reading = false;
        }
        return;
    }
    if (c->saved.len) {
        /* Still holding a partial pipelined request: append and parse together. */
        if (buf_append(&c->saved, b->base, (size_t)n)) {
            conn_close(c);
            return;
        }
        conn_process(c, c->saved.data, c->saved.len, true);
    } else {
        conn_process(c, b->base, (size_t)n, false);
    }
    if (c->state == CONN_READING)
        c->read_bytes += (uint64_t)n; /* for min_recv_rate (c is freed only by a later callback) */
}

static void conn_read_start(http_conn_t *c)
{
    if (!c->reading && c->state != CONN_CLOSED) {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        c->reading = true;
    }
}

/* --- closing --- */

static void on_timer_closed(uv_handle_t *h)
{
    http_conn_t *c = h->data;
    http_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    worker_conn_add(s->worker, -1);
    if (c->counted_total)
        atomic_fetch_sub(s->opts.conns_total, 1);
    if (c->accept_counted)
        s->opts.on_conn_close(s->opts.ud, c->accept_tag);
    conn_free_parsing(c);
    free(c);
}

static void on_close(uv_handle_t *h)
{
    http_conn_t *c = h->data;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void conn_close(http_conn_t *c)
{
    if (c->state == CONN_CLOSED)
        return;
    void (*abort_cb)(void *) = c->abort_cb;
    c->abort_cb = NULL;
    c->drain_cb = NULL;
    bool was_handling = c->state == CONN_HANDLING && !c->finished;
    conn_set_state(c, CONN_CLOSED);
    uv_timer_stop(&c->timer);
    if (was_handling && abort_cb)
        abort_cb(c->abort_arg);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    http_conn_t *c = req->data;
    free(req);
    if (status < 0 || c->state != CONN_LINGER) {
        conn_close(c);
        return;
    }
    /* Read and drop whatever the client still sends, so our response isn't
     * destroyed by a reset, until it closes or the linger timer fires. */
    conn_read_start(c);
}

void conn_linger(http_conn_t *c)
{
    if (c->state == CONN_CLOSED || c->state == CONN_LINGER)
        return;
    void (*abort_cb)(void *) = c->abort_cb;
    bool was_handling = c->state == CONN_HANDLING && !c->finished;
    c->abort_cb = NULL;
    c->drain_cb = NULL;
    conn_set_state(c, CONN_LINGER);
    conn_timer_arm(c);
    if (was_handling && abort_cb)
        abort_cb(c->abort_arg);
    uv_shutdown_t *req = malloc(sizeof *req);
    req->data = c;
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
        free(req);
        conn_close(c);
    }
}

/* --- server --- */

void http_server_opts_from_config(http_server_opts_t *o, const config_t *cfg)
{
    *o = (http_server_opts_t){
        .max_header_size = cfg->max_header_size,
        .max_uri_size = cfg->max_uri_size,
        .max_body_size = cfg->max_body_size,
        .header_timeout_ms = cfg->header_timeout_ms,
        .idle_timeout_ms = cfg->idle_timeout_ms,
        .send_timeout_ms = cfg->send_timeout_ms,
        .max_connections = cfg->max_connections,
        .max_connections_total = cfg->max_connections_total,
        .max_requests_per_connection = cfg->max_requests_per_connection,
        .min_recv_rate = cfg->min_recv_rate,
    };
}

http_server_t *http_server_new(worker_t *w, const http_server_opts_t *opts)
{
    http_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->worker = w;
    s->opts = *opts;
    s->readbuf = malloc(READ_BUF_SIZE);
    if (!s->readbuf) {
        free(s);
        return NULL;
    }
    return s;
}

/* A new connection's request state: its buffers, bounded by the server's
 * options, and the parser (c->srv set; state IDLE). */
static void conn_init_parsing(http_conn_t *c)
{
    const http_server_opts_t *o = &c->srv->opts;
    buf_init(&c->target, o->max_uri_size + 1);
    buf_init(&c->saved, 0);
    buf_init(&c->head, 0);
    http_fields_init(&c->req.hdrs, o->max_header_size);
    c->req.hdrs.max_fields = 256;
    buf_init(&c->req.body, o->max_body_size);
    llhttp_init(&c->parser, HTTP_REQUEST, parser_settings());
    c->parser.data = c;
    c->state = CONN_IDLE;
}

static void conn_free_parsing(http_conn_t *c)
{
    buf_free(&c->target);
    buf_free(&c->saved);
    buf_free(&c->head);
    http_fields_free(&c->req.hdrs);
    buf_free(&c->req.body);
}

int http_parse_requests(const http_server_opts_t *opts, const char *data, size_t len, size_t piece,
                        void (*on_request)(http_req_t *req, void *ud), void *ud)
{
    http_server_t s = { .opts = *opts };
    http_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->srv = &s;
    c->no_io = true;
    strcpy(c->client, "-");
    conn_init_parsing(c);
    int st = 0;
    while (len && st == 0) {
        size_t n = piece && piece < len ? piece : len, used = n;
        st = conn_parse(c, data, n, &used);
        if (st == PARSE_COMPLETE) {
            /* What dispatch and a response's end do to the state. */
            conn_set_state(c, CONN_HANDLING);
            c->req.client = c->client;
            on_request(&c->req, ud);
            conn_set_state(c, CONN_IDLE);
            st = 0;
        }
        data += used;
        len -= used;
    }
    conn_free_parsing(c);
    free(c);
    return st;
}

static void refuse(http_server_t *s, http_conn_t *c)
{
    if (s->opts.on_refused)
        s->opts.on_refused(s->opts.ud);
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
}

void http_server_accept(http_server_t *s, uv_tcp_t *listener)
{
    http_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(worker_loop(s->worker), &c->tcp);
    c->tcp.data = c;
    c->srv = s;
    if (uv_accept((uv_stream_t *)listener, (uv_stream_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    if (s->stopping || worker_conn_count(s->worker) >= s->opts.max_connections) {
        refuse(s, c);
        return;
    }
    if (s->opts.conns_total) {
        if (atomic_fetch_add(s->opts.conns_total, 1) >= s->opts.max_connections_total) {
            atomic_fetch_sub(s->opts.conns_total, 1);
            refuse(s, c);
            return;
        }
        c->counted_total = true;
    }
    int alen = sizeof c->peer;
    strcpy(c->client, "-");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &alen) == 0) {
        if (c->peer.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&c->peer, c->client, sizeof c->client);
        else
            uv_ip4_name((struct sockaddr_in *)&c->peer, c->client, sizeof c->client);
    } else {
        c->peer.ss_family = AF_UNSPEC;
    }
    if (s->opts.on_accept) {
        int rc = s->opts.on_accept(s->opts.ud, (struct sockaddr *)&c->peer, c->accept_tag);
        if (rc < 0) {
            if (c->counted_total)
                atomic_fetch_sub(s->opts.conns_total, 1);
            refuse(s, c);
            return;
        }
        c->accept_counted = rc == 0;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_init(worker_loop(s->worker), &c->timer);
    c->timer.data = c;
    conn_init_parsing(c);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    worker_conn_add(s->worker, 1);
    conn_timer_arm(c);
    conn_read_start(c);
}

void http_server_stop(http_server_t *s)
{
    s->stopping = true;
    for (http_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == CONN_IDLE)
            conn_close(c);
    }
}

void http_server_close_all(http_server_t *s)
{
    s->stopping = true;
    for (http_conn_t *c = s->conns; c; c = c->next)
        conn_close(c);
}

void http_server_free(http_server_t *s)
{
    if (!s)
        return;
    free(s->readbuf);
    free(s);
}

void *http_conn_ud(http_conn_t *c) { return c->srv->opts.ud; }
const struct sockaddr *http_conn_peer(const http_conn_t *c) { return (const struct sockaddr *)&c->peer; }

void http_conn_drop(http_conn_t *c)
{
    conn_close(c); /* runs the request's abort callback */
}
http_server_t *http_conn_server(http_conn_t *c) { return c->srv; }
worker_t *http_conn_worker(http_conn_t *c) { return c->srv->worker; }
void http_conn_set_log_tag(http_conn_t *c, const char *tag) { c->log_tag = tag; }
void http_conn_set_log_upstream(http_conn_t *c, const char *target, uint64_t upstream_us)
{
    c->log_upstream = target;
    c->log_upstream_us = upstream_us;
}

void http_server_set_limits(http_server_t *s, const http_server_opts_t *o)
{
    /* Read where used (a timer's start, an accept, a request's end), never
     * cached per connection: the next use sees them. The size bounds are
     * not taken: they sized the connections' buffers. */
    s->opts.header_timeout_ms = o->header_timeout_ms;
    s->opts.idle_timeout_ms = o->idle_timeout_ms;
    s->opts.send_timeout_ms = o->send_timeout_ms;
    s->opts.max_connections = o->max_connections;
    s->opts.max_connections_total = o->max_connections_total;
    s->opts.max_requests_per_connection = o->max_requests_per_connection;
    s->opts.min_recv_rate = o->min_recv_rate;
}

_Static_assert(REQUEST_ID_MAX < sizeof ((http_conn_t *)0)->req_id, "req_id holds a kept id and its NUL");
_Static_assert(REQUEST_ID_MAX <= 255, "req_id_len is a byte");

void http_conn_set_request_id(http_conn_t *c, const char *id, size_t len)
{
    if (len > REQUEST_ID_MAX)
        len = REQUEST_ID_MAX;
    memcpy(c->req_id, id, len);
    c->req_id[len] = '\0';
    c->req_id_len = (unsigned char)len;
}

const char *http_conn_request_id(http_conn_t *c, size_t *len)
{
    if (!c->req_id_len) {
        request_id_generate(c->req_id); /* an answer before the request reached its handler */
        c->req_id_len = REQUEST_ID_GEN_LEN;
    }
    if (len)
        *len = c->req_id_len;
    return c->req_id;
}
