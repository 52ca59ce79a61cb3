/* metrics: counters bumped from several worker threads sum right, histogram
 * buckets are cumulative with +Inf == count and an exact sum, help text and
 * label values are escaped, every scrape parses as the text exposition
 * format 0.0.4, shards never share a cache line, and bad definitions or a
 * full buffer are clean errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static bool is_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* A sample's name belongs to family fam of type type. */
static bool in_family(const char *name, size_t n, const char *fam, const char *type)
{
    size_t fl = strlen(fam);
    if (n == fl && memcmp(name, fam, n) == 0)
        return strcmp(type, "histogram") != 0;
    if (strcmp(type, "histogram") != 0 || n <= fl || memcmp(name, fam, fl) != 0)
        return false;
    const char *suf = name + fl;
    size_t sl = n - fl;
    return (sl == 7 && !memcmp(suf, "_bucket", 7)) || (sl == 4 && !memcmp(suf, "_sum", 4)) ||
           (sl == 6 && !memcmp(suf, "_count", 6));
}

/* Checks text line by line as the exposition format: each family has HELP
 * then TYPE (once) before its samples, each sample is name{labels} value
 * with valid names and escapes, and _bucket lines carry le. Returns the
 * number of sample lines. */
static int check_exposition(const char *text)
{
    char fam[128] = "", type[16] = "";
    char seen[4096] = " ";
    bool have_help = false;
    int samples = 0;
    cr_assert(*text == '\0' || text[strlen(text) - 1] == '\n', "output ends with a newline");
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = (size_t)(end - line);
        char l[1024];
        cr_assert_lt(len, sizeof l);
        memcpy(l, line, len);
        l[len] = '\0';
        line = end + 1;
        if (strncmp(l, "# HELP ", 7) == 0) {
            size_t n = strcspn(l + 7, " ");
            cr_assert(is_name(l + 7, n) && l[7 + n] == ' ', "HELP name: %s", l);
            snprintf(fam, sizeof fam, "%.*s", (int)n, l + 7);
            char key[140];
            snprintf(key, sizeof key, " %s ", fam);
            cr_assert_null(strstr(seen, key), "family %s written twice", fam);
            strncat(seen, key + 1, sizeof seen - strlen(seen) - 1);
            for (const char *p = l + 8 + n; *p; p++)
                if (*p == '\\') {
                    cr_assert(p[1] == '\\' || p[1] == 'n', "help escape: %s", l);
                    p++;
                }
            have_help = true;
            type[0] = '\0';
            continue;
        }
        if (strncmp(l, "# TYPE ", 7) == 0) {
            size_t n = strlen(fam);
            cr_assert(have_help && strncmp(l + 7, fam, n) == 0 && l[7 + n] == ' ', "TYPE after HELP: %s", l);
            snprintf(type, sizeof type, "%s", l + 8 + n);
            cr_assert(!strcmp(type, "counter") || !strcmp(type, "gauge") || !strcmp(type, "histogram"), "%s", l);
            have_help = false;
            continue;
        }
        cr_assert_neq(l[0], '#', "stray comment: %s", l);
        cr_assert_neq(type[0], '\0', "sample before HELP and TYPE: %s", l);
        size_t n = strcspn(l, "{ ");
        cr_assert(is_name(l, n) && in_family(l, n, fam, type), "sample name %s in %s", l, fam);
        const char *p = l + n;
        bool le = false;
        if (*p == '{') {
            p++;
            while (*p != '}') {
                size_t ln = strcspn(p, "=");
                cr_assert(is_name(p, ln) && p[ln + 1] == '"', "label: %s", l);
                le = le || (ln == 2 && !memcmp(p, "le", 2));
                for (p += ln + 2; *p != '"'; p++) {
                    cr_assert_neq(*p, '\0', "unterminated label value: %s", l);
                    if (*p == '\\') {
                        cr_assert(p[1] == '\\' || p[1] == '"' || p[1] == 'n', "label escape: %s", l);
                        p++;
                    }
                }
                p++;
                cr_assert(*p == ',' || *p == '}', "label list: %s", l);
                if (*p == ',')
                    p++;
            }
            p++;
        }
        cr_assert_eq(*p, ' ', "space before value: %s", l);
        p++;
        char *vend;
        strtod(p, &vend);
        cr_assert(vend != p && *vend == '\0', "value: %s", l);
        cr_assert_eq(le, n == strlen(fam) + 7, "le exactly on _bucket lines: %s", l);
        samples++;
    }
    return samples;
}

