/* The settings table and its parser: defaults, files, flags, and the
 * error messages (file:line and what was expected). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_diff.h"

static char path[64];

static const char *write_file(const char *text)
{
    strcpy(path, "/tmp/cdn-config-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void cleanup(void)
{
    if (path[0])
        unlink(path);
    path[0] = '\0';
}

TestSuite(config, .fini = cleanup);

Test(config, shield_defaults_differ_where_they_should)
{
    config_t c;
    config_defaults(&c, CONFIG_SHIELD);
    cr_assert_str_eq(c.name, "shield-1");
    cr_assert_str_eq(c.listen, "127.0.0.1:8090");
    cr_assert(c.forward_cdn_cache_control);
    cr_assert_str_eq(c.health_path, "/");
    char err[256];
    cr_assert_eq(config_set(&c, CONFIG_SHIELD, "shields", "127.0.0.1:1", "--shields", err, sizeof err), -EINVAL,
                 "shields is an edge setting");
    config_defaults(&c, CONFIG_EDGE);
    cr_assert_not(c.forward_cdn_cache_control);
    cr_assert_str_eq(c.shields, "");
    cr_assert_eq(c.health_interval_ms, 2000);
    cr_assert_eq(c.eject_after, 3);
    cr_assert_eq(config_set(&c, CONFIG_EDGE, "health_path", "/x", "--health-path", err, sizeof err), -EINVAL,
                 "health_path is a shield setting");
}

Test(config, defaults)
{
    config_t c;
    config_defaults(&c, CONFIG_EDGE);
    cr_assert_str_eq(c.name, "edge-1");
    cr_assert_str_eq(c.listen, "127.0.0.1:8080");
    cr_assert_eq(c.cache_size, 1ull << 30);
    cr_assert_eq(c.max_object_size, 64ull << 20);
    cr_assert_eq(c.max_header_size, 16384);
    cr_assert_eq(c.max_uri_size, 8192);
    cr_assert_eq(c.max_body_size, 16ull << 20);
    cr_assert_eq(c.header_timeout_ms, 10000);
    cr_assert_eq(c.idle_timeout_ms, 60000);
    cr_assert_eq(c.workers, 0);
    cr_assert(c.forward_host);
    cr_assert_eq(c.cache_sync, CONFIG_SYNC_COMMIT);
}

Test(config, good_file)
{
    config_t c;
    char err[256];
    config_defaults(&c, CONFIG_EDGE);
    const char *f = write_file("# a node\n"
                               "name = edge-eu-1   # trailing comment\n"
                               "\n"
                               "  cache_size=2G\n"
                               "max_object_size = 512K\n"
                               "header_timeout = 250ms\n"
                               "idle_timeout = 2m\n"
                               "access_log = \"/tmp/x # not a comment\"\n"
                               "forward_host = off\n"
                               "cache_sync = none\n"
                               "listen = [::1]:0\n");
    cr_assert_eq(config_load_file(&c, CONFIG_EDGE, f, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c.name, "edge-eu-1");
    cr_assert_eq(c.cache_size, 2ull << 30);
    cr_assert_eq(c.max_object_size, 512 * 1024);
    cr_assert_eq(c.header_timeout_ms, 250);
    cr_assert_eq(c.idle_timeout_ms, 120000);
    cr_assert_str_eq(c.access_log, "/tmp/x # not a comment");
    cr_assert_not(c.forward_host);
    cr_assert_eq(c.cache_sync, CONFIG_SYNC_NONE);
    cr_assert_str_eq(c.listen, "[::1]:0");
}

static void expect_error(const char *text, const char *needle)
{
    config_t c;
    char err[256] = "";
    config_defaults(&c, CONFIG_EDGE);
    const char *f = write_file(text);
    cr_assert_eq(config_load_file(&c, CONFIG_EDGE, f, err, sizeof err), -EINVAL, "accepted: %s", text);
    char where[96];
    snprintf(where, sizeof where, "%s:", f);
    cr_assert(strstr(err, where) == err, "no file name in: %s", err);
    cr_assert(strstr(err, needle), "expected '%s' in: %s", needle, err);
    config_free(&c); /* the [rule] sections read before the error */
    cleanup();
}

