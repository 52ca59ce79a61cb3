/* purge_fanout: a purge passed on to the node's peers (see
 * include/purge_fanout.h).
 *
 * One fan-out is a small state machine on the worker that accepted the
 * purge: phase 0 sends to the shields in parallel, phase 1 (once every
 * shield answered its first attempt) to the other peers. Each peer is
 * retried on its own timer with a doubling backoff until it confirms or
 * `purge_retry_for` runs out. The client is answered after the last first
 * attempt; retries go on behind it, and the fan-out frees itself when
 * every peer is settled and its timers are closed. */
#include "purge_fanout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 5000

typedef struct fo_peer {
    struct purge_fanout *fo;
    size_t index;
    upstream_req_t *req;       /* the attempt in flight, or NULL */
    uv_timer_t timer;          /* the next retry */
    int status;                /* HTTP status of the attempt's answer, 0 none */
    unsigned attempts;
    uint64_t backoff_ms;
    purge_peer_status_t outcome; /* of the first attempt, then the latest */
    bool settled;              /* confirmed, or given up: no more attempts */
    char detail[160];
} fo_peer_t;

typedef struct purge_fanout {
    proxy_worker_t *pw;
    proxy_conf_t *conf;        /* the generation the peers come from (held) */
    struct purge_fanout *next, *prev; /* pw->fanouts */
    char *json;
    size_t len;
    size_t n, nshields;
    unsigned phase;            /* 0: shields, 1: the other peers, 2: every first attempt is over */
    size_t first_left;         /* first attempts of the current phase not over */
    uint64_t give_up_at;       /* loop time (ms) after which no retry starts */
    purge_fanout_fn first;     /* NULL once called */
    void *ctx;
    unsigned closing;          /* timers whose close is pending */
    fo_peer_t peers[];
} purge_fanout_t;

int purge_fanout_peers(const config_t *cfg, char names[][256], size_t max, size_t *nshields, char *err, size_t errlen)
{
    const char *lists[2] = { cfg->program == CONFIG_EDGE ? cfg->shields : "", cfg->purge_peers };
    size_t n = 0;
    *nshields = 0;
    for (int l = 0; l < 2; l++) {
        size_t pos = 0;
        http_slice_t item;
        while (http_list_next((http_slice_t){ lists[l], strlen(lists[l]) }, &pos, &item)) {
            char host[256];
            unsigned port;
            const char *what = l == 0 ? "shields" : "purge_peers";
            if (n == max || item.len >= 256) {
                snprintf(err, errlen, "%s: at most %zu purge peers (shields included) of up to 255 characters", what,
                         max);
                return -EINVAL;
            }
            memcpy(names[n], item.p, item.len);
            names[n][item.len] = '\0';
            if (config_parse_addr(names[n], host, sizeof host, &port) || port == 0) {
                snprintf(err, errlen, "%s: expected host:port, got '%s'", what, names[n]);
                return -EINVAL;
            }
            bool dup = false;
            for (size_t i = 0; i < n; i++)
                dup |= strcmp(names[i], names[n]) == 0;
            if (dup)
                continue; /* a shield also named in purge_peers: once, as a shield */
            n++;
            if (l == 0)
                (*nshields)++;
        }
    }
    return (int)n;
}

static uint64_t now_ms(const purge_fanout_t *fo)
{
    return uv_now(worker_loop(fo->pw->w));
}

static void on_timer_closed(uv_handle_t *h)
{
    fo_peer_t *pe = h->data;
    purge_fanout_t *fo = pe->fo;
    if (--fo->closing == 0) {
        proxy_conf_unref(fo->conf);
        free(fo->json);
        free(fo);
    }
}

static void fo_unlink(purge_fanout_t *fo)
{
    proxy_worker_t *pw = fo->pw;
    if (fo->prev)
        fo->prev->next = fo->next;
    else if (pw->fanouts == fo)
        pw->fanouts = fo->next;
    if (fo->next)
        fo->next->prev = fo->prev;
    fo->next = fo->prev = NULL;
}

