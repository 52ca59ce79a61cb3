/* policy_range: Range / If-Range evaluation and multipart/byteranges
 * framing (see include/policy_range.h).
 *
 * Everything a client sends is bounded before any work: the member count
 * is capped while parsing, numbers saturate instead of overflowing, and
 * the answer never has more than POLICY_RANGE_MAX parts, so a hostile
 * Range header costs at most a few hundred comparisons and can never make
 * the body larger than the multipart overhead of 16 parts. */
#include "policy_range.h"

#include <errno.h>
#include <inttypes.h>
#include <llhttp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy_cond.h"
#include "policy_date.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 1*DIGIT at p[*i..n), saturating at INT64_MAX; false when no digit. */
static bool read_pos(const char *p, size_t n, size_t *i, int64_t *out)
{
    int64_t v = 0;
    size_t start = *i;
    for (; *i < n && is_digit(p[*i]); (*i)++) {
        int d = p[*i] - '0';
        v = v > (INT64_MAX - d) / 10 ? INT64_MAX : v * 10 + d;
    }
    *out = v;
    return *i > start;
}

typedef enum { SPEC_BAD, SPEC_RANGE, SPEC_NONE, SPEC_EMPTY_SUFFIX } spec_t;

/* One trimmed, non-empty range-spec m[0..n) against length. */
static spec_t parse_spec(const char *m, size_t n, int64_t length, policy_range_t *out)
{
    size_t i = 0;
    int64_t first, last;
    if (m[0] == '-') {
        i = 1;
        if (!read_pos(m, n, &i, &last) || i != n)
            return SPEC_BAD;
        if (last == 0)
            return SPEC_NONE;
        if (length == 0)
            return SPEC_EMPTY_SUFFIX;
        out->start = last >= length ? 0 : length - last;
        out->end = length - 1;
        return SPEC_RANGE;
    }
    if (!read_pos(m, n, &i, &first) || i == n || m[i] != '-')
        return SPEC_BAD;
    i++;
    if (i == n)
        last = INT64_MAX;
    else if (!read_pos(m, n, &i, &last) || i != n || last < first)
        return SPEC_BAD;
    if (first >= length)
        return SPEC_NONE;
    out->start = first;
    out->end = last >= length ? length - 1 : last;
    return SPEC_RANGE;
}

static void sort_ranges(policy_range_t *r, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        policy_range_t t = r[i];
        unsigned j = i;
        for (; j > 0 && r[j - 1].start > t.start; j--)
            r[j] = r[j - 1];
        r[j] = t;
    }
}

policy_range_result_t policy_range_parse(const char *v, size_t len, int64_t length, policy_range_set_t *out)
{
    policy_range_t all[POLICY_RANGE_MEMBERS_MAX];
    unsigned n = 0, members = 0, specs = 0;
    bool empty_suffix = false;

    memset(out, 0, sizeof *out);
    out->length = length;
    if (!v || length < 0)
        return POLICY_RANGE_NONE;
    http_slice_t t = http_trim((http_slice_t){ v, len });
    if (t.len < 6 || strncasecmp(t.p, "bytes=", 6) != 0)
        return POLICY_RANGE_NONE; /* another unit, or "bytes =" */
    for (size_t i = 6; i <= t.len;) {
        size_t j = i;
        while (j < t.len && t.p[j] != ',')
            j++;
        if (++members > POLICY_RANGE_MEMBERS_MAX)
            return POLICY_RANGE_NONE;
        http_slice_t m = http_trim((http_slice_t){ t.p + i, j - i });
        i = j + 1;
        if (!m.len)
            continue; /* #rule: empty list elements are ignored */
        specs++;
        switch (parse_spec(m.p, m.len, length, &all[n])) {
        case SPEC_BAD:
            return POLICY_RANGE_NONE;
        case SPEC_RANGE:
            n++;
            break;
        case SPEC_EMPTY_SUFFIX:
            empty_suffix = true;
            break;
        case SPEC_NONE:
            break;
        }
    }
    if (!specs)
        return POLICY_RANGE_NONE; /* "bytes=" or "bytes=,": 1#range-spec violated */
    if (!n)
        return empty_suffix ? POLICY_RANGE_NONE : POLICY_RANGE_UNSATISFIABLE;

    /* RFC 9110 15.3.7.2 lets a server coalesce and reorder. */
    sort_ranges(all, n);
    unsigned k = 0;
    for (unsigned i = 1; i < n; i++) {
        if (all[i].start <= all[k].end + 1) { /* end < length <= INT64_MAX: no overflow */
            if (all[i].end > all[k].end)
                all[k].end = all[i].end;
        } else {
            all[++k] = all[i];
        }
    }
    if (k + 1 > POLICY_RANGE_MAX)
        return POLICY_RANGE_NONE;
    out->n = k + 1;
    memcpy(out->r, all, out->n * sizeof all[0]);
    return POLICY_RANGE_OK;
}

policy_range_result_t policy_range_request(const http_fields_t *req, int method, const char *etag,
                                           int64_t last_modified, int64_t date, int64_t length,
                                           policy_range_set_t *out)
{
    memset(out, 0, sizeof *out);
    out->length = length;
    /* RFC 9110 14.2: GET is the only method range handling is defined for. */
    long i = http_fields_find(req, "Range", 0);
    if (method != HTTP_GET || i < 0 || http_fields_find(req, "Range", (size_t)i + 1) >= 0)
        return POLICY_RANGE_NONE;
    long k = http_fields_find(req, "If-Range", 0);
    if (k >= 0) {
        http_slice_t ir = http_fields_value(req, (size_t)k);
        if (http_fields_find(req, "If-Range", (size_t)k + 1) >= 0 ||
            !policy_if_range_ok(ir.p, ir.len, etag, last_modified, date))
            return POLICY_RANGE_NONE;
    }
    http_slice_t v = http_fields_value(req, (size_t)i);
    return policy_range_parse(v.p, v.len, length, out);
}

