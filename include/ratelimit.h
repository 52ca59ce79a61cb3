/* ratelimit: the table of token buckets and connection counts that every
 * worker thread of a node shares (issue 12).
 *
 * Why shared: the workers share the listening port, so one client's
 * connections land on any worker; per-worker buckets would multiply the
 * limit by the number of workers. Why striped: a single lock would
 * serialise every request of every worker; here an entry lives in one of
 * up to 256 stripes, chosen by a keyed hash, and the hit path takes that
 * stripe's mutex once, which two workers rarely want at the same moment.
 *
 * Bounded memory: the table is allocated once, at creation, and never
 * grows: ratelimit_bytes() = capacity x 64-byte entries (one cache line
 * each) plus 64 bytes a stripe. An entry is (client key, scope): the
 * caller uses a rule's index as the scope of its request bucket and
 * RATELIMIT_SCOPE_CONN for the client's connection count.
 *
 * Eviction. A key may sit in a window of 16 slots of its stripe. When all
 * are in use, a newcomer replaces the entry that forgetting changes least:
 * an idle one (bucket full again, or no open connection: forgetting it
 * changes nothing) before an active one (tokens spent, not limited)
 * before a limited one (below one token or over the limit) before one in
 * the penalty box; within a class, the one that will be full again (or
 * leave the box) soonest. An entry with open connections is never
 * replaced. The guarantee: a limited client is forgotten only when every
 * other entry of its window is limited, boxed or holds connections. A
 * flood of newcomers from a million addresses is at worst active after
 * its first request, so it replaces its own kind and cannot free a
 * limited client (evicted_limited counts the cases where that did happen:
 * the table is too small for the attack).
 *
 * When nothing can be replaced (all 16 hold connections), the request is
 * admitted as if by a fresh bucket, and counted (untracked). Fail-open,
 * because a full table is our capacity problem, not evidence against the
 * newcomer: refusing would let whoever pins the table (connections are
 * already capped per worker) lock out every new client. Size the table
 * well above the node's connection count and it does not happen.
 *
 * Time is the caller's (uv_now of its loop, ms). Workers' clocks may
 * differ by a little: a time behind a bucket's last update refills
 * nothing (see policy_ratelimit.h). */
#ifndef CDN_RATELIMIT_H
#define CDN_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy_ratelimit.h"

typedef struct ratelimit ratelimit_t;

/* The scope of connection counts; request scopes are below it. */
#define RATELIMIT_SCOPE_CONN UINT32_MAX
/* Slots a key may occupy, and the bounds of the capacity. */
#define RATELIMIT_WINDOW 16
#define RATELIMIT_MAX_CAPACITY (1u << 26) /* 4 GiB of entries */

/* Make a table of `capacity` entries (RATELIMIT_WINDOW..RATELIMIT_MAX_CAPACITY,
 * rounded down to a multiple of the stripe count; see ratelimit_capacity).
 * Returns 0 with the table in *out (free it with ratelimit_free),
 * -EINVAL or -ENOMEM. Never allocates again. */
int ratelimit_new(ratelimit_t **out, size_t capacity);
/* Free the table; no call may be running. NULL-safe. */
void ratelimit_free(ratelimit_t *t);
/* Entries the table holds, and the bytes it allocated: both fixed. */
size_t ratelimit_capacity(const ratelimit_t *t);
size_t ratelimit_bytes(const ratelimit_t *t);

/* Decide a request of `cost` tokens (1 for a hit) from client key under
 * scope (< RATELIMIT_SCOPE_CONN) with limit lim, as policy_rl_take: the
 * bucket is made full on first sight. res gets the outcome (penalized:
 * refused by the penalty box) and the RateLimit numbers. Thread-safe. */
void ratelimit_take(ratelimit_t *t, const policy_rl_key_t *key, uint32_t scope, const policy_rl_limit_t *lim,
                    uint32_t cost, int64_t now_ms, policy_rl_result_t *res);
/* Charge `extra` tokens to the same bucket once a request turned out to
 * cost more (a miss: miss_cost - 1). res (may be NULL) gets the numbers
 * for the response's RateLimit field. Thread-safe. */
void ratelimit_charge(ratelimit_t *t, const policy_rl_key_t *key, uint32_t scope, const policy_rl_limit_t *lim,
                      uint32_t extra, int64_t now_ms, policy_rl_result_t *res);

/* True when key is in the penalty box of scope at now_ms. Makes no entry
 * and charges nothing: for closing a connection right after accept, before
 * any request names a rule. Thread-safe. */
bool ratelimit_boxed(ratelimit_t *t, const policy_rl_key_t *key, uint32_t scope, int64_t now_ms);

typedef enum ratelimit_conn {
    RATELIMIT_CONN_REFUSED,   /* the client has max open: close it (counted in conns_refused) */
    RATELIMIT_CONN_COUNTED,   /* admitted: call ratelimit_conn_close once when it closes */
    RATELIMIT_CONN_UNCOUNTED, /* admitted without an entry (fail-open, counted in untracked): no close */
} ratelimit_conn_t;
/* A connection from key was accepted: admit it while the client has fewer
 * than max (<= 65535) open. Thread-safe. */
ratelimit_conn_t ratelimit_conn_open(ratelimit_t *t, const policy_rl_key_t *key, uint32_t max, int64_t now_ms);
/* A RATELIMIT_CONN_COUNTED connection of key closed. Thread-safe. */
void ratelimit_conn_close(ratelimit_t *t, const policy_rl_key_t *key);

/* Counters since creation, for metrics and tests (each read atomically,
 * not all at one instant). */
typedef struct ratelimit_stats {
    uint64_t limited;         /* requests refused, the penalty box's included */
    uint64_t penalized;       /* clients sent to the penalty box */
    uint64_t conns_refused;   /* connections over the per-client cap */
    uint64_t evictions;       /* entries replaced by a newcomer */
    uint64_t evicted_limited; /* ...of which limited or boxed: the table is too small */
    uint64_t untracked;       /* admitted without an entry (every candidate held connections) */
    uint64_t entries;         /* entries in use, <= capacity */
    uint64_t capacity;
} ratelimit_stats_t;
void ratelimit_stats(ratelimit_t *t, ratelimit_stats_t *out);

#endif
