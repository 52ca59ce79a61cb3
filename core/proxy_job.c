/* proxy_job: drive one upstream fetch on the owner's worker: build the
 * upstream request (conditional when revalidating), turn the response
 * head into what every waiter sees, feed the body to the fetch, and hand
 * storing, revalidation and invalidation to proxy_store.c. */
#include "proxy_internal.h"

#include <inttypes.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "object_meta.h"
#include "policy_vary.h"

void job_ref(fjob_t *j)
{
    atomic_fetch_add(&j->refs, 1);
}

void job_unref(fjob_t *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    if (j->f)
        fetch_unref(j->f);
    http_fields_free(&j->req_hdrs);
    http_fields_free(&j->up_hdrs);
    http_fields_free(&j->held_hdrs);
    free(j->held_info);
    buf_free(&j->meta);
    buf_free(&j->vary_fields);
    stored_free(j->validate);
    free(j->up_path);
    buf_free(&j->body);
    free(j->url);
    free(j);
}

static void job_unlink(fjob_t *j)
{
    if (!j->linked)
        return;
    j->linked = false;
    if (j->prev)
        j->prev->next = j->next;
    else
        j->pw->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    fetch_clear_resume(j->f);
}

/* Was this forwarding header configured to pass (pass_headers*)? */
static bool passed(const proxy_t *px, http_slice_t n)
{
    return policy_vary_listed(px->pass_keyed, px->pass_keyed_len, n.p, n.len) ||
           policy_vary_listed(px->pass_unkeyed, px->pass_unkeyed_len, n.p, n.len);
}

/* Headers to send upstream: the client's, minus hop-by-hop fields and the
 * forwarding fields not configured to pass (policy_forwarding_header), plus
 * Via, X-Forwarded-For, and X-Forwarded-Host / -Proto from what this node
 * received (unless the client's pass). A cache fill also drops the
 * client's conditionals and Range (the cache wants the full response to
 * store) and adds the stored object's validators when revalidating. */
static int upstream_headers(const preq_t *p, bool fill, const stored_t *validate, http_fields_t *out)
{
    const http_fields_t *h = &p->req->hdrs;
    const proxy_t *px = p->pw->px;
    static const char *fill_drop[] = { "range", "if-range", "if-match", "if-none-match",
                                       "if-modified-since", "if-unmodified-since", NULL };
    http_slice_t via = { NULL, 0 }, xff = { NULL, 0 }, host = { NULL, 0 };
    bool client_xfh = false, client_xfp = false;
    for (size_t i = 0; i < h->n; i++) {
        http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
        if (policy_hop_by_hop(n.p, n.len) || policy_connection_listed(h, n.p, n.len))
            continue;
        if (policy_forwarding_header(n.p, n.len)) {
            if (!passed(px, n))
                continue;
            client_xfh |= http_name_eq(n, "x-forwarded-host");
            client_xfp |= http_name_eq(n, "x-forwarded-proto");
        }
        if (http_name_eq(n, "host") && !host.p)
            host = v;
        if (http_name_eq(n, "via")) {
            via = v;
            continue;
        }
        if (http_name_eq(n, "x-forwarded-for")) {
            xff = v;
            continue;
        }
        if (http_name_eq(n, "host") && !px->cfg->forward_host)
            continue;
        bool drop = false;
        for (int k = 0; fill && fill_drop[k]; k++)
            drop |= http_name_eq(n, fill_drop[k]);
        if (!drop && http_fields_add(out, n.p, n.len, v.p, v.len))
            return -1;
    }
    buf_t b;
    buf_init(&b, 0);
    if (via.len)
        buf_printf(&b, "%.*s, ", (int)via.len, via.p);
    buf_puts(&b, px->via);
    int rc = http_fields_add(out, "Via", 3, b.data, b.len);
    buf_reset(&b);
    if (xff.len)
        buf_printf(&b, "%.*s, ", (int)xff.len, xff.p);
    buf_puts(&b, p->req->client);
    rc = rc ? rc : http_fields_add(out, "X-Forwarded-For", 15, b.data, b.len);
    buf_free(&b);
    /* What this node actually received: the Host in the cache key, over
     * plain HTTP (the only scheme a node listens on). */
    if (!rc && !client_xfh && host.len)
        rc = http_fields_add(out, "X-Forwarded-Host", 16, host.p, host.len);
    if (!rc && !client_xfp)
        rc = http_fields_add(out, "X-Forwarded-Proto", 17, "http", 4);
    object_meta_t m;
    if (!rc && fill && validate && object_meta_decode(validate->meta, validate->meta_len, &m) == 0) {
        http_slice_t v;
        if (object_meta_field(m.block, m.block_len, "etag", &v))
            rc = http_fields_add(out, "If-None-Match", 13, v.p, v.len);
        if (!rc && object_meta_field(m.block, m.block_len, "last-modified", &v))
            rc = http_fields_add(out, "If-Modified-Since", 17, v.p, v.len);
    }
    return rc;
}

