/* http_server: HTTP/1.1 server connections on a worker's loop (libuv + llhttp).
 *
 * One request at a time per connection: when a request is complete the
 * parser pauses and reading stops until its response is finished, then
 * pipelined bytes already read are parsed next. Responses are written in
 * order with backpressure: producers write while http_conn_pending() is
 * low and ask for a drain callback otherwise.
 *
 * Bounds (header block, URI, body) and timeouts come from the options;
 * violations get 400/408/413/414/431 and the connection is closed. */
#ifndef CDN_HTTP_SERVER_H
#define CDN_HTTP_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "http_fields.h"
#include "worker.h"

typedef struct http_conn http_conn_t;
typedef struct http_server http_server_t;

/* A parsed request; owned by the connection, valid until the response is
 * finished or the abort callback runs. */
typedef struct http_req {
    int method;                 /* llhttp_method_t */
    const char *method_name;    /* static string */
    char *target;               /* request target, NUL-terminated */
    size_t target_len;
    size_t path_len;            /* target[0, path_len) is the path; a query follows after '?' */
    http_fields_t hdrs;
    buf_t body;                 /* the whole request body (bounded by max_body_size) */
    uint8_t http_major, http_minor;
    bool keep_alive;
    bool is_head;
    uint64_t start_us;          /* when the first byte arrived */
    const char *client;         /* client IP text, valid for the connection's life */
} http_req_t;

typedef struct http_server_opts {
    size_t max_header_size, max_uri_size, max_body_size;
    uint64_t header_timeout_ms, idle_timeout_ms, send_timeout_ms;
    unsigned max_connections;   /* per worker */
    /* All the workers' connections together (0: no bound): a counter the
     * node shares between its servers. Borrowed, like error_headers. */
    unsigned max_connections_total;
    atomic_uint *conns_total;
    unsigned max_requests_per_connection; /* then Connection: close (0: no bound) */
    /* Slowloris: a request's head and body must arrive at this many bytes
     * a second on average, checked each second after the first two (0: off). */
    unsigned min_recv_rate;
    /* Header lines added to the errors the server itself answers (400, 408,
     * 413, 414, 431...), e.g. the node's Cache-Status; may be NULL. Borrowed:
     * must outlive the server. */
    const char *error_headers;
    /* Called on the worker thread with a complete request. The handler must
     * eventually finish the response (http_resp_finish) unless the abort
     * callback it set is called first. */
    void (*on_request)(http_conn_t *c, http_req_t *req, void *ud);
    /* Optional: asked for each accepted connection (the peer's address);
     * < 0 closes it at once, 0 admits it and on_conn_close will be called
     * with the tag it wrote when it closes, > 0 admits it with no call. */
    /* Optional: every response's end (finished, aborted, or an error the
     * server answered itself), before the access log line: its status,
     * outcome tag ("hit", "miss", ... as http_conn_set_log_tag set it;
     * "error", "aborted"; NULL when none was set) and duration from the
     * request's first byte. Body bytes: http_resp_bytes(c). */
    void (*on_done)(void *ud, http_conn_t *c, int status, const char *tag, uint64_t duration_us);
    int (*on_accept)(void *ud, const struct sockaddr *peer, unsigned char tag[16]);
    /* Optional: a connection was refused at accept (stopping, a max_connections
     * bound, or on_accept < 0), on the worker thread. */
    void (*on_refused)(void *ud);
    void (*on_conn_close)(void *ud, const unsigned char tag[16]);
    void *ud;
} http_server_opts_t;

/* Fill the bounds and timeouts of o from a node's settings (the other
 * fields are zeroed: set on_request, ud, error_headers). */
void http_server_opts_from_config(http_server_opts_t *o, const config_t *cfg);
/* The server's request parsing without a socket, for tests and fuzzing
 * (tests/fuzz/fuzz_request_head.c): data[0, len) as the bytes one client
 * connection sent, handed to the parser `piece` bytes at a time as reads
 * would (0: all at once), through the callbacks, header collection and
 * bounds (opts' size bounds; the rest is not used) a connection uses.
 * Each complete request is passed to on_request (req valid during the
 * call only; its client is "-"), in order. No 100 Continue is sent.
 * Returns 0 when every byte was taken (a request left incomplete at the
 * end is dropped), the status the server would answer at the first bad
 * request (400, 405, 413, 414, 417, 431; then it closes the connection),
 * or -ENOMEM. */
int http_parse_requests(const http_server_opts_t *opts, const char *data, size_t len, size_t piece,
                        void (*on_request)(http_req_t *req, void *ud), void *ud);
/* Create the server state of one worker. Owned by the caller (free with
 * http_server_free after the loop ended). */
http_server_t *http_server_new(worker_t *w, const http_server_opts_t *opts);
/* A reload: take o's timeouts and connection bounds (max_connections,
 * max_connections_total, max_requests_per_connection, min_recv_rate);
 * each applies from its next use. On the server's worker. */
