/* stream: a client request waiting on a fetch (its own or one it
 * joined) and the streaming of that fetch's response to it.
 *
 * The fetch wakes the waiter from whichever thread drives it; the wake-up
 * is posted to the waiter's own worker, which then reads the state and
 * whatever body bytes are new and writes them while the socket keeps up.
 * A fetch that revalidated a stored object (304) is answered from the
 * store with the new headers; a failed one falls back on the stored
 * object where stale-if-error allows. */
#include "stream.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "derive.h"
#include "log.h"
#include "job.h"
#include "policy_vary.h"
#include "preq.h"
#include "serve.h"

#define READ_IOV 16

static void pump(void *arg);

static preq_t *of_waiter(fetch_waiter_t *w)
{
    return (preq_t *)((char *)w - offsetof(preq_t, waiter));
}

static void on_wake_main(void *arg)
{
    preq_t *p = arg;
    if (p->c && p->f)
        pump(p);
    preq_unref(p);
}

/* Called with the fetch locked, possibly on another thread: only post. */
static void on_wake(fetch_waiter_t *w)
{
    preq_t *p = of_waiter(w);
    preq_ref(p);
    if (worker_post(p->pw->w, on_wake_main, p))
        atomic_fetch_sub(&p->refs, 1); /* worker closing: its connections hold p */
}

fetch_t *stream_join(preq_t *p, const uint8_t key[16], bool *created)
{
    p->waiter.wake = on_wake;
    p->interims_seen = 0;
    *created = true;
    p->f = key ? fetch_join(p->pw->px->fetches, key, &p->waiter, created) : fetch_new_private(&p->waiter);
    if (!p->f) {
        preq_respond(p, 503, "no-memory", "out of memory\n");
        return NULL;
    }
    p->collapsed = !*created;
    http_conn_set_log_tag(p->c, *created ? "miss" : "collapsed");
    if (*created)
        return p->f;
    metrics_inc(p->pw->ms, METRIC_COLLAPSED_WAITERS, 0, 1); /* joined another request's fetch */
    pump(p); /* the fetch may be well under way: catch up now */
    return NULL;
}

void stream_fill(preq_t *p)
{
    bool created;
    uint8_t key[16];
    preq_fetch_key(p, key);
    if (stream_join(p, key, &created))
        job_start(p, p->f, JOB_FILL, p->stored);
}

void stream_private(preq_t *p, bool fill)
{
    bool created;
    if (!stream_join(p, NULL, &created))
        return;
    if (!fill)
        http_conn_set_log_tag(p->c, "pass");
    job_start(p, p->f, fill ? JOB_FILL : JOB_FORWARD, fill ? p->stored : NULL);
}

void stream_background(preq_t *p)
{
    uint8_t key[16];
    preq_fetch_key(p, key);
    fetch_t *f = fetch_start_if_absent(p->pw->px->fetches, key);
    if (!f)
        return; /* a revalidation (or fill) of this object is already under way */
    job_start(p, f, JOB_FILL, p->stored);
    fetch_unref(f);
}

static void detach(preq_t *p)
{
    fetch_detach(p->f, &p->waiter);
    fetch_unref(p->f);
    p->f = NULL;
}

/* The response we waited for cannot be ours: forward on our own (an
 * image variant: made on our own, from a source fetched on our own). */
static void redispatch(preq_t *p)
{
    detach(p);
    if (p->img)
        derive_start(p, true);
    else
        stream_private(p, true);
}

/* The fetch validated the stored object: answer from the store with the
 * headers the 304 brought. */
static void serve_validated(preq_t *p, const resp_info_t *ri)
{
    object_meta_t m;
    stored_t s = { .key = ri->key, .object_id = ri->object_id };
    const char *meta = ri->data + ri->block_len + ri->cstatus_len;
    detach(p);
    if (object_meta_decode(meta, ri->meta_len, &m) == 0) {
        int64_t age, ttl;
        policy_entry_check(&m.entry, NULL, proxy_now(), &age, &ttl);
        char params[128];
        snprintf(params, sizeof params, "; fwd=%s; fwd-status=304%s; ttl=%lld%s", p->fwd ? p->fwd : "stale",
                 ri->stored ? "; stored" : "", (long long)ttl, p->collapsed ? "; collapsed" : "");
        http_conn_set_log_tag(p->c, "revalidated");
        if (ri->upstream)
            http_conn_set_log_upstream(p->c, ri->upstream, ri->upstream_us);
        if (serve_stored_copy(p, &s, &m, params, age))
            return;
    }
    /* The object went away meanwhile: fetch it whole. */
    lookup_stored_free(p->stored);
    p->stored = NULL;
    stream_private(p, true);
}

