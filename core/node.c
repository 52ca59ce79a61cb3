/* node: the main program of an edge or a shield (see include/node.h).
 * Prints `listening on HOST:PORT` once the node accepts connections. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "node.h"
#include "log.h"
#include "proxy.h"
#include "upstream.h"
#include "worker.h"

/* mkdir -p: the cache directory's parents may not exist yet (./var/cache).
 * Returns 0 or the negative errno of mkdir(2). */
static int make_dirs(const char *path)
{
    char tmp[sizeof(((config_t *)0)->cache_dir)];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST)
        return -errno;
    return 0;
}

int node_main(unsigned prog, const char *progname, int argc, char **argv)
{
    static config_t cfg;
    char err[1024];
    if (argc >= 2 && strcmp(argv[1], "--check-config") == 0) {
        if (argc < 3 || argc > 4) {
            fprintf(stderr, "usage: %s --check-config FILE [URL]\n", progname);
            return 2;
        }
        return config_check(prog, progname, argv[2], argc == 4 ? argv[3] : NULL);
    }
    config_defaults(&cfg, prog);
    int rc = config_from_args(&cfg, prog, progname, argc, argv, err, sizeof err);
    if (rc > 0)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", progname, err);
        config_free(&cfg);
        return 2;
    }
    if (log_open(&cfg))
        return 1;
    if ((rc = make_dirs(cfg.cache_dir))) {
        fprintf(stderr, "%s: cache_dir %s: %s\n", progname, cfg.cache_dir, strerror(-rc));
        return 1;
    }
    upstream_global_init();
    proxy_t *px = NULL;
    if (proxy_new(&px, &cfg, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", progname, err);
        upstream_global_cleanup();
        return 1;
    }
    proxy_set_reload_args(px, progname, argc, argv); /* SIGHUP reads them again */
    worker_group_t *g = NULL;
    if (worker_group_start(&g, cfg.listen, cfg.workers, proxy_hooks(px), err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", progname, err);
        proxy_free(px);
        upstream_global_cleanup();
        return 1;
    }
    log_info("%s (%s): %u workers, cache %s, origin %s", cfg.name, cfg.region, worker_group_count(g),
             cfg.cache_dir, cfg.origin);
    worker_group_set_drain(g, cfg.drain_delay_ms, cfg.drain_timeout_ms);
    proxy_set_serving(px);
    printf("listening on %s\n", worker_group_address(g));
    fflush(stdout);
    worker_group_run(g);
    /* Commits every queued store operation and syncs the environment. */
    proxy_free(px); /* the store's last callbacks may still post to the workers */
    worker_group_free(g);
    log_info("store flushed; exiting");
    config_free(&cfg);
    upstream_global_cleanup();
    log_close();
    return 0;
}
