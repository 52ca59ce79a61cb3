/* cdnload: the load generator. Regions of clients, each talking only to
 * its region's edges (round-robin, keep-alive), ask for the scenario's
 * objects (Zipf popularity, deterministic sizes), check every body against
 * the origin's content, and report where each request was answered and
 * what share never reached the origin (by the origin's own count).
 *
 *   cdnload [-s SCENARIO] --origin HOST:PORT --region NAME=HOST:PORT[,HOST:PORT...] ...
 *           [--host NAME] [--out DIR] [--timeout DURATION] [--quiet]
 *           [--purge-token-file FILE] [--fault-cmd PROGRAM]
 *
 * One thread, one libuv loop: on a 2-core machine the nodes under test
 * need the other core. Exit status: 0, 1 when a body did not match the
 * origin's content (the run is void), 2 for a usage or set-up error. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdnload_load.h"
#include "cdnload_plot.h"
#include "config.h"

static double elapsed_s(const cdnload_load_t *ld)
{
    return (double)(cdnload_now_ms(ld) - ld->start_ms) / 1000;
}

/* ---- the fault: PROGRAM kill NODE, later PROGRAM start NODE ----------- */

static void fault_step(cdnload_load_t *ld);

static void on_fault_closed(uv_handle_t *h)
{
    cdnload_load_t *ld = h->data;
    ld->fault_step++; /* 1 -> 2 (to start), 3 -> 4 (done) */
}

static void on_fault_exit(uv_process_t *proc, int64_t status, int sig)
{
    cdnload_load_t *ld = proc->data;
    bool killing = ld->fault_step == 1;
    size_t n = strlen(ld->run.fault);
    if (status == 0 && sig == 0) {
        *(killing ? &ld->run.fault_kill_s : &ld->run.fault_start_s) = elapsed_s(ld);
        snprintf(ld->run.fault + n, sizeof ld->run.fault - n, "%s%s at %.1f s", killing ? "" : ", ",
                 killing ? "killed" : "started again (healthy)", elapsed_s(ld));
    } else {
        snprintf(ld->run.fault + n, sizeof ld->run.fault - n, "%s%s %s failed (exit %lld, signal %d)",
                 killing ? "" : ", ", ld->fault_cmd, killing ? "kill" : "start", (long long)status, sig);
    }
    uv_close((uv_handle_t *)proc, on_fault_closed);
}

static void fault_spawn(cdnload_load_t *ld, const char *verb)
{
    char *args[] = { (char *)ld->fault_cmd, (char *)verb, ld->sc.fault_node, NULL };
    uv_stdio_container_t io[3] = { { .flags = UV_IGNORE }, { .flags = UV_INHERIT_FD, .data.fd = 2 },
                                   { .flags = UV_INHERIT_FD, .data.fd = 2 } };
    uv_process_options_t o = { .exit_cb = on_fault_exit, .file = ld->fault_cmd, .args = args,
                               .stdio_count = 3, .stdio = io };
    ld->fault_proc.data = ld;
    if (ld->fault_step == 0)
        snprintf(ld->run.fault, sizeof ld->run.fault, "%s ", ld->sc.fault_node);
    ld->fault_step++; /* 0 -> 1 (killing), 2 -> 3 (starting) */
    int rc = uv_spawn(&ld->loop, &ld->fault_proc, &o);
    if (rc) {
        size_t n = strlen(ld->run.fault);
        snprintf(ld->run.fault + n, sizeof ld->run.fault - n, "%scannot run %s: %s", ld->fault_step == 1 ? "" : ", ",
                 ld->fault_cmd, uv_strerror(rc));
        uv_close((uv_handle_t *)&ld->fault_proc, on_fault_closed);
    }
}

/* Kill at fault_at, start at fault_restart, or at the end of the run if
 * that comes first: the CDN is never left short of a node. */
static void fault_step(cdnload_load_t *ld)
{
    if (!ld->sc.fault_node[0])
        return;
    uint64_t t = cdnload_now_ms(ld) - ld->start_ms;
    if (ld->fault_step == 0 && t >= ld->sc.fault_at_ms && !ld->draining)
        fault_spawn(ld, "kill");
    else if (ld->fault_step == 2 && (t >= ld->sc.fault_restart_ms || ld->draining))
        fault_spawn(ld, "start");
}

