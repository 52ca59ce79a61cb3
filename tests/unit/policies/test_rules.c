/* Unit tests for policy_rules: patterns (good, bad, too long, empty),
 * specificity order and matching, every rule key's good and bad values,
 * cross-key checks and printing (test_rules_apply.c: how a rule changes
 * storability, the stored entry and the cache key). */
#include "test_rules_util.h"

static void bad_pattern(const char *pattern, const char *msg)
{
    policy_rule_t r;
    policy_rule_defaults(&r);
    err[0] = '\0';
    cr_assert_eq(config_rule_parse_pattern(&r, pattern, err, sizeof err), -EINVAL, "%s", pattern);
    cr_assert_not_null(strstr(err, msg), "%s: '%s' lacks '%s'", pattern, err, msg);
}

static void bad_value(const char *k, const char *v, const char *msg)
{
    policy_rule_t r, before;
    policy_rule_defaults(&r);
    before = r;
    err[0] = '\0';
    cr_assert_eq(config_rule_set(&r, k, v, err, sizeof err), -EINVAL, "%s = %s", k, v);
    cr_assert_not_null(strstr(err, msg), "%s = %s: '%s' lacks '%s'", k, v, err, msg);
    cr_assert_eq(memcmp(&r, &before, sizeof r), 0, "%s = %s changed the rule", k, v);
}

/* ---- patterns ---- */

Test(rule_pattern, forms)
{
    policy_rule_t r = rule("/images/*");
    cr_assert_eq(r.host_kind, POLICY_RULE_HOST_ANY);
    cr_assert_str_eq(r.host, "");
    cr_assert_str_eq(r.path, "/images/*");
    cr_assert_eq(r.path_literals, 8);

    r = rule("*.Example.COM./api/*");
    cr_assert_eq(r.host_kind, POLICY_RULE_HOST_GLOB);
    cr_assert_str_eq(r.host, "*.example.com");
    cr_assert_eq(r.host_literals, 12);
    cr_assert_str_eq(r.path, "/api/*");
    cr_assert_str_eq(r.pattern, "*.Example.COM./api/*");

    r = rule("example.com/*");
    cr_assert_eq(r.host_kind, POLICY_RULE_HOST_LITERAL);
    cr_assert_str_eq(r.host, "example.com");

    r = rule("*");
    cr_assert_eq(r.host_kind, POLICY_RULE_HOST_ANY);
    cr_assert_str_eq(r.path, "*");
    cr_assert_eq(r.path_literals, 0);

    r = rule("*/api/*"); /* host "*" is no host */
    cr_assert_eq(r.host_kind, POLICY_RULE_HOST_ANY);
    cr_assert_str_eq(r.path, "/api/*");

    r = rule("[2001:DB8::1]/x");
    cr_assert_eq(r.host_kind, POLICY_RULE_HOST_LITERAL);
    cr_assert_str_eq(r.host, "[2001:db8::1]");

    r = rule("/a/**/b***");
    cr_assert_str_eq(r.path, "/a/*/b*");
    r = rule("/file?.txt");
    cr_assert_eq(r.path_literals, 9);
}

Test(rule_pattern, path_escapes_normalised_like_the_key)
{
    cr_assert_str_eq(rule("/%7euser/*").path, "/~user/*");
    cr_assert_str_eq(rule("/a%2fb").path, "/a%2Fb");
    cr_assert_str_eq(rule("/caf\xc3\xa9/*").path, "/caf%C3%A9/*");
    cr_assert_str_eq(rule("/a|b").path, "/a%7Cb");
    cr_assert_str_eq(rule("/%2A").path, "/%2A"); /* an escaped '*' is literal */
    cr_assert_eq(rule("/%2A").path_literals, 4);
}