/* Upstream failed (or answered 5xx) and the stored object may stand in:
 * stale-if-error allows it, or no shield or origin could be reached at all
 * (RFC 9111 4.2.4: a disconnected cache may serve stale, unless the object
 * forbids it). Returns false when it may not, or is gone. */
static bool serve_stale(preq_t *p, const fetch_view_t *v, const char *detail)
{
    object_meta_t m;
    if (!p->stored || object_meta_decode(p->stored->meta, p->stored->meta_len, &m))
        return false;
    uint32_t never = POLICY_ENTRY_NO_STALE | POLICY_ENTRY_NO_CACHE | POLICY_ENTRY_MUST_REVALIDATE |
                     POLICY_ENTRY_PROXY_REVALIDATE;
    if (!p->stale_if_error && (m.entry.flags & never))
        return false;
    int64_t age, ttl;
    policy_entry_check(&m.entry, NULL, proxy_now(), &age, &ttl);
    char params[160], st[24] = "";
    if (v->state != FETCH_FAILED)
        snprintf(st, sizeof st, "; fwd-status=%d", v->status);
    snprintf(params, sizeof params, "; fwd=stale%s; ttl=%lld; detail=%s", st, (long long)ttl, detail);
    detach(p);
    http_conn_set_log_tag(p->c, "stale");
    return serve_stored_copy(p, p->stored, &m, params, age);
}

static void send_head(preq_t *p, const fetch_view_t *v)
{
    const resp_info_t *ri = v->owner_data;
    http_conn_t *c = p->c;
    preq_set_state(p, PREQ_DELIVER);
    if (ri && ri->upstream) /* an image variant made here names its source's */
        http_conn_set_log_upstream(c, ri->upstream, ri->upstream_us);
    http_resp_start(c, v->status, NULL);
    http_resp_header_block(c, ri->data, ri->block_len);
    if (!p->collapsed && ri->own_len)
        http_resp_header_block(c, ri->data + ri->block_len + ri->cstatus_len + ri->meta_len, ri->own_len);
    buf_t *h = http_resp_head(c);
    int64_t age = policy_current_age(ri->entry.corrected_initial_age, ri->entry.response_time, proxy_now());
    buf_printf(h, "Age: %lld\r\nVia: %s\r\n", (long long)age, p->pw->px->via);
    char params[256];
    int n = snprintf(params, sizeof params, "; fwd=%s; fwd-status=%d", p->fwd ? p->fwd : "uri-miss", v->status);
    /* "stored" is a promise only once the length is known: a body of
     * unannounced length may still outgrow max_object_size. */
    if (ri->stored && v->storing && (v->content_length >= 0 || v->state == FETCH_DONE))
        n += snprintf(params + n, sizeof params - (size_t)n, "; stored; ttl=%lld",
                      (long long)(ri->entry.freshness_lifetime - age));
    if (p->collapsed)
        n += snprintf(params + n, sizeof params - (size_t)n, "; collapsed");
    if (ri->detail)
        snprintf(params + n, sizeof params - (size_t)n, "; detail=%s", ri->detail);
    preq_cache_status(p, h, ri->data + ri->block_len, ri->cstatus_len, params);
    int64_t len = v->content_length;
    if (len < 0 && v->state == FETCH_DONE)
        len = (int64_t)v->avail;
    http_resp_end_head(c, len);
}

/* Pass on the interim responses (103 Early Hints) that arrived since the
 * last look, before the final head: without hop-by-hop fields and
 * Content-Length (RFC 9110 8.6). http_resp_interim sends them to
 * HTTP/1.1 clients only. */
static void relay_interim(preq_t *p, const fetch_view_t *v)
{
    buf_t b;
    buf_init(&b, 0);
    for (unsigned i = p->interims_seen; i < v->n_interim && p->c; i++) {
        const http_fields_t *h = &v->interim[i].hdrs;
        buf_reset(&b);
        for (size_t k = 0; k < h->n; k++) {
            http_slice_t n = http_fields_name(h, k), val = http_fields_value(h, k);
            if (policy_hop_by_hop(n.p, n.len) || policy_connection_listed(h, n.p, n.len) ||
                http_name_eq(n, "content-length"))
                continue;
            buf_printf(&b, "%.*s: %.*s\r\n", (int)n.len, n.p, (int)val.len, val.p);
        }
        http_resp_interim(p->c, v->interim[i].status, b.data, b.len);
    }
    p->interims_seen = v->n_interim;
    buf_free(&b);
}

