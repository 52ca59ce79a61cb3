/* The edge as a cache, on the wire: misses, hits, Age, what is never
 * stored, expiry, collapsing, invalidation, HEAD, Vary, Authorization,
 * upstream failures. Every test counts what reached the real origin. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"

#define CC60 "cc=max-age%3D60"

static void expect_body(th_resp_t *r, const char *path, uint64_t size)
{
    cr_assert_eq(r->status, 200);
    cr_assert(th_body_matches(path, size, r->body.data, r->body.len), "body of %s differs (%zu bytes)", path,
              r->body.len);
}

Test(edge_cache, miss_then_hit_with_one_origin_request)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_get(&env, "/a?size=1000&" CC60);
    expect_body(r, "/a", 1000);
    cr_assert(cs_has(r, "edge-1; fwd=uri-miss; fwd-status=200; stored; ttl=60"), "%s", th_hdr(r, "cache-status"));
    cr_assert_str_eq(th_hdr(r, "age"), "0");
    cr_assert_not_null(th_hdr(r, "date"));
    cr_assert_not_null(th_hdr(r, "via"));
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, "/a?size=1000&" CC60, "edge-1; hit", 5000));
    r = edge_get(&env, "/a?size=1000&" CC60);
    expect_body(r, "/a", 1000);
    cr_assert(cs_has(r, "edge-1; hit; ttl="), "%s", th_hdr(r, "cache-status"));
    cr_assert_not_null(th_hdr(r, "age"));
    cr_assert_str_eq(th_hdr(r, "content-length"), "1000");
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/a"), 1);
    cr_assert_eq(th_stop(env.edge), 0);
}

Test(edge_cache, large_objects_stream_and_hit_intact)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/big?size=3500000&" CC60;
    th_resp_t *r = edge_get(&env, t);
    expect_body(r, "/big", 3500000);
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    r = edge_get(&env, t);
    expect_body(r, "/big", 3500000);
    th_resp_free(r);
    /* Chunked from the origin (length unknown up front) is stored too. */
    r = edge_get(&env, "/chunky?size=700000&chunked=1&" CC60);
    expect_body(r, "/chunky", 700000);
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, "/chunky?size=700000&chunked=1&" CC60, "hit", 5000));
    cr_assert_eq(th_origin_requests(env.o, "/big"), 1);
    cr_assert_eq(th_origin_requests(env.o, "/chunky"), 1);
    cr_assert_eq(th_stop(env.edge), 0);
}

typedef struct age_probe {
    edge_env_t *env;
    long age;
} age_probe_t;

static bool age_at_least_2(void *arg)
{
    age_probe_t *p = arg;
    th_resp_t *r = edge_req(p->env->e, "GET", "/age?" CC60, NULL, NULL, 0);
    if (!r)
        return false;
    const char *a = th_hdr(r, "age");
    p->age = a ? atol(a) : -1;
    bool hit = cs_has(r, "hit");
    th_resp_free(r);
    return hit && p->age >= 2;
}

Test(edge_cache, age_grows_on_hits)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    int64_t t0 = th_now_ms();
    th_resp_free(edge_get(&env, "/age?" CC60));
    age_probe_t p = { &env, -1 };
    cr_assert(th_wait_until(age_at_least_2, &p, 6000), "Age stayed at %ld", p.age);
    int64_t elapsed_s = (th_now_ms() - t0) / 1000;
    cr_assert_leq(p.age, elapsed_s + 1, "Age %ld after %lld s", p.age, (long long)elapsed_s);
    cr_assert_eq(th_origin_requests(env.o, "/age"), 1);
}

