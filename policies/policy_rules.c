/* policy_rules: per-path rules as decisions: the built-in defaults, the
 * order and matching of patterns, and the glue that applies a rule to
 * policy_cache and policy_key (see include/policy_rules.h).
 *
 * Reading a rule from the configuration file (pattern, keys, cross-key
 * checks, messages) is the config's job (core/config_rules.c): this file
 * only takes a filled policy_rule_t. Patterns arrive normalised (host
 * lowercased, path escapes as the cache key writes them), so matching is
 * a plain glob comparison against what the request pipeline already has. */
#include "policy_rules.h"

#include <string.h>

void policy_rule_defaults(policy_rule_t *r)
{
    memset(r, 0, sizeof *r); /* equal rules are equal bytes */
    strcpy(r->pattern, "*");
    strcpy(r->path, "*");
    r->host_kind = POLICY_RULE_HOST_ANY;
    r->default_ttl = -1;
    r->min_ttl = 0;
    r->max_ttl = -1;
    r->origin_cache_control = POLICY_RULE_HONOUR;
    r->stale_while_revalidate = -1;
    r->stale_if_error = -1;
    r->stale_with_s_maxage = false;
    r->heuristic_max = 86400;
    r->query = POLICY_QUERY_ALL;
    r->cookie = POLICY_RULE_COOKIE_IGNORE;
    r->store_set_cookie = false;
    r->cdn_cache_control = POLICY_RULE_CDN_HONOUR;
}

/* Sort key order as documented in the header; true when a goes strictly
 * before b. */
static bool more_specific(const policy_rule_t *a, const policy_rule_t *b)
{
    if (a->host_kind != b->host_kind)
        return a->host_kind > b->host_kind;
    if (a->host_literals != b->host_literals)
        return a->host_literals > b->host_literals;
    return a->path_literals > b->path_literals;
}

void policy_rules_sort(policy_rule_t *rules, size_t n)
{
    /* Insertion sort: stable, in place, and rule lists are short. */
    for (size_t i = 1; i < n; i++) {
        if (!more_specific(&rules[i], &rules[i - 1]))
            continue;
        policy_rule_t t = rules[i];
        size_t j = i;
        for (; j > 0 && more_specific(&t, &rules[j - 1]); j--)
            rules[j] = rules[j - 1];
        rules[j] = t;
    }
}

bool policy_rule_matches(const policy_rule_t *r, const char *host, size_t hostlen, const char *path, size_t plen)
{
    if (r->host_kind != POLICY_RULE_HOST_ANY) {
        http_slice_t h = http_trim((http_slice_t){ host, host ? hostlen : 0 });
        size_t n = 0;
        if (h.len && h.p[0] == '[') {
            const char *rb = memchr(h.p, ']', h.len);
            n = rb ? (size_t)(rb - h.p) + 1 : h.len;
        } else {
            while (n < h.len && h.p[n] != ':')
                n++;
        }
        while (n && h.p[n - 1] == '.')
            n--;
        if (!n || !policy_key_glob_match(r->host, strlen(r->host), h.p, n, true))
            return false;
    }
    size_t pl = 0;
    while (path && pl < plen && path[pl] != '?' && path[pl] != '#')
        pl++;
    return policy_key_glob_match(r->path, strlen(r->path), path ? path : "", pl, false);
}

const policy_rule_t *policy_rules_match(const policy_rule_t *rules, size_t n, const char *host, size_t hostlen,
                                        const char *path, size_t plen)
{
    for (size_t i = 0; i < n; i++)
        if (policy_rule_matches(&rules[i], host, hostlen, path, plen))
            return &rules[i];
    return NULL;
}

/* ---- applying a rule ---- */

void policy_rule_opts(const policy_rule_t *r, policy_opts_t *out)
{
    policy_opts_init(out);
    if (!r)
        return;
    out->heuristic_max = r->heuristic_max;
    out->store_cookies = r->store_set_cookie;
    out->stale_with_s_maxage = r->stale_with_s_maxage;
    if (r->cdn_cache_control == POLICY_RULE_CDN_IGNORE)
        out->targeted_cc[0] = NULL;
}

