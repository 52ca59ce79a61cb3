/* harness_http: the blocking HTTP client of the integration tests
 * (sockets with bounded waits, responses parsed with llhttp), and the
 * helpers that read the origin's counters and check synthetic bodies. */
#include "harness_internal.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "synth.h"

struct th_conn {
    int fd;
    buf_t in;                /* received, not yet parsed */
    bool eof, broken;
    llhttp_t parser;
};

/* --- HTTP client: sockets --- */

/* Wait for events on fd until deadline; false (with the error set) on timeout. */
static bool wait_fd(int fd, short events, int64_t deadline, const char *what)
{
    struct pollfd pf = { fd, events, 0 };
    int64_t left = deadline - th_now_ms();
    if (left > 0 && poll(&pf, 1, (int)left) > 0)
        return true;
    th__set_error("%s: timed out", what);
    return false;
}

static int connect_to(const char *addr, int timeout_ms)
{
    char host[256], port[8];
    unsigned pn;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
    if (config_parse_addr(addr, host, sizeof host, &pn)) {
        th__set_error("bad address '%s'", addr);
        return -1;
    }
    snprintf(port, sizeof port, "%u", pn);
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) {
        th__set_error("resolve %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0;
    socklen_t el = sizeof err;
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS)
        err = errno;
    freeaddrinfo(ai);
    if (fd < 0 || err || !wait_fd(fd, POLLOUT, th_now_ms() + timeout_ms, "connect") ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
        if (err || fd < 0)
            th__set_error("connect %s: %s", addr, strerror(fd < 0 ? errno : err));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *bytes, size_t len, int64_t deadline)
{
    const char *p = bytes;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            th__set_error("send: %s", strerror(errno));
            return -1;
        } else if (!wait_fd(fd, POLLOUT, deadline, "send")) {
            return -1;
        }
    }
    return 0;
}

/* Read what is available into b, waiting until deadline. Returns bytes
 * read, 0 at EOF (or reset), -1 on timeout or error. */
static ssize_t recv_some(int fd, buf_t *b, int64_t deadline)
{
    for (;;) {
        if (buf_reserve(b, 65536)) {
            th__set_error("out of memory");
            return -1;
        }
        ssize_t n = recv(fd, b->data + b->len, 65536, 0);
        if (n >= 0) {
            b->len += (size_t)n;
            b->data[b->len] = '\0';
            return n;
        }
        if (errno == ECONNRESET)
            return 0;
        if (errno != EAGAIN && errno != EINTR) {
            th__set_error("recv: %s", strerror(errno));
            return -1;
        }
        if (!wait_fd(fd, POLLIN, deadline, "waiting for the response"))
            return -1;
    }
}

/* --- HTTP client: parsing responses with llhttp --- */

typedef struct parse_ctx {
    th_resp_t *r;
    bool head, done, headers_done;
    int last;                /* 1 after a field piece, 2 after a value piece */
} parse_ctx_t;

static int p_field(llhttp_t *p, const char *at, size_t n)
{
    parse_ctx_t *x = p->data;
    if (x->headers_done)
        return 0; /* trailers are not headers */
    int rc = x->last == 1 ? http_fields_extend_name(&x->r->headers, at, n)
                          : http_fields_add(&x->r->headers, at, n, "", 0);
    x->last = 1;
    return rc ? -1 : 0;
}

static int p_value(llhttp_t *p, const char *at, size_t n)
{
    parse_ctx_t *x = p->data;
    if (x->headers_done)
        return 0;
    x->last = 2;
    return http_fields_extend_value(&x->r->headers, at, n) ? -1 : 0;
}

static int p_headers_complete(llhttp_t *p)
{
    parse_ctx_t *x = p->data;
    x->headers_done = true;
    x->r->status = p->status_code;
    x->r->http_major = p->http_major;
    x->r->http_minor = p->http_minor;
    x->r->chunked = (p->flags & F_CHUNKED) != 0;
    return x->head ? 1 : 0; /* 1: no body follows (HEAD) */
}

static int p_body(llhttp_t *p, const char *at, size_t n)
{
    parse_ctx_t *x = p->data;
    return buf_append(&x->r->body, at, n) ? -1 : 0;
}

static int p_message_complete(llhttp_t *p)
{
    parse_ctx_t *x = p->data;
    x->done = true;
    x->r->complete = true;
    x->r->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED;
}

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void settings_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_header_field = p_field;
    settings.on_header_value = p_value;
    settings.on_headers_complete = p_headers_complete;
    settings.on_body = p_body;
    settings.on_message_complete = p_message_complete;
}

