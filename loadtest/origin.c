/* origin: the small, fast HTTP/1.1 origin behind the caches in tests, the
 * demo and load tests.
 *
 * It runs on the project's own server module (workers + http_server), so
 * the limits and timeouts it enforces are the ones the edge enforces, and
 * the server's behaviour on the wire can be tested through it. Responses
 * are described by the request's query (see origin_query.c); bodies are
 * synthetic (synth.h), so any client can verify them byte for byte. The
 * control paths under /.origin/ report and reset per-path counters, which
 * is how tests measure what reached the origin.
 *
 *   origin --listen HOST:PORT [--workers N] [--access-log=stderr] [--image-dir=DIR] ...
 *
 * Settings come from the project's settings table, restricted to the ones
 * that concern an HTTP server; both `--key=value` and `--key value` work.
 * --image-dir is the origin's own: not a node setting. Images under /img/
 * are generated (origin_image.c) unless DIR has the file. */
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "http_server.h"
#include "log.h"
#include "origin.h"
#include "worker.h"

/* The settings an origin understands: the server-bound ones. */
static const char *const origin_keys[] = {
    "listen", "workers", "max_header_size", "max_uri_size", "max_body_size", "header_timeout",
    "idle_timeout", "send_timeout", "max_connections", "access_log", "log_level", NULL,
};

typedef struct origin_app {
    config_t cfg;
    origin_stats_t *stats;
    char *image_dir;   /* --image-dir, or NULL */
} origin_app_t;

static bool origin_key(const char *key, size_t len)
{
    char k[64];
    if (len >= sizeof k)
        return false;
    for (size_t i = 0; i < len; i++)
        k[i] = key[i] == '-' ? '_' : key[i];
    k[len] = '\0';
    for (size_t i = 0; origin_keys[i]; i++)
        if (strcmp(origin_keys[i], k) == 0)
            return true;
    return false;
}

static void usage(FILE *out, const config_t *cfg)
{
    fprintf(out,
            "usage: origin --listen HOST:PORT [--workers N] [--key=value ...]\n"
            "\n"
            "A synthetic HTTP/1.1 origin. GET /any/path?size=N&cc=...&etag=auto&delay=MS ...\n"
            "serves a deterministic body; GET /.origin/stats reports per-path counters\n"
            "(?path=P one path, ?prefix=P the sums over the paths starting with P),\n"
            "POST /.origin/stats/reset clears them, GET /.origin/health answers ok.\n"
            "\nquery parameters: size status cc expires expires_in etag lm lm_ago vary sk ct\n"
            "  delay(ms) chunked age cookie nodate header=Name:Value (repeatable) r304=bare|foreign\n"
            "\nimages: GET /img/NAME.jpg|jpeg|png|webp|gif?width=800&height=600&quality=85\n"
            "  &frames=1 (gif) &damage=truncate|text|corrupt; /img/bomb.png claims 60000x60000\n"
            "\n  --%-22s %s\n"
            "\nsettings (`--key=value` or `--key value`; default in brackets):\n",
            "image-dir DIR", "serve DIR/NAME.EXT for /img/NAME.EXT when it exists [none]");
    for (const config_setting_t *s = config_settings; s->key; s++) {
        if (!origin_key(s->key, strlen(s->key)))
            continue;
        const char *def = s->def;
        if (strcmp(s->key, "listen") == 0)
            def = cfg->listen;
        else if (strcmp(s->key, "access_log") == 0)
            def = cfg->access_log;
        char flag[64];
        snprintf(flag, sizeof flag, "%s", s->key);
        for (char *f = flag; *f; f++)
            *f = *f == '_' ? '-' : *f;
        fprintf(out, "  --%-22s %s [%s]\n", flag, s->doc, def);
    }
}

/* Turn `--key value` into `--key=value` and refuse keys that are not
 * server settings. Returns the new argv (argv[0] kept; caller frees the
 * array and its strings from index 1), or NULL with a message in err;
 * *help is set when --help was asked for; --image-dir is taken out into
 * *image_dir (caller frees). */
