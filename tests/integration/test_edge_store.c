/* The edge's disk cache across process lifetimes and under pressure:
 * restart, eviction of the oldest when full, SIGKILL during a write burst. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"

#define CC "cc=max-age%3D600"
#define CCF "cc=max-age%%3D600" /* in a format string */

Test(edge_store, cache_survives_restart)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_free(edge_get(&env, "/keep?size=5000&" CC));
    th_resp_free(edge_get(&env, "/keepbig?size=900000&" CC));
    cr_assert(edge_wait_cs(&env, "/keep?size=5000&" CC, "hit", 5000));
    cr_assert(edge_wait_cs(&env, "/keepbig?size=900000&" CC, "hit", 5000));
    cr_assert_eq(th_stop(env.edge), 0);
    th_proc_t *e2 = edge_start(env.o, env.dir, NULL);
    th_resp_t *r = edge_req(th_addr(e2), "GET", "/keep?size=5000&" CC, NULL, NULL, 0);
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    cr_assert(th_body_matches("/keep", 5000, r->body.data, r->body.len));
    th_resp_free(r);
    r = edge_req(th_addr(e2), "GET", "/keepbig?size=900000&" CC, NULL, NULL, 0);
    cr_assert(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
    cr_assert(th_body_matches("/keepbig", 900000, r->body.data, r->body.len));
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/keep"), 1);
    cr_assert_eq(th_origin_requests(env.o, "/keepbig"), 1);
    cr_assert_eq(th_stop(e2), 0);
}

/* A 4 MiB cache holds about ten 300 KB objects (the store keeps its
 * accounted bytes under a high-water mark below the map size). */
