/* origin: internals of bin/origin (loadtest/origin*.c), the small HTTP
 * origin that tests, the demo and load tests run behind the caches.
 *
 * origin.c wires the server module (workers, HTTP connections, settings)
 * and answers the control paths; origin_serve.c answers object requests;
 * origin_query.c turns a request's query string into the response it asks
 * for; origin_stats.c counts requests per path for every worker thread.
 * Not a library: nothing else links these. */
#ifndef CDN_ORIGIN_H
#define CDN_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http_server.h"

#define ORIGIN_MAX_SIZE (1024ull * 1024 * 1024)   /* size= bound: 1 GiB */
#define ORIGIN_MAX_DELAY_MS 600000ull             /* delay= bound: 10 min */
#define ORIGIN_MAX_PATHS 1000000u                 /* paths counted one by one */

/* r304= values: the 304s real origins send besides the textbook one. */
enum {
    ORIGIN_304_FULL = 0,    /* validators and the asked-for headers (default) */
    ORIGIN_304_BARE,        /* r304=bare: Date only, no validator */
    ORIGIN_304_FOREIGN,     /* r304=foreign: ETag "foreign", matching no stored response */
};

/* What a request's query string asks for. Strings point into the params'
 * own storage (NUL-terminated, URL-decoded) and live until
 * origin_params_free; NULL means "parameter absent". */
typedef struct origin_params {
    uint64_t size;          /* size=, body bytes (default 1024) */
    int status;             /* status= (default 200) */
    const char *cc;         /* cc= -> Cache-Control */
    const char *expires;    /* expires= (a valid HTTP-date) -> Expires */
    bool has_expires_in;
    int64_t expires_in;     /* expires_in= seconds from now (may be negative) */
    const char *etag;       /* etag= as sent (quoted), or NULL */
    bool etag_auto;         /* etag=auto: strong ETag from path and size */
    const char *lm;         /* lm= (a valid HTTP-date) -> Last-Modified */
    bool has_lm_ago;
    int64_t lm_ago;         /* lm_ago= seconds before now */
    const char *vary;       /* vary= -> Vary */
    const char *sk;         /* sk= -> Surrogate-Key */
    const char *ct;         /* ct= -> Content-Type (default text/plain) */
    const char *cookie;     /* cookie= -> Set-Cookie */
    uint64_t delay_ms;      /* delay= before the response */
    bool chunked;           /* chunked=1: chunked framing */
    bool nodate;            /* nodate=1: no Date header */
    bool echo;              /* echo=1: answer GET with the JSON echo (what reached the origin) */
    bool has_fail_after;
    uint64_t fail_after;    /* fail_after=N: the path's requests after the N-th get 503 */
    bool has_age;
    uint64_t age;           /* age= -> Age */
    int r304;               /* r304=: how a 304 looks (ORIGIN_304_*) */
    buf_t extra;            /* header=Name:Value lines, "Name: Value\r\n" each */
    char *mem;              /* owned storage of the strings above */
} origin_params_t;

/* Parse query[0, qlen) (without the '?') into p. Unknown parameters are
 * ignored (so cache-busting ones pass). Returns 0, or -EINVAL with a
 * message naming the bad parameter in err (the 400 answer's body), or
 * -ENOMEM; p must be freed either way. */
int origin_params_parse(origin_params_t *p, const char *query, size_t qlen, char *err, size_t errlen);
/* Free what origin_params_parse allocated. */
void origin_params_free(origin_params_t *p);
/* Find parameter name in query[0, qlen) and URL-decode its value into a
 * malloc'd NUL-terminated string (caller frees) in *out. Returns 1 found,
 * 0 absent, -EINVAL for a bad escape or -ENOMEM (*out NULL). */
int origin_query_get(const char *query, size_t qlen, const char *name, char **out);

/* --- answering requests (origin_serve.c) --- */

typedef struct origin_stats origin_stats_t;

/* Answer an object request (any path outside /.origin/) on c: a synthetic
 * body for GET/HEAD, a JSON echo for other methods, shaped by the query.
 * count is the path's request count including this request (for
 * X-Origin-Count). Finishes the response, now or later (delay=, big
 * bodies), or stops quietly if the connection dies first. */
void origin_serve(http_conn_t *c, http_req_t *req, origin_stats_t *stats, uint64_t count);

/* --- images under /img/ (origin_image.c, origin_picture.c) --- */

/* What /img/NAME.EXT?... asks for, parsed; owned by the caller. */
typedef struct origin_image_req origin_image_req_t;
/* An image body, refcounted and shared by every thread (the cache holds
 * one reference); immutable. */
typedef struct origin_image origin_image_t;

/* Serve files from dir (may be NULL) instead of generated pictures when
 * dir/NAME.EXT exists. Call once before any request; dir must outlive
 * the origin. */
void origin_image_setup(const char *dir);
/* Drop the cache and stop libvips (no request may be in flight). */
void origin_image_shutdown(void);
/* Parse an /img/ request. Returns 1 when path is not under /img/ (*out
 * NULL); 0 with *out set; -ENOENT (not an image path: 404), -EINVAL (a
 * bad parameter: 400) or -ENOMEM, with the answer's body in err. */
