/* Unit tests for policy_cache: response/request parsing, storability for a
 * shared cache, freshness lifetime, age calculation with clock skew, the
 * stored entry and the serve decision, invalidation and hop-by-hop fields.
 * Every time is a fixed number; nothing reads the clock. */
#include <criterion/criterion.h>
#include <errno.h>
#include <llhttp.h>
#include <stdarg.h>
#include <string.h>

#include "policy_cache.h"

/* Fixed times: T0 is "Sun, 06 Nov 1994 08:49:37 GMT". */
#define T0 INT64_C(784111777)
#define D_T0 "Sun, 06 Nov 1994 08:49:37 GMT"
#define D_T0_P60 "Sun, 06 Nov 1994 08:50:37 GMT"   /* T0 + 60 */
#define D_T0_P3600 "Sun, 06 Nov 1994 09:49:37 GMT" /* T0 + 3600 */
#define D_T0_M10000 "Sun, 06 Nov 1994 06:02:57 GMT" /* T0 - 10000 */
#define D_T0_M1M "Tue, 25 Oct 1994 19:02:57 GMT"   /* T0 - 1000000 */

/* Headers from NULL-terminated name, value pairs. */
static void fill(http_fields_t *h, va_list ap)
{
    http_fields_init(h, 0);
    for (const char *n; (n = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        cr_assert_eq(http_fields_add(h, n, strlen(n), v, strlen(v)), 0);
    }
}

static policy_resp_t resp_o(const policy_opts_t *o, int status, ...)
{
    va_list ap;
    http_fields_t h;
    policy_resp_t r;
    va_start(ap, status);
    fill(&h, ap);
    va_end(ap);
    policy_resp_parse(&r, status, &h, o);
    http_fields_free(&h);
    return r;
}

#define RESP(status, ...) resp_o(NULL, status, __VA_ARGS__)

static policy_req_t req_m(int method, ...)
{
    va_list ap;
    http_fields_t h;
    policy_req_t q;
    va_start(ap, method);
    fill(&h, ap);
    va_end(ap);
    policy_req_parse(&q, method, &h);
    http_fields_free(&h);
    return q;
}

#define REQ(...) req_m(HTTP_GET, __VA_ARGS__)

static const char *why_not(const policy_req_t *q, const policy_resp_t *r, const policy_opts_t *o)
{
    const char *why = "unset";
    bool ok = policy_storable(q, r, o, &why);
    cr_assert_eq(ok, why == NULL);
    return ok ? "stored" : why;
}

/* ---- response parsing ---- */

Test(resp, dates_and_age)
{
    policy_resp_t r = RESP(200, "Date", D_T0, "Expires", D_T0_P60, "Last-Modified", D_T0_M10000, "Age", "5", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.date, T0);
    cr_assert_eq(r.expires, T0 + 60);
    cr_assert_eq(r.last_modified, T0 - 10000);
    cr_assert_eq(r.age, 5);
    cr_assert_eq(r.targeted, -1);
    r = RESP(200, NULL);
    cr_assert_eq(r.date, -1);
    cr_assert_eq(r.expires, -1);
    cr_assert_eq(r.last_modified, -1);
    cr_assert_eq(r.age, -1);
    cr_assert_eq(r.flags, 0);
}

Test(resp, invalid_dates)
{
    policy_resp_t r = RESP(200, "Date", "yesterday", "Last-Modified", "Sun, 06 Nov 1994 08:49:37", NULL);
    cr_assert_eq(r.date, -1);
    cr_assert_eq(r.last_modified, -1);
}

Test(resp, expires_invalid_is_expired)
{
    policy_resp_t r = RESP(200, "Expires", "0", NULL);
    cr_assert_eq(r.expires, 0);
    cr_assert(r.flags & POLICY_RESP_EXPIRES_BAD);
    r = RESP(200, "Expires", "-1", NULL);
    cr_assert_eq(r.expires, 0);
    r = RESP(200, "Expires", "", NULL);
    cr_assert_eq(r.expires, 0);
    r = RESP(200, "Expires", D_T0_P60, "Expires", D_T0_P3600, NULL);
    cr_assert_eq(r.expires, 0);
    cr_assert(r.flags & POLICY_RESP_EXPIRES_BAD);
    r = RESP(200, "Expires", D_T0_P60, "Expires", D_T0_P60, NULL);
    cr_assert_eq(r.expires, T0 + 60);
    cr_assert_eq(r.flags & POLICY_RESP_EXPIRES_BAD, 0);
}

Test(resp, age_values)
{
    cr_assert_eq(RESP(200, "Age", " 7 ", NULL).age, 7);
    cr_assert_eq(RESP(200, "Age", "5, 6", NULL).age, 5);
    cr_assert_eq(RESP(200, "Age", "3", "Age", "4", NULL).age, 3);
    cr_assert_eq(RESP(200, "Age", "-5", NULL).age, -1);
    cr_assert_eq(RESP(200, "Age", "abc", NULL).age, -1);
    cr_assert_eq(RESP(200, "Age", "", NULL).age, -1);
    cr_assert_eq(RESP(200, "Age", "1.5", NULL).age, -1);
    cr_assert_eq(RESP(200, "Age", "99999999999999999999", NULL).age, POLICY_CC_DELTA_MAX);
}

Test(resp, presence_flags)
{
    policy_resp_t r = RESP(200, "Set-Cookie", "a=b", "ETag", "\"x\"", "Vary", "Accept-Encoding", NULL);
    cr_assert(r.flags & POLICY_RESP_SET_COOKIE);
    cr_assert(r.flags & POLICY_RESP_ETAG);
    cr_assert(r.flags & POLICY_RESP_VARY);
    cr_assert_eq(r.flags & POLICY_RESP_VARY_STAR, 0);
    r = RESP(200, "Vary", "Accept", "vary", "Cookie, *", NULL);
    cr_assert(r.flags & POLICY_RESP_VARY_STAR);
    r = RESP(200, "Vary", "*", NULL);
    cr_assert(r.flags & POLICY_RESP_VARY_STAR);
}

Test(resp, auth_ok_bits)
{
    cr_assert(RESP(200, "Cache-Control", "public", NULL).flags & POLICY_RESP_AUTH_OK);
    cr_assert(RESP(200, "Cache-Control", "must-revalidate", NULL).flags & POLICY_RESP_AUTH_OK);
    cr_assert(RESP(200, "Cache-Control", "s-maxage=10", NULL).flags & POLICY_RESP_AUTH_OK);
    cr_assert_not(RESP(200, "Cache-Control", "max-age=10, proxy-revalidate", NULL).flags & POLICY_RESP_AUTH_OK);
}

Test(resp, cdn_cache_control_replaces_cache_control_and_expires)
{
    policy_resp_t r = RESP(200, "Cache-Control", "private, no-transform", "Expires", "0", "CDN-Cache-Control",
                           "max-age=600", NULL);
    cr_assert(r.flags & POLICY_RESP_TARGETED);
    cr_assert(r.flags & POLICY_RESP_HAS_CC);
    cr_assert_eq(r.targeted, 0);
    cr_assert_eq(r.cc.max_age, 600);
    cr_assert_eq(r.cc.flags & POLICY_CC_PRIVATE, 0);
    cr_assert_eq(r.expires, -1);
    cr_assert(r.flags & POLICY_RESP_NO_TRANSFORM); /* kept from Cache-Control */
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 600);
}

