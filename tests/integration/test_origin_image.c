/* test_origin_image: bin/origin's images under /img/ (issue 11) on the
 * wire, decoded here with libvips: formats and sizes, the same bytes on
 * every request and in every process, quality and frames, the damaged
 * bodies and the PNG bomb, the origin's other parameters applied to
 * images, bad requests, --image-dir, and the shared body cache under
 * concurrent requests. Each test stops the origin expecting exit status 0
 * (no leak under ASan/LSan). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "harness.h"
#include "image.h"

static void setup(void)
{
    char err[256] = "";
    /* Decoding the damaged bodies makes libvips warn on stderr. */
    setenv("VIPS_WARNING", "0", 1);
    /* As the edge runs it: untrusted loaders blocked, so every image here
     * must be readable by the loaders the edge keeps. */
    cr_assert_eq(image_init(NULL, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    image_shutdown();
}

TestSuite(origin_image, .init = setup, .fini = teardown);

static th_resp_t *req(const char *addr, const char *method, const char *target, const char *headers)
{
    th_resp_t *r = th_request(addr, method, target, headers, NULL, 0);
    cr_assert_not_null(r, "%s %s: %s", method, target, th_last_error());
    return r;
}

static th_resp_t *get(const char *addr, const char *target)
{
    return req(addr, "GET", target, NULL);
}

static void hdr_eq(th_resp_t *r, const char *name, const char *want)
{
    const char *v = th_hdr(r, name);
    cr_assert(v && strcmp(v, want) == 0, "%s: got '%s', want '%s'", name, v ? v : "(absent)", want);
}

static void stop_ok(th_proc_t *o)
{
    cr_assert_eq(th_stop(o), 0, "origin exit status (non-zero under ASan means a leak)");
}

typedef struct hdr_info {
    int width, height, pages, page_height;
    char loader[32];
} hdr_info_t;

/* Read the header of body (no pixels); false if libvips cannot. */
static bool header(const th_resp_t *r, hdr_info_t *h)
{
    VipsImage *im = vips_image_new_from_buffer(r->body.data, r->body.len, "", NULL);
    const char *loader = "";
    if (!im) {
        vips_error_clear();
        return false;
    }
    h->width = vips_image_get_width(im);
    h->height = vips_image_get_height(im);
    h->pages = vips_image_get_n_pages(im);
    h->page_height = vips_image_get_page_height(im);
    vips_image_get_string(im, VIPS_META_LOADER, &loader);
    snprintf(h->loader, sizeof h->loader, "%s", loader);
    g_object_unref(im);
    return true;
}

/* Decode every pixel, strictly (a libjpeg/libpng warning is a failure);
 * the mean of the pixels in *avg. False when the decode fails. */
static bool full_decode(const void *buf, size_t len, double *avg)
{
    VipsImage *im = vips_image_new_from_buffer(buf, len, "", "fail_on", VIPS_FAIL_ON_WARNING, NULL);
    bool ok = im && vips_avg(im, avg, NULL) == 0;
    if (im)
        g_object_unref(im);
    vips_error_clear();
    return ok;
}

/* A 200 image of the asked-for size, type and loader, Content-Length exact. */
static void check_image(const char *addr, const char *target, const char *type, const char *loader,
                        int w, int h)
{
    th_resp_t *r = get(addr, target);
    cr_assert_eq(r->status, 200, "%s: status %d: %.*s", target, r->status, (int)r->body.len, r->body.data);
    hdr_eq(r, "Content-Type", type);
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", r->body.len);
    hdr_eq(r, "Content-Length", cl);
    const char *etag = th_hdr(r, "ETag");
    cr_assert(etag && etag[0] == '"' && etag[strlen(etag) - 1] == '"', "strong ETag: %s", etag);
    hdr_info_t hi;
    cr_assert(header(r, &hi), "%s: libvips cannot read it", target);
    cr_assert(strncmp(hi.loader, loader, strlen(loader)) == 0, "%s: loader %s", target, hi.loader);
    cr_assert_eq(hi.width, w, "%s: width", target);
    cr_assert_eq(hi.height, h, "%s: height", target);
    double avg;
    cr_assert(full_decode(r->body.data, r->body.len, &avg), "%s: full decode", target);
    th_resp_free(r);
}

Test(origin_image, formats_and_sizes)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    check_image(a, "/img/f.jpg", "image/jpeg", "jpegload", 800, 600);
    check_image(a, "/img/f.jpg?width=321&height=123", "image/jpeg", "jpegload", 321, 123);
    check_image(a, "/img/f.jpeg?width=50&height=70", "image/jpeg", "jpegload", 50, 70);
    check_image(a, "/img/f.png?width=1&height=1", "image/png", "pngload", 1, 1);
    check_image(a, "/img/f.png?width=300&height=200", "image/png", "pngload", 300, 200);
    check_image(a, "/img/f.webp?width=300&height=200", "image/webp", "webpload", 300, 200);
    check_image(a, "/img/f.gif?width=300&height=200", "image/gif", "gifload", 300, 200);
    check_image(a, "/img/big.jpg?width=4000&height=3000", "image/jpeg", "jpegload", 4000, 3000);
    stop_ok(o);
}

