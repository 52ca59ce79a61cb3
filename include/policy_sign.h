/* policy_sign: signed image URLs (issue 11), so that only whoever holds
 * the key can ask the edge for a new image variant: without it, a stranger
 * could fill the cache and the thread pool with arbitrary sizes.
 *
 * The scheme (user-facing: clients implement it):
 *   - The signature is the query parameter "sig" (exact, lower-case name).
 *     Its value is the unpadded base64url (RFC 4648 section 5: alphabet
 *     A-Z a-z 0-9 '-' '_', no '=') of HMAC-SHA256(key, message): always
 *     43 characters.
 *   - message = the request path, then "?" and the query string with the
 *     sig parameter removed, or just the path when nothing is left of the
 *     query. "Removed" means: the query is split at every '&' into
 *     parameters (a parameter's name ends at its first '=', or is the whole
 *     parameter); those named "sig" are dropped; the others are joined
 *     again with '&', in the order sent, empty ones included.
 *   - Byte-exact: the path and the query are taken as sent on the request
 *     line, before any percent-decoding, so "%2F" and "/" or "a+b" and
 *     "a%2Bb" are different messages. Nothing is reordered or normalised:
 *     the client signs exactly the URL it then sends.
 *   - The host is not signed: one key signs for every host that uses it.
 * A client signs "/img/cat.jpg?w=400&fmt=webp" and requests
 * "/img/cat.jpg?w=400&fmt=webp&sig=<43 chars>" (or "?sig=" after a bare
 * path); the sig parameter may stand anywhere in the query.
 *
 * Pure functions: no I/O, no clock, no state. The key's strength is the
 * caller's concern (32 random bytes is the usual advice); an empty key is
 * refused. */
#ifndef CDN_POLICY_SIGN_H
#define CDN_POLICY_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Characters of a signature, without the NUL. */
#define POLICY_SIGN_LEN 43

/* The signature of path[0, plen) with query[0, qlen) (without the '?';
 * any sig parameter in it is ignored, as the scheme says) under
 * key[0, klen), written to out as 43 characters and a NUL. Returns 0,
 * -EINVAL for an empty key, -ENOMEM, or -EIO when libcrypto fails. */
int policy_sign_compute(const void *key, size_t klen, const char *path, size_t plen, const char *query,
                        size_t qlen, char out[POLICY_SIGN_LEN + 1]);

/* True only when query[0, qlen) (the whole query, without the '?') holds
 * exactly one sig parameter, its value is 43 characters and it equals the
 * signature of path and query under key. The comparison takes the same
 * time wherever the first difference is, so a forger learns nothing from
 * timing. False for an empty key or when out of memory. */
bool policy_sign_check(const void *key, size_t klen, const char *path, size_t plen, const char *query,
                       size_t qlen);

/* Append to out the query[0, qlen) with its sig parameters removed (see
 * above): the query to send upstream, and the query part of the message.
 * Returns the number of sig parameters removed (0 or more), or out's
 * negative error (-E2BIG past its cap, -ENOMEM). */
int policy_sign_strip(buf_t *out, const char *query, size_t qlen);

#endif
