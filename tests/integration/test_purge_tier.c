/* Purges across the tiers: an origin (127.0.0.1), one shield (127.0.1.1)
 * and three edges (127.0.2.x). A purge accepted by edge 1 is applied
 * there, passed on to the shield first, then to edges 2 and 3, and the
 * answer says which peers confirmed. A peer that is down is retried and
 * purged when it comes back. Tags from the origin reach the edges through
 * the shield, never a client. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge_env.h"

#define TOKEN "tier-purge-token-0123456789"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define CC "cc=max-age%3D600"

typedef struct tier {
    th_proc_t *origin, *shield, *edge[3];
    char *edge_dir[3];
    char token_arg[700], shields_arg[96], peers_arg[200];
} tier_t;


static th_proc_t *start_edge(tier_t *t, int i, const char *listen, const char *peers)
{
    char name[32], lst[64], org[96], dir[600];
    snprintf(name, sizeof name, "--name=edge-%d", i + 1);
    snprintf(lst, sizeof lst, "--listen=%s", listen);
    snprintf(org, sizeof org, "--origin=http://%s", th_addr(t->origin));
    snprintf(dir, sizeof dir, "--cache-dir=%s", t->edge_dir[i]);
    const char *argv[] = { name, lst, org, dir, t->shields_arg, t->token_arg, "--workers=2", "--cache-size=64M",
                           "--purge-retry-for=30s", peers, NULL };
    return th_spawn("edge", argv);
}

static void tier_start(tier_t *t)
{
    memset(t, 0, sizeof *t);
    edge_token_flag(TOKEN, t->token_arg, sizeof t->token_arg);
    t->origin = th_origin();
    char org[96], dir[600];
    snprintf(org, sizeof org, "--origin=http://%s", th_addr(t->origin));
    snprintf(dir, sizeof dir, "--cache-dir=%s", th_tmpdir());
    const char *sargv[] = { "--name=shield-1", "--listen=127.0.1.1:0", org, dir, t->token_arg, "--workers=2",
                            "--cache-size=64M", NULL };
    t->shield = th_spawn("shield", sargv);
    snprintf(t->shields_arg, sizeof t->shields_arg, "--shields=%s", th_addr(t->shield));
    for (int i = 0; i < 3; i++)
        t->edge_dir[i] = th_tmpdir();
    t->edge[1] = start_edge(t, 1, "127.0.2.2:0", NULL);
    t->edge[2] = start_edge(t, 2, "127.0.2.3:0", NULL);
    snprintf(t->peers_arg, sizeof t->peers_arg, "--purge-peers=%s,%s", th_addr(t->edge[1]), th_addr(t->edge[2]));
    t->edge[0] = start_edge(t, 0, "127.0.2.1:0", t->peers_arg);
}

static th_resp_t *get(const tier_t *t, int e, const char *target)
{
    th_resp_t *r = edge_req(th_addr(t->edge[e]), "GET", target, NULL, NULL, 0);
    cr_assert_not_null(r, "%s", th_last_error());
    return r;
}

/* GET target on edge e until it is an edge hit. */
static void stored_on(const tier_t *t, int e, const char *target)
{
    for (int64_t end = th_now_ms() + TH_TIMEOUT_MS; th_now_ms() < end;) {
        th_resp_t *r = get(t, e, target);
        bool hit = cs_has(r, "edge-") && strstr(th_hdr(r, "cache-status"), ", edge-") &&
                   strstr(strstr(th_hdr(r, "cache-status"), ", edge-"), "; hit");
        th_resp_free(r);
        if (hit)
            return;
    }
    cr_assert_fail("%s never became a hit on edge %d", target, e + 1);
}

/* Is target an edge hit on edge e (one GET, with extra header lines)? */
static bool edge_hit_with(const tier_t *t, int e, const char *target, const char *extra)
{
    th_resp_t *r = edge_req(th_addr(t->edge[e]), "GET", target, extra, NULL, 0);
    cr_assert_not_null(r);
    const char *cs = th_hdr(r, "cache-status");
    const char *mine = cs ? strstr(cs, ", edge-") : NULL;
    bool hit = mine && strstr(mine, "; hit");
    th_resp_free(r);
    return hit;
}

static bool edge_hit(const tier_t *t, int e, const char *target)
{
    return edge_hit_with(t, e, target, NULL);
}