Test(origin_image, same_request_same_bytes_everywhere)
{
    th_proc_t *o1 = th_origin(), *o2 = th_origin();
    const char *t = "/img/same.webp?width=200&height=150&quality=70";
    th_resp_t *a = get(th_addr(o1), t), *b = get(th_addr(o1), t), *c = get(th_addr(o2), t);
    cr_assert_eq(a->status, 200);
    cr_assert(a->body.len == b->body.len && memcmp(a->body.data, b->body.data, a->body.len) == 0,
              "the same request gives the same bytes");
    cr_assert(a->body.len == c->body.len && memcmp(a->body.data, c->body.data, a->body.len) == 0,
              "another origin process gives the same bytes");
    hdr_eq(b, "ETag", th_hdr(a, "ETag"));
    hdr_eq(c, "ETag", th_hdr(a, "ETag"));
    hdr_eq(c, "X-Body-Checksum", th_hdr(a, "X-Body-Checksum"));
    char sum[17];
    th_checksum_hex(a->body.data, a->body.len, sum);
    hdr_eq(a, "X-Body-Checksum", sum);

    th_resp_t *d = get(th_addr(o1), "/img/other.webp?width=200&height=150&quality=70");
    cr_assert(d->body.len != a->body.len || memcmp(a->body.data, d->body.data, a->body.len) != 0,
              "another name, another picture");
    cr_assert_str_neq(th_hdr(d, "ETag"), th_hdr(a, "ETag"));
    th_resp_t *e = get(th_addr(o1), "/img/same.webp?width=201&height=150&quality=70");
    cr_assert_str_neq(th_hdr(e, "ETag"), th_hdr(a, "ETag"), "the size is part of the ETag");
    th_resp_t *f = get(th_addr(o1), "/img/same.webp?quality=70&height=150&width=200&unrelated=1");
    hdr_eq(f, "ETag", th_hdr(a, "ETag")); /* parameter order and unknown ones do not matter */
    th_resp_free(a);
    th_resp_free(b);
    th_resp_free(c);
    th_resp_free(d);
    th_resp_free(e);
    th_resp_free(f);
    stop_ok(o1);
    stop_ok(o2);
}

Test(origin_image, quality_changes_size)
{
    th_proc_t *o = th_origin();
    const char *exts[] = { "jpg", "webp" };
    for (int i = 0; i < 2; i++) {
        char t[128];
        snprintf(t, sizeof t, "/img/q.%s?width=640&height=480&quality=20", exts[i]);
        th_resp_t *lo = get(th_addr(o), t);
        snprintf(t, sizeof t, "/img/q.%s?width=640&height=480&quality=95", exts[i]);
        th_resp_t *hi = get(th_addr(o), t);
        cr_assert(hi->body.len > lo->body.len * 3 / 2, "%s: q95 %zu bytes, q20 %zu bytes", exts[i],
                  hi->body.len, lo->body.len);
        cr_assert_str_neq(th_hdr(hi, "ETag"), th_hdr(lo, "ETag"));
        th_resp_free(lo);
        th_resp_free(hi);
    }
    stop_ok(o);
}