static void fail(preq_t *p, const fetch_view_t *v)
{
    if (p->state == PREQ_DELIVER) {
        /* Part of the body is out: all we can do is close, so the client
         * sees the response is incomplete. */
        http_conn_t *c = p->c;
        preq_end(p);
        http_resp_abort(c);
        return;
    }
    int st = v->err == UPSTREAM_ETIMEOUT ? 504 : 502;
    char body[256];
    snprintf(body, sizeof body, "%s: %s\n", st == 504 ? "upstream timed out" : "upstream failed", v->errmsg);
    preq_respond(p, st, v->err == UPSTREAM_ETIMEOUT ? "upstream-timeout" : "upstream-error", body);
}

/* Before anything is sent: returns true when p was answered (or sent
 * elsewhere) instead of from the fetch's response. */
static bool answer_otherwise(preq_t *p, const fetch_view_t *v)
{
    const resp_info_t *ri = v->owner_data;
    bool upstream_bad = v->state == FETCH_FAILED || (v->state != FETCH_PENDING && v->status >= 500);
    /* (p->stored of an image variant request is its source: never an answer) */
    if (!p->img && upstream_bad && p->stale_if_error && serve_stale(p, v, "stale-if-error"))
        return true;
    if (!p->img && v->state == FETCH_FAILED && v->err == UPSTREAM_ECONNECT &&
        serve_stale(p, v, "upstream-unreachable"))
        return true;
    if (v->redispatch || (p->img && v->state == FETCH_FAILED && v->err == DERIVE_EPRIVATE)) {
        redispatch(p);
        return true;
    }
    if (v->state == FETCH_FAILED) {
        fail(p, v);
        return true;
    }
    if (v->status == 304 && ri && ri->revalidated) {
        if (v->state == FETCH_DONE)
            serve_validated(p, ri);
        return true; /* answered, or wait for the (bodiless) end */
    }
    if (p->collapsed && v->req_hdrs &&
        !policy_vary_response_matches_with(v->hdrs, p->conf->pass_keyed, p->conf->pass_keyed_len, v->req_hdrs,
                                           &p->req->hdrs)) {
        p->fwd = "vary-miss";
        redispatch(p);
        return true;
    }
    return false;
}

static void pump(void *arg)
{
    preq_t *p = arg;
    preq_ref(p);
    for (;;) {
        if (!p->c || !p->f)
            break;
        fetch_view_t v;
        uv_buf_t iov[READ_IOV];
        unsigned n = fetch_read(p->f, &p->waiter, &v, iov, READ_IOV);
        if (p->state != PREQ_DELIVER && v.n_interim > p->interims_seen) {
            relay_interim(p, &v);
            if (!p->c || !p->f)
                break; /* the connection died while writing */
        }
        if (v.state == FETCH_PENDING)
            break;
        if (p->state != PREQ_DELIVER) {
            if (answer_otherwise(p, &v))
                break;
            if (p->req->is_head && v.content_length < 0 && v.state != FETCH_DONE)
                break; /* HEAD: wait for the length */
            send_head(p, &v);
        }
        if (p->req->is_head) {
            preq_finish(p);
            break;
        }
        uint64_t wrote = 0;
        for (unsigned i = 0; i < n && p->c; i++) {
            if (http_resp_write(p->c, iov[i].base, iov[i].len, NULL, NULL))
                break;
            wrote += iov[i].len;
            if (http_conn_pending(p->c) >= HTTP_WRITE_HIGH_WATER)
                break;
        }
        if (!p->c || !p->f)
            break; /* the connection died while writing */
        fetch_consumed(p->f, &p->waiter, wrote);
        uint64_t off = p->waiter.off;
        if (v.state == FETCH_FAILED && off >= v.avail) {
            fail(p, &v);
            break;
        }
        if (v.state == FETCH_DONE && off >= v.avail) {
            preq_finish(p);
            break;
        }
        if (http_conn_pending(p->c) >= HTTP_WRITE_HIGH_WATER) {
            http_conn_on_drain(p->c, pump, p);
            break;
        }
        if (off >= v.avail)
            break; /* caught up: the next wake brings more */
    }
    preq_unref(p);
}
