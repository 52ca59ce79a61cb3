/* request_id: the id that names one request in the access logs of every
 * tier it crosses.
 *
 * A client's X-Request-Id is kept only when the TCP peer is a trusted
 * proxy (trusted_proxies: an edge in front of a shield, a load balancer in
 * front of an edge) and the value is sane; otherwise the node makes one.
 * The id is stored on the connection (http_conn_set_request_id), written
 * in the access log line, and sent upstream as X-Request-Id in place of
 * whatever the client sent, so one id follows a request through the tiers. */
#ifndef CDN_REQUEST_ID_H
#define CDN_REQUEST_ID_H

#include <stdbool.h>
#include <stddef.h>

#include "http_server.h"
#include "policy_ratelimit.h"

/* Longest id kept from a client (bytes). */
#define REQUEST_ID_MAX 128
/* Length of a generated id: 16 random bytes as lowercase hex. */
#define REQUEST_ID_GEN_LEN 32

/* True when p[0, n) may be used as an id: 1..REQUEST_ID_MAX bytes of
 * letters, digits and - _ . : + / = @ ~ (no space, quote, backslash or
 * control byte: it goes into log lines and upstream headers as is). */
bool request_id_sane(const char *p, size_t n);
/* Write a fresh id (REQUEST_ID_GEN_LEN hex chars and a NUL) into out.
 * A per-thread generator seeded once from getrandom(2): no syscall per id. */
void request_id_generate(char out[REQUEST_ID_GEN_LEN + 1]);
/* Decide the id of c's current request req: the client's X-Request-Id
 * when the peer is in trusted and there is exactly one sane value, stored
 * on c; otherwise c generates one when it is first asked for it
 * (http_conn_request_id), so a request nobody logs or forwards costs none. */
void request_id_recv(http_conn_t *c, const http_req_t *req, const policy_rl_cidrs_t *trusted);

#endif
