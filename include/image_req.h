/* image_req: the request side of on-the-fly image resizing (issue 11;
 * core/image_req.c). A GET or HEAD on a [rule] with image = on whose
 * query holds transform parameters (w, h, fit, gravity, fmt, q, dpr) is a
 * variant request: it is keyed and fetched as its source (the URL without
 * those parameters and without sig), and answered with the variant.
 *
 * A variant is stored as a record of its source's URL (same cache key
 * string, same hash; its own variant id), so a URL, prefix or tag purge of
 * the source takes its variants with it. The record's secondary key names
 * the variant and links it to the source response it was made from (the
 * source's ETag, else Last-Modified, else Date, and its length): when the
 * source is replaced by a different response, the link no longer matches
 * and the variant is made again. The variant's freshness is the source's:
 * a variant is served only while its source may be, with the source's
 * current headers and the variant's own Content-Type, ETag and Vary. */
#ifndef CDN_IMAGE_REQ_H
#define CDN_IMAGE_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http_fields.h"
#include "lookup.h"
#include "policy_image.h"

typedef struct preq preq_t;

typedef struct preq_image {
    policy_image_params_t params;
    policy_image_fmt_t choice;  /* policy_image_choice: SAME = the source's format */
    char vkey[128];             /* policy_image_variant_key(params, choice) */
    size_t vkey_len;
    buf_t src_target;           /* path?query of the source */
    char msg[256];              /* the body of a 400 / 403 */
    uint64_t start_seq;         /* store_seq() before the source was read: a purge after it wins */
    bool src_usable;            /* p->stored is the source, usable as it is */
} preq_image_t;

/* RECV, p on a rule with image = on (p->key, p->rule set from the full
 * target): when p is a GET or HEAD with transform parameters, make it a
 * variant request (p->img, p->target and p->key become the source's).
 * Returns 0, or the status to answer (400 naming the parameter, 403 for a
 * missing or wrong signature, 414, 503) with its body in p->img->msg. */
int image_req_recv(preq_t *p, http_slice_t host);
/* LOOKUP for a variant request: serve the stored variant if its source
 * may be served (LOOKUP_SERVED / LOOKUP_SERVED_STALE); otherwise
 * LOOKUP_MISS, with p->stored the source when usable as it is
 * (img->src_usable) or to revalidate (LOOKUP_REVALIDATE). */
lookup_result_t image_req_lookup(preq_t *p);
void image_req_free(preq_image_t *img);

/* --- the variant record, shared with derive.c --- */

/* The link of a variant to its source response: a hash of the source's
 * ETag (else Last-Modified, else Date) and body length. */
uint64_t image_link(const char *block, size_t len, uint64_t body_len);
/* The store variant id of a variant of the source at src_variant. */
uint64_t image_variant_id(uint64_t src_variant, const char *vkey, size_t len);
/* The variant record's secondary key: "img:VKEY;src=LINK". */
int image_identity(buf_t *out, const char *vkey, size_t len, uint64_t link);
/* The variant's own header lines: Content-Type and an ETag derived from
 * the link and the variant key (weak when the source's is). */
int image_own_block(buf_t *out, const char *ctype, const char *src_block, size_t src_len, uint64_t link,
                    const char *vkey, size_t vlen);
/* The header block clients get for a variant: the source's block without
 * its representation fields (Content-Type, ETag, Content-Disposition,
 * digests, Vary), then own, then Vary: the source's, plus Accept when
 * vary_accept. */
int image_compose(buf_t *out, const char *src_block, size_t src_len, const char *own, size_t own_len,
                  bool vary_accept);

#endif