Test(resp, empty_targeted_field_falls_back)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=5", "CDN-Cache-Control", " , ", NULL);
    cr_assert_eq(r.flags & POLICY_RESP_TARGETED, 0);
    cr_assert_eq(r.targeted, -1);
    cr_assert_eq(r.cc.max_age, 5);
}

Test(resp, targeting_off_and_surrogate_order)
{
    policy_opts_t o;
    policy_opts_init(&o);
    o.targeted_cc[0] = NULL;
    policy_resp_t r = resp_o(&o, 200, "Cache-Control", "max-age=5", "CDN-Cache-Control", "no-store", NULL);
    cr_assert_eq(r.flags & POLICY_RESP_TARGETED, 0);
    cr_assert_eq(r.cc.max_age, 5);

    o.targeted_cc[0] = "CDN-Cache-Control";
    o.targeted_cc[1] = "Surrogate-Control";
    r = resp_o(&o, 200, "Cache-Control", "max-age=5", "Surrogate-Control", "max-age=50", NULL);
    cr_assert_eq(r.targeted, 1);
    cr_assert_eq(r.cc.max_age, 50);
    r = resp_o(&o, 200, "Surrogate-Control", "max-age=50", "CDN-Cache-Control", "max-age=500", NULL);
    cr_assert_eq(r.targeted, 0);
    cr_assert_eq(r.cc.max_age, 500);
}

/* ---- request parsing ---- */

Test(req, directives_and_presence)
{
    policy_req_t q = req_m(HTTP_HEAD, "Cache-Control", "max-age=0, min-fresh=5", "Authorization", "Bearer x",
                           "If-None-Match", "\"a\"", "If-Modified-Since", D_T0, "Range", "bytes=0-1", NULL);
    cr_assert_eq(q.method, HTTP_HEAD);
    cr_assert(q.flags & POLICY_REQ_HAS_CC);
    cr_assert_eq(q.cc.max_age, 0);
    cr_assert_eq(q.cc.min_fresh, 5);
    cr_assert(q.flags & POLICY_REQ_AUTHORIZATION);
    cr_assert(q.flags & POLICY_REQ_IF_NONE_MATCH);
    cr_assert(q.flags & POLICY_REQ_IF_MODIFIED_SINCE);
    cr_assert(q.flags & POLICY_REQ_RANGE);
    cr_assert_eq(q.flags & (POLICY_REQ_IF_RANGE | POLICY_REQ_IF_MATCH | POLICY_REQ_IF_UNMODIFIED_SINCE), 0);
    q = REQ("If-Range", "\"a\"", "If-Match", "*", "If-Unmodified-Since", D_T0, NULL);
    cr_assert_eq(q.flags & POLICY_REQ_CONDITIONAL,
                 POLICY_REQ_IF_RANGE | POLICY_REQ_IF_MATCH | POLICY_REQ_IF_UNMODIFIED_SINCE);
    q = REQ(NULL);
    cr_assert_eq(q.flags, 0);
    cr_assert_eq(q.cc.flags, 0);
}

