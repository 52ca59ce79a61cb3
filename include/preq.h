/* preq: one client request, from routing to the end of its response
 * (core/preq.c), as a state machine after Varnish's cnt_* steps: each
 * state has one step function that returns the next state, the legal
 * transitions are one table, and the diagram is in docs/ARCHITECTURE.md.
 *
 * The synchronous steps run at once when the request arrives (RECV,
 * LIMIT, LOOKUP, then MISS / VALIDATE / PASS / DERIVE / SYNTH); FETCH and DELIVER
 * are driven by events: a fetch waking its waiter (stream.c), a stored
 * body streaming out (serve.c), the response ending (DONE). */
#ifndef CDN_PREQ_H
#define CDN_PREQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "fetch.h"
#include "http_server.h"
#include "lookup.h"
#include "policy_cache.h"
#include "policy_ratelimit.h"
#include "policy_rules.h"
#include "proxy_state.h"

typedef enum preq_state {
    PREQ_RECV,                 /* control paths, loop detection, the [rule] and cache key */
    PREQ_LIMIT,                /* admission: rate limiting plugs in here (issue 12); all pass today */
    PREQ_LOOKUP,               /* the store: a hit is served, else p->fwd says why not */
    PREQ_MISS,                 /* join or start the shared fetch of the key (collapsing) */
    PREQ_VALIDATE,             /* the client asked for validation: a private fill */
    PREQ_PASS,                 /* not cacheable: forwarded on its own */
    PREQ_DERIVE,               /* an image variant: join or start its derivation (derive.c) */
    PREQ_SYNTH,                /* a generated answer (p->synth) */
    PREQ_PURGE,                /* a purge: authenticated, applied to the store, answered (purge.c) */
    PREQ_FETCH,                /* waiting on a fetch for the response head (stream.c) */
    PREQ_DELIVER,              /* the response head is out; the body streams (stream.c, serve.c) */
    PREQ_DONE,                 /* the response ended, or the connection died */
    PREQ_STATE_COUNT
} preq_state_t;

struct preq {
    atomic_int refs;
    preq_state_t state;        /* change only through preq_set_state */
    proxy_worker_t *pw;
    proxy_conf_t *conf;        /* the configuration generation it runs under (held until the last unref) */
    preq_t *next_free;         /* on pw->free_reqs while unused */
    http_conn_t *c;            /* NULL once the response ended or the connection died */
    http_req_t *req;           /* valid while c is */
    const char *target;        /* origin-form target sent upstream: the request's, or an image's source */
    size_t target_len;
    struct preq_image *img;    /* an image variant request (image_req.c), or NULL */
    const policy_rule_t *rule; /* the [rule] for this request (or the defaults) */
    const policy_opts_t *popts;
    policy_req_t pol;
    buf_t key;                 /* normalised cache key */
    uint8_t hash[16];          /* of key: the URL's store records share it */
    uint64_t variant;          /* the Vary variant, once known (0 = none / unknown) */
    const char *fwd;           /* Cache-Status fwd= for a forwarded request */
    stored_t *stored;          /* stale object to revalidate or fall back on */
    bool stale_if_error;       /* lookup's verdict: stored may answer if upstream fails (RFC 5861) */
    struct {                   /* PREQ_SYNTH: what to answer (static strings) */
        int status;
        const char *detail, *body;
    } synth;
    /* streaming a body from the store: segments of one response */
    struct serve_plan *plan;
    /* waiting on a fetch */
    fetch_t *f;
    fetch_waiter_t waiter;
    bool collapsed;            /* joined a fetch another request started */
    struct {                   /* rate limiting (limit.c): the bucket the request was admitted by */
        bool on;
        uint32_t scope;
        policy_rl_key_t key;
        policy_rl_limit_t lim;
    } rl;
    unsigned interims_seen;    /* interim responses of f already relayed (or skipped) */
};

/* The HTTP server's request callback: run the request's steps. */
void preq_on_request(http_conn_t *c, http_req_t *req, void *ud);
/* Enter state s (asserting the transition is legal; s == p->state is a no-op). */
void preq_set_state(preq_t *p, preq_state_t s);
/* The state's name, for logs and tests. */
const char *preq_state_name(preq_state_t s);
/* True when the table allows a request to go from `from` to `to` (any
 * state but DONE may end). */
bool preq_state_legal(preq_state_t from, preq_state_t to);
void preq_ref(preq_t *p);
void preq_unref(preq_t *p);
/* The response is over (finished or aborted): drop the fetch and the connection's reference. */
void preq_end(preq_t *p);
/* End the response normally (http_resp_finish) and the request. */
void preq_finish(preq_t *p);
/* Send a generated response (error or control) and end the request. */
void preq_respond(preq_t *p, int status, const char *detail, const char *body);
/* The same with header lines of its own ("Name: value\r\n"...). */
void preq_respond_with(preq_t *p, int status, const char *detail, const char *body, const char *lines);
/* Append our Cache-Status member (after the upstream chain cs, if any). */
void preq_cache_status(preq_t *p, buf_t *h, const char *cs, size_t cslen, const char *params);
/* The key of the collapsing table for p: the URL, or the URL's variant. */
void preq_fetch_key(const preq_t *p, uint8_t out[16]);
/* The cache key of target on host (the [rule] of generation conf matched on the normalised
 * host and path of its default key, then the key under that rule's query
 * policy) into key, with the rule and its options. Returns 0, -EINVAL for
 * a bad target, -E2BIG past key's cap. */
int preq_cache_key(const proxy_conf_t *conf, http_slice_t host, const char *target, size_t target_len, buf_t *key,
                   const policy_rule_t **rule, const policy_opts_t **popts);
/* Free the worker's spare request objects (at worker shutdown). */
void preq_free_spares(proxy_worker_t *pw);

#endif
