/* The status page and its JSON twin: /.cdn/status.json parsed with
 * jansson (identity, exact request totals by outcome, latency, the store,
 * the upstreams, the latest purges, the history), /.cdn/status served as
 * self-contained HTML, and the page rendered by headless Chromium with no
 * console error and the request count on it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "edge_env.h"

#define TOKEN "status-token-for-tests"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define CC "cc=max-age%3D600"
/* Chromium's whole run, start-up included, is killed past this. */
#define CHROMIUM_TIMEOUT_MS 60000

static char token_arg[700];

static void start(edge_env_t *env)
{
    const char *extra[] = { edge_token_flag(TOKEN, token_arg, sizeof token_arg), "--name=edge-status-1",
                            "--region=test-region", NULL };
    edge_env_start(env, extra);
}

/* GET /.cdn/status.json, parsed; fails the test unless it is a 200 JSON object. */
static json_t *status_json(const edge_env_t *env)
{
    th_resp_t *r = th_get(env->e, "/.cdn/status.json");
    cr_assert_not_null(r, "%s", th_last_error());
    cr_assert_eq(r->status, 200, "status.json: %d", r->status);
    const char *ct = th_hdr(r, "content-type");
    cr_assert(ct && strcmp(ct, "application/json") == 0, "content-type %s", ct ? ct : "(none)");
    json_error_t err;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &err);
    cr_assert(json_is_object(j), "status.json does not parse: %s: %.*s", err.text, (int)r->body.len, r->body.data);
    th_resp_free(r);
    return j;
}

static json_int_t jint(json_t *root, const char *path)
{
    /* path: "a.b.c" through objects */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = root;
    for (char *s = strtok(buf, "."); s && v; s = strtok(NULL, "."))
        v = json_object_get(v, s);
    cr_assert(json_is_integer(v), "%s is not an integer", path);
    return json_integer_value(v);
}

typedef struct want {
    const edge_env_t *env;
    const char *path;
    json_int_t value;
} want_t;

static bool reaches(void *arg)
{
    want_t *w = arg;
    json_t *j = status_json(w->env);
    bool ok = jint(j, w->path) == w->value;
    json_decref(j);
    return ok;
}

/* Wait (bounded) until the integer at path equals value: counters move at
 * each response's end, the store's at the writer's commit. */
static void wait_value(const edge_env_t *env, const char *path, json_int_t value)
{
    want_t w = { env, path, value };
    cr_assert(th_wait_until(reaches, &w, TH_TIMEOUT_MS), "%s never reached %lld", path, (long long)value);
}

static void get_expect(const edge_env_t *env, const char *t, const char *cs)
{
    th_resp_t *r = edge_get(env, t);
    cr_assert_eq(r->status, 200);
    cr_assert(cs_has(r, cs), "%s: Cache-Status %s, wanted %s", t, th_hdr(r, "cache-status"), cs);
    th_resp_free(r);
}

/* M misses, then N hits, on a fresh edge. */
static void traffic(const edge_env_t *env, int misses, int hits)
{
    char t[128];
    for (int i = 0; i < misses; i++) {
        snprintf(t, sizeof t, "/s/%d?%s&size=%d", i, CC, 1000 + i);
        get_expect(env, t, "fwd=uri-miss");
    }
    wait_value(env, "store.objects", misses); /* stored: what follows are hits */
    for (int i = 0; i < hits; i++) {
        snprintf(t, sizeof t, "/s/%d?%s&size=%d", i % misses, CC, 1000 + i % misses);
        get_expect(env, t, "; hit");
    }
    wait_value(env, "totals.requests.total", misses + hits);
}

