/* The load generator's pure parts: Zipf draws (exact for a fixed seed,
 * and shaped like the law), object sizes (a function of the seed and the
 * object), and the scenario file (defaults, every key, FILE:LINE errors). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdnload_scenario.h"
#include "cdnload_stats.h"
#include "cdnload_zipf.h"
#include "rng.h"

Test(cdnload_zipf, ranks_follow_the_law)
{
    cdnload_zipf_t z;
    cr_assert_eq(cdnload_zipf_init(&z, 1000, 1.0), 0);
    rng_t r;
    rng_seed(&r, 42);
    enum { DRAWS = 200000 };
    static unsigned count[1000];
    memset(count, 0, sizeof count);
    for (int i = 0; i < DRAWS; i++) {
        size_t k = cdnload_zipf_rank(&z, rng_unit(&r));
        cr_assert_lt(k, 1000);
        count[k]++;
    }
    /* P(rank 1) = 1 / H(1000) = 0.1336; rank 2 half of it, rank 10 a tenth. */
    double h = 0;
    for (int i = 1; i <= 1000; i++)
        h += 1.0 / i;
    double p1 = (double)count[0] / DRAWS;
    cr_assert(fabs(p1 - 1 / h) < 0.005, "rank 1: %g, expected %g", p1, 1 / h);
    cr_assert(fabs((double)count[1] / count[0] - 0.5) < 0.03, "rank 2 / rank 1: %g", (double)count[1] / count[0]);
    cr_assert(fabs((double)count[9] / count[0] - 0.1) < 0.02, "rank 10 / rank 1: %g", (double)count[9] / count[0]);
    cdnload_zipf_free(&z);
}

Test(cdnload_zipf, the_same_seed_draws_the_same_ranks)
{
    cdnload_zipf_t z;
    cr_assert_eq(cdnload_zipf_init(&z, 50000, 0.8), 0);
    rng_t a, b, c;
    rng_seed(&a, 7);
    rng_seed(&b, 7);
    rng_seed(&c, 8);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        size_t ka = cdnload_zipf_rank(&z, rng_unit(&a));
        cr_assert_eq(ka, cdnload_zipf_rank(&z, rng_unit(&b)));
        differ += ka != cdnload_zipf_rank(&z, rng_unit(&c));
    }
    cr_assert_gt(differ, 500, "another seed, other draws");
    cdnload_zipf_free(&z);
}

Test(cdnload_zipf, edges_of_the_range)
{
    cdnload_zipf_t z;
    cr_assert_eq(cdnload_zipf_init(&z, 0, 1), -EINVAL);
    cr_assert_eq(cdnload_zipf_init(&z, 10, -1), -EINVAL);
    cr_assert_eq(cdnload_zipf_init(&z, 10, NAN), -EINVAL);
    cr_assert_eq(cdnload_zipf_init(&z, 1, 1), 0);
    cr_assert_eq(cdnload_zipf_rank(&z, 0.0), 0);
    cr_assert_eq(cdnload_zipf_rank(&z, 0.999999), 0);
    cdnload_zipf_free(&z);
    /* s = 0 is uniform: u picks the rank directly. */
    cr_assert_eq(cdnload_zipf_init(&z, 4, 0), 0);
    cr_assert_eq(cdnload_zipf_rank(&z, 0.0), 0);
    cr_assert_eq(cdnload_zipf_rank(&z, 0.26), 1);
    cr_assert_eq(cdnload_zipf_rank(&z, 0.74), 2);
    cr_assert_eq(cdnload_zipf_rank(&z, 0.9999999999), 3);
    cdnload_zipf_free(&z);
}