Test(origin_image, gif_frames)
{
    th_proc_t *o = th_origin();
    th_resp_t *r = get(th_addr(o), "/img/anim.gif?width=120&height=90&frames=7");
    cr_assert_eq(r->status, 200);
    hdr_info_t h;
    cr_assert(header(r, &h));
    cr_assert_eq(h.pages, 7, "n-pages %d", h.pages);
    cr_assert_eq(h.page_height, 90);
    cr_assert_eq(h.width, 120);
    th_resp_free(r);
    r = get(th_addr(o), "/img/anim.gif?width=120&height=90");
    cr_assert(header(r, &h));
    cr_assert_eq(h.pages, 1, "one frame by default");
    th_resp_free(r);
    stop_ok(o);
}

Test(origin_image, damage_truncate_and_text)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    const char *exts[] = { "jpg", "png" };
    for (int i = 0; i < 2; i++) {
        char t[128];
        snprintf(t, sizeof t, "/img/d.%s?width=300&height=200", exts[i]);
        th_resp_t *full = get(a, t);
        snprintf(t, sizeof t, "/img/d.%s?width=300&height=200&damage=truncate", exts[i]);
        th_resp_t *cut = get(a, t);
        cr_assert_eq(cut->status, 200);
        hdr_eq(cut, "Content-Type", i ? "image/png" : "image/jpeg");
        cr_assert_eq(cut->body.len, full->body.len / 2, "%s: the first half", exts[i]);
        cr_assert_eq(memcmp(cut->body.data, full->body.data, cut->body.len), 0);
        cr_assert_str_neq(th_hdr(cut, "ETag"), th_hdr(full, "ETag"), "damage is part of the ETag");
        double avg;
        cr_assert(full_decode(full->body.data, full->body.len, &avg));
        cr_assert_not(full_decode(cut->body.data, cut->body.len, &avg), "%s: truncated decodes", exts[i]);
        th_resp_free(full);
        th_resp_free(cut);
    }
    th_resp_t *r = get(a, "/img/d.jpg?damage=text");
    cr_assert_eq(r->status, 200);
    hdr_eq(r, "Content-Type", "image/jpeg");
    cr_assert(r->body.len > 21 && r->body.len < 1024);
    cr_assert_eq(memcmp(r->body.data, "this is not an image\n", 21), 0);
    hdr_info_t h;
    cr_assert_not(header(r, &h), "text is not an image");
    th_resp_free(r);
    stop_ok(o);
}

Test(origin_image, damage_corrupt)
{
    th_proc_t *o = th_origin();
    const char *exts[] = { "jpg", "png" };
    for (int i = 0; i < 2; i++) {
        char t[128];
        snprintf(t, sizeof t, "/img/c.%s?width=400&height=300", exts[i]);
        th_resp_t *good = get(th_addr(o), t);
        snprintf(t, sizeof t, "/img/c.%s?width=400&height=300&damage=corrupt", exts[i]);
        th_resp_t *bad = get(th_addr(o), t), *again = get(th_addr(o), t);
        cr_assert_eq(bad->body.len, good->body.len, "%s: same length", exts[i]);
        cr_assert_neq(memcmp(bad->body.data, good->body.data, bad->body.len), 0);
        cr_assert_eq(memcmp(bad->body.data, again->body.data, bad->body.len), 0, "deterministic");
        /* The header survives: only a full decode can tell. */
        hdr_info_t h;
        cr_assert(header(bad, &h), "%s: header still readable", exts[i]);
        cr_assert_eq(h.width, 400);
        double ga, ba;
        cr_assert(full_decode(good->body.data, good->body.len, &ga));
        bool ok = full_decode(bad->body.data, bad->body.len, &ba);
        cr_assert(!ok || fabs(ga - ba) > 0.5, "%s: corrupt decodes to the same picture", exts[i]);
        th_resp_free(good);
        th_resp_free(bad);
        th_resp_free(again);
    }
    stop_ok(o);
}

Test(origin_image, png_bomb)
{
    th_proc_t *o = th_origin();
    th_resp_t *r = get(th_addr(o), "/img/bomb.png");
    cr_assert_eq(r->status, 200);
    hdr_eq(r, "Content-Type", "image/png");
    cr_assert_lt(r->body.len, 1024, "%zu bytes", r->body.len);
    hdr_info_t h;
    cr_assert(header(r, &h), "a header-only read succeeds");
    cr_assert_eq(h.width, 60000);
    cr_assert_eq(h.height, 60000);
    th_resp_t *q = get(th_addr(o), "/img/bomb.png?width=10&damage=text&x=1");
    cr_assert(q->body.len == r->body.len && memcmp(q->body.data, r->body.data, r->body.len) == 0,
              "the bomb, whatever the query");
    image_info_t info;
    cr_assert_eq(image_probe(r->body.data, r->body.len, NULL, &info), -E2BIG, "the edge's probe refuses it");
    th_resp_free(r);
    th_resp_free(q);
    stop_ok(o);
}

