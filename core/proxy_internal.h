/* Shared by the proxy's files:
 *   proxy.c         set-up, worker hooks, routing, control paths
 *   proxy_lookup.c  finding the stored object (Vary variants) and deciding
 *                   what to do with it (serve, revalidate, fetch)
 *   proxy_serve.c   answering from a stored object: 200, 304 to a
 *                   conditional request, 206 / 416 for ranges
 *   proxy_job.c     driving an upstream fetch: fills, revalidations,
 *                   storing, invalidation after unsafe methods
 *   proxy_stream.c  a client waiting on a fetch and the streaming of its
 *                   response
 * Not a public header. */
#ifndef CDN_PROXY_INTERNAL_H
#define CDN_PROXY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "fetch.h"
#include "http_server.h"
#include "object_meta.h"
#include "policy_cache.h"
#include "policy_rules.h"
#include "pool.h"
#include "health.h"
#include "proxy.h"
#include "store.h"
#include "upstream.h"
#include "worker.h"

struct proxy {
    const config_t *cfg;
    store_t *store;
    fetch_table_t *fetches;
    policy_rule_t defaults;    /* the rule of requests no [rule] matches */
    pool_t *primary;           /* the shields (edge with shields) or the origins */
    pool_t *fallback;          /* the origins when every shield is down, or NULL */
    bool primary_shields;      /* primary holds shields (checked at /.cdn/health) */
    policy_opts_t *opts;       /* per rule (cfg->rules order), then the defaults' */
    worker_hooks_t hooks;
    char via[96];              /* our Via member: "1.1 NAME" */
    size_t via_len;
    char error_headers[256];   /* on errors the HTTP server answers itself */
    /* pass_headers / pass_headers_unkeyed as "name\n" lines, lowercase:
     * the keyed ones are the form policy_vary_fields_with takes */
    char pass_keyed[1100], pass_unkeyed[1100];
    size_t pass_keyed_len, pass_unkeyed_len;
};

typedef struct fjob fjob_t;

typedef struct proxy_worker {
    proxy_t *px;
    worker_t *w;
    http_server_t *srv;
    upstream_t *up;
    store_reader_t *rd;
    uv_timer_t tick;           /* hands LRU touches to the store writer */
    health_t *health;          /* active checks of the primary pool (worker 0 only) */
    fjob_t *jobs;              /* upstream fetches this worker drives */
} proxy_worker_t;

/* A stored object the request found but could not serve as it is (stale,
 * or the client asked for validation): what a revalidation, or a later
 * stale answer, needs once the read transaction is over. Owned copy. */
typedef struct stored {
    store_key_t key;           /* where the object lives (variant included) */
    uint64_t object_id;
    uint64_t body_len;
    char *meta;                /* the record's metadata blob (malloc'd) */
    size_t meta_len;
} stored_t;

/* One client request from routing to the end of its response. Refcounted:
 * the connection holds one reference until the response ends or the
 * connection dies; each posted wake-up holds one. */
typedef struct preq {
    atomic_int refs;
    proxy_worker_t *pw;
    http_conn_t *c;            /* NULL once the response ended or the connection died */
    http_req_t *req;           /* valid while c is */
    const policy_rule_t *rule; /* the [rule] for this request (or the defaults) */
    const policy_opts_t *popts;
    policy_req_t pol;
    buf_t key;                 /* normalised cache key */
    uint8_t hash[16];          /* of key: the URL's store records share it */
    uint64_t variant;          /* the Vary variant, once known (0 = none / unknown) */
    const char *fwd;           /* Cache-Status fwd= for a forwarded request */
    stored_t *stored;          /* stale object to revalidate or fall back on */
    bool stale_if_error;       /* stored may answer if upstream fails (RFC 5861) */
    /* streaming a body from the store: segments of one response */
    struct serve_plan *plan;
    /* waiting on a fetch */
    fetch_t *f;
    fetch_waiter_t waiter;
    bool collapsed;            /* joined a fetch another request started */
    bool head_sent;
    unsigned interims_seen;    /* interim responses of f already relayed (or skipped) */
} preq_t;