Test(cdnload_scenario, sizes_are_a_function_of_seed_and_object)
{
    cdnload_scenario_t s;
    cdnload_scenario_defaults(&s);
    unsigned small = 0, mid = 0, large = 0;
    for (uint32_t i = 0; i < 20000; i++) {
        uint64_t b = cdnload_object_size(&s, i);
        cr_assert_eq(b, cdnload_object_size(&s, i));
        small += b == 1024;
        mid += b == 16384;
        large += b == 262144;
    }
    cr_assert_eq(small + mid + large, 20000);
    /* weights 50 / 35 / 15 */
    cr_assert(abs((int)small - 10000) < 400 && abs((int)mid - 7000) < 400 && abs((int)large - 3000) < 300,
              "%u %u %u", small, mid, large);
    char t[128];
    cdnload_object_target(&s, 17, true, t, sizeof t);
    char want[128];
    snprintf(want, sizeof want, "/o/17?size=%llu&cc=max-age%%3D3600&sk=g1",
             (unsigned long long)cdnload_object_size(&s, 17));
    cr_assert_str_eq(t, want);
    cdnload_object_target(&s, 17, false, t, sizeof t);
    snprintf(want, sizeof want, "/u/17?size=%llu&cc=no-store", (unsigned long long)cdnload_object_size(&s, 17));
    cr_assert_str_eq(t, want);
}

static char *write_file(const char *text)
{
    static char path[] = "/tmp/cdnload-scenario-XXXXXX";
    strcpy(path, "/tmp/cdnload-scenario-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(cdnload_scenario, every_key_is_read)
{
    char *path = write_file("# the default workload, bigger\n"
                            "duration = 2m\nwarmup = 10s   # before measuring\n"
                            "objects = 50000\nzipf = 0.9\nsizes = 2k:60, 1M:40\n"
                            "uncacheable = 0.05\nimages = 0.1\nconcurrency = 64\nrate = 500\nttl = 10m\n"
                            "abusive_clients = 2\npurge_every = 10s\npurge_kind = prefix\n"
                            "fault = shield-1 at 20s restart 35s\nseed = 99\n");
    cdnload_scenario_t s;
    cdnload_scenario_defaults(&s);
    char err[256] = "";
    cr_assert_eq(cdnload_scenario_load(&s, path, err, sizeof err), 0, "%s", err);
    unlink(path);
    cr_assert_eq(s.duration_ms, 120000);
    cr_assert_eq(s.warmup_ms, 10000);
    cr_assert_eq(s.objects, 50000);
    cr_assert_float_eq(s.zipf, 0.9, 1e-12);
    cr_assert_eq(s.nsizes, 2);
    cr_assert_eq(s.sizes[1].bytes, 1048576);
    cr_assert_float_eq(s.sizes[1].weight, 40, 1e-12);
    cr_assert_float_eq(s.uncacheable, 0.05, 1e-12);
    cr_assert_float_eq(s.images, 0.1, 1e-12);
    cr_assert_eq(s.concurrency, 64);
    cr_assert_float_eq(s.rate, 500, 1e-12);
    cr_assert_eq(s.ttl_s, 600);
    cr_assert_eq(s.abusive_clients, 2);
    cr_assert_eq(s.purge_every_ms, 10000);
    cr_assert_eq(s.purge_kind, CDNLOAD_PURGE_PREFIX);
    cr_assert_str_eq(s.fault_node, "shield-1");
    cr_assert_eq(s.fault_at_ms, 20000);
    cr_assert_eq(s.fault_restart_ms, 35000);
    cr_assert_eq(s.seed, 99);
    cr_assert_eq(cdnload_scenario_check(&s, err, sizeof err), 0, "%s", err);
}

/* Each bad line: its FILE:LINE and what was expected. */
Test(cdnload_scenario, a_bad_line_names_its_place)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "objects = 10\nzipf = -1\n", ":2: zipf: expected an exponent" },
        { "sizes = 1k\n", ":1: sizes: expected SIZE:WEIGHT" },
        { "sizes = 1k:0\n", ":1: sizes: expected SIZE:WEIGHT" },
        { "sizes = 1k:5x\n", ":1: sizes: expected SIZE:WEIGHT" },
        { "\n\nuncacheable = 1.5\n", ":3: uncacheable: expected a share" },
        { "colour = blue\n", ":1: unknown key 'colour'" },
        { "just words\n", ":1: expected 'key = value'" },
        { "fault = shield-1 at soon\n", ":1: fault: expected 'none' or" },
        { "purge_kind = everything\n", ":1: purge_kind: expected tag, url or prefix" },
        { "duration = 0\n", ":1: duration: expected a duration" },
        { "concurrency = 0\n", ":1: concurrency: expected connections" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = write_file(cases[i].text);
        cdnload_scenario_t s;
        cdnload_scenario_defaults(&s);
        char err[512] = "";
        cr_expect_eq(cdnload_scenario_load(&s, path, err, sizeof err), -EINVAL, "case %zu", i);
        cr_expect(strncmp(err, path, strlen(path)) == 0 && strstr(err, cases[i].want), "case %zu: %s", i, err);
        unlink(path);
    }
    cdnload_scenario_t s;
    cdnload_scenario_defaults(&s);
    char err[512];
    cr_assert_eq(cdnload_scenario_load(&s, "/nonexistent/scenario", err, sizeof err), -ENOENT);
    cr_assert(strstr(err, "/nonexistent/scenario"), "%s", err);
}

