/* cdnload: the load generator. Regions of clients, each talking only to
 * its region's edges (round-robin, keep-alive), ask for the scenario's
 * objects (Zipf popularity, deterministic sizes), check every body against
 * the origin's content, and report where each request was answered and
 * what share never reached the origin (by the origin's own count).
 *
 *   cdnload [-s SCENARIO] --origin HOST:PORT --region NAME=HOST:PORT[,HOST:PORT...] ...
 *           [--host NAME] [--out DIR] [--timeout DURATION] [--quiet]
 *
 * One thread, one libuv loop: on a 2-core machine the nodes under test
 * need the other core. Exit status: 0, 1 when a body did not match the
 * origin's content (the run is void), 2 for a usage or set-up error. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cdnload_conn.h"
#include "cdnload_report.h"
#include "cdnload_scenario.h"
#include "cdnload_zipf.h"
#include "rng.h"
#include "config.h"

#define EDGES_MAX 16

typedef struct region {
    struct sockaddr_storage edge[EDGES_MAX];
    unsigned nedges, next;     /* round-robin over the edges, per connection */
} region_t;

typedef struct client {
    struct load *ld;
    unsigned region;
    cdnload_conn_t *conn;
    rng_t rng;
    bool cacheable;
    uint32_t obj;
} client_t;

typedef struct load {
    uv_loop_t loop;
    uv_timer_t tick;
    cdnload_scenario_t sc;
    cdnload_zipf_t zipf;
    cdnload_run_t run;
    region_t regions[CDNLOAD_REGIONS_MAX];
    client_t *clients;
    size_t nclients, open;     /* open: clients still running */
    uint8_t *asked;            /* bitmap: cacheable objects asked for */
    const char *host;
    uint64_t start_ms, end_ms, timeout_ms;
    bool quiet, stopping, tty;
} load_t;

static uint64_t now_ms(const load_t *ld)
{
    return uv_now((uv_loop_t *)&ld->loop);
}

static void send_next(client_t *cl)
{
    load_t *ld = cl->ld;
    cl->cacheable = rng_unit(&cl->rng) >= ld->sc.uncacheable;
    cl->obj = (uint32_t)cdnload_zipf_rank(&ld->zipf, rng_unit(&cl->rng));
    char target[256];
    cdnload_object_target(&ld->sc, cl->obj, cl->cacheable, target, sizeof target);
    cdnload_conn_send(cl->conn, "GET", target, ld->host, NULL, NULL, 0,
                      (int64_t)cdnload_object_size(&ld->sc, cl->obj));
}

static void client_end(client_t *cl)
{
    cdnload_conn_close(cl->conn);
    cl->conn = NULL;
    if (--cl->ld->open == 0)
        uv_timer_stop(&cl->ld->tick), uv_close((uv_handle_t *)&cl->ld->tick, NULL);
}

static void count(load_t *ld, client_t *cl, const cdnload_result_t *r)
{
    cdnload_counts_t *c = &ld->run.counts[cl->region];
    uint64_t t = now_ms(ld) - ld->start_ms;
    unsigned sec = (unsigned)(t / 1000);
    cdnload_second_t *s = sec < CDNLOAD_SERIES_MAX ? &ld->run.series[sec] : NULL;
    if (s && sec + 1 > ld->run.nseconds)
        ld->run.nseconds = sec + 1;
    if (r->err != CDNLOAD_OK) {
        uint64_t *e[] = { NULL, &c->errors_connect, &c->errors_reset, &c->errors_timeout, &c->errors_parse };
        (*e[r->err])++;
        if (s)
            s->errors++;
        return;
    }
    c->requests++;
    c->bytes += r->bytes;
    c->status[r->status >= 100 && r->status < 600 ? r->status / 100 : 0]++;
    c->limited += r->status == 429;
    c->at[r->at]++;
    if (cl->cacheable) {
        c->cacheable++;
        uint8_t bit = (uint8_t)(1u << (cl->obj & 7));
        if (!(ld->asked[cl->obj >> 3] & bit)) {
            ld->asked[cl->obj >> 3] |= bit;
            ld->run.distinct_cacheable++;
        }
    }
    if (t >= ld->sc.warmup_ms)
        cdnload_hist_add(&c->latency, r->latency_us);
    if (s) {
        s->requests++;
        s->bytes += r->bytes;
        s->at_edge += r->at == CDNLOAD_AT_EDGE;
        s->at_shield += r->at == CDNLOAD_AT_SHIELD;
        s->at_origin += r->at == CDNLOAD_AT_ORIGIN;
    }
    if (r->mismatch) {
        c->mismatches++;
        if (!ld->run.first_mismatch[0])
            snprintf(ld->run.first_mismatch, sizeof ld->run.first_mismatch, "%s (status %d) differs at byte %llu",
                     cdnload_conn_target(cl->conn), r->status, (unsigned long long)r->mismatch_at);
    }
}

