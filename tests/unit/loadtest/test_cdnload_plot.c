/* cdnload_plot: from a run built by hand and a series.csv shaped like the
 * report's, latency.csv holds each region's percentiles, gnuplot renders
 * the three PNGs, and without gnuplot on PATH the data and the script are
 * still written (result 1). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdnload_plot.h"

#define SECONDS 20

static cdnload_run_t run; /* large (the series): not on the stack */
static char dir[64];

/* Two regions: eu with a median of 2 ms, us with 20 ms (a tail up to 10x
 * both); a third, idle, with no observations. Shield-1 killed at 8 s and
 * started at 14 s; a purge in second 10. */
static void build_run(void)
{
    memset(&run, 0, sizeof run);
    run.nregions = 3;
    snprintf(run.region[0], sizeof run.region[0], "eu");
    snprintf(run.region[1], sizeof run.region[1], "us_east");
    snprintf(run.region[2], sizeof run.region[2], "idle");
    for (uint64_t i = 0; i < 1000; i++) {
        cdnload_hist_add(&run.counts[0].latency, 1000 + 2 * i);   /* 1 to 3 ms: median 2 ms */
        cdnload_hist_add(&run.counts[1].latency, 10000 + 20 * i); /* 10 to 30 ms: median 20 ms */
    }
    cdnload_hist_add(&run.counts[0].latency, 20000);
    cdnload_hist_add(&run.counts[1].latency, 200000);
    run.fault_kill_s = 8;
    run.fault_start_s = 14;
    run.nseconds = SECONDS;
    for (unsigned i = 0; i < SECONDS; i++) {
        cdnload_second_t *s = &run.series[i];
        bool down = i >= 8 && i < 14;
        s->requests = 1000;
        s->at_edge = 700 + i * 5;
        s->at_shield = down ? 0 : 200;
        s->at_origin = s->requests - s->at_edge - s->at_shield;
        s->errors = down ? 3 : 0;
        s->status_5xx = i == 8 ? 12 : 0;
        s->limited_polite = i % 4 == 0 ? 2 : 0;
        s->limited_abusive = 40;
        s->abusive = 50;
        s->purges = i == 10;
        s->origin_known = i != 5;
        s->origin_requests = s->at_origin + 3;
    }
}

/* series.csv as cdnload_report.c writes it (the lead's file: written here
 * so the test does not depend on it), origin_requests empty when unknown. */
static void write_series(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/series.csv", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "second,requests,bytes,at_edge,at_shield,at_origin,errors,status_5xx,limited_polite,abusive,"
               "limited_abusive,purges,origin_requests\n");
    for (unsigned i = 0; i < run.nseconds; i++) {
        const cdnload_second_t *s = &run.series[i];
        fprintf(f, "%u,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,", i + 1,
                (unsigned long long)s->requests, (unsigned long long)s->requests * 20000,
                (unsigned long long)s->at_edge, (unsigned long long)s->at_shield, (unsigned long long)s->at_origin,
                (unsigned long long)s->errors, (unsigned long long)s->status_5xx,
                (unsigned long long)s->limited_polite, (unsigned long long)s->abusive,
                (unsigned long long)s->limited_abusive, (unsigned long long)s->purges);
        if (s->origin_known)
            fprintf(f, "%llu", (unsigned long long)s->origin_requests);
        fprintf(f, "\n");
    }
    cr_assert_eq(fclose(f), 0);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/cdnload-plot-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    build_run();
    write_series();
}

