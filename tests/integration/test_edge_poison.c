/* Unkeyed request headers must not decide what other clients get. The
 * forwarding headers frameworks build links and redirects from
 * (X-Forwarded-Host and friends) and the method overrides are removed
 * from client requests; the edge sets X-Forwarded-Host and
 * X-Forwarded-Proto from what it received. An operator may pass one
 * through: it then joins the cache key unless they say it must not. The
 * origin's echo (echo=1) shows what reached it, and the cached echo is
 * what the next client gets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"

#define CACHED "echo=1&cc=max-age%3D600"

static const char *const forwarding[] = {
    "X-Forwarded-Host", "X-Host", "X-Forwarded-Server", "X-Original-Host", "X-Original-URL",
    "X-Rewrite-URL", "X-Forwarded-Scheme", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix",
    "X-Forwarded-Ssl", "Front-End-Https", "X-Real-IP", "Forwarded", "X-HTTP-Method-Override",
    "X-HTTP-Method", "X-Method-Override",
};


static th_resp_t *get_with(const edge_env_t *env, const char *target, const char *name, const char *value)
{
    char extra[256] = "";
    if (name)
        snprintf(extra, sizeof extra, "%s: %s\r\n", name, value);
    th_resp_t *r = edge_req(env->e, "GET", target, name ? extra : NULL, NULL, 0);
    cr_assert_not_null(r, "%s", th_last_error());
    cr_assert_eq(r->status, 200);
    return r;
}

/* GET target with the header until the answer is a hit (bounded). */
static bool wait_hit_with(const edge_env_t *env, const char *target, const char *name, const char *value)
{
    int64_t end = th_now_ms() + TH_TIMEOUT_MS;
    while (th_now_ms() < end) {
        th_resp_t *r = get_with(env, target, name, value);
        bool hit = cs_has(r, "hit");
        th_resp_free(r);
        if (hit)
            return true;
    }
    return false;
}

Test(poison, client_forwarding_headers_never_reach_the_origin_or_other_clients)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    for (size_t i = 0; i < sizeof forwarding / sizeof forwarding[0]; i++) {
        char target[96], evil[64];
        snprintf(target, sizeof target, "/poison-%zu?%s", i, CACHED);
        snprintf(evil, sizeof evil, "evil-%zu.example", i);
        /* The attacker's request fills the cache... */
        th_resp_t *r = get_with(&env, target, forwarding[i], evil);
        cr_assert_null(strstr(r->body.data, "evil-"), "%s reached the origin: %s", forwarding[i], r->body.data);
        th_resp_free(r);
        /* ...and the clean client gets what the origin made without it. */
        cr_assert(edge_wait_cs(&env, target, "hit", TH_TIMEOUT_MS));
        r = get_with(&env, target, NULL, NULL);
        cr_assert(cs_has(r, "hit"));
        cr_assert_null(strstr(r->body.data, "evil-"), "%s poisoned the cache: %s", forwarding[i], r->body.data);
        th_resp_free(r);
    }
}

Test(poison, the_edge_tells_the_origin_the_host_and_scheme_it_received)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = get_with(&env, "/xfh?echo=1", "X-Forwarded-Host", "evil.example");
    char v[128];
    edge_echoed(r, "X-Forwarded-Host", v, sizeof v);
    cr_assert_str_eq(v, EDGE_HOST);
    edge_echoed(r, "X-Forwarded-Proto", v, sizeof v);
    cr_assert_str_eq(v, "http");
    th_resp_free(r);
    /* A method override never turns a GET into something else upstream. */
    r = get_with(&env, "/override?echo=1", "X-HTTP-Method-Override", "DELETE");
    cr_assert(strstr(r->body.data, "\"method\":\"GET\""), "%s", r->body.data);
    edge_echoed(r, "X-HTTP-Method-Override", v, sizeof v);
    cr_assert_str_eq(v, "");
    th_resp_free(r);
}

Test(poison, a_passed_header_joins_the_cache_key)
{
    edge_env_t env;
    const char *extra[] = { "--pass-headers=X-Forwarded-Host, x-original-url", NULL };
    edge_env_start(&env, extra);
    const char *t = "/keyed?" CACHED;
    char v[128];
    th_resp_t *r = get_with(&env, t, "X-Forwarded-Host", "a.example");
    edge_echoed(r, "X-Forwarded-Host", v, sizeof v);
    cr_assert_str_eq(v, "a.example", "passed as sent");
    th_resp_free(r);
    cr_assert(wait_hit_with(&env, t, "X-Forwarded-Host", "a.example"));
    /* Another value is another object, never a's. */
    r = get_with(&env, t, "X-Forwarded-Host", "b.example");
    edge_echoed(r, "X-Forwarded-Host", v, sizeof v);
    cr_assert_str_eq(v, "b.example");
    th_resp_free(r);
    cr_assert(wait_hit_with(&env, t, "X-Forwarded-Host", "b.example"));
    /* A client that sends none gets neither (the edge's own value). */
    r = get_with(&env, t, NULL, NULL);
    edge_echoed(r, "X-Forwarded-Host", v, sizeof v);
    cr_assert_str_eq(v, EDGE_HOST);
    th_resp_free(r);
    /* And each is cached under its own key. */
    r = get_with(&env, t, "X-Forwarded-Host", "a.example");
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    edge_echoed(r, "X-Forwarded-Host", v, sizeof v);
    cr_assert_str_eq(v, "a.example");
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/keyed"), 3);
}

Test(poison, an_unkeyed_pass_is_the_operators_explicit_choice)
{
    edge_env_t env;
    const char *extra[] = { "--pass-headers-unkeyed=X-Real-IP", NULL };
    edge_env_start(&env, extra);
    const char *t = "/unkeyed?" CACHED;
    char v[128];
    th_resp_t *r = get_with(&env, t, "X-Real-IP", "192.0.2.1");
    edge_echoed(r, "X-Real-IP", v, sizeof v);
    cr_assert_str_eq(v, "192.0.2.1");
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, t, "hit", TH_TIMEOUT_MS));
    cr_assert_eq(th_origin_requests(env.o, "/unkeyed"), 1);
}
