/* preq: a client request's trip through the node, as steps (see
 * include/preq.h and the diagram in docs/ARCHITECTURE.md).
 *
 *   RECV -> LIMIT -> LOOKUP -> (hit) DELIVER -> DONE
 *                          \-> MISS | VALIDATE -> FETCH -> DELIVER -> DONE
 *                          \-> DERIVE (an image variant) -> FETCH
 *                 \-> PASS -----------------------^
 *   any step -> SYNTH -> DONE (a generated answer)
 *
 * The synchronous steps are functions in one table, run by preq_run until
 * a step hands the request to an event (a fetch, a streaming body). Request
 * objects are reused per worker: a cache hit allocates nothing. */
#include "preq.h"

#include <assert.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "derive.h"
#include "hash.h"
#include "image_req.h"
#include "limit.h"
#include "log.h"
#include "policy_key.h"
#include "purge.h"
#include "reload.h"
#include "request_id.h"
#include "serve.h"
#include "stream.h"

/* Spare request objects kept per worker: enough for a burst of
 * keep-alive hits, small enough not to hold memory after one. */
#define PREQ_SPARES 256

#define B(s) (1u << (s))
/* The legal transitions, in one place. Any state may end (DONE): the
 * connection can die under it. */
static const uint32_t preq_next[PREQ_STATE_COUNT] = {
    [PREQ_RECV] = B(PREQ_LIMIT) | B(PREQ_SYNTH) | B(PREQ_PURGE),
    [PREQ_LIMIT] = B(PREQ_LOOKUP) | B(PREQ_PASS) | B(PREQ_DERIVE) | B(PREQ_SYNTH),
    [PREQ_LOOKUP] = B(PREQ_DELIVER) | B(PREQ_MISS) | B(PREQ_VALIDATE) | B(PREQ_DERIVE) | B(PREQ_SYNTH),
    [PREQ_MISS] = B(PREQ_FETCH) | B(PREQ_SYNTH),
    [PREQ_VALIDATE] = B(PREQ_FETCH) | B(PREQ_SYNTH),
    [PREQ_PASS] = B(PREQ_FETCH) | B(PREQ_SYNTH),
    [PREQ_DERIVE] = B(PREQ_FETCH) | B(PREQ_SYNTH),
    [PREQ_SYNTH] = 0,
    [PREQ_PURGE] = 0,
    [PREQ_FETCH] = B(PREQ_DELIVER),
    [PREQ_DELIVER] = 0,
    [PREQ_DONE] = 0,
};

static const char *const preq_names[PREQ_STATE_COUNT] = {
    "recv", "limit", "lookup", "miss", "validate", "pass", "derive", "synth", "purge", "fetch", "deliver", "done",
};

const char *preq_state_name(preq_state_t s)
{
    return s < PREQ_STATE_COUNT ? preq_names[s] : "?";
}

bool preq_state_legal(preq_state_t from, preq_state_t to)
{
    if (from >= PREQ_STATE_COUNT || to >= PREQ_STATE_COUNT || from == PREQ_DONE)
        return false;
    return to == PREQ_DONE || (preq_next[from] & B(to));
}

void preq_set_state(preq_t *p, preq_state_t s)
{
    if (s == p->state)
        return;
    assert(preq_state_legal(p->state, s));
    p->state = s;
}

void preq_ref(preq_t *p)
{
    atomic_fetch_add(&p->refs, 1);
}

void preq_unref(preq_t *p)
{
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    /* The last reference goes on the request's own worker (wake-ups are
     * posted there), so its spare list needs no lock. */
    lookup_stored_free(p->stored);
    p->stored = NULL;
    serve_plan_free(p->plan);
    p->plan = NULL;
    image_req_free(p->img);
    p->img = NULL;
    proxy_worker_t *pw = p->pw;
    reload_conf_release(pw, p->conf);
    p->conf = NULL;
    if (pw->n_free_reqs < PREQ_SPARES) {
        p->next_free = pw->free_reqs;
        pw->free_reqs = p;
        pw->n_free_reqs++;
        return;
    }
    buf_free(&p->key);
    free(p);
}

