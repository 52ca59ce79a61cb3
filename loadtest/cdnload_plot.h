/* cdnload_plot: the run as pictures. Next to the report (report.json,
 * series.csv) it writes latency.csv (each region's latency percentiles)
 * and plots.gp (a gnuplot script that reads both CSVs), then runs gnuplot
 * to render offload.png, latency.png and rps.png. The script stands on its
 * own, so `cd DIR && gnuplot plots.gp` renders the same plots later. */
#ifndef CDN_CDNLOAD_PLOT_H
#define CDN_CDNLOAD_PLOT_H

#include <stddef.h>

#include "cdnload_report.h"

/* How long gnuplot may run before it is killed (seconds). */
#define CDNLOAD_PLOT_TIMEOUT_S 60

/* Write DIR/latency.csv and DIR/plots.gp and run gnuplot in DIR (its
 * stderr to DIR/gnuplot.log). DIR/series.csv must already be there
 * (cdnload_report_write). Returns 0 when the three PNGs exist; 1 when
 * gnuplot is not on PATH (the CSVs and the script are written); -1
 * otherwise. err says why whenever the result is not 0. */
int cdnload_plot(const cdnload_run_t *run, const char *dir, char *err, size_t errlen);

#endif
