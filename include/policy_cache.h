/* policy_cache: RFC 9111 decisions for a shared cache, with no I/O.
 *
 * The flow for one exchange:
 *   policy_req_parse    request line + headers  -> policy_req_t
 *   policy_resp_parse   upstream status + headers -> policy_resp_t
 *   policy_storable     may the response be stored (and why not)
 *   policy_entry_init   the fixed-size summary stored with the object
 *   policy_entry_check  on a later lookup: fresh, stale, or a stale window
 * Every time is Unix seconds passed in by the caller (`now`,
 * request_time = when the upstream request was sent, response_time = when
 * its response headers arrived); nothing here reads a clock.
 *
 * Method values are llhttp's enum llhttp_method (HTTP_GET, HTTP_HEAD...). */
#ifndef CDN_POLICY_CACHE_H
#define CDN_POLICY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_fields.h"
#include "policy_cc.h"

/* Number of targeted-field slots in policy_opts_t. */
#define POLICY_TARGETED_MAX 4

/* Node-wide policy knobs; fill with policy_opts_init, then override. Plain
 * data: the strings are borrowed and must outlive every call using opts. */
typedef struct policy_opts {
    int64_t heuristic_max;      /* cap on heuristic freshness, seconds (86400) */
    int64_t heuristic_default;  /* heuristic lifetime without Last-Modified (0) */
    unsigned heuristic_percent; /* share of Date - Last-Modified, percent (10) */
    bool store_cookies;         /* store responses with Set-Cookie; the stored copy drops it (false) */
    bool stale_with_s_maxage;   /* let stale-while-revalidate/-if-error apply despite the
                                 * proxy-revalidate that s-maxage implies (false:
                                 * RFC 9111 4.2.4, s-maxage means no stale serving) */
    /* RFC 9213 target list, most specific first, NULL-terminated
     * ({"CDN-Cache-Control"}). The first of these fields present, valid
     * (policy_cc_parse_targeted) and with at least one directive replaces
     * Cache-Control AND Expires for this cache's storability and freshness. Surrogate-Control may be added
     * (its "max-age=N+M" form parses as an invalid max-age, i.e. stale).
     * targeted_cc[0] = NULL turns targeting off. */
    const char *targeted_cc[POLICY_TARGETED_MAX];
} policy_opts_t;

/* Defaults as noted above. */
void policy_opts_init(policy_opts_t *o);

enum {
    POLICY_RESP_HAS_CC = 1u << 0,       /* a Cache-Control field was present */
    POLICY_RESP_TARGETED = 1u << 1,     /* cc came from opts->targeted_cc[resp->targeted] */
    POLICY_RESP_SET_COOKIE = 1u << 2,   /* Set-Cookie present */
    POLICY_RESP_VARY = 1u << 3,         /* Vary present */
    POLICY_RESP_VARY_STAR = 1u << 4,    /* Vary contains "*": never matches, never stored */
    POLICY_RESP_ETAG = 1u << 5,         /* ETag present (revalidation possible) */
    POLICY_RESP_EXPIRES_BAD = 1u << 6,  /* Expires invalid or repeated with different values */
    POLICY_RESP_AUTH_OK = 1u << 7,      /* public, must-revalidate or s-maxage (RFC 9111 3.5) */
    POLICY_RESP_NO_TRANSFORM = 1u << 8, /* no-transform in Cache-Control or the targeted field */
};

/* What the cache needs from a response, parsed once. No pointers into the
 * headers: valid after they are freed. Times are -1 when absent. */
typedef struct policy_resp {
    int status;
    uint32_t flags;     /* POLICY_RESP_* */
    int targeted;       /* index into opts->targeted_cc that supplied cc, or -1 */
    policy_cc_t cc;     /* effective directives: targeted field, else Cache-Control */
    int64_t date;       /* Date; -1 absent or invalid */
    int64_t expires;    /* Expires; -1 absent (or ignored: targeted), 0 invalid = already expired */
    int64_t last_modified; /* Last-Modified; -1 absent or invalid */
    int64_t age;        /* Age (first member); -1 absent, negative or non-numeric */
} policy_resp_t;

/* Parse status and headers h into r. opts may be NULL (defaults). */
void policy_resp_parse(policy_resp_t *r, int status, const http_fields_t *h, const policy_opts_t *opts);

enum {
    POLICY_REQ_HAS_CC = 1u << 0,            /* a Cache-Control field was present */
    POLICY_REQ_PRAGMA_NO_CACHE = 1u << 1,   /* Pragma: no-cache without Cache-Control (also sets cc NO_CACHE) */
    POLICY_REQ_AUTHORIZATION = 1u << 2,
    POLICY_REQ_IF_NONE_MATCH = 1u << 3,
    POLICY_REQ_IF_MODIFIED_SINCE = 1u << 4,
    POLICY_REQ_IF_MATCH = 1u << 5,
    POLICY_REQ_IF_UNMODIFIED_SINCE = 1u << 6,
    POLICY_REQ_IF_RANGE = 1u << 7,
    POLICY_REQ_RANGE = 1u << 8,
    POLICY_REQ_CONDITIONAL = 0xf8u,         /* any of the five above, from If-None-Match on */
};

