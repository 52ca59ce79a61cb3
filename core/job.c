/* job: one upstream fetch as a state machine, driven on the owner's
 * worker (see include/job.h for the states, docs/ARCHITECTURE.md for the
 * diagram).
 *
 *   CONNECT -> HEAD -> STREAM_STORE -> COMMIT        (a fill, stored)
 *                   -> STREAM_PASS  -> DONE          (not stored)
 *                   -> REVALIDATED  -> COMMIT        (a 304 freshened the stored object)
 *                   -> HELD -> STREAM_PASS | HELD_ENDED -> DONE   (unsafe method)
 *                   -> RETRY | RESTART -> CONNECT    (next target / fetch whole)
 *   HEAD (transfer failed) -> CONNECT (next target) | DONE
 *   any running state -> CLOSED (the worker shuts down)
 *
 * Upstream callbacks (head, body, end) and the store's completions are the
 * events. Each state that acts at once has a step function (stp_*) that
 * returns the next state, and job_run runs them until a state waits for
 * an event. The legal transitions are the table below, checked on every
 * change. */
#include "job.h"

#include <assert.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#include "job_store.h"
#include "log.h"
#include "preq.h"
#include "proxy_metrics.h"

#define B(s) (1u << (s))
/* Where each state may go. CLOSED is reachable from every state that has a
 * transfer running (job_close_all). */
static const uint32_t job_next[JOB_STATE_COUNT] = {
    [JOB_CONNECT] = B(JOB_HEAD) | B(JOB_DONE),
    [JOB_HEAD] = B(JOB_RETRY) | B(JOB_RESTART) | B(JOB_HELD) | B(JOB_STREAM_STORE) | B(JOB_STREAM_PASS) |
                 B(JOB_REVALIDATED) | B(JOB_CONNECT) | B(JOB_DONE) | B(JOB_CLOSED),
    [JOB_RETRY] = B(JOB_CONNECT) | B(JOB_DONE) | B(JOB_CLOSED),
    [JOB_RESTART] = B(JOB_CONNECT) | B(JOB_DONE) | B(JOB_CLOSED),
    [JOB_HELD] = B(JOB_STREAM_PASS) | B(JOB_HELD_ENDED) | B(JOB_CLOSED),
    [JOB_HELD_ENDED] = B(JOB_DONE),
    [JOB_STREAM_STORE] = B(JOB_STREAM_PASS) | B(JOB_COMMIT) | B(JOB_DONE) | B(JOB_CLOSED),
    [JOB_STREAM_PASS] = B(JOB_DONE) | B(JOB_CLOSED),
    [JOB_REVALIDATED] = B(JOB_COMMIT) | B(JOB_DONE) | B(JOB_CLOSED),
    [JOB_COMMIT] = B(JOB_DONE),
    [JOB_DONE] = 0,
    [JOB_CLOSED] = 0,
};

static const char *const job_names[JOB_STATE_COUNT] = {
    "connect", "head", "retry", "restart", "held", "held-ended", "stream-store",
    "stream-pass", "revalidated", "commit", "done", "closed",
};

const char *job_state_name(job_state_t s)
{
    return s < JOB_STATE_COUNT ? job_names[s] : "?";
}

bool job_state_legal(job_state_t from, job_state_t to)
{
    return from < JOB_STATE_COUNT && to < JOB_STATE_COUNT && (job_next[from] & B(to));
}

static bool linked(const fjob_t *j)
{
    return j->prev || j->pw->jobs == j;
}

static void job_unlink(fjob_t *j)
{
    if (!linked(j))
        return;
    if (j->prev)
        j->prev->next = j->next;
    else
        j->pw->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->next = j->prev = NULL;
    fetch_clear_resume(j->f);
}

/* Enter state s. A job is on its worker's list exactly while a transfer
 * may run, so leaving those states unlinks it. */
static void set_state(fjob_t *j, job_state_t s)
{
    if (s == j->state)
        return;
    assert(job_state_legal(j->state, s));
    j->state = s;
    if (s == JOB_HELD_ENDED || s == JOB_COMMIT || s == JOB_DONE || s == JOB_CLOSED)
        job_unlink(j);
}

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
    http_fields_free(&j->held.hdrs);
    free(j->held.info);
    buf_free(&j->meta);
    buf_free(&j->vary_fields);
    buf_free(&j->tags);
    lookup_stored_free(j->validate);
    free(j->up_path);
    buf_free(&j->body);
    free(j->url);
    proxy_conf_unref(j->conf);
    free(j);
}

