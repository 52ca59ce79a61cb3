/* policy_update: merging a 304 into a stored response's fields and
 * choosing which stored response a 304 applies to (see
 * include/policy_update.h). Field lists are short (tens of lines), so the
 * name lookups are plain scans. */
#include "policy_update.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "policy_cache.h"
#include "policy_cc.h"
#include "policy_cond.h"
#include "policy_date.h"

static bool slice_eq(http_slice_t a, http_slice_t b)
{
    return a.len == b.len && strncasecmp(a.p, b.p, a.len) == 0;
}

/* Index of the first field of h named like name at or after from, or -1. */
static long find_slice(const http_fields_t *h, http_slice_t name, size_t from)
{
    for (size_t i = from; i < h->n; i++)
        if (slice_eq(http_fields_name(h, i), name))
            return (long)i;
    return -1;
}

bool policy_update_field_ok(const http_fields_t *resp304, const char *name, size_t nlen)
{
    /* The bytes in storage are what these describe (see the header). */
    static const char *const fixed[] = { "Content-Length", "Content-Encoding", "Content-Type", "Content-Range",
                                         "Set-Cookie" };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strlen(fixed[i]) == nlen && strncasecmp(name, fixed[i], nlen) == 0)
            return false;
    if (policy_hop_by_hop(name, nlen))
        return false;
    return !(resp304 && policy_connection_listed(resp304, name, nlen));
}

/* Named by the 304's private="..." / no-cache="..." in either field this
 * cache may obey: the union drops more, never less. */
static bool listed(const policy_cc_t cc[2], http_slice_t name)
{
    for (int k = 0; k < 2; k++)
        if (policy_cc_field_listed(&cc[k], POLICY_CC_LIST_PRIVATE, name.p, name.len) ||
            policy_cc_field_listed(&cc[k], POLICY_CC_LIST_NO_CACHE, name.p, name.len))
            return true;
    return false;
}

static int add(http_fields_t *out, const http_fields_t *h, size_t i)
{
    http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
    return http_fields_add(out, n.p, n.len, v.p, v.len);
}

int policy_update_fields(http_fields_t *out, const http_fields_t *stored, const http_fields_t *resp304)
{
    policy_cc_t cc[2];
    policy_cc_init(&cc[0]);
    policy_cc_parse_fields(&cc[0], resp304, "Cache-Control");
    policy_cc_parse_targeted(&cc[1], resp304, "CDN-Cache-Control"); /* an invalid one lists nothing */
    int rc = 0;

    http_fields_reset(out);
    for (size_t i = 0; i < stored->n && !rc; i++) {
        http_slice_t name = http_fields_name(stored, i);
        if (listed(cc, name))
            continue;
        long j = find_slice(resp304, name, 0);
        if (j < 0 || !policy_update_field_ok(resp304, name.p, name.len)) {
            rc = add(out, stored, i);
            continue;
        }
        /* Replaced: the 304's lines go where the first stored line was. */
        if (find_slice(stored, name, 0) != (long)i)
            continue;
        for (; j >= 0 && !rc; j = find_slice(resp304, name, (size_t)j + 1))
            rc = add(out, resp304, (size_t)j);
    }
    for (size_t j = 0; j < resp304->n && !rc; j++) {
        http_slice_t name = http_fields_name(resp304, j);
        if (find_slice(stored, name, 0) < 0 && !listed(cc, name) &&
            policy_update_field_ok(resp304, name.p, name.len))
            rc = add(out, resp304, j);
    }
    if (rc)
        http_fields_reset(out);
    return rc;
}

/* The first line of ETag in h, or false. */
static bool etag_of(const http_fields_t *h, http_slice_t *v)
{
    if (!http_fields_get(h, "ETag", v))
        return false;
    *v = http_trim(*v);
    return true;
}

static int64_t lm_of(const http_fields_t *h)
{
    http_slice_t v;
    return http_fields_get(h, "Last-Modified", &v) ? policy_date_parse(v.p, v.len) : -1;
}

bool policy_304_matches(const http_fields_t *stored, const http_fields_t *resp304, size_t n_stored)
{
    http_slice_t e304, es;
    bool has_stored_etag = etag_of(stored, &es);
    int64_t lm_stored = lm_of(stored);
    if (etag_of(resp304, &e304)) {
        /* An ETag the stored response lacks (or malformed) selects nothing:
         * 4.3.4 forbids updating with a validator that does not match. */
        bool weak;
        http_slice_t opaque;
        if (!has_stored_etag || policy_etag_parse(e304.p, e304.len, &weak, &opaque) != e304.len)
            return false;
        return policy_etag_match(e304.p, e304.len, es.p, es.len, !weak);
    }
    int64_t lm304 = lm_of(resp304);
    if (lm304 >= 0)
        return lm_stored >= 0 && lm_stored == lm304;
    return n_stored == 1;
}
