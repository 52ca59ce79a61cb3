/* test_http_server: the HTTP/1.1 server module on the wire, through
 * bin/origin (the edge runs the same module): persistent connections,
 * pipelining, request bodies, 100-continue, limits, request-smuggling
 * shapes, and timeouts. Every refused request must also be one the
 * handler never saw, which the origin's counters show. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static th_resp_t *must(th_resp_t *r, const char *what)
{
    cr_assert_not_null(r, "%s: %s", what, th_last_error());
    return r;
}

static void stop_ok(th_proc_t *o)
{
    cr_assert_eq(th_stop(o), 0, "origin exit status (non-zero under ASan means a leak)");
}

static void hdr_eq(th_resp_t *r, const char *name, const char *want)
{
    const char *v = th_hdr(r, name);
    cr_assert(v && strcmp(v, want) == 0, "%s: got '%s', want '%s'", name, v ? v : "(absent)", want);
}

/* Send bytes on a fresh connection: expect `status` and the connection closed. */
static void expect_refused(const char *addr, const char *what, const char *bytes, size_t len, int status)
{
    th_resp_t *r = th_raw(addr, bytes, len, TH_TIMEOUT_MS);
    cr_assert_not_null(r, "%s: %s", what, th_last_error());
    cr_assert_eq(r->status, status, "%s: status %d, want %d; got: %.200s", what, r->status, status,
                 r->raw.data ? r->raw.data : "");
    cr_assert(r->closed, "%s: the connection must be closed", what);
    hdr_eq(r, "Connection", "close");
    th_resp_free(r);
}

Test(http_server, keep_alive_serves_several_requests)
{
    th_proc_t *o = th_origin();
    th_conn_t *c = th_connect(th_addr(o));
    cr_assert_not_null(c);
    for (int i = 0; i < 5; i++) {
        char req[128];
        int n = snprintf(req, sizeof req, "GET /ka/%d?size=%d HTTP/1.1\r\nHost: t\r\n\r\n", i, 100 * i);
        cr_assert_eq(th_send(c, req, (size_t)n), 0);
        th_resp_t *r = must(th_read_response(c, false), "keep-alive");
        cr_assert_eq(r->status, 200);
        cr_assert(r->keep_alive, "response %d keeps the connection", i);
        cr_assert_eq(r->body.len, (size_t)(100 * i));
        cr_assert_null(th_hdr(r, "Connection"));
        th_resp_free(r);
    }
    /* HEAD in the middle of a persistent connection leaves no stray bytes. */
    const char head[] = "HEAD /ka/h?size=999 HTTP/1.1\r\nHost: t\r\n\r\nGET /ka/g?size=3 HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(th_send(c, head, sizeof head - 1), 0);
    th_resp_t *r = must(th_read_response(c, true), "HEAD");
    hdr_eq(r, "Content-Length", "999");
    th_resp_free(r);
    r = must(th_read_response(c, false), "GET after HEAD");
    cr_assert_eq(r->body.len, 3);
    th_resp_free(r);
    th_close(c);
    stop_ok(o);
}

/* Send n pipelined GETs in one write; read n responses in order. */
static void pipeline(const char *addr, int n, bool with_delay)
{
    buf_t b;
    buf_init(&b, 0);
    for (int i = 0; i < n; i++)
        buf_printf(&b, "GET /pl/%d?size=%d%s HTTP/1.1\r\nHost: t\r\n\r\n", i, 10 + i,
                   with_delay && i == 0 ? "&delay=200" : "");
    th_conn_t *c = th_connect(addr);
    cr_assert_not_null(c);
    cr_assert_eq(th_send(c, b.data, b.len), 0);
    for (int i = 0; i < n; i++) {
        th_resp_t *r = must(th_read_response(c, false), "pipelined response");
        char path[32];
        snprintf(path, sizeof path, "/pl/%d", i);
        cr_assert_eq(r->status, 200);
        hdr_eq(r, "X-Origin-Path", path);
        cr_assert(th_body_matches(path, (uint64_t)(10 + i), r->body.data, r->body.len), "%s", th_last_error());
        th_resp_free(r);
    }
    th_close(c);
    buf_free(&b);
}