/* Tell the caller every peer's first outcome (once). */
static void report_first(purge_fanout_t *fo)
{
    if (!fo->first)
        return;
    purge_peer_result_t res[PURGE_PEERS_MAX];
    for (size_t i = 0; i < fo->n; i++)
        res[i] = (purge_peer_result_t){ fo->conf->purge_peers[i], fo->peers[i].outcome, fo->peers[i].detail };
    purge_fanout_fn fn = fo->first;
    fo->first = NULL;
    fn(fo->ctx, res, fo->n);
}

/* Free fo once every peer is settled (its timers closed first). */
static void maybe_free(purge_fanout_t *fo)
{
    if (fo->first || fo->closing)
        return;
    for (size_t i = 0; i < fo->n; i++)
        if (!fo->peers[i].settled)
            return;
    fo_unlink(fo);
    fo->closing = (unsigned)fo->n;
    if (!fo->n) {
        proxy_conf_unref(fo->conf);
        free(fo->json);
        free(fo);
        return;
    }
    for (size_t i = 0; i < fo->n; i++)
        uv_close((uv_handle_t *)&fo->peers[i].timer, on_timer_closed);
}

static void send_peer(fo_peer_t *pe);

static void start_phase(purge_fanout_t *fo)
{
    for (;;) {
        size_t from = fo->phase == 0 ? 0 : fo->nshields, to = fo->phase == 0 ? fo->nshields : fo->n;
        if (fo->phase >= 2) {
            report_first(fo);
            maybe_free(fo);
            return;
        }
        fo->first_left = to - from;
        if (fo->first_left) {
            for (size_t i = from; i < to; i++)
                send_peer(&fo->peers[i]);
            return;
        }
        fo->phase++;
    }
}

static void on_retry(uv_timer_t *t)
{
    send_peer(t->data);
}

/* The attempt is over: settle the peer, or schedule its retry. */
static void attempt_over(fo_peer_t *pe, bool ok, const char *why)
{
    purge_fanout_t *fo = pe->fo;
    const char *name = fo->conf->purge_peers[pe->index];
    bool first = pe->attempts == 1;
    if (ok) {
        pe->outcome = PURGE_PEER_CONFIRMED;
        pe->settled = true;
        snprintf(pe->detail, sizeof pe->detail, "%s", pe->attempts > 1 ? "confirmed after retrying" : "");
        if (!first)
            log_warn("purge: peer %s confirmed after %u attempts", name, pe->attempts);
    } else {
        atomic_fetch_add(&fo->pw->px->purge_peer_failures, 1);
        snprintf(pe->detail, sizeof pe->detail, "%s", why);
        if (now_ms(fo) + pe->backoff_ms <= fo->give_up_at) {
            pe->outcome = PURGE_PEER_RETRYING;
            log_warn("purge: peer %s failed (%s); retrying in %llu ms", name, why, (unsigned long long)pe->backoff_ms);
            uv_timer_start(&pe->timer, on_retry, pe->backoff_ms, 0);
            pe->backoff_ms = pe->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pe->backoff_ms * 2;
        } else {
            pe->outcome = PURGE_PEER_FAILED;
            pe->settled = true;
            log_error("purge: peer %s MISSED a purge: %s after %u attempts (purge_retry_for ran out)", name, why,
                      pe->attempts);
        }
    }
    if (first && fo->first_left && --fo->first_left == 0) {
        fo->phase++;
        start_phase(fo);
        return;
    }
    maybe_free(fo);
}

static int on_headers(void *ctx, int status, const http_fields_t *hdrs)
{
    fo_peer_t *pe = ctx;
    (void)hdrs;
    pe->status = status;
    return 0;
}

static int on_body(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return 0; /* the status says it all */
}

