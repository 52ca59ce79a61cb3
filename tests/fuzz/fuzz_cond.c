/* Fuzz target: conditional requests answered from a stored response
 * (policy_cond): If-None-Match / If-Match entity-tag lists,
 * If-Modified-Since / If-Unmodified-Since, and If-Range. The input is
 * "Name: value" request lines; the first byte chooses the method (GET,
 * HEAD, POST) and the stored response's ETag (strong, weak, with a comma,
 * none), against a fixed Last-Modified and Date.
 *
 * The verdict must follow RFC 9110 13.2.2 as the header states it: If-Match
 * or If-Unmodified-Since forward; If-None-Match decides alone on GET/HEAD;
 * a 304 needs a matching tag or a valid date at or after the stored one.
 * Every value is also fed to the entity-tag parser and list matcher on
 * its own, in its own buffer: a tag spans at most the value, matches
 * itself weakly, and strongly only when neither side is weak. */
#include <llhttp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "policy_cond.h"
#include "policy_date.h"
#include "policy_range.h"

static const char *const etags[] = { "\"v1\"", "W/\"v1\"", "\"a,b\"", NULL };
static const int methods[] = { HTTP_GET, HTTP_HEAD, HTTP_POST };
#define LAST_MODIFIED INT64_C(1700000000)
#define DATE INT64_C(1700000100)

static void must(bool ok)
{
    if (!ok)
        abort();
}

static void one_value(const char *v, size_t n, const char *etag)
{
    bool weak;
    http_slice_t opaque;
    size_t used = policy_etag_parse(v, n, &weak, &opaque);
    must(used <= n);
    if (used) {
        must(opaque.p >= v && opaque.len >= 2 && opaque.p + opaque.len == v + used);
        must(opaque.p[0] == '"' && opaque.p[opaque.len - 1] == '"');
        fuzz_touch(opaque.p, opaque.len);
        must(policy_etag_match(v, used, v, used, false));
        must(policy_etag_match(v, used, v, used, true) == !weak);
        /* A tag alone is a one-member list that matches it. */
        char *tag = fuzz_cstr((const uint8_t *)v, used);
        must(policy_etag_list_match(v, used, tag, true, false));
        free(tag);
    }
    bool m = policy_etag_list_match(v, n, etag, etag != NULL, false);
    if (policy_etag_list_match(v, n, etag, etag != NULL, true))
        must(m); /* strong implies weak */
    policy_if_range_ok(v, n, etag, LAST_MODIFIED, DATE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int method = methods[(data[0] & 3) % 3];
    const char *etag = etags[(data[0] >> 2) & 3];
    char *in = fuzz_dup(data + 1, size - 1);
    http_fields_t h;
    http_fields_init(&h, 0);
    fuzz_fields(&h, (const uint8_t *)in, size - 1);

    policy_cond_result_t r = policy_cond_eval(&h, method, etag, LAST_MODIFIED, DATE);
    bool get_head = method == HTTP_GET || method == HTTP_HEAD;
    bool inm = http_fields_count(&h, "If-None-Match") > 0;
    if (http_fields_count(&h, "If-Match") || http_fields_count(&h, "If-Unmodified-Since"))
        must(r == POLICY_COND_FORWARD);
    else if (inm && !get_head)
        must(r == POLICY_COND_FORWARD);
    else
        must(r == POLICY_COND_SERVE || (r == POLICY_COND_NOT_MODIFIED && get_head));
    if (r == POLICY_COND_NOT_MODIFIED && !inm) {
        /* The date path: exactly one valid If-Modified-Since, not before Last-Modified. */
        http_slice_t v;
        must(http_fields_count(&h, "If-Modified-Since") == 1 && http_fields_get(&h, "If-Modified-Since", &v));
        must(policy_date_parse(v.p, v.len) >= LAST_MODIFIED);
    }
    /* Without a stored Last-Modified the date is Date. */
    policy_cond_eval(&h, method, etag, -1, DATE);

    for (size_t i = 0; i < h.n; i++) {
        http_slice_t name = http_fields_name(&h, i), v = http_fields_value(&h, i);
        policy_cond_304_field(name.p, name.len);
        char *own = fuzz_dup((const uint8_t *)v.p, v.len);
        one_value(own, v.len, etag);
        free(own);
    }
    http_fields_free(&h);
    free(in);
    return 0;
}