static int64_t parse_content_length(const http_fields_t *h)
{
    http_slice_t v;
    if (http_fields_count(h, "content-length") != 1 || !http_fields_get(h, "content-length", &v))
        return -1;
    v = http_trim(v);
    if (v.len == 0 || v.len > 18)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (v.p[i] - '0');
    }
    return n;
}

void job_publish(fjob_t *j, int status, http_fields_t *hdrs, int64_t cl, int64_t rt, resp_info_t *ri)
{
    j->published = true;
    bool share = ri->stored || ri->revalidated;
    fetch_set_headers(j->f, status, hdrs, cl, rt, share, ri->stored, ri);
}

static void held_released(void *arg)
{
    fjob_t *j = arg;
    if (j->closed) {
        job_unref(j); /* the worker closed meanwhile and failed the fetch */
        return;
    }
    j->held = false;
    resp_info_t *ri = j->held_info;
    j->held_info = NULL;
    job_publish(j, j->held_status, &j->held_hdrs, j->held_cl, j->held_rt, ri);
    if (j->done_held) {
        fetch_finish(j->f, j->done_err, j->done_msg);
        fetch_unpublish(j->f);
    }
    job_unref(j);
}

/* Writer thread: the invalidations are committed; continue on the owner. */
static void on_invalidated(void *ctx, int status)
{
    fjob_t *j = ctx;
    if (status != STORE_OK)
        log_warn("invalidation after %.*s failed", (int)j->url_len, j->url);
    if (worker_post(j->w, held_released, j))
        job_unref(j); /* the worker is shutting down; its close failed the fetch */
}

static uint64_t now_ms(const fjob_t *j)
{
    return uv_now(worker_loop(j->w));
}

/* Methods that may be sent again to another target (RFC 9110 9.2.2) once
 * an attempt failed before anything reached a client. A forwarded body is
 * kept in the job, so PUT qualifies too. */
static bool idempotent(const fjob_t *j)
{
    return j->fill || j->method == HTTP_GET || j->method == HTTP_HEAD || j->method == HTTP_PUT ||
           j->method == HTTP_DELETE || j->method == HTTP_OPTIONS || j->method == HTTP_TRACE;
}

/* The order targets are tried in, for one request: the usable targets of
 * the primary pool (the shields, or the origins), then the usable
 * fallback origins, then, when everything usable has failed or is ejected,
 * the ejected ones anyway in ranking order (panic mode: an ejection is a
 * guess from past failures, and trying beats answering 502 for certain).
 * Phase p covers pool p & 1; phases 2 and 3 ignore health. */
enum { PHASE_PRIMARY, PHASE_FALLBACK, PHASE_PANIC_PRIMARY, PHASE_PANIC_FALLBACK, PHASE_COUNT };

static pool_t *phase_pool(const fjob_t *j, int phase)
{
    return phase & 1 ? j->px->fallback : j->px->primary;
}

