/* status: the figures the status page derives (quantiles from histogram
 * buckets, the hit and offload ratios), purge descriptions, and the
 * history ring over a real metrics registry. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "metrics.h"
#include "purge_req.h"
#include "status.h"

Test(status_unit, quantiles_interpolate_within_a_bucket)
{
    uint64_t c[32] = { 0 };
    cr_assert_lt(status_quantile_ms(c, 0.5), 0, "empty: no data");
    c[1] = 10; /* 10 observations in (0.5 ms, 1 ms] */
    cr_assert_float_eq(status_quantile_ms(c, 0.5), 0.75, 1e-9);
    cr_assert_float_eq(status_quantile_ms(c, 1.0), 1.0, 1e-9);
    c[0] = 10; /* and 10 in [0, 0.5 ms] */
    cr_assert_float_eq(status_quantile_ms(c, 0.25), 0.25, 1e-9);
    cr_assert_float_eq(status_quantile_ms(c, 0.75), 0.75, 1e-9);
    memset(c, 0, sizeof c);
    unsigned nb = metrics_cdn_defs[METRIC_REQUEST_DURATION].nbounds;
    c[nb] = 5; /* above every bound: the highest bound */
    cr_assert_float_eq(status_quantile_ms(c, 0.99), metrics_cdn_defs[METRIC_REQUEST_DURATION].bounds[nb - 1] * 1000,
                       1e-9);
}

Test(status_unit, ratios_follow_their_definitions)
{
    uint64_t req[METRIC_OUTCOME_COUNT] = { 0 };
    double hit, offr, offb;
    status_ratios(req, 0, 0, &hit, &offr, &offb);
    cr_assert(hit < 0 && offr < 0 && offb < 0, "no data, no ratio");
    req[METRIC_HIT] = 5;
    req[METRIC_STALE] = 1;
    req[METRIC_COLLAPSED] = 2;
    req[METRIC_REVALIDATED] = 1;
    req[METRIC_MISS] = 1;
    req[METRIC_ERROR] = 90; /* counts nowhere */
    status_ratios(req, 1000, 250, &hit, &offr, &offb);
    cr_assert_float_eq(hit, 0.5, 1e-9);
    cr_assert_float_eq(offr, 0.8, 1e-9, "hit + stale + collapsed; revalidated went upstream");
    cr_assert_float_eq(offb, 0.75, 1e-9);
    status_ratios(req, 100, 400, &hit, &offr, &offb);
    cr_assert_float_eq(offb, 0, 1e-9, "clamped: more came in than went out");
}

Test(status_unit, purge_descriptions_name_the_kind_and_the_first_items)
{
    status_purge_desc_t d;
    char *urls[] = { "/a?x=1" }, *tags[40], names[40][16];
    purge_req_t r = { .urls = urls, .nurls = 1 };
    status_purge_describe(&d, &r);
    cr_assert_str_eq(d.kind, "url");
    cr_assert_str_eq(d.what, "/a?x=1");
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "tag-%02d", i);
        tags[i] = names[i];
    }
    r = (purge_req_t){ .tags = tags, .ntags = 40, .soft = true };
    status_purge_describe(&d, &r);
    cr_assert_str_eq(d.kind, "tag");
    cr_assert(strncmp(d.what, "tag-00, tag-01", 14) == 0, "%s", d.what);
    cr_assert(strstr(d.what, " more"), "the rest counted: %s", d.what);
    cr_assert_lt(strlen(d.what), sizeof d.what);
    r = (purge_req_t){ .urls = urls, .nurls = 1, .tags = tags, .ntags = 1 };
    status_purge_describe(&d, &r);
    cr_assert_str_eq(d.kind, "mixed");
    cr_assert_str_eq(d.what, "/a?x=1, tag-00");
    r = (purge_req_t){ .all = true };
    status_purge_describe(&d, &r);
    cr_assert_str_eq(d.kind, "all");
}

Test(status_unit, history_intervals_are_counter_differences)
{
    metrics_t *m;
    cr_assert_eq(metrics_new(metrics_cdn_defs, METRIC_CDN_COUNT, 1, &m), 0);
    metrics_shard_t *s = metrics_shard(m, 0);
    status_history_t *h = status_history_new();
    cr_assert_not_null(h);
    status_history_sample(h, m, 1000, 1000000);
    metrics_inc(s, METRIC_REQUESTS, METRIC_HIT, 8);
    metrics_inc(s, METRIC_REQUESTS, METRIC_MISS, 2);
    metrics_inc(s, METRIC_CLIENT_BYTES_SENT, 0, 1000);
    metrics_inc(s, METRIC_UPSTREAM_BYTES_RECEIVED, 0, 100);
    for (int i = 0; i < 10; i++)
        metrics_observe(s, METRIC_REQUEST_DURATION, METRIC_HIT, 0.0007);
    status_history_sample(h, m, 6000, 1005000);
    metrics_inc(s, METRIC_REQUESTS, METRIC_MISS, 5);
    /* 500 ms after the last sample: no live interval yet */
    json_t *j = status_history_json(h, m, 6500, 1005500);
    cr_assert_not_null(j);
    json_t *req = json_object_get(j, "requests");
    cr_assert_eq(json_array_size(req), 1);
    cr_assert_eq(json_integer_value(json_array_get(req, 0)), 10);
    cr_assert_float_eq(json_real_value(json_array_get(json_object_get(j, "rate"), 0)), 2.0, 1e-9);
    cr_assert_float_eq(json_real_value(json_array_get(json_object_get(j, "hit_ratio"), 0)), 0.8, 1e-9);
    cr_assert_float_eq(json_real_value(json_array_get(json_object_get(j, "offload_bytes"), 0)), 0.9, 1e-9);
    cr_assert_float_eq(json_real_value(json_array_get(json_object_get(j, "p50_ms"), 0)), 0.75, 1e-9);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(j, "t"), 0)), 1005);
    json_decref(j);
    /* 2 s after: the live interval holds the 5 misses */
    j = status_history_json(h, m, 8000, 1007000);
    req = json_object_get(j, "requests");
    cr_assert_eq(json_array_size(req), 2);
    cr_assert_eq(json_integer_value(json_array_get(req, 1)), 5);
    cr_assert(json_is_null(json_array_get(json_object_get(j, "p50_ms"), 1)), "no observation in it");
    cr_assert_float_eq(json_real_value(json_array_get(json_object_get(j, "hit_ratio"), 1)), 0, 1e-9);
    json_decref(j);
    /* the ring keeps the last 15 minutes */
    for (int i = 0; i < 400; i++)
        status_history_sample(h, m, 8000 + 5000 * (uint64_t)i, 1007000 + 5000 * (int64_t)i);
    j = status_history_json(h, m, 8000 + 5000 * 399, 1007000 + 5000 * 399);
    cr_assert_eq(json_array_size(json_object_get(j, "requests")), STATUS_HISTORY_S * 1000 / STATUS_SAMPLE_MS);
    json_decref(j);
    status_history_free(h);
    metrics_free(m);
}