static void on_done(void *ud, cdnload_conn_t *conn, const cdnload_result_t *r)
{
    client_t *cl = ud;
    load_t *ld = cl->ld;
    (void)conn;
    count(ld, cl, r);
    if (ld->stopping || now_ms(ld) >= ld->end_ms)
        client_end(cl);
    else
        send_next(cl);
}

static void on_tick(uv_timer_t *t)
{
    load_t *ld = t->data;
    uint64_t now = now_ms(ld);
    unsigned sec = (unsigned)((now - ld->start_ms) / 1000);
    /* One line rewritten in place on a terminal; a line every 10 s in a log. */
    bool tty = ld->tty;
    if (!ld->quiet && sec > 0 && sec <= ld->run.nseconds && (tty || sec % 10 == 0)) {
        const cdnload_second_t *s = &ld->run.series[sec - 1];
        fprintf(stderr, "%s%4us  %7llu req/s  edge %5.1f%%  shield %5.1f%%  origin %5.1f%%  errors %llu   %s",
                tty ? "\r" : "", sec,
                (unsigned long long)s->requests, s->requests ? 100.0 * (double)s->at_edge / (double)s->requests : 0,
                s->requests ? 100.0 * (double)s->at_shield / (double)s->requests : 0,
                s->requests ? 100.0 * (double)s->at_origin / (double)s->requests : 0, (unsigned long long)s->errors,
                tty ? "" : "\n");
    }
    /* A client stuck past the end is cut off by its request timeout. */
    if (now >= ld->end_ms + ld->timeout_ms + 1000 && !ld->stopping) {
        ld->stopping = true;
        for (size_t i = 0; i < ld->nclients; i++)
            if (ld->clients[i].conn)
                client_end(&ld->clients[i]);
    }
}

static int parse_region(load_t *ld, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    cdnload_run_t *run = &ld->run;
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof run->region[0] || run->nregions == CDNLOAD_REGIONS_MAX) {
        snprintf(err, errlen, "--region: expected NAME=HOST:PORT[,HOST:PORT...] (at most %d regions), got '%s'",
                 CDNLOAD_REGIONS_MAX, arg);
        return -1;
    }
    unsigned i = run->nregions;
    region_t *r = &ld->regions[i];
    snprintf(run->region[i], sizeof run->region[i], "%.*s", (int)(eq - arg), arg);
    char list[1024];
    snprintf(list, sizeof list, "%s", eq + 1);
    for (char *save = NULL, *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char host[256];
        unsigned port;
        if (r->nedges == EDGES_MAX || config_parse_addr(item, host, sizeof host, &port) || port == 0 ||
            uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&r->edge[r->nedges])) {
            snprintf(err, errlen, "--region %s: expected IPv4 HOST:PORT edges (at most %d), got '%s'", run->region[i],
                     EDGES_MAX, item);
            return -1;
        }
        r->nedges++;
    }
    if (!r->nedges) {
        snprintf(err, errlen, "--region %s: no edge", run->region[i]);
        return -1;
    }
    run->nregions++;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cdnload [-s SCENARIO] --origin HOST:PORT --region NAME=HOST:PORT[,HOST:PORT...] ...\n"
               "               [--host NAME] [--out DIR] [--timeout DURATION] [--quiet]\n"
               "Sends the scenario's requests to each region's edges, checks every body against the\n"
               "demo origin's content and reports offload (by the origin's count), tiers and latency.\n"
               "The report goes to DIR/report.json and DIR/series.csv (default var/loadtest).\n");
}