Test(status, json_totals_say_exactly_what_happened)
{
    edge_env_t env;
    start(&env);
    traffic(&env, 3, 7);
    json_t *j = status_json(&env);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "node"), "name")), "edge-status-1");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "node"), "role")), "edge");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "node"), "region")), "test-region");
    cr_assert(json_string_length(json_object_get(json_object_get(j, "node"), "version")) > 0);
    cr_assert(json_number_value(json_object_get(json_object_get(j, "node"), "uptime_s")) >= 0);
    cr_assert_eq(jint(j, "totals.requests.hit"), 7);
    cr_assert_eq(jint(j, "totals.requests.miss"), 3);
    static const char *const zero[] = { "stale", "revalidated", "collapsed", "pass", "error" };
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
        char p[64];
        snprintf(p, sizeof p, "totals.requests.%s", zero[i]);
        cr_assert_eq(jint(j, p), 0, "%s", p);
    }
    cr_assert_geq(jint(j, "totals.responses.2xx"), 10, "the 10 requests (and status.json itself)");
    /* 3 x 1000.. bytes of bodies at least: 1000+1001+1002, then 7 hits */
    cr_assert_geq(jint(j, "totals.client_bytes_sent"), 3 * 1001 + 7 * 1000);
    json_t *t = json_object_get(j, "totals");
    cr_assert_float_eq(json_number_value(json_object_get(t, "hit_ratio")), 0.7, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(t, "offload_requests")), 0.7, 1e-9);
    /* latency: every request observed once; percentiles ordered */
    cr_assert_eq(jint(j, "latency.all.count"), 10);
    cr_assert_eq(jint(j, "latency.hit.count"), 7);
    cr_assert_eq(jint(j, "latency.miss.count"), 3);
    json_t *la = json_object_get(json_object_get(j, "latency"), "all");
    double p50 = json_number_value(json_object_get(la, "p50_ms")), p90 = json_number_value(json_object_get(la, "p90_ms")),
           p99 = json_number_value(json_object_get(la, "p99_ms"));
    cr_assert(json_is_real(json_object_get(la, "p50_ms")) && p50 > 0 && p50 <= p90 && p90 <= p99, "%g %g %g", p50, p90,
              p99);
    /* the store */
    cr_assert_eq(jint(j, "store.objects"), 3);
    cr_assert_gt(jint(j, "store.bytes"), 3000);
    cr_assert_gt(jint(j, "store.bytes_max"), 0);
    cr_assert_gt(jint(j, "store.map_size"), 0);
    cr_assert_eq(jint(j, "store.evictions"), 0);
    /* the upstreams: the one origin, up, which answered the 3 misses */
    json_t *ups = json_object_get(j, "upstreams");
    cr_assert_eq(json_array_size(ups), 1);
    json_t *u = json_array_get(ups, 0);
    cr_assert(strstr(json_string_value(json_object_get(u, "name")), env.o), "%s", json_string_value(json_object_get(u, "name")));
    cr_assert_str_eq(json_string_value(json_object_get(u, "pool")), "primary");
    cr_assert_str_eq(json_string_value(json_object_get(u, "role")), "origin");
    cr_assert_str_eq(json_string_value(json_object_get(u, "state")), "up");
    cr_assert(json_is_true(json_object_get(u, "usable")));
    cr_assert_eq(json_integer_value(json_object_get(u, "requests_ok")), 3);
    cr_assert_eq(json_integer_value(json_object_get(u, "requests_failed")), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "purges")), 0, "no purge yet");
    cr_assert(json_is_object(json_object_get(j, "definitions")));
    json_decref(j);
}

