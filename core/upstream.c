/* upstream: libcurl multi socket interface on a libuv loop.
 *
 * curl tells us which sockets to watch (on_socket) and when to wake it
 * (on_timer_set); libuv tells curl when those fire. curl forbids removing
 * a handle from inside its own callbacks, so cancellation inside a
 * callback only marks the request; it is removed once curl returns. */
#include "upstream.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

struct upstream {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    upstream_opts_t opts;
    upstream_req_t *reqs;     /* every request in flight */
    unsigned active;
    unsigned in_curl;         /* > 0 while curl may be running our callbacks */
    bool closing;
};

struct upstream_req {
    upstream_t *u;
    upstream_req_t *next, *prev;
    CURL *easy;
    struct curl_slist *hdr_list;
    char *body;
    upstream_cbs_t cbs;
    void *ctx;
    http_fields_t resp_hdrs;
    buf_t line;               /* the header line being cleaned */
    int status;
    size_t header_bytes;
    bool headers_done;
    bool in_block;            /* the status line of the current block was seen */
    bool cancelled;
    bool paused;
    int abort_err;            /* why a callback aborted the transfer */
    char abort_msg[160];      /* and in words (curl overwrites errbuf with its own) */
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    upstream_t *u;
} sock_ctx_t;

static void check_done(upstream_t *u);

const char *upstream_strerror(int err)
{
    switch (err) {
    case UPSTREAM_OK: return "ok";
    case UPSTREAM_ECONNECT: return "could not connect upstream";
    case UPSTREAM_ETIMEOUT: return "upstream timed out";
    case UPSTREAM_EPROTO: return "invalid upstream response";
    case UPSTREAM_EIO: return "upstream connection failed";
    case UPSTREAM_EABORT: return "aborted";
    }
    return "unknown upstream error";
}

unsigned upstream_active(const upstream_t *u) { return u->active; }

static void socket_action(upstream_t *u, curl_socket_t fd, int flags)
{
    int running;
    u->in_curl++;
    curl_multi_socket_action(u->multi, fd, flags, &running);
    u->in_curl--;
    check_done(u);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx_t *sc = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(sc->u, sc->fd, flags);
}

static void on_timeout(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static void free_sock(uv_handle_t *h)
{
    free(h->data);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    upstream_t *u = userp;
    sock_ctx_t *sc = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            uv_poll_stop(&sc->poll);
            uv_close((uv_handle_t *)&sc->poll, free_sock);
            curl_multi_assign(u->multi, s, NULL);
        }
        return 0;
    }
    if (!sc) {
        sc = calloc(1, sizeof *sc);
        if (!sc)
            return -1;
        sc->fd = s;
        sc->u = u;
        if (uv_poll_init_socket(u->loop, &sc->poll, s)) {
            free(sc);
            return -1;
        }
        sc->poll.data = sc;
        curl_multi_assign(u->multi, s, sc);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&sc->poll, ev, on_poll);
    return 0;
}

static int on_timer_set(CURLM *m, long timeout_ms, void *userp)
{
    upstream_t *u = userp;
    (void)m;
    if (timeout_ms < 0)
        uv_timer_stop(&u->timer);
    else
        uv_timer_start(&u->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

void upstream_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void upstream_global_cleanup(void)
{
    curl_global_cleanup();
}

upstream_t *upstream_new(uv_loop_t *loop, const upstream_opts_t *opts)
{
    upstream_t *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->loop = loop;
    u->opts = *opts;
    u->multi = curl_multi_init();
    if (!u->multi) {
        free(u);
        return NULL;
    }
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)(opts->max_idle_conns ? opts->max_idle_conns : 64));
    return u;
}

static void req_unlink_free(upstream_req_t *r)
{
    upstream_t *u = r->u;
    if (r->prev)
        r->prev->next = r->next;
    else
        u->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    u->active--;
    curl_multi_remove_handle(u->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdr_list);
    http_fields_free(&r->resp_hdrs);
    buf_free(&r->line);
    free(r->body);
    free(r);
}

