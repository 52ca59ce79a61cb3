/* harness: what every integration test uses to run the real binaries and
 * talk to them on the wire.
 *
 * Processes: th_spawn() starts $CDN_BIN/<bin>, waits (bounded) for its
 * `listening on HOST:PORT` line and sends its stderr to a log file in the
 * test's temporary directory. When a test fails (or crashes), the tail of
 * every log is printed; processes still running when the test ends are
 * stopped, and the kernel kills them if the test process dies first
 * (PR_SET_PDEATHSIG), so no orphan outlives a test. Call th_spawn from the
 * test's main thread only (the death signal follows the spawning thread).
 *
 * HTTP: a small blocking client whose every wait is bounded (TH_TIMEOUT_MS),
 * parsing responses with llhttp. Helpers that can fail return NULL / -1 /
 * false and say why in th_last_error(), so they are usable from
 * th_parallel threads; assert on the main thread.
 *
 * Synchronisation: wait on readiness (th_wait_until), never on sleeps. */
#ifndef CDN_TEST_HARNESS_H
#define CDN_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http_fields.h"

/* Bound on every wait: start-up, connect, each response, stop. */
#define TH_TIMEOUT_MS 10000

typedef struct th_proc th_proc_t;
typedef struct th_conn th_conn_t;

/* One response (or, from th_raw, whatever came back). Owned by the
 * caller; free with th_resp_free. */
typedef struct th_resp {
    int status;              /* 0 when no complete status line was parsed */
    uint8_t http_major, http_minor;
    bool keep_alive;         /* llhttp_should_keep_alive: the server may reuse the connection */
    bool chunked;            /* the body came with chunked framing */
    bool complete;           /* the whole message was parsed */
    bool closed;             /* the peer closed the connection (th_raw; th_read_response at EOF) */
    http_fields_t headers;   /* response headers in order, trailers excluded */
    buf_t body;              /* the decoded body (chunk framing removed) */
    buf_t raw;               /* the bytes of this response as received (th_raw: all bytes) */
    char **_copies;          /* th_hdr results, freed with the response */
    size_t _ncopies;
} th_resp_t;

/* --- processes --- */

/* Start $CDN_BIN/bin with args (NULL-terminated, program name excluded; may
 * be NULL) and wait for its `listening on` line. Fails the test (with the
 * log tail) if it does not come within TH_TIMEOUT_MS. The handle stays
 * valid until the test ends. */
th_proc_t *th_spawn(const char *bin, const char *const argv[]);
/* bin/origin on 127.0.0.1:0 with two workers. */
th_proc_t *th_origin(void);
/* bin/origin on 127.0.0.1:0 with extra `--key=value` args (NULL-terminated). */
th_proc_t *th_origin_args(const char *const argv[]);
/* "HOST:PORT" the process printed; valid while p is. */
const char *th_addr(const th_proc_t *p);
/* Process id (for tests that signal it themselves). */
int th_pid(const th_proc_t *p);
/* SIGINT (a node's stop without its drain delay), a second SIGINT (stop
 * now) after 5 s, SIGKILL after TH_TIMEOUT_MS more; reap and return the
 * exit status: 0..255 from exit(), 128 + N when killed by signal N. A
 * non-zero status prints the log tail. Idempotent: later calls return the
 * same. */
int th_stop(th_proc_t *p);
/* Send sig to p unless it has been reaped (SIGTERM to drain, SIGHUP...). */
void th_signal(th_proc_t *p, int sig);
/* Wait up to timeout_ms for p to exit on its own; its exit status (as
 * th_stop returns it), or -1 while it still runs. */
int th_wait_exit(th_proc_t *p, int timeout_ms);
/* SIGKILL and reap. */
void th_kill9(th_proc_t *p);
/* Path of p's stderr log (to grep in tests); valid until the test ends. */
const char *th_log_path(const th_proc_t *p);
/* Lines of p's log that contain needle. */
int th_log_count(const th_proc_t *p, const char *needle);
/* Wait (bounded by TH_TIMEOUT_MS) until needle is in n lines of p's log:
 * the way to wait for an event a process logs (a health transition, say). */
bool th_wait_log(const th_proc_t *p, const char *needle, int n);
/* A fresh empty directory, removed when the test ends; owned by the
 * harness (do not free). */
char *th_tmpdir(void);

/* --- HTTP client --- */

/* Why the last failing call on this thread failed (static per thread). */
const char *th_last_error(void);
/* One request on a fresh connection (Host: addr and Connection: close are
 * added unless extra_headers has them; Content-Length when body != NULL).
 * extra_headers: "Name: v\r\n..." or NULL. HEAD is read without a body.
 * Returns NULL on connect/read failure or timeout. */