static char **normalise_args(int argc, char **argv, int *outc, bool *help, char **image_dir,
                             char *err, size_t errlen)
{
    char **out = calloc((size_t)argc + 1, sizeof *out);
    int n = 0;
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    out[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "%s: expected --key=value or --key value (see --help)", a);
            goto fail;
        }
        const char *eq = strchr(a, '=');
        size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (klen == 9 && (memcmp(a + 2, "image-dir", 9) == 0 || memcmp(a + 2, "image_dir", 9) == 0)) {
            const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            free(*image_dir);
            if (!v || !(*image_dir = strdup(v))) {
                snprintf(err, errlen, "%s: expected a directory", a);
                goto fail;
            }
            continue;
        }
        if (!origin_key(a + 2, klen)) {
            snprintf(err, errlen, "%.*s: not an origin setting (see --help)", (int)(klen + 2), a);
            goto fail;
        }
        if (eq) {
            out[n] = strdup(a);
        } else {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "%s: expected a value", a);
                goto fail;
            }
            size_t l = strlen(a) + strlen(argv[i + 1]) + 2;
            out[n] = malloc(l);
            if (out[n])
                snprintf(out[n], l, "%s=%s", a, argv[++i]);
        }
        if (!out[n++]) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    *outc = n;
    return out;
fail:
    for (int i = 1; i < n; i++)
        free(out[i]);
    free(out);
    return NULL;
}

/* --- /.origin/: health, counters --- */

static void send_json(http_conn_t *c, int status, buf_t *b)
{
    http_resp_start(c, status, NULL);
    http_resp_header(c, "Content-Type", "application/json", 16);
    http_resp_header(c, "Cache-Control", "no-store", 8);
    http_resp_header(c, "Date", http_server_date(http_conn_server(c)), 29);
    http_resp_end_head(c, (int64_t)b->len);
    size_t len = b->len;
    char *data = buf_steal(b);
    if (len)
        http_resp_write(c, data, len, free, data);
    else
        free(data);
    http_resp_finish(c);
}

/* GET /.origin/stats: every path, ?path=P one path, ?prefix=P the sums over
 * the paths starting with P (what a poller wants: one short answer however
 * many paths there are). */
static void stats_get(http_conn_t *c, const char *q, size_t qlen, origin_app_t *app)
{
    char *path = NULL, *prefix = NULL;
    int has_path = origin_query_get(q, qlen, "path", &path);
    int has_prefix = origin_query_get(q, qlen, "prefix", &prefix);
    const char *bad = has_path == -EINVAL              ? "bad parameter 'path'\n"
                      : has_prefix == -EINVAL          ? "bad parameter 'prefix'\n"
                      : has_path > 0 && has_prefix > 0 ? "give either 'path' or 'prefix', not both\n"
                      : has_prefix > 0 && !prefix[0]   ? "empty 'prefix' (every path: no parameter)\n"
                                                       : NULL;
    buf_t b;
    buf_init(&b, 0);
    int rc = has_path < 0 ? has_path : has_prefix < 0 ? has_prefix : 0;
    if (!bad && !rc)
        rc = has_path     ? origin_stats_path_json(app->stats, path, strlen(path), &b)
             : has_prefix ? origin_stats_prefix_json(app->stats, prefix, strlen(prefix), &b)
                          : origin_stats_json(app->stats, &b);
    if (bad)
        http_resp_simple(c, 400, NULL, "text/plain", bad, strlen(bad));
    else if (rc)
        http_resp_simple(c, 500, NULL, "text/plain", "out of memory\n", 14);
    else
        send_json(c, 200, &b);
    buf_free(&b);
    free(path);
    free(prefix);
}

