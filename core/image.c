/* image: the libvips transform behind on-the-fly resizing (issue 11).
 *
 * One call = one source buffer in, one encoded buffer out, on the calling
 * (thread-pool) thread. The header is read first and every limit checked
 * on it; only then does vips_thumbnail decode, with shrink-on-load where
 * the format allows, so the pixels held are close to the output's.
 *
 * libvips appends each failure's message to one process-wide error
 * buffer; we turn its failures into negative errnos and clear it, so
 * nothing accumulates over millions of requests. Under concurrency a clear
 * may drop another thread's message: we never read them, so no harm.
 *
 * Formats: JPEG, PNG, WebP, GIF and HEIF/AVIF are read (HEIF counts as
 * AVIF, so SAME re-encodes a HEIC source as AVIF; a GIF source as PNG, first
 * frame only); anything else is -EINVAL. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <vips/vips.h>
#include <vips/vector.h> /* vips_vector_set_enabled: not in vips.h in 8.14 */

#include "image.h"

#define IMAGE_DEF_MAX_PIXELS 50000000ULL
#define IMAGE_DEF_MAX_BYTES  (25u * 1024 * 1024)
#define IMAGE_DEF_MAX_FRAMES 100
#define IMAGE_DEF_MAX_SIDE   4096
#define IMAGE_DEF_QUALITY    80
/* Every thumbnail call: a truncated or corrupt body is an error, not
 * grey pixels; an embedded ICC profile is transformed to sRGB (since the
 * output is stripped of metadata, it must be in the space browsers assume
 * without a profile). */
#define THUMB_OPTS "option_string", load_opts(info), "export_profile", "srgb", NULL
/* "No limit" on one axis of the thumbnail box. */
#define IMAGE_HUGE VIPS_MAX_COORD

static int image_avif_ok;

void image_opts_default(image_opts_t *o)
{
    o->max_pixels = IMAGE_DEF_MAX_PIXELS;
    o->max_bytes = IMAGE_DEF_MAX_BYTES;
    o->max_frames = IMAGE_DEF_MAX_FRAMES;
    o->max_side = IMAGE_DEF_MAX_SIDE;
}

/* o with its zero fields replaced by the defaults. */
static image_opts_t opts_or_default(const image_opts_t *o)
{
    image_opts_t r;
    image_opts_default(&r);
    if (o) {
        if (o->max_pixels)
            r.max_pixels = o->max_pixels;
        if (o->max_bytes)
            r.max_bytes = o->max_bytes;
        if (o->max_frames > 0)
            r.max_frames = o->max_frames;
        if (o->max_side > 0)
            r.max_side = o->max_side;
    }
    return r;
}

const char *image_content_type(image_format_t f)
{
    switch (f) {
    case IMAGE_FORMAT_JPEG: return "image/jpeg";
    case IMAGE_FORMAT_PNG:  return "image/png";
    case IMAGE_FORMAT_WEBP: return "image/webp";
    case IMAGE_FORMAT_AVIF: return "image/avif";
    case IMAGE_FORMAT_GIF:  return "image/gif";
    default:                return NULL;
    }
}

const char *image_strerror(int code)
{
    switch (code) {
    case 0:        return "success";
    case -E2BIG:   return "image over a configured limit (bytes, pixels, frames)";
    case -EINVAL:  return "image undecodable, unsupported or bad request";
    case -ENOMEM:  return "out of memory";
    case -ENOTSUP: return "output format not available (no encoder)";
    default:       return "image processing failed";
    }
}

/* Forget libvips' message for a failure we report as an errno. */
static int vips_fail(int code)
{
    vips_error_clear();
    return code;
}

/* Encode a tiny image as AVIF once: libheif may be built without an AV1
 * encoder, and we want to know at start-up, not on the first request. */
static int avif_probe(void)
{
    VipsImage *im = NULL;
    void *buf = NULL;
    size_t len = 0;
    int ok = 0;
    if (vips_type_find("VipsOperation", "heifsave_buffer") == 0)
        goto out;
    if (vips_black(&im, 16, 16, "bands", 3, NULL))
        goto out;
    ok = vips_heifsave_buffer(im, &buf, &len, "compression",
                              VIPS_FOREIGN_HEIF_COMPRESSION_AV1, NULL) == 0;
out:
    g_free(buf);
    if (im)
        g_object_unref(im);
    vips_error_clear();
    return ok;
}