void job_publish(fjob_t *j, int status, http_fields_t *hdrs, int64_t cl, int64_t rt, resp_info_t *ri)
{
    bool share = ri->stored || ri->revalidated;
    ri->upstream = j->up_name;
    ri->upstream_us = j->up_us;
    fetch_set_headers(j->f, status, hdrs, cl, rt, share, ri->stored, ri);
}

/* Methods that may be sent again to another target (RFC 9110 9.2.2) once
 * an attempt failed before anything reached a client. A forwarded body is
 * kept in the job, so PUT qualifies too. */
static bool idempotent(const fjob_t *j)
{
    return j->kind == JOB_FILL || j->method == HTTP_GET || j->method == HTTP_HEAD || j->method == HTTP_PUT ||
           j->method == HTTP_DELETE || j->method == HTTP_OPTIONS || j->method == HTTP_TRACE;
}

/* May the request go to another target? Only while nothing was published
 * to the fetch's waiters. */
static bool can_retry(const fjob_t *j)
{
    bool unpublished = j->state == JOB_HEAD || j->state == JOB_RETRY || j->state == JOB_RESTART;
    return unpublished && idempotent(j) && job_target_left(j);
}

/* Note how the transfer ended, for JOB_DONE. */
static job_state_t end(fjob_t *j, int err, const char *msg)
{
    j->end_err = err;
    snprintf(j->end_msg, sizeof j->end_msg, "%s", msg ? msg : "");
    return JOB_DONE;
}

static void job_run(fjob_t *j, job_state_t next);

/* --- events from the upstream transfer --- */

static int on_headers(void *ctx, int status, const http_fields_t *hdrs);
static int on_body(void *ctx, const char *p, size_t n);
static int on_interim(void *ctx, int status, const http_fields_t *hdrs);
static void on_done(void *ctx, int err, const char *msg);
static const upstream_cbs_t job_cbs = { .on_headers = on_headers, .on_body = on_body, .on_done = on_done,
                                        .on_interim = on_interim };

/* JOB_CONNECT: send the request to the next target that takes it. */
static job_state_t stp_connect(fjob_t *j)
{
    buf_t url;
    buf_init(&url, 0);
    const char *method = j->kind == JOB_FILL ? "GET" : llhttp_method_name((llhttp_method_t)j->method);
    bool body = j->kind == JOB_FORWARD &&
                (j->body.len || j->method == HTTP_POST || j->method == HTTP_PUT || j->method == HTTP_PATCH);
    while (job_target_next(j)) {
        buf_reset(&url);
        buf_printf(&url, "%s%s", pool_base(j->pool, (size_t)j->target), j->up_path);
        j->ureq = upstream_start(j->pw->up, method, url.data, &j->up_hdrs, body ? j->body.data : NULL,
                                 body ? j->body.len : 0, &job_cbs, j);
        if (j->ureq)
            break;
    }
    buf_free(&url);
    if (j->ureq) {
        j->sent_us = worker_now_us();
        j->up_slot = proxy_metrics_target(j->px, pool_name(j->pool, (size_t)j->target), &j->up_name);
    } else {
        metrics_inc(j->pw->ms, METRIC_UPSTREAM_ERRORS, METRIC_UPERR_NO_TARGET, 1);
        log_warn("cannot start upstream request for %.*s", (int)j->url_len, j->url);
        return end(j, UPSTREAM_ECONNECT, "no shield or origin is available");
    }
    return JOB_HEAD;
}

