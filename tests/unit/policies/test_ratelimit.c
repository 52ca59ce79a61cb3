/* Unit tests for policy_ratelimit: the token bucket over a clock the test
 * sets (rate, burst, refill, cost, debt and its floor, Retry-After
 * rounding, the penalty box), the RateLimit fields (checked by the
 * project's own RFC 8941 parser), client keys, CIDR lists and
 * X-Forwarded-For. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../test_fields.h"
#include "policy_ratelimit.h"
#include "policy_sf.h"

#define ONE POLICY_RL_ONE

static policy_rl_limit_t lim_of(uint32_t rate_milli, uint32_t burst)
{
    return (policy_rl_limit_t){ .rate_milli = rate_milli, .burst = burst };
}

static policy_rl_result_t take(policy_rl_bucket_t *b, const policy_rl_limit_t *l, uint32_t cost, int64_t now)
{
    policy_rl_result_t r;
    policy_rl_take(b, l, cost, now, &r);
    return r;
}

Test(ratelimit_policy, burst_then_refused)
{
    policy_rl_limit_t l = lim_of(1000, 5);
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 0);
    for (uint32_t i = 0; i < 5; i++) {
        policy_rl_result_t r = take(&b, &l, 1, 0);
        cr_assert(r.admitted, "request %u", i);
        cr_assert_eq(r.remaining, 4 - i);
        cr_assert_eq(r.retry_after_s, 0);
    }
    policy_rl_result_t r = take(&b, &l, 1, 0);
    cr_assert_not(r.admitted);
    cr_assert_not(r.penalized);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.retry_after_s, 1);
    cr_assert_eq(r.reset_s, 1, "t is the Retry-After moment while nothing is left");
    cr_assert_eq(b.balance, 0, "a refusal charges nothing");
}

Test(ratelimit_policy, refill_over_controlled_time)
{
    policy_rl_limit_t l = lim_of(10000, 10); /* 10 r/s: one token per 100 ms */
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 5000);
    for (int i = 0; i < 10; i++)
        cr_assert(take(&b, &l, 1, 5000).admitted);
    cr_assert_not(take(&b, &l, 1, 5099).admitted);
    cr_assert(take(&b, &l, 1, 5100).admitted);
    cr_assert_not(take(&b, &l, 1, 5100).admitted);
    /* Half a second: five tokens; the refill never passes the burst. */
    cr_assert_eq(policy_rl_balance(&b, &l, 5600), 5 * ONE);
    cr_assert_eq(policy_rl_balance(&b, &l, 7000), 10 * ONE);
    cr_assert_eq(policy_rl_ms_to_full(&b, &l, 5600), 500);
    /* A very long idle span does not overflow. */
    cr_assert_eq(policy_rl_balance(&b, &l, INT64_C(4000000000000000000)), 10 * ONE);
    policy_rl_result_t r = take(&b, &l, 1, 7000);
    cr_assert_eq(r.remaining, 9);
    cr_assert_eq(r.reset_s, 1, "100 ms to full rounds up to 1 s");
}

Test(ratelimit_policy, exact_rate_over_a_long_run)
{
    /* 3 r/s, burst 2, a request every millisecond for 10 s: 2 + 29.997
     * tokens, so 31 admitted. Integer arithmetic: no drift. */
    policy_rl_limit_t l = lim_of(3000, 2);
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 0);
    int n = 0;
    for (int64_t t = 0; t < 10000; t++)
        n += take(&b, &l, 1, t).admitted;
    cr_assert_eq(n, 31);
    /* A fractional rate: 0.5 r/s, burst 1: every 2 s exactly, 0..60 s. */
    l = lim_of(500, 1);
    policy_rl_init(&b, &l, 0);
    n = 0;
    for (int64_t t = 0; t <= 60000; t += 10)
        n += take(&b, &l, 1, t).admitted;
    cr_assert_eq(n, 31);
}

Test(ratelimit_policy, clock_behind_refills_nothing)
{
    policy_rl_limit_t l = lim_of(1000, 2);
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 1000);
    take(&b, &l, 2, 1000);
    cr_assert_eq(b.balance, 0);
    policy_rl_result_t r = take(&b, &l, 1, 900); /* another worker's clock, a little behind */
    cr_assert_not(r.admitted);
    cr_assert_eq(b.updated_ms, 1000);
    cr_assert(take(&b, &l, 1, 2000).admitted);
}