/* Parser settings shared by every thread (read-only once initialised). */
static const llhttp_settings_t *resp_settings(void)
{
    pthread_once(&settings_once, settings_init);
    return &settings;
}

static th_resp_t *resp_new(void)
{
    th_resp_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    http_fields_init(&r->headers, 0);
    buf_init(&r->body, 0);
    buf_init(&r->raw, 0);
    return r;
}

void th_resp_free(th_resp_t *r)
{
    if (!r)
        return;
    http_fields_free(&r->headers);
    buf_free(&r->body);
    buf_free(&r->raw);
    for (size_t i = 0; i < r->_ncopies; i++)
        free(r->_copies[i]);
    free(r->_copies);
    free(r);
}

const char *th_hdr(th_resp_t *r, const char *name)
{
    http_slice_t v;
    if (!r || !http_fields_get(&r->headers, name, &v))
        return NULL;
    char **n = realloc(r->_copies, (r->_ncopies + 1) * sizeof *n);
    if (!n)
        return NULL;
    r->_copies = n;
    return r->_copies[r->_ncopies++] = strndup(v.p, v.len);
}

size_t th_hdr_count(const th_resp_t *r, const char *name)
{
    return r ? http_fields_count(&r->headers, name) : 0;
}

/* --- HTTP client: connections --- */

th_conn_t *th_connect(const char *addr)
{
    int fd = connect_to(addr, TH_TIMEOUT_MS);
    if (fd < 0) {
        th__check_procs();
        return NULL;
    }
    th_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        th__set_error("out of memory");
        return NULL;
    }
    c->fd = fd;
    buf_init(&c->in, 0);
    llhttp_init(&c->parser, HTTP_RESPONSE, resp_settings());
    return c;
}

int th_send(th_conn_t *c, const void *bytes, size_t len)
{
    return send_all(c->fd, bytes, len, th_now_ms() + TH_TIMEOUT_MS);
}

/* Feed bytes to the parser until one response completes; the rest of in
 * stays for the next one. Returns 1 done, 0 need more, -1 parse error. */
static int parse_some(llhttp_t *parser, buf_t *in, th_resp_t *r)
{
    if (!in->len)
        return 0;
    llhttp_errno_t e = llhttp_execute(parser, in->data, in->len);
    size_t used = e == HPE_OK ? in->len : (size_t)(llhttp_get_error_pos(parser) - in->data);
    buf_append(&r->raw, in->data, used);
    buf_consume(in, used);
    if (e == HPE_PAUSED) {
        llhttp_resume(parser);
        return 1;
    }
    if (e != HPE_OK) {
        th__set_error("bad response: %s", llhttp_get_error_reason(parser));
        return -1;
    }
    return 0;
}

th_resp_t *th_read_response(th_conn_t *c, bool head)
{
    int64_t deadline = th_now_ms() + TH_TIMEOUT_MS;
    if (c->broken) {
        th__set_error("connection unusable after an earlier error");
        return NULL;
    }
    th_resp_t *r = resp_new();
    parse_ctx_t x = { .r = r, .head = head };
    c->parser.data = &x;
    for (;;) {
        int rc = parse_some(&c->parser, &c->in, r);
        if (rc > 0)
            return r;
        if (rc < 0)
            break;
        if (c->eof) {
            /* A close-delimited body ends here; anything else is truncated. */
            if (llhttp_finish(&c->parser) == HPE_PAUSED)
                llhttp_resume(&c->parser);
            r->closed = true;
            if (x.done)
                return r;
            th__set_error("connection closed before a complete response (%zu bytes received)", r->raw.len);
            break;
        }
        ssize_t n = recv_some(c->fd, &c->in, deadline);
        if (n < 0)
            break;
        if (n == 0)
            c->eof = true;
    }
    c->broken = true;
    th_resp_free(r);
    th__check_procs();
    return NULL;
}

bool th_conn_closed(th_conn_t *c, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    while (!c->eof) {
        ssize_t n = recv_some(c->fd, &c->in, deadline);
        if (n < 0)
            return false;
        if (n == 0)
            c->eof = true;
    }
    return true;
}

void th_close(th_conn_t *c)
{
    if (!c)
        return;
    close(c->fd);
    buf_free(&c->in);
    free(c);
}

