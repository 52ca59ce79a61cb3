/* cdnload_load: the load generator's state, shared by its parts:
 * cdnload.c (the command line, the run's clock and its end, the fault),
 * cdnload_client.c (the clients, their pacing and what they count),
 * cdnload_purge.c (the purge schedule and its checks) and
 * cdnload_origin.c (the origin's own count). One thread, one libuv loop:
 * nothing here is locked. */
#ifndef CDN_CDNLOAD_LOAD_H
#define CDN_CDNLOAD_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "cdnload_conn.h"
#include "cdnload_report.h"
#include "cdnload_scenario.h"
#include "cdnload_zipf.h"
#include "rng.h"

#define CDNLOAD_EDGES_MAX 16
/* Open loop: arrivals that found every connection busy wait here, with
 * their scheduled time (latency counts from it, not from the send). */
#define CDNLOAD_BACKLOG_MAX 65536
/* An abusive client opens this many connections from its one address,
 * so that its rate, not round trips, bounds what it sends. */
#define CDNLOAD_ABUSIVE_CONNS 8

typedef struct cdnload_region {
    struct sockaddr_storage edge[CDNLOAD_EDGES_MAX];
    char edge_name[CDNLOAD_EDGES_MAX][48]; /* "HOST:PORT" */
    unsigned nedges, next;     /* round-robin over the edges, per connection */
    uint64_t issued;           /* open loop: arrivals so far */
    uint32_t *idle;            /* open loop: idle polite clients, a ring of indices: first idle, first
                                * used, so that arrivals spread over the clients (their addresses) */
    size_t idle_head, nidle;
    uint64_t *backlog;         /* open loop: scheduled times (ms) waiting for a connection, a ring */
    size_t bl_head, bl_len;
} cdnload_region_t;

typedef enum { CDNLOAD_REQ_OBJECT, CDNLOAD_REQ_UNCACHEABLE, CDNLOAD_REQ_IMAGE, CDNLOAD_REQ_ABUSIVE } cdnload_req_t;

typedef struct cdnload_client {
    struct cdnload_load *ld;
    unsigned region;
    bool abusive;              /* asks cache-busting URLs at abusive_rate */
    bool busy;
    cdnload_conn_t *conn;
    rng_t rng;
    cdnload_req_t what;        /* the request running */
    uint32_t obj;              /* its object i, or image source k */
    unsigned variant;          /* its image variant */
    uint64_t sent, late_ms;    /* requests sent; open loop: how long the arrival waited for this connection */
    uint32_t index;
} cdnload_client_t;

typedef struct cdnload_purger cdnload_purger_t;
typedef struct cdnload_poller cdnload_poller_t;

typedef struct cdnload_load {
    uv_loop_t loop;
    uv_timer_t tick;           /* once a second: progress, origin poll, purges, fault, the end */
    uv_timer_t pace;           /* every millisecond: open-loop arrivals and abusive clients */
    cdnload_scenario_t sc;
    cdnload_zipf_t zipf;
    cdnload_run_t run;
    cdnload_region_t regions[CDNLOAD_REGIONS_MAX];
    cdnload_client_t *clients; /* the polite ones first */
    size_t nclients, npolite, open; /* open: clients still running */
    uint8_t *asked;            /* bitmap: cacheable objects asked for since their last purge */
    uint8_t *asked_img;        /* the same for image sources */
    uint64_t *variant_hash;    /* the first body hash of each image variant (0: not seen) */
    const char *host, *origin, *fault_cmd;
    char purge_token[512];
    uint64_t start_ms, end_ms, timeout_ms;
    bool quiet, tty, stopping, draining, finished;
    cdnload_purger_t *purger;
    cdnload_poller_t *poller;
    uv_process_t fault_proc;
    int fault_step;            /* 0: to kill, 1: killing, 2: to start, 3: starting, 4: done */
} cdnload_load_t;

static inline uint64_t cdnload_now_ms(const cdnload_load_t *ld)
{
    return uv_now((uv_loop_t *)&ld->loop);
}

/* The second of the run for now (the series' index), or NULL past the
 * series' end. */
cdnload_second_t *cdnload_second(cdnload_load_t *ld);

/* cdnload_client.c. Make the clients (polite: concurrency per region, each
 * from its own 127.16+R.x.y address; abusive: abusive_clients per region
 * from 127.48+R.x.y). Returns 0 or -ENOMEM. */
int cdnload_clients_init(cdnload_load_t *ld);
/* Start sending: closed-loop clients at once, the rest as paced. */
void cdnload_clients_start(cdnload_load_t *ld);
/* The pace timer's work (open-loop arrivals, abusive clients). */
void cdnload_clients_pace(cdnload_load_t *ld);
/* Past the end: close idle clients; busy ones close as they finish (or
 * at once when force). */
void cdnload_clients_stop(cdnload_load_t *ld, bool force);
/* A purge took these catalogue objects: their next request is a fresh
 * fetch, as far as the best possible offload is concerned. */
void cdnload_clients_forget(cdnload_load_t *ld, uint64_t round);

/* cdnload_purge.c. NULL (nothing to do) when the scenario has no purges. */
cdnload_purger_t *cdnload_purger_new(cdnload_load_t *ld);
/* Start a purge round when one is due and none runs. */
void cdnload_purger_tick(cdnload_purger_t *p);
/* No round runs (the run may end). */
bool cdnload_purger_idle(const cdnload_purger_t *p);
void cdnload_purger_close(cdnload_purger_t *p);

/* cdnload_origin.c: the origin's count of the load's objects, by the
 * prefixes /o/ and /img/ (cacheable), /u/ (no-store) and /a/ (abusive),
 * from GET /.origin/stats?prefix=P. */
typedef struct cdnload_origin_count {
    uint64_t requests, bytes;  /* /o/, /img/ and /u/ */
    uint64_t cacheable;        /* /o/ and /img/ */
    uint64_t abusive;          /* /a/ */
} cdnload_origin_count_t;
typedef void (*cdnload_poll_fn)(cdnload_load_t *ld, int rc, const cdnload_origin_count_t *c);
cdnload_poller_t *cdnload_poller_new(cdnload_load_t *ld, const struct sockaddr *origin);
/* Ask the origin; done is called once with rc 0 and the count, or -1
 * (reported on stderr). Returns -EBUSY while a poll runs. */
int cdnload_poller_poll(cdnload_poller_t *p, cdnload_poll_fn done);
bool cdnload_poller_busy(const cdnload_poller_t *p);
void cdnload_poller_close(cdnload_poller_t *p);

#endif
