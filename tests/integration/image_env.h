/* image_env: an origin and an edge whose /img/ rule resizes images, and
 * the checks the image tests share (decoding what the edge sent with
 * libvips). */
#ifndef CDN_TEST_IMAGE_ENV_H
#define CDN_TEST_IMAGE_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "edge_env.h"

/* Start env with conf (a config file's text: it should hold the
 * [rule /img/...] section) and extra `--key=value` flags (may be NULL). */
void image_env_start(edge_env_t *env, const char *conf, const char *const extra[]);

/* The Host image_get and image_expect send from now on (NULL: EDGE_HOST). */
void image_env_host(const char *h);
/* GET (or HEAD) target through the edge with an Accept line (NULL: none). */
th_resp_t *image_get(const edge_env_t *env, const char *method, const char *target, const char *accept);

/* What a response body decodes to; false when it does not decode whole. */
typedef struct image_seen {
    int width, height;
    char loader[32];         /* libvips' loader: "jpegload_buffer", "webpload_buffer"... */
} image_seen_t;
bool image_decode(const void *data, size_t len, image_seen_t *out);

/* GET target and assert a 200 whose body decodes to w x h with a loader
 * starting with loader (NULL: any); returns the response (caller frees). */
th_resp_t *image_expect(const edge_env_t *env, const char *target, const char *accept, int w, int h,
                        const char *loader);

/* Transforms the edge has logged so far. */
int image_transforms(const edge_env_t *env);

#endif
