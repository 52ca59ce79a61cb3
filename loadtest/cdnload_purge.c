/* cdnload_purge: the purge schedule, checked (see cdnload_load.h).
 *
 * A round: (1) warm the round's probe object on every edge of every
 * region, asking each edge until it answers from its own cache; (2) send
 * the purge (the probe and the round's share of the catalogue) to one
 * edge, rotating, which passes it to its shields and its peers; (3) the
 * moment the answer is in, ask every edge for the probe once: each must
 * miss. No client asks for probes, so a hit can only be a purge that did
 * not reach that edge (or reached it after its answer). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdnload_load.h"

#define PROBES_MAX (CDNLOAD_REGIONS_MAX * CDNLOAD_EDGES_MAX)
#define WARM_TRIES 40          /* 40 x 25 ms: an edge stores a fill well within a second */
#define WARM_GAP_MS 25

typedef struct probe {
    cdnload_purger_t *p;
    cdnload_conn_t *conn;
    const char *name;          /* the edge's HOST:PORT */
    bool warm, busy;
} probe_t;

struct cdnload_purger {
    cdnload_load_t *ld;
    probe_t probe[PROBES_MAX];
    unsigned nprobes, busy;    /* busy: probes waiting for an answer */
    cdnload_conn_t *call;
    uv_timer_t retry;
    enum { IDLE, WARMING, CALLING, CHECKING } state;
    uint64_t round, next_ms;
    unsigned tries;
    bool round_ok;             /* the purge call succeeded */
    char target[256];
};

static void fail(cdnload_purger_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(cdnload_purger_t *p, const char *fmt, ...)
{
    char *f = p->ld->run.purges.first_failure;
    if (f[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f, sizeof p->ld->run.purges.first_failure, fmt, ap);
    va_end(ap);
}

static void probe_send(probe_t *pr)
{
    pr->busy = true;
    pr->p->busy++;
    cdnload_conn_send(pr->conn, "GET", pr->p->target, pr->p->ld->host, NULL, NULL, 0, 512);
}

static void send_purge(cdnload_purger_t *p)
{
    cdnload_load_t *ld = p->ld;
    char body[1024], auth[600];
    int n = cdnload_purge_body(&ld->sc, p->round, ld->host, body, sizeof body);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\nContent-Type: application/json\r\n", ld->purge_token);
    p->state = CALLING;
    ld->run.purges.sent++;
    cdnload_conn_send(p->call, "POST", "/.cdn/purge", ld->host, auth, body, (size_t)n, CDNLOAD_NO_CHECK);
}

static void warm_more(cdnload_purger_t *p)
{
    for (unsigned i = 0; i < p->nprobes; i++)
        if (!p->probe[i].warm)
            probe_send(&p->probe[i]);
}

static void on_retry(uv_timer_t *t)
{
    warm_more(t->data);
}

/* Every probe answered: the next step of the round. */
static void probes_answered(cdnload_purger_t *p)
{
    if (p->state == CHECKING) {
        cdnload_purges_t *pu = &p->ld->run.purges;
        pu->checked++;
        pu->effective += p->round_ok; /* round_ok now also means no edge hit */
        p->state = IDLE;
        return;
    }
    unsigned cold = 0;
    for (unsigned i = 0; i < p->nprobes; i++)
        cold += !p->probe[i].warm;
    if (!cold) {
        send_purge(p);
    } else if (++p->tries < WARM_TRIES) {
        uv_timer_start(&p->retry, on_retry, WARM_GAP_MS, 0);
    } else {
        for (unsigned i = 0; i < p->nprobes; i++)
            if (!p->probe[i].warm)
                fail(p, "round %llu: %s never answered %s from its cache (cannot check the purge there)",
                     (unsigned long long)p->round, p->probe[i].name, p->target);
        send_purge(p); /* the catalogue's share is purged all the same; the round is not checked */
    }
}

static void on_probe(void *ud, cdnload_conn_t *c, const cdnload_result_t *r)
{
    probe_t *pr = ud;
    cdnload_purger_t *p = pr->p;
    pr->busy = false;
    p->busy--;
    bool hit = r->err == CDNLOAD_OK && r->status == 200 && r->at == CDNLOAD_AT_EDGE;
    if (r->mismatch)
        fail(p, "round %llu: %s answered %s with a body that differs from the origin's", (unsigned long long)p->round,
             pr->name, p->target);
    if (p->state == WARMING) {
        pr->warm = hit;
    } else if (hit || r->err != CDNLOAD_OK || r->status != 200) {
        p->round_ok = false;
        if (hit)
            fail(p, "round %llu: %s answered %s from its cache right after the purge (Cache-Status: %s)",
                 (unsigned long long)p->round, pr->name, p->target, cdnload_conn_cache_status(c));
        else
            fail(p, "round %llu: %s answered %s after the purge with %s %d", (unsigned long long)p->round, pr->name,
                 p->target, r->err ? "error" : "status", r->err ? (int)r->err : r->status);
    }
    if (!p->busy)
        probes_answered(p);
}

/* Every peer of the answer says "confirmed". */
static bool all_confirmed(const char *body, size_t len, char *why, size_t cap)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je), *peers = json_object_get(j, "peers"), *v;
    bool ok = json_is_array(peers);
    size_t i;
    json_array_foreach(peers, i, v) {
        const char *st = json_string_value(json_object_get(v, "status"));
        const char *peer = json_string_value(json_object_get(v, "peer"));
        if (!st || strcmp(st, "confirmed") != 0) {
            snprintf(why, cap, "peer %s: %s", peer ? peer : "?", st ? st : "?");
            ok = false;
            break;
        }
    }
    if (!json_is_array(peers))
        snprintf(why, cap, "no peers list in the answer");
    json_decref(j);
    return ok;
}