Test(origin_image, origin_parameters_apply)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    th_resp_t *r = get(a, "/img/p.jpg?width=4000&height=3000&cc=max-age%3D60&sk=photos"
                          "&header=X-Extra:one&vary=Accept");
    cr_assert_eq(r->status, 200);
    hdr_eq(r, "Cache-Control", "max-age=60");
    hdr_eq(r, "Surrogate-Key", "photos");
    hdr_eq(r, "X-Extra", "one");
    hdr_eq(r, "Vary", "Accept");
    hdr_eq(r, "Content-Type", "image/jpeg");
    hdr_eq(r, "X-Origin-Path", "/img/p.jpg");
    char etag[64], inm[128];
    snprintf(etag, sizeof etag, "%s", th_hdr(r, "ETag"));
    hdr_info_t h;
    cr_assert(header(r, &h) && h.width == 4000 && h.height == 3000);
    th_resp_free(r);

    /* The default ETag validates; etag= overrides it, etag=auto keeps it. */
    snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
    r = req(a, "GET", "/img/p.jpg?width=4000&height=3000", inm);
    cr_assert_eq(r->status, 304);
    cr_assert_eq(r->body.len, 0);
    th_resp_free(r);
    r = get(a, "/img/p.jpg?width=4000&height=3000&etag=v1");
    hdr_eq(r, "ETag", "\"v1\"");
    th_resp_free(r);
    r = get(a, "/img/p.jpg?width=4000&height=3000&etag=auto");
    hdr_eq(r, "ETag", etag);
    th_resp_free(r);

    r = get(a, "/img/p.png?width=20&height=20&status=404&ct=text/html&lm_ago=60");
    cr_assert_eq(r->status, 404);
    hdr_eq(r, "Content-Type", "text/html"); /* ct= wins: a lying origin */
    cr_assert_not_null(th_hdr(r, "Last-Modified"));
    cr_assert(header(r, &h) && h.width == 20, "the body is still the image");
    th_resp_free(r);

    r = get(a, "/img/p.png?width=20&height=20&chunked=1&delay=50");
    cr_assert(r->chunked && r->status == 200);
    cr_assert(header(r, &h) && h.width == 20);
    th_resp_free(r);
    stop_ok(o);
}

Test(origin_image, head_same_headers_no_body)
{
    th_proc_t *o = th_origin();
    const char *t = "/img/h.webp?width=200&height=100&cc=public";
    th_resp_t *h = req(th_addr(o), "HEAD", t, NULL);
    th_resp_t *g = get(th_addr(o), t);
    cr_assert_eq(h->status, 200);
    cr_assert_eq(h->body.len, 0);
    const char *names[] = { "Content-Type", "Content-Length", "ETag", "Cache-Control", "X-Body-Checksum" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        hdr_eq(h, names[i], th_hdr(g, names[i]));
    th_resp_free(h);
    th_resp_free(g);
    cr_assert_eq(th_origin_bytes(th_addr(o), "/img/h.webp") > 0, 1);
    stop_ok(o);
}

/* A 400 whose body names the parameter. */
static void bad(const char *addr, const char *target, const char *param)
{
    th_resp_t *r = get(addr, target);
    cr_assert_eq(r->status, 400, "%s: status %d", target, r->status);
    char want[64];
    snprintf(want, sizeof want, "'%s'", param);
    cr_assert(r->body.len && memmem(r->body.data, r->body.len, want, strlen(want)),
              "%s: the answer names %s: %.*s", target, param, (int)r->body.len, r->body.data);
    th_resp_free(r);
}

Test(origin_image, bad_requests)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    bad(a, "/img/b.jpg?width=0", "width");
    bad(a, "/img/b.jpg?width=10001", "width");
    bad(a, "/img/b.jpg?width=abc", "width");
    bad(a, "/img/b.jpg?width=-5", "width");
    bad(a, "/img/b.jpg?height=", "height");
    bad(a, "/img/b.jpg?quality=101", "quality");
    bad(a, "/img/b.gif?frames=501", "frames");
    bad(a, "/img/b.jpg?frames=2", "frames");
    bad(a, "/img/b.gif?width=2000&height=2000&frames=10", "frames");
    bad(a, "/img/b.jpg?damage=burn", "damage");
    const char *missing[] = { "/img/b.bmp", "/img/b", "/img/.jpg", "/img/a..b.jpg", "/img/sub/b.jpg",
                              "/img/b.JPG" };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        th_resp_t *r = get(a, missing[i]);
        cr_assert_eq(r->status, 404, "%s: status %d", missing[i], r->status);
        th_resp_free(r);
    }
    /* Outside /img/ the image parameters mean nothing, as before. */
    th_resp_t *r = get(a, "/x.jpg?width=0&size=10");
    cr_assert_eq(r->status, 200);
    hdr_eq(r, "Content-Type", "text/plain");
    th_resp_free(r);
    stop_ok(o);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