/* What the owner of a fetch works out from the response head, once, for
 * every waiter (fetch owner_data; freed with free()). */
typedef struct resp_info {
    policy_entry_t entry;
    bool stored;               /* being stored */
    bool revalidated;          /* a 304 validated `meta` (the stored object, new headers) */
    const char *detail;        /* why not stored (static), or NULL */
    store_key_t key;           /* revalidated: the object and its version */
    uint64_t object_id;
    size_t block_len;          /* client header block: data[0, block_len) */
    size_t cstatus_len;        /* upstream Cache-Status: data[block_len, +cstatus_len) */
    size_t meta_len;           /* revalidated: new metadata: data[block_len + cstatus_len, +meta_len) */
    size_t own_len;            /* lines only the requesting client gets (Set-Cookie, private="..."
                                * fields of a stored response): after the metadata */
    char data[];
} resp_info_t;

/* proxy.c */
void preq_ref(preq_t *p);
void preq_unref(preq_t *p);
/* The response is over (finished or aborted): drop the fetch and the connection's reference. */
void preq_end(preq_t *p);
/* End the response normally (http_resp_finish) and the request. */
void preq_finish(preq_t *p);
/* Send a generated response (error or control) and end the request. */
void preq_respond(preq_t *p, int status, const char *detail, const char *body);
/* Append our Cache-Status member (after the upstream chain cs, if any). */
void preq_cache_status(preq_t *p, buf_t *h, const char *cs, size_t cslen, const char *params);
/* The key of the collapsing table for p: the URL, or the URL's variant. */
void preq_fetch_key(const preq_t *p, uint8_t out[16]);
int64_t proxy_now(void);
void stored_free(stored_t *s);

/* proxy_lookup.c */
typedef enum lookup_result {
    LOOKUP_SERVED,             /* answered (or being streamed) from the store */
    LOOKUP_SERVED_STALE,       /* answered stale; a background revalidation was started */
    LOOKUP_REVALIDATE,         /* p->stored needs validation upstream */
    LOOKUP_MISS,               /* nothing usable: fetch (p->fwd says why) */
} lookup_result_t;
/* Look p up in the store and answer it if a stored object may be used. */
lookup_result_t lookup_and_serve(preq_t *p);

/* proxy_serve.c: answer p from the stored object obj (inside the reader's
 * open read transaction, which this ends) with metadata m (the record's own,
 * or newer headers from a revalidation). params: our Cache-Status
 * parameters. Handles conditional requests, ranges and HEAD. */
void serve_stored(preq_t *p, const store_obj_t *obj, const object_meta_t *m, const char *params, int64_t age);
/* Answer p from the stored object s->key / s->object_id with metadata m
 * (opens its own read transaction). Returns false (nothing sent) when that
 * version of the object is gone. */
bool serve_stored_copy(preq_t *p, const stored_t *s, const object_meta_t *m, const char *params, int64_t age);
/* Free a serve plan (streaming state). */
void serve_plan_free(struct serve_plan *plan);

/* One upstream fetch, driven on the owner's worker (proxy_job.c for the
 * upstream side, proxy_store.c for storing and revalidation). It outlives
 * the client request that started it (other waiters and the store may
 * still need it), so it is refcounted on its own: one reference while the
 * transfer runs, one per store operation in flight. */
