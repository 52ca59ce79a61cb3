/* task_pool: every accepted task runs once on a pool thread, in FIFO order;
 * the bound refuses (and counts) what would wait past queue_max; freeing
 * cancels what waits while a running task finishes; stats are exact at the
 * points the tests control. Tasks block on gates the test opens: no sleep
 * synchronises anything, and every wait has a timeout so that a broken
 * pool fails the test instead of hanging it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "task_pool.h"

#define WAIT_MS 10000 /* bound on every wait: only reached when the pool is broken */

/* Checks on pool threads (Criterion's asserts belong to the test's thread). */
static atomic_int violations, violation_line;
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond))                                                                      \
            atomic_fetch_add(&violations, 1), atomic_store(&violation_line, __LINE__);   \
    } while (0)

static void assert_no_violation(void)
{
    cr_assert_eq(atomic_load(&violations), 0, "a check on a pool thread failed (line %d)",
                 atomic_load(&violation_line));
}

/* A counter that threads wait on, with a timed wait. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
} gate_t;

static void gate_init(gate_t *g)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &a);
    pthread_condattr_destroy(&a);
    pthread_mutex_init(&g->mu, NULL);
    g->n = 0;
}

static void gate_add(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->n++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Wait until the gate has counted n; false after WAIT_MS. */
static bool gate_wait(gate_t *g, int n)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += WAIT_MS / 1000;
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    while (g->n < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &t);
    bool ok = g->n >= n;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static task_pool_t *pool;
static gate_t started, release, finished, cancelled;

static void init_gates(void)
{
    gate_init(&started);
    gate_init(&release);
    gate_init(&finished);
    gate_init(&cancelled);
}

/* Holds its thread until the test opens `release`. */
static void blocker(void *arg)
{
    gate_add(&started);
    CHECK(gate_wait(&release, 1));
    gate_add(&finished);
}

static void must_not_run(void *arg)
{
    CHECK(!"a refused or cancelled task ran");
}

static task_pool_stats_t stats(void)
{
    task_pool_stats_t s;
    task_pool_stats(pool, &s);
    return s;
}

#define N_MANY 1000
static atomic_int runs[N_MANY];
static pthread_t main_thread;

static void count_run(void *arg)
{
    char name[16] = "";
    atomic_fetch_add(&runs[(intptr_t)arg], 1);
    CHECK(!pthread_equal(pthread_self(), main_thread));
    pthread_getname_np(pthread_self(), name, sizeof name);
    CHECK(strncmp(name, "many-", 5) == 0);
    gate_add(&finished);
}

Test(task_pool, runs_every_task_once_on_pool_threads)
{
    init_gates();
    main_thread = pthread_self();
    cr_assert_eq(task_pool_new(&pool, 4, N_MANY, "many"), 0);
    for (intptr_t i = 0; i < N_MANY; i++)
        cr_assert_eq(task_pool_submit(pool, count_run, must_not_run, (void *)i), 0);
    cr_assert(gate_wait(&finished, N_MANY));
    task_pool_free(pool);
    for (int i = 0; i < N_MANY; i++)
        cr_assert_eq(atomic_load(&runs[i]), 1, "task %d ran %d times", i, atomic_load(&runs[i]));
    assert_no_violation();
}

#define N_FIFO 100
static int order[N_FIFO], n_order;

/* With one thread, everything before this task has fully finished. */
static void record_order(void *arg)
{
    int i = (int)(intptr_t)arg;
    task_pool_stats_t s = stats();
    CHECK(s.running == 1);
    CHECK(s.waiting == (unsigned)(N_FIFO - 1 - i)); /* all were queued before the blocker let go */
    CHECK(s.done == (uint64_t)i + 1);               /* the blocker and the i before */
    order[n_order++] = i;
    gate_add(&finished);
}

