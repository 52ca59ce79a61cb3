/* proxy_job: drive one upstream fetch on the owner's worker: build the
 * upstream request, decide from the response head whether it can be
 * stored and shared, feed the body to the fetch's waiters, store it, and
 * invalidate after unsafe methods.
 *
 * A job outlives the client request that started it (other waiters and
 * the store may still need it), so it is refcounted on its own: one
 * reference while the upstream transfer runs, one per store operation. */
#include "proxy_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "object_meta.h"
#include "policy_date.h"
#include "policy_vary.h"

struct fjob {
    atomic_int refs;
    proxy_worker_t *pw;        /* the owner's state: gone once the worker has stopped */
    worker_t *w;               /* the owner: valid as long as the store (see worker_group_free) */
    proxy_t *px;
    fjob_t *next, *prev;       /* pw->jobs, while the transfer runs */
    bool linked;
    fetch_t *f;
    upstream_req_t *ureq;
    int method;                /* the client's */
    bool fill;                 /* cache fill (GET upstream) rather than a forwarded request */
    policy_req_t pol;
    http_fields_t req_hdrs;    /* the primary's request headers */
    char *url;                 /* cache key string */
    size_t url_len;
    uint8_t hash[16];
    int64_t request_time;
    bool storing;
    bool paused;
    uint64_t body_len;         /* body bytes received */
    buf_t meta;                /* encoded object metadata while storing */
    /* invalidation after an unsafe method holds the head back until the
     * store has dropped the old object, so no later request can hit it */
    bool held;
    int held_status;
    http_fields_t held_hdrs;
    int64_t held_cl, held_rt;
    resp_info_t *held_info;
    bool done_held;
    bool closed;               /* job_close_all ran */
    int done_err;
    char done_msg[160];
};

