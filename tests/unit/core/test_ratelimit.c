/* ratelimit: the shared table. Buckets through the table over a clock the
 * test sets; one key from four threads shares one bucket; a flood of a
 * million distinct keys stays within the capacity and does not free a
 * limited client; the eviction order; the penalty box; the connection
 * cap; fail-open when every slot holds connections; the counters. No
 * sleeps: time is an argument. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "ratelimit.h"

static policy_rl_key_t key_n(uint32_t n)
{
    policy_rl_addr_t a = { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff } };
    memcpy(a.b + 12, &n, 4);
    policy_rl_key_t k;
    policy_rl_key_of(&a, &k);
    return k;
}

static ratelimit_t *table(size_t capacity)
{
    ratelimit_t *t;
    cr_assert_eq(ratelimit_new(&t, capacity), 0);
    return t;
}

static policy_rl_result_t take(ratelimit_t *t, uint32_t n, const policy_rl_limit_t *l, int64_t now)
{
    policy_rl_result_t r;
    policy_rl_key_t k = key_n(n);
    ratelimit_take(t, &k, 0, l, 1, now, &r);
    return r;
}

Test(ratelimit, create_bounds)
{
    ratelimit_t *t;
    cr_assert_eq(ratelimit_new(&t, 0), -EINVAL);
    cr_assert_eq(ratelimit_new(&t, RATELIMIT_WINDOW - 1), -EINVAL);
    cr_assert_eq(ratelimit_new(&t, (size_t)RATELIMIT_MAX_CAPACITY + 1), -EINVAL);
    t = table(4096);
    cr_assert_eq(ratelimit_capacity(t), 4096);
    cr_assert_geq(ratelimit_bytes(t), 4096 * 64);
    cr_assert_lt(ratelimit_bytes(t), 4096 * 64 + 256 * 64 + 4096);
    ratelimit_free(t);
    t = table(1000); /* 32 stripes of 31 */
    cr_assert_leq(ratelimit_capacity(t), 1000);
    cr_assert_geq(ratelimit_capacity(t), 1000 - 31);
    ratelimit_free(t);
    ratelimit_free(NULL);
}

Test(ratelimit, take_charge_refill)
{
    ratelimit_t *t = table(64);
    policy_rl_limit_t l = { .rate_milli = 2000, .burst = 4 };
    policy_rl_key_t k = key_n(7);
    policy_rl_result_t r;
    for (int i = 0; i < 4; i++) {
        ratelimit_take(t, &k, 0, &l, 1, 1000, &r);
        cr_assert(r.admitted);
        cr_assert_eq(r.remaining, (uint32_t)(3 - i));
    }
    ratelimit_take(t, &k, 0, &l, 1, 1000, &r);
    cr_assert_not(r.admitted);
    cr_assert_eq(r.retry_after_s, 1);
    /* Another scope (rule) is another bucket. */
    ratelimit_take(t, &k, 1, &l, 1, 1000, &r);
    cr_assert(r.admitted);
    cr_assert_eq(r.remaining, 3);
    /* 500 ms: one token; a miss charges 9 more, down to the floor -9. */
    ratelimit_take(t, &k, 0, &l, 1, 1500, &r);
    cr_assert(r.admitted);
    ratelimit_charge(t, &k, 0, &l, 9, 1500, &r);
    cr_assert(r.admitted);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.reset_s, 5, "10 tokens short at 2 r/s");
    ratelimit_take(t, &k, 0, &l, 1, 6499, &r);
    cr_assert_not(r.admitted);
    ratelimit_take(t, &k, 0, &l, 1, 6500, &r);
    cr_assert(r.admitted);
    ratelimit_charge(t, &k, 0, &l, 1, 6500, NULL);
    ratelimit_stats_t s;
    ratelimit_stats(t, &s);
    cr_assert_eq(s.limited, 2);
    cr_assert_eq(s.entries, 2);
    cr_assert_eq(s.evictions, 0);
    cr_assert_eq(s.untracked, 0);
    ratelimit_free(t);
}

#define THREADS 4
#define BURST 2000

typedef struct {
    ratelimit_t *t;
    atomic_int admitted;
    pthread_barrier_t go;
} shared_t;

static void *hammer(void *arg)
{
    shared_t *sh = arg;
    policy_rl_limit_t l = { .rate_milli = 1000, .burst = BURST };
    policy_rl_key_t k = key_n(42);
    pthread_barrier_wait(&sh->go);
    for (int i = 0; i < BURST; i++) {
        policy_rl_result_t r;
        ratelimit_take(sh->t, &k, 3, &l, 1, 5000, &r);
        if (r.admitted)
            atomic_fetch_add(&sh->admitted, 1);
        /* Other clients on the way, so the stripes see traffic too. */
        take(sh->t, (uint32_t)(1000 + i), &l, 5000);
    }
    return NULL;
}

