/* ratelimit: a fixed array of entries cut into stripes, one mutex each
 * (see include/ratelimit.h for the design and the eviction guarantee).
 *
 * An entry's slot is found by open addressing inside its stripe: the hash
 * picks a start, and the key may sit in any of the RATELIMIT_WINDOW slots
 * from there (wrapping inside the stripe). Entries are replaced, never
 * removed, so a window fills from its start without holes: a lookup stops
 * at the first empty slot, and that slot is where a newcomer goes. The
 * bucket arithmetic is policy_ratelimit's; this file only finds the
 * bucket, under the stripe's lock. */
#include "ratelimit.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "hash.h"

#define MAX_STRIPES 256
#define CONN_MAX UINT16_MAX

/* One cache line. The limit of the last call is kept so that eviction can
 * tell how full the bucket is now without the caller's rule. */
typedef struct entry {
    uint8_t key[16];
    uint32_t scope;
    uint16_t conns; /* RATELIMIT_SCOPE_CONN: open connections */
    uint8_t used;
    uint8_t pad_;
    policy_rl_bucket_t b; /* request scopes: the bucket; conn scope: b.updated_ms = last open */
    uint32_t rate_milli, burst;
} entry_t;
_Static_assert(sizeof(entry_t) == 64, "an entry is one cache line");

/* A mutex alone on its cache line: stripes next to each other in the
 * array must not share a line that two workers write. */
typedef struct stripe {
    _Alignas(64) pthread_mutex_t mu;
} stripe_t;

struct ratelimit {
    entry_t *e; /* nstripes x slice */
    stripe_t *s;
    size_t nstripes, slice, window;
    uint8_t seed[16]; /* random: nobody can aim many keys at one window */
    atomic_uint_fast64_t limited, penalized, conns_refused, evictions, evicted_limited, untracked, entries;
};

static void count(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void seed(uint8_t out[16])
{
    if (getrandom(out, 16, GRND_NONBLOCK) == 16)
        return;
    /* No entropy yet (early boot): a clock still varies between nodes. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t a = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30), b = (uint64_t)(uintptr_t)out;
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}

int ratelimit_new(ratelimit_t **out, size_t capacity)
{
    *out = NULL;
    if (capacity < RATELIMIT_WINDOW || capacity > RATELIMIT_MAX_CAPACITY)
        return -EINVAL;
    ratelimit_t *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    /* As many stripes as keep a whole window in each. */
    t->nstripes = MAX_STRIPES;
    while (t->nstripes > 1 && capacity / t->nstripes < RATELIMIT_WINDOW)
        t->nstripes /= 2;
    t->slice = capacity / t->nstripes;
    t->window = RATELIMIT_WINDOW;
    t->e = aligned_alloc(64, t->nstripes * t->slice * sizeof *t->e);
    t->s = aligned_alloc(64, t->nstripes * sizeof *t->s);
    if (!t->e || !t->s) {
        free(t->e);
        free(t->s);
        free(t);
        return -ENOMEM;
    }
    /* Touch it all now: the memory is committed at start, not under attack. */
    memset(t->e, 0, t->nstripes * t->slice * sizeof *t->e);
    for (size_t i = 0; i < t->nstripes; i++)
        pthread_mutex_init(&t->s[i].mu, NULL);
    seed(t->seed);
    *out = t;
    return 0;
}

void ratelimit_free(ratelimit_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nstripes; i++)
        pthread_mutex_destroy(&t->s[i].mu);
    free(t->e);
    free(t->s);
    free(t);
}

size_t ratelimit_capacity(const ratelimit_t *t)
{
    return t->nstripes * t->slice;
}

size_t ratelimit_bytes(const ratelimit_t *t)
{
    return sizeof *t + t->nstripes * sizeof *t->s + ratelimit_capacity(t) * sizeof *t->e;
}

/* How much replacing e would lose: lower class, then lower score, goes
 * first. Returns false for an entry that must stay (open connections). */
static bool rank(const entry_t *e, int64_t now_ms, int *class, int64_t *score)
{
    if (e->scope == RATELIMIT_SCOPE_CONN) {
        *class = POLICY_RL_IDLE;
        *score = e->b.updated_ms;
        return e->conns == 0;
    }
    policy_rl_limit_t lim = { .rate_milli = e->rate_milli, .burst = e->burst };
    *class = (int)policy_rl_state(&e->b, &lim, now_ms);
    if (*class == POLICY_RL_IDLE)
        *score = e->b.updated_ms; /* least recently used */
    else if (*class == POLICY_RL_PENALIZED)
        *score = e->b.penalty_until_ms;
    else
        *score = policy_rl_ms_to_full(&e->b, &lim, now_ms);
    return true;
}

/* Lock the stripe of (key, scope) into *sp and return its entry. When
 * there is none and create is set, take a slot (an empty one, or the
 * cheapest to forget, counted) and set *fresh: the caller initialises it.
 * NULL when there is none and none can be made. The caller unlocks *sp. */
