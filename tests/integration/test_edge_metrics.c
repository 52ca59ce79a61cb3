/* GET /.cdn/metrics on the wire: every scrape parses under the strict
 * reader (prom_parse.c), and the counters move by exactly what the test
 * did. A scrape is counted (outcome "control") once it ends, so the next
 * scrape shows it: its body bytes and its one request are accounted for. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"
#include "prom_parse.h"

#define CC60 "cc=max-age%3D60"

/* Scrape addr into *m; returns the body's length (a later scrape counts it). */
static size_t scrape(const char *addr, prom_t *m)
{
    th_resp_t *r = th_request(addr, "GET", "/.cdn/metrics", NULL, NULL, 0);
    cr_assert_not_null(r, "scrape: %s", th_last_error());
    cr_assert_eq(r->status, 200);
    const char *ct = th_hdr(r, "content-type");
    cr_assert(ct && strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "content-type %s", ct ? ct : "-");
    int rc = prom_parse(r->body.data, r->body.len, m);
    cr_assert_eq(rc, 0, "exposition: %s", m->err);
    size_t len = r->body.len;
    th_resp_free(r);
    return len;
}

static double req(const prom_t *m, const char *outcome)
{
    return prom_value(m, "cdn_requests_total", "outcome", outcome, NULL);
}

static double up_count(const prom_t *m, const char *target)
{
    return prom_value(m, "cdn_upstream_duration_seconds_count", "target", target, NULL);
}

static double up_err(const prom_t *m, const char *kind)
{
    return prom_value(m, "cdn_upstream_errors_total", "kind", kind, NULL);
}

Test(metrics, loopback_scrape_has_every_family)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    prom_t m;
    scrape(env.e, &m);
    static const char *const names[] = {
        "cdn_requests_total", "cdn_responses_total", "cdn_client_sent_bytes_total",
        "cdn_upstream_received_bytes_total", "cdn_collapsed_waiters_total", "cdn_connections_refused_total",
        "cdn_request_duration_seconds_count", "cdn_upstream_duration_seconds_count", "cdn_upstream_errors_total",
        "cdn_upstream_up", "cdn_upstream_ejected", "cdn_connections_open", "cdn_store_bytes", "cdn_store_objects",
        "cdn_store_evictions_total", "cdn_store_write_batches_total", "cdn_store_write_batch_errors_total",
        "cdn_store_write_batch_duration_seconds_count", "cdn_store_map_size_bytes", "cdn_store_map_used_bytes",
        "cdn_store_up", "cdn_store_purges_total", "cdn_purge_requests_total", "cdn_image_transforms_total",
        "cdn_image_transform_duration_seconds_count", "cdn_rate_limited_total", "cdn_build_info",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_assert_gt(prom_count(&m, names[i]), 0, "no %s", names[i]);
    /* Nothing counted yet: the first scrape is not over while it is written. */
    static const char *const outcomes[] = { "hit",     "miss",  "stale",   "revalidated", "collapsed", "pass",
                                            "error",   "control", "purge", "limited",     "aborted",   "other" };
    for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
        cr_assert_eq(req(&m, outcomes[i]), 0, "%s", outcomes[i]);
    /* The lone origin is a target from the start, healthy, not ejected. */
    char origin[128];
    snprintf(origin, sizeof origin, "http://%s", env.o);
    cr_assert_eq(up_count(&m, origin), 0);
    cr_assert_eq(prom_value(&m, "cdn_upstream_up", "target", origin, NULL), 1);
    cr_assert_eq(prom_value(&m, "cdn_upstream_ejected", "target", origin, NULL), 0);
    cr_assert_eq(prom_value(&m, "cdn_store_up", NULL), 1);
    cr_assert_eq(prom_value(&m, "cdn_store_objects", NULL), 0);
    cr_assert_gt(prom_value(&m, "cdn_store_map_size_bytes", NULL), 0);
    cr_assert_eq(prom_value(&m, "cdn_connections_open", NULL), 1, "the scrape's own connection");
    cr_assert_eq(prom_value(&m, "cdn_rate_limited_total", "rule", "node", NULL), 0);
    /* Build info: one series, value 1, every label set. */
    cr_assert_eq(prom_count(&m, "cdn_build_info"), 1);
    const prom_sample_t *b = prom_find(&m, "cdn_build_info", NULL);
    cr_assert_null(b, "build info has labels");
    for (size_t i = 0; i < m.n; i++)
        if (strcmp(m.s[i].name, "cdn_build_info") == 0)
            b = &m.s[i];
    cr_assert_eq(b->value, 1);
    static const char *const labels[] = { "version", "revision", "libvips", "libcurl", "libuv" };
    for (size_t i = 0; i < 5; i++)
        cr_assert(prom_label(b, labels[i]) && *prom_label(b, labels[i]), "build info %s", labels[i]);
    const char *rev = prom_label(b, "revision");
    cr_assert(strcmp(rev, "unknown") == 0 || strspn(rev, "0123456789abcdef") == strlen(rev), "revision %s", rev);
    cr_assert_geq(strlen(rev), 4, "revision %s", rev);
    prom_free(&m);
    cr_assert_eq(th_stop(env.edge), 0);
}

