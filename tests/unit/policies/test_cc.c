/* Unit tests for policy_cc: directive syntax, invalid and conflicting
 * values, field-name lists, merging of several lines. */
#include <criterion/criterion.h>
#include <string.h>

#include "policy_cc.h"

static policy_cc_t cc_of(const char *v)
{
    policy_cc_t cc;
    policy_cc_init(&cc);
    policy_cc_parse(&cc, v, strlen(v));
    return cc;
}

Test(cc, init_is_absent)
{
    policy_cc_t cc = cc_of("");
    cr_assert_eq(cc.flags, 0);
    cr_assert_eq(cc.n_directives, 0);
    cr_assert_eq(cc.max_age, -1);
    cr_assert_eq(cc.s_maxage, -1);
    cr_assert_eq(cc.max_stale, -1);
    cr_assert_eq(cc.min_fresh, -1);
    cr_assert_eq(cc.stale_while_revalidate, -1);
    cr_assert_eq(cc.stale_if_error, -1);
    cc = cc_of(" , ,, ");
    cr_assert_eq(cc.n_directives, 0);
}

Test(cc, boolean_directives)
{
    policy_cc_t cc = cc_of("no-store, no-cache, private, public, must-revalidate, proxy-revalidate, "
                           "must-understand, no-transform, immutable, only-if-cached");
    uint32_t all = POLICY_CC_NO_STORE | POLICY_CC_NO_CACHE | POLICY_CC_PRIVATE | POLICY_CC_PUBLIC |
                   POLICY_CC_MUST_REVALIDATE | POLICY_CC_PROXY_REVALIDATE | POLICY_CC_MUST_UNDERSTAND |
                   POLICY_CC_NO_TRANSFORM | POLICY_CC_IMMUTABLE | POLICY_CC_ONLY_IF_CACHED;
    cr_assert_eq(cc.flags, all);
    cr_assert_eq(cc.n_directives, 10);
}

Test(cc, names_case_insensitive)
{
    policy_cc_t cc = cc_of("NO-STORE, Max-Age=60, S-MaxAge=30, PuBlIc");
    cr_assert(cc.flags & POLICY_CC_NO_STORE);
    cr_assert(cc.flags & POLICY_CC_PUBLIC);
    cr_assert_eq(cc.max_age, 60);
    cr_assert_eq(cc.s_maxage, 30);
}

Test(cc, deltas)
{
    policy_cc_t cc = cc_of("max-age=60, s-maxage=120, stale-while-revalidate=30, stale-if-error=600, "
                           "min-fresh=5, max-stale=10");
    cr_assert_eq(cc.max_age, 60);
    cr_assert_eq(cc.s_maxage, 120);
    cr_assert_eq(cc.stale_while_revalidate, 30);
    cr_assert_eq(cc.stale_if_error, 600);
    cr_assert_eq(cc.min_fresh, 5);
    cr_assert_eq(cc.max_stale, 10);
    cr_assert_eq(cc.flags & POLICY_CC_BAD_ANY, 0);
    cc = cc_of("max-age=0");
    cr_assert_eq(cc.max_age, 0);
    cr_assert_eq(cc.flags, 0);
    cc = cc_of("max-age=007");
    cr_assert_eq(cc.max_age, 7);
}

Test(cc, quoted_values_and_whitespace)
{
    policy_cc_t cc = cc_of("max-age=\"60\"");
    cr_assert_eq(cc.max_age, 60);
    cr_assert_eq(cc.flags, 0);
    cc = cc_of("  max-age = 60 ,\tpublic\t, s-maxage= \"5\"  ");
    cr_assert_eq(cc.max_age, 60);
    cr_assert_eq(cc.s_maxage, 5);
    cr_assert(cc.flags & POLICY_CC_PUBLIC);
    cr_assert_eq(cc.flags & POLICY_CC_BAD_ANY, 0);
}

Test(cc, huge_values_saturate)
{
    policy_cc_t cc = cc_of("max-age=99999999999999999999999999999999, s-maxage=2147483648, min-fresh=2147483647");
    cr_assert_eq(cc.max_age, POLICY_CC_DELTA_MAX);
    cr_assert_eq(cc.s_maxage, POLICY_CC_DELTA_MAX);
    cr_assert_eq(cc.min_fresh, 2147483647);
    cr_assert_eq(cc.flags & POLICY_CC_BAD_ANY, 0);
}

