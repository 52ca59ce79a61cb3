/* Unit tests for policy_cond: If-None-Match (lists, "*", weak tags,
 * commas inside tags), If-Modified-Since (garbage, precedence, the Date
 * fallback), If-Match / If-Unmodified-Since forwarding, 304 fields and
 * entity-tag comparison. */
#include <criterion/criterion.h>
#include <llhttp.h>
#include <stdarg.h>
#include <string.h>

#include "policy_cond.h"

#define T0 INT64_C(784111777) /* Sun, 06 Nov 1994 08:49:37 GMT */
#define D_T0 "Sun, 06 Nov 1994 08:49:37 GMT"
#define D_T0_M1 "Sun, 06 Nov 1994 08:49:36 GMT"
#define D_T0_P1 "Sun, 06 Nov 1994 08:49:38 GMT"

static policy_cond_result_t eval_m(int method, const char *etag, int64_t lm, int64_t date, ...)
{
    http_fields_t h;
    va_list ap;
    http_fields_init(&h, 0);
    va_start(ap, date);
    for (const char *n; (n = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        cr_assert_eq(http_fields_add(&h, n, strlen(n), v, strlen(v)), 0);
    }
    va_end(ap);
    policy_cond_result_t r = policy_cond_eval(&h, method, etag, lm, date);
    http_fields_free(&h);
    return r;
}

#define EVAL(etag, lm, ...) eval_m(HTTP_GET, etag, lm, T0, __VA_ARGS__)
#define NM POLICY_COND_NOT_MODIFIED
#define SERVE POLICY_COND_SERVE
#define FWD POLICY_COND_FORWARD

Test(cond, none)
{
    cr_assert_eq(EVAL("\"a\"", T0, NULL), SERVE);
    cr_assert_eq(EVAL(NULL, -1, "Accept", "*/*", NULL), SERVE);
}

Test(cond, if_none_match_weak_comparison)
{
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "\"a\"", NULL), NM);
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "W/\"a\"", NULL), NM);
    cr_assert_eq(EVAL("W/\"a\"", -1, "If-None-Match", "\"a\"", NULL), NM);
    cr_assert_eq(EVAL("W/\"a\"", -1, "If-None-Match", "W/\"a\"", NULL), NM);
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "\"b\"", NULL), SERVE);
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "\"A\"", NULL), SERVE);
    cr_assert_eq(EVAL(NULL, -1, "If-None-Match", "\"a\"", NULL), SERVE);
}

Test(cond, if_none_match_lists)
{
    cr_assert_eq(EVAL("\"c\"", -1, "If-None-Match", "\"a\", \"b\" ,\"c\"", NULL), NM);
    cr_assert_eq(EVAL("\"c\"", -1, "If-None-Match", "\"a\",,W/\"c\"", NULL), NM);
    cr_assert_eq(EVAL("\"c\"", -1, "If-None-Match", "\"a\"", "If-None-Match", "\"c\"", NULL), NM);
    cr_assert_eq(EVAL("\"d\"", -1, "If-None-Match", "\"a\", \"b\", \"c\"", NULL), SERVE);
    /* a comma inside an opaque-tag does not split it */
    cr_assert_eq(EVAL("\"a,b\"", -1, "If-None-Match", "\"x\", \"a,b\"", NULL), NM);
    cr_assert_eq(EVAL("\"b\"", -1, "If-None-Match", "\"a,b\"", NULL), SERVE);
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "\"a,b\"", NULL), SERVE);
    /* malformed members match nothing, the valid ones still count */
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "a", NULL), SERVE);
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "junk, \"a\"", NULL), NM);
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "\"a\" junk", NULL), SERVE);
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "\"a", NULL), SERVE);
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "w/\"a\"", NULL), SERVE);
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "", NULL), SERVE);
}

