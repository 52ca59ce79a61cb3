/* health: active checks of a pool's targets (see include/health.h). */
#include "health.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "upstream.h"

typedef struct check {
    struct health *h;
    size_t target;
    upstream_req_t *req;
    bool up;                   /* the status said the server answers */
} check_t;

struct health {
    pool_t *pool;
    upstream_t *up;            /* its own client: timeouts are the check's */
    uv_timer_t timer;
    char path[256];
    check_t checks[POOL_MAX];
};

static int on_headers(void *ctx, int status, const http_fields_t *hdrs)
{
    check_t *c = ctx;
    (void)hdrs;
    c->up = status < 500 && status != 408 && status != 429;
    return 0;
}

static int on_body(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return 0; /* the status is all a check needs */
}

static void on_done(void *ctx, int err, const char *msg)
{
    check_t *c = ctx;
    health_t *h = c->h;
    bool ok = err == UPSTREAM_OK && c->up;
    c->req = NULL;
    pool_change_t ch = pool_report_check(h->pool, c->target, ok, uv_now(h->timer.loop));
    if (ch != POOL_CHANGE_NONE)
        log_warn("%s is %s (health check: %s)", pool_name(h->pool, c->target),
                 ch == POOL_CHANGE_UP ? "back" : "down", ok ? "ok" : err ? msg : "bad status");
}

static const upstream_cbs_t cbs = { .on_headers = on_headers, .on_body = on_body, .on_done = on_done };

static void on_tick(uv_timer_t *t)
{
    health_t *h = t->data;
    buf_t url;
    buf_init(&url, 0);
    for (size_t i = 0; i < pool_size(h->pool); i++) {
        check_t *c = &h->checks[i];
        if (c->req)
            continue; /* the previous check is still running (it has its timeout) */
        buf_reset(&url);
        buf_printf(&url, "%s%s", pool_base(h->pool, i), h->path);
        c->up = false;
        c->req = upstream_start(h->up, "GET", url.data, NULL, NULL, 0, &cbs, c);
        if (!c->req)
            pool_report_check(h->pool, i, false, uv_now(t->loop));
    }
    buf_free(&url);
}

health_t *health_start(uv_loop_t *loop, pool_t *pool, const char *path, uint64_t interval_ms, uint64_t timeout_ms)
{
    health_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    upstream_opts_t uo = { .connect_timeout_ms = timeout_ms, .timeout_ms = timeout_ms, .max_header_size = 16 * 1024 };
    h->up = upstream_new(loop, &uo);
    if (!h->up) {
        free(h);
        return NULL;
    }
    h->pool = pool;
    snprintf(h->path, sizeof h->path, "%s", path && *path ? path : "/");
    for (size_t i = 0; i < POOL_MAX; i++) {
        h->checks[i].h = h;
        h->checks[i].target = i;
    }
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, on_tick, 0, interval_ms);
    return h;
}

void health_close(health_t *h)
{
    if (!h)
        return;
    uv_close((uv_handle_t *)&h->timer, NULL);
    upstream_close(h->up); /* cancels the checks in flight: no callbacks */
    for (size_t i = 0; i < POOL_MAX; i++)
        h->checks[i].req = NULL;
}

void health_free(health_t *h)
{
    if (!h)
        return;
    upstream_free(h->up);
    free(h);
}