Test(rule_pattern, bad)
{
    static const struct {
        const char *pattern, *msg;
    } bad[] = {
        { "", "empty" }, { NULL, "empty" }, { "example.com", "needs a path" }, { "*.png", "needs a path" },
        { "/a b", "whitespace" }, { "/a\tb", "whitespace" }, { "/a\x7f", "control" },
        { "/img/[ab].png", "character classes" }, { "/a]", "character classes" }, { "/a#b", "'#'" },
        { "/a/%zz", "hex digits" }, { "/a/%4", "hex digits" }, { "/a/%", "hex digits" }, { "/a/./b", "segments" },
        { "/a/..", "segments" }, { "/../x", "segments" }, { "example.com:8080/x", "ports" },
        { "exa$mple.com/x", "host" }, { "exa%41mple.com/x", "host" }, { "[::1/x", "']'" }, { "./x", "empty host" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        bad_pattern(bad[i].pattern, bad[i].msg);
    char longp[400];
    memset(longp, 'a', sizeof longp);
    longp[0] = '/';
    longp[POLICY_RULE_PATTERN_MAX] = '\0';
    bad_pattern(longp, "longer than");
    longp[POLICY_RULE_PATTERN_MAX - 1] = '\0';
    cr_assert_eq(rule(longp).path_literals, POLICY_RULE_PATTERN_MAX - 1);
    /* fits as written, not once escaped */
    memset(longp + 1, '|', 100);
    bad_pattern(longp, "once escaped");
}

Test(rule_pattern, dots_inside_segments_are_fine)
{
    cr_assert_str_eq(rule("/a/.well-known/*").path, "/a/.well-known/*");
    cr_assert_str_eq(rule("/a/..b/c...").path, "/a/..b/c...");
    cr_assert_str_eq(rule("/*.*").path, "/*.*");
}

/* ---- matching and order ---- */

static bool m(const policy_rule_t *r, const char *host, const char *path)
{
    return policy_rule_matches(r, host, host ? strlen(host) : 0, path, strlen(path));
}

Test(rule_match, globs)
{
    policy_rule_t r = rule("/images/*");
    cr_assert(m(&r, "h", "/images/a.png"));
    cr_assert(m(&r, "h", "/images/a/b/c.png")); /* '*' crosses '/' */
    cr_assert(m(&r, "h", "/images/"));
    cr_assert_not(m(&r, "h", "/images"));
    cr_assert_not(m(&r, "h", "/Images/a.png")); /* path case-sensitive */
    cr_assert_not(m(&r, "h", "/x/images/a"));
    cr_assert(m(&r, NULL, "/images/a"));

    r = rule("/*.png");
    cr_assert(m(&r, "h", "/a/b.png"));
    cr_assert(m(&r, "h", "/b.png?x=1.jpg"));  /* the query is not matched */
    cr_assert_not(m(&r, "h", "/b.jpg?x=1.png"));
    cr_assert_not(m(&r, "h", "/b.pngx"));

    r = rule("/v?/x");
    cr_assert(m(&r, "h", "/v1/x"));
    cr_assert_not(m(&r, "h", "/v/x"));
    cr_assert_not(m(&r, "h", "/v12/x"));

    r = rule("*");
    cr_assert(m(&r, "h", "/"));
    cr_assert(m(&r, NULL, "/anything?at=all"));

    r = rule("/a*b*c");
    cr_assert(m(&r, "h", "/abc"));
    cr_assert(m(&r, "h", "/aXbYbZc"));
    cr_assert_not(m(&r, "h", "/aXbYcZ"));
}

Test(rule_match, hosts)
{
    policy_rule_t r = rule("*.example.com/api/*");
    cr_assert(m(&r, "www.example.com", "/api/x"));
    cr_assert(m(&r, "WWW.Example.COM", "/api/x"));
    cr_assert(m(&r, "a.b.example.com:8080", "/api/x"));
    cr_assert(m(&r, "www.example.com.", "/api/x"));
    cr_assert(m(&r, " www.example.com ", "/api/x"));
    cr_assert_not(m(&r, "example.com", "/api/x"));
    cr_assert_not(m(&r, "www.example.org", "/api/x"));
    cr_assert_not(m(&r, "www.example.com", "/web/x"));
    cr_assert_not(m(&r, NULL, "/api/x"));
    cr_assert_not(m(&r, "", "/api/x"));

    r = rule("example.com/*");
    cr_assert(m(&r, "Example.com:443", "/"));
    cr_assert_not(m(&r, "www.example.com", "/"));

    r = rule("[::1]/*");
    cr_assert(m(&r, "[::1]:8080", "/"));
    cr_assert_not(m(&r, "[::2]", "/"));
}

Test(rule_order, specificity)
{
    static const char *const file[] = {
        "*",                      /* 0 */
        "/images/*",              /* 1 */
        "*.example.com/*",        /* 2 */
        "example.com/*",          /* 3 */
        "/images/thumbs/*",       /* 4 */
        "*.com/images/thumbs/*",  /* 5 */
        "example.com/images/*",   /* 6 */
        "/images/*.png",          /* 7: 12 path literals, between 4 (15) and 1 (8) */
        "/x/*",                   /* 8 */
        "/y/*",                   /* 9: tie with 8, file order */
        "*.example.com/a/*",      /* 10 */
    };
    size_t n = sizeof file / sizeof file[0];
    policy_rule_t *rules = calloc(n, sizeof *rules);
    for (size_t i = 0; i < n; i++)
        rules[i] = rule(file[i]);
    policy_rules_sort(rules, n);
    static const char *const want[] = {
        "example.com/images/*", "example.com/*",       /* literal host: path literals decide */
        "*.example.com/a/*",    "*.example.com/*",     /* host glob, 12 host literals */
        "*.com/images/thumbs/*",                       /* host glob, 4 host literals */
        "/images/thumbs/*", "/images/*.png", "/images/*", "/x/*", "/y/*", "*",
    };
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(rules[i].pattern, want[i], "position %zu", i);

    const policy_rule_t *r = policy_rules_match(rules, n, "example.com", 11, "/images/a.png", 13);
    cr_assert_str_eq(r->pattern, "example.com/images/*");
    r = policy_rules_match(rules, n, "cdn.example.com", 15, "/images/thumbs/a", 16);
    cr_assert_str_eq(r->pattern, "*.example.com/*");
    r = policy_rules_match(rules, n, "other.com", 9, "/images/thumbs/a", 16);
    cr_assert_str_eq(r->pattern, "*.com/images/thumbs/*");
    r = policy_rules_match(rules, n, "other.org", 9, "/images/a.png", 13);
    cr_assert_str_eq(r->pattern, "/images/*.png");
    r = policy_rules_match(rules, n, "other.org", 9, "/y/1", 4);
    cr_assert_str_eq(r->pattern, "/y/*");
    r = policy_rules_match(rules, n, "other.org", 9, "/z", 2);
    cr_assert_str_eq(r->pattern, "*");
    cr_assert_null(policy_rules_match(rules + 1, 4, "other.org", 9, "/z", 2));
    cr_assert_null(policy_rules_match(NULL, 0, "h", 1, "/", 1));
    free(rules);
}

Test(rule_order, ties_keep_file_order)
{
    policy_rule_t rules[4] = { rule("/b/*"), rule("/a/*"), rule("/c/*"), rule("/a/*") };
    set(&rules[1], "default_ttl", "1s");
    set(&rules[3], "default_ttl", "2s");
    policy_rules_sort(rules, 4);
    cr_assert_str_eq(rules[0].pattern, "/b/*");
    cr_assert_eq(rules[1].default_ttl, 1);
    cr_assert_str_eq(rules[2].pattern, "/c/*");
    cr_assert_eq(rules[3].default_ttl, 2);
    /* the first of two identical patterns wins */
    cr_assert_eq(policy_rules_match(rules, 4, "h", 1, "/a/x", 4)->default_ttl, 1);
}

/* ---- keys ---- */

Test(rule_keys, defaults)
{
    policy_rule_t r;
    policy_rule_defaults(&r);
    cr_assert_eq(r.default_ttl, -1);
    cr_assert_eq(r.min_ttl, 0);
    cr_assert_eq(r.max_ttl, -1);
    cr_assert_eq(r.origin_cache_control, POLICY_RULE_HONOUR);
    cr_assert_eq(r.stale_while_revalidate, -1);
    cr_assert_eq(r.stale_if_error, -1);
    cr_assert_not(r.stale_with_s_maxage);
    cr_assert_eq(r.heuristic_max, 86400);
    cr_assert_eq(r.query, POLICY_QUERY_ALL);
    cr_assert_eq(r.cookie, POLICY_RULE_COOKIE_IGNORE);
    cr_assert_not(r.store_set_cookie);
    cr_assert_eq(r.cdn_cache_control, POLICY_RULE_CDN_HONOUR);
    cr_assert_eq(r.set, 0);
    cr_assert_str_eq(r.pattern, "*");
    cr_assert_eq(config_rule_finish(&r, err, sizeof err), 0);
}

/* The config's table documents the defaults (--help, README) and
 * policy_rule_defaults sets them: the two must say the same. */
Test(rule_keys, table_defaults_are_the_built_in_ones)
{
    policy_rule_t builtin, parsed;
    policy_rule_defaults(&builtin);
    policy_rule_defaults(&parsed);
    for (const config_rule_setting_t *s = config_rule_settings; s->key; s++) {
        size_t n = s->type == CONFIG_RULE_DURATION ? sizeof(int64_t)
                   : s->type == CONFIG_RULE_BOOL   ? sizeof(bool)
                                                   : sizeof(unsigned);
        memset((char *)&parsed + s->offset, 0x5a, n); /* forget the built-in value... */
    }
    for (const config_rule_setting_t *s = config_rule_settings; s->key; s++)
        set(&parsed, s->key, s->def); /* ...and take the table's */
    parsed.set = 0;
    cr_assert_eq(memcmp(&parsed, &builtin, sizeof builtin), 0);
}

Test(rule_keys, durations)
{
    static const char *const keys[] = { "default_ttl", "min_ttl", "max_ttl", "stale_while_revalidate",
                                        "stale_if_error", "heuristic_max" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        policy_rule_t r;
        policy_rule_defaults(&r);
        const config_rule_setting_t *s = config_rule_settings;
        while (strcmp(s->key, keys[i]))
            s++;
        static const struct {
            const char *text;
            int64_t secs;
        } good[] = { { "90", 90 }, { "5m", 300 }, { "2h", 7200 }, { "1d", 86400 }, { "2000ms", 2 }, { "0", 0 } };
        for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
            int64_t v;
            set(&r, keys[i], good[k].text);
            memcpy(&v, (char *)&r + s->offset, sizeof v);
            cr_assert_eq(v, good[k].secs, "%s = %s", keys[i], good[k].text);
        }
        cr_assert(r.set & (1u << (s - config_rule_settings)));
        bad_value(keys[i], "", "expected a duration");
        bad_value(keys[i], "x", "expected a duration");
        bad_value(keys[i], "-5", "expected a duration");
        bad_value(keys[i], "5 s", "expected a duration");
        bad_value(keys[i], "5y", "expected a duration");
        bad_value(keys[i], "1500ms", "whole seconds");
        bad_value(keys[i], "2147483649", "over the limit");
        bad_value(keys[i], "99999999999999999999", "expected a duration");
        set(&r, keys[i], "2147483648");
    }
    policy_rule_t r;
    policy_rule_defaults(&r);
    set(&r, "default_ttl", "1h");
    set(&r, "default_ttl", "none");
    cr_assert_eq(r.default_ttl, -1);
    set(&r, "max_ttl", "none");
    set(&r, "stale_if_error", "none");
    /* "none" only where it is the default */
    bad_value("min_ttl", "none", "expected a duration");
    bad_value("heuristic_max", "none", "expected a duration");
}

Test(rule_keys, enums_and_bools)
{
    policy_rule_t r;
    policy_rule_defaults(&r);
    set(&r, "origin_cache_control", "override");
    cr_assert_eq(r.origin_cache_control, POLICY_RULE_OVERRIDE);
    set(&r, "origin_cache_control", "honour");
    cr_assert_eq(r.origin_cache_control, POLICY_RULE_HONOUR);
    bad_value("origin_cache_control", "honor", "expected honour|override");
    bad_value("origin_cache_control", "", "expected honour|override");
    bad_value("origin_cache_control", "Override", "expected honour|override");

    set(&r, "cookie", "bypass");
    cr_assert_eq(r.cookie, POLICY_RULE_COOKIE_BYPASS);
    set(&r, "cookie", "ignore");
    cr_assert_eq(r.cookie, POLICY_RULE_COOKIE_IGNORE);
    bad_value("cookie", "pass", "expected ignore|bypass");

    set(&r, "cdn_cache_control", "ignore");
    cr_assert_eq(r.cdn_cache_control, POLICY_RULE_CDN_IGNORE);
    bad_value("cdn_cache_control", "off", "expected honour|ignore");

    static const char *const yes[] = { "on", "yes", "true", "1", "ON" }, *const no[] = { "off", "no", "false", "0" };
    for (size_t i = 0; i < 5; i++) {
        set(&r, "store_set_cookie", yes[i]);
        cr_assert(r.store_set_cookie);
        set(&r, "stale_with_s_maxage", yes[i]);
        cr_assert(r.stale_with_s_maxage);
    }
    for (size_t i = 0; i < 4; i++) {
        set(&r, "store_set_cookie", no[i]);
        cr_assert_not(r.store_set_cookie);
        set(&r, "stale_with_s_maxage", no[i]);
        cr_assert_not(r.stale_with_s_maxage);
    }
    bad_value("store_set_cookie", "2", "expected on or off");
    bad_value("stale_with_s_maxage", "", "expected on or off");
}

Test(rule_keys, unknown)
{
    bad_value("default-ttl", "1s", "unknown rule key 'default-ttl'");
    bad_value("listen", "x", "unknown rule key");
    policy_rule_t r;
    policy_rule_defaults(&r);
    cr_assert_eq(config_rule_set(&r, NULL, "x", err, sizeof err), -EINVAL);
}

Test(rule_keys, query)
{
    policy_rule_t r;
    policy_rule_defaults(&r);
    set(&r, "query", "none");
    cr_assert_eq(r.query, POLICY_QUERY_NONE);
    set(&r, "query", "sorted");
    cr_assert_eq(r.query, POLICY_QUERY_SORTED);
    set(&r, "query", "keep id page");
    cr_assert_eq(r.query, POLICY_QUERY_KEEP);
    cr_assert_eq(r.n_params, 2);
    cr_assert_str_eq(r.params[0], "id");
    cr_assert_str_eq(r.params[1], "page");
    set(&r, "query", "drop utm_*, fbclid,gclid\t ref?");
    cr_assert_eq(r.query, POLICY_QUERY_DROP);
    cr_assert_eq(r.n_params, 4);
    cr_assert_str_eq(r.params[3], "ref?");
    set(&r, "query", "all");
    cr_assert_eq(r.query, POLICY_QUERY_ALL);
    cr_assert_eq(r.n_params, 0);

    static const struct {
        const char *value, *msg;
    } bad[] = {
        { "", "expected all, none, sorted" }, { "sort", "expected all, none, sorted" },
        { "Keep id", "expected all, none, sorted" }, { "sorted id", "takes no names" },
        { "all x", "takes no names" }, { "keep", "at least one parameter name" },
        { "drop , ", "at least one parameter glob" }, { "keep utm_*", "not globs" },
        { "keep a=b", "written decoded" }, { "drop a&b", "written decoded" }, { "keep %69d", "written decoded" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        bad_value("query", bad[i].value, bad[i].msg);
    char v[2048] = "keep";
    for (int i = 0; i < POLICY_KEY_PARAMS_MAX; i++)
        sprintf(v + strlen(v), " p%d", i);
    set(&r, "query", v);
    cr_assert_eq(r.n_params, POLICY_KEY_PARAMS_MAX);
    strcat(v, " one_more");
    bad_value("query", v, "more than 16");
    char name[100];
    memset(name, 'n', sizeof name);
    name[POLICY_RULE_PARAM_MAX] = '\0';
    snprintf(v, sizeof v, "drop %s", name);
    bad_value("query", v, "longer than");
    name[POLICY_RULE_PARAM_MAX - 1] = '\0';
    snprintf(v, sizeof v, "drop %s", name);
    set(&r, "query", v);
}

/* image, image_widths, image_widths_round: the list is ascending pixel
 * widths, "any" resets it, and a bad list changes nothing. */
Test(rule_keys, image)
{
    policy_rule_t r;
    policy_rule_defaults(&r);
    cr_assert_not(r.image);
    cr_assert_eq(r.n_widths, 0);
    set(&r, "image", "on");
    cr_assert(r.image);
    set(&r, "image_widths", "320, 640 1280,1920");
    cr_assert_eq(r.n_widths, 4);
    cr_assert_eq(r.widths[0], 320);
    cr_assert_eq(r.widths[3], 1920);
    set(&r, "image_widths_round", "refuse");
    cr_assert_eq(r.widths_round, POLICY_RULE_WIDTHS_REFUSE);
    set(&r, "image_widths", "any");
    cr_assert_eq(r.n_widths, 0);
    cr_assert_eq(r.widths[0], 0);

    static const struct {
        const char *value, *msg;
    } bad[] = {
        { "", "at least one width" }, { "640 320", "ascending" }, { "320 320", "ascending" },
        { "0", "1..16384" }, { "16385", "1..16384" }, { "12px", "1..16384" }, { "-5", "1..16384" },
        { "any 320", "1..16384" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        bad_value("image_widths", bad[i].value, bad[i].msg);
    char v[512] = "";
    for (int i = 1; i <= POLICY_RULE_WIDTHS_MAX; i++)
        sprintf(v + strlen(v), " %d", i * 10);
    set(&r, "image_widths", v);
    cr_assert_eq(r.n_widths, POLICY_RULE_WIDTHS_MAX);
    strcat(v, " 9999");
    bad_value("image_widths", v, "more than");
    bad_value("image_widths_round", "down", "expected up|refuse");
}

Test(rule_keys, finish_cross_checks)
{
    policy_rule_t w = rule("/img/*");
    set(&w, "image_widths", "100 200");
    cr_assert_eq(config_rule_finish(&w, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "need image = on"), "%s", err);
    set(&w, "image", "on");
    cr_assert_eq(config_rule_finish(&w, err, sizeof err), 0);

    policy_rule_t r = rule("/x/*");
    set(&r, "origin_cache_control", "override");
    cr_assert_eq(config_rule_finish(&r, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "override needs default_ttl"), "%s", err);
    cr_assert_not_null(strstr(err, "/x/*"), "%s", err);
    set(&r, "default_ttl", "1h");
    cr_assert_eq(config_rule_finish(&r, err, sizeof err), 0);

    r = rule("/x/*");
    set(&r, "min_ttl", "1h");
    set(&r, "max_ttl", "1m");
    cr_assert_eq(config_rule_finish(&r, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "min_ttl is larger than max_ttl"), "%s", err);
    set(&r, "max_ttl", "1h");
    cr_assert_eq(config_rule_finish(&r, err, sizeof err), 0);
    set(&r, "default_ttl", "1m");
    cr_assert_eq(config_rule_finish(&r, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "default_ttl is outside"), "%s", err);
    set(&r, "default_ttl", "2h");
    cr_assert_eq(config_rule_finish(&r, err, sizeof err), -EINVAL);
    set(&r, "default_ttl", "1h");
    cr_assert_eq(config_rule_finish(&r, err, sizeof err), 0);
}

Test(rule_keys, no_inheritance_between_rules)
{
    policy_rule_t a = rule("/a/*"), b = rule("/a/b/*");
    set(&a, "default_ttl", "1h");
    set(&a, "query", "none");
    policy_rule_t rules[2] = { a, b };
    policy_rules_sort(rules, 2);
    const policy_rule_t *r = policy_rules_match(rules, 2, "h", 1, "/a/b/c", 6);
    cr_assert_str_eq(r->pattern, "/a/b/*");
    cr_assert_eq(r->default_ttl, -1);
    cr_assert_eq(r->query, POLICY_QUERY_ALL);
}

/* ---- printing ---- */

/* The printed text, in a heap copy the caller frees. */
static char *print(const policy_rule_t *r)
{
    static char text[8192];
    memset(text, 0, sizeof text);
    FILE *f = fmemopen(text, sizeof text - 1, "w");
    cr_assert_not_null(f);
    config_rule_print(f, r);
    fclose(f);
    return strdup(text);
}

Test(rule_print, every_setting_and_round_trip)
{
    policy_rule_t r = rule("*.example.com/img/*");
    set(&r, "default_ttl", "90m");
    set(&r, "max_ttl", "1d");
    set(&r, "stale_if_error", "45s");
    set(&r, "query", "drop utm_* fbclid");
    set(&r, "cookie", "bypass");
    set(&r, "store_set_cookie", "on");
    char *text = print(&r);
    cr_assert_not_null(strstr(text, "[rule *.example.com/img/*]\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\ndefault_ttl = 90m\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nmin_ttl = 0  # default\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nmax_ttl = 1d\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nstale_if_error = 45s\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nstale_while_revalidate = none  # default\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nquery = drop utm_* fbclid\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\ncookie = bypass\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nstore_set_cookie = on\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\norigin_cache_control = honour  # default\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nheuristic_max = 1d  # default\n"), "%s", text);

    /* every key is printed, and the printed values parse back to the same rule */
    policy_rule_t back = rule("*.example.com/img/*");
    for (const config_rule_setting_t *s = config_rule_settings; s->key; s++) {
        char key[80];
        snprintf(key, sizeof key, "\n%s = ", s->key);
        char *at = strstr(text, key);
        cr_assert_not_null(at, "%s missing", s->key);
        at += strlen(key);
        char val[1200];
        size_t n = strcspn(at, "\n");
        char *hash = memchr(at, '#', n);
        if (hash && hash > at + 1 && hash[-1] == ' ')
            n = (size_t)(hash - at - 2);
        memcpy(val, at, n);
        val[n] = '\0';
        set(&back, s->key, val);
    }
    back.set = r.set;
    cr_assert_eq(memcmp(&back, &r, sizeof r), 0);
    free(text);

    text = print(NULL);
    cr_assert_not_null(strstr(text, "built-in defaults"), "%s", text);
    cr_assert_not_null(strstr(text, "[rule *]"), "%s", text);
    free(text);
}

Test(rule_print, help_and_markdown_list_every_key)
{
    char *help = NULL, *md = NULL;
    size_t hl, ml;
    FILE *f = open_memstream(&help, &hl);
    config_rule_print_help(f);
    fclose(f);
    f = open_memstream(&md, &ml);
    config_rule_print_markdown(f);
    fclose(f);
    for (const config_rule_setting_t *s = config_rule_settings; s->key; s++) {
        char k[80];
        cr_assert_not_null(strstr(help, s->key), "%s", s->key);
        snprintf(k, sizeof k, "| `%s` |", s->key);
        cr_assert_not_null(strstr(md, k), "%s", s->key);
        cr_assert_not_null(s->doc);
    }
    cr_assert_not_null(strstr(md, "honour \\| override"), "%s", md);
    free(help);
    free(md);
}
