/* GET /.cdn/metrics on the wire: every scrape parses under the strict
 * reader (prom_parse.c), and the counters move by exactly what the test
 * did. A scrape is counted (outcome "control") once it ends, so the next
 * scrape shows it: its body bytes and its one request are accounted for. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"
#include "image_env.h"
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

/* A test's view of what the edge has answered so far. A response is
 * counted when it ends, which may be just after the client has it: so a
 * scrape is taken as settled once every response the test got (and every
 * earlier scrape) shows in cdn_requests_total. */
typedef struct session {
    const char *addr;
    int scrapes;           /* scrapes answered so far */
    int answered;          /* other responses the test got */
    uint64_t scrape_bytes; /* body bytes of the scrapes */
    size_t last_len;       /* of the latest scrape */
} session_t;

static double requests_total(const prom_t *m)
{
    double t = 0;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->s[i].name, "cdn_requests_total") == 0)
            t += m->s[i].value;
    return t;
}

/* Scrape into *m once the counts have settled (bounded). */
static void settled(session_t *s, prom_t *m)
{
    int64_t until = th_now_ms() + 5000;
    for (;;) {
        size_t len = scrape(s->addr, m);
        double total = requests_total(m), made = s->scrapes + s->answered;
        s->scrapes++;
        s->scrape_bytes += len;
        s->last_len = len;
        cr_assert_leq(total, made, "more responses counted than made");
        if (total == made)
            return;
        cr_assert_lt(th_now_ms(), until, "responses never counted: %g of %g", total, made);
        prom_free(m);
    }
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
    /* git describe --always --dirty: [TAG-N-g]HASH[-dirty], or "unknown". */
    const char *rev = prom_label(b, "revision");
    char hash[128];
    snprintf(hash, sizeof hash, "%s", strstr(rev, "-g") ? strstr(rev, "-g") + 2 : rev);
    char *dirty = strstr(hash, "-dirty");
    if (dirty && dirty[6] == '\0')
        *dirty = '\0';
    cr_assert(strcmp(rev, "unknown") == 0 || (strspn(hash, "0123456789abcdef") == strlen(hash) && strlen(hash) >= 4),
              "revision %s", rev);
    prom_free(&m);
    cr_assert_eq(th_stop(env.edge), 0);
}