/* JOB_HEAD, the head arrived: what every waiter sees, and what is kept. */
static job_state_t stp_head(fjob_t *j, int status, const http_fields_t *hdrs)
{
    int64_t now = proxy_now();
    bool failing = status == 502 || status == 503 || status == 504;
    uint64_t t = worker_now_us();
    j->up_us = t > j->sent_us ? t - j->sent_us : 1; /* a head always took some time */
    metrics_observe(j->pw->ms, METRIC_UPSTREAM_DURATION, j->up_slot, (double)j->up_us / 1e6);
    if (status >= 500)
        metrics_inc(j->pw->ms, METRIC_UPSTREAM_ERRORS, METRIC_UPERR_5XX, 1);
    job_target_report(j, job_target_answer_fails(j, status) ? POOL_FAIL : POOL_OK, "5xx answers");
    if (failing && can_retry(j))
        return JOB_RETRY; /* drop this answer: the next target gets the request */
    if (j->validate && status == 304) {
        switch (job_store_revalidated(j, hdrs, now)) {
        case JOB_STORE_304_UPDATED:
            return JOB_REVALIDATED;
        case JOB_STORE_304_ONLY_HERE:
            return JOB_STREAM_PASS;
        case JOB_STORE_304_FOREIGN:
            return JOB_RESTART;
        case JOB_STORE_304_FAILED:
            break;
        }
        return JOB_HEAD; /* abort: the transfer ends with an error */
    }
    int64_t cl = http_fields_content_length(hdrs);
    resp_info_t *ri = job_store_plan(j, status, hdrs, cl, now);
    if (!ri)
        return JOB_HEAD;
    job_state_t body = ri->stored ? JOB_STREAM_STORE : JOB_STREAM_PASS;
    http_fields_t copy;
    http_fields_init(&copy, 0);
    http_fields_copy(&copy, hdrs);
    if (policy_method_invalidates(j->method, status)) {
        /* Drop the stored objects first; the client sees the response after. */
        j->held.status = status;
        j->held.hdrs = copy;
        j->held.cl = cl;
        j->held.rt = now;
        j->held.info = ri;
        job_ref(j); /* the invalidation's */
        if (job_store_invalidate(j, hdrs))
            return JOB_HELD;
        job_unref(j);
        j->held.info = NULL;
        job_publish(j, status, &j->held.hdrs, cl, now, ri);
        return body;
    }
    job_publish(j, status, &copy, cl, now, ri);
    http_fields_free(&copy);
    return body;
}

static int on_headers(void *ctx, int status, const http_fields_t *hdrs)
{
    fjob_t *j = ctx;
    job_state_t next = stp_head(j, status, hdrs);
    set_state(j, next);
    /* RETRY drops the answer; HEAD means it could not be taken (abort). */
    return next == JOB_RETRY || next == JOB_HEAD ? -1 : 0;
}

static int on_body(void *ctx, const char *p, size_t n)
{
    fjob_t *j = ctx;
    j->body_len += n;
    metrics_inc(j->pw->ms, METRIC_UPSTREAM_BYTES_RECEIVED, 0, n);
    if (j->state == JOB_STREAM_STORE && j->body_len > j->conf->cfg.max_object_size) {
        /* A body of unannounced length grew past the bound: pass it on, don't keep it. */
        set_state(j, JOB_STREAM_PASS);
        fetch_stop_storing(j->f);
    }
    int rc = fetch_append(j->f, p, n);
    if (rc == FETCH_ENOMEM) {
        /* The bytes are lost: fail the fetch (waiters see a truncated
         * transfer, the connection closed) and store nothing. The end
         * then comes as UPSTREAM_EABORT: no retry, no commit. */
        if (j->state == JOB_STREAM_STORE)
            set_state(j, JOB_STREAM_PASS);
        fetch_finish(j->f, UPSTREAM_EIO, "out of memory buffering the upstream response");
        return -1;
    }
    if (j->state != JOB_STREAM_STORE && fetch_waiters(j->f) == 0)
        return -1; /* nobody is listening and nothing is stored: stop */
    return rc == FETCH_PAUSE ? UPSTREAM_PAUSE : 0;
}

/* 103 Early Hints go to the waiters ahead of the final head (never stored). */
static int on_interim(void *ctx, int status, const http_fields_t *hdrs)
{
    fjob_t *j = ctx;
    if (status == 103)
        fetch_add_interim(j->f, status, hdrs);
    return 0;
}

/* The transfer ended (err: UPSTREAM_OK, or why not), in j's state. */
/* The error kind of a failed transfer, for METRIC_UPSTREAM_ERRORS. */
static unsigned error_kind(int err)
{
    switch (err) {
    case UPSTREAM_ECONNECT: return METRIC_UPERR_CONNECT;
    case UPSTREAM_ETIMEOUT: return METRIC_UPERR_TIMEOUT;
    case UPSTREAM_EPROTO: return METRIC_UPERR_BAD_RESPONSE;
    default: return METRIC_UPERR_CLOSED; /* UPSTREAM_EIO: the connection broke */
    }
}