static void control(http_conn_t *c, http_req_t *req, origin_app_t *app)
{
    const char *path = req->target;
    size_t plen = req->path_len;
    const char *q = plen < req->target_len ? req->target + plen + 1 : "";
    size_t qlen = plen < req->target_len ? req->target_len - plen - 1 : 0;
    bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;
    buf_t b;
    buf_init(&b, 0);
#define IS(lit) (plen == sizeof(lit) - 1 && memcmp(path, lit, plen) == 0)
    if (IS("/.origin/health") && get) {
        http_resp_simple(c, 200, "Cache-Control: no-store\r\n", "text/plain", "ok\n", 3);
    } else if (IS("/.origin/stats") && get) {
        stats_get(c, q, qlen, app);
    } else if (IS("/.origin/stats/reset") && req->method == HTTP_POST) {
        origin_stats_reset(app->stats);
        buf_puts(&b, "{\"reset\":true}\n");
        send_json(c, 200, &b);
    } else if (IS("/.origin/health") || IS("/.origin/stats") || IS("/.origin/stats/reset")) {
        http_resp_simple(c, 405, NULL, "text/plain", "method not allowed\n", 19);
    } else {
        http_resp_simple(c, 404, NULL, "text/plain", "no such control path\n", 21);
    }
#undef IS
    buf_free(&b);
}

static void on_request(http_conn_t *c, http_req_t *req, void *ud)
{
    origin_app_t *app = ud;
    if (req->path_len >= 9 && memcmp(req->target, "/.origin/", 9) == 0) {
        control(c, req, app);
        return;
    }
    uint64_t n = origin_stats_request(app->stats, req->target, req->path_len, req->method);
    origin_serve(c, req, app->stats, n);
}

/* --- worker hooks: one http_server per worker --- */

static void *w_init(worker_t *w, void *ud)
{
    origin_app_t *app = ud;
    const config_t *cfg = &app->cfg;
    http_server_opts_t o;
    http_server_opts_from_config(&o, cfg);
    o.on_request = on_request;
    o.ud = app;
    return http_server_new(w, &o);
}

static void w_stopping(worker_t *w, void *state, void *ud) { http_server_stop(state); }
static void w_close(worker_t *w, void *state, void *ud) { http_server_close_all(state); }
static void w_fini(worker_t *w, void *state, void *ud) { http_server_free(state); }

/* The one origin of this process (the connection hook has no user data). */
static origin_app_t app;

static void w_connection(worker_t *w, uv_tcp_t *listener)
{
    http_server_accept(worker_state(w), listener);
    origin_stats_connection(app.stats);
}

int main(int argc, char **argv)
{
    char err[512];
    int rc = 2, nargc = 0;
    bool help = false;
    worker_group_t *g = NULL;
    config_defaults(&app.cfg, CONFIG_ALL);
    /* An origin's defaults differ from a cache node's: its own port, and
     * no access log (load tests would measure the logging). */
    snprintf(app.cfg.listen, sizeof app.cfg.listen, "127.0.0.1:8081");
    snprintf(app.cfg.access_log, sizeof app.cfg.access_log, "off");
    char **nargv = normalise_args(argc, argv, &nargc, &help, &app.image_dir, err, sizeof err);
    if (!nargv) {
        fprintf(stderr, "origin: %s\n", err);
        return 2;
    }
    if (help) {
        usage(stdout, &app.cfg);
        rc = 0;
        goto out;
    }
    if (config_from_args(&app.cfg, CONFIG_ALL, "origin", nargc, nargv, err, sizeof err)) {
        fprintf(stderr, "origin: %s\n", err);
        goto out;
    }
    rc = 1;
    origin_image_setup(app.image_dir);
    if (log_open(&app.cfg))
        goto out;
    app.stats = origin_stats_new(ORIGIN_MAX_PATHS);
    if (!app.stats) {
        fprintf(stderr, "origin: out of memory\n");
        goto out_log;
    }
    worker_hooks_t hooks = {
        .init = w_init,
        .stopping = w_stopping,
        .close = w_close,
        .fini = w_fini,
        .on_connection = w_connection,
        .ud = &app,
    };
    if (worker_group_start(&g, app.cfg.listen, app.cfg.workers, &hooks, err, sizeof err)) {
        fprintf(stderr, "origin: %s\n", err);
        goto out_stats;
    }
    printf("listening on %s\n", worker_group_address(g));
    fflush(stdout);
    worker_group_run(g);
    worker_group_free(g);
    rc = 0;
out_stats:
    origin_stats_free(app.stats);
out_log:
    origin_image_shutdown();
    log_close();
out:
    free(app.image_dir);
    for (int i = 1; i < nargc; i++)
        free(nargv[i]);
    free(nargv);
    return rc;
}
