/* status: the node's status page, GET /.cdn/status (one self-contained
 * HTML page, embedded in the binary), and its JSON twin, GET
 * /.cdn/status.json, which the page fetches every few seconds.
 *
 * The JSON holds the node's identity and uptime, the counters since start
 * (requests by outcome, responses by class, bytes), latency percentiles
 * estimated from the duration histogram, the store's use, each upstream
 * target's health, the latest purges, and a history: every
 * STATUS_SAMPLE_MS a sampler on worker 0's loop snapshots the counters
 * into a ring covering the last STATUS_HISTORY_S seconds, from which the
 * page draws request rate, hit ratio, offload and latency over time.
 *
 * The ring and the purge list are shared by every worker (the page can be
 * asked on any of them) and guarded by one mutex; nothing here runs on
 * the request path except status_purge_record, once per purge. */
#ifndef CDN_STATUS_H
#define CDN_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "metrics.h"

/* Sampling period of the history. */
#define STATUS_SAMPLE_MS 5000
/* The history's span: the ring holds this many seconds of intervals. */
#define STATUS_HISTORY_S 900
/* Purges remembered for the page (the latest ones). */
#define STATUS_PURGES 20
/* Longest "what" of a remembered purge (bytes, NUL included). */
#define STATUS_PURGE_WHAT 160

typedef struct status status_t;
typedef struct proxy proxy_t;
typedef struct preq preq_t;
struct purge_req;

/* What a purge asked for, described when it is accepted and recorded when
 * it completes (plain data: the purge keeps it by value). */
typedef struct status_purge_desc {
    char kind[8];                   /* "url", "prefix", "tag", "all" or "mixed" */
    char what[STATUS_PURGE_WHAT];   /* the first items, truncated, "+N more" */
} status_purge_desc_t;

/* Allocate the shared state (freed by status_free). Returns 0 or -ENOMEM
 * with a message in err. */
int status_new(status_t **out, char *err, size_t errlen);
/* Free st (NULL is fine) after status_sampler_close's loop has run. */
void status_free(status_t *st);

/* Start sampling px's counters on loop (worker 0's thread, once). */
void status_sampler_start(proxy_t *px, uv_loop_t *loop);
/* Stop the sampler (on the loop's thread, from its close hook); the timer
 * is closed by the loop's last run, before status_free. */
void status_sampler_close(proxy_t *px);

/* Describe r into *d (any thread; d is plain data). */
void status_purge_describe(status_purge_desc_t *d, const struct purge_req *r);
/* Remember a completed purge (any thread): count is the objects purged by
 * URL and tag, plus the prefix bans put in force; ok false when the store
 * could not apply all of it. */
void status_purge_record(proxy_t *px, const status_purge_desc_t *d, bool soft, uint64_t count, bool ok);

/* Control paths (core/control.c): answer p with the page or the JSON. */
void status_answer_page(preq_t *p);
void status_answer_json(preq_t *p);

/* The whole status document as a JSON string (malloc'd: the caller frees
 * it), or NULL when out of memory. now_ms is the monotonic clock of
 * uv_now (any loop's: they share the clock). Any thread. */
char *status_json(proxy_t *px, uint64_t now_ms);

/* --- history (core/status_history.c) --- */

typedef struct status_history status_history_t;

/* A ring of STATUS_HISTORY_S / STATUS_SAMPLE_MS + 1 samples of m's
 * counters, with its own mutex. NULL when out of memory. */
status_history_t *status_history_new(void);
void status_history_free(status_history_t *h);
/* Snapshot m's counters into the ring (any thread). now_ms: monotonic
 * (uv_now), wall_ms: the wall clock, for the page's time axis. */
void status_history_sample(status_history_t *h, const metrics_t *m, uint64_t now_ms, int64_t wall_ms);
/* The history as a JSON object (new reference; NULL when out of memory):
 * one entry per interval between samples, plus a live last interval from
 * the latest sample to now (when it is at least a second long). */
struct json_t *status_history_json(status_history_t *h, const metrics_t *m, uint64_t now_ms, int64_t wall_ms);
/* Estimated quantile q (0..1), in milliseconds, of a histogram with
 * metrics_cdn_defs[METRIC_REQUEST_DURATION]'s bounds and non-cumulative
 * counts[nbounds + 1]; negative when it is empty. Linear within a bucket;
 * the overflow bucket reports the highest bound (as Prometheus does). */
double status_quantile_ms(const uint64_t *counts, double q);
/* The page's ratios of some requests by outcome and bytes, each in 0..1
 * or negative for "no data". Only the outcomes below count: an error,
 * a rate-limit refusal, an aborted response, a control path or a purge
 * was answered by neither the cache nor the upstream.
 * - hit: hits over the requests answered (hit, miss, stale, revalidated,
 *   collapsed, pass).
 * - offload by requests: the share of those that caused no upstream
 *   request of their own: hit, stale (answered from the cache: a
 *   stale-while-revalidate refresh is one background request per object,
 *   a stale-if-error one already failed) and collapsed (it waited on
 *   another request's fetch). Revalidated did go upstream (a 304), as did
 *   miss and pass.
 * - offload by bytes: 1 - upstream bytes received / client bytes sent,
 *   clamped to 0..1 (negative without client bytes). */
/* Does outcome o count as client traffic in the page's totals, rates and
 * latency? All but the operator's own requests (control paths, purges),
 * so the page's refreshes do not show up as traffic. */
bool status_traffic(unsigned o);
void status_ratios(const uint64_t req[METRIC_OUTCOME_COUNT], uint64_t client_bytes, uint64_t upstream_bytes,
                   double *hit, double *offload_requests, double *offload_bytes);

#endif