/* The next target from j's current phase on: its phase and index, or -1. */
static int next_target(const fjob_t *j, int *phase_out)
{
    uint64_t now = now_ms(j);
    for (int ph = j->phase; ph < PHASE_COUNT; ph++) {
        const pool_t *pool = phase_pool(j, ph);
        if (!pool)
            continue;
        uint32_t tried = j->tried[ph & 1];
        int t = ph < PHASE_PANIC_PRIMARY ? pool_next(pool, j->hash, tried, now) : pool_next_any(pool, j->hash, tried);
        if (t >= 0) {
            *phase_out = ph;
            return t;
        }
    }
    return -1;
}

/* Is there another target to try for this request? */
static bool can_retry(const fjob_t *j)
{
    int ph;
    return !j->published && idempotent(j) && !j->closed && next_target(j, &ph) >= 0;
}

/* Report the outcome of the current attempt to its pool, and log a change. */
static void report(fjob_t *j, pool_result_t r, const char *why)
{
    pool_change_t ch = pool_report(j->pool, (size_t)j->target, r, now_ms(j));
    if (ch == POOL_CHANGE_DOWN)
        log_warn("%s is down (%s)%s", pool_name(j->pool, (size_t)j->target), why,
                 pool_size(j->pool) == 1 && !j->px->fallback ? "; it is the only upstream, so it is still used" : "");
    else if (ch == POOL_CHANGE_UP)
        log_warn("%s is back", pool_name(j->pool, (size_t)j->target));
}

/* Does this answer say the target is broken? An HTTP answer is the target
 * working; an origin's 502/503/504 counts only where the operator opted
 * in, and a shield's never: it relays its origin's status. */
static bool answer_fails_target(const fjob_t *j, int status)
{
    bool shield = j->px->primary_shields && j->pool == j->px->primary;
    return j->px->cfg->eject_on_5xx && !shield && (status == 502 || status == 503 || status == 504);
}

static int on_headers(void *ctx, int status, const http_fields_t *hdrs)
{
    fjob_t *j = ctx;
    int64_t now = proxy_now();
    bool failing = status == 502 || status == 503 || status == 504;
    report(j, answer_fails_target(j, status) ? POOL_FAIL : POOL_OK, "5xx answers");
    if (failing && can_retry(j)) {
        j->retry = true;
        return -1; /* drop this answer: the next target gets the request */
    }
    if (j->validate && status == 304)
        return store_revalidated(j, hdrs, now);
    int64_t cl = parse_content_length(hdrs);
    resp_info_t *ri = store_plan(j, status, hdrs, cl, now);
    if (!ri)
        return -1;
    http_fields_t copy;
    http_fields_init(&copy, 0);
    http_fields_copy(&copy, hdrs);
    if (policy_method_invalidates(j->method, status)) {
        /* Drop the stored objects first; the client sees the response after. */
        j->held = true;
        j->held_status = status;
        j->held_hdrs = copy;
        j->held_cl = cl;
        j->held_rt = now;
        j->held_info = ri;
        job_ref(j);
        if (!store_invalidate(j, hdrs)) {
            job_unref(j);
            j->held = false;
            j->held_info = NULL;
            job_publish(j, status, &j->held_hdrs, cl, now, ri);
        }
        return 0;
    }
    job_publish(j, status, &copy, cl, now, ri);
    http_fields_free(&copy);
    return 0;
}

static int on_body(void *ctx, const char *p, size_t n)
{
    fjob_t *j = ctx;
    j->body_len += n;
    if (j->storing && j->body_len > j->px->cfg->max_object_size) {
        /* A body of unannounced length grew past the bound: pass it on, don't keep it. */
        j->storing = false;
        fetch_stop_storing(j->f);
    }
    int rc = fetch_append(j->f, p, n);
    if (rc == FETCH_ENOMEM) {
        /* The bytes are lost: fail the fetch (waiters see a truncated
         * transfer, the connection closed) and store nothing. on_done then
         * gets UPSTREAM_EABORT and neither retries nor commits. */
        j->storing = false;
        fetch_finish(j->f, UPSTREAM_EIO, "out of memory buffering the upstream response");
        return -1;
    }
    if (!j->storing && fetch_waiters(j->f) == 0)
        return -1; /* nobody is listening and nothing is stored: stop */
    if (rc == FETCH_PAUSE) {
        j->paused = true;
        return UPSTREAM_PAUSE;
    }
    return 0;
}