Test(cdnload_scenario, values_are_checked_together)
{
    cdnload_scenario_t s;
    cdnload_scenario_defaults(&s);
    char err[256];
    cr_assert_eq(cdnload_scenario_set(&s, "fault", "shield-1 at 20s restart 10s", "f:1", err, sizeof err), 0);
    cr_assert_eq(cdnload_scenario_check(&s, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "must come after the kill"), "%s", err);
    cr_assert_eq(cdnload_scenario_set(&s, "fault", "shield-1 at 5m restart 6m", "f:1", err, sizeof err), 0);
    cr_assert_eq(cdnload_scenario_check(&s, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "after the run's end"), "%s", err);
    cr_assert_eq(cdnload_scenario_set(&s, "fault", "none", "f:1", err, sizeof err), 0);
    cr_assert_eq(cdnload_scenario_set(&s, "uncacheable", "0.7", "f:1", err, sizeof err), 0);
    cr_assert_eq(cdnload_scenario_set(&s, "images", "0.5", "f:1", err, sizeof err), 0);
    cr_assert_eq(cdnload_scenario_check(&s, err, sizeof err), -EINVAL);
    cr_assert_eq(cdnload_scenario_set(&s, "images", "0.3", "f:1", err, sizeof err), 0);
    cr_assert_eq(cdnload_scenario_check(&s, err, sizeof err), 0, "%s", err);
}

Test(cdnload_stats, quantiles_are_within_an_eighth)
{
    cdnload_hist_t h;
    memset(&h, 0, sizeof h);
    cr_assert_eq(cdnload_hist_quantile(&h, 0.5), 0);
    for (uint64_t us = 1; us <= 100000; us++)
        cdnload_hist_add(&h, us);
    static const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
    for (size_t i = 0; i < 4; i++) {
        double want = qs[i] * 100000, got = cdnload_hist_quantile(&h, qs[i]);
        cr_assert(fabs(got - want) <= want / 8, "q %g: %g, expected %g", qs[i], got, want);
    }
    cr_assert_eq(cdnload_hist_quantile(&h, 1.0), 100000, "never above the largest");
    cr_assert_eq(h.count, 100000);
    cdnload_hist_t one;
    memset(&one, 0, sizeof one);
    cdnload_hist_add(&one, 3);
    cr_assert_eq(cdnload_hist_quantile(&one, 0.5), 3, "small values are exact");
    cdnload_hist_add(&one, UINT64_MAX / 2); /* beyond the last bucket: clamped, not lost */
    cr_assert_eq(one.count, 2);
    cdnload_hist_merge(&h, &one);
    cr_assert_eq(h.count, 100002);
}