Test(req, pragma_only_without_cache_control)
{
    policy_req_t q = REQ("Pragma", "no-cache", NULL);
    cr_assert(q.flags & POLICY_REQ_PRAGMA_NO_CACHE);
    cr_assert(q.cc.flags & POLICY_CC_NO_CACHE);
    q = REQ("Pragma", "foo, No-Cache", NULL);
    cr_assert(q.flags & POLICY_REQ_PRAGMA_NO_CACHE);
    q = REQ("Pragma", "no-cache", "Cache-Control", "max-age=60", NULL);
    cr_assert_eq(q.flags & POLICY_REQ_PRAGMA_NO_CACHE, 0);
    cr_assert_eq(q.cc.flags & POLICY_CC_NO_CACHE, 0);
    q = REQ("Pragma", "other", NULL);
    cr_assert_eq(q.cc.flags, 0);
}

/* ---- storability ---- */

Test(storable, basic)
{
    policy_req_t q = REQ(NULL);
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    cr_assert(policy_storable(&q, &r, NULL, NULL));
}

Test(storable, methods)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", NULL);
    policy_req_t q = req_m(HTTP_POST, NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "method");
    q = req_m(HTTP_HEAD, NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "head");
    q = req_m(HTTP_PUT, NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "method");
}

Test(storable, statuses)
{
    policy_req_t q = REQ(NULL);
    policy_resp_t r;
    r = RESP(100, "Cache-Control", "max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "status");
    r = RESP(299, "Cache-Control", "max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "status");
    r = RESP(600, "Cache-Control", "max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "status");
    r = RESP(206, "Cache-Control", "max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "partial");
    r = RESP(304, "Cache-Control", "max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "not-modified");
    /* heuristically cacheable statuses need no explicit freshness */
    int heur[] = { 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501 };
    for (size_t i = 0; i < sizeof heur / sizeof heur[0]; i++) {
        r = RESP(heur[i], NULL);
        cr_assert_str_eq(why_not(&q, &r, NULL), "stored", "%d", heur[i]);
    }
    int other[] = { 201, 302, 303, 307, 400, 403, 500, 502, 503 };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        r = RESP(other[i], NULL);
        cr_assert_str_eq(why_not(&q, &r, NULL), "no-freshness", "%d", other[i]);
    }
    cr_assert(policy_status_heuristic(206));
    cr_assert_not(policy_status_heuristic(302));
    cr_assert(policy_status_understood(451));
    cr_assert_not(policy_status_understood(418));
}

Test(storable, explicit_freshness_or_public_for_other_statuses)
{
    policy_req_t q = REQ(NULL);
    policy_resp_t r = RESP(302, "Cache-Control", "max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(302, "Expires", D_T0_P60, NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(302, "Expires", "garbage", NULL); /* stored, already stale */
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(307, "Cache-Control", "s-maxage=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(302, "Cache-Control", "public", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(200, "Cache-Control", "max-age=abc", NULL); /* stored, but stale */
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(200, "Cache-Control", "no-cache", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
}

Test(storable, no_store_and_private)
{
    policy_req_t q = REQ(NULL);
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60, no-store", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "no-store");
    r = RESP(200, "Cache-Control", "max-age=60, private", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "private");
    r = RESP(200, "Cache-Control", "max-age=60", "Cache-Control", "PRIVATE", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "private");
    r = RESP(200, "Cache-Control", "max-age=60, private=\"X-User\"", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(200, "Cache-Control", "max-age=60", NULL);
    policy_req_t qn = REQ("Cache-Control", "no-store", NULL);
    cr_assert_str_eq(why_not(&qn, &r, NULL), "req-no-store");
}

Test(storable, must_understand)
{
    policy_req_t q = REQ(NULL);
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60, no-store, must-understand", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(299, "Cache-Control", "max-age=60, no-store, must-understand", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "must-understand");
}

Test(storable, authorization)
{
    policy_req_t q = REQ("Authorization", "Basic eDp5", NULL);
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "authorization");
    r = RESP(200, NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "authorization");
    r = RESP(200, "Cache-Control", "max-age=60, public", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(200, "Cache-Control", "max-age=60, must-revalidate", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(200, "Cache-Control", "s-maxage=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
    r = RESP(200, "Cache-Control", "max-age=60, proxy-revalidate", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "authorization");
    /* public does not beat private */
    r = RESP(200, "Cache-Control", "public, private, max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "private");
}

Test(storable, vary_star)
{
    policy_req_t q = REQ(NULL);
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", "Vary", "*", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "vary-star");
    r = RESP(200, "Cache-Control", "max-age=60", "Vary", "Accept-Encoding", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
}

Test(storable, set_cookie)
{
    policy_req_t q = REQ(NULL);
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", "Set-Cookie", "id=1", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "set-cookie");
    policy_opts_t o;
    policy_opts_init(&o);
    o.store_cookies = true;
    cr_assert_str_eq(why_not(&q, &r, &o), "stored");
    cr_assert_not(policy_field_storable(&r, NULL, "set-cookie", 10));
}

Test(storable, targeted_field_decides)
{
    policy_req_t q = REQ(NULL);
    policy_resp_t r = RESP(200, "Cache-Control", "public, max-age=600", "CDN-Cache-Control", "no-store", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "no-store");
    r = RESP(200, "Cache-Control", "private", "CDN-Cache-Control", "max-age=60", NULL);
    cr_assert_str_eq(why_not(&q, &r, NULL), "stored");
}

Test(storable, field_filter)
{
    http_fields_t h;
    http_fields_init(&h, 0);
    http_fields_add(&h, "Connection", 10, "close, X-Hop", 12);
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60, private=\"X-User\", no-cache=\"X-Token\"", NULL);
    cr_assert_not(policy_field_storable(&r, &h, "X-User", 6));
    cr_assert_not(policy_field_storable(&r, &h, "x-token", 7));
    cr_assert_not(policy_field_storable(&r, &h, "x-hop", 5));
    cr_assert_not(policy_field_storable(&r, &h, "Transfer-Encoding", 17));
    cr_assert_not(policy_field_storable(&r, &h, "Set-Cookie", 10));
    cr_assert(policy_field_storable(&r, &h, "Content-Type", 12));
    cr_assert(policy_field_storable(&r, NULL, "X-Hop", 5));
    http_fields_free(&h);
}

/* ---- freshness lifetime ---- */

Test(freshness, precedence)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60, s-maxage=120", "Date", D_T0, "Expires", D_T0_P3600, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 120);
    r = RESP(200, "Cache-Control", "max-age=60", "Date", D_T0, "Expires", D_T0_P3600, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 60);
    r = RESP(200, "Date", D_T0, "Expires", D_T0_P3600, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 3600);
    r = RESP(200, "Cache-Control", "max-age=0", "Date", D_T0, "Expires", D_T0_P3600, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 0);
}

Test(freshness, invalid_or_duplicate_max_age_is_zero)
{
    const char *v[] = { "max-age=-1", "max-age=abc", "max-age=", "max-age=60, max-age=120",
                        "s-maxage=60, s-maxage=x, max-age=60" };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        policy_resp_t r = RESP(200, "Cache-Control", v[i], "Date", D_T0, "Expires", D_T0_P3600, "Last-Modified",
                               D_T0_M1M, NULL);
        cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 0, "%s", v[i]);
    }
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", "Cache-Control", "max-age=60", NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 60);
    r = RESP(200, "Cache-Control", "max-age=99999999999", NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), POLICY_CC_DELTA_MAX);
}

Test(freshness, expires)
{
    /* Date absent: Expires minus the response time */
    policy_resp_t r = RESP(200, "Expires", D_T0_P3600, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0 + 600), 3000);
    /* Date present: response time does not matter */
    r = RESP(200, "Date", D_T0, "Expires", D_T0_P3600, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0 + 600), 3600);
    /* in the past, or invalid: already expired */
    r = RESP(200, "Date", D_T0_P3600, "Expires", D_T0, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 0);
    r = RESP(200, "Date", D_T0, "Expires", "0", "Last-Modified", D_T0_M1M, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 0); /* no heuristic either */
    r = RESP(200, "Date", D_T0, "Expires", "Sun, 06 Nov 1994 08:49:37 UTC", NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 0);
}

Test(freshness, heuristic)
{
    policy_resp_t r = RESP(200, "Date", D_T0, "Last-Modified", D_T0_M10000, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 1000);
    r = RESP(200, "Date", D_T0, "Last-Modified", D_T0_M1M, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 86400); /* 100000 capped */
    /* Date absent: measured from the response time */
    r = RESP(404, "Last-Modified", D_T0_M10000, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0 + 10000), 2000);
    /* Last-Modified in the future of Date: nothing */
    r = RESP(200, "Date", D_T0_M10000, "Last-Modified", D_T0, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 0);
    /* without Last-Modified: heuristic_default (0 by default) */
    r = RESP(200, "Date", D_T0, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 0);
    policy_opts_t o;
    policy_opts_init(&o);
    o.heuristic_default = 300;
    cr_assert_eq(policy_freshness_lifetime(&r, &o, T0), 300);
    o.heuristic_max = 100;
    cr_assert_eq(policy_freshness_lifetime(&r, &o, T0), 100);
    o.heuristic_max = 1000000;
    o.heuristic_percent = 50;
    r = RESP(200, "Date", D_T0, "Last-Modified", D_T0_M10000, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, &o, T0), 5000);
}

Test(freshness, non_heuristic_status)
{
    policy_resp_t r = RESP(302, "Date", D_T0, "Last-Modified", D_T0_M10000, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 0);
    r = RESP(307, "Date", D_T0, "Last-Modified", D_T0_M10000, NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 0);
    r = RESP(302, "Date", D_T0, "Cache-Control", "max-age=30", NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 30);
    /* public makes heuristics allowed (RFC 9111 4.2.2) */
    r = RESP(302, "Date", D_T0, "Last-Modified", D_T0_M10000, "Cache-Control", "public", NULL);
    cr_assert_eq(policy_freshness_lifetime(&r, NULL, T0), 1000);
}

/* ---- age ---- */

Test(age, corrected_initial_age)
{
    /* 2 s on the wire, no Age: apparent age and delay agree */
    cr_assert_eq(policy_corrected_initial_age(-1, T0, T0, T0 + 2), 2);
    /* Age header larger than the apparent age wins (plus the delay) */
    cr_assert_eq(policy_corrected_initial_age(100, T0, T0, T0 + 2), 102);
    /* apparent age larger (origin clock behind, or a slow upstream) */
    cr_assert_eq(policy_corrected_initial_age(5, T0 - 50, T0, T0 + 1), 51);
    /* Date in the future (skew): apparent age 0, not negative */
    cr_assert_eq(policy_corrected_initial_age(-1, T0 + 3600, T0, T0 + 2), 2);
    cr_assert_eq(policy_corrected_initial_age(0, T0 + 3600, T0 + 2, T0 + 2), 0);
    /* Date absent */
    cr_assert_eq(policy_corrected_initial_age(10, -1, T0, T0 + 3), 13);
    /* our clock stepped back between request and response */
    cr_assert_eq(policy_corrected_initial_age(10, T0, T0 + 5, T0), 10);
    /* absurd Age saturates */
    cr_assert_eq(policy_corrected_initial_age(INT64_MAX, T0, T0, T0), POLICY_CC_DELTA_MAX);
}

Test(age, current_age)
{
    cr_assert_eq(policy_current_age(10, T0, T0), 10);
    cr_assert_eq(policy_current_age(10, T0, T0 + 5), 15);
    cr_assert_eq(policy_current_age(10, T0, T0 - 100), 10); /* clock went back */
}

/* ---- entry and verdict ---- */

static policy_entry_t entry_o(const policy_opts_t *o, const policy_resp_t *r)
{
    policy_entry_t e;
    policy_entry_init(&e, r, o, T0, T0);
    return e;
}

static policy_verdict_t check(const policy_entry_t *e, const policy_req_t *q, int64_t now)
{
    return policy_entry_check(e, q, now, NULL, NULL);
}

Test(entry, init_fields)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60, must-revalidate, immutable", "Date", D_T0, "Age", "5",
                           "ETag", "\"x\"", "Last-Modified", D_T0_M10000, NULL);
    policy_entry_t e;
    policy_entry_init(&e, &r, NULL, T0, T0 + 1);
    cr_assert_eq(e.version, POLICY_ENTRY_VERSION);
    cr_assert_eq(e.request_time, T0);
    cr_assert_eq(e.response_time, T0 + 1);
    cr_assert_eq(e.corrected_initial_age, 6);
    cr_assert_eq(e.freshness_lifetime, 60);
    cr_assert_eq(e.date, T0);
    cr_assert_eq(e.last_modified, T0 - 10000);
    cr_assert_eq(e.status, 200);
    cr_assert_eq(e.reserved, 0);
    uint32_t want = POLICY_ENTRY_MUST_REVALIDATE | POLICY_ENTRY_IMMUTABLE | POLICY_ENTRY_ETAG |
                    POLICY_ENTRY_LAST_MODIFIED | POLICY_ENTRY_NO_STALE;
    cr_assert_eq(e.flags, want);
    /* Date absent: the response time stands in */
    r = RESP(200, "Cache-Control", "max-age=60", NULL);
    policy_entry_init(&e, &r, NULL, T0, T0 + 1);
    cr_assert_eq(e.date, T0 + 1);
    cr_assert_eq(e.corrected_initial_age, 1);
    r = RESP(200, "Date", D_T0, "Last-Modified", D_T0_M10000, NULL);
    e = entry_o(NULL, &r);
    cr_assert(e.flags & POLICY_ENTRY_HEURISTIC);
    cr_assert_eq(e.freshness_lifetime, 1000);
}

Test(entry, fresh_then_stale_at_exact_boundary)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", "Date", D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    int64_t age, ttl;
    cr_assert_eq(policy_entry_check(&e, NULL, T0, &age, &ttl), POLICY_VERDICT_FRESH);
    cr_assert_eq(age, 0);
    cr_assert_eq(ttl, 60);
    cr_assert_eq(policy_entry_check(&e, NULL, T0 + 59, &age, &ttl), POLICY_VERDICT_FRESH);
    cr_assert_eq(ttl, 1);
    cr_assert_eq(policy_entry_check(&e, NULL, T0 + 60, &age, &ttl), POLICY_VERDICT_STALE);
    cr_assert_eq(age, 60);
    cr_assert_eq(ttl, 0);
    cr_assert_eq(policy_entry_check(&e, NULL, T0 + 100, &age, &ttl), POLICY_VERDICT_STALE);
    cr_assert_eq(ttl, -40);
}