static char *scrape(const metrics_t *m)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(metrics_scrape(m, &b), 0);
    cr_assert_not_null(b.data);
    check_exposition(b.data);
    return buf_steal(&b);
}

struct bumper {
    metrics_shard_t *shard;
    unsigned seed;
};

static void *bump_many(void *arg)
{
    struct bumper *w = arg;
    for (unsigned i = 0; i < 100000; i++) {
        metrics_inc(w->shard, METRIC_REQUESTS, (i + w->seed) % METRIC_OUTCOME_COUNT, 1);
        metrics_inc(w->shard, METRIC_CLIENT_BYTES_SENT, 0, 1000);
        metrics_observe(w->shard, METRIC_REQUEST_DURATION, METRIC_HIT, 0.002);
    }
    return NULL;
}

Test(metrics, counters_from_threads_sum)
{
    enum { N = 4 };
    metrics_t *m;
    cr_assert_eq(metrics_new(metrics_cdn_defs, METRIC_CDN_COUNT, N, &m), 0);
    pthread_t t[N];
    struct bumper w[N];
    for (unsigned i = 0; i < N; i++) {
        w[i] = (struct bumper){metrics_shard(m, i), i};
        cr_assert_eq(pthread_create(&t[i], NULL, bump_many, &w[i]), 0);
    }
    /* Scrapes racing the writers must still parse. */
    for (int k = 0; k < 20; k++)
        free(scrape(m));
    for (unsigned i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    uint64_t total = 0;
    for (unsigned o = 0; o < METRIC_OUTCOME_COUNT; o++)
        total += metrics_value(m, METRIC_REQUESTS, o);
    cr_assert_eq(total, N * 100000);
    cr_assert_eq(metrics_value(m, METRIC_CLIENT_BYTES_SENT, 0), N * 100000ull * 1000);
    char *text = scrape(m);
    cr_assert_not_null(strstr(text, "\ncdn_client_sent_bytes_total 400000000\n"), "%s", text);
    cr_assert_not_null(strstr(text, "cdn_request_duration_seconds_count{outcome=\"hit\"} 400000\n"));
    cr_assert_not_null(strstr(text, "cdn_request_duration_seconds_sum{outcome=\"hit\"} 800.000000\n"));
    cr_assert_eq(metrics_label_index(m, METRIC_REQUESTS, "revalidated"), METRIC_REVALIDATED);
    cr_assert_eq(metrics_label_index(m, METRIC_REQUESTS, "nope"), -1);
    free(text);
    metrics_free(m);
}

Test(metrics, histogram_buckets_are_cumulative)
{
    static const double bounds[] = {0.001, 0.01, 0.1};
    static const metric_def_t defs[] = {
        {"t_seconds", "Latency.", METRIC_HISTOGRAM, NULL, NULL, 0, bounds, 3, 0},
    };
    metrics_t *m;
    cr_assert_eq(metrics_new(defs, 1, 2, &m), 0);
    /* 0.001 sits on a bound (le is <=); 7 is past the last; -1 counts as 0. */
    const double obs[] = {0.0005, 0.001, 0.002, 0.05, 0.05, 7, -1};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        metrics_observe(metrics_shard(m, (unsigned)i % 2), 0, 0, obs[i]);
    char *text = scrape(m);
    cr_assert_str_eq(text, "# HELP t_seconds Latency.\n"
                           "# TYPE t_seconds histogram\n"
                           "t_seconds_bucket{le=\"0.001\"} 3\n"
                           "t_seconds_bucket{le=\"0.01\"} 4\n"
                           "t_seconds_bucket{le=\"0.1\"} 6\n"
                           "t_seconds_bucket{le=\"+Inf\"} 7\n"
                           "t_seconds_sum 7.103500\n"
                           "t_seconds_count 7\n");
    free(text);
    metrics_free(m);
}

static int gauge_addrs(void *ud, metrics_gauge_sink_t *sink)
{
    int rc = metrics_gauge_put(sink, "10.0.0.1:80", 1);
    if (rc == 0)
        rc = metrics_gauge_put(sink, ud, 0.25);
    return rc;
}

Test(metrics, escapes_help_and_label_values)
{
    static const char *const vals[] = {"a\"b\\c\nd"};
    static const metric_def_t defs[] = {
        {"odd_total", "Back\\slash and\nnewline \"kept\".", METRIC_COUNTER, "v", vals, 1, NULL, 0, 0},
        {"up", "Target up.", METRIC_GAUGE, "target", NULL, 0, NULL, 0, 0},
        {"unset", "No callback: left out.", METRIC_GAUGE, NULL, NULL, 0, NULL, 0, 0},
    };
    metrics_t *m;
    cr_assert_eq(metrics_new(defs, 3, 1, &m), 0);
    metrics_set_gauge(m, 1, gauge_addrs, "[::1]:8080 \"x\"\\");
    metrics_inc(metrics_shard(m, 0), 0, 0, 5);
    char *text = scrape(m);
    cr_assert_str_eq(text, "# HELP odd_total Back\\\\slash and\\nnewline \"kept\".\n"
                           "# TYPE odd_total counter\n"
                           "odd_total{v=\"a\\\"b\\\\c\\nd\"} 5\n"
                           "# HELP up Target up.\n"
                           "# TYPE up gauge\n"
                           "up{target=\"10.0.0.1:80\"} 1\n"
                           "up{target=\"[::1]:8080 \\\"x\\\"\\\\\"} 0.25\n");
    free(text);
    metrics_free(m);
}

static int gauge_store(void *ud, metrics_gauge_sink_t *sink)
{
    return metrics_gauge_put(sink, NULL, 123456789.0);
}

Test(metrics, full_exposition_parses)
{
    static const metric_def_t g = {.name = "cdn_store_used_bytes", .help = "Store bytes used.", .type = METRIC_GAUGE};
    metric_def_t defs[METRIC_CDN_COUNT + 1];
    memcpy(defs, metrics_cdn_defs, sizeof metrics_cdn_defs);
    defs[METRIC_CDN_COUNT] = g;
    metrics_t *m;
    cr_assert_eq(metrics_new(defs, METRIC_CDN_COUNT + 1, 3, &m), 0);
    metrics_set_gauge(m, METRIC_CDN_COUNT, gauge_store, NULL);
    for (unsigned s = 0; s < 3; s++) {
        metrics_inc(metrics_shard(m, s), METRIC_RESPONSES, 1, s + 1);
        metrics_observe(metrics_shard(m, s), METRIC_REQUEST_DURATION, METRIC_MISS, 0.3 * s);
    }
    buf_t b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(metrics_scrape(m, &b), 0);
    /* 12 outcomes + 5 classes + 4 single counters, 12 outcomes x (15
     * buckets + sum + count), 6 upstream error kinds, 3 purge and 3 image
     * results, the image duration (17), 1 gauge; the gauges and scraped
     * families without a callback are left out, and the dynamic family
     * without a label callback has no samples */
    cr_assert_eq(check_exposition(b.data), 12 + 5 + 4 + 12 * 17 + 6 + 3 + 3 + 17 + 1);
    cr_assert_not_null(strstr(b.data, "\ncdn_responses_total{class=\"2xx\"} 6\n"));
    cr_assert_not_null(strstr(b.data, "\ncdn_store_used_bytes 123456789\n"));
    buf_free(&b);
    metrics_free(m);
}

Test(metrics, shards_own_their_cache_lines)
{
    enum { N = 3 };
    metrics_t *m;
    cr_assert_eq(metrics_new(metrics_cdn_defs, METRIC_CDN_COUNT, N, &m), 0);
    uintptr_t at[N];
    for (unsigned i = 0; i < N; i++) {
        at[i] = (uintptr_t)metrics_shard(m, i);
        cr_assert_eq(at[i] % 64, 0, "shard %u at %#lx", i, (unsigned long)at[i]);
        cr_assert(i == 0 || at[i] - at[i - 1] == at[1] - at[0], "even stride");
    }
    size_t stride = at[1] - at[0];
    cr_assert_geq(stride, 64);
    /* Fill every slot of the middle shard (every counter label, every
     * bucket up to +Inf and the sums): its neighbours' bytes, on their own
     * lines, must not change. */
    unsigned char before[2][16384];
    cr_assert_leq(stride, sizeof before[0]);
    memcpy(before[0], (void *)at[0], stride);
    memcpy(before[1], (void *)at[2], stride);
    metrics_shard_t *s = metrics_shard(m, 1);
    for (unsigned i = 0; i < METRIC_CDN_COUNT; i++) {
        const metric_def_t *h = &metrics_cdn_defs[i];
        if (h->type == METRIC_GAUGE || (h->flags & METRIC_F_SCRAPED))
            continue; /* nothing stored */
        unsigned n = h->nvalues ? h->nvalues : 1;
        for (unsigned v = 0; v < n; v++) {
            if (h->type == METRIC_COUNTER) {
                metrics_inc(s, i, v, UINT64_MAX / 4);
                continue;
            }
            for (unsigned b = 0; b < h->nbounds; b++)
                metrics_observe(s, i, v, h->bounds[b]);
            metrics_observe(s, i, v, 1e6);
        }
    }
    cr_assert(memcmp(before[0], (void *)at[0], stride) == 0, "shard 0 untouched");
    cr_assert(memcmp(before[1], (void *)at[2], stride) == 0, "shard 2 untouched");
    cr_assert_eq(metrics_value(m, METRIC_CONNS_REFUSED, 0), UINT64_MAX / 4);
    metrics_free(m);
}

Test(metrics, rejects_bad_definitions)
{
    static const double desc[] = {0.1, 0.01};
    static const char *const one[] = {"x"};
    double many[METRICS_BOUNDS_MAX + 1];
    for (unsigned i = 0; i <= METRICS_BOUNDS_MAX; i++)
        many[i] = i + 1;
    const metric_def_t bad[] = {
        {.name = "requests", .help = "No _total.", .type = METRIC_COUNTER},
        {.name = "9lives_total", .help = "Starts with a digit.", .type = METRIC_COUNTER},
        {.name = "a-b_total", .help = "Dash.", .type = METRIC_COUNTER},
        {"h_seconds", "Bounds go down.", METRIC_HISTOGRAM, NULL, NULL, 0, desc, 2, 0},
        {.name = "h_seconds", .help = "No bounds.", .type = METRIC_HISTOGRAM},
        {"h_seconds", "le is the bucket's.", METRIC_HISTOGRAM, "le", one, 1, desc + 1, 1, 0},
        {.name = "c_total", .help = "Label without values.", .type = METRIC_COUNTER, .label = "x"},
        {.name = "c_total", .help = NULL, .type = METRIC_COUNTER},
        {.name = "g", .help = "A scraped gauge: gauges are always.", .type = METRIC_GAUGE, .flags = METRIC_F_SCRAPED},
        {.name = "g", .help = "A dynamic gauge.", .type = METRIC_GAUGE, .label = "t", .flags = METRIC_F_DYNAMIC},
        {.name = "c_total", .help = "Dynamic with fixed values.", .type = METRIC_COUNTER, .label = "x",
         .values = one, .nvalues = 1, .flags = METRIC_F_DYNAMIC},
        {.name = "c_total", .help = "Scraped with fixed values.", .type = METRIC_COUNTER, .label = "x",
         .values = one, .nvalues = 1, .flags = METRIC_F_SCRAPED},
        {.name = "c_total", .help = "Both.", .type = METRIC_COUNTER, .flags = METRIC_F_SCRAPED | METRIC_F_DYNAMIC},
        {.name = "c_total", .help = "Unknown flag.", .type = METRIC_COUNTER, .flags = 8},
        {"h_seconds", "Too many bounds.", METRIC_HISTOGRAM, NULL, NULL, 0, many, METRICS_BOUNDS_MAX + 1, 0},
    };
    metrics_t *m = (metrics_t *)1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(metrics_new(&bad[i], 1, 1, &m), -EINVAL, "def %zu", i);
        cr_assert_null(m);
    }
    cr_assert_eq(metrics_new(metrics_cdn_defs, METRIC_CDN_COUNT, 0, &m), -EINVAL);
}

