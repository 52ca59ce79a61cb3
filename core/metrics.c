/* metrics: the registry, the per-worker shards and the exposition writer.
 *
 * A shard is one cache-line aligned block per worker: a pointer back to
 * the registry, then the slots of every family in table order. A counter
 * has one slot per label value; a histogram has, per label value, one
 * slot per bucket (not cumulative, so an observation touches one bucket),
 * one for +Inf, then the sum in microseconds. The count is the buckets'
 * total, so a scrape racing an observation still shows +Inf == count. The owner
 * bumps a slot with a relaxed load and store rather than a fetch-add: it
 * is the only writer, and a locked add would cost on every request. */
#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define METRICS_LINE 64

struct metrics_shard {
    _Alignas(METRICS_LINE) const metrics_t *reg;
    _Atomic uint64_t slot[];
};

struct metrics_gauge {
    metrics_gauge_fn fn;       /* gauges and scraped families */
    metrics_label_fn labels;   /* dynamic families */
    void *ud;
};

struct metrics {
    const metric_def_t *defs;
    size_t ndefs;
    unsigned nshards;
    size_t stride;               /* bytes between shards: whole lines */
    size_t *off;                 /* first slot of each family */
    struct metrics_gauge *gauge; /* per family; fn NULL for none */
    unsigned char *block;        /* the shards */
};

struct metrics_gauge_sink {
    buf_t *out;
    const metric_def_t *def;
};

static const char *const outcome_values[] = {"hit",     "miss",  "stale",   "revalidated", "collapsed", "pass",
                                             "error",   "control", "purge", "limited",     "aborted",   "other"};
