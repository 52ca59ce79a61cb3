/* fetch: one upstream response shared by every request waiting for it
 * (request collapsing), across worker threads.
 *
 * A fetch is created by the first request that misses a key (the primary)
 * and is driven by that request's worker (the owner): its upstream
 * callbacks set the headers, append body bytes and finish it. Requests on
 * any worker that miss the same key meanwhile attach as waiters and read
 * the same headers and body, at their own pace, as they arrive.
 *
 * The table keeps a fetch findable from creation until the owner
 * unpublishes it: after its response is committed to the store (so a
 * request arriving between "response complete" and "stored" still joins
 * instead of fetching again), or at once when the response turns out not
 * to be shareable; then every waiter but the primary is told to forward
 * its request on its own (redispatch), never given another client's
 * response.
 *
 * Body bytes live in a list of immutable chunks. While the response is
 * being stored every chunk is kept; otherwise chunks every waiter has
 * consumed are freed, and the owner pauses the upstream when the slowest
 * waiter lags more than FETCH_PASS_WINDOW bytes. */
#ifndef CDN_FETCH_H
#define CDN_FETCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http_fields.h"
#include "worker.h"

#define FETCH_PASS_WINDOW (4u * 1024 * 1024)
/* Interim responses (103 Early Hints) kept for waiters; later ones are dropped. */
#define FETCH_MAX_INTERIM 4

/* fetch_append results. */
#define FETCH_PAUSE 1          /* appended; the owner should pause the upstream */
#define FETCH_ENOMEM (-1)      /* out of memory: nothing appended */

typedef struct fetch fetch_t;
typedef struct fetch_table fetch_table_t;
typedef struct fetch_waiter fetch_waiter_t;

typedef enum fetch_state {
    FETCH_PENDING,   /* no response yet */
    FETCH_HEADERS,   /* status and headers known, body arriving */
    FETCH_DONE,      /* complete */
    FETCH_FAILED,    /* upstream error; see err / errmsg */
} fetch_state_t;

struct fetch_waiter {
    /* Set by the consumer before joining. wake is called (with the fetch
     * locked, from any thread) when there is something new to read; it
     * must only hand the waiter to its worker (worker_post) and return. */
    void (*wake)(fetch_waiter_t *w);
    /* Owned by the fetch; read them only through fetch_read. */
    fetch_waiter_t *next;
    uint64_t off;          /* body bytes consumed */
    bool wake_pending;
    bool redispatch;
};

/* An interim response passed on to waiters before the final head: the
 * status and the upstream's fields as received (hop-by-hop included). */
typedef struct fetch_interim {
    int status;
    http_fields_t hdrs;
} fetch_interim_t;

/* What a waiter sees: a consistent snapshot taken under the fetch's lock.
 * hdrs / req_hdrs are immutable once state >= FETCH_HEADERS and stay valid
 * while the caller holds its reference to the fetch. */
typedef struct fetch_view {
    fetch_state_t state;
    int status;
    const http_fields_t *hdrs;
    const http_fields_t *req_hdrs;   /* the primary's request headers (for Vary) */
    int64_t content_length;          /* -1 when unknown until the end */
    uint64_t avail;                  /* body bytes appended so far */
    bool storing;
    bool redispatch;                 /* forward on your own: not shareable with you */
    int err;
    const char *errmsg;
    int64_t request_time, response_time;
    const void *owner_data;          /* the owner's per-response data (fetch_set_headers) */
    /* Interim responses so far, in order: entries never change once added
     * and stay valid while the caller holds its reference to the fetch. A
     * waiter relays those past the count it already sent. */
    const fetch_interim_t *interim;
    unsigned n_interim;
} fetch_view_t;

/* Table of in-flight fetches shared by all workers. */
fetch_table_t *fetch_table_new(void);
void fetch_table_free(fetch_table_t *t);
/* Unpublish every fetch (a purge: a request arriving after it must not
 * join a fetch that began before it). Their waiters keep reading them.
 * Returns how many were published. */
unsigned fetch_table_unpublish_all(fetch_table_t *t);
/* Number of fetches currently published. */
unsigned fetch_table_size(fetch_table_t *t);

