/* policy_key: the primary cache key of a request, normalised so that
 * requests for the same resource share one stored object (RFC 3986 6.2.2,
 * RFC 9110 4.2.3): "scheme://host[:port]/path[?query]". Pure string work,
 * bounded by the output buffer's cap. */
#ifndef CDN_POLICY_KEY_H
#define CDN_POLICY_KEY_H

#include <stddef.h>

#include "buf.h"

/* How the query takes part in the key. This is the place for per-rule
 * query policy (the next step): sorting parameters, dropping tracking
 * parameters (utm_*, fbclid...). Nothing of it is implemented yet: the
 * all-zero value keeps the query byte-for-byte, and anything else makes
 * policy_cache_key_opts return -ENOTSUP, so a config that asks for it
 * fails loudly instead of silently keying differently. */
typedef struct policy_key_opts {
    unsigned flags;                 /* future POLICY_KEY_* bits; must be 0 */
    const char *const *drop_params; /* future: parameter names to drop; must be NULL */
    size_t n_drop;                  /* entries in drop_params; must be 0 */
} policy_key_opts_t;

/* Append the key of a request to out (nothing is appended on error).
 * scheme: NUL-terminated ("http"/"https"), host[0..hostlen): the Host
 * field value (may carry a port), target[0..target_len): the request
 * target in origin-form ("/p?q") or absolute-form ("http://h/p?q", whose
 * scheme and host then win). Normalises: scheme and host lowercased, host
 * trailing dots dropped, default port (:80 http, :443 https) and empty port
 * dropped, path percent-encoding hex uppercased, percent-encoded unreserved
 * characters decoded, raw bytes >= 0x80 and "<>\^`{|} percent-encoded,
 * dot-segments removed, empty path -> "/"; the query is kept byte-for-byte
 * and the fragment dropped. Returns 0; -E2BIG past out's cap; -ENOMEM;
 * -EINVAL for another target form, a space or control byte, a bad
 * percent-escape, userinfo, or an empty or malformed host or port. */
int policy_cache_key(buf_t *out, const char *scheme, const char *host, size_t hostlen, const char *target,
                     size_t target_len);
/* As policy_cache_key with a query policy; opts NULL = defaults. */
int policy_cache_key_opts(buf_t *out, const policy_key_opts_t *opts, const char *scheme, const char *host,
                          size_t hostlen, const char *target, size_t target_len);

#endif
