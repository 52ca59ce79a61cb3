/* Shared between http_conn.c (reading, state) and http_resp.c (writing).
 * Not a public header: nothing outside those two files may include it. */
#ifndef CDN_HTTP_CONN_INTERNAL_H
#define CDN_HTTP_CONN_INTERNAL_H

#include <llhttp.h>
#include <stdbool.h>

#include "http_server.h"

typedef enum conn_state {
    CONN_IDLE,      /* between requests: idle timer */
    CONN_READING,   /* a request is arriving: header timer */
    CONN_HANDLING,  /* request complete, response being produced: send timer */
    CONN_LINGER,    /* response sent, FIN sent, draining input before close */
    CONN_CLOSED,    /* uv_close issued; freed in the close callback */
} conn_state_t;

struct http_server {
    worker_t *worker;
    http_server_opts_t opts;
    char *readbuf;            /* per-worker read buffer, parsed at once */
    http_conn_t *conns;       /* every open connection */
    bool stopping;
    int64_t date_sec;
    char date[30];
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_server_t *srv;
    struct http_conn *next, *prev;
    conn_state_t state;
    llhttp_t parser;
    http_req_t req;
    buf_t target;             /* request target being parsed */
    buf_t saved;              /* bytes read but not yet parsed (pipelining) */
    size_t head_bytes;        /* header block size so far (431 bound) */
    int last_cb;              /* 1 after a header-field piece, 2 after a value piece */
    int err_status;           /* status chosen by a parser callback on error */
    const char *exec_start;   /* start of the bytes being parsed (obs-fold check) */
    bool in_trailers;         /* past the header section: fields are trailers */
    bool fold_tail;           /* parsed bytes so far end in LF + SP/HTAB* (obs-fold check) */
    bool reading;
    bool in_dispatch;         /* inside on_request: finish must not re-enter the parser */
    bool force_close;         /* close after this response */
    bool counted_total;       /* counted in opts.conns_total */
    bool no_io;               /* http_parse_requests: no socket, no timer, nothing written */
    bool accept_counted;      /* on_conn_close is owed, with accept_tag */
    unsigned char accept_tag[16];
    struct sockaddr_storage peer;
    unsigned requests;        /* requests begun on this connection */
    uint64_t read_start_ms;   /* when the request being read began */
    uint64_t read_bytes;      /* bytes of it received so far */
    char client[48];
    const char *log_tag;
    const char *log_upstream;  /* upstream target that answered (static), or NULL */
    uint64_t log_upstream_us;  /* upstream time of this response */
    char req_id[129];          /* request id (request_id.h), NUL-terminated; reset per request */
    unsigned char req_id_len;  /* 0: not decided yet */

    /* response */
    buf_t head;               /* status line and headers not yet sent */
    bool head_pending;
    bool head_started;
    bool resp_chunked;
    bool resp_no_body;
    bool resp_close;
    bool finished;
    int resp_status;
    uint64_t resp_bytes;
    size_t pending;           /* bytes handed to uv_write and not yet written */
    void (*drain_cb)(void *);
    void *drain_arg;
    void (*abort_cb)(void *);
    void *abort_arg;
};

void conn_set_state(http_conn_t *c, conn_state_t to);
void conn_timer_arm(http_conn_t *c);
void conn_process(http_conn_t *c, const char *data, size_t len, bool from_saved);
void conn_next_request(http_conn_t *c);
void conn_close(http_conn_t *c);
void conn_linger(http_conn_t *c);
/* Send a complete error response with Connection: close, then linger. */
void conn_error(http_conn_t *c, int status, const char *body);
/* Queue bytes outside any response (100 Continue); copied if not written at once. */
void conn_write_raw(http_conn_t *c, const uv_buf_t *bufs, unsigned n);

#endif