Test(cc, invalid_max_age_reads_zero)
{
    const char *bad[] = { "max-age=-1",  "max-age=abc",  "max-age=",     "max-age",     "max-age=\"\"",
                          "max-age=1.5", "max-age=+5",   "max-age=5s",   "max-age=5 6", "max-age=\"5",
                          "max-age=0x10", "max-age=\"5\"x", "max-age=\"\\5\"", "max-age==5" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        policy_cc_t cc = cc_of(bad[i]);
        cr_assert(cc.flags & POLICY_CC_BAD_MAX_AGE, "%s", bad[i]);
        cr_assert_eq(cc.max_age, 0, "%s", bad[i]);
    }
}

Test(cc, invalid_other_deltas_most_restrictive)
{
    policy_cc_t cc = cc_of("s-maxage=x, min-fresh=-3, stale-while-revalidate=, stale-if-error=abc, max-stale=-1");
    cr_assert(cc.flags & POLICY_CC_BAD_S_MAXAGE);
    cr_assert_eq(cc.s_maxage, 0);
    cr_assert(cc.flags & POLICY_CC_BAD_MIN_FRESH);
    cr_assert_eq(cc.min_fresh, POLICY_CC_DELTA_MAX);
    cr_assert(cc.flags & POLICY_CC_BAD_SWR);
    cr_assert_eq(cc.stale_while_revalidate, -1);
    cr_assert(cc.flags & POLICY_CC_BAD_SIE);
    cr_assert_eq(cc.stale_if_error, -1);
    cr_assert(cc.flags & POLICY_CC_BAD_MAX_STALE);
    cr_assert_eq(cc.max_stale, -1);
    cr_assert_eq(cc.flags & POLICY_CC_MAX_STALE_ANY, 0);
}

Test(cc, repeated_same_value_is_fine)
{
    policy_cc_t cc = cc_of("max-age=60, max-age=60, max-age=\"60\"");
    cr_assert_eq(cc.max_age, 60);
    cr_assert_eq(cc.flags, 0);
}

Test(cc, conflicting_duplicates_are_bad)
{
    policy_cc_t cc = cc_of("max-age=60, max-age=120");
    cr_assert(cc.flags & POLICY_CC_BAD_MAX_AGE);
    cr_assert_eq(cc.max_age, 0);
    /* once bad, stays bad, even if a later value matches the first */
    cc = cc_of("max-age=60, max-age=120, max-age=60");
    cr_assert(cc.flags & POLICY_CC_BAD_MAX_AGE);
    cr_assert_eq(cc.max_age, 0);
    /* a valid value after an invalid one does not rescue it */
    cc = cc_of("max-age=abc, max-age=60");
    cr_assert(cc.flags & POLICY_CC_BAD_MAX_AGE);
    cr_assert_eq(cc.max_age, 0);
    cc = cc_of("s-maxage=1, s-maxage=2");
    cr_assert(cc.flags & POLICY_CC_BAD_S_MAXAGE);
    cr_assert_eq(cc.s_maxage, 0);
    cc = cc_of("min-fresh=1, min-fresh=2");
    cr_assert_eq(cc.min_fresh, POLICY_CC_DELTA_MAX);
}

Test(cc, merging_lines)
{
    policy_cc_t cc;
    policy_cc_init(&cc);
    policy_cc_parse(&cc, "public", 6);
    policy_cc_parse(&cc, "max-age=60", 10);
    cr_assert(cc.flags & POLICY_CC_PUBLIC);
    cr_assert_eq(cc.max_age, 60);
    cr_assert_eq(cc.n_directives, 2);
    policy_cc_parse(&cc, "max-age=30", 10);
    cr_assert(cc.flags & POLICY_CC_BAD_MAX_AGE);
    cr_assert_eq(cc.max_age, 0);
}

Test(cc, parse_fields_all_lines)
{
    http_fields_t h;
    http_fields_init(&h, 0);
    http_fields_add(&h, "Cache-Control", 13, "public", 6);
    http_fields_add(&h, "Content-Type", 12, "text/plain", 10);
    http_fields_add(&h, "cache-control", 13, "max-age=5", 9);
    policy_cc_t cc;
    policy_cc_init(&cc);
    cr_assert_eq(policy_cc_parse_fields(&cc, &h, "Cache-Control"), 2);
    cr_assert(cc.flags & POLICY_CC_PUBLIC);
    cr_assert_eq(cc.max_age, 5);
    policy_cc_t none;
    policy_cc_init(&none);
    cr_assert_eq(policy_cc_parse_fields(&none, &h, "CDN-Cache-Control"), 0);
    cr_assert_eq(none.n_directives, 0);
    http_fields_free(&h);
}