Test(ratelimit_policy, cost_and_debt)
{
    policy_rl_limit_t l = lim_of(10000, 10); /* one token per 100 ms */
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 0);
    /* A miss: admitted on one token, then the rest of its cost. */
    cr_assert(take(&b, &l, 1, 0).admitted);
    policy_rl_result_t r;
    policy_rl_charge(&b, &l, 9, 0, &r);
    cr_assert(r.admitted);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(b.balance, 0);
    cr_assert_not(take(&b, &l, 1, 0).admitted);
    cr_assert(take(&b, &l, 1, 500).admitted, "admission needs one token, not the whole cost");
    policy_rl_charge(&b, &l, 9, 500, &r);
    cr_assert_eq(b.balance, -5 * ONE);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.reset_s, 1, "in debt, t is the time to one token (600 ms)");
    r = take(&b, &l, 1, 1099);
    cr_assert_not(r.admitted);
    cr_assert_eq(r.retry_after_s, 1);
    cr_assert(take(&b, &l, 1, 1100).admitted, "six tokens of refill pay the debt and leave one");
}

Test(ratelimit_policy, cost_known_before_or_after_is_the_same)
{
    policy_rl_limit_t l = lim_of(7000, 20);
    policy_rl_bucket_t a, b;
    policy_rl_init(&a, &l, 0);
    policy_rl_init(&b, &l, 0);
    for (int64_t t = 0; t < 5000; t += 37) {
        bool miss = (t / 37) % 3 == 0;
        policy_rl_result_t ra = take(&a, &l, miss ? 10 : 1, t);
        policy_rl_result_t rb = take(&b, &l, 1, t);
        if (rb.admitted && miss)
            policy_rl_charge(&b, &l, 9, t, &rb);
        cr_assert_eq(ra.admitted, rb.admitted, "t=%lld", (long long)t);
        cr_assert_eq(a.balance, b.balance, "t=%lld", (long long)t);
    }
}

Test(ratelimit_policy, debt_floor)
{
    /* Five misses admitted together (burst 5), their charges land after:
     * the debt stops at minus one bucket... */
    policy_rl_limit_t l = lim_of(1000, 5);
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 0);
    for (int i = 0; i < 5; i++)
        cr_assert(take(&b, &l, 1, 0).admitted);
    for (int i = 0; i < 5; i++)
        policy_rl_charge(&b, &l, 9, 0, NULL);
    cr_assert_eq(b.balance, -9 * ONE, "floor -max(burst, amount) = -9");
    policy_rl_result_t r = take(&b, &l, 1, 0);
    cr_assert_eq(r.retry_after_s, 10);
    cr_assert(take(&b, &l, 1, 10000).admitted);
    /* ...or at minus the amount charged, when larger: one request is
     * always charged in full. */
    l = lim_of(1000, 2);
    policy_rl_init(&b, &l, 0);
    take(&b, &l, 1, 0);
    policy_rl_charge(&b, &l, 50, 0, NULL);
    cr_assert_eq(b.balance, -49 * ONE);
    policy_rl_charge(&b, &l, 50, 0, NULL);
    cr_assert_eq(b.balance, -50 * ONE);
}

Test(ratelimit_policy, retry_after_rounding)
{
    policy_rl_bucket_t b;
    policy_rl_limit_t l = lim_of(3000, 1); /* one token per 333.3 ms */
    policy_rl_init(&b, &l, 0);
    take(&b, &l, 1, 0);
    cr_assert_eq(take(&b, &l, 1, 0).retry_after_s, 1);
    cr_assert_eq(take(&b, &l, 1, 333).retry_after_s, 1, "1 ms left is still a second");
    cr_assert(take(&b, &l, 1, 334).admitted);
    l = lim_of(100, 1); /* 0.1 r/s */
    policy_rl_init(&b, &l, 0);
    take(&b, &l, 1, 0);
    cr_assert_eq(take(&b, &l, 1, 0).retry_after_s, 10);
    cr_assert_eq(take(&b, &l, 1, 5000).retry_after_s, 5);
    cr_assert_eq(take(&b, &l, 1, 5001).retry_after_s, 5);
    cr_assert_eq(take(&b, &l, 1, 4999).retry_after_s, 5, "a clock behind changes nothing");
    l = lim_of(1000, 5);
    policy_rl_init(&b, &l, 0);
    b.balance = -2 * ONE - ONE / 2; /* 3.5 tokens short */
    cr_assert_eq(take(&b, &l, 1, 0).retry_after_s, 4);
    cr_assert_eq(take(&b, &l, 1, 500).retry_after_s, 3);
    cr_assert_eq(take(&b, &l, 1, 501).retry_after_s, 3);
}

