/* upstream: the libcurl multi client on a libuv loop, against a scripted
 * server on loopback (test_upstream_srv.h). A request reaches the server as
 * given (no headers invented), the callbacks come in order (on_headers,
 * on_body..., on_done once, nothing after), errors map to their codes
 * (connect, timeout, protocol, broken connection, abort), pause holds the
 * body back until resume, cancel and close silence every callback, and
 * closing leaves no handle on the loop. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../test_fields.h"
#include "test_upstream_srv.h"
#include "upstream.h"

#define WAIT_MS 5000 /* bound on every wait for a callback */

/* What the callbacks saw, in order. */
typedef struct rec {
    char events[32];           /* 'H' headers, 'B' body (a run of calls), 'D' done, 'X' a call after done */
    size_t nev;
    int status;
    http_fields_t hdrs;        /* a copy of on_headers' fields */
    buf_t body;
    unsigned body_calls;
    int err;
    char msg[512];
    /* What the callbacks do. */
    int headers_rc, body_rc;   /* returned (body_rc once, then 0) */
    bool cancel_in_headers, cancel_in_body;
    upstream_req_t *req;
} rec_t;

static struct {
    uv_loop_t loop;
    uv_timer_t tick;           /* wakes the loop while a test waits for another thread */
    upstream_t *u;
    bool closed;
    srv_t srv;
    char url[128];
} T;

static void event(rec_t *r, char e)
{
    if (r->nev && r->events[r->nev - 1] == 'D')
        e = 'X';
    if (e == 'B' && r->nev && r->events[r->nev - 1] == 'B')
        return;
    cr_assert_lt(r->nev + 1, sizeof r->events);
    r->events[r->nev++] = e;
    r->events[r->nev] = '\0';
}

static int on_headers(void *ctx, int status, const http_fields_t *hdrs)
{
    rec_t *r = ctx;
    event(r, 'H');
    r->status = status;
    cr_assert_eq(http_fields_copy(&r->hdrs, hdrs), 0);
    if (r->cancel_in_headers)
        upstream_cancel(r->req);
    return r->headers_rc;
}

static int on_body(void *ctx, const char *p, size_t n)
{
    rec_t *r = ctx;
    event(r, 'B');
    r->body_calls++;
    cr_assert_eq(buf_append(&r->body, p, n), 0);
    if (r->cancel_in_body)
        upstream_cancel(r->req);
    int rc = r->body_rc;
    r->body_rc = 0;
    return rc;
}

static void on_done(void *ctx, int err, const char *msg)
{
    rec_t *r = ctx;
    event(r, 'D');
    r->err = err;
    snprintf(r->msg, sizeof r->msg, "%s", msg);
}

static const upstream_cbs_t CBS = { .on_headers = on_headers, .on_body = on_body, .on_done = on_done };

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof *r);
    http_fields_init(&r->hdrs, 0);
    buf_init(&r->body, 16 << 20);
    r->err = 1; /* no on_done yet */
}

static void rec_free(rec_t *r)
{
    http_fields_free(&r->hdrs);
    buf_free(&r->body);
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* Run the loop until cond(arg) or timeout_ms; returns cond(arg). */
static bool run_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
    uv_update_time(&T.loop);
    uint64_t end = uv_now(&T.loop) + (uint64_t)timeout_ms;
    uv_timer_start(&T.tick, on_tick, 2, 2);
    while (!cond(arg) && uv_now(&T.loop) < end)
        uv_run(&T.loop, UV_RUN_ONCE);
    uv_timer_stop(&T.tick);
    return cond(arg);
}

static bool is_done(void *arg) { return ((rec_t *)arg)->nev && strchr(((rec_t *)arg)->events, 'D'); }
static bool never(void *arg) { (void)arg; return false; }
static bool srv_closed_one(void *arg) { return atomic_load(&((srv_t *)arg)->nclosed) >= 1; }
static bool srv_got_one(void *arg) { return atomic_load(&((srv_t *)arg)->nreq) >= 1; }

