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
#include "proxy_conf.h"
#include "store.h"
#include "upstream.h"
#include "worker.h"

/* The node's life, as health reports it (proxy_t.state). */
typedef enum proxy_life {
    PROXY_STARTING,            /* workers are starting: health 503 */
    PROXY_SERVING,             /* health 200 */
    PROXY_DRAINING,            /* SIGTERM: health 503, still serving for drain_delay */
} proxy_life_t;

struct proxy {
    /* The configuration the node started with: read only restart-only
     * keys from it (listen, name, cache_*, image_* limits...); everything
     * a reload may change is in the generation a request holds (p->conf). */
    const config_t *cfg;
    atomic_int state;          /* proxy_life_t */
    uint64_t started_us;       /* wall clock at proxy_new (uptime) */
    metrics_t *metrics;        /* the counters, one shard per worker (metrics.h) */
    struct status *status;     /* the status page's history and latest purges (status.h) */
    store_t *store;
    fetch_table_t *fetches;
    worker_hooks_t hooks;
    char via[96];              /* our Via member: "1.1 NAME" (name is restart-only) */
    size_t via_len;
    char error_headers[256];   /* on errors the HTTP server answers itself */
    atomic_uint_fast64_t purge_peer_failures; /* failed attempts to pass a purge on */
    atomic_uint conns_total;   /* client connections of every worker (max_connections_total) */
    struct ratelimit *rl;      /* the buckets and connection counts every worker shares (limit.c) */
    /* image resizing (rules with image = on; image_req.c, derive.c) */
    struct task_pool *image_pool; /* transform threads, or NULL when no rule resizes */
    image_opts_t image_opts;
    bool image_avif;           /* AVIF output works here */
    /* reload (reload.c): the current generation, as the main thread sees
     * it (one reference; workers cache their own in proxy_worker_t.conf) */
    proxy_conf_t *conf;        /* written by the main thread only, after the workers started */
    worker_t **workers;        /* by index, set in w_init; nworkers long */
    unsigned nworkers;
    unsigned prog;             /* CONFIG_EDGE / CONFIG_SHIELD */
    const char *progname;
    int argc;                  /* the command line a reload reads again (-c FILE, flags) */
    char **argv;
    atomic_uint_fast64_t reloads_applied, reloads_refused; /* SIGHUPs (reload.c; metrics) */
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
    proxy_conf_t *conf;        /* the generation new requests take (one reference; swapped on reload) */
    /* Requests of this worker on conf, and on generations a reload
     * replaced (reload.c): counted here, not on the generation's shared
     * refcount, so a request writes no cache line another worker does. */
    unsigned long conf_users;
    struct proxy_conf_use *conf_old; /* each holds one reference */
    health_t *health;          /* active checks of the primary pool (worker 0 only) */
    struct proxy_retired *retired; /* health checkers closed by a reload, freed on the next tick */
    fjob_t *jobs;              /* upstream fetches this worker drives */
    preq_t *free_reqs;         /* request objects to reuse (preq.c) */
    purge_fanout_t *fanouts;   /* purges being passed on to peers (purge_fanout.c) */
    struct derive *derives;    /* image variants this worker is making (derive.c) */
    unsigned n_free_reqs;
} proxy_worker_t;

/* The generation the calling thread should read: on a worker, the one it
 * caches (valid during the current callback; take a reference to keep
 * it); on the main thread, the current one. */
const proxy_conf_t *proxy_conf_here(const proxy_t *px);
/* The engine's clock for HTTP dates and freshness (seconds). */
int64_t proxy_now(void);

#endif
