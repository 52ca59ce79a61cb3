/* cdnload_report: JSON and CSV reports, the origin's totals (see cdnload_report.h). */
#include "cdnload_report.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"

int cdnload_origin_totals(const char *addr, cdnload_origin_count_t *out, char *err, size_t errlen)
{
    char host[256];
    unsigned port;
    if (config_parse_addr(addr, host, sizeof host, &port)) {
        snprintf(err, errlen, "origin: expected HOST:PORT, got '%s'", addr);
        return -1;
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        snprintf(err, errlen, "origin: expected an IPv4 address, got '%s'", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        snprintf(err, errlen, "origin %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[300];
    int n = snprintf(req, sizeof req, "GET /.origin/stats HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr);
    static char resp[1 << 22]; /* the per-path table can be long: read it whole */
    size_t got = 0;
    ssize_t r;
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        snprintf(err, errlen, "origin %s: write failed", addr);
        return -1;
    }
    while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = '\0';
    const char *body = strstr(resp, "\r\n\r\n");
    int status = 0;
    sscanf(resp, "HTTP/1.%*d %d", &status);
    json_error_t je;
    json_t *j = body && status == 200 ? json_loads(body + 4, 0, &je) : NULL;
    json_t *paths = j ? json_object_get(j, "paths") : NULL;
    if (!json_is_object(paths)) {
        snprintf(err, errlen, "origin %s: /.origin/stats answered %d without a paths table", addr, status);
        json_decref(j);
        return -1;
    }
    memset(out, 0, sizeof *out);
    const char *path;
    json_t *v;
    json_object_foreach(paths, path, v) {
        bool o = strncmp(path, "/o/", 3) == 0;
        if (!o && strncmp(path, "/u/", 3) != 0)
            continue; /* health checks, stats */
        uint64_t rq = (uint64_t)json_integer_value(json_object_get(v, "requests"));
        out->requests += rq;
        out->bytes += (uint64_t)json_integer_value(json_object_get(v, "bytes"));
        out->cacheable += o ? rq : 0;
    }
    json_decref(j);
    return 0;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0;
}

/* The whole run's counts, over every region. */
static void totals(const cdnload_run_t *run, cdnload_counts_t *t)
{
    memset(t, 0, sizeof *t);
    for (unsigned i = 0; i < run->nregions; i++)
        cdnload_counts_add(t, &run->counts[i]);
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
    return json_pack("{s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:{s:I, s:I, s:I, s:I},"
                     " s:f, s:f, s:{s:f, s:f, s:f, s:f, s:f}}",
                     "requests", (json_int_t)c->requests, "bytes", (json_int_t)c->bytes, "status", "2xx",
                     (json_int_t)c->status[2], "3xx", (json_int_t)c->status[3], "4xx", (json_int_t)c->status[4],
                     "5xx", (json_int_t)c->status[5], "429", (json_int_t)c->limited, "answered_at", "edge",
                     (json_int_t)c->at[CDNLOAD_AT_EDGE], "shield", (json_int_t)c->at[CDNLOAD_AT_SHIELD], "origin",
                     (json_int_t)c->at[CDNLOAD_AT_ORIGIN], "unknown", (json_int_t)c->at[CDNLOAD_AT_UNKNOWN],
                     "mismatches", (json_int_t)c->mismatches, "cacheable", (json_int_t)c->cacheable, "errors",
                     "connect", (json_int_t)c->errors_connect, "reset", (json_int_t)c->errors_reset, "timeout",
                     (json_int_t)c->errors_timeout, "parse", (json_int_t)c->errors_parse, "edge_hit_ratio",
                     ratio(c->at[CDNLOAD_AT_EDGE], c->requests), "shield_hit_ratio",
                     ratio(c->at[CDNLOAD_AT_SHIELD], c->requests - c->at[CDNLOAD_AT_EDGE]), "latency_ms", "p50",
                     cdnload_hist_quantile(h, 0.5) / 1000, "p90", cdnload_hist_quantile(h, 0.9) / 1000, "p99",
                     cdnload_hist_quantile(h, 0.99) / 1000, "p99_9", cdnload_hist_quantile(h, 0.999) / 1000, "max",
                     (double)h->max_us / 1000);
}

int cdnload_report_write(const cdnload_run_t *run, const char *dir, char *err, size_t errlen)
{
    cdnload_counts_t t;
    totals(run, &t);
    json_t *regions = json_object();
    for (unsigned i = 0; i < run->nregions; i++)
        json_object_set_new(regions, run->region[i], counts_json(&run->counts[i]));
    double off_req = t.requests ? 1 - (double)run->origin_requests / (double)t.requests : 0;
    double off_bytes = t.bytes ? 1 - (double)run->origin_bytes / (double)t.bytes : 0;
    double best = best_offload(run, &t), off_c = cacheable_offload(run, &t);
    json_t *doc = json_pack("{s:f, s:o, s:o, s:{s:I, s:I, s:I}, s:{s:f, s:f, s:f, s:f, s:f}, s:I, s:s}",
                            "elapsed_s", run->elapsed_s, "total", counts_json(&t), "regions", regions, "origin",
                            "requests", (json_int_t)run->origin_requests, "bytes", (json_int_t)run->origin_bytes,
                            "cacheable_requests", (json_int_t)run->origin_cacheable, "offload", "requests", off_req,
                            "bytes", off_bytes, "cacheable_requests", off_c, "best_cacheable_requests", best,
                            "ratio_to_best", best > 0 ? off_c / best : 0, "distinct_cacheable",
                            (json_int_t)run->distinct_cacheable, "first_mismatch", run->first_mismatch);
    char path[1024];
    snprintf(path, sizeof path, "%s/report.json", dir);
    int rc = doc ? json_dump_file(doc, path, JSON_INDENT(2) | JSON_SORT_KEYS) : -1;
    json_decref(doc);
    if (rc) {
        snprintf(err, errlen, "%s: cannot write", path);
        return -1;
    }
    snprintf(path, sizeof path, "%s/series.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "second,requests,bytes,at_edge,at_shield,at_origin,errors\n");
    for (unsigned i = 0; i < run->nseconds; i++) {
        const cdnload_second_t *s = &run->series[i];
        fprintf(f, "%u,%llu,%llu,%llu,%llu,%llu,%llu\n", i + 1, (unsigned long long)s->requests,
                (unsigned long long)s->bytes, (unsigned long long)s->at_edge, (unsigned long long)s->at_shield,
                (unsigned long long)s->at_origin, (unsigned long long)s->errors);
    }
    if (fclose(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void cdnload_report_print(const cdnload_run_t *run)
{
    cdnload_counts_t t;
    totals(run, &t);
    double off_req = t.requests ? 1 - (double)run->origin_requests / (double)t.requests : 0;
    double best = best_offload(run, &t), off_c = cacheable_offload(run, &t);
    printf("\n%llu requests in %.1f s (%.0f/s), %.1f MiB; errors: connect %llu, reset %llu, timeout %llu, parse %llu; "
           "5xx %llu; 429 %llu; mismatches %llu\n",
           (unsigned long long)t.requests, run->elapsed_s, run->elapsed_s > 0 ? (double)t.requests / run->elapsed_s : 0,
           (double)t.bytes / 1048576, (unsigned long long)t.errors_connect, (unsigned long long)t.errors_reset,
           (unsigned long long)t.errors_timeout, (unsigned long long)t.errors_parse, (unsigned long long)t.status[5],
           (unsigned long long)t.limited, (unsigned long long)t.mismatches);
    printf("answered at: edge %.1f%%, shield %.1f%%, origin %.1f%%\n", 100 * ratio(t.at[CDNLOAD_AT_EDGE], t.requests),
           100 * ratio(t.at[CDNLOAD_AT_SHIELD], t.requests), 100 * ratio(t.at[CDNLOAD_AT_ORIGIN], t.requests));
    printf("offload: requests %.2f%%, bytes %.2f%%; cacheable requests %.2f%% (best possible %.2f%%, ratio %.4f); "
           "origin saw %llu requests\n",
           100 * off_req, 100 * (t.bytes ? 1 - (double)run->origin_bytes / (double)t.bytes : 0), 100 * off_c,
           100 * best, best > 0 ? off_c / best : 0, (unsigned long long)run->origin_requests);
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
