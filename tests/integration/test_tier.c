/* The origin-shield tier on the wire: an origin, two shields and three
 * edges on distinct loopback addresses (127.0.0.1 origin, 127.0.1.x
 * shields, 127.0.2.x edges). Collapsing across edges, keys spread over
 * the shields by rendezvous hashing, failover when a shield dies (and its
 * return), the origin as the last resort, retries on the next shield, and
 * Cache-Status showing both tiers. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"

#define CC "cc=max-age%3D600"
#define CCF "cc=max-age%%3D600" /* in a format string */

typedef struct tier {
    th_proc_t *origin, *shield[2], *edge[3];
    char shield_addr[2][64];
    char shields_arg[160];
    char origin_arg[96];
    char *shield_dir[2];
} tier_t;

static th_proc_t *start_shield(tier_t *t, int i, const char *listen, const char *origin_url)
{
    char name[32], lst[80], org[160], dir[600];
    snprintf(name, sizeof name, "--name=shield-%c", 'a' + i);
    snprintf(lst, sizeof lst, "--listen=%s", listen);
    snprintf(org, sizeof org, "--origin=%s", origin_url);
    snprintf(dir, sizeof dir, "--cache-dir=%s", t->shield_dir[i]);
    const char *argv[] = { name, lst, org, dir, "--workers=2", "--cache-size=64M", "--health-path=/.origin/health",
                           "--health-interval=200ms", "--health-timeout=500ms", NULL };
    return th_spawn("shield", argv);
}

static th_proc_t *start_edge(tier_t *t, int i, const char *extra)
{
    char name[32], lst[64];
    snprintf(name, sizeof name, "--name=edge-%d", i + 1);
    snprintf(lst, sizeof lst, "--listen=127.0.2.%d:0", i + 1);
    const char *argv[] = { name, lst, t->shields_arg, "--health-interval=200ms", "--health-timeout=500ms",
                           "--eject-after=2", "--eject-backoff=500ms", extra, NULL };
    return edge_start(th_addr(t->origin), th_tmpdir(), argv);
}

/* origin + 2 shields + n edges (edges fall back to the origin unless
 * edge_extra says otherwise). */
static void tier_start(tier_t *t, int nedges, const char *edge_extra)
{
    memset(t, 0, sizeof *t);
    t->origin = th_origin();
    snprintf(t->origin_arg, sizeof t->origin_arg, "http://%s", th_addr(t->origin));
    for (int i = 0; i < 2; i++) {
        char listen[32];
        snprintf(listen, sizeof listen, "127.0.1.%d:0", i + 1);
        t->shield_dir[i] = th_tmpdir();
        t->shield[i] = start_shield(t, i, listen, t->origin_arg);
        snprintf(t->shield_addr[i], sizeof t->shield_addr[i], "%s", th_addr(t->shield[i]));
    }
    snprintf(t->shields_arg, sizeof t->shields_arg, "--shields=%s,%s", t->shield_addr[0], t->shield_addr[1]);
    for (int i = 0; i < nedges; i++)
        t->edge[i] = start_edge(t, i, edge_extra ? edge_extra : "--origin-timeout=5s");
}

/* Which shield's member heads the Cache-Status chain: 0 (a), 1 (b), -1 none. */
static int via_shield(th_resp_t *r)
{
    const char *cs = th_hdr(r, "cache-status");
    if (cs && strncmp(cs, "shield-a;", 9) == 0)
        return 0;
    if (cs && strncmp(cs, "shield-b;", 9) == 0)
        return 1;
    return -1;
}

typedef struct cold {
    tier_t *t;
    int ok;
} cold_t;

static void cold_one(int i, void *arg)
{
    cold_t *c = arg;
    th_resp_t *r = edge_req(th_addr(c->t->edge[i % 3]), "GET", "/cold?size=5000&delay=300&" CC, NULL, NULL, 0);
    if (r && r->status == 200 && th_body_matches("/cold", 5000, r->body.data, r->body.len))
        __atomic_add_fetch(&c->ok, 1, __ATOMIC_SEQ_CST);
    if (r)
        th_resp_free(r);
}

