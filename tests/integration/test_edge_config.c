/* The edge's command line and configuration on the wire: bad files and
 * flags stop start-up with file:line and what was expected; the access
 * log gets one line per request. */
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "edge_env.h"

/* Run bin/edge with args to completion; stderr+stdout into out. Returns
 * the exit status. The edge must exit on its own (bad configuration). */
static int run_edge(const char *args, char *out, size_t n)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "timeout 10 %s/edge %s 2>&1", getenv("CDN_BIN"), args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t got = fread(out, 1, n - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *write_conf(const char *text)
{
    char *dir = th_tmpdir();
    static char path[700];
    snprintf(path, sizeof path, "%s/edge.conf", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

Test(edge_config, bad_file_stops_startup_with_file_line_and_expectation)
{
    char out[2048], args[1024];
    const char *path = write_conf("# edge\nname = edge-x\ncache_size = lots\n");
    snprintf(args, sizeof args, "-c %s --listen=127.0.0.1:0", path);
    cr_assert_eq(run_edge(args, out, sizeof out), 2);
    char want[800];
    snprintf(want, sizeof want, "%s:3: cache_size: expected a size", path);
    cr_assert(strstr(out, want), "got: %s", out);

    path = write_conf("listen = 127.0.0.1:0\nno_such_thing = 1\n");
    snprintf(args, sizeof args, "-c %s", path);
    cr_assert_eq(run_edge(args, out, sizeof out), 2);
    snprintf(want, sizeof want, "%s:2: unknown setting 'no_such_thing'", path);
    cr_assert(strstr(out, want), "got: %s", out);

    cr_assert_eq(run_edge("--workers=lots", out, sizeof out), 2);
    cr_assert(strstr(out, "--workers: workers: expected an unsigned integer"), "got: %s", out);
    cr_assert_eq(run_edge("-c /nonexistent.conf", out, sizeof out), 2);
    cr_assert(strstr(out, "/nonexistent.conf: cannot open"), "got: %s", out);
    cr_assert_eq(run_edge("--origin=ftp://x --listen=127.0.0.1:0", out, sizeof out), 1);
    cr_assert(strstr(out, "origin: expected an http:// or https:// base URL"), "got: %s", out);
    cr_assert_eq(run_edge("--shields=not-an-address --listen=127.0.0.1:0", out, sizeof out), 1);
    cr_assert(strstr(out, "shields: expected host:port, got 'not-an-address'"), "got: %s", out);
    cr_assert_eq(run_edge("--shields=127.0.0.1:1,127.0.0.1:1 --listen=127.0.0.1:0", out, sizeof out), 1);
    cr_assert(strstr(out, "named twice"), "got: %s", out);
    cr_assert_eq(run_edge("--origin=none --listen=127.0.0.1:0", out, sizeof out), 1);
    cr_assert(strstr(out, "a node without shields needs an origin"), "got: %s", out);
    cr_assert_eq(run_edge("--pass-headers=X-Forwarded-Host --pass-headers-unkeyed=x-forwarded-host "
                          "--listen=127.0.0.1:0", out, sizeof out), 1);
    cr_assert(strstr(out, "'x-forwarded-host' is in pass_headers too"), "got: %s", out);
    cr_assert_eq(run_edge("--purge-peers=bogus --listen=127.0.0.1:0", out, sizeof out), 1);
    cr_assert(strstr(out, "purge_peers: expected host:port, got 'bogus'"), "got: %s", out);
}

Test(edge_config, a_purge_token_file_others_can_read_stops_startup)
{
    char out[4096], args[800], path[700];
    snprintf(path, sizeof path, "%s/token", th_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a-token\n", f);
    fclose(f);
    cr_assert_eq(chmod(path, 0644), 0);
    snprintf(args, sizeof args, "--purge-token-file=%s --listen=127.0.0.1:0", path);
    cr_assert_eq(run_edge(args, out, sizeof out), 1);
    cr_assert(strstr(out, "chmod o-rw"), "got: %s", out);
    snprintf(args, sizeof args, "--purge-token-file=%s/missing --listen=127.0.0.1:0", th_tmpdir());
    cr_assert_eq(run_edge(args, out, sizeof out), 1);
    cr_assert(strstr(out, "purge_token_file"), "got: %s", out);
}

Test(edge_config, help_lists_every_setting)
{
    char out[16384];
    cr_assert_eq(run_edge("--help", out, sizeof out), 0);
    cr_assert(strstr(out, "usage: edge"));
    cr_assert(strstr(out, "max_object_size"));
    cr_assert(strstr(out, "[64M]"));
}

Test(edge_config, file_settings_apply_and_flags_win)
{
    edge_env_t env;
    env.origin = th_origin();
    env.o = th_addr(env.origin);
    char text[512];
    snprintf(text, sizeof text, "name = edge-from-file\nregion = eu\nmax_uri_size = 300\n");
    const char *path = write_conf(text);
    const char *extra[] = { "-c", path, "--name=edge-from-flag", NULL };
    th_proc_t *e = edge_start(env.o, th_tmpdir(), extra);
    th_resp_t *r = edge_req(th_addr(e), "GET", "/cfg?size=10", NULL, NULL, 0);
    cr_assert(cs_has(r, "edge-from-flag; fwd=uri-miss"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    char longt[400];
    memset(longt, 'a', sizeof longt - 1);
    longt[0] = '/';
    longt[sizeof longt - 1] = '\0';
    r = edge_req(th_addr(e), "GET", longt, NULL, NULL, 0);
    cr_assert_eq(r->status, 414); /* max_uri_size from the file */
    th_resp_free(r);
    cr_assert_eq(th_stop(e), 0);
}

Test(edge_config, access_log_has_one_line_per_request)
{
    th_proc_t *o = th_origin();
    char *dir = th_tmpdir();
    char logarg[800], logpath[700];
    snprintf(logpath, sizeof logpath, "%s/access.log", dir);
    snprintf(logarg, sizeof logarg, "--access-log=%s", logpath);
    const char *extra[] = { logarg, NULL };
    th_proc_t *e = edge_start(th_addr(o), th_tmpdir(), extra);
    th_resp_free(edge_req(th_addr(e), "GET", "/logged?size=123&cc=max-age%3D60", NULL, NULL, 0));
    th_resp_free(edge_req(th_addr(e), "POST", "/logged", NULL, "abc", 3));
    cr_assert_eq(th_stop(e), 0); /* flushes the per-thread buffers */
    FILE *f = fopen(logpath, "r");
    cr_assert_not_null(f);
    char line[1024];
    int lines = 0, get = 0, post = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        get += strstr(line, " 127.0.0.1 \"GET /logged?size=123&cc=max-age%3D60\" 200 123 miss ") != NULL;
        post += strstr(line, " 127.0.0.1 \"POST /logged\" 200 ") != NULL && strstr(line, " pass ") != NULL;
        cr_assert(strstr(line, "ms "), "no duration: %s", line);
    }
    fclose(f);
    cr_assert_eq(lines, 2);
    cr_assert_eq(get, 1);
    cr_assert_eq(post, 1);
}