static bool fault_settled(const cdnload_load_t *ld)
{
    return !ld->sc.fault_node[0] || ld->fault_step == 0 || ld->fault_step == 4;
}

/* ---- the run's clock --------------------------------------------------- */

static void progress(cdnload_load_t *ld, unsigned sec)
{
    /* One line rewritten in place on a terminal; a line every 10 s in a log. */
    bool tty = ld->tty;
    if (ld->quiet || sec == 0 || sec > ld->run.nseconds || (!tty && sec % 10))
        return;
    const cdnload_second_t *s = &ld->run.series[sec - 1];
    double n = s->requests ? (double)s->requests : 1;
    fprintf(stderr, "%s%4us  %7llu req/s  edge %5.1f%%  shield %5.1f%%  origin %5.1f%%  errors %llu  5xx %llu  "
                    "429 %llu/%llu  purges %llu%s",
            tty ? "\r" : "", sec, (unsigned long long)s->requests, 100.0 * (double)s->at_edge / n,
            100.0 * (double)s->at_shield / n, 100.0 * (double)s->at_origin / n, (unsigned long long)s->errors,
            (unsigned long long)s->status_5xx, (unsigned long long)s->limited_polite,
            (unsigned long long)s->limited_abusive, (unsigned long long)ld->run.purges.sent, tty ? "  " : "\n");
}

static cdnload_origin_count_t before, last;
static unsigned last_sec;      /* the tick second of `last` */
static bool last_ok;

/* A second's poll: what the origin counted since the previous one goes to
 * the second that just ended, when the two polls were a second apart. */
static void on_second_polled(cdnload_load_t *ld, int rc, const cdnload_origin_count_t *c)
{
    unsigned sec = (unsigned)((cdnload_now_ms(ld) - ld->start_ms + 500) / 1000);
    if (rc == 0 && last_ok && sec == last_sec + 1 && sec >= 1 && sec - 1 < CDNLOAD_SERIES_MAX) {
        ld->run.series[sec - 1].origin_requests = c->requests - last.requests;
        ld->run.series[sec - 1].origin_known = true;
    }
    last_ok = rc == 0;
    if (rc == 0)
        last = *c, last_sec = sec;
}

static void close_all(cdnload_load_t *ld)
{
    uv_close((uv_handle_t *)&ld->tick, NULL);
    uv_close((uv_handle_t *)&ld->pace, NULL);
    cdnload_purger_close(ld->purger);
    cdnload_poller_close(ld->poller);
    ld->purger = NULL;
    ld->poller = NULL;
}

static void on_final(cdnload_load_t *ld, int rc, const cdnload_origin_count_t *c)
{
    ld->run.elapsed_s = elapsed_s(ld);
    if (rc == 0) {
        ld->run.origin_requests = c->requests - before.requests;
        ld->run.origin_bytes = c->bytes - before.bytes;
        ld->run.origin_cacheable = c->cacheable - before.cacheable;
        ld->run.origin_abusive = c->abusive - before.abusive;
        ld->finished = true;
    }
    close_all(ld);
}

static void on_tick(uv_timer_t *t)
{
    cdnload_load_t *ld = t->data;
    uint64_t now = cdnload_now_ms(ld);
    progress(ld, (unsigned)((now - ld->start_ms + 500) / 1000));
    if (!ld->draining && !cdnload_poller_busy(ld->poller))
        cdnload_poller_poll(ld->poller, on_second_polled);
    if (ld->purger)
        cdnload_purger_tick(ld->purger);
    fault_step(ld);
    if (now >= ld->end_ms && !ld->draining) {
        ld->draining = true;
        uv_timer_stop(&ld->pace);
        cdnload_clients_stop(ld, false);
        fault_step(ld);
    }
    /* A client stuck past the end is cut off by its request timeout. */
    if (now >= ld->end_ms + ld->timeout_ms + 1000 && !ld->stopping) {
        ld->stopping = true;
        cdnload_clients_stop(ld, true);
    }
    if (ld->draining && !ld->open && cdnload_purger_idle(ld->purger) && fault_settled(ld) &&
        !cdnload_poller_busy(ld->poller)) {
        uv_timer_stop(&ld->tick);
        cdnload_poller_poll(ld->poller, on_final);
    } else if (now >= ld->end_ms + 2 * ld->timeout_ms + 30000) {
        fprintf(stderr, "cdnload: the run did not wind down (purge round, fault or origin poll stuck): giving up\n");
        close_all(ld);
    }
}