Test(entry, age_header_shortens_freshness)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", "Date", D_T0, "Age", "50", NULL);
    policy_entry_t e = entry_o(NULL, &r);
    int64_t age, ttl;
    cr_assert_eq(policy_entry_check(&e, NULL, T0, &age, &ttl), POLICY_VERDICT_FRESH);
    cr_assert_eq(age, 50);
    cr_assert_eq(ttl, 10);
    cr_assert_eq(check(&e, NULL, T0 + 10), POLICY_VERDICT_STALE);
    /* garbage Age is ignored */
    r = RESP(200, "Cache-Control", "max-age=60", "Date", D_T0, "Age", "lots", NULL);
    e = entry_o(NULL, &r);
    cr_assert_eq(check(&e, NULL, T0 + 59), POLICY_VERDICT_FRESH);
}

Test(entry, skewed_date)
{
    /* origin clock an hour ahead: max-age counts from receipt */
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", "Date", D_T0_P3600, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    cr_assert_eq(e.corrected_initial_age, 0);
    cr_assert_eq(check(&e, NULL, T0 + 59), POLICY_VERDICT_FRESH);
    cr_assert_eq(check(&e, NULL, T0 + 60), POLICY_VERDICT_STALE);
    /* Expires relative to the skewed Date still gives 60 s */
    r = RESP(200, "Date", D_T0_P3600, "Expires", "Sun, 06 Nov 1994 09:50:37 GMT", NULL);
    e = entry_o(NULL, &r);
    cr_assert_eq(e.freshness_lifetime, 60);
    cr_assert_eq(check(&e, NULL, T0 + 59), POLICY_VERDICT_FRESH);
    /* origin clock behind: the apparent age counts against freshness */
    r = RESP(200, "Cache-Control", "max-age=60", "Date", "Sun, 06 Nov 1994 08:49:07 GMT", NULL);
    e = entry_o(NULL, &r);
    cr_assert_eq(e.corrected_initial_age, 30);
    cr_assert_eq(check(&e, NULL, T0 + 30), POLICY_VERDICT_STALE);
}

