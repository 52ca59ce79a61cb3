/* purge: authenticate a purge request, apply it to this node's store, and
 * answer with what was purged (see include/purge.h).
 *
 * The store applies each part on its writer thread and calls back there;
 * the last completion posts the answer to the request's worker. URLs are
 * turned into cache keys exactly as requests are (the [rule]'s query
 * policy included), so a purge finds what a request stored. */
#include "purge.h"

#include <llhttp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "policy_key.h"
#include "preq.h"
#include "purge_fanout.h"
#include "purge_req.h"
#include "status.h"

/* One purge in flight. */
enum { PART_URLS, PART_TAGS, PART_PREFIXES, PART_COUNT };

/* One kind of store operation of a purge: the context of its callbacks. */
typedef struct purge_part {
    struct purge_op *op;
    atomic_uint_fast64_t count; /* objects purged (URLs, tags), or prefix bans in force */
} purge_part_t;

typedef struct purge_op {
    preq_t *p;
    atomic_int pending;        /* store operations not yet done, plus one while queueing */
    purge_part_t parts[PART_COUNT];
    atomic_int failed;
    bool all, soft;
    char *fwd_json;            /* to pass on to the peers (NULL: a passed-on purge, or no peers) */
    status_purge_desc_t desc;  /* what it asked for, for the status page */
} purge_op_t;

bool purge_is_request(const preq_t *p)
{
    const http_req_t *r = p->req;
    return r->method == HTTP_PURGE || (r->path_len == 11 && memcmp(r->target, "/.cdn/purge", 11) == 0);
}

static void respond_json(preq_t *p, int status, char *body)
{
    const char *fallback = "{\"error\": \"out of memory\"}";
    const char *b = body ? body : fallback;
    const char *extra = status == 401 ? "Cache-Control: no-store\r\nWWW-Authenticate: Bearer\r\n"
                                      : "Cache-Control: no-store\r\n";
    http_conn_set_log_tag(p->c, "purge");
    unsigned res = status == 200 && body ? METRIC_PURGE_OK : status >= 500 || !body ? METRIC_PURGE_FAILED
                                                                                   : METRIC_PURGE_REFUSED;
    metrics_inc(p->pw->ms, METRIC_PURGE_REQUESTS, res, 1);
    preq_ref(p); /* http_resp_simple may end the connection (and p's reference) */
    http_resp_simple(p->c, body ? status : 500, extra, "application/json", b, strlen(b));
    preq_end(p);
    preq_unref(p);
    free(body);
}

static void respond_error(preq_t *p, int status, const char *msg)
{
    respond_json(p, status, purge_req_error_json(msg));
}

/* Answer with this node's result and the peers' first outcomes. */
static void answer(purge_op_t *op, const purge_peer_result_t *peers, size_t npeers)
{
    preq_t *p = op->p;
    uint64_t count = 0;
    for (int i = 0; i < PART_COUNT; i++)
        count += atomic_load(&op->parts[i].count);
    status_purge_record(p->pw->px, &op->desc, op->soft, count, !atomic_load(&op->failed));
    if (p->c) {
        if (atomic_load(&op->failed)) {
            respond_error(p, 500, "the store could not apply the whole purge");
        } else {
            purge_result_t res = {
                .urls = (size_t)atomic_load(&op->parts[PART_URLS].count),
                .tags = (size_t)atomic_load(&op->parts[PART_TAGS].count),
                .prefixes = (size_t)atomic_load(&op->parts[PART_PREFIXES].count),
                .all = op->all,
                .soft = op->soft,
                .peers = peers,
                .npeers = npeers,
            };
            respond_json(p, 200, purge_req_result_json(&res));
        }
    }
    preq_unref(p);
    free(op->fwd_json);
    free(op);
}

static void on_peers(void *ctx, const purge_peer_result_t *peers, size_t n)
{
    answer(ctx, peers, n);
}

/* Applied here: pass it on (shields first), or answer. */
static void finish_main(void *arg)
{
    purge_op_t *op = arg;
    if (op->fwd_json && purge_fanout_start(op->p->pw, op->fwd_json, strlen(op->fwd_json), on_peers, op) == 0)
        return;
    answer(op, NULL, 0);
}

static void op_done(purge_op_t *op)
{
    if (atomic_fetch_sub(&op->pending, 1) != 1)
        return;
    if (worker_post(op->p->pw->w, finish_main, op)) {
        /* The worker is closing: its connections hold p; nobody answers. */
        atomic_fetch_sub(&op->p->refs, 1);
        free(op->fwd_json);
        free(op);
    }
}

/* Writer thread: one store operation of the purge is committed. */
static void on_part(void *ctx, int status, uint64_t count)
{
    purge_part_t *part = ctx;
    purge_op_t *op = part->op;
    /* A ban takes effect at once and counts as one prefix (its sweep is
     * counted in the store's stats); a URL or tag may match nothing. */
    bool ban = part == &op->parts[PART_PREFIXES];
    if (status != STORE_OK && (ban || status != STORE_NOTFOUND))
        atomic_store(&op->failed, 1);
    atomic_fetch_add(&part->count, ban ? 1 : count);
    op_done(op);
}

