/* worker: a group of loops started with hooks, work posted to them, and the
 * stop/drain path. Every accepted post runs once, on its worker, in
 * posting order, including posts racing the stop; a post after the stop is
 * refused and never runs; the hooks run once per worker in their order
 * (init, stopping, close, fini) with the state init returned; close waits
 * for open connections to drain; a failing init stops the whole group
 * cleanly. The shutdown's phases: a drain keeps accepting (and says so,
 * worker_draining) until its delay ends or a second request cuts it short;
 * the drain timeout closes what is left; the draining and reload hooks run
 * on the thread in worker_group_run, reload on SIGHUP. ASan runs check
 * that nothing leaks. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
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
#include "worker.h"

#define MAXW 4
#define WAIT_MS 10000 /* bound on every wait */

/* Checks on worker threads (Criterion's asserts belong to the test's
 * thread): a failure is counted with its line, and the test asserts there
 * was none. */
static atomic_int violations, violation_line;
#define CHECK(cond)                                         \
    do {                                                    \
        if (!(cond)) {                                      \
            atomic_fetch_add(&violations, 1);               \
            atomic_store(&violation_line, __LINE__);        \
        }                                                   \
    } while (0)

static void assert_no_violation(void)
{
    cr_assert_eq(atomic_load(&violations), 0, "a check on a worker thread failed (line %d)",
                 atomic_load(&violation_line));
}

typedef struct group_ud {
    int fail_init_at;            /* index whose init fails, or -1 */
    char hooks[MAXW][8];         /* per worker, the hooks in the order they ran: I S C F */
    atomic_int nhooks[MAXW];
    atomic_int conns_at_close[MAXW];
    atomic_int accepted;         /* connections adopted */
    atomic_int stopping;         /* stopping hooks run */
    atomic_int closed;           /* close hooks run */
    atomic_int draining, reloads; /* main-thread hooks run */
    pthread_t main_hook_thread;  /* where the last of them ran */
} group_ud_t;

typedef struct wstate {
    worker_t *w;
    group_ud_t *ud;
    long last_seq;               /* of posts from the main thread, to check their order */
} wstate_t;

static void hook(group_ud_t *ud, worker_t *w, char c)
{
    unsigned i = worker_index(w);
    CHECK(i < MAXW && worker_current() == w);
    if (i >= MAXW)
        return;
    int k = atomic_fetch_add(&ud->nhooks[i], 1);
    if (k < 7)
        ud->hooks[i][k] = c;
}

static void *on_init(worker_t *w, void *arg)
{
    group_ud_t *ud = arg;
    hook(ud, w, 'I');
    if ((int)worker_index(w) == ud->fail_init_at)
        return NULL;
    wstate_t *s = calloc(1, sizeof *s);
    s->w = w;
    s->ud = ud;
    s->last_seq = -1;
    return s;
}

static void on_stopping(worker_t *w, void *state, void *arg)
{
    group_ud_t *ud = arg;
    CHECK(((wstate_t *)state)->w == w);
    CHECK(worker_stopping(w));
    hook(ud, w, 'S');
    atomic_fetch_add(&ud->stopping, 1);
}

static char conn_marker; /* the data of every adopted connection's handle */
static void conn_closed(uv_handle_t *h);

static void close_conn(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->data == &conn_marker && !uv_is_closing(h))
        uv_close(h, conn_closed);
}

static void on_close(worker_t *w, void *state, void *arg)
{
    group_ud_t *ud = arg;
    CHECK(((wstate_t *)state)->w == w);
    hook(ud, w, 'C');
    atomic_store(&ud->conns_at_close[worker_index(w)], (int)worker_conn_count(w));
    atomic_fetch_add(&ud->closed, 1);
    /* What the drain timeout left open is the state's to close. */
    uv_walk(worker_loop(w), close_conn, NULL);
}

