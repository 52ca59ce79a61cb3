/* Unit tests for policy_range: Range parsing against a length (valid,
 * malformed, overflowing and abusive headers), If-Range, Content-Range
 * and the exact multipart/byteranges framing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy_range.h"
#include "../test_fields.h"

#define T0 INT64_C(784111777) /* Sun, 06 Nov 1994 08:49:37 GMT */
#define D_T0 "Sun, 06 Nov 1994 08:49:37 GMT"
#define D_T0_M1 "Sun, 06 Nov 1994 08:49:36 GMT"

static policy_range_result_t parse(const char *v, int64_t len, policy_range_set_t *s)
{
    return policy_range_parse(v, strlen(v), len, s);
}

/* "a-b,c-d" of the set, for compact assertions. */
static const char *show(const policy_range_set_t *s)
{
    static char out[512];
    size_t w = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < s->n; i++)
        w += (size_t)snprintf(out + w, sizeof out - w, "%s%lld-%lld", i ? "," : "", (long long)s->r[i].start,
                              (long long)s->r[i].end);
    return out;
}

#define OK(v, len, want)                                                                                     \
    do {                                                                                                     \
        policy_range_set_t s_;                                                                               \
        cr_assert_eq(parse(v, len, &s_), POLICY_RANGE_OK, "%s", v);                                          \
        cr_assert_str_eq(show(&s_), want, "%s", v);                                                          \
        cr_assert_eq(s_.length, len);                                                                        \
    } while (0)

#define IS(v, len, res)                                                                                      \
    do {                                                                                                     \
        policy_range_set_t s_;                                                                               \
        cr_assert_eq(parse(v, len, &s_), res, "%s", v);                                                      \
        cr_assert_eq(s_.n, 0);                                                                               \
    } while (0)

Test(range, forms)
{
    OK("bytes=0-99", 1000, "0-99");
    OK("bytes=100-", 1000, "100-999");
    OK("bytes=-100", 1000, "900-999");
    OK("bytes=0-0", 1000, "0-0");
    OK("bytes=999-999", 1000, "999-999");
    OK("bytes=-1", 1000, "999-999");
    OK("Bytes=0-1", 10, "0-1"); /* the unit is case-insensitive */
    OK("BYTES=0-1", 10, "0-1");
}

Test(range, clipped_to_length)
{
    OK("bytes=0-5000", 1000, "0-999");
    OK("bytes=-5000", 1000, "0-999");
    OK("bytes=990-1010", 1000, "990-999");
}

Test(range, whitespace)
{
    OK("  bytes=0-1 , 4-5 ", 10, "0-1,4-5");
    OK("bytes=0-1,\t4-5", 10, "0-1,4-5");
    IS("bytes = 0-1", 10, POLICY_RANGE_NONE);
    IS("bytes= 0 - 1", 10, POLICY_RANGE_NONE);
    IS("bytes=0 -1", 10, POLICY_RANGE_NONE);
}

Test(range, multiple_sorted_and_coalesced)
{
    OK("bytes=0-1,4-5", 10, "0-1,4-5");
    OK("bytes=4-5,0-1", 10, "0-1,4-5");
    OK("bytes=0-3,2-5", 10, "0-5");         /* overlapping */
    OK("bytes=0-3,4-5", 10, "0-5");         /* adjacent */
    OK("bytes=0-3,1-2", 10, "0-3");         /* contained */
    OK("bytes=-2,0-1", 10, "0-1,8-9");
    OK("bytes=0-,-5", 10, "0-9");
    OK("bytes=5-,0-2,3-4", 10, "0-9");
}

Test(range, unsatisfiable_members_dropped)
{
    OK("bytes=0-1,20-30", 10, "0-1");
    OK("bytes=-0,2-3", 10, "2-3");
    IS("bytes=10-20", 10, POLICY_RANGE_UNSATISFIABLE);
    IS("bytes=10-", 10, POLICY_RANGE_UNSATISFIABLE);
    IS("bytes=-0", 10, POLICY_RANGE_UNSATISFIABLE);
    IS("bytes=10-20,30-", 10, POLICY_RANGE_UNSATISFIABLE);
}