static job_state_t stp_end(fjob_t *j, int err, const char *msg)
{
    bool failed = err != UPSTREAM_OK && err != UPSTREAM_EABORT;
    if (failed)
        metrics_inc(j->pw->ms, METRIC_UPSTREAM_ERRORS, error_kind(err), 1);
    if (failed && j->state != JOB_RETRY)
        job_target_report(j, POOL_FAIL, msg);
    switch (j->state) {
    case JOB_RETRY:
        if (can_retry(j)) {
            log_info("%.*s: %s answered 5xx; trying the next", (int)j->url_len, j->url,
                     pool_name(j->pool, (size_t)j->target));
            return JOB_CONNECT;
        }
        /* The 5xx we dropped to try elsewhere had nowhere left to go. */
        return end(j, UPSTREAM_EIO, "every shield or origin tried answered 502/503/504");
    case JOB_RESTART:
        if (err == UPSTREAM_OK) {
            /* The 304 did not fit the stored object: ask for the full
             * response, as a new request (every target may take it). */
            lookup_stored_free(j->validate);
            j->validate = NULL;
            http_fields_remove(&j->up_hdrs, "if-none-match");
            http_fields_remove(&j->up_hdrs, "if-modified-since");
            job_target_reset(j);
            return JOB_CONNECT;
        }
        /* a failed transfer is a failed attempt */
        __attribute__((fallthrough));
    case JOB_HEAD:
        if (failed && can_retry(j)) {
            log_info("%.*s: %s failed (%s); trying the next", (int)j->url_len, j->url,
                     pool_name(j->pool, (size_t)j->target), msg);
            return JOB_CONNECT;
        }
        if (failed && job_target_tries(j) > 1) {
            char last[200];
            snprintf(last, sizeof last, "no shield or origin could be reached (%d tried); the last: %s",
                     job_target_tries(j), msg);
            return end(j, err, last);
        }
        return end(j, err, msg);
    case JOB_HELD:
        /* The head is still held: its release finishes the fetch, and the
         * invalidation's reference drives the job from now on. */
        end(j, err, msg);
        set_state(j, JOB_HELD_ENDED);
        job_unref(j);
        return JOB_HELD_ENDED;
    case JOB_STREAM_STORE:
    case JOB_REVALIDATED:
        end(j, err, msg);
        return err == UPSTREAM_OK ? JOB_COMMIT : JOB_DONE;
    default:
        return end(j, err, msg);
    }
}

static void on_done(void *ctx, int err, const char *msg)
{
    fjob_t *j = ctx;
    j->ureq = NULL;
    job_run(j, stp_end(j, err, msg));
}

static void on_resume(void *arg)
{
    fjob_t *j = arg;
    if (j->ureq)
        upstream_pause(j->ureq, false); /* a no-op unless it was paused */
}

/* --- the end --- */

/* JOB_COMMIT: the response is complete; the store takes it and unpublishes
 * the fetch once it is written, so no request in between fetches again. A
 * fill queues its put here (the store drops it when a purge since
 * start_seq matches); a revalidation's header update was queued with the
 * 304 and holds its own reference, so the transfer's is dropped. */
static job_state_t stp_commit(fjob_t *j, job_state_t from)
{
    fetch_finish(j->f, UPSTREAM_OK, "");
    if (from == JOB_REVALIDATED) {
        job_unref(j);
        return JOB_COMMIT;
    }
    return job_store_commit(j) ? JOB_COMMIT : JOB_DONE;
}

/* JOB_DONE: finish the fetch for its waiters and drop the driver's
 * reference. */
static void stp_done(fjob_t *j)
{
    fetch_finish(j->f, j->end_err, j->end_msg);
    fetch_unpublish(j->f);
    job_unref(j);
}

/* Run the steps from state next until one waits for an event. */
static void job_run(fjob_t *j, job_state_t next)
{
    for (;;) {
        job_state_t from = j->state;
        set_state(j, next);
        switch (next) {
        case JOB_CONNECT:
            next = stp_connect(j);
            break;
        case JOB_COMMIT:
            next = stp_commit(j, from);
            if (next == JOB_COMMIT)
                return; /* the store holds the job now */
            break;
        case JOB_DONE:
            stp_done(j);
            return;
        default:
            return; /* waits for the transfer or the store */
        }
    }
}

