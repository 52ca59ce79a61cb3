/* pool: rendezvous ranking (spread, minimal movement when targets come and
 * go, independence from configuration order, stability across builds) and
 * the health state machine (ejection, doubling backoff, probation, active
 * checks), driven with explicit times; plus a multi-threaded smoke test
 * for the lock-free readers against concurrent reports. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "pool.h"

#define NKEYS 10000

/* A pool over names with bases "http://<name>"; asserts it was created. */
static pool_t *mkpool(const char *const *names, size_t n, const pool_opts_t *opts)
{
    static char bases[POOL_MAX][64];
    const char *bp[POOL_MAX];
    for (size_t i = 0; i < n; i++) {
        snprintf(bases[i], sizeof bases[i], "http://%s", names[i]);
        bp[i] = bases[i];
    }
    pool_t *p = pool_new(names, bp, n, opts);
    cr_assert_not_null(p);
    return p;
}

static void key_of(int i, uint8_t out[16])
{
    char url[64];
    int n = snprintf(url, sizeof url, "http://h/obj/%d", i);
    hash_cache_key(url, (size_t)n, out);
}

/* Name of key i's top-ranked target in p. */
static const char *top_name(const pool_t *p, int i)
{
    uint8_t k[16];
    key_of(i, k);
    int t = pool_next(p, k, 0, 0);
    cr_assert_geq(t, 0);
    return pool_name(p, (size_t)t);
}

static const char *const ABCDE[] = { "10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080",
                                     "10.0.0.4:8080", "10.0.0.5:8080" };

/* --- construction --- */

Test(pool, new_validates_input)
{
    const char *names[POOL_MAX + 1], *bases[POOL_MAX + 1];
    char nb[POOL_MAX + 1][16], bb[POOL_MAX + 1][32];
    for (int i = 0; i <= POOL_MAX; i++) {
        snprintf(nb[i], sizeof nb[i], "h%d:80", i);
        snprintf(bb[i], sizeof bb[i], "http://h%d:80", i);
        names[i] = nb[i];
        bases[i] = bb[i];
    }
    cr_assert_null(pool_new(names, bases, 0, NULL));
    cr_assert_null(pool_new(names, bases, POOL_MAX + 1, NULL));
    cr_assert_null(pool_new(NULL, bases, 1, NULL));
    cr_assert_null(pool_new(names, NULL, 1, NULL));
    pool_t *p = pool_new(names, bases, POOL_MAX, NULL);
    cr_assert_not_null(p);
    cr_assert_eq(pool_size(p), POOL_MAX);
    pool_free(p);

    const char *bad_name[] = { "a:1", NULL };
    const char *two_bases[] = { "http://a:1", "http://b:2" };
    cr_assert_null(pool_new(bad_name, two_bases, 2, NULL));
    bad_name[1] = "";
    cr_assert_null(pool_new(bad_name, two_bases, 2, NULL));
    bad_name[1] = "a:1"; /* duplicate */
    cr_assert_null(pool_new(bad_name, two_bases, 2, NULL));

    const char *good_names[] = { "a:1", "b:2" };
    const char *bad_base[] = { "http://a:1", "http://b:2/" };
    cr_assert_null(pool_new(good_names, bad_base, 2, NULL));
    bad_base[1] = "";
    cr_assert_null(pool_new(good_names, bad_base, 2, NULL));
    bad_base[1] = NULL;
    cr_assert_null(pool_new(good_names, bad_base, 2, NULL));
}

Test(pool, new_bounds_lengths)
{
    static char name[POOL_NAME_MAX + 1], base[POOL_BASE_MAX + 1];
    memset(name, 'n', POOL_NAME_MAX - 1);
    name[POOL_NAME_MAX - 1] = '\0';
    strcpy(base, "http://");
    memset(base + 7, 'b', POOL_BASE_MAX - 1 - 7);
    base[POOL_BASE_MAX - 1] = '\0';
    const char *n1[] = { name }, *b1[] = { base };
    pool_t *p = pool_new(n1, b1, 1, NULL);
    cr_assert_not_null(p, "lengths of MAX - 1 fit");
    cr_assert_eq(strlen(pool_name(p, 0)), POOL_NAME_MAX - 1);
    cr_assert_eq(strlen(pool_base(p, 0)), POOL_BASE_MAX - 1);
    pool_free(p);

    name[POOL_NAME_MAX - 1] = 'n';
    name[POOL_NAME_MAX] = '\0';
    cr_assert_null(pool_new(n1, b1, 1, NULL));
    name[POOL_NAME_MAX - 1] = '\0';
    base[POOL_BASE_MAX - 1] = 'b';
    base[POOL_BASE_MAX] = '\0';
    cr_assert_null(pool_new(n1, b1, 1, NULL));
}

