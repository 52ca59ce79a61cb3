/* cdnload_scenario: what the load generator sends, from a scenario file.
 *
 * One `key = value` a line, `#` comments, every key optional (the defaults
 * are a small Zipf workload); a bad line stops the run with FILE:LINE and
 * what was expected, like a node's config. The objects are the demo
 * origin's: object i is `/o/<i>`, and its size is a pure function of i and
 * the seed, so every region asks for the same bytes under the same URL and
 * any body can be checked against the origin's deterministic content. */
#ifndef CDN_CDNLOAD_SCENARIO_H
#define CDN_CDNLOAD_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CDNLOAD_SIZES_MAX 16

typedef enum { CDNLOAD_PURGE_TAG, CDNLOAD_PURGE_URL, CDNLOAD_PURGE_PREFIX } cdnload_purge_kind_t;

typedef struct cdnload_size_class {
    uint64_t bytes;
    double weight;             /* relative; the classes' weights need not sum to 1 */
} cdnload_size_class_t;

typedef struct cdnload_scenario {
    uint64_t duration_ms;      /* measured part of the run */
    uint64_t warmup_ms;        /* before it: sent, not reported */
    uint32_t objects;          /* distinct cacheable objects */
    double zipf;               /* popularity exponent s (0 = uniform) */
    cdnload_size_class_t sizes[CDNLOAD_SIZES_MAX];
    unsigned nsizes;
    double uncacheable;        /* share of requests for no-store objects */
    double images;             /* share of requests for image variants */
    uint32_t concurrency;      /* connections per region (closed loop: each waits for its answer) */
    double rate;               /* requests per second per region; 0 = closed loop */
    uint64_t ttl_s;            /* max-age of the cacheable objects */
    uint32_t abusive_clients;  /* per region, from their own address, as fast as they can */
    uint64_t purge_every_ms;   /* 0 = no purges */
    cdnload_purge_kind_t purge_kind;
    char fault_node[64];       /* node to kill ("" = no fault) */
    uint64_t fault_at_ms, fault_restart_ms; /* from the start of the run */
    uint64_t seed;
} cdnload_scenario_t;

/* Fill s with the defaults. */
void cdnload_scenario_defaults(cdnload_scenario_t *s);
/* Apply one `key = value`; where names it in messages ("FILE:LINE").
 * Returns 0, or -EINVAL with "WHERE: expected ..." in err. */
int cdnload_scenario_set(cdnload_scenario_t *s, const char *key, const char *value, const char *where, char *err,
                         size_t errlen);
/* Load a file over s. Returns 0, -EINVAL (err names FILE:LINE), or the
 * negative errno of opening it (err names the file). */
int cdnload_scenario_load(cdnload_scenario_t *s, const char *path, char *err, size_t errlen);
/* Check the values together (a fault that restarts before it kills...).
 * Returns 0 or -EINVAL with err. */
int cdnload_scenario_check(const cdnload_scenario_t *s, char *err, size_t errlen);

/* The size of object i: drawn from the size classes by a hash of (seed,
 * i), the same in every process. */
uint64_t cdnload_object_size(const cdnload_scenario_t *s, uint32_t i);
/* The object's path and query for the demo origin into out[cap]:
 * "/o/<i>?size=N&cc=max-age%3D<ttl>" (cacheable) or
 * "/u/<i>?size=N&cc=no-store".
 * Returns the length (snprintf's). */
int cdnload_object_target(const cdnload_scenario_t *s, uint32_t i, bool cacheable, char *out, size_t cap);

#endif
