/* cdnload_zipf: which object a simulated client asks for next.
 *
 * Web traffic follows Zipf's law: the object of popularity rank r (from 1)
 * is asked for in proportion to 1 / r^s. The sampler precomputes the
 * cumulative distribution once (8 bytes per object) and draws by binary
 * search, so a draw is O(log n) with no allocation. The uniform u comes
 * from the caller's generator (rng.h), so every region's clients are
 * reproducible from the scenario's seed. */
#ifndef CDN_CDNLOAD_ZIPF_H
#define CDN_CDNLOAD_ZIPF_H

#include <stddef.h>
#include <stdint.h>

typedef struct cdnload_zipf {
    double *cdf; /* cdf[i]: probability of ranks 0..i; cdf[n - 1] == 1 */
    size_t n;
} cdnload_zipf_t;

/* n objects (>= 1), exponent s (>= 0; 0 is uniform). Returns 0, -EINVAL,
 * -ENOMEM. Free with cdnload_zipf_free. */
int cdnload_zipf_init(cdnload_zipf_t *z, size_t n, double s);
void cdnload_zipf_free(cdnload_zipf_t *z);
/* The rank (0 = most popular) for a uniform u in [0, 1). */
size_t cdnload_zipf_rank(const cdnload_zipf_t *z, double u);

#endif
