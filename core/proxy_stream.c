/* proxy_stream: a client request waiting on a fetch (its own or one it
 * joined) and the streaming of that fetch's response to it.
 *
 * The fetch wakes the waiter from whichever thread drives it; the wake-up
 * is posted to the waiter's own worker, which then reads the state and
 * whatever body bytes are new and writes them while the socket keeps up. */
#include "proxy_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "policy_vary.h"

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

void stream_fill(preq_t *p)
{
    bool created;
    p->waiter.wake = on_wake;
    p->f = fetch_join(p->pw->px->fetches, p->hash, &p->waiter, &created);
    if (!p->f) {
        preq_respond(p, 503, "no-memory", "out of memory\n");
        return;
    }
    p->collapsed = !created;
    http_conn_set_log_tag(p->c, created ? "miss" : "collapsed");
    if (created)
        job_start(p, p->f, true);
    else
        pump(p); /* the fetch may be well under way: catch up now */
}

void stream_private(preq_t *p, bool fill)
{
    p->waiter.wake = on_wake;
    p->collapsed = false;
    p->f = fetch_new_private(&p->waiter);
    if (!p->f) {
        preq_respond(p, 503, "no-memory", "out of memory\n");
        return;
    }
    http_conn_set_log_tag(p->c, fill ? "miss" : "pass");
    job_start(p, p->f, fill);
}

/* The response we waited for cannot be ours: forward on our own. */
static void redispatch(preq_t *p)
{
    fetch_detach(p->f, &p->waiter);
    fetch_unref(p->f);
    p->f = NULL;
    stream_private(p, true);
}

static void send_head(preq_t *p, const fetch_view_t *v)
{
    const resp_info_t *ri = v->owner_data;
    http_conn_t *c = p->c;
    http_resp_start(c, v->status, NULL);
    http_resp_header_block(c, ri->data, ri->block_len);
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
    p->head_sent = true;
}

static void fail(preq_t *p, const fetch_view_t *v)
{
    if (p->head_sent) {
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
        if (v.redispatch) {
            redispatch(p);
            break;
        }
        if (v.state == FETCH_PENDING)
            break;
        if (v.state == FETCH_FAILED && !p->head_sent) {
            fail(p, &v);
            break;
        }
        if (!p->head_sent) {
            if (p->collapsed && v.req_hdrs &&
                !policy_vary_response_matches(v.hdrs, v.req_hdrs, &p->req->hdrs)) {
                p->fwd = "vary-miss";
                redispatch(p);
                break;
            }
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