void preq_free_spares(proxy_worker_t *pw)
{
    while (pw->free_reqs) {
        preq_t *p = pw->free_reqs;
        pw->free_reqs = p->next_free;
        buf_free(&p->key);
        free(p);
    }
    pw->n_free_reqs = 0;
}

/* A request object in its initial state, reused when one is spare. */
static preq_t *preq_new(proxy_worker_t *pw)
{
    preq_t *p = pw->free_reqs;
    buf_t key;
    if (p) {
        pw->free_reqs = p->next_free;
        pw->n_free_reqs--;
        key = p->key;
        buf_reset(&key);
    } else {
        p = malloc(sizeof *p);
        if (!p)
            return NULL;
        buf_init(&key, pw->px->cfg->max_uri_size + 512);
    }
    /* Only the fields a request reads before writing are set here: a
     * full memset of the struct would cost more than the hit itself. */
    atomic_init(&p->refs, 1);
    p->state = PREQ_RECV;
    p->pw = pw;
    p->conf = reload_conf_hold(pw); /* the worker's current generation, counted on the worker */
    p->next_free = NULL;
    p->key = key;
    p->variant = 0;
    p->img = NULL;
    p->fwd = NULL;
    p->stored = NULL;
    p->stale_if_error = false;
    p->plan = NULL;
    p->f = NULL;
    memset(&p->waiter, 0, sizeof p->waiter);
    p->collapsed = false;
    p->rl.on = false;
    p->interims_seen = 0;
    return p;
}

void preq_fetch_key(const preq_t *p, uint8_t out[16])
{
    if (!p->variant) {
        memcpy(out, p->hash, 16);
        return;
    }
    /* One URL's variants collapse separately. */
    uint8_t in[24];
    memcpy(in, p->hash, 16);
    memcpy(in + 16, &p->variant, 8);
    hash_cache_key(in, sizeof in, out);
}

void preq_end(preq_t *p)
{
    if (!p->c)
        return;
    if (p->f) {
        fetch_detach(p->f, &p->waiter);
        fetch_unref(p->f);
        p->f = NULL;
    }
    p->c = NULL;
    p->req = NULL;
    preq_set_state(p, PREQ_DONE);
    preq_unref(p);
}

void preq_finish(preq_t *p)
{
    http_conn_t *c = p->c;
    if (!c)
        return;
    preq_ref(p);
    preq_end(p);
    http_resp_finish(c); /* may start the connection's next request */
    preq_unref(p);
}

static void on_abort(void *arg)
{
    preq_end(arg);
}

void preq_cache_status(preq_t *p, buf_t *h, const char *cs, size_t cslen, const char *params)
{
    buf_puts(h, "Cache-Status: ");
    if (cslen) {
        buf_append(h, cs, cslen);
        buf_append(h, ", ", 2);
    }
    buf_puts(h, p->pw->px->cfg->name);
    buf_puts(h, params);
    buf_append(h, "\r\n", 2);
}

void preq_respond(preq_t *p, int status, const char *detail, const char *body)
{
    if (p->c)
        http_conn_set_log_tag(p->c, "error");
    preq_respond_with(p, status, detail, body, NULL);
}

void preq_respond_with(preq_t *p, int status, const char *detail, const char *body, const char *lines)
{
    http_conn_t *c = p->c;
    if (!c)
        return;
    buf_t extra;
    buf_init(&extra, 0);
    if (lines)
        buf_puts(&extra, lines);
    char params[160];
    if (detail)
        snprintf(params, sizeof params, "; fwd=%s; detail=%s", p->fwd ? p->fwd : "bypass", detail);
    else
        snprintf(params, sizeof params, "; fwd=%s", p->fwd ? p->fwd : "bypass");
    preq_cache_status(p, &extra, NULL, 0, params);
    buf_printf(&extra, "Via: %s\r\n", p->pw->px->via);
    preq_ref(p); /* http_resp_simple may end the connection (and p's reference) */
    http_resp_simple(c, status, extra.data, "text/plain", body, strlen(body));
    buf_free(&extra);
    preq_end(p);
    preq_unref(p);
}

/* Answer with a generated response from the next step. */
static preq_state_t synth(preq_t *p, int status, const char *detail, const char *body)
{
    p->synth.status = status;
    p->synth.detail = detail;
    p->synth.body = body;
    return PREQ_SYNTH;
}