Test(pool, copies_strings_and_answers_out_of_range)
{
    char name[] = "shield-1:8080", base[] = "http://shield-1:8080";
    const char *n1[] = { name }, *b1[] = { base };
    pool_t *p = pool_new(n1, b1, 1, NULL);
    cr_assert_not_null(p);
    memset(name, 'x', sizeof name - 1);
    memset(base, 'x', sizeof base - 1);
    cr_assert_str_eq(pool_name(p, 0), "shield-1:8080");
    cr_assert_str_eq(pool_base(p, 0), "http://shield-1:8080");
    cr_assert_null(pool_name(p, 1));
    cr_assert_null(pool_base(p, 1));
    cr_assert_not(pool_usable(p, 1, 0));
    cr_assert_not(pool_ejected(p, 1, 0));
    pool_report(p, 1, POOL_FAIL, 0);
    pool_report_check(p, 7, false, 0);
    pool_target_stats_t st;
    memset(&st, 0xff, sizeof st);
    pool_stats(p, 1, 0, &st);
    cr_assert_eq(st.requests_failed + st.checks_failed + st.ejections, 0);
    cr_assert_not(st.ejected);
    pool_free(p);
    pool_free(NULL);
}

/* --- ranking --- */

Test(pool, rank_is_a_permutation_that_next_follows)
{
    pool_t *p = mkpool(ABCDE, 5, NULL);
    for (int i = 0; i < 200; i++) {
        uint8_t k[16];
        key_of(i, k);
        unsigned order[5];
        pool_rank(p, k, order);
        uint32_t seen = 0, tried = 0;
        for (int r = 0; r < 5; r++) {
            cr_assert_lt(order[r], 5u);
            seen |= 1u << order[r];
            /* Skipping the first r of the ranking yields the next one. */
            cr_assert_eq(pool_next(p, k, tried, 0), (int)order[r]);
            tried |= 1u << order[r];
        }
        cr_assert_eq(seen, 0x1fu);
        cr_assert_eq(pool_next(p, k, tried, 0), -1);
    }
    pool_free(p);
}

/* Shares of NKEYS keys' top targets over the first n of ABCDE. */
static void shares(size_t n, unsigned counts[])
{
    pool_t *p = mkpool(ABCDE, n, NULL);
    memset(counts, 0, n * sizeof counts[0]);
    for (int i = 0; i < NKEYS; i++) {
        uint8_t k[16];
        key_of(i, k);
        unsigned order[POOL_MAX];
        pool_rank(p, k, order);
        counts[order[0]]++;
    }
    pool_free(p);
}

Test(pool, spreads_keys_over_two)
{
    unsigned c[2];
    shares(2, c);
    cr_log_info("pool 2 targets: %u %u of %d", c[0], c[1], NKEYS);
    for (int i = 0; i < 2; i++) {
        cr_assert_geq(c[i], NKEYS * 45 / 100, "target %d got %u", i, c[i]);
        cr_assert_leq(c[i], NKEYS * 55 / 100, "target %d got %u", i, c[i]);
    }
}

Test(pool, spreads_keys_over_three_and_five)
{
    for (size_t n = 3; n <= 5; n += 2) {
        unsigned c[5];
        shares(n, c);
        unsigned fair = NKEYS / (unsigned)n;
        for (size_t i = 0; i < n; i++) {
            cr_log_info("pool %zu targets: target %zu got %u (fair %u)", n, i, c[i], fair);
            cr_assert_geq(c[i], fair * 80 / 100, "n=%zu target %zu got %u", n, i, c[i]);
            cr_assert_leq(c[i], fair * 120 / 100, "n=%zu target %zu got %u", n, i, c[i]);
        }
    }
}