Test(edge_cache, upstream_age_counts)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_get(&env, "/aged?age=30&cc=max-age%3D100");
    long age = atol(th_hdr(r, "age"));
    cr_assert(age >= 30 && age <= 31, "Age %ld", age);
    cr_assert(cs_has(r, "ttl=70") || cs_has(r, "ttl=69"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

static void expect_never_stored_status(const char *target, const char *path, const char *detail, int status)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    for (int i = 0; i < 3; i++) {
        th_resp_t *r = edge_get(&env, target);
        cr_assert_eq(r->status, status);
        cr_assert(!cs_has(r, "stored") && !cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
        cr_assert(cs_has(r, detail), "%s lacks %s", th_hdr(r, "cache-status"), detail);
        th_resp_free(r);
    }
    cr_assert_eq(th_origin_requests(env.o, path), 3);
}

static void expect_never_stored(const char *target, const char *path, const char *detail)
{
    expect_never_stored_status(target, path, detail, 200);
}

Test(edge_cache, no_store_never_stored)
{
    expect_never_stored("/ns?cc=no-store", "/ns", "detail=no-store");
}

Test(edge_cache, private_never_stored)
{
    expect_never_stored("/pv?cc=private%2C%20max-age%3D60", "/pv", "detail=private");
}

Test(edge_cache, set_cookie_never_shared)
{
    expect_never_stored("/ck?cookie=session%3D1&" CC60, "/ck", "detail=set-cookie");
}

Test(edge_cache, no_freshness_no_validator_not_stored)
{
    expect_never_stored_status("/nf?status=302&header=Location:/x", "/nf", "detail=no-freshness", 302);
}

Test(edge_cache, max_age_expiry_refetches)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/exp?cc=max-age%3D1";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "fwd=stale", 6000), "never went stale");
    cr_assert_eq(th_origin_requests(env.o, "/exp"), 2);
}

Test(edge_cache, request_no_cache_goes_upstream)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_free(edge_get(&env, "/rnc?" CC60));
    cr_assert(edge_wait_cs(&env, "/rnc?" CC60, "hit", 5000));
    th_resp_t *r = edge_req(env.e, "GET", "/rnc?" CC60, "Cache-Control: no-cache\r\n", NULL, 0);
    cr_assert(cs_has(r, "fwd=request"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    r = edge_req(env.e, "GET", "/rnc?" CC60, "Pragma: no-cache\r\n", NULL, 0);
    cr_assert(cs_has(r, "fwd=request"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    long n = th_origin_requests(env.o, "/rnc");
    cr_assert_eq(n, 3, "origin saw %ld requests", n);
}

Test(edge_cache, only_if_cached_gives_504_on_miss)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_req(env.e, "GET", "/oic?" CC60, "Cache-Control: only-if-cached\r\n", NULL, 0);
    cr_assert_eq(r->status, 504);
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/oic"), 0);
}

typedef struct burst {
    const char *addr;
    const char *target;
    const char *path;
    uint64_t size;
    int ok;
    int origin_counts[128];
} burst_t;

static void burst_one(int i, void *arg)
{
    burst_t *b = arg;
    th_resp_t *r = edge_req(b->addr, "GET", b->target, NULL, NULL, 0);
    if (r && r->status == 200 && th_body_matches(b->path, b->size, r->body.data, r->body.len)) {
        __atomic_add_fetch(&b->ok, 1, __ATOMIC_SEQ_CST);
        const char *n = th_hdr(r, "x-origin-count");
        b->origin_counts[i] = n ? atoi(n) : -1;
    }
    if (r)
        th_resp_free(r);
}

Test(edge_cache, hundred_concurrent_misses_make_one_origin_request)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    burst_t b = { env.e, "/cold?size=20000&delay=300&" CC60, "/cold", 20000, 0, { 0 } };
    th_parallel(100, burst_one, &b);
    cr_assert_eq(b.ok, 100);
    cr_assert_eq(th_origin_requests(env.o, "/cold"), 1);
    cr_assert_eq(th_stop(env.edge), 0);
}

Test(edge_cache, uncacheable_response_is_never_shared_with_waiters)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    burst_t b = { env.e, "/mine?size=3000&delay=300&cc=private", "/mine", 3000, 0, { 0 } };
    th_parallel(10, burst_one, &b);
    cr_assert_eq(b.ok, 10);
    cr_assert_eq(th_origin_requests(env.o, "/mine"), 10);
    /* Each client got a response of its own: ten distinct origin counts. */
    int seen[11] = { 0 };
    for (int i = 0; i < 10; i++) {
        cr_assert(b.origin_counts[i] >= 1 && b.origin_counts[i] <= 10);
        cr_assert_eq(seen[b.origin_counts[i]]++, 0, "two clients got response %d", b.origin_counts[i]);
    }
}

Test(edge_cache, post_is_forwarded_and_invalidates)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/inv?size=50&" CC60;
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    th_resp_t *r = edge_req(env.e, "POST", t, "Content-Type: text/plain\r\n", "hello", 5);
    cr_assert_eq(r->status, 200);
    cr_assert(strstr(r->body.data, "\"body_bytes\":5"), "%s", r->body.data);
    cr_assert(cs_has(r, "fwd=method"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    r = edge_get(&env, t);
    cr_assert(cs_has(r, "fwd=uri-miss"), "after POST: %s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/inv"), 3);
    /* A failed unsafe request invalidates nothing. */
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    r = edge_req(env.e, "DELETE", "/inv?status=500", NULL, NULL, 0);
    cr_assert_eq(r->status, 500);
    th_resp_free(r);
    r = edge_get(&env, t);
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

Test(edge_cache, head_is_answered_from_the_stored_get)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_req(env.e, "HEAD", "/hd?size=4321&" CC60, NULL, NULL, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(th_hdr(r, "content-length"), "4321");
    cr_assert_eq(r->body.len, 0);
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, "/hd?size=4321&" CC60, "hit", 5000));
    r = edge_req(env.e, "HEAD", "/hd?size=4321&" CC60, NULL, NULL, 0);
    cr_assert(cs_has(r, "hit"));
    cr_assert_str_eq(th_hdr(r, "content-length"), "4321");
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/hd"), 1);
}

