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

/* A request of pw starts: the generation it reads (valid until
 * reload_conf_release). On pw's worker; no atomic operation. */
proxy_conf_t *reload_conf_hold(proxy_worker_t *pw);
/* That request's last reference went (on pw's worker, as always). */
void reload_conf_release(proxy_worker_t *pw, proxy_conf_t *c);
/* Drop the references still held for retired generations (the worker's end). */
void reload_conf_uses_free(proxy_worker_t *pw);

#endif