Test(pool, removing_a_target_moves_only_its_keys)
{
    const char *abc[] = { "a.example:80", "b.example:80", "c.example:80" };
    const char *ab[] = { "a.example:80", "b.example:80" };
    pool_t *p3 = mkpool(abc, 3, NULL), *p2 = mkpool(ab, 2, NULL);
    int moved = 0, on_c = 0;
    for (int i = 0; i < NKEYS; i++) {
        const char *before = top_name(p3, i), *after = top_name(p2, i);
        if (!strcmp(before, "c.example:80")) {
            on_c++;
            moved++;
        } else {
            cr_assert_str_eq(after, before, "key %d moved off a kept target", i);
        }
    }
    cr_log_info("remove C: %d of %d keys moved (all of C's %d)", moved, NKEYS, on_c);
    cr_assert_gt(on_c, 0);
    pool_free(p3);
    pool_free(p2);
}

Test(pool, adding_a_target_moves_about_a_quarter)
{
    const char *abc[] = { "a.example:80", "b.example:80", "c.example:80" };
    const char *abcd[] = { "a.example:80", "b.example:80", "c.example:80", "d.example:80" };
    pool_t *p3 = mkpool(abc, 3, NULL), *p4 = mkpool(abcd, 4, NULL);
    int moved = 0;
    for (int i = 0; i < NKEYS; i++) {
        const char *before = top_name(p3, i), *after = top_name(p4, i);
        bool on_d = !strcmp(after, "d.example:80");
        if (on_d)
            moved++;
        else
            cr_assert_str_eq(after, before, "key %d moved, but not to D", i);
    }
    cr_log_info("add D: %d of %d keys moved (%.1f%%)", moved, NKEYS, 100.0 * moved / NKEYS);
    cr_assert_geq(moved, NKEYS * 20 / 100);
    cr_assert_leq(moved, NKEYS * 30 / 100);
    pool_free(p3);
    pool_free(p4);
}

Test(pool, ranking_follows_names_not_positions)
{
    const char *abc[] = { "a.example:80", "b.example:80", "c.example:80" };
    const char *cab[] = { "c.example:80", "a.example:80", "b.example:80" };
    const char *ba[] = { "b.example:80", "a.example:80" };
    pool_t *p1 = mkpool(abc, 3, NULL), *p2 = mkpool(cab, 3, NULL);
    pool_t *pab = mkpool(abc, 2, NULL), *pba = mkpool(ba, 2, NULL);
    for (int i = 0; i < 2000; i++) {
        uint8_t k[16];
        key_of(i, k);
        unsigned o1[3], o2[3];
        pool_rank(p1, k, o1);
        pool_rank(p2, k, o2);
        for (int r = 0; r < 3; r++)
            cr_assert_str_eq(pool_name(p1, o1[r]), pool_name(p2, o2[r]), "key %d rank %d", i, r);
        cr_assert_str_eq(top_name(pab, i), top_name(pba, i), "key %d", i);
    }
    pool_free(p1);
    pool_free(p2);
    pool_free(pab);
    pool_free(pba);
}

/* Edges and shields of different builds must agree on each key's shield:
 * a change to the seed derivation or the score silently reshuffles every
 * cache, so it must fail here first. */
Test(pool, ranking_is_pinned)
{
    const char *abc[] = { "a.example:80", "b.example:80", "c.example:80" };
    static const char pinned[] = "baaacbcbbbcbabcabccbccbcaacabccbbcaccbca";
    pool_t *p = mkpool(abc, 3, NULL);
    char got[sizeof pinned];
    for (size_t i = 0; i + 1 < sizeof pinned; i++)
        got[i] = top_name(p, (int)i)[0];
    got[sizeof pinned - 1] = '\0';
    cr_assert_str_eq(got, pinned);
    pool_free(p);
}

/* --- health --- */

static const pool_opts_t OPTS = { .eject_after = 3, .backoff_ms = 100, .backoff_max_ms = 350 };

static void fail_n(pool_t *p, size_t i, int n, uint64_t now)
{
    for (int k = 0; k < n; k++)
        pool_report(p, i, POOL_FAIL, now);
}

