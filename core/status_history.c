/* status_history: the status page's recent history (see include/status.h).
 *
 * A sample is a copy of the cumulative counters the page charts: requests
 * by outcome, client and upstream bytes, and the duration histogram
 * summed over the outcomes. An interval's figures are the differences of
 * two consecutive samples, so the sampler never resets a counter and the
 * Prometheus scrape sees the same numbers. */
#include "status.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Histogram slots kept per sample: the duration family's bounds + 1. */
#define HIST_MAX 32
#define RING (STATUS_HISTORY_S * 1000 / STATUS_SAMPLE_MS + 1)

typedef struct sample {
    uint64_t t_ms;             /* monotonic */
    int64_t wall_ms;
    uint64_t req[METRIC_OUTCOME_COUNT];
    uint64_t client_bytes, upstream_bytes;
    uint64_t hist[HIST_MAX];
} sample_t;

struct status_history {
    pthread_mutex_t mu;
    sample_t ring[RING];       /* guarded by mu */
    unsigned head, n;          /* next slot to write; samples held */
};

static unsigned hist_slots(void)
{
    unsigned n = metrics_cdn_defs[METRIC_REQUEST_DURATION].nbounds + 1;
    return n < HIST_MAX ? n : HIST_MAX;
}

status_history_t *status_history_new(void)
{
    if (metrics_cdn_defs[METRIC_REQUEST_DURATION].nbounds + 1 > HIST_MAX)
        return NULL; /* a family grew past what a sample holds: fail loudly at start */
    status_history_t *h = calloc(1, sizeof *h);
    if (h && pthread_mutex_init(&h->mu, NULL)) {
        free(h);
        h = NULL;
    }
    return h;
}

