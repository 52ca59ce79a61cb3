/* rng: a fast generator for ids and simulations (xoshiro256**, seeded by
 * splitmix64). Not cryptographic. The caller owns the state: one per
 * thread, or one per simulated client for reproducible draws. */
#ifndef CDN_RNG_H
#define CDN_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];             /* never all zero */
} rng_t;

/* Seed from any 64-bit value: equal seeds, equal sequences. */
void rng_seed(rng_t *r, uint64_t seed);
uint64_t rng_next(rng_t *r);
/* Uniform in [0, 1), 53 bits. */
double rng_unit(rng_t *r);
/* splitmix64's mixing of x: a well-spread 64-bit hash. */
uint64_t rng_mix(uint64_t x);

#endif
