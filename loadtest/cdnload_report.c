/* cdnload_report: JSON and CSV reports (see cdnload_report.h). */
#include "cdnload_report.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0;
}

/* The whole run's counts, over every region. */
static void totals(const cdnload_run_t *run, const cdnload_counts_t *per, cdnload_counts_t *t)
{
    memset(t, 0, sizeof *t);
    for (unsigned i = 0; i < run->nregions; i++)
        cdnload_counts_add(t, &per[i]);
}

/* The best offload of the cacheable requests this workload allows: each
 * cacheable object fetched once: 1 - distinct objects / cacheable requests. */
static double best_offload(const cdnload_run_t *run, const cdnload_counts_t *t)
{
    return t->cacheable ? 1 - (double)run->distinct_cacheable / (double)t->cacheable : 0;
}

/* The offload of the cacheable requests, by the origin's count. */
static double cacheable_offload(const cdnload_run_t *run, const cdnload_counts_t *t)
{
    return t->cacheable ? 1 - (double)run->origin_cacheable / (double)t->cacheable : 0;
}

static json_t *counts_json(const cdnload_counts_t *c)
{
    const cdnload_hist_t *h = &c->latency;
    return json_pack("{s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:{s:I, s:I, s:I, s:I,"
                     " s:I}, s:f, s:f, s:{s:f, s:f, s:f, s:f, s:f}, s:I}",
                     "requests", (json_int_t)c->requests, "bytes", (json_int_t)c->bytes, "status", "2xx",
                     (json_int_t)c->status[2], "3xx", (json_int_t)c->status[3], "4xx", (json_int_t)c->status[4],
                     "5xx", (json_int_t)c->status[5], "429", (json_int_t)c->limited, "answered_at", "edge",
                     (json_int_t)c->at[CDNLOAD_AT_EDGE], "shield", (json_int_t)c->at[CDNLOAD_AT_SHIELD], "origin",
                     (json_int_t)c->at[CDNLOAD_AT_ORIGIN], "unknown", (json_int_t)c->at[CDNLOAD_AT_UNKNOWN],
                     "mismatches", (json_int_t)c->mismatches, "cacheable", (json_int_t)c->cacheable, "errors",
                     "connect", (json_int_t)c->errors_connect, "reset", (json_int_t)c->errors_reset, "timeout",
                     (json_int_t)c->errors_timeout, "parse", (json_int_t)c->errors_parse, "dropped",
                     (json_int_t)c->dropped, "edge_hit_ratio",
                     ratio(c->at[CDNLOAD_AT_EDGE], c->requests), "shield_hit_ratio",
                     ratio(c->at[CDNLOAD_AT_SHIELD], c->requests - c->at[CDNLOAD_AT_EDGE]), "latency_ms", "p50",
                     cdnload_hist_quantile(h, 0.5) / 1000, "p90", cdnload_hist_quantile(h, 0.9) / 1000, "p99",
                     cdnload_hist_quantile(h, 0.99) / 1000, "p99_9", cdnload_hist_quantile(h, 0.999) / 1000, "max",
                     (double)h->max_us / 1000, "images", (json_int_t)c->images);
}

static json_t *regions_json(const cdnload_run_t *run, const cdnload_counts_t *per)
{
    json_t *o = json_object();
    for (unsigned i = 0; i < run->nregions; i++)
        json_object_set_new(o, run->region[i], counts_json(&per[i]));
    return o;
}

static json_t *purges_json(const cdnload_purges_t *p)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:{s:f, s:f, s:f}}", "sent", (json_int_t)p->sent, "ok",
                     (json_int_t)p->ok, "confirmed", (json_int_t)p->confirmed, "checked", (json_int_t)p->checked,
                     "effective", (json_int_t)p->effective, "first_failure", p->first_failure, "first_unconfirmed",
                     p->first_unconfirmed, "latency_ms", "p50",
                     cdnload_hist_quantile(&p->latency, 0.5) / 1000, "p99", cdnload_hist_quantile(&p->latency, 0.99) / 1000,
                     "max", (double)p->latency.max_us / 1000);
}