Test(metrics, scrape_past_the_cap_is_e2big)
{
    metrics_t *m;
    cr_assert_eq(metrics_new(metrics_cdn_defs, METRIC_CDN_COUNT, 1, &m), 0);
    buf_t b;
    buf_init(&b, 200);
    cr_assert_eq(metrics_scrape(m, &b), -E2BIG);
    cr_assert_leq(b.len, 200);
    buf_free(&b);
    metrics_free(m);
}

/* --- scrape-time families (METRIC_F_SCRAPED, METRIC_F_DYNAMIC) and
 * gauges with several labels --- */

static const char *slot_name(void *ud, unsigned slot)
{
    static const char *const names[] = {"http://a:1", NULL, "b \"q\"\\\n"};
    return slot < 3 ? names[slot] : NULL;
}

static int scraped_counter(void *ud, metrics_gauge_sink_t *sink)
{
    int rc = metrics_put_count(sink, "url", UINT64_MAX - 1);
    return rc ? rc : metrics_put_count(sink, "tag", 0);
}

static int scraped_hist(void *ud, metrics_gauge_sink_t *sink)
{
    static const uint64_t counts[3] = {2, 0, 5}; /* <= 0.1, <= 1, above */
    return metrics_put_histogram(sink, NULL, counts, 12345678);
}