static th_resp_t *purge(const tier_t *t, const char *json)
{
    th_resp_t *r = edge_req(th_addr(t->edge[0]), "POST", "/.cdn/purge", AUTH, json, strlen(json));
    cr_assert_not_null(r);
    cr_assert_eq(r->status, 200, "%d %s", r->status, r->body.data);
    return r;
}

Test(purge_tier, a_purge_reaches_the_shield_and_every_edge)
{
    tier_t t;
    tier_start(&t);
    const char *a = "/tiered?" CC "&sk=product-42", *b = "/tiered-ct?" CC "&header=Cache-Tag:product-42,x";
    for (int e = 0; e < 3; e++) {
        stored_on(&t, e, a);
        stored_on(&t, e, b);
    }
    long before = th_origin_requests(th_addr(t.origin), "/tiered");
    th_resp_t *r = purge(&t, "{\"tags\": [\"product-42\"]}");
    /* The shield and both edges confirmed, shield first in the list. */
    const char *shield = strstr(r->body.data, th_addr(t.shield));
    cr_assert(shield, "%s", r->body.data);
    for (int e = 1; e < 3; e++)
        cr_assert(strstr(r->body.data, th_addr(t.edge[e])), "%s", r->body.data);
    cr_assert_null(strstr(r->body.data, "failed"), "%s", r->body.data);
    cr_assert_null(strstr(r->body.data, "retrying"), "%s", r->body.data);
    th_resp_free(r);
    for (int e = 0; e < 3; e++) {
        cr_assert_not(edge_hit(&t, e, a), "edge %d still had it (Surrogate-Key)", e + 1);
        cr_assert_not(edge_hit(&t, e, b), "edge %d still had it (Cache-Tag)", e + 1);
    }
    /* The shield lost it too: one new origin request served the three. */
    cr_assert_eq(th_origin_requests(th_addr(t.origin), "/tiered"), before + 1);
    /* And the tag never reached a client on the way. */
    r = get(&t, 1, a);
    cr_assert_eq(th_hdr_count(r, "surrogate-key"), 0);
    th_resp_free(r);
}

Test(purge_tier, by_url_prefix_and_all_on_every_node)
{
    tier_t t;
    tier_start(&t);
    const char *u = "/u?" CC "&vary=Accept-Language", *s = "/static/x.css?" CC, *o = "/other?" CC;
    static const char *const langs[] = { "Accept-Language: en\r\n", "Accept-Language: fr\r\n" };
    for (int e = 0; e < 3; e++) {
        for (int l = 0; l < 2; l++) {
            bool hit = false;
            for (int64_t end = th_now_ms() + TH_TIMEOUT_MS; !hit && th_now_ms() < end;)
                hit = edge_hit_with(&t, e, u, langs[l]);
            cr_assert(hit, "variant %d on edge %d", l, e + 1);
        }
        stored_on(&t, e, s);
        stored_on(&t, e, o);
    }
    th_resp_free(purge(&t, "{\"urls\": [\"/u?" CC "&vary=Accept-Language\"]}"));
    th_resp_free(purge(&t, "{\"prefixes\": [\"/static/\"]}"));
    for (int e = 0; e < 3; e++) {
        for (int l = 0; l < 2; l++)
            cr_assert_not(edge_hit_with(&t, e, u, langs[l]), "variant %d on edge %d", l, e + 1);
        cr_assert_not(edge_hit(&t, e, s), "prefix on edge %d", e + 1);
        cr_assert(edge_hit(&t, e, o), "other on edge %d", e + 1);
    }
    th_resp_free(purge(&t, "{\"all\": true}"));
    for (int e = 0; e < 3; e++)
        cr_assert_not(edge_hit(&t, e, o), "all on edge %d", e + 1);
}

Test(purge_tier, a_peer_that_is_down_is_purged_when_it_comes_back)
{
    tier_t t;
    tier_start(&t);
    const char *a = "/comeback?" CC;
    stored_on(&t, 2, a);
    char addr[64];
    snprintf(addr, sizeof addr, "%s", th_addr(t.edge[2]));
    th_kill9(t.edge[2]);
    th_resp_t *r = purge(&t, "{\"urls\": [\"/comeback?" CC "\"]}");
    cr_assert(strstr(r->body.data, "retrying"), "the dead peer is reported: %s", r->body.data);
    th_resp_free(r);
    /* Back on the same address, with the cache it had (the object in it). */
    t.edge[2] = start_edge(&t, 2, addr, NULL);
    cr_assert(th_wait_log(t.edge[0], "confirmed after", 1), "edge 1 kept retrying until it confirmed");
    cr_assert_not(edge_hit(&t, 2, a), "the purge reached the peer that was down");
    cr_assert(th_log_count(t.edge[0], "failed") >= 1, "each failure is logged");
}