static int write_series(const cdnload_run_t *run, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "second,requests,bytes,at_edge,at_shield,at_origin,errors,status_5xx,limited_polite,abusive,"
               "limited_abusive,purges,origin_requests\n");
    for (unsigned i = 0; i < run->nseconds; i++) {
        const cdnload_second_t *s = &run->series[i];
        fprintf(f, "%u,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,", i + 1, (unsigned long long)s->requests,
                (unsigned long long)s->bytes, (unsigned long long)s->at_edge, (unsigned long long)s->at_shield,
                (unsigned long long)s->at_origin, (unsigned long long)s->errors, (unsigned long long)s->status_5xx,
                (unsigned long long)s->limited_polite, (unsigned long long)s->abusive,
                (unsigned long long)s->limited_abusive, (unsigned long long)s->purges);
        if (s->origin_known)
            fprintf(f, "%llu", (unsigned long long)s->origin_requests);
        fputc('\n', f);
    }
    if (fclose(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cdnload_report_write(const cdnload_run_t *run, const char *dir, char *err, size_t errlen)
{
    cdnload_counts_t t, ab;
    totals(run, run->counts, &t);
    totals(run, run->abusive, &ab);
    double off_req = t.requests ? 1 - (double)run->origin_requests / (double)t.requests : 0;
    double off_bytes = t.bytes ? 1 - (double)run->origin_bytes / (double)t.bytes : 0;
    double best = best_offload(run, &t), off_c = cacheable_offload(run, &t);
    json_t *doc = json_pack("{s:f, s:o, s:o, s:{s:I, s:I, s:I, s:I}, s:{s:f, s:f, s:f, s:f, s:f}, s:I, s:s,"
                            " s:{s:o, s:o}, s:o, s:{s:s, s:f, s:f}}",
                            "elapsed_s", run->elapsed_s, "total", counts_json(&t), "regions",
                            regions_json(run, run->counts), "origin", "requests", (json_int_t)run->origin_requests,
                            "bytes", (json_int_t)run->origin_bytes, "cacheable_requests",
                            (json_int_t)run->origin_cacheable, "abusive_requests", (json_int_t)run->origin_abusive,
                            "offload", "requests", off_req, "bytes", off_bytes, "cacheable_requests", off_c,
                            "best_cacheable_requests", best, "ratio_to_best", best > 0 ? off_c / best : 0,
                            "distinct_cacheable", (json_int_t)run->distinct_cacheable, "first_mismatch",
                            run->first_mismatch, "abusive", "total", counts_json(&ab), "regions",
                            regions_json(run, run->abusive), "purges", purges_json(&run->purges), "fault", "what",
                            run->fault, "kill_s", run->fault_kill_s, "start_s", run->fault_start_s);
    char path[1024];
    snprintf(path, sizeof path, "%s/report.json", dir);
    int rc = doc ? json_dump_file(doc, path, JSON_INDENT(2) | JSON_SORT_KEYS) : -1;
    json_decref(doc);
    if (rc) {
        snprintf(err, errlen, "%s: cannot write", path);
        return -1;
    }
    snprintf(path, sizeof path, "%s/series.csv", dir);
    return write_series(run, path, err, errlen);
}

void cdnload_report_print(const cdnload_run_t *run)
{
    cdnload_counts_t t, ab;
    totals(run, run->counts, &t);
    totals(run, run->abusive, &ab);
    double off_req = t.requests ? 1 - (double)run->origin_requests / (double)t.requests : 0;
    double best = best_offload(run, &t), off_c = cacheable_offload(run, &t);
    printf("\n%llu requests in %.1f s (%.0f/s), %.1f MiB; errors: connect %llu, reset %llu, timeout %llu, parse %llu, "
           "dropped %llu; 5xx %llu; 429 %llu; mismatches %llu\n",
           (unsigned long long)t.requests, run->elapsed_s, run->elapsed_s > 0 ? (double)t.requests / run->elapsed_s : 0,
           (double)t.bytes / 1048576, (unsigned long long)t.errors_connect, (unsigned long long)t.errors_reset,
           (unsigned long long)t.errors_timeout, (unsigned long long)t.errors_parse, (unsigned long long)t.dropped,
           (unsigned long long)t.status[5], (unsigned long long)t.limited, (unsigned long long)t.mismatches);
    if (t.images)
        printf("image variants: %llu requests\n", (unsigned long long)t.images);
    printf("answered at: edge %.1f%%, shield %.1f%%, origin %.1f%%\n", 100 * ratio(t.at[CDNLOAD_AT_EDGE], t.requests),
           100 * ratio(t.at[CDNLOAD_AT_SHIELD], t.requests), 100 * ratio(t.at[CDNLOAD_AT_ORIGIN], t.requests));
    printf("offload: requests %.2f%%, bytes %.2f%%; cacheable requests %.2f%% (best possible %.2f%%, ratio %.4f); "
           "origin saw %llu requests\n",
           100 * off_req, 100 * (t.bytes ? 1 - (double)run->origin_bytes / (double)t.bytes : 0), 100 * off_c,
           100 * best, best > 0 ? off_c / best : 0, (unsigned long long)run->origin_requests);
    if (ab.requests || ab.errors_connect || ab.errors_reset || ab.errors_timeout)
        printf("abusive clients: %llu requests, %llu answered 429 (%.1f%%), %llu reached the origin; "
               "the others' 429s: %llu\n",
               (unsigned long long)ab.requests, (unsigned long long)ab.limited, 100 * ratio(ab.limited, ab.requests),
               (unsigned long long)run->origin_abusive, (unsigned long long)t.limited);
    const cdnload_purges_t *p = &run->purges;
    if (p->sent)
        printf("purges: %llu sent, %llu answered 200 (%llu with every peer confirmed), %llu checked on every edge, "
               "%llu effective everywhere; call p50 %.1f ms, max %.1f ms%s%s%s%s\n",
               (unsigned long long)p->sent, (unsigned long long)p->ok, (unsigned long long)p->confirmed,
               (unsigned long long)p->checked, (unsigned long long)p->effective,
               cdnload_hist_quantile(&p->latency, 0.5) / 1000, (double)p->latency.max_us / 1000,
               p->first_unconfirmed[0] ? "\n  first unconfirmed: " : "", p->first_unconfirmed,
               p->first_failure[0] ? "\n  FIRST FAILURE: " : "", p->first_failure);
    if (run->fault[0])
        printf("fault: %s\n", run->fault);
    printf("%-12s %10s %9s %9s %9s %9s\n", "region", "requests", "p50_ms", "p90_ms", "p99_ms", "p99.9_ms");
    for (unsigned i = 0; i < run->nregions; i++) {
        const cdnload_hist_t *h = &run->counts[i].latency;
        printf("%-12s %10llu %9.2f %9.2f %9.2f %9.2f\n", run->region[i], (unsigned long long)run->counts[i].requests,
               cdnload_hist_quantile(h, 0.5) / 1000, cdnload_hist_quantile(h, 0.9) / 1000,
               cdnload_hist_quantile(h, 0.99) / 1000, cdnload_hist_quantile(h, 0.999) / 1000);
    }
    if (run->first_mismatch[0])
        printf("FIRST MISMATCH: %s\n", run->first_mismatch);
}
