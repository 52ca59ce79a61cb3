/* image: on-the-fly image resizing with libvips (issue 11).
 *
 * Bytes in, bytes out: the module knows nothing of requests or the cache.
 * Every limit (input bytes, decoded pixels, frames, output side) is checked
 * on the header before any pixel is decoded, so a small file that claims a
 * huge image costs nothing.
 *
 * Threads: image_probe() and image_transform() decode and encode on the
 * calling thread and may take hundreds of milliseconds. Call them from a
 * thread-pool thread (uv_queue_work), NEVER from an event loop thread.
 * They are safe to call from several threads at once after image_init().
 *
 * Output is always sRGB with all metadata stripped (EXIF orientation is
 * applied to the pixels first), so no ICC profile is needed with it. */
#ifndef CDN_IMAGE_H
#define CDN_IMAGE_H

#include <stddef.h>

typedef enum image_fit {
    IMAGE_FIT_COVER = 0, /* fill the box, crop the overflow at the gravity */
    IMAGE_FIT_CONTAIN,   /* fit within the box, keep aspect, may enlarge */
    IMAGE_FIT_INSIDE,    /* like contain but never enlarges */
    IMAGE_FIT_FILL,      /* stretch to exactly w x h */
    IMAGE_FIT_OUTSIDE,   /* cover the box, keep aspect, no crop */
} image_fit_t;

typedef enum image_gravity {
    IMAGE_GRAVITY_CENTRE = 0,
    IMAGE_GRAVITY_NORTH,
    IMAGE_GRAVITY_NORTH_EAST,
    IMAGE_GRAVITY_EAST,
    IMAGE_GRAVITY_SOUTH_EAST,
    IMAGE_GRAVITY_SOUTH,
    IMAGE_GRAVITY_SOUTH_WEST,
    IMAGE_GRAVITY_WEST,
    IMAGE_GRAVITY_NORTH_WEST,
    IMAGE_GRAVITY_SMART, /* libvips' attention crop (edges, skin, saturation) */
} image_gravity_t;

typedef enum image_format {
    IMAGE_FORMAT_SAME = 0, /* request: the source's format (GIF sources give PNG) */
    IMAGE_FORMAT_JPEG,
    IMAGE_FORMAT_PNG,
    IMAGE_FORMAT_WEBP,
    IMAGE_FORMAT_AVIF,     /* output needs libheif with an AV1 encoder */
    IMAGE_FORMAT_GIF,      /* input only */
} image_format_t;

/* Limits, all checked before decoding. 0 in a field means its default. */
typedef struct image_opts {
    unsigned long long max_pixels; /* source width x height; default 50,000,000 */
    size_t max_bytes;              /* source length; default 25 MiB */
    int max_frames;                /* source pages/frames; default 100 */
    int max_side;                  /* output width and height; default 4096 */
} image_opts_t;

/* What the header says; width/height are after EXIF orientation. */
typedef struct image_info {
    int width, height;
    int frames;
    image_format_t format;
} image_info_t;

typedef struct image_req {
    int w, h;               /* target box; 0 = unset (one set keeps the aspect) */
    image_fit_t fit;
    image_gravity_t gravity; /* used by IMAGE_FIT_COVER only */
    image_format_t format;   /* IMAGE_FORMAT_SAME or an output format */
    int quality;             /* 1..100; 0 = 80. Ignored by PNG. */
} image_req_t;

typedef struct image_out {
    void *data;               /* owned by the caller: free with image_out_free() */
    size_t len;
    int width, height;
    image_format_t format;
    const char *content_type; /* static string, e.g. "image/webp" */
} image_out_t;

/* Fill o with the defaults. */
void image_opts_default(image_opts_t *o);
/* Start libvips once, before any other call and before threads use it:
 * untrusted loaders off, one thread per transform, operation cache off.
 * o may be NULL (defaults); it is only validated here. Returns 0, or
 * -EINVAL/-ENOMEM with a message in err. */
int image_init(const image_opts_t *o, char *err, size_t errlen);
/* True when AVIF output works (probed once by image_init()). */
int image_avif_available(void);
/* Stop libvips; no call may be running or follow. */
void image_shutdown(void);

/* Read the header of buf only (no pixels) and check it against o (NULL =
 * defaults). Returns 0 and fills out; -E2BIG over a limit; -EINVAL for an
 * empty, undecodable or unsupported buffer. */
int image_probe(const void *buf, size_t len, const image_opts_t *o, image_info_t *out);
/* Probe src, then resize it as rq asks and encode it. Returns 0 and fills
 * out (free it with image_out_free()); -E2BIG over a limit; -EINVAL for a
 * bad request or a source that fails to decode; -ENOTSUP for AVIF output
 * without an encoder; -ENOMEM. out is untouched on error. */
int image_transform(const void *src, size_t len, const image_opts_t *o,
                    const image_req_t *rq, image_out_t *out);
/* Free out->data and clear out. NULL-safe. */
void image_out_free(image_out_t *out);
/* A static message for a code returned by this module. */
const char *image_strerror(int code);
/* The MIME type of an output format, or NULL for IMAGE_FORMAT_SAME. */
const char *image_content_type(image_format_t f);

#endif
