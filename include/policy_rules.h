/* policy_rules: per-path caching rules, and how a rule adjusts the
 * RFC 9111 decisions of policy_cache and the cache key of policy_key.
 *
 * A rule is plain data with fixed-size buffers (no heap), so an array of
 * them can live in the config struct. Keys a rule does not set have the
 * built-in defaults (policy_rule_defaults), never another rule's value:
 * there is no inheritance between rules. Exactly one rule applies to a
 * request, the first match in the order of policy_rules_sort; no match
 * means the built-in defaults.
 *
 * The configuration's `[rule PATTERN]` sections fill rules (pattern,
 * keys and their checks and messages live with the config, in
 * core/config_rules.c); this module only decides with them:
 *   policy_rule_defaults(&r), then the config sets the pattern and keys;
 * then, once all are read, policy_rules_sort(rules, n).
 *
 * Per request (r = policy_rules_match(...), NULL allowed everywhere):
 *   policy_rule_opts(r, &opts)            before policy_resp_parse / policy_storable
 *   policy_rule_key_opts(r, &kopts)       for policy_cache_key_opts
 *   policy_rule_bypass(r, req_headers)    cookie = bypass: go upstream, store nothing
 *   policy_rule_storable(r, ...)          instead of policy_storable
 *   policy_entry_init(...) then policy_rule_entry(r, ...) */
#ifndef CDN_POLICY_RULES_H
#define CDN_POLICY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_fields.h"
#include "policy_cache.h"
#include "policy_key.h"

/* Longest pattern (and each of its host and path parts), NUL included. */
#define POLICY_RULE_PATTERN_MAX 256
/* Longest query parameter name or glob in a keep / drop list, NUL included. */
#define POLICY_RULE_PARAM_MAX 64

typedef enum policy_rule_host_kind {
    POLICY_RULE_HOST_ANY = 0,  /* no host part, or "*" */
    POLICY_RULE_HOST_GLOB,     /* host with '*' or '?' */
    POLICY_RULE_HOST_LITERAL,  /* exact host */
} policy_rule_host_kind_t;

enum { POLICY_RULE_HONOUR = 0, POLICY_RULE_OVERRIDE = 1 };  /* origin_cache_control */
enum { POLICY_RULE_COOKIE_IGNORE = 0, POLICY_RULE_COOKIE_BYPASS = 1 };
enum { POLICY_RULE_CDN_HONOUR = 0, POLICY_RULE_CDN_IGNORE = 1 }; /* cdn_cache_control */
enum { POLICY_RULE_WIDTHS_UP = 0, POLICY_RULE_WIDTHS_REFUSE = 1 }; /* image_widths_round */
/* Bound of the allowed image widths of one rule. */
#define POLICY_RULE_WIDTHS_MAX 32

/* One rule. Durations are seconds; -1 = unset (the documented fallback).
 * Whoever fills host and path keeps them normalised as described, and
 * host_kind and the literal counts in step with them: matching and the
 * sort order rely on it. */
typedef struct policy_rule {
    char pattern[POLICY_RULE_PATTERN_MAX]; /* as written, for messages and --check-config */
    char host[POLICY_RULE_PATTERN_MAX];    /* host glob, lowercased, no trailing dot; "" = any */
    char path[POLICY_RULE_PATTERN_MAX];    /* path glob, percent-escapes normalised as in the key */
    policy_rule_host_kind_t host_kind;
    unsigned host_literals;                /* non-wildcard bytes in host */
    unsigned path_literals;                /* non-wildcard bytes in path */
    uint32_t set;                          /* bit i: rule key i of the config set explicitly */

    int64_t default_ttl;            /* lifetime without explicit freshness; -1: the heuristic */
    int64_t min_ttl;                /* floor of the lifetime; 0 = none */
    int64_t max_ttl;                /* cap of the lifetime; -1 = none */
    unsigned origin_cache_control;  /* POLICY_RULE_HONOUR / POLICY_RULE_OVERRIDE */
    int64_t stale_while_revalidate; /* window when the origin gives none; -1 = none */
    int64_t stale_if_error;         /* window when the origin gives none; -1 = none */
    bool stale_with_s_maxage;       /* stale windows despite s-maxage (false: RFC 9111 4.2.4) */
    int64_t heuristic_max;          /* cap of the heuristic lifetime (86400) */
    policy_query_mode_t query;      /* cache-key query policy */
    unsigned n_params;              /* entries in params */
    char params[POLICY_KEY_PARAMS_MAX][POLICY_RULE_PARAM_MAX]; /* keep names / drop globs */
    unsigned cookie;                /* POLICY_RULE_COOKIE_* */
    bool store_set_cookie;          /* store Set-Cookie responses, without the field */
    unsigned cdn_cache_control;     /* POLICY_RULE_CDN_* */
    bool image;                     /* resize images on request (w, h, fit... in the query) */
    unsigned n_widths;              /* entries in widths; 0 = any width */
    unsigned widths[POLICY_RULE_WIDTHS_MAX]; /* allowed output widths, ascending */
    unsigned widths_round;          /* POLICY_RULE_WIDTHS_*: a width not listed */
    uint32_t rate_milli;            /* rate_limit: thousandths of a request/s per client; 0 = the node's */
    uint32_t rate_burst;
} policy_rule_t;

