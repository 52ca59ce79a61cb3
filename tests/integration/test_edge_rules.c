/* Per-path [rule] sections on the wire: default/min/max TTL, override of
 * the origin's headers, stale windows, the query in the cache key, cookie
 * bypass, storing Set-Cookie responses, most-specific-first matching, and
 * `edge --check-config`. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <sys/wait.h>

#include "edge_env.h"

static const char rules[] =
    "# rules for the tests\n"
    "name = edge-rules\n"
    "[rule /static/*]\n"
    "default_ttl = 1h\n"
    "[rule /static/short/*]\n"
    "default_ttl = 3s\n"
    "max_ttl = 5s\n"
    "[rule /long/*]\n"
    "min_ttl = 2h\n"
    "[rule /forced/*]\n"
    "origin_cache_control = override\n"
    "default_ttl = 10m\n"
    "[rule /q/*]\n"
    "query = drop utm_* fbclid\n"
    "[rule /qn/*]\n"
    "query = none\n"
    "[rule /qs/*]\n"
    "query = sorted\n"
    "[rule /qk/*]\n"
    "query = keep id\n"
    "[rule /ck/*]\n"
    "cookie = bypass\n"
    "[rule /sc/*]\n"
    "store_set_cookie = on\n"
    "[rule /swr/*]\n"
    "stale_while_revalidate = 60s\n"
    "[rule other.test/static/*]\n"
    "default_ttl = 2h\n";

static char *conf_path(void)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/edge.conf", th_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(rules, f);
    fclose(f);
    return path;
}

static void start(edge_env_t *env)
{
    const char *extra[] = { "-c", conf_path(), NULL };
    edge_env_start(env, extra);
}

static void expect_ttl(th_resp_t *r, long ttl)
{
    char a[32], b[32];
    snprintf(a, sizeof a, "ttl=%ld", ttl);
    snprintf(b, sizeof b, "ttl=%ld", ttl - 1);
    cr_assert(cs_has(r, a) || cs_has(r, b), "want %s: %s", a, th_hdr(r, "cache-status"));
}

Test(edge_rules, ttl_settings)
{
    edge_env_t env;
    start(&env);
    /* default_ttl when the origin gives no freshness */
    th_resp_t *r = edge_get(&env, "/static/a.css?size=10");
    cr_assert(cs_has(r, "edge-rules; fwd=uri-miss"), "%s", th_hdr(r, "cache-status"));
    expect_ttl(r, 3600);
    th_resp_free(r);
    /* ... but the origin's own freshness wins */
    r = edge_get(&env, "/static/b.css?size=10&cc=max-age%3D100");
    expect_ttl(r, 100);
    th_resp_free(r);
    /* the more specific rule: max_ttl caps */
    r = edge_get(&env, "/static/short/c.css?size=10&cc=max-age%3D100");
    expect_ttl(r, 5);
    th_resp_free(r);
    /* min_ttl raises */
    r = edge_get(&env, "/long/d?size=10&cc=max-age%3D100");
    expect_ttl(r, 7200);
    th_resp_free(r);
    /* ... but never makes an unstorable response storable */
    r = edge_get(&env, "/long/e?size=10&cc=no-store");
    cr_assert_not(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* outside every rule: the built-in defaults (no heuristic without Last-Modified) */
    r = edge_get(&env, "/plain?size=10");
    cr_assert_not(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* a host-specific rule beats the path-only one */
    r = th_request(env.e, "GET", "/static/a.css?size=10", "Host: other.test\r\n", NULL, 0);
    expect_ttl(r, 7200);
    th_resp_free(r);
}

Test(edge_rules, override_ignores_the_origins_headers)
{
    edge_env_t env;
    start(&env);
    th_resp_t *r = edge_get(&env, "/forced/x?size=10&cc=private%2C%20no-store");
    cr_assert(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
    expect_ttl(r, 600);
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, "/forced/x?size=10&cc=private%2C%20no-store", "hit", 5000));
    /* Still never a Set-Cookie response or Vary: * */
    r = edge_get(&env, "/forced/y?size=10&cookie=a%3Db");
    cr_assert_not(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
}

static void same_object(edge_env_t *env, const char *first, const char *second, bool same)
{
    th_resp_free(edge_get(env, first));
    cr_assert(edge_wait_cs(env, first, "hit", 5000), "%s never stored", first);
    th_resp_t *r = edge_get(env, second);
    if (same)
        cr_assert(cs_has(r, "hit"), "%s should share %s: %s", second, first, th_hdr(r, "cache-status"));
    else
        cr_assert_not(cs_has(r, "hit"), "%s should not share %s", second, first);
    th_resp_free(r);
}

Test(edge_rules, query_in_the_cache_key)
{
    edge_env_t env;
    start(&env);
    same_object(&env, "/q/a?id=1&cc=max-age%3D60", "/q/a?utm_source=mail&id=1&fbclid=x&cc=max-age%3D60", true);
    same_object(&env, "/q/b?id=1&cc=max-age%3D60", "/q/b?id=2&cc=max-age%3D60", false);
    same_object(&env, "/qn/a?cc=max-age%3D60", "/qn/a?anything=1", true);
    same_object(&env, "/qs/a?b=2&a=1&cc=max-age%3D60", "/qs/a?cc=max-age%3D60&a=1&b=2", true);
    same_object(&env, "/qk/a?id=7&cc=max-age%3D60", "/qk/a?id=7&session=9", true);
    same_object(&env, "/qk/b?id=7&cc=max-age%3D60", "/qk/b?id=8&cc=max-age%3D60", false);
    /* no rule: byte for byte */
    same_object(&env, "/x?a=1&b=2&cc=max-age%3D60", "/x?b=2&a=1&cc=max-age%3D60", false);
}

Test(edge_rules, cookie_bypass)
{
    edge_env_t env;
    start(&env);
    const char *t = "/ck/a?size=10&cc=max-age%3D60";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    for (int i = 0; i < 2; i++) {
        th_resp_t *r = edge_req(env.e, "GET", t, "Cookie: session=1\r\n", NULL, 0);
        cr_assert(cs_has(r, "fwd=bypass"), "%s", th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    cr_assert_eq(th_origin_requests(env.o, "/ck/a"), 3);
    /* Outside the rule, a Cookie changes nothing. */
    th_resp_free(edge_get(&env, "/other?cc=max-age%3D60"));
    cr_assert(edge_wait_cs(&env, "/other?cc=max-age%3D60", "hit", 5000));
    th_resp_t *r = edge_req(env.e, "GET", "/other?cc=max-age%3D60", "Cookie: session=1\r\n", NULL, 0);
    cr_assert(cs_has(r, "hit"));
    th_resp_free(r);
}

Test(edge_rules, store_set_cookie_keeps_the_cookie_private)
{
    edge_env_t env;
    start(&env);
    const char *t = "/sc/a?size=10&cookie=sid%3Dsecret&cc=max-age%3D60";
    th_resp_t *r = edge_get(&env, t);
    cr_assert(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
    cr_assert_str_eq(th_hdr(r, "set-cookie"), "sid=secret", "the client that asked gets its cookie");
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    r = edge_get(&env, t);
    cr_assert_null(th_hdr(r, "set-cookie"), "a cookie was shared");
    th_resp_free(r);
}

Test(edge_rules, rule_stale_while_revalidate_window)
{
    edge_env_t env;
    start(&env);
    const char *t = "/swr/a?size=10&etag=auto&cc=max-age%3D1";
    th_resp_free(edge_get(&env, t));
    cr_assert(edge_wait_cs(&env, t, "detail=stale-while-revalidate", 6000));
}

static int run(const char *args, char *out, size_t n)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "timeout 10 %s/edge %s 2>&1", getenv("CDN_BIN"), args);
    FILE *p = popen(cmd, "r");
    size_t got = fread(out, 1, n - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(edge_rules, check_config_prints_the_effective_rule)
{
    char out[8192], args[1024];
    const char *path = conf_path();
    snprintf(args, sizeof args, "--check-config %s 'http://www.example.com/static/short/x.css?utm_source=1'", path);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "ok (12 rules)"), "%s", out);
    cr_assert(strstr(out, "/static/short/*"), "%s", out);
    cr_assert(strstr(out, "max_ttl = 5s"), "%s", out);
    cr_assert(strstr(out, "cache key: http://www.example.com/static/short/x.css?utm_source=1"), "%s", out);
    snprintf(args, sizeof args, "--check-config %s 'http://h/q/a?utm_source=1&id=3'", path);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "cache key: http://h/q/a?id=3"), "%s", out);
    /* A bad rule: file:line and what was expected. */
    char bad[800];
    snprintf(bad, sizeof bad, "%s/bad.conf", th_tmpdir());
    FILE *f = fopen(bad, "w");
    fputs("[rule /a/*]\ndefault_ttl = 1h\n\n[rule /b/*]\nquery = shuffled\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--check-config %s", bad);
    cr_assert_eq(run(args, out, sizeof out), 2);
    char want[900];
    snprintf(want, sizeof want, "%s:5: ", bad);
    cr_assert(strstr(out, want) && strstr(out, "query"), "%s", out);
    f = fopen(bad, "w");
    fputs("[rule /a/*]\norigin_cache_control = override\n", f);
    fclose(f);
    cr_assert_eq(run(args, out, sizeof out), 2);
    snprintf(want, sizeof want, "%s:1: rule '/a/*': ", bad);
    cr_assert(strstr(out, want) && strstr(out, "default_ttl"), "%s", out);
    f = fopen(bad, "w");
    fputs("[rule /a/*]\n[rule /a/*]\n", f);
    fclose(f);
    cr_assert_eq(run(args, out, sizeof out), 2);
    cr_assert(strstr(out, "defined twice"), "%s", out);
    f = fopen(bad, "w");
    fputs("[rules /a/*]\n", f);
    fclose(f);
    cr_assert_eq(run(args, out, sizeof out), 2);
    cr_assert(strstr(out, "expected [rule PATTERN]"), "%s", out);
}

Test(edge_rules, example_policy_files_are_valid)
{
    char pattern[1024], out[8192], args[1200];
    const char *src = getenv("CDN_SRC");
    cr_assert_not_null(src, "CDN_SRC (the source tree) is not set");
    snprintf(pattern, sizeof pattern, "%s/policies/examples/*.conf", src);
    glob_t g;
    cr_assert_eq(glob(pattern, 0, NULL, &g), 0, "no example files in %s", pattern);
    cr_assert_geq(g.gl_pathc, 3);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        snprintf(args, sizeof args, "--check-config %s", g.gl_pathv[i]);
        cr_assert_eq(run(args, out, sizeof out), 0, "%s: %s", g.gl_pathv[i], out);
    }
    globfree(&g);
}
