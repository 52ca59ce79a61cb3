/* cdnload_client: the load's clients (see cdnload_load.h).
 *
 * Polite clients ask for the scenario's objects: closed loop (each sends
 * its next request when the answer is in) or, with a rate, open loop
 * (arrivals on a schedule, taken by an idle connection or queued; latency
 * counts from the schedule, so a slow node cannot hide its queue by
 * slowing the generator down). Abusive clients ask for the popular objects at abusive_rate each (a scraper), over
 * CDNLOAD_ABUSIVE_CONNS connections. Every client connects from its own loopback address:
 * rate limiting keys on the client's address, and a node sees the polite
 * clients as the many separate users they model. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdnload_load.h"

/* Client k of region r (polite base 16, abusive base 48): 127.B+r.x.y,
 * 250 per /24, never .0 or .255. */
static void client_addr(unsigned base, unsigned r, uint32_t k, struct sockaddr_in *a)
{
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl((127u << 24) | ((base + r) << 16) | ((k / 250) << 8) | (k % 250 + 1));
}

cdnload_second_t *cdnload_second(cdnload_load_t *ld)
{
    unsigned sec = (unsigned)((cdnload_now_ms(ld) - ld->start_ms) / 1000);
    if (sec >= CDNLOAD_SERIES_MAX)
        return NULL;
    if (sec + 1 > ld->run.nseconds)
        ld->run.nseconds = sec + 1;
    return &ld->run.series[sec];
}

static bool bit_test_set(uint8_t *map, uint32_t i)
{
    uint8_t b = (uint8_t)(1u << (i & 7));
    bool was = map[i >> 3] & b;
    map[i >> 3] |= b;
    return was;
}

static void send_request(cdnload_client_t *cl)
{
    cdnload_load_t *ld = cl->ld;
    char target[512];
    int64_t check;
    cl->busy = true;
    cl->sent++;
    double u = rng_unit(&cl->rng);
    cl->obj = (uint32_t)cdnload_zipf_rank(&ld->zipf, rng_unit(&cl->rng));
    if (cl->abusive) {
        /* A scraper: the popular objects, far faster than anyone reads
         * them, under their own paths so that the origin counts what
         * it let through apart (/a/). */
        cl->what = CDNLOAD_REQ_ABUSIVE;
        uint64_t size = cdnload_object_size(&ld->sc, cl->obj);
        snprintf(target, sizeof target, "/a/%u?size=%llu&cc=max-age%%3D%llu", cl->obj, (unsigned long long)size,
                 (unsigned long long)ld->sc.ttl_s);
        cdnload_conn_send(cl->conn, "GET", target, ld->host, NULL, NULL, 0, (int64_t)size);
        return;
    }
    if (u < ld->sc.uncacheable) {
        cl->what = CDNLOAD_REQ_UNCACHEABLE;
    } else if (u < ld->sc.uncacheable + ld->sc.images) {
        cl->what = CDNLOAD_REQ_IMAGE;
        cl->obj %= ld->sc.image_sources; /* the same popularity, folded onto the images */
        cl->variant = (unsigned)(rng_next(&cl->rng) % CDNLOAD_IMAGE_VARIANTS);
    } else {
        cl->what = CDNLOAD_REQ_OBJECT;
    }
    if (cl->what == CDNLOAD_REQ_IMAGE) {
        cdnload_image_target(&ld->sc, cl->obj, cl->variant, target, sizeof target);
        check = CDNLOAD_HASH_BODY;
    } else {
        cdnload_object_target(&ld->sc, cl->obj, cl->what == CDNLOAD_REQ_OBJECT, target, sizeof target);
        check = (int64_t)cdnload_object_size(&ld->sc, cl->obj);
    }
    cdnload_conn_send(cl->conn, "GET", target, ld->host, NULL, NULL, 0, check);
}

static void client_end(cdnload_client_t *cl)
{
    if (!cl->conn)
        return;
    cdnload_conn_close(cl->conn);
    cl->conn = NULL;
    cl->ld->open--;
}

static void mismatch(cdnload_load_t *ld, cdnload_counts_t *c, const char *fmt, const char *target, int status,
                     unsigned long long at)
{
    c->mismatches++;
    if (!ld->run.first_mismatch[0])
        snprintf(ld->run.first_mismatch, sizeof ld->run.first_mismatch, fmt, target, status, at);
}

/* An image variant's bytes are libvips', not the origin's: every copy of
 * a variant (any edge, any time) must be the first one seen. */
