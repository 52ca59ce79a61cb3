/* proxy_metrics: counting the engine's metrics (see include/proxy_metrics.h). */
#include "proxy_metrics.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <vips/vips.h>

#include "proxy_conf.h"

#include "version.h"

/* Upstream target names by slot. A slot's name is written once, before n
 * is published (release), and never changes: readers scan the first n
 * without a lock. */
struct proxy_metrics_targets {
    pthread_mutex_t mu;
    atomic_uint n;
    char name[METRIC_TARGET_SLOTS][POOL_NAME_MAX];
};

#define OTHER_SLOT (METRIC_TARGET_SLOTS - 1)

unsigned proxy_metrics_target(proxy_t *px, const char *name, const char **stable)
{
    struct proxy_metrics_targets *t = px->mtargets;
    unsigned n = atomic_load_explicit(&t->n, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(t->name[i], name) == 0) {
            *stable = t->name[i];
            return i;
        }
    pthread_mutex_lock(&t->mu);
    unsigned slot = OTHER_SLOT;
    n = atomic_load_explicit(&t->n, memory_order_relaxed);
    for (unsigned i = 0; i < n && slot == OTHER_SLOT; i++)
        if (strcmp(t->name[i], name) == 0)
            slot = i;
    if (slot == OTHER_SLOT && n < OTHER_SLOT && strlen(name) < POOL_NAME_MAX) {
        strcpy(t->name[n], name);
        slot = n;
        atomic_store_explicit(&t->n, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&t->mu);
    *stable = t->name[slot];
    return slot;
}

static const char *target_label(void *ud, unsigned slot)
{
    struct proxy_metrics_targets *t = ud;
    if (slot == OTHER_SLOT)
        return "other";
    return slot < atomic_load_explicit(&t->n, memory_order_acquire) ? t->name[slot] : NULL;
}

static void register_pool(proxy_t *px, const pool_t *p)
{
    const char *stable;
    for (size_t i = 0; p && i < pool_size(p); i++)
        proxy_metrics_target(px, pool_name(p, i), &stable);
}

/* --- scrape-time samples --- */

/* ms on the clock the pools are judged by (a loop's uv_now) */
static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static int put_pool(metrics_gauge_sink_t *sink, const pool_t *p, bool ejected)
{
    int rc = 0;
    for (size_t i = 0; p && i < pool_size(p) && rc == 0; i++) {
        pool_target_stats_t st;
        pool_stats(p, i, now_ms(), &st);
        rc = metrics_gauge_put(sink, pool_name(p, i), ejected ? st.ejected : !st.down);
    }
    return rc;
}

static int put_up(void *ud, metrics_gauge_sink_t *sink)
{
    const proxy_conf_t *pc = proxy_conf_here(ud); /* the scraping worker's generation */
    int rc = put_pool(sink, pc->primary, false);
    return rc ? rc : put_pool(sink, pc->fallback, false);
}

static int put_ejected(void *ud, metrics_gauge_sink_t *sink)
{
    const proxy_conf_t *pc = proxy_conf_here(ud);
    int rc = put_pool(sink, pc->primary, true);
    return rc ? rc : put_pool(sink, pc->fallback, true);
}

static int put_conns(void *ud, metrics_gauge_sink_t *sink)
{
    proxy_t *px = ud;
    return metrics_gauge_put(sink, NULL, atomic_load(&px->conns_total));
}

/* The store's statistics, one snapshot per family (each is consistent). */
static int store_stats_of(proxy_t *px, store_stats_t *st)
{
    if (!px->store)
        return -EAGAIN; /* cannot happen once the node serves */
    store_get_stats(px->store, st);
    return 0;
}

#define STORE_GAUGE(fn, expr)                                  \
    static int fn(void *ud, metrics_gauge_sink_t *sink)        \
    {                                                          \
        store_stats_t st;                                      \
        int rc = store_stats_of(ud, &st);                      \
        return rc ? rc : metrics_gauge_put(sink, NULL, (expr)); \
    }
#define STORE_COUNT(fn, expr)                                  \
    static int fn(void *ud, metrics_gauge_sink_t *sink)        \
    {                                                          \
        store_stats_t st;                                      \
        int rc = store_stats_of(ud, &st);                      \
        return rc ? rc : metrics_put_count(sink, NULL, (expr)); \
    }
STORE_GAUGE(put_store_bytes, (double)st.bytes)
STORE_GAUGE(put_store_objects, (double)st.objects)
STORE_GAUGE(put_store_map_size, (double)st.map_size)
STORE_GAUGE(put_store_map_used, (double)st.map_used)
STORE_GAUGE(put_store_up, st.failing ? 0 : 1)
STORE_COUNT(put_store_evictions, st.evictions)
STORE_COUNT(put_store_batches, st.batches)
STORE_COUNT(put_store_batch_errors, st.batch_errors)

static int put_store_batch_duration(void *ud, metrics_gauge_sink_t *sink)
{
    store_stats_t st;
    int rc = store_stats_of(ud, &st);
    return rc ? rc : metrics_put_histogram(sink, NULL, st.batch_buckets, st.batch_us);
}

static int put_store_purges(void *ud, metrics_gauge_sink_t *sink)
{
    store_stats_t st;
    int rc = store_stats_of(ud, &st);
    if (rc == 0)
        rc = metrics_put_count(sink, "url", st.purge_urls);
    if (rc == 0)
        rc = metrics_put_count(sink, "tag", st.purge_tags);
    if (rc == 0)
        rc = metrics_put_count(sink, "prefix", st.purge_prefixes);
    return rc;
}

/* Refusals per rule (its pattern; a pattern written twice gets "#N", its
 * rule number, so no series repeats), then the node-wide limit's. */
static int put_limited(void *ud, metrics_gauge_sink_t *sink)
{
    /* The counters of the generation in force (a reload starts new ones). */
    const proxy_conf_t *pc = proxy_conf_here(ud);
    const config_t *cfg = &pc->cfg;
    if (!pc->limited)
        return 0;
    int rc = 0;
    for (size_t i = 0; i < cfg->nrules && rc == 0; i++) {
        const char *pat = cfg->rules[i].pattern;
        bool twice = false;
        for (size_t k = 0; k < i && !twice; k++)
            twice = strcmp(cfg->rules[k].pattern, pat) == 0;
        char label[POLICY_RULE_PATTERN_MAX + 24];
        snprintf(label, sizeof label, twice ? "%s#%zu" : "%s", pat, i + 1);
        rc = metrics_put_count(sink, label, atomic_load(&pc->limited[i]));
    }
    return rc ? rc : metrics_put_count(sink, "node", atomic_load(&pc->limited[cfg->nrules]));
}

static int put_reloads(void *ud, metrics_gauge_sink_t *sink)
{
    proxy_t *px = ud;
    int rc = metrics_put_count(sink, "applied", atomic_load(&px->reloads_applied));
    return rc ? rc : metrics_put_count(sink, "refused", atomic_load(&px->reloads_refused));
}

static int put_generations(void *ud, metrics_gauge_sink_t *sink)
{
    (void)ud;
    return metrics_gauge_put(sink, NULL, proxy_conf_live());
}

static int put_build(void *ud, metrics_gauge_sink_t *sink)
{
    static const char *const names[] = {"version", "revision", "libvips", "libcurl", "libuv"};
    const char *values[] = {CDN_VERSION, cdn_revision(), vips_version_string(),
                            curl_version_info(CURLVERSION_NOW)->version, uv_version_string()};
    return metrics_gauge_put_labels(sink, 5, names, values, 1);
}

int proxy_metrics_setup(proxy_t *px, unsigned nworkers, char *err, size_t errlen)
{
    px->mtargets = calloc(1, sizeof *px->mtargets);
    if (!px->mtargets) {
        snprintf(err, errlen, "metrics: out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&px->mtargets->mu, NULL);
    int rc = metrics_new(metrics_cdn_defs, METRIC_CDN_COUNT, nworkers, &px->metrics);
    if (rc) {
        snprintf(err, errlen, "metrics: %s", strerror(-rc));
        proxy_metrics_teardown(px);
        return rc;
    }
    register_pool(px, px->conf->primary);
    register_pool(px, px->conf->fallback);
    metrics_t *m = px->metrics;
    metrics_set_labels(m, METRIC_UPSTREAM_DURATION, target_label, px->mtargets);
    static const struct {
        unsigned id;
        metrics_gauge_fn fn;
    } fns[] = {
        {METRIC_UPSTREAM_UP, put_up},
        {METRIC_UPSTREAM_EJECTED, put_ejected},
        {METRIC_CONNS_OPEN, put_conns},
        {METRIC_STORE_BYTES, put_store_bytes},
        {METRIC_STORE_OBJECTS, put_store_objects},
        {METRIC_STORE_EVICTIONS, put_store_evictions},
        {METRIC_STORE_BATCHES, put_store_batches},
        {METRIC_STORE_BATCH_ERRORS, put_store_batch_errors},
        {METRIC_STORE_BATCH_DURATION, put_store_batch_duration},
        {METRIC_STORE_MAP_SIZE, put_store_map_size},
        {METRIC_STORE_MAP_USED, put_store_map_used},
        {METRIC_STORE_UP, put_store_up},
        {METRIC_STORE_PURGES, put_store_purges},
        {METRIC_RATE_LIMITED, put_limited},
        {METRIC_BUILD_INFO, put_build},
        {METRIC_CONFIG_RELOADS, put_reloads},
        {METRIC_CONFIG_GENERATIONS, put_generations},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        metrics_set_gauge(m, fns[i].id, fns[i].fn, px);
    return 0;
}

void proxy_metrics_teardown(proxy_t *px)
{
    metrics_free(px->metrics);
    px->metrics = NULL;
    if (px->mtargets) {
        pthread_mutex_destroy(&px->mtargets->mu);
        free(px->mtargets);
        px->mtargets = NULL;
    }
}

/* --- counting --- */

/* The outcome label of an access-log tag: one branch on the first byte,
 * then one full compare, so "stale" and "store-x" never mix. */
static unsigned outcome_of(const char *tag)
{
    if (!tag)
        return METRIC_OTHER;
#define IS(s) (strcmp(tag, s) == 0)
    switch (tag[0]) {
    case 'h': return IS("hit") ? METRIC_HIT : METRIC_OTHER;
    case 'm': return IS("miss") ? METRIC_MISS : METRIC_OTHER;
    case 's': return IS("stale") ? METRIC_STALE : METRIC_OTHER;
    case 'r': return IS("revalidated") ? METRIC_REVALIDATED : IS("rate-limited") ? METRIC_LIMITED : METRIC_OTHER;
    case 'c': return IS("collapsed") ? METRIC_COLLAPSED : IS("control") ? METRIC_CONTROL : METRIC_OTHER;
    case 'p': return IS("pass")          ? METRIC_PASS
                   : IS("purge")         ? METRIC_PURGE
                   : IS("penalty-box")   ? METRIC_LIMITED
                                         : METRIC_OTHER;
    case 'e': return IS("error") ? METRIC_ERROR : METRIC_OTHER;
    case 'a': return IS("aborted") ? METRIC_ABORTED : METRIC_OTHER;
    default: return METRIC_OTHER;
    }
#undef IS
}

void proxy_metrics_on_done(void *ud, http_conn_t *c, int status, const char *tag, uint64_t duration_us)
{
    proxy_worker_t *pw = ud;
    metrics_shard_t *ms = pw->ms;
    unsigned o = outcome_of(tag);
    metrics_inc(ms, METRIC_REQUESTS, o, 1);
    metrics_observe(ms, METRIC_REQUEST_DURATION, o, (double)duration_us / 1e6);
    if (status >= 100 && status < 600)
        metrics_inc(ms, METRIC_RESPONSES, (unsigned)(status / 100 - 1), 1);
    metrics_inc(ms, METRIC_CLIENT_BYTES_SENT, 0, http_resp_bytes(c));
}

void proxy_metrics_on_refused(void *ud)
{
    proxy_worker_t *pw = ud;
    metrics_inc(pw->ms, METRIC_CONNS_REFUSED, 0, 1);
}