/* Did this request already pass through this node? (a shield whose
 * origin points back at an edge, say): answering 508 beats looping. */
static bool via_loop(const preq_t *p)
{
    const proxy_t *px = p->pw->px;
    for (size_t i = 0; i < p->req->hdrs.n; i++) {
        if (!http_name_eq(http_fields_name(&p->req->hdrs, i), "via"))
            continue;
        size_t pos = 0;
        http_slice_t item;
        while (http_list_next(http_fields_value(&p->req->hdrs, i), &pos, &item)) {
            /* "1.1 NAME" possibly followed by a comment */
            if (item.len >= px->via_len && memcmp(item.p, px->via, px->via_len) == 0 &&
                (item.len == px->via_len || item.p[px->via_len] == ' '))
                return true;
        }
    }
    return false;
}

int preq_cache_key(const proxy_conf_t *conf, http_slice_t host, const char *target, size_t target_len, buf_t *key,
                   const policy_rule_t **rule, const policy_opts_t **popts)
{
    int rc = policy_cache_key(key, "http", host.p, host.len, target, target_len);
    if (rc)
        return rc;
    proxy_conf_rule(conf, key->data, key->len, rule, popts);
    if ((*rule)->query != POLICY_QUERY_ALL) {
        policy_key_opts_t ko;
        policy_rule_key_opts(*rule, &ko);
        buf_reset(key);
        rc = policy_cache_key_opts(key, &ko, "http", host.p, host.len, target, target_len);
    }
    return rc;
}

/* The [rule] of the request and its cache key under that rule. An image
 * variant request is keyed (and fetched) as its source: image_req_recv
 * moves p->target to the source's. */
static int route(preq_t *p, http_slice_t host)
{
    p->target = p->req->target;
    p->target_len = p->req->target_len;
    return preq_cache_key(p->conf, host, p->target, p->target_len, &p->key, &p->rule, &p->popts);
}

/* --- the steps --- */

/* Control paths, loop detection, the [rule] and the cache key. */
static preq_state_t step_recv(preq_t *p)
{
    request_id_recv(p->c, p->req, &p->conf->trusted); /* before anything can answer */
    if (purge_is_request(p))
        return PREQ_PURGE; /* never forwarded upstream */
    if (control_request(p))
        return PREQ_DONE;
    p->fwd = "bypass";
    if (via_loop(p))
        return synth(p, 508, "loop", "request loop: it already went through this node (Via)\n");
    http_slice_t host = { "", 0 };
    http_fields_get(&p->req->hdrs, "host", &host);
    int rc = route(p, host);
    if (rc)
        return synth(p, rc == -E2BIG ? 414 : 400, "bad-target", "invalid request target\n");
    if (p->rule->image && (rc = image_req_recv(p, host)))
        return synth(p, rc, "image-request", p->img ? p->img->msg : "bad image request\n");
    p->fwd = NULL;
    hash_cache_key(p->key.data, p->key.len, p->hash);
    policy_req_parse(&p->pol, p->req->method, &p->req->hdrs);
    return PREQ_LIMIT;
}

/* Admission (rate limiting, limit.c), before the store is read; then
 * what kind of request this is. */
static preq_state_t step_limit(preq_t *p)
{
    if (!limit_admit(p))
        return PREQ_DONE; /* 429, or the connection closed: neither the store nor upstream saw it */
    http_req_t *req = p->req;
    bool cacheable = req->method == HTTP_GET || req->method == HTTP_HEAD;
    if (!cacheable) {
        p->fwd = "method";
        return PREQ_PASS;
    }
    if (policy_rule_bypass(p->rule, &req->hdrs)) {
        p->fwd = "bypass"; /* a rule sends requests with cookies straight upstream */
        return p->img ? PREQ_DERIVE : PREQ_PASS; /* a variant of its own, from its own source */
    }
    if (p->pol.flags & (POLICY_REQ_IF_MATCH | POLICY_REQ_IF_UNMODIFIED_SINCE)) {
        p->fwd = "request"; /* preconditions on the origin's state: the origin decides */
        return p->img ? PREQ_DERIVE : PREQ_PASS;
    }
    return PREQ_LOOKUP;
}

