/* job_target: where each attempt of a fetch job goes, and what its
 * outcome says about the target.
 *
 * The order, for one request: the usable targets of the primary pool (the
 * shields, or the origins), then the usable fallback origins, then, when
 * everything usable has failed or is ejected, the ejected ones anyway in
 * ranking order (panic mode: an ejection is a guess from past failures,
 * and trying beats answering 502 for certain). Phase p covers pool p & 1;
 * phases 2 and 3 ignore health. */
#include "job.h"

#include "log.h"

enum { PHASE_PRIMARY, PHASE_FALLBACK, PHASE_PANIC_PRIMARY, PHASE_PANIC_FALLBACK, PHASE_COUNT };

static pool_t *phase_pool(const fjob_t *j, int phase)
{
    return phase & 1 ? j->conf->fallback : j->conf->primary;
}

static uint64_t now_ms(const fjob_t *j)
{
    return uv_now(worker_loop(j->w));
}

/* The next target from j's current phase on: its phase and index, or -1. */
static int find(const fjob_t *j, int *phase_out)
{
    uint64_t now = now_ms(j);
    for (int ph = j->phase; ph < PHASE_COUNT; ph++) {
        const pool_t *pool = phase_pool(j, ph);
        if (!pool)
            continue;
        uint32_t tried = j->tried[ph & 1];
        int t = ph < PHASE_PANIC_PRIMARY ? pool_next(pool, j->hash, tried, now) : pool_next_any(pool, j->hash, tried);
        if (t >= 0) {
            *phase_out = ph;
            return t;
        }
    }
    return -1;
}

bool job_target_next(fjob_t *j)
{
    int ph;
    int t = find(j, &ph);
    if (t < 0)
        return false;
    j->phase = ph;
    j->pool = phase_pool(j, ph);
    j->target = t;
    j->tried[ph & 1] |= 1u << t;
    return true;
}

bool job_target_left(const fjob_t *j)
{
    int ph;
    return find(j, &ph) >= 0;
}

void job_target_reset(fjob_t *j)
{
    j->phase = PHASE_PRIMARY;
    j->tried[0] = j->tried[1] = 0;
}

int job_target_tries(const fjob_t *j)
{
    return __builtin_popcount(j->tried[0]) + __builtin_popcount(j->tried[1]);
}

void job_target_report(fjob_t *j, pool_result_t r, const char *why)
{
    pool_change_t ch = pool_report(j->pool, (size_t)j->target, r, now_ms(j));
    if (ch == POOL_CHANGE_DOWN)
        log_warn("%s is down (%s)%s", pool_name(j->pool, (size_t)j->target), why,
                 pool_size(j->pool) == 1 && !j->conf->fallback ? "; it is the only upstream, so it is still used" : "");
    else if (ch == POOL_CHANGE_UP)
        log_warn("%s is back", pool_name(j->pool, (size_t)j->target));
}

/* An HTTP answer is the target working; an origin's 502/503/504 counts
 * only where the operator opted in, and a shield's never: it relays its
 * origin's status. */
bool job_target_answer_fails(const fjob_t *j, int status)
{
    bool shield = j->conf->primary_shields && j->pool == j->conf->primary;
    return j->conf->cfg.eject_on_5xx && !shield && (status == 502 || status == 503 || status == 504);
}
