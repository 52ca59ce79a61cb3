/* task_pool: a bounded pool of threads for work that must never run on an
 * event loop thread (image transforms of issue 11: 10-500 ms each).
 *
 * Bounded twice: a fixed number of threads, and at most queue_max tasks
 * waiting for one of them. A submit past the bound is refused at once
 * (-EBUSY) rather than queued, so the caller can answer 503 with
 * Retry-After instead of letting latency grow without limit. Tasks start in
 * submission order (FIFO). Each accepted task runs exactly once, or, when
 * the pool is freed before a thread took it, its cancel function runs
 * instead, so whoever owns the task's argument can always release it.
 *
 * The pool knows nothing of loops: a task that must answer on a loop posts
 * its result back itself (worker_post). */
#ifndef CDN_TASK_POOL_H
#define CDN_TASK_POOL_H

#include <stdint.h>

typedef struct task_pool task_pool_t;
typedef void (*task_fn)(void *arg);

/* Upper bounds of task_pool_new's arguments (the queue is allocated up
 * front: no allocation on submit). */
#define TASK_POOL_MAX_THREADS 1024u
#define TASK_POOL_MAX_QUEUE 65536u

/* Start `threads` (1..TASK_POOL_MAX_THREADS) threads named "NAME-0",
 * "NAME-1"... (name cut to fit the kernel's 15 bytes; NULL = "pool"),
 * each with at least an 8 MiB stack (libvips recurses deeply). queue_max
 * (0..TASK_POOL_MAX_QUEUE) bounds the tasks that may wait when every thread
 * is busy; running tasks do not count, so threads + queue_max tasks may be
 * in the pool at once. Returns 0 with the pool in *out (free it with
 * task_pool_free), -EINVAL for a bound out of range, -ENOMEM, or the
 * negative error of pthread_create (nothing is left running). */
int task_pool_new(task_pool_t **out, unsigned threads, unsigned queue_max, const char *name);

/* Queue fn(arg) to run on a pool thread. Thread-safe; a task may submit.
 * Returns 0, then exactly one of fn(arg) (on a pool thread) and cancel(arg)
 * (on the thread freeing the pool) runs later; or, with neither ever
 * called: -EBUSY when the pool is full (every thread busy and queue_max
 * tasks waiting: answer 503), -ESHUTDOWN once task_pool_free has begun.
 * cancel may be NULL when the task holds nothing to release. */
int task_pool_submit(task_pool_t *p, task_fn fn, task_fn cancel, void *arg);

/* Stop the pool: refuse new tasks, call cancel (in FIFO order, on this
 * thread) for every task still waiting, let running tasks finish, join the
 * threads and free the pool. Blocks while a task runs. Never call it from a
 * task (a thread cannot join itself). NULL-safe. */
void task_pool_free(task_pool_t *p);

/* A consistent snapshot, for metrics and tests. */
typedef struct task_pool_stats {
    unsigned waiting;   /* accepted, not yet taken by a thread */
    unsigned running;   /* taken by a thread, fn not yet returned */
    uint64_t done;      /* fn returned (cancelled tasks are not counted) */
    uint64_t refused;   /* submits that got -EBUSY */
} task_pool_stats_t;
void task_pool_stats(task_pool_t *p, task_pool_stats_t *out);

#endif
