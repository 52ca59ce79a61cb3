/* lookup: find the stored object for a request and decide what its
 * freshness allows (core/lookup.c): serve it, serve it stale while a
 * background fetch revalidates it, or go upstream (with its validators,
 * and with it as the answer of last resort under stale-if-error). */
#ifndef CDN_LOOKUP_H
#define CDN_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "object_meta.h"
#include "policy_cache.h"
#include "store.h"

typedef struct preq preq_t;

/* A stored object the request found but could not serve as it is (stale,
 * or the client asked for validation): what a revalidation, or a later
 * stale answer, needs once the read transaction is over. Owned copy. */
typedef struct stored {
    store_key_t key;           /* where the object lives (variant included) */
    uint64_t object_id;
    uint64_t body_len;
    char *meta;                /* the record's metadata blob (malloc'd) */
    size_t meta_len;
    bool soft_purged;          /* marked stale by a soft purge: revalidate end to end */
} stored_t;

typedef enum lookup_result {
    LOOKUP_SERVED,             /* answered (or being streamed) from the store */
    LOOKUP_SERVED_STALE,       /* answered stale; a background revalidation was started */
    LOOKUP_REVALIDATE,         /* p->stored needs validation upstream */
    LOOKUP_MISS,               /* nothing usable: fetch (p->fwd says why) */
} lookup_result_t;

/* Look p up in the store and answer it if a stored object may be used;
 * otherwise p->fwd says why not, and p->stored holds the object to
 * revalidate (or fall back on), if any. */
lookup_result_t lookup_serve(preq_t *p);
/* A copy of the stored object's reference and metadata (NULL when out of
 * memory); free with lookup_stored_free. */
stored_t *lookup_stored_dup(const stored_t *s);
/* Inside an open read transaction: find p's object (resolving Vary:
 * sets p->variant), verified against p's key. False (p->fwd says why:
 * uri-miss, vary-miss) when there is none. */
bool lookup_find(preq_t *p, store_key_t *k, store_obj_t *obj, object_meta_t *m);
/* What the object's freshness allows p, now (a soft-purged object counts
 * as just expired); its age and remaining ttl. */
policy_verdict_t lookup_verdict(preq_t *p, const store_obj_t *obj, object_meta_t *m, int64_t *age, int64_t *ttl);
/* An owned copy of an object found in the read transaction. */
stored_t *lookup_stored_copy(const store_key_t *k, const store_obj_t *obj);
/* Free s (NULL is fine). */
void lookup_stored_free(stored_t *s);

#endif