static int map_error(upstream_req_t *r, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return r->headers_done ? UPSTREAM_OK : UPSTREAM_EPROTO;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return UPSTREAM_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return UPSTREAM_ETIMEOUT;
    case CURLE_WRITE_ERROR:
        return r->abort_err ? r->abort_err : UPSTREAM_EABORT;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
        return UPSTREAM_EPROTO;
    default:
        return r->abort_err ? r->abort_err : UPSTREAM_EIO;
    }
}

/* The words for how r ended with err (on_done's msg). */
static const char *done_msg(const upstream_req_t *r, int err)
{
    return err == UPSTREAM_OK                 ? "ok"
           : r->abort_err && r->abort_msg[0] ? r->abort_msg
           : r->errbuf[0]                     ? r->errbuf
                                              : upstream_strerror(err);
}

/* Completed transfers: report them, then free. Also frees requests that
 * were cancelled from inside a curl callback. */
static void check_done(upstream_t *u)
{
    if (u->in_curl)
        return;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(u->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        upstream_req_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode rc = msg->data.result;
        if (!r->cancelled && r->cbs.on_done) {
            int err = map_error(r, rc);
            const char *m = done_msg(r, err);
            r->cancelled = true; /* no callback after on_done */
            r->cbs.on_done(r->ctx, err, m);
        }
        req_unlink_free(r);
    }
    for (upstream_req_t *r = u->reqs, *next; r; r = next) {
        next = r->next;
        if (r->cancelled)
            req_unlink_free(r);
    }
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Replace every control character but HTAB (CR, LF, NUL, 0x01-0x1F, DEL)
 * with SP: RFC 9110 5.5 and RFC 9112 2.2 allow exactly this for CR, LF and
 * NUL, and it keeps the others from reaching a client that would take them
 * for line ends (a bare CR in "x\rX-Injected: yes" would otherwise start a
 * header of its own downstream). */
static void clean_value(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            p[i] = ' ';
    }
}

static size_t header_fail(upstream_req_t *r, const char *msg)
{
    r->abort_err = UPSTREAM_EPROTO;
    snprintf(r->abort_msg, sizeof r->abort_msg, "%s", msg);
    return 0;
}

/* The end of a header block: an interim response (1xx) goes to on_interim,
 * the final one to on_headers. */
static size_t header_block_end(upstream_req_t *r, size_t n)
{
    int rc = 0;
    r->in_block = false;
    if (r->status < 200) {
        if (r->status != 101 && r->cbs.on_interim)
            rc = r->cbs.on_interim(r->ctx, r->status, &r->resp_hdrs);
        http_fields_reset(&r->resp_hdrs);
    } else {
        r->headers_done = true;
        rc = r->cbs.on_headers(r->ctx, r->status, &r->resp_hdrs);
    }
    if (rc < 0 || r->cancelled) {
        r->abort_err = UPSTREAM_EABORT;
        return 0;
    }
    return n;
}

/* The status code of a status line line[0, len) (its line end cut off):
 * the three digits after the first SP, then SP or the end (RFC 9112 4);
 * 0 when there are none. Read within len: curl's buffer is not
 * NUL-terminated, so atoi could read past the line (found by fuzzing:
 * "HTTP/1.1 \n" had atoi skip the LF and go on into the bytes after it). */
static int status_code(const char *line, size_t len)
{
    const char *sp = memchr(line, ' ', len);
    if (!sp)
        return 0;
    const char *d = sp + 1, *end = line + len;
    if (end - d < 3 || (end - d > 3 && d[3] != ' '))
        return 0;
    int code = 0;
    for (int i = 0; i < 3; i++) {
        if (d[i] < '0' || d[i] > '9')
            return 0;
        code = code * 10 + (d[i] - '0');
    }
    return code;
}

/* Parse one header line from curl ("Name: value\r\n", a status line, or
 * the empty line ending a block), cleaning it as upstream.h says. */