static void on_fini(worker_t *w, void *state, void *arg)
{
    group_ud_t *ud = arg;
    CHECK(((wstate_t *)state)->w == w);
    hook(ud, w, 'F');
    free(state);
}

/* --- connections: adopted, read until EOF, then closed --- */

static void conn_closed(uv_handle_t *h)
{
    worker_conn_add(worker_current(), -1);
    free(h);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static _Thread_local char mem[4096];
    (void)h;
    (void)hint;
    *b = uv_buf_init(mem, sizeof mem);
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0)
        uv_close((uv_handle_t *)s, conn_closed);
}

static void on_connection(worker_t *w, uv_tcp_t *listener)
{
    wstate_t *st = worker_state(w);
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(worker_loop(w), c);
    if (uv_accept((uv_stream_t *)listener, (uv_stream_t *)c)) {
        uv_close((uv_handle_t *)c, (uv_close_cb)free);
        return;
    }
    c->data = &conn_marker;
    worker_conn_add(w, 1);
    uv_read_start((uv_stream_t *)c, conn_alloc, conn_read);
    atomic_fetch_add(&st->ud->accepted, 1);
}

static void on_draining(void *arg)
{
    group_ud_t *ud = arg;
    CHECK(worker_current() == NULL); /* the main thread, not a worker */
    ud->main_hook_thread = pthread_self();
    atomic_fetch_add(&ud->draining, 1);
}

static void on_reload(void *arg)
{
    group_ud_t *ud = arg;
    CHECK(worker_current() == NULL);
    ud->main_hook_thread = pthread_self();
    atomic_fetch_add(&ud->reloads, 1);
}

