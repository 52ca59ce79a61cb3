/* proxy: engine set-up and the worker hooks: every worker gets its HTTP
 * server (whose requests preq.c runs), upstream client and store reader;
 * the node gets its store, collapsing table, pools and policy options. */
#include "proxy_state.h"

#include <ctype.h>
#include <errno.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "derive.h"
#include "limit.h"
#include "hash.h"
#include "log.h"
#include "policy_key.h"
#include "job.h"
#include "policy_vary.h"
#include "preq.h"
#include "proxy_metrics.h"
#include "purge_fanout.h"
#include "purge_req.h"

#define TICK_MS 100

int64_t proxy_now(void)
{
    return (int64_t)time(NULL);
}

static void on_tick(uv_timer_t *t)
{
    proxy_worker_t *pw = t->data;
    store_reader_flush_touches(pw->rd);
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
    pw->ms = metrics_shard(px->metrics, worker_index(w));
    http_server_opts_t so;
    http_server_opts_from_config(&so, cfg);
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
        free(pw);
        return NULL;
    }
    uv_timer_init(worker_loop(w), &pw->tick);
    pw->tick.data = pw;
    uv_timer_start(&pw->tick, on_tick, TICK_MS, TICK_MS);
    if (worker_index(w) == 0 && (px->primary_shields || cfg->program == CONFIG_SHIELD)) {
        /* One worker checks the shields (edge) or origins (shield); every
         * worker reads the pool's state. An edge's lone origin is judged
         * by its answers alone. */
        pw->health = health_start(worker_loop(w), px->primary, px->primary_shields ? "/.cdn/health" : cfg->health_path,
                                  cfg->health_interval_ms, cfg->health_timeout_ms);
    }
    return pw;
}

/* SIGTERM: health answers 503 while the node still serves (drain_delay). */
static void w_draining(void *ud)
{
    proxy_t *px = ud;
    atomic_store(&px->state, PROXY_DRAINING);
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
    store_reader_flush_touches(pw->rd);
    uv_close((uv_handle_t *)&pw->tick, NULL);
}

static void w_fini(worker_t *w, void *state, void *ud)
{
    proxy_worker_t *pw = state;
    store_reader_free(pw->rd);
    health_free(pw->health);
    upstream_free(pw->up);
    http_server_free(pw->srv);
    preq_free_spares(pw);
    free(pw);
}

/* A comma-separated list into a pool: shields are "host:port" (sent to as
 * http://host:port), origins base URLs. Returns NULL with err set. */
static pool_t *parse_pool(const config_t *cfg, const char *list, bool shields, bool only, char *err, size_t errlen)
{
    char names[POOL_MAX][256], bases[POOL_MAX][256 + 8];
    const char *np[POOL_MAX], *bp[POOL_MAX];
    size_t n = 0;
    const char *what = shields ? "shields" : "origin";
    http_slice_t item;
    size_t pos = 0;
    while (http_list_next((http_slice_t){ list, strlen(list) }, &pos, &item)) {
        if (n == POOL_MAX || item.len >= sizeof names[0]) {
            snprintf(err, errlen, "%s: at most %d entries of up to %zu characters", what, POOL_MAX,
                     sizeof names[0] - 1);
            return NULL;
        }
        memcpy(names[n], item.p, item.len);
        names[n][item.len] = '\0';
        if (shields) {
            char host[256];
            unsigned port;
            if (config_parse_addr(names[n], host, sizeof host, &port) || port == 0) {
                snprintf(err, errlen, "shields: expected host:port, got '%s'", names[n]);
                return NULL;
            }
            memcpy(bases[n], "http://", 7);
            memcpy(bases[n] + 7, names[n], item.len + 1); /* fits: names are < 256 bytes */
        } else {
            size_t l = item.len;
            while (l && names[n][l - 1] == '/')
                names[n][--l] = '\0';
            if (strncmp(names[n], "http://", 7) && strncmp(names[n], "https://", 8)) {
                snprintf(err, errlen, "origin: expected an http:// or https:// base URL, got '%s'", names[n]);
                return NULL;
            }
            memcpy(bases[n], names[n], l + 1);
        }
        np[n] = names[n];
        bp[n] = bases[n];
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s: empty list", what);
        return NULL;
    }
    pool_opts_t po = {
        .eject_after = cfg->eject_after,
        .backoff_ms = cfg->eject_backoff_ms,
        .backoff_max_ms = cfg->eject_backoff_max_ms,
        /* The node's one and only upstream: ejecting it would leave
         * nothing to try (nginx ignores max_fails for a lone server too). */
        .never_eject = only && n == 1,
    };
    pool_t *p = pool_new(np, bp, n, &po);
    if (!p)
        snprintf(err, errlen, "%s: invalid list '%s' (an entry named twice?)", what, list);
    return p;
}

/* The upstream tiers: shields first (with the origins as the fallback
 * when every shield is down), or the origins alone. */
