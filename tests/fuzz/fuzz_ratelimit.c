/* Fuzz target: what rate limiting reads from outside (policy_ratelimit,
 * config_parse_rate). The first byte chooses the parser; the rest is:
 *   0: request "Name: value" lines: the client address from
 *      X-Forwarded-For behind a fixed trusted_proxies list, for a trusted
 *      and an untrusted peer (policy_rl_xff_client), and its client key;
 *   1: a rate_limit value ("20/s burst 40"; a C string, as the config
 *      reader passes it): a bucket with that limit then runs a fixed
 *      sequence of requests, and its RateLimit-Policy field must parse as
 *      the RFC 8941 List it claims to be, with q = burst;
 *   2: a trusted_proxies / allowlist value (CIDRs, a C string);
 *   3: one address, not NUL-terminated (policy_rl_addr_parse).
 * Parsed addresses print and parse back to themselves; CIDRs have their
 * host bits cleared and match their own network; an untrusted peer is
 * always its own client. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_input.h"
#include "policy_ratelimit.h"
#include "policy_sf.h"

static const char trusted_list[] = "10.0.0.0/8, 192.168.1.1 2001:db8::/32 ::ffff:172.16.0.0/108";

static void must(bool ok)
{
    if (!ok)
        abort();
}

static void check_addr(const policy_rl_addr_t *a)
{
    char s[INET6_ADDRSTRLEN];
    policy_rl_addr_t back;
    bool v4 = policy_rl_addr_is_v4(a);
    must(inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? a->b + 12 : a->b, s, sizeof s) != NULL);
    must(policy_rl_addr_parse(s, strlen(s), &back) && memcmp(back.b, a->b, 16) == 0);
    policy_rl_key_t k;
    char ks[POLICY_RL_KEY_STRLEN];
    policy_rl_key_of(a, &k);
    must(strlen(policy_rl_key_format(&k, ks, sizeof ks)) < sizeof ks);
    must(v4 ? memcmp(k.b, a->b, 16) == 0 : memcmp(k.b, a->b, 8) == 0);
}

static void xff(const uint8_t *d, size_t n)
{
    policy_rl_cidrs_t trusted;
    char err[128];
    must(policy_rl_cidrs_parse(&trusted, trusted_list, err, sizeof err) == 0);
    http_fields_t h;
    http_fields_init(&h, 0);
    fuzz_fields(&h, d, n);
    policy_rl_addr_t peer, out;
    must(policy_rl_addr_parse("203.0.113.9", 11, &peer));
    must(!policy_rl_xff_client(&peer, &h, &trusted, &out) && memcmp(out.b, peer.b, 16) == 0);
    must(policy_rl_addr_parse("10.1.2.3", 8, &peer));
    bool from = policy_rl_xff_client(&peer, &h, &trusted, &out);
    must(from || memcmp(out.b, peer.b, 16) == 0);
    must(!from || http_fields_count(&h, "X-Forwarded-For") > 0);
    check_addr(&out);
    http_fields_free(&h);
}

static void rate(const char *s)
{
    config_rate_t r;
    if (config_parse_rate(s, &r) != 0)
        return;
    if (r.rate_milli == 0) {
        must(r.burst == 0); /* off */
        return;
    }
    must(r.burst >= 1);
    policy_rl_limit_t lim = { .rate_milli = r.rate_milli, .burst = r.burst, .penalty_after_ms = 1000,
                              .penalty_ms = 5000 };
    policy_rl_bucket_t b;
    policy_rl_result_t res;
    int64_t now = 1000000;
    policy_rl_init(&b, &lim, now);
    must(policy_rl_state(&b, &lim, now) == POLICY_RL_IDLE);
    for (int i = 0; i < 64; i++, now += 7) {
        policy_rl_take(&b, &lim, 1, now, &res);
        if (res.admitted) {
            must(res.retry_after_s == 0 && res.remaining <= r.burst);
            policy_rl_charge(&b, &lim, 9, now, &res);
        } else {
            must(res.retry_after_s >= 1);
        }
        must(b.balance <= (int64_t)r.burst * POLICY_RL_ONE);
        must(policy_rl_ms_to_full(&b, &lim, now) >= 0);
    }
    char field[POLICY_RL_FIELD_BYTES];
    int len = policy_rl_policy_field("default", &lim, field, sizeof field);
    must(len > 0 && (size_t)len < sizeof field);
    char *own = fuzz_dup((const uint8_t *)field, (size_t)len);
    policy_sf_node_t nodes[8];
    policy_sf_t sf;
    policy_sf_init(&sf, nodes, 8);
    must(policy_sf_parse(&sf, POLICY_SF_LIST, own, (size_t)len) == 0 && sf.first >= 0);
    int32_t q = policy_sf_find(&sf, nodes[sf.first].params, "q"), w = policy_sf_find(&sf, nodes[sf.first].params, "w");
    must(q >= 0 && nodes[q].type == POLICY_SF_INTEGER && nodes[q].num == r.burst);
    must(w >= 0 && nodes[w].type == POLICY_SF_INTEGER && nodes[w].num >= 1);
    free(own);
    policy_rl_limit_field("default", &res, field, sizeof field);
}

static void cidrs(const char *s)
{
    policy_rl_cidrs_t list;
    char err[160];
    err[0] = '\0';
    int rc = policy_rl_cidrs_parse(&list, s, err, sizeof err);
    if (rc) {
        must((rc == -EINVAL || rc == -E2BIG) && err[0] != '\0');
        return;
    }
    must(list.n <= POLICY_RL_CIDRS_MAX);
    for (size_t i = 0; i < list.n; i++) {
        const policy_rl_cidr_t *c = &list.v[i];
        must(c->bits <= 128 && (!c->v4 || c->bits >= 96));
        /* Host bits clear. */
        for (unsigned bit = c->bits; bit < 128; bit++)
            must(!(c->net.b[bit / 8] & (0x80 >> (bit % 8))));
        if (c->v4 == policy_rl_addr_is_v4(&c->net))
            must(policy_rl_cidrs_match(&list, &c->net));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *v = fuzz_dup(data + 1, size - 1);
    char *s = fuzz_cstr(data + 1, size - 1);
    policy_rl_addr_t a;
    switch (data[0] & 3) {
    case 0:
        xff((const uint8_t *)v, size - 1);
        break;
    case 1:
        rate(s);
        break;
    case 2:
        cidrs(s);
        break;
    default:
        if (policy_rl_addr_parse(v, size - 1, &a))
            check_addr(&a);
        break;
    }
    free(s);
    free(v);
    return 0;
}