static const char *const class_values[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const uperr_values[] = {"connect", "timeout", "closed", "bad_response", "http_5xx", "no_target"};
static const char *const purge_values[] = {"ok", "failed", "refused"};
static const char *const image_values[] = {"done", "failed", "refused"};
static const double duration_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NB(a) (unsigned)(sizeof a / sizeof a[0])
_Static_assert(NB(outcome_values) == METRIC_OUTCOME_COUNT, "outcome labels");
_Static_assert(NB(uperr_values) == METRIC_UPERR_COUNT, "upstream error labels");
_Static_assert(NB(purge_values) == METRIC_PURGE_RESULT_COUNT, "purge labels");
_Static_assert(NB(image_values) == METRIC_IMAGE_RESULT_COUNT, "image labels");

const metric_def_t metrics_cdn_defs[METRIC_CDN_COUNT] = {
    [METRIC_REQUESTS] = {"cdn_requests_total", "Client requests by cache outcome.", METRIC_COUNTER, "outcome",
                         outcome_values, METRIC_OUTCOME_COUNT, NULL, 0, 0},
    [METRIC_RESPONSES] = {"cdn_responses_total", "Client responses by status class.", METRIC_COUNTER, "class",
                          class_values, 5, NULL, 0, 0},
    [METRIC_CLIENT_BYTES_SENT] = {"cdn_client_sent_bytes_total", "Bytes sent to clients.", METRIC_COUNTER},
    [METRIC_UPSTREAM_BYTES_RECEIVED] = {"cdn_upstream_received_bytes_total",
                                        "Response body bytes received from upstreams.", METRIC_COUNTER},
    [METRIC_COLLAPSED_WAITERS] = {"cdn_collapsed_waiters_total",
                                  "Requests that joined another request's fetch.", METRIC_COUNTER},
    [METRIC_CONNS_REFUSED] = {"cdn_connections_refused_total", "Client connections refused.", METRIC_COUNTER},
    [METRIC_REQUEST_DURATION] = {"cdn_request_duration_seconds", "Client request duration by cache outcome.",
                                 METRIC_HISTOGRAM, "outcome", outcome_values, METRIC_OUTCOME_COUNT,
                                 duration_bounds, NB(duration_bounds), 0},
    [METRIC_UPSTREAM_DURATION] = {"cdn_upstream_duration_seconds",
                                  "Time from sending a request upstream to its response head, by target.",
                                  METRIC_HISTOGRAM, "target", NULL, METRIC_TARGET_SLOTS, duration_bounds,
                                  NB(duration_bounds), METRIC_F_DYNAMIC},
    [METRIC_UPSTREAM_ERRORS] = {"cdn_upstream_errors_total", "Failed upstream attempts by kind.", METRIC_COUNTER,
                                "kind", uperr_values, METRIC_UPERR_COUNT, NULL, 0, 0},
    [METRIC_UPSTREAM_UP] = {"cdn_upstream_up", "1 when the upstream target is usable, 0 when it is down.",
                            METRIC_GAUGE, "target"},
    [METRIC_UPSTREAM_EJECTED] = {"cdn_upstream_ejected", "1 while the upstream target is ejected.", METRIC_GAUGE,
                                 "target"},
    [METRIC_CONNS_OPEN] = {"cdn_connections_open", "Open client connections.", METRIC_GAUGE},
    [METRIC_STORE_BYTES] = {"cdn_store_bytes", "Accounted bytes of the stored objects.", METRIC_GAUGE},
    [METRIC_STORE_OBJECTS] = {"cdn_store_objects", "Stored objects (variants included).", METRIC_GAUGE},
    [METRIC_STORE_EVICTIONS] = {"cdn_store_evictions_total", "Objects evicted from the store.", METRIC_COUNTER,
                                NULL, NULL, 0, NULL, 0, METRIC_F_SCRAPED},
    [METRIC_STORE_BATCHES] = {"cdn_store_write_batches_total", "Write batches the store writer applied.",
                              METRIC_COUNTER, NULL, NULL, 0, NULL, 0, METRIC_F_SCRAPED},
    [METRIC_STORE_BATCH_ERRORS] = {"cdn_store_write_batch_errors_total",
                                   "Write batches in which an operation could not be written.", METRIC_COUNTER,
                                   NULL, NULL, 0, NULL, 0, METRIC_F_SCRAPED},
    [METRIC_STORE_BATCH_DURATION] = {"cdn_store_write_batch_duration_seconds",
                                     "Time the store writer took to apply and commit one batch.", METRIC_HISTOGRAM,
                                     NULL, NULL, 0, store_batch_bounds, STORE_BATCH_NBOUNDS, METRIC_F_SCRAPED},
    [METRIC_STORE_MAP_SIZE] = {"cdn_store_map_size_bytes", "Size of the LMDB map.", METRIC_GAUGE},
    [METRIC_STORE_MAP_USED] = {"cdn_store_map_used_bytes", "Bytes of the LMDB map in use (last page).",
                               METRIC_GAUGE},
    [METRIC_STORE_UP] = {"cdn_store_up", "1 when the store writes, 0 after three write batches in a row failed.", METRIC_GAUGE},
    [METRIC_STORE_PURGES] = {"cdn_store_purges_total", "Purges the store committed, by kind.", METRIC_COUNTER,
                             "kind", NULL, 0, NULL, 0, METRIC_F_SCRAPED},
    [METRIC_PURGE_REQUESTS] = {"cdn_purge_requests_total", "Purge requests by result.", METRIC_COUNTER, "result",
                               purge_values, METRIC_PURGE_RESULT_COUNT, NULL, 0, 0},
    [METRIC_IMAGE_TRANSFORMS] = {"cdn_image_transforms_total",
                                 "Image transforms: done, failed, refused (queue full).", METRIC_COUNTER, "result",
                                 image_values, METRIC_IMAGE_RESULT_COUNT, NULL, 0, 0},
    [METRIC_IMAGE_DURATION] = {"cdn_image_transform_duration_seconds", "Time one image transform took.",
                               METRIC_HISTOGRAM, NULL, NULL, 0, duration_bounds, NB(duration_bounds), 0},
    [METRIC_RATE_LIMITED] = {"cdn_rate_limited_total",
                             "Requests refused by rate limiting, by rule pattern (node: the node-wide limit).",
                             METRIC_COUNTER, "rule", NULL, 0, NULL, 0, METRIC_F_SCRAPED},
    [METRIC_BUILD_INFO] = {"cdn_build_info", "Build: version, git revision and library versions.", METRIC_GAUGE},
    [METRIC_CONFIG_RELOADS] = {"cdn_config_reloads_total", "Configuration reloads (SIGHUP): applied, refused.",
                               METRIC_COUNTER, "result", NULL, 0, NULL, 0, METRIC_F_SCRAPED},
    [METRIC_CONFIG_GENERATIONS] = {"cdn_config_generations",
                                   "Configuration generations alive: 1, plus those in-flight requests still read.",
                                   METRIC_GAUGE},
};

static bool name_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Slots of one label value of a histogram: buckets, +Inf, sum. */
static size_t hist_width(const metric_def_t *d)
{
    return (size_t)d->nbounds + 2;
}

static size_t def_slots(const metric_def_t *d)
{
    if (d->flags & METRIC_F_SCRAPED)
        return 0; /* read at scrape time, not stored */
    size_t n = d->nvalues ? d->nvalues : 1;
    switch (d->type) {
    case METRIC_COUNTER: return n;
    case METRIC_HISTOGRAM: return n * hist_width(d);
    default: return 0; /* gauges are read at scrape time, not stored */
    }
}

static bool def_ok(const metric_def_t *d)
{
    size_t len = d->name ? strlen(d->name) : 0;
    if (!name_ok(d->name) || !d->help || d->type > METRIC_HISTOGRAM)
        return false;
    /* Label names starting with __ are Prometheus' own; le is the bucket's. */
    if (d->label && (!name_ok(d->label) || strncmp(d->label, "__", 2) == 0 ||
                     (d->type == METRIC_HISTOGRAM && strcmp(d->label, "le") == 0)))
        return false;
    bool scraped = d->flags & METRIC_F_SCRAPED, dynamic = d->flags & METRIC_F_DYNAMIC;
    if ((d->flags & ~(METRIC_F_SCRAPED | METRIC_F_DYNAMIC)) || (scraped && dynamic) ||
        ((scraped || dynamic) && d->type == METRIC_GAUGE))
        return false;
    if (d->type == METRIC_GAUGE || scraped ? d->nvalues != 0 || d->values
                                          : (d->nvalues == 0) != (d->label == NULL))
        return false;
    if (dynamic ? d->values != NULL : false)
        return false;
    for (unsigned i = 0; !dynamic && i < d->nvalues; i++)
        if (!d->values || !d->values[i])
            return false;
    if (d->type == METRIC_COUNTER && (len < 6 || strcmp(d->name + len - 6, "_total") != 0))
        return false;
    if (d->type != METRIC_HISTOGRAM)
        return d->nbounds == 0;
    if (d->nbounds == 0 || d->nbounds > METRICS_BOUNDS_MAX || !d->bounds)
        return false;
    for (unsigned i = 0; i < d->nbounds; i++)
        if (!isfinite(d->bounds[i]) || (i > 0 && d->bounds[i] <= d->bounds[i - 1]))
            return false;
    return true;
}

int metrics_new(const metric_def_t *defs, size_t ndefs, unsigned nshards, metrics_t **out)
{
    int rc = -ENOMEM;
    *out = NULL;
    if (nshards == 0 || (ndefs && !defs))
        return -EINVAL;
    for (size_t i = 0; i < ndefs; i++)
        if (!def_ok(&defs[i]))
            return -EINVAL;
    metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->defs = defs;
    m->ndefs = ndefs;
    m->nshards = nshards;
    m->off = calloc(ndefs ? ndefs : 1, sizeof *m->off);
    m->gauge = calloc(ndefs ? ndefs : 1, sizeof *m->gauge);
    if (!m->off || !m->gauge)
        goto out;
    size_t nslots = 0;
    for (size_t i = 0; i < ndefs; i++) {
        m->off[i] = nslots;
        nslots += def_slots(&defs[i]);
    }
    size_t bytes = sizeof(struct metrics_shard) + nslots * sizeof(uint64_t);
    m->stride = (bytes + METRICS_LINE - 1) / METRICS_LINE * METRICS_LINE;
    m->block = aligned_alloc(METRICS_LINE, m->stride * nshards);
    if (!m->block)
        goto out;
    memset(m->block, 0, m->stride * nshards);
    for (unsigned i = 0; i < nshards; i++)
        metrics_shard(m, i)->reg = m;
    *out = m;
    m = NULL;
    rc = 0;
out:
    metrics_free(m);
    return rc;
}

void metrics_free(metrics_t *m)
{
    if (!m)
        return;
    free(m->block);
    free(m->gauge);
    free(m->off);
    free(m);
}

metrics_shard_t *metrics_shard(metrics_t *m, unsigned i)
{
    assert(i < m->nshards);
    return (metrics_shard_t *)(void *)(m->block + (size_t)i * m->stride);
}

void metrics_set_gauge(metrics_t *m, unsigned id, metrics_gauge_fn fn, void *ud)
{
    assert(id < m->ndefs && (m->defs[id].type == METRIC_GAUGE || (m->defs[id].flags & METRIC_F_SCRAPED)));
    m->gauge[id].fn = fn;
    m->gauge[id].ud = ud;
}

void metrics_set_labels(metrics_t *m, unsigned id, metrics_label_fn fn, void *ud)
{
    assert(id < m->ndefs && (m->defs[id].flags & METRIC_F_DYNAMIC));
    m->gauge[id].labels = fn;
    m->gauge[id].ud = ud;
}

int metrics_label_index(const metrics_t *m, unsigned id, const char *value)
{
    assert(id < m->ndefs);
    const metric_def_t *d = &m->defs[id];
    for (unsigned i = 0; value && d->values && i < d->nvalues; i++)
        if (strcmp(d->values[i], value) == 0)
            return (int)i;
    return -1;
}

/* Only the owner writes, so load-add-store cannot lose an update. */
static inline void bump(_Atomic uint64_t *p, uint64_t n)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n, memory_order_relaxed);
}