/* Queue one store operation (rc from the store call). */
static void queued(purge_op_t *op, int rc)
{
    if (rc == STORE_OK)
        return;
    atomic_store(&op->failed, 1);
    atomic_fetch_sub(&op->pending, 1); /* its callback never comes */
}

static int purge_url(purge_op_t *op, store_t *st, http_slice_t host, const char *target, buf_t *key)
{
    const policy_rule_t *rule;
    const policy_opts_t *popts;
    buf_reset(key);
    if (preq_cache_key(op->p->conf, host, target, strlen(target), key, &rule, &popts))
        return -EINVAL;
    uint8_t hash[16];
    hash_cache_key(key->data, key->len, hash);
    atomic_fetch_add(&op->pending, 1);
    queued(op, store_purge_url(st, hash, op->soft, on_part, &op->parts[PART_URLS]));
    return 0;
}

static int purge_prefix(purge_op_t *op, store_t *st, http_slice_t host, const char *prefix, buf_t *key)
{
    buf_reset(key);
    if (policy_cache_key(key, "http", host.p, host.len, prefix, strlen(prefix)))
        return -EINVAL;
    atomic_fetch_add(&op->pending, 1);
    queued(op, store_purge_prefix(st, key->data, key->len, op->soft, on_part, &op->parts[PART_PREFIXES]));
    return 0;
}

/* Apply r (host: the request's Host unless r names one). */
static void apply(preq_t *p, const purge_req_t *r, http_slice_t host)
{
    store_t *st = p->pw->px->store;
    purge_op_t *op = calloc(1, sizeof *op);
    if (!op) {
        respond_error(p, 503, "out of memory");
        return;
    }
    op->p = p;
    op->all = r->all;
    op->soft = r->soft;
    status_purge_describe(&op->desc, r);
    atomic_init(&op->pending, 1);
    for (int i = 0; i < PART_COUNT; i++)
        op->parts[i].op = op; /* counts start at 0 (calloc) */
    preq_ref(p); /* the op's, until it is answered */
    http_slice_t fwd;
    if (p->conf->n_purge_peers && !http_fields_get(&p->req->hdrs, PURGE_FORWARDED_HEADER, &fwd)) {
        /* Accepted from a client: the peers get it too, for the same site. */
        char h[PURGE_REQ_MAX_HOST_BYTES + 1];
        snprintf(h, sizeof h, "%.*s", (int)host.len, host.p);
        if (!(op->fwd_json = purge_req_to_json(r, r->host ? r->host : h)))
            atomic_store(&op->failed, 1);
    }
    if (r->host)
        host = (http_slice_t){ r->host, strlen(r->host) };
    /* Requests from now on must not join a fetch begun before the purge
     * (its response is not stored either: the store drops it). */
    fetch_table_unpublish_all(p->pw->px->fetches);
    buf_t key;
    buf_init(&key, p->pw->px->cfg->max_uri_size + 512);
    if (r->all) {
        atomic_fetch_add(&op->pending, 1);
        queued(op, store_purge_prefix(st, "", 0, op->soft, on_part, &op->parts[PART_PREFIXES]));
    } else {
        for (size_t i = 0; i < r->nurls; i++)
            purge_url(op, st, host, r->urls[i], &key);
        for (size_t i = 0; i < r->nprefixes; i++)
            purge_prefix(op, st, host, r->prefixes[i], &key);
        for (size_t i = 0; i < r->ntags; i++) {
            atomic_fetch_add(&op->pending, 1);
            queued(op, store_purge_tag(st, r->tags[i], strlen(r->tags[i]), op->soft, on_part, &op->parts[PART_TAGS]));
        }
    }
    buf_free(&key);
    op_done(op); /* the queueing's own count */
}

void purge_start(preq_t *p)
{
    const proxy_t *px = p->pw->px;
    const http_req_t *req = p->req;
    if (!p->conf->purge_token_len) {
        respond_error(p, 403, "purging is off on this node (no purge_token_file)");
        return;
    }
    http_slice_t auth = { "", 0 };
    http_fields_get(&req->hdrs, "authorization", &auth);
    if (!purge_token_check(p->conf->purge_token, p->conf->purge_token_len, auth.p, auth.len)) {
        log_warn("purge refused from %s: missing or wrong token", req->client);
        respond_error(p, 401, "a purge needs Authorization: Bearer <token>");
        return;
    }
    http_slice_t host = { "", 0 };
    http_fields_get(&req->hdrs, "host", &host);
    purge_req_t r;
    memset(&r, 0, sizeof r);
    if (req->method == HTTP_PURGE) {
        http_slice_t soft;
        char *one[1] = { req->target };
        r.urls = one;
        r.nurls = 1;
        r.soft = http_fields_get(&req->hdrs, "soft-purge", &soft) && soft.len == 1 && soft.p[0] == '1';
        apply(p, &r, host);
        return; /* r borrows the request's strings: nothing to free */
    }
    if (req->method != HTTP_POST) {
        respond_error(p, 405, "use POST /.cdn/purge with a JSON body, or PURGE /path");
        return;
    }
    char err[256];
    if (purge_req_parse(&r, req->body.data ? req->body.data : "", req->body.len, px->cfg->max_uri_size, err,
                        sizeof err)) {
        respond_error(p, 400, err);
        return;
    }
    apply(p, &r, host);
    purge_req_free(&r);
}
