/* pool: a node's upstream targets (the shields of an edge, or the origins
 * of a shield) with their health, ranked per cache key by rendezvous
 * (highest random weight) hashing.
 *
 * Ranking: every target has a seed derived from its name; a key's score
 * for a target is SipHash(seed, key). Each key goes to its highest-scoring
 * usable target, so each object lives on one shield, and adding or
 * removing a target moves only the keys whose top target changed (about
 * 1/N of them).
 *
 * Health: consecutive failures reported by requests or by active checks
 * eject a target for a backoff that doubles on each ejection (bounded);
 * once the backoff has passed it is tried again, and one success (a
 * request or an active check) makes it healthy and resets the backoff.
 * What counts as a failure is the caller's decision (see proxy_job.c: by
 * default connection failures, timeouts and failed checks, never an HTTP
 * answer). A pool may be told never to eject (a node's only upstream):
 * it then only reports the target down. Ejection is advice, not a wall:
 * pool_next_any still ranks ejected targets, for callers that would
 * otherwise have nowhere to go (panic mode). State is shared by every
 * worker thread: reads on the request path are lock-free. Times are
 * passed in (ms). */
#ifndef CDN_POOL_H
#define CDN_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_MAX 32
/* Buffer sizes bounding a target's name and base URL: each holds at most
 * this many bytes minus one (the config's list fields are as long). */
#define POOL_NAME_MAX 1024
#define POOL_BASE_MAX 1024

typedef struct pool pool_t;

typedef struct pool_opts {
    unsigned eject_after;      /* consecutive failures that eject (0 = 3) */
    uint64_t backoff_ms;       /* first ejection's length (0 = 5000) */
    uint64_t backoff_max_ms;   /* cap of the doubling (0 = 60000) */
    bool never_eject;          /* count failures and report "down", but stay usable */
} pool_opts_t;

typedef enum pool_result {
    POOL_OK,                   /* the target answered (the caller decides which answers say so) */
    POOL_FAIL,                 /* connect error, timeout, broken response (or an opted-in 5xx) */
} pool_result_t;

/* What a report did to the target's state, for the caller to log. */
typedef enum pool_change {
    POOL_CHANGE_NONE,
    POOL_CHANGE_DOWN,          /* it just reached eject_after failures (ejected, or reported down) */
    POOL_CHANGE_UP,            /* a success after it was down */
} pool_change_t;

/* A pool of n targets (1..POOL_MAX). names[i] is how the target is named
 * and ranked ("host:port"); bases[i] the base URL requests go to
 * ("http://host:port", no trailing '/'). Both are copied. Returns NULL on
 * bad input (n out of range, a name or base too long). Also bad: a NULL or
 * empty name or base, a base ending in '/', two equal names (the second
 * would never rank first). opts may be NULL (all defaults). */
pool_t *pool_new(const char *const *names, const char *const *bases, size_t n, const pool_opts_t *opts);
/* Free p (NULL is fine); no other thread may still be using it. */
void pool_free(pool_t *p);
/* Number of targets, fixed for the pool's life. */
size_t pool_size(const pool_t *p);
/* Name / base URL of target i; valid for the pool's life (NULL when i is
 * out of range, as are all per-target calls below: false, no-op, zeros). */
const char *pool_name(const pool_t *p, size_t i);
const char *pool_base(const pool_t *p, size_t i);

/* Every target in key's ranking order, best first, into order[pool_size]. */
void pool_rank(const pool_t *p, const uint8_t key[16], unsigned order[]);
/* The best-ranked target for key that is usable at now_ms and not in tried
 * (bit i = target i already tried for this request); -1 when none is. */
int pool_next(const pool_t *p, const uint8_t key[16], uint32_t tried, uint64_t now_ms);
/* The best-ranked target for key not in tried, health aside: where a
 * request goes when every usable target was tried (panic mode); -1 when
 * every target was tried. */
int pool_next_any(const pool_t *p, const uint8_t key[16], uint32_t tried);
/* True when target i may be used at now_ms (healthy, or its backoff passed). */
bool pool_usable(const pool_t *p, size_t i, uint64_t now_ms);
/* True when target i is currently ejected and still backing off at now_ms. */
bool pool_ejected(const pool_t *p, size_t i, uint64_t now_ms);

/* The outcome of a request to target i (any thread). A failure reported
 * while i is still backing off (a request sent before the ejection) is
 * counted but does not eject it again; a success always restores it.
 * Returns the change of state, once per transition. */
pool_change_t pool_report(pool_t *p, size_t i, pool_result_t r, uint64_t now_ms);
/* The outcome of an active health check of target i (any thread): it
 * weighs exactly like a request's outcome, but is counted apart. */
pool_change_t pool_report_check(pool_t *p, size_t i, bool ok, uint64_t now_ms);

/* Counters for metrics and tests. */
typedef struct pool_target_stats {
    uint64_t requests_ok, requests_failed, checks_ok, checks_failed, ejections;
    bool ejected;              /* as of the call */
    bool down;                 /* failed eject_after times with no success since (never_eject pools too) */
} pool_target_stats_t;
/* Snapshot of target i's counters into *out (lock-free; the counters are
 * each exact but may be from slightly different instants). */
void pool_stats(const pool_t *p, size_t i, uint64_t now_ms, pool_target_stats_t *out);

#endif
