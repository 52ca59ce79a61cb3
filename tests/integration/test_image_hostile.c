/* Hostile and broken images, and the bounds (issue 11): each case gets
 * its status while another client keeps getting hits, nothing is stored
 * for it, and the node keeps serving; a flood of distinct variants meets
 * the queue bound (503 + Retry-After) while hits go on; bad parameters get
 * a 400 naming the parameter; allowed widths round up or refuse; signed
 * URLs refuse what is unsigned or wrongly signed. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_env.h"
#include "policy_sign.h"

static const char conf[] =
    "[rule /img/*]\n"
    "image = on\n"
    "default_ttl = 1h\n"
    "[rule /doc/*]\n"
    "image = on\n"
    "[rule w.test/img/*]\n"
    "image = on\n"
    "default_ttl = 1h\n"
    "image_widths = 100 200 400\n"
    "[rule wr.test/img/*]\n"
    "image = on\n"
    "default_ttl = 1h\n"
    "image_widths = 100, 200, 400\n"
    "image_widths_round = refuse\n";

#define HIT "/img/ok.jpg?width=400&height=300&w=100&fmt=webp"

#define MAX_CASES 32

typedef struct {
    edge_env_t *env;
    const char *const (*cases)[3];
    size_t n;
    int hits, hits_ok;
    struct {
        int status;
        bool has_text, hit;
    } seen[MAX_CASES][2];
} hostile_t;

/* Thread 0 sends the hostile requests (checking each status); thread 1
 * asks for a stored variant meanwhile, a bounded number of times. */
static void hostile_and_hits(int i, void *arg)
{
    hostile_t *h = arg;
    if (i == 1) {
        for (int k = 0; k < 60; k++) {
            th_resp_t *r = edge_req(h->env->e, "GET", HIT, NULL, NULL, 0);
            if (r && r->status == 200 && cs_has(r, "; hit") && r->body.len > 0)
                __atomic_fetch_add(&h->hits_ok, 1, __ATOMIC_SEQ_CST);
            __atomic_fetch_add(&h->hits, 1, __ATOMIC_SEQ_CST);
            if (r)
                th_resp_free(r);
        }
        return;
    }
    /* (asserts belong on the main thread: record what came back) */
    for (size_t k = 0; k < h->n; k++) {
        for (int round = 0; round < 2; round++) { /* again: nothing was stored */
            th_resp_t *r = edge_req(h->env->e, "GET", h->cases[k][0], NULL, NULL, 0);
            if (!r)
                continue;
            h->seen[k][round].status = r->status;
            h->seen[k][round].has_text = !h->cases[k][2][0] || (r->body.data && strstr(r->body.data, h->cases[k][2]));
            h->seen[k][round].hit = cs_has(r, "; hit");
            th_resp_free(r);
        }
    }
}

Test(image_hostile, each_case_gets_its_status_while_hits_go_on)
{
    edge_env_t env;
    const char *extra[] = { "--image-max-frames=10", NULL };
    image_env_start(&env, conf, extra);
    th_resp_free(image_expect(&env, HIT, NULL, 100, 75, "webpload"));
    cr_assert(edge_wait_cs(&env, HIT, "; hit", 5000));
    static const char *const cases[][3] = {
        /* a PNG whose header claims 60000x60000: refused from the header */
        { "/img/bomb.png?w=100", "422", "configured limit" },
        { "/img/a.jpg?width=800&height=600&damage=truncate&w=100", "422", "cannot transform" },
        { "/img/a.png?width=800&height=600&damage=truncate&w=100", "422", "cannot transform" },
        { "/img/a.jpg?width=800&height=600&damage=text&w=100", "422", "cannot transform" },
        { "/img/a.jpg?width=800&height=600&damage=corrupt&w=100", "422", "cannot transform" },
        { "/img/a.gif?width=64&height=64&frames=20&w=32", "422", "configured limit" },
        /* an upstream error is the upstream's */
        { "/img/a.jpg?width=800&height=600&status=404&w=100", "404", "" },
        { "/img/a.jpg?w=5000", "400", "w:" },
        { "/img/a.jpg?w=0", "400", "w:" },
        { "/img/a.jpg?fit=squash", "400", "fit:" },
        { "/img/a.jpg?gravity=up", "400", "gravity:" },
        { "/img/a.jpg?w=100&w=200", "400", "w:" },
        { "/img/a.jpg?q=0", "400", "q:" },
        { "/img/a.jpg?q=101", "400", "q:" },
        { "/img/a.jpg?dpr=5", "400", "dpr:" },
        { "/img/a.jpg?fmt=tiff", "400", "fmt:" },
        { "/img/a.jpg?w=%31%30", "400", "w:" },
    };
    static hostile_t h;
    h = (hostile_t){ .env = &env, .cases = cases, .n = sizeof cases / sizeof cases[0] };
    cr_assert_leq(h.n, MAX_CASES);
    th_parallel(2, hostile_and_hits, &h);
    for (size_t k = 0; k < h.n; k++)
        for (int round = 0; round < 2; round++) {
            cr_assert_eq(h.seen[k][round].status, atoi(cases[k][1]), "%s (round %d): %d", cases[k][0], round,
                         h.seen[k][round].status);
            cr_assert(h.seen[k][round].has_text, "%s: the body lacks '%s'", cases[k][0], cases[k][2]);
            cr_assert_not(h.seen[k][round].hit, "%s: nothing may be stored for it", cases[k][0]);
        }
    cr_assert_eq(h.hits_ok, h.hits, "%d of %d hits answered while the hostile requests ran", h.hits_ok, h.hits);
    th_resp_t *r = edge_get(&env, "/.cdn/health");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    cr_assert_eq(th_stop(env.edge), 0, "the node stops cleanly");
}