/* --- invalidation after unsafe methods --- */

static void held_released(void *arg)
{
    fjob_t *j = arg;
    if (j->state == JOB_CLOSED) {
        job_unref(j); /* the worker closed meanwhile and failed the fetch */
        return;
    }
    resp_info_t *ri = j->held.info;
    j->held.info = NULL;
    job_publish(j, j->held.status, &j->held.hdrs, j->held.cl, j->held.rt, ri);
    if (j->state == JOB_HELD_ENDED) {
        job_run(j, JOB_DONE); /* drops the invalidation's reference */
        return;
    }
    set_state(j, JOB_STREAM_PASS);
    job_unref(j); /* the transfer drives on */
}

void job_held_release_cb(void *ctx, int status)
{
    fjob_t *j = ctx;
    if (status != STORE_OK)
        log_warn("invalidation after %.*s failed", (int)j->url_len, j->url);
    /* Writer thread: continue on the owner. */
    if (worker_post(j->w, held_released, j))
        job_unref(j); /* the worker is shutting down; its close failed the fetch */
}

/* --- start and shutdown --- */

void job_start(preq_t *p, fetch_t *f, job_kind_t kind, const stored_t *validate)
{
    proxy_worker_t *pw = p->pw;
    http_req_t *req = p->req;
    fjob_t *j = calloc(1, sizeof *j);
    if (!j)
        goto fail;
    atomic_init(&j->refs, 1); /* the driver's: the transfer's, or a held head's */
    j->state = JOB_CONNECT;
    j->kind = kind;
    j->pw = pw;
    j->w = pw->w;
    j->px = pw->px;
    j->f = f;
    fetch_ref(f);
    j->method = req->method;
    j->conf = p->conf; /* p->rule and p->popts point into it */
    proxy_conf_ref(j->conf);
    j->rule = p->rule;
    j->popts = p->popts;
    j->pol = p->pol;
    if (kind == JOB_FILL)
        j->pol.method = HTTP_GET; /* a HEAD miss fills the cache with a GET */
    j->request_time = proxy_now();
    j->start_seq = store_seq(j->px->store);
    j->variant = p->variant;
    http_fields_init(&j->req_hdrs, 0);
    http_fields_init(&j->up_hdrs, 0);
    http_fields_init(&j->held.hdrs, 0);
    buf_init(&j->meta, 0);
    buf_init(&j->body, 0);
    buf_init(&j->vary_fields, 64 * 1024);
    buf_init(&j->tags, 64 * 1024);
    memcpy(j->hash, p->hash, 16);
    if (kind == JOB_FILL && validate && !(j->validate = lookup_stored_dup(validate)))
        goto fail;
    j->url = malloc(p->key.len + 1);
    if (!j->url || http_fields_copy(&j->req_hdrs, &req->hdrs) || job_request_build(j, p))
        goto fail;
    memcpy(j->url, p->key.data, p->key.len + 1);
    j->url_len = p->key.len;
    fetch_set_request(f, &req->hdrs, j->request_time);
    j->next = pw->jobs;
    if (pw->jobs)
        pw->jobs->prev = j;
    pw->jobs = j;
    fetch_set_resume(f, pw->w, on_resume, j);
    job_run(j, JOB_CONNECT);
    return;
fail:
    log_warn("cannot start upstream request for %.*s: out of memory", (int)p->key.len, p->key.data);
    fetch_finish(f, UPSTREAM_ECONNECT, "could not start the upstream request");
    fetch_unpublish(f);
    if (j)
        job_unref(j);
}

void job_close_all(proxy_worker_t *pw)
{
    while (pw->jobs) {
        fjob_t *j = pw->jobs;
        set_state(j, JOB_CLOSED); /* unlinks it */
        if (j->ureq) {
            upstream_cancel(j->ureq);
            j->ureq = NULL;
        }
        fetch_finish(j->f, UPSTREAM_EIO, "node shutting down");
        fetch_unpublish(j->f);
        job_unref(j); /* a held job's invalidation holds its own reference */
    }
}