static void open_upstream(const upstream_opts_t *o)
{
    T.u = upstream_new(&T.loop, o);
    cr_assert_not_null(T.u);
}

static void setup(void)
{
    upstream_global_init();
    cr_assert_eq(uv_loop_init(&T.loop), 0);
    uv_timer_init(&T.loop, &T.tick);
    srv_start(&T.srv);
    snprintf(T.url, sizeof T.url, "http://127.0.0.1:%u", T.srv.port);
    T.u = NULL;
    T.closed = false;
}

/* Close the client, and check it left nothing on the loop. */
static void teardown(void)
{
    if (T.u && !T.closed)
        upstream_close(T.u);
    uv_close((uv_handle_t *)&T.tick, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&T.loop), 0, "a handle was left open on the loop");
    upstream_free(T.u);
    srv_stop(&T.srv);
    upstream_global_cleanup();
}

TestSuite(upstream, .init = setup, .fini = teardown, .timeout = 30);

static const upstream_opts_t OPTS = { .connect_timeout_ms = 2000, .timeout_ms = 10000, .max_header_size = 16384 };

/* Start method on T.url + path with CBS and r; asserts it started. */
static void start(rec_t *r, const char *method, const char *path, const http_fields_t *hdrs, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", T.url, path);
    r->req = upstream_start(T.u, method, url, hdrs, body, body ? strlen(body) : 0, &CBS, r);
    cr_assert_not_null(r->req);
}

/* Start, wait for on_done, and check the event order. */
static void fetch(rec_t *r, const char *method, const char *path, const http_fields_t *hdrs, const char *body,
                  const char *events)
{
    start(r, method, path, hdrs, body);
    cr_assert(run_until(is_done, r, WAIT_MS), "no on_done; events %s", r->events);
    cr_assert_str_eq(r->events, events);
}

static bool has_line(const char *req, const char *line)
{
    char needle[256];
    snprintf(needle, sizeof needle, "\r\n%s\r\n", line);
    return strstr(req, needle) != NULL;
}

static bool has_name(const char *req, const char *name)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\r\n%s:", name);
    return strcasestr(req, needle) != NULL;
}

static bool hdr_is(const rec_t *r, const char *name, const char *value)
{
    http_slice_t v;
    return http_fields_get(&r->hdrs, name, &v) && v.len == strlen(value) && memcmp(v.p, value, v.len) == 0;
}