Test(metrics, miss_and_hit_move_counters_exactly)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    char origin[128];
    snprintf(origin, sizeof origin, "http://%s", env.o);
    const char *t = "/m?size=1000&" CC60;
    prom_t a, b, c;
    size_t len_a = scrape(env.e, &a);

    th_resp_t *r = edge_get(&env, t); /* the miss */
    cr_assert_eq(r->status, 200);
    cr_assert(cs_has(r, "fwd=uri-miss"), "%s", th_hdr(r, "cache-status"));
    size_t miss_len = r->body.len;
    th_resp_free(r);
    /* The store commits on its writer thread: wait until it shows. */
    size_t len_b = 0;
    int64_t until = th_now_ms() + 5000;
    int scrapes = 0;
    for (;;) {
        len_b = scrape(env.e, &b);
        scrapes++;
        if (prom_value(&b, "cdn_store_objects", NULL) == 1 || th_now_ms() > until)
            break;
        prom_free(&b);
    }
    cr_assert_eq(prom_value(&b, "cdn_store_objects", NULL), 1);
    cr_assert_gt(prom_value(&b, "cdn_store_bytes", NULL), prom_value(&a, "cdn_store_bytes", NULL));
    cr_assert_geq(prom_value(&b, "cdn_store_write_batches_total", NULL), 1);
    cr_assert_geq(prom_value(&b, "cdn_store_write_batch_duration_seconds_count", NULL), 1);
    cr_assert_eq(prom_value(&b, "cdn_store_write_batch_duration_seconds_count", NULL),
                 prom_value(&b, "cdn_store_write_batches_total", NULL));
    cr_assert_gt(prom_value(&b, "cdn_store_map_used_bytes", NULL), 0);
    cr_assert_leq(prom_value(&b, "cdn_store_map_used_bytes", NULL), prom_value(&b, "cdn_store_map_size_bytes", NULL));
    cr_assert_eq(prom_value(&b, "cdn_store_write_batch_errors_total", NULL), 0);
    /* One miss, one upstream answer from the origin, its body received once. */
    cr_assert_eq(req(&b, "miss") - req(&a, "miss"), 1);
    cr_assert_eq(req(&b, "hit"), 0);
    cr_assert_eq(req(&b, "control") - req(&a, "control"), scrapes, "the earlier scrapes");
    cr_assert_eq(up_count(&b, origin) - up_count(&a, origin), 1);
    cr_assert_gt(prom_value(&b, "cdn_upstream_duration_seconds_sum", "target", origin, NULL), 0);
    cr_assert_eq(prom_value(&b, "cdn_upstream_received_bytes_total", NULL) -
                     prom_value(&a, "cdn_upstream_received_bytes_total", NULL),
                 1000);
    cr_assert_eq(miss_len, 1000);
    cr_assert_eq(prom_value(&b, "cdn_collapsed_waiters_total", NULL), 0);

    /* One hit: exactly one more hit, its body (and the last scrape's) sent. */
    r = edge_get(&env, t);
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    size_t hit_len = r->body.len;
    th_resp_free(r);
    scrape(env.e, &c);
    cr_assert_eq(req(&c, "hit") - req(&b, "hit"), 1);
    cr_assert_eq(req(&c, "miss"), req(&b, "miss"));
    cr_assert_eq(req(&c, "control") - req(&b, "control"), 1);
    cr_assert_eq(prom_value(&c, "cdn_client_sent_bytes_total", NULL) -
                     prom_value(&b, "cdn_client_sent_bytes_total", NULL),
                 (double)(hit_len + len_b));
    cr_assert_eq(prom_value(&c, "cdn_responses_total", "class", "2xx", NULL) -
                     prom_value(&b, "cdn_responses_total", "class", "2xx", NULL),
                 2);
    cr_assert_eq(prom_value(&c, "cdn_request_duration_seconds_count", "outcome", "hit", NULL), 1);
    cr_assert_eq(prom_value(&c, "cdn_upstream_received_bytes_total", NULL),
                 prom_value(&b, "cdn_upstream_received_bytes_total", NULL), "a hit fetches nothing");
    cr_assert_eq(up_count(&c, origin), up_count(&b, origin));
    /* Every byte sent is counted: the misses', hit's and scrapes' bodies. */
    cr_assert_geq(prom_value(&c, "cdn_client_sent_bytes_total", NULL), (double)(miss_len + hit_len + len_a));
    prom_free(&a);
    prom_free(&b);
    prom_free(&c);
    cr_assert_eq(th_stop(env.edge), 0);
}