int image_init(const image_opts_t *o, char *err, size_t errlen)
{
    if (o && (o->max_side < 0 || o->max_frames < 0)) {
        snprintf(err, errlen, "image: max_side and max_frames must be >= 0");
        return -EINVAL;
    }
    if (VIPS_INIT("cdn")) {
        snprintf(err, errlen, "image: libvips start failed: %s", vips_error_buffer());
        vips_error_clear();
        return -ENOMEM;
    }
    /* Only the common, fuzzed loaders (JPEG, PNG, WebP, GIF, HEIF...):
     * the input comes from arbitrary origins. */
    vips_block_untrusted_set(TRUE);
    /* One libvips worker per transform. Parallelism comes from our own
     * pool running several transforms at once; libvips' default of one
     * thread per core inside each of them would multiply threads by the
     * pool size and oversubscribe the cores, hurting tail latency. */
    vips_concurrency_set(1);
    /* No operation cache: every source buffer is different, so cached
     * operations would never be reused and would only pin their memory
     * (the source and the decoded pixels) after the request is done. */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    /* No run-time generated (orc) SIMD code. With the cache off, each
     * transform compiles and frees its orc programs, and Debian 12's
     * liborc 0.4.33 frees code chunks without its global lock: two
     * transform threads crashed the edge in orc_code_chunk_free during the
     * 2-concurrent image benchmark (later liborc takes the lock). The
     * price, measured, is 9-17% more CPU per transform; a crashed node
     * costs every client. */
    vips_vector_set_enabled(FALSE);
    image_avif_ok = avif_probe();
    return 0;
}

int image_avif_available(void)
{
    return image_avif_ok;
}

void image_shutdown(void)
{
    vips_shutdown();
}

