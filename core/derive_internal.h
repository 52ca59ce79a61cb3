/* derive_internal: what core/derive.c (the source side and the start)
 * and core/derive_out.c (what a derivation sends: relays, errors, the
 * transform, the variant and its store put) share. Not an API. */
#ifndef CDN_DERIVE_INTERNAL_H
#define CDN_DERIVE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "derive.h"
#include "fetch.h"
#include "http_fields.h"
#include "image.h"
#include "policy_cache.h"
#include "policy_image.h"
#include "store.h"

/* An upstream error relayed for a variant: its body up to this size. */
#define RELAY_MAX (64 * 1024)

typedef struct derive derive_t;
struct derive {
    atomic_int refs;
    derive_t *next, *prev;     /* pw->derives while driven */
    bool listed, closed;
    proxy_worker_t *pw;
    worker_t *w;
    proxy_t *px;
    proxy_conf_t *conf;        /* the generation of the request that started it (held) */
    fetch_t *vf;               /* the variant's fetch: we publish on it */
    bool vf_done;              /* vf finished (published or failed) */
    fetch_t *sf;               /* the source's fetch, while we read it */
    fetch_waiter_t src_waiter;
    bool src_collapsed, head_seen, revalidated;
    http_fields_t req_hdrs;    /* the first request's: Vary checks, the variant id */
    char *url;                 /* the source's cache key */
    size_t url_len;
    uint8_t hash[16];
    policy_image_params_t params;
    policy_image_fmt_t choice;
    char vkey[128];
    size_t vkey_len;
    uint64_t start_seq;
    /* the source */
    int src_status;
    buf_t src;                 /* its body */
    buf_t src_block;           /* its client header block */
    buf_t src_cstatus;         /* its upstream Cache-Status */
    buf_t tags;
    policy_entry_t src_entry;
    uint64_t src_variant;
    bool src_stored;           /* the source response is (being) stored: the variant may be */
    store_key_t reval_key;     /* a 304 revalidated the stored source: read it there */
    uint64_t reval_object_id;
    bool too_large;
    const char *src_upstream;  /* the target that answered for the source (node's life), or NULL */
    uint64_t src_upstream_us;
    /* the transform */
    image_req_t rq;
    int err;
    buf_t out;                 /* the variant's bytes */
    const char *ctype;
    int64_t started_us;
    uint64_t transform_us;     /* the transform's own time, on its thread */
};

void derive_ref(derive_t *d);
/* The last reference frees d, on any thread (it owns no loop handle). */
void derive_unref(derive_t *d);
/* The owner is done driving d (unlinks it, drops the owner's reference). */
void derive_end(derive_t *d);
/* Stop reading the source's fetch. */
void src_detach(derive_t *d);
/* Append the whole body of obj (found in rd's open read transaction) to
 * out; false when a chunk of that version is gone or out of memory. */
bool derive_copy_body(store_reader_t *rd, const store_obj_t *obj, buf_t *out);
/* Read an object's whole body (and tags) from the store into d->src; false
 * when that version is gone. Sets d->too_large past image_max_size. */
bool derive_read_stored(derive_t *d, const store_key_t *k, uint64_t object_id);

/* --- derive_out.c --- */

/* Publish a complete response on the variant's fetch (see derive_out.c). */
void derive_publish(derive_t *d, int status, const char *block, size_t blen, const char *hblock, size_t hlen,
                    const policy_entry_t *e, const char *detail, const void *body, size_t len, bool shareable,
                    bool storing);
/* A generated answer for every waiter (never stored); ends d. */
void derive_publish_error(derive_t *d, int status, const char *detail, const char *msg);
/* Every waiter derives on its own; ends d. */
void derive_go_private(derive_t *d);
/* Everything about the source is known: relay it, reuse a stored
 * variant, or queue the transform. */
void derive_got_source(derive_t *d);

#endif
