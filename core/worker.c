/* worker: threads, loops, listeners and cross-thread posting.
 *
 * libuv 1.44 has no SO_REUSEPORT flag, so each worker's listening socket
 * is made by hand and handed to uv_tcp_open(). With port 0, the first
 * socket picks the port and the others bind to the same one. */
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define DRAIN_GRACE_MS 5000
#define LOG_FLUSH_MS 200

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
    uint64_t stop_started_us;
    unsigned conns;
    void *state;
    buf_t logbuf;
    int init_rc;
    uv_sem_t ready;
};

struct worker_group {
    unsigned n;
    worker_t *w;
    worker_hooks_t hooks;
    char address[80];
    uv_loop_t main_loop;
    uv_async_t stop_async;
    uv_signal_t sigint, sigterm;
    uv_signal_t sighup;        /* TEMPORARY (reload helper): the drain helper's version wins */
};

static _Thread_local worker_t *current;

worker_t *worker_current(void) { return current; }
uv_loop_t *worker_loop(worker_t *w) { return &w->loop; }
void *worker_state(worker_t *w) { return w->state; }
unsigned worker_index(const worker_t *w) { return w->index; }
bool worker_stopping(const worker_t *w) { return atomic_load(&w->stopping); }
buf_t *worker_log_buf(worker_t *w) { return &w->logbuf; }
void worker_conn_add(worker_t *w, int delta) { w->conns = (unsigned)((int)w->conns + delta); }
unsigned worker_conn_count(const worker_t *w) { return w->conns; }
unsigned worker_group_count(const worker_group_t *g) { return g->n; }
worker_t *worker_group_at(const worker_group_t *g, unsigned i) { return &g->w[i]; }
const char *worker_group_address(const worker_group_t *g) { return g->address; }

