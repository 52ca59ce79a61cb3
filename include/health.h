/* health: active health checks of a pool's targets (the shields of an
 * edge, the origins of a shield), on one worker's loop.
 *
 * Every interval, each target not already being checked gets a GET of its
 * base URL + path, bounded by the timeout. A status below 500 (but 408 and
 * 429) counts as up: the server answers. Results go to the pool, which all
 * workers read; passive signals from requests go there too. */
#ifndef CDN_HEALTH_H
#define CDN_HEALTH_H

#include <stdint.h>
#include <uv.h>

#include "pool.h"

typedef struct health health_t;

/* Start checking pool (which must outlive the checker) on loop, first
 * check at once. Returns NULL on failure. */
health_t *health_start(uv_loop_t *loop, pool_t *pool, const char *path, uint64_t interval_ms, uint64_t timeout_ms);
/* Cancel checks in flight and close the loop handles (shutdown); free with
 * health_free once the loop has run the close callbacks. */
void health_close(health_t *h);
void health_free(health_t *h);

#endif
