/* image: each fit mode gives the right box, one side keeps the aspect,
 * every output format decodes back with its own loader, quality and
 * max_side are honoured, and hostile inputs (a huge header, corrupt or
 * truncated bodies, text, nothing, too many frames) are refused cleanly,
 * the huge header before any pixel is allocated. Every input is made with
 * libvips here; nothing is read from disk. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <vips/vips.h>
#include <vips/vector.h>

#include "image.h"

static void setup(void)
{
    char err[256] = "";
    /* The hostile inputs make libvips warn on stderr; keep the log clean. */
    setenv("VIPS_WARNING", "0", 1);
    cr_assert_eq(image_init(NULL, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    image_shutdown();
}

TestSuite(image_vips, .init = setup, .fini = teardown);

/* Noise of w x h x 3 bands, saved by saver ("jpeg", "png", ...). */
static void *make_image(int w, int h, const char *saver, size_t *len)
{
    VipsImage *noise = NULL, *u8 = NULL, *three = NULL;
    void *buf = NULL;
    cr_assert_eq(vips_gaussnoise(&noise, w, h, "mean", 128.0, "sigma", 40.0, NULL), 0);
    cr_assert_eq(vips_cast(noise, &u8, VIPS_FORMAT_UCHAR, NULL), 0);
    VipsImage *in[3] = {u8, u8, u8};
    cr_assert_eq(vips_bandjoin(in, &three, 3, NULL), 0);
    VipsImage *srgb = NULL;
    cr_assert_eq(vips_copy(three, &srgb, "interpretation", VIPS_INTERPRETATION_sRGB, NULL), 0);
    char name[64];
    snprintf(name, sizeof name, ".%s", saver);
    cr_assert_eq(vips_image_write_to_buffer(srgb, name, &buf, len, NULL), 0,
                 "%s", vips_error_buffer());
    g_object_unref(srgb);
    g_object_unref(three);
    g_object_unref(u8);
    g_object_unref(noise);
    return buf;
}

/* Decode out with libvips: the loader's nickname must start with loader
 * and the size must be what out says. */
static void check_decodes(const image_out_t *out, const char *loader)
{
    VipsImage *im = vips_image_new_from_buffer(out->data, out->len, "", NULL);
    cr_assert_not_null(im, "%s", vips_error_buffer());
    const char *l = NULL;
    cr_assert_eq(vips_image_get_string(im, VIPS_META_LOADER, &l), 0);
    cr_assert(strncmp(l, loader, strlen(loader)) == 0, "loader %s, expected %s", l, loader);
    cr_assert_eq(vips_image_get_width(im), out->width);
    cr_assert_eq(vips_image_get_height(im), out->height);
    double avg = 0;
    cr_assert_eq(vips_avg(im, &avg, NULL), 0, "pixels decode: %s", vips_error_buffer());
    g_object_unref(im);
}

/* Transform a w x h JPEG with rq; expects success and returns the size. */
static void transform_size(int sw, int sh, image_req_t rq, int *w, int *h)
{
    size_t len;
    void *src = make_image(sw, sh, "jpg", &len);
    image_out_t out;
    int rc = image_transform(src, len, NULL, &rq, &out);
    cr_assert_eq(rc, 0, "%s", image_strerror(rc));
    check_decodes(&out, "jpegload");
    *w = out.width;
    *h = out.height;
    image_out_free(&out);
    g_free(src);
}

Test(image_vips, cover_fills_the_box_exactly)
{
    int w, h;
    for (int g = IMAGE_GRAVITY_CENTRE; g <= IMAGE_GRAVITY_SMART; g++) {
        transform_size(400, 200, (image_req_t){.w = 100, .h = 100, .fit = IMAGE_FIT_COVER,
                                               .gravity = g}, &w, &h);
        cr_assert_eq(w, 100, "gravity %d: %d", g, w);
        cr_assert_eq(h, 100, "gravity %d: %d", g, h);
    }
}

Test(image_vips, contain_fits_within_and_keeps_aspect)
{
    int w, h;
    transform_size(400, 200, (image_req_t){.w = 100, .h = 100, .fit = IMAGE_FIT_CONTAIN}, &w, &h);
    cr_assert_eq(w, 100);
    cr_assert_eq(h, 50);
    /* contain may enlarge */
    transform_size(40, 20, (image_req_t){.w = 100, .h = 100, .fit = IMAGE_FIT_CONTAIN}, &w, &h);
    cr_assert_eq(w, 100);
    cr_assert_eq(h, 50);
}

Test(image_vips, fill_stretches_to_the_box)
{
    int w, h;
    transform_size(400, 200, (image_req_t){.w = 120, .h = 90, .fit = IMAGE_FIT_FILL}, &w, &h);
    cr_assert_eq(w, 120);
    cr_assert_eq(h, 90);
}

Test(image_vips, inside_never_enlarges)
{
    int w, h;
    transform_size(40, 20, (image_req_t){.w = 100, .h = 100, .fit = IMAGE_FIT_INSIDE}, &w, &h);
    cr_assert_eq(w, 40);
    cr_assert_eq(h, 20);
    transform_size(400, 200, (image_req_t){.w = 100, .h = 100, .fit = IMAGE_FIT_INSIDE}, &w, &h);
    cr_assert_eq(w, 100);
    cr_assert_eq(h, 50);
}

Test(image_vips, outside_covers_without_crop)
{
    int w, h;
    transform_size(400, 200, (image_req_t){.w = 100, .h = 100, .fit = IMAGE_FIT_OUTSIDE}, &w, &h);
    cr_assert_eq(w, 200);
    cr_assert_eq(h, 100);
    transform_size(200, 400, (image_req_t){.w = 100, .h = 60, .fit = IMAGE_FIT_OUTSIDE}, &w, &h);
    cr_assert_eq(w, 100);
    cr_assert_eq(h, 200);
}

Test(image_vips, one_side_keeps_the_aspect)
{
    int w, h;
    transform_size(400, 200, (image_req_t){.w = 100}, &w, &h);
    cr_assert_eq(w, 100);
    cr_assert_eq(h, 50);
    transform_size(400, 200, (image_req_t){.h = 100}, &w, &h);
    cr_assert_eq(w, 200);
    cr_assert_eq(h, 100);
}

Test(image_vips, no_box_keeps_the_size)
{
    int w, h;
    transform_size(123, 77, (image_req_t){0}, &w, &h);
    cr_assert_eq(w, 123);
    cr_assert_eq(h, 77);
}

Test(image_vips, each_format_decodes_back)
{
    static const struct { image_format_t f; const char *loader, *type; } fmts[] = {
        {IMAGE_FORMAT_JPEG, "jpegload", "image/jpeg"},
        {IMAGE_FORMAT_PNG, "pngload", "image/png"},
        {IMAGE_FORMAT_WEBP, "webpload", "image/webp"},
        {IMAGE_FORMAT_AVIF, "heifload", "image/avif"},
    };
    size_t len;
    void *src = make_image(300, 200, "png", &len);
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        image_req_t rq = {.w = 60, .h = 40, .fit = IMAGE_FIT_COVER, .format = fmts[i].f};
        image_out_t out;
        int rc = image_transform(src, len, NULL, &rq, &out);
        if (fmts[i].f == IMAGE_FORMAT_AVIF && !image_avif_available()) {
            cr_assert_eq(rc, -ENOTSUP);
            continue;
        }
        cr_assert_eq(rc, 0, "%s: %s", fmts[i].loader, image_strerror(rc));
        cr_assert_eq(out.format, fmts[i].f);
        cr_assert_str_eq(out.content_type, fmts[i].type);
        cr_assert_eq(out.width, 60);
        cr_assert_eq(out.height, 40);
        check_decodes(&out, fmts[i].loader);
        image_out_free(&out);
    }
    /* SAME keeps the source's format. */
    image_out_t out;
    cr_assert_eq(image_transform(src, len, NULL, &(image_req_t){.w = 30}, &out), 0);
    cr_assert_eq(out.format, IMAGE_FORMAT_PNG);
    check_decodes(&out, "pngload");
    image_out_free(&out);
    g_free(src);
}

