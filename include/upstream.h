/* upstream: HTTP requests to shields and origins through libcurl's multi
 * socket interface, driven by a worker's libuv loop.
 *
 * One upstream_t per worker; every callback runs on that worker's thread.
 * libcurl keeps a pool of connections per upstream_t, so requests to the
 * same origin reuse them. Nothing here blocks: no curl_easy_perform. */
#ifndef CDN_UPSTREAM_H
#define CDN_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http_fields.h"

typedef struct upstream upstream_t;
typedef struct upstream_req upstream_req_t;

enum {
    UPSTREAM_OK = 0,
    UPSTREAM_ECONNECT = -1,   /* could not connect (refused, unreachable, DNS) */
    UPSTREAM_ETIMEOUT = -2,   /* connect or total timeout */
    UPSTREAM_EPROTO = -3,     /* malformed or oversized response */
    UPSTREAM_EIO = -4,        /* connection broke mid-response */
    UPSTREAM_EABORT = -5,     /* a callback asked to stop */
};

/* Return from on_body to pause the transfer; resume with upstream_pause(false).
 * The bytes of the call that returned it were consumed. */
#define UPSTREAM_PAUSE 1

/* Header hygiene (RFC 9110 5.5, RFC 9112 2.2, 5.1, 5.2), applied to every
 * upstream header block, interim ones included, before any callback sees
 * it: so neither clients nor stored objects ever get what follows.
 *   - In values, CR, LF, NUL and every other control character (0x00-0x1F
 *     but HTAB, and 0x7F) is replaced with SP, then the value is trimmed.
 *     (libcurl itself refuses a NUL anywhere in a header: UPSTREAM_EPROTO.)
 *   - An obs-fold line (starting with SP/HTAB) continues the previous value,
 *     joined with one SP; one before the first field is dropped.
 *   - Whitespace between a field name and its colon is removed; a name
 *     that is then empty or not a token fails the response (UPSTREAM_EPROTO,
 *     a 502 to clients): there is no safe way to pass such a field on. So
 *     does a line without a colon, "HTTP/..." in the middle of a block
 *     included. */
typedef struct upstream_cbs {
    /* The final response's status and headers (hop-by-hop fields included;
     * cleaned as above). hdrs is valid during the call only. Return 0, or -1
     * to abort (on_done then reports UPSTREAM_EABORT). */
    int (*on_headers)(void *ctx, int status, const http_fields_t *hdrs);
    /* Body bytes, de-chunked. Return 0, UPSTREAM_PAUSE, or -1 to abort. */
    int (*on_body)(void *ctx, const char *p, size_t n);
    /* The end: err is UPSTREAM_OK or a negative code; msg describes it.
     * The request is freed after this returns. */
    void (*on_done)(void *ctx, int err, const char *msg);
    /* An interim (1xx) response before the final one, e.g. 103 Early Hints;
     * 101 is never reported. May be NULL (interim responses are skipped).
     * Same contract as on_headers; may be called several times. */
    int (*on_interim)(void *ctx, int status, const http_fields_t *hdrs);
} upstream_cbs_t;

typedef struct upstream_opts {
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms;          /* whole request; 0 = none */
    size_t max_header_size;       /* response header block bound */
    unsigned max_idle_conns;      /* connection cache size (0 = 64) */
} upstream_opts_t;

/* Process-wide libcurl set-up and tear-down: call once from main, before
 * any thread starts / after every thread ended. */
void upstream_global_init(void);
void upstream_global_cleanup(void);
/* Create the upstream client of one loop. Returns NULL on failure. */
upstream_t *upstream_new(uv_loop_t *loop, const upstream_opts_t *opts);
/* Cancel every request (no callbacks) and close the loop handles; free
 * with upstream_free after the loop has run the close callbacks. */
void upstream_close(upstream_t *u);
void upstream_free(upstream_t *u);

/* Start a request. url is absolute (http://host:port/path?query); hdrs are
 * sent as given (the caller strips hop-by-hop fields and sets Host if it
 * should differ from the URL's); body/len is the request body (copied).
 * HEAD requests expect no body. Returns the request (owned by u until
 * on_done) or NULL, in which case no callback is ever called. */
upstream_req_t *upstream_start(upstream_t *u, const char *method, const char *url,
                               const http_fields_t *hdrs, const void *body, size_t len,
                               const upstream_cbs_t *cbs, void *ctx);
/* The header handling of a response without a transfer, for tests and
 * fuzzing (tests/fuzz/fuzz_response_head.c): lines[0, n) as libcurl's
 * header callback delivers them (each with its line end; the status line
 * of every block, interim ones included; the empty line ending a block;
 * trailers after the final head), cleaned as above, bounded by
 * opts->max_header_size (the rest of opts is not used) and passed to
 * cbs->on_interim and cbs->on_headers (on_body and on_done are not
 * called). Stops at the first line refused. Returns what on_done would
 * get if the transfer ended there: UPSTREAM_OK when the final head was
 * taken, else UPSTREAM_EPROTO (malformed, too large, or no final head)
 * or UPSTREAM_EABORT (a callback returned -1), its words in msg. */
int upstream_parse_head(const upstream_opts_t *opts, const http_slice_t *lines, size_t n, const upstream_cbs_t *cbs,
                        void *ctx, char *msg, size_t msglen);
/* Stop a request; no callback is called afterwards. Safe inside callbacks. */
void upstream_cancel(upstream_req_t *r);
/* Pause or resume receiving. Resuming may deliver buffered body at once. */
void upstream_pause(upstream_req_t *r, bool paused);
/* Number of requests in flight. */
unsigned upstream_active(const upstream_t *u);
/* Text for an error code. */
const char *upstream_strerror(int err);

#endif