static void on_done(void *ctx, int err, const char *msg)
{
    fo_peer_t *pe = ctx;
    pe->req = NULL;
    char why[160];
    if (err == UPSTREAM_OK && pe->status >= 200 && pe->status < 300) {
        attempt_over(pe, true, "");
        return;
    }
    if (err == UPSTREAM_OK)
        snprintf(why, sizeof why, "answered %d", pe->status);
    else
        snprintf(why, sizeof why, "%s", msg);
    attempt_over(pe, false, why);
}

static const upstream_cbs_t cbs = { .on_headers = on_headers, .on_body = on_body, .on_done = on_done };

static void send_peer(fo_peer_t *pe)
{
    purge_fanout_t *fo = pe->fo;
    const proxy_t *px = fo->pw->px;
    const proxy_conf_t *pc = fo->conf;
    const char *name = pc->purge_peers[pe->index];
    char url[300], auth[PURGE_TOKEN_MAX + 16];
    snprintf(url, sizeof url, "http://%s/.cdn/purge", name);
    int al = snprintf(auth, sizeof auth, "Bearer %.*s", (int)pc->purge_token_len, pc->purge_token);
    http_fields_t h;
    http_fields_init(&h, 0);
    int rc = http_fields_add(&h, "Authorization", 13, auth, (size_t)al);
    rc = rc ? rc : http_fields_add(&h, PURGE_FORWARDED_HEADER, strlen(PURGE_FORWARDED_HEADER), px->cfg->name,
                                   strlen(px->cfg->name));
    rc = rc ? rc : http_fields_add(&h, "Content-Type", 12, "application/json", 16);
    pe->attempts++;
    pe->status = 0;
    pe->req = rc ? NULL : upstream_start(fo->pw->up, "POST", url, &h, fo->json, fo->len, &cbs, pe);
    http_fields_free(&h);
    memset(auth, 0, sizeof auth);
    if (!pe->req)
        attempt_over(pe, false, "could not start the request");
}

int purge_fanout_start(proxy_worker_t *pw, const char *json, size_t len, purge_fanout_fn first, void *ctx)
{
    proxy_conf_t *pc = pw->conf;
    size_t n = pc->n_purge_peers;
    purge_fanout_t *fo = calloc(1, sizeof *fo + n * sizeof fo->peers[0]);
    if (!fo || !(fo->json = malloc(len ? len : 1))) {
        free(fo);
        return -ENOMEM;
    }
    memcpy(fo->json, json, len);
    fo->len = len;
    fo->pw = pw;
    fo->conf = pc;
    proxy_conf_ref(pc);
    fo->n = n;
    fo->nshields = pc->n_purge_shields;
    fo->first = first;
    fo->ctx = ctx;
    fo->give_up_at = uv_now(worker_loop(pw->w)) + pc->cfg.purge_retry_for_ms;
    for (size_t i = 0; i < n; i++) {
        fo_peer_t *pe = &fo->peers[i];
        pe->fo = fo;
        pe->index = i;
        pe->backoff_ms = RETRY_FIRST_MS;
        uv_timer_init(worker_loop(pw->w), &pe->timer);
        pe->timer.data = pe;
    }
    fo->next = pw->fanouts;
    if (pw->fanouts)
        pw->fanouts->prev = fo;
    pw->fanouts = fo;
    start_phase(fo);
    return 0;
}

void purge_fanout_close_all(proxy_worker_t *pw)
{
    while (pw->fanouts) {
        purge_fanout_t *fo = pw->fanouts;
        for (size_t i = 0; i < fo->n; i++) {
            fo_peer_t *pe = &fo->peers[i];
            if (pe->req) {
                upstream_cancel(pe->req);
                pe->req = NULL;
            }
            uv_timer_stop(&pe->timer);
            if (!pe->settled)
                log_error("purge: peer %s MISSED a purge: the node is shutting down",
                          fo->conf->purge_peers[i]);
            pe->settled = true;
        }
        report_first(fo);
        fo_unlink(fo);
        maybe_free(fo); /* unlinked already: frees once the timers are closed */
    }
}
