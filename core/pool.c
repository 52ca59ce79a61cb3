/* pool: rendezvous ranking of upstream targets and their shared health.
 *
 * The request path (pool_next, pool_usable, pool_ejected, pool_stats) only
 * loads atomics: every worker thread consults the pool on every miss, and
 * a mutex there would serialise them. Reports change several fields at once
 * (failure counter, next backoff, ejection deadline), so they take the
 * pool's mutex; they come once per upstream request, which already costs a
 * network round trip. A reader may see a deadline one report old, which
 * at worst sends one more request to a target that has just failed.
 *
 * A target's whole health is "ejected until T": T = 0 (or in the past)
 * means usable, so readers need one load. Probation is not a separate
 * state: after the backoff the failure counter is still at the threshold,
 * so the next failure re-ejects at once while any success resets it.
 *
 * A pool built with never_eject (a node's only upstream) keeps the same
 * counters but never sets the deadline: refusing to try the one server
 * there is would turn a brief fault into an outage of the whole site. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define POOL_DEFAULT_EJECT_AFTER 3
#define POOL_DEFAULT_BACKOFF_MS 5000
#define POOL_DEFAULT_BACKOFF_MAX_MS 60000

typedef struct pool_target {
    const char *name;              /* into the pool's allocation */
    const char *base;              /* into the pool's allocation */
    uint8_t seed[16];              /* from the name, so ranking follows names, not positions */
    _Atomic uint64_t ejected_until; /* ms; 0 = never ejected since the last success */
    /* Written under the pool mutex only. */
    unsigned failures;             /* consecutive, saturating at eject_after */
    _Atomic bool down;             /* reached eject_after, no success since (reports, stats) */
    uint64_t next_backoff;         /* length of the next ejection */
    /* Written under the mutex, read lock-free by pool_stats. */
    _Atomic uint64_t requests_ok, requests_failed, checks_ok, checks_failed, ejections;
} pool_target_t;

struct pool {
    size_t n;
    unsigned eject_after;
    uint64_t backoff_ms, backoff_max_ms;
    bool never_eject;
    pthread_mutex_t lock;          /* serialises reports; never taken by readers */
    pool_target_t t[];             /* n entries, then the copied strings */
};

/* Fixed and public: seeds must be the same on every node and across
 * restarts, or edges would disagree on which shield holds an object. */
static const uint8_t pool_seed_key[16] = { 'c', 'd', 'n', '-', 'p', 'o', 'o', 'l',
                                           '-', 's', 'e', 'e', 'd', '-', 'v', '1' };

/* Length of s if it is 1..max-1 bytes, else 0. */
static size_t pool_checked_len(const char *s, size_t max)
{
    if (!s)
        return 0;
    size_t len = strnlen(s, max);
    return len == max ? 0 : len;
}

