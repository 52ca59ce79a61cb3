/* edge_env: an origin and an edge in front of it, for the edge tests. */
#ifndef CDN_TEST_EDGE_ENV_H
#define CDN_TEST_EDGE_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

typedef struct edge_env {
    th_proc_t *origin;
    th_proc_t *edge;
    const char *o;      /* origin HOST:PORT */
    const char *e;      /* edge HOST:PORT */
    char *dir;          /* cache directory */
} edge_env_t;

/* Start bin/edge in front of origin_addr with its cache in dir, plus extra
 * `--key=value` args (NULL-terminated, may be NULL). */
th_proc_t *edge_start(const char *origin_addr, const char *dir, const char *const extra[]);
/* Origin + edge with a fresh cache directory. */
void edge_env_start(edge_env_t *env, const char *const extra[]);
/* The Host every edge test sends: the edge's own address changes across
 * restarts (ephemeral ports), and the host is part of the cache key. */
#define EDGE_HOST "cdn.test"
/* A request to addr with Host: EDGE_HOST plus extra header lines (may be
 * NULL); NULL when no response came back. */
th_resp_t *edge_req(const char *addr, const char *method, const char *target, const char *extra,
                    const void *body, size_t len);
/* GET through the edge; asserts a response came back. */
th_resp_t *edge_get(const edge_env_t *env, const char *target);
/* True when the response's Cache-Status contains needle. */
bool cs_has(th_resp_t *r, const char *needle);
/* Poll GET target until its Cache-Status contains needle (bounded); the
 * last response is freed. For effects with no event to wait on (a commit
 * by the store's writer thread, expiry). */
bool edge_wait_cs(const edge_env_t *env, const char *target, const char *needle, int timeout_ms);
/* The same, returning the first response whose Cache-Status has needle
 * (the caller frees it), or NULL after timeout_ms. */
th_resp_t *edge_poll_cs(const edge_env_t *env, const char *target, const char *needle, int timeout_ms);
/* The same against the edge at addr (one of several, say). */
th_resp_t *edge_poll_cs_at(const char *addr, const char *target, const char *needle, int timeout_ms);

/* The value the origin's echo (echo=1) shows for request header name ("" if
 * it did not reach the origin), into out[n]. */
void edge_echoed(th_resp_t *r, const char *name, char *out, size_t n);

/* Write token to a file only its owner may read (a fresh one in the
 * test's temporary directory) and put the `--purge-token-file=PATH` flag
 * naming it in out[cap]; returns out. */
const char *edge_token_flag(const char *token, char *out, size_t cap);

#endif