Test(status, purges_are_listed_newest_first)
{
    edge_env_t env;
    start(&env);
    traffic(&env, 2, 0);
    th_resp_t *r = edge_req(env.e, "PURGE", "/s/0?" CC "&size=1000", AUTH, NULL, 0);
    cr_assert_eq(r->status, 200, "%d %s", r->status, r->body.data);
    th_resp_free(r);
    const char *body = "{\"tags\": [\"red\", \"blue\"], \"soft\": true}";
    r = edge_req(env.e, "POST", "/.cdn/purge", AUTH, body, strlen(body));
    cr_assert_eq(r->status, 200, "%d %s", r->status, r->body.data);
    th_resp_free(r);
    json_t *j = status_json(&env);
    json_t *ps = json_object_get(j, "purges");
    cr_assert_eq(json_array_size(ps), 2);
    json_t *tag = json_array_get(ps, 0), *url = json_array_get(ps, 1);
    cr_assert_str_eq(json_string_value(json_object_get(tag, "kind")), "tag");
    cr_assert_str_eq(json_string_value(json_object_get(tag, "what")), "red, blue");
    cr_assert(json_is_true(json_object_get(tag, "soft")));
    cr_assert_eq(json_integer_value(json_object_get(tag, "count")), 0, "nothing carried those tags");
    cr_assert_str_eq(json_string_value(json_object_get(url, "kind")), "url");
    cr_assert_str_eq(json_string_value(json_object_get(url, "what")), "/s/0?" CC "&size=1000");
    cr_assert(json_is_false(json_object_get(url, "soft")));
    cr_assert(json_is_true(json_object_get(url, "ok")));
    cr_assert_eq(json_integer_value(json_object_get(url, "count")), 1);
    cr_assert_gt(json_integer_value(json_object_get(url, "time")), 0);
    json_decref(j);
}

typedef struct hist_want {
    const edge_env_t *env;
    json_int_t total;
} hist_want_t;

/* The history's intervals, live one included, add up to every request. */
static bool history_adds_up(void *arg)
{
    hist_want_t *w = arg;
    json_t *j = status_json(w->env), *h = json_object_get(j, "history");
    json_t *req = json_object_get(h, "requests");
    json_int_t sum = 0;
    size_t n = json_array_size(req);
    for (size_t i = 0; i < n; i++)
        sum += json_integer_value(json_array_get(req, i));
    static const char *const cols[] = { "t", "dt", "rate", "hit_ratio", "offload_requests", "offload_bytes",
                                        "p50_ms", "p99_ms" };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        cr_assert_eq(json_array_size(json_object_get(h, cols[i])), n, "column %s", cols[i]);
    cr_assert_eq(json_integer_value(json_object_get(h, "interval_s")), 5);
    json_decref(j);
    return sum == w->total;
}

Test(status, history_intervals_add_up_to_the_totals)
{
    edge_env_t env;
    start(&env);
    traffic(&env, 2, 4);
    hist_want_t w = { &env, 6 };
    /* the live interval shows once a second has passed since the last sample */
    cr_assert(th_wait_until(history_adds_up, &w, TH_TIMEOUT_MS), "the history never added up to 6 requests");
}

Test(status, page_is_self_contained_html)
{
    edge_env_t env;
    start(&env);
    th_resp_t *r = th_get(env.e, "/.cdn/status");
    cr_assert_not_null(r, "%s", th_last_error());
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(th_hdr(r, "content-type"), "text/html; charset=utf-8");
    cr_assert(strstr(th_hdr(r, "cache-control"), "no-store"));
    cr_assert_gt(r->body.len, 1000);
    cr_assert_eq(memcmp(r->body.data, "<!DOCTYPE html>", 15), 0);
    cr_assert_null(memmem(r->body.data, r->body.len, "http://", 7), "an external reference");
    cr_assert_null(memmem(r->body.data, r->body.len, "https://", 8), "an external reference");
    cr_assert_not_null(memmem(r->body.data, r->body.len, "'status.json'", 13), "refreshes from its twin");
    th_resp_free(r);
    r = th_request(env.e, "HEAD", "/.cdn/status", NULL, NULL, 0);
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body.len, 0);
    th_resp_free(r);
    r = th_request(env.e, "POST", "/.cdn/status.json", NULL, "x", 1);
    cr_assert_eq(r->status, 405);
    th_resp_free(r);
}

/* --- headless Chromium --- */

