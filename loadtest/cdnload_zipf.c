/* cdnload_zipf: Zipf draws and the generator behind them (see cdnload_zipf.h). */
#include "cdnload_zipf.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int cdnload_zipf_init(cdnload_zipf_t *z, size_t n, double s)
{
    z->cdf = NULL;
    z->n = 0;
    if (n == 0 || !(s >= 0) || s > 10)
        return -EINVAL;
    double *cdf = malloc(n * sizeof *cdf);
    if (!cdf)
        return -ENOMEM;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += pow((double)(i + 1), -s);
        cdf[i] = sum;
    }
    for (size_t i = 0; i < n; i++)
        cdf[i] /= sum;
    cdf[n - 1] = 1.0; /* rounding must not leave a gap above the last rank */
    z->cdf = cdf;
    z->n = n;
    return 0;
}

void cdnload_zipf_free(cdnload_zipf_t *z)
{
    free(z->cdf);
    z->cdf = NULL;
    z->n = 0;
}

size_t cdnload_zipf_rank(const cdnload_zipf_t *z, double u)
{
    size_t lo = 0, hi = z->n - 1; /* the first i with u < cdf[i] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u < z->cdf[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void cdnload_rng_seed(cdnload_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        r->s[i] = z ^ (z >> 31);
    }
}

uint64_t cdnload_rng_next(cdnload_rng_t *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double cdnload_rng_unit(cdnload_rng_t *r)
{
    return (double)(cdnload_rng_next(r) >> 11) * 0x1.0p-53;
}