Test(range, zero_length)
{
    IS("bytes=0-0", 0, POLICY_RANGE_UNSATISFIABLE);
    IS("bytes=0-", 0, POLICY_RANGE_UNSATISFIABLE);
    IS("bytes=-0", 0, POLICY_RANGE_UNSATISFIABLE);
    /* satisfiable (RFC 9110 14.1.1) but empty: the whole, i.e. 200 */
    IS("bytes=-5", 0, POLICY_RANGE_NONE);
}

Test(range, malformed_is_ignored)
{
    static const char *const bad[] = {
        "bytes=5-2", "bytes=abc", "items=0-1", "bytes", "bytes=", "bytes=,", "bytes=,,",
        "bytes=-", "bytes=--1", "bytes=1-2-3", "bytes=1", "bytes=0x10-20", "bytes=+1-2",
        "bytes=1-+2", "bytes=0-1;2-3", "bytes=0-1,x", "bytes=0-1,5-2", "=0-1", "",
        "bytes=0-1\r\n", "bytes=-1-", "bytesx=0-1", "bytes =0-1", "none",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        IS(bad[i], 1000, POLICY_RANGE_NONE);
    policy_range_set_t s;
    cr_assert_eq(policy_range_parse(NULL, 0, 10, &s), POLICY_RANGE_NONE);
    cr_assert_eq(parse("bytes=0-1", -1, &s), POLICY_RANGE_NONE);
}

Test(range, empty_members_skipped)
{
    OK("bytes=0-1,,4-5", 10, "0-1,4-5");
    OK("bytes=,0-1", 10, "0-1");
    OK("bytes=0-1,", 10, "0-1");
    OK("bytes= , 0-1 , ", 10, "0-1");
}

Test(range, huge_numbers_saturate)
{
    OK("bytes=0-99999999999999999999999999", 1000, "0-999");
    OK("bytes=-99999999999999999999999999", 1000, "0-999");
    OK("bytes=0-9223372036854775807", 1000, "0-999");
    OK("bytes=0-9223372036854775808", 1000, "0-999");
    IS("bytes=99999999999999999999999999-", 1000, POLICY_RANGE_UNSATISFIABLE);
    IS("bytes=9223372036854775807-9223372036854775807", 1000, POLICY_RANGE_UNSATISFIABLE);
    /* both saturate to INT64_MAX: equal, so not last < first */
    IS("bytes=99999999999999999999-99999999999999999998", 1000, POLICY_RANGE_UNSATISFIABLE);
    /* a length at the top of int64 */
    OK("bytes=9223372036854775806-", INT64_MAX, "9223372036854775806-9223372036854775806");
    OK("bytes=-1", INT64_MAX, "9223372036854775806-9223372036854775806");
}

Test(range, abuse_caps)
{
    char v[4096];
    size_t w;
    /* 100 identical overlapping ranges: over the member cap, ignored */
    w = (size_t)snprintf(v, sizeof v, "bytes=");
    for (int i = 0; i < 100; i++)
        w += (size_t)snprintf(v + w, sizeof v - w, "%s0-%d", i ? "," : "", 10 + i);
    IS(v, 1000, POLICY_RANGE_NONE);
    /* up to the member cap they coalesce into one */
    w = (size_t)snprintf(v, sizeof v, "bytes=");
    for (int i = 0; i < POLICY_RANGE_MEMBERS_MAX; i++)
        w += (size_t)snprintf(v + w, sizeof v - w, "%s0-%d", i ? "," : "", 10 + i);
    OK(v, 1000, "0-73");
    /* 16 disjoint ranges are answered, 17 are not */
    w = (size_t)snprintf(v, sizeof v, "bytes=");
    for (int i = 0; i < POLICY_RANGE_MAX; i++)
        w += (size_t)snprintf(v + w, sizeof v - w, "%s%d-%d", i ? "," : "", i * 10, i * 10 + 1);
    policy_range_set_t s;
    cr_assert_eq(parse(v, 1000, &s), POLICY_RANGE_OK);
    cr_assert_eq(s.n, POLICY_RANGE_MAX);
    snprintf(v + w, sizeof v - w, ",500-501");
    IS(v, 1000, POLICY_RANGE_NONE);
    /* 17 members that coalesce below the cap are fine */
    snprintf(v + w, sizeof v - w, ",0-1");
    cr_assert_eq(parse(v, 1000, &s), POLICY_RANGE_OK);
    /* empty members count against the member cap too */
    w = (size_t)snprintf(v, sizeof v, "bytes=0-1");
    for (int i = 0; i < POLICY_RANGE_MEMBERS_MAX; i++)
        v[w++] = ',';
    v[w] = '\0';
    IS(v, 1000, POLICY_RANGE_NONE);
}

/* ---- If-Range ---- */

static bool if_range(const char *v, const char *etag, int64_t lm, int64_t date)
{
    return policy_if_range_ok(v, strlen(v), etag, lm, date);
}

Test(if_range, entity_tags_strong_only)
{
    cr_assert(if_range("\"abc\"", "\"abc\"", -1, -1));
    cr_assert(if_range(" \"abc\" ", "\"abc\"", -1, -1));
    cr_assert_not(if_range("\"abc\"", "\"abd\"", -1, -1));
    cr_assert_not(if_range("W/\"abc\"", "W/\"abc\"", -1, -1));
    cr_assert_not(if_range("W/\"abc\"", "\"abc\"", -1, -1));
    cr_assert_not(if_range("\"abc\"", "W/\"abc\"", -1, -1));
    cr_assert_not(if_range("\"abc\"", NULL, T0, T0 + 10));
    cr_assert_not(if_range("\"abc\" \"def\"", "\"abc\"", -1, -1));
    cr_assert_not(if_range("\"abc", "\"abc\"", -1, -1));
    cr_assert_not(if_range("abc", "abc", -1, -1));
    cr_assert_not(if_range("", "\"\"", -1, -1));
    cr_assert(if_range("\"\"", "\"\"", -1, -1));
}

Test(if_range, dates_exact_and_strong)
{
    /* Last-Modified one second before Date: strong */
    cr_assert(if_range(D_T0_M1, NULL, T0 - 1, T0));
    cr_assert(if_range(D_T0_M1, "\"e\"", T0 - 1, T0 + 3600));
    /* not equal, in either direction */
    cr_assert_not(if_range(D_T0, NULL, T0 - 1, T0 + 10));
    cr_assert_not(if_range(D_T0_M1, NULL, T0, T0 + 10));
    /* Last-Modified == Date: weak, never matches */
    cr_assert_not(if_range(D_T0, NULL, T0, T0));
    /* no Date or no Last-Modified */
    cr_assert_not(if_range(D_T0, NULL, T0, -1));
    cr_assert_not(if_range(D_T0, NULL, -1, T0 + 10));
    /* garbage and near-dates */
    cr_assert_not(if_range("yesterday", NULL, T0, T0 + 10));
    cr_assert_not(if_range("Sun, 06 Nov 1994 08:49:37 gmt", NULL, T0, T0 + 10));
    /* a date starting with 'W' is not mistaken for a weak tag */
    cr_assert(if_range("Wed, 09 Nov 1994 08:49:37 GMT", NULL, T0 + 3 * 86400, T0 + 4 * 86400));
    cr_assert(if_range(D_T0, NULL, T0, T0 + 10));
    cr_assert_not(policy_if_range_ok(NULL, 0, "\"a\"", T0, T0 + 1));
}

/* ---- policy_range_request ---- */


Test(range, request_decision)
{
    policy_range_set_t s;
    http_fields_t h = fields("Range", "bytes=0-9", NULL);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, "\"e\"", -1, -1, 100, &s), POLICY_RANGE_OK);
    cr_assert_str_eq(show(&s), "0-9");
    cr_assert_eq(policy_range_request(&h, HTTP_HEAD, "\"e\"", -1, -1, 100, &s), POLICY_RANGE_NONE);
    cr_assert_eq(policy_range_request(&h, HTTP_POST, "\"e\"", -1, -1, 100, &s), POLICY_RANGE_NONE);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, "\"e\"", -1, -1, 5, &s), POLICY_RANGE_OK);
    cr_assert_str_eq(show(&s), "0-4");
    http_fields_free(&h);

    h = fields("Range", "bytes=200-", NULL);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, NULL, -1, -1, 100, &s), POLICY_RANGE_UNSATISFIABLE);
    http_fields_free(&h);

    h = fields("Range", "bytes=0-1", "Range", "bytes=2-3", NULL); /* ambiguous: ignored */
    cr_assert_eq(policy_range_request(&h, HTTP_GET, NULL, -1, -1, 100, &s), POLICY_RANGE_NONE);
    http_fields_free(&h);

    h = fields("X", "y", NULL);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, NULL, -1, -1, 100, &s), POLICY_RANGE_NONE);
    http_fields_free(&h);

    h = fields("Range", "bytes=0-1", "If-Range", "\"e\"", NULL);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, "\"e\"", -1, -1, 100, &s), POLICY_RANGE_OK);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, "\"f\"", -1, -1, 100, &s), POLICY_RANGE_NONE);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, "W/\"e\"", -1, -1, 100, &s), POLICY_RANGE_NONE);
    http_fields_free(&h);

    h = fields("Range", "bytes=0-1", "If-Range", D_T0_M1, NULL);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, NULL, T0 - 1, T0, 100, &s), POLICY_RANGE_OK);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, NULL, T0 - 1, T0 - 1, 100, &s), POLICY_RANGE_NONE);
    http_fields_free(&h);

    /* a failed If-Range also suppresses the 416 */
    h = fields("Range", "bytes=500-", "If-Range", "\"x\"", NULL);
    cr_assert_eq(policy_range_request(&h, HTTP_GET, "\"e\"", -1, -1, 100, &s), POLICY_RANGE_NONE);
    http_fields_free(&h);
}

