/* status: the status page and its JSON twin (see include/status.h).
 *
 * Everything the JSON says is read at request time from the shared
 * counters (metrics.h), the store's statistics and the pools' state, except
 * two things that need memory: the history (status_history.c) and the
 * latest purges, a small ring filled where purges complete. */
#include "status.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "preq.h"
#include "proxy_conf.h"
#include "proxy_state.h"
#include "purge_req.h"
#include "version.h"

#define NO_STORE "Cache-Control: no-store\r\n"

/* The page, generated at build time from core/status_page.html
 * ($(BUILD)/gen/status_page.c). */
extern const unsigned char status_page_html[];
extern const size_t status_page_html_len;

typedef struct purge_rec {
    int64_t wall_ms;
    status_purge_desc_t d;
    bool soft, ok;
    uint64_t count;
} purge_rec_t;

struct status {
    status_history_t *hist;
    pthread_mutex_t mu;
    purge_rec_t purges[STATUS_PURGES]; /* guarded by mu: a ring, newest at purge_head - 1 */
    unsigned purge_head, npurges;
    uv_timer_t timer;                  /* the sampler, on worker 0's loop */
    proxy_t *px;                       /* set by status_sampler_start */
};

static int64_t wall_ms(void)
{
    return (int64_t)(worker_now_us() / 1000u);
}

int status_new(status_t **out, char *err, size_t errlen)
{
    status_t *st = calloc(1, sizeof *st);
    if (st && !(st->hist = status_history_new())) {
        free(st);
        st = NULL;
    }
    if (st && pthread_mutex_init(&st->mu, NULL)) {
        status_history_free(st->hist);
        free(st);
        st = NULL;
    }
    if (!st) {
        snprintf(err, errlen, "status: out of memory");
        return -ENOMEM;
    }
    *out = st;
    return 0;
}

void status_free(status_t *st)
{
    if (!st)
        return;
    status_history_free(st->hist);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* --- the sampler --- */

static void on_sample(uv_timer_t *t)
{
    status_t *st = t->data;
    status_history_sample(st->hist, st->px->metrics, uv_now(t->loop), wall_ms());
}

void status_sampler_start(proxy_t *px, uv_loop_t *loop)
{
    status_t *st = px->status;
    st->px = px;
    uv_timer_init(loop, &st->timer);
    st->timer.data = st;
    /* The first sample is the start of the first interval. */
    status_history_sample(st->hist, px->metrics, uv_now(loop), wall_ms());
    uv_timer_start(&st->timer, on_sample, STATUS_SAMPLE_MS, STATUS_SAMPLE_MS);
}

void status_sampler_close(proxy_t *px)
{
    uv_close((uv_handle_t *)&px->status->timer, NULL);
}

/* --- the latest purges --- */

/* Append items to out[cap] while they fit, keeping room for "+N more";
 * the first item is always shown (truncated if need be). */
static void append_items(char *out, size_t cap, size_t *len, char *const *items, size_t n, size_t *shown, bool *full)
{
    for (size_t i = 0; i < n && !*full; i++) {
        size_t need = strlen(items[i]) + (*len ? 2 : 0);
        if (*shown && *len + need + 16 >= cap) {
            *full = true; /* the rest are counted, in order */
            return;
        }
        int w = snprintf(out + *len, cap - *len, "%s%s", *len ? ", " : "", items[i]);
        *len = w < 0 ? *len : *len + (size_t)w < cap ? *len + (size_t)w : cap - 1;
        (*shown)++;
    }
}

void status_purge_describe(status_purge_desc_t *d, const struct purge_req *r)
{
    memset(d, 0, sizeof *d);
    int kinds = (r->nurls > 0) + (r->nprefixes > 0) + (r->ntags > 0);
    const char *kind = r->all ? "all" : kinds > 1 ? "mixed" : r->nurls ? "url" : r->nprefixes ? "prefix" : "tag";
    snprintf(d->kind, sizeof d->kind, "%s", kind);
    if (r->all) {
        snprintf(d->what, sizeof d->what, "everything%s%s", r->host ? " of " : "", r->host ? r->host : "");
        return;
    }
    size_t len = 0, shown = 0, total = r->nurls + r->nprefixes + r->ntags;
    bool full = false;
    append_items(d->what, sizeof d->what, &len, r->urls, r->nurls, &shown, &full);
    append_items(d->what, sizeof d->what, &len, r->prefixes, r->nprefixes, &shown, &full);
    append_items(d->what, sizeof d->what, &len, r->tags, r->ntags, &shown, &full);
    if (shown < total)
        snprintf(d->what + len, sizeof d->what - len, " +%zu more", total - shown);
}

void status_purge_record(proxy_t *px, const status_purge_desc_t *d, bool soft, uint64_t count, bool ok)
{
    status_t *st = px->status;
    purge_rec_t rec = { .wall_ms = wall_ms(), .d = *d, .soft = soft, .ok = ok, .count = count };
    pthread_mutex_lock(&st->mu);
    st->purges[st->purge_head] = rec;
    st->purge_head = (st->purge_head + 1) % STATUS_PURGES;
    if (st->npurges < STATUS_PURGES)
        st->npurges++;
    pthread_mutex_unlock(&st->mu);
}

/* Newest first. */
static json_t *purges_json(status_t *st)
{
    json_t *a = json_array();
    int rc = a ? 0 : -1;
    pthread_mutex_lock(&st->mu);
    for (unsigned i = 0; i < st->npurges && !rc; i++) {
        const purge_rec_t *p = &st->purges[(st->purge_head + STATUS_PURGES - 1 - i) % STATUS_PURGES];
        rc = json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:b, s:I, s:b}", "time", (json_int_t)(p->wall_ms / 1000),
                                                "kind", p->d.kind, "what", p->d.what, "soft", p->soft, "count",
                                                (json_int_t)p->count, "ok", p->ok));
    }
    pthread_mutex_unlock(&st->mu);
    if (rc) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* --- the document --- */

