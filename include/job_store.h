/* job_store: the storing side of a fetch job (core/job_store.c): what of
 * a response head the clients see and what the store keeps, the commit of
 * a complete response, the header update of a revalidation (304), and the
 * invalidations after an unsafe method. */
#ifndef CDN_JOB_STORE_H
#define CDN_JOB_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "http_fields.h"
#include "job.h"

/* The client-facing view of a response (ri) from its headers; ri->stored
 * says whether it will be stored, and then j->meta holds its metadata.
 * NULL when out of memory. */
resp_info_t *job_store_plan(fjob_t *j, int status, const http_fields_t *hdrs, int64_t cl, int64_t now);
/* What a 304 answering the revalidation of j->validate does. */
typedef enum job_store_304 {
    JOB_STORE_304_UPDATED,     /* the stored headers are being updated (the update holds a reference to the
                                * job and unpublishes the fetch when committed); the validated object was published */
    JOB_STORE_304_ONLY_HERE,   /* validated for these waiters, but the new headers forbid keeping it: dropped */
    JOB_STORE_304_FOREIGN,     /* it fits no stored object: fetch the whole response */
    JOB_STORE_304_FAILED,      /* out of memory or a damaged record: abort */
} job_store_304_t;
job_store_304_t job_store_revalidated(fjob_t *j, const http_fields_t *hdrs, int64_t now);
/* The response is complete: queue the puts (Vary index, object). Returns
 * true when the store took over the job's reference. */
bool job_store_commit(fjob_t *j);
/* After an unsafe method: queue the deletion of the request URL and its
 * same-host Location / Content-Location. Returns true when the head is held
 * until they commit (job_held_release_cb then runs). */
bool job_store_invalidate(fjob_t *j, const http_fields_t *hdrs);

#endif