/* The format libvips' loader nickname stands for; SAME when unsupported. */
static image_format_t loader_format(const char *loader)
{
    static const struct { const char *prefix; image_format_t f; } map[] = {
        {"jpegload", IMAGE_FORMAT_JPEG}, {"pngload", IMAGE_FORMAT_PNG},
        {"webpload", IMAGE_FORMAT_WEBP}, {"heifload", IMAGE_FORMAT_AVIF},
        {"gifload", IMAGE_FORMAT_GIF},
    };
    for (size_t i = 0; loader && i < sizeof map / sizeof map[0]; i++)
        if (strncmp(loader, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].f;
    return IMAGE_FORMAT_SAME;
}

int image_probe(const void *buf, size_t len, const image_opts_t *o, image_info_t *out)
{
    image_opts_t op = opts_or_default(o);
    VipsImage *im = NULL;
    const char *loader = NULL;
    int rc = 0;
    if (!buf || len == 0)
        return -EINVAL;
    if (len > op.max_bytes)
        return -E2BIG;
    /* Is any (trusted) loader willing? Cheap: it looks at magic bytes. */
    if (!vips_foreign_find_load_buffer(buf, len))
        return vips_fail(-EINVAL);
    /* Opening reads the header only; pixels are decoded on first access,
     * and we never access them here. */
    im = vips_image_new_from_buffer(buf, len, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (!im)
        return vips_fail(-EINVAL);
    if (vips_image_get_string(im, VIPS_META_LOADER, &loader) ||
        loader_format(loader) == IMAGE_FORMAT_SAME) {
        rc = vips_fail(-EINVAL);
        goto out;
    }
    int w = vips_image_get_width(im), h = vips_image_get_height(im);
    int frames = vips_image_get_n_pages(im);
    if (w <= 0 || h <= 0) {
        rc = -EINVAL;
        goto out;
    }
    if ((unsigned long long)w * (unsigned long long)h > op.max_pixels || frames > op.max_frames) {
        rc = -E2BIG;
        goto out;
    }
    out->frames = frames;
    out->format = loader_format(loader);
    out->width = vips_image_get_orientation_swap(im) ? h : w;
    out->height = vips_image_get_orientation_swap(im) ? w : h;
out:
    g_object_unref(im);
    return rc;
}

/* How strict the loader is. libjpeg reports corrupt entropy-coded data
 * only as warnings (it then decodes garbage), so JPEG fails on warnings;
 * libpng's warnings are mostly benign metadata (a known-bad sRGB iCCP
 * chunk, say) while its corruption is an error, so other formats fail on
 * errors only. */
static const char *load_opts(const image_info_t *info)
{
    return info->format == IMAGE_FORMAT_JPEG ? "fail_on=warning" : "fail_on=error";
}

/* Left/top offset of a crop of size `want` from `have` at a gravity. */
static int crop_offset(int have, int want, int where /* -1 start, 0 centre, 1 end */)
{
    if (where < 0)
        return 0;
    if (where > 0)
        return have - want;
    return (have - want) / 2;
}

/* Resize src to the request's box. info is the probed (oriented) size. */
static int resize(const void *src, size_t len, const image_info_t *info,
                  const image_req_t *rq, int max_side, VipsImage **res)
{
    int w = rq->w < max_side ? rq->w : max_side;
    int h = rq->h < max_side ? rq->h : max_side;
    VipsImage *t = NULL;
    int rc = 0;

    if (w == 0 && h == 0) /* format change only: keep the size (capped) */
        return vips_thumbnail_buffer((void *)src, len, res, max_side, "height", max_side,
                                     "size", VIPS_SIZE_DOWN, THUMB_OPTS);
    if (w == 0 || h == 0) /* one side: the other follows the aspect ratio */
        return vips_thumbnail_buffer((void *)src, len, res, w ? w : IMAGE_HUGE,
                                     "height", h ? h : IMAGE_HUGE,
                                     "size", rq->fit == IMAGE_FIT_INSIDE ? VIPS_SIZE_DOWN
                                                                         : VIPS_SIZE_BOTH,
                                     THUMB_OPTS);
    switch (rq->fit) {
    case IMAGE_FIT_CONTAIN:
    case IMAGE_FIT_INSIDE:
        return vips_thumbnail_buffer((void *)src, len, res, w, "height", h,
                                     "size", rq->fit == IMAGE_FIT_INSIDE ? VIPS_SIZE_DOWN
                                                                         : VIPS_SIZE_BOTH,
                                     THUMB_OPTS);
    case IMAGE_FIT_FILL:
        return vips_thumbnail_buffer((void *)src, len, res, w, "height", h,
                                     "size", VIPS_SIZE_FORCE, THUMB_OPTS);
    case IMAGE_FIT_COVER:
        if (rq->gravity == IMAGE_GRAVITY_SMART || rq->gravity == IMAGE_GRAVITY_CENTRE)
            return vips_thumbnail_buffer((void *)src, len, res, w, "height", h,
                                         "crop", rq->gravity == IMAGE_GRAVITY_SMART
                                                     ? VIPS_INTERESTING_ATTENTION
                                                     : VIPS_INTERESTING_CENTRE,
                                         THUMB_OPTS);
        break; /* compass gravity: resize to cover (below), then crop */
    case IMAGE_FIT_OUTSIDE:
        break;
    default:
        return -1;
    }
    /* Cover without crop: constrain the axis whose scale is larger and
     * let the other overflow. Since w/sw >= h/sh, sh*w/sw >= h. */
    if ((double)w / info->width >= (double)h / info->height)
        rc = vips_thumbnail_buffer((void *)src, len, &t, w, "height", IMAGE_HUGE,
                                   THUMB_OPTS);
    else
        rc = vips_thumbnail_buffer((void *)src, len, &t, IMAGE_HUGE, "height", h,
                                   THUMB_OPTS);
    if (rc)
        return rc;
    if (rq->fit == IMAGE_FIT_OUTSIDE) {
        *res = t;
        return 0;
    }
    /* Compass gravity: x and y placement of the crop window. */
    static const signed char gx[] = {0, 0, 1, 1, 1, 0, -1, -1, -1};
    static const signed char gy[] = {0, -1, -1, 0, 1, 1, 1, 0, -1};
    int cw = t->Xsize < w ? t->Xsize : w, ch = t->Ysize < h ? t->Ysize : h;
    rc = vips_extract_area(t, res, crop_offset(t->Xsize, cw, gx[rq->gravity]),
                           crop_offset(t->Ysize, ch, gy[rq->gravity]), cw, ch, NULL);
    g_object_unref(t);
    return rc;
}

/* Encode im as fmt into a g_malloc'd buffer. */
static int encode(VipsImage *im, image_format_t fmt, int q, void **buf, size_t *len)
{
    VipsImage *flat = NULL;
    int rc;
    switch (fmt) {
    case IMAGE_FORMAT_JPEG:
        /* JPEG has no alpha: flatten onto white rather than onto black. */
        if (vips_image_hasalpha(im)) {
            VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
            rc = vips_flatten(im, &flat, "background", white, NULL);
            vips_area_unref(VIPS_AREA(white));
            if (rc)
                return rc;
            im = flat;
        }
        rc = vips_jpegsave_buffer(im, buf, len, "Q", q, "strip", TRUE, NULL);
        break;
    case IMAGE_FORMAT_PNG:
        rc = vips_pngsave_buffer(im, buf, len, "strip", TRUE, NULL);
        break;
    case IMAGE_FORMAT_WEBP:
        rc = vips_webpsave_buffer(im, buf, len, "Q", q, "strip", TRUE, NULL);
        break;
    case IMAGE_FORMAT_AVIF:
        rc = vips_heifsave_buffer(im, buf, len, "Q", q, "strip", TRUE, "compression",
                                  VIPS_FOREIGN_HEIF_COMPRESSION_AV1, NULL);
        break;
    default:
        rc = -1;
    }
    if (flat)
        g_object_unref(flat);
    return rc;
}

int image_transform(const void *src, size_t len, const image_opts_t *o,
                    const image_req_t *rq, image_out_t *out)
{
    image_opts_t op = opts_or_default(o);
    image_info_t info;
    VipsImage *im = NULL, *t = NULL;
    void *buf = NULL;
    size_t blen = 0;
    int rc;

    if (!rq || rq->w < 0 || rq->h < 0 || rq->quality < 0 || rq->quality > 100 ||
        (unsigned)rq->gravity > IMAGE_GRAVITY_SMART || (unsigned)rq->fit > IMAGE_FIT_OUTSIDE)
        return -EINVAL;
    image_format_t fmt = rq->format;
    if (fmt == IMAGE_FORMAT_GIF || (unsigned)fmt > IMAGE_FORMAT_GIF)
        return -EINVAL;
    if ((rc = image_probe(src, len, &op, &info)) < 0)
        return rc;
    if (fmt == IMAGE_FORMAT_SAME)
        fmt = info.format == IMAGE_FORMAT_GIF ? IMAGE_FORMAT_PNG : info.format;
    if (fmt == IMAGE_FORMAT_AVIF && !image_avif_ok)
        return -ENOTSUP;

    /* vips_thumbnail applies the EXIF orientation (no_rotate=FALSE by
     * default) and imports an embedded ICC profile to sRGB. */
    if (resize(src, len, &info, rq, op.max_side, &im)) {
        rc = vips_fail(-EINVAL);
        goto out;
    }
    /* Outside/cover overflow or an unset box can still exceed max_side. */
    if (im->Xsize > op.max_side || im->Ysize > op.max_side) {
        double sx = (double)op.max_side / im->Xsize, sy = (double)op.max_side / im->Ysize;
        if (vips_resize(im, &t, sx < sy ? sx : sy, NULL)) {
            rc = vips_fail(-ENOMEM);
            goto out;
        }
        g_object_unref(im);
        im = t;
        t = NULL;
    }
    /* Sources without a profile (grey, CMYK without ICC, 16-bit) are
     * converted here: the output is 8-bit sRGB, so it needs no profile. */
    if (vips_image_get_interpretation(im) != VIPS_INTERPRETATION_sRGB ||
        vips_image_get_format(im) != VIPS_FORMAT_UCHAR) {
        if (vips_colourspace(im, &t, VIPS_INTERPRETATION_sRGB, NULL)) {
            rc = vips_fail(-EINVAL);
            goto out;
        }
        g_object_unref(im);
        im = t;
        t = NULL;
        if (vips_image_get_format(im) != VIPS_FORMAT_UCHAR) {
            if (vips_cast(im, &t, VIPS_FORMAT_UCHAR, NULL)) {
                rc = vips_fail(-EINVAL);
                goto out;
            }
            g_object_unref(im);
            im = t;
            t = NULL;
        }
    }
    /* Encoding pulls the pixels: a corrupt body fails here (fail_on). */
    if (encode(im, fmt, rq->quality ? rq->quality : IMAGE_DEF_QUALITY, &buf, &blen)) {
        rc = vips_fail(-EINVAL);
        goto out;
    }
    out->data = buf;
    out->len = blen;
    out->width = im->Xsize;
    out->height = im->Ysize;
    out->format = fmt;
    out->content_type = image_content_type(fmt);
    buf = NULL;
    rc = 0;
out:
    g_free(buf);
    if (im)
        g_object_unref(im);
    return rc;
}

void image_out_free(image_out_t *out)
{
    if (!out)
        return;
    g_free(out->data);
    memset(out, 0, sizeof *out);
}