Test(ratelimit, one_bucket_across_threads)
{
    shared_t sh = { .t = table(65536) };
    pthread_t th[THREADS];
    pthread_barrier_init(&sh.go, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, &sh), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&sh.go);
    cr_assert_eq(atomic_load(&sh.admitted), BURST, "the burst once, not once per thread");
    ratelimit_stats_t s;
    ratelimit_stats(sh.t, &s);
    cr_assert_eq(s.limited, (THREADS - 1) * BURST);
    cr_assert_eq(s.entries, 1 + BURST);
    ratelimit_free(sh.t);
}

Test(ratelimit, million_keys_bounded_and_limited_client_kept)
{
    ratelimit_t *t = table(4096);
    size_t bytes = ratelimit_bytes(t);
    policy_rl_limit_t l = { .rate_milli = 1000, .burst = 5 };
    for (int i = 0; i < 5; i++)
        cr_assert(take(t, 0, &l, 1000).admitted);
    cr_assert_not(take(t, 0, &l, 1000).admitted);
    ratelimit_stats_t s;
    for (uint32_t i = 1; i <= 1000000; i++) {
        cr_assert(take(t, i, &l, 1000 + i / 1000).admitted);
        if (i % 65536 == 0) {
            ratelimit_stats(t, &s);
            cr_assert_leq(s.entries, s.capacity);
        }
    }
    ratelimit_stats(t, &s);
    cr_assert_eq(s.entries, 4096);
    cr_assert_eq(s.evictions, 1000001 - 4096);
    cr_assert_eq(s.evicted_limited, 0);
    cr_assert_eq(s.untracked, 0);
    cr_assert_eq(ratelimit_bytes(t), bytes);
    /* A second passed: one token earned, spent now. */
    policy_rl_result_t r = take(t, 0, &l, 2000);
    cr_assert(r.admitted);
    cr_assert_eq(r.remaining, 0, "still its own bucket, not a fresh one");
    cr_assert_not(take(t, 0, &l, 2000).admitted);
    ratelimit_free(t);
}

/* A table of one stripe, so that every key shares the one window. */
Test(ratelimit, eviction_order)
{
    ratelimit_t *t = table(RATELIMIT_WINDOW);
    policy_rl_limit_t l = { .rate_milli = 1000, .burst = 4, .penalty_after_ms = 1, .penalty_ms = 60000 };
    policy_rl_key_t kc = key_n(100);
    cr_assert_eq(ratelimit_conn_open(t, &kc, 10, 0), RATELIMIT_CONN_COUNTED); /* 1: pinned */
    for (int i = 0; i < 6; i++)
        take(t, 101, &l, 0); /* 2: penalized (refused at 0, then at 1) */
    take(t, 101, &l, 1);
    policy_rl_key_t kd = key_n(102);
    take(t, 102, &l, 0);
    ratelimit_charge(t, &kd, 0, &l, 100, 0, NULL); /* 3: in debt for 100 s: limited */
    take(t, 103, &l, 0);                             /* 4: idle by 10 s */
    for (uint32_t n = 200; n < 212; n++)
        take(t, n, &l, 9900); /* 5-16: active, three tokens left, 3.1 at 10 s */
    ratelimit_stats_t s;
    ratelimit_stats(t, &s);
    cr_assert_eq(s.entries, 16);
    cr_assert_eq(s.penalized, 1);

    /* The idle one goes first: the actives keep their buckets. */
    take(t, 300, &l, 10000);
    for (uint32_t n = 200; n < 212; n++)
        cr_assert_eq(take(t, n, &l, 10000).remaining, 2, "key %u", n);
    /* Then the actives, for newcomers; never the limited or boxed one. */
    for (uint32_t n = 400; n < 2000; n++)
        cr_assert(take(t, n, &l, 10000).admitted);
    ratelimit_stats(t, &s);
    cr_assert_eq(s.evicted_limited, 0);
    cr_assert(take(t, 101, &l, 10000).penalized);
    cr_assert_not(take(t, 102, &l, 10000).admitted, "still in debt");

    /* All limited: the limited one goes before the boxed one. */
    for (uint32_t n = 3000; n < 3100; n++)
        for (int i = 0; i < 5; i++)
            take(t, n, &l, 10000);
    ratelimit_stats(t, &s);
    cr_assert_gt(s.evicted_limited, 0);
    cr_assert(take(t, 101, &l, 10000).penalized, "the box outlives mere limits");
    cr_assert_eq(ratelimit_conn_open(t, &kc, 1, 10000), RATELIMIT_CONN_REFUSED, "the pinned count survives");
    ratelimit_free(t);
}

Test(ratelimit, penalty_box_timing)
{
    ratelimit_t *t = table(64);
    policy_rl_limit_t l = { .rate_milli = 1000, .burst = 2, .penalty_after_ms = 3000, .penalty_ms = 10000 };
    int64_t now = 0;
    for (; now < 3200; now += 100)
        cr_assert_not(take(t, 9, &l, now).penalized, "t=%lld", (long long)now);
    policy_rl_key_t k9 = key_n(9), k10 = key_n(10);
    cr_assert_not(ratelimit_boxed(t, &k9, 0, now));
    policy_rl_result_t r = take(t, 9, &l, now);
    cr_assert(r.penalized);
    cr_assert_eq(r.retry_after_s, 10);
    cr_assert(ratelimit_boxed(t, &k9, 0, now));
    cr_assert(ratelimit_boxed(t, &k9, 0, 13199));
    cr_assert_not(ratelimit_boxed(t, &k9, 0, 13200));
    cr_assert_not(ratelimit_boxed(t, &k9, 1, now), "another rule's bucket");
    cr_assert_not(ratelimit_boxed(t, &k10, 0, now), "unknown: no entry is made");
    cr_assert(take(t, 9, &l, 13199).penalized);
    cr_assert(take(t, 9, &l, 13200).admitted);
    /* Another client, another rule: not boxed. */
    cr_assert(take(t, 10, &l, 5000).admitted);
    ratelimit_stats_t s;
    ratelimit_stats(t, &s);
    cr_assert_eq(s.penalized, 1);
    cr_assert_eq(s.entries, 2);
    ratelimit_free(t);
}