static void on_purged(void *ud, cdnload_conn_t *c, const cdnload_result_t *r)
{
    cdnload_purger_t *p = ud;
    cdnload_load_t *ld = p->ld;
    cdnload_purges_t *pu = &ld->run.purges;
    cdnload_hist_add(&pu->latency, r->latency_us);
    cdnload_second_t *s = cdnload_second(ld);
    if (s)
        s->purges++;
    size_t len;
    const char *body = cdnload_conn_body(c, &len);
    char why[300] = "";
    p->round_ok = r->err == CDNLOAD_OK && r->status == 200;
    cdnload_clients_forget(ld, p->round);
    if (!p->round_ok) {
        fail(p, "round %llu: the purge call answered %s %d: %.200s", (unsigned long long)p->round,
             r->err ? "error" : "status", r->err ? (int)r->err : r->status, body);
        p->state = IDLE;
        return;
    }
    pu->ok++;
    /* A peer that is down (the fault) gets the purge later, by the node's
     * retries: noted, not a failure; what counts is every edge's answer. */
    if (all_confirmed(body, len, why, sizeof why))
        pu->confirmed++;
    else if (!pu->first_unconfirmed[0])
        snprintf(pu->first_unconfirmed, sizeof pu->first_unconfirmed, "round %llu: %.400s",
                 (unsigned long long)p->round, why);
    bool all_warm = true;
    for (unsigned i = 0; i < p->nprobes; i++)
        all_warm &= p->probe[i].warm;
    if (!all_warm) {
        p->state = IDLE;
        return;
    }
    p->state = CHECKING;
    for (unsigned i = 0; i < p->nprobes; i++)
        probe_send(&p->probe[i]);
}

cdnload_purger_t *cdnload_purger_new(cdnload_load_t *ld)
{
    if (!ld->sc.purge_every_ms)
        return NULL;
    cdnload_purger_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->ld = ld;
    for (unsigned r = 0; r < ld->run.nregions; r++) {
        cdnload_region_t *rg = &ld->regions[r];
        for (unsigned e = 0; e < rg->nedges && p->nprobes < PROBES_MAX; e++) {
            probe_t *pr = &p->probe[p->nprobes++];
            pr->p = p;
            pr->name = rg->edge_name[e];
            pr->conn = cdnload_conn_new(&ld->loop, (struct sockaddr *)&rg->edge[e], NULL, ld->timeout_ms, on_probe, pr);
        }
    }
    const cdnload_region_t *first = &ld->regions[0];
    p->call = cdnload_conn_new(&ld->loop, (const struct sockaddr *)&first->edge[0], NULL, ld->timeout_ms, on_purged, p);
    cdnload_conn_keep_bodies(p->call);
    uv_timer_init(&ld->loop, &p->retry);
    p->retry.data = p;
    p->next_ms = ld->start_ms + ld->sc.purge_every_ms;
    return p;
}

void cdnload_purger_tick(cdnload_purger_t *p)
{
    cdnload_load_t *ld = p->ld;
    uint64_t now = cdnload_now_ms(ld);
    if (p->state != IDLE || now < p->next_ms || now >= ld->end_ms)
        return;
    p->round = ld->run.purges.sent;
    p->next_ms += ld->sc.purge_every_ms;
    if (p->next_ms <= now)
        p->next_ms = now + ld->sc.purge_every_ms; /* a round ran long: the schedule slips, rounds never pile up */
    cdnload_probe_target(&ld->sc, p->round, p->target, sizeof p->target);
    /* The purge goes to a different edge each round (and so, through its
     * peers, reaches the others): every edge's fan-out is exercised. */
    unsigned k = (unsigned)(p->round % p->nprobes), i = 0;
    for (unsigned r = 0; r < ld->run.nregions; r++)
        for (unsigned e = 0; e < ld->regions[r].nedges; e++, i++)
            if (i == k)
                cdnload_conn_retarget(p->call, (struct sockaddr *)&ld->regions[r].edge[e]);
    for (unsigned j = 0; j < p->nprobes; j++)
        p->probe[j].warm = false;
    p->tries = 0;
    p->state = WARMING;
    warm_more(p);
}

bool cdnload_purger_idle(const cdnload_purger_t *p)
{
    return !p || p->state == IDLE;
}

static void on_retry_closed(uv_handle_t *h)
{
    free(h->data);
}

void cdnload_purger_close(cdnload_purger_t *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->nprobes; i++)
        cdnload_conn_close(p->probe[i].conn);
    cdnload_conn_close(p->call);
    uv_close((uv_handle_t *)&p->retry, on_retry_closed);
}
