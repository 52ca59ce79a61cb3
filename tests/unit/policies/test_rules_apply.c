/* Unit tests for policy_rules, applied: how a rule changes storability,
 * the stored entry and the cache key. */
#include "test_rules_util.h"
#include "../test_fields.h"



/* Response parsed with the rule's options. */
static policy_resp_t resp(const policy_rule_t *r, int status, http_fields_t h)
{
    policy_opts_t o;
    policy_resp_t out;
    policy_rule_opts(r, &o);
    policy_resp_parse(&out, status, &h, &o);
    http_fields_free(&h);
    return out;
}

static policy_req_t req(http_fields_t h)
{
    policy_req_t q;
    policy_req_parse(&q, HTTP_GET, &h);
    http_fields_free(&h);
    return q;
}

static const char *storable(const policy_rule_t *r, const policy_req_t *q, const policy_resp_t *p)
{
    const char *why = "unset";
    bool ok = policy_rule_storable(r, q, p, NULL, &why);
    cr_assert_eq(ok, why == NULL);
    return ok ? "stored" : why;
}

static policy_entry_t entry(const policy_rule_t *r, const policy_resp_t *p)
{
    policy_opts_t o;
    policy_entry_t e;
    policy_rule_opts(r, &o);
    policy_entry_init(&e, p, &o, T0, T0);
    policy_rule_entry(r, p, &e);
    return e;
}

/* Storability reason / lifetime of a response parsed with the rule's options. */
static const char *why(const policy_rule_t *r, const policy_req_t *q, int status, http_fields_t h)
{
    policy_resp_t p = resp(r, status, h);
    return storable(r, q, &p);
}

static int64_t life(const policy_rule_t *r, int status, http_fields_t h)
{
    policy_resp_t p = resp(r, status, h);
    return entry(r, &p).freshness_lifetime;
}

Test(rule_apply, opts)
{
    policy_opts_t o, d;
    policy_opts_init(&d);
    policy_rule_opts(NULL, &o);
    cr_assert_eq(memcmp(&o, &d, sizeof o), 0);
    policy_rule_t r = rule("*");
    set(&r, "heuristic_max", "2h");
    set(&r, "store_set_cookie", "on");
    set(&r, "stale_with_s_maxage", "on");
    set(&r, "cdn_cache_control", "ignore");
    policy_rule_opts(&r, &o);
    cr_assert_eq(o.heuristic_max, 7200);
    cr_assert(o.store_cookies);
    cr_assert(o.stale_with_s_maxage);
    cr_assert_null(o.targeted_cc[0]);
    set(&r, "cdn_cache_control", "honour");
    policy_rule_opts(&r, &o);
    cr_assert_str_eq(o.targeted_cc[0], "CDN-Cache-Control");
}

Test(rule_apply, cdn_cache_control_ignore_and_heuristic_max)
{
    policy_rule_t r = rule("*");
    cr_assert_eq(life(&r, 200, fields("Cache-Control", "max-age=10", "CDN-Cache-Control", "max-age=600", NULL)), 600);
    set(&r, "cdn_cache_control", "ignore");
    cr_assert_eq(life(&r, 200, fields("Cache-Control", "max-age=10", "CDN-Cache-Control", "max-age=600", NULL)), 10);
    set(&r, "heuristic_max", "100s");
    cr_assert_eq(life(&r, 200, fields("Date", D_T0, "Last-Modified", D_T0_M10000, NULL)), 100);
}

Test(rule_apply, default_ttl_replaces_the_heuristic_only)
{
    policy_rule_t r = rule("*");
    set(&r, "default_ttl", "1h");
    policy_req_t q = req(fields(NULL));
    /* heuristic (Last-Modified) and no validator at all: default_ttl */
    policy_resp_t p = resp(&r, 200, fields("Date", D_T0, "Last-Modified", D_T0_M10000, NULL));
    policy_entry_t e = entry(&r, &p);
    cr_assert_eq(e.freshness_lifetime, 3600);
    cr_assert_not(e.flags & POLICY_ENTRY_HEURISTIC);
    p = resp(&r, 404, fields("Date", D_T0, NULL));
    cr_assert_eq(entry(&r, &p).freshness_lifetime, 3600);
    cr_assert_str_eq(storable(&r, &q, &p), "stored");
    /* explicit freshness wins, even 0 and invalid ones */
    cr_assert_eq(life(&r, 200, fields("Cache-Control", "max-age=60", NULL)), 60);
    cr_assert_eq(life(&r, 200, fields("Cache-Control", "max-age=0", NULL)), 0);
    cr_assert_eq(life(&r, 200, fields("Cache-Control", "max-age=x", NULL)), 0);
    cr_assert_eq(life(&r, 200, fields("Expires", "0", NULL)), 0);
    cr_assert_eq(life(&r, 200, fields("CDN-Cache-Control", "max-age=5", NULL)), 5);
    /* not heuristically cacheable: still not storable */
    cr_assert_str_eq(why(&r, &q, 302, fields("Date", D_T0, NULL)), "no-freshness");
    /* no rule: the heuristic */
    cr_assert_eq(life(NULL, 200, fields("Date", D_T0, "Last-Modified", D_T0_M10000, NULL)), 1000);
}