static void check_variant(cdnload_client_t *cl, cdnload_counts_t *c, const cdnload_result_t *r)
{
    cdnload_load_t *ld = cl->ld;
    if (r->status != 200)
        return;
    uint64_t *h = &ld->variant_hash[(size_t)cl->obj * CDNLOAD_IMAGE_VARIANTS + cl->variant];
    uint64_t got = r->body_hash ? r->body_hash : 1; /* 0 means unseen */
    if (!*h)
        *h = got;
    else if (*h != got)
        mismatch(ld, c, "%s (status %d) differs from the variant's first copy (%llu bytes)",
                 cdnload_conn_target(cl->conn), r->status, (unsigned long long)r->bytes);
}

static void count(cdnload_client_t *cl, const cdnload_result_t *r)
{
    cdnload_load_t *ld = cl->ld;
    cdnload_counts_t *c = cl->abusive ? &ld->run.abusive[cl->region] : &ld->run.counts[cl->region];
    cdnload_second_t *s = cdnload_second(ld);
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
    /* A refusal is the edge's own answer, whatever its Cache-Status says. */
    cdnload_at_t at = r->status == 429 ? CDNLOAD_AT_EDGE : r->at;
    c->at[at]++;
    if (s) {
        s->status_5xx += r->status >= 500 && r->status < 600;
        if (cl->abusive) {
            s->abusive++;
            s->limited_abusive += r->status == 429;
        } else {
            s->limited_polite += r->status == 429;
        }
    }
    if (r->mismatch)
        mismatch(ld, c, "%s (status %d) differs from the origin's content at byte %llu", cdnload_conn_target(cl->conn),
                 r->status, (unsigned long long)r->mismatch_at);
    if (cl->abusive)
        return;
    if (cl->what == CDNLOAD_REQ_IMAGE) {
        c->images++;
        c->cacheable++;
        check_variant(cl, c, r);
        if (!bit_test_set(ld->asked_img, cl->obj))
            ld->run.distinct_cacheable++;
    } else if (cl->what == CDNLOAD_REQ_OBJECT) {
        c->cacheable++;
        if (!bit_test_set(ld->asked, cl->obj))
            ld->run.distinct_cacheable++;
    }
    if (cdnload_now_ms(ld) - ld->start_ms >= ld->sc.warmup_ms)
        cdnload_hist_add(&c->latency, r->latency_us + cl->late_ms * 1000);
    if (s) {
        s->requests++;
        s->bytes += r->bytes;
        s->at_edge += at == CDNLOAD_AT_EDGE;
        s->at_shield += at == CDNLOAD_AT_SHIELD;
        s->at_origin += at == CDNLOAD_AT_ORIGIN;
    }
}

static bool open_loop(const cdnload_load_t *ld)
{
    return ld->sc.rate > 0;
}

/* How many requests a paced sender should have sent by now. */
static uint64_t due(const cdnload_load_t *ld, double rate)
{
    return (uint64_t)(rate * (double)(cdnload_now_ms(ld) - ld->start_ms) / 1000.0);
}

static void idle_push(const cdnload_load_t *ld, cdnload_region_t *rg, uint32_t index)
{
    rg->idle[(rg->idle_head + rg->nidle++) % ld->sc.concurrency] = index;
}

static void on_done(void *ud, cdnload_conn_t *conn, const cdnload_result_t *r)
{
    cdnload_client_t *cl = ud;
    cdnload_load_t *ld = cl->ld;
    (void)conn;
    cl->busy = false;
    count(cl, r);
    if (ld->stopping || cdnload_now_ms(ld) >= ld->end_ms) {
        client_end(cl);
        return;
    }
    if (cl->abusive) {
        if (cl->sent < due(ld, ld->sc.abusive_rate / CDNLOAD_ABUSIVE_CONNS))
            send_request(cl);
        return;
    }
    if (!open_loop(ld)) {
        send_request(cl);
        return;
    }
    cdnload_region_t *rg = &ld->regions[cl->region];
    if (rg->bl_len) {
        uint64_t at = rg->backlog[rg->bl_head];
        rg->bl_head = (rg->bl_head + 1) % CDNLOAD_BACKLOG_MAX;
        rg->bl_len--;
        cl->late_ms = cdnload_now_ms(ld) - at;
        send_request(cl);
    } else {
        idle_push(ld, rg, cl->index);
    }
}

