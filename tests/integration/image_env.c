/* image_env: set-up and checks shared by the image tests. */
#include "image_env.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

void image_env_start(edge_env_t *env, const char *conf, const char *const extra[])
{
    static char path[700];
    snprintf(path, sizeof path, "%s/image.conf", th_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(conf, f);
    fclose(f);
    const char *argv[24];
    int n = 0;
    argv[n++] = "-c";
    argv[n++] = path;
    for (int i = 0; extra && extra[i] && n < 23; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    edge_env_start(env, argv);
    setenv("VIPS_WARNING", "0", 1); /* decoding AVIF warns about its nclx profile */
    if (VIPS_INIT("image-tests"))
        cr_assert_fail("libvips would not start");
}

static const char *host = EDGE_HOST;

void image_env_host(const char *h)
{
    host = h ? h : EDGE_HOST;
}

th_resp_t *image_get(const edge_env_t *env, const char *method, const char *target, const char *accept)
{
    char hdrs[512];
    snprintf(hdrs, sizeof hdrs, "Host: %s\r\n%s%s%s", host, accept ? "Accept: " : "", accept ? accept : "",
             accept ? "\r\n" : "");
    th_resp_t *r = th_request(env->e, method, target, hdrs, NULL, 0);
    cr_assert_not_null(r, "%s %s: %s", method, target, th_last_error());
    return r;
}

bool image_decode(const void *data, size_t len, image_seen_t *out)
{
    memset(out, 0, sizeof *out);
    VipsImage *im = vips_image_new_from_buffer(data, len, "", NULL);
    if (!im) {
        vips_error_clear();
        return false;
    }
    const char *loader = "";
    vips_image_get_string(im, VIPS_META_LOADER, &loader);
    snprintf(out->loader, sizeof out->loader, "%s", loader);
    out->width = vips_image_get_width(im);
    out->height = vips_image_get_height(im);
    double avg; /* pulls every pixel: a truncated body fails here */
    bool ok = vips_avg(im, &avg, NULL) == 0;
    vips_error_clear();
    g_object_unref(im);
    return ok;
}

th_resp_t *image_expect(const edge_env_t *env, const char *target, const char *accept, int w, int h,
                        const char *loader)
{
    th_resp_t *r = image_get(env, "GET", target, accept);
    cr_assert_eq(r->status, 200, "%s: %d %s", target, r->status, r->body.data ? r->body.data : "");
    image_seen_t s;
    cr_assert(image_decode(r->body.data, r->body.len, &s), "%s: the body does not decode", target);
    cr_assert(s.width == w && s.height == h, "%s: %dx%d, expected %dx%d", target, s.width, s.height, w, h);
    if (loader)
        cr_assert(strncmp(s.loader, loader, strlen(loader)) == 0, "%s: %s, expected %s", target, s.loader, loader);
    return r;
}

int image_transforms(const edge_env_t *env)
{
    return th_log_count(env->edge, "]: transformed ");
}