Test(pool, next_skips_tried_and_ejected)
{
    pool_t *p = mkpool(ABCDE, 3, &OPTS);
    uint8_t k[16];
    key_of(42, k);
    unsigned order[3];
    pool_rank(p, k, order);
    cr_assert_eq(pool_next(p, k, 0, 1000), (int)order[0]);
    /* Bits above the pool's size mean nothing. */
    cr_assert_eq(pool_next(p, k, 0xfffffff8u, 1000), (int)order[0]);

    fail_n(p, order[0], 3, 1000);
    cr_assert_eq(pool_next(p, k, 0, 1000), (int)order[1]);
    cr_assert_eq(pool_next(p, k, 1u << order[1], 1000), (int)order[2]);
    cr_assert_eq(pool_next(p, k, 1u << order[1] | 1u << order[2], 1000), -1);

    fail_n(p, order[1], 3, 1000);
    fail_n(p, order[2], 3, 1000);
    cr_assert_eq(pool_next(p, k, 0, 1000), -1, "all ejected");
    /* Backoffs over: the ranking is back, tried still applies. */
    cr_assert_eq(pool_next(p, k, 0, 1100), (int)order[0]);
    cr_assert_eq(pool_next(p, k, 1u << order[0], 1100), (int)order[1]);
    cr_assert_eq(pool_next(p, k, 0x7, 1100), -1);
    pool_free(p);
}

Test(pool, ejects_after_consecutive_failures_only)
{
    pool_t *p = mkpool(ABCDE, 2, &OPTS);
    fail_n(p, 0, 2, 10);
    cr_assert(pool_usable(p, 0, 10));
    pool_report(p, 0, POOL_OK, 11); /* resets the run */
    fail_n(p, 0, 2, 12);
    cr_assert(pool_usable(p, 0, 12));
    cr_assert_not(pool_ejected(p, 0, 12));
    pool_report(p, 0, POOL_FAIL, 13);
    cr_assert(pool_ejected(p, 0, 13));
    cr_assert_not(pool_usable(p, 0, 13));
    cr_assert(pool_usable(p, 1, 13), "other targets unaffected");

    pool_target_stats_t st;
    pool_stats(p, 0, 13, &st);
    cr_assert_eq(st.requests_ok, 1);
    cr_assert_eq(st.requests_failed, 5);
    cr_assert_eq(st.checks_ok + st.checks_failed, 0);
    cr_assert_eq(st.ejections, 1);
    cr_assert(st.ejected);
    pool_stats(p, 0, 113, &st);
    cr_assert_not(st.ejected, "as of the call: the backoff has passed");
    pool_free(p);
}

Test(pool, backoff_doubles_up_to_the_cap)
{
    pool_t *p = mkpool(ABCDE, 1, &OPTS);
    uint64_t t = 1000;
    fail_n(p, 0, 3, t);
    /* 100, then 200, then 400 capped at 350, then 350 again. */
    static const uint64_t expect[] = { 100, 200, 350, 350 };
    for (size_t e = 0; e < 4; e++) {
        cr_assert(pool_ejected(p, 0, t + expect[e] - 1), "ejection %zu", e);
        cr_assert(pool_usable(p, 0, t + expect[e]), "ejection %zu lasts %llu", e,
                  (unsigned long long)expect[e]);
        t += expect[e];
        /* Probation: one failure re-ejects at once. */
        pool_report(p, 0, POOL_FAIL, t);
        cr_assert(pool_ejected(p, 0, t));
    }
    pool_target_stats_t st;
    pool_stats(p, 0, t, &st);
    cr_assert_eq(st.ejections, 5);
    cr_assert_eq(st.requests_failed, 7);
    pool_free(p);
}

Test(pool, success_in_probation_restores_and_resets_backoff)
{
    pool_t *p = mkpool(ABCDE, 1, &OPTS);
    fail_n(p, 0, 3, 0);      /* ejected 0..100 */
    pool_report(p, 0, POOL_FAIL, 100); /* probation fail: 100..300 */
    cr_assert(pool_ejected(p, 0, 299));
    pool_report(p, 0, POOL_OK, 300);
    cr_assert(pool_usable(p, 0, 300));
    /* Healthy again: one failure is not enough, and the backoff is 100. */
    fail_n(p, 0, 2, 400);
    cr_assert(pool_usable(p, 0, 400));
    pool_report(p, 0, POOL_FAIL, 400);
    cr_assert(pool_ejected(p, 0, 499));
    cr_assert(pool_usable(p, 0, 500));
    pool_free(p);
}

