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
    /* Rate, balance at 0 ms, time of the request, Retry-After. */
    static const struct {
        uint32_t rate_milli;
        int64_t balance, at;
        uint32_t retry;
    } cases[] = {
        { 3000, 0, 0, 1 },   /* 333.3 ms to a token */
        { 3000, 0, 333, 1 }, /* 1 ms short is still a second */
        { 100, 0, 0, 10 },   /* 0.1 r/s */
        { 100, 0, 5000, 5 },
        { 100, 0, 5001, 5 },
        { 1000, ONE - 1, 0, 1 },
        { 1000, -2 * ONE - ONE / 2, 0, 4 }, /* 3.5 tokens short */
        { 1000, -2 * ONE - ONE / 2, 500, 3 },
        { 1000, -2 * ONE - ONE / 2, 501, 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        policy_rl_limit_t l = lim_of(cases[i].rate_milli, 5);
        policy_rl_bucket_t b;
        policy_rl_init(&b, &l, 0);
        b.balance = cases[i].balance;
        policy_rl_result_t r = take(&b, &l, 1, cases[i].at);
        cr_assert_not(r.admitted, "case %zu", i);
        cr_assert_eq(r.retry_after_s, cases[i].retry, "case %zu", i);
        cr_assert_eq(r.reset_s, cases[i].retry, "case %zu", i);
        cr_assert(take(&b, &l, 1, cases[i].at - 1).retry_after_s >= cases[i].retry, "a clock behind gains nothing");
    }
    policy_rl_limit_t l = lim_of(3000, 1);
    policy_rl_bucket_t b;
    policy_rl_init(&b, &l, 0);
    take(&b, &l, 1, 0);
    cr_assert(take(&b, &l, 1, 334).admitted);
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
    cr_assert_not(take(&b, &l, 1, 2500).penalized, "a new episode starts at 2500");
    cr_assert_eq(b.over_since_ms, 2500);
    l.penalty_ms = 0; /* without a duration there is no box */
    for (int64_t t = 2500; t < 20000; t += 50)
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
    static const struct {
        uint32_t rate_milli, burst;
        const char *name, *field;
    } policies[] = {
        { 10000, 10, "edge", "\"edge\";q=10;w=1" },
        { 1000, 60, "edge", "\"edge\";q=60;w=60" },
        { 500, 1, "edge", "\"edge\";q=1;w=2" }, /* 0.5 r/s: an empty bucket of 1 refills in 2 s */
        { 3000, 10, "a\"b\\c", "\"a\\\"b\\\\c\";q=10;w=4" },
    };
    char out[POLICY_RL_FIELD_BYTES];
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        policy_rl_limit_t l = lim_of(policies[i].rate_milli, policies[i].burst);
        cr_assert_eq(policy_rl_policy_field(policies[i].name, &l, out, sizeof out), (int)strlen(policies[i].field));
        cr_assert_str_eq(out, policies[i].field);
    }
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

/* The key of a peer address, through a sockaddr as the server has it. */
static policy_rl_key_t key(const char *s)
{
    struct sockaddr_storage ss = { 0 };
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    ss.ss_family = strchr(s, ':') ? AF_INET6 : AF_INET;
    cr_assert_eq(inet_pton(ss.ss_family, s, ss.ss_family == AF_INET ? (void *)&sin->sin_addr : &sin6->sin6_addr), 1);
    policy_rl_addr_t a;
    policy_rl_key_t k;
    cr_assert_eq(policy_rl_addr_from_sockaddr((struct sockaddr *)&ss, &a), 0);
    policy_rl_key_of(&a, &k);
    return k;
}

static bool same(const char *a, const char *b)
{
    policy_rl_key_t ka = key(a), kb = key(b);
    return memcmp(ka.b, kb.b, 16) == 0;
}