/* 103 Early Hints go to the waiters ahead of the final head (never stored). */
static int on_interim(void *ctx, int status, const http_fields_t *hdrs)
{
    fjob_t *j = ctx;
    if (status == 103)
        fetch_add_interim(j->f, status, hdrs);
    return 0;
}

static void on_done(void *ctx, int err, const char *msg);
static const upstream_cbs_t job_cbs = { .on_headers = on_headers, .on_body = on_body, .on_done = on_done,
                                        .on_interim = on_interim };

/* Send the request to the next target in next_target's order. */
static bool send_upstream(fjob_t *j)
{
    int ph;
    int t = next_target(j, &ph);
    if (t < 0)
        return false;
    j->phase = ph;
    j->pool = phase_pool(j, ph);
    j->target = t;
    j->tried[ph & 1] |= 1u << t;
    j->retry = false;
    buf_t url;
    buf_init(&url, 0);
    buf_printf(&url, "%s%s", pool_base(j->pool, (size_t)t), j->up_path);
    const char *method = j->fill ? "GET" : llhttp_method_name((llhttp_method_t)j->method);
    bool body = !j->fill && (j->body.len || j->method == HTTP_POST || j->method == HTTP_PUT || j->method == HTTP_PATCH);
    j->ureq = upstream_start(j->pw->up, method, url.data, &j->up_hdrs, body ? j->body.data : NULL,
                             body ? j->body.len : 0, &job_cbs, j);
    buf_free(&url);
    return j->ureq != NULL;
}

static void on_done(void *ctx, int err, const char *msg)
{
    fjob_t *j = ctx;
    j->ureq = NULL;
    if (err != UPSTREAM_OK && !j->retry && err != UPSTREAM_EABORT)
        report(j, POOL_FAIL, msg);
    while ((j->retry || (err != UPSTREAM_OK && err != UPSTREAM_EABORT)) && can_retry(j)) {
        log_info("%.*s: %s failed (%s); trying the next", (int)j->url_len, j->url,
                 pool_name(j->pool, (size_t)j->target), j->retry ? "5xx" : msg);
        if (send_upstream(j))
            return;
    }
    char last[200];
    int tries = __builtin_popcount(j->tried[0]) + __builtin_popcount(j->tried[1]);
    if (!j->retry && err != UPSTREAM_OK && err != UPSTREAM_EABORT && tries > 1) {
        snprintf(last, sizeof last, "no shield or origin could be reached (%d tried); the last: %s", tries, msg);
        msg = last;
    }
    if (j->retry) {
        /* The 5xx we dropped to try elsewhere had nowhere left to go. */
        err = UPSTREAM_EIO;
        msg = "every shield or origin tried answered 502/503/504";
    }
    if (j->restart && err == UPSTREAM_OK && !j->closed) {
        /* The 304 did not fit the stored object: ask for the full response. */
        j->restart = false;
        stored_free(j->validate);
        j->validate = NULL;
        http_fields_remove(&j->up_hdrs, "if-none-match");
        http_fields_remove(&j->up_hdrs, "if-modified-since");
        /* A new request, not a retry: every target may take it again. */
        j->phase = PHASE_PRIMARY;
        j->tried[0] = j->tried[1] = 0;
        if (send_upstream(j))
            return;
        err = UPSTREAM_ECONNECT;
        msg = "could not start the upstream request";
    }
    job_unlink(j);
    if (j->held) {
        j->done_held = true;
        j->done_err = err;
        snprintf(j->done_msg, sizeof j->done_msg, "%s", msg);
        job_unref(j);
        return;
    }
    fetch_finish(j->f, err, msg);
    if (err == UPSTREAM_OK && j->storing && store_commit(j))
        return; /* the store operation holds our reference now */
    fetch_unpublish(j->f);
    job_unref(j);
}

