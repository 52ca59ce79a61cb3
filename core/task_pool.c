/* task_pool: threads, a fixed ring of waiting tasks, one mutex and one
 * condition variable (see include/task_pool.h).
 *
 * The ring holds threads + queue_max slots: a task counts as waiting from
 * its submit until a thread takes it, and every thread may be idle but not
 * yet woken when its task arrives, so up to threads + queue_max tasks can
 * wait at one moment. Sizing the ring for that up front means a submit
 * never allocates and never fails for want of memory. */
#include "task_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* glibc's usual default, and what libvips is tested with; a smaller
 * RLIMIT_STACK (or an unlimited one, which glibc maps to 2 MiB on some
 * targets) must not shrink it. */
#define MIN_STACK (8u << 20)

typedef struct task {
    task_fn fn, cancel;
    void *arg;
} task_t;

struct task_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;      /* signalled when a task is queued or the pool stops */
    task_t *ring;             /* cap slots; waiting tasks from head, FIFO */
    unsigned cap, head;
    unsigned waiting, running;
    unsigned threads, queue_max;
    uint64_t done, refused;
    bool stopping;
    pthread_t *tids;
    unsigned started;         /* threads created, to join */
};

static void *pool_main(void *arg)
{
    task_pool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->waiting && !p->stopping)
            pthread_cond_wait(&p->work, &p->mu);
        /* Stopping wins over waiting tasks: task_pool_free cancels them. */
        if (p->stopping)
            break;
        task_t t = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->waiting--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        t.fn(t.arg);
        pthread_mutex_lock(&p->mu);
        p->running--;
        p->done++;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Mark the pool stopping and take out the waiting tasks; returns how many
 * there were, starting at p->head. After this no thread and no submit
 * touches the ring again, so the caller may read it unlocked. */
static unsigned stop(task_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    unsigned n = p->waiting;
    p->waiting = 0;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    return n;
}

static void destroy(task_pool_t *p)
{
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->tids[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p->ring);
    free(p);
}

static int start_threads(task_pool_t *p, const char *name)
{
    pthread_attr_t attr;
    size_t stack = 0;
    int rc = pthread_attr_init(&attr);
    if (rc)
        return -rc;
    if (pthread_attr_getstacksize(&attr, &stack) == 0 && stack < MIN_STACK &&
        (rc = pthread_attr_setstacksize(&attr, MIN_STACK)) != 0)
        goto out;
    for (; p->started < p->threads; p->started++) {
        rc = pthread_create(&p->tids[p->started], &attr, pool_main, p);
        if (rc)
            goto out;
        /* 15 bytes is the kernel's limit: cut the name, keep the index. */
        char tname[16];
        char idx[12];
        int ilen = snprintf(idx, sizeof idx, "-%u", p->started);
        snprintf(tname, sizeof tname, "%.*s%s", 15 - ilen, name, idx);
        pthread_setname_np(p->tids[p->started], tname); /* cosmetic: a failure changes nothing */
    }
out:
    pthread_attr_destroy(&attr);
    return -rc;
}

int task_pool_new(task_pool_t **out, unsigned threads, unsigned queue_max, const char *name)
{
    *out = NULL;
    if (threads < 1 || threads > TASK_POOL_MAX_THREADS || queue_max > TASK_POOL_MAX_QUEUE)
        return -EINVAL;
    task_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    p->threads = threads;
    p->queue_max = queue_max;
    p->cap = threads + queue_max;
    p->ring = calloc(p->cap, sizeof *p->ring);
    p->tids = calloc(threads, sizeof *p->tids);
    int rc = p->ring && p->tids ? start_threads(p, name ? name : "pool") : -ENOMEM;
    if (rc) {
        /* Stop and join whatever threads did start. */
        stop(p);
        destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

int task_pool_submit(task_pool_t *p, task_fn fn, task_fn cancel, void *arg)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        rc = -ESHUTDOWN;
    } else if (p->waiting + p->running >= p->threads + p->queue_max) {
        /* Every thread has (or is about to take) a task, and queue_max more wait. */
        p->refused++;
        rc = -EBUSY;
    } else {
        p->ring[(p->head + p->waiting) % p->cap] = (task_t){ fn, cancel, arg };
        p->waiting++;
        pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void task_pool_free(task_pool_t *p)
{
    if (!p)
        return;
    unsigned n = stop(p);
    /* Cancel before joining: owners release what they hold without waiting
     * for the running tasks, which may take hundreds of milliseconds. */
    for (unsigned i = 0; i < n; i++) {
        task_t *t = &p->ring[(p->head + i) % p->cap];
        if (t->cancel)
            t->cancel(t->arg);
    }
    destroy(p);
}

void task_pool_stats(task_pool_t *p, task_pool_stats_t *out)
{
    pthread_mutex_lock(&p->mu);
    *out = (task_pool_stats_t){ p->waiting, p->running, p->done, p->refused };
    pthread_mutex_unlock(&p->mu);
}