pool_t *pool_new(const char *const *names, const char *const *bases, size_t n, const pool_opts_t *opts)
{
    if (!names || !bases || n < 1 || n > POOL_MAX)
        return NULL;
    size_t name_len[POOL_MAX], base_len[POOL_MAX], strings = 0;
    for (size_t i = 0; i < n; i++) {
        name_len[i] = pool_checked_len(names[i], POOL_NAME_MAX);
        base_len[i] = pool_checked_len(bases[i], POOL_BASE_MAX);
        if (!name_len[i] || !base_len[i] || bases[i][base_len[i] - 1] == '/')
            return NULL;
        /* Equal names would get equal seeds: the later one would never
         * rank first for any key, which is a configuration mistake. */
        for (size_t j = 0; j < i; j++)
            if (name_len[j] == name_len[i] && !memcmp(names[j], names[i], name_len[i]))
                return NULL;
        strings += name_len[i] + 1 + base_len[i] + 1;
    }

    pool_t *p = malloc(sizeof *p + n * sizeof p->t[0] + strings);
    if (!p)
        return NULL;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return NULL;
    }
    p->n = n;
    p->eject_after = opts && opts->eject_after ? opts->eject_after : POOL_DEFAULT_EJECT_AFTER;
    p->backoff_ms = opts && opts->backoff_ms ? opts->backoff_ms : POOL_DEFAULT_BACKOFF_MS;
    p->backoff_max_ms = opts && opts->backoff_max_ms ? opts->backoff_max_ms : POOL_DEFAULT_BACKOFF_MAX_MS;
    if (p->backoff_max_ms < p->backoff_ms)
        p->backoff_max_ms = p->backoff_ms;
    p->never_eject = opts && opts->never_eject;

    char *s = (char *)&p->t[n];
    for (size_t i = 0; i < n; i++) {
        pool_target_t *t = &p->t[i];
        memcpy(s, names[i], name_len[i] + 1);
        t->name = s;
        s += name_len[i] + 1;
        memcpy(s, bases[i], base_len[i] + 1);
        t->base = s;
        s += base_len[i] + 1;
        hash_sip128(pool_seed_key, t->name, name_len[i], t->seed);
        atomic_init(&t->ejected_until, 0);
        t->failures = 0;
        atomic_init(&t->down, false);
        t->next_backoff = p->backoff_ms;
        atomic_init(&t->requests_ok, 0);
        atomic_init(&t->requests_failed, 0);
        atomic_init(&t->checks_ok, 0);
        atomic_init(&t->checks_failed, 0);
        atomic_init(&t->ejections, 0);
    }
    return p;
}

void pool_free(pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p);
}

size_t pool_size(const pool_t *p)
{
    return p->n;
}

const char *pool_name(const pool_t *p, size_t i)
{
    return i < p->n ? p->t[i].name : NULL;
}

const char *pool_base(const pool_t *p, size_t i)
{
    return i < p->n ? p->t[i].base : NULL;
}

static uint64_t pool_score(const pool_target_t *t, const uint8_t key[16])
{
    return hash_sip64(t->seed, key, 16);
}

/* a ranks before b: higher score, then lower index so equal scores still
 * give every node the same order. */
static bool pool_before(uint64_t sa, unsigned a, uint64_t sb, unsigned b)
{
    return sa > sb || (sa == sb && a < b);
}

void pool_rank(const pool_t *p, const uint8_t key[16], unsigned order[])
{
    uint64_t score[POOL_MAX];
    /* Insertion sort: n <= 32, and it keeps score and order in step. */
    for (unsigned i = 0; i < p->n; i++) {
        uint64_t s = pool_score(&p->t[i], key);
        unsigned j = i;
        for (; j > 0 && pool_before(s, i, score[j - 1], order[j - 1]); j--) {
            score[j] = score[j - 1];
            order[j] = order[j - 1];
        }
        score[j] = s;
        order[j] = i;
    }
}

static bool pool_target_usable(const pool_target_t *t, uint64_t now_ms)
{
    return now_ms >= atomic_load_explicit(&t->ejected_until, memory_order_acquire);
}

/* The best-ranked target not in tried; any: health aside (panic). */
static int pool_pick(const pool_t *p, const uint8_t key[16], uint32_t tried, uint64_t now_ms, bool any)
{
    int best = -1;
    uint64_t best_score = 0;
    for (unsigned i = 0; i < p->n; i++) {
        if (tried & (UINT32_C(1) << i) || (!any && !pool_target_usable(&p->t[i], now_ms)))
            continue;
        uint64_t s = pool_score(&p->t[i], key);
        if (best < 0 || pool_before(s, i, best_score, (unsigned)best)) {
            best = (int)i;
            best_score = s;
        }
    }
    return best;
}

int pool_next(const pool_t *p, const uint8_t key[16], uint32_t tried, uint64_t now_ms)
{
    return pool_pick(p, key, tried, now_ms, false);
}

