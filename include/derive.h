/* derive: making an image variant the store cannot answer (issue 11;
 * core/derive.c). Every request for one missing variant waits on one
 * fetch (the variant's, in the collapsing table like any other); the
 * request that created it starts a derivation, which drives it:
 *
 *   SOURCE   the source's bytes: from the store when the source there may
 *            be served, else through the source's own fetch (joined or
 *            started: edge cache, shield, origin; the source is stored as
 *            itself). A source that is no image, or an upstream error, is
 *            relayed as it is; one over the limits gets 422.
 *   REUSE    a stored variant made from this very source response (its
 *            source was evicted or revalidated meanwhile) is published
 *            without a transform.
 *   QUEUE    the transform goes to the bounded thread pool; a full queue
 *            answers 503 with Retry-After at once.
 *   PUBLISH  on the owner worker: the variant's head and bytes go to every
 *            waiter, and it is stored next to its source (unless the
 *            source was not storable; then it is not shared either).
 *
 * A derivation outlives the request that started it, like a fill job. */
#ifndef CDN_DERIVE_H
#define CDN_DERIVE_H

#include <stdbool.h>

#include "proxy_state.h"

/* A variant fetch finished with this error: the source could not be
 * shared with this derivation; every waiter derives on its own. */
#define DERIVE_EPRIVATE (-7001)

typedef struct preq preq_t;

/* p (state FETCH, p->img set after LOOKUP) waits for its variant: joins
 * the derivation under way, or starts one. private_: one of its own,
 * from a source fetched for it alone (the client asked for validation,
 * a bypass rule, or a shared source could not be used). */
void derive_start(preq_t *p, bool private_);
/* Abandon every derivation of the worker (shutdown): their waiters get an
 * error; a transform still running finishes on its own and is dropped. */
void derive_close_all(proxy_worker_t *pw);
/* Start the transform pool and libvips when a rule has image = on (and
 * load the signing key). Returns 0 or a negative errno with err set. */
int derive_setup(proxy_t *px, char *err, size_t errlen);
/* Stop the pool (queued transforms are dropped) and libvips. */
void derive_teardown(proxy_t *px);

#endif