Test(edge_store, full_cache_keeps_serving_and_evicts_the_oldest)
{
    const char *extra[] = { "--cache-size=4M", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    char t[128], p[32];
    for (int i = 0; i < 100; i++) {
        snprintf(t, sizeof t, "/ev%d?size=300000&" CCF, i);
        snprintf(p, sizeof p, "/ev%d", i);
        th_resp_t *r = edge_get(&env, t);
        cr_assert(r->status == 200 && th_body_matches(p, 300000, r->body.data, r->body.len), "object %d", i);
        th_resp_free(r);
        /* Wait for the commit, so the next put finds the store settled. */
        cr_assert(edge_wait_cs(&env, t, "hit", 5000), "object %d never stored", i);
    }
    /* The newest objects are there, the oldest were evicted. */
    for (int i = 97; i < 100; i++) {
        snprintf(t, sizeof t, "/ev%d?size=300000&" CCF, i);
        th_resp_t *r = edge_get(&env, t);
        cr_assert(cs_has(r, "hit"), "object %d: %s", i, th_hdr(r, "cache-status"));
        th_resp_free(r);
    }
    int evicted = 0;
    for (int i = 0; i < 10; i++) {
        snprintf(t, sizeof t, "/ev%d?size=300000&" CCF, i);
        snprintf(p, sizeof p, "/ev%d", i);
        th_resp_t *r = edge_get(&env, t);
        cr_assert(th_body_matches(p, 300000, r->body.data, r->body.len));
        evicted += cs_has(r, "fwd=uri-miss");
        th_resp_free(r);
    }
    cr_assert_eq(evicted, 10, "only %d of the 10 oldest were evicted", evicted);
    cr_assert_eq(th_stop(env.edge), 0);
}

typedef struct kill_burst {
    const char *addr;
    int base, count;
    int done;
} kill_burst_t;

static uint64_t obj_size(int i)
{
    return 1000 + (uint64_t)(i * 7919) % 600000; /* inline and chunked sizes */
}

static void burst_worker(int w, void *arg)
{
    kill_burst_t *b = arg;
    char t[128];
    for (int i = b->base + w; i < b->base + b->count; i += 4) {
        snprintf(t, sizeof t, "/k%d?size=%llu&" CCF, i, (unsigned long long)obj_size(i));
        th_resp_t *r = edge_req(b->addr, "GET", t, NULL, NULL, 0);
        if (!r)
            return; /* the edge was killed */
        th_resp_free(r);
        __atomic_add_fetch(&b->done, 1, __ATOMIC_SEQ_CST);
    }
}

typedef struct killer {
    kill_burst_t *b;
    int pid;
} killer_t;

static bool enough_done(void *arg)
{
    return __atomic_load_n(&((kill_burst_t *)arg)->done, __ATOMIC_SEQ_CST) >= 40;
}

static void burst_and_kill(int w, void *arg)
{
    killer_t *k = arg;
    if (w < 4) {
        burst_worker(w, k->b);
    } else {
        th_wait_until(enough_done, k->b, 20000);
        kill(k->pid, SIGKILL);
    }
}

Test(edge_store, sigkill_during_write_burst_then_restart_serves_only_intact_bodies)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    /* Phase 1: 20 objects known to be committed (each seen as a hit). */
    char t[128], p[32];
    for (int i = 0; i < 20; i++) {
        snprintf(t, sizeof t, "/k%d?size=%llu&" CCF, i, (unsigned long long)obj_size(i));
        th_resp_free(edge_get(&env, t));
        cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    }
    /* Phase 2: 4 clients write a burst of 200 more; the edge is killed
     * once 40 of them have completed, with writes still in flight. */
    kill_burst_t b = { env.e, 20, 200, 0 };
    killer_t k = { &b, th_pid(env.edge) };
    th_parallel(5, burst_and_kill, &k);
    th_kill9(env.edge);
    th_proc_t *e2 = edge_start(env.o, env.dir, NULL);
    int hits = 0;
    for (int i = 0; i < 220; i++) {
        uint64_t size = obj_size(i);
        snprintf(t, sizeof t, "/k%d?size=%llu&" CCF, i, (unsigned long long)size);
        snprintf(p, sizeof p, "/k%d", i);
        th_resp_t *r = edge_req(th_addr(e2), "GET", t, NULL, NULL, 0);
        cr_assert_not_null(r, "%s: %s", t, th_last_error());
        cr_assert_eq(r->status, 200);
        cr_assert(th_body_matches(p, size, r->body.data, r->body.len), "object %d corrupt after restart", i);
        char sum[17];
        th_checksum_hex(r->body.data, r->body.len, sum);
        cr_assert_str_eq(th_hdr(r, "x-body-checksum"), sum);
        if (i < 20)
            cr_assert(cs_has(r, "hit"), "committed object %d lost: %s", i, th_hdr(r, "cache-status"));
        hits += cs_has(r, "hit");
        th_resp_free(r);
    }
    cr_assert_geq(hits, 20);
    cr_assert_eq(th_stop(e2), 0);
}

Test(edge_store, objects_over_the_size_bound_pass_through_uncached)
{
    const char *extra[] = { "--max-object-size=100K", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    /* Announced length over the bound, then an unannounced (chunked) one. */
    const char *targets[] = { "/huge?size=300000&" CC, "/hugechunked?size=300000&chunked=1&" CC };
    const char *paths[] = { "/huge", "/hugechunked" };
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 2; i++) {
            th_resp_t *r = edge_get(&env, targets[k]);
            cr_assert_eq(r->status, 200);
            cr_assert(th_body_matches(paths[k], 300000, r->body.data, r->body.len), "%s", paths[k]);
            cr_assert_not(cs_has(r, "stored"), "%s", th_hdr(r, "cache-status"));
            cr_assert_not(cs_has(r, "hit"), "%s", th_hdr(r, "cache-status"));
            th_resp_free(r);
        }
        cr_assert_eq(th_origin_requests(env.o, paths[k]), 2);
    }
    /* Below the bound it is stored as usual. */
    th_resp_free(edge_get(&env, "/small?size=50000&" CC));
    cr_assert(edge_wait_cs(&env, "/small?size=50000&" CC, "hit", 5000));
    cr_assert_eq(th_stop(env.edge), 0);
}