Test(http_server, pipelining_keeps_order)
{
    th_proc_t *o = th_origin();
    pipeline(th_addr(o), 3, false);
    pipeline(th_addr(o), 3, true);   /* the first answer is late: order still holds */
    pipeline(th_addr(o), 100, false);
    pipeline(th_addr(o), 100, true);
    stop_ok(o);
}

Test(http_server, request_bodies)
{
    th_proc_t *o = th_origin();
    const char chunked[] = "POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n";
    th_conn_t *c = th_connect(th_addr(o));
    cr_assert_not_null(c);
    cr_assert_eq(th_send(c, chunked, sizeof chunked - 1), 0);
    th_resp_t *r = must(th_read_response(c, false), "chunked POST");
    cr_assert_str_eq(r->body.data, "{\"method\":\"POST\",\"path\":\"/body\",\"body_bytes\":11}\n");
    th_resp_free(r);
    th_close(c);

    size_t n = 1 << 20;
    char *big = malloc(n);
    memset(big, 'x', n);
    r = must(th_request(th_addr(o), "PUT", "/body", NULL, big, n), "1 MiB PUT");
    cr_assert_str_eq(r->body.data, "{\"method\":\"PUT\",\"path\":\"/body\",\"body_bytes\":1048576}\n");
    th_resp_free(r);
    free(big);
    r = must(th_request(th_addr(o), "POST", "/body", NULL, "abc", 3), "small POST");
    cr_assert_str_eq(r->body.data, "{\"method\":\"POST\",\"path\":\"/body\",\"body_bytes\":3}\n");
    th_resp_free(r);
    stop_ok(o);
}

Test(http_server, expect_100_continue)
{
    th_proc_t *o = th_origin();
    th_conn_t *c = th_connect(th_addr(o));
    cr_assert_not_null(c);
    const char head[] = "POST /cont HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    cr_assert_eq(th_send(c, head, sizeof head - 1), 0);
    th_resp_t *r = must(th_read_response(c, false), "100 Continue");
    cr_assert_eq(r->status, 100, "interim response before the body is sent");
    th_resp_free(r);
    cr_assert_eq(th_send(c, "hello", 5), 0);
    r = must(th_read_response(c, false), "final response");
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body.data, "{\"method\":\"POST\",\"path\":\"/cont\",\"body_bytes\":5}\n");
    th_resp_free(r);
    th_close(c);

    const char big[] = "POST /cont HTTP/1.1\r\nHost: t\r\nContent-Length: 17000000\r\nExpect: 100-continue\r\n\r\n";
    th_resp_t *raw = must(th_raw(th_addr(o), big, sizeof big - 1, TH_TIMEOUT_MS), "too large");
    cr_assert_eq(raw->status, 413, "413 at once, no 100 first: %.100s", raw->raw.data);
    cr_assert_null(strstr(raw->raw.data, " 100 "), "no 100 Continue for a refused body");
    cr_assert(raw->closed);
    th_resp_free(raw);
    cr_assert_eq(th_origin_requests(th_addr(o), "/cont"), 1);
    stop_ok(o);
}