static worker_group_t *start(group_ud_t *ud, unsigned n)
{
    worker_hooks_t hooks = { on_init, on_stopping, on_close, on_fini, on_connection, ud, on_draining, on_reload };
    worker_group_t *g = NULL;
    char err[256] = "";
    int rc = worker_group_start(&g, "127.0.0.1:0", n, &hooks, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_not_null(g);
    return g;
}

static void ud_init(group_ud_t *ud)
{
    memset(ud, 0, sizeof *ud);
    ud->fail_init_at = -1;
}

/* Each worker ran exactly init, stopping, close, fini, in that order. */
static void assert_hooks_once(group_ud_t *ud, unsigned n)
{
    assert_no_violation();
    for (unsigned i = 0; i < n; i++)
        cr_assert_str_eq(ud->hooks[i], "ISCF", "worker %u ran %s", i, ud->hooks[i]);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Poll cond until true or timeout_ms (bounded); returns the last result. */
static bool wait_for(bool (*cond)(void *), void *arg, int timeout_ms)
{
    for (int waited = 0; !cond(arg); waited += 2) {
        if (waited >= timeout_ms)
            return cond(arg);
        sleep_ms(2);
    }
    return true;
}

/* --- posting --- */

typedef struct post {
    worker_t *to;
    long seq;                    /* >= 0: from the main thread, in order per worker */
    atomic_int *ran;
} post_t;

static void run_post(void *arg)
{
    post_t *p = arg;
    worker_t *w = worker_current();
    CHECK(w == p->to); /* ran on the worker it was posted to */
    wstate_t *s = worker_state(w);
    if (p->seq >= 0) {
        CHECK(p->seq > s->last_seq); /* in posting order */
        s->last_seq = p->seq;
    }
    atomic_fetch_add(p->ran, 1);
}

static void never_runs(void *arg)
{
    (void)arg;
    CHECK(!"a refused post ran");
}

Test(worker, group_answers_its_address_and_workers)
{
    group_ud_t ud;
    ud_init(&ud);
    worker_group_t *g = start(&ud, 2);
    const char *addr = worker_group_address(g);
    char host[64];
    unsigned port = 0;
    cr_assert_eq(config_parse_addr(addr, host, sizeof host, &port), 0, "%s", addr);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_neq(port, 0, "port 0 became the port the kernel chose");
    cr_assert_eq(worker_group_count(g), 2);
    for (unsigned i = 0; i < 2; i++)
        cr_assert_eq(worker_index(worker_group_at(g, i)), i);
    cr_assert_null(worker_current(), "the test's thread is no worker");
    worker_group_stop(g);
    worker_group_run(g);
    assert_hooks_once(&ud, 2);
    worker_group_free(g);
}

Test(worker, every_post_runs_once_on_its_worker_in_order)
{
    group_ud_t ud;
    ud_init(&ud);
    worker_group_t *g = start(&ud, 2);
    enum { N = 2000 };
    static post_t posts[N];
    atomic_int ran = 0;
    for (long i = 0; i < N; i++) {
        posts[i] = (post_t){ worker_group_at(g, (unsigned)(i % 2)), i, &ran };
        cr_assert_eq(worker_post(posts[i].to, run_post, &posts[i]), 0);
    }
    /* Stopping right away: what was accepted still runs before close. */
    worker_group_stop(g);
    worker_group_run(g);
    cr_assert_eq(atomic_load(&ran), N);
    assert_hooks_once(&ud, 2);
    /* Stopped: refused, and never run. */
    for (unsigned i = 0; i < 2; i++)
        cr_assert_eq(worker_post(worker_group_at(g, i), never_runs, NULL), -ESHUTDOWN);
    worker_group_free(g);
}

typedef struct racer {
    worker_group_t *g;
    atomic_int ran;
    atomic_int accepted;
} racer_t;

typedef struct racer_arg {
    racer_t *r;
    unsigned id;
} racer_arg_t;

static void run_and_free(void *arg)
{
    run_post(arg);
    free(arg);
}

/* Post to both workers until both refuse; count what was accepted. */
static void *racer_main(void *arg)
{
    racer_arg_t *a = arg;
    racer_t *r = a->r;
    unsigned n = worker_group_count(r->g);
    bool refused[MAXW] = { false };
    unsigned nrefused = 0;
    for (unsigned k = 0; nrefused < n; k++) {
        unsigned i = (k + a->id) % n;
        post_t *p = malloc(sizeof *p);
        *p = (post_t){ worker_group_at(r->g, i), -1, &r->ran };
        if (worker_post(p->to, run_and_free, p) == 0) {
            atomic_fetch_add(&r->accepted, 1);
            CHECK(!refused[i]); /* accepted after a refusal */
        } else {
            free(p); /* never run: still ours */
            if (!refused[i]) {
                refused[i] = true;
                nrefused++;
            }
        }
        if (k % 64 == 0)
            sched_yield();
    }
    return NULL;
}

static bool some_ran(void *arg) { return atomic_load(&((racer_t *)arg)->ran) >= 500; }

Test(worker, posts_racing_the_stop_run_or_are_refused)
{
    group_ud_t ud;
    ud_init(&ud);
    racer_t r = { .g = start(&ud, 2) };
    pthread_t th[2];
    racer_arg_t args[2];
    for (unsigned i = 0; i < 2; i++) {
        args[i] = (racer_arg_t){ &r, i };
        cr_assert_eq(pthread_create(&th[i], NULL, racer_main, &args[i]), 0);
    }
    cr_assert(wait_for(some_ran, &r, WAIT_MS), "posts flow before the stop");
    worker_group_stop(r.g);
    worker_group_run(r.g);
    /* The racers end once both workers refuse, which they do from now on. */
    for (unsigned i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&r.ran), atomic_load(&r.accepted), "every accepted post ran, and only those");
    cr_assert_geq(atomic_load(&r.ran), 500);
    assert_hooks_once(&ud, 2);
    worker_group_free(r.g);
}

/* --- stop and drain --- */

typedef struct runner {
    worker_group_t *g;
    pthread_t th;
} runner_t;

static void *runner_main(void *arg)
{
    runner_t *r = arg;
    worker_group_stop(r->g);
    worker_group_run(r->g);
    return NULL;
}

static bool one_accepted(void *arg) { return atomic_load(&((group_ud_t *)arg)->accepted) >= 1; }
static bool one_stopping(void *arg) { return atomic_load(&((group_ud_t *)arg)->stopping) >= 1; }
static bool one_closed(void *arg) { return atomic_load(&((group_ud_t *)arg)->closed) >= 1; }

/* A blocking client connection to "HOST:PORT"; -1 when refused. */
static int client_connect(const char *addr)
{
    char host[64];
    unsigned port;
    cr_assert_eq(config_parse_addr(addr, host, sizeof host, &port), 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    cr_assert_eq(inet_pton(AF_INET, host, &a.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

Test(worker, close_waits_for_open_connections_to_drain, .timeout = 30)
{
    group_ud_t ud;
    ud_init(&ud);
    runner_t run = { .g = start(&ud, 1) };
    char addr[80];
    snprintf(addr, sizeof addr, "%s", worker_group_address(run.g));
    int fd = client_connect(addr);
    cr_assert_geq(fd, 0, "connect %s: %s", addr, strerror(errno));
    cr_assert(wait_for(one_accepted, &ud, WAIT_MS));
    cr_assert_eq(pthread_create(&run.th, NULL, runner_main, &run), 0);
    cr_assert(wait_for(one_stopping, &ud, WAIT_MS));
    /* Stopping: the listener is closed, new connections are refused. */
    int again = client_connect(addr);
    cr_assert_lt(again, 0, "a connection was accepted after the stop began");
    /* The open connection holds close back (the worker checks every 20 ms;
     * the grace period is 5 s): a bounded look for a premature close. */
    cr_assert_not(wait_for(one_closed, &ud, 300), "close ran with a connection open");
    close(fd);
    cr_assert(wait_for(one_closed, &ud, WAIT_MS), "close never ran after the drain");
    pthread_join(run.th, NULL);
    cr_assert_eq(atomic_load(&ud.conns_at_close[0]), 0);
    assert_hooks_once(&ud, 1);
    worker_group_free(run.g);
}

Test(worker, a_failing_init_stops_the_group_cleanly)
{
    group_ud_t ud;
    ud_init(&ud);
    ud.fail_init_at = 1;
    worker_hooks_t hooks = { on_init, on_stopping, on_close, on_fini, on_connection, &ud, NULL, NULL };
    worker_group_t *g = (worker_group_t *)&ud; /* must be overwritten */
    char err[256] = "";
    int rc = worker_group_start(&g, "127.0.0.1:0", 3, &hooks, err, sizeof err);
    cr_assert_lt(rc, 0);
    cr_assert_null(g);
    cr_assert_str_eq(err, "a worker failed to start");
    /* The others started and were stopped the whole way (their states
     * freed by fini: ASan would see a leak otherwise); the failed one
     * never got further than init. */
    assert_no_violation();
    cr_assert_str_eq(ud.hooks[0], "ISCF");
    cr_assert_str_eq(ud.hooks[1], "I");
    cr_assert_str_eq(ud.hooks[2], "ISCF");
}

Test(worker, a_bad_listen_address_starts_nothing)
{
    group_ud_t ud;
    ud_init(&ud);
    worker_hooks_t hooks = { on_init, on_stopping, on_close, on_fini, on_connection, &ud, NULL, NULL };
    worker_group_t *g = NULL;
    char err[256] = "";
    cr_assert_lt(worker_group_start(&g, "no-port-here", 2, &hooks, err, sizeof err), 0);
    cr_assert_null(g);
    cr_assert(strstr(err, "bad address"), "%s", err);
    cr_assert_eq(atomic_load(&ud.nhooks[0]) + atomic_load(&ud.nhooks[1]), 0, "no worker started");
}

/* --- drain phases and signals --- */

static void *run_main(void *arg)
{
    worker_group_run(((runner_t *)arg)->g);
    return NULL;
}

static bool one_draining(void *arg) { return atomic_load(&((group_ud_t *)arg)->draining) >= 1; }
static bool one_reload(void *arg) { return atomic_load(&((group_ud_t *)arg)->reloads) >= 1; }
static bool two_accepted(void *arg) { return atomic_load(&((group_ud_t *)arg)->accepted) >= 2; }

Test(worker, a_drain_accepts_until_a_second_request_cuts_it_short, .timeout = 30)
{
    group_ud_t ud;
    ud_init(&ud);
    runner_t run = { .g = start(&ud, 2) };
    worker_group_set_drain(run.g, 600000, 600000); /* only the second request can end it */
    char addr[80];
    snprintf(addr, sizeof addr, "%s", worker_group_address(run.g));
    cr_assert_not(worker_draining(worker_group_at(run.g, 0)));
    cr_assert_eq(pthread_create(&run.th, NULL, run_main, &run), 0);
    worker_group_drain(run.g);
    cr_assert(wait_for(one_draining, &ud, WAIT_MS), "the draining hook ran");
    cr_assert(pthread_equal(ud.main_hook_thread, run.th), "on the thread in worker_group_run");
    for (unsigned i = 0; i < 2; i++)
        cr_assert(worker_draining(worker_group_at(run.g, i)));
    /* Draining still accepts: two connections, held open. */
    int fd1 = client_connect(addr), fd2 = client_connect(addr);
    cr_assert(fd1 >= 0 && fd2 >= 0, "accepted during the delay");
    cr_assert(wait_for(two_accepted, &ud, WAIT_MS));
    cr_assert_eq(atomic_load(&ud.stopping), 0, "the listeners stay open for the delay");
    /* The second request: stop now, closing what is open. */
    worker_group_drain(run.g);
    pthread_join(run.th, NULL);
    cr_assert_eq(atomic_load(&ud.draining), 1, "the hook runs once");
    cr_assert_eq(atomic_load(&ud.conns_at_close[0]) + atomic_load(&ud.conns_at_close[1]), 2,
                 "close ran with both connections still open");
    assert_hooks_once(&ud, 2);
    close(fd1);
    close(fd2);
    worker_group_free(run.g);
}

Test(worker, the_drain_timeout_closes_what_is_left, .timeout = 30)
{
    group_ud_t ud;
    ud_init(&ud);
    runner_t run = { .g = start(&ud, 1) };
    worker_group_set_drain(run.g, 0, 200);
    int fd = client_connect(worker_group_address(run.g));
    cr_assert_geq(fd, 0);
    cr_assert(wait_for(one_accepted, &ud, WAIT_MS));
    cr_assert_eq(pthread_create(&run.th, NULL, run_main, &run), 0);
    kill(getpid(), SIGINT); /* a stop, without the (zero) delay */
    pthread_join(run.th, NULL); /* ends although the client never closes */
    cr_assert_eq(atomic_load(&ud.draining), 1);
    cr_assert_eq(atomic_load(&ud.conns_at_close[0]), 1, "close ran at the timeout, the connection open");
    assert_hooks_once(&ud, 1);
    close(fd);
    worker_group_free(run.g);
}

Test(worker, sighup_calls_reload_on_the_main_thread, .timeout = 30)
{
    group_ud_t ud;
    ud_init(&ud);
    runner_t run = { .g = start(&ud, 1) };
    cr_assert_eq(pthread_create(&run.th, NULL, run_main, &run), 0);
    kill(getpid(), SIGHUP);
    cr_assert(wait_for(one_reload, &ud, WAIT_MS), "reload ran");
    cr_assert(pthread_equal(ud.main_hook_thread, run.th));
    cr_assert_eq(atomic_load(&ud.stopping), 0, "SIGHUP does not stop the group");
    worker_group_stop(run.g);
    pthread_join(run.th, NULL);
    cr_assert_eq(atomic_load(&ud.reloads), 1);
    assert_hooks_once(&ud, 1);
    worker_group_free(run.g);
}