static void on_pace(uv_timer_t *t)
{
    cdnload_clients_pace(t->data);
}

/* The origin's count before the run: then the clients start. */
static void on_before(cdnload_load_t *ld, int rc, const cdnload_origin_count_t *c)
{
    if (rc) {
        close_all(ld);
        return;
    }
    before = last = *c;
    last_ok = true;
    last_sec = 0;
    ld->start_ms = cdnload_now_ms(ld);
    ld->end_ms = ld->start_ms + ld->sc.warmup_ms + ld->sc.duration_ms;
    ld->purger = cdnload_purger_new(ld);
    uv_timer_start(&ld->tick, on_tick, 1000, 1000);
    if (ld->sc.rate > 0 || ld->sc.abusive_clients)
        uv_timer_start(&ld->pace, on_pace, 1, 1);
    cdnload_clients_start(ld);
}

/* ---- the command line -------------------------------------------------- */

static int parse_region(cdnload_load_t *ld, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    cdnload_run_t *run = &ld->run;
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof run->region[0] || run->nregions == CDNLOAD_REGIONS_MAX) {
        snprintf(err, errlen, "--region: expected NAME=HOST:PORT[,HOST:PORT...] (at most %d regions), got '%s'",
                 CDNLOAD_REGIONS_MAX, arg);
        return -1;
    }
    unsigned i = run->nregions;
    cdnload_region_t *r = &ld->regions[i];
    snprintf(run->region[i], sizeof run->region[i], "%.*s", (int)(eq - arg), arg);
    char list[1024];
    snprintf(list, sizeof list, "%s", eq + 1);
    for (char *save = NULL, *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char host[256];
        unsigned port;
        if (r->nedges == CDNLOAD_EDGES_MAX || config_parse_addr(item, host, sizeof host, &port) || port == 0 ||
            uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&r->edge[r->nedges])) {
            snprintf(err, errlen, "--region %s: expected IPv4 HOST:PORT edges (at most %d), got '%s'", run->region[i],
                     CDNLOAD_EDGES_MAX, item);
            return -1;
        }
        snprintf(r->edge_name[r->nedges], sizeof r->edge_name[0], "%.40s:%u", host, port);
        r->nedges++;
    }
    if (!r->nedges) {
        snprintf(err, errlen, "--region %s: no edge", run->region[i]);
        return -1;
    }
    run->nregions++;
    return 0;
}

/* The token's first line, as the nodes read it. */
static int read_token(cdnload_load_t *ld, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f || !fgets(ld->purge_token, sizeof ld->purge_token, f)) {
        snprintf(err, errlen, "--purge-token-file %s: %s", path, f ? "empty" : strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    ld->purge_token[strcspn(ld->purge_token, "\r\n")] = '\0';
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cdnload [-s SCENARIO] --origin HOST:PORT --region NAME=HOST:PORT[,HOST:PORT...] ...\n"
               "               [--host NAME] [--out DIR] [--timeout DURATION] [--quiet]\n"
               "               [--purge-token-file FILE] [--fault-cmd PROGRAM]\n"
               "Sends the scenario's requests to each region's edges, checks every body against the\n"
               "demo origin's content and reports offload (by the origin's count), tiers and latency.\n"
               "The report goes to DIR/report.json, series.csv, latency.csv and PNG plots (default\n"
               "var/loadtest). A scenario with purge_every needs --purge-token-file; one with a fault\n"
               "needs --fault-cmd (run as PROGRAM kill NODE, then PROGRAM start NODE: deploy/cdn).\n");
}

