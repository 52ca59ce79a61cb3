/* proxy: engine set-up and the worker hooks: every worker gets its HTTP
 * server (whose requests preq.c runs), upstream client and store reader;
 * the node gets its store, collapsing table and its first configuration
 * generation (pools, rules' options: proxy_conf.c); SIGHUP goes to
 * reload.c. */
#include "proxy_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "derive.h"
#include "limit.h"
#include "log.h"
#include "job.h"
#include "preq.h"
#include "proxy_metrics.h"
#include "purge_fanout.h"
#include "purge_req.h"
#include "reload.h"
#include "status.h"

#define TICK_MS 100

int64_t proxy_now(void)
{
    return (int64_t)time(NULL);
}

static void on_tick(uv_timer_t *t)
{
    proxy_worker_t *pw = t->data;
    store_reader_flush_touches(pw->rd);
    reload_retired_free(pw, false);
}

static void *w_init(worker_t *w, void *ud)
{
    proxy_t *px = ud;
    const config_t *cfg = px->cfg;
    proxy_worker_t *pw = calloc(1, sizeof *pw);
    if (!pw)
        return NULL;
    pw->px = px;
    pw->w = w;
    px->workers[worker_index(w)] = w; /* for reload.c's posts; read after every init returned */
    pw->conf = px->conf;              /* no reload runs before every worker started */
    proxy_conf_ref(pw->conf);
    pw->ms = metrics_shard(px->metrics, worker_index(w));
    http_server_opts_t so;
    http_server_opts_from_config(&so, &pw->conf->cfg);
    so.error_headers = px->error_headers;
    so.conns_total = &px->conns_total; /* one bound across the workers */
    so.on_accept = limit_on_accept;
    so.on_conn_close = limit_on_conn_close;
    so.on_request = preq_on_request;
    so.on_done = proxy_metrics_on_done;
    so.on_refused = proxy_metrics_on_refused;
    so.ud = pw;
    upstream_opts_t uo = {
        .connect_timeout_ms = cfg->origin_connect_timeout_ms,
        .timeout_ms = cfg->origin_timeout_ms,
        .max_header_size = 64 * 1024,
    };
    pw->srv = http_server_new(w, &so);
    pw->up = upstream_new(worker_loop(w), &uo);
    pw->rd = store_reader_new(px->store);
    if (!pw->srv || !pw->up || !pw->rd) {
        log_error("worker %u: set-up failed", worker_index(w));
        if (pw->up) {
            upstream_close(pw->up);
            uv_run(worker_loop(w), UV_RUN_NOWAIT);
            upstream_free(pw->up);
        }
        http_server_free(pw->srv);
        if (pw->rd)
            store_reader_free(pw->rd);
        proxy_conf_unref(pw->conf);
        free(pw);
        return NULL;
    }
    uv_timer_init(worker_loop(w), &pw->tick);
    pw->tick.data = pw;
    uv_timer_start(&pw->tick, on_tick, TICK_MS, TICK_MS);
    reload_health_start(pw);
    if (worker_index(w) == 0)
        status_sampler_start(px, worker_loop(w)); /* the status page's history */
    return pw;
}

/* SIGTERM: health answers 503 while the node still serves (drain_delay). */
static void w_draining(void *ud)
{
    proxy_t *px = ud;
    atomic_store(&px->state, PROXY_DRAINING);
}

/* SIGHUP: the configuration again (reload.c). */
static void w_reload(void *ud)
{
    reload_run(ud);
}

static void w_connection(worker_t *w, uv_tcp_t *listener)
{
    proxy_worker_t *pw = worker_state(w);
    http_server_accept(pw->srv, listener);
}

static void w_stopping(worker_t *w, void *state, void *ud)
{
    proxy_worker_t *pw = state;
    http_server_stop(pw->srv);
}

static void w_close(worker_t *w, void *state, void *ud)
{
    proxy_worker_t *pw = state;
    http_server_close_all(pw->srv);
    derive_close_all(pw); /* first: they read fetches that job_close_all ends */
    job_close_all(pw);
    purge_fanout_close_all(pw);
    upstream_close(pw->up);
    health_close(pw->health);
    if (worker_index(w) == 0)
        status_sampler_close(pw->px);
    store_reader_flush_touches(pw->rd);
    uv_close((uv_handle_t *)&pw->tick, NULL);
}