th_resp_t *th_request(const char *addr, const char *method, const char *target,
                      const char *extra_headers, const void *body, size_t len);
/* GET target: th_request(addr, "GET", target, NULL, NULL, 0). */
th_resp_t *th_get(const char *addr, const char *target);
/* Header value (first field named name), as a NUL-terminated copy owned by
 * r and valid until th_resp_free; NULL if absent. */
const char *th_hdr(th_resp_t *r, const char *name);
/* Number of header fields named name. */
size_t th_hdr_count(const th_resp_t *r, const char *name);
/* Free r and everything th_hdr returned for it (NULL is fine). */
void th_resp_free(th_resp_t *r);

/* A persistent connection (blocking socket); NULL on failure. */
th_conn_t *th_connect(const char *addr);
/* Write all of bytes; 0 or -1. */
int th_send(th_conn_t *c, const void *bytes, size_t len);
/* Parse exactly one response (a 1xx counts as one); bytes after it are
 * kept for the next call. head: the request was HEAD (no body follows).
 * NULL on error, timeout or close before a complete response. */
th_resp_t *th_read_response(th_conn_t *c, bool head);
/* Wait up to timeout_ms for the server to close the connection (EOF or
 * reset); bytes that arrive meanwhile are kept for th_read_response. */
bool th_conn_closed(th_conn_t *c, int timeout_ms);
/* Close the socket and free c (NULL is fine). */
void th_close(th_conn_t *c);
/* Send bytes on a new connection and collect everything received until the
 * peer closes or timeout_ms passes (r->closed tells which). The first
 * response in it is parsed into status/headers/body (status 0 if none).
 * NULL only when the connection could not be made. */
th_resp_t *th_raw(const char *addr, const void *bytes, size_t len, int timeout_ms);

/* --- raw origin (harness_raw.c) --- */

/* A tiny origin for responses bin/origin would never send (bare CR, NUL,
 * obs-fold, interim responses): a thread on 127.0.0.1:0 that answers each
 * of up to max_conns connections by reading one request (up to its blank
 * line), writing reply[0, len) as is (copied) and closing. After max_conns
 * connections it closes its listener, so further requests fail fast. Every
 * wait is bounded (TH_TIMEOUT_MS); the thread ends by itself when done or
 * idle that long. Fails the test if it cannot start. */
typedef struct th_raw_origin th_raw_origin_t;
th_raw_origin_t *th_raw_origin_start(const void *reply, size_t len, int max_conns);
/* The same, but each reply stops after its first hold_at bytes until
 * th_raw_origin_release (bounded wait), e.g. between an interim response
 * and the final one. */
th_raw_origin_t *th_raw_origin_start_held(const void *reply, size_t len, size_t hold_at, int max_conns);
/* Let one held reply go on (a release before the hold is kept for it). */
void th_raw_origin_release(th_raw_origin_t *o);
/* "127.0.0.1:PORT"; valid until th_raw_origin_stop. */
const char *th_raw_origin_addr(const th_raw_origin_t *o);
/* Connections accepted so far (counted before the reply is written, so a
 * client that has its answer sees it counted). */
int th_raw_origin_conns(th_raw_origin_t *o);
/* Stop the thread, join it and free o (NULL is fine). Origins a test
 * leaves running are stopped when the test process exits. */
void th_raw_origin_stop(th_raw_origin_t *o);

/* --- origin and bodies --- */

/* Requests the origin counted for path (query excluded), or -1 on error. */
long th_origin_requests(const char *origin_addr, const char *path);
/* Body bytes the origin sent for path, or -1 on error. */
long long th_origin_bytes(const char *origin_addr, const char *path);
/* Reset every origin counter (fails the test if the origin does not answer). */
void th_origin_reset(const char *origin_addr);
/* True when body[0, len) is exactly the origin's synthetic body of path
 * with size bytes. */
bool th_body_matches(const char *path, uint64_t size, const void *body, size_t len);
/* The X-Body-Checksum value of body[0, len) ("%016llx"), in out[17]. */
void th_checksum_hex(const void *body, size_t len, char out[17]);

/* --- concurrency and waiting --- */

/* Run fn(i, arg) for i in [0, n) on n threads released together by a
 * barrier (so the calls overlap), and join them. */
void th_parallel(int n, void (*fn)(int i, void *arg), void *arg);
/* Poll cond(arg) until it is true or timeout_ms passes; returns the last
 * result. For conditions with no event to wait on (counters, files). */
bool th_wait_until(bool (*cond)(void *), void *arg, int timeout_ms);
/* Milliseconds on a monotonic clock. */
int64_t th_now_ms(void);

#endif