Test(tier, thirty_requests_over_three_edges_make_one_origin_request)
{
    tier_t t;
    tier_start(&t, 3, NULL);
    cold_t c = { &t, 0 };
    th_parallel(30, cold_one, &c);
    cr_assert_eq(c.ok, 30);
    cr_assert_eq(th_origin_requests(th_addr(t.origin), "/cold"), 1);
    /* Both tiers in Cache-Status, nearest the origin first. */
    th_resp_t *r = edge_req(th_addr(t.edge[0]), "GET", "/cold?size=5000&delay=300&" CC, NULL, NULL, 0);
    const char *cs = th_hdr(r, "cache-status");
    cr_assert(strstr(cs, "shield-") == cs && strstr(cs, ", edge-1; "), "%s", cs);
    th_resp_free(r);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(th_stop(t.edge[i]), 0);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(th_stop(t.shield[i]), 0);
}

Test(tier, keys_spread_over_both_shields)
{
    tier_t t;
    tier_start(&t, 1, NULL);
    int count[2] = { 0, 0 };
    char path[64];
    for (int i = 0; i < 200; i++) {
        snprintf(path, sizeof path, "/spread%d?size=10&" CCF, i);
        th_resp_t *r = edge_req(th_addr(t.edge[0]), "GET", path, NULL, NULL, 0);
        cr_assert_eq(r->status, 200);
        int s = via_shield(r);
        cr_assert_geq(s, 0, "%s", th_hdr(r, "cache-status"));
        count[s]++;
        th_resp_free(r);
    }
    cr_assert(count[0] >= 70 && count[1] >= 70, "shield-a %d, shield-b %d of 200", count[0], count[1]);
    /* The same key always goes to the same shield (so it is cached once). */
    th_resp_t *r1 = edge_req(th_addr(t.edge[0]), "GET", "/spread7?size=10&" CC "&v=1", NULL, NULL, 0);
    th_resp_t *r2 = edge_req(th_addr(t.edge[0]), "GET", "/spread7?size=10&" CC "&v=1", "Cache-Control: no-cache\r\n",
                             NULL, 0);
    cr_assert_eq(via_shield(r1), via_shield(r2));
    th_resp_free(r1);
    th_resp_free(r2);
}

/* Requests over n keys through edge e; returns the failures. */
static int loop_keys(tier_t *t, int e, const char *prefix, int n, int via[2])
{
    int bad = 0;
    char path[96];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "/%s%d?size=2000&" CCF, prefix, i);
        th_resp_t *r = edge_req(th_addr(t->edge[e]), "GET", path, NULL, NULL, 0);
        char p[64];
        snprintf(p, sizeof p, "/%s%d", prefix, i);
        if (!r || r->status != 200 || !th_body_matches(p, 2000, r->body.data, r->body.len))
            bad++;
        else if (via && via_shield(r) >= 0)
            via[via_shield(r)]++;
        if (r)
            th_resp_free(r);
    }
    return bad;
}

typedef struct revived {
    tier_t *t;
    int round;
} revived_t;

static bool shield_a_used_again(void *arg)
{
    revived_t *rv = arg;
    int via[2] = { 0, 0 };
    char prefix[32];
    snprintf(prefix, sizeof prefix, "back%d-", rv->round++);
    loop_keys(rv->t, 0, prefix, 20, via);
    return via[0] > 0;
}

Test(tier, a_killed_shield_fails_over_and_comes_back)
{
    tier_t t;
    tier_start(&t, 1, NULL);
    int via[2] = { 0, 0 };
    cr_assert_eq(loop_keys(&t, 0, "warm", 40, via), 0);
    cr_assert(via[0] > 0 && via[1] > 0, "a %d b %d", via[0], via[1]);
    th_kill9(t.shield[0]);
    /* Keys of the dead shield move to the other at once (connect errors
     * are retried on the next shield); once the edge has marked it down
     * (its health checks fail), nobody sees an error at all. */
    char down[96], back[96];
    snprintf(down, sizeof down, "%s is down", t.shield_addr[0]);
    snprintf(back, sizeof back, "%s is back", t.shield_addr[0]);
    cr_assert(th_wait_log(t.edge[0], down, 1), "the edge never marked shield-a down");
    int via2[2] = { 0, 0 };
    cr_assert_eq(loop_keys(&t, 0, "after", 60, via2), 0, "errors after the failover");
    cr_assert_eq(via2[0], 0);
    cr_assert_gt(via2[1], 0);
    cr_assert_eq(th_log_count(t.edge[0], back), 0);
    /* Back: same address, it rejoins the rotation once a check passes. */
    t.shield[0] = start_shield(&t, 0, t.shield_addr[0], t.origin_arg);
    cr_assert(th_wait_log(t.edge[0], back, 1), "the edge never saw shield-a back");
    revived_t rv = { &t, 0 };
    cr_assert(th_wait_until(shield_a_used_again, &rv, TH_TIMEOUT_MS), "shield-a never came back into rotation");
    cr_assert_eq(loop_keys(&t, 0, "final", 40, NULL), 0);
}

