/* Unit tests for policy_update: merging a 304 into stored fields
 * (multi-line fields, order, excluded and hop-by-hop fields, qualified
 * private / no-cache) and which stored response a 304 may update. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy_update.h"
#include "../test_fields.h"


/* "Name: value\n" lines, for whole-list assertions. */
static const char *dump(const http_fields_t *h)
{
    static char out[2048];
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < h->n; i++) {
        http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
        w += (size_t)snprintf(out + w, sizeof out - w, "%.*s: %.*s\n", (int)n.len, n.p, (int)v.len, v.p);
    }
    return out;
}

static const char *merge(const http_fields_t *stored, const http_fields_t *r304)
{
    http_fields_t out;
    http_fields_init(&out, 0);
    cr_assert_eq(policy_update_fields(&out, stored, r304), 0);
    const char *s = dump(&out);
    http_fields_free(&out);
    return s;
}

Test(update, replaces_and_adds)
{
    http_fields_t s = fields("Date", "old", "Cache-Control", "max-age=60", "ETag", "\"a\"", "Content-Type",
                             "text/plain", "Content-Length", "5", "X-Keep", "1", NULL);
    http_fields_t r = fields("Date", "new", "cache-control", "max-age=120", "X-New", "2", NULL);
    cr_assert_str_eq(merge(&s, &r), "Date: new\n"
                                    "cache-control: max-age=120\n"
                                    "ETag: \"a\"\n"
                                    "Content-Type: text/plain\n"
                                    "Content-Length: 5\n"
                                    "X-Keep: 1\n"
                                    "X-New: 2\n");
    http_fields_free(&s);
    http_fields_free(&r);
}

Test(update, multi_line_fields)
{
    /* every stored line of a name goes, all the 304's lines take the
     * place of the first one, in the 304's order */
    http_fields_t s = fields("Link", "<a>", "X", "1", "Link", "<b>", "Link", "<c>", NULL);
    http_fields_t r = fields("Link", "<d>", "Y", "2", "link", "<e>", NULL);
    cr_assert_str_eq(merge(&s, &r), "Link: <d>\nlink: <e>\nX: 1\nY: 2\n");
    http_fields_free(&s);
    http_fields_free(&r);
    /* names only in the 304, several lines: appended in order */
    s = fields("A", "1", NULL);
    r = fields("B", "1", "C", "1", "B", "2", NULL);
    cr_assert_str_eq(merge(&s, &r), "A: 1\nB: 1\nC: 1\nB: 2\n");
    http_fields_free(&s);
    http_fields_free(&r);
}

Test(update, excluded_fields_kept_from_storage)
{
    http_fields_t s = fields("Content-Length", "1000", "Content-Type", "image/png", "Content-Encoding", "gzip",
                             "ETag", "\"a\"", NULL);
    http_fields_t r = fields("Content-Length", "0", "Content-Type", "text/html", "Content-Encoding", "br",
                             "Content-Range", "bytes 0-1/2", "Set-Cookie", "s=1", "ETag", "\"a\"", "Transfer-Encoding",
                             "chunked", "Connection", "close, X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5",
                             "Proxy-Authenticate", "Basic", "Upgrade", "h2c", "TE", "trailers", "Trailer", "X",
                             NULL);
    cr_assert_str_eq(merge(&s, &r), "Content-Length: 1000\n"
                                    "Content-Type: image/png\n"
                                    "Content-Encoding: gzip\n"
                                    "ETag: \"a\"\n");
    http_fields_free(&s);
    http_fields_free(&r);
}

Test(update, qualified_private_and_no_cache)
{
    http_fields_t s = fields("X-User", "alice", "X-Trace", "1", "X-Other", "o", NULL);
    http_fields_t r = fields("Cache-Control", "max-age=60, private=\"X-User\"", "CDN-Cache-Control",
                             "no-cache=\"x-trace\"", "X-User", "bob", "X-Trace", "2", NULL);
    cr_assert_str_eq(merge(&s, &r), "X-Other: o\n"
                                    "Cache-Control: max-age=60, private=\"X-User\"\n"
                                    "CDN-Cache-Control: no-cache=\"x-trace\"\n");
    http_fields_free(&s);
    http_fields_free(&r);
}

Test(update, field_ok)
{
    cr_assert(policy_update_field_ok(NULL, "Cache-Control", 13));
    cr_assert(policy_update_field_ok(NULL, "Expires", 7));
    cr_assert_not(policy_update_field_ok(NULL, "content-length", 14));
    cr_assert_not(policy_update_field_ok(NULL, "Proxy-Connection", 16));
    http_fields_t r = fields("Connection", "x-a", NULL);
    cr_assert_not(policy_update_field_ok(&r, "X-A", 3));
    cr_assert(policy_update_field_ok(&r, "X-B", 3));
    http_fields_free(&r);
}

