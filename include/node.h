/* node: the main program of a caching node, edge or shield: settings
 * (defaults, -c FILE, --key=value), the cache, the workers, and a clean
 * stop: SIGTERM drains (health 503 for drain_delay, then in-flight
 * requests get drain_timeout), SIGINT skips the delay, SIGHUP reloads;
 * the store's writer is flushed before exit 0. */
#ifndef CDN_NODE_H
#define CDN_NODE_H

/* Run a node of kind prog (CONFIG_EDGE / CONFIG_SHIELD) named progname in
 * messages. Returns the process exit status: 0 after a clean stop (or
 * --help), 1 when start-up failed, 2 for bad settings. */
int node_main(unsigned prog, const char *progname, int argc, char **argv);

#endif
