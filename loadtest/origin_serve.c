/* origin_serve: the origin's answer to an object request.
 *
 * A request goes through at most three asynchronous steps, each on the
 * worker's loop: an optional delay (a uv timer: a slow origin must not
 * stall the other connections of its thread), the body checksum of a big
 * body or the making of an image under /img/ (on the libuv thread pool;
 * checksums remembered per thread, images in origin_image.c's cache), and
 * the body itself, written piece by piece as the socket drains so that a
 * 1 GiB synthetic body costs 256 KiB of memory. The request state (oreq_t)
 * outlives the connection when it dies mid-step: whichever step is in
 * flight frees it. */
#include <errno.h>
#include <llhttp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "origin.h"
#include "policy_date.h"
#include "synth.h"

#define PIECE (256 * 1024)            /* body bytes generated per write */
#define SUM_INLINE_MAX (1024 * 1024)  /* checksum larger bodies on the thread pool */
#define SUM_CACHE_MIN (16 * 1024)     /* remember checksums of bodies this large */
#define SUM_CACHE_SLOTS 4096

typedef struct oreq {
    http_conn_t *c;          /* NULL once the connection died */
    origin_stats_t *stats;
    origin_params_t q;
    char *path;              /* owned copy: outlives the request for stats and work */
    size_t plen;
    uint64_t count;          /* X-Origin-Count */
    int method;
    bool head, echo;         /* echo: JSON answer to a method other than GET/HEAD */
    char *if_none_match;     /* owned copies of the conditional headers, or NULL */
    char *if_modified_since;
    char *json;              /* echo body (owned) */
    size_t json_len;
    origin_image_req_t *img; /* an /img/ request, or NULL */
    origin_image_t *body;    /* its bytes once made (a reference) */
    int img_rc;              /* what origin_image_make returned */
    uint64_t body_len;       /* bytes the body has (0 for bodiless statuses) */
    uint64_t off;            /* body bytes produced so far */
    uint64_t sum;            /* X-Body-Checksum */
    int64_t now;             /* response time (s), fixed once so that every decision agrees */
    uv_timer_t timer;
    uv_work_t work;
    atomic_bool cancel;      /* tells the checksum work to give up */
    bool timer_init, in_work, in_pump, aborted;
} oreq_t;

typedef struct sum_slot {
    uint64_t key, size, sum;
} sum_slot_t;

/* Checksums of recent big bodies, per worker thread (no locking). The key
 * is a 64-bit SipHash of the path: a collision is vanishingly unlikely. */
static _Thread_local sum_slot_t sum_cache[SUM_CACHE_SLOTS];

static const uint8_t path_key[16] = { 'o', 'r', 'i', 'g', 'i', 'n', '-', 'p',
                                      'a', 't', 'h', '-', 'k', 'e', 'y', '1' };

static void send_response(oreq_t *o);

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void oreq_free(oreq_t *o)
{
    origin_params_free(&o->q);
    free(o->path);
    free(o->if_none_match);
    free(o->if_modified_since);
    free(o->json);
    origin_image_req_free(o->img);
    origin_image_release(o->body);
    if (o->timer_init) {
        /* The timer handle lives in o: free o once the handle is closed. */
        o->timer.data = o;
        uv_close((uv_handle_t *)&o->timer, on_timer_closed);
    } else {
        free(o);
    }
}

static void on_abort(void *arg)
{
    oreq_t *o = arg;
    o->aborted = true;
    o->c = NULL;
    if (o->timer_init)
        uv_timer_stop(&o->timer);
    atomic_store(&o->cancel, true);
    if (o->in_work || o->in_pump)
        return; /* the step in flight frees o */
    oreq_free(o);
}

static bool status_has_body(int st)
{
    return st >= 200 && st != 204 && st != 304;
}

static uint64_t path_hash(const oreq_t *o)
{
    return hash_sip64(path_key, o->path, o->plen) | 1; /* 0 marks an empty cache slot */
}

