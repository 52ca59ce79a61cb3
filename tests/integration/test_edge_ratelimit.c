/* Rate limiting on the wire (issue 12). Clients are told apart by
 * X-Forwarded-For from a trusted proxy (the tests all connect from
 * 127.0.0.1), which also tests that path. Every request is on a new
 * connection, so with several workers one client's requests land on
 * different worker threads: the limit must hold anyway. Rates are low
 * and bursts small, so that the refill during a test's few milliseconds
 * of requests cannot reach a whole token (6/m: one every 10 s, a rate
 * the thousandths of the configuration hold exactly). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edge_env.h"

#define HOT "/hot?size=64&cc=max-age%3D600"
#define HOT_F "/hot?size=64&cc=max-age%%3D600" /* as a format of admitted() */

static th_resp_t *as(const edge_env_t *env, const char *client, const char *target)
{
    char h[128];
    snprintf(h, sizeof h, "X-Forwarded-For: %s\r\n", client);
    th_resp_t *r = edge_req(env->e, "GET", target, h, NULL, 0);
    cr_assert_not_null(r, "%s", th_last_error());
    return r;
}

/* n requests as client to fmt (printf format: %d is the request's
 * number); how many were admitted (200). */
static int admitted(const edge_env_t *env, const char *client, const char *fmt, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char t[256];
        snprintf(t, sizeof t, fmt, i);
        th_resp_t *r = as(env, client, t);
        cr_assert(r->status == 200 || r->status == 429, "%d", r->status);
        ok += r->status == 200;
        th_resp_free(r);
    }
    return ok;
}

static void start(edge_env_t *env, const char *rate, const char *const more[])
{
    static char rate_arg[64];
    snprintf(rate_arg, sizeof rate_arg, "--rate-limit=%s", rate);
    /* 127.0.0.1 itself (requests without X-Forwarded-For) is never limited */
    const char *extra[16] = { rate_arg, "--trusted-proxies=127.0.0.1", "--workers=4", "--allowlist=127.0.0.1" };
    int n = 4;
    for (int i = 0; more && more[i] && n < 15; i++)
        extra[n++] = more[i];
    extra[n] = NULL;
    edge_env_start(env, extra);
    /* the hot object, warmed by a client of its own */
    th_resp_free(as(env, "198.51.100.99", HOT));
    cr_assert(edge_wait_cs(env, HOT, "; hit", 5000));
}

Test(edge_ratelimit, a_client_over_its_rate_gets_429s_with_the_fields_a_polite_one_none)
{
    edge_env_t env;
    start(&env, "6/m burst 3", NULL);
    /* 10x its rate: the burst, then 429s */
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        th_resp_t *r = as(&env, "203.0.113.1", HOT);
        if (r->status == 200) {
            ok++;
        } else {
            cr_assert_eq(r->status, 429);
            const char *ra = th_hdr(r, "retry-after");
            cr_assert(ra && atoi(ra) >= 1, "Retry-After: %s", ra ? ra : "(none)");
            /* one token back at 6/m takes 10 s */
            cr_assert_leq(atoi(ra), 10, "Retry-After: %s", ra);
            const char *pol = th_hdr(r, "ratelimit-policy"), *rl = th_hdr(r, "ratelimit");
            cr_assert(pol && strstr(pol, ";q=3;w=30"), "RateLimit-Policy: %s", pol ? pol : "(none)");
            cr_assert(rl && strstr(rl, ";r=0;t="), "RateLimit: %s", rl ? rl : "(none)");
            cr_assert(cs_has(r, "detail=rate-limited"), "%s", th_hdr(r, "cache-status"));
        }
        th_resp_free(r);
    }
    cr_assert_eq(ok, 3, "the burst is allowed, then the client is limited");
    /* another client, at half its rate: its own bucket, no 429 */
    cr_assert_eq(admitted(&env, "203.0.113.2", HOT_F, 1), 1);
    cr_assert(th_wait_log(env.edge, " 429 ", 7), "the access log has them (flushed on a timer)");
    cr_assert(th_wait_log(env.edge, "rate-limited", 7), "and says why");
}

Test(edge_ratelimit, misses_cost_more_than_hits)
{
    edge_env_t env;
    const char *more[] = { "--miss-cost=5", NULL };
    start(&env, "6/m burst 10", more);
    int hits = admitted(&env, "203.0.113.3", HOT_F, 20);
    int misses = admitted(&env, "203.0.113.4", "/cold-%d?size=64&cc=max-age%%3D600", 20);
    cr_assert_eq(hits, 10, "hits cost 1: the whole burst");
    /* a miss is admitted on one token and then charged 5: 10 -> 5 -> 0 */
    cr_assert_eq(misses, 2, "misses cost 5: %d admitted", misses);
}