Test(entry, invalid_freshness_is_stale_immediately)
{
    policy_resp_t r = RESP(200, "Expires", "0", "Date", D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    cr_assert_eq(check(&e, NULL, T0), POLICY_VERDICT_STALE);
    r = RESP(200, "Cache-Control", "max-age=60, max-age=61", "Date", D_T0, NULL);
    e = entry_o(NULL, &r);
    cr_assert_eq(check(&e, NULL, T0), POLICY_VERDICT_STALE);
}

Test(entry, request_max_age_and_min_fresh)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", "Date", D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    policy_req_t q = REQ("Cache-Control", "max-age=20", NULL);
    cr_assert_eq(check(&e, &q, T0 + 20), POLICY_VERDICT_FRESH);
    cr_assert_eq(check(&e, &q, T0 + 21), POLICY_VERDICT_REQUEST);
    q = REQ("Cache-Control", "max-age=0", NULL);
    cr_assert_eq(check(&e, &q, T0 + 1), POLICY_VERDICT_REQUEST);
    q = REQ("Cache-Control", "max-age=bogus", NULL); /* reads 0 */
    cr_assert_eq(check(&e, &q, T0 + 1), POLICY_VERDICT_REQUEST);
    q = REQ("Cache-Control", "min-fresh=30", NULL);
    cr_assert_eq(check(&e, &q, T0 + 30), POLICY_VERDICT_FRESH);
    cr_assert_eq(check(&e, &q, T0 + 31), POLICY_VERDICT_REQUEST);
    q = REQ("Cache-Control", "min-fresh=x", NULL); /* reads "forever" */
    cr_assert_eq(check(&e, &q, T0), POLICY_VERDICT_REQUEST);
}

