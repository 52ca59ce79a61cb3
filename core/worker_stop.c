/* worker_stop: the main thread's side of a worker group's shutdown.
 *
 * The main thread's loop keeps handling signals until every worker's loop
 * has ended, so a second signal can still cut a slow drain short. Phases
 * (group_phase_t): RUNNING; DRAINING (SIGTERM: hooks.draining ran, health
 * answers 503, responses carry Connection: close, the listeners stay open
 * for the drain delay so load balancers notice); STOPPING (listeners
 * closed, in-flight requests get the drain timeout); FORCING (the
 * connections left are closed). SIGINT skips DRAINING. Each phase is
 * logged with the count of open connections. */
#include "worker_internal.h"

#include <signal.h>
#include <stdio.h>

#include "log.h"

static unsigned open_conns(const worker_group_t *g)
{
    unsigned n = 0;
    for (unsigned i = 0; i < g->n; i++)
        n += worker_conn_count(&g->w[i]);
    return n;
}

static uint64_t phase_ms(const worker_group_t *g)
{
    return uv_now(&g->main_loop) - g->phase_start_ms;
}

static void post_all(worker_group_t *g, worker_fn fn)
{
    for (unsigned i = 0; i < g->n; i++)
        worker_post(&g->w[i], fn, &g->w[i]); /* refused by a worker already done: fine */
}

static void on_phase_timer(uv_timer_t *t);

/* Time is up (or a second signal came): close the connections left. */
static void enter_forcing(worker_group_t *g, const char *why)
{
    g->phase = GROUP_FORCING;
    uv_timer_stop(&g->phase_timer);
    log_info("%s: closing the connections left (%u)", why, open_conns(g));
    post_all(g, worker__stop_force);
}

/* Stop accepting; in-flight requests get the drain timeout. */
static void enter_stopping(worker_group_t *g)
{
    g->phase = GROUP_STOPPING;
    g->phase_start_ms = uv_now(&g->main_loop);
    log_info("closing listeners (open connections: %u); in-flight requests get up to %llu ms", open_conns(g),
             (unsigned long long)g->drain_timeout_ms);
    post_all(g, worker__stop_begin);
    if (g->drain_timeout_ms == 0)
        enter_forcing(g, "drain_timeout 0");
    else
        uv_timer_start(&g->phase_timer, on_phase_timer, g->drain_timeout_ms, 0);
}

/* From now on health answers 503 and responses carry Connection: close. */
static void mark_draining(worker_group_t *g)
{
    atomic_store(&g->draining, true);
    if (g->hooks.draining)
        g->hooks.draining(g->hooks.ud);
}

/* A second stop request while one is under way: stop now. */
static void cut_short(worker_group_t *g, const char *why)
{
    if (g->phase == GROUP_FORCING)
        return;
    log_info("%s again: stopping now", why);
    if (g->phase == GROUP_DRAINING)
        enter_stopping(g);
    if (g->phase == GROUP_STOPPING)
        enter_forcing(g, why);
}

/* SIGTERM: keep serving (with health 503) for the drain delay, so load
 * balancers notice before the listeners close. */
static void start_drain(worker_group_t *g, const char *why)
{
    if (g->phase != GROUP_RUNNING) {
        cut_short(g, why);
        return;
    }
    g->phase = GROUP_DRAINING;
    g->phase_start_ms = uv_now(&g->main_loop);
    mark_draining(g);
    log_info("%s: draining: health answers 503, still serving for %llu ms (open connections: %u)", why,
             (unsigned long long)g->drain_delay_ms, open_conns(g));
    if (g->drain_delay_ms == 0)
        enter_stopping(g);
    else
        uv_timer_start(&g->phase_timer, on_phase_timer, g->drain_delay_ms, 0);
}

/* SIGINT (an interactive stop): no drain delay, in-flight requests still end. */
static void start_stop(worker_group_t *g, const char *why)
{
    if (g->phase != GROUP_RUNNING) {
        cut_short(g, why);
        return;
    }
    mark_draining(g);
    log_info("%s: stopping (no drain delay)", why);
    enter_stopping(g);
}

static void on_phase_timer(uv_timer_t *t)
{
    worker_group_t *g = t->data;
    if (g->phase == GROUP_DRAINING) {
        log_info("drain delay over after %llu ms", (unsigned long long)phase_ms(g));
        enter_stopping(g);
    } else if (g->phase == GROUP_STOPPING) {
        enter_forcing(g, "drain_timeout");
    }
}

static void on_stop_async(uv_async_t *a)
{
    worker_group_t *g = a->data;
    for (unsigned k = atomic_load(&g->drain_asks); g->drain_seen < k; g->drain_seen++)
        start_drain(g, "drain requested");
    for (unsigned k = atomic_load(&g->stop_asks); g->stop_seen < k; g->stop_seen++)
        start_stop(g, "stop requested");
}

static void on_signal(uv_signal_t *s, int signum)
{
    worker_group_t *g = s->data;
    if (signum == SIGTERM) {
        start_drain(g, "SIGTERM");
    } else if (signum == SIGINT) {
        start_stop(g, "SIGINT");
    } else if (g->phase != GROUP_RUNNING) {
        log_info("SIGHUP: ignored while stopping");
    } else if (g->hooks.reload) {
        log_info("SIGHUP: reloading");
        g->hooks.reload(g->hooks.ud);
    } else {
        log_warn("SIGHUP: reload is not supported here; ignored");
    }
}

/* Every worker's loop has ended: close the main loop's handles so
 * worker_group_run can return. */
static void on_done_async(uv_async_t *a)
{
    worker_group_t *g = a->data;
    if (atomic_load(&g->done) < g->n)
        return;
    if (g->phase == GROUP_STOPPING)
        log_info("in-flight requests finished in %llu ms", (unsigned long long)phase_ms(g));
    unsigned cut = atomic_load(&g->conns_cut);
    if (cut)
        log_info("workers stopped (connections closed by the drain timeout: %u)", cut);
    else
        log_info("workers stopped cleanly");
    uv_walk(&g->main_loop, worker__close_handle, NULL);
}

void worker_group__init_main(worker_group_t *g)
{
    g->drain_timeout_ms = DEFAULT_DRAIN_TIMEOUT_MS;
    uv_loop_init(&g->main_loop);
    uv_async_init(&g->main_loop, &g->stop_async, on_stop_async);
    g->stop_async.data = g;
    uv_async_init(&g->main_loop, &g->done_async, on_done_async);
    g->done_async.data = g;
    uv_timer_init(&g->main_loop, &g->phase_timer);
    g->phase_timer.data = g;
    uv_signal_t *sigs[] = { &g->sigint, &g->sigterm, &g->sighup };
    int signums[] = { SIGINT, SIGTERM, SIGHUP };
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&g->main_loop, sigs[i]);
        sigs[i]->data = g;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
}

void worker_group_set_drain(worker_group_t *g, uint64_t delay_ms, uint64_t timeout_ms)
{
    g->drain_delay_ms = delay_ms;
    g->drain_timeout_ms = timeout_ms;
}

void worker_group_stop(worker_group_t *g)
{
    atomic_fetch_add(&g->stop_asks, 1);
    uv_async_send(&g->stop_async);
}

void worker_group_drain(worker_group_t *g)
{
    atomic_fetch_add(&g->drain_asks, 1);
    uv_async_send(&g->stop_async);
}

