/* bin/cdnload against the real nodes: two regions of clients, each
 * through its own edge, a shield and the demo origin. The report's offload is the origin's
 * own count against what the clients received; every body is checked, and
 * a body that differs from the origin's content fails the run with its
 * URL. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edge_env.h"

extern char **environ;

/* Run $CDN_BIN/cdnload with args (NULL-terminated), stdout and stderr to
 * out_path; bounded by timeout_ms (killed past it). Returns the exit
 * status, or -1 when killed. */
static int run_cdnload(const char *const args[], const char *out_path, int timeout_ms)
{
    char prog[1024];
    snprintf(prog, sizeof prog, "%s/cdnload", getenv("CDN_BIN") ? getenv("CDN_BIN") : "bin");
    const char *argv[32] = { prog };
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, prog, &fa, NULL, (char *const *)argv, environ), 0, "spawn %s", prog);
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    int64_t until = th_now_ms() + timeout_ms;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (th_now_ms() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(20000); /* polling the child's exit, bounded above */
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static const char *write_scenario(const char *dir, const char *text)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/scenario.conf", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static json_int_t jint(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(j, a);
    if (b)
        v = json_object_get(v, b);
    cr_assert(json_is_integer(v), "%s.%s is not an integer", a, b ? b : "");
    return json_integer_value(v);
}

/* The origin's own count of the load's objects 0..n-1 (/o/ and /u/). */
static long origin_served(const char *origin, int n)
{
    long served = 0;
    for (int i = 0; i < n; i++) {
        char p[32];
        snprintf(p, sizeof p, "/o/%d", i);
        long o = th_origin_requests(origin, p);
        snprintf(p, sizeof p, "/u/%d", i);
        long u = th_origin_requests(origin, p);
        served += (o > 0 ? o : 0) + (u > 0 ? u : 0);
    }
    return served;
}

/* A small CDN on its own loopback addresses (127.62.X.*, X from the pid:
 * the edges must name each other as purge peers before they listen):
 * shield at .3, an edge per region at .1 and .2, each the other's purge
 * peer, rate-limiting each client. */
typedef struct small_cdn {
    th_proc_t *origin, *shield, *edge[2];
    char edge_addr[2][32], shield_addr[32], token[700];
} small_cdn_t;

static void small_cdn_start(small_cdn_t *c)
{
    c->origin = th_origin();
    char *dir = th_tmpdir();
    unsigned x = (unsigned)getpid() % 250 + 1;
    snprintf(c->shield_addr, sizeof c->shield_addr, "127.62.%u.3:18090", x);
    for (int i = 0; i < 2; i++)
        snprintf(c->edge_addr[i], sizeof c->edge_addr[i], "127.62.%u.%d:18080", x, i + 1);
    snprintf(c->token, sizeof c->token, "%s/purge.token", dir);
    FILE *f = fopen(c->token, "w");
    cr_assert_not_null(f);
    fputs("load-test-token\n", f);
    fclose(f);
    chmod(c->token, 0600);
    static char org[128], tok[800], slisten[64], sdir[800], shields[64];
    snprintf(org, sizeof org, "--origin=http://%s", th_addr(c->origin));
    snprintf(tok, sizeof tok, "--purge-token-file=%s", c->token);
    snprintf(slisten, sizeof slisten, "--listen=%s", c->shield_addr);
    snprintf(sdir, sizeof sdir, "--cache-dir=%s/shield", dir);
    mkdir(sdir + 12, 0755);
    const char *sargv[] = { "--name=shield-1", slisten, org, sdir, "--workers=1", "--cache-size=64M",
                            "--health-path=/.origin/health", tok, NULL };
    c->shield = th_spawn("shield", sargv);
    snprintf(shields, sizeof shields, "--shields=%s", c->shield_addr);
    for (int i = 0; i < 2; i++) {
        static char name[2][32], listen[2][64], edir[2][800], peers[2][64];
        snprintf(name[i], sizeof name[i], "--name=edge-%c", "ab"[i]);
        snprintf(listen[i], sizeof listen[i], "--listen=%s", c->edge_addr[i]);
        snprintf(edir[i], sizeof edir[i], "--cache-dir=%s/edge-%d", dir, i);
        mkdir(edir[i] + 12, 0755);
        snprintf(peers[i], sizeof peers[i], "--purge-peers=%s", c->edge_addr[1 - i]);
        const char *eargv[] = { name[i], listen[i], org, edir[i], "--workers=1", "--cache-size=64M", shields,
                                peers[i], tok, "--rate-limit=200/s burst 400", NULL };
        c->edge[i] = th_spawn("edge", eargv);
    }
}