void policy_rule_key_opts(const policy_rule_t *r, policy_key_opts_t *out)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return;
    out->query = r->query;
    out->n_params = r->n_params;
    for (unsigned i = 0; i < r->n_params && i < POLICY_KEY_PARAMS_MAX; i++)
        out->params[i] = r->params[i];
}

bool policy_rule_bypass(const policy_rule_t *r, const http_fields_t *req)
{
    return r && r->cookie == POLICY_RULE_COOKIE_BYPASS && req && http_fields_get(req, "Cookie", NULL);
}

static bool overrides(const policy_rule_t *r, const policy_resp_t *resp)
{
    return r && r->origin_cache_control == POLICY_RULE_OVERRIDE && r->default_ttl >= 0 &&
           policy_status_heuristic(resp->status);
}

bool policy_rule_storable(const policy_rule_t *r, const policy_req_t *q, const policy_resp_t *resp,
                          const policy_opts_t *opts, const char **why)
{
    policy_opts_t tmp;
    if (r && !opts) {
        policy_rule_opts(r, &tmp);
        opts = &tmp;
    }
    if (!overrides(r, resp))
        return policy_storable(q, resp, opts, why);
    /* The origin's directives and Expires are gone; what remains is what
     * no rule may override. AUTH_OK stays: RFC 9111 3.5 lets only the
     * origin allow storing an answer to an authenticated request. */
    policy_resp_t o = *resp;
    policy_cc_init(&o.cc);
    o.cc.max_age = r->default_ttl;
    o.expires = -1;
    o.targeted = -1;
    o.flags &= ~(uint32_t)(POLICY_RESP_HAS_CC | POLICY_RESP_TARGETED | POLICY_RESP_EXPIRES_BAD);
    return policy_storable(q, &o, opts, why);
}

void policy_rule_entry(const policy_rule_t *r, const policy_resp_t *resp, policy_entry_t *e)
{
    if (!r)
        return;
    bool override = overrides(r, resp);
    if (override) {
        e->flags &= ~(uint32_t)(POLICY_ENTRY_MUST_REVALIDATE | POLICY_ENTRY_PROXY_REVALIDATE | POLICY_ENTRY_NO_CACHE |
                                POLICY_ENTRY_S_MAXAGE | POLICY_ENTRY_HEURISTIC | POLICY_ENTRY_IMMUTABLE |
                                POLICY_ENTRY_TARGETED | POLICY_ENTRY_NO_STALE);
        e->freshness_lifetime = r->default_ttl;
        e->stale_while_revalidate = -1;
        e->stale_if_error = -1;
    } else if ((e->flags & POLICY_ENTRY_HEURISTIC) && r->default_ttl >= 0) {
        e->freshness_lifetime = r->default_ttl;
        e->flags &= ~(uint32_t)POLICY_ENTRY_HEURISTIC;
    }
    if (e->freshness_lifetime < r->min_ttl)
        e->freshness_lifetime = r->min_ttl;
    if (r->max_ttl >= 0 && e->freshness_lifetime > r->max_ttl)
        e->freshness_lifetime = r->max_ttl;

    /* Same test as policy_entry_init: the rule adds windows only where the
     * origin allowed stale serving and gave none of its own. */
    uint32_t hard = POLICY_ENTRY_MUST_REVALIDATE | POLICY_ENTRY_PROXY_REVALIDATE | POLICY_ENTRY_NO_CACHE;
    bool allowed = !(e->flags & hard) && (!(e->flags & POLICY_ENTRY_S_MAXAGE) || r->stale_with_s_maxage);
    if (!allowed)
        return;
    if ((override || resp->cc.stale_while_revalidate < 0) && r->stale_while_revalidate >= 0)
        e->stale_while_revalidate = r->stale_while_revalidate;
    if ((override || resp->cc.stale_if_error < 0) && r->stale_if_error >= 0)
        e->stale_if_error = r->stale_if_error;
}