Test(purge_tier, refused_purges_leave_every_node_as_it_was)
{
    tier_t t;
    tier_start(&t);
    const char *a = "/kept?" CC;
    for (int e = 0; e < 3; e++)
        stored_on(&t, e, a);
    static const char *const auth[] = { NULL, "Authorization: Bearer wrong\r\n", AUTH };
    static const char *const body[] = { "{\"all\": true}", "{\"all\": true}", "{\"all\": \"yes\"}" };
    static const int want[] = { 401, 401, 400 };
    for (int i = 0; i < 3; i++) {
        th_resp_t *r = edge_req(th_addr(t.edge[0]), "POST", "/.cdn/purge", auth[i], body[i], strlen(body[i]));
        cr_assert_not_null(r);
        cr_assert_eq(r->status, want[i], "case %d: %d", i, r->status);
        th_resp_free(r);
    }
    for (int e = 0; e < 3; e++)
        cr_assert(edge_hit(&t, e, a), "edge %d lost it", e + 1);
    cr_assert_eq(th_origin_requests(th_addr(t.origin), "/kept"), 1);
}

Test(purge_tier, a_soft_purge_serves_stale_on_every_edge_then_revalidates)
{
    tier_t t;
    tier_start(&t);
    const char *a = "/softly?cc=max-age%3D600%2C%20stale-while-revalidate%3D60&etag=auto";
    for (int e = 0; e < 3; e++)
        stored_on(&t, e, a);
    th_resp_free(purge(&t, "{\"urls\": [\"/softly?cc=max-age%3D600%2C%20stale-while-revalidate%3D60&etag=auto\"], "
                           "\"soft\": true}"));
    for (int e = 0; e < 3; e++) {
        th_resp_t *r = get(&t, e, a);
        cr_assert_eq(r->status, 200);
        cr_assert(strstr(th_hdr(r, "cache-status"), "stale-while-revalidate"), "edge %d: %s", e + 1,
                  th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    for (int e = 0; e < 3; e++) {
        bool fresh = false;
        for (int64_t end = th_now_ms() + TH_TIMEOUT_MS; !fresh && th_now_ms() < end;) {
            th_resp_t *r = get(&t, e, a);
            const char *mine = strstr(th_hdr(r, "cache-status"), ", edge-");
            fresh = mine && strstr(mine, "; hit") && !strstr(mine, "stale");
            th_resp_free(r);
        }
        cr_assert(fresh, "edge %d never revalidated", e + 1);
    }
    /* Revalidated with the origin (through the shield), not against the
     * shield's own stale copy. */
    cr_assert_geq(th_origin_requests(th_addr(t.origin), "/softly"), 2);
}

typedef struct slow {
    const tier_t *t;
    int status;
} slow_t;

static void *slow_get(void *arg)
{
    slow_t *s = arg;
    th_resp_t *r = edge_req(th_addr(s->t->edge[1]), "GET", "/racing?" CC "&delay=800", NULL, NULL, 0);
    s->status = r ? r->status : -1;
    th_resp_free(r);
    return NULL;
}

static bool origin_saw(void *arg)
{
    return th_origin_requests(th_addr(((const tier_t *)arg)->origin), "/racing") >= 1;
}

Test(purge_tier, a_purge_wins_over_a_fill_running_through_the_shield)
{
    tier_t t;
    tier_start(&t);
    slow_t s = { &t, 0 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, slow_get, &s), 0);
    cr_assert(th_wait_until(origin_saw, &t, TH_TIMEOUT_MS));
    th_resp_free(purge(&t, "{\"urls\": [\"/racing?" CC "&delay=800\"]}"));
    pthread_join(th, NULL);
    cr_assert_eq(s.status, 200);
    /* Neither the shield nor edge 2 kept the pre-purge response. */
    th_resp_t *r = get(&t, 1, "/racing?" CC "&delay=800");
    cr_assert_null(strstr(th_hdr(r, "cache-status"), "; hit"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(th_addr(t.origin), "/racing"), 2);
}