Test(rule_apply, min_max_clamp)
{
    policy_rule_t r = rule("*");
    set(&r, "min_ttl", "30s");
    set(&r, "max_ttl", "1h");
    policy_req_t q = req(fields(NULL));
    cr_assert_eq(life(&r, 200, fields("Cache-Control", "max-age=5", NULL)), 30);
    cr_assert_eq(life(&r, 200, fields("Cache-Control", "max-age=86400", NULL)), 3600);
    cr_assert_eq(life(&r, 200, fields("Cache-Control", "max-age=600", NULL)), 600);
    /* min_ttl never makes a response storable */
    cr_assert_str_eq(why(&r, &q, 200, fields("Cache-Control", "no-store", NULL)), "no-store");
    cr_assert_str_eq(why(&r, &q, 500, fields(NULL)), "no-freshness");
    /* and no-cache still means revalidate on every use */
    policy_resp_t p = resp(&r, 200, fields("Cache-Control", "no-cache", NULL));
    policy_entry_t e = entry(&r, &p);
    cr_assert_eq(e.freshness_lifetime, 30);
    cr_assert_eq(policy_entry_check(&e, NULL, T0 + 1, NULL, NULL), POLICY_VERDICT_STALE);
}

Test(rule_apply, override)
{
    policy_rule_t r = rule("*");
    set(&r, "origin_cache_control", "override");
    set(&r, "default_ttl", "10m");
    cr_assert_eq(config_rule_finish(&r, err, sizeof err), 0);
    policy_req_t q = req(fields(NULL));
    static const char *const cc[] = { "no-store", "private", "no-cache", "max-age=0, must-revalidate",
                                      "s-maxage=5", "max-age=x" };
    for (size_t i = 0; i < sizeof cc / sizeof cc[0]; i++) {
        policy_resp_t p = resp(&r, 200, fields("Cache-Control", cc[i], "Expires", "0", NULL));
        cr_assert_str_eq(storable(&r, &q, &p), "stored", "%s", cc[i]);
        policy_entry_t e = entry(&r, &p);
        cr_assert_eq(e.freshness_lifetime, 600, "%s", cc[i]);
        cr_assert_eq(policy_entry_check(&e, NULL, T0 + 599, NULL, NULL), POLICY_VERDICT_FRESH, "%s", cc[i]);
        cr_assert_eq(policy_entry_check(&e, NULL, T0 + 600, NULL, NULL), POLICY_VERDICT_STALE, "%s", cc[i]);
    }
    policy_resp_t p = resp(&r, 200, fields("CDN-Cache-Control", "no-store", NULL));
    cr_assert_str_eq(storable(&r, &q, &p), "stored");

    /* what override never stores */
    cr_assert_str_eq(why(&r, &q, 200, fields("Vary", "*", NULL)), "vary-star");
    cr_assert_str_eq(why(&r, &q, 200, fields("Set-Cookie", "a=1", NULL)), "set-cookie");
    cr_assert_str_eq(why(&r, &q, 206, fields(NULL)), "partial");
    cr_assert_str_eq(why(&r, &q, 304, fields(NULL)), "not-modified");
    policy_req_t auth = req(fields("Authorization", "Basic x", NULL));
    cr_assert_str_eq(why(&r, &auth, 200, fields(NULL)), "authorization");
    p = resp(&r, 200, fields("Cache-Control", "public", NULL));
    cr_assert_str_eq(storable(&r, &auth, &p), "stored");
    policy_req_t nostore = req(fields("Cache-Control", "no-store", NULL));
    cr_assert_str_eq(storable(&r, &nostore, &p), "req-no-store");
    /* statuses that are not heuristically cacheable keep the origin's word */
    cr_assert_str_eq(why(&r, &q, 302, fields("Cache-Control", "private", NULL)), "private");
    p = resp(&r, 302, fields("Cache-Control", "max-age=30", NULL));
    cr_assert_str_eq(storable(&r, &q, &p), "stored");
    cr_assert_eq(entry(&r, &p).freshness_lifetime, 30);
    cr_assert_str_eq(why(&r, &q, 500, fields(NULL)), "no-freshness");

    set(&r, "store_set_cookie", "on");
    cr_assert_str_eq(why(&r, &q, 200, fields("Set-Cookie", "a=1", NULL)), "stored");
}

Test(rule_apply, override_with_clamp_and_stale)
{
    policy_rule_t r = rule("*");
    set(&r, "origin_cache_control", "override");
    set(&r, "default_ttl", "1h");
    set(&r, "stale_while_revalidate", "30s");
    policy_resp_t p = resp(&r, 200, fields("Cache-Control", "max-age=5, must-revalidate, stale-if-error=99", NULL));
    policy_entry_t e = entry(&r, &p);
    cr_assert_eq(e.freshness_lifetime, 3600);
    cr_assert_eq(e.stale_while_revalidate, 30);
    cr_assert_eq(e.stale_if_error, -1); /* the origin's window is ignored too */
    cr_assert_not(e.flags & POLICY_ENTRY_NO_STALE);
    cr_assert_eq(policy_entry_check(&e, NULL, T0 + 3610, NULL, NULL), POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK);
}