static int build_pools(proxy_t *px, const config_t *cfg, char *err, size_t errlen)
{
    bool no_origin = strcmp(cfg->origin, "none") == 0 || cfg->origin[0] == '\0';
    bool shields = cfg->shields[0] != '\0';
    pool_t *origins = NULL;
    if (!no_origin && !(origins = parse_pool(cfg, cfg->origin, false, !shields, err, errlen)))
        return -EINVAL;
    if (shields) {
        px->primary = parse_pool(cfg, cfg->shields, true, no_origin, err, errlen);
        if (!px->primary) {
            pool_free(origins);
            return -EINVAL;
        }
        px->primary_shields = true;
        px->fallback = origins;
        return 0;
    }
    if (!origins) {
        snprintf(err, errlen, "origin: a node without shields needs an origin");
        return -EINVAL;
    }
    px->primary = origins;
    return 0;
}

/* A header name list (checked by the config parser) into "name\n" lines,
 * lowercase, each once; returns the length. */
static size_t name_lines(const char *list, char *out, size_t cap)
{
    size_t len = 0, pos = 0;
    http_slice_t item;
    while (http_list_next((http_slice_t){ list, strlen(list) }, &pos, &item)) {
        if (len + item.len + 2 > cap)
            break; /* cannot happen: the lines are no longer than the list */
        char *name = out + len;
        for (size_t i = 0; i < item.len; i++)
            name[i] = (char)tolower((unsigned char)item.p[i]);
        if (policy_vary_listed(out, len, name, item.len))
            continue;
        name[item.len] = '\n';
        len += item.len + 1;
    }
    out[len] = '\0';
    return len;
}

/* The client headers passed upstream although policy_forwarding_header
 * names them; a name in both lists is a mistake worth stopping for. */
static int build_pass_lists(proxy_t *px, const config_t *cfg, char *err, size_t errlen)
{
    px->pass_keyed_len = name_lines(cfg->pass_headers, px->pass_keyed, sizeof px->pass_keyed);
    px->pass_unkeyed_len = name_lines(cfg->pass_headers_unkeyed, px->pass_unkeyed, sizeof px->pass_unkeyed);
    for (size_t i = 0; i < px->pass_keyed_len;) {
        const char *nl = memchr(px->pass_keyed + i, '\n', px->pass_keyed_len - i);
        size_t l = (size_t)(nl - px->pass_keyed) - i;
        if (policy_vary_listed(px->pass_unkeyed, px->pass_unkeyed_len, px->pass_keyed + i, l)) {
            snprintf(err, errlen, "pass_headers_unkeyed: '%.*s' is in pass_headers too: keyed or not?", (int)l,
                     px->pass_keyed + i);
            return -EINVAL;
        }
        i += l + 1;
    }
    return 0;
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
    policy_rule_defaults(&px->defaults);
    px->opts = calloc(cfg->nrules + 1, sizeof *px->opts);
    if (!px->opts) {
        snprintf(err, errlen, "out of memory");
        free(px);
        return -ENOMEM;
    }
    for (size_t i = 0; i <= cfg->nrules; i++) {
        policy_opts_t *o = &px->opts[i];
        policy_rule_opts(i < cfg->nrules ? &cfg->rules[i] : &px->defaults, o);
        /* Surrogate-Control also speaks to this cache, after the more
         * specific CDN-Cache-Control (RFC 9213 section 2.1). */
        if (o->targeted_cc[0] && !o->targeted_cc[1])
            o->targeted_cc[1] = "Surrogate-Control";
    }
    int np = purge_fanout_peers(cfg, px->purge_peers, PURGE_PEERS_MAX, &px->n_purge_shields, err, errlen);
    if (np < 0) {
        free(px->opts);
        free(px);
        return np;
    }
    px->n_purge_peers = (size_t)np;
    atomic_init(&px->purge_peer_failures, 0);
    atomic_init(&px->conns_total, 0);
    if (cfg->purge_token_file[0]) {
        /* Read once at start-up: the token never sits on a command line. */
        int rc = purge_token_load(cfg->purge_token_file, px->purge_token, sizeof px->purge_token, err, errlen);
        if (rc) {
            free(px->opts);
            free(px);
            return rc;
        }
        px->purge_token_len = strlen(px->purge_token);
    }
    if (build_pass_lists(px, cfg, err, errlen) || build_pools(px, cfg, err, errlen)) {
        free(px->opts);
        free(px);
        return -EINVAL;
    }
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
    int rc = policy_rl_cidrs_parse(&px->admin, cfg->admin_allow, err, errlen);
    if (!rc)
        rc = proxy_metrics_setup(px, worker_count_for(cfg->workers), err, errlen);
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
        pool_free(px->primary);
        pool_free(px->fallback);
        free(px->opts);
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
        .ud = px,
    };
    *out = px;
    return 0;
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
    pool_free(px->primary);
    pool_free(px->fallback);
    free(px->opts);
    free(px);
}

void proxy_set_serving(proxy_t *px)
{
    atomic_store(&px->state, PROXY_SERVING);
}