int main(int argc, char **argv)
{
    static load_t ld;
    char err[1024];
    const char *scenario = NULL, *origin = NULL, *out = "var/loadtest";
    ld.host = "cdn.test";
    ld.timeout_ms = 10000;
    cdnload_scenario_defaults(&ld.sc);
    static const struct option opts[] = {
        { "scenario", required_argument, 0, 's' }, { "origin", required_argument, 0, 'o' },
        { "region", required_argument, 0, 'r' },   { "host", required_argument, 0, 'H' },
        { "out", required_argument, 0, 'd' },      { "timeout", required_argument, 0, 't' },
        { "quiet", no_argument, 0, 'q' },          { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "s:", opts, NULL)) != -1) {
        switch (o) {
        case 's': scenario = optarg; break;
        case 'o': origin = optarg; break;
        case 'H': ld.host = optarg; break;
        case 'd': out = optarg; break;
        case 'q': ld.quiet = true; break;
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
    if (optind != argc || !origin || !ld.run.nregions) {
        usage(stderr);
        return 2;
    }
    if ((scenario && cdnload_scenario_load(&ld.sc, scenario, err, sizeof err)) ||
        cdnload_scenario_check(&ld.sc, err, sizeof err)) {
        fprintf(stderr, "cdnload: %s\n", err);
        return 2;
    }
    if (ld.sc.rate > 0 || ld.sc.images > 0 || ld.sc.abusive_clients || ld.sc.purge_every_ms || ld.sc.fault_node[0]) {
        fprintf(stderr, "cdnload: %s: rate, images, abusive_clients, purge_every and fault are read but not sent "
                        "yet by this build: remove them from the scenario\n",
                scenario ? scenario : "defaults");
        return 2;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "cdnload: --out %s: %s\n", out, strerror(errno));
        return 2;
    }
    cdnload_origin_count_t before, after;
    if (cdnload_origin_totals(origin, &before, err, sizeof err)) {
        fprintf(stderr, "cdnload: %s\n", err);
        return 2;
    }
    if (cdnload_zipf_init(&ld.zipf, ld.sc.objects, ld.sc.zipf) ||
        !(ld.asked = calloc((ld.sc.objects + 7) / 8, 1)) ||
        !(ld.clients = calloc((size_t)ld.run.nregions * ld.sc.concurrency, sizeof *ld.clients))) {
        fprintf(stderr, "cdnload: out of memory\n");
        return 2;
    }
    ld.tty = isatty(2);
    uv_loop_init(&ld.loop);
    ld.start_ms = now_ms(&ld);
    ld.end_ms = ld.start_ms + ld.sc.warmup_ms + ld.sc.duration_ms;
    for (unsigned r = 0; r < ld.run.nregions; r++) {
        region_t *rg = &ld.regions[r];
        for (unsigned k = 0; k < ld.sc.concurrency; k++) {
            client_t *cl = &ld.clients[ld.nclients++];
            cl->ld = &ld;
            cl->region = r;
            rng_seed(&cl->rng, ld.sc.seed * 1000003u + r * 10007u + k);
            const struct sockaddr *edge = (const struct sockaddr *)&rg->edge[rg->next++ % rg->nedges];
            cl->conn = cdnload_conn_new(&ld.loop, edge, NULL, ld.timeout_ms, on_done, cl);
            if (!cl->conn) {
                fprintf(stderr, "cdnload: out of memory\n");
                return 2;
            }
            ld.open++;
        }
    }
    uv_timer_init(&ld.loop, &ld.tick);
    ld.tick.data = &ld;
    uv_timer_start(&ld.tick, on_tick, 1000, 1000);
    for (size_t i = 0; i < ld.nclients; i++)
        send_next(&ld.clients[i]);
    uv_run(&ld.loop, UV_RUN_DEFAULT);
    ld.run.elapsed_s = (double)(now_ms(&ld) - ld.start_ms) / 1000;
    if (!ld.quiet && ld.tty)
        fputc('\n', stderr);
    if (cdnload_origin_totals(origin, &after, err, sizeof err)) {
        fprintf(stderr, "cdnload: after the run: %s\n", err);
        return 2;
    }
    ld.run.origin_requests = after.requests - before.requests;
    ld.run.origin_bytes = after.bytes - before.bytes;
    ld.run.origin_cacheable = after.cacheable - before.cacheable;
    cdnload_report_print(&ld.run);
    if (cdnload_report_write(&ld.run, out, err, sizeof err)) {
        fprintf(stderr, "cdnload: %s\n", err);
        return 2;
    }
    printf("report: %s/report.json, %s/series.csv\n", out, out);
    uv_loop_close(&ld.loop);
    cdnload_zipf_free(&ld.zipf);
    free(ld.asked);
    free(ld.clients);
    return ld.run.first_mismatch[0] ? 1 : 0; /* set by the first mismatch */
}