Test(cond, if_none_match_star)
{
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "*", NULL), NM);
    cr_assert_eq(EVAL(NULL, -1, "If-None-Match", " * ", NULL), NM);
    /* "*" is only valid alone */
    cr_assert_eq(EVAL("\"a\"", -1, "If-None-Match", "\"b\", *", NULL), SERVE);
}

Test(cond, inm_takes_precedence_over_ims)
{
    /* tags differ: SERVE although IMS alone would say 304 */
    cr_assert_eq(EVAL("\"a\"", T0 - 100, "If-None-Match", "\"b\"", "If-Modified-Since", D_T0, NULL), SERVE);
    /* tags match: 304 although IMS alone would say serve */
    cr_assert_eq(EVAL("\"a\"", T0 + 100, "If-None-Match", "\"a\"", "If-Modified-Since", D_T0, NULL), NM);
}

Test(cond, if_modified_since)
{
    cr_assert_eq(EVAL(NULL, T0, "If-Modified-Since", D_T0, NULL), NM);
    cr_assert_eq(EVAL(NULL, T0 - 1, "If-Modified-Since", D_T0, NULL), NM);
    cr_assert_eq(EVAL(NULL, T0 + 1, "If-Modified-Since", D_T0, NULL), SERVE);
    cr_assert_eq(EVAL(NULL, T0, "If-Modified-Since", D_T0_M1, NULL), SERVE);
    cr_assert_eq(EVAL(NULL, T0, "If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT", NULL), NM);
    cr_assert_eq(EVAL(NULL, T0, "If-Modified-Since", "Sun Nov  6 08:49:37 1994", NULL), NM);
}