Test(update, empty_inputs_and_caps)
{
    http_fields_t s = fields("A", "1", NULL), e = fields(NULL);
    cr_assert_str_eq(merge(&s, &e), "A: 1\n");
    cr_assert_str_eq(merge(&e, &s), "A: 1\n");
    cr_assert_str_eq(merge(&e, &e), "");
    /* out is reset first, and reset again on error */
    http_fields_t out;
    http_fields_init(&out, 0);
    http_fields_add(&out, "Junk", 4, "x", 1);
    cr_assert_eq(policy_update_fields(&out, &s, &e), 0);
    cr_assert_str_eq(dump(&out), "A: 1\n");
    http_fields_free(&out);
    http_fields_t big = fields("A", "0123456789012345678901234567890123456789", "B", "0123456789", NULL);
    http_fields_init(&out, 32);
    cr_assert_eq(policy_update_fields(&out, &big, &e), -E2BIG);
    cr_assert_eq(out.n, 0);
    http_fields_free(&out);
    http_fields_free(&big);
    http_fields_free(&s);
    http_fields_free(&e);
}

/* ---- which stored response a 304 updates (RFC 9111 4.3.4) ---- */

#define LM1 "Sun, 06 Nov 1994 08:49:37 GMT"
#define LM2 "Sun, 06 Nov 1994 08:49:38 GMT"

static bool matches(http_fields_t s, http_fields_t r, size_t n)
{
    bool m = policy_304_matches(&s, &r, n);
    http_fields_free(&s);
    http_fields_free(&r);
    return m;
}

Test(update_match, strong_etag)
{
    cr_assert(matches(fields("ETag", "\"a\"", NULL), fields("ETag", "\"a\"", NULL), 1));
    cr_assert(matches(fields("ETag", " \"a\" ", NULL), fields("ETag", "\"a\"", NULL), 3));
    cr_assert_not(matches(fields("ETag", "\"a\"", NULL), fields("ETag", "\"b\"", NULL), 1));
    cr_assert_not(matches(fields("ETag", "W/\"a\"", NULL), fields("ETag", "\"a\"", NULL), 1));
    /* a strong tag the stored response lacks updates nothing, even with
     * a matching Last-Modified */
    cr_assert_not(matches(fields("Last-Modified", LM1, NULL), fields("ETag", "\"a\"", "Last-Modified", LM1, NULL), 1));
    cr_assert_not(matches(fields("ETag", "\"b\"", "Last-Modified", LM1, NULL),
                          fields("ETag", "\"a\"", "Last-Modified", LM1, NULL), 1));
}

Test(update_match, weak_etag)
{
    cr_assert(matches(fields("ETag", "W/\"a\"", NULL), fields("ETag", "W/\"a\"", NULL), 1));
    cr_assert(matches(fields("ETag", "\"a\"", NULL), fields("ETag", "W/\"a\"", NULL), 1));
    cr_assert_not(matches(fields("ETag", "W/\"a\"", NULL), fields("ETag", "W/\"b\"", NULL), 1));
    cr_assert_not(matches(fields("ETag", "\"a\"", NULL), fields("ETag", "garbage", NULL), 1));
    cr_assert_not(matches(fields("ETag", "garbage", NULL), fields("ETag", "garbage", NULL), 1));
}

Test(update_match, last_modified)
{
    cr_assert(matches(fields("Last-Modified", LM1, NULL), fields("Last-Modified", LM1, NULL), 1));
    cr_assert(matches(fields("ETag", "\"a\"", "Last-Modified", LM1, NULL), fields("Last-Modified", LM1, NULL), 2));
    cr_assert_not(matches(fields("Last-Modified", LM1, NULL), fields("Last-Modified", LM2, NULL), 1));
    cr_assert_not(matches(fields(NULL), fields("Last-Modified", LM1, NULL), 1));
}

Test(update_match, no_validators)
{
    cr_assert(matches(fields("Date", LM1, NULL), fields("Date", LM2, NULL), 1));
    cr_assert_not(matches(fields("Date", LM1, NULL), fields("Date", LM2, NULL), 2));
    /* a bare 304 to a request built from one stored response updates it,
     * whatever validators that response has */
    cr_assert(matches(fields("ETag", "\"a\"", NULL), fields(NULL), 1));
    cr_assert(matches(fields("Last-Modified", LM1, NULL), fields("Date", LM2, NULL), 1));
    cr_assert_not(matches(fields("ETag", "\"a\"", NULL), fields(NULL), 2));
    /* an invalid Last-Modified is no validator */
    cr_assert(matches(fields("Last-Modified", "junk", NULL), fields("Last-Modified", "junk", NULL), 1));
}