Test(metrics, miss_and_hit_move_counters_exactly)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    session_t ss = { env.e, 0, 0, 0, 0 };
    char origin[128];
    snprintf(origin, sizeof origin, "http://%s", env.o);
    const char *t = "/m?size=1000&" CC60;
    prom_t a, b, c;
    settled(&ss, &a);

    th_resp_t *r = edge_get(&env, t); /* the miss */
    cr_assert_eq(r->status, 200);
    cr_assert(cs_has(r, "fwd=uri-miss"), "%s", th_hdr(r, "cache-status"));
    size_t miss_len = r->body.len;
    ss.answered++;
    th_resp_free(r);
    /* The store commits on its writer thread: wait until it shows. */
    int64_t until = th_now_ms() + 5000;
    for (;;) {
        settled(&ss, &b);
        if (prom_value(&b, "cdn_store_objects", NULL) == 1 || th_now_ms() > until)
            break;
        prom_free(&b);
    }
    cr_assert_eq(prom_value(&b, "cdn_store_objects", NULL), 1);
    cr_assert_gt(prom_value(&b, "cdn_store_bytes", NULL), prom_value(&a, "cdn_store_bytes", NULL));
    cr_assert_geq(prom_value(&b, "cdn_store_write_batches_total", NULL), 1);
    cr_assert_eq(prom_value(&b, "cdn_store_write_batch_duration_seconds_count", NULL),
                 prom_value(&b, "cdn_store_write_batches_total", NULL));
    cr_assert_gt(prom_value(&b, "cdn_store_map_used_bytes", NULL), 0);
    cr_assert_leq(prom_value(&b, "cdn_store_map_used_bytes", NULL), prom_value(&b, "cdn_store_map_size_bytes", NULL));
    cr_assert_eq(prom_value(&b, "cdn_store_write_batch_errors_total", NULL), 0);
    /* One miss, one upstream answer from the origin, its body received once. */
    cr_assert_eq(req(&b, "miss") - req(&a, "miss"), 1);
    cr_assert_eq(req(&b, "hit"), 0);
    cr_assert_eq(req(&b, "control"), ss.scrapes - 1, "every scrape but this one");
    cr_assert_eq(up_count(&b, origin) - up_count(&a, origin), 1);
    cr_assert_gt(prom_value(&b, "cdn_upstream_duration_seconds_sum", "target", origin, NULL), 0);
    cr_assert_eq(prom_value(&b, "cdn_upstream_received_bytes_total", NULL) -
                     prom_value(&a, "cdn_upstream_received_bytes_total", NULL),
                 1000);
    cr_assert_eq(miss_len, 1000);
    cr_assert_eq(prom_value(&b, "cdn_collapsed_waiters_total", NULL), 0);
    cr_assert_eq(prom_value(&b, "cdn_request_duration_seconds_count", "outcome", "miss", NULL), 1);

    /* One hit: exactly one more hit, its body (and the scrapes') sent. */
    r = edge_get(&env, t);
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    size_t hit_len = r->body.len;
    ss.answered++;
    th_resp_free(r);
    int before = ss.scrapes;
    settled(&ss, &c);
    cr_assert_eq(req(&c, "hit") - req(&b, "hit"), 1);
    cr_assert_eq(req(&c, "miss"), req(&b, "miss"));
    cr_assert_eq(req(&c, "control") - req(&b, "control"), ss.scrapes - before);
    /* Every body byte sent: the miss's, the hit's and every earlier scrape's. */
    cr_assert_eq(prom_value(&c, "cdn_client_sent_bytes_total", NULL),
                 (double)(miss_len + hit_len + ss.scrape_bytes - ss.last_len));
    cr_assert_eq(prom_value(&c, "cdn_responses_total", "class", "2xx", NULL), ss.scrapes - 1 + 2);
    cr_assert_eq(prom_value(&c, "cdn_request_duration_seconds_count", "outcome", "hit", NULL), 1);
    cr_assert_eq(prom_value(&c, "cdn_upstream_received_bytes_total", NULL),
                 prom_value(&b, "cdn_upstream_received_bytes_total", NULL), "a hit fetches nothing");
    cr_assert_eq(up_count(&c, origin), up_count(&b, origin));
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
    session_t ss = { th_addr(e), 0, 0, 0, 0 };
    settled(&ss, &a);
    cr_assert_eq(up_err(&a, "connect"), 0);
    for (int i = 0; i < 3; i++) { /* eject_after = 3 */
        th_resp_t *r = edge_req(th_addr(e), "GET", "/x?" CC60, NULL, NULL, 0);
        cr_assert_not_null(r);
        cr_assert_eq(r->status, 502);
        ss.answered++;
        th_resp_free(r);
    }
    settled(&ss, &b);
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
    session_t ss = { env.e, 0, 0, 0, 0 };
    settled(&ss, &a);
    th_resp_t *r = edge_get(&env, "/e?status=503");
    cr_assert_eq(r->status, 503);
    ss.answered++;
    th_resp_free(r);
    settled(&ss, &b);
    cr_assert_eq(req(&b, "miss"), 1);
    cr_assert_eq(prom_value(&b, "cdn_responses_total", "class", "5xx", NULL), 1);
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
    session_t ss = { env.e, 0, 0, 0, 0 };
    settled(&ss, &a);
    burst_t bu = { env.e, 0 };
    th_parallel(10, burst_one, &bu);
    cr_assert_eq(bu.ok, 10);
    ss.answered += 10;
    cr_assert_eq(th_origin_requests(env.o, "/cold"), 1);
    settled(&ss, &b);
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
    /* Hold the one connection allowed. The edge may not have seen the
     * scrape's connection close yet: each connection refused meanwhile is
     * counted, and so by the test. */
    const char get[] = "GET /.cdn/health HTTP/1.1\r\nHost: x\r\n\r\n";
    int refused = 0;
    int64_t until = th_now_ms() + 5000;
    th_conn_t *held;
    for (;;) {
        held = th_connect(env.e);
        cr_assert_not_null(held);
        th_resp_t *hr = th_send(held, get, sizeof get - 1) == 0 ? th_read_response(held, false) : NULL;
        bool ok = hr && hr->status == 200;
        if (hr)
            th_resp_free(hr);
        if (ok)
            break;
        th_close(held);
        refused++;
        cr_assert_lt(th_now_ms(), until, "the edge never took a connection");
    }
    th_resp_t *r = th_request(env.e, "GET", "/.cdn/health", NULL, NULL, 0);
    cr_assert_null(r, "a second connection is over max_connections_total");
    refused++;
    th_close(held);
    /* The edge notices the close on its own time: a scrape refused
     * meanwhile is one more refusal, counted too. */
    until = th_now_ms() + 5000;
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