Test(origin_image, image_dir_serves_files)
{
    char *dir = th_tmpdir(), path[700], arg[720];
    static const char bytes[] = "not really a jpeg, but served as one byte for byte\n";
    snprintf(path, sizeof path, "%s/photo.jpg", dir);
    write_file(path, bytes, sizeof bytes - 1);
    snprintf(path, sizeof path, "%s/pic.png", dir);
    write_file(path, "0123456789", 10);
    snprintf(arg, sizeof arg, "--image-dir=%s", dir);
    th_proc_t *o = th_origin_args((const char *const[]){ arg, NULL });
    const char *a = th_addr(o);
    th_resp_t *r = get(a, "/img/photo.jpg?width=10&cc=max-age%3D5");
    cr_assert_eq(r->status, 200);
    hdr_eq(r, "Content-Type", "image/jpeg");
    hdr_eq(r, "Cache-Control", "max-age=5");
    cr_assert(r->body.len == sizeof bytes - 1 && memcmp(r->body.data, bytes, r->body.len) == 0);
    cr_assert_not_null(th_hdr(r, "ETag"));
    th_resp_free(r);
    r = get(a, "/img/pic.png?damage=truncate");
    hdr_eq(r, "Content-Type", "image/png");
    cr_assert(r->body.len == 5 && memcmp(r->body.data, "01234", 5) == 0, "damage applies to files");
    th_resp_free(r);
    /* Not in the directory: generated. */
    check_image(a, "/img/photo.webp?width=30&height=20", "image/webp", "webpload", 30, 20);
    stop_ok(o);
}

typedef struct par_ctx {
    const char *addr;
    char target[8][96];
    size_t len[8];
    char sum[8][17];
    int status[8];
} par_ctx_t;

static void par_get(int i, void *arg)
{
    par_ctx_t *p = arg;
    th_resp_t *r = th_get(p->addr, p->target[i]);
    p->status[i] = r ? r->status : -1;
    if (r) {
        p->len[i] = r->body.len;
        th_checksum_hex(r->body.data, r->body.len, p->sum[i]);
    }
    th_resp_free(r);
}

Test(origin_image, cache_under_concurrency_and_eviction)
{
    th_proc_t *o = th_origin();
    par_ctx_t p = { .addr = th_addr(o) };
    /* Eight requests at once: four for one picture, four for others. */
    for (int i = 0; i < 8; i++)
        snprintf(p.target[i], sizeof p.target[i], "/img/par%d.jpg?width=600&height=400", i < 4 ? 0 : i);
    th_parallel(8, par_get, &p);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(p.status[i], 200, "request %d", i);
    for (int i = 1; i < 4; i++)
        cr_assert_str_eq(p.sum[i], p.sum[0], "the same picture for concurrent requests");
    /* Push the first out of the 16-entry cache, then ask again. */
    for (int i = 0; i < 20; i++) {
        char t[96];
        snprintf(t, sizeof t, "/img/evict%d.png?width=40&height=30", i);
        th_resp_free(get(th_addr(o), t));
    }
    th_resp_t *r = get(th_addr(o), p.target[0]);
    char sum[17];
    th_checksum_hex(r->body.data, r->body.len, sum);
    cr_assert_str_eq(sum, p.sum[0], "made again, byte for byte");
    th_resp_free(r);
    stop_ok(o);
}
