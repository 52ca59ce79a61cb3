/* policy_cond: client conditional requests answered by a cache from a
 * stored response (RFC 9110 13.1-13.2, RFC 9111 4.3.2), and entity-tag
 * comparison shared with policy_range and policy_update.
 *
 * The cache evaluates only the conditions that select a stored response
 * for reuse: If-None-Match and If-Modified-Since. If-Match and
 * If-Unmodified-Since protect state changes on the origin; a cache may
 * leave them to it (RFC 9111 4.3.2), and this one does: their presence
 * makes the verdict FORWARD, so the origin decides 412 vs 2xx against the
 * current representation, not against a possibly outdated copy. */
#ifndef CDN_POLICY_COND_H
#define CDN_POLICY_COND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_fields.h"

typedef enum policy_cond_result {
    POLICY_COND_SERVE = 0,     /* no condition or a true one: serve the stored response */
    POLICY_COND_NOT_MODIFIED,  /* send 304 with the fields policy_cond_304_field selects */
    POLICY_COND_FORWARD,       /* If-Match / If-Unmodified-Since: send the request upstream */
} policy_cond_result_t;

/* Evaluate the client's conditionals in req (RFC 9110 13.2.2 order) for
 * method (llhttp enum) against a stored 2xx response: call it only for a
 * stored 2xx (13.2.1: preconditions are ignored for any other status).
 * etag = the stored ETag field value (NUL-terminated; NULL when absent),
 * last_modified = its Last-Modified (-1 absent), date = its Date, or the
 * time it was received when it had none (policy_entry_t.date is exactly
 * that); RFC 9111 4.3.2 compares If-Modified-Since with Date when there is
 * no Last-Modified.
 *   If-Match or If-Unmodified-Since present          -> FORWARD
 *   If-None-Match present (GET/HEAD): "*" or any member weakly matching
 *     etag -> NOT_MODIFIED, else SERVE; If-Modified-Since is then ignored.
 *     Other methods with If-None-Match               -> FORWARD (412 is the origin's)
 *   else If-Modified-Since on GET/HEAD, one valid HTTP-date, stored
 *     Last-Modified (or date) <= it                  -> NOT_MODIFIED
 *   anything else (absent, invalid date, several values) -> SERVE.
 * Malformed If-None-Match members (not an entity-tag) match nothing. */
policy_cond_result_t policy_cond_eval(const http_fields_t *req, int method, const char *etag, int64_t last_modified,
                                      int64_t date);

/* True for a stored header field that goes into a 304 built from it
 * (RFC 9110 15.4.5): Cache-Control, CDN-Cache-Control, Content-Location,
 * Date, ETag, Expires, Last-Modified, Vary (case-insensitive). Everything
 * else, notably Content-Length, Content-Type, Content-Encoding and
 * Content-Range, is left out. The caller adds Age, Via and Cache-Status. */
bool policy_cond_304_field(const char *name, size_t nlen);

/* Parse one entity-tag (RFC 9110 8.8.3: [W/] DQUOTE *etagc DQUOTE) at the
 * start of p[0..n). Returns the bytes it spans (0 when p does not start
 * with one) and sets *weak and the opaque-tag (quotes included) in
 * *opaque, which points into p. */
size_t policy_etag_parse(const char *p, size_t n, bool *weak, http_slice_t *opaque);
/* Compare two entity-tags a[0..alen) and b[0..blen) (each one whole tag,
 * OWS around allowed). strong: both strong and the same opaque-tag;
 * otherwise (weak comparison) the same opaque-tag. False if either is
 * malformed. */
bool policy_etag_match(const char *a, size_t alen, const char *b, size_t blen, bool strong);
/* True when the list v[0..len) (If-None-Match / If-Match syntax, commas
 * inside quotes respected) has a member matching etag (NUL-terminated) by
 * the given comparison, or is "*" and etag_exists. */
bool policy_etag_list_match(const char *v, size_t len, const char *etag, bool etag_exists, bool strong);

#endif