Test(metrics, rate_limit_refusals_are_counted_per_rule)
{
    edge_env_t env;
    const char *extra[] = { "--rate-limit=6/m burst 3", NULL };
    edge_env_start(&env, extra);
    prom_t a, b;
    session_t ss = { env.e, 0, 0, 0, 0 };
    settled(&ss, &a);
    int refused = 0;
    for (int i = 0; i < 6; i++) {
        char t[64];
        snprintf(t, sizeof t, "/r-%d?size=8", i);
        th_resp_t *r = edge_get(&env, t);
        cr_assert(r->status == 200 || r->status == 429, "%d", r->status);
        refused += r->status == 429;
        ss.answered++;
        th_resp_free(r);
    }
    cr_assert_gt(refused, 0);
    settled(&ss, &b);
    cr_assert_eq(prom_value(&b, "cdn_rate_limited_total", "rule", "node", NULL) -
                     prom_value(&a, "cdn_rate_limited_total", "rule", "node", NULL),
                 refused);
    cr_assert_eq(req(&b, "limited") - req(&a, "limited"), refused);
    cr_assert_eq(prom_value(&b, "cdn_responses_total", "class", "4xx", NULL), refused);
    prom_free(&a);
    prom_free(&b);
    cr_assert_eq(th_stop(env.edge), 0);
}

#define TOKEN "metrics-purge-token"

Test(metrics, purges_are_counted_by_result_and_kind)
{
    edge_env_t env;
    static char token_arg[700];
    const char *extra[] = { edge_token_flag(TOKEN, token_arg, sizeof token_arg), NULL };
    edge_env_start(&env, extra);
    prom_t a, b;
    session_t ss = { env.e, 0, 0, 0, 0 };
    settled(&ss, &a);
    th_resp_t *r = edge_req(env.e, "POST", "/.cdn/purge", "Authorization: Bearer wrong\r\n", "{\"urls\": [\"/p\"]}", 16);
    cr_assert_eq(r->status, 401);
    th_resp_free(r);
    r = edge_req(env.e, "POST", "/.cdn/purge", "Authorization: Bearer " TOKEN "\r\n", "{\"urls\": [\"/p\"]}", 16);
    cr_assert_eq(r->status, 200, "%.*s", (int)r->body.len, r->body.data);
    th_resp_free(r);
    ss.answered = 2;
    settled(&ss, &b);
    cr_assert_eq(prom_value(&b, "cdn_purge_requests_total", "result", "refused", NULL), 1);
    cr_assert_eq(prom_value(&b, "cdn_purge_requests_total", "result", "ok", NULL), 1);
    cr_assert_eq(prom_value(&b, "cdn_purge_requests_total", "result", "failed", NULL), 0);
    cr_assert_eq(req(&b, "purge") - req(&a, "purge"), 2);
    cr_assert_eq(prom_value(&b, "cdn_store_purges_total", "kind", "url", NULL), 1);
    prom_free(&a);
    prom_free(&b);
    cr_assert_eq(th_stop(env.edge), 0);
}

