/* What the edge sends upstream, seen through the origin's echo (echo=1
 * answers with the request line and headers that reached the origin):
 * Via and X-Forwarded-For added, hop-by-hop fields stripped, conditionals
 * and Range dropped from cache fills, everything kept on forwarded
 * methods, and connections to the origin reused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"


static bool echoed_has(th_resp_t *r, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof pat, "[\"%s\",", name);
    return strcasestr(r->body.data ? r->body.data : "", pat) != NULL;
}

Test(edge_upstream, via_and_forwarded_for_are_added)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_req(env.e, "GET", "/e1?echo=1", "Via: 1.0 proxy-a\r\nX-Forwarded-For: 10.0.0.1\r\n", NULL, 0);
    cr_assert_eq(r->status, 200);
    char v[256];
    edge_echoed(r, "Via", v, sizeof v);
    cr_assert_str_eq(v, "1.0 proxy-a, 1.1 edge-1");
    edge_echoed(r, "X-Forwarded-For", v, sizeof v);
    cr_assert_str_eq(v, "10.0.0.1, 127.0.0.1");
    edge_echoed(r, "Host", v, sizeof v);
    cr_assert_str_eq(v, EDGE_HOST);
    th_resp_free(r);
}

Test(edge_upstream, host_can_be_the_origins)
{
    const char *extra[] = { "--forward-host=off", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    th_resp_t *r = edge_req(env.e, "GET", "/e2?echo=1", NULL, NULL, 0);
    char v[256];
    edge_echoed(r, "Host", v, sizeof v);
    cr_assert_str_eq(v, env.o);
    th_resp_free(r);
}

Test(edge_upstream, hop_by_hop_fields_are_stripped_from_requests)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_req(env.e, "GET", "/e3?echo=1",
                            "Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n"
                            "TE: trailers\r\nProxy-Authorization: Basic eDp5\r\nX-Kept: 1\r\n",
                            NULL, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_not(echoed_has(r, "X-Hop"), "%s", r->body.data);
    cr_assert_not(echoed_has(r, "Keep-Alive"), "%s", r->body.data);
    cr_assert_not(echoed_has(r, "TE"), "%s", r->body.data);
    cr_assert_not(echoed_has(r, "Proxy-Authorization"), "%s", r->body.data);
    cr_assert(echoed_has(r, "X-Kept"), "%s", r->body.data);
    th_resp_free(r);
}

Test(edge_upstream, fills_drop_conditionals_and_range)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_req(env.e, "GET", "/e4?echo=1&cc=max-age%3D60",
                            "If-None-Match: \"x\"\r\nIf-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
                            "Range: bytes=0-3\r\nIf-Range: \"x\"\r\n",
                            NULL, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_not(echoed_has(r, "If-None-Match"), "%s", r->body.data);
    cr_assert_not(echoed_has(r, "If-Modified-Since"), "%s", r->body.data);
    cr_assert_not(echoed_has(r, "Range"), "%s", r->body.data);
    cr_assert_not(echoed_has(r, "If-Range"), "%s", r->body.data);
    th_resp_free(r);
}

Test(edge_upstream, forwarded_methods_keep_their_headers_and_body)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    static const char body[] = "name=value&other=1";
    th_resp_t *r = edge_req(env.e, "PUT", "/e5?echo=1", "If-Match: v1-tag\r\nContent-Type: application/x-www-form-urlencoded\r\n",
                            body, sizeof body - 1);
    cr_assert_eq(r->status, 200);
    cr_assert(strstr(r->body.data, "\"method\":\"PUT\""), "%s", r->body.data);
    char want[64];
    snprintf(want, sizeof want, "\"body_bytes\":%zu", sizeof body - 1);
    cr_assert(strstr(r->body.data, want), "%s", r->body.data);
    char v[128];
    edge_echoed(r, "If-Match", v, sizeof v);
    cr_assert_str_eq(v, "v1-tag");
    edge_echoed(r, "Content-Type", v, sizeof v);
    cr_assert_str_eq(v, "application/x-www-form-urlencoded");
    cr_assert_not(echoed_has(r, "Expect"), "%s", r->body.data);
    th_resp_free(r);
    /* A large body goes through whole. */
    size_t big = 3 * 1024 * 1024;
    char *data = malloc(big);
    memset(data, 'z', big);
    r = edge_req(env.e, "POST", "/e6", NULL, data, big);
    snprintf(want, sizeof want, "\"body_bytes\":%zu", big);
    cr_assert(r->body.data && strstr(r->body.data, want), "%s", r->body.data);
    th_resp_free(r);
    free(data);
}

static long origin_connections(const char *origin)
{
    th_resp_t *r = th_get(origin, "/.origin/stats");
    cr_assert_not_null(r);
    const char *p = strstr(r->body.data, "\"connections\":");
    long n = p ? atol(p + 14) : -1;
    th_resp_free(r);
    return n;
}

Test(edge_upstream, origin_connections_are_reused)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_origin_reset(env.o);
    char t[64];
    for (int i = 0; i < 30; i++) {
        snprintf(t, sizeof t, "/reuse%d?size=100", i);
        th_resp_t *r = edge_get(&env, t);
        cr_assert_eq(r->status, 200);
        th_resp_free(r);
    }
    /* Two workers keep at most a connection or two each; plus our own
     * connection asking for the stats. */
    long n = origin_connections(env.o);
    cr_assert(n >= 2 && n <= 5, "30 misses took %ld origin connections", n);
}

Test(edge_upstream, request_trailers_are_not_forwarded_as_headers)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    static const char req[] = "POST /e7?echo=1 HTTP/1.1\r\nHost: " EDGE_HOST "\r\nTransfer-Encoding: chunked\r\n"
                              "Connection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: sneaky\r\n\r\n";
    th_resp_t *r = th_raw(env.e, req, sizeof req - 1, 5000);
    cr_assert_eq(r->status, 200);
    cr_assert(strstr(r->body.data, "\"body_bytes\":5"), "%s", r->body.data);
    cr_assert_not(echoed_has(r, "X-Trailer"), "%s", r->body.data);
    cr_assert_not(echoed_has(r, "Transfer-Encoding"), "%s", r->body.data);
    th_resp_free(r);
}
