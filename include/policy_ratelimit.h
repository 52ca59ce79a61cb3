/* policy_ratelimit: the decisions of rate limiting (issue 12), with no
 * table, no lock and no clock: a token bucket whose time is an argument,
 * the client key of an address, CIDR lists, X-Forwarded-For, and the IETF
 * RateLimit fields. core/ratelimit.c keeps the buckets of a node.
 *
 * The arithmetic. A bucket holds up to `burst` tokens and gains `rate`
 * tokens per second, counted in millionths of a token and whole
 * milliseconds so that every refill is exact integer arithmetic (a rate is
 * given in thousandths of a token per second, which is the number of
 * millionths it gains per millisecond). A new client starts full. A request
 * is admitted when the bucket holds at least one token; admitting it
 * charges its cost: 1 for a cache hit. What a miss really costs is known
 * only after the lookup, so the caller then charges the rest
 * (miss_cost - 1) and the balance may go below zero: the client is in
 * debt and is refused until the refill brings it back to one token
 * (Retry-After says when, in whole seconds rounded up). Admitting on one
 * token and charging the full cost gives the same result whether the cost
 * was known before or after: a client busting the cache with misses at
 * cost 10 gets a tenth of the request rate of a client reading hot content.
 * The debt is bounded at minus one bucket (or minus the amount being
 * charged, when that is larger, so that one request is always charged in
 * full): many misses admitted together before their charges land cannot
 * lock a client out for longer than one bucket and one token take to
 * refill.
 *
 * The penalty box (optional). A client is over the limit from its first
 * refused request until a request is admitted with a token to spare (it is
 * then slower than its rate). Admissions that drain the bucket do not end
 * it: a client at 10x its rate gets one request in per token and stays
 * over. A request refused once the client has been over the limit for
 * penalty_after_ms puts it in the box: every request is refused until
 * penalty_ms later. Time spent in debt counts as over the limit.
 *
 * The RateLimit fields follow draft-ietf-httpapi-ratelimit-headers-11
 * (May 2026; q/w/r/t unchanged since -08): RateLimit-Policy is a List of
 * Strings with q (quota, Integer) and w (window, seconds); RateLimit a
 * List of Strings with r (available quota) and t (effective window,
 * seconds). A token bucket maps onto them as q = burst (the most a client
 * may spend at once), w = burst / rate rounded up (the time an empty bucket
 * takes to refill, so q per w is the rate), r = whole tokens left, and
 * t = seconds until the bucket is full again, or, while r is 0, until one
 * token is back: the moment Retry-After names, since the draft asks
 * Retry-After not to precede the end of the effective window. The quota
 * unit is left to its default, "requests": a hit costs one. */
#ifndef CDN_POLICY_RATELIMIT_H
#define CDN_POLICY_RATELIMIT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http_fields.h"

/* One token in the unit of a bucket's balance (millionths). */
#define POLICY_RL_ONE INT64_C(1000000)
/* "No time" for over_since_ms and penalty_until_ms. */
#define POLICY_RL_NEVER INT64_MIN

/* A limit, as configured (globally or per rule). */
typedef struct policy_rl_limit {
    uint32_t rate_milli;       /* refill, thousandths of a token per second (10 r/s = 10000); > 0 */
    uint32_t burst;            /* bucket size, whole tokens; > 0 */
    uint32_t penalty_after_ms; /* over the limit this long -> penalty box; 0 = no box */
    uint32_t penalty_ms;       /* time in the box; 0 = no box */
} policy_rl_limit_t;

/* One client's bucket: a plain value, 32 bytes. Times are the caller's
 * monotonic milliseconds; a time earlier than the last update (another
 * thread's clock running a little behind) refills nothing. */
typedef struct policy_rl_bucket {
    int64_t balance;          /* millionths of a token; negative = debt */
    int64_t updated_ms;       /* time of the last refill */
    int64_t over_since_ms;    /* start of the over-limit episode, or POLICY_RL_NEVER */
    int64_t penalty_until_ms; /* refused until then, or POLICY_RL_NEVER */
} policy_rl_bucket_t;

/* The outcome of a request, and the numbers of its RateLimit field. */
typedef struct policy_rl_result {
    bool admitted;
    bool penalized;         /* refused by the penalty box (or sent there by this request) */
    uint32_t remaining;     /* r: whole tokens left, 0 when refused or in debt */
    uint32_t reset_s;       /* t: see the header comment */
    uint32_t retry_after_s; /* refused: seconds to wait, >= 1; 0 when admitted */
} policy_rl_result_t;

/* How much forgetting a bucket would change, in the order a bounded table
 * evicts: an idle bucket first (it is full: forgetting it changes
 * nothing), a penalized one last. */
typedef enum policy_rl_state {
    POLICY_RL_IDLE,      /* full, not in the box */
    POLICY_RL_ACTIVE,    /* tokens spent, at least one left, not over the limit */
    POLICY_RL_LIMITED,   /* below one token, or over the limit */
    POLICY_RL_PENALIZED, /* in the penalty box */
} policy_rl_state_t;

/* Make b a full bucket, as of now_ms. */
void policy_rl_init(policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms);
/* Refill b to now_ms and decide a request of `cost` tokens (1 for a hit):
 * admitted when the bucket holds a token, charging cost (see the floor
 * above); otherwise refused, which may start the penalty box. */
void policy_rl_take(policy_rl_bucket_t *b, const policy_rl_limit_t *lim, uint32_t cost, int64_t now_ms,
                    policy_rl_result_t *res);