Test(ratelimit_policy, keys)
{
    cr_assert(same("192.0.2.1", "::ffff:192.0.2.1"), "a mapped IPv4 peer is the IPv4 client");
    cr_assert_not(same("192.0.2.1", "192.0.2.2"));
    cr_assert(same("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"), "one /64, one key");
    cr_assert_not(same("2001:db8:1:2::1", "2001:db8:1:3::1"));
    cr_assert_not(same("2001:db8:1:2::1", "2001:db8:1::1"));
    cr_assert_not(same("::1", "0.0.0.0"));
    static const char *const printed[][2] = {
        { "192.0.2.1", "192.0.2.1" },
        { "::ffff:192.0.2.1", "192.0.2.1" },
        { "2001:db8:1:2::1", "2001:db8:1:2::/64" },
        { "::1", "::/64" },
        { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff::/64" },
    };
    for (size_t i = 0; i < sizeof printed / sizeof printed[0]; i++) {
        char s[POLICY_RL_KEY_STRLEN];
        policy_rl_key_t k = key(printed[i][0]);
        cr_assert_str_eq(policy_rl_key_format(&k, s, sizeof s), printed[i][1]);
    }
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
    static const struct {
        const char *list, *addr;
        bool in;
    } cases[] = {
        { "", "10.0.0.1", false },
        { " 10.0.0.0/8,192.168.1.7 ,, 2001:db8::/32\t\n", "10.0.0.0", true },
        { "10.0.0.0/8", "10.255.255.255", true },
        { "10.0.0.0/8", "11.0.0.0", false },
        { "10.0.0.0/8", "9.255.255.255", false },
        { "10.0.0.0/8", "::ffff:10.1.2.3", true },  /* the mapped form is the IPv4 client */
        { "10.1.2.3/8", "10.9.9.9", true },         /* host bits cleared */
        { "192.168.1.7", "192.168.1.7", true },     /* a bare address is a /32 */
        { "192.168.1.7", "192.168.1.8", false },
        { "1.2.3.4/32", "1.2.3.5", false },
        { "10.0.0.0/31", "10.0.0.1", true },
        { "10.0.0.0/31", "10.0.0.2", false },
        { "10.0.1.0/25", "10.0.1.127", true },
        { "10.0.1.0/25", "10.0.1.128", false },
        { "0.0.0.0/0", "1.2.3.4", true },
        { "0.0.0.0/0", "255.255.255.255", true },
        { "0.0.0.0/0", "::1", false },              /* an IPv4 CIDR never matches IPv6 */
        { "::/0", "::1", true },
        { "::/0", "ffff::", true },
        { "::/0", "1.2.3.4", false },               /* every IPv6 client, not IPv4 ones */
        { "::ffff:10.0.0.0/104", "10.200.0.1", true },
        { "::ffff:10.0.0.0/104", "11.0.0.1", false },
        { "2001:db8::/32", "2001:db8:ffff::1", true },
        { "2001:db8::/32", "2001:db9::", false },
        { "2001:db8::1/128", "2001:db8::1", true },
        { "2001:db8::1", "2001:db8::2", false },    /* a bare address is a /128 */
        { "2001:db8:0:2::/63", "2001:db8:0:2::", true },
        { "2001:db8:0:2::/63", "2001:db8:0:3:ffff:ffff:ffff:ffff", true },
        { "2001:db8:0:2::/63", "2001:db8:0:4::", false },
        { "2001:db8:0:2::/63", "2001:db8:0:1:ffff:ffff:ffff:ffff", false },
        { "2001:db8:0:2::/64", "2001:db8:0:3::", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        policy_rl_cidrs_t l;
        parse_ok(&l, cases[i].list);
        cr_assert_eq(in(&l, cases[i].addr), cases[i].in, "%s in [%s]", cases[i].addr, cases[i].list);
    }
    policy_rl_cidrs_t l;
    parse_ok(&l, " 10.0.0.0/8,192.168.1.7 ,, 2001:db8::/32\t\n");
    cr_assert_eq(l.n, 3);
}

Test(ratelimit_policy, xff)
{
    const char *T = "10.0.0.0/8, 2001:db8:ffff::/48";
    /* peer, trusted, up to two X-Forwarded-For lines, the client. */
    static const struct {
        const char *peer, *trusted, *xff1, *xff2, *client;
    } cases[] = {
        { "198.51.100.9", NULL, "203.0.113.7", NULL, "198.51.100.9" }, /* untrusted peer: ignored */
        { "10.0.0.1", "", "203.0.113.7", NULL, "10.0.0.1" },           /* nobody trusted */
        { "10.0.0.1", NULL, NULL, NULL, "10.0.0.1" },                  /* no XFF */
        { "10.0.0.1", NULL, "", NULL, "10.0.0.1" },
        { "10.0.0.1", NULL, "203.0.113.7", NULL, "203.0.113.7" },
        /* A chain of trusted proxies; what the client wrote on the left is ignored. */
        { "10.0.0.1", NULL, "203.0.113.7, 10.0.0.2, 10.0.0.3", NULL, "203.0.113.7" },
        { "10.0.0.1", NULL, "6.6.6.6, 203.0.113.7, 10.0.0.2", NULL, "203.0.113.7" },
        { "10.0.0.1", NULL, "10.0.0.5, 10.0.0.6", NULL, "10.0.0.5" }, /* all trusted: the leftmost */
        /* Garbage stops the walk at the last good address. */
        { "10.0.0.1", NULL, "203.0.113.7, unknown, 10.0.0.2", NULL, "10.0.0.2" },
        { "10.0.0.1", NULL, "203.0.113.7, 1.2.3.4.5", NULL, "10.0.0.1" },
        { "10.0.0.1", NULL, "203.0.113.7 10.0.0.2", NULL, "10.0.0.1" }, /* a space is no separator */
        { "10.0.0.1", NULL, "203.0.113.7:99999", NULL, "10.0.0.1" },
        { "10.0.0.1", NULL, "[2001:db8::7]x", NULL, "10.0.0.1" },
        /* Spaces, tabs, empty members. */
        { "10.0.0.1", NULL, "  203.0.113.7 ,\t10.0.0.2 , , ", NULL, "203.0.113.7" },
        /* Several lines are one list, in order. */
        { "10.0.0.1", NULL, "198.51.100.1", "10.0.0.2, 10.0.0.3", "198.51.100.1" },
        { "10.0.0.1", NULL, "6.6.6.6", "198.51.100.1, 10.0.0.3", "198.51.100.1" },
        /* Ports, brackets, IPv6 and mapped forms. */
        { "10.0.0.1", NULL, "203.0.113.7:5555, 10.0.0.2:80", NULL, "203.0.113.7" },
        { "10.0.0.1", NULL, "[2001:db8::7]:443", NULL, "2001:db8::7" },
        { "10.0.0.1", NULL, "2001:db8::7, 2001:db8:ffff::1", NULL, "2001:db8::7" },
        { "2001:db8:ffff::2", NULL, "::ffff:203.0.113.7", NULL, "203.0.113.7" },
        { "::ffff:10.0.0.1", NULL, "203.0.113.7", NULL, "203.0.113.7" }, /* trusted by its IPv4 CIDR */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        policy_rl_cidrs_t l;
        parse_ok(&l, cases[i].trusted ? cases[i].trusted : T);
        http_fields_t h = fields("Host", "a", NULL);
        if (cases[i].xff1)
            http_fields_add(&h, "x-forwarded-for", 15, cases[i].xff1, strlen(cases[i].xff1));
        http_fields_add(&h, "Accept", 6, "*/*", 3);
        if (cases[i].xff2)
            http_fields_add(&h, "X-Forwarded-For", 15, cases[i].xff2, strlen(cases[i].xff2));
        policy_rl_addr_t peer = addr(cases[i].peer), out, want = addr(cases[i].client);
        bool from_xff = policy_rl_xff_client(&peer, &h, &l, &out);
        http_fields_free(&h);
        cr_assert(memcmp(out.b, want.b, 16) == 0, "case %zu: not %s", i, cases[i].client);
        cr_assert_eq(from_xff, memcmp(peer.b, want.b, 16) != 0, "case %zu", i);
    }
}