Test(ratelimit, connection_cap)
{
    ratelimit_t *t = table(64);
    policy_rl_key_t a = key_n(1), b = key_n(2);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ratelimit_conn_open(t, &a, 3, 0), RATELIMIT_CONN_COUNTED);
    cr_assert_eq(ratelimit_conn_open(t, &a, 3, 0), RATELIMIT_CONN_REFUSED);
    cr_assert_eq(ratelimit_conn_open(t, &b, 3, 0), RATELIMIT_CONN_COUNTED, "per client");
    ratelimit_conn_close(t, &a);
    cr_assert_eq(ratelimit_conn_open(t, &a, 3, 0), RATELIMIT_CONN_COUNTED);
    cr_assert_eq(ratelimit_conn_open(t, &a, 3, 0), RATELIMIT_CONN_REFUSED);
    for (int i = 0; i < 5; i++)
        ratelimit_conn_close(t, &a); /* more closes than opens stop at zero */
    policy_rl_key_t c = key_n(3);
    ratelimit_conn_close(t, &c); /* unknown: nothing */
    cr_assert_eq(ratelimit_conn_open(t, &a, 3, 0), RATELIMIT_CONN_COUNTED);
    /* The request bucket of a client is apart from its connections. */
    policy_rl_limit_t l = { .rate_milli = 1000, .burst = 1 };
    cr_assert(take(t, 1, &l, 0).admitted);
    ratelimit_stats_t s;
    ratelimit_stats(t, &s);
    cr_assert_eq(s.conns_refused, 2);
    cr_assert_eq(s.entries, 3);
    ratelimit_free(t);
}

#define CONN_THREADS 4
typedef struct {
    ratelimit_t *t;
    atomic_int counted, refused;
    pthread_barrier_t go;
} conns_t;

static void *opener(void *arg)
{
    conns_t *c = arg;
    policy_rl_key_t k = key_n(77);
    pthread_barrier_wait(&c->go);
    for (int i = 0; i < 100; i++) {
        ratelimit_conn_t rc = ratelimit_conn_open(c->t, &k, 250, 0);
        atomic_fetch_add(rc == RATELIMIT_CONN_COUNTED ? &c->counted : &c->refused, 1);
    }
    return NULL;
}

Test(ratelimit, connection_cap_across_threads)
{
    conns_t c = { .t = table(64) };
    pthread_t th[CONN_THREADS];
    pthread_barrier_init(&c.go, NULL, CONN_THREADS);
    for (int i = 0; i < CONN_THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, opener, &c), 0);
    for (int i = 0; i < CONN_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&c.go);
    cr_assert_eq(atomic_load(&c.counted), 250);
    cr_assert_eq(atomic_load(&c.refused), 150);
    ratelimit_free(c.t);
}

Test(ratelimit, fail_open_when_every_slot_holds_connections)
{
    ratelimit_t *t = table(RATELIMIT_WINDOW);
    for (uint32_t n = 0; n < RATELIMIT_WINDOW; n++) {
        policy_rl_key_t k = key_n(n);
        cr_assert_eq(ratelimit_conn_open(t, &k, 1, 0), RATELIMIT_CONN_COUNTED);
    }
    policy_rl_limit_t l = { .rate_milli = 1000, .burst = 1 };
    for (int i = 0; i < 3; i++) {
        policy_rl_result_t r = take(t, 500, &l, 0);
        cr_assert(r.admitted, "no entry: admitted as by a fresh bucket");
    }
    policy_rl_key_t k = key_n(500);
    cr_assert_eq(ratelimit_conn_open(t, &k, 1, 0), RATELIMIT_CONN_UNCOUNTED);
    ratelimit_stats_t s;
    ratelimit_stats(t, &s);
    cr_assert_eq(s.untracked, 4);
    cr_assert_eq(s.limited, 0);
    /* One connection closes: its slot is idle, a newcomer gets it. */
    policy_rl_key_t k0 = key_n(0);
    ratelimit_conn_close(t, &k0);
    cr_assert(take(t, 500, &l, 0).admitted);
    cr_assert_not(take(t, 500, &l, 0).admitted);
    ratelimit_stats(t, &s);
    cr_assert_eq(s.untracked, 4);
    cr_assert_eq(s.evictions, 1);
    cr_assert_eq(s.limited, 1);
    ratelimit_free(t);
}
