/* cdnload_report: the run's results, as JSON and CSV files and as a
 * summary for the terminal. */
#ifndef CDN_CDNLOAD_REPORT_H
#define CDN_CDNLOAD_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdnload_stats.h"

#define CDNLOAD_REGIONS_MAX 16
#define CDNLOAD_SERIES_MAX 3600

/* One second of the run (second i covers [i, i+1) s from the start). The
 * load's own requests (polite clients' objects) unless named otherwise. */
typedef struct cdnload_second {
    uint64_t requests, bytes, at_edge, at_shield, at_origin, errors;
    uint64_t status_5xx;       /* polite and abusive */
    uint64_t limited_polite;   /* 429s to the scenario's clients */
    uint64_t abusive;          /* responses to abusive clients */
    uint64_t limited_abusive;  /* ...of which 429 */
    uint64_t purges;           /* purge calls answered in this second */
    /* What the origin counted for the load's objects in this second, from
     * polling /.origin/stats once a second; origin_known false when that
     * poll failed (a gap, not a zero). */
    uint64_t origin_requests;
    bool origin_known;
} cdnload_second_t;

/* The purge schedule's outcome: every purge is checked on every edge. */
typedef struct cdnload_purges {
    uint64_t sent;             /* purge calls made */
    uint64_t ok;               /* answered 200 */
    uint64_t confirmed;        /* ...with every peer confirmed (a peer that is down is retried later) */
    uint64_t checked;          /* answered 200, then probed on every edge */
    uint64_t effective;        /* ...where every edge's next answer was not a hit */
    char first_failure[512];   /* what went wrong first (the purge was refused or an edge still hit), or "" */
    char first_unconfirmed[512]; /* the first answer with a peer not confirmed, or "" */
    cdnload_hist_t latency;    /* the purge call, send to answer */
} cdnload_purges_t;

typedef struct cdnload_run {
    unsigned nregions;
    char region[CDNLOAD_REGIONS_MAX][32];
    cdnload_counts_t counts[CDNLOAD_REGIONS_MAX];  /* the scenario's clients */
    cdnload_counts_t abusive[CDNLOAD_REGIONS_MAX]; /* the abusive clients */
    uint64_t distinct_cacheable; /* cacheable origin objects asked for at least once (again after a purge) */
    /* what reached the origin during the run: every object, and the
     * cacheable ones (/o/ and /img/) alone */
    uint64_t origin_requests, origin_bytes, origin_cacheable;
    uint64_t origin_abusive;   /* the abusive clients' requests that reached the origin (/a/) */
    cdnload_purges_t purges;
    char fault[128];           /* "shield-1 killed at 20 s, started at 30 s", or "" */
    double fault_kill_s, fault_start_s; /* -1: did not happen */
    double elapsed_s;
    cdnload_second_t series[CDNLOAD_SERIES_MAX];
    unsigned nseconds;
    char first_mismatch[2100]; /* "URL at offset N", or "" */
} cdnload_run_t;

/* Write DIR/report.json and DIR/series.csv (one line a second). Returns 0 or -1 with err. */
int cdnload_report_write(const cdnload_run_t *run, const char *dir, char *err, size_t errlen);
/* The summary for a terminal, to stdout. */
void cdnload_report_print(const cdnload_run_t *run);

#endif