Test(metrics, upstream_connect_failure_counts_by_kind_and_marks_down)
{
    th_proc_t *dead = th_origin();
    char addr[128];
    snprintf(addr, sizeof addr, "%s", th_addr(dead));
    cr_assert_eq(th_stop(dead), 0); /* nobody listens there now */
    char *dir = th_tmpdir();
    th_proc_t *e = edge_start(addr, dir, NULL);
    char origin[160];
    snprintf(origin, sizeof origin, "http://%s", addr);
    prom_t a, b;
    scrape(th_addr(e), &a);
    cr_assert_eq(up_err(&a, "connect"), 0);
    for (int i = 0; i < 3; i++) { /* eject_after = 3 */
        th_resp_t *r = edge_req(th_addr(e), "GET", "/x?" CC60, NULL, NULL, 0);
        cr_assert_not_null(r);
        cr_assert_eq(r->status, 502);
        th_resp_free(r);
    }
    scrape(th_addr(e), &b);
    cr_assert_eq(up_err(&b, "connect") - up_err(&a, "connect"), 3);
    cr_assert_eq(up_err(&b, "timeout"), 0);
    cr_assert_eq(up_err(&b, "http_5xx"), 0);
    cr_assert_eq(req(&b, "error") - req(&a, "error"), 3);
    cr_assert_eq(prom_value(&b, "cdn_responses_total", "class", "5xx", NULL), 3);
    cr_assert_eq(up_count(&b, origin), 0, "no head came back");
    /* The lone origin is never ejected, but it is down. */
    cr_assert_eq(prom_value(&b, "cdn_upstream_up", "target", origin, NULL), 0);
    cr_assert_eq(prom_value(&b, "cdn_upstream_ejected", "target", origin, NULL), 0);
    prom_free(&a);
    prom_free(&b);
    cr_assert_eq(th_stop(e), 0);
}

