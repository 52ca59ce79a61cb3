/* Purging on one node: PURGE /path and POST /.cdn/purge, by URL (every
 * Vary variant), prefix, tag (both header styles) and everything, hard or
 * soft; the token (401 / 403), bad bodies (400) leaving the cache as it
 * was; a purge winning over a fill that was already running; PURGE never
 * reaching the origin; tags never reaching clients by default. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edge_env.h"

#define TOKEN "s3cret-token-for-tests"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define CC "cc=max-age%3D600"

static char token_arg[700];

static void start(edge_env_t *env)
{
    const char *extra[] = { edge_token_flag(TOKEN, token_arg, sizeof token_arg), NULL };
    edge_env_start(env, extra);
}

/* GET t until it is a hit (it was stored). */
static void stored(edge_env_t *env, const char *t)
{
    th_resp_free(edge_get(env, t));
    cr_assert(edge_wait_cs(env, t, "hit", TH_TIMEOUT_MS), "%s never became a hit", t);
}

static bool is_hit(edge_env_t *env, const char *t)
{
    th_resp_t *r = edge_get(env, t);
    bool hit = cs_has(r, "; hit");
    th_resp_free(r);
    return hit;
}

static th_resp_t *purge_json(edge_env_t *env, const char *auth, const char *json)
{
    th_resp_t *r = edge_req(env->e, "POST", "/.cdn/purge", auth, json, strlen(json));
    cr_assert_not_null(r, "%s", th_last_error());
    return r;
}

static int purge_status(edge_env_t *env, const char *auth, const char *json)
{
    th_resp_t *r = purge_json(env, auth, json);
    int st = r->status;
    th_resp_free(r);
    return st;
}

