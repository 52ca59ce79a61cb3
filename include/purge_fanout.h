/* purge_fanout: passing a purge on to the other nodes (core/purge_fanout.c).
 *
 * A node that accepted a purge from a client sends it, once, to its peers:
 * first its shields (the `shields` setting), then `purge_peers`, so that no
 * edge refills from a shield that still holds the old object. The copy
 * carries `CDN-Purge-Forwarded`, and a node never passes on a purge that
 * carries it. A peer that fails is retried with a doubling backoff for
 * `purge_retry_for`, each failure logged; the client's answer lists every
 * peer's first outcome (confirmed, or failed and retrying). */
#ifndef CDN_PURGE_FANOUT_H
#define CDN_PURGE_FANOUT_H

#include <stddef.h>

#include "proxy_state.h"
#include "purge_req.h"

/* The header a passed-on purge carries (its value: the sending node). */
#define PURGE_FORWARDED_HEADER "CDN-Purge-Forwarded"

/* Called once every peer answered its first attempt (peers[n]: valid only
 * during the call). */
typedef void (*purge_fanout_fn)(void *ctx, const purge_peer_result_t *peers, size_t n);

/* Send json (a POST /.cdn/purge body, copied) to pw's node's peers; first()
 * is called on pw's loop when every first attempt is over (at once when
 * there are no peers). Returns 0 or -ENOMEM (first is then not called). */
int purge_fanout_start(proxy_worker_t *pw, const char *json, size_t len, purge_fanout_fn first, void *ctx);
/* Stop every fan-out of the worker (shutdown): first() of those still
 * waiting is called with what is known. */
void purge_fanout_close_all(proxy_worker_t *pw);
/* The node's peers in fan-out order, from its settings: "host:port"
 * strings into names (each < 256 bytes); returns how many (at most max)
 * and how many of them, first, are shields; -EINVAL with err on a bad
 * entry. */
int purge_fanout_peers(const config_t *cfg, char names[][256], size_t max, size_t *nshields, char *err, size_t errlen);

#endif
