/* origin_picture: the pixels of the origin's generated images, and their
 * encoding (see origin_image.c for what serves them).
 *
 * Everything is a lazy libvips pipeline over vips_xyz coordinates, so a
 * 10000x10000 picture streams through the encoder without ever being held
 * whole. Each pixel is a function of its coordinates and of seeds drawn
 * from a hash of the name (vips_gaussnoise with an explicit seed hashes the
 * pixel position), so the bytes are the same in every process and with
 * any number of libvips threads. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include <vips/vips.h>

#include "hash.h"
#include "origin.h"

#define MAX_DISCS 6
#define SCALE 4        /* the smooth part is made at 1/SCALE of the size */
#define BLOTCH 4       /* side of the blotches, in small pixels */
#define GRAIN_TILE 256 /* side of the repeated grain tile */

static const uint8_t seed_key[16] = { 'o', 'r', 'i', 'g', 'i', 'n', '-', 'p',
                                      'i', 'c', 't', 'u', 'r', 'e', '-', '1' };

static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static int vips_ok;

/* splitmix64: a stream of well-mixed numbers from the name's hash. */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s) { return (double)(next(s) >> 11) / 9007199254740992.0; }

/* Fill the disc of centre (cx, cy) and radius r with ink, clipped to the
 * frame of rows [row0, row0 + rows) of the w-pixel-wide image px. */
static void fill_disc(uint8_t *px, int w, int bands, int row0, int rows, double cx, double cy, double r,
                      const uint8_t *ink)
{
    int y0 = (int)floor(cy - r), y1 = (int)ceil(cy + r);
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < rows; y++) {
        double dy = y + 0.5 - cy;
        if (dy * dy >= r * r)
            continue;
        double half = sqrt(r * r - dy * dy);
        int x0 = (int)ceil(cx - half - 0.5), x1 = (int)floor(cx + half - 0.5);
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < w; x++)
            memcpy(px + ((size_t)(row0 + y) * w + x) * bands, ink, bands);
    }
}

/* width x (height * frames) pixels, sRGB, 3 bands (4 with alpha), uchar.
 * Frame i of a GIF is rows [i * height, (i + 1) * height): the discs move
 * from frame to frame. On success *out is a new reference.
 *
 * The smooth part (gradient, blotches, discs) is made at 1/S of the size
 * and zoomed: float work on every pixel of a 4000x3000 picture took
 * seconds. S divides a GIF's frame height, so that every small row belongs
 * to one frame. The discs are filled in C on the small image, frame by
 * frame (a libvips expression per disc cost more than all the rest). The
 * grain is one noise tile repeated: vips_gaussnoise over the whole picture
 * took a second too. Small images are made in memory first, so that the
 * lazy pipeline does not recompute them for every strip of the output. */