Test(ratelimit_policy, penalty_box)
{
    policy_rl_limit_t l = { .rate_milli = 1000, .burst = 2, .penalty_after_ms = 3000, .penalty_ms = 10000 };
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 0);
    /* A request every 100 ms, 10x the rate: one in per token, still over. */
    int64_t t = 0;
    for (; t < 3200; t += 100) {
        policy_rl_result_t r = take(&b, &l, 1, t);
        cr_assert_not(r.penalized, "t=%lld", (long long)t);
        cr_assert_eq(r.admitted, t < 200 || t % 1000 == 0, "t=%lld", (long long)t);
    }
    cr_assert_eq(b.over_since_ms, 200);
    cr_assert_eq(policy_rl_state(&b, &l, t), POLICY_RL_LIMITED);
    policy_rl_result_t r = take(&b, &l, 1, t); /* 3200: over for 3 s */
    cr_assert_not(r.admitted);
    cr_assert(r.penalized);
    cr_assert_eq(r.retry_after_s, 10);
    cr_assert_eq(policy_rl_state(&b, &l, 13199), POLICY_RL_PENALIZED);
    r = take(&b, &l, 1, 13199);
    cr_assert(r.penalized);
    cr_assert_eq(r.retry_after_s, 1);
    r = take(&b, &l, 1, 13200);
    cr_assert(r.admitted, "the bucket refilled meanwhile");
    cr_assert_not(r.penalized);
    cr_assert_eq(b.over_since_ms, POLICY_RL_NEVER, "the box ended the episode");
}

Test(ratelimit_policy, penalty_spares_a_client_that_slows_down)
{
    policy_rl_limit_t l = { .rate_milli = 1000, .burst = 2, .penalty_after_ms = 3000, .penalty_ms = 10000 };
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 0);
    take(&b, &l, 2, 0);
    cr_assert_not(take(&b, &l, 1, 0).admitted); /* over from 0 */
    cr_assert(take(&b, &l, 1, 2000).admitted);  /* two tokens back: one to spare */
    cr_assert_eq(b.over_since_ms, POLICY_RL_NEVER);
    take(&b, &l, 1, 2000);
    policy_rl_result_t r = take(&b, &l, 1, 2500);
    cr_assert_not(r.admitted);
    cr_assert_not(r.penalized, "a new episode starts at 2500");
    cr_assert_eq(b.over_since_ms, 2500);
    /* Without a duration or a threshold there is no box. */
    l.penalty_ms = 0;
    policy_rl_init(&b, &l, 0);
    for (int64_t t = 0; t < 20000; t += 50)
        cr_assert_not(take(&b, &l, 1, t).penalized);
}

Test(ratelimit_policy, states)
{
    policy_rl_limit_t l = { .rate_milli = 1000, .burst = 3, .penalty_after_ms = 1, .penalty_ms = 5000 };
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 0);
    cr_assert_eq(policy_rl_state(&b, &l, 0), POLICY_RL_IDLE);
    take(&b, &l, 1, 0);
    cr_assert_eq(policy_rl_state(&b, &l, 0), POLICY_RL_ACTIVE);
    cr_assert_eq(policy_rl_state(&b, &l, 1000), POLICY_RL_IDLE, "full again: forgetting it changes nothing");
    take(&b, &l, 2, 0);
    cr_assert_eq(policy_rl_state(&b, &l, 0), POLICY_RL_LIMITED);
    take(&b, &l, 1, 0);
    take(&b, &l, 1, 1);
    cr_assert_eq(policy_rl_state(&b, &l, 1), POLICY_RL_PENALIZED);
    cr_assert_eq(policy_rl_state(&b, &l, 5001), POLICY_RL_IDLE);
}