/* --- validators and conditional requests --- */

static void format_etag_auto(const oreq_t *o, char out[24])
{
    uint64_t h = path_hash(o) ^ (o->q.size * 0x9e3779b97f4a7c15ull);
    static const char hex[] = "0123456789abcdef";
    out[0] = '"';
    for (int i = 0; i < 16; i++)
        out[1 + i] = hex[(h >> (60 - 4 * i)) & 15];
    out[17] = '"';
    out[18] = '\0';
}

/* The ETag to send (in buf or the params' storage), or NULL. An image has
 * one unless etag= names another. */
static const char *etag_of(const oreq_t *o, char buf[24])
{
    if (o->img && !o->q.etag)
        return origin_image_etag(o->img);
    if (o->q.etag_auto) {
        format_etag_auto(o, buf);
        return buf;
    }
    return o->q.etag;
}

/* Last-Modified as Unix seconds, or -1 when none was asked for. */
static int64_t last_modified(const oreq_t *o, int64_t now)
{
    if (o->q.has_lm_ago)
        return now - o->q.lm_ago;
    if (o->q.lm)
        return policy_date_parse(o->q.lm, strlen(o->q.lm));
    return -1;
}

/* Weak comparison (RFC 9110 8.8.3.2): equal opaque tags, W/ ignored. */
static bool etag_weak_eq(const char *a, size_t al, const char *b, size_t bl)
{
    if (al >= 2 && a[0] == 'W' && a[1] == '/')
        a += 2, al -= 2;
    if (bl >= 2 && b[0] == 'W' && b[1] == '/')
        b += 2, bl -= 2;
    return al == bl && memcmp(a, b, al) == 0;
}

/* True when the If-None-Match list v names etag (or is "*"). */
static bool inm_matches(const char *v, const char *etag)
{
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*')
            return true;
        const char *start = p;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"')
            return false; /* not a list of entity-tags: ignore the header */
        const char *close = strchr(p + 1, '"');
        if (!close)
            return false;
        p = close + 1;
        if (etag && etag_weak_eq(start, (size_t)(p - start), etag, strlen(etag)))
            return true;
    }
    return false;
}

/* RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since. */
static bool not_modified(const oreq_t *o, const char *etag, int64_t lm)
{
    if (o->echo || o->q.status != 200)
        return false;
    if (o->if_none_match)
        return inm_matches(o->if_none_match, etag);
    if (o->if_modified_since && lm >= 0) {
        int64_t ims = policy_date_parse(o->if_modified_since, strlen(o->if_modified_since));
        return ims >= 0 && ims >= lm;
    }
    return false;
}

/* --- the response --- */

static void put_header(http_conn_t *c, const char *name, const char *v)
{
    if (v)
        http_resp_header(c, name, v, strlen(v));
}

/* Every header the query asked for; shared by full and 304 responses. */
static void put_common_headers(oreq_t *o, const char *etag, int64_t lm, int64_t now, bool full)
{
    http_conn_t *c = o->c;
    buf_t *h = http_resp_head(c);
    char date[30];
    if (!o->q.nodate) {
        /* From `now`, not the clock: Expires and Last-Modified are relative to it. */
        policy_date_format(now, date);
        http_resp_header(c, "Date", date, 29);
    }
    put_header(c, "Cache-Control", o->q.cc);
    if (o->q.has_expires_in) {
        int64_t t = now + o->q.expires_in;
        policy_date_format(t < 0 ? 0 : t, date);
        put_header(c, "Expires", date);
    } else {
        put_header(c, "Expires", o->q.expires);
    }
    put_header(c, "ETag", etag);
    if (lm >= 0) {
        policy_date_format(lm, date);
        put_header(c, "Last-Modified", date);
    }
    put_header(c, "Vary", o->q.vary);
    if (full) {
        put_header(c, "Content-Type", o->echo ? "application/json" : o->q.ct ? o->q.ct
                                      : o->img ? origin_image_type(o->img) : "text/plain");
        put_header(c, "Surrogate-Key", o->q.sk);
        put_header(c, "Set-Cookie", o->q.cookie);
    }
    if (o->q.has_age)
        buf_printf(h, "Age: %llu\r\n", (unsigned long long)o->q.age);
    if (o->q.extra.len)
        http_resp_header_block(c, o->q.extra.data, o->q.extra.len);
    http_resp_header(c, "X-Origin-Path", o->path, o->plen);
    buf_printf(h, "X-Origin-Count: %llu\r\n", (unsigned long long)o->count);
}

