/* proxy_metrics: the engine's counters (metrics.h) and where they are
 * counted: every response's end (the HTTP server's on_done hook), refused
 * connections, and the gauges and scraped counters read at scrape time
 * (pools, store, connections, rate limits, build info).
 *
 * Upstream targets are counted by name, not by pool: a reload may replace
 * the pools, so a node keeps its own table of target names (at most
 * METRIC_TARGET_SLOTS - 1; later names share the slot "other"), each
 * copied once and kept for the node's life. */
#ifndef CDN_PROXY_METRICS_H
#define CDN_PROXY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "proxy_state.h"

/* Build px->metrics with one shard per worker (nworkers), the target
 * table (with the targets of px->primary and px->fallback, when set) and
 * the scrape-time callbacks. Returns 0, or a negative errno with a
 * message in err. */
int proxy_metrics_setup(proxy_t *px, unsigned nworkers, char *err, size_t errlen);
void proxy_metrics_teardown(proxy_t *px);
/* http_server_opts_t.on_done: count one response (ud is the proxy_worker_t). */
void proxy_metrics_on_done(void *ud, http_conn_t *c, int status, const char *tag, uint64_t duration_us);
/* http_server_opts_t.on_refused: count one refused connection. */
void proxy_metrics_on_refused(void *ud);
/* The metric slot of upstream target name (registered on first sight:
 * takes a mutex then; lock-free afterwards), and in *stable the node's own
 * copy of the name, valid until proxy_metrics_teardown (for the access
 * log). Any thread. */
unsigned proxy_metrics_target(proxy_t *px, const char *name, const char **stable);

#endif
