/* Operating both tiers (issue 13): a shield serves the same metrics and
 * status as an edge, and the two together show where a request was
 * answered: an edge miss is one request to its shield (the edge's
 * upstream target), which is one request to the origin (the shield's);
 * the edge's next hit reaches neither. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "edge_env.h"
#include "prom_scrape.h"

#define OBJ "/tier/ops?size=3000&cc=max-age%3D600"

typedef struct tier {
    th_proc_t *origin, *shield, *edge;
    char origin_url[96], shield_arg[96];
} tier_t;

static void tier_start(tier_t *t)
{
    t->origin = th_origin();
    snprintf(t->origin_url, sizeof t->origin_url, "http://%s", th_addr(t->origin));
    char org[128], dir[700];
    snprintf(org, sizeof org, "--origin=%s", t->origin_url);
    snprintf(dir, sizeof dir, "--cache-dir=%s", th_tmpdir());
    const char *sargv[] = { "--name=shield-ops", "--listen=127.0.0.1:0", org, dir, "--workers=2", "--cache-size=64M",
                            "--health-path=/.origin/health", NULL };
    t->shield = th_spawn("shield", sargv);
    snprintf(t->shield_arg, sizeof t->shield_arg, "--shields=%s", th_addr(t->shield));
    const char *eargv[] = { "--name=edge-ops", t->shield_arg, NULL };
    t->edge = edge_start(th_addr(t->origin), th_tmpdir(), eargv);
}

static json_t *status(const char *addr)
{
    th_resp_t *r = th_request(addr, "GET", "/.cdn/status.json", NULL, NULL, 0);
    cr_assert_not_null(r);
    cr_assert_eq(r->status, 200);
    json_error_t e;
    json_t *j = json_loadb(r->body.data, r->body.len, 0, &e);
    cr_assert_not_null(j, "status.json: %s", e.text);
    th_resp_free(r);
    return j;
}

Test(tier_ops, a_miss_and_a_hit_show_at_each_tier)
{
    tier_t t;
    tier_start(&t);
    const char *e = th_addr(t.edge), *s = th_addr(t.shield);
    th_resp_t *r = edge_req(e, "GET", OBJ, NULL, NULL, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body.len, 3000);
    th_resp_free(r);
    /* The edge missed, and asked its shield (its upstream target). */
    prom_wait_value(e, "cdn_requests_total", "outcome", "miss", 1);
    cr_assert_eq(prom_scrape_value(e, "cdn_upstream_duration_seconds_count", "target", s), 1);
    cr_assert_eq(prom_scrape_value(e, "cdn_upstream_received_bytes_total", NULL, NULL), 3000);
    /* The shield missed too, and asked the origin. */
    prom_wait_value(s, "cdn_requests_total", "outcome", "miss", 1);
    cr_assert_eq(prom_scrape_value(s, "cdn_upstream_duration_seconds_count", "target", t.origin_url), 1);
    cr_assert_eq(prom_scrape_value(s, "cdn_upstream_received_bytes_total", NULL, NULL), 3000);

    /* Once stored, the edge answers alone: the shield sees nothing more. */
    th_resp_t *h = edge_poll_cs_at(e, OBJ, "hit", 5000);
    cr_assert_not_null(h, "the edge never hit");
    th_resp_free(h);
    /* The poll stopped at its first hit, which is counted as it ends,
     * maybe just after the client has it: wait for it, never race it. */
    prom_wait_value(e, "cdn_requests_total", "outcome", "hit", 1);
    cr_assert_eq(prom_scrape_value(e, "cdn_upstream_duration_seconds_count", "target", s), 1);
    cr_assert_eq(prom_scrape_value(s, "cdn_requests_total", "outcome", "miss"), 1);
    cr_assert_eq(prom_scrape_value(s, "cdn_requests_total", "outcome", "hit"), 0);

    /* Each tier's status names its role and its upstreams. */
    json_t *je = status(e), *js = status(s);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(je, "node"), "role")), "edge");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(js, "node"), "role")), "shield");
    json_t *ue = json_object_get(je, "upstreams"), *us = json_object_get(js, "upstreams");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ue, 0), "name")), s);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ue, 0), "role")), "shield");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ue, 1), "name")), t.origin_url);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ue, 1), "pool")), "fallback");
    cr_assert_eq(json_array_size(us), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(us, 0), "name")), t.origin_url);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(json_object_get(js, "totals"), "requests"), "miss")),
                 1);
    json_decref(je);
    json_decref(js);
}

/* An edge probes its shields at /.cdn/health: a draining shield answers
 * 503 and the edge stops choosing it (here: falls back to the origin)
 * while the shield still finishes what it has. */
Test(tier_ops, a_draining_shield_is_left_by_its_edge)
{
    tier_t t;
    memset(&t, 0, sizeof t);
    t.origin = th_origin();
    snprintf(t.origin_url, sizeof t.origin_url, "http://%s", th_addr(t.origin));
    char org[128], dir[700];
    snprintf(org, sizeof org, "--origin=%s", t.origin_url);
    snprintf(dir, sizeof dir, "--cache-dir=%s", th_tmpdir());
    const char *sargv[] = { "--name=shield-ops", "--listen=127.0.0.1:0", org, dir, "--workers=2", "--cache-size=64M",
                            "--health-path=/.origin/health", "--drain-delay=60s", NULL };
    t.shield = th_spawn("shield", sargv);
    snprintf(t.shield_arg, sizeof t.shield_arg, "--shields=%s", th_addr(t.shield));
    const char *eargv[] = { "--name=edge-ops", t.shield_arg, "--health-interval=100ms", "--eject-after=1", NULL };
    t.edge = edge_start(th_addr(t.origin), th_tmpdir(), eargv);
    const char *e = th_addr(t.edge), *s = th_addr(t.shield);
    prom_wait_value(e, "cdn_upstream_up", "target", s, 1);
    th_signal(t.shield, SIGTERM);
    /* Health checks now get 503: the shield is marked down... */
    prom_wait_value(e, "cdn_upstream_up", "target", s, 0);
    /* ...and the edge's next miss goes around it, to the origin. */
    th_resp_t *r = edge_req(e, "GET", "/tier/drain?size=100&cc=max-age%3D600", NULL, NULL, 0);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    prom_wait_value(e, "cdn_requests_total", "outcome", "miss", 1);
    cr_assert_eq(prom_scrape_value(e, "cdn_upstream_duration_seconds_count", "target", t.origin_url), 1);
    cr_assert_eq(prom_scrape_value(s, "cdn_requests_total", "outcome", "miss"), 0, "the draining shield was not asked");
}
