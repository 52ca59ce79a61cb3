/* cdnload_stats: what the load generator counts, per region and overall.
 *
 * Latency goes into a log-linear histogram (8 sub-buckets per power of
 * two: a quantile is off by at most 1/8 of its value), so p99.9 over
 * millions of requests costs a fixed 3 KiB and no sorting. The counters
 * are plain: one thread sends and counts. */
#ifndef CDN_CDNLOAD_STATS_H
#define CDN_CDNLOAD_STATS_H

#include <stdint.h>

#define CDNLOAD_HIST_BUCKETS (41 * 8)

typedef struct cdnload_hist {
    uint64_t n[CDNLOAD_HIST_BUCKETS];
    uint64_t count, sum_us, max_us;
} cdnload_hist_t;

/* Count one latency (microseconds). */
void cdnload_hist_add(cdnload_hist_t *h, uint64_t us);
/* Add every observation of b to a. */
void cdnload_hist_merge(cdnload_hist_t *a, const cdnload_hist_t *b);
/* The q-quantile (0 < q <= 1) in microseconds: the middle of its bucket,
 * never above the largest observation; 0 when empty. */
double cdnload_hist_quantile(const cdnload_hist_t *h, double q);

/* Where a response was answered, from its Cache-Status (RFC 9211: the
 * member nearest the client last). */
typedef enum {
    CDNLOAD_AT_EDGE,           /* the edge's member says hit (or stale) */
    CDNLOAD_AT_SHIELD,         /* the edge forwarded, a shield's member says hit */
    CDNLOAD_AT_ORIGIN,         /* every member forwarded */
    CDNLOAD_AT_UNKNOWN,        /* no Cache-Status */
} cdnload_at_t;

/* Classify a Cache-Status field value v[0, n). */
cdnload_at_t cdnload_cache_status_at(const char *v, unsigned long n);

typedef struct cdnload_counts {
    uint64_t requests;         /* responses received (any status) */
    uint64_t bytes;            /* body bytes received */
    uint64_t status[6];        /* by class: [1] 1xx ... [5] 5xx; [0] other */
    uint64_t at[4];            /* by cdnload_at_t */
    uint64_t cacheable;        /* requests for cacheable objects (image variants included) */
    uint64_t images;           /* requests for image variants */
    uint64_t mismatches;       /* bodies that differ from the origin's content */
    uint64_t errors_connect, errors_reset, errors_timeout, errors_parse;
    uint64_t limited;          /* 429s */
    uint64_t dropped;          /* open loop: arrivals never sent (the backlog was full, or the run ended first) */
    cdnload_hist_t latency;
} cdnload_counts_t;

/* a += b (histograms merged). */
void cdnload_counts_add(cdnload_counts_t *a, const cdnload_counts_t *b);

#endif