/* Every upstream target's health, in the generation this worker reads
 * (a reload may replace the pools; this one stays valid during the call). */
static json_t *upstreams_json(const proxy_t *px, uint64_t now_ms)
{
    const proxy_conf_t *conf = proxy_conf_here(px);
    const struct {
        const pool_t *pool;
        const char *name, *role;
    } pools[] = {
        { conf->primary, "primary", conf->primary_shields ? "shield" : "origin" },
        { conf->fallback, "fallback", "origin" },
    };
    json_t *a = json_array();
    int rc = a ? 0 : -1;
    for (size_t k = 0; k < sizeof pools / sizeof pools[0] && !rc; k++) {
        for (size_t i = 0; pools[k].pool && i < pool_size(pools[k].pool) && !rc; i++) {
            pool_target_stats_t s;
            pool_stats(pools[k].pool, i, now_ms, &s);
            bool usable = pool_usable(pools[k].pool, i, now_ms);
            const char *state = s.ejected ? "ejected" : s.down ? "down" : "up";
            rc = json_array_append_new(
                a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I}", "name",
                             pool_name(pools[k].pool, i), "pool", pools[k].name, "role", pools[k].role, "state", state,
                             "usable", usable, "ejected", s.ejected, "down", s.down, "requests_ok",
                             (json_int_t)s.requests_ok, "requests_failed", (json_int_t)s.requests_failed, "checks_ok",
                             (json_int_t)s.checks_ok, "checks_failed", (json_int_t)s.checks_failed, "ejections",
                             (json_int_t)s.ejections));
        }
    }
    if (rc) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *num(double v)
{
    return v >= 0 ? json_real(v) : json_null();
}

static json_t *latency_json(const metrics_t *m, const unsigned *outcomes, size_t n)
{
    uint64_t c[64] = { 0 }, total = 0, sum = 0;
    unsigned nb = metrics_cdn_defs[METRIC_REQUEST_DURATION].nbounds + 1;
    for (size_t k = 0; k < n; k++) {
        uint64_t one[64] = { 0 }, s;
        metrics_histogram_read(m, METRIC_REQUEST_DURATION, outcomes[k], one, &s);
        for (unsigned b = 0; b < nb && b < 64; b++)
            c[b] += one[b];
        sum += s;
    }
    for (unsigned b = 0; b < nb && b < 64; b++)
        total += c[b];
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "count", (json_int_t)total, "mean_ms",
                     num(total ? (double)sum / 1000.0 / (double)total : -1), "p50_ms",
                     num(status_quantile_ms(c, 0.50)), "p90_ms", num(status_quantile_ms(c, 0.90)), "p99_ms",
                     num(status_quantile_ms(c, 0.99)));
}