static void finish(oreq_t *o)
{
    http_conn_t *c = o->c;
    oreq_free(o);
    http_resp_finish(c);
}

/* Write body pieces while the socket keeps up; resume from the drain callback. */
static void pump(void *arg)
{
    oreq_t *o = arg;
    o->in_pump = true;
    while (!o->aborted && o->off < o->body_len) {
        if (http_conn_pending(o->c) >= HTTP_WRITE_HIGH_WATER) {
            /* pending is above the low-water mark, so this never calls back at once */
            http_conn_on_drain(o->c, pump, o);
            o->in_pump = false;
            return;
        }
        uint64_t left = o->body_len - o->off;
        size_t n = left < PIECE ? (size_t)left : PIECE;
        char *piece = malloc(n);
        if (!piece) {
            http_resp_abort(o->c);
            o->aborted = true;
            break;
        }
        if (o->echo)
            memcpy(piece, o->json + o->off, n);
        else if (o->body)
            memcpy(piece, (const char *)origin_image_data(o->body, &(size_t){ 0 }) + o->off, n);
        else
            synth_fill(o->path, o->plen, o->off, piece, n);
        origin_stats_bytes(o->stats, o->path, o->plen, n);
        o->off += n;
        if (http_resp_write(o->c, piece, n, free, piece)) {
            o->aborted = true; /* the connection is gone; its abort callback ran or never will */
            break;
        }
    }
    o->in_pump = false;
    if (o->aborted)
        oreq_free(o);
    else
        finish(o);
}

static void send_response(oreq_t *o)
{
    http_conn_t *c = o->c;
    int64_t now = o->now;
    char etag_buf[24];
    const char *etag = etag_of(o, etag_buf);
    int64_t lm = last_modified(o, now);
    if (not_modified(o, etag, lm)) {
        http_resp_start(c, 304, NULL);
        if (o->q.r304 == ORIGIN_304_FULL) {
            put_common_headers(o, etag, lm, now, false);
        } else {
            char date[30];
            policy_date_format(now, date);
            http_resp_header(c, "Date", date, 29);
            if (o->q.r304 == ORIGIN_304_FOREIGN)
                http_resp_header(c, "ETag", "\"foreign\"", 9);
        }
        http_resp_end_head(c, 0);
        finish(o);
        return;
    }
    http_resp_start(c, o->q.status, NULL);
    put_common_headers(o, etag, lm, now, true);
    if (!o->echo)
        buf_printf(http_resp_head(c), "X-Body-Checksum: %016llx\r\n", (unsigned long long)o->sum);
    http_resp_end_head(c, o->q.chunked ? -1 : (int64_t)o->body_len);
    if (o->head || o->body_len == 0) {
        finish(o);
        return;
    }
    pump(o);
}

/* On the thread pool: the checksum of a big body, in pieces so that a
 * connection dying (or the origin stopping) does not wait for a full pass. */