/* The test: ten seconds through 2 regions x 1 edge and a shield,
 * with a purge every 3 s and a scraper per region. The report's offload
 * is the origin's own count; no body differs; every purge misses on both
 * edges right after its answer; the scraper gets 429s and the readers
 * none; and the report's files are there and parse. */
Test(cdnload, ten_seconds_through_two_regions_and_a_shield, .timeout = 180)
{
    small_cdn_t c;
    small_cdn_start(&c);
    char *dir = th_tmpdir(), out[700], log[700], region_a[128], region_b[128];
    snprintf(out, sizeof out, "%s/report", dir);
    snprintf(log, sizeof log, "%s/cdnload.out", dir);
    snprintf(region_a, sizeof region_a, "a=%s", c.edge_addr[0]);
    snprintf(region_b, sizeof region_b, "b=%s", c.edge_addr[1]);
    const char *sc = write_scenario(dir, "duration = 9s\nwarmup = 1s\nobjects = 300\nzipf = 1.0\n"
                                         "sizes = 1k:60, 20k:40\nuncacheable = 0.1\nrate = 100\nconcurrency = 8\n"
                                         "purge_every = 3s\npurge_kind = tag\n"
                                         "abusive_clients = 1\nabusive_rate = 800\n");
    const char *args[] = { "-s", sc, "--origin", th_addr(c.origin), "--region", region_a, "--region", region_b,
                           "--host", "example.com", "--out", out, "--purge-token-file", c.token, "--quiet", NULL };
    int rc = run_cdnload(args, log, 120000);
    cr_assert_eq(rc, 0, "cdnload exited %d:\n%s", rc, slurp(log));
    char path[800];
    snprintf(path, sizeof path, "%s/report.json", out);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    cr_assert_not_null(j, "report.json: %s", e.text);
    json_t *total = json_object_get(j, "total");
    json_int_t requests = jint(total, "requests", NULL), origin = jint(j, "origin", "requests");
    cr_assert_gt(requests, 500, "10 s at 100/s per region sends more than that");
    cr_assert_eq(jint(total, "mismatches", NULL), 0);
    cr_assert_eq(jint(total, "status", "5xx"), 0);
    cr_assert_eq(jint(total, "status", "429"), 0, "a reader was rate-limited");
    /* The offload is the origin's own count against the clients' requests. */
    cr_assert_eq(origin, origin_served(th_addr(c.origin), 300));
    double off = json_real_value(json_object_get(json_object_get(j, "offload"), "requests"));
    cr_assert_float_eq(off, 1.0 - (double)origin / (double)requests, 1e-9);
    /* Both regions' answers, by tier, add up. */
    json_t *at = json_object_get(total, "answered_at");
    cr_assert_eq(jint(at, "edge", NULL) + jint(at, "origin", NULL) + jint(at, "shield", NULL) + jint(at, "unknown", NULL),
                 requests);
    cr_assert_gt(jint(at, "shield", NULL), 0, "region b's misses of region a's objects are shield hits");
    cr_assert_gt(jint(json_object_get(j, "regions"), "a", "requests"), 0);
    cr_assert_gt(jint(json_object_get(j, "regions"), "b", "requests"), 0);
    /* Every purge reached both edges before its answer. */
    json_t *pu = json_object_get(j, "purges");
    cr_assert_geq(jint(pu, "sent", NULL), 2);
    cr_assert_eq(jint(pu, "checked", NULL), jint(pu, "sent", NULL), "%s", slurp(log));
    cr_assert_eq(jint(pu, "effective", NULL), jint(pu, "sent", NULL));
    cr_assert_str_eq(json_string_value(json_object_get(pu, "first_failure")), "");
    /* The scrapers were refused, the readers were not. */
    cr_assert_gt(jint(json_object_get(json_object_get(j, "abusive"), "total"), "status", "429"), 0);
    json_decref(j);
    /* The time series and the latency table. */
    snprintf(path, sizeof path, "%s/series.csv", out);
    char *csv = slurp(path);
    cr_assert(strncmp(csv, "second,requests,bytes,at_edge,at_shield,at_origin,errors,status_5xx,limited_polite,"
                           "abusive,limited_abusive,purges,origin_requests\n", 124) == 0, "%.200s", csv);
    cr_assert(strstr(csv, "\n1,") && strstr(csv, "\n9,"), "%s", csv);
    snprintf(path, sizeof path, "%s/latency.csv", out);
    cr_assert(strncmp(slurp(path), "percentile,a,b\n", 15) == 0, "%.200s", slurp(path));
    /* The plots (gnuplot is one of make deps' packages). */
    static const char *const png[] = { "offload.png", "latency.png", "rps.png" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", out, png[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s missing", path);
        unsigned char sig[8] = { 0 };
        cr_assert_eq(fread(sig, 1, 8, f), 8);
        fclose(f);
        cr_assert(memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0, "%s is not a PNG", path);
    }
}