static int build_info(void *ud, metrics_gauge_sink_t *sink)
{
    static const char *const names[] = {"version", "revision"};
    static const char *const values[] = {"1.0", "ab\"c"};
    return metrics_gauge_put_labels(sink, 2, names, values, 1);
}

static int bad_labels(void *ud, metrics_gauge_sink_t *sink)
{
    static const char *const names[] = {"ok", "bad-name"};
    static const char *const values[] = {"1", "2"};
    return metrics_gauge_put_labels(sink, 2, names, values, 1);
}

static const double b2[] = {0.1, 1};
static const metric_def_t ext_defs[] = {
    {"up_seconds", "Per target.", METRIC_HISTOGRAM, "target", NULL, 4, b2, 2, METRIC_F_DYNAMIC},
    {"up_total", "Per target.", METRIC_COUNTER, "target", NULL, 4, NULL, 0, METRIC_F_DYNAMIC},
    {"purges_total", "Kept elsewhere.", METRIC_COUNTER, "kind", NULL, 0, NULL, 0, METRIC_F_SCRAPED},
    {"batch_seconds", "Kept elsewhere.", METRIC_HISTOGRAM, NULL, NULL, 0, b2, 2, METRIC_F_SCRAPED},
    {"build_info", "Several labels.", METRIC_GAUGE, NULL, NULL, 0, NULL, 0, 0},
};