static void sum_work(uv_work_t *w)
{
    oreq_t *o = w->data;
    char *piece = malloc(PIECE);
    uint64_t h = SYNTH_FNV_INIT;
    for (uint64_t off = 0; piece && off < o->body_len && !atomic_load(&o->cancel); off += PIECE) {
        size_t n = o->body_len - off < PIECE ? (size_t)(o->body_len - off) : PIECE;
        synth_fill(o->path, o->plen, off, piece, n);
        h = synth_fnv1a(h, piece, n);
    }
    o->sum = piece ? h : synth_checksum(o->path, o->plen, o->body_len);
    free(piece);
}

static void sum_done(uv_work_t *w, int status)
{
    oreq_t *o = w->data;
    o->in_work = false;
    if (o->aborted) {
        oreq_free(o);
        return;
    }
    sum_slot_t *s = &sum_cache[path_hash(o) % SUM_CACHE_SLOTS];
    *s = (sum_slot_t){ path_hash(o), o->body_len, o->sum };
    send_response(o);
}

/* Run work on the thread pool, then done on the loop (both inline if the
 * pool refuses). */
static void offload(oreq_t *o, uv_work_cb work, uv_after_work_cb done)
{
    o->work.data = o;
    if (uv_queue_work(worker_loop(http_conn_worker(o->c)), &o->work, work, done) == 0) {
        o->in_work = true;
        return;
    }
    work(&o->work);
    done(&o->work, 0);
}

/* The image's length and checksum are known: answer (or 500 if it could
 * not be made). */
static void send_image(oreq_t *o)
{
    if (o->img_rc) {
        http_conn_t *c = o->c;
        oreq_free(o);
        http_resp_simple(c, 500, NULL, "text/plain", "image generation failed\n", 24);
        return;
    }
    size_t len;
    origin_image_data(o->body, &len);
    o->body_len = status_has_body(o->q.status) ? len : 0;
    o->sum = origin_image_sum(o->body);
    send_response(o);
}

/* On the thread pool: make the image (libvips, up to seconds). */
static void img_work(uv_work_t *w)
{
    oreq_t *o = w->data;
    o->img_rc = origin_image_make(o->img, &o->body);
}

static void img_done(uv_work_t *w, int status)
{
    oreq_t *o = w->data;
    o->in_work = false;
    if (o->aborted)
        oreq_free(o);
    else
        send_image(o);
}

/* Find the body checksum (or the image), then respond (maybe after a
 * thread-pool trip). */
static void prepare(oreq_t *o)
{
    char etag_buf[24];
    o->now = (int64_t)time(NULL);
    if (not_modified(o, etag_of(o, etag_buf), last_modified(o, o->now))) {
        send_response(o); /* a 304 carries no body, hence no checksum */
        return;
    }
    if (o->img) {
        /* Even HEAD needs the bytes: Content-Length is their length. */
        if ((o->body = origin_image_lookup(o->img)))
            send_image(o);
        else
            offload(o, img_work, img_done);
        return;
    }
    if (o->echo || o->body_len < SUM_CACHE_MIN) {
        o->sum = o->echo ? 0 : synth_checksum(o->path, o->plen, o->body_len);
        send_response(o);
        return;
    }
    uint64_t key = path_hash(o);
    sum_slot_t *s = &sum_cache[key % SUM_CACHE_SLOTS];
    if (s->key == key && s->size == o->body_len) {
        o->sum = s->sum;
        send_response(o);
        return;
    }
    if (o->body_len <= SUM_INLINE_MAX) {
        o->sum = synth_checksum(o->path, o->plen, o->body_len);
        *s = (sum_slot_t){ key, o->body_len, o->sum };
        send_response(o);
        return;
    }
    offload(o, sum_work, sum_done);
}

static void on_delay(uv_timer_t *t)
{
    prepare(t->data);
}

static char *hdr_copy(const http_req_t *req, const char *name)
{
    http_slice_t v;
    if (!http_fields_get(&req->hdrs, name, &v))
        return NULL;
    return strndup(v.p, v.len);
}

/* The echo body (a method other than GET/HEAD, or echo=1): what reached
 * the origin; with echo=1 the request headers too, so tests can see what
 * a cache forwarded. */
