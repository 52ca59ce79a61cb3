/* cdnload_report: the run's results as JSON and CSV, and the origin's
 * own count (GET /.origin/stats) that offload is measured against. */
#ifndef CDN_CDNLOAD_REPORT_H
#define CDN_CDNLOAD_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cdnload_stats.h"

#define CDNLOAD_REGIONS_MAX 16
#define CDNLOAD_SERIES_MAX 3600

typedef struct cdnload_second {
    uint64_t requests, bytes, at_edge, at_shield, at_origin, errors;
} cdnload_second_t;

typedef struct cdnload_run {
    unsigned nregions;
    char region[CDNLOAD_REGIONS_MAX][32];
    cdnload_counts_t counts[CDNLOAD_REGIONS_MAX];
    uint64_t distinct_cacheable; /* cacheable objects asked for at least once */
    /* what reached the origin during the run: every object, and the
     * cacheable ones (/o/) alone */
    uint64_t origin_requests, origin_bytes, origin_cacheable;
    double elapsed_s;
    cdnload_second_t series[CDNLOAD_SERIES_MAX];
    unsigned nseconds;
    char first_mismatch[2100]; /* "URL at offset N", or "" */
} cdnload_run_t;

/* What the origin counted for the load's objects (paths /o/ and /u/:
 * not health checks), from GET /.origin/stats at addr (HOST:PORT),
 * blocking, bounded by 10 s. Returns 0 or -1 with err. */
typedef struct cdnload_origin_count {
    uint64_t requests, bytes, cacheable; /* cacheable: requests for /o/ */
} cdnload_origin_count_t;
int cdnload_origin_totals(const char *addr, cdnload_origin_count_t *out, char *err, size_t errlen);
/* Write DIR/report.json and DIR/series.csv. Returns 0 or -1 with err. */
int cdnload_report_write(const cdnload_run_t *run, const char *dir, char *err, size_t errlen);
/* The summary for a terminal, to stdout. */
void cdnload_report_print(const cdnload_run_t *run);

#endif