static size_t on_header(char *data, size_t size, size_t nitems, void *userdata)
{
    upstream_req_t *r = userdata;
    size_t n = size * nitems;
    if (r->cancelled)
        return 0;
    if (r->headers_done)
        return n; /* trailers: ignored */
    r->header_bytes += n;
    if (r->header_bytes > r->u->opts.max_header_size) {
        r->abort_err = UPSTREAM_EPROTO;
        snprintf(r->abort_msg, sizeof r->abort_msg, "upstream response headers larger than %zu bytes",
                 r->u->opts.max_header_size);
        return 0;
    }
    size_t len = n;
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (!r->in_block && n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A status line starts each block (interim or final); inside one,
         * "HTTP/..." is a (malformed) field line like any other. */
        r->in_block = true;
        r->status = status_code(data, len);
        http_fields_reset(&r->resp_hdrs);
        if (r->status < 100 || r->status > 999) {
            r->abort_err = UPSTREAM_EPROTO;
            return 0;
        }
        return n;
    }
    if (!r->in_block)
        return header_fail(r, "upstream header line without a status line");
    if (len == 0)
        return header_block_end(r, n);
    /* Work on a copy: curl's buffer is not ours to change. */
    buf_reset(&r->line);
    if (buf_append(&r->line, data, len))
        return header_fail(r, "out of memory reading upstream headers");
    char *s = r->line.data;
    if (s[0] == ' ' || s[0] == '\t') {
        /* obs-fold (RFC 9112 5.2): the line continues the previous field's
         * value; the fold becomes one SP, so it can never start a field.
         * A fold before any field is dropped unprocessed. */
        clean_value(s, len);
        http_slice_t t = http_trim((http_slice_t){ s, len });
        if (!r->resp_hdrs.n || !t.len)
            return n;
        bool join = http_fields_value(&r->resp_hdrs, r->resp_hdrs.n - 1).len > 0;
        if ((join && http_fields_extend_value(&r->resp_hdrs, " ", 1)) ||
            http_fields_extend_value(&r->resp_hdrs, t.p, t.len))
            return header_fail(r, "upstream response headers too large");
        return n;
    }
    const char *colon = memchr(s, ':', len);
    if (!colon)
        return header_fail(r, "malformed upstream header line");
    size_t nlen = (size_t)(colon - s);
    while (nlen && (s[nlen - 1] == ' ' || s[nlen - 1] == '\t'))
        nlen--; /* RFC 9112 5.1: a proxy removes whitespace before the colon */
    for (size_t i = 0; i < nlen; i++)
        if (!is_tchar((unsigned char)s[i]))
            nlen = 0;
    if (nlen == 0)
        return header_fail(r, "invalid upstream header field name");
    char *v = s + (colon - s) + 1;
    size_t vlen = len - (size_t)(v - s);
    clean_value(v, vlen);
    http_slice_t value = http_trim((http_slice_t){ v, vlen });
    if (http_fields_add(&r->resp_hdrs, s, nlen, value.p, value.len))
        return header_fail(r, "upstream response headers too large");
    return n;
}

int upstream_parse_head(const upstream_opts_t *opts, const http_slice_t *lines, size_t n, const upstream_cbs_t *cbs,
                        void *ctx, char *msg, size_t msglen)
{
    upstream_t u = { .opts = *opts };
    upstream_req_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(msg, msglen, "out of memory");
        return UPSTREAM_EIO;
    }
    r->u = &u;
    r->cbs = *cbs;
    r->ctx = ctx;
    http_fields_init(&r->resp_hdrs, opts->max_header_size);
    buf_init(&r->line, 0);
    /* curl ends the transfer with CURLE_WRITE_ERROR when the header
     * callback does not take a whole line, with CURLE_OK when every line
     * was taken and the response ended there. */
    CURLcode rc = CURLE_OK;
    for (size_t i = 0; i < n && rc == CURLE_OK; i++)
        if (on_header((char *)lines[i].p, 1, lines[i].len, r) != lines[i].len)
            rc = CURLE_WRITE_ERROR;
    int err = map_error(r, rc);
    snprintf(msg, msglen, "%s", done_msg(r, err));
    http_fields_free(&r->resp_hdrs);
    buf_free(&r->line);
    free(r);
    return err;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *userdata)
{
    upstream_req_t *r = userdata;
    size_t n = size * nmemb;
    if (r->cancelled)
        return 0;
    if (r->paused)
        return CURL_WRITEFUNC_PAUSE; /* curl keeps these bytes for the resume */
    int rc = r->cbs.on_body(r->ctx, p, n);
    if (rc < 0 || r->cancelled) {
        r->abort_err = UPSTREAM_EABORT;
        return 0;
    }
    if (rc == UPSTREAM_PAUSE && !r->paused) {
        r->paused = true;
        curl_easy_pause(r->easy, CURLPAUSE_RECV);
    }
    return n;
}

