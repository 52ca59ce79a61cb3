/* proxy: the caching reverse proxy engine both tiers run.
 *
 * Owns the node-wide parts (store, collapsing table, policy options) and
 * provides the worker hooks that give every worker its HTTP server,
 * upstream client and store reader. */
#ifndef CDN_PROXY_H
#define CDN_PROXY_H

#include <stddef.h>

#include "config.h"
#include "worker.h"

typedef struct proxy proxy_t;

/* Open the cache and build the engine from cfg (which must outlive it).
 * Returns 0, or -1 with a message in err. */
int proxy_new(proxy_t **out, const config_t *cfg, char *err, size_t errlen);
/* The command line a SIGHUP reads again (-c FILE, then the flags, as
 * config_from_args did at start); argv must outlive the proxy. Without
 * it, a reload reads the defaults only. */
void proxy_set_reload_args(proxy_t *px, const char *progname, int argc, char **argv);
/* The hooks to start the worker group with; valid for the proxy's life. */
const worker_hooks_t *proxy_hooks(proxy_t *p);
/* The workers run: /.cdn/health answers 200 from now on. */
void proxy_set_serving(proxy_t *px);
/* Close the cache (after the worker group stopped) and free. */
void proxy_free(proxy_t *p);

#endif
