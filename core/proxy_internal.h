/* Shared by the proxy's files: proxy.c (set-up, routing, control paths),
 * proxy_hit.c (answers from the store), proxy_job.c (driving an upstream
 * fetch and storing its response) and proxy_stream.c (sending a fetch's
 * response to a waiting client). Not a public header. */
#ifndef CDN_PROXY_INTERNAL_H
#define CDN_PROXY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "fetch.h"
#include "http_server.h"
#include "policy_cache.h"
#include "proxy.h"
#include "store.h"
#include "upstream.h"
#include "worker.h"

struct proxy {
    const config_t *cfg;
    store_t *store;
    fetch_table_t *fetches;
    policy_opts_t popts;
    worker_hooks_t hooks;
    char origin[512];          /* origin base URL without a trailing '/' */
    char via[96];              /* our Via member: "1.1 NAME" */
    char error_headers[256];   /* on errors the HTTP server answers itself */
};

typedef struct fjob fjob_t;

typedef struct proxy_worker {
    proxy_t *px;
    worker_t *w;
    http_server_t *srv;
    upstream_t *up;
    store_reader_t *rd;
    uv_timer_t tick;           /* hands LRU touches to the store writer */
    fjob_t *jobs;              /* upstream fetches this worker drives */
} proxy_worker_t;

/* One client request from routing to the end of its response. Refcounted:
 * the connection holds one reference until the response ends or the
 * connection dies; each posted wake-up holds one. */
typedef struct preq {
    atomic_int refs;
    proxy_worker_t *pw;
    http_conn_t *c;            /* NULL once the response ended or the connection died */
    http_req_t *req;           /* valid while c is */
    policy_req_t pol;
    buf_t key;                 /* normalised cache key */
    uint8_t hash[16];
    const char *fwd;           /* Cache-Status fwd= for a forwarded request */
    /* streaming a chunked body from the store */
    uint64_t object_id;
    uint32_t chunk, nchunks;
    /* waiting on a fetch */
    fetch_t *f;
    fetch_waiter_t waiter;
    bool collapsed;            /* joined a fetch another request started */
    bool head_sent;
} preq_t;

/* What the owner of a fetch works out from the response head, once, for
 * every waiter (fetch owner_data; freed with free()). */
typedef struct resp_info {
    policy_entry_t entry;
    bool stored;               /* being stored */
    const char *detail;        /* why not stored (static), or NULL */
    size_t block_len;          /* client header block: data[0, block_len) */
    size_t cstatus_len;        /* upstream Cache-Status: data[block_len, +cstatus_len) */
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
int64_t proxy_now(void);

/* proxy_hit.c: serve p from the store if a usable object is there.
 * Returns true when the request was answered (or is being streamed). */
bool hit_try(preq_t *p);

/* proxy_job.c: start driving fetch f for p's request on p's worker.
 * fill: a cache fill (GET upstream, storable); else forward p's request as is. */
void job_start(preq_t *p, fetch_t *f, bool fill);
/* Cancel every job of the worker (shutdown). */
void job_close_all(proxy_worker_t *pw);

/* proxy_stream.c: miss path for a cacheable request: join or start the fetch for its key. */
void stream_fill(preq_t *p);
/* Forward p on its own, through a private fetch (uncacheable request, or
 * a response that could not be shared with it). */
void stream_private(preq_t *p, bool fill);

#endif