Test(tier, with_both_shields_down_edges_go_to_the_origin)
{
    tier_t t;
    tier_start(&t, 1, NULL);
    th_kill9(t.shield[0]);
    th_kill9(t.shield[1]);
    int via[2] = { 0, 0 };
    cr_assert_eq(loop_keys(&t, 0, "direct", 20, via), 0);
    cr_assert_eq(via[0] + via[1], 0);
    cr_assert_eq(th_origin_requests(th_addr(t.origin), "/direct3"), 1);
    th_resp_t *r = edge_req(th_addr(t.edge[0]), "GET", "/direct3?size=2000&" CC, "Cache-Control: no-cache\r\n", NULL, 0);
    const char *cs = th_hdr(r, "cache-status");
    cr_assert(strncmp(cs, "edge-1;", 7) == 0, "a shield answered: %s", cs);
    th_resp_free(r);
}

Test(tier, with_no_shield_and_no_origin_stale_or_a_clear_502)
{
    tier_t t;
    tier_start(&t, 1, "--origin=none");
    const char *s = "/lastresort?size=100&cc=max-age%3D1";
    th_resp_t *r = edge_req(th_addr(t.edge[0]), "GET", s, NULL, NULL, 0);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    th_kill9(t.shield[0]);
    th_kill9(t.shield[1]);
    /* Fresh for a second: hits until then, then the stale copy served
     * because nothing upstream answers (bounded polling on that effect). */
    r = edge_poll_cs_at(th_addr(t.edge[0]), s, "detail=upstream-unreachable", TH_TIMEOUT_MS);
    cr_assert_not_null(r, "the object never went stale, or was not served stale");
    cr_assert_eq(r->status, 200, "the stale object is better than nothing");
    cr_assert(th_body_matches("/lastresort", 100, r->body.data, r->body.len));
    cr_assert(cs_has(r, "detail=upstream-unreachable"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    r = edge_req(th_addr(t.edge[0]), "GET", "/never-seen?size=10", NULL, NULL, 0);
    cr_assert_eq(r->status, 502);
    cr_assert(strstr(r->body.data, "no shield or origin"), "%s", r->body.data);
    th_resp_free(r);
}

Test(tier, a_failing_shield_is_skipped_for_the_next)
{
    /* shield-a's origin is dead (it answers 502); shield-b's works: every
     * request still gets a 200 through shield-b. */
    tier_t t;
    memset(&t, 0, sizeof t);
    t.origin = th_origin();
    snprintf(t.origin_arg, sizeof t.origin_arg, "http://%s", th_addr(t.origin));
    for (int i = 0; i < 2; i++)
        t.shield_dir[i] = th_tmpdir();
    t.shield[0] = start_shield(&t, 0, "127.0.1.1:0", "http://127.0.0.1:9");
    t.shield[1] = start_shield(&t, 1, "127.0.1.2:0", t.origin_arg);
    snprintf(t.shields_arg, sizeof t.shields_arg, "--shields=%s,%s", th_addr(t.shield[0]), th_addr(t.shield[1]));
    t.edge[0] = start_edge(&t, 0, "--origin=none");
    int via[2] = { 0, 0 };
    cr_assert_eq(loop_keys(&t, 0, "skip", 30, via), 0);
    cr_assert_eq(via[0], 0);
    cr_assert_eq(via[1], 30);
}

Test(tier, a_request_loop_is_refused)
{
    /* A request that already went through this node (a shield whose origin
     * points back at the edge, say) is answered 508 instead of looping. */
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_req(env.e, "GET", "/loop", "Via: 1.1 shield-1, 1.1 edge-1\r\n", NULL, 0);
    cr_assert_eq(r->status, 508);
    cr_assert(cs_has(r, "detail=loop"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    r = edge_req(env.e, "GET", "/loop", "Via: 1.1 edge-10\r\n", NULL, 0);
    cr_assert_eq(r->status, 200, "another node's name is not ours");
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/loop"), 1);
}