/* The chromium program on PATH, into out[cap]; false when there is none. */
static bool find_chromium(char *out, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/chromium", d);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

/* Run chromium with args (NULL-terminated, program excluded), stdout and
 * stderr into files; killed with its whole process group past
 * CHROMIUM_TIMEOUT_MS. Returns its exit status (-1: killed). */
static int run_chromium(const char *prog, const char *const args[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        const char *argv[32];
        int n = 0;
        argv[n++] = "chromium";
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid); /* either side may win the race; both set the same */
    int64_t end = th_now_ms() + CHROMIUM_TIMEOUT_MS;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (th_now_ms() > end) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL); /* bounded by CHROMIUM_TIMEOUT_MS */
    }
    kill(-pid, SIGKILL); /* any helper process it left behind */
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    buf_t b;
    buf_init(&b, 64u << 20);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cr_assert_eq(buf_append(&b, chunk, n), 0);
    fclose(f);
    cr_assert_eq(buf_append(&b, "", 1), 0);
    return b.data;
}

/* The value of attr="..." in the first tag that has it, as a long; -1 if absent. */
static long attr_value(const char *dom, const char *attr)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", attr);
    const char *p = strstr(dom, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

/* Load the page once in headless Chromium and check it rendered without
 * a console message or a page error; returns the DOM (the caller frees). */
static char *render_page(const char *prog, const edge_env_t *env, int n)
{
    char url[128], profile[700], dom_path[700], err_path[700];
    snprintf(url, sizeof url, "http://%s/.cdn/status", env->e);
    const char *dir = th_tmpdir();
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium-profile", dir);
    snprintf(dom_path, sizeof dom_path, "%s/dom-%d.html", dir, n);
    snprintf(err_path, sizeof err_path, "%s/chromium-%d.stderr", dir, n);
    /* Virtual time runs the page's first fetch and render (and a refresh
     * or two) without waiting for them in real time. */
    const char *args[] = { "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                           "--disable-background-networking", "--disable-sync", profile,
                           "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0", "--dump-dom", url, NULL };
    int rc = run_chromium(prog, args, dom_path, err_path);
    char *err = slurp(err_path), *dom = slurp(dom_path);
    cr_assert_eq(rc, 0, "chromium failed (%d): %.4000s", rc, err);
    /* Console messages (console.*, uncaught exceptions, failed loads) are
     * logged as "...:CONSOLE(line)] ..." with --enable-logging=stderr. */
    cr_assert_null(strstr(err, ":CONSOLE"), "console output: %.4000s", strstr(err, ":CONSOLE"));
    cr_assert_eq(attr_value(dom, "data-errors"), 0, "the page recorded errors: %.6000s", dom);
    cr_assert_geq(attr_value(dom, "data-loaded"), 1, "status.json never rendered: %.6000s", dom);
    free(err);
    return dom;
}

static long shown_requests(const char *dom)
{
    const char *shown = strstr(dom, "id=\"total-requests\">");
    cr_assert_not_null(shown, "%.6000s", dom);
    return strtol(shown + strlen("id=\"total-requests\">"), NULL, 10);
}

Test(status, chromium_renders_the_page_with_no_console_error)
{
    char prog[1024];
    if (!find_chromium(prog, sizeof prog))
        cr_skip_test("chromium is not installed (make deps installs Debian's chromium): skipping the browser test");
    edge_env_t env;
    start(&env);
    /* A node that has served nothing: empty history, null ratios. */
    char *dom = render_page(prog, &env, 0);
    cr_assert_eq(attr_value(dom, "data-requests"), 0, "%.6000s", dom);
    cr_assert_eq(shown_requests(dom), 0);
    free(dom);
    traffic(&env, 2, 5);
    th_resp_t *r = edge_req(env.e, "PURGE", "/s/1?" CC "&size=1001", AUTH, NULL, 0);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    dom = render_page(prog, &env, 1);
    cr_assert_eq(attr_value(dom, "data-requests"), 7, "%.6000s", dom);
    cr_assert_eq(shown_requests(dom), 7, "the request count on the page");
    cr_assert_not_null(strstr(dom, "edge-status-1"), "the node's name on the page");
    cr_assert_not_null(strstr(dom, "/s/1?" CC "&amp;size=1001"), "the purge on the page");
    cr_assert_not_null(strstr(dom, env.o), "the origin in the upstream table");
    free(dom);
}
