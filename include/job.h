/* job: one upstream fetch, driven on the owner's worker (core/job.c for
 * the upstream side and the state machine, core/job_store.c for storing,
 * revalidation and invalidation). It outlives the client request that
 * started it (other waiters and the store may still need it), so it is
 * refcounted on its own: one reference while the transfer runs, one per
 * store operation in flight.
 *
 * Its life is one state (job_state_t); the legal transitions are one
 * table in job.c, and each state has one step function that returns the
 * next. See the diagram in docs/ARCHITECTURE.md. */
#ifndef CDN_JOB_H
#define CDN_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "fetch.h"
#include "http_fields.h"
#include "lookup.h"
#include "policy_cache.h"
#include "policy_rules.h"
#include "pool.h"
#include "proxy_state.h"
#include "upstream.h"

typedef enum job_kind {
    JOB_FILL,                  /* a cache fill: GET upstream, storable */
    JOB_FORWARD,               /* the client's request as it is: never stored */
} job_kind_t;

typedef enum job_state {
    JOB_CONNECT,               /* send the request to the next target (job_target order) */
    JOB_HEAD,                  /* the request is out: waiting for the response head */
    JOB_RETRY,                 /* a 5xx was dropped: the next target gets the request once this transfer ends */
    JOB_RESTART,               /* a 304 fit no stored object: fetch whole once this transfer ends */
    JOB_HELD,                  /* after an unsafe method: the head waits for the invalidations to commit */
    JOB_HELD_ENDED,            /* ... and the transfer ended meanwhile */
    JOB_STREAM_STORE,          /* the body flows to the waiters and is kept for the store */
    JOB_STREAM_PASS,           /* the body flows to the waiters only */
    JOB_REVALIDATED,           /* a 304 freshened the stored object (its header update is queued) */
    JOB_COMMIT,                /* complete: the store writes it, unless a purge since start_seq matches */
    JOB_DONE,                  /* over: the fetch is finished and unpublished */
    JOB_CLOSED,                /* the worker shut down under it */
    JOB_STATE_COUNT
} job_state_t;

/* What the owner of a fetch works out from the response head, once, for
 * every waiter (fetch owner_data; freed with free()). */
typedef struct resp_info {
    policy_entry_t entry;
    bool stored;               /* being stored */
    bool revalidated;          /* a 304 validated `meta` (the stored object, new headers) */
    const char *detail;        /* why not stored (static), or NULL */
    const char *upstream;      /* the target that answered (proxy_metrics_target's copy: node's life), or NULL */
    uint64_t upstream_us;      /* from sending the request to this head */
    store_key_t key;           /* revalidated: the object and its version */
    uint64_t object_id;
    size_t block_len;          /* client header block: data[0, block_len) */
    size_t cstatus_len;        /* upstream Cache-Status: data[block_len, +cstatus_len) */
    size_t meta_len;           /* revalidated: new metadata: data[block_len + cstatus_len, +meta_len) */
    size_t own_len;            /* lines only the requesting client gets (Set-Cookie, private="..."
                                * fields of a stored response): after the metadata */
    char data[];
} resp_info_t;

/* A resp_info_t holding the client header block, the upstream's
 * Cache-Status, room for meta_len bytes of metadata (the caller fills
 * data[block.len + cs.len, +meta_len)) and the lines only the requesting
 * client gets; entry and flags zeroed. NULL when out of memory. */
resp_info_t *resp_info_new(http_slice_t block, http_slice_t cs, size_t meta_len, http_slice_t own);

