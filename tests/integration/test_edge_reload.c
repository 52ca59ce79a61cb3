/* Reload on SIGHUP: the node re-reads its -c FILE (flags still win) and
 * applies it without dropping a connection or the cache; a bad file is
 * refused; restart-only settings are named and kept. Each test writes the
 * edge's config to a temporary file, signals the real bin/edge and waits
 * for its "reload: applied" (or "refused") log line. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "edge_env.h"
#include "harness.h"
#include "prom_scrape.h"

#define BIG_SIZE (48u << 20) /* more than the socket buffers hold: in flight while we reload */

typedef struct node {
    char path[600];            /* the config file */
    char dir[600];             /* cache directory */
    th_proc_t *edge;
    const char *e;
    int reloads;               /* "reload: applied" lines expected so far */
} node_t;

/* Write the file whole (a temporary then rename), so a reload never reads
 * half of it. */
static void write_conf(const node_t *n, const char *origin, const char *extra)
{
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", n->path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f, "listen = 127.0.0.1:0\norigin = http://%s\ncache_dir = %s\ncache_size = 64M\n%s", origin, n->dir,
            extra ? extra : "");
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, n->path), 0);
}

static void start_bin(node_t *n, const char *bin, const char *origin, const char *extra)
{
    char *tmp = th_tmpdir();
    snprintf(n->path, sizeof n->path, "%s/edge.conf", tmp);
    snprintf(n->dir, sizeof n->dir, "%s/cache", tmp);
    write_conf(n, origin, extra);
    /* A flag wins over the file, at start and at every reload. */
    const char *argv[] = { "-c", n->path, "--workers=2", "--name=reload-edge", NULL };
    n->edge = th_spawn(bin, argv);
    n->e = th_addr(n->edge);
    n->reloads = 0;
}

static void start(node_t *n, const char *origin, const char *extra)
{
    start_bin(n, "edge", origin, extra);
}

static void sighup(const node_t *n)
{
    cr_assert_eq(kill(th_pid(n->edge), SIGHUP), 0);
}

/* SIGHUP and wait until every worker took the new generation. */
static void reload(node_t *n)
{
    sighup(n);
    n->reloads++;
    cr_assert(th_wait_log(n->edge, "reload: applied", n->reloads), "no reload: applied #%d", n->reloads);
}

static th_resp_t *get(const node_t *n, const char *target)
{
    th_resp_t *r = edge_req(n->e, "GET", target, NULL, NULL, 0);
    cr_assert_not_null(r, "GET %s: %s", target, th_last_error());
    return r;
}

static th_resp_t *poll_cs(const node_t *n, const char *target, const char *needle)
{
    return edge_poll_cs_at(n->e, target, needle, 5000);
}

static void expect_cs(const node_t *n, const char *target, const char *needle)
{
    th_resp_t *r = poll_cs(n, target, needle);
    cr_assert_not_null(r, "%s never showed '%s'", target, needle);
    th_resp_free(r);
}

#define CC60 "cc=max-age%3D60"
#define CC60_FMT "cc=max-age%%3D60" /* the same, in a format string */

