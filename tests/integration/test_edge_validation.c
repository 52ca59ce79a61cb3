/* Validation on the wire: stale objects revalidated with conditional
 * requests (a 304 updates the stored headers and the client gets the full
 * stored response), response no-cache, stale-while-revalidate with one
 * background fetch, stale-if-error with the origin failing or gone,
 * must-revalidate, and client conditionals answered from the cache. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edge_env.h"

Test(edge_validation, stale_object_revalidated_with_etag_304)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/val?size=3000&etag=auto&cc=max-age%3D1";
    th_resp_t *r = edge_get(&env, t);
    cr_assert_str_eq(th_hdr(r, "x-origin-count"), "1");
    th_resp_free(r);
    /* Once stale, the next request goes upstream with If-None-Match: 304. */
    r = edge_poll_cs(&env, t, "fwd=stale; fwd-status=304", 6000);
    cr_assert_not_null(r, "never revalidated");
    cr_assert_eq(r->status, 200);
    cr_assert(th_body_matches("/val", 3000, r->body.data, r->body.len));
    /* The 304's headers replaced the stored ones: X-Origin-Count is the
     * revalidation's (each origin answer counts up). */
    long n = th_origin_requests(env.o, "/val");
    cr_assert_geq(n, 2);
    cr_assert_eq(atol(th_hdr(r, "x-origin-count")), n);
    th_resp_free(r);
    cr_assert_eq(th_origin_bytes(env.o, "/val"), 3000, "only the first answer carried a body");
}

Test(edge_validation, revalidated_with_last_modified)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/lmv?size=500&lm=Thu%2C%2001%20Jan%202026%2000%3A00%3A00%20GMT&cc=max-age%3D1";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "fwd=stale; fwd-status=304", 6000));
    cr_assert_eq(th_origin_bytes(env.o, "/lmv"), 500);
}

Test(edge_validation, large_object_revalidated_keeps_its_body)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/lval?size=700000&etag=auto&cc=max-age%3D1";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "fwd=stale; fwd-status=304", 6000));
    th_resp_t *r = edge_get(&env, t);
    cr_assert(th_body_matches("/lval", 700000, r->body.data, r->body.len));
    th_resp_free(r);
    cr_assert_eq(th_origin_bytes(env.o, "/lval"), 700000);
}

Test(edge_validation, response_no_cache_is_revalidated_on_every_use)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/nc?size=100&etag=auto&cc=no-cache";
    th_resp_t *r = edge_get(&env, t);
    cr_assert(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, t, "fwd=stale; fwd-status=304", 5000));
    r = edge_get(&env, t);
    cr_assert(cs_has(r, "fwd-status=304"), "%s", th_hdr(r, "cache-status"));
    cr_assert_not(cs_has(r, "hit"));
    th_resp_free(r);
}

Test(edge_validation, client_no_cache_revalidates_with_the_origin)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/cnc?size=100&etag=auto&cc=max-age%3D60";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    th_resp_t *r = edge_req(env.e, "GET", t, "Cache-Control: no-cache\r\n", NULL, 0);
    cr_assert(cs_has(r, "fwd=request; fwd-status=304"), "%s", th_hdr(r, "cache-status"));
    cr_assert(th_body_matches("/cnc", 100, r->body.data, r->body.len));
    th_resp_free(r);
}

typedef struct swr_burst {
    const char *addr, *target;
    int ok, stale;
} swr_burst_t;

static void swr_one(int i, void *arg)
{
    swr_burst_t *b = arg;
    th_resp_t *r = edge_req(b->addr, "GET", b->target, NULL, NULL, 0);
    if (r && r->status == 200 && th_body_matches("/swr", 2000, r->body.data, r->body.len)) {
        __atomic_add_fetch(&b->ok, 1, __ATOMIC_SEQ_CST);
        if (cs_has(r, "detail=stale-while-revalidate"))
            __atomic_add_fetch(&b->stale, 1, __ATOMIC_SEQ_CST);
    }
    if (r)
        th_resp_free(r);
}

typedef struct count_probe {
    const char *origin, *path;
    long want;
} count_probe_t;

static bool origin_reached(void *arg)
{
    count_probe_t *c = arg;
    return th_origin_requests(c->origin, c->path) >= c->want;
}

