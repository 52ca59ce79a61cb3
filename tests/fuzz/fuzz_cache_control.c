/* Fuzz target: Cache-Control and its targeted relatives (policy_cc). The
 * first byte chooses what the rest is:
 *   even: one Cache-Control field line, as policy_cc_parse gets it from a
 *         request or a response (not NUL-terminated), then the same bytes
 *         split at LF into several lines merged one by one;
 *   odd:  "Name: value" header lines, read as a response would be:
 *         Cache-Control (policy_cc_parse_fields), Surrogate-Control and
 *         CDN-Cache-Control (policy_cc_parse_targeted, RFC 9213).
 * Whatever the bytes, the result must be one the header promises: every
 * delta absent (-1) or within 0..POLICY_CC_DELTA_MAX, a BAD bit pinning
 * its field to the restrictive reading, the field-name lists
 * NUL-terminated lowercase tokens that policy_cc_field_listed finds, a
 * refused targeted field leaving cc reset. Also policy_cc_delta against
 * a plain reading of the digits. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "policy_cc.h"

static void check_delta(int64_t v)
{
    if (v != -1 && (v < 0 || v > POLICY_CC_DELTA_MAX))
        abort();
}

/* A qualified list: lowercase tokens joined by single commas. */
static void check_list(const policy_cc_t *cc, policy_cc_list_t which, const char *list, uint32_t qualified)
{
    size_t len = strnlen(list, POLICY_CC_LIST_BYTES);
    if (len == POLICY_CC_LIST_BYTES)
        abort(); /* not NUL-terminated */
    if ((cc->flags & qualified) && len == 0)
        abort();
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && list[j] != ',')
            j++;
        if (j == i)
            abort(); /* empty name */
        for (size_t k = i; k < j; k++)
            if ((list[k] >= 'A' && list[k] <= 'Z') || !http_tchar((unsigned char)list[k]))
                abort();
        if (!policy_cc_field_listed(cc, which, list + i, j - i))
            abort();
        i = j + 1;
        if (j < len && i == len)
            abort(); /* trailing comma */
    }
}

static void check(const policy_cc_t *cc)
{
    check_delta(cc->max_age);
    check_delta(cc->s_maxage);
    check_delta(cc->min_fresh);
    check_delta(cc->stale_while_revalidate);
    check_delta(cc->stale_if_error);
    if (cc->max_stale != POLICY_CC_STALE_ANY)
        check_delta(cc->max_stale);
    if (!(cc->flags & POLICY_CC_MAX_STALE_ANY) != (cc->max_stale != POLICY_CC_STALE_ANY))
        abort();
    if (((cc->flags & POLICY_CC_BAD_MAX_AGE) && cc->max_age != 0) ||
        ((cc->flags & POLICY_CC_BAD_S_MAXAGE) && cc->s_maxage != 0) ||
        ((cc->flags & POLICY_CC_BAD_MIN_FRESH) && cc->min_fresh != POLICY_CC_DELTA_MAX) ||
        ((cc->flags & POLICY_CC_BAD_SWR) && cc->stale_while_revalidate != -1) ||
        ((cc->flags & POLICY_CC_BAD_SIE) && cc->stale_if_error != -1) ||
        ((cc->flags & POLICY_CC_BAD_MAX_STALE) && cc->max_stale != -1))
        abort();
    check_list(cc, POLICY_CC_LIST_NO_CACHE, cc->no_cache_fields, POLICY_CC_NO_CACHE_FIELDS);
    check_list(cc, POLICY_CC_LIST_PRIVATE, cc->private_fields, POLICY_CC_PRIVATE_FIELDS);
}

static void check_reset(const policy_cc_t *cc)
{
    policy_cc_t fresh;
    policy_cc_init(&fresh);
    if (memcmp(cc, &fresh, sizeof fresh) != 0)
        abort();
}

/* policy_cc_delta against the obvious reading of a short digit string. */
static void check_delta_parser(const char *p, size_t n)
{
    int64_t v = policy_cc_delta(p, n);
    bool digits = n > 0;
    int64_t plain = 0;
    for (size_t i = 0; i < n && digits; i++) {
        digits = p[i] >= '0' && p[i] <= '9';
        if (plain <= POLICY_CC_DELTA_MAX)
            plain = plain * 10 + (p[i] - '0');
    }
    if (!digits ? v != -1 : v != (plain > POLICY_CC_DELTA_MAX ? POLICY_CC_DELTA_MAX : plain))
        abort();
}

static void one_line(const char *v, size_t n)
{
    policy_cc_t cc;
    policy_cc_init(&cc);
    policy_cc_parse(&cc, v, n);
    check(&cc);
    /* The same bytes as several lines of one field. */
    policy_cc_init(&cc);
    for (size_t i = 0; i <= n;) {
        const char *nl = memchr(v + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - v) : n;
        policy_cc_parse(&cc, v + i, e - i);
        check(&cc);
        i = e + 1;
    }
    check_delta_parser(v, n < 16 ? n : 16);
}

static void header_lines(const uint8_t *d, size_t n)
{
    http_fields_t h;
    policy_cc_t cc;
    http_fields_init(&h, 0);
    fuzz_fields(&h, d, n);
    policy_cc_init(&cc);
    size_t lines = policy_cc_parse_fields(&cc, &h, "Cache-Control");
    if (lines != http_fields_count(&h, "Cache-Control") || (!lines && cc.n_directives))
        abort();
    check(&cc);
    static const char *const targeted[] = { "CDN-Cache-Control", "Surrogate-Control" };
    for (size_t t = 0; t < 2; t++) {
        int rc = policy_cc_parse_targeted(&cc, &h, targeted[t]);
        if (rc < 0) {
            if (rc != -EINVAL && rc != -E2BIG)
                abort();
            check_reset(&cc);
        } else if ((size_t)rc != http_fields_count(&h, targeted[t])) {
            abort();
        }
        check(&cc);
    }
    http_fields_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *v = fuzz_dup(data + 1, size - 1);
    if (data[0] & 1)
        header_lines((const uint8_t *)v, size - 1);
    else
        one_line(v, size - 1);
    free(v);
    return 0;
}