Test(metrics, origin_5xx_counts_as_an_upstream_error)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    prom_t a, b;
    scrape(env.e, &a);
    th_resp_t *r = edge_get(&env, "/e?status=503");
    cr_assert_eq(r->status, 503);
    th_resp_free(r);
    scrape(env.e, &b);
    cr_assert_eq(up_err(&b, "http_5xx") - up_err(&a, "http_5xx"), 1);
    cr_assert_eq(up_err(&b, "connect"), 0);
    prom_free(&a);
    prom_free(&b);
    cr_assert_eq(th_stop(env.edge), 0);
}

typedef struct burst {
    const char *addr;
    int ok;
} burst_t;

static void burst_one(int i, void *arg)
{
    burst_t *b = arg;
    th_resp_t *r = edge_req(b->addr, "GET", "/cold?size=5000&delay=400&" CC60, NULL, NULL, 0);
    if (r && r->status == 200 && r->body.len == 5000)
        __atomic_add_fetch(&b->ok, 1, __ATOMIC_SEQ_CST);
    if (r)
        th_resp_free(r);
}

Test(metrics, collapsed_waiters_are_counted_at_join)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    prom_t a, b;
    scrape(env.e, &a);
    burst_t bu = { env.e, 0 };
    th_parallel(10, burst_one, &bu);
    cr_assert_eq(bu.ok, 10);
    cr_assert_eq(th_origin_requests(env.o, "/cold"), 1);
    scrape(env.e, &b);
    double waiters = prom_value(&b, "cdn_collapsed_waiters_total", NULL);
    double miss = req(&b, "miss"), coll = req(&b, "collapsed"), hit = req(&b, "hit");
    cr_assert_eq(miss, 1);
    cr_assert_eq(miss + coll + hit, 10);
    cr_assert_geq(waiters, 1, "a 400 ms fetch gathers waiters");
    cr_assert_eq(waiters, coll, "each waiter answered from the fetch it joined");
    cr_assert_eq(prom_value(&b, "cdn_upstream_received_bytes_total", NULL), 5000, "fetched once");
    prom_free(&a);
    prom_free(&b);
    cr_assert_eq(th_stop(env.edge), 0);
}

Test(metrics, refused_connection_is_counted)
{
    edge_env_t env;
    const char *extra[] = { "--max-connections-total=1", NULL };
    edge_env_start(&env, extra);
    prom_t a, b;
    scrape(env.e, &a);
    cr_assert_eq(prom_value(&a, "cdn_connections_refused_total", NULL), 0);
    th_conn_t *held = th_connect(env.e);
    cr_assert_not_null(held);
    /* The held connection is admitted once the edge has accepted it: a
     * request on it answers. */
    const char get[] = "GET /.cdn/health HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(th_send(held, get, sizeof get - 1), 0);
    th_resp_t *hr = th_read_response(held, false);
    cr_assert(hr && hr->status == 200);
    th_resp_free(hr);
    th_resp_t *r = th_request(env.e, "GET", "/.cdn/health", NULL, NULL, 0);
    cr_assert_null(r, "a second connection is over max_connections_total");
    th_close(held);
    /* The edge notices the close on its own time: a scrape refused
     * meanwhile is one more refusal, counted too. */
    int refused = 1;
    int64_t until = th_now_ms() + 5000;
    for (;;) {
        th_resp_t *s = th_request(env.e, "GET", "/.cdn/metrics", NULL, NULL, 0);
        if (s) {
            cr_assert_eq(s->status, 200);
            cr_assert_eq(prom_parse(s->body.data, s->body.len, &b), 0, "%s", b.err);
            th_resp_free(s);
            break;
        }
        refused++;
        cr_assert_lt(th_now_ms(), until, "the edge never took a connection again");
    }
    cr_assert_eq(prom_value(&b, "cdn_connections_refused_total", NULL), refused);
    prom_free(&a);
    prom_free(&b);
    cr_assert_eq(th_stop(env.edge), 0);
}