static void w_fini(worker_t *w, void *state, void *ud)
{
    proxy_worker_t *pw = state;
    store_reader_free(pw->rd);
    health_free(pw->health);
    reload_retired_free(pw, true);
    reload_conf_uses_free(pw);
    proxy_conf_unref(pw->conf);
    upstream_free(pw->up);
    http_server_free(pw->srv);
    preq_free_spares(pw);
    free(pw);
}

int proxy_new(proxy_t **out, const config_t *cfg, char *err, size_t errlen)
{
    proxy_t *px = calloc(1, sizeof *px);
    if (!px) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    px->cfg = cfg;
    atomic_init(&px->state, PROXY_STARTING);
    px->started_us = worker_now_us();
    px->prog = cfg->program;
    px->progname = cfg->program == CONFIG_SHIELD ? "shield" : "edge";
    px->nworkers = worker_count_for(cfg->workers);
    px->workers = calloc(px->nworkers, sizeof *px->workers);
    int rc = px->workers ? proxy_conf_new(&px->conf, cfg, NULL, err, errlen) : -ENOMEM;
    if (rc) {
        if (rc == -ENOMEM && !px->workers)
            snprintf(err, errlen, "out of memory");
        free(px->workers);
        free(px);
        return rc;
    }
    atomic_init(&px->purge_peer_failures, 0);
    atomic_init(&px->reloads_applied, 0);
    atomic_init(&px->reloads_refused, 0);
    atomic_init(&px->conns_total, 0);
    snprintf(px->via, sizeof px->via, "1.1 %s", cfg->name);
    px->via_len = strlen(px->via);
    snprintf(px->error_headers, sizeof px->error_headers, "Cache-Status: %s; fwd=bypass; detail=bad-request\r\nVia: %s\r\n",
             cfg->name, px->via);
    store_opts_t so = {
        .dir = cfg->cache_dir,
        .size = cfg->cache_size,
        .sync_commit = cfg->cache_sync == CONFIG_SYNC_COMMIT,
        .max_tags = cfg->max_tags,
        .max_tag_bytes = cfg->max_tag_bytes,
    };
    rc = status_new(&px->status, err, errlen);
    if (!rc)
        rc = proxy_metrics_setup(px, px->nworkers, err, errlen);
    if (!rc && (rc = limit_setup(px, err, errlen)))
        proxy_metrics_teardown(px);
    if (!rc && (rc = derive_setup(px, err, errlen))) {
        limit_teardown(px);
        proxy_metrics_teardown(px);
    }
    if (!rc && (rc = store_open(&px->store, &so, err, errlen))) {
        derive_teardown(px);
        limit_teardown(px);
        proxy_metrics_teardown(px);
    }
    if (rc) {
        status_free(px->status);
        proxy_conf_unref(px->conf);
        free(px->workers);
        free(px);
        return rc;
    }
    px->fetches = fetch_table_new();
    px->hooks = (worker_hooks_t){
        .init = w_init,
        .on_connection = w_connection,
        .stopping = w_stopping,
        .close = w_close,
        .fini = w_fini,
        .draining = w_draining,
        .reload = w_reload,
        .ud = px,
    };
    *out = px;
    return 0;
}

void proxy_set_reload_args(proxy_t *px, const char *progname, int argc, char **argv)
{
    px->progname = progname;
    px->argc = argc;
    px->argv = argv;
}

const worker_hooks_t *proxy_hooks(proxy_t *p)
{
    return &p->hooks;
}

void proxy_free(proxy_t *px)
{
    if (!px)
        return;
    derive_teardown(px); /* transforms finish before the store they would write to closes */
    store_close(px->store);
    fetch_table_free(px->fetches);
    limit_teardown(px);
    proxy_metrics_teardown(px);
    status_free(px->status);
    proxy_conf_unref(px->conf);
    free(px->workers);
    free(px);
}

void proxy_set_serving(proxy_t *px)
{
    atomic_store(&px->state, PROXY_SERVING);
}
