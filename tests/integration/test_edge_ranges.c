/* Range requests answered from stored full responses: one range (206 +
 * Content-Range), several (multipart/byteranges), unsatisfiable (416),
 * If-Range, ranges across chunk boundaries of a large stored body, and a
 * Range on a miss. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"
#include "synth.h"

#define T "/rg?size=1000&etag=auto&lm=Thu%2C%2001%20Jan%202026%2000%3A00%3A00%20GMT&cc=max-age%3D60"

static void cached(edge_env_t *env, const char *t)
{
    edge_env_start(env, NULL);
    th_resp_free(edge_get(env, t));
    cr_assert(edge_wait_cs(env, t, "hit", 5000));
}

/* Bytes [from, from+n) of the synthetic body of path. */
static void expect_slice(const char *path, uint64_t from, const char *got, size_t n)
{
    char *want = malloc(n);
    synth_fill(path, strlen(path), from, want, n);
    cr_assert(memcmp(want, got, n) == 0, "bytes %llu..+%zu differ", (unsigned long long)from, n);
    free(want);
}

static th_resp_t *ranged(edge_env_t *env, const char *t, const char *hdrs)
{
    th_resp_t *r = edge_req(env->e, "GET", t, hdrs, NULL, 0);
    cr_assert_not_null(r);
    return r;
}

Test(edge_ranges, single_ranges)
{
    edge_env_t env;
    cached(&env, T);
    th_resp_t *r = ranged(&env, T, "Range: bytes=10-19\r\n");
    cr_assert_eq(r->status, 206);
    cr_assert_str_eq(th_hdr(r, "content-range"), "bytes 10-19/1000");
    cr_assert_eq(r->body.len, 10);
    expect_slice("/rg", 10, r->body.data, 10);
    cr_assert(cs_has(r, "hit"));
    th_resp_free(r);
    r = ranged(&env, T, "Range: bytes=990-\r\n");
    cr_assert_str_eq(th_hdr(r, "content-range"), "bytes 990-999/1000");
    expect_slice("/rg", 990, r->body.data, 10);
    th_resp_free(r);
    r = ranged(&env, T, "Range: bytes=-5\r\n");
    cr_assert_str_eq(th_hdr(r, "content-range"), "bytes 995-999/1000");
    expect_slice("/rg", 995, r->body.data, 5);
    th_resp_free(r);
    r = ranged(&env, T, "Range: bytes=900-5000\r\n");
    cr_assert_str_eq(th_hdr(r, "content-range"), "bytes 900-999/1000");
    th_resp_free(r);
    /* Range is only defined for GET (RFC 9110 14.2): HEAD gets the 200 head. */
    r = edge_req(env.e, "HEAD", T, "Range: bytes=0-1\r\n", NULL, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(th_hdr(r, "content-length"), "1000");
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/rg"), 1);
}

Test(edge_ranges, unsatisfiable_and_invalid)
{
    edge_env_t env;
    cached(&env, T);
    th_resp_t *r = ranged(&env, T, "Range: bytes=5000-6000\r\n");
    cr_assert_eq(r->status, 416);
    cr_assert_str_eq(th_hdr(r, "content-range"), "bytes */1000");
    th_resp_free(r);
    /* An invalid Range is ignored: the whole body. */
    r = ranged(&env, T, "Range: bytes=9-2\r\n");
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body.len, 1000);
    th_resp_free(r);
    r = ranged(&env, T, "Range: items=0-1\r\n");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
}