static void teardown(void)
{
    static const char *const files[] = { "series.csv", "latency.csv", "plots.gp", "gnuplot.log",
                                         "offload.png", "latency.png", "rps.png", "gnuplot" };
    char path[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static bool exists(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static void assert_png(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s missing", name);
    unsigned char sig[8];
    cr_assert_eq(fread(sig, 1, 8, f), 8);
    cr_assert_eq(memcmp(sig, "\x89PNG\r\n\x1a\n", 8), 0, "%s is not a PNG", name);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    /* An empty 1000x500 frame is a few KiB; axes, lines and labels more. */
    cr_assert_gt(size, 10000, "%s: %ld bytes", name, size);
}

/* Split a CSV line in place; returns the number of cells (empty ones too). */
static int cells(char *line, char *cell[], int max)
{
    int n = 0;
    line[strcspn(line, "\n")] = '\0';
    for (char *p = line; n < max;) {
        cell[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

/* PATH set to dir alone for the call, restored after (Criterion runs each
 * test in its own process, but the next assertion should not depend on it). */
static int plot_with_path(const char *path, char *err, size_t errlen)
{
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("PATH", path, 1);
    int rc = cdnload_plot(&run, dir, err, errlen);
    if (saved) {
        setenv("PATH", saved, 1);
        free(saved);
    } else {
        unsetenv("PATH");
    }
    return rc;
}

Test(cdnload_plot, renders_the_three_pngs_and_latency_csv, .init = setup, .fini = teardown)
{
    char err[512] = "";
    int rc = cdnload_plot(&run, dir, err, sizeof err);
    cr_assert_eq(rc, 0, "cdnload_plot: %d: %s", rc, err);
    assert_png("offload.png");
    assert_png("latency.png");
    assert_png("rps.png");

    char path[128], line[512];
    snprintf(path, sizeof path, "%s/latency.csv", dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char *cell[8];
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_eq(cells(line, cell, 8), 4, "header: %s", line);
    cr_assert_str_eq(cell[0], "percentile");
    cr_assert_str_eq(cell[1], "eu");
    cr_assert_str_eq(cell[2], "us_east");
    cr_assert_str_eq(cell[3], "idle");
    int rows = 0;
    bool median = false;
    while (fgets(line, sizeof line, f)) {
        rows++;
        cr_assert_eq(cells(line, cell, 8), 4, "row: %s", line);
        cr_assert_str_eq(cell[3], "", "idle region: '%s'", cell[3]);
        if (strcmp(cell[0], "50") != 0)
            continue;
        median = true;
        /* Log-linear buckets: a quantile is off by at most 1/8 of its value. */
        double eu = strtod(cell[1], NULL), us = strtod(cell[2], NULL);
        cr_assert(fabs(eu - 2.0) <= 2.0 / 8, "eu p50 %g ms, expected 2", eu);
        cr_assert(fabs(us - 20.0) <= 20.0 / 8, "us_east p50 %g ms, expected 20", us);
    }
    fclose(f);
    cr_assert(median, "no 50th-percentile row");
    cr_assert_geq(rows, 10);
}

Test(cdnload_plot, without_gnuplot_the_data_and_script_are_written, .init = setup, .fini = teardown)
{
    char err[512] = "";
    int rc = plot_with_path(dir, err, sizeof err); /* a directory without gnuplot */
    cr_assert_eq(rc, 1, "cdnload_plot: %d: %s", rc, err);
    cr_assert(strstr(err, "gnuplot not found") && strstr(err, "gnuplot-nox") && strstr(err, dir), "err: %s", err);
    cr_assert(exists("latency.csv"));
    cr_assert(exists("plots.gp"));
    cr_assert(!exists("offload.png"));
}

Test(cdnload_plot, an_empty_run_still_renders, .init = setup, .fini = teardown)
{
    /* No seconds and no responses (a run stopped at once): frames that say
     * so, not a gnuplot error. */
    memset(run.counts, 0, sizeof run.counts);
    run.nseconds = 0;
    write_series();
    char err[512] = "";
    int rc = cdnload_plot(&run, dir, err, sizeof err);
    cr_assert_eq(rc, 0, "cdnload_plot: %d: %s", rc, err);
    cr_assert(exists("offload.png") && exists("latency.png") && exists("rps.png"));
}

Test(cdnload_plot, a_gnuplot_failure_names_its_status_and_message, .init = setup, .fini = teardown)
{
    /* A stand-in gnuplot that fails the way the real one does: a warning,
     * the echoed command and caret, then the error. */
    char path[128];
    snprintf(path, sizeof path, "%s/gnuplot", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\n"
               "echo '\"plots.gp\" line 3: warning: no column with header \"x\"' >&2\n"
               "echo 'plot \"series.csv\" using 1:2' >&2\n"
               "echo '                     ^' >&2\n"
               "echo '\"plots.gp\" line 9: all points y value undefined!' >&2\n"
               "exit 3\n");
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path, 0755), 0);
    char err[512] = "";
    int rc = plot_with_path(dir, err, sizeof err);
    unlink(path);
    cr_assert_eq(rc, -1, "cdnload_plot: %d: %s", rc, err);
    cr_assert(strstr(err, "exited with status 3") && strstr(err, "gnuplot.log") &&
                  strstr(err, "\"plots.gp\" line 9: all points y value undefined!"),
              "err: %s", err);
}

Test(cdnload_plot, a_series_without_a_column_it_plots_is_an_error, .init = setup, .fini = teardown)
{
    /* gnuplot would only warn and leave the line out of the picture. */
    char path[128];
    snprintf(path, sizeof path, "%s/series.csv", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "second,requests,bytes,at_edge,at_shield,at_origin,errors,status_5xx,limited_polite,abusive,"
               "limited_abusive,purges\n1,10,100,5,3,2,0,0,0,0,0,0,\n");
    cr_assert_eq(fclose(f), 0);
    char err[512] = "";
    int rc = cdnload_plot(&run, dir, err, sizeof err);
    cr_assert_eq(rc, -1, "cdnload_plot: %d: %s", rc, err);
    cr_assert(strstr(err, "no column origin_requests"), "err: %s", err);
    cr_assert(!exists("offload.png"));
}
