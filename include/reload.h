/* reload: apply a re-read configuration to a running node (core/reload.c).
 * Engine-internal, used by core/proxy.c. */
#ifndef CDN_RELOAD_H
#define CDN_RELOAD_H

#include <stdbool.h>

#include "proxy_state.h"

/* SIGHUP, on the main thread: read the configuration again (px->argv),
 * log what changed or why it was refused, and publish it to the workers. */
void reload_run(proxy_t *px);
/* Start worker 0's health checker for pw->conf's primary pool, when that
 * pool is checked (shields, or a shield's origins). */
void reload_health_start(proxy_worker_t *pw);
/* Free the checkers a reload closed: those closed before the previous
 * call (all: every one, at the worker's end). On pw's worker. */
void reload_retired_free(proxy_worker_t *pw, bool all);

#endif
