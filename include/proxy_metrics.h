/* proxy_metrics: the engine's counters (metrics.h) and where they are
 * counted: every response's end (the HTTP server's on_done hook) and the
 * gauges read at scrape time. */
#ifndef CDN_PROXY_METRICS_H
#define CDN_PROXY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "proxy_state.h"

/* Build px->metrics with one shard per worker (nworkers). Returns 0, or a
 * negative errno with a message in err. */
int proxy_metrics_setup(proxy_t *px, unsigned nworkers, char *err, size_t errlen);
void proxy_metrics_teardown(proxy_t *px);
/* http_server_opts_t.on_done: count one response (ud is the proxy_worker_t). */
void proxy_metrics_on_done(void *ud, http_conn_t *c, int status, const char *tag, uint64_t duration_us);

#endif