Test(metrics, dynamic_labels_name_slots_at_scrape_time)
{
    metrics_t *m;
    cr_assert_eq(metrics_new(ext_defs, 5, 2, &m), 0);
    cr_assert_eq(metrics_label_index(m, 1, "http://a:1"), -1, "dynamic values are not a fixed set");
    metrics_set_labels(m, 0, slot_name, NULL);
    metrics_set_labels(m, 1, slot_name, NULL);
    metrics_observe(metrics_shard(m, 0), 0, 0, 0.05);
    metrics_observe(metrics_shard(m, 1), 0, 0, 0.5);
    metrics_observe(metrics_shard(m, 1), 0, 2, 3);
    metrics_inc(metrics_shard(m, 0), 1, 2, 7);
    metrics_inc(metrics_shard(m, 1), 1, 2, 1);
    metrics_inc(metrics_shard(m, 1), 1, 3, 99); /* an unnamed slot: counted, not written */
    cr_assert_eq(metrics_value(m, 1, 2), 8);
    char *t = scrape(m);
    cr_assert_not_null(strstr(t, "\nup_seconds_bucket{target=\"http://a:1\",le=\"0.1\"} 1\n"), "%s", t);
    cr_assert_not_null(strstr(t, "\nup_seconds_bucket{target=\"http://a:1\",le=\"1\"} 2\n"));
    cr_assert_not_null(strstr(t, "\nup_seconds_count{target=\"http://a:1\"} 2\n"));
    cr_assert_not_null(strstr(t, "\nup_seconds_sum{target=\"http://a:1\"} 0.550000\n"));
    cr_assert_not_null(strstr(t, "\nup_seconds_count{target=\"b \\\"q\\\"\\\\\\n\"} 1\n"), "%s", t);
    cr_assert_not_null(strstr(t, "\nup_total{target=\"b \\\"q\\\"\\\\\\n\"} 8\n"));
    cr_assert_null(strstr(t, "99"), "slot 3 has no name");
    cr_assert_null(strstr(t, "up_total{target=\"http://a:1\"} 1"));
    cr_assert_not_null(strstr(t, "\nup_total{target=\"http://a:1\"} 0\n"));
    /* scraped families without callbacks are left out; the gauge too */
    cr_assert_null(strstr(t, "purges_total"));
    cr_assert_null(strstr(t, "build_info"));
    free(t);
    metrics_free(m);
}