static entry_t *find(ratelimit_t *t, const policy_rl_key_t *key, uint32_t scope, int64_t now_ms, bool create,
                     pthread_mutex_t **sp, bool *fresh)
{
    uint8_t msg[20];
    memcpy(msg, key->b, 16);
    memcpy(msg + 16, &scope, 4);
    uint64_t h = hash_sip64(t->seed, msg, sizeof msg);
    size_t si = (size_t)(h & (t->nstripes - 1));
    entry_t *slice = t->e + si * t->slice;
    size_t start = (size_t)((h >> 32) % t->slice);
    *sp = &t->s[si].mu;
    *fresh = false;
    pthread_mutex_lock(*sp);

    entry_t *victim = NULL;
    int vclass = INT_MAX;
    int64_t vscore = INT64_MAX;
    for (size_t i = 0; i < t->window; i++) {
        entry_t *e = &slice[(start + i) % t->slice];
        if (!e->used) {
            if (!create)
                return NULL;
            count(&t->entries);
            victim = e;
            goto claim;
        }
        if (e->scope == scope && memcmp(e->key, key->b, 16) == 0)
            return e;
        int class;
        int64_t score;
        if (create && rank(e, now_ms, &class, &score) && (class < vclass || (class == vclass && score < vscore))) {
            victim = e;
            vclass = class;
            vscore = score;
        }
    }
    if (!victim)
        return NULL;
    count(&t->evictions);
    if (vclass >= POLICY_RL_LIMITED)
        count(&t->evicted_limited);
claim:
    memset(victim, 0, sizeof *victim);
    memcpy(victim->key, key->b, 16);
    victim->scope = scope;
    victim->used = 1;
    *fresh = true;
    return victim;
}

/* Run the request on the entry of (key, scope), made full if new; a
 * request that finds no entry is decided on a fresh bucket (fail-open). */
static void on_bucket(ratelimit_t *t, const policy_rl_key_t *key, uint32_t scope, const policy_rl_limit_t *lim,
                      uint32_t tokens, bool charge, int64_t now_ms, policy_rl_result_t *res)
{
    pthread_mutex_t *mu;
    bool fresh, boxed = false;
    entry_t *e = find(t, key, scope, now_ms, true, &mu, &fresh);
    policy_rl_bucket_t spare, *b = e ? &e->b : &spare;
    if (!e || fresh)
        policy_rl_init(b, lim, now_ms);
    if (e) {
        e->rate_milli = lim->rate_milli;
        e->burst = lim->burst;
    }
    int64_t until = b->penalty_until_ms;
    if (charge) {
        policy_rl_charge(b, lim, tokens, now_ms, res);
    } else {
        policy_rl_take(b, lim, tokens, now_ms, res);
        boxed = b->penalty_until_ms != until;
    }
    pthread_mutex_unlock(mu);
    if (!e)
        count(&t->untracked);
    if (!charge && !res->admitted)
        count(&t->limited);
    if (boxed)
        count(&t->penalized);
}

void ratelimit_take(ratelimit_t *t, const policy_rl_key_t *key, uint32_t scope, const policy_rl_limit_t *lim,
                    uint32_t cost, int64_t now_ms, policy_rl_result_t *res)
{
    on_bucket(t, key, scope, lim, cost, false, now_ms, res);
}

void ratelimit_charge(ratelimit_t *t, const policy_rl_key_t *key, uint32_t scope, const policy_rl_limit_t *lim,
                      uint32_t extra, int64_t now_ms, policy_rl_result_t *res)
{
    policy_rl_result_t ignored;
    on_bucket(t, key, scope, lim, extra, true, now_ms, res ? res : &ignored);
}

bool ratelimit_boxed(ratelimit_t *t, const policy_rl_key_t *key, uint32_t scope, int64_t now_ms)
{
    pthread_mutex_t *mu;
    bool fresh;
    entry_t *e = find(t, key, scope, now_ms, false, &mu, &fresh);
    bool boxed = e && e->scope != RATELIMIT_SCOPE_CONN && e->b.penalty_until_ms != POLICY_RL_NEVER &&
                 now_ms < e->b.penalty_until_ms;
    pthread_mutex_unlock(mu);
    return boxed;
}

ratelimit_conn_t ratelimit_conn_open(ratelimit_t *t, const policy_rl_key_t *key, uint32_t max, int64_t now_ms)
{
    pthread_mutex_t *mu;
    bool fresh;
    ratelimit_conn_t rc = RATELIMIT_CONN_UNCOUNTED;
    entry_t *e = find(t, key, RATELIMIT_SCOPE_CONN, now_ms, true, &mu, &fresh);
    if (e && (e->conns >= max || e->conns == CONN_MAX)) {
        rc = RATELIMIT_CONN_REFUSED;
    } else if (e) {
        e->conns++;
        e->b.updated_ms = now_ms;
        rc = RATELIMIT_CONN_COUNTED;
    }
    pthread_mutex_unlock(mu);
    if (rc == RATELIMIT_CONN_REFUSED)
        count(&t->conns_refused);
    else if (rc == RATELIMIT_CONN_UNCOUNTED)
        count(&t->untracked);
    return rc;
}

void ratelimit_conn_close(ratelimit_t *t, const policy_rl_key_t *key)
{
    pthread_mutex_t *mu;
    bool fresh;
    entry_t *e = find(t, key, RATELIMIT_SCOPE_CONN, 0, false, &mu, &fresh);
    if (e && e->conns)
        e->conns--;
    pthread_mutex_unlock(mu);
}

void ratelimit_stats(ratelimit_t *t, ratelimit_stats_t *out)
{
    *out = (ratelimit_stats_t){
        .limited = atomic_load_explicit(&t->limited, memory_order_relaxed),
        .penalized = atomic_load_explicit(&t->penalized, memory_order_relaxed),
        .conns_refused = atomic_load_explicit(&t->conns_refused, memory_order_relaxed),
        .evictions = atomic_load_explicit(&t->evictions, memory_order_relaxed),
        .evicted_limited = atomic_load_explicit(&t->evicted_limited, memory_order_relaxed),
        .untracked = atomic_load_explicit(&t->untracked, memory_order_relaxed),
        .entries = atomic_load_explicit(&t->entries, memory_order_relaxed),
        .capacity = ratelimit_capacity(t),
    };
}
