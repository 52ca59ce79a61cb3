/* policy_update: freshening a stored response with a 304 (RFC 9111 3.2,
 * 4.3.3, 4.3.4).
 *
 * The stored body stays as it was, so the fields describing those bytes
 * are never taken from a 304: Content-Length (3.2 says so), and, because
 * this cache stores the received bytes and serves them verbatim,
 * Content-Encoding, Content-Type and Content-Range (3.2 lets a cache keep
 * the fields the integrity of its stored response depends on; a 304 should
 * not carry them anyway, RFC 9110 15.4.5, and origins that do usually send
 * a framework default, e.g. "Content-Type: text/html" on every 304). Also
 * never taken: hop-by-hop and Connection-listed fields, Set-Cookie, and
 * fields named by the 304's private="..." / no-cache="..." (3.1). */
#ifndef CDN_POLICY_UPDATE_H
#define CDN_POLICY_UPDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "http_fields.h"

/* Build the updated stored fields into out (reset first; the caller
 * initialised it with its caps): the stored fields in order, except that
 * every field name the 304 may update (see policy_update_field_ok) and
 * carries is replaced by all of the 304's lines of that name (at the
 * place of its first stored line, in the 304's order); names only in the
 * 304 are appended in its order. Fields named by the 304's qualified
 * private / no-cache (Cache-Control or CDN-Cache-Control) are dropped from
 * both. Returns 0, or -E2BIG / -ENOMEM from out's caps (out is then reset).
 * The result carries the 304's Cache-Control: re-parse it
 * (policy_resp_parse) and re-run policy_storable and policy_entry_init; a
 * 304 that turned the response private or no-store ends its reuse. */
int policy_update_fields(http_fields_t *out, const http_fields_t *stored, const http_fields_t *resp304);
/* True when a 304 field of this name may replace the stored one: not
 * Content-Length, Content-Encoding, Content-Type, Content-Range,
 * Set-Cookie, a hop-by-hop field, or listed in a Connection field of
 * resp304 (may be NULL). */
bool policy_update_field_ok(const http_fields_t *resp304, const char *name, size_t nlen);

/* RFC 9111 4.3.4: may resp304 update the stored response `stored`?
 * n_stored = how many stored responses the conditional request that got
 * this 304 was built from (their validators were sent). A 304 ETag decides
 * alone: a strong one must equal the stored ETag strongly, a weak one
 * weakly (the caller picks the most recent of several weak matches).
 * Without an ETag, its Last-Modified must equal the stored Last-Modified.
 * With no validator at all, a request built from exactly one stored
 * response (n_stored == 1) updates that response, whatever validators it
 * has: many origins answer a conditional request with a bare 304, and it
 * can only be about what was asked (the intent of 4.3.4, and what Squid,
 * Varnish and nginx do). False means the 304 must not touch this
 * response: the caller then refetches without conditionals (4.3.3). */
bool policy_304_matches(const http_fields_t *stored, const http_fields_t *resp304, size_t n_stored);

#endif