Test(edge_ratelimit, a_rule_has_its_own_limit_and_the_allowlist_none)
{
    static const char conf[] = "[rule /api/*]\nrate_limit = 6/m burst 2\n";
    char path[700], carg[720];
    snprintf(path, sizeof path, "%s/rl.conf", th_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(conf, f);
    fclose(f);
    snprintf(carg, sizeof carg, "%s", path);
    edge_env_t env;
    const char *more[] = { "--allowlist=127.0.0.1, 203.0.113.7/32, 2001:db8::/32", "--miss-cost=1", "-c", carg, NULL };
    start(&env, "6/m burst 5", more);
    cr_assert_eq(admitted(&env, "203.0.113.5", "/api/x-%d?size=8&cc=max-age%%3D600", 6), 2, "the rule's burst");
    cr_assert_eq(admitted(&env, "203.0.113.5", HOT_F, 8), 5, "the node's bucket is another");
    cr_assert_eq(admitted(&env, "203.0.113.7", HOT_F, 20), 20, "allowlisted");
    cr_assert_eq(admitted(&env, "2001:db8:1::5", HOT_F, 20), 20, "allowlisted (IPv6)");
}

Test(edge_ratelimit, x_forwarded_for_counts_only_from_a_trusted_peer)
{
    edge_env_t env;
    const char *extra[] = { "--rate-limit=6/m burst 3", NULL }; /* no trusted proxies */
    edge_env_start(&env, extra);
    /* every request is from 127.0.0.1, whatever X-Forwarded-For says */
    int a = admitted(&env, "203.0.113.10", "/u-%d?size=8", 3);
    int b = admitted(&env, "203.0.113.11", "/v-%d?size=8", 3);
    cr_assert_eq(a + b, 1, "one client, one bucket: %d + %d", a, b);
}

Test(edge_ratelimit, ipv6_clients_are_keyed_by_their_64)
{
    edge_env_t env;
    start(&env, "6/m burst 3", NULL);
    int a = admitted(&env, "2001:db8:aa:1::1", HOT_F, 2);
    int b = admitted(&env, "2001:db8:aa:1:ffff::2", HOT_F, 2);
    int c = admitted(&env, "2001:db8:aa:2::1", HOT_F, 3);
    cr_assert_eq(a + b, 3, "one /64, one bucket");
    cr_assert_eq(c, 3, "another /64");
}

Test(edge_ratelimit, the_penalty_box_outlasts_the_refill)
{
    edge_env_t env;
    const char *more[] = { "--penalty-after=1s", "--penalty-time=10m", NULL };
    start(&env, "10/s burst 1", more);
    /* over the limit for more than a second (bounded: at most 3 s) */
    int64_t end = th_now_ms() + 3000;
    bool boxed = false;
    while (!boxed && th_now_ms() < end) {
        th_resp_t *r = as(&env, "203.0.113.20", HOT);
        boxed = r->status == 429 && cs_has(r, "penalty-box");
        th_resp_free(r);
    }
    cr_assert(boxed, "sent to the penalty box");
    /* at 10/s a token is back within 100 ms; the box still refuses */
    struct timespec ts = { 0, 300 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    th_resp_t *r = as(&env, "203.0.113.20", HOT);
    cr_assert_eq(r->status, 429);
    cr_assert(cs_has(r, "penalty-box"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(admitted(&env, "203.0.113.21", HOT_F, 1), 1, "others are served");
}

Test(edge_ratelimit, the_penalty_box_may_close_instead)
{
    edge_env_t env;
    const char *more[] = { "--penalty-after=1s", "--penalty-time=10m", "--penalty-action=close", NULL };
    start(&env, "10/s burst 1", more);
    int64_t end = th_now_ms() + 3000;
    bool closed = false;
    while (!closed && th_now_ms() < end) {
        th_resp_t *r = edge_req(env.e, "GET", HOT, "X-Forwarded-For: 203.0.113.22\r\n", NULL, 0);
        closed = !r || r->status == 0;
        th_resp_free(r);
    }
    cr_assert(closed, "a boxed client's connection is closed without an answer");
}

Test(edge_ratelimit, the_per_client_connection_cap)
{
    edge_env_t env;
    const char *extra[] = { "--max-client-connections=5", NULL };
    edge_env_start(&env, extra);
    static const char get[] = "GET /c?size=8 HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n";
    th_conn_t *open[5];
    for (int i = 0; i < 5; i++) {
        open[i] = th_connect(env.e);
        cr_assert_not_null(open[i]);
        cr_assert_eq(th_send(open[i], get, strlen(get)), 0);
        th_resp_t *r = th_read_response(open[i], false);
        cr_assert(r && r->status == 200, "connection %d", i);
        th_resp_free(r);
    }
    th_resp_t *r = th_raw(env.e, get, strlen(get), 5000);
    cr_assert(r && r->status == 0 && r->closed, "the sixth is closed at once");
    th_resp_free(r);
    th_close(open[0]);
    r = NULL;
    for (int k = 0; k < 200 && !(r && r->status == 200); k++) {
        th_resp_free(r);
        r = th_raw(env.e, get, strlen(get), 2000);
    }
    cr_assert(r && r->status == 200, "room again after a close");
    th_resp_free(r);
    for (int i = 1; i < 5; i++)
        th_close(open[i]);
}