Test(purge, purge_method_by_url_drops_every_variant_and_never_reaches_the_origin)
{
    edge_env_t env;
    start(&env);
    const char *t = "/page?" CC "&vary=Accept-Language";
    th_resp_free(edge_req(env.e, "GET", t, "Accept-Language: en\r\n", NULL, 0));
    th_resp_free(edge_req(env.e, "GET", t, "Accept-Language: fr\r\n", NULL, 0));
    stored(&env, "/other?" CC);
    long before = th_origin_requests(env.o, "/page");
    th_resp_t *r = edge_req(env.e, "PURGE", t, AUTH, NULL, 0);
    cr_assert_eq(r->status, 200, "%d %s", r->status, r->body.data);
    cr_assert(strstr(r->body.data, "\"urls\""), "%s", r->body.data);
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/page"), before, "PURGE is never forwarded upstream");
    for (int i = 0; i < 2; i++) {
        r = edge_req(env.e, "GET", t, i ? "Accept-Language: fr\r\n" : "Accept-Language: en\r\n", NULL, 0);
        cr_assert_not(cs_has(r, "; hit"), "variant %d survived: %s", i, th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    cr_assert(is_hit(&env, "/other?" CC), "only that URL");
}

Test(purge, no_token_wrong_token_and_no_token_configured)
{
    edge_env_t env;
    start(&env);
    stored(&env, "/keep?" CC);
    th_resp_t *r = edge_req(env.e, "PURGE", "/keep?" CC, NULL, NULL, 0);
    cr_assert_eq(r->status, 401);
    th_resp_free(r);
    r = edge_req(env.e, "PURGE", "/keep?" CC, "Authorization: Bearer wrong\r\n", NULL, 0);
    cr_assert_eq(r->status, 401);
    th_resp_free(r);
    cr_assert_eq(purge_status(&env, "Authorization: Bearer " TOKEN "x\r\n", "{\"all\": true}"), 401);
    cr_assert(is_hit(&env, "/keep?" CC), "nothing purged");

    edge_env_t off;
    edge_env_start(&off, NULL);
    stored(&off, "/keep?" CC);
    r = edge_req(off.e, "PURGE", "/keep?" CC, AUTH, NULL, 0);
    cr_assert_eq(r->status, 403, "no token configured: purging is off");
    th_resp_free(r);
    cr_assert(is_hit(&off, "/keep?" CC));
    cr_assert_eq(th_origin_requests(off.o, "/keep"), 1);
}

Test(purge, bad_bodies_get_a_400_naming_the_problem_and_purge_nothing)
{
    edge_env_t env;
    start(&env);
    stored(&env, "/keep?" CC);
    static const char *const bad[][2] = {
        { "{\"urls\": [\"/keep\"", "JSON" },
        { "{\"urls\": \"/keep\"}", "urls" },
        { "{\"tags\": [1]}", "tags" },
        { "{\"all\": \"yes\"}", "all" },
        { "{\"bogus\": 1}", "bogus" },
        { "{}", "nothing" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        th_resp_t *r = purge_json(&env, AUTH, bad[i][0]);
        cr_assert_eq(r->status, 400, "%s: %d", bad[i][0], r->status);
        cr_assert(strcasestr(r->body.data, bad[i][1]), "%s: %s", bad[i][0], r->body.data);
        th_resp_free(r);
    }
    cr_assert(is_hit(&env, "/keep?" CC), "nothing purged");
}

Test(purge, by_prefix_by_tag_and_everything)
{
    edge_env_t env;
    start(&env);
    stored(&env, "/static/a.css?" CC);
    stored(&env, "/static/b.js?" CC);
    stored(&env, "/other?" CC "&sk=product-42%20shelf");
    stored(&env, "/tagged?" CC "&header=Cache-Tag:product-42,promo");
    stored(&env, "/untouched?" CC "&sk=shelf");
    cr_assert_eq(purge_status(&env, AUTH, "{\"prefixes\": [\"/static/\"]}"), 200);
    cr_assert_not(is_hit(&env, "/static/a.css?" CC));
    cr_assert_not(is_hit(&env, "/static/b.js?" CC));
    cr_assert(is_hit(&env, "/other?" CC "&sk=product-42%20shelf"));
    th_resp_t *r = purge_json(&env, AUTH, "{\"tags\": [\"product-42\"]}");
    cr_assert_eq(r->status, 200);
    cr_assert(strstr(r->body.data, "\"tags\": 2") || strstr(r->body.data, "\"tags\":2"), "%s", r->body.data);
    th_resp_free(r);
    cr_assert_not(is_hit(&env, "/other?" CC "&sk=product-42%20shelf"), "Surrogate-Key style");
    cr_assert_not(is_hit(&env, "/tagged?" CC "&header=Cache-Tag:product-42,promo"), "Cache-Tag style");
    cr_assert(is_hit(&env, "/untouched?" CC "&sk=shelf"));
    cr_assert_eq(purge_status(&env, AUTH, "{\"all\": true}"), 200);
    cr_assert_not(is_hit(&env, "/untouched?" CC "&sk=shelf"));
}

Test(purge, surrogate_keys_never_reach_a_client_by_default)
{
    edge_env_t env;
    start(&env);
    th_resp_t *r = edge_get(&env, "/sk?" CC "&sk=a%20b&header=Cache-Tag:c");
    cr_assert_eq(th_hdr_count(r, "surrogate-key"), 0);
    cr_assert_eq(th_hdr_count(r, "cache-tag"), 0);
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, "/sk?" CC "&sk=a%20b&header=Cache-Tag:c", "hit", TH_TIMEOUT_MS));
    r = edge_get(&env, "/sk?" CC "&sk=a%20b&header=Cache-Tag:c");
    cr_assert(cs_has(r, "; hit"));
    cr_assert_eq(th_hdr_count(r, "surrogate-key"), 0);
    cr_assert_eq(th_hdr_count(r, "cache-tag"), 0);
    th_resp_free(r);
}

Test(purge, soft_purge_serves_stale_once_then_revalidates)
{
    edge_env_t env;
    start(&env);
    const char *t = "/soft?cc=max-age%3D600%2C%20stale-while-revalidate%3D60&etag=auto";
    stored(&env, t);
    long before = th_origin_requests(env.o, "/soft");
    cr_assert_eq(purge_status(&env, AUTH, "{\"urls\": [\"/soft?cc=max-age%3D600%2C%20stale-while-revalidate%3D60&etag=auto\"], \"soft\": true}"), 200);
    th_resp_t *r = edge_get(&env, t);
    cr_assert_eq(r->status, 200);
    cr_assert(cs_has(r, "stale-while-revalidate"), "served stale: %s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* The background revalidation freshened it: a plain hit again. */
    bool fresh = false;
    for (int64_t end = th_now_ms() + TH_TIMEOUT_MS; !fresh && th_now_ms() < end;) {
        r = edge_get(&env, t);
        fresh = cs_has(r, "; hit") && !cs_has(r, "stale");
        th_resp_free(r);
    }
    cr_assert(fresh, "never fresh again after the revalidation");
    cr_assert_eq(th_origin_requests(env.o, "/soft"), before + 1, "one revalidation: %ld then %ld", before, th_origin_requests(env.o, "/soft"));
}

typedef struct slow_fill {
    edge_env_t *env;
    int status;
} slow_fill_t;

static void *slow_get(void *arg)
{
    slow_fill_t *s = arg;
    th_resp_t *r = edge_req(s->env->e, "GET", "/slowfill?" CC "&delay=800", NULL, NULL, 0);
    s->status = r ? r->status : -1;
    th_resp_free(r);
    return NULL;
}

typedef struct origin_saw {
    const char *o;
} origin_saw_t;

static bool slow_started(void *arg)
{
    return th_origin_requests(((origin_saw_t *)arg)->o, "/slowfill") >= 1;
}

Test(purge, a_purge_wins_over_a_fill_already_running)
{
    edge_env_t env;
    start(&env);
    slow_fill_t s = { &env, 0 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, slow_get, &s), 0);
    origin_saw_t o = { env.o };
    cr_assert(th_wait_until(slow_started, &o, TH_TIMEOUT_MS), "the fill reached the origin");
    th_resp_t *r = edge_req(env.e, "PURGE", "/slowfill?" CC "&delay=800", AUTH, NULL, 0);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    pthread_join(th, NULL);
    cr_assert_eq(s.status, 200, "the client that asked still gets its answer");
    /* The old content must not be back: the next request fetches again. */
    r = edge_req(env.e, "GET", "/slowfill?" CC "&delay=800", NULL, NULL, 0);
    cr_assert_not(cs_has(r, "; hit"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/slowfill"), 2, "%ld", th_origin_requests(env.o, "/slowfill"));
}
