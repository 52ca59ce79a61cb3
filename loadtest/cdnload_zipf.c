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