Test(cond, if_modified_since_garbage_ignored)
{
    static const char *const bad[] = { "", "yesterday", "0", "-1", "Sun, 06 Nov 1994 08:49:37",
                                       "Sun, 06 Nov 1994 08:49:37 GMT junk", "Sun, 32 Nov 1994 08:49:37 GMT",
                                       D_T0 ", " D_T0_P1 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(EVAL(NULL, T0, "If-Modified-Since", bad[i], NULL), SERVE, "%s", bad[i]);
    /* two lines: more than one member */
    cr_assert_eq(EVAL(NULL, T0, "If-Modified-Since", D_T0, "If-Modified-Since", D_T0, NULL), SERVE);
}

Test(cond, if_modified_since_uses_date_without_last_modified)
{
    /* RFC 9111 4.3.2 */
    cr_assert_eq(eval_m(HTTP_GET, NULL, -1, T0, "If-Modified-Since", D_T0, NULL), NM);
    cr_assert_eq(eval_m(HTTP_GET, NULL, -1, T0 + 1, "If-Modified-Since", D_T0, NULL), SERVE);
    cr_assert_eq(eval_m(HTTP_GET, NULL, -1, -1, "If-Modified-Since", D_T0, NULL), SERVE);
}

Test(cond, methods)
{
    cr_assert_eq(eval_m(HTTP_HEAD, "\"a\"", T0, T0, "If-None-Match", "\"a\"", NULL), NM);
    cr_assert_eq(eval_m(HTTP_HEAD, NULL, T0, T0, "If-Modified-Since", D_T0, NULL), NM);
    /* IMS only for GET/HEAD; If-None-Match elsewhere is the origin's 412 */
    cr_assert_eq(eval_m(HTTP_POST, NULL, T0, T0, "If-Modified-Since", D_T0, NULL), SERVE);
    cr_assert_eq(eval_m(HTTP_POST, "\"a\"", T0, T0, "If-None-Match", "\"a\"", NULL), FWD);
    cr_assert_eq(eval_m(HTTP_OPTIONS, "\"a\"", T0, T0, "If-None-Match", "*", NULL), FWD);
}

Test(cond, if_match_and_ius_forwarded)
{
    cr_assert_eq(EVAL("\"a\"", T0, "If-Match", "\"a\"", NULL), FWD);
    cr_assert_eq(EVAL("\"a\"", T0, "If-Match", "*", NULL), FWD);
    cr_assert_eq(EVAL("\"a\"", T0, "If-Unmodified-Since", D_T0, NULL), FWD);
    cr_assert_eq(EVAL("\"a\"", T0, "If-Unmodified-Since", "garbage", NULL), FWD);
    cr_assert_eq(EVAL("\"a\"", T0, "If-Match", "\"a\"", "If-None-Match", "\"a\"", NULL), FWD);
}

Test(cond, fields_of_a_304)
{
    static const char *const in[] = { "Cache-Control", "cache-control", "CDN-Cache-Control", "Content-Location",
                                      "Date", "ETag", "etag", "Expires", "Last-Modified", "Vary" };
    static const char *const out[] = { "Content-Length", "Content-Type", "Content-Encoding", "Content-Range",
                                       "Set-Cookie", "Age", "Transfer-Encoding", "Connection", "X-Custom",
                                       "Content-Language", "ETa", "ETagX", "" };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        cr_assert(policy_cond_304_field(in[i], strlen(in[i])), "%s", in[i]);
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        cr_assert_not(policy_cond_304_field(out[i], strlen(out[i])), "%s", out[i]);
}

static bool match(const char *a, const char *b, bool strong)
{
    return policy_etag_match(a, strlen(a), b, strlen(b), strong);
}

Test(etag, comparison_table)
{
    /* RFC 9110 8.8.3.2 example table */
    cr_assert_not(match("W/\"1\"", "W/\"1\"", true));
    cr_assert(match("W/\"1\"", "W/\"1\"", false));
    cr_assert_not(match("W/\"1\"", "W/\"2\"", true));
    cr_assert_not(match("W/\"1\"", "W/\"2\"", false));
    cr_assert_not(match("W/\"1\"", "\"1\"", true));
    cr_assert(match("W/\"1\"", "\"1\"", false));
    cr_assert(match("\"1\"", "\"1\"", true));
    cr_assert(match("\"1\"", "\"1\"", false));
    /* OWS around, malformed */
    cr_assert(match(" \"1\"\t", "\"1\"", true));
    cr_assert_not(match("1", "1", false));
    cr_assert_not(match("\"1", "\"1", false));
    cr_assert_not(match("\"1\"x", "\"1\"x", false));
    cr_assert_not(match("\"1\"", "", false));
    cr_assert_not(match("\"a b\"", "\"a b\"", false)); /* space is not etagc */
    cr_assert(match("\"\xc3\xa9\"", "\"\xc3\xa9\"", true)); /* obs-text is */
    cr_assert_not(policy_etag_match(NULL, 0, "\"1\"", 3, false));
}

Test(etag, parse)
{
    bool weak;
    http_slice_t o;
    cr_assert_eq(policy_etag_parse("W/\"x\", \"y\"", 10, &weak, &o), 5);
    cr_assert(weak);
    cr_assert_eq(o.len, 3);
    cr_assert_eq(memcmp(o.p, "\"x\"", 3), 0);
    cr_assert_eq(policy_etag_parse("\"\"", 2, &weak, &o), 2);
    cr_assert_not(weak);
    cr_assert_eq(policy_etag_parse("W/", 2, &weak, &o), 0);
    cr_assert_eq(policy_etag_parse("", 0, &weak, &o), 0);
    cr_assert_eq(policy_etag_parse("\"a\nb\"", 5, &weak, &o), 0);
}

Test(etag, list_match_strong)
{
    const char *v = "W/\"a\", \"b\"";
    cr_assert_not(policy_etag_list_match(v, strlen(v), "\"a\"", true, true));
    cr_assert(policy_etag_list_match(v, strlen(v), "\"a\"", true, false));
    cr_assert(policy_etag_list_match(v, strlen(v), "\"b\"", true, true));
    cr_assert_not(policy_etag_list_match("*", 1, NULL, false, false));
    cr_assert(policy_etag_list_match("*", 1, NULL, true, false));
}