static void on_resume(void *arg)
{
    fjob_t *j = arg;
    if (j->ureq && j->paused) {
        j->paused = false;
        upstream_pause(j->ureq, false);
    }
}

void job_start(preq_t *p, fetch_t *f, bool fill, const stored_t *validate)
{
    proxy_worker_t *pw = p->pw;
    proxy_t *px = pw->px;
    http_req_t *req = p->req;
    buf_t url;
    buf_init(&url, 0);
    const char *fail_msg = "could not start the upstream request";
    fjob_t *j = calloc(1, sizeof *j);
    if (!j)
        goto fail;
    atomic_init(&j->refs, 1);
    j->pw = pw;
    j->w = pw->w;
    j->px = px;
    j->f = f;
    fetch_ref(f);
    j->method = req->method;
    j->fill = fill;
    j->rule = p->rule;
    j->popts = p->popts;
    j->pol = p->pol;
    if (fill)
        j->pol.method = HTTP_GET; /* a HEAD miss fills the cache with a GET */
    j->request_time = proxy_now();
    j->variant = p->variant;
    http_fields_init(&j->req_hdrs, 0);
    http_fields_init(&j->up_hdrs, 0);
    http_fields_init(&j->held_hdrs, 0);
    buf_init(&j->meta, 0);
    buf_init(&j->body, 0);
    buf_init(&j->vary_fields, 64 * 1024);
    memcpy(j->hash, p->hash, 16);
    if (fill && validate) {
        j->validate = calloc(1, sizeof *j->validate);
        if (!j->validate || !(j->validate->meta = malloc(validate->meta_len + 1)))
            goto fail;
        memcpy(j->validate->meta, validate->meta, validate->meta_len);
        j->validate->meta_len = validate->meta_len;
        j->validate->key = validate->key;
        j->validate->object_id = validate->object_id;
        j->validate->body_len = validate->body_len;
    }
    j->url = malloc(p->key.len + 1);
    if (!j->url || http_fields_copy(&j->req_hdrs, &req->hdrs) ||
        upstream_headers(p, fill, j->validate, &j->up_hdrs))
        goto fail;
    memcpy(j->url, p->key.data, p->key.len + 1);
    j->url_len = p->key.len;
    fetch_set_request(f, &req->hdrs, j->request_time);
    /* origin-form path and query; an absolute-form target keeps only those */
    const char *t = req->target;
    size_t tl = req->target_len;
    if (t[0] != '/') {
        const char *s = strstr(t, "://");
        const char *slash = s ? strchr(s + 3, '/') : NULL;
        t = slash ? slash : "/";
        tl = slash ? tl - (size_t)(slash - req->target) : 1;
    }
    buf_append(&url, t, tl);
    j->up_path = buf_steal(&url);
    if (!j->up_path || (!fill && req->body.len && buf_append(&j->body, req->body.data, req->body.len)))
        goto fail;
    if (!send_upstream(j)) {
        fail_msg = "no shield or origin is available";
        goto fail;
    }
    j->linked = true;
    j->next = pw->jobs;
    if (pw->jobs)
        pw->jobs->prev = j;
    pw->jobs = j;
    fetch_set_resume(f, pw->w, on_resume, j);
    return;
fail:
    log_warn("cannot start upstream request for %.*s: %s", (int)p->key.len, p->key.data, fail_msg);
    fetch_finish(f, UPSTREAM_ECONNECT, fail_msg);
    fetch_unpublish(f);
    if (j)
        job_unref(j);
    buf_free(&url);
}

void job_close_all(proxy_worker_t *pw)
{
    while (pw->jobs) {
        fjob_t *j = pw->jobs;
        job_unlink(j);
        if (j->ureq) {
            upstream_cancel(j->ureq);
            j->ureq = NULL;
        }
        j->closed = true;
        fetch_finish(j->f, UPSTREAM_EIO, "node shutting down");
        fetch_unpublish(j->f);
        job_unref(j); /* a held job's invalidation holds its own reference */
    }
}

void job_held_release_cb(void *ctx, int status)
{
    on_invalidated(ctx, status);
}