/* What the cache needs from a request. Same lifetime rules as policy_resp_t.
 * To ignore client cache directives (a CDN choice), policy_cc_init(&q->cc). */
typedef struct policy_req {
    int method;     /* llhttp_method_t */
    uint32_t flags; /* POLICY_REQ_* */
    policy_cc_t cc; /* request directives */
} policy_req_t;

/* Parse method and headers h into q. */
void policy_req_parse(policy_req_t *q, int method, const http_fields_t *h);

/* Status codes whose caching rules this module implements (RFC 9110 codes
 * plus 429, 431, 451). */
bool policy_status_understood(int status);
/* Heuristically cacheable status codes (RFC 9110 15.1). */
bool policy_status_heuristic(int status);

/* May a shared cache store this response as a full object for GET? On
 * false *why (if why != NULL) is a static token for logs and Cache-Status
 * detail ("method", "head", "status", "partial", "not-modified",
 * "must-understand", "req-no-store", "no-store", "private", "authorization",
 * "vary-star", "set-cookie", "no-freshness"); on true it is NULL. HEAD is
 * never stored ("head": serve it from the GET object). 206 and 304 are not
 * objects: 304 updates a stored entry, 206 needs range storage. Qualified
 * private/no-cache and, with opts->store_cookies, Set-Cookie are storable
 * once the caller drops the fields policy_field_storable rejects. */
bool policy_storable(const policy_req_t *q, const policy_resp_t *r, const policy_opts_t *opts, const char **why);
/* False for a response field the stored copy must not keep: hop-by-hop and
 * Connection-listed fields (h = the response headers, may be NULL), fields
 * named by private="..." or no-cache="...", and Set-Cookie. */
bool policy_field_storable(const policy_resp_t *r, const http_fields_t *h, const char *name, size_t nlen);

/* Freshness lifetime in seconds (RFC 9111 4.2.1): invalid or conflicting
 * max-age/s-maxage -> 0; else s-maxage, max-age, Expires - Date (Date
 * absent: Expires - response_time), floored at 0; else, for a
 * heuristically cacheable or public response, 10% (opts) of Date -
 * Last-Modified capped at heuristic_max (heuristic_default without
 * Last-Modified); else 0. opts may be NULL. */
int64_t policy_freshness_lifetime(const policy_resp_t *r, const policy_opts_t *opts, int64_t response_time);

/* RFC 9111 4.2.3:
 *   apparent_age          = max(0, response_time - date_value)
 *   response_delay        = max(0, response_time - request_time)
 *   corrected_age_value   = age_value + response_delay
 *   corrected_initial_age = max(apparent_age, corrected_age_value)
 * age_value < 0 (no valid Age) counts as 0; date_value < 0 (no Date) makes
 * apparent_age 0. A Date in the future (skew) gives apparent_age 0, and an
 * Age larger than the apparent age wins: both err towards older. */
int64_t policy_corrected_initial_age(int64_t age_value, int64_t date_value, int64_t request_time,
                                     int64_t response_time);
/* current_age = corrected_initial_age + max(0, now - response_time). */
int64_t policy_current_age(int64_t corrected_initial_age, int64_t response_time, int64_t now);

/* Layout version of policy_entry_t; bump on any change to it. */
#define POLICY_ENTRY_VERSION 1u

enum {
    POLICY_ENTRY_MUST_REVALIDATE = 1u << 0,
    POLICY_ENTRY_PROXY_REVALIDATE = 1u << 1,
    POLICY_ENTRY_NO_CACHE = 1u << 2,        /* unqualified no-cache: revalidate every use */
    POLICY_ENTRY_NO_CACHE_FIELDS = 1u << 3, /* qualified no-cache (fields dropped at store time) */
    POLICY_ENTRY_PRIVATE_FIELDS = 1u << 4,  /* qualified private (fields dropped at store time) */
    POLICY_ENTRY_S_MAXAGE = 1u << 5,        /* s-maxage present: implies proxy-revalidate */
    POLICY_ENTRY_HEURISTIC = 1u << 6,       /* lifetime is heuristic */
    POLICY_ENTRY_IMMUTABLE = 1u << 7,
    POLICY_ENTRY_ETAG = 1u << 8,
    POLICY_ENTRY_LAST_MODIFIED = 1u << 9,
    POLICY_ENTRY_TARGETED = 1u << 10,       /* directives came from a targeted field */
    POLICY_ENTRY_NO_STALE = 1u << 11,       /* never served stale on request max-stale */
};