Test(cc, unknown_directives_ignored)
{
    policy_cc_t cc = cc_of("foo, bar=baz, x-ext=\"q\", max-age=5, community=\"UCI\"");
    cr_assert_eq(cc.max_age, 5);
    cr_assert_eq(cc.flags, 0);
    cr_assert_eq(cc.n_directives, 5);
}

Test(cc, quoted_commas_do_not_split)
{
    policy_cc_t cc = cc_of("foo=\"a,b\", max-age=5");
    cr_assert_eq(cc.max_age, 5);
    cr_assert_eq(cc.flags, 0);
    cc = cc_of("foo=\"a, no-store, b\", max-age=5");
    cr_assert_eq(cc.flags & POLICY_CC_NO_STORE, 0);
    cr_assert_eq(cc.max_age, 5);
    cc = cc_of("foo=\"a\\\",b\", public");
    cr_assert(cc.flags & POLICY_CC_PUBLIC);
}

Test(cc, junk_resynchronises)
{
    /* junk inside one item must not hide the next one */
    policy_cc_t cc = cc_of("max-age=5 junk \"x,y\" more, no-store");
    cr_assert(cc.flags & POLICY_CC_NO_STORE);
    cr_assert(cc.flags & POLICY_CC_BAD_MAX_AGE);
    cc = cc_of("=5, ;;, \"lone\", private");
    cr_assert(cc.flags & POLICY_CC_PRIVATE);
    cc = cc_of("foo=\"unterminated, no-store");
    cr_assert_eq(cc.flags & POLICY_CC_NO_STORE, 0); /* swallowed by the open quote */
    cc = cc_of("no-store; max-age=5");
    cr_assert(cc.flags & POLICY_CC_NO_STORE);
    cr_assert_eq(cc.max_age, -1);
}

Test(cc, boolean_with_argument_still_applies)
{
    policy_cc_t cc = cc_of("no-store=1, must-revalidate=\"x\"");
    cr_assert(cc.flags & POLICY_CC_NO_STORE);
    cr_assert(cc.flags & POLICY_CC_MUST_REVALIDATE);
}

Test(cc, max_stale_any)
{
    policy_cc_t cc = cc_of("max-stale");
    cr_assert(cc.flags & POLICY_CC_MAX_STALE_ANY);
    cr_assert_eq(cc.max_stale, POLICY_CC_STALE_ANY);
    cc = cc_of("max-stale, max-stale");
    cr_assert(cc.flags & POLICY_CC_MAX_STALE_ANY);
    cc = cc_of("max-stale=30");
    cr_assert_eq(cc.flags, 0);
    cr_assert_eq(cc.max_stale, 30);
    cc = cc_of("max-stale, max-stale=30");
    cr_assert(cc.flags & POLICY_CC_BAD_MAX_STALE);
    cr_assert_eq(cc.flags & POLICY_CC_MAX_STALE_ANY, 0);
    cr_assert_eq(cc.max_stale, -1);
}

Test(cc, no_cache_field_list)
{
    policy_cc_t cc = cc_of("no-cache=\"Set-Cookie, X-Foo\", max-age=60");
    cr_assert(cc.flags & POLICY_CC_NO_CACHE_FIELDS);
    cr_assert_eq(cc.flags & POLICY_CC_NO_CACHE, 0);
    cr_assert_str_eq(cc.no_cache_fields, "set-cookie,x-foo");
    cr_assert(policy_cc_field_listed(&cc, POLICY_CC_LIST_NO_CACHE, "set-cookie", 10));
    cr_assert(policy_cc_field_listed(&cc, POLICY_CC_LIST_NO_CACHE, "X-FOO", 5));
    cr_assert_not(policy_cc_field_listed(&cc, POLICY_CC_LIST_NO_CACHE, "X-Fo", 4));
    cr_assert_not(policy_cc_field_listed(&cc, POLICY_CC_LIST_NO_CACHE, "X-Foo2", 6));
    cr_assert_not(policy_cc_field_listed(&cc, POLICY_CC_LIST_NO_CACHE, "", 0));
    cr_assert_not(policy_cc_field_listed(&cc, POLICY_CC_LIST_PRIVATE, "X-Foo", 5));
    cr_assert_eq(cc.max_age, 60);
}