Test(task_pool, fifo_with_one_thread)
{
    init_gates();
    cr_assert_eq(task_pool_new(&pool, 1, N_FIFO, "fifo"), 0);
    cr_assert_eq(task_pool_submit(pool, blocker, NULL, NULL), 0);
    cr_assert(gate_wait(&started, 1));
    for (intptr_t i = 0; i < N_FIFO; i++)
        cr_assert_eq(task_pool_submit(pool, record_order, NULL, (void *)i), 0);
    cr_assert_eq(stats().waiting, N_FIFO);
    gate_add(&release);
    cr_assert(gate_wait(&finished, 1 + N_FIFO));
    task_pool_free(pool);
    cr_assert_eq(n_order, N_FIFO);
    for (int i = 0; i < N_FIFO; i++)
        cr_assert_eq(order[i], i);
    assert_no_violation();
}

static void quick(void *arg)
{
    gate_add(&finished);
}

Test(task_pool, queue_bound_refuses_and_counts)
{
    init_gates();
    cr_assert_eq(task_pool_new(&pool, 1, 2, "bound"), 0);
    cr_assert_eq(task_pool_submit(pool, blocker, NULL, NULL), 0);
    cr_assert(gate_wait(&started, 1));
    task_pool_stats_t s = stats();
    cr_assert(s.running == 1 && s.waiting == 0 && s.done == 0 && s.refused == 0);

    cr_assert_eq(task_pool_submit(pool, quick, must_not_run, NULL), 0);
    cr_assert_eq(task_pool_submit(pool, quick, must_not_run, NULL), 0);
    s = stats();
    cr_assert(s.running == 1 && s.waiting == 2 && s.refused == 0);
    /* the thread is busy and queue_max tasks wait: refused, nothing queued */
    cr_assert_eq(task_pool_submit(pool, must_not_run, must_not_run, NULL), -EBUSY);
    cr_assert_eq(task_pool_submit(pool, must_not_run, must_not_run, NULL), -EBUSY);
    s = stats();
    cr_assert(s.running == 1 && s.waiting == 2 && s.refused == 2 && s.done == 0);

    gate_add(&release);
    cr_assert(gate_wait(&finished, 3)); /* the blocker and both queued tasks */
    task_pool_free(pool);
    assert_no_violation();
}

Test(task_pool, queue_max_zero_takes_only_idle_threads)
{
    init_gates();
    cr_assert_eq(task_pool_new(&pool, 2, 0, "zero"), 0);
    /* Both accepted before either thread has woken: each has a thread. */
    cr_assert_eq(task_pool_submit(pool, blocker, NULL, NULL), 0);
    cr_assert_eq(task_pool_submit(pool, blocker, NULL, NULL), 0);
    cr_assert_eq(task_pool_submit(pool, must_not_run, NULL, NULL), -EBUSY);
    cr_assert(gate_wait(&started, 2));
    task_pool_stats_t s = stats();
    cr_assert(s.running == 2 && s.waiting == 0 && s.refused == 1);
    gate_add(&release);
    cr_assert(gate_wait(&finished, 2));
    task_pool_free(pool);
    assert_no_violation();
}

/* Both tasks wait for each other: passes only when two threads run them
 * at once (with one, the first times out instead of deadlocking). */
static gate_t arrived;
static atomic_int met;

static void rendezvous(void *arg)
{
    gate_add(&arrived);
    if (gate_wait(&arrived, 2))
        atomic_fetch_add(&met, 1);
    gate_add(&finished);
}

Test(task_pool, two_threads_run_two_tasks_at_once)
{
    init_gates();
    gate_init(&arrived);
    cr_assert_eq(task_pool_new(&pool, 2, 0, "pair"), 0);
    cr_assert_eq(task_pool_submit(pool, rendezvous, NULL, NULL), 0);
    cr_assert_eq(task_pool_submit(pool, rendezvous, NULL, NULL), 0);
    cr_assert(gate_wait(&finished, 2));
    cr_assert_eq(atomic_load(&met), 2);
    task_pool_free(pool);
}

#define N_CANCEL 3
static int cancel_order[N_CANCEL], n_cancel;
static pthread_t freer;
static atomic_int cancel_on_freer;

static void record_cancel(void *arg)
{
    if (pthread_equal(pthread_self(), freer))
        atomic_fetch_add(&cancel_on_freer, 1);
    cancel_order[n_cancel++] = (int)(intptr_t)arg;
    gate_add(&cancelled);
}