Test(pool, stragglers_do_not_extend_an_ejection)
{
    pool_t *p = mkpool(ABCDE, 1, &OPTS);
    fail_n(p, 0, 3, 0);
    /* Requests sent before the ejection fail later: counted, no effect. */
    fail_n(p, 0, 5, 50);
    cr_assert(pool_usable(p, 0, 100));
    pool_target_stats_t st;
    pool_stats(p, 0, 50, &st);
    cr_assert_eq(st.ejections, 1);
    cr_assert_eq(st.requests_failed, 8);
    /* ...and the next ejection is still the first doubling (200). */
    pool_report(p, 0, POOL_FAIL, 100);
    cr_assert(pool_ejected(p, 0, 299));
    cr_assert(pool_usable(p, 0, 300));
    pool_free(p);
}

Test(pool, success_while_ejected_restores)
{
    pool_t *p = mkpool(ABCDE, 1, &OPTS);
    fail_n(p, 0, 3, 0);
    cr_assert(pool_ejected(p, 0, 10));
    pool_report_check(p, 0, true, 10);
    cr_assert(pool_usable(p, 0, 10));
    fail_n(p, 0, 3, 20);
    cr_assert(pool_ejected(p, 0, 20));
    pool_report(p, 0, POOL_OK, 30);
    cr_assert(pool_usable(p, 0, 30));
    /* The backoff was reset by each success: the next ejection lasts 100. */
    fail_n(p, 0, 3, 40);
    cr_assert(pool_ejected(p, 0, 139));
    cr_assert(pool_usable(p, 0, 140));
    pool_free(p);
}

Test(pool, active_checks_weigh_like_requests)
{
    pool_t *p = mkpool(ABCDE, 2, &OPTS);
    /* Failed checks and failed requests form one run. */
    pool_report(p, 0, POOL_FAIL, 0);
    pool_report_check(p, 0, false, 1);
    cr_assert(pool_usable(p, 0, 1));
    pool_report_check(p, 0, false, 2);
    cr_assert(pool_ejected(p, 0, 2));
    /* A failed check in probation re-ejects with the doubled backoff. */
    pool_report_check(p, 0, false, 102);
    cr_assert(pool_ejected(p, 0, 301));
    /* A passing check in probation restores. */
    pool_report_check(p, 0, true, 302);
    cr_assert(pool_usable(p, 0, 302));
    /* A passing check resets the run like a request would. */
    fail_n(p, 0, 2, 400);
    pool_report_check(p, 0, true, 401);
    fail_n(p, 0, 2, 402);
    cr_assert(pool_usable(p, 0, 402));

    pool_target_stats_t st;
    pool_stats(p, 0, 402, &st);
    cr_assert_eq(st.requests_ok, 0);
    cr_assert_eq(st.requests_failed, 5);
    cr_assert_eq(st.checks_ok, 2);
    cr_assert_eq(st.checks_failed, 3);
    cr_assert_eq(st.ejections, 2);
    cr_assert_not(st.ejected);
    pool_stats(p, 1, 402, &st);
    cr_assert_eq(st.requests_ok + st.requests_failed + st.checks_ok + st.checks_failed, 0);
    pool_free(p);
}