int pool_next_any(const pool_t *p, const uint8_t key[16], uint32_t tried)
{
    return pool_pick(p, key, tried, 0, true);
}

bool pool_usable(const pool_t *p, size_t i, uint64_t now_ms)
{
    return i < p->n && pool_target_usable(&p->t[i], now_ms);
}

bool pool_ejected(const pool_t *p, size_t i, uint64_t now_ms)
{
    return i < p->n && !pool_target_usable(&p->t[i], now_ms);
}

static void pool_count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Apply one outcome to t's health. Called with the pool mutex held. */
static pool_change_t pool_apply(pool_t *p, pool_target_t *t, bool ok, uint64_t now_ms)
{
    if (ok) {
        /* Any success is proof the target works, even one reported while
         * it is ejected (a request sent just before, or an active check). */
        bool was_down = atomic_exchange(&t->down, false);
        t->failures = 0;
        t->next_backoff = p->backoff_ms;
        atomic_store_explicit(&t->ejected_until, 0, memory_order_release);
        return was_down ? POOL_CHANGE_UP : POOL_CHANGE_NONE;
    }
    /* Failures of requests sent before the ejection must not eject again:
     * each straggler would double the backoff. */
    if (now_ms < atomic_load_explicit(&t->ejected_until, memory_order_relaxed))
        return POOL_CHANGE_NONE;
    if (t->failures < p->eject_after)
        t->failures++;
    if (t->failures < p->eject_after)
        return POOL_CHANGE_NONE;
    bool was_down = atomic_exchange(&t->down, true);
    if (p->never_eject)
        return was_down ? POOL_CHANGE_NONE : POOL_CHANGE_DOWN;
    uint64_t until = now_ms + t->next_backoff;
    if (until < now_ms)
        until = UINT64_MAX;
    atomic_store_explicit(&t->ejected_until, until, memory_order_release);
    t->next_backoff = t->next_backoff > p->backoff_max_ms / 2 ? p->backoff_max_ms : t->next_backoff * 2;
    pool_count(&t->ejections);
    return was_down ? POOL_CHANGE_NONE : POOL_CHANGE_DOWN;
}

pool_change_t pool_report(pool_t *p, size_t i, pool_result_t r, uint64_t now_ms)
{
    if (i >= p->n)
        return POOL_CHANGE_NONE;
    pool_target_t *t = &p->t[i];
    pthread_mutex_lock(&p->lock);
    pool_count(r == POOL_OK ? &t->requests_ok : &t->requests_failed);
    pool_change_t c = pool_apply(p, t, r == POOL_OK, now_ms);
    pthread_mutex_unlock(&p->lock);
    return c;
}

pool_change_t pool_report_check(pool_t *p, size_t i, bool ok, uint64_t now_ms)
{
    if (i >= p->n)
        return POOL_CHANGE_NONE;
    pool_target_t *t = &p->t[i];
    pthread_mutex_lock(&p->lock);
    pool_count(ok ? &t->checks_ok : &t->checks_failed);
    pool_change_t c = pool_apply(p, t, ok, now_ms);
    pthread_mutex_unlock(&p->lock);
    return c;
}

void pool_stats(const pool_t *p, size_t i, uint64_t now_ms, pool_target_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (i >= p->n)
        return;
    const pool_target_t *t = &p->t[i];
    out->requests_ok = atomic_load_explicit(&t->requests_ok, memory_order_relaxed);
    out->requests_failed = atomic_load_explicit(&t->requests_failed, memory_order_relaxed);
    out->checks_ok = atomic_load_explicit(&t->checks_ok, memory_order_relaxed);
    out->checks_failed = atomic_load_explicit(&t->checks_failed, memory_order_relaxed);
    out->ejections = atomic_load_explicit(&t->ejections, memory_order_relaxed);
    out->ejected = !pool_target_usable(t, now_ms);
    out->down = atomic_load_explicit(&t->down, memory_order_relaxed);
}
