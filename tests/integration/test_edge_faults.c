/* Upstream faults that must never become outages: an origin's ordinary
 * 5xx answers do not eject it (counting them is opt-in, and a shield
 * relaying its origin's 5xx is never broken), a node's only upstream is
 * never ejected, a pool whose every target is ejected is tried anyway
 * (panic mode), and a 304 without validators, or one that fits no stored
 * response, still gives the client the full response. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edge_env.h"

static int status_of(const char *addr, const char *target)
{
    th_resp_t *r = edge_req(addr, "GET", target, NULL, NULL, 0);
    cr_assert_not_null(r, "%s: %s", target, th_last_error());
    int st = r->status;
    th_resp_free(r);
    return st;
}

Test(faults, an_origin_answering_503_on_one_path_keeps_serving_the_others)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    char t[64];
    for (int i = 1; i <= 3; i++) {
        snprintf(t, sizeof t, "/broken?status=503&n=%d", i);
        cr_assert_eq(status_of(env.e, t), 503);
    }
    cr_assert_eq(status_of(env.e, "/fine?size=10"), 200);
    cr_assert_eq(th_log_count(env.edge, "is down"), 0, "an HTTP answer is the origin working");
}

Test(faults, the_only_origin_is_never_ejected_even_when_5xx_count)
{
    edge_env_t env;
    const char *extra[] = { "--eject-on-5xx=on", "--eject-after=1", NULL };
    edge_env_start(&env, extra);
    cr_assert_eq(status_of(env.e, "/broken?status=503"), 503);
    /* Counted and reported, but still the one place to go. */
    cr_assert(th_wait_log(env.edge, "is down (5xx answers); it is the only upstream", 1));
    cr_assert_eq(status_of(env.e, "/fine?size=10"), 200);
    cr_assert_eq(status_of(env.e, "/fine2?size=10"), 200);
}

typedef struct origin_wait {
    const th_proc_t *o;
    const char *path;
    long n;
} origin_wait_t;

static bool origin_reached(void *arg)
{
    origin_wait_t *w = arg;
    return th_origin_requests(th_addr(w->o), w->path) >= w->n;
}

/* Wait (bounded) until the origin counted n requests for path. */
static bool wait_origin(const th_proc_t *o, const char *path, long n)
{
    origin_wait_t w = { o, path, n };
    return th_wait_until(origin_reached, &w, TH_TIMEOUT_MS);
}

