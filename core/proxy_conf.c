/* proxy_conf: build, share and free one generation of the reloadable
 * configuration (see include/proxy_conf.h). */
#include "proxy_conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_fields.h"
#include "policy_vary.h"
#include "purge_fanout.h"
#include "purge_req.h"

static void pool_ref_drop(proxy_pool_t *pp)
{
    if (pp && atomic_fetch_sub(&pp->refs, 1) == 1) {
        pool_free(pp->pool);
        free(pp);
    }
}

/* A comma-separated list into a pool: shields are "host:port" (sent to as
 * http://host:port), origins base URLs. prev's pools are reused when list
 * and options are the same. Returns NULL with err set. */
static proxy_pool_t *parse_pool(const config_t *cfg, const proxy_conf_t *prev, const char *list, bool shields, bool only,
                                char *err, size_t errlen)
{
    pool_opts_t po = {
        .eject_after = cfg->eject_after,
        .backoff_ms = cfg->eject_backoff_ms,
        .backoff_max_ms = cfg->eject_backoff_max_ms,
        /* The node's one and only upstream: ejecting it would leave
         * nothing to try (nginx ignores max_fails for a lone server too). */
        .never_eject = only,
    };
    char names[POOL_MAX][256], bases[POOL_MAX][256 + 8];
    const char *np[POOL_MAX], *bp[POOL_MAX];
    size_t n = 0;
    const char *what = shields ? "shields" : "origin";
    http_slice_t item;
    size_t pos = 0;
    while (http_list_next((http_slice_t){ list, strlen(list) }, &pos, &item)) {
        if (n == POOL_MAX || item.len >= sizeof names[0]) {
            snprintf(err, errlen, "%s: at most %d entries of up to %zu characters", what, POOL_MAX,
                     sizeof names[0] - 1);
            return NULL;
        }
        memcpy(names[n], item.p, item.len);
        names[n][item.len] = '\0';
        if (shields) {
            char host[256];
            unsigned port;
            if (config_parse_addr(names[n], host, sizeof host, &port) || port == 0) {
                snprintf(err, errlen, "shields: expected host:port, got '%s'", names[n]);
                return NULL;
            }
            memcpy(bases[n], "http://", 7);
            memcpy(bases[n] + 7, names[n], item.len + 1); /* fits: names are < 256 bytes */
        } else {
            size_t l = item.len;
            while (l && names[n][l - 1] == '/')
                names[n][--l] = '\0';
            if (strncmp(names[n], "http://", 7) && strncmp(names[n], "https://", 8)) {
                snprintf(err, errlen, "origin: expected an http:// or https:// base URL, got '%s'", names[n]);
                return NULL;
            }
            memcpy(bases[n], names[n], l + 1);
        }
        np[n] = names[n];
        bp[n] = bases[n];
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s: empty list", what);
        return NULL;
    }
    po.never_eject = only && n == 1;
    proxy_pool_t *olds[2] = { prev ? prev->primary_ref : NULL, prev ? prev->fallback_ref : NULL };
    for (int i = 0; i < 2; i++) {
        proxy_pool_t *o = olds[i];
        if (o && o->shields == shields && strcmp(o->list, list) == 0 && memcmp(&o->opts, &po, sizeof po) == 0) {
            atomic_fetch_add(&o->refs, 1);
            return o;
        }
    }
    proxy_pool_t *pp = calloc(1, sizeof *pp);
    if (!pp || strlen(list) >= sizeof pp->list) {
        free(pp);
        snprintf(err, errlen, "%s: out of memory", what);
        return NULL;
    }
    atomic_init(&pp->refs, 1);
    pp->shields = shields;
    pp->opts = po;
    strcpy(pp->list, list);
    pp->pool = pool_new(np, bp, n, &po);
    if (!pp->pool) {
        free(pp);
        snprintf(err, errlen, "%s: invalid list '%s' (an entry named twice?)", what, list);
        return NULL;
    }
    return pp;
}

/* The upstream tiers: shields first (with the origins as the fallback
 * when every shield is down), or the origins alone. */
static int build_pools(proxy_conf_t *c, const proxy_conf_t *prev, char *err, size_t errlen)
{
    const config_t *cfg = &c->cfg;
    bool no_origin = strcmp(cfg->origin, "none") == 0 || cfg->origin[0] == '\0';
    bool shields = cfg->shields[0] != '\0';
    proxy_pool_t *origins = NULL;
    if (!no_origin && !(origins = parse_pool(cfg, prev, cfg->origin, false, !shields, err, errlen)))
        return -EINVAL;
    if (shields) {
        c->primary_ref = parse_pool(cfg, prev, cfg->shields, true, no_origin, err, errlen);
        if (!c->primary_ref) {
            pool_ref_drop(origins);
            return -EINVAL;
        }
        c->primary_shields = true;
        c->fallback_ref = origins;
    } else if (!origins) {
        snprintf(err, errlen, "origin: a node without shields needs an origin");
        return -EINVAL;
    } else {
        c->primary_ref = origins;
    }
    c->primary = c->primary_ref->pool;
    c->fallback = c->fallback_ref ? c->fallback_ref->pool : NULL;
    return 0;
}

/* A header name list (checked by the config parser) into "name\n" lines,
 * lowercase, each once; returns the length. */
static size_t name_lines(const char *list, char *out, size_t cap)
{
    size_t len = 0, pos = 0;
    http_slice_t item;
    while (http_list_next((http_slice_t){ list, strlen(list) }, &pos, &item)) {
        if (len + item.len + 2 > cap)
            break; /* cannot happen: the lines are no longer than the list */
        char *name = out + len;
        for (size_t i = 0; i < item.len; i++)
            name[i] = (char)tolower((unsigned char)item.p[i]);
        if (policy_vary_listed(out, len, name, item.len))
            continue;
        name[item.len] = '\n';
        len += item.len + 1;
    }
    out[len] = '\0';
    return len;
}

