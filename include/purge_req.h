/* purge_req: the purge API's requests, token and answers, without I/O.
 *
 * `POST /.cdn/purge` carries a JSON body; this module turns those bytes
 * into a validated purge_req_t (or one message naming what is wrong, for
 * the 400), checks the `Authorization: Bearer` token in constant time, and
 * renders the JSON answers. The only I/O is purge_token_load, at start-up
 * or reload. Parsing and rendering use jansson. */
#ifndef CDN_PURGE_REQ_H
#define CDN_PURGE_REQ_H

#include <stdbool.h>
#include <stddef.h>

/* At most this many entries in "urls", "prefixes" and "tags" together. */
#define PURGE_REQ_MAX_ITEMS 1000
/* The longest tag, in bytes: also the bound of the tag index. */
#define PURGE_REQ_MAX_TAG_BYTES 128
/* The longest "host" (a DNS name is at most 253 bytes, plus ":65535"). */
#define PURGE_REQ_MAX_HOST_BYTES 259
/* A buffer of this size holds any token purge_token_load accepts. */
#define PURGE_TOKEN_MAX 1024

/* A validated purge. Every string is owned (NUL-terminated) and lives
 * until purge_req_free.
 * - urls and prefixes are as given: a path ("/a?x=1") or an absolute
 *   http(s) URL, each a request target policy_cache_key accepts (which
 *   lets an absolute URL's scheme and host win over `host`).
 * - all = true means everything; the lists are then empty (all wins).
 * - host == NULL: the Host header of the request decides. */
typedef struct purge_req {
    char **urls;
    size_t nurls;
    char **prefixes;
    size_t nprefixes;
    char **tags;
    size_t ntags;
    bool all, soft;
    char *host;
} purge_req_t;

/* Parse a POST /.cdn/purge body of len bytes. max_uri bounds each url and
 * prefix (the node's max_uri_size). Returns 0 and fills *out, or -EINVAL
 * (-ENOMEM) with a message for the client in err, naming the field, the
 * index and what was expected; *out is then empty (nothing partial).
 * Errors: malformed JSON, trailing bytes, duplicate keys, a top level that
 * is not an object, unknown fields, wrong types, empty strings, a request
 * that purges nothing, more than PURGE_REQ_MAX_ITEMS entries, a url or
 * prefix longer than max_uri or not a path / absolute http(s) URL, a bad
 * tag or host (see core/purge_req.c for the exact rules). */
int purge_req_parse(purge_req_t *out, const char *body, size_t len, size_t max_uri, char *err, size_t errlen);
/* Free what purge_req_parse filled; *r is empty afterwards (safe twice). */
void purge_req_free(purge_req_t *r);
/* True when h[0..len) is a host[:port] this API accepts: a name of
 * letters, digits, '-' and '.', or an [IPv6] literal, then an optional
 * port 1-65535. */
bool purge_req_host_valid(const char *h, size_t len);

/* Read the purge token from the first line of path into out[cap]
 * (surrounding whitespace stripped). Returns 0, or a negative errno with a
 * message for the operator in err: the file's own errno (missing,
 * unreadable), -EPERM when others may read or write it (chmod o-rw, as ssh
 * demands of its keys; group access is allowed for a service group),
 * -EINVAL when the token is empty or holds bytes other than visible ASCII,
 * -E2BIG when it does not fit in cap. */
int purge_token_load(const char *path, char *out, size_t cap, char *err, size_t errlen);
/* True when the Authorization field value a[0..alen) is `Bearer <token>`
 * (scheme in any case, one or more spaces) and the token equals
 * token[0..token_len). Takes the same time whatever the bytes and length
 * presented (both sides are hashed with a per-process random key before a
 * constant-time compare). False when token_len is 0. */
bool purge_token_check(const char *token, size_t token_len, const char *a, size_t alen);

typedef enum purge_peer_status {
    PURGE_PEER_CONFIRMED,
    PURGE_PEER_FAILED,
    PURGE_PEER_RETRYING,
} purge_peer_status_t;

/* One peer's answer to the forwarded purge. Strings are borrowed. */
typedef struct purge_peer_result {
    const char *peer;    /* "host:port" */
    purge_peer_status_t status;
    const char *detail;  /* a short reason; NULL renders as "" */
} purge_peer_result_t;

/* What a purge did, filled by the caller. peers is borrowed. */
typedef struct purge_result {
    size_t urls, tags, prefixes;
    bool all, soft;
    const purge_peer_result_t *peers;
    size_t npeers;
} purge_result_t;

/* Render {"purged": {"urls": N, "tags": N, "prefixes": N, "all": b,
 * "soft": b}, "peers": [{"peer": "...", "status": "confirmed" | "failed" |
 * "retrying", "detail": "..."}]}. Returns a string the caller free()s, or
 * NULL when memory runs out or a string is not UTF-8. */
char *purge_req_result_json(const purge_result_t *r);
/* Render {"error": msg} (bytes of msg that are not ASCII become '?' when
 * msg is not UTF-8). Returns a string the caller free()s, or NULL when
 * memory runs out. */
char *purge_req_error_json(const char *msg);
/* r as a request body for POST /.cdn/purge (how a node passes a purge on
 * to its peers), with "host" set to host (the site the purge is for; may
 * be NULL: none). Caller free()s; NULL when out of memory or not UTF-8. */
char *purge_req_to_json(const purge_req_t *r, const char *host);

#endif