/* Parse a field value as an RFC 8941 List: one member named name. */
static void assert_member(const char *v, const char *name, const char *k1, int64_t v1, const char *k2, int64_t v2)
{
    policy_sf_node_t nodes[16];
    policy_sf_t sf;
    policy_sf_init(&sf, nodes, 16);
    cr_assert_eq(policy_sf_parse(&sf, POLICY_SF_LIST, v, strlen(v)), 0, "%s", v);
    policy_sf_node_t *m = &nodes[sf.first];
    cr_assert_eq(m->type, POLICY_SF_STRING);
    char un[128];
    size_t ulen;
    cr_assert_eq(policy_sf_unescape(m->p, m->len, un, sizeof un, &ulen), 0);
    cr_assert_str_eq(un, name);
    int32_t p1 = policy_sf_find(&sf, m->params, k1), p2 = policy_sf_find(&sf, m->params, k2);
    cr_assert(p1 >= 0 && p2 >= 0, "%s", v);
    cr_assert_eq(nodes[p1].type, POLICY_SF_INTEGER);
    cr_assert_eq(nodes[p1].num, v1, "%s", v);
    cr_assert_eq(nodes[p2].num, v2, "%s", v);
}

Test(ratelimit_policy, ratelimit_fields)
{
    char out[POLICY_RL_FIELD_BYTES];
    policy_rl_limit_t l = lim_of(10000, 10);
    cr_assert_eq(policy_rl_policy_field("edge", &l, out, sizeof out), (int)strlen("\"edge\";q=10;w=1"));
    cr_assert_str_eq(out, "\"edge\";q=10;w=1");
    l = lim_of(1000, 60);
    policy_rl_policy_field("edge", &l, out, sizeof out);
    cr_assert_str_eq(out, "\"edge\";q=60;w=60");
    l = lim_of(500, 1); /* 0.5 r/s: an empty bucket of 1 refills in 2 s */
    policy_rl_policy_field("edge", &l, out, sizeof out);
    cr_assert_str_eq(out, "\"edge\";q=1;w=2");
    l = lim_of(3000, 10);
    policy_rl_policy_field("a\"b\\c", &l, out, sizeof out);
    cr_assert_str_eq(out, "\"a\\\"b\\\\c\";q=10;w=4");
    assert_member(out, "a\"b\\c", "q", 10, "w", 4);

    policy_rl_result_t r = { .admitted = true, .remaining = 7, .reset_s = 3 };
    policy_rl_limit_field("edge", &r, out, sizeof out);
    cr_assert_str_eq(out, "\"edge\";r=7;t=3");
    assert_member(out, "edge", "r", 7, "t", 3);

    char big[POLICY_RL_NAME_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(policy_rl_limit_field(big, &r, out, sizeof out), -EINVAL);
    big[POLICY_RL_NAME_MAX] = '\0';
    cr_assert_gt(policy_rl_limit_field(big, &r, out, sizeof out), 0, "the longest name fits");
    cr_assert_eq(policy_rl_limit_field("", &r, out, sizeof out), -EINVAL);
    cr_assert_eq(policy_rl_limit_field("a\nb", &r, out, sizeof out), -EINVAL);
    cr_assert_eq(policy_rl_limit_field("edge", &r, out, 10), -E2BIG);
    cr_assert_eq(policy_rl_limit_field("edge", &r, out, 14), -E2BIG);
    cr_assert_eq(policy_rl_limit_field("edge", &r, out, 15), 14);
}

Test(ratelimit_policy, fields_of_a_real_bucket)
{
    policy_rl_limit_t l = lim_of(2000, 4);
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 0);
    char out[POLICY_RL_FIELD_BYTES];
    policy_rl_result_t r = take(&b, &l, 1, 0);
    policy_rl_limit_field("edge", &r, out, sizeof out);
    cr_assert_str_eq(out, "\"edge\";r=3;t=1", "500 ms to full");
    take(&b, &l, 3, 0);
    r = take(&b, &l, 1, 0);
    policy_rl_limit_field("edge", &r, out, sizeof out);
    cr_assert_str_eq(out, "\"edge\";r=0;t=1");
    cr_assert_eq(r.retry_after_s, r.reset_s, "Retry-After and t name the same moment");
}