void metrics_inc(metrics_shard_t *s, unsigned id, unsigned label, uint64_t n)
{
    const metrics_t *m = s->reg;
    assert(id < m->ndefs && m->defs[id].type == METRIC_COUNTER && !(m->defs[id].flags & METRIC_F_SCRAPED));
    assert(label < (m->defs[id].nvalues ? m->defs[id].nvalues : 1));
    bump(&s->slot[m->off[id] + label], n);
}

void metrics_observe(metrics_shard_t *s, unsigned id, unsigned label, double seconds)
{
    const metrics_t *m = s->reg;
    const metric_def_t *d = &m->defs[id];
    assert(id < m->ndefs && d->type == METRIC_HISTOGRAM && !(d->flags & METRIC_F_SCRAPED));
    assert(label < (d->nvalues ? d->nvalues : 1));
    if (!(seconds > 0)) /* also NaN */
        seconds = 0;
    unsigned b = 0;
    while (b < d->nbounds && seconds > d->bounds[b])
        b++;
    _Atomic uint64_t *h = &s->slot[m->off[id] + label * hist_width(d)];
    /* Past ~584,000 years the cast would be undefined: clamp first. */
    double us = seconds * 1e6 + 0.5;
    bump(&h[b], 1);
    bump(&h[d->nbounds + 1], us >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)us);
}

