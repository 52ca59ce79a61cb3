/* policy_vary: secondary cache keys from Vary (RFC 9111 section 4.1).
 *
 * The secondary key is a byte string of "name:value\n" lines (name
 * lowercased, in the order Vary lists them; an absent request header is
 * "name!\n"), where value is the request's field value normalised: all
 * lines of the field joined with ",", list members trimmed, whitespace
 * runs collapsed, lowercased. Two requests match a stored variant exactly
 * when their secondary keys are equal. */
#ifndef CDN_POLICY_VARY_H
#define CDN_POLICY_VARY_H

#include <stdbool.h>

#include "buf.h"
#include "http_fields.h"

enum { POLICY_VARY_NONE = 0, POLICY_VARY_KEY = 1, POLICY_VARY_STAR = 2 };

/* Build the secondary key of req for the Vary fields of resp into out.
 * Returns POLICY_VARY_NONE (no Vary: out unchanged), POLICY_VARY_KEY,
 * POLICY_VARY_STAR (never matches anything), or a negative buf error. */
int policy_vary_key(buf_t *out, const http_fields_t *resp, const http_fields_t *req);
/* True when req matches the stored secondary key (same field names). */
bool policy_vary_match(const char *key, size_t len, const http_fields_t *req);

/* True when a response with headers resp, fetched for request a, may be
 * used for request b: same secondary keys (or no Vary at all). */
bool policy_vary_response_matches(const http_fields_t *resp, const http_fields_t *a, const http_fields_t *b);

#endif