static policy_rl_key_t key_of_sa(const struct sockaddr *sa)
{
    policy_rl_addr_t a;
    policy_rl_key_t k;
    cr_assert_eq(policy_rl_addr_from_sockaddr(sa, &a), 0);
    policy_rl_key_of(&a, &k);
    return k;
}

static policy_rl_key_t key4(const char *s)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(443) };
    cr_assert_eq(inet_pton(AF_INET, s, &sin.sin_addr), 1);
    return key_of_sa((struct sockaddr *)&sin);
}

static policy_rl_key_t key6(const char *s)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
    cr_assert_eq(inet_pton(AF_INET6, s, &sin6.sin6_addr), 1);
    return key_of_sa((struct sockaddr *)&sin6);
}

static bool key_eq(policy_rl_key_t a, policy_rl_key_t b)
{
    return memcmp(a.b, b.b, 16) == 0;
}

Test(ratelimit_policy, keys)
{
    char s[POLICY_RL_KEY_STRLEN];
    policy_rl_key_t k = key4("192.0.2.1");
    cr_assert_str_eq(policy_rl_key_format(&k, s, sizeof s), "192.0.2.1");
    cr_assert_not(key_eq(k, key4("192.0.2.2")));
    cr_assert(key_eq(k, key6("::ffff:192.0.2.1")), "a mapped IPv4 peer is the IPv4 client");

    k = key6("2001:db8:1:2::1");
    cr_assert(key_eq(k, key6("2001:db8:1:2:ffff:ffff:ffff:ffff")), "one /64, one key");
    cr_assert_not(key_eq(k, key6("2001:db8:1:3::1")));
    cr_assert_not(key_eq(k, key6("2001:db8:1::1")));
    cr_assert_str_eq(policy_rl_key_format(&k, s, sizeof s), "2001:db8:1:2::/64");
    k = key6("::1");
    cr_assert_str_eq(policy_rl_key_format(&k, s, sizeof s), "::/64");
    cr_assert_not(key_eq(k, key4("0.0.0.0")));
    k = key6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    cr_assert_str_eq(policy_rl_key_format(&k, s, sizeof s), "ffff:ffff:ffff:ffff::/64");

    struct sockaddr sa = { .sa_family = AF_UNIX };
    policy_rl_addr_t a;
    cr_assert_eq(policy_rl_addr_from_sockaddr(&sa, &a), -EAFNOSUPPORT);
}

static policy_rl_addr_t addr(const char *s)
{
    policy_rl_addr_t a;
    cr_assert(policy_rl_addr_parse(s, strlen(s), &a), "%s", s);
    return a;
}

static bool in(const policy_rl_cidrs_t *l, const char *s)
{
    policy_rl_addr_t a = addr(s);
    return policy_rl_cidrs_match(l, &a);
}

static void parse_ok(policy_rl_cidrs_t *l, const char *s)
{
    char err[256] = "";
    cr_assert_eq(policy_rl_cidrs_parse(l, s, err, sizeof err), 0, "%s: %s", s, err);
}