Test(entry, request_no_cache)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60, stale-while-revalidate=100", "Date", D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    policy_req_t q = REQ("Cache-Control", "no-cache", NULL);
    cr_assert_eq(check(&e, &q, T0), POLICY_VERDICT_REQUEST);
    q = REQ("Pragma", "no-cache", NULL);
    cr_assert_eq(check(&e, &q, T0), POLICY_VERDICT_REQUEST);
    /* stale and the client refuses stale: no stale-while-revalidate */
    cr_assert_eq(check(&e, &q, T0 + 70), POLICY_VERDICT_STALE);
    q = REQ(NULL);
    cr_assert_eq(check(&e, &q, T0 + 70), POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK);
}

Test(entry, response_no_cache_always_revalidates)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=600, no-cache, stale-if-error=600", "Date", D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    cr_assert(e.flags & POLICY_ENTRY_NO_CACHE);
    cr_assert_eq(e.stale_if_error, -1);
    cr_assert_eq(check(&e, NULL, T0), POLICY_VERDICT_STALE);
    policy_req_t q = REQ("Cache-Control", "max-stale", NULL);
    cr_assert_eq(check(&e, &q, T0 + 700), POLICY_VERDICT_STALE);
    /* qualified no-cache does not force revalidation of the whole response */
    r = RESP(200, "Cache-Control", "max-age=600, no-cache=\"Set-Cookie\"", "Date", D_T0, NULL);
    e = entry_o(NULL, &r);
    cr_assert(e.flags & POLICY_ENTRY_NO_CACHE_FIELDS);
    cr_assert_eq(check(&e, NULL, T0), POLICY_VERDICT_FRESH);
}