static int make_echo(oreq_t *o, const http_req_t *req)
{
    buf_t b;
    buf_init(&b, 0);
    int rc = buf_printf(&b, "{\"method\":\"%s\",\"path\":", req->method_name);
    if (!rc)
        rc = origin_json_str(&b, o->path, o->plen);
    if (!rc)
        rc = buf_printf(&b, ",\"body_bytes\":%zu", req->body.len);
    if (!rc && o->q.echo)
        rc = buf_puts(&b, ",\"headers\":[");
    for (size_t i = 0; o->q.echo && i < req->hdrs.n && !rc; i++) {
        http_slice_t n = http_fields_name(&req->hdrs, i), v = http_fields_value(&req->hdrs, i);
        rc = buf_puts(&b, i ? ",[" : "[");
        if (!rc)
            rc = origin_json_str(&b, n.p, n.len);
        if (!rc)
            rc = buf_append(&b, ",", 1);
        if (!rc)
            rc = origin_json_str(&b, v.p, v.len);
        if (!rc)
            rc = buf_append(&b, "]", 1);
    }
    if (!rc)
        rc = buf_puts(&b, o->q.echo ? "]}\n" : "}\n");
    if (rc) {
        buf_free(&b);
        return rc;
    }
    o->json_len = b.len;
    o->json = buf_steal(&b);
    return 0;
}

void origin_serve(http_conn_t *c, http_req_t *req, origin_stats_t *stats, uint64_t count)
{
    char err[512] = "out of memory\n";
    oreq_t *o = calloc(1, sizeof *o);
    if (!o) {
        http_resp_simple(c, 500, NULL, "text/plain", "out of memory\n", 14);
        return;
    }
    o->c = c;
    o->stats = stats;
    o->count = count;
    o->method = req->method;
    o->head = req->is_head;
    o->echo = req->method != HTTP_GET && req->method != HTTP_HEAD;
    o->plen = req->path_len;
    o->path = strndup(req->target, req->path_len);
    const char *q = req->path_len < req->target_len ? req->target + req->path_len + 1 : "";
    size_t qlen = req->path_len < req->target_len ? req->target_len - req->path_len - 1 : 0;
    int rc = origin_params_parse(&o->q, q, qlen, err, sizeof err);
    o->echo = o->echo || o->q.echo;
    if (o->q.has_fail_after && count > o->q.fail_after)
        o->q.status = 503; /* an origin that starts failing (stale-if-error tests) */
    if (!rc && o->path && !o->echo) /* an image is one more body source: every other parameter applies */
        rc = origin_image_parse(o->path, o->plen, q, qlen, &o->img, err, sizeof err);
    if (rc < 0 || !o->path) {
        char extra[64];
        snprintf(extra, sizeof extra, "X-Origin-Count: %llu\r\n", (unsigned long long)count);
        http_resp_simple(c, rc == -ENOENT ? 404 : 400, extra, "text/plain", err, strlen(err));
        oreq_free(o);
        return;
    }
    if (!o->echo) {
        o->if_none_match = hdr_copy(req, "if-none-match");
        o->if_modified_since = hdr_copy(req, "if-modified-since");
    } else if (make_echo(o, req)) {
        http_resp_simple(c, 500, NULL, "text/plain", "out of memory\n", 14);
        oreq_free(o);
        return;
    }
    uint64_t len = o->echo ? o->json_len : o->q.size;
    o->body_len = status_has_body(o->q.status) ? len : 0;
    http_conn_on_abort(c, on_abort, o);
    if (o->q.delay_ms) {
        uv_timer_init(worker_loop(http_conn_worker(c)), &o->timer);
        o->timer_init = true;
        o->timer.data = o;
        uv_timer_start(&o->timer, on_delay, o->q.delay_ms, 0);
        return;
    }
    prepare(o);
}