Test(pool, defaults_and_odd_options)
{
    /* NULL opts: 3 failures, 5 s doubling to a 60 s cap. */
    pool_t *p = mkpool(ABCDE, 1, NULL);
    uint64_t t = 0;
    fail_n(p, 0, 2, t);
    cr_assert(pool_usable(p, 0, t));
    pool_report(p, 0, POOL_FAIL, t);
    static const uint64_t expect[] = { 5000, 10000, 20000, 40000, 60000, 60000 };
    for (size_t e = 0; e < 6; e++) {
        cr_assert(pool_ejected(p, 0, t + expect[e] - 1), "ejection %zu", e);
        cr_assert(pool_usable(p, 0, t + expect[e]), "ejection %zu", e);
        t += expect[e];
        pool_report(p, 0, POOL_FAIL, t);
    }
    pool_free(p);

    /* eject_after 1; a cap below the first backoff is raised to it. */
    pool_opts_t o = { .eject_after = 1, .backoff_ms = 1000, .backoff_max_ms = 10 };
    p = mkpool(ABCDE, 1, &o);
    pool_report(p, 0, POOL_FAIL, 0);
    cr_assert(pool_ejected(p, 0, 999));
    cr_assert(pool_usable(p, 0, 1000));
    pool_report(p, 0, POOL_FAIL, 1000);
    cr_assert(pool_usable(p, 0, 2000), "no doubling past the cap");
    pool_free(p);

    /* A deadline past the clock's range saturates instead of wrapping. */
    p = mkpool(ABCDE, 1, &o);
    pool_report(p, 0, POOL_FAIL, UINT64_MAX - 10);
    cr_assert(pool_ejected(p, 0, UINT64_MAX - 1));
    pool_free(p);
}

/* --- threads --- */

#define THREADS 4
#define ITERS 20000

typedef struct smoke_arg {
    pool_t *p;
    unsigned id;
    uint64_t reported[5][2]; /* per target: ok, failed */
} smoke_arg_t;

/* Readers and reporters at once: every thread picks targets lock-free and
 * reports a failure-heavy pattern so ejections keep happening. */
static void *smoke_thread(void *v)
{
    smoke_arg_t *a = v;
    for (unsigned it = 0; it < ITERS; it++) {
        uint64_t now = it; /* each thread's own clock, roughly in step */
        uint8_t k[16];
        key_of((int)(it * THREADS + a->id), k);
        int t = pool_next(a->p, k, 0, now);
        size_t target = t >= 0 ? (size_t)t : it % 5;
        bool ok = (it + a->id) % 4 == 0;
        if (it % 3 == 0) {
            pool_report_check(a->p, target, ok, now);
        } else {
            pool_report(a->p, target, ok ? POOL_OK : POOL_FAIL, now);
            a->reported[target][ok ? 0 : 1]++;
        }
        unsigned order[5];
        pool_rank(a->p, k, order);
        (void)pool_usable(a->p, order[0], now);
    }
    return NULL;
}

