/* purge: the purge API on every node's serving port (core/purge.c).
 *
 *   PURGE /path?query            one URL of the request's Host (every Vary
 *                                variant); `Soft-Purge: 1` marks it stale
 *   POST /.cdn/purge  {"urls": [...], "prefixes": [...], "tags": [...],
 *                      "all": bool, "soft": bool, "host": "..."}
 *
 * Both need `Authorization: Bearer <token>` (purge_token_file): 401 when it
 * is missing or wrong, 403 when no token is configured (purging is off),
 * 400 naming the problem for a bad body; nothing is purged in any of
 * those cases. A PURGE is never forwarded upstream. The answer is JSON with
 * what this node purged. */
#ifndef CDN_PURGE_H
#define CDN_PURGE_H

#include <stdbool.h>

typedef struct preq preq_t;

/* Is p a purge request (PURGE method, or a /.cdn/purge path)? */
bool purge_is_request(const preq_t *p);
/* Handle p: answer at once (errors) or once the store has applied the
 * purge. p stays referenced until it is answered. */
void purge_start(preq_t *p);

#endif
