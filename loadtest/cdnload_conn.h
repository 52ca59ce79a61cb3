/* cdnload_conn: one keep-alive HTTP/1.1 client connection of the load
 * generator, on a libuv loop, responses parsed by llhttp.
 *
 * One request at a time (a closed-loop client waits for its answer).
 * The connection opens on the first request and again after the server
 * closed it; a request that cannot be answered ends with an error kind.
 * A body can be checked on the fly against the demo origin's content
 * (synth_compare), so nothing is buffered: a mismatch names the URL. */
#ifndef CDN_CDNLOAD_CONN_H
#define CDN_CDNLOAD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "cdnload_stats.h"

typedef enum {
    CDNLOAD_OK,
    CDNLOAD_ERR_CONNECT,       /* could not connect */
    CDNLOAD_ERR_RESET,         /* closed or reset before the response ended */
    CDNLOAD_ERR_TIMEOUT,       /* no complete response within the timeout */
    CDNLOAD_ERR_PARSE,         /* not HTTP/1.1 as expected */
} cdnload_err_t;

typedef struct cdnload_result {
    cdnload_err_t err;
    int status;
    uint64_t bytes;            /* body bytes received */
    uint64_t latency_us;       /* from sending to the end of the response */
    cdnload_at_t at;           /* from Cache-Status */
    bool mismatch;             /* the body differs from the origin's (checked requests) */
    uint64_t body_hash;        /* FNV-1a 64 of the body (CDNLOAD_HASH_BODY requests) */
    uint64_t mismatch_at;      /* its first differing offset (or the length, when short/long) */
} cdnload_result_t;

/* check_len values besides a length: check nothing, or hash the body
 * (an image variant: its bytes are libvips', compared between copies). */
#define CDNLOAD_NO_CHECK (-1)
#define CDNLOAD_HASH_BODY (-2)

typedef struct cdnload_conn cdnload_conn_t;
/* Called once per request, on the loop thread; the connection may be
 * given its next request from inside. */
typedef void (*cdnload_done_fn)(void *ud, cdnload_conn_t *c, const cdnload_result_t *r);

/* A connection to addr, from source address src (NULL: the kernel's
 * choice; an abusive client has its own 127.x address). timeout_ms bounds
 * each request. Returns NULL when out of memory. */
cdnload_conn_t *cdnload_conn_new(uv_loop_t *loop, const struct sockaddr *addr, const struct sockaddr *src,
                                 uint64_t timeout_ms, cdnload_done_fn done, void *ud);
/* Send one request: the head's first line and Host, plus extra header
 * lines ("Name: v\r\n", may be NULL) and a body (may be NULL). check_len
 * >= 0: a 200's body must be exactly the origin's content for the
 * target's path, that long. Returns 0, or -EBUSY while a request runs. */
int cdnload_conn_send(cdnload_conn_t *c, const char *method, const char *target, const char *host,
                      const char *extra, const char *body, size_t body_len, int64_t check_len);
/* Send the next requests to addr instead (the open connection, if any,
 * is closed). Only between requests. */
void cdnload_conn_retarget(cdnload_conn_t *c, const struct sockaddr *addr);
/* Close (a request running ends with CDNLOAD_ERR_RESET, not reported)
 * and free once libuv is done with the handles. */
void cdnload_conn_close(cdnload_conn_t *c);
/* The target of the request running (or last run): for messages. */
const char *cdnload_conn_target(const cdnload_conn_t *c);
/* The last response's Cache-Status value ("" when none): for messages. */
const char *cdnload_conn_cache_status(const cdnload_conn_t *c);
/* Keep every response's body (up to 1 MiB; the rest is dropped) for
 * cdnload_conn_body: for control answers (purges, the origin's stats),
 * never for the load itself. */
void cdnload_conn_keep_bodies(cdnload_conn_t *c);
/* The last response's kept body, NUL-terminated ("" when not kept). */
const char *cdnload_conn_body(const cdnload_conn_t *c, size_t *len);

#endif
