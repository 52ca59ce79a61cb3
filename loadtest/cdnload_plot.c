/* cdnload_plot: latency.csv, plots.gp and gnuplot's PNGs (see cdnload_plot.h). */
#include "cdnload_plot.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The percentiles latency.csv has a row for: dense in the tail, where
 * regions differ. */
static const double percentiles[] = { 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.5, 99.9, 99.99 };

static const char *const pngs[] = { "offload.png", "latency.png", "rps.png" };

/* A region's name as a CSV header cell and a gnuplot string: a comma, a
 * quote or a backslash would split the cell or end the string, so they
 * become '_' (the same in both files, so column("name") still finds it). */
static void safe_name(char *out, size_t outlen, const char *in)
{
    size_t i = 0;
    for (; in[i] && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = c < 0x20 || c == 0x7f || c == ',' || c == '"' || c == '\'' || c == '\\' ? '_' : (char)c;
    }
    out[i] = '\0';
}

static int path_in(char *path, size_t len, const char *dir, const char *name, char *err, size_t errlen)
{
    if ((size_t)snprintf(path, len, "%s/%s", dir, name) >= len) {
        snprintf(err, errlen, "%s: directory name too long", dir);
        return -1;
    }
    return 0;
}

/* Close f, and say which file failed when writing or closing did. */
static int finish(FILE *f, const char *path, char *err, size_t errlen)
{
    bool bad = ferror(f) != 0;
    if (fclose(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (bad) {
        snprintf(err, errlen, "%s: write failed", path);
        return -1;
    }
    return 0;
}

static int write_latency_csv(const cdnload_run_t *run, const char *dir, char *err, size_t errlen)
{
    char path[1024], name[sizeof run->region[0]];
    if (path_in(path, sizeof path, dir, "latency.csv", err, errlen))
        return -1;
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "percentile");
    for (unsigned r = 0; r < run->nregions; r++) {
        safe_name(name, sizeof name, run->region[r]);
        fprintf(f, ",%s", name);
    }
    fprintf(f, "\n");
    for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++) {
        fprintf(f, "%g", percentiles[i]);
        for (unsigned r = 0; r < run->nregions; r++) {
            const cdnload_hist_t *h = &run->counts[r].latency;
            if (h->count) /* no observations: an empty cell, which gnuplot skips (not a 0 ms line) */
                fprintf(f, ",%.3f", cdnload_hist_quantile(h, percentiles[i] / 100) / 1000);
            else
                fprintf(f, ",");
        }
        fprintf(f, "\n");
    }
    return finish(f, path, err, errlen);
}

/* What the script draws where there is nothing to plot: gnuplot fails on
 * a plot without a single valid point, and an empty frame that says so
 * is more use than no PNG. */
static void empty_plot(FILE *f, const char *what)
{
    fprintf(f, "set label 1 \"%s\" at graph 0.5, graph 0.5 center\n"
               "plot [0:1] [0:1] NaN notitle\n"
               "unset label 1\n",
            what);
}

/* Dashed vertical lines at the fault's kill and start (when they happened). */
static void fault_marks(FILE *f, const cdnload_run_t *run)
{
    if (run->fault_kill_s >= 0)
        fprintf(f, "set arrow 1 from %.3f, graph 0 to %.3f, graph 1 nohead dashtype 2 linewidth 1.5 linecolor \"red\"\n"
                   "set label 11 \"killed\" at %.3f, graph 0.97 offset 0.5, 0 textcolor \"red\"\n",
                run->fault_kill_s, run->fault_kill_s, run->fault_kill_s);
    if (run->fault_start_s >= 0)
        fprintf(f,
                "set arrow 2 from %.3f, graph 0 to %.3f, graph 1 nohead dashtype 2 linewidth 1.5 "
                "linecolor \"dark-green\"\n"
                "set label 12 \"started\" at %.3f, graph 0.92 offset 0.5, 0 textcolor \"dark-green\"\n",
                run->fault_start_s, run->fault_start_s, run->fault_start_s);
}