Test(entry, max_stale)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", "Date", D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    policy_req_t q = REQ("Cache-Control", "max-stale=20", NULL);
    cr_assert_eq(check(&e, &q, T0 + 70), POLICY_VERDICT_STALE_ACCEPTED);
    cr_assert_eq(check(&e, &q, T0 + 79), POLICY_VERDICT_STALE_ACCEPTED);
    cr_assert_eq(check(&e, &q, T0 + 80), POLICY_VERDICT_STALE);
    q = REQ("Cache-Control", "max-stale", NULL);
    cr_assert_eq(check(&e, &q, T0 + 1000000), POLICY_VERDICT_STALE_ACCEPTED);
    q = REQ("Cache-Control", "max-stale, max-age=65", NULL);
    cr_assert_eq(check(&e, &q, T0 + 70), POLICY_VERDICT_STALE);
    q = REQ("Cache-Control", "max-stale, min-fresh=5", NULL);
    cr_assert_eq(check(&e, &q, T0 + 70), POLICY_VERDICT_STALE);
}

Test(entry, max_stale_refused_by_revalidate_directives)
{
    const char *v[] = { "max-age=60, must-revalidate", "max-age=60, proxy-revalidate", "s-maxage=60" };
    policy_req_t q = REQ("Cache-Control", "max-stale", NULL);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        policy_resp_t r = RESP(200, "Cache-Control", v[i], "Date", D_T0, NULL);
        policy_entry_t e = entry_o(NULL, &r);
        cr_assert(e.flags & POLICY_ENTRY_NO_STALE, "%s", v[i]);
        cr_assert_eq(check(&e, &q, T0 + 59), POLICY_VERDICT_FRESH, "%s", v[i]);
        cr_assert_eq(check(&e, &q, T0 + 61), POLICY_VERDICT_STALE, "%s", v[i]);
    }
}

Test(entry, stale_windows)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60, stale-while-revalidate=30, stale-if-error=100", "Date",
                           D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    cr_assert_eq(e.stale_while_revalidate, 30);
    cr_assert_eq(e.stale_if_error, 100);
    cr_assert_eq(check(&e, NULL, T0 + 59), POLICY_VERDICT_FRESH);
    cr_assert_eq(check(&e, NULL, T0 + 60), POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK);
    cr_assert_eq(check(&e, NULL, T0 + 89), POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK);
    cr_assert_eq(check(&e, NULL, T0 + 90), POLICY_VERDICT_STALE_IF_ERROR_OK);
    cr_assert_eq(check(&e, NULL, T0 + 159), POLICY_VERDICT_STALE_IF_ERROR_OK);
    cr_assert_eq(check(&e, NULL, T0 + 160), POLICY_VERDICT_STALE);
    /* request max-age / min-fresh close the windows */
    policy_req_t q = REQ("Cache-Control", "max-age=61", NULL);
    cr_assert_eq(check(&e, &q, T0 + 70), POLICY_VERDICT_STALE);
    q = REQ("Cache-Control", "min-fresh=1", NULL);
    cr_assert_eq(check(&e, &q, T0 + 70), POLICY_VERDICT_STALE);
}

Test(entry, windows_closed_by_must_revalidate)
{
    const char *v[] = { "max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=30",
                        "max-age=60, proxy-revalidate, stale-while-revalidate=30, stale-if-error=30" };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        policy_resp_t r = RESP(200, "Cache-Control", v[i], "Date", D_T0, NULL);
        policy_entry_t e = entry_o(NULL, &r);
        cr_assert_eq(e.stale_while_revalidate, -1);
        cr_assert_eq(e.stale_if_error, -1);
        cr_assert_eq(check(&e, NULL, T0 + 61), POLICY_VERDICT_STALE);
    }
}

/* RFC 9111 4.2.4 by default: s-maxage implies proxy-revalidate, so no
 * stale serving; stale_with_s_maxage is the opt-in CDN reading. */
Test(entry, windows_with_s_maxage_are_an_option)
{
    policy_resp_t r = RESP(200, "Cache-Control", "s-maxage=60, stale-while-revalidate=30", "Date", D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    cr_assert_eq(e.stale_while_revalidate, -1);
    cr_assert_eq(check(&e, NULL, T0 + 61), POLICY_VERDICT_STALE);
    policy_opts_t o;
    policy_opts_init(&o);
    cr_assert_not(o.stale_with_s_maxage);
    o.stale_with_s_maxage = true;
    e = entry_o(&o, &r);
    cr_assert_eq(check(&e, NULL, T0 + 61), POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK);
}

Test(entry, invalid_window_values_are_absent)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60, stale-while-revalidate=-5, stale-if-error=x", "Date",
                           D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r);
    cr_assert_eq(check(&e, NULL, T0 + 61), POLICY_VERDICT_STALE);
}

