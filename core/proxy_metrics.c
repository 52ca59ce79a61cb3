/* proxy_metrics: counting the engine's metrics (see include/proxy_metrics.h). */
#include "proxy_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int proxy_metrics_setup(proxy_t *px, unsigned nworkers, char *err, size_t errlen)
{
    int rc = metrics_new(metrics_cdn_defs, METRIC_CDN_COUNT, nworkers, &px->metrics);
    if (rc)
        snprintf(err, errlen, "metrics: %s", strerror(-rc));
    return rc;
}

void proxy_metrics_teardown(proxy_t *px)
{
    metrics_free(px->metrics);
    px->metrics = NULL;
}

/* The outcome label of an access-log tag, or -1 for a response that is
 * not a cache outcome (control paths, purges). */
static int outcome_of(const char *tag)
{
    if (!tag)
        return METRIC_ERROR;
    switch (tag[0]) {
    case 'h': return METRIC_HIT;
    case 'm': return METRIC_MISS;
    case 's': return METRIC_STALE;
    case 'r': return strcmp(tag, "revalidated") == 0 ? METRIC_REVALIDATED : METRIC_ERROR;
    case 'c': return strcmp(tag, "collapsed") == 0 ? METRIC_COLLAPSED : -1;
    case 'p': return strcmp(tag, "pass") == 0 ? METRIC_PASS : -1;
    default: return METRIC_ERROR;
    }
}

void proxy_metrics_on_done(void *ud, http_conn_t *c, int status, const char *tag, uint64_t duration_us)
{
    proxy_worker_t *pw = ud;
    metrics_shard_t *ms = pw->ms;
    int o = outcome_of(tag);
    if (o >= 0) {
        metrics_inc(ms, METRIC_REQUESTS, (unsigned)o, 1);
        metrics_observe(ms, METRIC_REQUEST_DURATION, (unsigned)o, (double)duration_us / 1e6);
    }
    if (status >= 100 && status < 600)
        metrics_inc(ms, METRIC_RESPONSES, (unsigned)(status / 100 - 1), 1);
    metrics_inc(ms, METRIC_CLIENT_BYTES_SENT, 0, http_resp_bytes(c));
}
