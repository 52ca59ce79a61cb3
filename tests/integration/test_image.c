/* Image resizing through the edge (issue 11): the output's dimensions for
 * each fit mode and dpr, its format for each fmt and for auto under
 * several Accept lines, q and size, Vary only for auto, a second request
 * as a hit (origin and transform counts unchanged), ETag and conditional
 * requests, HEAD, a purge of the source dropping its variants, and a
 * changed source making its variants anew. The origin generates the
 * images (/img/NAME.EXT?width=&height=). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "image_env.h"

#define TOKEN "image-test-token"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
/* A 1600x1200 JPEG, fresh for an hour. */
#define SRC "/img/a.jpg?width=1600&height=1200"

static const char conf[] =
    "[rule /img/*]\n"
    "image = on\n"
    "default_ttl = 1h\n"
    "query = drop etag cc\n";

static void start(edge_env_t *env)
{
    static char flag[600];
    const char *extra[] = { edge_token_flag(TOKEN, flag, sizeof flag), NULL };
    image_env_start(env, conf, extra);
}

Test(image, fit_modes_and_dpr_give_the_documented_dimensions)
{
    edge_env_t env;
    start(&env);
    static const struct {
        const char *params;
        int w, h;
    } cases[] = {
        { "w=400&h=400", 400, 400 },                /* cover: fill the box, crop */
        { "w=400&h=400&fit=cover&gravity=north", 400, 400 },
        { "w=400&h=400&fit=cover&gravity=smart", 400, 400 },
        { "w=400&h=400&fit=contain", 400, 300 },    /* within the box, aspect kept */
        { "w=400&h=400&fit=fill", 400, 400 },       /* stretched */
        { "w=3000&h=3000&fit=inside", 1600, 1200 }, /* never enlarged */
        { "w=400&h=400&fit=outside", 533, 400 },    /* covers, no crop */
        { "w=200", 200, 150 },                      /* one side: the other follows */
        { "h=150", 200, 150 },
        { "w=200&dpr=2", 400, 300 },                /* dpr multiplies */
        { "w=100&h=100&dpr=1.5", 150, 150 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char t[256];
        snprintf(t, sizeof t, SRC "&%s", cases[i].params);
        th_resp_free(image_expect(&env, t, NULL, cases[i].w, cases[i].h, "jpegload"));
    }
    cr_assert_eq(th_origin_requests(env.o, "/img/a.jpg"), 1, "one source for every variant");
}

Test(image, formats_explicit_and_negotiated_with_vary_only_for_auto)
{
    edge_env_t env;
    start(&env);
    static const struct {
        const char *fmt, *accept, *loader, *ctype;
    } cases[] = {
        { "jpeg", NULL, "jpegload", "image/jpeg" },
        { "png", NULL, "pngload", "image/png" },
        { "webp", NULL, "webpload", "image/webp" },
        { "avif", NULL, "heifload", "image/avif" },
        { "auto", "image/avif,image/webp,*/*", "heifload", "image/avif" },
        { "auto", "image/webp,*/*", "webpload", "image/webp" },
        { "auto", "image/avif;q=0,image/webp", "webpload", "image/webp" },
        { "auto", "*/*", "jpegload", "image/jpeg" },
        { "auto", NULL, "jpegload", "image/jpeg" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char t[256];
        snprintf(t, sizeof t, SRC "&w=160&fmt=%s", cases[i].fmt);
        th_resp_t *r = image_expect(&env, t, cases[i].accept, 160, 120, cases[i].loader);
        cr_assert_str_eq(th_hdr(r, "content-type"), cases[i].ctype);
        const char *vary = th_hdr(r, "vary");
        if (strcmp(cases[i].fmt, "auto") == 0)
            cr_assert(vary && strstr(vary, "Accept"), "auto varies on Accept: %s", vary ? vary : "(none)");
        else
            cr_assert_null(vary, "fmt=%s does not vary: %s", cases[i].fmt, vary);
        th_resp_free(r);
    }
    /* auto keys on the choice, not the Accept string: another browser's
     * Accept that picks WebP too is a hit on the same variant */
    int before = image_transforms(&env);
    char t[256];
    snprintf(t, sizeof t, SRC "&w=160&fmt=auto");
    th_resp_t *r = image_expect(&env, t, "image/webp;q=0.9, image/png", 160, 120, "webpload");
    /* a hit, or the same transform while it is being stored */
    cr_assert(cs_has(r, "; hit") || cs_has(r, "; collapsed"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(image_transforms(&env), before);
}

Test(image, quality_changes_the_size)
{
    edge_env_t env;
    start(&env);
    th_resp_t *lo = image_expect(&env, SRC "&w=800&fmt=webp&q=10", NULL, 800, 600, "webpload");
    th_resp_t *hi = image_expect(&env, SRC "&w=800&fmt=webp&q=95", NULL, 800, 600, "webpload");
    cr_assert_lt(lo->body.len * 2, hi->body.len, "q=10: %zu bytes, q=95: %zu", lo->body.len, hi->body.len);
    th_resp_free(lo);
    th_resp_free(hi);
}

Test(image, second_request_is_a_hit_with_no_fetch_and_no_transform)
{
    edge_env_t env;
    start(&env);
    const char *t = SRC "&w=300&h=200&fmt=webp";
    th_resp_t *first = image_expect(&env, t, NULL, 300, 200, "webpload");
    cr_assert(cs_has(first, "image-transformed"), "%s", th_hdr(first, "cache-status"));
    cr_assert(edge_wait_cs(&env, t, "; hit", 5000), "the variant is stored");
    long origin = th_origin_requests(env.o, "/img/a.jpg");
    int transforms = image_transforms(&env);
    for (int i = 0; i < 5; i++) {
        th_resp_t *r = image_expect(&env, t, NULL, 300, 200, "webpload");
        cr_assert(cs_has(r, "; hit"), "%s", th_hdr(r, "cache-status"));
        cr_assert_eq(r->body.len, first->body.len);
        cr_assert(memcmp(r->body.data, first->body.data, r->body.len) == 0, "the same bytes");
        th_resp_free(r);
    }
    cr_assert_eq(th_origin_requests(env.o, "/img/a.jpg"), origin);
    cr_assert_eq(image_transforms(&env), transforms);
    /* the source itself is cached as itself, untouched */
    th_resp_t *s = image_get(&env, "GET", SRC, NULL);
    image_seen_t seen;
    cr_assert(image_decode(s->body.data, s->body.len, &seen));
    cr_assert(seen.width == 1600 && seen.height == 1200);
    cr_assert(cs_has(s, "; hit"), "%s", th_hdr(s, "cache-status"));
    th_resp_free(s);
    /* parameters that are not transform parameters are not in the variant key */
    th_resp_free(first);
}

Test(image, etag_conditional_requests_and_head_work_on_variants)
{
    edge_env_t env;
    start(&env);
    const char *t = SRC "&w=240&fmt=png";
    th_resp_t *r = image_expect(&env, t, NULL, 240, 180, "pngload");
    const char *etag = th_hdr(r, "etag");
    cr_assert(etag && strstr(etag, "img-"), "a variant's own ETag: %s", etag ? etag : "(none)");
    char tag[128];
    snprintf(tag, sizeof tag, "%s", etag);
    size_t len = r->body.len;
    th_resp_free(r);
    th_resp_t *other = image_expect(&env, SRC "&w=241&fmt=png", NULL, 241, 181, "pngload");
    cr_assert_str_neq(th_hdr(other, "etag"), tag, "each variant has its own");
    th_resp_free(other);
    cr_assert(edge_wait_cs(&env, t, "; hit", 5000));

    char h[256];
    snprintf(h, sizeof h, "If-None-Match: %s\r\n", tag);
    r = edge_req(env.e, "GET", t, h, NULL, 0);
    cr_assert_eq(r->status, 304, "%d", r->status);
    cr_assert_str_eq(th_hdr(r, "etag"), tag);
    th_resp_free(r);
    r = edge_req(env.e, "GET", t, "If-None-Match: \"something-else\"\r\n", NULL, 0);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);

    r = image_get(&env, "HEAD", t, NULL);
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body.len, 0);
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", len);
    cr_assert_str_eq(th_hdr(r, "content-length"), cl);
    cr_assert_str_eq(th_hdr(r, "content-type"), "image/png");
    th_resp_free(r);
    /* HEAD of a variant nobody asked for yet: made, and the length is right */
    r = image_get(&env, "HEAD", SRC "&w=120&fmt=png", NULL);
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body.len, 0);
    cr_assert_not_null(th_hdr(r, "content-length"));
    th_resp_free(r);
}

Test(image, a_purge_of_the_source_drops_its_variants)
{
    edge_env_t env;
    start(&env);
    const char *a = SRC "&w=200&fmt=webp", *b = SRC "&w=100&fmt=jpeg";
    th_resp_free(image_expect(&env, a, NULL, 200, 150, "webpload"));
    th_resp_free(image_expect(&env, b, NULL, 100, 75, "jpegload"));
    cr_assert(edge_wait_cs(&env, a, "; hit", 5000));
    cr_assert(edge_wait_cs(&env, b, "; hit", 5000));
    long origin = th_origin_requests(env.o, "/img/a.jpg");
    th_resp_t *r = edge_req(env.e, "PURGE", SRC, AUTH, NULL, 0);
    cr_assert_eq(r->status, 200, "%d %s", r->status, r->body.data);
    th_resp_free(r);
    int transforms = image_transforms(&env);
    r = image_expect(&env, a, NULL, 200, 150, "webpload");
    cr_assert_not(cs_has(r, "; hit"), "the variant went with its source: %s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    r = image_expect(&env, b, NULL, 100, 75, "jpegload");
    cr_assert_not(cs_has(r, "; hit"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(image_transforms(&env), transforms + 2);
    cr_assert_eq(th_origin_requests(env.o, "/img/a.jpg"), origin + 1, "the source was fetched again, once");
}

Test(image, tag_and_prefix_purges_of_the_source_drop_its_variants)
{
    edge_env_t env;
    start(&env);
    const char *t = "/img/t.jpg?width=800&height=600&sk=photos&w=100&fmt=png";
    static const char *const purges[] = { "{\"tags\": [\"photos\"]}", "{\"prefixes\": [\"/img/t\"]}" };
    for (int i = 0; i < 2; i++) {
        th_resp_free(image_expect(&env, t, NULL, 100, 75, "pngload"));
        cr_assert(edge_wait_cs(&env, t, "; hit", 5000));
        th_resp_t *r = edge_req(env.e, "POST", "/.cdn/purge", AUTH, purges[i], strlen(purges[i]));
        cr_assert_eq(r->status, 200, "%d %s", r->status, r->body.data);
        th_resp_free(r);
        r = image_expect(&env, t, NULL, 100, 75, "pngload");
        cr_assert(cs_has(r, "image-transformed"), "%s: %s", purges[i], th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
}

/* The rule drops etag= and cc= from the key: the test changes the
 * source's ETag behind one cache key, and the source is always stale. */
Test(image, a_changed_source_makes_its_variants_anew_an_unchanged_one_keeps_them)
{
    edge_env_t env;
    start(&env);
    const char *v1 = "/img/v.jpg?width=800&height=600&cc=max-age%3D0&etag=%22v1%22&w=100&fmt=webp";
    const char *v2 = "/img/v.jpg?width=800&height=600&cc=max-age%3D0&etag=%22v2%22&w=100&fmt=webp";
    th_resp_t *r = image_expect(&env, v1, NULL, 100, 75, "webpload");
    char tag1[128];
    snprintf(tag1, sizeof tag1, "%s", th_hdr(r, "etag"));
    th_resp_free(r);
    cr_assert(th_wait_log(env.edge, "]: transformed ", 1));
    /* revalidated, and the origin's ETag is the same: the variant stays */
    int transforms = image_transforms(&env);
    r = NULL;
    for (int i = 0; i < 50 && !(r && cs_has(r, "image-stored")); i++) {
        if (r)
            th_resp_free(r);
        r = image_expect(&env, v1, NULL, 100, 75, "webpload");
    }
    cr_assert(cs_has(r, "image-stored"), "reused, not transformed: %s", th_hdr(r, "cache-status"));
    cr_assert_str_eq(th_hdr(r, "etag"), tag1);
    th_resp_free(r);
    cr_assert_eq(image_transforms(&env), transforms);
    /* the source changed (a new ETag): the variant is made again. (A
     * request may first join the revalidation of the request before, still
     * being committed, and rightly get its answer: ask until one sees the
     * origin's new answer.) */
    r = NULL;
    for (int i = 0; i < 50 && !(r && cs_has(r, "image-transformed")); i++) {
        if (r)
            th_resp_free(r);
        r = image_expect(&env, v2, NULL, 100, 75, "webpload");
    }
    cr_assert(cs_has(r, "image-transformed"), "%s", th_hdr(r, "cache-status"));
    cr_assert_str_neq(th_hdr(r, "etag"), tag1);
    th_resp_free(r);
    cr_assert_eq(image_transforms(&env), transforms + 1);
}

typedef struct {
    edge_env_t *env;
    const char *target;
    int ok;
} many_t;

static void get_one(int i, void *p)
{
    many_t *x = p;
    (void)i;
    th_resp_t *r = edge_req(x->env->e, "GET", x->target, NULL, NULL, 0);
    if (r && r->status == 200)
        __atomic_fetch_add(&x->ok, 1, __ATOMIC_SEQ_CST);
    if (r)
        th_resp_free(r);
}

Test(image, concurrent_requests_for_one_missing_variant_cause_one_transform)
{
    edge_env_t env;
    start(&env);
    /* the source first, so that all the requests meet at the transform */
    th_resp_free(image_get(&env, "GET", "/img/big.jpg?width=4000&height=3000", NULL));
    cr_assert(edge_wait_cs(&env, "/img/big.jpg?width=4000&height=3000", "; hit", 5000));
    many_t a = { &env, "/img/big.jpg?width=4000&height=3000&w=640&fmt=webp", 0 };
    th_parallel(8, get_one, &a);
    cr_assert_eq(a.ok, 8);
    cr_assert_eq(image_transforms(&env), 1, "collapsed onto one transform");
}

/* A source that varies: each of its variants has its own image variants,
 * and the variant's Vary names the source's field. (The waits use
 * only-if-cached, which never starts a derivation: a request for the same
 * variant while the first is being committed may otherwise make it again,
 * since the first one was keyed before the source's Vary was known.) */
static bool stored_for(const edge_env_t *env, const char *t, const char *lang)
{
    char h[128];
    for (int k = 0; k < 200; k++) {
        snprintf(h, sizeof h, "Accept-Language: %s\r\nCache-Control: only-if-cached\r\n", lang);
        th_resp_t *r = edge_req(env->e, "GET", t, h, NULL, 0);
        bool ok = r && r->status == 200;
        th_resp_free(r);
        if (ok)
            return true;
        struct timespec ts = { 0, 10 * 1000 * 1000 }; /* the commit is a few ms away */
        nanosleep(&ts, NULL);
    }
    return false;
}

Test(image, a_varying_source_keeps_its_vary_and_its_variants_apart)
{
    edge_env_t env;
    start(&env);
    const char *t = "/img/va.jpg?width=800&height=600&vary=Accept-Language&w=100&fmt=png";
    static const char *const langs[] = { "en", "fr" };
    for (int round = 0; round < 2; round++) {
        for (int lang = 0; lang < 2; lang++) {
            char h[64];
            snprintf(h, sizeof h, "Accept-Language: %s\r\n", langs[lang]);
            th_resp_t *r = edge_req(env.e, "GET", t, h, NULL, 0);
            cr_assert_eq(r->status, 200);
            cr_assert_str_eq(th_hdr(r, "vary"), "Accept-Language");
            image_seen_t s;
            cr_assert(image_decode(r->body.data, r->body.len, &s) && s.width == 100);
            if (round == 1)
                cr_assert(cs_has(r, "; hit"), "%s: %s", langs[lang], th_hdr(r, "cache-status"));
            th_resp_free(r);
            if (round == 0)
                cr_assert(stored_for(&env, t, langs[lang]), "%s stored", langs[lang]);
        }
    }
    cr_assert_eq(image_transforms(&env), 2, "one per source variant");
    cr_assert_eq(th_origin_requests(env.o, "/img/va.jpg"), 2);
}