Test(image_hostile, a_source_over_the_size_limit_gets_422_and_a_non_image_is_passed_on)
{
    edge_env_t env;
    const char *extra[] = { "--image-max-size=8K", NULL };
    image_env_start(&env, conf, extra);
    th_resp_t *r = image_get(&env, "GET", "/img/big.jpg?width=1200&height=900&w=100", NULL);
    cr_assert_eq(r->status, 422, "%d %s", r->status, r->body.data);
    cr_assert(strstr(r->body.data, "image_max_size"), "%s", r->body.data);
    th_resp_free(r);
    /* not an image: the source as it is */
    r = image_get(&env, "GET", "/doc/page.html?size=300&w=100", NULL);
    cr_assert_eq(r->status, 200);
    cr_assert(cs_has(r, "image-not-image"), "%s", th_hdr(r, "cache-status"));
    cr_assert(th_body_matches("/doc/page.html", 300, r->body.data, r->body.len));
    th_resp_free(r);
}

typedef struct {
    edge_env_t *env;
    int ok, busy, other, hits;
    bool retry_after;
} flood_t;

static void flood_one(int i, void *arg)
{
    flood_t *f = arg;
    char t[200];
    if (i == 0) { /* a client of stored variants, meanwhile */
        for (int k = 0; k < 20; k++) {
            th_resp_t *r = edge_req(f->env->e, "GET", HIT, NULL, NULL, 0);
            if (r && r->status == 200)
                __atomic_fetch_add(&f->hits, 1, __ATOMIC_SEQ_CST);
            if (r)
                th_resp_free(r);
        }
        return;
    }
    snprintf(t, sizeof t, "/img/big.jpg?width=4000&height=3000&w=%d&gravity=smart&fmt=avif", 100 + i);
    th_resp_t *r = edge_req(f->env->e, "GET", t, NULL, NULL, 0);
    if (r && r->status == 200)
        __atomic_fetch_add(&f->ok, 1, __ATOMIC_SEQ_CST);
    else if (r && r->status == 503) {
        __atomic_fetch_add(&f->busy, 1, __ATOMIC_SEQ_CST);
        if (th_hdr(r, "retry-after"))
            f->retry_after = true;
    } else
        __atomic_fetch_add(&f->other, 1, __ATOMIC_SEQ_CST);
    if (r)
        th_resp_free(r);
}

Test(image_hostile, a_flood_of_distinct_variants_meets_the_queue_bound)
{
    edge_env_t env;
    const char *extra[] = { "--image-workers=1", "--image-queue=1", NULL };
    image_env_start(&env, conf, extra);
    th_resp_free(image_expect(&env, HIT, NULL, 100, 75, "webpload"));
    th_resp_free(image_get(&env, "GET", "/img/big.jpg?width=4000&height=3000", NULL));
    cr_assert(edge_wait_cs(&env, "/img/big.jpg?width=4000&height=3000", "; hit", 5000));
    cr_assert(edge_wait_cs(&env, HIT, "; hit", 5000));
    flood_t f = { &env, 0, 0, 0, 0, false };
    th_parallel(13, flood_one, &f);
    cr_assert_eq(f.other, 0);
    cr_assert_eq(f.ok + f.busy, 12);
    cr_assert_geq(f.busy, 1, "one thread and one queue slot cannot take 12 transforms at once");
    cr_assert_geq(f.ok, 1);
    cr_assert(f.retry_after, "503 carries Retry-After");
    cr_assert_eq(f.hits, 20, "hits were served during the flood");
    /* afterwards the pool takes work again */
    th_resp_free(image_expect(&env, "/img/big.jpg?width=4000&height=3000&w=90", NULL, 90, 68, "jpegload"));
}

