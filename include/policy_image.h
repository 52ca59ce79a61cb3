/* policy_image: the pure decisions of on-the-fly image resizing (issue
 * 11). It reads the transform parameters of an image URL's query string,
 * picks the output format from the request's Accept lines, and builds the
 * variant key under which the transformed bytes are cached. No I/O and no
 * image library here: the resizer gets the decisions as data.
 *
 * Query parameters (names are exact and lower-case; any other parameter,
 * "W" included, is not a transform parameter and is ignored: neither used
 * nor part of the variant key):
 *   w, h     pixels, 1..max_side
 *   fit      cover|contain|fill|inside|outside   default cover (sharp's)
 *   gravity  center|north|south|east|west|northeast|northwest|southeast|
 *            southwest|smart                      default center
 *   fmt      jpeg|png|webp|avif|auto              default: the source's
 *   q        1..100                               default per format
 *   dpr      1..4, at most two decimals (1.5, 1.25) default 1
 * dpr multiplies w and h (rounded to the nearest pixel); when the result
 * passes max_side both sides shrink by the same factor, so the aspect
 * ratio stays. After parsing, w and h are device pixels and dpr is folded
 * into them: "w=200&dpr=2" and "w=400" share one variant.
 * A bad value, a missing value or a repeated transform parameter is an
 * error whose message names the parameter (for a 400). Values are simple
 * tokens: a '%' in a transform parameter's value is refused, not decoded,
 * so no two spellings of one value can fragment the cache. */
#ifndef CDN_POLICY_IMAGE_H
#define CDN_POLICY_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "http_fields.h"

typedef enum {
    POLICY_IMAGE_FIT_COVER,
    POLICY_IMAGE_FIT_CONTAIN,
    POLICY_IMAGE_FIT_FILL,
    POLICY_IMAGE_FIT_INSIDE,
    POLICY_IMAGE_FIT_OUTSIDE,
} policy_image_fit_t;

typedef enum {
    POLICY_IMAGE_GRAVITY_CENTER,
    POLICY_IMAGE_GRAVITY_NORTH,
    POLICY_IMAGE_GRAVITY_SOUTH,
    POLICY_IMAGE_GRAVITY_EAST,
    POLICY_IMAGE_GRAVITY_WEST,
    POLICY_IMAGE_GRAVITY_NORTHEAST,
    POLICY_IMAGE_GRAVITY_NORTHWEST,
    POLICY_IMAGE_GRAVITY_SOUTHEAST,
    POLICY_IMAGE_GRAVITY_SOUTHWEST,
    POLICY_IMAGE_GRAVITY_SMART,
} policy_image_gravity_t;

typedef enum {
    POLICY_IMAGE_FMT_SAME,     /* the source's format; also "unknown / not transformable" */
    POLICY_IMAGE_FMT_JPEG,
    POLICY_IMAGE_FMT_PNG,
    POLICY_IMAGE_FMT_WEBP,
    POLICY_IMAGE_FMT_AVIF,
    POLICY_IMAGE_FMT_AUTO,     /* negotiated from Accept */
} policy_image_fmt_t;

typedef struct policy_image_params {
    unsigned w, h;             /* device pixels after dpr and allowed_widths; 0 = not asked */
    policy_image_fit_t fit;
    policy_image_gravity_t gravity;
    policy_image_fmt_t fmt;    /* as asked: SAME, an explicit format or AUTO */
    unsigned q;                /* 1..100; 0 = the format's default (policy_image_quality) */
    unsigned dpr_x100;         /* as asked, 100..400; already applied to w and h */
    bool any;                  /* false: no transform parameter, serve the source as is */
} policy_image_params_t;

typedef struct policy_image_limits {
    unsigned max_side;                 /* bound on w and h; 0 = 4096 */
    const unsigned *allowed_widths;    /* ascending; NULL = any width */
    size_t n_allowed;
    bool round_up;                     /* a width not listed: round up to the next listed one (else refuse) */
} policy_image_limits_t;

/* Parse the transform parameters of query[0, qlen) (without the '?') into
 * *out. allowed_widths applies to the width after dpr; when round_up moves
 * w, h moves by the same factor (the aspect ratio stays). A width above
 * the largest allowed one is refused, rounding or not: serving a smaller
 * image than asked would be a silent surprise. lim may be NULL (defaults).
 * Returns 0, or -EINVAL with a message naming the parameter in err. */
int policy_image_parse(policy_image_params_t *out, const char *query, size_t qlen,
                       const policy_image_limits_t *lim, char *err, size_t errlen);

/* The output format: for AUTO, AVIF when an Accept line of req names
 * image/avif with q > 0, else WebP likewise, else source. Only explicit
 * types count: "* / *" and "image/ *" pick neither (browsers that decode
 * AVIF or WebP name them), and an explicit q=0 on any line excludes the
 * type. SAME returns source; an explicit format returns itself. req may be
 * NULL (no Accept). */
policy_image_fmt_t policy_image_negotiate(policy_image_fmt_t asked, policy_image_fmt_t source,
                                          const http_fields_t *req);
/* The format choice that depends on the request only, not on the source:
 * for AUTO, AVIF (when avif_ok: this node can encode it) or WebP as
 * policy_image_negotiate would pick them, else SAME ("the source's");
 * any other asked format as it is. Variant keys are built from it, so
 * that a variant's key is known before its source is. */
policy_image_fmt_t policy_image_choice(policy_image_fmt_t asked, const http_fields_t *req, bool avif_ok);
/* True when the asked format depends on Accept (AUTO only): the response
 * then carries Vary: Accept. */
bool policy_image_varies(policy_image_fmt_t asked);

/* The quality to encode with in format fmt: p->q, or the format's default
 * (JPEG and WebP 80, AVIF 60). 0 for PNG, which is lossless. */
unsigned policy_image_quality(const policy_image_params_t *p, policy_image_fmt_t fmt);

/* Append to out the canonical variant key of p encoded as chosen (a
 * concrete format, or SAME for "the source's", as policy_image_choice
 * returns), e.g. "w=400;h=300;fit=cover;g=center;fmt=webp;q=80" (0 = the
 * source's side; q=0 for PNG; for SAME, q as asked, 0 = the default).
 * Equivalent requests give equal keys. Returns 0, -EINVAL when chosen is
 * AUTO, or out's error. */
int policy_image_variant_key(buf_t *out, const policy_image_params_t *p, policy_image_fmt_t chosen);

/* "same", "jpeg", "png", "webp", "avif", "auto"; static storage. */
const char *policy_image_fmt_name(policy_image_fmt_t fmt);
/* "image/jpeg" etc. for a concrete format, NULL for SAME and AUTO; static storage. */
const char *policy_image_content_type(policy_image_fmt_t fmt);
/* The format of a source from its Content-Type (case-insensitive,
 * parameters ignored). GIF maps to PNG: the output is a still image (the
 * first frame) and PNG keeps GIF's lossless palette and transparency.
 * Anything else gives SAME: not an image we transform, serve it as is. */
policy_image_fmt_t policy_image_fmt_from_content_type(const char *ct, size_t len);

/* True when name[0, len) is a transform parameter (w, h, fit, gravity,
 * fmt, q, dpr). */
bool policy_image_param_name(const char *name, size_t len);
/* Append to out the query of the source image: query[0, qlen) without its
 * transform parameters and without "sig" (the signature of a signed URL),
 * the other parameters kept as sent and in order, joined by '&'. Returns
 * 0 or out's error. */
int policy_image_source_query(buf_t *out, const char *query, size_t qlen);

#endif