bool policy_if_range_ok(const char *v, size_t len, const char *etag, int64_t last_modified, int64_t date)
{
    if (!v)
        return false;
    http_slice_t t = http_trim((http_slice_t){ v, len });
    /* "W/" and not just 'W': dates start with "Wed" */
    if (t.len && (t.p[0] == '"' || (t.len >= 2 && t.p[0] == 'W' && t.p[1] == '/'))) {
        bool weak;
        http_slice_t opaque;
        if (policy_etag_parse(t.p, t.len, &weak, &opaque) != t.len || weak || !etag)
            return false;
        return policy_etag_match(t.p, t.len, etag, strlen(etag), true);
    }
    int64_t d = policy_date_parse(t.p, t.len);
    /* RFC 9110 8.8.2.2: Last-Modified is strong for a cache only when the
     * stored Date is at least one second later. */
    if (d < 0 || last_modified < 0 || date < 0 || last_modified > date - 1)
        return false;
    return d == last_modified;
}

size_t policy_range_content_range(char out[POLICY_CONTENT_RANGE_SIZE], const policy_range_t *r, int64_t length)
{
    int n = r ? snprintf(out, POLICY_CONTENT_RANGE_SIZE, "bytes %" PRId64 "-%" PRId64 "/%" PRId64, r->start, r->end,
                         length)
              : snprintf(out, POLICY_CONTENT_RANGE_SIZE, "bytes */%" PRId64, length);
    return n < 0 ? 0 : (size_t)n;
}

bool policy_multipart_boundary_ok(const char *b)
{
    size_t n = b ? strlen(b) : 0;
    if (n < 1 || n > POLICY_BOUNDARY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        bool ok = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '\'' || c == '+' ||
                  c == '-' || c == '.' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

/* The part's media type goes into our own header text: no CR/LF or other
 * controls may smuggle in lines. NULL and "" mean none. */
static bool ctype_ok(const char *ct)
{
    for (const char *p = ct; p && *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

/* Header text of one part; both length and appending share it, so the
 * announced Content-Length always equals the bytes sent. */
static int part_header(buf_t *out, size_t *len, const policy_range_set_t *s, unsigned i, const char *ct,
                       const char *boundary)
{
    char cr[POLICY_CONTENT_RANGE_SIZE];
    policy_range_content_range(cr, &s->r[i], s->length);
    bool has_ct = ct && *ct;
    if (len)
        *len = 4 + strlen(boundary) + 2 + (has_ct ? 14 + strlen(ct) + 2 : 0) + 15 + strlen(cr) + 4;
    if (!out)
        return 0;
    return buf_printf(out, "\r\n--%s\r\n%s%s%sContent-Range: %s\r\n\r\n", boundary, has_ct ? "Content-Type: " : "",
                      has_ct ? ct : "", has_ct ? "\r\n" : "", cr);
}

static bool set_ok(const policy_range_set_t *s)
{
    if (!s || s->n < 1 || s->n > POLICY_RANGE_MAX)
        return false;
    for (unsigned i = 0; i < s->n; i++)
        if (s->r[i].start < 0 || s->r[i].end < s->r[i].start || s->r[i].end >= s->length)
            return false;
    return true;
}

int policy_multipart_length(const policy_range_set_t *s, const char *content_type, const char *boundary,
                            int64_t *total)
{
    if (!set_ok(s) || !policy_multipart_boundary_ok(boundary) || !ctype_ok(content_type))
        return -EINVAL;
    /* Each part is < 2^63 bytes and there are at most 16, but their sum
     * can still overflow for absurd lengths: check every step. */
    int64_t sum = (int64_t)(4 + strlen(boundary) + 4); /* closing delimiter */
    for (unsigned i = 0; i < s->n; i++) {
        size_t h;
        part_header(NULL, &h, s, i, content_type, boundary);
        int64_t body = s->r[i].end - s->r[i].start + 1;
        if (body > INT64_MAX - sum || (int64_t)h > INT64_MAX - sum - body)
            return -EOVERFLOW;
        sum += body + (int64_t)h;
    }
    *total = sum;
    return 0;
}

int policy_multipart_part_header(buf_t *out, const policy_range_set_t *s, unsigned i, const char *content_type,
                                 const char *boundary)
{
    if (!set_ok(s) || i >= s->n || !policy_multipart_boundary_ok(boundary) || !ctype_ok(content_type))
        return -EINVAL;
    return part_header(out, NULL, s, i, content_type, boundary);
}

int policy_multipart_close(buf_t *out, const char *boundary)
{
    if (!policy_multipart_boundary_ok(boundary))
        return -EINVAL;
    return buf_printf(out, "\r\n--%s--\r\n", boundary);
}

int policy_multipart_content_type(buf_t *out, const char *boundary)
{
    if (!policy_multipart_boundary_ok(boundary))
        return -EINVAL;
    return buf_printf(out, "multipart/byteranges; boundary=%s", boundary);
}

char *policy_multipart_boundary(char out[36], uint64_t r1, uint64_t r2)
{
    snprintf(out, 36, "cdn%016" PRIx64 "%016" PRIx64, r1, r2);
    return out;
}