Test(metrics, scraped_families_and_multi_label_gauges)
{
    metrics_t *m;
    cr_assert_eq(metrics_new(ext_defs, 5, 1, &m), 0);
    metrics_set_gauge(m, 2, scraped_counter, NULL);
    metrics_set_gauge(m, 3, scraped_hist, NULL);
    metrics_set_gauge(m, 4, build_info, NULL);
    char *t = scrape(m);
    cr_assert_not_null(strstr(t, "# TYPE purges_total counter\npurges_total{kind=\"url\"} 18446744073709551614\n"
                                 "purges_total{kind=\"tag\"} 0\n"), "%s", t);
    cr_assert_not_null(strstr(t, "# TYPE batch_seconds histogram\nbatch_seconds_bucket{le=\"0.1\"} 2\n"
                                 "batch_seconds_bucket{le=\"1\"} 2\nbatch_seconds_bucket{le=\"+Inf\"} 7\n"
                                 "batch_seconds_sum 12.345678\nbatch_seconds_count 7\n"), "%s", t);
    cr_assert_not_null(strstr(t, "\nbuild_info{version=\"1.0\",revision=\"ab\\\"c\"} 1\n"), "%s", t);
    free(t);
    /* A bad label name fails the scrape cleanly. */
    metrics_set_gauge(m, 4, bad_labels, NULL);
    buf_t b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(metrics_scrape(m, &b), -EINVAL);
    buf_free(&b);
    metrics_free(m);
}
