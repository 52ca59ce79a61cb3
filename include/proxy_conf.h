/* proxy_conf: one generation of the node's reloadable configuration and
 * everything derived from it (rules and their options, upstream pools,
 * header lists, purge peers, CIDR lists, keys), built by core/proxy_conf.c.
 *
 * A generation is immutable once published and refcounted: proxy_t holds
 * the current one, each worker caches it (proxy_worker_t.conf, swapped by
 * a posted task on reload), and every request, fetch job, derivation and
 * purge fan-out holds a reference to the generation it started under, so
 * pointers into it (p->rule, p->popts, j->pool) stay valid until its last
 * user is gone. A SIGHUP builds the next generation beside the running one
 * (core/reload.c). */
#ifndef CDN_PROXY_CONF_H
#define CDN_PROXY_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "policy_cache.h"
#include "policy_ratelimit.h"
#include "policy_rules.h"
#include "pool.h"

/* Bound of the peers a purge is passed on to (shields and purge_peers). */
#define PURGE_PEERS_MAX 64

/* A pool shared by the generations whose list and ejection settings are
 * the same, so ejections and health survive a reload. */
typedef struct proxy_pool {
    atomic_int refs;
    pool_t *pool;              /* owned */
    bool shields;
    pool_opts_t opts;
    char list[1024];           /* the config's list it was built from */
} proxy_pool_t;

typedef struct proxy_conf {
    atomic_int refs;
    unsigned gen;              /* 1 at start, one more per applied reload */
    atomic_uint pending;       /* workers yet to switch to this generation (reload.c) */
    config_t cfg;              /* owned copy, its rules too; restart-only keys hold the running values */
    policy_rule_t defaults;    /* the rule of requests no [rule] matches */
    policy_opts_t *opts;       /* per rule (cfg.rules order), then the defaults' */
    proxy_pool_t *primary_ref, *fallback_ref; /* shared (refcounted); fallback_ref may be NULL */
    pool_t *primary;           /* the shields (edge with shields) or the origins */
    pool_t *fallback;          /* the origins when every shield is down, or NULL */
    bool primary_shields;      /* primary holds shields (checked at /.cdn/health) */
    /* pass_headers / pass_headers_unkeyed as "name\n" lines, lowercase:
     * the keyed ones are the form policy_vary_fields_with takes */
    char pass_keyed[1100], pass_unkeyed[1100];
    size_t pass_keyed_len, pass_unkeyed_len;
    char purge_token[1024];    /* from purge_token_file; purge_token_len 0: purging is off */
    size_t purge_token_len;
    /* the peers a purge is passed on to, shields first (purge_fanout.c) */
    char purge_peers[PURGE_PEERS_MAX][256];
    size_t n_purge_peers, n_purge_shields;
    policy_rl_cidrs_t trusted, allow; /* trusted_proxies, allowlist (limit.c) */
    policy_rl_cidrs_t admin;   /* admin_allow: who besides loopback reads metrics and status */
    atomic_uint_fast64_t *limited; /* requests refused, per rule (cfg.rules order), then the node's */
    char image_key[1024];      /* from image_signing_key_file; image_key_len 0: no signatures */
    size_t image_key_len;
} proxy_conf_t;

/* Generations alive in the process (any thread): 1 between reloads once
 * the requests that started under older ones have ended. */
unsigned proxy_conf_live(void);
/* Build a generation from cfg (copied, rules too). Pools whose list and
 * settings equal prev's (may be NULL) are shared with it. Reads the key
 * files cfg names. Returns 0, or a negative errno with a message in err. */
int proxy_conf_new(proxy_conf_t **out, const config_t *cfg, const proxy_conf_t *prev, char *err, size_t errlen);
/* Take a reference (any thread; c must be held already). */
void proxy_conf_ref(proxy_conf_t *c);
/* Drop a reference; the last one frees c (any thread). NULL is ignored. */
void proxy_conf_unref(proxy_conf_t *c);
/* The rule and options for a normalised cache key (valid while c is held). */
void proxy_conf_rule(const proxy_conf_t *c, const char *key, size_t len, const policy_rule_t **rule,
                     const policy_opts_t **popts);

#endif
