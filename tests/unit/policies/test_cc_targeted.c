/* Unit tests for policy_cc_parse_targeted and its consumers: RFC 9213
 * targeted fields read as RFC 8941 Dictionaries, ignored as a whole when
 * invalid (issue 8, item 5), so that Cache-Control governs again. */
#include <criterion/criterion.h>
#include <errno.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../test_fields.h"
#include "policy_cache.h"
#include "policy_cc.h"
#include "policy_update.h"

#define CDN "CDN-Cache-Control"


/* policy_cc_parse_targeted on one CDN-Cache-Control line. */
static int targeted(const char *v, policy_cc_t *cc)
{
    http_fields_t h = fields(CDN, v, NULL);
    int rc = policy_cc_parse_targeted(cc, &h, CDN);
    http_fields_free(&h);
    return rc;
}

static void assert_reset(const policy_cc_t *cc)
{
    cr_assert_eq(cc->flags, 0);
    cr_assert_eq(cc->n_directives, 0);
    cr_assert_eq(cc->max_age, -1);
    cr_assert_eq(cc->s_maxage, -1);
    cr_assert_eq(cc->stale_while_revalidate, -1);
    cr_assert_eq(cc->stale_if_error, -1);
}

static void invalid(const char *v)
{
    policy_cc_t cc;
    cr_assert_eq(targeted(v, &cc), -EINVAL, "[%s] was accepted", v);
    assert_reset(&cc);
}

Test(cc_targeted, valid_directives)
{
    policy_cc_t cc;
    cr_assert_eq(targeted("max-age=600, s-maxage=30, stale-while-revalidate=5, stale-if-error=0", &cc), 1);
    cr_assert_eq(cc.max_age, 600);
    cr_assert_eq(cc.s_maxage, 30);
    cr_assert_eq(cc.stale_while_revalidate, 5);
    cr_assert_eq(cc.stale_if_error, 0);
    cr_assert_eq(cc.flags, 0);
    cr_assert_eq(cc.n_directives, 4);

    cr_assert_eq(targeted("no-store, public, must-revalidate;why=\"x\", proxy-revalidate, must-understand, "
                          "no-transform, immutable=?1",
                          &cc),
                 1);
    cr_assert_eq(cc.flags, POLICY_CC_NO_STORE | POLICY_CC_PUBLIC | POLICY_CC_MUST_REVALIDATE |
                               POLICY_CC_PROXY_REVALIDATE | POLICY_CC_MUST_UNDERSTAND | POLICY_CC_NO_TRANSFORM |
                               POLICY_CC_IMMUTABLE);
    cr_assert_eq(cc.max_age, -1);

    /* Unknown extensions take any value. */
    cr_assert_eq(targeted("foo=\"bar\", baz=1.5, qux=(a b), max-age=7", &cc), 1);
    cr_assert_eq(cc.max_age, 7);
    cr_assert_eq(cc.n_directives, 4);
    /* Integers saturate like delta-seconds. */
    cr_assert_eq(targeted("max-age=999999999999999", &cc), 1);
    cr_assert_eq(cc.max_age, POLICY_CC_DELTA_MAX);
}

Test(cc_targeted, field_name_lists)
{
    policy_cc_t cc;
    cr_assert_eq(targeted("no-cache=\"X-A, x-b\", private", &cc), 1);
    cr_assert_eq(cc.flags, POLICY_CC_NO_CACHE_FIELDS | POLICY_CC_PRIVATE);
    cr_assert_str_eq(cc.no_cache_fields, "x-a,x-b");
    cr_assert(policy_cc_field_listed(&cc, POLICY_CC_LIST_NO_CACHE, "X-B", 3));
    /* A list that is not field names reads as the unqualified directive. */
    cr_assert_eq(targeted("private=\"x\\\"a\"", &cc), 1);
    cr_assert_eq(cc.flags, POLICY_CC_PRIVATE);
    cr_assert_eq(targeted("private=\"\"", &cc), 1);
    cr_assert_eq(cc.flags, POLICY_CC_PRIVATE);
    cr_assert_eq(targeted("no-cache=\"a b\"", &cc), 1);
    cr_assert_eq(cc.flags, POLICY_CC_NO_CACHE);
}

/* The examples of issue 8: each makes the field count as absent. */
Test(cc_targeted, invalid_field_is_ignored_whole)
{
    invalid("max-age=10000, &&&&&");
    invalid("max-age=\"10000\""); /* a String where an Integer belongs */
    invalid("max-age=1.5");       /* a Decimal */
    invalid("no-store, max-age=1.5");
    invalid("max-age=-1");
    invalid("s-maxage=tok");
    invalid("stale-while-revalidate=?1");
    invalid("stale-if-error");    /* bare: Boolean true */
    invalid("max-age=(1)");
    invalid("no-store=?0");       /* flags must be true */
    invalid("no-store=1");
    invalid("private=1");
    invalid("no-cache=x-a");      /* a Token, not a String */
    invalid("Max-Age=60");        /* keys are lower case */
    invalid("max-age=60,");
    invalid("max-age=60;");
    invalid("max-age = 60");
    invalid("max-age=60 no-store");
}

Test(cc_targeted, repeated_keys_last_wins)
{
    policy_cc_t cc;
    cr_assert_eq(targeted("max-age=\"x\", max-age=60", &cc), 1);
    cr_assert_eq(cc.max_age, 60);
    cr_assert_eq(cc.n_directives, 1);
    invalid("max-age=60, max-age=\"x\"");
    /* Several lines are one Dictionary. */
    http_fields_t h = fields(CDN, "max-age=60", "cdn-cache-control", "no-store, max-age=30", NULL);
    cr_assert_eq(policy_cc_parse_targeted(&cc, &h, CDN), 2);
    cr_assert_eq(cc.max_age, 30);
    cr_assert(cc.flags & POLICY_CC_NO_STORE);
    http_fields_free(&h);
    h = fields(CDN, "max-age=60", CDN, "&", NULL);
    cr_assert_eq(policy_cc_parse_targeted(&cc, &h, CDN), -EINVAL);
    assert_reset(&cc);
    http_fields_free(&h);
}

