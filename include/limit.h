/* limit: rate limiting and per-client connection caps on a node's
 * request path (issue 12; core/limit.c). The buckets and counts live in
 * one table the workers share (include/ratelimit.h); the arithmetic is
 * policies/policy_ratelimit.c.
 *
 * A request is admitted in the LIMIT step, before the store is read, by
 * the bucket of its client under its rule's rate_limit (or the node's),
 * at the cost of a hit. Once it is known to go upstream (MISS, VALIDATE,
 * PASS, DERIVE) the rest of miss_cost is charged, and the next request
 * waits for it. A refused request gets 429 with Retry-After and the
 * RateLimit fields, or, from the penalty box with penalty_action = close,
 * its connection closed. */
#ifndef CDN_LIMIT_H
#define CDN_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "proxy_state.h"

typedef struct preq preq_t;

/* The shared table (rate_table_size; the CIDR lists and counters are the
 * configuration generation's, include/proxy_conf.h). Returns 0
 * or a negative errno with err set. */
int limit_setup(proxy_t *px, char *err, size_t errlen);
void limit_teardown(proxy_t *px);
/* http_server_opts_t.on_accept / on_conn_close: the per-client connection
 * cap (ud is the worker's proxy_worker_t). */
int limit_on_accept(void *ud, const struct sockaddr *peer, unsigned char tag[16]);
void limit_on_conn_close(void *ud, const unsigned char tag[16]);
/* LIMIT: true when p may go on; false when it was refused (answered 429,
 * or its connection closed). */
bool limit_admit(preq_t *p);
/* p goes upstream (or transforms): charge the rest of miss_cost. */
void limit_charge(preq_t *p);

#endif