int main(int argc, char **argv)
{
    static cdnload_load_t ld;
    char err[1024];
    const char *scenario = NULL, *out = "var/loadtest", *token = NULL;
    ld.host = "cdn.test";
    ld.timeout_ms = 10000;
    ld.run.fault_kill_s = ld.run.fault_start_s = -1;
    cdnload_scenario_defaults(&ld.sc);
    static const struct option opts[] = {
        { "scenario", required_argument, 0, 's' },         { "origin", required_argument, 0, 'o' },
        { "region", required_argument, 0, 'r' },           { "host", required_argument, 0, 'H' },
        { "out", required_argument, 0, 'd' },              { "timeout", required_argument, 0, 't' },
        { "quiet", no_argument, 0, 'q' },                  { "help", no_argument, 0, 'h' },
        { "purge-token-file", required_argument, 0, 'P' }, { "fault-cmd", required_argument, 0, 'F' },
        { 0, 0, 0, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
        switch (o) {
        case 's': scenario = optarg; break;
        case 'o': ld.origin = optarg; break;
        case 'H': ld.host = optarg; break;
        case 'd': out = optarg; break;
        case 'q': ld.quiet = true; break;
        case 'P': token = optarg; break;
        case 'F': ld.fault_cmd = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'r':
            if (parse_region(&ld, optarg, err, sizeof err)) {
                fprintf(stderr, "cdnload: %s\n", err);
                return 2;
            }
            break;
        case 't':
            if (config_parse_duration(optarg, &ld.timeout_ms) || ld.timeout_ms == 0) {
                fprintf(stderr, "cdnload: --timeout: expected a duration (10s), got '%s'\n", optarg);
                return 2;
            }
            break;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !ld.origin || !ld.run.nregions) {
        usage(stderr);
        return 2;
    }
    if ((scenario && cdnload_scenario_load(&ld.sc, scenario, err, sizeof err)) ||
        cdnload_scenario_check(&ld.sc, err, sizeof err)) {
        fprintf(stderr, "cdnload: %s\n", err);
        return 2;
    }
    if (ld.sc.purge_every_ms && !token) {
        fprintf(stderr, "cdnload: the scenario purges (purge_every): give --purge-token-file\n");
        return 2;
    }
    if (ld.sc.fault_node[0] && !ld.fault_cmd) {
        fprintf(stderr, "cdnload: the scenario has a fault: give --fault-cmd (deploy/cdn)\n");
        return 2;
    }
    if (token && read_token(&ld, token, err, sizeof err)) {
        fprintf(stderr, "cdnload: %s\n", err);
        return 2;
    }
    char ohost[256];
    unsigned oport;
    struct sockaddr_in oaddr;
    if (config_parse_addr(ld.origin, ohost, sizeof ohost, &oport) || oport == 0 ||
        uv_ip4_addr(ohost, (int)oport, &oaddr)) {
        fprintf(stderr, "cdnload: --origin: expected an IPv4 HOST:PORT, got '%s'\n", ld.origin);
        return 2;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "cdnload: --out %s: %s\n", out, strerror(errno));
        return 2;
    }
    uv_loop_init(&ld.loop);
    if (cdnload_zipf_init(&ld.zipf, ld.sc.objects, ld.sc.zipf) || cdnload_clients_init(&ld) ||
        !(ld.poller = cdnload_poller_new(&ld, (struct sockaddr *)&oaddr))) {
        fprintf(stderr, "cdnload: out of memory\n");
        return 2;
    }
    ld.tty = isatty(2);
    uv_timer_init(&ld.loop, &ld.tick);
    uv_timer_init(&ld.loop, &ld.pace);
    ld.tick.data = ld.pace.data = &ld;
    cdnload_poller_poll(ld.poller, on_before);
    uv_run(&ld.loop, UV_RUN_DEFAULT);
    if (!ld.quiet && ld.tty)
        fputc('\n', stderr);
    if (!ld.finished) {
        fprintf(stderr, "cdnload: no count from the origin %s: no report\n", ld.origin);
        return 2;
    }
    cdnload_report_print(&ld.run);
    if (cdnload_report_write(&ld.run, out, err, sizeof err)) {
        fprintf(stderr, "cdnload: %s\n", err);
        return 2;
    }
    int plot = cdnload_plot(&ld.run, out, err, sizeof err);
    if (plot)
        fprintf(stderr, "cdnload: no plots: %s\n", err);
    printf("report: %s/report.json, series.csv, latency.csv%s\n", out,
           plot ? "" : ", offload.png, latency.png, rps.png");
    uv_loop_close(&ld.loop);
    cdnload_zipf_free(&ld.zipf);
    /* A mismatch voids the run; so does a purge that did not take everywhere. */
    return ld.run.first_mismatch[0] || ld.run.purges.first_failure[0] ? 1 : 0;
}
