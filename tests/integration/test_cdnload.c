/* bin/cdnload against the real nodes: two regions of clients through an
 * edge in front of the demo origin. The report's offload is the origin's
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

Test(cdnload, two_regions_offload_matches_the_origins_count)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    char *dir = th_tmpdir(), out[700], log[700], region_a[128], region_b[128];
    snprintf(out, sizeof out, "%s/report", dir);
    snprintf(log, sizeof log, "%s/cdnload.out", dir);
    snprintf(region_a, sizeof region_a, "a=%s", env.e);
    snprintf(region_b, sizeof region_b, "b=%s", env.e);
    const char *sc = write_scenario(dir, "duration = 2s\nwarmup = 0\nobjects = 300\nzipf = 1.0\n"
                                         "sizes = 1k:60, 20k:40\nuncacheable = 0.1\nconcurrency = 4\n");
    const char *args[] = { "-s", sc, "--origin", env.o, "--region", region_a, "--region", region_b, "--out", out,
                           "--quiet", NULL };
    int rc = run_cdnload(args, log, 60000);
    cr_assert_eq(rc, 0, "cdnload exited %d:\n%s", rc, slurp(log));
    char path[800];
    snprintf(path, sizeof path, "%s/report.json", out);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    cr_assert_not_null(j, "report.json: %s", e.text);
    json_t *total = json_object_get(j, "total");
    json_int_t requests = jint(total, "requests", NULL), origin = jint(j, "origin", "requests");
    cr_assert_gt(requests, 100, "a 2 s run sends more than that");
    cr_assert_eq(jint(total, "mismatches", NULL), 0);
    cr_assert_eq(jint(total, "status", "5xx"), 0);
    /* The origin counted every object it served: the report's offload is
     * exactly that count against the clients' requests. */
    long served = 0;
    for (int i = 0; i < 300; i++) {
        char p[32];
        snprintf(p, sizeof p, "/o/%d", i);
        long n = th_origin_requests(env.o, p);
        snprintf(p, sizeof p, "/u/%d", i);
        long u = th_origin_requests(env.o, p);
        served += (n > 0 ? n : 0) + (u > 0 ? u : 0);
    }
    cr_assert_eq(origin, served);
    double off = json_real_value(json_object_get(json_object_get(j, "offload"), "requests"));
    cr_assert_float_eq(off, 1.0 - (double)origin / (double)requests, 1e-9);
    /* Each cacheable object reached the origin once (collapsing): the best
     * offload this workload allows. */
    cr_assert_eq(jint(j, "origin", "cacheable_requests"), jint(j, "distinct_cacheable", NULL));
    cr_assert_float_eq(json_real_value(json_object_get(json_object_get(j, "offload"), "ratio_to_best")), 1.0, 1e-9);
    /* The tiers add up, and both regions are there. */
    json_t *at = json_object_get(total, "answered_at");
    cr_assert_eq(jint(at, "edge", NULL) + jint(at, "origin", NULL) + jint(at, "shield", NULL) + jint(at, "unknown", NULL),
                 requests);
    cr_assert_gt(jint(json_object_get(j, "regions"), "a", "requests"), 0);
    cr_assert_gt(jint(json_object_get(j, "regions"), "b", "requests"), 0);
    json_decref(j);
    /* The time series: a header and one line per second. */
    snprintf(path, sizeof path, "%s/series.csv", out);
    char *csv = slurp(path);
    cr_assert(strncmp(csv, "second,requests,bytes,at_edge,at_shield,at_origin,errors\n", 57) == 0, "%.200s", csv);
    cr_assert(strstr(csv, "\n1,") && strstr(csv, "\n2,"), "%s", csv);
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
    cr_assert(strstr(text, "FIRST MISMATCH: /o/0?size=100&cc=max-age%3D3600 (status 200) differs at byte 0"), "%s",
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