/* The client headers passed upstream although policy_forwarding_header
 * names them; a name in both lists is a mistake worth stopping for. */
static int build_pass_lists(proxy_conf_t *c, char *err, size_t errlen)
{
    c->pass_keyed_len = name_lines(c->cfg.pass_headers, c->pass_keyed, sizeof c->pass_keyed);
    c->pass_unkeyed_len = name_lines(c->cfg.pass_headers_unkeyed, c->pass_unkeyed, sizeof c->pass_unkeyed);
    for (size_t i = 0; i < c->pass_keyed_len;) {
        const char *nl = memchr(c->pass_keyed + i, '\n', c->pass_keyed_len - i);
        size_t l = (size_t)(nl - c->pass_keyed) - i;
        if (policy_vary_listed(c->pass_unkeyed, c->pass_unkeyed_len, c->pass_keyed + i, l)) {
            snprintf(err, errlen, "pass_headers_unkeyed: '%.*s' is in pass_headers too: keyed or not?", (int)l,
                     c->pass_keyed + i);
            return -EINVAL;
        }
        i += l + 1;
    }
    return 0;
}

static int build_rules(proxy_conf_t *c, const config_t *cfg, char *err, size_t errlen)
{
    c->cfg = *cfg;
    c->cfg.rules = NULL;
    c->cfg.nrules = 0;
    if (cfg->nrules) {
        c->cfg.rules = malloc(cfg->nrules * sizeof *cfg->rules);
        if (!c->cfg.rules)
            goto oom;
        memcpy(c->cfg.rules, cfg->rules, cfg->nrules * sizeof *cfg->rules);
        c->cfg.nrules = cfg->nrules;
    }
    policy_rule_defaults(&c->defaults);
    c->opts = calloc(cfg->nrules + 1, sizeof *c->opts);
    c->limited = calloc(cfg->nrules + 1, sizeof *c->limited);
    if (!c->opts || !c->limited)
        goto oom;
    for (size_t i = 0; i <= cfg->nrules; i++) {
        policy_opts_t *o = &c->opts[i];
        policy_rule_opts(i < cfg->nrules ? &c->cfg.rules[i] : &c->defaults, o);
        /* Surrogate-Control also speaks to this cache, after the more
         * specific CDN-Cache-Control (RFC 9213 section 2.1). */
        if (o->targeted_cc[0] && !o->targeted_cc[1])
            o->targeted_cc[1] = "Surrogate-Control";
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

/* Generations alive in this process: the current one, plus those still
 * read by a request, job or derivation that started under them. */
static atomic_uint live;

unsigned proxy_conf_live(void)
{
    return atomic_load(&live);
}

static void conf_free(proxy_conf_t *c)
{
    atomic_fetch_sub(&live, 1);
    pool_ref_drop(c->primary_ref);
    pool_ref_drop(c->fallback_ref);
    free(c->opts);
    free(c->limited);
    config_free(&c->cfg);
    free(c);
}

int proxy_conf_new(proxy_conf_t **out, const config_t *cfg, const proxy_conf_t *prev, char *err, size_t errlen)
{
    proxy_conf_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    atomic_fetch_add(&live, 1);
    atomic_init(&c->refs, 1);
    atomic_init(&c->pending, 0);
    c->gen = prev ? prev->gen + 1 : 1;
    int rc = build_rules(c, cfg, err, errlen);
    if (!rc) {
        int np = purge_fanout_peers(&c->cfg, c->purge_peers, PURGE_PEERS_MAX, &c->n_purge_shields, err, errlen);
        rc = np < 0 ? np : 0;
        c->n_purge_peers = np < 0 ? 0 : (size_t)np;
    }
    /* The keys are read here, not on the request path: they never sit on a command line. */
    if (!rc && c->cfg.purge_token_file[0] &&
        !(rc = purge_token_load(c->cfg.purge_token_file, c->purge_token, sizeof c->purge_token, err, errlen)))
        c->purge_token_len = strlen(c->purge_token);
    if (!rc && c->cfg.image_signing_key_file[0] &&
        !(rc = purge_token_load(c->cfg.image_signing_key_file, c->image_key, sizeof c->image_key, err, errlen)))
        c->image_key_len = strlen(c->image_key);
    if (!rc && (policy_rl_cidrs_parse(&c->trusted, c->cfg.trusted_proxies, err, errlen) ||
                policy_rl_cidrs_parse(&c->allow, c->cfg.allowlist, err, errlen) ||
                policy_rl_cidrs_parse(&c->admin, c->cfg.admin_allow, err, errlen)))
        rc = -EINVAL;
    if (!rc)
        rc = build_pass_lists(c, err, errlen);
    if (!rc)
        rc = build_pools(c, prev, err, errlen);
    if (rc) {
        conf_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void proxy_conf_ref(proxy_conf_t *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void proxy_conf_unref(proxy_conf_t *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        conf_free(c);
}

void proxy_conf_rule(const proxy_conf_t *c, const char *key, size_t len, const policy_rule_t **rule,
                     const policy_opts_t **popts)
{
    const policy_rule_t *r = config_rule_for_key(&c->cfg, key, len);
    size_t i = r ? (size_t)(r - c->cfg.rules) : c->cfg.nrules;
    *rule = r ? r : &c->defaults;
    *popts = &c->opts[i];
}
