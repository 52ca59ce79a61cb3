/* The request and fetch-job state machines (core/preq.c, core/job.c): the
 * transition tables every state change is checked against. Every state is
 * reachable from the start, every state can end, the end states are
 * final, and the transitions that would break a promise are not there
 * (no retry once a head reached the waiters, no second head). */
#include <criterion/criterion.h>
#include <string.h>

#include "job.h"
#include "preq.h"

/* States reachable from start under legal(from, to), as a bit set. */
static unsigned reach(unsigned start, unsigned n, bool (*legal)(unsigned, unsigned))
{
    unsigned seen = 1u << start, grew = 1;
    while (grew) {
        grew = 0;
        for (unsigned a = 0; a < n; a++)
            for (unsigned b = 0; b < n; b++)
                if ((seen & (1u << a)) && !(seen & (1u << b)) && legal(a, b)) {
                    seen |= 1u << b;
                    grew = 1;
                }
    }
    return seen;
}

static bool job_legal(unsigned a, unsigned b)
{
    return job_state_legal((job_state_t)a, (job_state_t)b);
}

static bool preq_legal(unsigned a, unsigned b)
{
    return preq_state_legal((preq_state_t)a, (preq_state_t)b);
}

Test(states, every_job_state_is_reachable_and_can_end)
{
    unsigned all = (1u << JOB_STATE_COUNT) - 1;
    cr_assert_eq(reach(JOB_CONNECT, JOB_STATE_COUNT, job_legal), all);
    unsigned ends = 1u << JOB_DONE | 1u << JOB_CLOSED | 1u << JOB_COMMIT;
    for (unsigned s = 0; s < JOB_STATE_COUNT; s++)
        cr_assert(reach(s, JOB_STATE_COUNT, job_legal) & ends, "%s cannot end", job_state_name(s));
    for (unsigned s = 0; s < JOB_STATE_COUNT; s++) {
        cr_assert_not(job_state_legal(JOB_DONE, s));
        cr_assert_not(job_state_legal(JOB_CLOSED, s));
    }
}

Test(states, a_job_never_retries_once_a_head_was_published)
{
    const job_state_t published[] = { JOB_STREAM_STORE, JOB_STREAM_PASS, JOB_REVALIDATED, JOB_HELD_ENDED,
                                      JOB_COMMIT };
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++) {
        unsigned r = reach(published[i], JOB_STATE_COUNT, job_legal);
        cr_assert_not(r & (1u << JOB_CONNECT), "%s can reach connect", job_state_name(published[i]));
        cr_assert_not(r & (1u << JOB_HEAD), "%s can reach a second head", job_state_name(published[i]));
    }
    /* and the ways back to the next target are the intended ones */
    cr_assert(job_state_legal(JOB_HEAD, JOB_CONNECT));
    cr_assert(job_state_legal(JOB_RETRY, JOB_CONNECT));
    cr_assert(job_state_legal(JOB_RESTART, JOB_CONNECT));
    cr_assert_not(job_state_legal(JOB_HELD, JOB_CONNECT));
    /* a stored body only ever leaves through the store, or stops storing */
    cr_assert(job_state_legal(JOB_STREAM_STORE, JOB_COMMIT));
    cr_assert_not(job_state_legal(JOB_STREAM_PASS, JOB_COMMIT));
    cr_assert_not(job_state_legal(JOB_STREAM_PASS, JOB_STREAM_STORE));
}

Test(states, every_request_state_is_reachable_and_ends)
{
    unsigned all = (1u << PREQ_STATE_COUNT) - 1;
    cr_assert_eq(reach(PREQ_RECV, PREQ_STATE_COUNT, preq_legal), all);
    for (unsigned s = 0; s < PREQ_STATE_COUNT; s++) {
        cr_assert(s == PREQ_DONE || preq_state_legal(s, PREQ_DONE), "%s cannot end", preq_state_name(s));
        cr_assert_not(preq_state_legal(PREQ_DONE, s));
    }
    /* one response per request: nothing goes back from delivering */
    unsigned r = reach(PREQ_DELIVER, PREQ_STATE_COUNT, preq_legal);
    cr_assert_eq(r, 1u << PREQ_DELIVER | 1u << PREQ_DONE);
    /* the store is read only after admission */
    cr_assert_not(preq_state_legal(PREQ_RECV, PREQ_LOOKUP));
    cr_assert(preq_state_legal(PREQ_LIMIT, PREQ_LOOKUP));
    /* an image variant is made only from a fetch's answer, never delivered straight */
    cr_assert(preq_state_legal(PREQ_LOOKUP, PREQ_DERIVE));
    cr_assert(preq_state_legal(PREQ_DERIVE, PREQ_FETCH));
    cr_assert_not(preq_state_legal(PREQ_DERIVE, PREQ_DELIVER));
}

Test(states, names_are_distinct)
{
    for (unsigned a = 0; a < JOB_STATE_COUNT; a++)
        for (unsigned b = a + 1; b < JOB_STATE_COUNT; b++)
            cr_assert_str_neq(job_state_name(a), job_state_name(b));
    for (unsigned a = 0; a < PREQ_STATE_COUNT; a++)
        for (unsigned b = a + 1; b < PREQ_STATE_COUNT; b++)
            cr_assert_str_neq(preq_state_name(a), preq_state_name(b));
    cr_assert_str_eq(job_state_name(JOB_STATE_COUNT), "?");
    cr_assert_str_eq(preq_state_name(PREQ_STATE_COUNT), "?");
}