typedef struct vary_probe {
    const char *addr, *target, *hdr;
} vary_probe_t;

static bool vary_hits(void *arg)
{
    vary_probe_t *v = arg;
    th_resp_t *r = edge_req(v->addr, "GET", v->target, v->hdr, NULL, 0);
    bool hit = r && cs_has(r, "hit");
    if (r)
        th_resp_free(r);
    return hit;
}

Test(edge_cache, vary_matches_request_headers)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/v?vary=Accept-Language&" CC60;
    th_resp_free(edge_req(env.e, "GET", t, "Accept-Language: en\r\n", NULL, 0));
    vary_probe_t v = { env.e, t, "Accept-Language: en\r\n" };
    cr_assert(th_wait_until(vary_hits, &v, 5000));
    /* Same value after normalisation (case, whitespace): a hit. */
    th_resp_t *r = edge_req(env.e, "GET", t, "Accept-Language:  EN \r\n", NULL, 0);
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    r = edge_req(env.e, "GET", t, "Accept-Language: fr\r\n", NULL, 0);
    cr_assert(cs_has(r, "fwd=vary-miss"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* Absent is not the same as empty or any value. */
    r = edge_req(env.e, "GET", t, NULL, NULL, 0);
    cr_assert_not(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

Test(edge_cache, authorization_blocks_storing_unless_allowed)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    for (int i = 0; i < 2; i++)
        th_resp_free(edge_req(env.e, "GET", "/auth?" CC60, "Authorization: Bearer x\r\n", NULL, 0));
    cr_assert_eq(th_origin_requests(env.o, "/auth"), 2);
    const char *pub = "/authpub?cc=public%2C%20max-age%3D60";
    th_resp_free(edge_req(env.e, "GET", pub, "Authorization: Bearer x\r\n", NULL, 0));
    cr_assert(edge_wait_cs(&env, pub, "hit", 5000));
    cr_assert_eq(th_origin_requests(env.o, "/authpub"), 1);
}

Test(edge_cache, upstream_down_gives_502_and_timeout_504)
{
    th_proc_t *o = th_origin();
    char dir_origin[64];
    snprintf(dir_origin, sizeof dir_origin, "%s", th_addr(o));
    th_stop(o); /* nothing listens there now */
    const char *extra[] = { "--origin-timeout=500ms", NULL };
    th_proc_t *e = edge_start(dir_origin, th_tmpdir(), extra);
    th_resp_t *r = edge_req(th_addr(e), "GET", "/down", NULL, NULL, 0);
    cr_assert_eq(r->status, 502);
    cr_assert(cs_has(r, "detail=upstream-error"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    th_proc_t *o2 = th_origin();
    th_proc_t *e2 = edge_start(th_addr(o2), th_tmpdir(), extra);
    r = edge_req(th_addr(e2), "GET", "/slow?delay=3000", NULL, NULL, 0);
    cr_assert_eq(r->status, 504);
    cr_assert(cs_has(r, "detail=upstream-timeout"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(th_stop(e), 0);
    cr_assert_eq(th_stop(e2), 0);
}

Test(edge_cache, health)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_get(&env, "/.cdn/health");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
}