void http_server_set_limits(http_server_t *s, const http_server_opts_t *o);
/* Accept one connection from listener (a worker_hooks_t on_connection). */
void http_server_accept(http_server_t *s, uv_tcp_t *listener);
/* Begin a graceful stop: idle connections close, busy ones close after
 * their current response. */
void http_server_stop(http_server_t *s);
/* Close every connection now (abort callbacks run). */
void http_server_close_all(http_server_t *s);
/* Free the server state (all connections must be closed). */
void http_server_free(http_server_t *s);
/* The connection's peer address (AF_UNSPEC when unknown). */
const struct sockaddr *http_conn_peer(const http_conn_t *c);
/* Close the connection at once, without an answer (a client in a penalty
 * box, say). The request's abort callback runs. */
void http_conn_drop(http_conn_t *c);
/* The server's user data (opts.ud) and the connection's worker. */
void *http_conn_ud(http_conn_t *c);
http_server_t *http_conn_server(http_conn_t *c);
worker_t *http_conn_worker(http_conn_t *c);

/* --- writing a response (only between on_request and finish/abort) --- */

/* Start the head: writes the status line into the connection's head buffer.
 * reason may be NULL for the standard phrase. */
void http_resp_start(http_conn_t *c, int status, const char *reason);
/* Append one header line. */
void http_resp_header(http_conn_t *c, const char *name, const char *value, size_t vlen);
/* Append pre-formatted header lines ("Name: value\r\n"...). */
void http_resp_header_block(http_conn_t *c, const char *block, size_t len);
/* Direct access to the head buffer for formatted appends. */
buf_t *http_resp_head(http_conn_t *c);
/* Close the head: adds Content-Length (content_length >= 0) or chunked
 * framing (-1; close-delimited for HTTP/1.0) and Connection; none for
 * 1xx/204/304. Date is the producer's (http_resp_simple adds one).
 * The head is sent with the first body write or at finish. */
void http_resp_end_head(http_conn_t *c, int64_t content_length);
/* Send an interim response (1xx but 101) ahead of the final one: status
 * line, the pre-formatted header lines block[0, len) ("Name: v\r\n"...;
 * the caller leaves out hop-by-hop fields) and the empty line. Only to
 * HTTP/1.1 clients (RFC 9110 15.2) and only before the final head was
 * started; returns -ENOTCONN (nothing sent) otherwise, or when the
 * connection is going away. */
int http_resp_interim(http_conn_t *c, int status, const char *block, size_t len);
/* Write body bytes. If release is NULL the bytes are copied when they
 * cannot be written at once; otherwise they must stay valid until
 * release(arg) is called (also called if the connection dies). Returns 0,
 * or -ENOTCONN when the connection is closing (release already called). */
int http_resp_write(http_conn_t *c, const void *p, size_t n, void (*release)(void *), void *arg);
/* End the response. The connection goes on to the next request or closes. */
void http_resp_finish(http_conn_t *c);
/* Finish with a complete small response: status, extra header lines (may be
 * NULL), content type and body. */
void http_resp_simple(http_conn_t *c, int status, const char *extra_headers, const char *ctype,
                      const char *body, size_t len);
/* Abort: close the connection without completing the response (used when
 * an upstream fails after the head was sent). The abort callback is not called. */
void http_resp_abort(http_conn_t *c);
/* Bytes written but not yet taken by the socket. */
size_t http_conn_pending(const http_conn_t *c);
/* Call cb(arg) once, when pending bytes fall below the low-water mark. */
void http_conn_on_drain(http_conn_t *c, void (*cb)(void *), void *arg);
/* Call cb(arg) if the connection dies before http_resp_finish. After that
 * call c must not be used. */
void http_conn_on_abort(http_conn_t *c, void (*cb)(void *), void *arg);
/* Force "Connection: close" on the current response. */
void http_conn_set_close(http_conn_t *c);
/* Total body bytes written for the current response. */
uint64_t http_resp_bytes(const http_conn_t *c);
/* Status of the current response (0 before start). */
int http_resp_status(const http_conn_t *c);

#define HTTP_WRITE_HIGH_WATER (256 * 1024)

/* Standard reason phrase for status. */
const char *http_reason(int status);
/* The current time as an IMF-fixdate, cached per second; valid until the
 * next call on this server's thread. */
const char *http_server_date(http_server_t *s);
/* Tag shown as the cache result in the access-log line of the current request. */
void http_conn_set_log_tag(http_conn_t *c, const char *static_tag);
/* The upstream target (a pool name, static for the node's life; NULL:
 * none) and the upstream time (microseconds) of the current response,
 * for the access log. Reset with each request. */
void http_conn_set_log_upstream(http_conn_t *c, const char *target, uint64_t upstream_us);
/* Set the current request's id (request_id.h) to id[0, len), copied
 * (len <= REQUEST_ID_MAX). Reset with each request. */
void http_conn_set_request_id(http_conn_t *c, const char *id, size_t len);
/* The current request's id, NUL-terminated, its length in *len (may be
 * NULL); one is generated on first use when none was set (an error the
 * server answered itself). Owned by c, valid until its next request. */
const char *http_conn_request_id(http_conn_t *c, size_t *len);

#endif
