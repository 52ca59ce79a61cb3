/* policy_tags: surrogate keys of a response (see include/policy_tags.h). */
#include "policy_tags.h"

#include <string.h>

bool policy_tags_field(http_slice_t name)
{
    return http_name_eq(name, "surrogate-key") || http_name_eq(name, "cache-tag");
}

/* Is tag already a line of out[0, len)? Tag lists are short (bounded by
 * max_tags), so a linear scan is cheaper than a set. */
static bool seen(const buf_t *out, size_t start, const char *tag, size_t n)
{
    size_t i = start;
    while (i < out->len) {
        const char *nl = memchr(out->data + i, '\n', out->len - i);
        size_t l = (size_t)(nl - out->data) - i;
        if (l == n && memcmp(out->data + i, tag, n) == 0)
            return true;
        i += l + 1;
    }
    return false;
}

static bool is_sep(char c, bool comma)
{
    return c == ' ' || c == '\t' || (comma && c == ',');
}

int policy_tags_collect(buf_t *out, const http_fields_t *resp, size_t max_tags, size_t max_bytes,
                        policy_tags_result_t *res)
{
    size_t start = out->len;
    policy_tags_result_t r = { 0, 0 };
    for (size_t i = 0; i < resp->n; i++) {
        http_slice_t name = http_fields_name(resp, i), v = http_fields_value(resp, i);
        bool comma = http_name_eq(name, "cache-tag");
        if (!comma && !http_name_eq(name, "surrogate-key"))
            continue;
        size_t p = 0;
        while (p < v.len) {
            while (p < v.len && is_sep(v.p[p], comma))
                p++;
            size_t b = p;
            while (p < v.len && !is_sep(v.p[p], comma))
                p++;
            size_t n = p - b;
            if (!n || seen(out, start, v.p + b, n))
                continue;
            bool ok = n <= max_bytes && r.count < max_tags;
            for (size_t k = b; ok && k < p; k++)
                ok = (unsigned char)v.p[k] > 0x20 && v.p[k] != 0x7f; /* no control bytes in a key */
            if (!ok) {
                r.dropped++;
                continue;
            }
            int rc = buf_append(out, v.p + b, n);
            if (rc || (rc = buf_append(out, "\n", 1)))
                return rc;
            r.count++;
        }
    }
    if (res)
        *res = r;
    return 0;
}
