/* stream: a client request waiting on a fetch (its own or one it joined)
 * and the streaming of that fetch's response to it (core/stream.c). */
#ifndef CDN_STREAM_H
#define CDN_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "fetch.h"

typedef struct preq preq_t;

/* Miss path for a cacheable request: join or start the fetch for its key
 * (revalidating p->stored when set). */
void stream_fill(preq_t *p);
/* Wait on the fetch of key (NULL: a private one) for p's response: join
 * it (then p catches up at once; returns NULL) or create it (*created;
 * returns it: the caller must drive it). NULL also when out of memory
 * (p was answered 503). */
fetch_t *stream_join(preq_t *p, const uint8_t key[16], bool *created);
/* Forward p on its own, through a private fetch (uncacheable request, a
 * response that could not be shared with it, a client asking for
 * validation). fill: GET upstream and store the result. */
void stream_private(preq_t *p, bool fill);
/* Start a background revalidation of p->stored unless one is in flight
 * (stale-while-revalidate): no client waits on it. */
void stream_background(preq_t *p);

#endif
