/* More of RFC 9111 on the wire: Vary variants kept side by side,
 * invalidation of Location / Content-Location after unsafe methods,
 * CDN-Cache-Control and Surrogate-Control for this cache only, and the
 * fields a stored response must not keep. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"

#define CC60 "cc=max-age%3D60"

static th_resp_t *get_lang(edge_env_t *env, const char *t, const char *lang)
{
    char h[128];
    snprintf(h, sizeof h, "Accept-Language: %s\r\n", lang);
    th_resp_t *r = edge_req(env->e, "GET", t, lang ? h : NULL, NULL, 0);
    cr_assert_not_null(r);
    return r;
}

typedef struct lang_probe {
    edge_env_t *env;
    const char *t, *lang;
} lang_probe_t;

static bool lang_hits(void *arg)
{
    lang_probe_t *l = arg;
    th_resp_t *r = get_lang(l->env, l->t, l->lang);
    bool hit = cs_has(r, "hit");
    th_resp_free(r);
    return hit;
}

Test(edge_semantics, vary_variants_side_by_side)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/vv?vary=Accept-Language&" CC60;
    const char *langs[] = { "en", "fr", "de", NULL };
    for (int i = 0; langs[i]; i++) {
        th_resp_t *r = get_lang(&env, t, langs[i]);
        cr_assert(cs_has(r, i == 0 ? "fwd=uri-miss" : "fwd=vary-miss"), "%s: %s", langs[i],
                  th_hdr(r, "cache-status"));
        th_resp_free(r);
        lang_probe_t l = { &env, t, langs[i] };
        cr_assert(th_wait_until(lang_hits, &l, 5000), "%s never stored", langs[i]);
    }
    /* All three are kept: each is a hit now. */
    for (int i = 0; langs[i]; i++) {
        th_resp_t *r = get_lang(&env, t, langs[i]);
        cr_assert(cs_has(r, "hit"), "%s: %s", langs[i], th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    /* No Accept-Language is a variant of its own. */
    th_resp_t *r = get_lang(&env, t, NULL);
    cr_assert(cs_has(r, "fwd=vary-miss"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/vv"), 4);
    /* An unsafe method removes every variant. */
    th_resp_free(edge_req(env.e, "POST", t, NULL, "x", 1));
    for (int i = 0; langs[i]; i++) {
        r = get_lang(&env, t, langs[i]);
        cr_assert_not(cs_has(r, "hit"), "%s survived: %s", langs[i], th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
}

Test(edge_semantics, vary_star_is_never_stored)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    for (int i = 0; i < 2; i++) {
        th_resp_t *r = edge_get(&env, "/vstar?vary=*&" CC60);
        cr_assert(cs_has(r, "detail=vary-star"), "%s", th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    cr_assert_eq(th_origin_requests(env.o, "/vstar"), 2);
}

static void stored_hit(edge_env_t *env, const char *t)
{
    th_resp_free(edge_get(env, t));
    cr_assert(edge_wait_cs(env, t, "hit", 5000), "%s never stored", t);
}

Test(edge_semantics, unsafe_methods_invalidate_location_and_content_location)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *a = "/inv/a?" CC60, *b = "/inv/b?" CC60, *c = "/inv/c?" CC60;
    stored_hit(&env, a);
    stored_hit(&env, b);
    stored_hit(&env, c);
    /* Location (relative to the request) and Content-Location (absolute,
     * same host) are invalidated; a Location on another host is not. */
    th_resp_t *r = edge_req(env.e, "POST",
                            "/inv/form?header=Location:a%3Fcc%3Dmax-age%253D60"
                            "&header=Content-Location:http://" EDGE_HOST "/inv/b%3Fcc%3Dmax-age%253D60",
                            NULL, "x", 1);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    r = edge_get(&env, a);
    cr_assert_not(cs_has(r, "hit"), "Location target survived: %s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    r = edge_get(&env, b);
    cr_assert_not(cs_has(r, "hit"), "Content-Location target survived: %s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    th_resp_free(edge_req(env.e, "PUT", "/inv/form2?header=Location:http://elsewhere.example/inv/c%3Fcc%3Dmax-age%253D60",
                          NULL, "x", 1));
    r = edge_get(&env, c);
    cr_assert(cs_has(r, "hit"), "another host's URL was invalidated: %s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

Test(edge_semantics, cdn_cache_control_wins_and_stays_here)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/cdncc?cc=no-store&header=CDN-Cache-Control:max-age%3D60";
    th_resp_t *r = edge_get(&env, t);
    cr_assert(cs_has(r, "stored; ttl=60"), "%s", th_hdr(r, "cache-status"));
    cr_assert_null(th_hdr(r, "cdn-cache-control"));
    cr_assert_str_eq(th_hdr(r, "cache-control"), "no-store", "the client still gets the origin's Cache-Control");
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    r = edge_get(&env, t);
    cr_assert_null(th_hdr(r, "cdn-cache-control"));
    th_resp_free(r);
    /* Surrogate-Control likewise (and never sent on). */
    const char *s = "/surr?cc=private&header=Surrogate-Control:max-age%3D30";
    r = edge_get(&env, s);
    cr_assert(cs_has(r, "stored; ttl=30"), "%s", th_hdr(r, "cache-status"));
    cr_assert_null(th_hdr(r, "surrogate-control"));
    th_resp_free(r);
    /* CDN-Cache-Control: no-store keeps this cache from storing what
     * Cache-Control allows. */
    for (int i = 0; i < 2; i++) {
        r = edge_get(&env, "/cdnns?" CC60 "&header=CDN-Cache-Control:no-store");
        cr_assert_not(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    cr_assert_eq(th_origin_requests(env.o, "/cdnns"), 2);
}

Test(edge_semantics, cdn_cache_control_can_be_passed_on)
{
    const char *extra[] = { "--forward-cdn-cache-control=on", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    th_resp_t *r = edge_get(&env, "/cdnfw?header=CDN-Cache-Control:max-age%3D60");
    cr_assert_str_eq(th_hdr(r, "cdn-cache-control"), "max-age=60");
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, "/cdnfw?header=CDN-Cache-Control:max-age%3D60", "hit", 5000));
    r = edge_get(&env, "/cdnfw?header=CDN-Cache-Control:max-age%3D60");
    cr_assert_str_eq(th_hdr(r, "cdn-cache-control"), "max-age=60");
    th_resp_free(r);
}

Test(edge_semantics, qualified_no_cache_and_private_fields_are_not_shared)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/qf?cc=max-age%3D60%2C%20no-cache%3D%22X-Secret%22%2C%20private%3D%22X-Mine%22"
                    "&header=X-Secret:s&header=X-Mine:m&header=X-Public:p";
    th_resp_t *r = edge_get(&env, t);
    cr_assert(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
    /* The client that asked gets everything ... */
    cr_assert_str_eq(th_hdr(r, "x-secret"), "s");
    cr_assert_str_eq(th_hdr(r, "x-mine"), "m");
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    /* ... the stored copy has neither. */
    r = edge_get(&env, t);
    cr_assert(cs_has(r, "hit"));
    cr_assert_null(th_hdr(r, "x-secret"));
    cr_assert_null(th_hdr(r, "x-mine"));
    cr_assert_str_eq(th_hdr(r, "x-public"), "p");
    th_resp_free(r);
}

static long ttl_of(th_resp_t *r)
{
    const char *t = strstr(th_hdr(r, "cache-status"), "ttl=");
    cr_assert_not_null(t, "%s", th_hdr(r, "cache-status"));
    return atol(t + 4);
}

Test(edge_semantics, expires_in_every_date_format_and_invalid)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    /* The three HTTP-date formats, in the future (two-digit years below 70
     * are 20xx): fresh for decades. */
    static const char *future[] = {
        "/e1?etag=auto&header=Expires:Sun%2C%2001%20Jan%202062%2000%3A00%3A00%20GMT",
        "/e2?etag=auto&header=Expires:Sunday%2C%2001-Jan-62%2000%3A00%3A00%20GMT",
        "/e3?etag=auto&header=Expires:Sun%20Jan%20%201%2000%3A00%3A00%202062",
    };
    for (int i = 0; i < 3; i++) {
        th_resp_t *r = edge_get(&env, future[i]);
        cr_assert_gt(ttl_of(r), 1000000000L, "%s: %s", future[i], th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    /* In the past, or not a date at all: stored (it has a validator) but
     * already stale. */
    static const char *stale[] = {
        "/e4?etag=auto&header=Expires:Thu%2C%2001%20Jan%201998%2000%3A00%3A00%20GMT",
        "/e5?etag=auto&header=Expires:0",
        "/e6?etag=auto&header=Expires:tomorrow",
    };
    for (int i = 0; i < 3; i++) {
        th_resp_t *r = edge_get(&env, stale[i]);
        cr_assert(cs_has(r, "stored"), "%s: %s", stale[i], th_hdr(r, "cache-status"));
        cr_assert_leq(ttl_of(r), 0, "%s: %s", stale[i], th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    /* max-age beats Expires; s-maxage beats both. */
    th_resp_t *r = edge_get(&env, "/expmix?expires_in=500&cc=max-age%3D100");
    cr_assert(ttl_of(r) >= 99 && ttl_of(r) <= 100);
    th_resp_free(r);
    r = edge_get(&env, "/expmix2?expires_in=500&cc=max-age%3D100%2C%20s-maxage%3D200");
    cr_assert(ttl_of(r) >= 199 && ttl_of(r) <= 200);
    th_resp_free(r);
    r = edge_get(&env, "/expin?expires_in=300");
    cr_assert(ttl_of(r) >= 299 && ttl_of(r) <= 300);
    th_resp_free(r);
    /* A conflicting repeated max-age makes the response stale. */
    r = edge_get(&env, "/dupma?etag=auto&cc=max-age%3D60%2C%20max-age%3D120");
    cr_assert_leq(ttl_of(r), 0, "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* Quoted values and upper-case names are fine. */
    r = edge_get(&env, "/quoted?cc=MAX-AGE%3D%2245%22");
    cr_assert(ttl_of(r) >= 44 && ttl_of(r) <= 45, "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}