static int picture(const char *name, int width, int height, int frames, bool alpha, VipsImage **out)
{
    VipsObject *ctx = VIPS_OBJECT(vips_image_new());
    VipsImage **t = (VipsImage **)vips_object_local_array(ctx, 48);
    uint64_t s = hash_sip64(seed_key, name, strlen(name));
    int n = 0, rc = -1, tall = height * frames, bands = alpha ? 4 : 3;
    int S = frames == 1 || height % SCALE == 0 ? SCALE : height % 2 == 0 ? 2 : 1;
    int lw = (width + S - 1) / S, lh = (tall + S - 1) / S, lfh = (height + S - 1) / S;
    uint8_t *px = NULL;
    size_t pxlen = 0;
#define T(call) do { if (call) goto out; n++; } while (0)
    /* A gradient from colour c0 to c1 along a direction from the name, in
     * small-pixel coordinates, the same in every frame. */
    T(vips_xyz(&t[n], lw, lh, NULL));
    VipsImage *xy = t[n - 1];
    T(vips_extract_band(xy, &t[n], 0, NULL));
    VipsImage *x = t[n - 1];
    T(vips_extract_band(xy, &t[n], 1, NULL));
    VipsImage *y = t[n - 1];
    if (frames > 1) {
        T(vips_remainder_const1(y, &t[n], lfh, NULL));
        y = t[n - 1];
    }
    double th = unit(&s) * 2 * M_PI, ca = cos(th), sa = sin(th);
    double len = lw * fabs(ca) + lfh * fabs(sa) + 1;
    double min = (ca < 0 ? lw * ca : 0) + (sa < 0 ? lfh * sa : 0);
    T(vips_linear1(x, &t[n], ca / len, -min / len, NULL));
    VipsImage *tx = t[n - 1];
    T(vips_linear1(y, &t[n], sa / len, 0.0, NULL));
    T(vips_add(tx, t[n - 1], &t[n], NULL));
    double a[3], b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = 255 * unit(&s);
        a[i] = 255 * unit(&s) - b[i];
    }
    T(vips_linear(t[n - 1], &t[n], a, b, 3, NULL));
    VipsImage *grad = t[n - 1];
    /* Blotches: coarse noise in blocks, something for an attention crop to find. */
    int seed1 = (int)(next(&s) & 0x7fffffff), seed2 = (int)(next(&s) & 0x7fffffff);
    T(vips_gaussnoise(&t[n], lw / BLOTCH + 1, lh / BLOTCH + 1, "mean", 0.0, "sigma", 18.0,
                      "seed", seed1, NULL));
    T(vips_zoom(t[n - 1], &t[n], BLOTCH, BLOTCH, NULL));
    T(vips_extract_area(t[n - 1], &t[n], 0, 0, lw, lh, NULL));
    T(vips_add(grad, t[n - 1], &t[n], NULL));
    T(vips_cast(t[n - 1], &t[n], VIPS_FORMAT_UCHAR, NULL)); /* clips to 0..255 */
    if (alpha)
        T(vips_bandjoin_const1(t[n - 1], &t[n], 255.0, NULL));
    T(!(px = vips_image_write_to_memory(t[n - 1], &pxlen)));
    /* Discs of other colours; in a GIF they drift sideways, wrapping round. */
    int ndiscs = 3 + (int)(next(&s) % (MAX_DISCS - 2)), side = lw < lfh ? lw : lfh;
    for (int k = 0; k < ndiscs; k++) {
        double cx = unit(&s) * lw, cy = unit(&s) * lfh, r = side * (0.08 + 0.17 * unit(&s)) + 0.5;
        double vx = ((int)(next(&s) % 9) - 4) * (lw / 60.0 + 1);
        uint8_t ink[4] = { 0, 0, 0, k == 0 ? 128 : 255 }; /* the first one half transparent */
        for (int i = 0; i < 3; i++)
            ink[i] = (uint8_t)(next(&s) & 255);
        for (int f = 0; f < frames; f++) {
            double fx = fmod(cx + f * vx + r, lw + 2 * r);
            fill_disc(px, lw, bands, f * lfh, f == frames - 1 ? lh - f * lfh : lfh,
                      (fx < 0 ? fx + lw + 2 * r : fx) - r, cy, r, ink);
        }
    }
    T(!(t[n] = vips_image_new_from_memory_copy(px, pxlen, lw, lh, bands, VIPS_FORMAT_UCHAR)));
    T(vips_zoom(t[n - 1], &t[n], S, S, NULL));
    T(vips_extract_area(t[n - 1], &t[n], 0, 0, width, tall, NULL));
    VipsImage *big = t[n - 1], *colour = big;
    if (alpha)
        T(vips_extract_band(big, &t[n], 0, "n", 3, NULL));
    colour = t[n - 1];
    /* Grain on every pixel, so that JPEG quality changes the size. */
    T(vips_gaussnoise(&t[n], GRAIN_TILE, GRAIN_TILE, "mean", 0.0, "sigma", 10.0, "seed", seed2, NULL));
    T(vips_cast(t[n - 1], &t[n], VIPS_FORMAT_CHAR, NULL));
    T(!(t[n] = vips_image_copy_memory(t[n - 1])));
    T(vips_replicate(t[n - 1], &t[n], width / GRAIN_TILE + 1, tall / GRAIN_TILE + 1, NULL));
    T(vips_extract_area(t[n - 1], &t[n], 0, 0, width, tall, NULL));
    T(vips_add(colour, t[n - 1], &t[n], NULL));
    T(vips_cast(t[n - 1], &t[n], VIPS_FORMAT_UCHAR, NULL));
    if (alpha) {
        VipsImage *grained = t[n - 1];
        T(vips_extract_band(big, &t[n], 3, NULL));
        T(vips_bandjoin2(grained, t[n - 1], &t[n], NULL));
    }
    T(vips_copy(t[n - 1], &t[n], "interpretation", VIPS_INTERPRETATION_sRGB, NULL));
#undef T
    *out = t[n - 1];
    g_object_ref(*out);
    rc = 0;
out:
    g_free(px);
    g_object_unref(ctx);
    return rc;
}

static void init_vips(void)
{
    if (VIPS_INIT("origin")) {
        vips_error_clear();
        return;
    }
    /* One thread per picture: the thread pool makes several at once, and
     * a load test's edge on the same host needs the other cores. */
    vips_concurrency_set(1);
    /* Pictures are cached as encoded bytes (origin_image.c): libvips'
     * operation cache would only pin memory. */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    vips_ok = 1;
}

int origin_picture_encode(const char *name, const origin_picture_t *p, void **out, size_t *len)
{
    VipsImage *im = NULL, *c = NULL;
    int rc = -1;
    pthread_once(&vips_once, init_vips);
    if (!vips_ok)
        return -ENOSYS;
    if (picture(name, p->width, p->height, p->frames, p->format == ORIGIN_PIC_PNG, &im))
        goto out;
    switch (p->format) {
    case ORIGIN_PIC_JPEG:
        rc = vips_jpegsave_buffer(im, out, len, "Q", p->quality, "strip", TRUE, NULL);
        break;
    case ORIGIN_PIC_PNG:
        rc = vips_pngsave_buffer(im, out, len, "strip", TRUE, "compression", 1, NULL);
        break;
    case ORIGIN_PIC_WEBP:
        rc = vips_webpsave_buffer(im, out, len, "Q", p->quality, "strip", TRUE, "effort", 0, NULL);
        break;
    case ORIGIN_PIC_GIF: {
        /* libvips' multi-page image: one tall image plus page-height. */
        if (vips_copy(im, &c, NULL))
            goto out;
        int *delay = g_new(int, p->frames);
        for (int i = 0; i < p->frames; i++)
            delay[i] = 100; /* ms per frame */
        vips_image_set_int(c, "page-height", p->height);
        vips_image_set_int(c, "loop", 0);
        vips_image_set_array_int(c, "delay", delay, p->frames);
        g_free(delay);
        rc = vips_gifsave_buffer(c, out, len, "effort", 1, NULL);
        break;
    }
    }
out:
    if (c)
        g_object_unref(c);
    if (im)
        g_object_unref(im);
    if (rc) {
        vips_error_clear();
        return -EIO;
    }
    return 0;
}

void origin_picture_shutdown(void)
{
    if (vips_ok)
        vips_shutdown();
}
