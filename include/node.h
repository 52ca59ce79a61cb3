/* node: the main program of a caching node, edge or shield: settings
 * (defaults, -c FILE, --key=value), the cache, the workers, and a clean
 * stop on SIGTERM/SIGINT. */
#ifndef CDN_NODE_H
#define CDN_NODE_H

/* Run a node of kind prog (CONFIG_EDGE / CONFIG_SHIELD) named progname in
 * messages. Returns the process exit status: 0 after a clean stop (or
 * --help), 1 when start-up failed, 2 for bad settings. */
int node_main(unsigned prog, const char *progname, int argc, char **argv);

#endif
