/* control: the node's own paths under /.cdn/ (health, metrics, status),
 * answered at RECV and never forwarded upstream. Purges are purge.c's.
 *
 * /.cdn/health is open to everyone: load balancers probe it. The others
 * tell an outsider how the node is built and loaded, so they are open
 * only to the node's own host (127.0.0.1, ::1) and the admin_allow CIDRs, judged on the TCP peer
 * (never on X-Forwarded-For, which a client writes itself); everyone
 * else gets 403. */
#ifndef CDN_CONTROL_H
#define CDN_CONTROL_H

#include <stdbool.h>

#include "preq.h"

/* Answer p when it is a control path (and end it). Returns true when
 * handled. */
bool control_request(preq_t *p);

#endif