Test(edge_ranges, multiple_ranges_are_multipart_byteranges)
{
    edge_env_t env;
    cached(&env, T);
    th_resp_t *r = ranged(&env, T, "Range: bytes=0-4, 100-109, 995-\r\n");
    cr_assert_eq(r->status, 206);
    const char *ct = th_hdr(r, "content-type");
    cr_assert(ct && strncmp(ct, "multipart/byteranges; boundary=", 31) == 0, "%s", ct);
    const char *boundary = ct + 31;
    cr_assert_eq((size_t)atol(th_hdr(r, "content-length")), r->body.len);
    /* Each part: its Content-Range and bytes, in order. */
    static const struct { long from, n; } parts[] = { { 0, 5 }, { 100, 10 }, { 995, 5 } };
    const char *p = r->body.data;
    for (int i = 0; i < 3; i++) {
        char delim[96], crange[64];
        snprintf(delim, sizeof delim, "--%s\r\n", boundary);
        p = strstr(p, delim);
        cr_assert_not_null(p, "part %d delimiter", i);
        snprintf(crange, sizeof crange, "Content-Range: bytes %ld-%ld/1000\r\n", parts[i].from,
                 parts[i].from + parts[i].n - 1);
        const char *cr = strstr(p, crange);
        cr_assert_not_null(cr, "part %d range", i);
        cr_assert_not_null(strstr(p, "Content-Type: text/plain\r\n"));
        const char *data = strstr(cr, "\r\n\r\n") + 4;
        expect_slice("/rg", (uint64_t)parts[i].from, data, (size_t)parts[i].n);
        p = data + parts[i].n;
    }
    char close[96];
    snprintf(close, sizeof close, "\r\n--%s--\r\n", boundary);
    cr_assert(strstr(p, close), "closing delimiter");
    th_resp_free(r);
}

Test(edge_ranges, if_range)
{
    edge_env_t env;
    cached(&env, T);
    th_resp_t *r = edge_get(&env, T);
    char h[256];
    snprintf(h, sizeof h, "Range: bytes=0-9\r\nIf-Range: %s\r\n", th_hdr(r, "etag"));
    th_resp_free(r);
    r = ranged(&env, T, h);
    cr_assert_eq(r->status, 206);
    th_resp_free(r);
    r = ranged(&env, T, "Range: bytes=0-9\r\nIf-Range: \"stale-etag\"\r\n");
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body.len, 1000);
    th_resp_free(r);
    r = ranged(&env, T, "Range: bytes=0-9\r\nIf-Range: Thu, 01 Jan 2026 00:00:00 GMT\r\n");
    cr_assert_eq(r->status, 206, "a matching Last-Modified date");
    th_resp_free(r);
    r = ranged(&env, T, "Range: bytes=0-9\r\nIf-Range: Fri, 02 Jan 2026 00:00:00 GMT\r\n");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
}

Test(edge_ranges, ranges_across_chunks_of_a_large_body)
{
    edge_env_t env;
    const char *t = "/rgbig?size=900000&cc=max-age%3D60";
    cached(&env, t);
    /* 262144 is the first chunk boundary. */
    th_resp_t *r = ranged(&env, t, "Range: bytes=262100-262199\r\n");
    cr_assert_eq(r->status, 206);
    cr_assert_eq(r->body.len, 100);
    expect_slice("/rgbig", 262100, r->body.data, 100);
    th_resp_free(r);
    r = ranged(&env, t, "Range: bytes=100-199, 524200-524399, -50\r\n");
    cr_assert_eq(r->status, 206);
    cr_assert(strstr(r->body.data, "Content-Range: bytes 524200-524399/900000"));
    th_resp_free(r);
    r = ranged(&env, t, "Range: bytes=200000-\r\n");
    cr_assert_eq(r->body.len, 700000);
    expect_slice("/rgbig", 200000, r->body.data, 700000);
    th_resp_free(r);
}

Test(edge_ranges, range_on_a_miss_gets_the_whole_response_and_fills_the_cache)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = ranged(&env, "/rgmiss?size=500&cc=max-age%3D60", "Range: bytes=0-9\r\n");
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body.len, 500);
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, "/rgmiss?size=500&cc=max-age%3D60", "hit", 5000));
    r = ranged(&env, "/rgmiss?size=500&cc=max-age%3D60", "Range: bytes=0-9\r\n");
    cr_assert_eq(r->status, 206);
    th_resp_free(r);
}

Test(edge_ranges, upstream_206_is_passed_through_not_stored)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/p206?size=10&status=206&header=Content-Range:bytes%200-9/100&cc=max-age%3D60";
    for (int i = 0; i < 2; i++) {
        th_resp_t *r = edge_get(&env, t);
        cr_assert_eq(r->status, 206);
        cr_assert_str_eq(th_hdr(r, "content-range"), "bytes 0-9/100");
        cr_assert_not(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    cr_assert_eq(th_origin_requests(env.o, "/p206"), 2);
}