struct fjob {
    atomic_int refs;
    job_state_t state;         /* change only through job.c's set_state */
    job_kind_t kind;
    proxy_worker_t *pw;        /* the owner's state: gone once the worker has stopped */
    worker_t *w;               /* the owner: valid as long as the store (worker_group_free) */
    proxy_t *px;
    fjob_t *next, *prev;       /* pw->jobs, while the transfer runs */
    fetch_t *f;
    upstream_req_t *ureq;      /* the running transfer, or NULL */
    int method;                /* the client's */
    proxy_conf_t *conf;        /* the generation rule, popts and pool point into (held) */
    const policy_rule_t *rule;
    const policy_opts_t *popts;
    policy_req_t pol;
    http_fields_t req_hdrs;    /* the primary's request headers (Vary keys, Location checks) */
    http_fields_t up_hdrs;     /* what was sent upstream (kept to fetch again) */
    char *up_path;             /* origin-form path and query sent upstream */
    buf_t body;                /* request body of a forwarded method (kept to retry) */
    pool_t *pool;              /* where the current attempt went */
    int target;                /* index in pool */
    int phase;                 /* of the target order (job.c next_target) */
    uint32_t tried[2];         /* targets already tried: of the primary, of the fallback */
    char *url;                 /* cache key string */
    size_t url_len;
    uint8_t hash[16];
    int64_t request_time;
    uint64_t start_seq;        /* the store's purge sequence when the job started (a purge after it wins) */
    buf_t tags;                /* the response's tags ("tag\n" lines) while storing */
    uint64_t body_len;         /* body bytes received */
    buf_t meta;                /* encoded object metadata while storing */
    buf_t vary_fields;         /* the response's Vary field names, when it varies */
    uint64_t variant;          /* where the object goes (0: no Vary) */
    stored_t *validate;        /* the object being revalidated (owned copy), or NULL */
    /* JOB_HELD: the head waiting for the invalidations */
    struct {
        int status;
        http_fields_t hdrs;
        int64_t cl, rt;
        resp_info_t *info;
    } held;
    /* the current attempt, for metrics and the access log */
    uint64_t sent_us;          /* when it was sent (worker_now_us) */
    const char *up_name;       /* its target's name (proxy_metrics_target: node's life) */
    unsigned up_slot;          /* its target's metric slot */
    uint64_t up_us;            /* sending to the response head */
    /* how the transfer ended, for JOB_DONE (and JOB_HELD_ENDED) */
    int end_err;
    char end_msg[256];
};

/* Start driving fetch f for p's request on p's worker. kind: a cache
 * fill, or p's request forwarded as is. validate: an object to revalidate
 * (conditional request), may be NULL; the job copies what it needs. On
 * failure the fetch is finished with the error (its waiters answer). */
void job_start(preq_t *p, fetch_t *f, job_kind_t kind, const stored_t *validate);
/* Cancel every job of the worker (shutdown). */
void job_close_all(proxy_worker_t *pw);
void job_ref(fjob_t *j);
void job_unref(fjob_t *j);
/* Publish a response head to the fetch's waiters (hdrs is moved). */
void job_publish(fjob_t *j, int status, http_fields_t *hdrs, int64_t cl, int64_t rt, resp_info_t *ri);
/* Writer-thread callback of the last invalidation: the held head may go. */
void job_held_release_cb(void *ctx, int status);
/* The state's name, for logs and tests. */
const char *job_state_name(job_state_t s);
/* True when the table allows a job to go from `from` to `to`. */
bool job_state_legal(job_state_t from, job_state_t to);

/* --- job_request.c: the request sent upstream --- */

/* Build j's upstream request from p's: the headers (see job_request.c),
 * the origin-form path and, for a forwarded method, the body (kept to
 * retry). Returns 0 or a negative errno. */
int job_request_build(fjob_t *j, const preq_t *p);

/* --- job_target.c: where each attempt goes, and what its outcome says --- */

/* Choose the next target for j (see job_target.c for the order) and make
 * it the current one (j->pool, j->target). False when every target was
 * tried. */
bool job_target_next(fjob_t *j);
/* Would job_target_next find one? */
bool job_target_left(const fjob_t *j);
/* Start the order again (a new request, not a retry). */
void job_target_reset(fjob_t *j);
/* How many targets this request has been sent to. */
int job_target_tries(const fjob_t *j);
/* Report the current attempt's outcome to its pool (logging a change). */
void job_target_report(fjob_t *j, pool_result_t r, const char *why);
/* Does an answer with this status say the current target is broken? */
bool job_target_answer_fails(const fjob_t *j, int status);

#endif