/* Script a 200 with a generated body of n bytes; returns n. */
static size_t big_reply(size_t n)
{
    static char head[128];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    T.srv.reply = head;
    T.srv.body_len = n;
    return n;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* --- requests and responses --- */

Test(upstream, a_get_reaches_the_server_with_exactly_its_headers)
{
    open_upstream(&OPTS);
    T.srv.reply = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Resp: one\r\nX-Folded: a\r\n  b\r\n\r\nhello";
    http_fields_t h = fields("Host", "origin.test", "X-Trace", "abc", "X-Empty", "", NULL);
    rec_t r;
    rec_init(&r);
    fetch(&r, "GET", "/p/a%20b?q=1&r", &h, NULL, "HBD");
    cr_assert_eq(r.err, UPSTREAM_OK, "%s", r.msg);
    cr_assert_str_eq(r.msg, "ok");
    cr_assert_eq(r.status, 200);
    cr_assert(hdr_is(&r, "x-resp", "one"));
    cr_assert(hdr_is(&r, "Content-Length", "5"));
    cr_assert(hdr_is(&r, "X-Folded", "a b"), "obs-fold joined with one space");
    cr_assert_eq(r.body.len, 5);
    cr_assert(memcmp(r.body.data, "hello", 5) == 0);
    cr_assert_eq(upstream_active(T.u), 0);

    char *req = srv_requests(&T.srv);
    cr_assert(starts_with(req, "GET /p/a%20b?q=1&r HTTP/1.1\r\n"), "%s", req);
    cr_assert(has_line(req, "Host: origin.test"), "%s", req);
    const char *host = strcasestr(req, "\r\nhost:");
    cr_assert(host && !strcasestr(host + 1, "\r\nhost:"), "one Host: %s", req);
    cr_assert(has_line(req, "X-Trace: abc"), "%s", req);
    cr_assert(has_line(req, "X-Empty:"), "an empty value is sent empty: %s", req);
    cr_assert_not(has_name(req, "Accept"), "curl's default Accept is blanked: %s", req);
    cr_assert_not(has_name(req, "Expect"), "%s", req);
    cr_assert_not(has_name(req, "Content-Length"), "%s", req);
    free(req);
    http_fields_free(&h);
    rec_free(&r);
}

Test(upstream, the_url_host_is_sent_when_no_host_is_given)
{
    open_upstream(&OPTS);
    T.srv.reply = "HTTP/1.1 204 No Content\r\n\r\n";
    rec_t r;
    rec_init(&r);
    fetch(&r, "GET", "/", NULL, NULL, "HD");
    cr_assert_eq(r.err, UPSTREAM_OK, "%s", r.msg);
    cr_assert_eq(r.status, 204);
    char *req = srv_requests(&T.srv);
    char host[64];
    snprintf(host, sizeof host, "Host: 127.0.0.1:%u", T.srv.port);
    cr_assert(has_line(req, host), "%s", req);
    free(req);
    rec_free(&r);
}

Test(upstream, interim_responses_are_skipped_and_chunks_decoded)
{
    open_upstream(&OPTS);
    T.srv.reply = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Final: 1\r\n\r\n"
                  "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    rec_t r;
    rec_init(&r);
    fetch(&r, "GET", "/chunked", NULL, NULL, "HBD");
    cr_assert_eq(r.err, UPSTREAM_OK, "%s", r.msg);
    cr_assert_eq(r.status, 200);
    cr_assert(hdr_is(&r, "X-Final", "1"));
    cr_assert_not(http_fields_get(&r.hdrs, "Link", NULL), "the 103's fields are not the response's");
    cr_assert_not(http_fields_get(&r.hdrs, "X-Trailer", NULL), "trailers are not headers");
    cr_assert_eq(r.body.len, 11);
    cr_assert(memcmp(r.body.data, "hello world", 11) == 0);
    rec_free(&r);
}

Test(upstream, a_post_sends_its_body_and_invents_no_fields)
{
    open_upstream(&OPTS);
    T.srv.reply = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    http_fields_t h = fields("Content-Length", "999", "Expect", "100-continue", NULL);
    rec_t r;
    rec_init(&r);
    fetch(&r, "POST", "/form", &h, "a=1&b=2", "HD");
    cr_assert_eq(r.err, UPSTREAM_OK, "%s", r.msg);
    cr_assert_eq(r.status, 201);
    char *req = srv_requests(&T.srv);
    cr_assert(starts_with(req, "POST /form HTTP/1.1\r\n"), "%s", req);
    cr_assert(has_line(req, "Content-Length: 7"), "the body's length, not the caller's field: %s", req);
    cr_assert_not(has_name(req, "Content-Type"), "no form type invented: %s", req);
    cr_assert_not(has_name(req, "Expect"), "%s", req);
    size_t n = strlen(req);
    cr_assert(n > 11 && strcmp(req + n - 11, "\r\n\r\na=1&b=2") == 0, "%s", req);
    free(req);
    http_fields_free(&h);
    rec_free(&r);
}

/* A PUT with an empty body (body as given, len 0). */
static void put_empty(const char *body)
{
    open_upstream(&OPTS);
    T.srv.reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    http_fields_t h = fields("Content-Type", "text/plain", NULL);
    rec_t r;
    rec_init(&r);
    r.req = upstream_start(T.u, "PUT", T.url, &h, body, 0, &CBS, &r);
    cr_assert_not_null(r.req);
    cr_assert(run_until(is_done, &r, WAIT_MS));
    cr_assert_str_eq(r.events, "HBD");
    char *req = srv_requests(&T.srv);
    cr_assert(starts_with(req, "PUT / HTTP/1.1\r\n"), "%s", req);
    cr_assert(has_line(req, "Content-Length: 0"), "%s", req);
    cr_assert(has_line(req, "Content-Type: text/plain"), "%s", req);
    free(req);
    http_fields_free(&h);
    rec_free(&r);
}

Test(upstream, a_put_with_an_empty_body_sends_a_zero_length)
{
    put_empty("");
}

/* The same with body NULL (a client's PUT or POST without a body, whose
 * buffer was never allocated): upstream_start does memcpy(r->body, NULL,
 * 0) was undefined behaviour that UBSan stopped on (an edge crashed on a
 * POST with Content-Length: 0). */
Test(upstream, a_put_with_no_body_sends_a_zero_length)
{
    put_empty(NULL);
}

Test(upstream, a_head_expects_no_body)
{
    open_upstream(&OPTS);
    T.srv.reply = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    rec_t r;
    rec_init(&r);
    fetch(&r, "HEAD", "/h", NULL, NULL, "HD");
    cr_assert_eq(r.err, UPSTREAM_OK, "%s", r.msg);
    cr_assert(hdr_is(&r, "Content-Length", "100"));
    char *req = srv_requests(&T.srv);
    cr_assert(starts_with(req, "HEAD /h HTTP/1.1\r\n"), "%s", req);
    free(req);
    rec_free(&r);
}

Test(upstream, requests_in_turn_reuse_the_connection)
{
    open_upstream(&OPTS);
    T.srv.reply = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    for (int i = 0; i < 3; i++) {
        rec_t r;
        rec_init(&r);
        fetch(&r, "GET", "/again", NULL, NULL, "HBD");
        cr_assert_eq(r.err, UPSTREAM_OK, "%s", r.msg);
        rec_free(&r);
    }
    cr_assert_eq(atomic_load(&T.srv.nreq), 3);
    cr_assert_eq(atomic_load(&T.srv.nconn), 1);
}

Test(upstream, a_large_body_arrives_whole_and_in_order)
{
    open_upstream(&OPTS);
    size_t n = big_reply(3 << 20);
    rec_t r;
    rec_init(&r);
    fetch(&r, "GET", "/big", NULL, NULL, "HBD");
    cr_assert_eq(r.err, UPSTREAM_OK, "%s", r.msg);
    cr_assert_eq(r.body.len, n);
    for (size_t i = 0; i < n; i++)
        if (r.body.data[i] != srv_byte(i))
            cr_assert_fail("byte %zu differs", i);
    cr_assert_gt(r.body_calls, 1);
    rec_free(&r);
}

/* --- errors --- */

Test(upstream, a_closed_port_is_a_connect_error)
{
    open_upstream(&OPTS);
    /* Bound but not listening: connections are refused, and no one else
     * can take the port while the test holds it. */
    unsigned port;
    int fd = srv_bind(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", port);
    rec_t r;
    rec_init(&r);
    r.req = upstream_start(T.u, "GET", url, NULL, NULL, 0, &CBS, &r);
    cr_assert_not_null(r.req);
    cr_assert(run_until(is_done, &r, WAIT_MS));
    cr_assert_str_eq(r.events, "D");
    cr_assert_eq(r.err, UPSTREAM_ECONNECT, "%d: %s", r.err, r.msg);
    cr_assert_gt(strlen(r.msg), 0);
    cr_assert_eq(upstream_active(T.u), 0);
    close(fd);
    rec_free(&r);
}

enum { THEN_KEEP, THEN_CLOSE, THEN_HOLD };

#define HELLO "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
#define PARTIAL "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789" /* 10 of 100 bytes */

/* r (initialised by the caller) GETs / with client options o from a server
 * that answers reply (NULL: nothing), then keeps, closes or holds the
 * connection; waits for on_done and checks the events. */
static void get_scripted(rec_t *r, upstream_opts_t o, const char *reply, int then, const char *events)
{
    open_upstream(&o);
    T.srv.reply = reply;
    T.srv.close_after = then == THEN_CLOSE;
    T.srv.hold = then == THEN_HOLD;
    fetch(r, "GET", "/", NULL, NULL, events);
}

static upstream_opts_t with_timeout(uint64_t ms)
{
    upstream_opts_t o = OPTS;
    o.timeout_ms = ms;
    return o;
}

Test(upstream, a_silent_server_times_out)
{
    rec_t r;
    rec_init(&r);
    uint64_t t0 = uv_now(&T.loop);
    get_scripted(&r, with_timeout(300), NULL, THEN_HOLD, "D"); /* reads the request, never answers */
    cr_assert_eq(r.err, UPSTREAM_ETIMEOUT, "%d: %s", r.err, r.msg);
    cr_assert_geq(uv_now(&T.loop) - t0, 250, "not before the timeout");
    cr_assert_eq(atomic_load(&T.srv.nreq), 1);
    /* The timed-out connection is closed, not kept for reuse. */
    cr_assert(run_until(srv_closed_one, &T.srv, WAIT_MS));
    rec_free(&r);
}

Test(upstream, a_stalled_body_times_out_after_its_headers)
{
    rec_t r;
    rec_init(&r);
    get_scripted(&r, with_timeout(300), PARTIAL, THEN_HOLD, "HBD");
    cr_assert_eq(r.err, UPSTREAM_ETIMEOUT, "%d: %s", r.err, r.msg);
    cr_assert_eq(r.body.len, 10);
    rec_free(&r);
}

Test(upstream, a_connection_lost_mid_body_is_an_io_error)
{
    rec_t r;
    rec_init(&r);
    get_scripted(&r, OPTS, PARTIAL, THEN_CLOSE, "HBD");
    cr_assert_eq(r.err, UPSTREAM_EIO, "%d: %s", r.err, r.msg);
    rec_free(&r);
}

Test(upstream, a_close_before_any_response_is_an_error_not_ok)
{
    rec_t r;
    rec_init(&r);
    get_scripted(&r, OPTS, NULL, THEN_CLOSE, "D"); /* reads the request, closes without a byte */
    cr_assert_lt(r.err, 0, "%d: %s", r.err, r.msg);
    rec_free(&r);
}

/* A client bounding headers at 256 bytes fetches a response with 1 KiB of
 * them into r. */
static void fetch_fat_headers(rec_t *r)
{
    upstream_opts_t o = OPTS;
    o.max_header_size = 256;
    static char reply[2048];
    char pad[1001];
    memset(pad, 'p', 1000);
    pad[1000] = '\0';
    snprintf(reply, sizeof reply, "HTTP/1.1 200 OK\r\nX-Pad: %s\r\nContent-Length: 0\r\n\r\n", pad);
    rec_init(r);
    get_scripted(r, o, reply, THEN_KEEP, "D");
}

Test(upstream, headers_past_the_bound_are_a_protocol_error)
{
    rec_t r;
    fetch_fat_headers(&r);
    cr_assert_eq(r.err, UPSTREAM_EPROTO, "%d: %s", r.err, r.msg);
    rec_free(&r);
}

/* The message on_header writes into the error buffer ("upstream response
 * headers larger than N bytes", and "malformed upstream header line" the
 * same way) must not be overwritten by curl's own "Failed writing header"
 * once the callback returns 0: the log says what was wrong. */
Test(upstream, headers_past_the_bound_say_so)
{
    rec_t r;
    fetch_fat_headers(&r);
    cr_assert(strstr(r.msg, "larger than 256"), "%s", r.msg);
    rec_free(&r);
}

/* Replies the client must refuse as EPROTO, each on a fresh client. */
static void assert_eproto(const char *reply)
{
    rec_t r;
    rec_init(&r);
    get_scripted(&r, OPTS, reply, THEN_CLOSE, "D");
    cr_assert_eq(r.err, UPSTREAM_EPROTO, "%d: %s", r.err, r.msg);
    rec_free(&r);
}

Test(upstream, a_reply_that_is_not_http_is_a_protocol_error)
{
    assert_eproto("SSH-2.0-OpenSSH_9.2\r\n\r\n");
}

Test(upstream, a_header_line_without_a_colon_is_a_protocol_error)
{
    assert_eproto("HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 0\r\n\r\n");
}

Test(upstream, a_scheme_other_than_http_is_refused)
{
    open_upstream(&OPTS);
    rec_t r;
    rec_init(&r);
    r.req = upstream_start(T.u, "GET", "ftp://127.0.0.1/file", NULL, NULL, 0, &CBS, &r);
    cr_assert_not_null(r.req, "refused asynchronously, through on_done");
    cr_assert(run_until(is_done, &r, WAIT_MS));
    cr_assert_str_eq(r.events, "D");
    cr_assert_eq(r.err, UPSTREAM_EPROTO, "%d: %s", r.err, r.msg);
    rec_free(&r);
}

/* --- callbacks that stop the transfer --- */

Test(upstream, on_headers_returning_minus_one_aborts)
{
    rec_t r;
    rec_init(&r);
    r.headers_rc = -1;
    get_scripted(&r, OPTS, HELLO, THEN_KEEP, "HD");
    cr_assert_eq(r.err, UPSTREAM_EABORT, "%d: %s", r.err, r.msg);
    cr_assert_eq(r.body.len, 0);
    rec_free(&r);
}

Test(upstream, on_body_returning_minus_one_aborts)
{
    rec_t r;
    rec_init(&r);
    r.body_rc = -1;
    get_scripted(&r, OPTS, HELLO, THEN_KEEP, "HBD");
    cr_assert_eq(r.err, UPSTREAM_EABORT, "%d: %s", r.err, r.msg);
    cr_assert_eq(r.body_calls, 1);
    rec_free(&r);
}

/* --- pause and resume --- */

static bool got_gate(void *arg) { return ((rec_t *)arg)->body.len >= T.srv.gate_at; }

/* Check r paused with held bytes of body, resume it, and check the rest
 * arrives whole. */
static void resume_and_finish(rec_t *r, size_t held, size_t n)
{
    run_until(never, NULL, 300); /* bounded: the server has plenty to send */
    cr_assert_eq(r->body.len, held, "%zu body bytes while paused, %zu before", r->body.len, held);
    cr_assert_str_eq(r->events, held ? "HB" : "H");
    upstream_pause(r->req, false);
    cr_assert(run_until(is_done, r, WAIT_MS), "events %s", r->events);
    cr_assert_str_eq(r->events, "HBD");
    cr_assert_eq(r->err, UPSTREAM_OK, "%s", r->msg);
    cr_assert_eq(r->body.len, n);
    for (size_t i = 0; i < n; i++)
        if (r->body.data[i] != srv_byte(i))
            cr_assert_fail("byte %zu differs after the resume", i);
}

/* r (initialised here) starts a GET of a 2 MiB generated body, paused by
 * on_body's first return when pause_by_return; the server stops after
 * gate_at body bytes until srv_open_gate (0: no stop). Returns the body's
 * length. */
static size_t start_big(rec_t *r, bool pause_by_return, size_t gate_at)
{
    open_upstream(&OPTS);
    size_t n = big_reply(2 << 20);
    T.srv.gate_at = gate_at;
    rec_init(r);
    if (pause_by_return)
        r->body_rc = UPSTREAM_PAUSE;
    start(r, "GET", "/big", NULL, NULL);
    return n;
}

Test(upstream, pause_by_return_holds_the_body_until_resume)
{
    rec_t r;
    size_t n = start_big(&r, true, 1000); /* the first read cannot hold more */
    cr_assert(run_until(got_gate, &r, WAIT_MS), "events %s", r.events);
    srv_open_gate(&T.srv);
    size_t held = r.body.len;
    cr_assert_eq(r.body_calls, 1);
    upstream_pause(r.req, true); /* pausing again is a no-op */
    resume_and_finish(&r, held, n);
    rec_free(&r);
}

Test(upstream, pause_from_the_loop_holds_the_body_until_resume)
{
    rec_t r;
    size_t n = start_big(&r, false, 5000);
    cr_assert(run_until(got_gate, &r, WAIT_MS), "events %s", r.events);
    upstream_pause(r.req, true); /* a consumer that fell behind */
    srv_open_gate(&T.srv);
    resume_and_finish(&r, 5000, n);
    rec_free(&r);
}

/* include/upstream.h: after on_body returns UPSTREAM_PAUSE no body comes
 * until resume, although curl goes on handing over what it had already
 * read (up to CURLOPT_BUFFERSIZE, 256 KiB): on_write refuses those bytes
 * with CURL_WRITEFUNC_PAUSE while paused, and curl keeps them for the
 * resume. */
Test(upstream, pause_by_return_holds_back_what_curl_already_read)
{
    rec_t r;
    size_t n = start_big(&r, true, 0);
    cr_assert(run_until(srv_got_one, &T.srv, WAIT_MS));
    run_until(never, NULL, 300);
    cr_assert_eq(r.body_calls, 1, "%u body calls while paused", r.body_calls);
    resume_and_finish(&r, r.body.len, n);
    rec_free(&r);
}

/* A pause asked for before the response arrives holds it back too (curl
 * resets a transfer's pause state when it starts; on_write still refuses
 * bytes while r->paused). */
Test(upstream, pause_before_the_response_holds_it_back)
{
    rec_t r;
    size_t n = start_big(&r, false, 0);
    upstream_pause(r.req, true);
    cr_assert(run_until(srv_got_one, &T.srv, WAIT_MS));
    resume_and_finish(&r, 0, n);
    rec_free(&r);
}

/* --- cancel and close --- */

Test(upstream, cancel_in_on_headers_calls_nothing_more)
{
    open_upstream(&OPTS);
    T.srv.reply = HELLO;
    rec_t r;
    rec_init(&r);
    r.cancel_in_headers = true;
    start(&r, "GET", "/cancel", NULL, NULL);
    cr_assert(run_until(srv_closed_one, &T.srv, WAIT_MS), "the connection is dropped");
    run_until(never, NULL, 50);
    cr_assert_str_eq(r.events, "H", "nothing after the cancel");
    cr_assert_eq(upstream_active(T.u), 0);
    rec_free(&r);
}

Test(upstream, cancel_in_on_body_calls_nothing_more)
{
    rec_t r;
    start_big(&r, false, 0);
    r.cancel_in_body = true; /* before the loop runs a callback */
    cr_assert(run_until(srv_closed_one, &T.srv, WAIT_MS), "the connection is dropped");
    run_until(never, NULL, 50);
    cr_assert_str_eq(r.events, "HB");
    cr_assert_eq(r.body_calls, 1);
    cr_assert_eq(upstream_active(T.u), 0);
    rec_free(&r);
}

Test(upstream, cancel_from_the_loop_calls_nothing_more)
{
    open_upstream(&OPTS);
    T.srv.hold = true;
    rec_t r;
    rec_init(&r);
    start(&r, "GET", "/waiting", NULL, NULL);
    cr_assert_eq(upstream_active(T.u), 1);
    cr_assert(run_until(srv_got_one, &T.srv, WAIT_MS));
    upstream_cancel(r.req);
    cr_assert_eq(upstream_active(T.u), 0, "freed at once outside curl's callbacks");
    cr_assert(run_until(srv_closed_one, &T.srv, WAIT_MS), "the connection is dropped");
    run_until(never, NULL, 50);
    cr_assert_str_eq(r.events, "");
    rec_free(&r);
}

Test(upstream, cancel_while_paused_calls_nothing_more)
{
    rec_t r;
    start_big(&r, true, 0);
    cr_assert(run_until(srv_got_one, &T.srv, WAIT_MS));
    run_until(never, NULL, 100);
    cr_assert_str_eq(r.events, "HB");
    upstream_cancel(r.req);
    cr_assert(run_until(srv_closed_one, &T.srv, WAIT_MS));
    run_until(never, NULL, 50);
    cr_assert_str_eq(r.events, "HB");
    cr_assert_eq(upstream_active(T.u), 0);
    rec_free(&r);
}

Test(upstream, close_cancels_requests_in_flight_silently)
{
    open_upstream(&OPTS);
    T.srv.hold = true;
    rec_t r1, r2;
    rec_init(&r1);
    rec_init(&r2);
    start(&r1, "GET", "/one", NULL, NULL);
    start(&r2, "GET", "/two", NULL, NULL);
    cr_assert_eq(upstream_active(T.u), 2);
    cr_assert(run_until(srv_got_one, &T.srv, WAIT_MS));
    upstream_close(T.u);
    T.closed = true;
    cr_assert_eq(upstream_active(T.u), 0);
    rec_t r3;
    rec_init(&r3);
    cr_assert_null(upstream_start(T.u, "GET", T.url, NULL, NULL, 0, &CBS, &r3), "no requests after close");
    run_until(never, NULL, 100); /* the close callbacks run: still no request callback */
    cr_assert_str_eq(r1.events, "");
    cr_assert_str_eq(r2.events, "");
    cr_assert_str_eq(r3.events, "");
    rec_free(&r1);
    rec_free(&r2);
    rec_free(&r3);
}

Test(upstream, strerror_names_every_code)
{
    const int codes[] = { UPSTREAM_OK, UPSTREAM_ECONNECT, UPSTREAM_ETIMEOUT, UPSTREAM_EPROTO, UPSTREAM_EIO,
                          UPSTREAM_EABORT };
    const char *unknown = upstream_strerror(-99);
    cr_assert_str_eq(unknown, "unknown upstream error");
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        cr_assert_str_neq(upstream_strerror(codes[i]), unknown, "code %d", codes[i]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(upstream_strerror(codes[i]), upstream_strerror(codes[j]));
    }
    cr_assert_str_eq(upstream_strerror(UPSTREAM_OK), "ok");
}

/* --- upstream_parse_head: the header callback without a transfer --- */

static int head_status;

static int note_head(void *ctx, int status, const http_fields_t *hdrs)
{
    (void)ctx;
    (void)hdrs;
    head_status = status;
    return 0;
}

static int parse_lines(const http_slice_t *lines, size_t n)
{
    upstream_opts_t o = { .max_header_size = 4096 };
    upstream_cbs_t cbs = { .on_headers = note_head };
    char msg[160];
    head_status = 0;
    return upstream_parse_head(&o, lines, n, &cbs, NULL, msg, sizeof msg);
}

Test(upstream, a_status_line_is_read_within_its_own_bytes)
{
    /* curl's buffer is not NUL-terminated: what follows a line is not
     * part of it. Found by fuzzing (tests/fuzz/corpus/response_head/
     * crash-status-line-without-code): atoi skipped the LF of "HTTP/1.1 "
     * and read the status from the bytes after it. */
    static const char buf[] = "HTTP/1.1 \n200";
    http_slice_t lines[] = { { buf, 10 }, { "\r\n", 2 } };
    cr_assert_eq(parse_lines(lines, 2), UPSTREAM_EPROTO);
    cr_assert_eq(head_status, 0);
}

Test(upstream, a_status_code_is_three_digits)
{
    static const char *const bad[] = { "HTTP/1.1 2000\r\n", "HTTP/1.1 20\r\n", "HTTP/1.1 2x0 OK\r\n", "HTTP/1.1\r\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_slice_t lines[] = { { bad[i], strlen(bad[i]) }, { "\r\n", 2 } };
        cr_assert_eq(parse_lines(lines, 2), UPSTREAM_EPROTO, "%s", bad[i]);
    }
    static const char *const good[] = { "HTTP/1.1 204 No Content\r\n", "HTTP/2 204 \r\n", "HTTP/1.0 204\r\n" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        http_slice_t lines[] = { { good[i], strlen(good[i]) }, { "\r\n", 2 } };
        cr_assert_eq(parse_lines(lines, 2), UPSTREAM_OK, "%s", good[i]);
        cr_assert_eq(head_status, 204);
    }
}