/* A shield in front of the given origin pool ("http://a,http://b"). */
static th_proc_t *shield_start(const char *name, const char *listen, const char *origins, const char *const extra[])
{
    char nm[64], lst[64], org[256], dir[600];
    snprintf(nm, sizeof nm, "--name=%s", name);
    snprintf(lst, sizeof lst, "--listen=%s", listen);
    snprintf(org, sizeof org, "--origin=%s", origins);
    snprintf(dir, sizeof dir, "--cache-dir=%s", th_tmpdir());
    const char *argv[24] = { nm, lst, org, dir, "--workers=2", "--cache-size=64M" };
    int n = 6;
    for (int i = 0; extra && extra[i] && n < 23; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return th_spawn("shield", argv);
}

Test(faults, an_origin_pool_counts_5xx_only_when_opted_in_and_panics_when_all_are_ejected)
{
    th_proc_t *o1 = th_origin(), *o2 = th_origin();
    char pool[160];
    snprintf(pool, sizeof pool, "http://%s,http://%s", th_addr(o1), th_addr(o2));
    const char *plain[] = { "--eject-after=1", "--health-interval=1h", "--health-path=/hc", NULL };
    th_proc_t *s = shield_start("shield-plain", "127.0.1.1:0", pool, plain);
    cr_assert_eq(status_of(th_addr(s), "/broken?status=503"), 503);
    cr_assert_eq(status_of(th_addr(s), "/fine?size=10"), 200);
    cr_assert_eq(th_log_count(s, "is down"), 0, "5xx answers are not failures by default");

    /* Opted in: the 503 (retried on the other origin) ejects both... */
    const char *opt[] = { "--eject-on-5xx=on", "--eject-after=1", "--eject-backoff=1h", "--health-interval=1h",
                          "--health-path=/hc", NULL };
    s = shield_start("shield-opt", "127.0.1.2:0", pool, opt);
    /* Its first checks (at start, both successes) are in before anything fails. */
    cr_assert(wait_origin(o1, "/hc", 2) && wait_origin(o2, "/hc", 2));
    cr_assert_eq(status_of(th_addr(s), "/broken2?status=503"), 503);
    cr_assert(th_wait_log(s, "is down (5xx answers)", 2), "both origins ejected");
    /* ...and a request still goes to them rather than failing for certain. */
    cr_assert_eq(status_of(th_addr(s), "/fine?size=10"), 200);
    cr_assert_eq(th_log_count(s, "is back"), 1, "the panic request's success restored one");
}

/* An origin and two shields in front of it (127.0.1.1, .2); shields_arg
 * gets the edge's `--shields=` flag for them. */
static void two_shields(th_proc_t **origin, th_proc_t **s1, th_proc_t **s2, char *shields_arg, size_t cap)
{
    char org[96];
    *origin = th_origin();
    snprintf(org, sizeof org, "http://%s", th_addr(*origin));
    *s1 = shield_start("shield-a", "127.0.1.1:0", org, NULL);
    *s2 = shield_start("shield-b", "127.0.1.2:0", org, NULL);
    snprintf(shields_arg, cap, "--shields=%s,%s", th_addr(*s1), th_addr(*s2));
}

Test(faults, an_edge_whose_every_shield_is_ejected_and_no_origin_still_tries_them)
{
    th_proc_t *origin, *s1, *s2;
    char shields[160];
    two_shields(&origin, &s1, &s2, shields, sizeof shields);
    const char *extra[] = { shields, "--origin=none", "--origin-timeout=300ms", "--eject-after=1",
                            "--eject-backoff=1h", "--health-interval=1h", NULL };
    th_proc_t *e = edge_start(th_addr(origin), th_tmpdir(), extra);
    /* The first health checks (at start) answered before anything fails. */
    cr_assert(th_wait_log(s1, "/.cdn/health", 1) && th_wait_log(s2, "/.cdn/health", 1));
    /* Too slow for the edge on both shields: each attempt times out. */
    th_resp_t *r = edge_req(th_addr(e), "GET", "/slow?size=10&delay=2000", NULL, NULL, 0);
    cr_assert_not_null(r);
    cr_assert_eq(r->status, 504);
    th_resp_free(r);
    cr_assert(th_wait_log(e, "is down", 2), "both shields ejected");
    cr_assert_eq(th_log_count(e, "is back"), 0);
    r = edge_req(th_addr(e), "GET", "/fine?size=10", NULL, NULL, 0);
    cr_assert_not_null(r);
    cr_assert_eq(r->status, 200, "panic: ejected shields are tried before a 502");
    cr_assert(th_body_matches("/fine", 10, r->body.data, r->body.len));
    th_resp_free(r);
}

Test(faults, shields_relaying_their_origins_5xx_are_not_ejected)
{
    th_proc_t *origin, *s1, *s2;
    char shields[160];
    two_shields(&origin, &s1, &s2, shields, sizeof shields);
    /* Even an edge that opts in to counting 5xx, with the lowest threshold. */
    const char *extra[] = { shields, "--origin=none", "--eject-on-5xx=on", "--eject-after=1", "--eject-backoff=1h",
                            NULL };
    th_proc_t *e = edge_start(th_addr(origin), th_tmpdir(), extra);
    char t[64];
    for (int i = 0; i < 4; i++) {
        snprintf(t, sizeof t, "/shared-503-%d?status=503", i);
        cr_assert_eq(status_of(th_addr(e), t), 503);
    }
    cr_assert_eq(th_log_count(e, "is down"), 0);
    /* Both shields still take their share of the keys. */
    int via[2] = { 0, 0 };
    for (int i = 0; i < 40; i++) {
        snprintf(t, sizeof t, "/after-%d?size=10", i);
        th_resp_t *r = edge_req(th_addr(e), "GET", t, NULL, NULL, 0);
        cr_assert_not_null(r);
        cr_assert_eq(r->status, 200);
        const char *cs = th_hdr(r, "cache-status");
        cr_assert_not_null(cs);
        via[strncmp(cs, "shield-a;", 9) == 0 ? 0 : 1]++;
        th_resp_free(r);
    }
    cr_assert(via[0] >= 5 && via[1] >= 5, "shield-a %d, shield-b %d", via[0], via[1]);
}

/* GET t until the answer came from a fetch of its own, not one it joined
 * (a request arriving while the previous fetch is still being stored
 * collapses onto it); *before: the origin's count for path just before. */
static th_resp_t *own_get(edge_env_t *env, const char *t, const char *path, long *before)
{
    /* Bounded in time, not in tries: on a loaded machine the store's
     * writer can take longer than a hundred quick requests. */
    int64_t end = th_now_ms() + TH_TIMEOUT_MS;
    do {
        *before = th_origin_requests(env->o, path);
        th_resp_t *r = edge_get(env, t);
        if (!cs_has(r, "collapsed"))
            return r;
        th_resp_free(r);
        struct timespec ts = { 0, 5 * 1000000L };
        nanosleep(&ts, NULL);
    } while (th_now_ms() < end);
    cr_assert_fail("every answer for %s was collapsed", t);
    return NULL;
}

/* Origin + edge with t stored: every later request revalidates it. */
static void stored_no_cache(edge_env_t *env, const char *t)
{
    edge_env_start(env, NULL);
    th_resp_t *r = edge_get(env, t);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    cr_assert(edge_wait_cs(env, t, "fwd=stale", TH_TIMEOUT_MS));
}

Test(faults, a_304_without_validators_updates_the_stored_response)
{
    edge_env_t env;
    const char *t = "/bare304?size=100&cc=no-cache&etag=abcd&r304=bare";
    stored_no_cache(&env, t);
    th_resp_t *r;
    long long bytes = th_origin_bytes(env.o, "/bare304");
    long before;
    r = own_get(&env, t, "/bare304", &before);
    cr_assert_eq(r->status, 200, "the stored 200, validated by a bare 304: %d %s", r->status,
                 r->body.data ? r->body.data : "");
    cr_assert(th_body_matches("/bare304", 100, r->body.data, r->body.len));
    cr_assert_str_eq(th_hdr(r, "etag"), "\"abcd\"");
    cr_assert(cs_has(r, "fwd-status=304"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(th_origin_bytes(env.o, "/bare304"), bytes, "no body fetched again");
}

Test(faults, a_304_that_fits_no_stored_response_is_fetched_again_whole)
{
    edge_env_t env;
    const char *t = "/foreign304?size=100&cc=no-cache&etag=abcd&r304=foreign";
    stored_no_cache(&env, t);
    long before;
    th_resp_t *r = own_get(&env, t, "/foreign304", &before);
    cr_assert_eq(r->status, 200, "%d: %s", r->status, r->body.data ? r->body.data : "");
    cr_assert(th_body_matches("/foreign304", 100, r->body.data, r->body.len));
    th_resp_free(r);
    /* The conditional request (answered by the foreign 304), then the
     * unconditional one. */
    cr_assert_eq(th_origin_requests(env.o, "/foreign304"), before + 2);
}