struct fjob {
    atomic_int refs;
    proxy_worker_t *pw;        /* the owner's state: gone once the worker has stopped */
    worker_t *w;               /* the owner: valid as long as the store (worker_group_free) */
    proxy_t *px;
    fjob_t *next, *prev;       /* pw->jobs, while the transfer runs */
    bool linked;
    bool closed;               /* job_close_all ran */
    fetch_t *f;
    upstream_req_t *ureq;
    int method;                /* the client's */
    bool fill;                 /* cache fill (GET upstream) rather than a forwarded request */
    const policy_rule_t *rule;
    const policy_opts_t *popts;
    policy_req_t pol;
    http_fields_t req_hdrs;    /* the primary's request headers (Vary keys, Location checks) */
    http_fields_t up_hdrs;     /* what was sent upstream (kept to fetch again) */
    char *up_path;             /* origin-form path and query sent upstream */
    buf_t body;                /* request body of a forwarded method (kept to retry) */
    pool_t *pool;              /* where the current attempt went */
    int target;                /* index in pool */
    int phase;                 /* of the target order (proxy_job.c next_target) */
    uint32_t tried[2];         /* targets already tried: of the primary, of the fallback */
    bool published;            /* a head reached the fetch: no retry from now on */
    bool retry;                /* this attempt failed: try the next target when it ends */
    char *url;                 /* cache key string */
    size_t url_len;
    uint8_t hash[16];
    int64_t request_time;
    bool storing;
    bool paused;
    uint64_t body_len;         /* body bytes received */
    buf_t meta;                /* encoded object metadata while storing */
    buf_t vary_fields;         /* the response's Vary field names, when it varies */
    uint64_t variant;          /* where the object goes (0: no Vary) */
    stored_t *validate;        /* the object being revalidated (owned copy), or NULL */
    bool updating;             /* a 304's header update is on its way to the store */
    bool restart;              /* a 304 that does not fit: fetch again without validators */
    /* invalidation after an unsafe method holds the head back until the
     * store has dropped the old objects, so no later request can hit one */
    bool held;
    int held_status;
    http_fields_t held_hdrs;
    int64_t held_cl, held_rt;
    resp_info_t *held_info;
    bool done_held;
    int done_err;
    char done_msg[256];
};

void job_ref(fjob_t *j);
void job_unref(fjob_t *j);
/* Publish a response head to the fetch's waiters (hdrs is moved). */
void job_publish(fjob_t *j, int status, http_fields_t *hdrs, int64_t cl, int64_t rt, resp_info_t *ri);

/* Writer-thread callback that releases a head held for invalidation. */
void job_held_release_cb(void *ctx, int status);

/* proxy_store.c */
/* The client-facing view of a response (ri) from its headers; sets
 * j->storing and builds j->meta when it will be stored. */
resp_info_t *store_plan(fjob_t *j, int status, const http_fields_t *hdrs, int64_t cl, int64_t now);
/* A 304 answered the revalidation: update the stored headers and publish
 * the validated object to the waiters. Returns 0, or -1 to abort. */
int store_revalidated(fjob_t *j, const http_fields_t *hdrs, int64_t now);
/* The response is complete: queue the puts (Vary index, object). Returns
 * true when the store took over the job's reference. */
bool store_commit(fjob_t *j);
/* After an unsafe method: queue the deletion of the request URL and its
 * same-host Location / Content-Location. Returns true when the head is held
 * until they commit (the job's held_* fields are then set by the caller). */
bool store_invalidate(fjob_t *j, const http_fields_t *hdrs);

/* proxy_job.c: start driving fetch f for p's request on p's worker.
 * fill: a cache fill (GET upstream, storable); else forward p's request as
 * is. validate: an object to revalidate (conditional request), may be NULL;
 * the job copies what it needs. */
void job_start(preq_t *p, fetch_t *f, bool fill, const stored_t *validate);
/* Cancel every job of the worker (shutdown). */
void job_close_all(proxy_worker_t *pw);

/* proxy_stream.c */
/* Miss path for a cacheable request: join or start the fetch for its key
 * (revalidating p->stored when set). */
void stream_fill(preq_t *p);
/* Forward p on its own, through a private fetch (uncacheable request, a
 * response that could not be shared with it, a client asking for
 * validation). fill: GET upstream and store the result. */
void stream_private(preq_t *p, bool fill);
/* Start a background revalidation of p->stored unless one is in flight
 * (stale-while-revalidate): no client waits on it. */
void stream_background(preq_t *p);

#endif