Test(metrics, image_transforms_are_counted_done_and_failed)
{
    static const char conf[] = "[rule /img/*]\nimage = on\ndefault_ttl = 1h\nquery = drop etag cc\n";
    edge_env_t env;
    image_env_start(&env, conf, NULL);
    prom_t a, b;
    session_t ss = { env.e, 0, 0, 0, 0 };
    settled(&ss, &a);
    th_resp_free(image_expect(&env, "/img/a.jpg?width=800&height=600&w=200", NULL, 200, 150, "jpegload"));
    th_resp_t *r = image_get(&env, "GET", "/img/a.jpg?width=800&height=600&damage=corrupt&w=100", NULL);
    cr_assert_eq(r->status, 422);
    th_resp_free(r);
    ss.answered = 2;
    settled(&ss, &b);
    cr_assert_eq(prom_value(&b, "cdn_image_transforms_total", "result", "done", NULL), 1);
    cr_assert_eq(prom_value(&b, "cdn_image_transforms_total", "result", "failed", NULL), 1);
    cr_assert_eq(prom_value(&b, "cdn_image_transforms_total", "result", "refused", NULL), 0);
    cr_assert_eq(prom_value(&b, "cdn_image_transform_duration_seconds_count", NULL), 2);
    cr_assert_gt(prom_value(&b, "cdn_image_transform_duration_seconds_sum", NULL), 0);
    cr_assert_eq(image_transforms(&env), 1, "the log agrees on the one made");
    prom_free(&a);
    prom_free(&b);
    cr_assert_eq(th_stop(env.edge), 0);
}

/* The reader itself: each of these breaks one rule of the format. */
Test(metrics, strict_parser_refuses_bad_expositions)
{
    static const char *const good = "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"v\\\"\\n\\\\\"} 1\n"
                                    "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                                    "h_sum 0.5\nh_count 2\n";
    static const char *const bad[] = {
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1", /* no final newline */
        "# TYPE a_total counter\na_total 1\n",                 /* TYPE without HELP */
        "# HELP a A.\n# TYPE a counter\na 1\n",                /* counter without _total */
        "# HELP a_total A.\n# TYPE a_total counter\na_total -1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"v\\t\"} 1\n",   /* bad escape */
        "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"1\",k=\"2\"} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"1\",} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n",   /* twice */
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1 1700000000\n",  /* timestamp */
        "# HELP a_total A.\n# TYPE a_total counter\nb_total 1\n",             /* outside its family */
        "# HELP a_total A.\n# TYPE a_total counter\na_total 0x10\n",
        "# HELP g G.\n# TYPE g gauge\ng inf\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", /* no _sum */
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP g G.\n# TYPE g gauge\ng 1\n# HELP g G.\n# TYPE g gauge\n",   /* family twice */
        "# HELP g G.\n# TYPE g gauge\ng{le=\"1\"} 1\n",
        "# HELP g G.\n# TYPE g gauge\n\ng 1\n",
    };
    prom_t p;
    cr_assert_eq(prom_parse(good, strlen(good), &p), 0, "%s", p.err);
    cr_assert_eq(prom_value(&p, "a_total", "k", "v\"\n\\", NULL), 1);
    cr_assert_eq(prom_value(&p, "h_count", NULL), 2);
    prom_free(&p);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(prom_parse(bad[i], strlen(bad[i]), &p), -1, "accepted #%zu: %s", i, bad[i]);
        prom_free(&p);
    }
}