Test(image_vips, quality_lowers_jpeg_size)
{
    size_t len;
    void *src = make_image(300, 300, "png", &len);
    image_out_t lo, hi;
    image_req_t rq = {.format = IMAGE_FORMAT_JPEG, .quality = 20};
    cr_assert_eq(image_transform(src, len, NULL, &rq, &lo), 0);
    rq.quality = 95;
    cr_assert_eq(image_transform(src, len, NULL, &rq, &hi), 0);
    cr_assert_lt(lo.len, hi.len, "q20 %zu bytes, q95 %zu", lo.len, hi.len);
    image_out_free(&lo);
    image_out_free(&hi);
    g_free(src);
}

Test(image_vips, max_side_caps_output)
{
    size_t len;
    void *src = make_image(400, 200, "jpg", &len);
    image_opts_t o = {.max_side = 50};
    image_out_t out;
    /* an explicit box larger than the cap */
    cr_assert_eq(image_transform(src, len, &o, &(image_req_t){.w = 300, .h = 300,
                                  .fit = IMAGE_FIT_FILL}, &out), 0);
    cr_assert_eq(out.width, 50);
    cr_assert_eq(out.height, 50);
    image_out_free(&out);
    /* no box: the source is shrunk to fit the cap */
    cr_assert_eq(image_transform(src, len, &o, &(image_req_t){0}, &out), 0);
    cr_assert_eq(out.width, 50);
    cr_assert_eq(out.height, 25);
    image_out_free(&out);
    /* outside would overflow the cap: capped after the resize */
    cr_assert_eq(image_transform(src, len, &o, &(image_req_t){.w = 50, .h = 50,
                                  .fit = IMAGE_FIT_OUTSIDE}, &out), 0);
    cr_assert_leq(out.width, 50);
    cr_assert_leq(out.height, 50);
    image_out_free(&out);
    g_free(src);
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

Test(image_vips, huge_png_header_refused_before_decode)
{
    size_t len;
    uint8_t *png = make_image(16, 16, "png", &len);
    /* signature (8), IHDR length (4), "IHDR" (4), width, height ... CRC
     * over type + 13 data bytes at offset 29. */
    cr_assert(memcmp(png + 12, "IHDR", 4) == 0);
    put_be32(png + 16, 60000);
    put_be32(png + 20, 60000);
    put_be32(png + 29, crc32(png + 12, 17));

    image_info_t info;
    /* A generous pixel cap: the header is valid and reads as 60000^2. */
    image_opts_t big = {.max_pixels = 4000000000ULL};
    cr_assert_eq(image_probe(png, len, &big, &info), 0);
    cr_assert_eq(info.width, 60000);
    cr_assert_eq(info.format, IMAGE_FORMAT_PNG);

    long rss0 = max_rss_kb();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(image_probe(png, len, NULL, &info), -E2BIG);
    image_out_t out;
    cr_assert_eq(image_transform(png, len, NULL, &(image_req_t){.w = 10}, &out), -E2BIG);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* 60000^2 x 3 bytes would be 10 GB: refused in well under a second
     * and with no growth of the peak RSS worth mentioning. */
    cr_assert_lt(secs, 1.0, "took %.3f s", secs);
    cr_assert_lt(max_rss_kb() - rss0, 50 * 1024, "peak RSS grew by %ld KiB", max_rss_kb() - rss0);
    g_free(png);
}

Test(image_vips, limits_on_bytes_and_pixels)
{
    size_t len;
    void *src = make_image(100, 100, "png", &len);
    image_info_t info;
    cr_assert_eq(image_probe(src, len, &(image_opts_t){.max_bytes = len - 1}, &info), -E2BIG);
    cr_assert_eq(image_probe(src, len, &(image_opts_t){.max_pixels = 9999}, &info), -E2BIG);
    cr_assert_eq(image_probe(src, len, &(image_opts_t){.max_pixels = 10000}, &info), 0);
    g_free(src);
}

/* Expect -EINVAL from both probe and transform (or transform alone). */
static void assert_refused(const void *buf, size_t len, bool probe_too)
{
    image_info_t info;
    image_out_t out;
    if (probe_too)
        cr_assert_eq(image_probe(buf, len, NULL, &info), -EINVAL);
    cr_assert_eq(image_transform(buf, len, NULL, &(image_req_t){.w = 10}, &out), -EINVAL);
}

Test(image_vips, corrupt_jpeg_refused)
{
    uint8_t junk[4096];
    junk[0] = 0xff, junk[1] = 0xd8;
    srand(11);
    for (size_t i = 2; i < sizeof junk; i++)
        junk[i] = rand();
    image_out_t out;
    int rc = image_transform(junk, sizeof junk, NULL, &(image_req_t){.w = 10}, &out);
    cr_assert(rc == -EINVAL, "rc %d", rc);
}

Test(image_vips, truncated_png_refused)
{
    size_t len;
    void *src = make_image(200, 200, "png", &len);
    assert_refused(src, len / 2, false);
    assert_refused(src, 20, true); /* cut inside the IHDR */
    g_free(src);
}

Test(image_vips, text_and_empty_refused)
{
    static const char text[] = "hello, this is not an image\n";
    assert_refused(text, sizeof text - 1, true);
    assert_refused(text, 0, true);
    assert_refused(NULL, 0, true);
}

Test(image_vips, bad_requests_refused)
{
    size_t len;
    void *src = make_image(20, 20, "png", &len);
    image_out_t out;
    cr_assert_eq(image_transform(src, len, NULL, &(image_req_t){.w = -1}, &out), -EINVAL);
    cr_assert_eq(image_transform(src, len, NULL, &(image_req_t){.quality = 101}, &out), -EINVAL);
    cr_assert_eq(image_transform(src, len, NULL, &(image_req_t){.format = IMAGE_FORMAT_GIF},
                                 &out), -EINVAL);
    g_free(src);
}

Test(image_vips, too_many_frames_refused)
{
    /* 5 frames of 8x8 stacked vertically, saved as an animated GIF. */
    VipsImage *im = NULL;
    void *gif = NULL;
    size_t len;
    cr_assert_eq(vips_black(&im, 8, 40, "bands", 3, NULL), 0);
    vips_image_set_int(im, VIPS_META_PAGE_HEIGHT, 8);
    cr_assert_eq(vips_gifsave_buffer(im, &gif, &len, NULL), 0, "%s", vips_error_buffer());
    g_object_unref(im);
    image_info_t info;
    cr_assert_eq(image_probe(gif, len, NULL, &info), 0);
    cr_assert_eq(info.frames, 5);
    cr_assert_eq(info.format, IMAGE_FORMAT_GIF);
    cr_assert_eq(image_probe(gif, len, &(image_opts_t){.max_frames = 4}, &info), -E2BIG);
    /* SAME from a GIF: first frame as PNG */
    image_out_t out;
    cr_assert_eq(image_transform(gif, len, NULL, &(image_req_t){0}, &out), 0);
    cr_assert_eq(out.format, IMAGE_FORMAT_PNG);
    cr_assert_eq(out.width, 8);
    cr_assert_eq(out.height, 8);
    image_out_free(&out);
    g_free(gif);
}

/* Mean of band b of an encoded image. */
static double band_mean(const image_out_t *out, int b)
{
    VipsImage *im = vips_image_new_from_buffer(out->data, out->len, "", NULL), *band = NULL;
    cr_assert_not_null(im);
    double avg = 0;
    cr_assert_eq(vips_extract_band(im, &band, b, NULL), 0);
    cr_assert_eq(vips_avg(band, &avg, NULL), 0);
    g_object_unref(band);
    g_object_unref(im);
    return avg;
}

Test(image_vips, embedded_profile_converted_to_srgb_and_stripped)
{
    /* sRGB red, converted to Display P3 with the P3 profile embedded: its
     * raw values are far from red, so only a converting transform gets
     * red back. */
    VipsImage *black = NULL, *red = NULL, *p3 = NULL;
    void *src = NULL;
    size_t len;
    double px[3] = {255, 0, 0};
    cr_assert_eq(vips_black(&black, 32, 32, "bands", 3, NULL), 0);
    cr_assert_eq(vips_linear(black, &red, (double[]){1, 1, 1}, px, 3,
                             "uchar", TRUE, NULL), 0);
    red->Type = VIPS_INTERPRETATION_sRGB;
    cr_assert_eq(vips_icc_transform(red, &p3, "p3", "input_profile", "srgb",
                                    "embedded", FALSE, NULL), 0, "%s", vips_error_buffer());
    cr_assert_eq(vips_pngsave_buffer(p3, &src, &len, NULL), 0);
    cr_assert(vips_image_get_typeof(p3, VIPS_META_ICC_NAME) != 0);
    image_out_t out;
    cr_assert_eq(image_transform(src, len, NULL, &(image_req_t){.w = 16}, &out), 0);
    VipsImage *im = vips_image_new_from_buffer(out.data, out.len, "", NULL);
    cr_assert_not_null(im);
    cr_assert_eq(vips_image_get_typeof(im, VIPS_META_ICC_NAME), 0, "profile not stripped");
    g_object_unref(im);
    cr_assert_gt(band_mean(&out, 0), 245);
    cr_assert_lt(band_mean(&out, 1), 10);
    cr_assert_lt(band_mean(&out, 2), 10);
    image_out_free(&out);
    g_free(src);
    g_object_unref(p3);
    g_object_unref(red);
    g_object_unref(black);
}

Test(image_vips, exif_orientation_applied)
{
    VipsImage *im = NULL;
    void *src = NULL;
    size_t len;
    cr_assert_eq(vips_black(&im, 40, 20, "bands", 3, NULL), 0);
    vips_image_set_int(im, VIPS_META_ORIENTATION, 6); /* rotate 90 to view */
    cr_assert_eq(vips_jpegsave_buffer(im, &src, &len, NULL), 0);
    g_object_unref(im);
    image_info_t info;
    cr_assert_eq(image_probe(src, len, NULL, &info), 0);
    cr_assert_eq(info.width, 20);
    cr_assert_eq(info.height, 40);
    image_out_t out;
    cr_assert_eq(image_transform(src, len, NULL, &(image_req_t){0}, &out), 0);
    cr_assert_eq(out.width, 20);
    cr_assert_eq(out.height, 40);
    image_out_free(&out);
    g_free(src);
}

Test(image_vips, cover_gravity_picks_the_side)
{
    /* 400x200: left half black, right half white. Cover to 100x100 scales
     * to 200x100 and keeps the west or the east half (give or take the
     * resampling kernel at the seam). */
    VipsImage *black = NULL, *white = NULL, *both = NULL;
    void *src = NULL;
    size_t len;
    cr_assert_eq(vips_black(&black, 200, 200, "bands", 3, NULL), 0);
    cr_assert_eq(vips_linear1(black, &white, 1, 255, "uchar", TRUE, NULL), 0);
    cr_assert_eq(vips_join(black, white, &both, VIPS_DIRECTION_HORIZONTAL, NULL), 0);
    VipsImage *u8 = NULL;
    cr_assert_eq(vips_cast(both, &u8, VIPS_FORMAT_UCHAR, NULL), 0);
    u8->Type = VIPS_INTERPRETATION_sRGB;
    cr_assert_eq(vips_pngsave_buffer(u8, &src, &len, NULL), 0);
    image_out_t out;
    image_req_t rq = {.w = 100, .h = 100, .fit = IMAGE_FIT_COVER, .format = IMAGE_FORMAT_PNG,
                      .gravity = IMAGE_GRAVITY_WEST};
    cr_assert_eq(image_transform(src, len, NULL, &rq, &out), 0);
    double m = band_mean(&out, 0);
    cr_assert_lt(m, 15, "west mean %f", m);
    image_out_free(&out);
    rq.gravity = IMAGE_GRAVITY_SOUTH_EAST;
    cr_assert_eq(image_transform(src, len, NULL, &rq, &out), 0);
    m = band_mean(&out, 0);
    cr_assert_gt(m, 240, "south-east mean %f", m);
    image_out_free(&out);
    rq.gravity = IMAGE_GRAVITY_CENTRE; /* half and half */
    cr_assert_eq(image_transform(src, len, NULL, &rq, &out), 0);
    m = band_mean(&out, 0);
    cr_assert(m > 100 && m < 155, "centre mean %f", m);
    image_out_free(&out);
    g_free(src);
    g_object_unref(u8);
    g_object_unref(both);
    g_object_unref(white);
    g_object_unref(black);
}

struct job {
    const void *src;
    size_t len;
    int fails;
};

static void *transform_loop(void *arg)
{
    struct job *j = arg;
    for (int i = 0; i < 5; i++) {
        image_req_t rq = {.w = 50 + i, .h = 40, .fit = IMAGE_FIT_COVER,
                          .format = i % 2 ? IMAGE_FORMAT_WEBP : IMAGE_FORMAT_JPEG};
        image_out_t out;
        if (image_transform(j->src, j->len, NULL, &rq, &out) || out.width != 50 + i ||
            out.height != 40)
            j->fails++;
        image_out_free(&out);
        /* a refusal on another thread must not disturb the others */
        if (image_transform("junk", 4, NULL, &rq, &out) != -EINVAL)
            j->fails++;
    }
    return NULL;
}

Test(image_vips, concurrent_transforms_from_pool_threads)
{
    size_t len;
    void *src = make_image(300, 200, "jpg", &len);
    pthread_t t[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){src, len, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, transform_loop, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(jobs[i].fails, 0, "thread %d: %d failures", i, jobs[i].fails);
    }
    g_free(src);
}

/* image_init turns libvips' run-time SIMD code (orc) off: Debian 12's
 * liborc frees its code chunks without a lock, and two transform threads
 * crashed on it (see core/image.c). */
Test(image_vips, orc_code_is_off)
{
    cr_assert_not(vips_vector_isenabled());
}
