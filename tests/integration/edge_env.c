/* edge_env: origin + edge set-up shared by the edge tests. */
#include "edge_env.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

th_proc_t *edge_start(const char *origin_addr, const char *dir, const char *const extra[])
{
    static char origin_arg[128], dir_arg[600];
    const char *argv[32];
    int n = 0;
    snprintf(origin_arg, sizeof origin_arg, "--origin=http://%s", origin_addr);
    snprintf(dir_arg, sizeof dir_arg, "--cache-dir=%s", dir);
    argv[n++] = "--listen=127.0.0.1:0";
    argv[n++] = origin_arg;
    argv[n++] = dir_arg;
    argv[n++] = "--workers=2";
    argv[n++] = "--cache-size=64M";
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return th_spawn("edge", argv);
}

void edge_env_start(edge_env_t *env, const char *const extra[])
{
    env->origin = th_origin();
    env->o = th_addr(env->origin);
    env->dir = th_tmpdir();
    env->edge = edge_start(env->o, env->dir, extra);
    env->e = th_addr(env->edge);
}

th_resp_t *edge_req(const char *addr, const char *method, const char *target, const char *extra,
                    const void *body, size_t len)
{
    char hdrs[2048];
    snprintf(hdrs, sizeof hdrs, "Host: " EDGE_HOST "\r\n%s", extra ? extra : "");
    return th_request(addr, method, target, hdrs, body, len);
}

th_resp_t *edge_get(const edge_env_t *env, const char *target)
{
    th_resp_t *r = edge_req(env->e, "GET", target, NULL, NULL, 0);
    cr_assert_not_null(r, "GET %s: %s", target, th_last_error());
    return r;
}

bool cs_has(th_resp_t *r, const char *needle)
{
    const char *cs = th_hdr(r, "cache-status");
    return cs && strstr(cs, needle);
}

typedef struct wait_cs {
    const edge_env_t *env;
    const char *target, *needle;
} wait_cs_t;

static bool cs_cond(void *arg)
{
    wait_cs_t *w = arg;
    th_resp_t *r = edge_req(w->env->e, "GET", w->target, NULL, NULL, 0);
    bool ok = r && r->status && cs_has(r, w->needle);
    if (r)
        th_resp_free(r);
    return ok;
}

bool edge_wait_cs(const edge_env_t *env, const char *target, const char *needle, int timeout_ms)
{
    wait_cs_t w = { env, target, needle };
    return th_wait_until(cs_cond, &w, timeout_ms);
}

th_resp_t *edge_poll_cs(const edge_env_t *env, const char *target, const char *needle, int timeout_ms)
{
    return edge_poll_cs_at(env->e, target, needle, timeout_ms);
}

th_resp_t *edge_poll_cs_at(const char *addr, const char *target, const char *needle, int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    do {
        th_resp_t *r = edge_req(addr, "GET", target, NULL, NULL, 0);
        if (r && r->status && cs_has(r, needle))
            return r;
        if (r)
            th_resp_free(r);
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL); /* bounded by timeout_ms */
    } while (th_now_ms() < end);
    return NULL;
}

void edge_echoed(th_resp_t *r, const char *name, char *out, size_t n)
{
    char pat[128];
    snprintf(pat, sizeof pat, "[\"%s\",\"", name);
    out[0] = '\0';
    const char *p = strcasestr(r->body.data ? r->body.data : "", pat);
    if (!p)
        return;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    size_t l = e ? (size_t)(e - p) : 0;
    if (l >= n)
        l = n - 1;
    memcpy(out, p, l);
    out[l] = '\0';
}

const char *edge_token_flag(const char *token, char *out, size_t cap)
{
    char path[600];
    snprintf(path, sizeof path, "%s/purge.token", th_tmpdir());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    size_t n = strlen(token);
    cr_assert_eq(write(fd, token, n), (ssize_t)n);
    cr_assert_eq(write(fd, "\n", 1), 1);
    close(fd);
    snprintf(out, cap, "--purge-token-file=%s", path);
    return out;
}