Test(cdnload_stats, cache_status_names_the_tier_that_answered)
{
    static const struct {
        const char *v;
        cdnload_at_t at;
    } cases[] = {
        { "edge-1; hit; ttl=57", CDNLOAD_AT_EDGE },
        { "shield-1; fwd=uri-miss; fwd-status=200; stored; ttl=60, edge-1; hit; ttl=57", CDNLOAD_AT_EDGE },
        { "shield-1; hit; ttl=50, edge-2; fwd=uri-miss; fwd-status=200; stored", CDNLOAD_AT_SHIELD },
        { "shield-1; fwd=uri-miss; fwd-status=200; stored, edge-1; fwd=uri-miss; fwd-status=200; stored",
          CDNLOAD_AT_ORIGIN },
        { "edge-1; fwd=bypass; detail=pass", CDNLOAD_AT_ORIGIN },
        { "edge-hit-1; fwd=miss", CDNLOAD_AT_ORIGIN }, /* a name is not a parameter */
        { "edge-1; hitch", CDNLOAD_AT_ORIGIN },
        { "", CDNLOAD_AT_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(cdnload_cache_status_at(cases[i].v, strlen(cases[i].v)), cases[i].at, "case %zu: %s", i,
                     cases[i].v);
}

/* The purge schedule: what each kind of round takes, and its call. */
Test(cdnload_scenario, purge_rounds_name_what_they_take)
{
    cdnload_scenario_t s;
    cdnload_scenario_defaults(&s);
    char body[512], probe[256];
    /* tag: group g<n % 16>, objects and image sources alike */
    cr_assert(cdnload_purge_covers(&s, 3, 19, false));
    cr_assert(cdnload_purge_covers(&s, 3, 35, true));
    cr_assert_not(cdnload_purge_covers(&s, 3, 20, false));
    cdnload_purge_body(&s, 19, "example.com", body, sizeof body);
    cr_assert_str_eq(body, "{\"tags\": [\"g3\"], \"host\": \"example.com\"}");
    cdnload_probe_target(&s, 19, probe, sizeof probe);
    cr_assert_str_eq(probe, "/p/19/x?size=512&cc=max-age%3D3600&sk=g3");
    /* url: one popular object and the probe; never an image */
    s.purge_kind = CDNLOAD_PURGE_URL;
    cr_assert(cdnload_purge_covers(&s, 107, 7, false));
    cr_assert_not(cdnload_purge_covers(&s, 107, 8, false));
    cr_assert_not(cdnload_purge_covers(&s, 107, 7, true));
    cdnload_purge_body(&s, 107, "h", body, sizeof body);
    char obj[256], want[600];
    cdnload_object_target(&s, 7, true, obj, sizeof obj);
    cdnload_probe_target(&s, 107, probe, sizeof probe);
    snprintf(want, sizeof want, "{\"urls\": [\"%s\", \"%s\"], \"host\": \"h\"}", probe, obj);
    cr_assert_str_eq(body, want);
    /* prefix: /o/<10 + n % 90> as a string prefix of the object's number */
    s.purge_kind = CDNLOAD_PURGE_PREFIX;
    cr_assert(cdnload_purge_covers(&s, 2, 12, false));
    cr_assert(cdnload_purge_covers(&s, 2, 1234, false));
    cr_assert_not(cdnload_purge_covers(&s, 2, 1, false));
    cr_assert_not(cdnload_purge_covers(&s, 2, 21, false));
    cdnload_purge_body(&s, 2, "h", body, sizeof body);
    cr_assert_str_eq(body, "{\"prefixes\": [\"/p/2/\", \"/o/12\"], \"host\": \"h\"}");
}

Test(cdnload_scenario, image_variants_name_their_source)
{
    cdnload_scenario_t s;
    cdnload_scenario_defaults(&s);
    char t[256];
    cdnload_image_target(&s, 18, 0, t, sizeof t);
    cr_assert_str_eq(t, "/img/s18.jpg?width=640&height=480&cc=max-age%3D3600&sk=g2&w=160&fmt=jpeg");
    cdnload_image_target(&s, 18, 5, t, sizeof t);
    cr_assert_str_eq(t, "/img/s18.jpg?width=640&height=480&cc=max-age%3D3600&sk=g2&w=640&fmt=webp");
}