Test(config, bad_files_name_file_line_and_expectation)
{
    expect_error("name = a\nbogus = 1\n", ":2: unknown setting 'bogus'");
    expect_error("cache_size = lots\n", ":1: cache_size: expected a size");
    expect_error("\n\nheader_timeout = 10 s\n", ":3: header_timeout: expected a duration");
    expect_error("workers = -1\n", "workers: expected an unsigned integer");
    expect_error("workers = 100000\n", "out of range");
    expect_error("cache_size = 10\n", "out of range");
    expect_error("cache_sync = sometimes\n", "expected commit|none");
    expect_error("forward_host = maybe\n", "expected on or off");
    expect_error("listen = 127.0.0.1\n", "expected host:port");
    expect_error("listen = 127.0.0.1:70000\n", "expected host:port");
    expect_error("just words\n", ":1: expected 'key = value'");
    expect_error("= 5\n", "expected a key");
    expect_error("[bogus]\n", ":1: unknown section");
    expect_error("\npass_headers = X-Forwarded-Host, Host\n", ":2: pass_headers: expected header names");
    expect_error("pass_headers_unkeyed = Connection\n", ":1: pass_headers_unkeyed: expected header names");
    expect_error("pass_headers = X-Forwarded-For\n", "expected header names");
    expect_error("pass_headers = bad name\n", "expected header names");
    expect_error("pass_headers = Via\n", "expected header names");
}

/* rate_limit's syntax: N, N/s, N/m, N/h with up to three decimals, an
 * optional burst (default one second's worth, at least 1); the CIDR lists
 * name the bad item with file:line. */