Test(cc, private_field_list_token_form_and_merge)
{
    policy_cc_t cc = cc_of("private=X-User");
    cr_assert(cc.flags & POLICY_CC_PRIVATE_FIELDS);
    cr_assert_eq(cc.flags & POLICY_CC_PRIVATE, 0);
    policy_cc_parse(&cc, "private=\"X-Other\"", 17);
    cr_assert_str_eq(cc.private_fields, "x-user,x-other");
    cr_assert(policy_cc_field_listed(&cc, POLICY_CC_LIST_PRIVATE, "x-other", 7));
}

Test(cc, field_list_fallbacks_to_unqualified)
{
    policy_cc_t cc = cc_of("no-cache=\"\"");
    cr_assert(cc.flags & POLICY_CC_NO_CACHE);
    cc = cc_of("private=\" , \"");
    cr_assert(cc.flags & POLICY_CC_PRIVATE);
    cc = cc_of("private=\"a b\"");
    cr_assert(cc.flags & POLICY_CC_PRIVATE);
    cc = cc_of("no-cache=\"a\\\"b\"");
    cr_assert(cc.flags & POLICY_CC_NO_CACHE);
    cc = cc_of("no-cache=\"unterminated");
    cr_assert(cc.flags & POLICY_CC_NO_CACHE);
    /* a list too long to keep becomes the unqualified directive */
    char big[600] = "private=\"";
    for (int i = 0; i < 40; i++)
        strcat(big, "x-some-header,");
    strcat(big, "x-last\"");
    cc = cc_of(big);
    cr_assert(cc.flags & POLICY_CC_PRIVATE);
    cr_assert_lt(strlen(cc.private_fields), POLICY_CC_LIST_BYTES);
}

Test(cc, qualified_and_bare_together)
{
    policy_cc_t cc = cc_of("no-cache=\"X-A\", no-cache");
    cr_assert(cc.flags & POLICY_CC_NO_CACHE);
    cr_assert(cc.flags & POLICY_CC_NO_CACHE_FIELDS);
}

Test(cc, delta_helper)
{
    cr_assert_eq(policy_cc_delta("0", 1), 0);
    cr_assert_eq(policy_cc_delta("123", 3), 123);
    cr_assert_eq(policy_cc_delta("123", 2), 12);
    cr_assert_eq(policy_cc_delta("", 0), -1);
    cr_assert_eq(policy_cc_delta(" 1", 2), -1);
    cr_assert_eq(policy_cc_delta("-1", 2), -1);
    cr_assert_eq(policy_cc_delta("2147483649", 10), POLICY_CC_DELTA_MAX);
    cr_assert_eq(policy_cc_delta("9999999999999999999999999", 25), POLICY_CC_DELTA_MAX);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

Test(cc, random_values_keep_invariants)
{
    static const char *const parts[] = { "max-age", "s-maxage", "max-stale", "min-fresh", "no-cache", "private",
                                         "no-store", "stale-if-error", "=", "\"", ",", " ", "\\", "5", "60",
                                         "-1", "x-foo", "99999999999", ";", "\t", "X-A, X-B" };
    uint32_t seed = 7;
    for (int n = 0; n < 20000; n++) {
        char v[512];
        size_t len = 0;
        for (int m = (int)(lcg(&seed) % 24); m > 0; m--) {
            const char *p = parts[lcg(&seed) % (sizeof parts / sizeof parts[0])];
            memcpy(v + len, p, strlen(p));
            len += strlen(p);
        }
        policy_cc_t cc;
        policy_cc_init(&cc);
        policy_cc_parse(&cc, v, len);
        cr_assert_leq(cc.n_directives, len);
        cr_assert_lt(strlen(cc.no_cache_fields), POLICY_CC_LIST_BYTES);
        cr_assert_lt(strlen(cc.private_fields), POLICY_CC_LIST_BYTES);
        if (cc.flags & POLICY_CC_BAD_MAX_AGE)
            cr_assert_eq(cc.max_age, 0);
        if (cc.flags & POLICY_CC_BAD_S_MAXAGE)
            cr_assert_eq(cc.s_maxage, 0);
        cr_assert_eq(!!(cc.flags & POLICY_CC_MAX_STALE_ANY), cc.max_stale == POLICY_CC_STALE_ANY);
        cr_assert(cc.max_age >= -1 && cc.max_age <= POLICY_CC_DELTA_MAX);
        cr_assert(cc.s_maxage >= -1 && cc.s_maxage <= POLICY_CC_DELTA_MAX);
        cr_assert(cc.min_fresh >= -1 && cc.min_fresh <= POLICY_CC_DELTA_MAX);
    }
}