Test(pool, concurrent_reports_and_reads, .timeout = 60)
{
    pool_opts_t o = { .eject_after = 2, .backoff_ms = 5, .backoff_max_ms = 40 };
    pool_t *p = mkpool(ABCDE, 5, &o);
    pthread_t th[THREADS];
    smoke_arg_t args[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].p = p;
        args[i].id = i;
        cr_assert_eq(pthread_create(&th[i], NULL, smoke_thread, &args[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    uint64_t checks = 0, ejections = 0;
    for (size_t t = 0; t < 5; t++) {
        uint64_t ok = 0, failed = 0;
        for (unsigned i = 0; i < THREADS; i++) {
            ok += args[i].reported[t][0];
            failed += args[i].reported[t][1];
        }
        pool_target_stats_t st;
        pool_stats(p, t, ITERS, &st);
        cr_assert_eq(st.requests_ok, ok, "target %zu", t);
        cr_assert_eq(st.requests_failed, failed, "target %zu", t);
        cr_assert_leq(st.ejections, st.requests_failed + st.checks_failed);
        cr_assert_eq(st.ejected, pool_ejected(p, t, ITERS));
        checks += st.checks_ok + st.checks_failed;
        ejections += st.ejections;
        /* One success settles any state the race left. */
        pool_report(p, t, POOL_OK, ITERS);
        cr_assert(pool_usable(p, t, ITERS));
    }
    cr_assert_eq(checks, (uint64_t)THREADS * ((ITERS + 2) / 3));
    cr_assert_gt(ejections, 0, "the pattern should eject now and then");
    cr_log_info("smoke: %llu ejections", (unsigned long long)ejections);
    pool_free(p);
}

/* --- panic and lone targets --- */

Test(pool, next_any_ranks_ejected_targets_for_panic_mode)
{
    pool_t *p = mkpool(ABCDE, 3, &OPTS);
    uint8_t k[16];
    key_of(7, k);
    unsigned order[3];
    pool_rank(p, k, order);
    for (size_t i = 0; i < 3; i++)
        fail_n(p, i, 3, 1000);
    cr_assert_eq(pool_next(p, k, 0, 1000), -1);
    /* Health aside, the ranking and the tried set still hold. */
    cr_assert_eq(pool_next_any(p, k, 0), (int)order[0]);
    cr_assert_eq(pool_next_any(p, k, 1u << order[0]), (int)order[1]);
    cr_assert_eq(pool_next_any(p, k, 1u << order[0] | 1u << order[1]), (int)order[2]);
    cr_assert_eq(pool_next_any(p, k, 0x7), -1);
    pool_free(p);
}

Test(pool, a_never_eject_pool_reports_down_but_stays_usable)
{
    pool_opts_t o = OPTS;
    o.never_eject = true;
    pool_t *p = mkpool(ABCDE, 1, &o);
    cr_assert_eq(pool_report(p, 0, POOL_FAIL, 10), POOL_CHANGE_NONE);
    cr_assert_eq(pool_report(p, 0, POOL_FAIL, 11), POOL_CHANGE_NONE);
    cr_assert_eq(pool_report(p, 0, POOL_FAIL, 12), POOL_CHANGE_DOWN, "reported once");
    cr_assert_eq(pool_report(p, 0, POOL_FAIL, 13), POOL_CHANGE_NONE);
    cr_assert(pool_usable(p, 0, 13));
    cr_assert_not(pool_ejected(p, 0, 13));
    uint8_t k[16];
    key_of(1, k);
    cr_assert_eq(pool_next(p, k, 0, 13), 0);
    pool_target_stats_t st;
    pool_stats(p, 0, 13, &st);
    cr_assert(st.down);
    cr_assert_not(st.ejected);
    cr_assert_eq(st.ejections, 0);
    cr_assert_eq(pool_report_check(p, 0, true, 14), POOL_CHANGE_UP);
    pool_stats(p, 0, 14, &st);
    cr_assert_not(st.down);
    pool_free(p);
}

Test(pool, reports_say_when_a_target_goes_down_and_comes_back)
{
    pool_t *p = mkpool(ABCDE, 2, &OPTS);
    cr_assert_eq(pool_report(p, 0, POOL_FAIL, 10), POOL_CHANGE_NONE);
    cr_assert_eq(pool_report(p, 0, POOL_FAIL, 10), POOL_CHANGE_NONE);
    cr_assert_eq(pool_report(p, 0, POOL_FAIL, 10), POOL_CHANGE_DOWN);
    /* Backoff over, a failure on probation ejects again without a new "down". */
    cr_assert_eq(pool_report(p, 0, POOL_FAIL, 200), POOL_CHANGE_NONE);
    cr_assert(pool_ejected(p, 0, 200));
    cr_assert_eq(pool_report(p, 0, POOL_OK, 201), POOL_CHANGE_UP);
    cr_assert_eq(pool_report(p, 0, POOL_OK, 202), POOL_CHANGE_NONE);
    pool_free(p);
}

/* --- selection edge cases --- */

/* The whole order over five targets, not just the winner among three:
 * the seed derivation, the score and the tie-break all show in it. */
Test(pool, ranking_of_five_is_pinned)
{
    static const char *const pinned[] = { "32014", "42103", "03124", "23410", "20431", "20134", "20134", "14023" };
    pool_t *p = mkpool(ABCDE, 5, NULL);
    for (int i = 0; i < 8; i++) {
        uint8_t k[16];
        key_of(i, k);
        unsigned order[5];
        pool_rank(p, k, order);
        char got[6];
        for (int r = 0; r < 5; r++)
            got[r] = (char)('0' + order[r]);
        got[5] = '\0';
        cr_assert_str_eq(got, pinned[i], "key %d", i);
    }
    pool_free(p);
}

Test(pool, a_single_target)
{
    pool_t *p = mkpool(ABCDE, 1, &OPTS);
    for (int i = 0; i < 50; i++) {
        uint8_t k[16];
        key_of(i, k);
        unsigned order[1] = { 7 };
        pool_rank(p, k, order);
        cr_assert_eq(order[0], 0);
        cr_assert_eq(pool_next(p, k, 0, 0), 0);
        cr_assert_eq(pool_next(p, k, 1, 0), -1, "tried");
        cr_assert_eq(pool_next_any(p, k, 0), 0);
        cr_assert_eq(pool_next_any(p, k, 1), -1);
    }
    uint8_t k[16];
    key_of(0, k);
    fail_n(p, 0, 3, 1000);
    cr_assert_eq(pool_next(p, k, 0, 1000), -1, "ejected: nowhere to go");
    cr_assert_eq(pool_next_any(p, k, 0), 0, "panic mode still has it");
    cr_assert_eq(pool_next(p, k, 0, 1100), 0, "back after the backoff");
    pool_free(p);
}

Test(pool, tried_bits_beyond_the_size_are_ignored)
{
    uint8_t k[16];
    key_of(3, k);
    pool_t *p1 = mkpool(ABCDE, 1, NULL);
    cr_assert_eq(pool_next(p1, k, 0xfffffffeu, 0), 0);
    cr_assert_eq(pool_next_any(p1, k, 0xfffffffeu), 0);
    cr_assert_eq(pool_next(p1, k, 0xffffffffu, 0), -1);
    cr_assert_eq(pool_next_any(p1, k, 0xffffffffu), -1);
    pool_free(p1);

    /* A full pool uses every bit, the top one included. */
    const char *names[POOL_MAX];
    char nb[POOL_MAX][16];
    for (int i = 0; i < POOL_MAX; i++) {
        snprintf(nb[i], sizeof nb[i], "t%d:80", i);
        names[i] = nb[i];
    }
    pool_t *p = mkpool(names, POOL_MAX, NULL);
    unsigned order[POOL_MAX];
    pool_rank(p, k, order);
    uint32_t tried = 0;
    for (int r = 0; r < POOL_MAX; r++) {
        cr_assert_eq(pool_next(p, k, tried, 0), (int)order[r], "rank %d", r);
        cr_assert_eq(pool_next_any(p, k, tried), (int)order[r], "rank %d", r);
        tried |= UINT32_C(1) << order[r];
    }
    cr_assert_eq(tried, 0xffffffffu);
    cr_assert_eq(pool_next(p, k, tried, 0), -1);
    cr_assert_eq(pool_next_any(p, k, tried), -1);
    cr_assert_eq(pool_next(p, k, 0x7fffffffu, 0), 31, "only the target of bit 31 is left");
    pool_free(p);
}

Test(pool, ejected_targets_return_in_ranking_order_not_expiry_order)
{
    pool_t *p = mkpool(ABCDE, 3, &OPTS);
    uint8_t k[16];
    key_of(11, k);
    unsigned o[3];
    pool_rank(p, k, o);
    /* The best target is ejected longest (a second ejection: 200 ms, until
     * 300); the others expire earlier, the worst one (260) after the
     * middle one (250). */
    fail_n(p, o[0], 3, 0);
    pool_report(p, o[0], POOL_FAIL, 100);
    fail_n(p, o[1], 3, 150);
    fail_n(p, o[2], 3, 160);
    cr_assert_eq(pool_next(p, k, 0, 200), -1, "all ejected");
    cr_assert_eq(pool_next_any(p, k, 0), (int)o[0], "panic mode follows the ranking");
    cr_assert_eq(pool_next(p, k, 0, 250), (int)o[1]);
    cr_assert_eq(pool_next(p, k, 1u << o[1], 250), -1, "the worst is still out");
    cr_assert_eq(pool_next(p, k, 0, 260), (int)o[1], "back in rank order, not expiry order");
    cr_assert_eq(pool_next(p, k, 1u << o[1], 260), (int)o[2]);
    cr_assert_eq(pool_next(p, k, 0, 299), (int)o[1]);
    cr_assert_eq(pool_next(p, k, 0, 300), (int)o[0], "the best wins again once it is back");
    pool_free(p);
}

Test(pool, next_any_equals_next_while_all_are_healthy)
{
    pool_t *p = mkpool(ABCDE, 5, &OPTS);
    for (int i = 0; i < 500; i++) {
        uint8_t k[16];
        key_of(i, k);
        uint32_t tried = (uint32_t)i * 2654435761u; /* bits above 5 included */
        cr_assert_eq(pool_next_any(p, k, tried), pool_next(p, k, tried, 0), "key %d tried %08x", i, tried);
    }
    pool_free(p);
}