/* ---- Content-Range and multipart ---- */

Test(range, content_range)
{
    char cr[POLICY_CONTENT_RANGE_SIZE];
    policy_range_t r = { 0, 99 };
    cr_assert_eq(policy_range_content_range(cr, &r, 1000), strlen("bytes 0-99/1000"));
    cr_assert_str_eq(cr, "bytes 0-99/1000");
    cr_assert_eq(policy_range_content_range(cr, NULL, 1000), strlen("bytes */1000"));
    cr_assert_str_eq(cr, "bytes */1000");
    r = (policy_range_t){ INT64_MAX - 1, INT64_MAX - 1 };
    size_t n = policy_range_content_range(cr, &r, INT64_MAX);
    cr_assert_str_eq(cr, "bytes 9223372036854775806-9223372036854775806/9223372036854775807");
    cr_assert_eq(n, strlen(cr));
    cr_assert_lt(n, POLICY_CONTENT_RANGE_SIZE);
}

Test(multipart, exact_body)
{
    policy_range_set_t s;
    cr_assert_eq(parse("bytes=0-1,5-7", 10, &s), POLICY_RANGE_OK);
    const char *data = "0123456789";
    buf_t b;
    buf_init(&b, 0);
    for (unsigned i = 0; i < s.n; i++) {
        cr_assert_eq(policy_multipart_part_header(&b, &s, i, "text/plain", "XyZ"), 0);
        cr_assert_eq(buf_append(&b, data + s.r[i].start, (size_t)(s.r[i].end - s.r[i].start + 1)), 0);
    }
    cr_assert_eq(policy_multipart_close(&b, "XyZ"), 0);
    const char *want = "\r\n--XyZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01"
                       "\r\n--XyZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-7/10\r\n\r\n567"
                       "\r\n--XyZ--\r\n";
    cr_assert_eq(b.len, strlen(want));
    cr_assert_eq(memcmp(b.data, want, b.len), 0);
    int64_t total = -1;
    cr_assert_eq(policy_multipart_length(&s, "text/plain", "XyZ", &total), 0);
    cr_assert_eq(total, (int64_t)b.len);

    /* without a Content-Type the line is left out, and the length agrees */
    buf_reset(&b);
    for (unsigned i = 0; i < s.n; i++) {
        cr_assert_eq(policy_multipart_part_header(&b, &s, i, NULL, "b"), 0);
        cr_assert_eq(buf_append(&b, data + s.r[i].start, (size_t)(s.r[i].end - s.r[i].start + 1)), 0);
    }
    cr_assert_eq(policy_multipart_close(&b, "b"), 0);
    cr_assert_null(strstr(b.data, "Content-Type"));
    cr_assert_eq(policy_multipart_length(&s, "", "b", &total), 0);
    cr_assert_eq(total, (int64_t)b.len);

    buf_reset(&b);
    cr_assert_eq(policy_multipart_content_type(&b, "XyZ"), 0);
    cr_assert_str_eq(b.data, "multipart/byteranges; boundary=XyZ");
    buf_free(&b);
}

