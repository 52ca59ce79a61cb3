/* policy_cc: Cache-Control directive parsing (RFC 9111 section 5.2).
 *
 * One result type serves Cache-Control in requests and responses and the
 * targeted fields (CDN-Cache-Control, RFC 9213; Surrogate-Control). Cache-
 * Control and Surrogate-Control use the forgiving Cache-Control grammar;
 * RFC 9213 fields are RFC 8941 Dictionaries, read with policy_sf and
 * ignored as a whole when invalid (policy_cc_parse_targeted). The result
 * is a plain value type: no pointers into the header, so it can be copied
 * and kept after the headers are freed.
 *
 * Invalid or conflicting values are never silently dropped: each delta
 * directive has a POLICY_CC_BAD_* bit, and its field then holds the most
 * restrictive reading (max-age/s-maxage 0, min-fresh POLICY_CC_DELTA_MAX,
 * max-stale / stale-* absent), so a consumer that ignores the bits is still
 * safe (RFC 9111 4.2.1: treat such responses as stale). */
#ifndef CDN_POLICY_CC_H
#define CDN_POLICY_CC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_fields.h"

/* delta-seconds saturate here (RFC 9111 1.2.2: 2^31). */
#define POLICY_CC_DELTA_MAX INT64_C(2147483648)
/* max_stale value for a bare "max-stale": any staleness is acceptable. */
#define POLICY_CC_STALE_ANY INT64_MAX
/* Bytes kept per field-name list ("a,b,c", lowercased). */
#define POLICY_CC_LIST_BYTES 128
/* Limits of an RFC 9213 targeted field (all lines joined): a bigger one
 * is ignored like an invalid one. RFC 8941 asks parsers to take up to
 * 1024 dictionary members, but no cache policy needs a fraction of that,
 * and the parse runs on the stack of the request. */
#define POLICY_CC_TARGETED_BYTES 4096
#define POLICY_CC_TARGETED_NODES 128

enum {
    POLICY_CC_NO_STORE = 1u << 0,
    POLICY_CC_NO_CACHE = 1u << 1,        /* unqualified no-cache (or a list that did not fit) */
    POLICY_CC_NO_CACHE_FIELDS = 1u << 2, /* no-cache="f1, f2": see no_cache_fields */
    POLICY_CC_PRIVATE = 1u << 3,         /* unqualified private (or a list that did not fit) */
    POLICY_CC_PRIVATE_FIELDS = 1u << 4,  /* private="f1, f2": see private_fields */
    POLICY_CC_PUBLIC = 1u << 5,
    POLICY_CC_MUST_REVALIDATE = 1u << 6,
    POLICY_CC_PROXY_REVALIDATE = 1u << 7,
    POLICY_CC_MUST_UNDERSTAND = 1u << 8,
    POLICY_CC_NO_TRANSFORM = 1u << 9,
    POLICY_CC_IMMUTABLE = 1u << 10,
    POLICY_CC_ONLY_IF_CACHED = 1u << 11,
    POLICY_CC_MAX_STALE_ANY = 1u << 12, /* bare max-stale; max_stale == POLICY_CC_STALE_ANY */
    /* Present but invalid (negative, non-numeric, empty, missing "=") or
     * repeated with a different value. */
    POLICY_CC_BAD_MAX_AGE = 1u << 16,
    POLICY_CC_BAD_S_MAXAGE = 1u << 17,
    POLICY_CC_BAD_MAX_STALE = 1u << 18,
    POLICY_CC_BAD_MIN_FRESH = 1u << 19,
    POLICY_CC_BAD_SWR = 1u << 20,
    POLICY_CC_BAD_SIE = 1u << 21,
    POLICY_CC_BAD_ANY = 0x3fu << 16,
};

/* Which field-name list policy_cc_field_listed looks at. */
typedef enum policy_cc_list {
    POLICY_CC_LIST_NO_CACHE,
    POLICY_CC_LIST_PRIVATE,
} policy_cc_list_t;

/* Parsed directives. Delta fields are -1 when absent. */
typedef struct policy_cc {
    uint32_t flags;                 /* POLICY_CC_* bits */
    unsigned n_directives;          /* directives seen, known or not (0 = field empty) */
    int64_t max_age;                /* max-age */
    int64_t s_maxage;               /* s-maxage */
    int64_t max_stale;              /* request max-stale; POLICY_CC_STALE_ANY when bare */
    int64_t min_fresh;              /* request min-fresh */
    int64_t stale_while_revalidate; /* RFC 5861 */
    int64_t stale_if_error;         /* RFC 5861 */
    /* Field-name lists of the qualified forms, lowercased, comma-joined, no
     * spaces, NUL-terminated. When a list does not fit (or is empty, or
     * holds something that is not a field name) the unqualified flag is set
     * as well, which then governs: always a permitted reading
     * (RFC 9111 5.2.2.4, 5.2.2.7). */
    char no_cache_fields[POLICY_CC_LIST_BYTES];
    char private_fields[POLICY_CC_LIST_BYTES];
} policy_cc_t;

/* Reset cc to "no directives". */
void policy_cc_init(policy_cc_t *cc);
/* Merge the directives of one field line v[0..len) into cc; call once per
 * line (a repeated directive merges as described above). v need not be
 * NUL-terminated and is not referenced afterwards. Unknown directives are
 * counted and ignored. */
void policy_cc_parse(policy_cc_t *cc, const char *v, size_t len);
/* Merge every line of header `name` in h into cc. Returns the number of
 * lines seen (0 = field absent). */
size_t policy_cc_parse_fields(policy_cc_t *cc, const http_fields_t *h, const char *name);
/* Reset cc and fill it from the targeted field `name` of h (RFC 9213).
 * Surrogate-Control predates RFC 9213 and keeps the Cache-Control grammar
 * (as policy_cc_parse_fields). Any other name is an RFC 9213 field: all
 * its lines together must form an RFC 8941 Dictionary in which max-age,
 * s-maxage, stale-while-revalidate and stale-if-error are non-negative
 * Integers, no-cache and private are true or a String (field-name list),
 * and the other directives this module knows are true (parameters are
 * ignored). Returns the number of lines (0 = absent), or -EINVAL (not
 * such a Dictionary) or -E2BIG (longer than POLICY_CC_TARGETED_BYTES or
 * more than POLICY_CC_TARGETED_NODES members and parameters): the field
 * must then be ignored as if absent, and cc is left reset. */
int policy_cc_parse_targeted(policy_cc_t *cc, const http_fields_t *h, const char *name);
/* True when field name[0..nlen) (case-insensitive) is in the qualified
 * no-cache or private list. An unqualified directive lists nothing: test
 * POLICY_CC_NO_CACHE / POLICY_CC_PRIVATE for that. */
bool policy_cc_field_listed(const policy_cc_t *cc, policy_cc_list_t which, const char *name, size_t nlen);
/* Parse delta-seconds (1*DIGIT, saturating at POLICY_CC_DELTA_MAX) from
 * p[0..n) with nothing else around it. Returns -1 when invalid. */
int64_t policy_cc_delta(const char *p, size_t n);

#endif