int origin_image_parse(const char *path, size_t plen, const char *query, size_t qlen,
                       origin_image_req_t **out, char *err, size_t errlen);
/* Free r (NULL is fine). */
void origin_image_req_free(origin_image_req_t *r);
/* The image's Content-Type (static string). */
const char *origin_image_type(const origin_image_req_t *r);
/* The default strong ETag (quoted), a hash of everything the bytes depend
 * on; valid while r is. */
const char *origin_image_etag(const origin_image_req_t *r);
/* The body if it is cached (a new reference), else NULL. Cheap: for the
 * loop thread. */
origin_image_t *origin_image_lookup(const origin_image_req_t *r);
/* The body, cached or made now (a new reference in *out). Slow (up to
 * seconds for a big picture): for a thread-pool thread. Returns 0 or a
 * negative errno. */
int origin_image_make(const origin_image_req_t *r, origin_image_t **out);
/* The bytes of b, valid until b is released. */
const void *origin_image_data(const origin_image_t *b, size_t *len);
/* FNV-1a 64 of the bytes (X-Body-Checksum). */
uint64_t origin_image_sum(const origin_image_t *b);
/* Drop one reference (NULL is fine). */
void origin_image_release(origin_image_t *b);

enum { ORIGIN_PIC_JPEG, ORIGIN_PIC_PNG, ORIGIN_PIC_WEBP, ORIGIN_PIC_GIF };

/* A generated picture: format (ORIGIN_PIC_*), size, encoder quality
 * (JPEG, WebP) and frames (GIF). */
typedef struct origin_picture {
    int format;
    int width, height, quality, frames;
} origin_picture_t;

/* Generate the picture of name as p says and encode it into *out (len
 * bytes; free with g_free). Pure: the same arguments give the same bytes
 * in any process. Starts libvips on first use. Returns 0, -EIO (libvips
 * failed) or -ENOSYS (libvips did not start). */
int origin_picture_encode(const char *name, const origin_picture_t *p, void **out, size_t *len);
/* Stop libvips if it was started. */
void origin_picture_shutdown(void);

/* damage= values (origin_hostile.c). */
enum { ORIGIN_DAMAGE_NONE, ORIGIN_DAMAGE_TRUNCATE, ORIGIN_DAMAGE_TEXT, ORIGIN_DAMAGE_CORRUPT };

/* A PNG under 100 bytes whose IHDR claims 60000x60000 8-bit RGBA (valid
 * CRCs), with the start of a zlib stream as its IDAT. *out is malloc'd.
 * Returns 0 or -ENOMEM. */
int origin_hostile_bomb(uint8_t **out, size_t *len);
/* A damaged copy of src[0, len) (a format ORIGIN_PIC_* body) in *out
 * (malloc'd, *outlen bytes): TRUNCATE, its first half; TEXT, a few lines of
 * "this is not an image" (src unused); CORRUPT, a run of junk drawn from
 * seed over the middle of the compressed data (a JPEG's scan, a PNG's
 * IDAT, whose CRC is kept valid), so only a full decode notices. Returns 0
 * or -ENOMEM. */
int origin_hostile_damage(int damage, int format, uint64_t seed, const uint8_t *src, size_t len,
                          uint8_t **out, size_t *outlen);

/* --- request counters, shared by every worker thread --- */


/* A counter table bounded to max_paths paths (later paths are counted in
 * one "other" bucket). Owned by the caller; free with origin_stats_free. */
origin_stats_t *origin_stats_new(size_t max_paths);
/* Free the table and every counter (no thread may use it any more). */
void origin_stats_free(origin_stats_t *s);
/* Count one request for path with method (llhttp_method_t); returns how
 * many requests that path (or the other bucket) has had, this one included. */
uint64_t origin_stats_request(origin_stats_t *s, const char *path, size_t plen, int method);
/* Add n body bytes sent for path. */
void origin_stats_bytes(origin_stats_t *s, const char *path, size_t plen, uint64_t n);
/* Forget every counter. */
void origin_stats_reset(origin_stats_t *s);
/* Count one accepted TCP connection (shows whether clients reuse connections). */
void origin_stats_connection(origin_stats_t *s);
/* Append {"requests":N,"bytes":B,"paths":{...}} to out. Returns 0 or a
 * negative errno (out of memory). */
int origin_stats_json(origin_stats_t *s, buf_t *out);
/* Append {"path":P,"requests":n,"bytes":b} for one path (zeros if unseen). */
int origin_stats_path_json(origin_stats_t *s, const char *path, size_t plen, buf_t *out);
/* Append {"prefix":P,"paths":n,"requests":r,"bytes":b}: the sums over every
 * path counted one by one that starts with prefix (the "other" bucket, past
 * max_paths, has no path and is left out). Returns 0 or -ENOMEM. */
int origin_stats_prefix_json(origin_stats_t *s, const char *prefix, size_t plen, buf_t *out);
/* Append s[0, n) to out as a JSON string literal (quotes included). */
int origin_json_str(buf_t *out, const char *s, size_t n);

#endif