int cdnload_clients_init(cdnload_load_t *ld)
{
    const cdnload_scenario_t *sc = &ld->sc;
    size_t per = (size_t)sc->concurrency + (size_t)sc->abusive_clients * CDNLOAD_ABUSIVE_CONNS;
    ld->clients = calloc(per * ld->run.nregions, sizeof *ld->clients);
    ld->asked = calloc(sc->objects / 8 + 1, 1);
    ld->asked_img = calloc(sc->image_sources / 8 + 1, 1);
    ld->variant_hash = calloc((size_t)sc->image_sources * CDNLOAD_IMAGE_VARIANTS, sizeof *ld->variant_hash);
    if (!ld->clients || !ld->asked || !ld->asked_img || !ld->variant_hash)
        return -ENOMEM;
    for (int abusive = 0; abusive < 2; abusive++) {
        for (unsigned r = 0; r < ld->run.nregions; r++) {
            cdnload_region_t *rg = &ld->regions[r];
            if (!abusive && open_loop(ld) &&
                (!(rg->idle = calloc(sc->concurrency, sizeof *rg->idle)) ||
                 !(rg->backlog = calloc(CDNLOAD_BACKLOG_MAX, sizeof *rg->backlog))))
                return -ENOMEM;
            uint32_t n = abusive ? sc->abusive_clients * CDNLOAD_ABUSIVE_CONNS : sc->concurrency;
            for (uint32_t k = 0; k < n; k++) {
                cdnload_client_t *cl = &ld->clients[ld->nclients];
                cl->index = (uint32_t)ld->nclients++;
                cl->ld = ld;
                cl->region = r;
                cl->abusive = abusive;
                rng_seed(&cl->rng, sc->seed * 1000003u + r * 10007u + k + (abusive ? 7777777u : 0));
                struct sockaddr_in src;
                client_addr(abusive ? 48 : 16, r, abusive ? k / CDNLOAD_ABUSIVE_CONNS : k, &src);
                const struct sockaddr *edge = (const struct sockaddr *)&rg->edge[rg->next++ % rg->nedges];
                cl->conn = cdnload_conn_new(&ld->loop, edge, (struct sockaddr *)&src, ld->timeout_ms, on_done, cl);
                if (!cl->conn)
                    return -ENOMEM;
                ld->open++;
                if (!abusive && open_loop(ld))
                    idle_push(ld, rg, cl->index);
            }
        }
        if (!abusive)
            ld->npolite = ld->nclients;
    }
    return 0;
}

void cdnload_clients_start(cdnload_load_t *ld)
{
    if (!open_loop(ld))
        for (size_t i = 0; i < ld->npolite; i++)
            send_request(&ld->clients[i]);
}

void cdnload_clients_pace(cdnload_load_t *ld)
{
    if (cdnload_now_ms(ld) >= ld->end_ms)
        return;
    if (open_loop(ld)) {
        uint64_t want = due(ld, ld->sc.rate), now = cdnload_now_ms(ld);
        for (unsigned r = 0; r < ld->run.nregions; r++) {
            cdnload_region_t *rg = &ld->regions[r];
            for (; rg->issued < want; rg->issued++) {
                if (rg->nidle) {
                    cdnload_client_t *cl = &ld->clients[rg->idle[rg->idle_head]];
                    rg->idle_head = (rg->idle_head + 1) % ld->sc.concurrency;
                    rg->nidle--;
                    cl->late_ms = 0;
                    send_request(cl);
                } else if (rg->bl_len < CDNLOAD_BACKLOG_MAX) {
                    rg->backlog[(rg->bl_head + rg->bl_len++) % CDNLOAD_BACKLOG_MAX] = now;
                } else {
                    ld->run.counts[r].dropped++; /* the nodes are this far behind: say so, do not queue forever */
                }
            }
        }
    }
    if (ld->sc.abusive_clients) {
        uint64_t want = due(ld, ld->sc.abusive_rate / CDNLOAD_ABUSIVE_CONNS);
        for (size_t i = ld->npolite; i < ld->nclients; i++) {
            cdnload_client_t *cl = &ld->clients[i];
            if (cl->conn && !cl->busy && cl->sent < want)
                send_request(cl);
        }
    }
}

void cdnload_clients_stop(cdnload_load_t *ld, bool force)
{
    /* Arrivals still waiting for a connection at the end were never sent:
     * dropped, as when the backlog is full (a run must not look better
     * for the requests it could not make). */
    for (unsigned r = 0; r < ld->run.nregions; r++) {
        ld->run.counts[r].dropped += ld->regions[r].bl_len;
        ld->regions[r].bl_len = 0;
    }
    for (size_t i = 0; i < ld->nclients; i++)
        if (force || !ld->clients[i].busy)
            client_end(&ld->clients[i]);
}

void cdnload_clients_forget(cdnload_load_t *ld, uint64_t round)
{
    for (uint32_t i = 0; i < ld->sc.objects; i++)
        if (cdnload_purge_covers(&ld->sc, round, i, false))
            ld->asked[i >> 3] &= (uint8_t)~(1u << (i & 7));
    if (ld->sc.images > 0)
        for (uint32_t k = 0; k < ld->sc.image_sources; k++)
            if (cdnload_purge_covers(&ld->sc, round, k, true))
                ld->asked_img[k >> 3] &= (uint8_t)~(1u << (k & 7));
}