Test(config, rate_limits_and_cidr_lists)
{
    config_rate_t r;
    cr_assert_eq(config_parse_rate("off", &r), 0);
    cr_assert_eq(r.rate_milli, 0);
    cr_assert_eq(config_parse_rate("20", &r), 0);
    cr_assert(r.rate_milli == 20000 && r.burst == 20);
    cr_assert_eq(config_parse_rate("20/s burst 40", &r), 0);
    cr_assert(r.rate_milli == 20000 && r.burst == 40);
    cr_assert_eq(config_parse_rate("6/m", &r), 0);
    cr_assert(r.rate_milli == 100 && r.burst == 1);
    cr_assert_eq(config_parse_rate("0.5/s burst 3", &r), 0);
    cr_assert(r.rate_milli == 500 && r.burst == 3);
    cr_assert_eq(config_parse_rate("3600/h", &r), 0);
    cr_assert(r.rate_milli == 1000 && r.burst == 1);
    cr_assert_eq(config_parse_rate("1/m", &r), 0);
    cr_assert_eq(r.rate_milli, 17, "rounded to the nearest thousandth");
    static const char *const bad[] = { "", "fast", "-1", "10/d", "1.2345", "0.0001/h", "10 burst", "10 burst 0",
                                       "10 bursts 5", "10/s burst 5 more", "0/s" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(config_parse_rate(bad[i], &r), -EINVAL, "'%s'", bad[i]);
    expect_error("\nrate_limit = 10/d\n", ":2: rate_limit: expected off, or a rate");
    expect_error("trusted_proxies = 10.0.0.0/8, 300.1.1.1\n", ":1: trusted_proxies: ");
    expect_error("allowlist = 2001:db8::/129\n", ":1: allowlist: ");
    expect_error("[rule /api/*]\nrate_limit = lots\n", ":2: rate_limit: expected none or a rate");
}

Test(config, pass_headers_take_header_name_lists)
{
    config_t c;
    char err[256];
    config_defaults(&c, CONFIG_EDGE);
    const char *f = write_file("pass_headers = X-Forwarded-Host, forwarded\npass_headers_unkeyed = X-Real-IP\n");
    cr_assert_eq(config_load_file(&c, CONFIG_EDGE, f, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c.pass_headers, "X-Forwarded-Host, forwarded");
    cr_assert_str_eq(c.pass_headers_unkeyed, "X-Real-IP");
    cr_assert_not(c.eject_on_5xx, "5xx answers count only when opted in");
}

Test(config, missing_file)
{
    config_t c;
    char err[256];
    config_defaults(&c, CONFIG_EDGE);
    cr_assert_eq(config_load_file(&c, CONFIG_EDGE, "/nonexistent/cdn.conf", err, sizeof err), -ENOENT);
    cr_assert(strstr(err, "/nonexistent/cdn.conf: cannot open"));
}

Test(config, flags_win_over_file_whatever_the_order)
{
    config_t c;
    char err[256];
    config_defaults(&c, CONFIG_EDGE);
    const char *f = write_file("name = from-file\nregion = eu\n");
    char *argv[] = { "edge", "--name=from-flag", "-c", (char *)f, "--max-uri-size=1K", NULL };
    cr_assert_eq(config_from_args(&c, CONFIG_EDGE, "edge", 5, argv, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c.name, "from-flag");
    cr_assert_str_eq(c.region, "eu");
    cr_assert_eq(c.max_uri_size, 1024);
}

Test(config, bad_flags)
{
    config_t c;
    char err[256];
    config_defaults(&c, CONFIG_EDGE);
    char *a1[] = { "edge", "--cache-size=huge", NULL };
    cr_assert_eq(config_from_args(&c, CONFIG_EDGE, "edge", 2, a1, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "--cache_size: cache_size: expected a size"), "%s", err);
    char *a2[] = { "edge", "stray", NULL };
    cr_assert_eq(config_from_args(&c, CONFIG_EDGE, "edge", 2, a2, err, sizeof err), -EINVAL);
    char *a3[] = { "edge", "-c", NULL };
    cr_assert_eq(config_from_args(&c, CONFIG_EDGE, "edge", 2, a3, err, sizeof err), -EINVAL);
}

Test(config, parse_helpers)
{
    uint64_t v;
    cr_assert_eq(config_parse_size("16K", &v), 0);
    cr_assert_eq(v, 16384);
    cr_assert_eq(config_parse_size("1MiB", &v), 0);
    cr_assert_eq(v, 1 << 20);
    cr_assert_eq(config_parse_size("99999999999999999999", &v), -EINVAL);
    cr_assert_eq(config_parse_size("18446744073709551615G", &v), -EINVAL);
    cr_assert_eq(config_parse_size("", &v), -EINVAL);
    cr_assert_eq(config_parse_duration("5", &v), 0);
    cr_assert_eq(v, 5000);
    cr_assert_eq(config_parse_duration("1h", &v), 0);
    cr_assert_eq(v, 3600000);
    cr_assert_eq(config_parse_duration("1w", &v), -EINVAL);
    char host[64];
    unsigned port;
    cr_assert_eq(config_parse_addr("127.0.0.2:99", host, sizeof host, &port), 0);
    cr_assert_str_eq(host, "127.0.0.2");
    cr_assert_eq(port, 99);
    cr_assert_eq(config_parse_addr(":80", host, sizeof host, &port), -EINVAL);
}

Test(config, markdown_table_lists_every_setting)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    config_print_markdown(m, CONFIG_ALL);
    fclose(m);
    for (const config_setting_t *s = config_settings; s->key; s++) {
        char cell[160];
        const char *who = s->programs == CONFIG_ALL ? "both" : s->programs == CONFIG_EDGE ? "edge" : "shield";
        snprintf(cell, sizeof cell, "| `%s` | %s | `%s` |", s->key, who, s->def);
        cr_assert(strstr(buf, cell), "missing %s", cell);
    }
    free(buf);
}

/* --- config_diff: what a reload logs --- */

typedef struct diffs {
    char lines[16][256];
    int n;
} diffs_t;

static void collect(void *ud, const char *key, const char *from, const char *to, bool restart)
{
    diffs_t *d = ud;
    cr_assert_lt(d->n, 16);
    snprintf(d->lines[d->n++], sizeof d->lines[0], "%s%s: %s -> %s", restart ? "!" : "", key, from, to);
}

static bool has(const diffs_t *d, const char *line)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->lines[i], line) == 0)
            return true;
    return false;
}

static void load(config_t *c, const char *text)
{
    char err[256];
    config_defaults(c, CONFIG_EDGE);
    cr_assert_eq(config_load_string(c, CONFIG_EDGE, "t", text, err, sizeof err), 0, "%s", err);
}

Test(config, diff_same_file_reports_nothing)
{
    config_t a, b;
    const char *text = "rate_limit = 20/s\n[rule /img/*]\ndefault_ttl = 1h\n";
    load(&a, text);
    load(&b, text);
    diffs_t d = { .n = 0 };
    cr_assert_eq(config_diff(&a, &b, CONFIG_EDGE, collect, &d), 0);
    cr_assert_eq(d.n, 0, "%s", d.lines[0]);
    config_free(&a);
    config_free(&b);
}

