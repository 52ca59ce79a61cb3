/* HTTP/1.1 on the edge's client side: bounds, malformed requests,
 * keep-alive and pipelining mixing hits and misses. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"

static void expect_rejected(const edge_env_t *env, const char *raw, size_t len, int status)
{
    th_resp_t *r = th_raw(env->e, raw, len, 5000);
    cr_assert_not_null(r);
    cr_assert_eq(r->status, status, "got %d for: %.60s", r->status, raw);
    cr_assert(r->closed, "connection left open after %d", status);
    cr_assert(cs_has(r, "edge-1"), "no Cache-Status on %d", status);
    th_resp_free(r);
}

Test(edge_http, bounds_and_malformed_requests)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    static const char bad[] = "GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n";
    expect_rejected(&env, bad, sizeof bad - 1, 400);
    static const char junk[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n";
    expect_rejected(&env, junk, sizeof junk - 1, 400);
    static const char both[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    expect_rejected(&env, both, sizeof both - 1, 400);
    static const char dup[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd";
    expect_rejected(&env, dup, sizeof dup - 1, 400);
    static const char fold[] = "GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n";
    expect_rejected(&env, fold, sizeof fold - 1, 400);
    static const char big[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 17000000\r\n\r\n";
    expect_rejected(&env, big, sizeof big - 1, 413);

    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "GET /");
    for (int i = 0; i < 9000; i++)
        buf_append(&b, "u", 1);
    buf_puts(&b, " HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_rejected(&env, b.data, b.len, 414);
    buf_reset(&b);
    buf_puts(&b, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 400; i++)
        buf_printf(&b, "X-Filler-%d: %s\r\n", i, "0123456789012345678901234567890123456789");
    buf_puts(&b, "\r\n");
    expect_rejected(&env, b.data, b.len, 431);
    buf_free(&b);
    /* The node is unharmed. */
    th_resp_t *r = edge_get(&env, "/after?size=10");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/x"), 0);
    cr_assert_eq(th_stop(env.edge), 0);
}

Test(edge_http, keep_alive_serves_many_requests_on_one_connection)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_conn_t *c = th_connect(env.e);
    cr_assert_not_null(c);
    char req[256];
    for (int i = 0; i < 6; i++) {
        int n = snprintf(req, sizeof req, "GET /ka%d?size=%d&cc=max-age%%3D60 HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n", i % 2,
                         100 + i % 2);
        cr_assert_eq(th_send(c, req, (size_t)n), 0);
        th_resp_t *r = th_read_response(c, false);
        cr_assert_not_null(r, "response %d: %s", i, th_last_error());
        cr_assert_eq(r->status, 200);
        char p[16];
        snprintf(p, sizeof p, "/ka%d", i % 2);
        cr_assert(th_body_matches(p, (uint64_t)(100 + i % 2), r->body.data, r->body.len));
        cr_assert(r->keep_alive);
        th_resp_free(r);
    }
    th_close(c);
}

Test(edge_http, pipelined_requests_are_answered_in_order)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_free(edge_get(&env, "/pa?size=300&cc=max-age%3D60"));
    cr_assert(edge_wait_cs(&env, "/pa?size=300&cc=max-age%3D60", "hit", 5000));
    th_conn_t *c = th_connect(env.e);
    /* A hit, a slow miss, a big miss, and a hit again, in one write. */
    static const char reqs[] = "GET /pa?size=300&cc=max-age%3D60 HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n"
                               "GET /pb?size=200&delay=200 HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n"
                               "GET /pc?size=600000&cc=max-age%3D60 HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n"
                               "HEAD /pa?size=300&cc=max-age%3D60 HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n"
                               "GET /pa?size=300&cc=max-age%3D60 HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n";
    cr_assert_eq(th_send(c, reqs, sizeof reqs - 1), 0);
    static const struct { const char *path; uint64_t size; bool head; } want[] = {
        { "/pa", 300, false }, { "/pb", 200, false }, { "/pc", 600000, false }, { "/pa", 300, true }, { "/pa", 300, false },
    };
    for (int i = 0; i < 5; i++) {
        th_resp_t *r = th_read_response(c, want[i].head);
        cr_assert_not_null(r, "response %d: %s", i, th_last_error());
        cr_assert_eq(r->status, 200);
        if (want[i].head)
            cr_assert_eq(r->body.len, 0);
        else
            cr_assert(th_body_matches(want[i].path, want[i].size, r->body.data, r->body.len), "response %d", i);
        th_resp_free(r);
    }
    th_close(c);
}

Test(edge_http, many_pipelined_hits)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_free(edge_get(&env, "/pp?size=64&cc=max-age%3D60"));
    cr_assert(edge_wait_cs(&env, "/pp?size=64&cc=max-age%3D60", "hit", 5000));
    buf_t b;
    buf_init(&b, 0);
    for (int i = 0; i < 500; i++)
        buf_puts(&b, "GET /pp?size=64&cc=max-age%3D60 HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n");
    th_conn_t *c = th_connect(env.e);
    cr_assert_eq(th_send(c, b.data, b.len), 0);
    for (int i = 0; i < 500; i++) {
        th_resp_t *r = th_read_response(c, false);
        cr_assert_not_null(r, "response %d: %s", i, th_last_error());
        cr_assert(th_body_matches("/pp", 64, r->body.data, r->body.len));
        th_resp_free(r);
    }
    th_close(c);
    buf_free(&b);
    cr_assert_eq(th_origin_requests(env.o, "/pp"), 1);
}

Test(edge_http, hop_by_hop_fields_are_not_forwarded_to_the_client)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_get(&env, "/hbh?header=Keep-Alive:timeout%3D5&header=Connection:X-Secret&"
                                  "header=X-Secret:1&header=X-Public:2&cc=max-age%3D60");
    cr_assert_null(th_hdr(r, "x-secret"));
    cr_assert_null(th_hdr(r, "keep-alive"));
    cr_assert_str_eq(th_hdr(r, "x-public"), "2");
    th_resp_free(r);
}