Test(entry, load_checks_size_and_version)
{
    policy_resp_t r = RESP(200, "Cache-Control", "max-age=60", "Date", D_T0, NULL);
    policy_entry_t e = entry_o(NULL, &r), back;
    unsigned char raw[sizeof e + 1];
    memcpy(raw, &e, sizeof e);
    cr_assert_eq(policy_entry_load(&back, raw, sizeof e), 0);
    cr_assert_eq(memcmp(&back, &e, sizeof e), 0);
    cr_assert_eq(policy_entry_load(&back, raw, sizeof e - 1), -EINVAL);
    cr_assert_eq(policy_entry_load(&back, raw, sizeof e + 1), -EINVAL);
    cr_assert_eq(policy_entry_load(&back, NULL, sizeof e), -EINVAL);
    policy_entry_t old = e;
    old.version = 0;
    memcpy(raw, &old, sizeof old);
    cr_assert_eq(policy_entry_load(&back, raw, sizeof e), -EINVAL);
    cr_assert_eq(memcmp(&back, &e, sizeof e), 0); /* untouched */
    cr_assert_eq(check(&old, NULL, T0), POLICY_VERDICT_STALE);
}

Test(entry, verdict_names)
{
    cr_assert_str_eq(policy_verdict_name(POLICY_VERDICT_FRESH), "fresh");
    cr_assert_str_eq(policy_verdict_name(POLICY_VERDICT_STALE), "stale");
    cr_assert_str_eq(policy_verdict_name(POLICY_VERDICT_REQUEST), "request");
    cr_assert_str_eq(policy_verdict_name(POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK), "stale-while-revalidate");
    cr_assert_str_eq(policy_verdict_name(POLICY_VERDICT_STALE_IF_ERROR_OK), "stale-if-error");
    cr_assert_str_eq(policy_verdict_name(POLICY_VERDICT_STALE_ACCEPTED), "stale-accepted");
    cr_assert_str_eq(policy_verdict_name((policy_verdict_t)99), "unknown");
}

/* ---- methods, hop-by-hop ---- */

Test(methods, invalidation)
{
    cr_assert(policy_method_safe(HTTP_GET));
    cr_assert(policy_method_safe(HTTP_HEAD));
    cr_assert(policy_method_safe(HTTP_OPTIONS));
    cr_assert_not(policy_method_safe(HTTP_POST));
    cr_assert(policy_method_invalidates(HTTP_POST, 200));
    cr_assert(policy_method_invalidates(HTTP_PUT, 204));
    cr_assert(policy_method_invalidates(HTTP_DELETE, 302));
    cr_assert(policy_method_invalidates(HTTP_PATCH, 399));
    cr_assert_not(policy_method_invalidates(HTTP_POST, 404));
    cr_assert_not(policy_method_invalidates(HTTP_POST, 500));
    cr_assert_not(policy_method_invalidates(HTTP_POST, 100));
    cr_assert_not(policy_method_invalidates(HTTP_GET, 200));
    cr_assert_not(policy_method_invalidates(HTTP_HEAD, 200));
    cr_assert(policy_method_invalidates(-1, 200)); /* unknown method: unsafe */
}

Test(hop, names)
{
    const char *hop[] = { "Connection", "keep-alive", "PROXY-CONNECTION", "TE", "Trailer", "transfer-encoding",
                          "Upgrade", "Proxy-Authenticate", "proxy-authorization" };
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        cr_assert(policy_hop_by_hop(hop[i], strlen(hop[i])), "%s", hop[i]);
    cr_assert_not(policy_hop_by_hop("Content-Type", 12));
    cr_assert_not(policy_hop_by_hop("Connections", 11));
    cr_assert_not(policy_hop_by_hop("T", 1));
    cr_assert_not(policy_hop_by_hop("TEA", 3));
    cr_assert_not(policy_hop_by_hop("", 0));
}

Test(forwarding, names)
{
    const char *fwd[] = { "x-forwarded-host", "X-Host", "X-FORWARDED-SERVER", "X-Original-Host", "X-Original-URL",
                          "X-Rewrite-URL", "X-Forwarded-Scheme", "X-Forwarded-Proto", "X-Forwarded-Port",
                          "X-Forwarded-Prefix", "X-Forwarded-Ssl", "Front-End-Https", "X-Real-IP", "Forwarded",
                          "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override" };
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        cr_assert(policy_forwarding_header(fwd[i], strlen(fwd[i])), "%s", fwd[i]);
    /* X-Forwarded-For is appended to, not removed; Host is in the key. */
    cr_assert_not(policy_forwarding_header("X-Forwarded-For", 15));
    cr_assert_not(policy_forwarding_header("Host", 4));
    cr_assert_not(policy_forwarding_header("X-Forwarded", 11));
    cr_assert_not(policy_forwarding_header("", 0));
}

Test(hop, connection_listed)
{
    http_fields_t h;
    http_fields_init(&h, 0);
    http_fields_add(&h, "Connection", 10, "close, X-Foo", 12);
    http_fields_add(&h, "Host", 4, "a", 1);
    http_fields_add(&h, "connection", 10, " keep-alive ,x-bar ,", 20);
    cr_assert(policy_connection_listed(&h, "x-foo", 5));
    cr_assert(policy_connection_listed(&h, "X-BAR", 5));
    cr_assert(policy_connection_listed(&h, "close", 5));
    cr_assert_not(policy_connection_listed(&h, "X-Fo", 4));
    cr_assert_not(policy_connection_listed(&h, "Host", 4));
    cr_assert_not(policy_connection_listed(&h, "", 0));
    http_fields_free(&h);
}