static void job_unref(fjob_t *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    if (j->f)
        fetch_unref(j->f);
    http_fields_free(&j->req_hdrs);
    http_fields_free(&j->held_hdrs);
    free(j->held_info);
    buf_free(&j->meta);
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

/* Headers to send upstream: the client's, minus hop-by-hop fields, plus
 * Via and X-Forwarded-For. A cache fill also drops conditionals and
 * Range: the cache wants the full response to store. */
static int upstream_headers(const preq_t *p, bool fill, http_fields_t *out)
{
    const http_fields_t *h = &p->req->hdrs;
    const proxy_t *px = p->pw->px;
    static const char *fill_drop[] = { "range", "if-range", "if-match", "if-none-match",
                                       "if-modified-since", "if-unmodified-since", NULL };
    http_slice_t via = { NULL, 0 }, xff = { NULL, 0 };
    for (size_t i = 0; i < h->n; i++) {
        http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
        if (policy_hop_by_hop(n.p, n.len) || policy_connection_listed(h, n.p, n.len))
            continue;
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

/* The response head as clients get it: no hop-by-hop fields, no framing
 * (rebuilt per response), no Age (recomputed), Cache-Status apart (we
 * append to it). A stored response also loses the fields the store must
 * not keep (Set-Cookie, private="..." / no-cache="..." fields). */
static resp_info_t *make_info(const http_fields_t *h, const policy_resp_t *r,
                              const policy_entry_t *e, bool stored, const char *why, int64_t response_time)
{
    buf_t block;
    buf_init(&block, 0);
    http_slice_t cs = { "", 0 };
    bool has_date = false;
    for (size_t i = 0; i < h->n; i++) {
        http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
        if (policy_hop_by_hop(n.p, n.len) || policy_connection_listed(h, n.p, n.len) ||
            http_name_eq(n, "content-length") || http_name_eq(n, "age"))
            continue;
        if (http_name_eq(n, "cache-status")) {
            cs = v;
            continue;
        }
        if (stored && !policy_field_storable(r, h, n.p, n.len))
            continue;
        has_date |= http_name_eq(n, "date");
        buf_append(&block, n.p, n.len);
        buf_append(&block, ": ", 2);
        buf_append(&block, v.p, v.len);
        buf_append(&block, "\r\n", 2);
    }
    if (!has_date) {
        char d[30];
        policy_date_format(response_time, d);
        buf_printf(&block, "Date: %s\r\n", d);
    }
    resp_info_t *ri = malloc(sizeof *ri + block.len + cs.len);
    if (ri) {
        ri->entry = *e;
        ri->stored = stored;
        ri->detail = why;
        ri->block_len = block.len;
        ri->cstatus_len = cs.len;
        if (block.len)
            memcpy(ri->data, block.data, block.len);
        if (cs.len)
            memcpy(ri->data + block.len, cs.p, cs.len);
    }
    buf_free(&block);
    return ri;
}

static void publish(fjob_t *j, int status, http_fields_t *hdrs, int64_t cl, int64_t rt, resp_info_t *ri)
{
    fetch_set_headers(j->f, status, hdrs, cl, rt, ri->stored, ri->stored, ri);
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
    publish(j, j->held_status, &j->held_hdrs, j->held_cl, j->held_rt, ri);
    if (j->done_held) {
        fetch_finish(j->f, j->done_err, j->done_msg);
        fetch_unpublish(j->f);
    }
    job_unref(j);
}

/* Writer thread: the invalidation is committed; continue on the owner. */
static void on_invalidated(void *ctx, int status)
{
    fjob_t *j = ctx;
    if (status != STORE_OK)
        log_warn("invalidation of %.*s failed", (int)j->url_len, j->url);
    if (worker_post(j->w, held_released, j))
        job_unref(j); /* the worker is shutting down; its close failed the fetch */
}

static int on_headers(void *ctx, int status, const http_fields_t *hdrs)
{
    fjob_t *j = ctx;
    proxy_t *px = j->px;
    int64_t now = proxy_now();
    policy_resp_t r;
    policy_resp_parse(&r, status, hdrs, &px->popts);
    const char *why = NULL;
    bool storable = j->fill && policy_storable(&j->pol, &r, &px->popts, &why);
    int64_t cl = j->method == HTTP_HEAD && !j->fill ? -1 : parse_content_length(hdrs);
    if (storable && cl >= 0 && (uint64_t)cl > px->cfg->max_object_size) {
        storable = false;
        why = "too-large";
    }
    buf_t vary;
    buf_init(&vary, 64 * 1024);
    if (storable) {
        int vk = policy_vary_key(&vary, hdrs, &j->req_hdrs);
        if (vk < 0 || vk == POLICY_VARY_STAR) {
            storable = false;
            why = vk < 0 ? "vary-too-large" : "vary-star";
        }
    }
    policy_entry_t e;
    policy_entry_init(&e, &r, &px->popts, j->request_time, now);
    resp_info_t *ri = make_info(hdrs, &r, &e, storable, why, now);
    if (!ri) {
        buf_free(&vary);
        return -1;
    }
    j->storing = storable;
    if (storable) {
        object_meta_t m = {
            .status = status,
            .entry = e,
            .block = ri->data,
            .block_len = ri->block_len,
            .cstatus = ri->data + ri->block_len,
            .cstatus_len = ri->cstatus_len,
            .vary = vary.data ? vary.data : "",
            .vary_len = vary.len,
        };
        if (object_meta_encode(&j->meta, &m))
            j->storing = ri->stored = false;
    }
    buf_free(&vary);
    http_fields_t copy;
    http_fields_init(&copy, 0);
    http_fields_copy(&copy, hdrs);
    if (policy_method_invalidates(j->method, status)) {
        /* Drop the stored object first; the client sees the response after. */
        j->held = true;
        j->held_status = status;
        j->held_hdrs = copy;
        j->held_cl = cl;
        j->held_rt = now;
        j->held_info = ri;
        atomic_fetch_add(&j->refs, 1);
        if (store_delete_url(px->store, j->hash, on_invalidated, j) != STORE_OK) {
            job_unref(j);
            j->held = false;
            j->held_info = NULL;
            publish(j, status, &j->held_hdrs, cl, now, ri);
        }
        return 0;
    }
    publish(j, status, &copy, cl, now, ri);
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
    bool pause = fetch_append(j->f, p, n);
    if (!j->storing && fetch_waiters(j->f) == 0)
        return -1; /* nobody is listening and nothing is stored: stop */
    if (pause) {
        j->paused = true;
        return UPSTREAM_PAUSE;
    }
    return 0;
}

static void store_body(void *ctx, uint64_t off, void *dst, size_t len)
{
    fjob_t *j = ctx;
    fetch_copy_body(j->f, off, dst, len);
}

static void stored_on_owner(void *arg)
{
    fjob_t *j = arg;
    fetch_unpublish(j->f);
    job_unref(j);
}

/* Writer thread: the object is committed (or failed). Requests that came
 * in meanwhile joined the fetch; from now on they find the object. */
static void on_stored(void *ctx, int status)
{
    fjob_t *j = ctx;
    if (status != STORE_OK)
        log_warn("storing %.*s failed", (int)j->url_len, j->url);
    if (worker_post(j->w, stored_on_owner, j)) {
        fetch_unpublish(j->f); /* owner gone: finish here (no loop handles involved) */
        job_unref(j);
    }
}

static void on_done(void *ctx, int err, const char *msg)
{
    fjob_t *j = ctx;
    j->ureq = NULL;
    job_unlink(j);
    if (j->held) {
        j->done_held = true;
        j->done_err = err;
        snprintf(j->done_msg, sizeof j->done_msg, "%s", msg);
        job_unref(j);
        return;
    }
    fetch_finish(j->f, err, msg);
    if (err == UPSTREAM_OK && j->storing) {
        store_put_t sp = {
            .url = j->url,
            .url_len = j->url_len,
            .meta = j->meta.data,
            .meta_len = j->meta.len,
            .body_len = j->body_len,
            .body = store_body,
            .done = on_stored,
            .ctx = j,
        };
        memcpy(sp.key.hash, j->hash, 16);
        sp.key.variant = 0;
        if (store_put(j->px->store, &sp) == STORE_OK)
            return; /* our reference passes to the store operation */
    }
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

static const upstream_cbs_t job_cbs = { on_headers, on_body, on_done };

void job_start(preq_t *p, fetch_t *f, bool fill)
{
    proxy_worker_t *pw = p->pw;
    proxy_t *px = pw->px;
    http_req_t *req = p->req;
    http_fields_t up;
    buf_t url;
    http_fields_init(&up, 0);
    buf_init(&url, 0);
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
    j->pol = p->pol;
    if (fill)
        j->pol.method = HTTP_GET; /* a HEAD miss fills the cache with a GET */
    j->request_time = proxy_now();
    http_fields_init(&j->req_hdrs, 0);
    http_fields_init(&j->held_hdrs, 0);
    buf_init(&j->meta, 0);
    memcpy(j->hash, p->hash, 16);
    j->url = malloc(p->key.len + 1);
    if (!j->url || http_fields_copy(&j->req_hdrs, &req->hdrs) || upstream_headers(p, fill, &up))
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
    buf_printf(&url, "%s%.*s", px->origin, (int)tl, t);
    const char *method = fill ? "GET" : req->method_name;
    j->ureq = upstream_start(pw->up, method, url.data, &up, fill ? NULL : req->body.data,
                             fill ? 0 : req->body.len, &job_cbs, j);
    if (!j->ureq)
        goto fail;
    j->linked = true;
    j->next = pw->jobs;
    if (pw->jobs)
        pw->jobs->prev = j;
    pw->jobs = j;
    fetch_set_resume(f, pw->w, on_resume, j);
    http_fields_free(&up);
    buf_free(&url);
    return;
fail:
    log_error("cannot start upstream request for %.*s", (int)p->key.len, p->key.data);
    fetch_finish(f, UPSTREAM_ECONNECT, "could not start the upstream request");
    fetch_unpublish(f);
    if (j)
        job_unref(j);
    http_fields_free(&up);
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
