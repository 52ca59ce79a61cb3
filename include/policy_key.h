/* policy_key: the primary cache key of a request, normalised so that
 * requests for the same resource share one stored object (RFC 3986 6.2.2,
 * RFC 9110 4.2.3): "scheme://host[:port]/path[?query]". Pure string work,
 * bounded by the output buffer's cap. */
#ifndef CDN_POLICY_KEY_H
#define CDN_POLICY_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Most parameter names / globs in one keep / drop list. */
#define POLICY_KEY_PARAMS_MAX 16

/* How the query takes part in the key (a per-path rule's `query`). */
typedef enum policy_query_mode {
    POLICY_QUERY_ALL = 0, /* byte for byte, as without opts */
    POLICY_QUERY_NONE,    /* dropped: /p?a=1 keys as /p */
    POLICY_QUERY_SORTED,  /* parameters stably sorted by name */
    POLICY_QUERY_KEEP,    /* only parameters named in params, sorted */
    POLICY_QUERY_DROP,    /* all but parameters matching a glob in params, sorted */
} policy_query_mode_t;

/* Query policy. Plain data, all-zero = POLICY_QUERY_ALL; params are
 * borrowed NUL-terminated strings that must outlive the call.
 *
 * Parameters are the '&'-separated members of the query (';' is not a
 * separator); a name runs to the first '='. In the SORTED / KEEP / DROP
 * modes empty members ("a&&b") are dropped, each kept parameter has its
 * percent-escapes normalised as in the path (RFC 3986 6.2.2: hex
 * uppercased, unreserved characters decoded), "b" and "b=" stay distinct,
 * and parameters are sorted byte-wise by normalised name only: the sort is
 * stable, so repeated names keep their order ("a=2&a=1" is not "a=1&a=2"
 * to an origin that takes the first or last value, or builds an array).
 * No parameter left: no "?" either.
 *
 * KEEP / DROP compare the fully percent-decoded name, case-sensitively,
 * with the configured names (literal) or globs ('*' any run, '?' one
 * byte): "%69d" is "id". Comparing raw bytes would let "?%69d=evil" drop
 * out of a `keep id` key while the origin still reads id=evil, a cache
 * poisoning. Origins that fold the case of names (ASP.NET) need every
 * spelling listed. */
typedef struct policy_key_opts {
    policy_query_mode_t query;
    size_t n_params;                            /* entries used in params (KEEP, DROP) */
    const char *params[POLICY_KEY_PARAMS_MAX];  /* KEEP: names; DROP: globs */
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
/* As policy_cache_key with a query policy; opts NULL = POLICY_QUERY_ALL.
 * Also -EINVAL for an unknown mode, n_params > POLICY_KEY_PARAMS_MAX or a
 * NULL entry; -ENOMEM for the sort's scratch memory. */
int policy_cache_key_opts(buf_t *out, const policy_key_opts_t *opts, const char *scheme, const char *host,
                          size_t hostlen, const char *target, size_t target_len);

/* Locate the host (with its port, if any) and the path (without the
 * query) in key[0..len), a key made by policy_cache_key(_opts): what
 * policy_rules_match takes. Returns 0 with key[*host_off..+*host_len) and
 * key[*path_off..+*path_len) set, or -EINVAL when key has no "://" or no
 * path. Build the key with opts NULL first: the rule decides the query. */
int policy_key_parts(const char *key, size_t len, size_t *host_off, size_t *host_len, size_t *path_off,
                     size_t *path_len);

/* Glob match of s[0..slen) against glob[0..glen): '*' any run of bytes
 * (none included), '?' exactly one byte, everything else literal (ASCII
 * case folded when icase). Worst case O(glen * slen), no recursion. */
bool policy_key_glob_match(const char *glob, size_t glen, const char *s, size_t slen, bool icase);

#endif
