/* Fuzz target: Range requests against a stored representation
 * (policy_range). The first byte chooses the representation's length
 * (0, 1, 100, 2^40 or INT64_MAX) and how the rest is read:
 *   bit 3 clear: one Range field value, not NUL-terminated
 *                (policy_range_parse), and If-Range with the same bytes;
 *   bit 3 set:   "Name: value" request lines (Range, If-Range...) for the
 *                whole decision, policy_range_request on a GET (bit 4: a
 *                HEAD), against a fixed stored ETag and dates.
 * A 206 must name 1..POLICY_RANGE_MAX ranges within the length, ascending,
 * disjoint and not adjacent; anything else names none. Its framing must
 * add up: the announced multipart Content-Length equals the bytes the
 * part headers, the parts and the closing delimiter really take. */
#include <errno.h>
#include <llhttp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_input.h"
#include "policy_cond.h"
#include "policy_range.h"

static const int64_t lengths[] = { 0, 1, 100, INT64_C(1) << 40, INT64_MAX };
static const char etag[] = "\"v1\"";
#define LAST_MODIFIED INT64_C(1700000000)
#define DATE INT64_C(1700000100)

static void must(bool ok)
{
    if (!ok)
        abort();
}

static void check(policy_range_result_t res, const policy_range_set_t *s, int64_t length)
{
    must(s->length == length);
    if (res != POLICY_RANGE_OK) {
        must((res == POLICY_RANGE_NONE || res == POLICY_RANGE_UNSATISFIABLE) && s->n == 0);
        char cr[POLICY_CONTENT_RANGE_SIZE];
        size_t l = policy_range_content_range(cr, NULL, length);
        must(l > 0 && l < sizeof cr && strlen(cr) == l);
        return;
    }
    must(s->n >= 1 && s->n <= POLICY_RANGE_MAX);
    for (unsigned i = 0; i < s->n; i++) {
        must(s->r[i].start >= 0 && s->r[i].start <= s->r[i].end && s->r[i].end < length);
        must(i == 0 || s->r[i].start > s->r[i - 1].end + 1);
    }
    /* The framing: what is announced is what is sent. */
    static const char *const types[] = { "text/plain; charset=utf-8", NULL };
    char boundary[36];
    policy_multipart_boundary(boundary, 0x0123456789abcdefu, 0xfedcba9876543210u);
    for (size_t t = 0; t < 2; t++) {
        int64_t total = 0;
        int rc = policy_multipart_length(s, types[t], boundary, &total);
        must(rc == 0 || rc == -EOVERFLOW);
        buf_t out;
        buf_init(&out, 0);
        __int128 body = 0;
        for (unsigned i = 0; i < s->n; i++) {
            char cr[POLICY_CONTENT_RANGE_SIZE];
            size_t l = policy_range_content_range(cr, &s->r[i], length);
            must(l > 0 && l < sizeof cr && strlen(cr) == l);
            must(policy_multipart_part_header(&out, s, i, types[t], boundary) == 0);
            body += s->r[i].end - s->r[i].start + 1;
        }
        must(policy_multipart_part_header(&out, s, s->n, types[t], boundary) != 0);
        must(policy_multipart_close(&out, boundary) == 0);
        /* -EOVERFLOW exactly when the body would pass INT64_MAX. */
        if (rc)
            must(body + (__int128)out.len > INT64_MAX);
        else
            must((__int128)total == body + (__int128)out.len);
        buf_free(&out);
    }
}

static void raw(const char *v, size_t n, int64_t length)
{
    policy_range_set_t s;
    check(policy_range_parse(v, n, length, &s), &s, length);
    /* The same bytes as an If-Range: a strong tag or an exact date only. */
    if (policy_if_range_ok(v, n, etag, LAST_MODIFIED, DATE))
        must(policy_if_range_ok(v, n, etag, LAST_MODIFIED, LAST_MODIFIED + 1));
    must(!policy_if_range_ok(v, n, etag, LAST_MODIFIED, LAST_MODIFIED) ||
         policy_etag_match(v, n, etag, sizeof etag - 1, true));
}

static void request(const uint8_t *d, size_t n, int64_t length, int method)
{
    http_fields_t h;
    policy_range_set_t s;
    http_fields_init(&h, 0);
    fuzz_fields(&h, d, n);
    policy_range_result_t rc = policy_range_request(&h, method, etag, LAST_MODIFIED, DATE, length, &s);
    check(rc, &s, length);
    if (method != HTTP_GET || http_fields_count(&h, "Range") != 1)
        must(rc == POLICY_RANGE_NONE);
    rc = policy_range_request(&h, HTTP_GET, NULL, -1, -1, length, &s);
    check(rc, &s, length);
    http_fields_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int64_t length = lengths[(data[0] & 7) % 5];
    char *v = fuzz_dup(data + 1, size - 1);
    if (data[0] & 8)
        request((const uint8_t *)v, size - 1, length, data[0] & 16 ? HTTP_HEAD : HTTP_GET);
    else
        raw(v, size - 1, length);
    free(v);
    return 0;
}