Test(image_hostile, allowed_widths_round_up_or_refuse)
{
    edge_env_t env;
    image_env_start(&env, conf, NULL);
    image_env_host("w.test");
    const char *t = "/img/a.jpg?width=800&height=600&w=150";
    th_resp_free(image_expect(&env, t, NULL, 200, 150, "jpegload"));
    th_resp_free(image_expect(&env, "/img/a.jpg?width=800&height=600&w=50", NULL, 100, 75, "jpegload"));
    /* w=75&dpr=2 is 150 device pixels: rounded up to 200 */
    th_resp_free(image_expect(&env, "/img/a.jpg?width=800&height=600&w=75&dpr=2", NULL, 200, 150, "jpegload"));
    int before = image_transforms(&env);
    th_resp_t *r = image_expect(&env, "/img/a.jpg?width=800&height=600&w=160", NULL, 200, 150, "jpegload");
    /* the w=200 variant: a hit, or the same transform while it is being stored */
    cr_assert(cs_has(r, "; hit") || cs_has(r, "; collapsed"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(image_transforms(&env), before, "no transform of its own");
    /* above the largest: refused, never shrunk silently */
    r = image_get(&env, "GET", "/img/a.jpg?width=800&height=600&w=500", NULL);
    cr_assert_eq(r->status, 400, "%d", r->status);
    cr_assert(strstr(r->body.data, "w:"), "%s", r->body.data);
    th_resp_free(r);
    /* refuse: only the listed ones */
    image_env_host("wr.test");
    r = image_get(&env, "GET", "/img/a.jpg?width=800&height=600&w=150", NULL);
    cr_assert_eq(r->status, 400, "%d", r->status);
    cr_assert(strstr(r->body.data, "w:"), "%s", r->body.data);
    th_resp_free(r);
    th_resp_free(image_expect(&env, "/img/a.jpg?width=800&height=600&w=400", NULL, 400, 300, "jpegload"));
    image_env_host(NULL);
}

Test(image_hostile, signed_urls_refuse_the_unsigned_and_the_wrongly_signed)
{
    static const char key[] = "image-signing-secret";
    char path[700], flag[760];
    snprintf(path, sizeof path, "%s/image.key", th_tmpdir());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, key, strlen(key)), (ssize_t)strlen(key));
    close(fd);
    snprintf(flag, sizeof flag, "--image-signing-key-file=%s", path);
    const char *extra[] = { flag, NULL };
    edge_env_t env;
    image_env_start(&env, conf, extra);

    const char *p = "/img/s.jpg", *q = "width=800&height=600&w=200&fmt=webp";
    char sig[POLICY_SIGN_LEN + 1], t[512];
    cr_assert_eq(policy_sign_compute(key, strlen(key), p, strlen(p), q, strlen(q), sig), 0);
    snprintf(t, sizeof t, "%s?%s&sig=%s", p, q, sig);
    th_resp_free(image_expect(&env, t, NULL, 200, 150, "webpload"));
    /* the signature may come first */
    snprintf(t, sizeof t, "%s?sig=%s&%s", p, sig, q);
    th_resp_free(image_expect(&env, t, NULL, 200, 150, "webpload"));

    char wrong[POLICY_SIGN_LEN + 1];
    cr_assert_eq(policy_sign_compute("other-key", 9, p, strlen(p), q, strlen(q), wrong), 0);
    const char *bad[4];
    char b0[512], b1[512], b2[512];
    snprintf(b0, sizeof b0, "%s?%s", p, q);                                      /* unsigned */
    snprintf(b1, sizeof b1, "%s?%s&sig=%s", p, q, wrong);                       /* another key */
    snprintf(b2, sizeof b2, "%s?width=800&height=600&w=400&fmt=webp&sig=%s", p, sig); /* another variant */
    bad[0] = b0, bad[1] = b1, bad[2] = b2, bad[3] = NULL;
    for (int i = 0; bad[i]; i++) {
        th_resp_t *r = image_get(&env, "GET", bad[i], NULL);
        cr_assert_eq(r->status, 403, "%s: %d", bad[i], r->status);
        cr_assert(strstr(r->body.data, "sig"), "%s", r->body.data);
        th_resp_free(r);
    }
    /* the image itself needs no signature */
    th_resp_t *r = image_get(&env, "GET", "/img/s.jpg?width=800&height=600", NULL);
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
}
