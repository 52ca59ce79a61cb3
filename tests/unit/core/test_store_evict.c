/* Store eviction: a small map filled many times over keeps accepting
 * writes, stays under its bound, keeps the recent objects and the touched
 * ones, and recovers from MDB_MAP_FULL.
 *
 * Writes are synced every few puts so the sequence of transactions, and
 * therefore every outcome asserted here, does not depend on timing. */
#include "test_store_util.h"

static char dir[64];

static void setup(void)
{
    ts_mkdir(dir);
}

static void teardown(void)
{
    ts_rmdir(dir);
}

TestSuite(store_evict, .init = setup, .fini = teardown, .timeout = 120);

static const uint64_t mix[] = { 3000, 20000, 70000, 300000, 9000, 150000, 500, 40000 };
#define MIX_N (sizeof mix / sizeof mix[0])

Test(store_evict, overfilled_cache_keeps_accepting)
{
    const uint64_t map = 4 * TS_MIB;
    size_t n = 0;
    uint64_t total = 0;
    while (total < 10 * map)
        total += mix[n++ % MIX_N];
    ts_put_t *p = calloc(n, sizeof *p);
    store_t *s = ts_open(dir, map, 0);
    store_stats_t st;
    for (size_t i = 0; i < n; i++) {
        p[i].seed = 1000 + i;
        ts_put(s, i, 0, mix[i % MIX_N], &p[i]);
        if (i % 8 == 7 || i == n - 1) {
            store_sync(s);
            store_get_stats(s, &st);
            cr_assert_leq(st.bytes, st.bytes_max, "accounted %llu over the bound %llu after put %zu",
                          (unsigned long long)st.bytes, (unsigned long long)st.bytes_max, i);
        }
    }
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(p[i].status, STORE_OK, "put %zu failed", i);
    cr_assert_leq(st.bytes_max, map * 80 / 100);
    cr_assert_gt(st.evictions, 0);

    /* Without touches eviction is strictly oldest first: what survives is
     * a suffix of the put order, byte-exact, and it is not a sliver. */
    size_t first = n;
    for (size_t i = n; i-- > 0;) {
        int rc = ts_check(s, i, 0, p[i].seed, mix[i % MIX_N]);
        if (rc == STORE_NOTFOUND)
            break;
        cr_assert_eq(rc, STORE_OK, "object %zu damaged", i);
        first = i;
    }
    for (size_t i = 0; i < first; i++)
        cr_assert_eq(ts_check(s, i, 0, p[i].seed, mix[i % MIX_N]), STORE_NOTFOUND, "old object %zu kept", i);
    cr_assert_lt(first, n - 8, "only %zu objects left", n - first);
    cr_assert_gt(first, 100);
    cr_assert_eq(st.objects, n - first);
    free(p);
    store_close(s);
}

/* How approximate the LRU is: a hit counts once the reader has flushed
 * its touches and the writer applied them in a batch. Here X is hit and
 * flushed before every ~10% of the map written; eviction keeps the newest
 * ~55-75% of the map, so X survives while Y, written just after X and never
 * hit, goes. Hits that are never flushed do not count (the second case). */
static void run_touch_case(bool flush, bool *x_kept, bool *y_kept)
{
    const uint64_t map = 4 * TS_MIB;
    store_t *s = ts_open(dir, map, 0);
    ts_put_t x = { .seed = 1 }, y = { .seed = 2 };
    ts_put(s, 0, 0, 50000, &x);
    ts_put(s, 1, 0, 50000, &y);
    store_sync(s);
    store_reader_t *r = store_reader_new(s);
    store_key_t kx = ts_key(0, 0);
    ts_put_t p[4];
    bool x_lost = false;
    uint64_t id = 2;
    for (int round = 0; round < 100; round++) {
        cr_assert_eq(store_read_begin(r), STORE_OK);
        store_obj_t o;
        if (store_get(r, &kx, &o) == STORE_OK)
            store_touch(r, &kx);
        else
            x_lost = true;
        store_read_end(r);
        if (flush)
            store_reader_flush_touches(r);
        for (int j = 0; j < 4; j++) {
            p[j].seed = 100 + id;
            ts_put(s, id++, 0, 100000, &p[j]);
        }
        store_sync(s);
        for (int j = 0; j < 4; j++)
            cr_assert_eq(p[j].status, STORE_OK);
    }
    *x_kept = !x_lost && ts_check(s, 0, 0, 1, 50000) == STORE_OK;
    *y_kept = ts_check(s, 1, 0, 2, 50000) == STORE_OK;
    store_reader_free(r);
    store_close(s);
}

Test(store_evict, touched_object_survives)
{
    bool x_kept, y_kept;
    run_touch_case(true, &x_kept, &y_kept);
    cr_assert(x_kept, "a flushed hit must keep X");
    cr_assert_not(y_kept, "Y was never hit and is older than the rest");
}