Test(reload, changed_rule_applies_to_next_request_while_download_finishes_and_cache_stays)
{
    th_proc_t *o = th_origin();
    node_t n;
    start(&n, th_addr(o), NULL);
    /* A cached object, and a path no rule covers: no freshness, not stored. */
    expect_cs(&n, "/kept?size=500&" CC60, "hit");
    th_resp_t *r = get(&n, "/t/a?size=100");
    cr_assert(!cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* A long download on its own connection, not read yet: in flight. */
    th_conn_t *c = th_connect(n.e);
    cr_assert_not_null(c);
    char req[256];
    snprintf(req, sizeof req, "GET /big?size=%u&cc=no-store HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n", BIG_SIZE);
    cr_assert_eq(th_send(c, req, strlen(req)), 0);
    int64_t until = th_now_ms() + TH_TIMEOUT_MS;
    while (th_origin_bytes(th_addr(o), "/big") < (1 << 20) && th_now_ms() < until)
        ;
    cr_assert_geq(th_origin_bytes(th_addr(o), "/big"), 1 << 20);

    write_conf(&n, th_addr(o), "[rule /t/*]\ndefault_ttl = 1h\n");
    reload(&n);
    cr_assert(th_wait_log(n.edge, "reload: 0 rules -> 1 rule", 1));
    cr_assert(th_wait_log(n.edge, "reload: [rule /t/*] added", 1));
    cr_assert_eq(th_log_count(n.edge, "reload: name"), 0, "the --name flag must win over the file");
    /* The download's request (and its fetch) still read the old
     * generation: two are alive until it ends. */
    cr_assert_eq(prom_scrape_value(n.e, "cdn_config_generations", NULL, NULL), 2);
    cr_assert_eq(prom_scrape_value(n.e, "cdn_config_reloads_total", "result", "applied"), 1);
    /* The next request runs under the new rule: stored for an hour. */
    r = get(&n, "/t/b?size=100");
    cr_assert(cs_has(r, "stored; ttl=3600"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    expect_cs(&n, "/t/b?size=100", "hit");
    /* The cache kept its objects. */
    r = get(&n, "/kept?size=500&" CC60);
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* The download started before the reload ends whole. */
    r = th_read_response(c, false);
    cr_assert_not_null(r, "%s", th_last_error());
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body.len, BIG_SIZE);
    cr_assert(th_body_matches("/big", BIG_SIZE, r->body.data, r->body.len));
    th_resp_free(r);
    th_close(c);
    /* Its end lets the old generation go (the request's last reference
     * drops as its response ends: poll, bounded). */
    prom_wait_value(n.e, "cdn_config_generations", NULL, NULL, 1); /* else the old generation was never freed */
}

Test(reload, broken_file_is_refused_with_its_line_and_the_node_keeps_serving)
{
    th_proc_t *o = th_origin();
    node_t n;
    start(&n, th_addr(o), "[rule /t/*]\ndefault_ttl = 1h\n");
    /* Line 7 is not a setting: the whole file is refused. */
    write_conf(&n, th_addr(o), "[rule /t/*]\ndefault_ttl = 5s\nthis is not a setting\n");
    sighup(&n);
    char needle[700];
    snprintf(needle, sizeof needle, "reload: refused: %s:7:", n.path);
    cr_assert(th_wait_log(n.edge, needle, 1), "no '%s' in the log", needle);
    /* A semantic error (a header both keyed and not) is refused too. */
    write_conf(&n, th_addr(o), "pass_headers = X-Forwarded-Proto\npass_headers_unkeyed = X-Forwarded-Proto\n");
    sighup(&n);
    cr_assert(th_wait_log(n.edge, "reload: refused: pass_headers_unkeyed: 'x-forwarded-proto' is in pass_headers too", 1));
    cr_assert_eq(th_log_count(n.edge, "reload: applied"), 0);
    cr_assert_eq(prom_scrape_value(n.e, "cdn_config_reloads_total", "result", "refused"), 2);
    cr_assert_eq(prom_scrape_value(n.e, "cdn_config_reloads_total", "result", "applied"), 0);
    cr_assert_eq(prom_scrape_value(n.e, "cdn_config_generations", NULL, NULL), 1);
    /* The running configuration stays: the rule's hour. */
    th_resp_t *r = get(&n, "/t/a?size=100");
    cr_assert_eq(r->status, 200);
    cr_assert(cs_has(r, "stored; ttl=3600"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

Test(reload, restart_only_setting_is_named_and_kept)
{
    th_proc_t *o = th_origin();
    node_t n;
    start(&n, th_addr(o), NULL);
    char file[4096];
    snprintf(file, sizeof file, "listen = 127.0.0.1:1\ncache_size = 128M\n");
    FILE *f = fopen(n.path, "a");
    cr_assert_not_null(f);
    fputs(file, f);
    fclose(f);
    reload(&n);
    cr_assert(th_wait_log(n.edge, "reload: listen changed: needs a restart; kept 127.0.0.1:0", 1));
    cr_assert(th_wait_log(n.edge, "reload: cache_size changed: needs a restart; kept 64M", 1));
    expect_cs(&n, "/still?size=10&" CC60, "hit");
}

Test(reload, changed_origin_takes_the_misses)
{
    th_proc_t *o1 = th_origin(), *o2 = th_origin();
    node_t n;
    start(&n, th_addr(o1), NULL);
    expect_cs(&n, "/one?size=10&" CC60, "hit");
    cr_assert_eq(th_origin_requests(th_addr(o1), "/one"), 1);
    write_conf(&n, th_addr(o2), NULL);
    reload(&n);
    char needle[300];
    snprintf(needle, sizeof needle, "reload: origin http://%s -> http://%s", th_addr(o1), th_addr(o2));
    cr_assert(th_wait_log(n.edge, needle, 1), "no '%s'", needle);
    th_resp_t *r = get(&n, "/two?size=10&" CC60);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(th_addr(o2), "/two"), 1);
    cr_assert_eq(th_origin_requests(th_addr(o1), "/two"), 0);
    /* What was cached from the first origin stays. */
    r = get(&n, "/one?size=10&" CC60);
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

Test(reload, rate_limit_change_applies)
{
    th_proc_t *o = th_origin();
    node_t n;
    start(&n, th_addr(o), NULL);
    for (int i = 0; i < 5; i++) {
        th_resp_t *r = get(&n, "/rl?size=10&" CC60);
        cr_assert_eq(r->status, 200);
        th_resp_free(r);
    }
    write_conf(&n, th_addr(o), "rate_limit = 1/m\n");
    reload(&n);
    cr_assert(th_wait_log(n.edge, "reload: rate_limit off -> ", 1));
    int refused = 0;
    for (int i = 0; i < 3; i++) {
        th_resp_t *r = get(&n, "/rl?size=10&" CC60);
        refused += r->status == 429;
        th_resp_free(r);
    }
    cr_assert_eq(refused, 2, "one request a minute: the 2nd and 3rd are refused");
}

typedef struct origin_hits {
    const char *o;
    const char *path;
} origin_hits_t;

static bool origin_hit(void *arg)
{
    origin_hits_t *h = arg;
    return th_origin_requests(h->o, h->path) > 0;
}

Test(reload, shield_health_checks_follow_a_changed_origin)
{
    th_proc_t *o1 = th_origin(), *o2 = th_origin();
    node_t n;
    start_bin(&n, "shield", th_addr(o1), "health_interval = 100ms\nhealth_path = /hc1\n");
    origin_hits_t h1 = { th_addr(o1), "/hc1" }, h2 = { th_addr(o2), "/hc2" };
    cr_assert(th_wait_until(origin_hit, &h1, 5000), "the shield checks its origin");
    write_conf(&n, th_addr(o2), "health_interval = 100ms\nhealth_path = /hc2\n");
    reload(&n);
    cr_assert(th_wait_until(origin_hit, &h2, 5000), "the checker follows the new origin");
    cr_assert(th_wait_log(n.edge, "reload: health_path /hc1 -> /hc2", 1));
    th_resp_t *r = th_get(n.e, "/s?size=10");
    cr_assert_not_null(r);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(th_addr(o2), "/s"), 1);
    cr_assert_eq(th_stop(n.edge), 0);
}

/* --- many reloads under load (run it under ASan: old generations are
 * freed while requests, fetches and downloads that hold them finish) --- */

typedef struct storm {
    node_t *n;
    const char *o1, *o2;
    int stop;                  /* atomic: the reloads are over */
    int bad;                   /* atomic: requests that failed */
    char why[256];
} storm_t;

static void storm_load(int i, storm_t *s)
{
    char t[128];
    for (int k = 0; !__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST) && k < 100000; k++) {
        switch (k % 4) {
        case 0: snprintf(t, sizeof t, "/hot/%d?size=2000&" CC60_FMT, k % 8); break;       /* hits */
        case 1: snprintf(t, sizeof t, "/t/%d-%d?size=3000", i, k); break;             /* misses, rule-dependent */
        case 2: snprintf(t, sizeof t, "/slow/%d-%d?size=200000&delay=20", i, k); break; /* fetches across a reload */
        default: snprintf(t, sizeof t, "/pass/%d?size=100&cc=no-store", k); break;
        }
        th_resp_t *r = edge_req(s->n->e, "GET", t, NULL, NULL, 0);
        if (!r || r->status != 200) {
            if (__atomic_fetch_add(&s->bad, 1, __ATOMIC_SEQ_CST) == 0)
                snprintf(s->why, sizeof s->why, "%s: %s", t, r ? "not 200" : th_last_error());
        }
        th_resp_free(r);
    }
}

static void storm_fn(int i, void *arg)
{
    storm_t *s = arg;
    if (i > 0) {
        storm_load(i, s);
        return;
    }
    for (int k = 0; k < 20; k++) {
        /* Alternate origins (the pool changes), rules (their options are
         * freed) and limits. */
        const char *extra = k % 2 ? "[rule /t/*]\ndefault_ttl = 1h\n[rule /slow/*]\ndefault_ttl = 2h\n"
                                  : "pass_headers = X-Forwarded-Proto\nmax_requests_per_connection = 50\n";
        write_conf(s->n, k % 3 ? s->o1 : s->o2, extra);
        sighup(s->n);
        s->n->reloads++;
        if (!th_wait_log(s->n->edge, "reload: applied", s->n->reloads)) {
            __atomic_fetch_add(&s->bad, 1, __ATOMIC_SEQ_CST);
            break;
        }
    }
    __atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
}

Test(reload, twenty_reloads_under_parallel_requests)
{
    th_proc_t *o1 = th_origin(), *o2 = th_origin();
    node_t n;
    start(&n, th_addr(o1), NULL);
    storm_t s = { .n = &n, .o1 = th_addr(o1), .o2 = th_addr(o2) };
    th_parallel(5, storm_fn, &s);
    cr_assert_eq(s.bad, 0, "%d failures; first: %s", s.bad, s.why);
    cr_assert_eq(th_log_count(n.edge, "reload: applied"), 20);
    cr_assert_eq(prom_scrape_value(n.e, "cdn_config_reloads_total", "result", "applied"), 20);
    /* Every request has ended: the 20 retired generations are all freed
     * (background fetches may still be finishing: poll, bounded). */
    prom_wait_value(n.e, "cdn_config_generations", NULL, NULL, 1); /* else retired generations are still alive */
    th_resp_t *r = get(&n, "/after?size=10");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    cr_assert_eq(th_stop(n.edge), 0, "a clean exit (ASan: no leak, no use after free)");
}