static json_t *totals_json(const metrics_t *m)
{
    const metric_def_t *rq = &metrics_cdn_defs[METRIC_REQUESTS], *rs = &metrics_cdn_defs[METRIC_RESPONSES];
    json_t *t = json_object(), *req = json_object(), *resp = json_object();
    uint64_t by[METRIC_OUTCOME_COUNT], all = 0;
    int rc = t && req && resp ? 0 : -1;
    for (unsigned o = 0; o < METRIC_OUTCOME_COUNT && !rc; o++) {
        by[o] = metrics_value(m, METRIC_REQUESTS, o);
        all += status_traffic(o) ? by[o] : 0;
        rc = json_object_set_new(req, rq->values[o], json_integer((json_int_t)by[o]));
    }
    for (unsigned c = 0; c < rs->nvalues && !rc; c++)
        rc = json_object_set_new(resp, rs->values[c], json_integer((json_int_t)metrics_value(m, METRIC_RESPONSES, c)));
    if (rc) {
        json_decref(t);
        json_decref(req);
        json_decref(resp);
        return NULL;
    }
    uint64_t cb = metrics_value(m, METRIC_CLIENT_BYTES_SENT, 0), ub = metrics_value(m, METRIC_UPSTREAM_BYTES_RECEIVED, 0);
    double hit, offr, offb;
    status_ratios(by, cb, ub, &hit, &offr, &offb);
    rc |= json_object_set_new(req, "total", json_integer((json_int_t)all));
    rc |= json_object_set_new(t, "requests", req);
    rc |= json_object_set_new(t, "responses", resp);
    rc |= json_object_set_new(t, "client_bytes_sent", json_integer((json_int_t)cb));
    rc |= json_object_set_new(t, "upstream_bytes_received", json_integer((json_int_t)ub));
    rc |= json_object_set_new(t, "collapsed_waiters",
                              json_integer((json_int_t)metrics_value(m, METRIC_COLLAPSED_WAITERS, 0)));
    rc |= json_object_set_new(t, "connections_refused",
                              json_integer((json_int_t)metrics_value(m, METRIC_CONNS_REFUSED, 0)));
    rc |= json_object_set_new(t, "hit_ratio", num(hit));
    rc |= json_object_set_new(t, "offload_requests", num(offr));
    rc |= json_object_set_new(t, "offload_bytes", num(offb));
    if (rc) {
        json_decref(t);
        return NULL;
    }
    return t;
}

static const char DEFINITIONS[] =
    "{\"hit_ratio\": \"hit / (hit + miss + stale + revalidated + collapsed + pass); errors count nowhere\","
    " \"offload_requests\": \"(hit + stale + collapsed) / (hit + miss + stale + revalidated + collapsed + pass):"
    " requests that caused no upstream request of their own (revalidated sent a conditional request upstream)\","
    " \"offload_bytes\": \"1 - upstream_bytes_received / client_bytes_sent, clamped to 0..1\","
    " \"latency\": \"estimated from the request duration histogram, linear within a bucket\"}";

char *status_json(proxy_t *px, uint64_t now_ms)
{
    const config_t *cfg = px->cfg;
    const metrics_t *m = px->metrics;
    int64_t now = wall_ms();
    store_stats_t ss;
    store_get_stats(px->store, &ss);
    static const unsigned all[] = { METRIC_HIT, METRIC_MISS, METRIC_STALE, METRIC_REVALIDATED, METRIC_COLLAPSED,
                                    METRIC_PASS, METRIC_ERROR };
    static const unsigned hit[] = { METRIC_HIT }, miss[] = { METRIC_MISS };
    uint64_t up_us = (uint64_t)now * 1000u > px->started_us ? (uint64_t)now * 1000u - px->started_us : 0;
    json_t *doc = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f}, s:o, s:{s:o, s:o, s:o}, s:{s:I, s:I, s:I, s:I, s:I},"
        " s:o, s:o, s:o, s:o}",
        "node", "name", cfg->name, "role", cfg->program == CONFIG_SHIELD ? "shield" : "edge", "region", cfg->region,
        "version", CDN_VERSION, "revision", cdn_revision(), "now", (json_int_t)(now / 1000), "started",
        (json_int_t)(px->started_us / 1000000u), "uptime_s", (double)up_us / 1e6, "totals", totals_json(m), "latency", "all", latency_json(m, all, sizeof all / sizeof all[0]), "hit",
        latency_json(m, hit, 1), "miss", latency_json(m, miss, 1), "store", "bytes", (json_int_t)ss.bytes,
        "bytes_max", (json_int_t)ss.bytes_max, "objects", (json_int_t)ss.objects, "evictions",
        (json_int_t)ss.evictions, "map_size", (json_int_t)ss.map_size, "upstreams", upstreams_json(px, now_ms),
        "purges", purges_json(px->status), "history", status_history_json(px->status->hist, m, now_ms, now),
        "definitions", json_loads(DEFINITIONS, 0, NULL));
    if (!doc)
        return NULL;
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

/* --- the answers --- */

void status_answer_page(preq_t *p)
{
    http_resp_simple(p->c, 200, NO_STORE "X-Content-Type-Options: nosniff\r\n", "text/html; charset=utf-8",
                     (const char *)status_page_html, status_page_html_len);
}

void status_answer_json(preq_t *p)
{
    char *s = status_json(p->pw->px, uv_now(worker_loop(p->pw->w)));
    if (!s) {
        log_error("status.json: out of memory");
        http_resp_simple(p->c, 503, NO_STORE "Retry-After: 1\r\n", "text/plain", "status: out of memory\n", 22);
        return;
    }
    http_resp_simple(p->c, 200, NO_STORE, "application/json", s, strlen(s));
    free(s);
}
