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
    unsigned nbounds;          /* at most METRICS_BOUNDS_MAX */
    unsigned flags;            /* METRIC_F_* */
} metric_def_t;

/* Bound of a histogram's buckets. */
#define METRICS_BOUNDS_MAX 32
/* Flags of a metric_def_t:
 *  METRIC_F_SCRAPED  a counter or histogram kept elsewhere (another
 *      thread's atomics, the store's statistics): nothing is stored in the
 *      shards; a callback set with metrics_set_gauge supplies the samples
 *      at scrape time (metrics_put_count / metrics_put_histogram), as for a
 *      gauge. label is the one label's name or NULL; values must be NULL.
 *  METRIC_F_DYNAMIC  a counter or histogram whose label values are known
 *      only at run time (upstream targets): nvalues is the fixed number of
 *      slots, values is NULL, and a callback set with metrics_set_labels
 *      names each slot at scrape time (slots it names NULL are left out). */
#define METRIC_F_SCRAPED 1u
#define METRIC_F_DYNAMIC 2u

typedef struct metrics metrics_t;
typedef struct metrics_shard metrics_shard_t;
typedef struct metrics_gauge_sink metrics_gauge_sink_t;

/* Supplies a gauge family's (or a METRIC_F_SCRAPED family's) samples at
 * scrape time: calls metrics_gauge_put() (or the other metrics_put_*)
 * once per sample. Returns 0 or a negative errno, which fails the scrape.
 * Runs on the scraping thread. */
typedef int (*metrics_gauge_fn)(void *ud, metrics_gauge_sink_t *sink);
/* Names slot of a METRIC_F_DYNAMIC family at scrape time: the label value
 * (valid until the scrape returns), or NULL for an unused slot. Runs on
 * the scraping thread, concurrently with counting. */
typedef const char *(*metrics_label_fn)(void *ud, unsigned slot);

/* The engine's families, in metrics_cdn_defs[] order (issue 13). The
 * first seven ids are fixed: the status page reads them. */
enum {
    METRIC_REQUESTS,           /* counter by outcome */
    METRIC_RESPONSES,          /* counter by status class */
    METRIC_CLIENT_BYTES_SENT,
    METRIC_UPSTREAM_BYTES_RECEIVED,
    METRIC_COLLAPSED_WAITERS,
    METRIC_CONNS_REFUSED,
    METRIC_REQUEST_DURATION,   /* histogram by outcome, seconds */
    METRIC_UPSTREAM_DURATION,  /* histogram by target (dynamic, METRIC_TARGET_SLOTS), seconds to the head */
    METRIC_UPSTREAM_ERRORS,    /* counter by kind (METRIC_UPERR_*) */
    METRIC_UPSTREAM_UP,        /* gauge by target: 1 usable (not down), 0 down */
    METRIC_UPSTREAM_EJECTED,   /* gauge by target: 1 while ejected */
    METRIC_CONNS_OPEN,         /* gauge */
    METRIC_STORE_BYTES,        /* gauge */
    METRIC_STORE_OBJECTS,      /* gauge */
    METRIC_STORE_EVICTIONS,    /* scraped counter */
    METRIC_STORE_BATCHES,      /* scraped counter: write batches */
    METRIC_STORE_BATCH_ERRORS, /* scraped counter: batches in which an operation failed */
    METRIC_STORE_BATCH_DURATION, /* scraped histogram */
    METRIC_STORE_MAP_SIZE,     /* gauge */
    METRIC_STORE_MAP_USED,     /* gauge */
    METRIC_STORE_UP,           /* gauge: 0 while the store is failing */
    METRIC_STORE_PURGES,       /* scraped counter by kind: url, tag, prefix */
    METRIC_PURGE_REQUESTS,     /* counter by result (METRIC_PURGE_*) */
    METRIC_IMAGE_TRANSFORMS,   /* counter by result (METRIC_IMAGE_*) */
    METRIC_IMAGE_DURATION,     /* histogram, seconds on a transform thread */
    METRIC_RATE_LIMITED,       /* scraped counter by rule pattern ("node" for the node-wide limit) */
    METRIC_BUILD_INFO,         /* gauge, always 1, the versions as labels */
    METRIC_CONFIG_RELOADS,     /* scraped counter by result: applied, refused */
    METRIC_CONFIG_GENERATIONS, /* gauge: configuration generations alive */
    METRIC_CDN_COUNT
};
/* Label indexes of METRIC_REQUESTS and METRIC_REQUEST_DURATION; the names
 * are the access log's outcome tags ("limited" stands for "rate-limited"
 * and "penalty-box"; "other" for a response with no tag). */
enum { METRIC_HIT, METRIC_MISS, METRIC_STALE, METRIC_REVALIDATED, METRIC_COLLAPSED,
       METRIC_PASS, METRIC_ERROR, METRIC_CONTROL, METRIC_PURGE, METRIC_LIMITED, METRIC_ABORTED,
       METRIC_OTHER, METRIC_OUTCOME_COUNT };
/* Label indexes of METRIC_UPSTREAM_ERRORS. */
enum { METRIC_UPERR_CONNECT, METRIC_UPERR_TIMEOUT, METRIC_UPERR_CLOSED, METRIC_UPERR_BAD_RESPONSE,
       METRIC_UPERR_5XX, METRIC_UPERR_NO_TARGET, METRIC_UPERR_COUNT };
/* Label indexes of METRIC_PURGE_REQUESTS. */
enum { METRIC_PURGE_OK, METRIC_PURGE_FAILED, METRIC_PURGE_REFUSED, METRIC_PURGE_RESULT_COUNT };
/* Label indexes of METRIC_IMAGE_TRANSFORMS. */
enum { METRIC_IMAGE_DONE, METRIC_IMAGE_FAILED, METRIC_IMAGE_REFUSED, METRIC_IMAGE_RESULT_COUNT };
/* Slots of METRIC_UPSTREAM_DURATION: distinct upstream target names a
 * node counts apart (proxy_metrics.c); the last one is "other". */
#define METRIC_TARGET_SLOTS 64
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
/* Let fn name the slots of METRIC_F_DYNAMIC family id (same rules as
 * metrics_set_gauge). Without one, the family has no samples. */
void metrics_set_labels(metrics_t *m, unsigned id, metrics_label_fn fn, void *ud);
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
/* The same with n labels (names[i]="values[i]", in that order; names
 * checked: -EINVAL for a bad one or a histogram's "le"); for families
 * whose def has no label, such as build info. */
int metrics_gauge_put_labels(metrics_gauge_sink_t *sink, unsigned n, const char *const *names,
                             const char *const *values, double value);
/* One sample of a METRIC_F_SCRAPED counter, exactly (no double rounding). */
int metrics_put_count(metrics_gauge_sink_t *sink, const char *label_value, uint64_t value);
/* One series of a METRIC_F_SCRAPED histogram: counts[b] observations in
 * bucket b as in metrics_histogram_read (nbounds + 1, not cumulative) and
 * their sum in microseconds. */
int metrics_put_histogram(metrics_gauge_sink_t *sink, const char *label_value, const uint64_t *counts,
                          uint64_t sum_us);

#endif