/* The store: a usable object is served (DELIVER), else upstream. */
static preq_state_t step_lookup(preq_t *p)
{
    switch (p->img ? image_req_lookup(p) : lookup_serve(p)) {
    case LOOKUP_SERVED:
    case LOOKUP_SERVED_STALE:
        return p->state; /* DELIVER (serve.c sent the head), or DONE */
    case LOOKUP_REVALIDATE:
    case LOOKUP_MISS:
        break;
    }
    if (p->pol.cc.flags & POLICY_CC_ONLY_IF_CACHED)
        return synth(p, 504, "only-if-cached", "not in cache (only-if-cached)\n");
    if (p->img)
        return PREQ_DERIVE;
    if (strcmp(p->fwd, "request") == 0)
        return PREQ_VALIDATE; /* the client asked for validation: not a collapsed answer */
    return PREQ_MISS;
}

/* An image variant the store cannot answer: made from its source by a
 * derivation that requests for the same variant share (derive.c). */
static preq_state_t step_derive(preq_t *p)
{
    limit_charge(p); /* upstream-bound: the rest of miss_cost */
    preq_set_state(p, PREQ_FETCH);
    derive_start(p, strcmp(p->fwd, "request") == 0 || strcmp(p->fwd, "bypass") == 0);
    return p->state; /* FETCH, or DELIVER / DONE if answered already */
}

static preq_state_t step_miss(preq_t *p)
{
    limit_charge(p); /* upstream-bound: the rest of miss_cost */
    preq_set_state(p, PREQ_FETCH); /* first: the fetch may answer at once */
    stream_fill(p);
    return p->state; /* FETCH, or DELIVER if a response is already on its way */
}

static preq_state_t step_validate(preq_t *p)
{
    limit_charge(p); /* upstream-bound: the rest of miss_cost */
    preq_set_state(p, PREQ_FETCH);
    stream_private(p, true);
    return p->state; /* FETCH, or DELIVER if a response is already on its way */
}

static preq_state_t step_pass(preq_t *p)
{
    limit_charge(p); /* upstream-bound: the rest of miss_cost */
    preq_set_state(p, PREQ_FETCH);
    stream_private(p, false);
    return p->state; /* FETCH, or DELIVER if a response is already on its way */
}

/* Answered by purge.c, at once or when the store has applied it. */
static preq_state_t step_purge(preq_t *p)
{
    purge_start(p);
    return PREQ_PURGE;
}

static preq_state_t step_synth(preq_t *p)
{
    preq_respond(p, p->synth.status, p->synth.detail, p->synth.body);
    return PREQ_DONE;
}

/* The synchronous steps; a state without one waits for an event. */
static preq_state_t (*const preq_steps[PREQ_STATE_COUNT])(preq_t *) = {
    [PREQ_RECV] = step_recv,
    [PREQ_LIMIT] = step_limit,
    [PREQ_LOOKUP] = step_lookup,
    [PREQ_MISS] = step_miss,
    [PREQ_VALIDATE] = step_validate,
    [PREQ_PASS] = step_pass,
    [PREQ_DERIVE] = step_derive,
    [PREQ_SYNTH] = step_synth,
    [PREQ_PURGE] = step_purge,
};

/* Run steps until one hands p to an event (it returns its own state, or
 * a state without a step), or p is over (a step that ended the request
 * leaves p->c NULL). */
static void preq_run(preq_t *p)
{
    while (p->c && preq_steps[p->state]) {
        preq_state_t cur = p->state, next = preq_steps[cur](p);
        if (!p->c || next == cur)
            break;
        preq_set_state(p, next);
    }
}

void preq_on_request(http_conn_t *c, http_req_t *req, void *ud)
{
    proxy_worker_t *pw = ud;
    preq_t *p = preq_new(pw);
    if (!p) {
        http_resp_simple(c, 503, NULL, "text/plain", "out of memory\n", 14);
        return;
    }
    p->c = c;
    p->req = req;
    http_conn_on_abort(c, on_abort, p);
    preq_ref(p); /* ours, for the rest of this function */
    preq_run(p);
    preq_unref(p);
}