static uint64_t sum_slot(const metrics_t *m, size_t slot)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < m->nshards; i++) {
        const metrics_shard_t *s = (const metrics_shard_t *)(const void *)(m->block + (size_t)i * m->stride);
        v += atomic_load_explicit(&s->slot[slot], memory_order_relaxed);
    }
    return v;
}

void metrics_histogram_read(const metrics_t *m, unsigned id, unsigned label, uint64_t *counts, uint64_t *sum_us)
{
    const metric_def_t *d = &m->defs[id];
    assert(id < m->ndefs && d->type == METRIC_HISTOGRAM && !(d->flags & METRIC_F_SCRAPED));
    assert(label < (d->nvalues ? d->nvalues : 1));
    size_t base = m->off[id] + label * hist_width(d);
    for (unsigned b = 0; b <= d->nbounds; b++)
        counts[b] = sum_slot(m, base + b);
    *sum_us = sum_slot(m, base + d->nbounds + 1);
}

uint64_t metrics_value(const metrics_t *m, unsigned id, unsigned label)
{
    assert(id < m->ndefs && m->defs[id].type == METRIC_COUNTER && !(m->defs[id].flags & METRIC_F_SCRAPED));
    return sum_slot(m, m->off[id] + label);
}

/* Append s with \\ and \n escaped, and \" too when quote (label values). */
static int put_escaped(buf_t *out, const char *s, bool quote)
{
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        size_t run = strcspn(p, quote ? "\\\n\"" : "\\\n");
        if (run) {
            rc = buf_append(out, p, run);
            p += run - 1;
        } else {
            rc = buf_puts(out, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : "\\\\");
        }
    }
    return rc;
}