/* The summary stored with an object: fixed-size plain data with no
 * pointers or padding, so the store can memcpy it in and out. The layout
 * is versioned by `version` and sizeof; a record of another version or size
 * is rejected by policy_entry_load (treat it as a miss). Native byte order:
 * the cache directory is not portable between architectures. */
typedef struct policy_entry {
    uint32_t version;              /* POLICY_ENTRY_VERSION */
    uint32_t flags;                /* POLICY_ENTRY_* */
    int64_t request_time;          /* upstream request sent */
    int64_t response_time;         /* upstream response received */
    int64_t corrected_initial_age; /* RFC 9111 4.2.3 */
    int64_t freshness_lifetime;    /* RFC 9111 4.2.1 */
    int64_t stale_while_revalidate;/* window after expiry, seconds; -1 none (RFC 5861) */
    int64_t stale_if_error;        /* window after expiry, seconds; -1 none (RFC 5861) */
    int64_t date;                  /* Date, or response_time without one */
    int64_t last_modified;         /* -1 absent */
    int32_t status;
    uint32_t reserved;             /* 0 */
} policy_entry_t;

/* Fill e from a storable response. The stale windows are set to -1 when
 * must-revalidate, proxy-revalidate or no-cache forbid serving stale (and
 * for s-maxage unless opts->stale_with_s_maxage). opts may be NULL. */
void policy_entry_init(policy_entry_t *e, const policy_resp_t *r, const policy_opts_t *opts, int64_t request_time,
                       int64_t response_time);
/* Copy a stored record p[0..len) into e. Returns 0, or -EINVAL when its
 * size or version is not this build's (e is then untouched). */
int policy_entry_load(policy_entry_t *e, const void *p, size_t len);

typedef enum policy_verdict {
    POLICY_VERDICT_FRESH = 0,                  /* serve it */
    POLICY_VERDICT_STALE_ACCEPTED,             /* stale, but the request's max-stale accepts it: serve */
    POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK,  /* serve it, revalidate in the background */
    POLICY_VERDICT_STALE_IF_ERROR_OK,          /* go upstream; on error (5xx or none) serve it */
    POLICY_VERDICT_STALE,                      /* go upstream (Cache-Status fwd=stale) */
    POLICY_VERDICT_REQUEST,                    /* fresh, but request directives demand upstream (fwd=request) */
} policy_verdict_t;

/* May the stored entry e answer request q (NULL = no request directives)
 * at time now? Writes the entry's current age and remaining freshness
 * (lifetime - age, negative once stale) when the pointers are non-NULL.
 * Windows are half-open: a window of N seconds covers staleness 0..N-1.
 * Request no-cache/Pragma, max-age, min-fresh are honoured; max-stale is
 * not for NO_STALE entries; stale windows never override the request's
 * directives. only-if-cached is the caller's (504 unless FRESH/ACCEPTED). */
policy_verdict_t policy_entry_check(const policy_entry_t *e, const policy_req_t *q, int64_t now, int64_t *age_out,
                                    int64_t *ttl_out);
/* Static lowercase name of v for logs ("fresh", "stale", ...). */
const char *policy_verdict_name(policy_verdict_t v);

/* Safe methods (RFC 9110 9.2.1): GET, HEAD, OPTIONS, TRACE, PROPFIND, REPORT, SEARCH. */
bool policy_method_safe(int method);
/* RFC 9111 4.4: must a response to this request invalidate the target URI
 * (and same-origin Location/Content-Location)? True for an unsafe method
 * with a non-error (2xx/3xx) status. */
bool policy_method_invalidates(int method, int status);

/* Hop-by-hop fields that a proxy never forwards or stores: Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authenticate, Proxy-Authorization (case-insensitive). */
bool policy_hop_by_hop(const char *name, size_t nlen);
/* True when name is listed in any Connection field of h (hop-by-hop too). */
bool policy_connection_listed(const http_fields_t *h, const char *name, size_t nlen);

/* Request fields that tell an origin where and how a request arrived, or
 * which method to apply, and that frameworks build links, redirects and
 * routing from, while no cache key holds them: X-Forwarded-Host, X-Host,
 * X-Forwarded-Server, X-Original-Host, X-Original-URL, X-Rewrite-URL,
 * X-Forwarded-Scheme, X-Forwarded-Proto, X-Forwarded-Port,
 * X-Forwarded-Prefix, X-Forwarded-Ssl, Front-End-Https, X-Real-IP,
 * Forwarded, X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override
 * (case-insensitive). A client's copies would poison the cache for every
 * other client, so a node removes them unless told to pass one (keyed). */
bool policy_forwarding_header(const char *name, size_t nlen);

#endif