Test(cdnload, a_body_that_differs_fails_the_run_with_its_url)
{
    th_proc_t *o = th_origin();
    /* An "edge" that answers object 0 with the right length, wrong bytes. */
    char reply[512];
    int n = snprintf(reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n");
    memset(reply + n, 'x', 100);
    th_raw_origin_t *bad = th_raw_origin_start(reply, (size_t)n + 100, 1000);
    char *dir = th_tmpdir(), out[700], log[700], region[128];
    snprintf(out, sizeof out, "%s/report", dir);
    snprintf(log, sizeof log, "%s/cdnload.out", dir);
    snprintf(region, sizeof region, "a=%s", th_raw_origin_addr(bad));
    const char *sc = write_scenario(dir, "duration = 1s\nwarmup = 0\nobjects = 1\nsizes = 100:1\nuncacheable = 0\n"
                                         "concurrency = 1\n");
    const char *args[] = { "-s", sc, "--origin", th_addr(o), "--region", region, "--out", out, "--quiet", NULL };
    int rc = run_cdnload(args, log, 60000);
    char *text = slurp(log);
    cr_assert_eq(rc, 1, "exit %d:\n%s", rc, text);
    cr_assert(strstr(text, "FIRST MISMATCH: /o/0?size=100&cc=max-age%3D3600&sk=g0 (status 200) differs from the origin's "
                      "content at byte 0"), "%s",
              text);
    th_raw_origin_stop(bad);
}

Test(cdnload, a_bad_scenario_line_is_named)
{
    th_proc_t *o = th_origin();
    char *dir = th_tmpdir(), log[700];
    snprintf(log, sizeof log, "%s/cdnload.out", dir);
    const char *sc = write_scenario(dir, "duration = 1s\nzipf = steep\n");
    const char *args[] = { "-s", sc, "--origin", th_addr(o), "--region", "a=127.0.0.1:9", NULL };
    cr_assert_eq(run_cdnload(args, log, 20000), 2);
    char want[800];
    snprintf(want, sizeof want, "%s:2: zipf: expected an exponent", sc);
    cr_assert(strstr(slurp(log), want), "%s", slurp(log));
}