/* Find the published fetch for key and attach w to it, or create and
 * publish a new one owned by the calling worker with w as its primary
 * (*created = true; the caller must then start it). Either way the caller
 * holds one reference (fetch_unref when done) and w is attached. A fetch
 * that failed or stopped being shareable is never joined. */
fetch_t *fetch_join(fetch_table_t *t, const uint8_t key[16], fetch_waiter_t *w, bool *created);
/* Create and publish a fetch for key with no waiter (a background
 * revalidation), unless one is already published: then NULL. The caller
 * holds one reference to what it gets. */
fetch_t *fetch_start_if_absent(fetch_table_t *t, const uint8_t key[16]);
/* A private fetch, not in the table (uncacheable methods, redispatch):
 * w is its only waiter. The caller holds one reference. */
fetch_t *fetch_new_private(fetch_waiter_t *w);
void fetch_ref(fetch_t *f);
void fetch_unref(fetch_t *f);

/* --- owner side (owner worker's thread) --- */

/* Keep a copy of the primary request's headers for Vary checks. */
int fetch_set_request(fetch_t *f, const http_fields_t *req_hdrs, int64_t request_time);
/* Publish the response head. hdrs is moved into the fetch (left empty).
 * shareable: may other waiters use this response? If not, the fetch is
 * unpublished and every waiter but the primary is redispatched. storing:
 * the body will be stored (keep every chunk). owner_data (may be NULL) is
 * kept for waiters to read and freed with free() at the end. */
void fetch_set_headers(fetch_t *f, int status, http_fields_t *hdrs, int64_t content_length,
                       int64_t response_time, bool shareable, bool storing, void *owner_data);
/* Stop keeping chunks for storage (the body grew past the object limit);
 * also unpublishes: a newcomer could not read from the start. */
void fetch_stop_storing(fetch_t *f);
/* Pass an interim response (hdrs is copied) to the waiters: only before
 * fetch_set_headers, and only the first FETCH_MAX_INTERIM. Never stored.
 * Returns 0, or -1 when it was dropped (too late, too many, no memory). */
int fetch_add_interim(fetch_t *f, int status, const http_fields_t *hdrs);
/* Append body bytes: all n of them, or none. Returns 0; FETCH_PAUSE when
 * the owner should pause the upstream (not storing, and the slowest waiter
 * is a window behind); FETCH_ENOMEM when memory ran out: nothing of p was
 * appended, and the owner must fail the fetch (fetch_finish with an error)
 * and not store it, since its body would be short. */
int fetch_append(fetch_t *f, const void *p, size_t n);
/* End: err 0 = complete, else failed with msg. */
void fetch_finish(fetch_t *f, int err, const char *msg);
/* Remove from the table: later requests will not join. Idempotent. */
void fetch_unpublish(fetch_t *f);
/* Number of attached waiters. */
unsigned fetch_waiters(fetch_t *f);
/* Called (on the owner's thread, via worker_post) when a waiter that had
 * fallen behind caught up and a paused upstream may resume. */
void fetch_set_resume(fetch_t *f, worker_t *owner, void (*resume)(void *arg), void *arg);
/* The owner stopped driving the fetch (its request ended); resume requests
 * are dropped from now on. */
void fetch_clear_resume(fetch_t *f);
/* Copy body bytes [off, off+n) (all appended, fetch complete) into dst.
 * Any thread; used by the store writer. */
void fetch_copy_body(fetch_t *f, uint64_t off, void *dst, size_t n);

/* For tests only: the allocator of body chunks, malloc unless a test
 * points it at one that fails, to reach fetch_append's out-of-memory path.
 * Not synchronised: set it only while no fetch is being appended to. */
extern void *(*fetch_test_chunk_alloc)(size_t size);

/* --- waiter side (the waiter's worker thread) --- */

/* Snapshot the state and the readable body span from w's offset: up to
 * max_iov pointers into chunks, valid until fetch_consumed for them.
 * Clears w's pending wake. Returns the number of spans. */
unsigned fetch_read(fetch_t *f, fetch_waiter_t *w, fetch_view_t *view, uv_buf_t *iov, unsigned max_iov);
/* Mark n more bytes consumed (after writing them out). */
void fetch_consumed(fetch_t *f, fetch_waiter_t *w, uint64_t n);
/* Detach w: no wake afterwards. Idempotent. */
void fetch_detach(fetch_t *f, fetch_waiter_t *w);

#endif