static void script_offload(FILE *f, const cdnload_run_t *run)
{
    fprintf(f, "\n# Offload per second: the origin's own count against the load's requests,\n"
               "# and where the edge's Cache-Status says each answer came from.\n"
               "set output \"offload.png\"\n"
               "set title \"Offload per second\"\n"
               "set xlabel \"seconds since the start\"\n"
               "set ylabel \"%% of the second's requests\"\n"
               "set xrange [0:*]\n"
               "set yrange [0:100]\n");
    fault_marks(f, run);
    if (!run->nseconds) {
        empty_plot(f, "no seconds recorded");
        return;
    }
    /* c == c is false for NaN: a second whose origin count is unknown (an
     * empty cell) is a gap in the line, not a zero. */
    fprintf(f, "plot \"series.csv\" using \"second\":(c = column(\"origin_requests\"), r = column(\"requests\"), "
               "c == c && r > 0 ? 100 * (1 - c / r) : NaN) \\\n"
               "       with lines linewidth 2 linecolor \"black\" title \"offload (1 - origin / requests)\", \\\n"
               "     \"\" using \"second\":(r = column(\"requests\"), r > 0 ? 100 * column(\"at_edge\") / r : NaN) \\\n"
               "       with lines linewidth 1.5 linecolor \"royalblue\" title \"answered at the edge\", \\\n"
               "     \"\" using \"second\":(r = column(\"requests\"), "
               "r > 0 ? 100 * (column(\"at_edge\") + column(\"at_shield\")) / r : NaN) \\\n"
               "       with lines linewidth 1.5 linecolor \"orange\" title \"at the edge or a shield\", \\\n"
               "     \"\" using \"second\":(column(\"purges\") > 0 ? 4 : NaN) \\\n"
               "       with impulses linewidth 3 linecolor \"purple\" title \"purge\"\n");
}

static void script_latency(FILE *f, const cdnload_run_t *run)
{
    /* The y axis in nines (-log10(1 - p)): a linear percentile axis
     * squeezes p99 to p99.99, where regions differ, into its top pixel. */
    fprintf(f, "\n# Latency distribution per region (from latency.csv).\n"
               "unset arrow\n"
               "unset label\n"
               "set output \"latency.png\"\n"
               "set title \"Latency by percentile\"\n"
               "set xlabel \"latency (ms)\"\n"
               "set ylabel \"percentile\"\n"
               "nines(p) = -log10(1 - p / 100.0)\n"
               "set ytics (\"0\" 0, \"50\" nines(50), \"90\" nines(90), \"99\" nines(99), \"99.9\" nines(99.9), "
               "\"99.99\" nines(99.99))\n"
               "set xrange [*:*]\n"
               "set yrange [0:nines(99.99) + 0.2]\n");
    unsigned with_data = 0;
    for (unsigned r = 0; r < run->nregions; r++)
        with_data += run->counts[r].latency.count > 0;
    if (!with_data) {
        empty_plot(f, "no responses recorded");
        fprintf(f, "set ytics autofreq\n");
        return;
    }
    fprintf(f, "set logscale x\n"
               "plot ");
    const char *sep = "";
    for (unsigned r = 0; r < run->nregions; r++) {
        if (!run->counts[r].latency.count)
            continue; /* its column is empty: gnuplot would warn and skip it */
        char name[sizeof run->region[0]];
        safe_name(name, sizeof name, run->region[r]);
        fprintf(f, "%s\"latency.csv\" using (column(\"%s\")):(nines(column(\"percentile\"))) "
                   "with linespoints linewidth 2 pointtype 7 pointsize 0.7 title \"%s\"",
                sep, name, name);
        sep = ", \\\n     ";
    }
    fprintf(f, "\nunset logscale x\n"
               "set ytics autofreq\n");
}