Test(rule_apply, stale_windows)
{
    policy_rule_t r = rule("*");
    set(&r, "stale_while_revalidate", "30s");
    set(&r, "stale_if_error", "1h");
    /* the origin gives none: the rule's */
    policy_resp_t p = resp(&r, 200, fields("Cache-Control", "max-age=60", NULL));
    policy_entry_t e = entry(&r, &p);
    cr_assert_eq(e.stale_while_revalidate, 30);
    cr_assert_eq(e.stale_if_error, 3600);
    cr_assert_eq(policy_entry_check(&e, NULL, T0 + 70, NULL, NULL), POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK);
    cr_assert_eq(policy_entry_check(&e, NULL, T0 + 100, NULL, NULL), POLICY_VERDICT_STALE_IF_ERROR_OK);
    /* the origin's own win, per directive; an invalid one counts as none */
    p = resp(&r, 200, fields("Cache-Control", "max-age=60, stale-while-revalidate=5", NULL));
    e = entry(&r, &p);
    cr_assert_eq(e.stale_while_revalidate, 5);
    cr_assert_eq(e.stale_if_error, 3600);
    p = resp(&r, 200, fields("Cache-Control", "max-age=60, stale-while-revalidate=x", NULL));
    cr_assert_eq(entry(&r, &p).stale_while_revalidate, 30);
    /* never when the origin forbids stale */
    static const char *const hard[] = { "max-age=60, must-revalidate", "max-age=60, proxy-revalidate", "no-cache",
                                        "s-maxage=60" };
    for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++) {
        p = resp(&r, 200, fields("Cache-Control", hard[i], NULL));
        e = entry(&r, &p);
        cr_assert_eq(e.stale_while_revalidate, -1, "%s", hard[i]);
        cr_assert_eq(e.stale_if_error, -1, "%s", hard[i]);
    }
    /* s-maxage: only with stale_with_s_maxage */
    set(&r, "stale_with_s_maxage", "on");
    p = resp(&r, 200, fields("Cache-Control", "s-maxage=60", NULL));
    e = entry(&r, &p);
    cr_assert_eq(e.stale_while_revalidate, 30);
    p = resp(&r, 200, fields("Cache-Control", "s-maxage=60, stale-if-error=7", NULL));
    e = entry(&r, &p);
    cr_assert_eq(e.stale_if_error, 7);
    p = resp(&r, 200, fields("Cache-Control", "s-maxage=60, must-revalidate", NULL));
    cr_assert_eq(entry(&r, &p).stale_while_revalidate, -1);
}

Test(rule_apply, no_rule_changes_nothing)
{
    policy_resp_t p = resp(NULL, 200, fields("Cache-Control", "max-age=60, stale-while-revalidate=5", NULL));
    policy_entry_t a, b;
    policy_entry_init(&a, &p, NULL, T0, T0);
    b = a;
    policy_rule_entry(NULL, &p, &b);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
    /* nor does a rule of defaults */
    policy_rule_t r = rule("*");
    b = a;
    policy_rule_entry(&r, &p, &b);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
}

Test(rule_apply, bypass)
{
    policy_rule_t r = rule("*");
    http_fields_t with = fields("Cookie", "a=1", NULL), without = fields("Accept", "*/*", NULL);
    cr_assert_not(policy_rule_bypass(&r, &with));
    set(&r, "cookie", "bypass");
    cr_assert(policy_rule_bypass(&r, &with));
    cr_assert_not(policy_rule_bypass(&r, &without));
    cr_assert_not(policy_rule_bypass(NULL, &with));
    http_fields_free(&with);
    http_fields_free(&without);
}

Test(rule_apply, key_opts)
{
    policy_rule_t r = rule("*");
    set(&r, "query", "drop utm_* fbclid");
    policy_key_opts_t ko;
    policy_rule_key_opts(&r, &ko);
    cr_assert_eq(ko.query, POLICY_QUERY_DROP);
    cr_assert_eq(ko.n_params, 2);
    cr_assert_eq(ko.params[0], r.params[0]);
    buf_t b;
    buf_init(&b, 0);
    const char *t = "/p?utm_source=x&b=2&fbclid=1&a=1";
    cr_assert_eq(policy_cache_key_opts(&b, &ko, "http", "h", 1, t, strlen(t)), 0);
    cr_assert_str_eq(b.data, "http://h/p?a=1&b=2");
    policy_rule_key_opts(NULL, &ko);
    cr_assert_eq(ko.query, POLICY_QUERY_ALL);
    cr_assert_eq(ko.n_params, 0);
    buf_free(&b);
}
