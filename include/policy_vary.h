/* policy_vary: secondary cache keys from Vary (RFC 9111 section 4.1).
 *
 * A URL whose response varies keeps its variants side by side: an index
 * record lists the field names (policy_vary_fields: "name\n" lines,
 * lowercased, in the order Vary lists them, duplicates dropped), and each
 * variant is stored under an id derived from its secondary key.
 *
 * The secondary key is "name:value\n" per listed field (an absent request
 * field is "name!\n"), where value is the request's field normalised: all
 * lines of the field joined with ",", list members trimmed, whitespace runs
 * collapsed, lowercased. Two requests select the same variant exactly when
 * their secondary keys are equal. Vary: * matches nothing. */
#ifndef CDN_POLICY_VARY_H
#define CDN_POLICY_VARY_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "http_fields.h"

enum { POLICY_VARY_NONE = 0, POLICY_VARY_KEY = 1, POLICY_VARY_STAR = 2 };

/* The field names the response varies on, into out. Returns
 * POLICY_VARY_NONE (no Vary, or only empty members), POLICY_VARY_KEY,
 * POLICY_VARY_STAR, or a negative errno: a buf error, or -E2BIG for a
 * field name of 256 bytes or more. */
int policy_vary_fields(buf_t *out, const http_fields_t *resp);
/* The same, plus the names in implicit[0, ilen) ("name\n" lines): request
 * fields that select the response although the response does not say so
 * (a node's keyed pass_headers). They come after Vary's own names, each
 * once; with any of them the result is POLICY_VARY_KEY (Vary: * still
 * wins). */
int policy_vary_fields_with(buf_t *out, const http_fields_t *resp, const char *implicit, size_t ilen);
/* True when name (nlen bytes) is a line of the list fields[0, flen)
 * (case-insensitive). */
bool policy_vary_listed(const char *fields, size_t flen, const char *name, size_t nlen);
/* The secondary key of req over the field list fields[0, flen) into out.
 * Returns 0 or a negative buf error. */
int policy_vary_key_from_fields(buf_t *out, const char *fields, size_t flen, const http_fields_t *req);
/* The secondary key of req for the Vary fields of resp into out: the two
 * above in one. Returns as policy_vary_fields. */
int policy_vary_key(buf_t *out, const http_fields_t *resp, const http_fields_t *req);
/* True when req matches the stored secondary key (same field names). */
bool policy_vary_match(const char *key, size_t len, const http_fields_t *req);
/* True when a response with headers resp, fetched for request a, may be
 * used for request b: same secondary keys (or no Vary at all). */
bool policy_vary_response_matches(const http_fields_t *resp, const http_fields_t *a, const http_fields_t *b);
/* The same with implicit names as in policy_vary_fields_with. */
bool policy_vary_response_matches_with(const http_fields_t *resp, const char *implicit, size_t ilen,
                                       const http_fields_t *a, const http_fields_t *b);
/* The store variant id of a secondary key: never 0 (0 is the URL's own
 * record). */
uint64_t policy_vary_id(const char *key, size_t len);

#endif