/* Reset r to the built-in defaults, matching everything (pattern "*"). */
void policy_rule_defaults(policy_rule_t *r);
/* Stable sort, most specific first:
 *   1. host kind: literal host, then host glob, then no host;
 *   2. more literal (non-wildcard) host bytes first;
 *   3. more literal path bytes first;
 *   4. ties keep their order in the array (file order). */
void policy_rules_sort(policy_rule_t *rules, size_t n);
/* True when r's pattern matches host[0..hostlen) (Host field value: port
 * and trailing dots ignored, case-insensitive) and path[0..plen) (the
 * normalised path; anything from a '?' on is ignored). host may be NULL
 * when hostlen is 0: it then matches only rules without a host. */
bool policy_rule_matches(const policy_rule_t *r, const char *host, size_t hostlen, const char *path, size_t plen);
/* The first rule of the sorted array rules[0..n) that matches, or NULL
 * (use the built-in defaults). Points into rules. */
const policy_rule_t *policy_rules_match(const policy_rule_t *rules, size_t n, const char *host, size_t hostlen,
                                        const char *path, size_t plen);
/* Fill out with policy_opts_init's values, then the rule's heuristic_max,
 * store_cookies (store_set_cookie), stale_with_s_maxage and targeted_cc
 * (cdn_cache_control = ignore: none; honour: the default list). r NULL:
 * built-in defaults. out's strings are static. */
void policy_rule_opts(const policy_rule_t *r, policy_opts_t *out);
/* Fill out with the rule's query policy; params point into r (valid while
 * r is). r NULL: POLICY_QUERY_ALL. */
void policy_rule_key_opts(const policy_rule_t *r, policy_key_opts_t *out);
/* cookie = bypass and req carries a Cookie field: the request goes
 * upstream uncached (Cache-Status fwd=bypass) and its response is not
 * stored. */
bool policy_rule_bypass(const policy_rule_t *r, const http_fields_t *req);
/* policy_storable under the rule (r NULL: plain policy_storable). opts:
 * as policy_rule_opts made for r (NULL: made here). With
 * origin_cache_control = override and a heuristically cacheable status,
 * the origin's Cache-Control, targeted fields and Expires are ignored
 * (default_ttl gives the freshness); what still prevents storing:
 * method, request no-store, Authorization unless the response allows it
 * (RFC 9111 3.5), Vary: *, Set-Cookie unless store_set_cookie. Other
 * statuses (206/304 included) are decided as under honour. *why as
 * policy_storable. */
bool policy_rule_storable(const policy_rule_t *r, const policy_req_t *q, const policy_resp_t *resp,
                          const policy_opts_t *opts, const char **why);
/* Adjust e, made by policy_entry_init from resp with policy_rule_opts(r)
 * (r NULL: nothing changes), in this order:
 *   override (heuristically cacheable status): lifetime = default_ttl,
 *     the origin's revalidation flags (must-/proxy-revalidate, no-cache,
 *     s-maxage, immutable, heuristic) cleared, stale allowed;
 *   honour: lifetime = default_ttl when it came from the heuristic
 *     (no valid explicit freshness);
 *   the lifetime clamped to [min_ttl, max_ttl];
 *   each stale window the response lacks (absent or invalid) = the rule's,
 *     unless must-revalidate, proxy-revalidate, no-cache, or s-maxage
 *     without stale_with_s_maxage forbid serving stale. */
void policy_rule_entry(const policy_rule_t *r, const policy_resp_t *resp, policy_entry_t *e);

#endif