/* Header list for curl: our fields, and blanks for the defaults curl would
 * otherwise invent (Accept, Expect, a form Content-Type). */
static struct curl_slist *build_headers(const http_fields_t *h, bool has_body)
{
    struct curl_slist *l = NULL;
    buf_t line;
    buf_init(&line, 0);
    bool accept = false, ctype = false;
    for (size_t i = 0; h && i < h->n; i++) {
        http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
        if (http_name_eq(n, "content-length") || http_name_eq(n, "expect"))
            continue;
        accept |= http_name_eq(n, "accept");
        ctype |= http_name_eq(n, "content-type");
        buf_reset(&line);
        buf_append(&line, n.p, n.len);
        if (v.len) {
            buf_append(&line, ": ", 2);
            buf_append(&line, v.p, v.len);
        } else {
            buf_append(&line, ";", 1); /* curl's syntax for an empty value */
        }
        struct curl_slist *nl = curl_slist_append(l, line.data);
        if (!nl)
            goto fail;
        l = nl;
    }
    if (!accept)
        l = curl_slist_append(l, "Accept:");
    if (l)
        l = curl_slist_append(l, "Expect:");
    if (l && has_body && !ctype)
        l = curl_slist_append(l, "Content-Type:");
    buf_free(&line);
    return l;
fail:
    curl_slist_free_all(l);
    buf_free(&line);
    return NULL;
}

upstream_req_t *upstream_start(upstream_t *u, const char *method, const char *url,
                               const http_fields_t *hdrs, const void *body, size_t len,
                               const upstream_cbs_t *cbs, void *ctx)
{
    if (u->closing)
        return NULL;
    upstream_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->u = u;
    r->cbs = *cbs;
    r->ctx = ctx;
    http_fields_init(&r->resp_hdrs, u->opts.max_header_size);
    buf_init(&r->line, 0);
    r->easy = curl_easy_init();
    if (!r->easy)
        goto fail;
    bool has_body = len > 0 || (strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "DELETE") &&
                                strcmp(method, "OPTIONS"));
    r->hdr_list = build_headers(hdrs, has_body);
    if (!r->hdr_list)
        goto fail;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdr_list);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)u->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)u->opts.timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L); /* bodies pass as the origin encoded them */
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (has_body) {
            r->body = malloc(len ? len : 1);
            if (!r->body)
                goto fail;
            if (len)
                memcpy(r->body, body, len); /* body may be NULL when len is 0 */
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        }
    }
    r->next = u->reqs;
    if (u->reqs)
        u->reqs->prev = r;
    u->reqs = r;
    u->active++;
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK) {
        r->cancelled = true;
        req_unlink_free(r);
        return NULL;
    }
    return r;
fail:
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdr_list);
    http_fields_free(&r->resp_hdrs);
    buf_free(&r->line);
    free(r->body);
    free(r);
    return NULL;
}

void upstream_cancel(upstream_req_t *r)
{
    r->cancelled = true;
    if (!r->u->in_curl)
        req_unlink_free(r);
    /* else: check_done frees it once curl has returned */
}

void upstream_pause(upstream_req_t *r, bool paused)
{
    if (r->paused == paused || r->cancelled)
        return;
    r->paused = paused;
    upstream_t *u = r->u;
    u->in_curl++;
    /* Resuming can deliver buffered body right here, through on_write. */
    curl_easy_pause(r->easy, paused ? CURLPAUSE_RECV : CURLPAUSE_CONT);
    u->in_curl--;
    check_done(u);
}

void upstream_close(upstream_t *u)
{
    u->closing = true;
    while (u->reqs) {
        u->reqs->cancelled = true;
        req_unlink_free(u->reqs);
    }
    uv_close((uv_handle_t *)&u->timer, NULL);
    /* Cleaning up the multi closes its cached connections, which reports
     * CURL_POLL_REMOVE for their sockets and closes our poll handles. */
    curl_multi_cleanup(u->multi);
    u->multi = NULL;
}

void upstream_free(upstream_t *u)
{
    free(u);
}