void status_history_free(status_history_t *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void take(sample_t *s, const metrics_t *m, uint64_t now_ms, int64_t wall_ms)
{
    memset(s, 0, sizeof *s);
    s->t_ms = now_ms;
    s->wall_ms = wall_ms;
    unsigned nh = hist_slots();
    for (unsigned o = 0; o < METRIC_OUTCOME_COUNT; o++) {
        s->req[o] = metrics_value(m, METRIC_REQUESTS, o);
        if (!status_traffic(o))
            continue;
        uint64_t c[HIST_MAX] = { 0 }, sum_us;
        metrics_histogram_read(m, METRIC_REQUEST_DURATION, o, c, &sum_us);
        for (unsigned b = 0; b < nh; b++)
            s->hist[b] += c[b];
    }
    s->client_bytes = metrics_value(m, METRIC_CLIENT_BYTES_SENT, 0);
    s->upstream_bytes = metrics_value(m, METRIC_UPSTREAM_BYTES_RECEIVED, 0);
}

void status_history_sample(status_history_t *h, const metrics_t *m, uint64_t now_ms, int64_t wall_ms)
{
    sample_t s;
    take(&s, m, now_ms, wall_ms); /* outside the lock: reading shards takes a while */
    pthread_mutex_lock(&h->mu);
    h->ring[h->head] = s;
    h->head = (h->head + 1) % RING;
    if (h->n < RING)
        h->n++;
    pthread_mutex_unlock(&h->mu);
}

double status_quantile_ms(const uint64_t *counts, double q)
{
    const metric_def_t *d = &metrics_cdn_defs[METRIC_REQUEST_DURATION];
    unsigned nh = hist_slots();
    uint64_t total = 0;
    for (unsigned b = 0; b < nh; b++)
        total += counts[b];
    if (total == 0)
        return -1;
    double rank = q * (double)total, cum = 0;
    for (unsigned b = 0; b < nh; b++) {
        if (counts[b] == 0 || cum + (double)counts[b] < rank) {
            cum += (double)counts[b];
            continue;
        }
        if (b >= d->nbounds)
            break; /* above every bound: the highest bound is all we know */
        double lo = b == 0 ? 0 : d->bounds[b - 1], hi = d->bounds[b];
        double f = ((rank - cum) / (double)counts[b]);
        f = f < 0 ? 0 : f > 1 ? 1 : f;
        return (lo + (hi - lo) * f) * 1000.0;
    }
    return d->bounds[d->nbounds - 1] * 1000.0;
}

static uint64_t sub(uint64_t a, uint64_t b)
{
    return a >= b ? a - b : 0;
}

/* A number, or null for "no data" (an empty interval, no bytes). */
static json_t *num(double v)
{
    return isfinite(v) && v >= 0 ? json_real(v) : json_null();
}

bool status_traffic(unsigned o)
{
    return o != METRIC_CONTROL && o != METRIC_PURGE;
}

void status_ratios(const uint64_t req[METRIC_OUTCOME_COUNT], uint64_t client_bytes, uint64_t upstream_bytes,
                   double *hit, double *offload_requests, double *offload_bytes)
{
    static const unsigned answered[] = { METRIC_HIT, METRIC_MISS, METRIC_STALE, METRIC_REVALIDATED, METRIC_COLLAPSED,
                                         METRIC_PASS };
    uint64_t served = 0;
    for (size_t i = 0; i < sizeof answered / sizeof answered[0]; i++)
        served += req[answered[i]];
    uint64_t off = req[METRIC_HIT] + req[METRIC_STALE] + req[METRIC_COLLAPSED];
    *hit = served ? (double)req[METRIC_HIT] / (double)served : -1;
    *offload_requests = served ? (double)off / (double)served : -1;
    if (client_bytes == 0) {
        *offload_bytes = -1;
    } else {
        double b = 1.0 - (double)upstream_bytes / (double)client_bytes;
        *offload_bytes = b < 0 ? 0 : b > 1 ? 1 : b;
    }
}

/* Append interval (a, b] to the columns. */
static int put_interval(json_t *cols[], const sample_t *a, const sample_t *b)
{
    uint64_t req[METRIC_OUTCOME_COUNT], n = 0, hist[HIST_MAX] = { 0 };
    for (unsigned o = 0; o < METRIC_OUTCOME_COUNT; o++) {
        req[o] = sub(b->req[o], a->req[o]);
        n += status_traffic(o) ? req[o] : 0;
    }
    for (unsigned i = 0; i < hist_slots(); i++)
        hist[i] = sub(b->hist[i], a->hist[i]);
    double dt = (double)sub(b->t_ms, a->t_ms) / 1000.0, hit, offr, offb;
    status_ratios(req, sub(b->client_bytes, a->client_bytes), sub(b->upstream_bytes, a->upstream_bytes), &hit, &offr,
                  &offb);
    json_t *v[] = {
        json_integer((json_int_t)(b->wall_ms / 1000)),
        json_real(dt),
        json_integer((json_int_t)n),
        num(dt > 0 ? (double)n / dt : 0),
        num(hit),
        num(offr),
        num(offb),
        num(status_quantile_ms(hist, 0.50)),
        num(status_quantile_ms(hist, 0.99)),
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!v[i] || json_array_append_new(cols[i], v[i]))
            rc = -1; /* json_array_append_new freed v[i] */
    return rc;
}

json_t *status_history_json(status_history_t *h, const metrics_t *m, uint64_t now_ms, int64_t wall_ms)
{
    static const char *const names[] = { "t", "dt", "requests", "rate", "hit_ratio",
                                         "offload_requests", "offload_bytes", "p50_ms", "p99_ms" };
    enum { NCOLS = sizeof names / sizeof names[0] };
    json_t *o = json_object(), *cols[NCOLS];
    int rc = o ? 0 : -1;
    rc |= json_object_set_new(o, "interval_s", json_integer(STATUS_SAMPLE_MS / 1000));
    rc |= json_object_set_new(o, "window_s", json_integer(STATUS_HISTORY_S));
    for (size_t i = 0; i < NCOLS; i++)
        rc |= json_object_set_new(o, names[i], cols[i] = json_array());
    if (rc) {
        json_decref(o);
        return NULL;
    }
    sample_t live;
    take(&live, m, now_ms, wall_ms);
    pthread_mutex_lock(&h->mu);
    unsigned first = (h->head + RING - h->n) % RING;
    for (unsigned i = 1; i < h->n && !rc; i++)
        rc = put_interval(cols, &h->ring[(first + i - 1) % RING], &h->ring[(first + i) % RING]);
    if (h->n && !rc) {
        const sample_t *last = &h->ring[(h->head + RING - 1) % RING];
        if (now_ms >= last->t_ms + 1000)
            rc = put_interval(cols, last, &live);
    }
    pthread_mutex_unlock(&h->mu);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}
