/* Shared by worker.c (threads, loops, posting, a worker's own stop) and
 * worker_stop.c (the main thread: signals and the phases of a shutdown).
 * Not a public header: nothing else may include it. */
#ifndef CDN_WORKER_INTERNAL_H
#define CDN_WORKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "worker.h"

/* Defaults for a group whose owner never calls worker_group_set_drain
 * (bin/origin, tests): no delay, and 5 s for in-flight requests. */
#define DEFAULT_DRAIN_TIMEOUT_MS 5000

typedef struct post_msg {
    struct post_msg *next;
    worker_fn fn;
    void *arg;
} post_msg_t;

struct worker {
    worker_group_t *group;
    unsigned index;
    pthread_t thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    int listen_fd;
    uv_async_t wakeup;
    uv_timer_t timer;          /* access-log flush, and drain polling at stop */
    pthread_mutex_t mu;
    post_msg_t *head, *tail;   /* posted work, guarded by mu */
    bool closed_to_posts;      /* guarded by mu */
    atomic_bool stopping;
    bool finished;             /* finish_stop ran (or init failed) */
    atomic_uint conns;         /* written by this worker, read by the main thread's logs */
    void *state;
    buf_t logbuf;
    int init_rc;
    uv_sem_t ready;
};

/* The main thread's view of a shutdown, one step at a time. */
typedef enum group_phase {
    GROUP_RUNNING,   /* accepting */
    GROUP_DRAINING,  /* SIGTERM: still accepting for the drain delay, health 503 */
    GROUP_STOPPING,  /* listeners closed; in-flight requests get the drain timeout */
    GROUP_FORCING,   /* timeout or a second signal: what is left is closed */
} group_phase_t;

struct worker_group {
    unsigned n;
    worker_t *w;
    worker_hooks_t hooks;
    char address[80];
    uint64_t drain_delay_ms, drain_timeout_ms;
    atomic_bool draining;      /* set by the main thread, read by workers */
    atomic_uint stop_asks, drain_asks; /* worker_group_stop/drain calls, any thread */
    atomic_uint done;          /* workers whose loop has ended */
    atomic_uint conns_cut;     /* connections closed by the timeout */
    /* Main thread only: */
    group_phase_t phase;
    unsigned stop_seen, drain_seen;
    uint64_t phase_start_ms;
    uv_loop_t main_loop;
    uv_async_t stop_async, done_async;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t phase_timer;
};

/* On the worker (posted by the main thread): close the listener and let
 * in-flight requests end (arg: the worker). */
void worker__stop_begin(void *arg);
/* On the worker: close what is left now (the drain timeout ended). */
void worker__stop_force(void *arg);
/* uv_walk callback: close a handle unless it is closing. */
void worker__close_handle(uv_handle_t *h, void *arg);
/* Set up the main thread's loop: the stop/done wakeups, the phase timer
 * and the SIGINT/SIGTERM/SIGHUP handlers (before any thread starts). */
void worker_group__init_main(worker_group_t *g);

#endif