Test(store_evict, unflushed_touches_do_not_count)
{
    bool x_kept, y_kept;
    run_touch_case(false, &x_kept, &y_kept);
    cr_assert_not(x_kept);
    cr_assert_not(y_kept);
}

/* With the high-water mark at 99% the accounting alone cannot keep room
 * for copy-on-write and freed-but-not-yet-reusable pages, so commits hit
 * MDB_MAP_FULL; each must be recovered by evicting and retrying. */
Test(store_evict, map_full_is_recovered)
{
    const uint64_t map = 4 * TS_MIB;
    store_t *s = ts_open(dir, map, 99);
    ts_put_t p[8];
    uint64_t id = 0;
    for (int round = 0; round < 60; round++) {
        for (int j = 0; j < 8; j++) {
            p[j].seed = 7 + id;
            ts_put(s, id, 0, mix[id % MIX_N], &p[j]);
            id++;
        }
        store_sync(s);
        for (int j = 0; j < 8; j++)
            cr_assert_eq(p[j].status, STORE_OK, "round %d put %d", round, j);
    }
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_gt(st.map_full, 0, "the MAP_FULL path was not exercised");
    cr_assert_leq(st.bytes, st.bytes_max);
    /* The newest round is all there. */
    for (uint64_t i = id - 8; i < id; i++)
        cr_assert_eq(ts_check(s, i, 0, 7 + i, mix[i % MIX_N]), STORE_OK);
    store_close(s);
}

/* A read txn left open pins every page freed after it began: no eviction
 * can make room, so puts fail cleanly (STORE_ERROR, never a crash or a
 * torn object) until the reader lets go; then writes succeed again. */
Test(store_evict, pinned_reader_fails_puts_then_recovers)
{
    const uint64_t map = 4 * TS_MIB;
    store_t *s = ts_open(dir, map, 0);
    ts_put_t p[4];
    uint64_t id = 0;
    store_reader_t *r = store_reader_new(s);
    cr_assert_eq(store_read_begin(r), STORE_OK);
    int failed = 0;
    for (int round = 0; round < 200 && !failed; round++) {
        for (int j = 0; j < 4; j++) {
            p[j].seed = 3 + id;
            ts_put(s, id++, 0, 100000, &p[j]);
        }
        store_sync(s);
        for (int j = 0; j < 4; j++) {
            cr_assert(p[j].status == STORE_OK || p[j].status == STORE_ERROR);
            failed += p[j].status == STORE_ERROR;
        }
    }
    cr_assert_gt(failed, 0, "a pinned snapshot must eventually exhaust the map");
    store_read_end(r);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_gt(st.map_full, 0);

    /* Released: ten times the map again, all accepted. */
    for (int round = 0; round < 100; round++) {
        for (int j = 0; j < 4; j++) {
            p[j].seed = 3 + id;
            ts_put(s, id++, 0, 100000, &p[j]);
        }
        store_sync(s);
        for (int j = 0; j < 4; j++)
            cr_assert_eq(p[j].status, STORE_OK, "round %d", round);
    }
    for (uint64_t i = id - 4; i < id; i++)
        cr_assert_eq(ts_check(s, i, 0, 3 + i, 100000), STORE_OK);
    store_reader_free(r);
    store_close(s);
}

/* Health (/.cdn/health answers 503 "store failing"): one batch that
 * cannot write an object is not a failing store, three in a row are; one
 * that stores an object again clears it. A pinned reader makes every put
 * fail once the map is exhausted. */
Test(store_evict, three_failing_batches_make_the_store_unhealthy_until_a_put_succeeds)
{
    store_t *s = ts_open(dir, 4 * TS_MIB, 0);
    store_reader_t *r = store_reader_new(s);
    cr_assert_eq(store_read_begin(r), STORE_OK);
    ts_put_t p;
    uint64_t id = 0;
    int failing = 0;
    for (int round = 0; round < 800 && failing < 3; round++) {
        p.seed = 5 + id;
        ts_put(s, id++, 0, 100000, &p);
        store_sync(s); /* a batch of its own (a sync-only batch counts for nothing) */
        if (p.status == STORE_ERROR)
            failing++;
        cr_assert_eq(store_healthy(s), failing < 3, "after %d failing batches", failing);
    }
    cr_assert_eq(failing, 3, "a pinned snapshot must exhaust the map");
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert(st.failing);
    cr_assert_geq(st.batch_errors, 3);
    store_read_end(r);
    p.seed = 5 + id;
    ts_put(s, id++, 0, 100000, &p);
    store_sync(s);
    cr_assert_eq(p.status, STORE_OK);
    cr_assert(store_healthy(s), "a stored object clears it");
    store_reader_free(r);
    store_close(s);
}