static int put_header(buf_t *out, const metric_def_t *d)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    int rc = buf_printf(out, "# HELP %s ", d->name);
    if (rc == 0)
        rc = put_escaped(out, d->help, false);
    if (rc == 0)
        rc = buf_printf(out, "\n# TYPE %s %s\n", d->name, type_names[d->type]);
    return rc;
}

/* name[suffix]{label="value"[,le="..."]} ; the caller writes the value. */
static int put_series(buf_t *out, const metric_def_t *d, const char *suffix, const char *value, const char *le)
{
    int rc = buf_printf(out, "%s%s", d->name, suffix);
    const char *sep = "{";
    if (rc == 0 && d->label && value) {
        rc = buf_printf(out, "{%s=\"", d->label);
        if (rc == 0)
            rc = put_escaped(out, value, true);
        if (rc == 0)
            rc = buf_puts(out, "\"");
        sep = ",";
    }
    if (rc == 0 && le)
        rc = buf_printf(out, "%sle=\"%s\"}", sep, le);
    else if (rc == 0 && *sep == ',')
        rc = buf_puts(out, "}");
    return rc == 0 ? buf_puts(out, " ") : rc;
}

/* One histogram series from counts[nbounds + 1] (not cumulative) and the
 * sum in microseconds. */
static int put_histogram(buf_t *out, const metric_def_t *d, const char *value, const uint64_t *counts,
                         uint64_t us)
{
    int rc = 0;
    uint64_t cum = 0;
    char le[32];
    for (unsigned b = 0; b <= d->nbounds && rc == 0; b++) {
        cum += counts[b];
        if (b < d->nbounds)
            snprintf(le, sizeof le, "%.15g", d->bounds[b]);
        rc = put_series(out, d, "_bucket", value, b < d->nbounds ? le : "+Inf");
        if (rc == 0)
            rc = buf_printf(out, "%llu\n", (unsigned long long)cum);
    }
    if (rc == 0)
        rc = put_series(out, d, "_sum", value, NULL);
    if (rc == 0)
        rc = buf_printf(out, "%llu.%06llu\n", (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000));
    if (rc == 0)
        rc = put_series(out, d, "_count", value, NULL);
    if (rc == 0)
        rc = buf_printf(out, "%llu\n", (unsigned long long)cum);
    return rc;
}

static int put_stored_histogram(buf_t *out, const metrics_t *m, const metric_def_t *d, size_t base, const char *value)
{
    uint64_t counts[METRICS_BOUNDS_MAX + 1];
    /* Each bucket is read once, so +Inf and _count agree however the
     * scrape races the counting. */
    for (unsigned b = 0; b <= d->nbounds; b++)
        counts[b] = sum_slot(m, base + b);
    return put_histogram(out, d, value, counts, sum_slot(m, base + d->nbounds + 1));
}