static void *free_pool(void *arg)
{
    task_pool_free(pool);
    return NULL;
}

Test(task_pool, free_cancels_waiting_while_running_finishes)
{
    init_gates();
    cr_assert_eq(task_pool_new(&pool, 1, N_CANCEL, "free"), 0);
    cr_assert_eq(task_pool_submit(pool, blocker, must_not_run, NULL), 0);
    cr_assert(gate_wait(&started, 1));
    for (intptr_t i = 0; i < N_CANCEL; i++)
        cr_assert_eq(task_pool_submit(pool, must_not_run, record_cancel, (void *)i), 0);

    cr_assert_eq(pthread_create(&freer, NULL, free_pool, NULL), 0);
    /* Every waiting task is cancelled while the blocker still runs, so the
     * pool is still there and free has certainly begun: submits now fail. */
    cr_assert(gate_wait(&cancelled, N_CANCEL));
    cr_assert_eq(task_pool_submit(pool, must_not_run, must_not_run, NULL), -ESHUTDOWN);
    task_pool_stats_t s = stats();
    cr_assert(s.running == 1 && s.waiting == 0 && s.done == 0 && s.refused == 0);

    gate_add(&release);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += WAIT_MS / 1000;
    cr_assert_eq(pthread_timedjoin_np(freer, NULL, &t), 0, "free did not return once the task finished");
    cr_assert_eq(finished.n, 1, "the running task did not finish");
    cr_assert_eq(n_cancel, N_CANCEL);
    cr_assert_eq(atomic_load(&cancel_on_freer), N_CANCEL, "cancel ran on another thread");
    for (int i = 0; i < N_CANCEL; i++)
        cr_assert_eq(cancel_order[i], i);
    assert_no_violation();
}

static void resubmit(void *arg)
{
    CHECK(task_pool_submit(pool, quick, NULL, NULL) == 0);
    gate_add(&finished);
}

Test(task_pool, a_task_may_submit)
{
    init_gates();
    cr_assert_eq(task_pool_new(&pool, 1, 1, "again"), 0);
    cr_assert_eq(task_pool_submit(pool, resubmit, NULL, NULL), 0);
    cr_assert(gate_wait(&finished, 2));
    task_pool_free(pool);
    assert_no_violation();
}

static char seen_name[16];
static size_t seen_stack;

static void inspect_thread(void *arg)
{
    pthread_attr_t a;
    pthread_getname_np(pthread_self(), seen_name, sizeof seen_name);
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstacksize(&a, &seen_stack);
        pthread_attr_destroy(&a);
    }
    gate_add(&finished);
}

Test(task_pool, threads_are_named_with_big_stacks)
{
    init_gates();
    cr_assert_eq(task_pool_new(&pool, 1, 0, "a-very-long-pool-name"), 0);
    cr_assert_eq(task_pool_submit(pool, inspect_thread, NULL, NULL), 0);
    cr_assert(gate_wait(&finished, 1));
    task_pool_free(pool);
    cr_assert_str_eq(seen_name, "a-very-long-p-0"); /* cut to 15 bytes, index kept */
    cr_assert_geq(seen_stack, (size_t)8 << 20);

    cr_assert_eq(task_pool_new(&pool, 1, 0, NULL), 0);
    cr_assert_eq(task_pool_submit(pool, inspect_thread, NULL, NULL), 0);
    cr_assert(gate_wait(&finished, 2));
    task_pool_free(pool);
    cr_assert_str_eq(seen_name, "pool-0");
}

Test(task_pool, bad_arguments)
{
    pool = (task_pool_t *)&pool; /* must be overwritten */
    cr_assert_eq(task_pool_new(&pool, 0, 1, "x"), -EINVAL);
    cr_assert_null(pool);
    cr_assert_eq(task_pool_new(&pool, TASK_POOL_MAX_THREADS + 1, 1, "x"), -EINVAL);
    cr_assert_eq(task_pool_new(&pool, 1, TASK_POOL_MAX_QUEUE + 1, "x"), -EINVAL);
    task_pool_free(NULL);
}