Test(multipart, rejects_bad_input)
{
    policy_range_set_t s;
    int64_t total;
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(parse("bytes=0-1,5-7", 10, &s), POLICY_RANGE_OK);
    cr_assert_eq(policy_multipart_length(&s, "text/plain\r\nX-Evil: 1", "b", &total), -EINVAL);
    cr_assert_eq(policy_multipart_part_header(&b, &s, 0, "text/plain\nX: 1", "b"), -EINVAL);
    cr_assert_eq(policy_multipart_length(&s, "text/plain", "", &total), -EINVAL);
    cr_assert_eq(policy_multipart_length(&s, "text/plain", NULL, &total), -EINVAL);
    cr_assert_eq(policy_multipart_length(&s, "text/plain", "a b", &total), -EINVAL);
    cr_assert_eq(policy_multipart_length(&s, "text/plain", "a\"b", &total), -EINVAL);
    cr_assert_eq(policy_multipart_close(&b, "a\r\nb"), -EINVAL);
    char longb[80];
    memset(longb, 'a', 71);
    longb[71] = '\0';
    cr_assert_eq(policy_multipart_length(&s, NULL, longb, &total), -EINVAL);
    longb[70] = '\0';
    cr_assert_eq(policy_multipart_length(&s, NULL, longb, &total), 0);
    cr_assert_eq(policy_multipart_part_header(&b, &s, 2, NULL, "b"), -EINVAL);
    policy_range_set_t bad = s;
    bad.r[1].end = 10; /* past the length */
    cr_assert_eq(policy_multipart_length(&bad, NULL, "b", &total), -EINVAL);
    bad.n = 0;
    cr_assert_eq(policy_multipart_length(&bad, NULL, "b", &total), -EINVAL);
    cr_assert_eq(b.len, 0);
    buf_free(&b);
}

Test(multipart, overflow)
{
    policy_range_set_t s = { .n = 2, .length = INT64_MAX };
    s.r[0] = (policy_range_t){ 0, INT64_MAX / 2 };
    s.r[1] = (policy_range_t){ INT64_MAX / 2 + 1, INT64_MAX - 1 };
    int64_t total;
    cr_assert_eq(policy_multipart_length(&s, NULL, "b", &total), -EOVERFLOW);
}

Test(multipart, boundary)
{
    char b[36];
    cr_assert_str_eq(policy_multipart_boundary(b, 1, UINT64_MAX), "cdn0000000000000001ffffffffffffffff");
    cr_assert(policy_multipart_boundary_ok(b));
    cr_assert(policy_multipart_boundary_ok("A-z_0.9+'"));
    cr_assert_not(policy_multipart_boundary_ok("a:b"));
}
