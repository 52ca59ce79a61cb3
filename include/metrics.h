/* metrics: per-worker counters and histograms, summed at scrape time and
 * written in the Prometheus text exposition format 0.0.4.
 *
 * The families are a static table of metric_def_t; a family's id is its
 * index in the table. Each worker owns one shard, a cache-line aligned
 * array of 64-bit slots that only that worker writes, so counting on the
 * request path takes no lock and never shares a cache line with another
 * worker. A scraper on any thread reads the slots with relaxed atomic
 * loads: each value is torn-free, and the sum is as fresh as the moment it
 * was read. Gauges are not counted; a callback supplies them at scrape
 * time (store bytes, an upstream target's health). */
#ifndef CDN_METRICS_H
#define CDN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type_t;

typedef struct metric_def {
    const char *name;          /* family name; a counter's ends in _total */
    const char *help;          /* any text: escaped when written */
    metric_type_t type;
    const char *label;         /* the one label's name, or NULL for none */
    const char *const *values; /* counters, histograms: the label's fixed values */
    unsigned nvalues;          /* 0 when label is NULL (or for a gauge) */
    const double *bounds;      /* histogram: bucket upper bounds, increasing */
    unsigned nbounds;
} metric_def_t;

typedef struct metrics metrics_t;
typedef struct metrics_shard metrics_shard_t;
typedef struct metrics_gauge_sink metrics_gauge_sink_t;

/* Supplies a gauge family's samples at scrape time: calls
 * metrics_gauge_put() once per sample. Returns 0 or a negative errno,
 * which fails the scrape. Runs on the scraping thread. */
typedef int (*metrics_gauge_fn)(void *ud, metrics_gauge_sink_t *sink);

/* The engine's families, in metrics_cdn_defs[] order (issue 13). */
enum {
    METRIC_REQUESTS,           /* counter by outcome */
    METRIC_RESPONSES,          /* counter by status class */
    METRIC_CLIENT_BYTES_SENT,
    METRIC_UPSTREAM_BYTES_RECEIVED,
    METRIC_COLLAPSED_WAITERS,
    METRIC_CONNS_REFUSED,
    METRIC_REQUEST_DURATION,   /* histogram by outcome, seconds */
    METRIC_CDN_COUNT
};
/* Label indexes of METRIC_REQUESTS and METRIC_REQUEST_DURATION; the names
 * are the access log's outcome tags. */
enum { METRIC_HIT, METRIC_MISS, METRIC_STALE, METRIC_REVALIDATED, METRIC_COLLAPSED,
       METRIC_PASS, METRIC_ERROR, METRIC_OUTCOME_COUNT };
extern const metric_def_t metrics_cdn_defs[METRIC_CDN_COUNT];

/* Build a registry of ndefs families (defs must outlive it) with nshards
 * zeroed shards. Returns 0 and *out (free with metrics_free), -EINVAL for
 * a bad definition (name, counter without _total, bounds, labels) or
 * nshards 0, -ENOMEM. */
int metrics_new(const metric_def_t *defs, size_t ndefs, unsigned nshards, metrics_t **out);
void metrics_free(metrics_t *m);
/* Shard i (< nshards), for the one thread that writes it; valid until
 * metrics_free. */
metrics_shard_t *metrics_shard(metrics_t *m, unsigned i);
/* Let fn supply gauge family id at scrape time (set before scraping
 * starts; not thread-safe against a scrape). A gauge without one is left
 * out of the output. */
void metrics_set_gauge(metrics_t *m, unsigned id, metrics_gauge_fn fn, void *ud);
/* The label index of value in family id's fixed set, or -1 for none. */
int metrics_label_index(const metrics_t *m, unsigned id, const char *value);

/* Add n to counter id at label index label (0 without labels). Only the
 * shard's owner thread may call it. */
void metrics_inc(metrics_shard_t *s, unsigned id, unsigned label, uint64_t n);
/* Count one observation of histogram id (negative or NaN counts as 0);
 * the sum keeps whole microseconds. Owner thread only. */
void metrics_observe(metrics_shard_t *s, unsigned id, unsigned label, double seconds);

/* Counter id at label, summed over the shards (any thread). */
uint64_t metrics_value(const metrics_t *m, unsigned id, unsigned label);
/* Histogram id at label, summed over the shards (any thread): counts[b]
 * observations in bucket b, not cumulative (nbounds + 1 of them, the
 * last above every bound), and their sum in microseconds. */
void metrics_histogram_read(const metrics_t *m, unsigned id, unsigned label, uint64_t *counts, uint64_t *sum_us);
/* Append the whole exposition to out (any thread; gauge callbacks run
 * here). Returns 0 or a negative errno (-E2BIG at out's cap); on error,
 * out holds a partial exposition. */
int metrics_scrape(const metrics_t *m, buf_t *out);
/* Write one sample of the gauge being scraped; label_value (escaped here)
 * is NULL when the family has no label. Returns 0 or a negative errno. */
int metrics_gauge_put(metrics_gauge_sink_t *sink, const char *label_value, double value);

#endif