Test(ratelimit_policy, cidr_parse_errors)
{
    static const struct {
        const char *list, *err;
    } bad[] = {
        { "10.0.0.0/8, 10.0.0.0/33", "\"10.0.0.0/33\": prefix length is not 0..32" },
        { "10.0.0.300", "\"10.0.0.300\": not an IPv4 or IPv6 address" },
        { "2001:db8::/129", "\"2001:db8::/129\": prefix length is not 0..128" },
        { "foo", "\"foo\": not an IPv4 or IPv6 address" },
        { "10.0.0.0/", "\"10.0.0.0/\": prefix length is not 0..32" },
        { "1.2.3.4/-1", "\"1.2.3.4/-1\": prefix length is not 0..32" },
        { "1.2.3.4/8x", "\"1.2.3.4/8x\": prefix length is not 0..32" },
        { "1.2.3.4/0008", "\"1.2.3.4/0008\": prefix length is not 0..32" },
        { "/8", "\"/8\": not an IPv4 or IPv6 address" },
        { "1.2.3.4:80", "\"1.2.3.4:80\": not an IPv4 or IPv6 address" },
        { "[::1]", "\"[::1]\": not an IPv4 or IPv6 address" },
        { "10.0.0.0/8;192.168.0.0/16", "\"10.0.0.0/8;192.168.0.0/16\": prefix length is not 0..32" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        policy_rl_cidrs_t l;
        char err[256] = "";
        cr_assert_eq(policy_rl_cidrs_parse(&l, bad[i].list, err, sizeof err), -EINVAL, "%s", bad[i].list);
        cr_assert_str_eq(err, bad[i].err);
        cr_assert_eq(l.n, 0);
    }
    char many[POLICY_RL_CIDRS_MAX * 16 + 32] = "";
    for (int i = 0; i <= POLICY_RL_CIDRS_MAX; i++)
        sprintf(many + strlen(many), "10.0.%d.%d ", i / 256, i % 256);
    policy_rl_cidrs_t l;
    char err[256];
    cr_assert_eq(policy_rl_cidrs_parse(&l, many, err, sizeof err), -E2BIG);
    cr_assert_str_eq(err, "more than 128 addresses or CIDRs (from \"10.0.0.128\")");
}

Test(ratelimit_policy, cidr_lists_and_matches)
{
    policy_rl_cidrs_t l;
    parse_ok(&l, "");
    cr_assert_eq(l.n, 0);
    cr_assert_not(in(&l, "10.0.0.1"));
    parse_ok(&l, " 10.0.0.0/8,192.168.1.7 ,, 2001:db8::/32\t\n");
    cr_assert_eq(l.n, 3);
    cr_assert(in(&l, "10.0.0.0"));
    cr_assert(in(&l, "10.255.255.255"));
    cr_assert_not(in(&l, "11.0.0.0"));
    cr_assert_not(in(&l, "9.255.255.255"));
    cr_assert(in(&l, "192.168.1.7"), "a bare address is a /32");
    cr_assert_not(in(&l, "192.168.1.8"));
    cr_assert(in(&l, "::ffff:10.1.2.3"), "the mapped form is the IPv4 client");
    cr_assert(in(&l, "2001:db8:ffff::1"));
    cr_assert_not(in(&l, "2001:db9::"));

    parse_ok(&l, "10.1.2.3/8"); /* host bits cleared */
    cr_assert(in(&l, "10.9.9.9"));
    parse_ok(&l, "0.0.0.0/0");
    cr_assert(in(&l, "1.2.3.4"));
    cr_assert(in(&l, "255.255.255.255"));
    cr_assert_not(in(&l, "::1"), "an IPv4 CIDR never matches IPv6");
    parse_ok(&l, "::/0");
    cr_assert(in(&l, "::1"));
    cr_assert(in(&l, "ffff::"));
    cr_assert_not(in(&l, "1.2.3.4"), "::/0 is every IPv6 client, not IPv4 ones");
    parse_ok(&l, "::ffff:10.0.0.0/104");
    cr_assert(in(&l, "10.200.0.1"));
    cr_assert_not(in(&l, "11.0.0.1"));
    parse_ok(&l, "1.2.3.4/32, 2001:db8::1/128");
    cr_assert(in(&l, "1.2.3.4"));
    cr_assert_not(in(&l, "1.2.3.5"));
    cr_assert(in(&l, "2001:db8::1"));
    cr_assert_not(in(&l, "2001:db8::2"));
    parse_ok(&l, "2001:db8:0:2::/63");
    cr_assert(in(&l, "2001:db8:0:2::"));
    cr_assert(in(&l, "2001:db8:0:3:ffff:ffff:ffff:ffff"));
    cr_assert_not(in(&l, "2001:db8:0:4::"));
    cr_assert_not(in(&l, "2001:db8:0:1:ffff:ffff:ffff:ffff"));
    parse_ok(&l, "2001:db8:0:2::/64");
    cr_assert_not(in(&l, "2001:db8:0:3::"));
    parse_ok(&l, "10.0.0.0/31 10.0.1.0/25");
    cr_assert(in(&l, "10.0.0.1"));
    cr_assert_not(in(&l, "10.0.0.2"));
    cr_assert(in(&l, "10.0.1.127"));
    cr_assert_not(in(&l, "10.0.1.128"));
}

/* The client of a request from peer with the given header lines. */
static const char *client(const char *peer, const char *trusted, http_fields_t h, bool *from_xff)
{
    static char s[INET6_ADDRSTRLEN];
    policy_rl_cidrs_t l;
    parse_ok(&l, trusted);
    policy_rl_addr_t p = addr(peer), out;
    *from_xff = policy_rl_xff_client(&p, &h, &l, &out);
    http_fields_free(&h);
    if (policy_rl_addr_is_v4(&out))
        inet_ntop(AF_INET, out.b + 12, s, sizeof s);
    else
        inet_ntop(AF_INET6, out.b, s, sizeof s);
    return s;
}

Test(ratelimit_policy, xff)
{
    bool x;
    const char *T = "10.0.0.0/8, 2001:db8:ffff::/48";
    cr_assert_str_eq(client("198.51.100.9", T, fields("X-Forwarded-For", "203.0.113.7", NULL), &x),
                     "198.51.100.9", "an untrusted peer's XFF is ignored");
    cr_assert_not(x);
    cr_assert_str_eq(client("10.0.0.1", "", fields("X-Forwarded-For", "203.0.113.7", NULL), &x), "10.0.0.1");
    cr_assert_str_eq(client("10.0.0.1", T, fields("Host", "a", NULL), &x), "10.0.0.1", "no XFF");
    cr_assert_not(x);
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "203.0.113.7", NULL), &x), "203.0.113.7");
    cr_assert(x);
    /* A chain of proxies; whatever the client wrote on the left is ignored. */
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "203.0.113.7, 10.0.0.2, 10.0.0.3", NULL), &x),
                     "203.0.113.7");
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.2", NULL), &x),
                     "203.0.113.7");
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "10.0.0.5, 10.0.0.6", NULL), &x), "10.0.0.5",
                     "all trusted: the leftmost");
    cr_assert(x);
    /* Garbage stops the walk at the last good address. */
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "203.0.113.7, unknown, 10.0.0.2", NULL), &x),
                     "10.0.0.2");
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "203.0.113.7, 1.2.3.4.5", NULL), &x), "10.0.0.1");
    cr_assert_not(x);
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "203.0.113.7 10.0.0.2", NULL), &x), "10.0.0.1",
                     "a space is not a separator");
    /* Spaces, tabs and empty members. */
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "  203.0.113.7 ,\t10.0.0.2 , , ", NULL), &x),
                     "203.0.113.7");
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "", NULL), &x), "10.0.0.1");
    /* Several lines are one list, in order; the name is case-insensitive. */
    cr_assert_str_eq(client("10.0.0.1", T,
                            fields("x-forwarded-for", "198.51.100.1", "Host", "a", "X-Forwarded-For",
                                   "10.0.0.2, 10.0.0.3", NULL),
                            &x),
                     "198.51.100.1");
    cr_assert_str_eq(client("10.0.0.1", T,
                            fields("X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "198.51.100.1, 10.0.0.3", NULL),
                            &x),
                     "198.51.100.1");
    /* Ports, brackets, IPv6 and mapped forms. */
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "203.0.113.7:5555, 10.0.0.2:80", NULL), &x),
                     "203.0.113.7");
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "[2001:db8::7]:443", NULL), &x), "2001:db8::7");
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "2001:db8::7, 2001:db8:ffff::1", NULL), &x),
                     "2001:db8::7");
    cr_assert_str_eq(client("2001:db8:ffff::2", T, fields("X-Forwarded-For", "::ffff:203.0.113.7", NULL), &x),
                     "203.0.113.7");
    cr_assert_str_eq(client("::ffff:10.0.0.1", T, fields("X-Forwarded-For", "203.0.113.7", NULL), &x), "203.0.113.7",
                     "a mapped peer is trusted by its IPv4 CIDR");
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "203.0.113.7:99999", NULL), &x), "10.0.0.1");
    cr_assert_str_eq(client("10.0.0.1", T, fields("X-Forwarded-For", "[2001:db8::7]x", NULL), &x), "10.0.0.1");
}