/* Charge `extra` tokens for an admitted request whose cost turned out
 * higher (a miss: miss_cost - 1). res (may be NULL) gets the numbers for
 * the response's RateLimit field, admitted set. */
void policy_rl_charge(policy_rl_bucket_t *b, const policy_rl_limit_t *lim, uint32_t extra, int64_t now_ms,
                      policy_rl_result_t *res);
/* The balance b would have at now_ms (b is not changed). */
int64_t policy_rl_balance(const policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms);
/* Milliseconds from now_ms until b is full again (0 when it is). */
int64_t policy_rl_ms_to_full(const policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms);
/* Where b stands at now_ms (b is not changed). */
policy_rl_state_t policy_rl_state(const policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms);

/* Longest policy name the field writers take, and a buffer that always
 * holds one member (the name escaped, the parameters, the NUL). */
#define POLICY_RL_NAME_MAX 64
#define POLICY_RL_FIELD_BYTES 192
/* Write the RateLimit-Policy member `"NAME";q=BURST;w=WINDOW` into
 * out[0..cap). Returns its length, -EINVAL when name is empty, longer than
 * POLICY_RL_NAME_MAX or holds a byte a String cannot (outside 0x20-0x7e),
 * -E2BIG when out is too small. */
int policy_rl_policy_field(const char *name, const policy_rl_limit_t *lim, char *out, size_t cap);
/* Write the RateLimit member `"NAME";r=REMAINING;t=SECONDS` for res; the
 * same returns. */
int policy_rl_limit_field(const char *name, const policy_rl_result_t *res, char *out, size_t cap);

/* An address in the 16-byte IPv6 form; IPv4 as ::ffff:a.b.c.d, so an
 * IPv4-mapped IPv6 peer is the same client as its IPv4 address. */
typedef struct policy_rl_addr {
    uint8_t b[16];
} policy_rl_addr_t;
/* A client key: the IPv4 address (mapped form), or the /64 of an IPv6
 * address (the rest zero): one subscriber gets a /64, so limiting single
 * IPv6 addresses would limit nothing. The two forms never collide. */
typedef struct policy_rl_key {
    uint8_t b[16];
} policy_rl_key_t;
/* Buffer for policy_rl_key_format: an IPv6 text and "/64". */
#define POLICY_RL_KEY_STRLEN (INET6_ADDRSTRLEN + 4)

/* The address of an AF_INET or AF_INET6 sockaddr. Returns 0 or
 * -EAFNOSUPPORT. */
int policy_rl_addr_from_sockaddr(const struct sockaddr *sa, policy_rl_addr_t *out);
/* Parse a bare IPv4 or IPv6 address from p[0..n). False when invalid. */
bool policy_rl_addr_parse(const char *p, size_t n, policy_rl_addr_t *out);
/* True for an IPv4 address (mapped form). */
bool policy_rl_addr_is_v4(const policy_rl_addr_t *a);
/* The client key of an address. */
void policy_rl_key_of(const policy_rl_addr_t *a, policy_rl_key_t *out);
/* "192.0.2.1" or "2001:db8:1:2::/64" into out[0..cap), cap >=
 * POLICY_RL_KEY_STRLEN; returns out. */
const char *policy_rl_key_format(const policy_rl_key_t *k, char *out, size_t cap);

/* A CIDR list (trusted_proxies, allowlist): a value type, no pointers. An
 * IPv4 client matches IPv4 CIDRs only (written a.b.c.d/n or as mapped
 * IPv6 ::ffff:a.b.c.d/n with n >= 96); ::/0 is every IPv6 client. */
#define POLICY_RL_CIDRS_MAX 128
typedef struct policy_rl_cidr {
    policy_rl_addr_t net; /* host bits cleared */
    uint8_t bits;         /* prefix length in the 16-byte form (IPv4 /n is 96 + n) */
    bool v4;
} policy_rl_cidr_t;
typedef struct policy_rl_cidrs {
    size_t n;
    policy_rl_cidr_t v[POLICY_RL_CIDRS_MAX];
} policy_rl_cidrs_t;

/* Parse a comma- and/or space-separated list of addresses (/32, /128) and
 * CIDRs into list (reset first; host bits are cleared: 10.1.2.3/8 is
 * 10.0.0.0/8). Returns 0; -EINVAL with err naming the bad item and why;
 * -E2BIG past POLICY_RL_CIDRS_MAX items. Config boundary: err is for the
 * operator. */
int policy_rl_cidrs_parse(policy_rl_cidrs_t *list, const char *s, char *err, size_t errlen);
/* True when a is in one of the CIDRs. */
bool policy_rl_cidrs_match(const policy_rl_cidrs_t *list, const policy_rl_addr_t *a);

/* The client's address. It is the peer, unless the peer is in `trusted`:
 * then X-Forwarded-For (every line of h, read as one list in order) is
 * walked from the right, each trusted address skipped, and the first
 * untrusted one is the client (the rightmost untrusted: anything to its
 * left was written by the client itself and can be forged). When every
 * entry is trusted, the leftmost. An entry that is not an address
 * ("unknown", garbage) stops the walk: the last address taken (or the
 * peer) is the client. Entries may carry a port (1.2.3.4:5, [::1]:5).
 * Writes out; returns true when it came from X-Forwarded-For. */
bool policy_rl_xff_client(const policy_rl_addr_t *peer, const http_fields_t *h, const policy_rl_cidrs_t *trusted,
                          policy_rl_addr_t *out);

#endif
