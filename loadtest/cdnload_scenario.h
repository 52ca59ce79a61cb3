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
/* Cacheable objects and image sources carry the tag g<i % 16>
 * (Surrogate-Key, through the demo origin's sk=): a tag purge takes a
 * sixteenth of the catalogue. */
#define CDNLOAD_TAG_GROUPS 16
/* An image request asks for one of six variants of its source: widths
 * 160, 320, 640 by JPEG or WebP. */
#define CDNLOAD_IMAGE_VARIANTS 6

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
    uint32_t image_sources;    /* distinct source images, /img/s<k>.jpg (640x480 at the origin) */
    uint32_t concurrency;      /* connections per region (closed loop: each waits for its answer) */
    double rate;               /* requests per second per region; 0 = closed loop */
    uint64_t ttl_s;            /* max-age of the cacheable objects */
    uint32_t abusive_clients;  /* per region, each from its own address: scrapers of the popular objects */
    double abusive_rate;       /* requests per second each abusive client tries */
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
 * "/u/<i>?size=N&cc=no-store"; a cacheable one also carries its tag
 * group (&sk=g<i % 16>). Returns the length (snprintf's). */
int cdnload_object_target(const cdnload_scenario_t *s, uint32_t i, bool cacheable, char *out, size_t cap);
/* Variant v (0..5) of source image k: "/img/s<k>.jpg?width=640&height=480
 * &cc=max-age%3D<ttl>&sk=g<k % 16>&w=<160|320|640>&fmt=<jpeg|webp>". The
 * origin's object is the path before w=; the edge makes the variant.
 * Returns the length (snprintf's). */
int cdnload_image_target(const cdnload_scenario_t *s, uint32_t k, unsigned v, char *out, size_t cap);

/* Purge round n (from 0) of the schedule, by purge_kind:
 *  - tag: tag g<n % 16>: a sixteenth of the catalogue and of the images;
 *  - url: the URL of object n % 100 (a popular page, updated; fewer objects: n % objects);
 *  - prefix: the prefix /o/<10 + n % 90> (/o/10, /o/100-109, /o/1000-1099...).
 * Each round also takes its probe object (cdnload_probe_target), which no
 * client asks for, so that every edge's next answer for it after the
 * purge must be a miss. Whether round n takes object i (image: source i). */
bool cdnload_purge_covers(const cdnload_scenario_t *s, uint64_t n, uint32_t i, bool image);
/* The probe of round n: "/p/<n>/x?size=512&cc=max-age%3D<ttl>&sk=g<n % 16>". */
int cdnload_probe_target(const cdnload_scenario_t *s, uint64_t n, char *out, size_t cap);
/* The JSON body of round n's POST /.cdn/purge for host. Returns the
 * length (snprintf's). */
int cdnload_purge_body(const cdnload_scenario_t *s, uint64_t n, const char *host, char *out, size_t cap);

#endif