static void script_rps(FILE *f, const cdnload_run_t *run)
{
    /* Errors on their own (right) axis: a few per second would be a flat
     * line at the bottom of an axis scaled to thousands of requests. */
    fprintf(f, "\n# Requests, errors, 5xx and 429s per second.\n"
               "set output \"rps.png\"\n"
               "set title \"Requests per second\"\n"
               "set xlabel \"seconds since the start\"\n"
               "set ylabel \"requests per second\"\n"
               "set y2label \"errors, 5xx, 429 per second\"\n"
               "set ytics nomirror\n"
               "set y2tics\n"
               "set xrange [0:*]\n"
               "set yrange [0:*]\n"
               "set y2range [0:*]\n");
    fault_marks(f, run);
    if (!run->nseconds) {
        empty_plot(f, "no seconds recorded");
        return;
    }
    fprintf(f, "plot \"series.csv\" using \"second\":\"requests\" with lines linewidth 2 linecolor \"black\" "
               "title \"requests (left axis)\", \\\n"
               "     \"\" using \"second\":\"errors\" axes x1y2 with lines linewidth 1.5 linecolor \"red\" "
               "title \"errors: connect, reset, timeout, parse\", \\\n"
               "     \"\" using \"second\":\"status_5xx\" axes x1y2 with lines linewidth 1.5 linecolor \"orange\" "
               "title \"5xx\", \\\n"
               "     \"\" using \"second\":(column(\"limited_polite\") + column(\"limited_abusive\")) axes x1y2 "
               "with lines linewidth 1.5 linecolor \"purple\" title \"429 (polite and abusive clients)\"\n");
}

static int write_script(const cdnload_run_t *run, const char *dir, char *err, size_t errlen)
{
    char path[1024];
    if (path_in(path, sizeof path, dir, "plots.gp", err, errlen))
        return -1;
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* pngcairo draws antialiased lines; plain png (libgd) is the fallback
     * where gnuplot was built without cairo. noenhanced: '_' in a region's
     * name is a name, not a subscript. */
    fprintf(f, "# cdnload's plots: offload.png, latency.png, rps.png from series.csv and\n"
               "# latency.csv (cdnload wrote all three). Re-render: cd to this directory,\n"
               "# then gnuplot plots.gp\n"
               "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
               "    set terminal pngcairo size 1000,500 noenhanced font \"sans,10\"\n"
               "} else {\n"
               "    set terminal png size 1000,500 noenhanced\n"
               "}\n"
               "# Columns are read by their header names, so their order does not matter.\n"
               "set datafile separator comma\n"
               "set datafile columnheaders\n"
               "set grid linecolor \"grey80\"\n"
               "set border 3\n"
               "set tics nomirror\n"
               "set key below\n");
    script_offload(f, run);
    script_latency(f, run);
    script_rps(f, run);
    fprintf(f, "unset output\n");
    return finish(f, path, err, errlen);
}

/* The series.csv columns plots.gp reads. gnuplot only warns about a
 * missing one and draws the rest, so a renamed column would otherwise go
 * unnoticed as a line missing from a picture. */
static const char *const series_columns[] = { "second", "requests", "at_edge", "at_shield", "errors", "status_5xx",
                                              "limited_polite", "limited_abusive", "purges", "origin_requests" };

static int check_series(const char *dir, char *err, size_t errlen)
{
    char path[1024], head[1024];
    if (path_in(path, sizeof path, dir, "series.csv", err, errlen))
        return -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    bool got = fgets(head + 1, sizeof head - 2, f) != NULL;
    fclose(f);
    /* ",a,b,c," so that every name is looked for between commas, whole. */
    head[0] = ',';
    if (!got)
        head[1] = '\0';
    head[1 + strcspn(head + 1, "\r\n")] = '\0';
    strcat(head, ",");
    for (size_t i = 0; i < sizeof series_columns / sizeof series_columns[0]; i++) {
        char cell[40];
        snprintf(cell, sizeof cell, ",%s,", series_columns[i]);
        if (!strstr(head, cell)) {
            snprintf(err, errlen, "%s: no column %s in its header", path, series_columns[i]);
            return -1;
        }
    }
    return 0;
}

