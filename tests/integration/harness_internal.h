/* harness_internal: what harness.c and harness_http.c share. Tests
 * include harness.h only. */
#ifndef CDN_TEST_HARNESS_INTERNAL_H
#define CDN_TEST_HARNESS_INTERNAL_H

#include "harness.h"

/* Record why the calling thread's last harness call failed (th_last_error). */
void th__set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report (with their log tails) spawned processes that died unasked;
 * a no-op off the test's main thread. */
void th__check_procs(void);

#endif
