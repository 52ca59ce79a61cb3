/* worker: N threads, each with its own libuv loop and SO_REUSEPORT listener.
 *
 * A connection lives and dies on the worker that accepted it. Work for
 * another worker (a fetch result for a collapsed waiter, say) is handed
 * over with worker_post(), which runs a function on that worker's loop. */
#ifndef CDN_WORKER_H
#define CDN_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"

typedef struct worker worker_t;
typedef struct worker_group worker_group_t;
typedef void (*worker_fn)(void *arg);

typedef struct worker_hooks {
    /* Called on each worker's thread before it accepts; returns per-worker
     * state (kept by the worker, given back to fini) or NULL on failure. */
    void *(*init)(worker_t *w, void *ud);
    /* Shutdown, in three steps, all on the worker's thread:
     * stopping: the listener is closed; finish in-flight requests, close
     *   idle connections (may be NULL);
     * close: once connections drained (or after the drain timeout), close
     *   every handle the state owns so the loop can end;
     * fini: the loop has ended; free the state. */
    void (*stopping)(worker_t *w, void *state, void *ud);
    void (*close)(worker_t *w, void *state, void *ud);
    void (*fini)(worker_t *w, void *state, void *ud);
    /* A new TCP connection (already accepted) to adopt. */
    void (*on_connection)(worker_t *w, uv_tcp_t *listener);
    void *ud;
    /* On the main thread (the one in worker_group_run), may be NULL:
     * draining: SIGTERM (or SIGINT) arrived; the node will stop accepting
     *   after its drain delay (health should answer 503 from now on);
     * reload: SIGHUP arrived; re-read the configuration. */
    void (*draining)(void *ud);
    void (*reload)(void *ud);
} worker_hooks_t;

/* Bind the listeners (host:port, port 0 = ephemeral, shared by all workers)
 * and start n threads. Returns 0 or a negative uv error with a message in err. */
int worker_group_start(worker_group_t **out, const char *listen, unsigned n,
                       const worker_hooks_t *hooks, char *err, size_t errlen);
/* The bound address as "HOST:PORT"; valid for the group's life. */
const char *worker_group_address(const worker_group_t *g);
/* The shutdown's two waits (call before worker_group_run; defaults 0 and
 * 5000 ms): after SIGTERM the group keeps accepting for delay_ms, then
 * closes its listeners and gives open connections up to timeout_ms. */
void worker_group_set_drain(worker_group_t *g, uint64_t delay_ms, uint64_t timeout_ms);
/* Handle signals on this thread until the group has stopped, then join the
 * threads:
 * - SIGTERM (or worker_group_drain): hooks.draining runs at once and
 *   responses carry Connection: close; after the drain delay the listeners
 *   close; open connections get the drain timeout, then are closed;
 * - SIGINT (or worker_group_stop): the same without the drain delay;
 * - a second SIGTERM/SIGINT (or call) while stopping: stop now;
 * - SIGHUP: hooks.reload, or a warning when it is NULL (never fatal).
 * Each phase is logged. Afterwards SIGINT/SIGTERM/SIGHUP are ignored, so
 * the caller's clean-up (the store's flush) runs to its end. Posting to a
 * stopped worker fails cleanly (-ESHUTDOWN) until worker_group_free, so
 * free the group only after everything that might still post to it (the
 * store's writer thread) has stopped. */
void worker_group_run(worker_group_t *g);
/* Free a group that has run. */
void worker_group_free(worker_group_t *g);
/* Ask the group to stop as SIGINT does (thread-safe, async-signal-unsafe). */
void worker_group_stop(worker_group_t *g);
/* Ask the group to drain as SIGTERM does (thread-safe, async-signal-unsafe). */
void worker_group_drain(worker_group_t *g);
/* The number of workers a group started with n gets (n, or the cores
 * when n is 0). */
unsigned worker_count_for(unsigned n);
/* Number of workers and the i-th one. */
unsigned worker_group_count(const worker_group_t *g);
worker_t *worker_group_at(const worker_group_t *g, unsigned i);

/* Run fn(arg) on w's loop thread, in posting order. Thread-safe. Returns 0,
 * or -ESHUTDOWN when w is shutting down, -ENOMEM when out of memory (fn
 * is then never called). */
int worker_post(worker_t *w, worker_fn fn, void *arg);
/* The loop of w; use only on w's thread. */
uv_loop_t *worker_loop(worker_t *w);
/* The state init returned. */
void *worker_state(worker_t *w);
/* Index of w within its group. */
unsigned worker_index(const worker_t *w);
/* The worker running on this thread, or NULL. */
worker_t *worker_current(void);
/* True once shutdown has begun on w (new requests should close). */
bool worker_stopping(const worker_t *w);
/* True once the group drains or stops (any thread): responses should carry
 * Connection: close so clients move to another node. */
bool worker_draining(const worker_t *w);
/* The thread's access-log buffer (flushed on a timer and at stop). */
buf_t *worker_log_buf(worker_t *w);
/* Count of open connections on w (maintained by the server, on w's
 * thread; readable from any); shutdown waits for it to reach 0 (or the
 * drain timeout) before calling close. */
void worker_conn_add(worker_t *w, int delta);
unsigned worker_conn_count(const worker_t *w);
/* Wall-clock time in microseconds. */
uint64_t worker_now_us(void);

#endif