/* The line of DIR/gnuplot.log worth showing: gnuplot echoes the failing
 * command and a caret before its '"plots.gp" line N: message', after any
 * warnings in the same form. So the first such message that is not a
 * warning, else the first one, else the first non-blank line. */
static void log_line(const char *log, char *out, size_t outlen)
{
    out[0] = '\0';
    FILE *f = fopen(log, "r");
    if (!f)
        return;
    char line[512];
    int rank = 0; /* of what out holds: 1 any line, 2 a warning, 3 an error */
    while (rank < 3 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *s = line + strspn(line, " \t^");
        int r = !*s ? 0 : strncmp(s, "\"plots.gp\" line", 15) != 0 ? 1 : strstr(s, ": warning:") ? 2 : 3;
        if (r > rank) {
            snprintf(out, outlen, "%s", s);
            rank = r;
        }
    }
    fclose(f);
}

/* Run gnuplot plots.gp in dir, bounded. 0, 1 (no gnuplot on PATH), -1. */
static int run_gnuplot(const char *dir, char *err, size_t errlen)
{
    char log[1024];
    if (path_in(log, sizeof log, dir, "gnuplot.log", err, errlen))
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* The log is opened before the chdir, so a relative dir means the same
     * directory to both. */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    /* gnuplot gets default signals and none blocked, whatever the caller set. */
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = { "gnuplot", "plots.gp", NULL };
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc == ENOENT) {
        snprintf(err, errlen,
                 "gnuplot not found: make deps installs gnuplot-nox; the data is in %s (plots.gp renders it)", dir);
        return 1;
    }
    if (rc) {
        snprintf(err, errlen, "gnuplot: cannot run it in %s: %s", dir, strerror(rc));
        return -1;
    }
    /* Polled: one short-lived child, and no SIGCHLD handler to take from
     * the caller. 10 ms steps cost nothing next to gnuplot's own time. */
    struct timespec t0, now, step = { .tv_nsec = 10 * 1000 * 1000 };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status = 0;
    bool killed = false;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            snprintf(err, errlen, "gnuplot: waitpid: %s", strerror(errno));
            return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= CDNLOAD_PLOT_TIMEOUT_S) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            killed = true;
            break;
        }
        nanosleep(&step, NULL);
    }
    char first[300];
    log_line(log, first, sizeof first);
    if (killed) {
        snprintf(err, errlen, "gnuplot in %s ran %d s and was killed (%s: %s)", dir, CDNLOAD_PLOT_TIMEOUT_S, log,
                 first[0] ? first : "empty");
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "gnuplot in %s %s %d (%s: %s)", dir,
                 WIFEXITED(status) ? "exited with status" : "was killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), log, first[0] ? first : "empty");
        return -1;
    }
    return 0;
}

int cdnload_plot(const cdnload_run_t *run, const char *dir, char *err, size_t errlen)
{
    if (write_latency_csv(run, dir, err, errlen) || write_script(run, dir, err, errlen) ||
        check_series(dir, err, errlen))
        return -1;
    /* Old PNGs go first: one left from an earlier run must not pass for
     * this run's. */
    char path[1024];
    for (size_t i = 0; i < sizeof pngs / sizeof pngs[0]; i++) {
        if (path_in(path, sizeof path, dir, pngs[i], err, errlen))
            return -1;
        if (unlink(path) && errno != ENOENT) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
    }
    int rc = run_gnuplot(dir, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof pngs / sizeof pngs[0]; i++) {
        struct stat st;
        path_in(path, sizeof path, dir, pngs[i], err, errlen);
        if (stat(path, &st) || st.st_size == 0) {
            snprintf(err, errlen, "gnuplot exited 0 but wrote no %s (see %s/gnuplot.log)", path, dir);
            return -1;
        }
    }
    return 0;
}