th_resp_t *th_raw(const char *addr, const void *bytes, size_t len, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    int fd = connect_to(addr, TH_TIMEOUT_MS);
    if (fd < 0) {
        th__check_procs();
        return NULL;
    }
    th_resp_t *r = resp_new();
    buf_t in;
    buf_init(&in, 0);
    send_all(fd, bytes, len, deadline); /* the server may answer (and stop reading) early */
    ssize_t n;
    while ((n = recv_some(fd, &in, deadline)) > 0)
        ;
    r->closed = n == 0;
    close(fd);
    /* Parse the first response out of a copy; raw keeps every byte. */
    llhttp_t parser;
    parse_ctx_t x = { .r = r };
    llhttp_init(&parser, HTTP_RESPONSE, resp_settings());
    parser.data = &x;
    buf_t rest;
    buf_init(&rest, 0);
    buf_append(&rest, in.data ? in.data : "", in.len);
    if (parse_some(&parser, &rest, r) == 0 && r->closed && llhttp_finish(&parser) == HPE_PAUSED)
        llhttp_resume(&parser);
    buf_free(&rest);
    buf_free(&r->raw);
    r->raw = in;
    return r;
}

static bool has_header(const char *block, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = block; p && *p;) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return true;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}

th_resp_t *th_request(const char *addr, const char *method, const char *target,
                      const char *extra_headers, const void *body, size_t len)
{
    buf_t q;
    buf_init(&q, 0);
    buf_printf(&q, "%s %s HTTP/1.1\r\n", method, target);
    if (!has_header(extra_headers, "host"))
        buf_printf(&q, "Host: %s\r\n", addr);
    if (extra_headers)
        buf_puts(&q, extra_headers);
    if (body && !has_header(extra_headers, "content-length") && !has_header(extra_headers, "transfer-encoding"))
        buf_printf(&q, "Content-Length: %zu\r\n", len);
    if (!has_header(extra_headers, "connection"))
        buf_puts(&q, "Connection: close\r\n");
    buf_puts(&q, "\r\n");
    if (body)
        buf_append(&q, body, len);
    th_resp_t *r = NULL;
    th_conn_t *c = th_connect(addr);
    if (c && th_send(c, q.data, q.len) == 0)
        r = th_read_response(c, strcasecmp(method, "HEAD") == 0);
    th_close(c);
    buf_free(&q);
    return r;
}

th_resp_t *th_get(const char *addr, const char *target)
{
    return th_request(addr, "GET", target, NULL, NULL, 0);
}

/* --- origin and bodies --- */

/* A number field of the origin's per-path stats JSON, or -1. */
static long long origin_stat(const char *origin, const char *path, const char *field)
{
    static const char hex[] = "0123456789ABCDEF";
    char target[2048] = "/.origin/stats?path=";
    size_t o = strlen(target);
    for (const unsigned char *p = (const unsigned char *)path; *p && o < sizeof target - 4; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("/-._~", *p)) {
            target[o++] = (char)*p;
        } else {
            target[o++] = '%';
            target[o++] = hex[*p >> 4];
            target[o++] = hex[*p & 15];
        }
    }
    target[o] = '\0';
    th_resp_t *r = th_get(origin, target);
    long long v = -1;
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", field);
    const char *at = r && r->status == 200 && r->body.data ? strstr(r->body.data, key) : NULL;
    if (at)
        v = strtoll(at + strlen(key), NULL, 10);
    else
        th__set_error("origin stats for %s: %s", path, r ? "unexpected answer" : th_last_error());
    th_resp_free(r);
    return v;
}

long th_origin_requests(const char *origin_addr, const char *path)
{
    return (long)origin_stat(origin_addr, path, "requests");
}

long long th_origin_bytes(const char *origin_addr, const char *path)
{
    return origin_stat(origin_addr, path, "bytes");
}

void th_origin_reset(const char *origin_addr)
{
    th_resp_t *r = th_request(origin_addr, "POST", "/.origin/stats/reset", NULL, NULL, 0);
    cr_assert(r && r->status == 200, "origin %s: reset failed: %s", origin_addr, r ? "bad status" : th_last_error());
    th_resp_free(r);
}

bool th_body_matches(const char *path, uint64_t size, const void *body, size_t len)
{
    if (len != size) {
        th__set_error("body is %zu bytes, expected %llu", len, (unsigned long long)size);
        return false;
    }
    size_t at = synth_compare(path, strlen(path), 0, body, len);
    if (at != len) {
        th__set_error("body of %s differs at byte %zu", path, at);
        return false;
    }
    return true;
}

void th_checksum_hex(const void *body, size_t len, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)synth_fnv1a(SYNTH_FNV_INIT, body, len));
}