uint64_t worker_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int worker_post(worker_t *w, worker_fn fn, void *arg)
{
    post_msg_t *m = malloc(sizeof *m);
    if (!m)
        return -ENOMEM;
    m->next = NULL;
    m->fn = fn;
    m->arg = arg;
    pthread_mutex_lock(&w->mu);
    if (w->closed_to_posts) {
        pthread_mutex_unlock(&w->mu);
        free(m);
        return -ESHUTDOWN;
    }
    if (w->tail)
        w->tail->next = m;
    else
        w->head = m;
    w->tail = m;
    /* Under the lock: the loop closes the handle only after it set
     * closed_to_posts under this lock, so the send never hits a closed one. */
    uv_async_send(&w->wakeup);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void run_posts(worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    post_msg_t *m = w->head;
    w->head = w->tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (m) {
        post_msg_t *next = m->next;
        m->fn(m->arg);
        free(m);
        m = next;
    }
}

static void on_wakeup(uv_async_t *a)
{
    run_posts(a->data);
}

static void on_listener_closed(uv_handle_t *h) { (void)h; }

static void on_connection(uv_stream_t *server, int status)
{
    worker_t *w = server->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    w->group->hooks.on_connection(w, (uv_tcp_t *)server);
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Final step on the worker: everything but the loop itself gets closed. */
static void finish_stop(worker_t *w)
{
    worker_hooks_t *hk = &w->group->hooks;
    if (hk->close)
        hk->close(w, w->state, hk->ud);
    /* Work posted from now on is dropped: the posting side is told (-ESHUTDOWN). */
    pthread_mutex_lock(&w->mu);
    w->closed_to_posts = true;
    pthread_mutex_unlock(&w->mu);
    run_posts(w);
    log_access_flush(&w->logbuf);
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    uv_close((uv_handle_t *)&w->timer, NULL);
}

static void on_timer(uv_timer_t *t)
{
    worker_t *w = t->data;
    log_access_flush(&w->logbuf);
    if (!atomic_load(&w->stopping))
        return;
    if (w->conns == 0 || worker_now_us() - w->stop_started_us > DRAIN_GRACE_MS * 1000ull) {
        uv_timer_stop(t);
        finish_stop(w);
    }
}

static void begin_stop(void *arg)
{
    worker_t *w = arg;
    if (atomic_exchange(&w->stopping, true))
        return;
    w->stop_started_us = worker_now_us();
    uv_close((uv_handle_t *)&w->listener, on_listener_closed);
    worker_hooks_t *hk = &w->group->hooks;
    if (hk->stopping)
        hk->stopping(w, w->state, hk->ud);
    uv_timer_start(&w->timer, on_timer, 0, 20);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    current = w;
    worker_hooks_t *hk = &w->group->hooks;
    w->state = hk->init ? hk->init(w, hk->ud) : NULL;
    if (hk->init && !w->state) {
        w->init_rc = -1;
        uv_sem_post(&w->ready);
        uv_walk(&w->loop, close_handle, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        return NULL;
    }
    int rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
    if (rc) {
        log_error("listen: %s", uv_strerror(rc));
        w->init_rc = rc;
    }
    uv_sem_post(&w->ready);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (hk->fini)
        hk->fini(w, w->state, hk->ud);
    return NULL;
}

/* A listening socket with SO_REUSEPORT, bound to addr. */
static int make_listen_socket(const struct sockaddr_storage *addr, socklen_t alen, int *out)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        bind(fd, (const struct sockaddr *)addr, alen)) {
        int e = -errno;
        close(fd);
        return e;
    }
    *out = fd;
    return 0;
}

static int resolve_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *alen)
{
    char host[256];
    unsigned port;
    if (config_parse_addr(listen, host, sizeof host, &port))
        return UV_EINVAL;
    memset(ss, 0, sizeof *ss);
    if (strchr(host, ':')) {
        *alen = sizeof(struct sockaddr_in6);
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    *alen = sizeof(struct sockaddr_in);
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
}

static void format_address(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(out, n, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
    }
}

static void on_stop_async(uv_async_t *a)
{
    uv_stop(a->loop);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    worker_group_t *g = s->data;
    if (g->hooks.reload)
        g->hooks.reload(g->hooks.ud);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_stop(s->loop);
}

int worker_group_start(worker_group_t **out, const char *listen, unsigned n,
                       const worker_hooks_t *hooks, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t alen;
    int rc = resolve_listen(listen, &ss, &alen);
    if (rc) {
        snprintf(err, errlen, "listen: bad address '%s'", listen);
        return rc;
    }
    n = worker_count_for(n);
    worker_group_t *g = calloc(1, sizeof *g);
    g->w = calloc(n, sizeof *g->w);
    g->n = n;
    g->hooks = *hooks;
    for (unsigned i = 0; i < n; i++) {
        worker_t *w = &g->w[i];
        w->group = g;
        w->index = i;
        w->listen_fd = -1;
        rc = make_listen_socket(&ss, alen, &w->listen_fd);
        if (rc) {
            snprintf(err, errlen, "listen %s: %s", listen, strerror(-rc));
            goto fail;
        }
        if (i == 0) {
            /* Port 0: learn the port the kernel chose so the others share it. */
            getsockname(w->listen_fd, (struct sockaddr *)&ss, &alen);
            format_address(&ss, g->address, sizeof g->address);
        }
    }
    signal(SIGPIPE, SIG_IGN);
    for (unsigned i = 0; i < n; i++) {
        worker_t *w = &g->w[i];
        uv_loop_init(&w->loop);
        w->loop.data = w;
        pthread_mutex_init(&w->mu, NULL);
        uv_async_init(&w->loop, &w->wakeup, on_wakeup);
        w->wakeup.data = w;
        uv_timer_init(&w->loop, &w->timer);
        w->timer.data = w;
        uv_timer_start(&w->timer, on_timer, LOG_FLUSH_MS, LOG_FLUSH_MS);
        buf_init(&w->logbuf, 0);
        uv_tcp_init(&w->loop, &w->listener);
        w->listener.data = w;
        uv_tcp_open(&w->listener, w->listen_fd);
        uv_sem_init(&w->ready, 0);
        pthread_create(&w->thread, NULL, worker_main, w);
    }
    int failed = 0;
    for (unsigned i = 0; i < n; i++) {
        uv_sem_wait(&g->w[i].ready);
        failed |= g->w[i].init_rc != 0;
    }
    uv_loop_init(&g->main_loop);
    uv_async_init(&g->main_loop, &g->stop_async, on_stop_async);
    uv_signal_init(&g->main_loop, &g->sigint);
    uv_signal_init(&g->main_loop, &g->sigterm);
    uv_signal_start(&g->sigint, on_signal, SIGINT);
    uv_signal_start(&g->sigterm, on_signal, SIGTERM);
    uv_signal_init(&g->main_loop, &g->sighup);
    g->sighup.data = g;
    uv_signal_start(&g->sighup, on_sighup, SIGHUP);
    *out = g;
    if (failed) {
        snprintf(err, errlen, "a worker failed to start");
        worker_group_stop(g);
        worker_group_run(g);
        worker_group_free(g);
        *out = NULL;
        return UV_EINVAL;
    }
    return 0;
fail:
    for (unsigned i = 0; i < n; i++)
        if (g->w[i].listen_fd >= 0)
            close(g->w[i].listen_fd);
    free(g->w);
    free(g);
    return rc;
}

unsigned worker_count_for(unsigned n)
{
    if (n)
        return n;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (unsigned)c : 1;
}

void worker_group_stop(worker_group_t *g)
{
    uv_async_send(&g->stop_async);
}

void worker_group_run(worker_group_t *g)
{
    uv_run(&g->main_loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < g->n; i++)
        worker_post(&g->w[i], begin_stop, &g->w[i]);
    for (unsigned i = 0; i < g->n; i++) {
        worker_t *w = &g->w[i];
        pthread_join(w->thread, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT); /* run close callbacks left over */
        uv_loop_close(&w->loop);
        /* Posts that raced with shutdown were refused; free stragglers. */
        post_msg_t *m = w->head;
        while (m) {
            post_msg_t *next = m->next;
            free(m);
            m = next;
        }
        w->head = w->tail = NULL;
        buf_free(&w->logbuf);
    }
    uv_walk(&g->main_loop, close_handle, NULL);
    uv_run(&g->main_loop, UV_RUN_DEFAULT);
    uv_loop_close(&g->main_loop);
}

void worker_group_free(worker_group_t *g)
{
    for (unsigned i = 0; i < g->n; i++) {
        pthread_mutex_destroy(&g->w[i].mu);
        uv_sem_destroy(&g->w[i].ready);
    }
    free(g->w);
    free(g);
}
