/* policy_cond: conditional requests against a stored response (see
 * include/policy_cond.h).
 *
 * Entity-tag lists are parsed here rather than with http_list_next: an
 * opaque-tag may contain a comma (etagc includes %x2C), so splitting on
 * commas first would cut `"a,b"` in two and match the wrong member. */
#include "policy_cond.h"

#include <llhttp.h>
#include <string.h>
#include <strings.h>

#include "policy_date.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text (RFC 9110 8.8.3) */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

size_t policy_etag_parse(const char *p, size_t n, bool *weak, http_slice_t *opaque)
{
    size_t i = 0;
    *weak = false;
    if (n >= 2 && p[0] == 'W' && p[1] == '/') {
        *weak = true;
        i = 2;
    }
    if (i >= n || p[i] != '"')
        return 0;
    size_t start = i++;
    while (i < n && is_etagc((unsigned char)p[i]))
        i++;
    if (i >= n || p[i] != '"')
        return 0;
    i++;
    opaque->p = p + start;
    opaque->len = i - start;
    return i;
}

/* One whole entity-tag in p[0..n), OWS around allowed. */
static bool etag_whole(const char *p, size_t n, bool *weak, http_slice_t *opaque)
{
    http_slice_t s = http_trim((http_slice_t){ p, n });
    size_t used = s.len ? policy_etag_parse(s.p, s.len, weak, opaque) : 0;
    return used && used == s.len;
}

static bool opaque_eq(http_slice_t a, http_slice_t b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

bool policy_etag_match(const char *a, size_t alen, const char *b, size_t blen, bool strong)
{
    bool wa, wb;
    http_slice_t oa, ob;
    if (!a || !b || !etag_whole(a, alen, &wa, &oa) || !etag_whole(b, blen, &wb, &ob))
        return false;
    if (strong && (wa || wb))
        return false;
    return opaque_eq(oa, ob);
}

bool policy_etag_list_match(const char *v, size_t len, const char *etag, bool etag_exists, bool strong)
{
    http_slice_t t = http_trim((http_slice_t){ v, len });
    if (t.len == 1 && t.p[0] == '*')
        return etag_exists;
    if (!etag)
        return false;
    size_t elen = strlen(etag);
    size_t i = 0;
    while (i < t.len) {
        while (i < t.len && (is_ows(t.p[i]) || t.p[i] == ','))
            i++;
        if (i == t.len)
            break;
        bool weak;
        http_slice_t opaque;
        size_t used = policy_etag_parse(t.p + i, t.len - i, &weak, &opaque);
        size_t end = i + used;
        while (end < t.len && is_ows(t.p[end]))
            end++;
        if (used && (end == t.len || t.p[end] == ',')) {
            if (policy_etag_match(t.p + i, used, etag, elen, strong))
                return true;
            i = end;
        } else {
            /* not an entity-tag (unquoted, "*" in a list...): matches
             * nothing; resume after the next comma */
            while (i < t.len && t.p[i] != ',')
                i++;
        }
    }
    return false;
}

/* Exactly one line of `name` that parses as an HTTP-date, else -1. */
static int64_t single_date(const http_fields_t *h, const char *name)
{
    long i = http_fields_find(h, name, 0);
    if (i < 0 || http_fields_find(h, name, (size_t)i + 1) >= 0)
        return -1;
    http_slice_t v = http_fields_value(h, (size_t)i);
    return policy_date_parse(v.p, v.len);
}

policy_cond_result_t policy_cond_eval(const http_fields_t *req, int method, const char *etag, int64_t last_modified,
                                      int64_t date)
{
    /* RFC 9110 13.2.2 steps 1-2 belong to the origin. */
    if (http_fields_get(req, "If-Match", NULL) || http_fields_get(req, "If-Unmodified-Since", NULL))
        return POLICY_COND_FORWARD;
    bool get_head = method == HTTP_GET || method == HTTP_HEAD;
    if (http_fields_get(req, "If-None-Match", NULL)) {
        if (!get_head)
            return POLICY_COND_FORWARD;
        /* Step 3: weak comparison; "*" is true for any existing
         * representation, and the stored response is one. */
        for (long i = http_fields_find(req, "If-None-Match", 0); i >= 0;
             i = http_fields_find(req, "If-None-Match", (size_t)i + 1)) {
            http_slice_t v = http_fields_value(req, (size_t)i);
            if (policy_etag_list_match(v.p, v.len, etag, true, false))
                return POLICY_COND_NOT_MODIFIED;
        }
        return POLICY_COND_SERVE;
    }
    if (!get_head || !http_fields_get(req, "If-Modified-Since", NULL))
        return POLICY_COND_SERVE;
    /* Step 4. RFC 9110 13.1.3: ignore an invalid or multi-valued date;
     * RFC 9111 4.3.2: without Last-Modified, compare with Date. */
    int64_t ims = single_date(req, "If-Modified-Since");
    int64_t ref = last_modified >= 0 ? last_modified : date;
    if (ims < 0 || ref < 0)
        return POLICY_COND_SERVE;
    return ref <= ims ? POLICY_COND_NOT_MODIFIED : POLICY_COND_SERVE;
}

bool policy_cond_304_field(const char *name, size_t nlen)
{
    /* RFC 9110 15.4.5's list, plus Last-Modified (it lets a client or
     * downstream cache without ETag support revalidate) and
     * CDN-Cache-Control (freshness for the CDNs downstream, RFC 9213). */
    static const char *const keep[] = { "Cache-Control", "CDN-Cache-Control", "Content-Location", "Date",
                                        "ETag",          "Expires",           "Last-Modified",    "Vary" };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (strlen(keep[i]) == nlen && strncasecmp(name, keep[i], nlen) == 0)
            return true;
    return false;
}
