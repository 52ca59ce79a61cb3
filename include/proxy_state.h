/* proxy_state: the engine's shared state, which every module of the
 * request path reads: the node-wide part (proxy_t: configuration, store,
 * collapsing table, upstream pools) and each worker's part
 * (proxy_worker_t: its HTTP server, upstream client, store reader and the
 * fetch jobs it drives). Built by core/proxy.c; not an API for programs
 * (they use proxy.h). */
#ifndef CDN_PROXY_STATE_H
#define CDN_PROXY_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fetch.h"
#include "health.h"
#include "image.h"
#include "metrics.h"
#include "http_server.h"
#include "policy_cache.h"
#include "policy_ratelimit.h"
#include "policy_rules.h"
#include "pool.h"
#include "proxy.h"
#include "store.h"
#include "upstream.h"
#include "worker.h"

/* Bound of the peers a purge is passed on to (shields and purge_peers). */
#define PURGE_PEERS_MAX 64

/* The node's life, as health reports it (proxy_t.state). */
typedef enum proxy_life {
    PROXY_STARTING,            /* workers are starting: health 503 */
    PROXY_SERVING,             /* health 200 */
    PROXY_DRAINING,            /* SIGTERM: health 503, still serving for drain_delay */
} proxy_life_t;

struct proxy {
    const config_t *cfg;
    atomic_int state;          /* proxy_life_t */
    uint64_t started_us;       /* wall clock at proxy_new (uptime) */
    metrics_t *metrics;        /* the counters, one shard per worker (metrics.h) */
    policy_rl_cidrs_t admin;   /* admin_allow: who besides loopback reads metrics and status */
    store_t *store;
    fetch_table_t *fetches;
    policy_rule_t defaults;    /* the rule of requests no [rule] matches */
    pool_t *primary;           /* the shields (edge with shields) or the origins */
    pool_t *fallback;          /* the origins when every shield is down, or NULL */
    bool primary_shields;      /* primary holds shields (checked at /.cdn/health) */
    policy_opts_t *opts;       /* per rule (cfg->rules order), then the defaults' */
    worker_hooks_t hooks;
    char via[96];              /* our Via member: "1.1 NAME" */
    size_t via_len;
    char error_headers[256];   /* on errors the HTTP server answers itself */
    /* pass_headers / pass_headers_unkeyed as "name\n" lines, lowercase:
     * the keyed ones are the form policy_vary_fields_with takes */
    char pass_keyed[1100], pass_unkeyed[1100];
    size_t pass_keyed_len, pass_unkeyed_len;
    char purge_token[1024];    /* from purge_token_file; purge_token_len 0: purging is off */
    size_t purge_token_len;
    /* the peers a purge is passed on to, shields first (purge_fanout.c) */
    char purge_peers[PURGE_PEERS_MAX][256];
    size_t n_purge_peers, n_purge_shields;
    atomic_uint_fast64_t purge_peer_failures; /* failed attempts to pass a purge on */
    atomic_uint conns_total;   /* client connections of every worker (max_connections_total) */
    /* rate limiting (limit.c) */
    struct ratelimit *rl;      /* the buckets and connection counts every worker shares */
    policy_rl_cidrs_t trusted, allow;
    atomic_uint_fast64_t *limited; /* requests refused, per rule (cfg->rules order), then the node's */
    /* image resizing (rules with image = on; image_req.c, derive.c) */
    struct task_pool *image_pool; /* transform threads, or NULL when no rule resizes */
    image_opts_t image_opts;
    bool image_avif;           /* AVIF output works here */
    char image_key[1024];      /* from image_signing_key_file; image_key_len 0: no signatures */
    size_t image_key_len;
    /* metrics (proxy_metrics.c) */
    struct proxy_metrics_targets *mtargets; /* upstream target name -> metric slot (node's life) */
};

typedef struct fjob fjob_t;
typedef struct preq preq_t;
typedef struct purge_fanout purge_fanout_t;

typedef struct proxy_worker {
    proxy_t *px;
    worker_t *w;
    metrics_shard_t *ms;       /* this worker's counters: only its thread writes them */
    http_server_t *srv;
    upstream_t *up;
    store_reader_t *rd;
    uv_timer_t tick;           /* hands LRU touches to the store writer */
    health_t *health;          /* active checks of the primary pool (worker 0 only) */
    fjob_t *jobs;              /* upstream fetches this worker drives */
    preq_t *free_reqs;         /* request objects to reuse (preq.c) */
    purge_fanout_t *fanouts;   /* purges being passed on to peers (purge_fanout.c) */
    struct derive *derives;    /* image variants this worker is making (derive.c) */
    unsigned n_free_reqs;
} proxy_worker_t;

/* The engine's clock for HTTP dates and freshness (seconds). */
int64_t proxy_now(void);

#endif