static int put_number(buf_t *out, double value)
{
    if (isnan(value))
        return buf_puts(out, "NaN\n");
    if (isinf(value))
        return buf_puts(out, value > 0 ? "+Inf\n" : "-Inf\n");
    /* Shortest of the two forms that reads back as the same double. */
    char num[32];
    snprintf(num, sizeof num, "%.15g", value);
    if (strtod(num, NULL) != value)
        snprintf(num, sizeof num, "%.17g", value);
    return buf_printf(out, "%s\n", num);
}

int metrics_gauge_put(metrics_gauge_sink_t *sink, const char *label_value, double value)
{
    int rc = put_series(sink->out, sink->def, "", label_value, NULL);
    return rc ? rc : put_number(sink->out, value);
}

int metrics_gauge_put_labels(metrics_gauge_sink_t *sink, unsigned n, const char *const *names,
                             const char *const *values, double value)
{
    buf_t *out = sink->out;
    for (unsigned i = 0; i < n; i++)
        if (!name_ok(names[i]) || strncmp(names[i], "__", 2) == 0 || !values[i] ||
            (sink->def->label && strcmp(names[i], sink->def->label) == 0))
            return -EINVAL;
    int rc = buf_puts(out, sink->def->name);
    for (unsigned i = 0; i < n && rc == 0; i++) {
        rc = buf_printf(out, "%s%s=\"", i ? "," : "{", names[i]);
        if (rc == 0)
            rc = put_escaped(out, values[i], true);
        if (rc == 0)
            rc = buf_puts(out, "\"");
    }
    if (rc == 0)
        rc = buf_puts(out, n ? "} " : " ");
    return rc ? rc : put_number(out, value);
}

int metrics_put_count(metrics_gauge_sink_t *sink, const char *label_value, uint64_t value)
{
    int rc = put_series(sink->out, sink->def, "", label_value, NULL);
    return rc ? rc : buf_printf(sink->out, "%llu\n", (unsigned long long)value);
}

int metrics_put_histogram(metrics_gauge_sink_t *sink, const char *label_value, const uint64_t *counts,
                          uint64_t sum_us)
{
    if (sink->def->type != METRIC_HISTOGRAM)
        return -EINVAL;
    return put_histogram(sink->out, sink->def, label_value, counts, sum_us);
}

int metrics_scrape(const metrics_t *m, buf_t *out)
{
    int rc = 0;
    for (size_t i = 0; i < m->ndefs && rc == 0; i++) {
        const metric_def_t *d = &m->defs[i];
        const struct metrics_gauge *g = &m->gauge[i];
        bool scraped = d->type == METRIC_GAUGE || (d->flags & METRIC_F_SCRAPED);
        if (scraped && !g->fn)
            continue;
        rc = put_header(out, d);
        if (rc == 0 && scraped) {
            metrics_gauge_sink_t sink = {out, d};
            rc = g->fn(g->ud, &sink);
            continue;
        }
        unsigned n = d->nvalues ? d->nvalues : 1;
        for (unsigned v = 0; v < n && rc == 0; v++) {
            const char *value = d->nvalues ? d->values ? d->values[v] : NULL : NULL;
            if (d->flags & METRIC_F_DYNAMIC) {
                value = g->labels ? g->labels(g->ud, v) : NULL;
                if (!value)
                    continue; /* an unused slot */
            }
            if (d->type == METRIC_HISTOGRAM) {
                rc = put_stored_histogram(out, m, d, m->off[i] + v * hist_width(d), value);
                continue;
            }
            rc = put_series(out, d, "", value, NULL);
            if (rc == 0)
                rc = buf_printf(out, "%llu\n", (unsigned long long)sum_slot(m, m->off[i] + v));
        }
    }
    return rc;
}
