/* cdnload_stats: histograms, Cache-Status tiers, counters (see cdnload_stats.h). */
#include "cdnload_stats.h"

#include <stdbool.h>
#include <string.h>

/* Bucket of v: values below 8 have their own; above, the power of two
 * (msb) and the 3 bits after it. */
static unsigned bucket(uint64_t v)
{
    if (v < 8)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned idx = (msb - 2) * 8 + (unsigned)((v >> (msb - 3)) & 7);
    return idx < CDNLOAD_HIST_BUCKETS ? idx : CDNLOAD_HIST_BUCKETS - 1;
}

/* The range [lo, hi) of bucket i. */
static void bucket_range(unsigned i, double *lo, double *hi)
{
    if (i < 8) {
        *lo = i;
        *hi = i + 1;
        return;
    }
    unsigned msb = i / 8 + 2, sub = i % 8;
    double base = (double)(1ull << msb), step = base / 8;
    *lo = base + sub * step;
    *hi = *lo + step;
}

void cdnload_hist_add(cdnload_hist_t *h, uint64_t us)
{
    h->n[bucket(us)]++;
    h->count++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

void cdnload_hist_merge(cdnload_hist_t *a, const cdnload_hist_t *b)
{
    for (unsigned i = 0; i < CDNLOAD_HIST_BUCKETS; i++)
        a->n[i] += b->n[i];
    a->count += b->count;
    a->sum_us += b->sum_us;
    if (b->max_us > a->max_us)
        a->max_us = b->max_us;
}

double cdnload_hist_quantile(const cdnload_hist_t *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < CDNLOAD_HIST_BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            double lo, hi;
            bucket_range(i, &lo, &hi);
            double mid = i < 8 ? lo : (lo + hi) / 2;
            return mid > (double)h->max_us ? (double)h->max_us : mid;
        }
    }
    return (double)h->max_us;
}

/* Does member m[0, n) (one list item: a name, then ;params) say hit? */
static bool member_hit(const char *m, unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        if (m[i] != ';')
            continue;
        unsigned long j = i + 1;
        while (j < n && m[j] == ' ')
            j++;
        if (n - j >= 3 && memcmp(m + j, "hit", 3) == 0 && (j + 3 == n || m[j + 3] == ';' || m[j + 3] == ' '))
            return true;
    }
    return false;
}

cdnload_at_t cdnload_cache_status_at(const char *v, unsigned long n)
{
    /* Members are comma-separated (no quoted commas in this project's). */
    unsigned long start[16], len[16], k = 0, s = 0;
    for (unsigned long i = 0; i <= n && k < 16; i++) {
        if (i == n || v[i] == ',') {
            while (s < i && v[s] == ' ')
                s++;
            if (i > s) {
                start[k] = s;
                len[k++] = i - s;
            }
            s = i + 1;
        }
    }
    if (k == 0)
        return CDNLOAD_AT_UNKNOWN;
    if (member_hit(v + start[k - 1], len[k - 1]))
        return CDNLOAD_AT_EDGE;
    for (unsigned long i = k - 1; i-- > 0;)
        if (member_hit(v + start[i], len[i]))
            return CDNLOAD_AT_SHIELD;
    return CDNLOAD_AT_ORIGIN;
}

void cdnload_counts_add(cdnload_counts_t *a, const cdnload_counts_t *b)
{
    a->requests += b->requests;
    a->bytes += b->bytes;
    for (int i = 0; i < 6; i++)
        a->status[i] += b->status[i];
    for (int i = 0; i < 4; i++)
        a->at[i] += b->at[i];
    a->cacheable += b->cacheable;
    a->images += b->images;
    a->dropped += b->dropped;
    a->mismatches += b->mismatches;
    a->errors_connect += b->errors_connect;
    a->errors_reset += b->errors_reset;
    a->errors_timeout += b->errors_timeout;
    a->errors_parse += b->errors_parse;
    a->limited += b->limited;
    cdnload_hist_merge(&a->latency, &b->latency);
}