Test(config, diff_names_each_change_in_file_syntax)
{
    config_t a, b;
    load(&a, "rate_limit = 20/s\norigin_timeout = 30s\nmax_object_size = 64M\neject_on_5xx = off\n"
             "penalty_action = 429\n[rule /a/*]\ndefault_ttl = 1h\n[rule /b/*]\ndefault_ttl = 1h\n");
    load(&b, "rate_limit = 50/s burst 200\nmax_object_size = 1536K\neject_on_5xx = on\npenalty_action = close\n"
             "header_timeout = 250ms\n[rule /a/*]\ndefault_ttl = 2h\n[rule /c/*]\ndefault_ttl = 1h\n"
             "[rule /d/*]\ndefault_ttl = 1h\n");
    diffs_t d = { .n = 0 };
    size_t n = config_diff(&a, &b, CONFIG_EDGE, collect, &d);
    cr_assert(has(&d, "rate_limit: 20/s -> 50/s burst 200"));
    cr_assert(has(&d, "max_object_size: 64M -> 1536K"));
    cr_assert(has(&d, "eject_on_5xx: off -> on"));
    cr_assert(has(&d, "penalty_action: 429 -> close"));
    cr_assert(has(&d, "header_timeout: 10s -> 250ms"));
    cr_assert(has(&d, "rules: 2 rules -> 3 rules"));
    cr_assert(has(&d, "rule: /a/* -> changed"));
    cr_assert(has(&d, "rule: /b/* -> removed"));
    cr_assert(has(&d, "rule: /c/* -> added"));
    cr_assert(has(&d, "rule: /d/* -> added"));
    /* origin_timeout is restart-only: reported, kept, not counted */
    cr_assert(has(&d, "!origin_timeout: 30s -> 1m"), "%s", d.lines[1]);
    cr_assert_eq(b.origin_timeout_ms, 30000);
    cr_assert_eq(n, (size_t)d.n - 1);
    config_free(&a);
    config_free(&b);
}

Test(config, diff_keeps_restart_only_values)
{
    config_t a, b;
    load(&a, "listen = 127.0.0.1:8080\ncache_dir = /var/a\ncache_size = 1G\nworkers = 2\n");
    load(&b, "listen = 0.0.0.0:9\ncache_dir = /var/b\ncache_size = 2G\nworkers = 4\nmiss_cost = 5\n");
    diffs_t d = { .n = 0 };
    cr_assert_eq(config_diff(&a, &b, CONFIG_EDGE, collect, &d), 1);
    cr_assert(has(&d, "!listen: 127.0.0.1:8080 -> 0.0.0.0:9"));
    cr_assert(has(&d, "!cache_dir: /var/a -> /var/b"));
    cr_assert(has(&d, "!cache_size: 1G -> 2G"));
    cr_assert(has(&d, "!workers: 2 -> 4"));
    cr_assert(has(&d, "miss_cost: 10 -> 5"));
    cr_assert_str_eq(b.listen, "127.0.0.1:8080");
    cr_assert_str_eq(b.cache_dir, "/var/a");
    cr_assert_eq(b.cache_size, 1ull << 30);
    cr_assert_eq(b.workers, 2);
    cr_assert_eq(b.miss_cost, 5);
    cr_assert(config_restart_only("listen"));
    cr_assert(!config_restart_only("rate_limit"));
    config_free(&a);
    config_free(&b);
}

Test(config, format_value_round_trips_through_the_parser)
{
    config_t a, b;
    load(&a, "rate_limit = 0.5/s burst 3\npenalty_after = 90s\nmax_object_size = 3M\ntrusted_proxies = 10.0.0.0/8\n");
    char err[256];
    config_defaults(&b, CONFIG_EDGE);
    for (const config_setting_t *s = config_settings; s->key; s++) {
        if (!(s->programs & CONFIG_EDGE))
            continue;
        char v[1100];
        config_format_value(s, &a, v, sizeof v);
        if (strcmp(v, "\"\"") == 0)
            strcpy(v, "");
        cr_assert_eq(config_set(&b, CONFIG_EDGE, s->key, v, "t", err, sizeof err), 0, "%s = '%s': %s", s->key, v, err);
    }
    diffs_t d = { .n = 0 };
    cr_assert_eq(config_diff(&a, &b, CONFIG_EDGE, collect, &d), 0);
    cr_assert_eq(d.n, 0, "%s", d.lines[0]);
    config_free(&a);
    config_free(&b);
}