Test(http_server, malformed_and_oversized_requests)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    expect_refused(a, "garbage request line", "GARBAGE\r\n\r\n", 11, 400);
    expect_refused(a, "bad version", "GET / HTTP/9.9\r\nHost: t\r\n\r\n", 27, 400);
    expect_refused(a, "space in target", "GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 30, 400);

    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "GET /big-head HTTP/1.1\r\nHost: t\r\nX-Big: ");
    for (int i = 0; i < 17 * 1024; i++)
        buf_puts(&b, "a");
    buf_puts(&b, "\r\n\r\n");
    expect_refused(a, "17 KiB header block", b.data, b.len, 431);
    buf_reset(&b);
    buf_puts(&b, "GET /big-head HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 600; i++)
        buf_printf(&b, "X-H%d: %s\r\n", i, "0123456789012345678901234");
    buf_puts(&b, "\r\n");
    expect_refused(a, "many headers", b.data, b.len, 431);
    buf_reset(&b);
    buf_puts(&b, "GET /long-uri?");
    for (int i = 0; i < 8 * 1024 + 10; i++)
        buf_puts(&b, "u");
    buf_puts(&b, " HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_refused(a, "URI over 8 KiB", b.data, b.len, 414);
    buf_free(&b);
    const char big[] = "POST /big-body HTTP/1.1\r\nHost: t\r\nContent-Length: 16777217\r\n\r\n";
    expect_refused(a, "body over 16 MiB", big, sizeof big - 1, 413);

    cr_assert_eq(th_origin_requests(a, "/big-head"), 0);
    cr_assert_eq(th_origin_requests(a, "/long-uri"), 0);
    cr_assert_eq(th_origin_requests(a, "/big-body"), 0);
    stop_ok(o);
}

Test(http_server, limits_follow_the_settings)
{
    const char *const args[] = { "--max-body-size=1K", "--max-uri-size", "300", NULL };
    th_proc_t *o = th_origin_args(args);
    char body[1025];
    memset(body, 'b', sizeof body);
    th_resp_t *r = must(th_request(th_addr(o), "POST", "/lim", NULL, body, 1024), "1 KiB");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    r = th_request(th_addr(o), "POST", "/lim", NULL, body, 1025);
    cr_assert(r && r->status == 413, "1025 bytes over a 1K bound");
    th_resp_free(r);
    char target[400] = "/lim?";
    memset(target + 5, 'q', 320);
    target[325] = '\0';
    r = th_get(th_addr(o), target);
    cr_assert(r && r->status == 414);
    th_resp_free(r);
    stop_ok(o);
}

Test(http_server, smuggling_shapes_are_refused)
{
    static const struct {
        const char *what, *req;
    } cases[] = {
        { "Content-Length and Transfer-Encoding",
          "POST /sm HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
        { "Transfer-Encoding and Content-Length",
          "POST /sm HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" },
        { "two differing Content-Length",
          "POST /sm HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" },
        { "Content-Length list", "POST /sm HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!" },
        { "obs-fold (space)", "GET /sm HTTP/1.1\r\nHost: t\r\nX-A: b\r\n c\r\n\r\n" },
        { "obs-fold (tab)", "GET /sm HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\tc\r\n\r\n" },
        { "obs-fold of an empty value", "GET /sm HTTP/1.1\r\nHost: t\r\nX-A:\r\n c\r\n\r\n" },
        { "obs-fold of Transfer-Encoding",
          "POST /sm HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc" },
        { "missing Host in HTTP/1.1", "GET /sm HTTP/1.1\r\n\r\n" },
        { "two Host headers", "GET /sm HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" },
        { "Transfer-Encoding: gzip", "POST /sm HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n" },
        { "Transfer-Encoding: chunked, gzip",
          "POST /sm HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" },
        { "Transfer-Encoding: xchunked",
          "POST /sm HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" },
        { "Transfer-Encoding twice",
          "POST /sm HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
        { "space before the colon", "POST /sm HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" },
        { "Transfer-Encoding in HTTP/1.0",
          "POST /sm HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
        { "bare LF line ends", "GET /sm HTTP/1.1\nHost: t\n\n" },
        { "bare CR in a value", "GET /sm HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n" },
        { "bad chunk size", "POST /sm HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" },
    };
    th_proc_t *o = th_origin();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(th_addr(o), cases[i].what, cases[i].req, strlen(cases[i].req), 400);
    cr_assert_eq(th_origin_requests(th_addr(o), "/sm"), 0, "no refused request reached the handler");
    stop_ok(o);
}

Test(http_server, obs_fold_split_across_reads)
{
    /* The fold check must hold when the continuation line starts a new read.
     * One worker: by the time it answers a request on a second connection,
     * it has read what was already waiting on the first. */
    const char *const args[] = { "--workers=1", NULL };
    th_proc_t *o = th_origin_args(args);
    th_conn_t *c = th_connect(th_addr(o));
    cr_assert_not_null(c);
    const char part1[] = "GET /fold HTTP/1.1\r\nHost: t\r\nX-A: b\r\n";
    cr_assert_eq(th_send(c, part1, sizeof part1 - 1), 0);
    th_resp_free(th_get(th_addr(o), "/.origin/health"));
    cr_assert_eq(th_send(c, " c\r\n\r\n", 6), 0);
    th_resp_t *r = must(th_read_response(c, false), "folded request");
    cr_assert_eq(r->status, 400);
    cr_assert(th_conn_closed(c, TH_TIMEOUT_MS));
    th_resp_free(r);
    th_close(c);
    cr_assert_eq(th_origin_requests(th_addr(o), "/fold"), 0);
    stop_ok(o);
}

Test(http_server, header_timeout_is_408)
{
    const char *const args[] = { "--header-timeout=1s", NULL };
    th_proc_t *o = th_origin_args(args);
    const char partial[] = "GET /stall HTTP/1.1\r\nHost: t\r\n";
    int64_t t0 = th_now_ms();
    th_resp_t *r = must(th_raw(th_addr(o), partial, sizeof partial - 1, TH_TIMEOUT_MS), "stalled request");
    int64_t took = th_now_ms() - t0;
    cr_assert_eq(r->status, 408);
    cr_assert(r->closed);
    cr_assert(took >= 900 && took < 5000, "408 after %lld ms", (long long)took);
    th_resp_free(r);
    /* A body that stalls is bounded by the same timer. */
    const char body[] = "POST /stall HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc";
    r = must(th_raw(th_addr(o), body, sizeof body - 1, TH_TIMEOUT_MS), "stalled body");
    cr_assert_eq(r->status, 408);
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(th_addr(o), "/stall"), 0);
    stop_ok(o);
}

Test(http_server, idle_keep_alive_times_out)
{
    const char *const args[] = { "--idle-timeout=1s", NULL };
    th_proc_t *o = th_origin_args(args);
    th_conn_t *c = th_connect(th_addr(o));
    cr_assert_not_null(c);
    const char req[] = "GET /idle HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(th_send(c, req, sizeof req - 1), 0);
    th_resp_t *r = must(th_read_response(c, false), "idle");
    cr_assert(r->keep_alive);
    th_resp_free(r);
    int64_t t0 = th_now_ms();
    cr_assert(th_conn_closed(c, 5000), "the idle connection was closed");
    int64_t took = th_now_ms() - t0;
    cr_assert(took >= 800, "closed after %lld ms idle", (long long)took);
    th_close(c);
    stop_ok(o);
}

Test(http_server, http10_and_connection_close)
{
    th_proc_t *o = th_origin();
    const char req10[] = "GET /v10?size=5 HTTP/1.0\r\n\r\n";
    th_resp_t *r = must(th_raw(th_addr(o), req10, sizeof req10 - 1, TH_TIMEOUT_MS), "HTTP/1.0");
    cr_assert_eq(r->status, 200);
    hdr_eq(r, "Connection", "close");
    cr_assert(r->closed);
    cr_assert_eq(r->body.len, 5);
    th_resp_free(r);

    /* HTTP/1.0 with keep-alive stays open (Content-Length framing). */
    th_conn_t *c = th_connect(th_addr(o));
    cr_assert_not_null(c);
    const char ka[] = "GET /v10?size=5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(th_send(c, ka, sizeof ka - 1), 0);
        r = must(th_read_response(c, false), "HTTP/1.0 keep-alive");
        hdr_eq(r, "Connection", "keep-alive");
        hdr_eq(r, "Content-Length", "5");
        th_resp_free(r);
    }
    th_close(c);
    /* HTTP/1.0 and chunked=1: the body is delimited by the close. */
    const char ch10[] = "GET /v10c?size=70&chunked=1 HTTP/1.0\r\n\r\n";
    r = must(th_raw(th_addr(o), ch10, sizeof ch10 - 1, TH_TIMEOUT_MS), "HTTP/1.0 close-delimited");
    cr_assert(!r->chunked && r->closed);
    cr_assert(th_body_matches("/v10c", 70, r->body.data, r->body.len), "%s", th_last_error());
    th_resp_free(r);

    c = th_connect(th_addr(o));
    cr_assert_not_null(c);
    const char cl[] = "GET /v11 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    cr_assert_eq(th_send(c, cl, sizeof cl - 1), 0);
    r = must(th_read_response(c, false), "Connection: close");
    hdr_eq(r, "Connection", "close");
    th_resp_free(r);
    cr_assert(th_conn_closed(c, TH_TIMEOUT_MS));
    th_close(c);
    stop_ok(o);
}