Test(cc_targeted, absent_empty_and_too_big)
{
    policy_cc_t cc;
    http_fields_t h = fields("Cache-Control", "max-age=1", NULL);
    cr_assert_eq(policy_cc_parse_targeted(&cc, &h, CDN), 0);
    assert_reset(&cc);
    http_fields_free(&h);
    cr_assert_eq(targeted("", &cc), 1); /* present, but an empty Dictionary */
    cr_assert_eq(cc.n_directives, 0);

    char big[POLICY_CC_TARGETED_BYTES + 16];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "max-age=5", 9);
    cr_assert_eq(targeted(big, &cc), -E2BIG);
    assert_reset(&cc);

    char many[8 * (POLICY_CC_TARGETED_NODES + 1)];
    size_t n = 0;
    for (int i = 0; i <= POLICY_CC_TARGETED_NODES; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%sx%d", i ? "," : "", i);
    cr_assert_eq(targeted(many, &cc), -E2BIG);
    assert_reset(&cc);
}

/* Surrogate-Control is older than RFC 9213 and not a Structured Field. */
Test(cc_targeted, surrogate_control_keeps_cache_control_grammar)
{
    policy_cc_t cc;
    http_fields_t h = fields("Surrogate-Control", "max-age=60, content=\"ESI/1.0\", &&&", NULL);
    cr_assert_eq(policy_cc_parse_targeted(&cc, &h, "Surrogate-Control"), 1);
    cr_assert_eq(cc.max_age, 60);
    http_fields_free(&h);
    h = fields("Surrogate-Control", "max-age=60+30", NULL);
    cr_assert_eq(policy_cc_parse_targeted(&cc, &h, "surrogate-control"), 1);
    cr_assert(cc.flags & POLICY_CC_BAD_MAX_AGE);
    http_fields_free(&h);
}

/* ---- consumers: policy_resp_parse, policy_update_fields ---- */

static policy_resp_t resp(const policy_opts_t *o, http_fields_t h)
{
    policy_resp_t r;
    policy_resp_parse(&r, 200, &h, o);
    http_fields_free(&h);
    return r;
}

static bool storable(const policy_resp_t *r, const char **why)
{
    policy_req_t q;
    http_fields_t h = fields("Host", "x", NULL);
    policy_req_parse(&q, HTTP_GET, &h);
    http_fields_free(&h);
    return policy_storable(&q, r, NULL, why);
}

Test(cc_targeted, invalid_cdn_cache_control_falls_back_to_no_store)
{
    static const char *const bad[] = { "max-age=\"10000\"", "max-age=10000, &&&&&", "max-age=1.5" };
    const char *why;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        policy_resp_t r = resp(NULL, fields("Cache-Control", "no-store", CDN, bad[i], NULL));
        cr_assert_eq(r.flags & POLICY_RESP_TARGETED, 0, "%s", bad[i]);
        cr_assert_eq(r.targeted, -1);
        cr_assert_not(storable(&r, &why), "%s was obeyed", bad[i]);
        cr_assert_str_eq(why, "no-store");
    }
    /* The valid form still wins over Cache-Control. */
    policy_resp_t r = resp(NULL, fields("Cache-Control", "no-store", CDN, "max-age=10000", NULL));
    cr_assert(r.flags & POLICY_RESP_TARGETED);
    cr_assert(storable(&r, &why), "%s", why);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, 0), 10000);
}

Test(cc_targeted, invalid_field_gives_way_to_the_next_target_and_expires)
{
    policy_opts_t o;
    policy_opts_init(&o);
    o.targeted_cc[1] = "Surrogate-Control";
    policy_resp_t r = resp(&o, fields("Cache-Control", "max-age=5", CDN, "max-age=1.5", "Surrogate-Control",
                                      "max-age=50", NULL));
    cr_assert_eq(r.targeted, 1);
    cr_assert_eq(r.cc.max_age, 50);
    /* With no target left, Cache-Control and Expires are back. */
    r = resp(NULL, fields("Expires", "Sun, 06 Nov 1994 08:49:37 GMT", CDN, "max-age=\"60\"", NULL));
    cr_assert_eq(r.targeted, -1);
    cr_assert_neq(r.expires, -1);
    /* An empty Dictionary is no instruction either. */
    r = resp(NULL, fields("Cache-Control", "max-age=5", CDN, "", NULL));
    cr_assert_eq(r.targeted, -1);
    cr_assert_eq(r.cc.max_age, 5);
}

Test(cc_targeted, update_ignores_an_invalid_field_list)
{
    http_fields_t s = fields("X-Trace", "1", "X-User", "alice", NULL);
    http_fields_t r = fields(CDN, "no-cache=\"x-trace\", &", "Cache-Control", "private=\"x-user\"", NULL);
    http_fields_t out;
    http_fields_init(&out, 0);
    cr_assert_eq(policy_update_fields(&out, &s, &r), 0);
    cr_assert_eq(http_fields_count(&out, "X-Trace"), 1, "an invalid CDN-Cache-Control dropped a field");
    cr_assert_eq(http_fields_count(&out, "X-User"), 0);
    http_fields_free(&out);
    http_fields_free(&s);
    http_fields_free(&r);
}