Test(edge_validation, stale_while_revalidate_serves_stale_and_fetches_once)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    /* The origin is slow, so the background revalidation stays in flight
     * while 30 clients ask. */
    const char *t = "/swr?size=2000&etag=auto&delay=700&cc=max-age%3D1%2C%20stale-while-revalidate%3D60";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "detail=stale-while-revalidate", 6000), "never served stale");
    swr_burst_t b = { env.e, t, 0, 0 };
    th_parallel(30, swr_one, &b);
    cr_assert_eq(b.ok, 30);
    cr_assert_geq(b.stale, 25, "only %d of 30 served stale at once", b.stale);
    /* Exactly one background fetch: the first fill, then one revalidation. */
    count_probe_t c = { env.o, "/swr", 2 };
    cr_assert(th_wait_until(origin_reached, &c, 5000));
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    cr_assert_eq(th_origin_requests(env.o, "/swr"), 2);
}

Test(edge_validation, stale_if_error_when_the_origin_answers_5xx)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/sie?size=800&fail_after=1&cc=max-age%3D1%2C%20stale-if-error%3D60";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "detail=stale-if-error", 6000));
    th_resp_t *r = edge_get(&env, t);
    cr_assert_eq(r->status, 200);
    cr_assert(th_body_matches("/sie", 800, r->body.data, r->body.len));
    cr_assert(cs_has(r, "fwd=stale; fwd-status=503"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

Test(edge_validation, stale_if_error_with_the_origin_stopped)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/sieo?size=800&cc=max-age%3D1%2C%20stale-if-error%3D60";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    cr_assert_eq(th_stop(env.origin), 0);
    cr_assert(edge_wait_cs(&env, t, "detail=stale-if-error", 6000));
    th_resp_t *r = edge_get(&env, t);
    cr_assert_eq(r->status, 200);
    cr_assert(th_body_matches("/sieo", 800, r->body.data, r->body.len));
    th_resp_free(r);
    /* Without stale-if-error, a stale object is not served: 502. */
    r = edge_get(&env, "/nosie?size=10");
    cr_assert_eq(r->status, 502);
    th_resp_free(r);
}

/* Poll t (bounded: 60 x 100 ms) until it stops being answered 200 by the
 * cache: the origin fails from its second request on, so the first
 * non-200 is the upstream's error, which must come instead of any stale
 * answer. */
static void expect_never_stale(edge_env_t *env, const char *t)
{
    th_resp_free(edge_get(env, t));
    th_resp_t *r = NULL;
    for (int i = 0; i < 60; i++) {
        r = edge_get(env, t);
        if (r->status != 200)
            break;
        cr_assert(cs_has(r, "hit") || cs_has(r, "fwd=uri-miss"), "served stale: %s", th_hdr(r, "cache-status"));
        th_resp_free(r);
        r = NULL;
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
    cr_assert_not_null(r, "never went stale");
    cr_assert_eq(r->status, 503, "a stale object was served: %s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

Test(edge_validation, must_revalidate_is_never_served_stale)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    expect_never_stale(&env, "/mr?size=50&fail_after=1&cc=max-age%3D1%2C%20must-revalidate%2C%20stale-if-error%3D60");
}

Test(edge_validation, s_maxage_implies_proxy_revalidate)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    expect_never_stale(&env, "/sm?size=50&fail_after=1&cc=s-maxage%3D1%2C%20stale-if-error%3D60");
}

Test(edge_validation, client_conditionals_answered_from_the_cache)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/cond?size=100&etag=auto&lm_ago=3600&cc=max-age%3D60";
    th_resp_t *r = edge_get(&env, t);
    char etag[64];
    snprintf(etag, sizeof etag, "%s", th_hdr(r, "etag"));
    char lm[64];
    snprintf(lm, sizeof lm, "%s", th_hdr(r, "last-modified"));
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    char h[256];
    snprintf(h, sizeof h, "If-None-Match: \"other\", W/%s\r\n", etag);
    r = edge_req(env.e, "GET", t, h, NULL, 0);
    cr_assert_eq(r->status, 304);
    cr_assert_eq(r->body.len, 0);
    cr_assert_str_eq(th_hdr(r, "etag"), etag);
    cr_assert_not_null(th_hdr(r, "cache-control"));
    cr_assert_null(th_hdr(r, "content-type"));
    cr_assert(cs_has(r, "hit"));
    th_resp_free(r);
    r = edge_req(env.e, "GET", t, "If-None-Match: \"other\"\r\n", NULL, 0);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    snprintf(h, sizeof h, "If-Modified-Since: %s\r\n", lm);
    r = edge_req(env.e, "GET", t, h, NULL, 0);
    cr_assert_eq(r->status, 304);
    th_resp_free(r);
    r = edge_req(env.e, "GET", t, "If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT\r\n", NULL, 0);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    /* If-None-Match wins over If-Modified-Since. */
    snprintf(h, sizeof h, "If-None-Match: \"other\"\r\nIf-Modified-Since: %s\r\n", lm);
    r = edge_req(env.e, "GET", t, h, NULL, 0);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    /* If-Match is the origin's to judge: forwarded. */
    r = edge_req(env.e, "GET", t, "If-Match: \"other\"\r\n", NULL, 0);
    cr_assert(cs_has(r, "fwd=request"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/cond"), 2);
}

Test(edge_validation, only_if_cached_is_served_when_fresh)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/oic2?size=10&cc=max-age%3D60";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    th_resp_t *r = edge_req(env.e, "GET", t, "Cache-Control: only-if-cached\r\n", NULL, 0);
    cr_assert_eq(r->status, 200);
    cr_assert(cs_has(r, "hit"));
    th_resp_free(r);
}

Test(edge_validation, heuristic_freshness_from_last_modified)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    /* No explicit freshness; Last-Modified 10000 s ago: 10% = 1000 s. */
    th_resp_t *r = edge_get(&env, "/heur?size=10&lm_ago=10000");
    cr_assert(cs_has(r, "stored; ttl=1000") || cs_has(r, "stored; ttl=999"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* Capped at one day. */
    r = edge_get(&env, "/heur2?size=10&lm_ago=100000000");
    cr_assert(cs_has(r, "stored; ttl=86400") || cs_has(r, "stored; ttl=86399"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* Not for a 307 (only with explicit freshness). */
    r = edge_get(&env, "/heur3?size=10&lm_ago=10000&status=307&header=Location:/x");
    cr_assert(cs_has(r, "detail=no-freshness"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

Test(edge_validation, request_directives)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    /* no-store: this response is not kept. */
    th_resp_t *r = edge_req(env.e, "GET", "/rns?size=10&cc=max-age%3D60", "Cache-Control: no-store\r\n", NULL, 0);
    cr_assert(cs_has(r, "detail=req-no-store"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    r = edge_get(&env, "/rns?size=10&cc=max-age%3D60");
    cr_assert(cs_has(r, "fwd=uri-miss"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* min-fresh beyond what is left, and max-age=0: go upstream. */
    const char *t = "/rd?size=10&etag=auto&cc=max-age%3D60";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    r = edge_req(env.e, "GET", t, "Cache-Control: min-fresh=120\r\n", NULL, 0);
    cr_assert(cs_has(r, "fwd=request"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* max-age=0 refuses any age above 0: an object that arrived 5 s old. */
    const char *aged = "/rd2?size=10&etag=auto&age=5&cc=max-age%3D60";
    th_resp_free(edge_get(&env, aged));
    cr_assert(edge_wait_cs(&env, aged, "hit", 5000));
    r = edge_req(env.e, "GET", aged, "Cache-Control: max-age=0\r\n", NULL, 0);
    cr_assert(cs_has(r, "fwd=request; fwd-status=304"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    r = edge_req(env.e, "GET", t, "Cache-Control: max-age=3600\r\n", NULL, 0);
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* max-stale accepts a stale object (without validation). */
    const char *s = "/ms?size=10&cc=max-age%3D1";
    th_resp_free(edge_get(&env, s));
    cr_assert(edge_wait_cs(&env, s, "hit", 5000));
    th_resp_t *stale = NULL;
    for (int i = 0; i < 50 && !stale; i++) {
        r = edge_req(env.e, "GET", s, "Cache-Control: max-stale=600\r\n", NULL, 0);
        const char *ttl = strstr(th_hdr(r, "cache-status"), "ttl=");
        if (cs_has(r, "hit") && ttl && atol(ttl + 4) < 0)
            stale = r;
        else
            th_resp_free(r);
        struct timespec ts = { 0, 100 * 1000000L };
        if (!stale)
            nanosleep(&ts, NULL); /* bounded: waits for expiry */
    }
    cr_assert_not_null(stale, "max-stale never served the stale object");
    th_resp_free(stale);
    cr_assert_eq(th_origin_requests(env.o, "/ms"), 1);
}
