/* Helpers shared by the policy_rules unit tests. */
#ifndef CDN_TEST_RULES_UTIL_H
#define CDN_TEST_RULES_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h" /* the [rule] parser fills the rules under test */
#include "policy_rules.h"

#define T0 INT64_C(784111777) /* Sun, 06 Nov 1994 08:49:37 GMT */
#define D_T0 "Sun, 06 Nov 1994 08:49:37 GMT"
#define D_T0_M10000 "Sun, 06 Nov 1994 06:02:57 GMT" /* T0 - 10000 */

static char err[512];

static inline policy_rule_t rule(const char *pattern)
{
    policy_rule_t r;
    policy_rule_defaults(&r);
    cr_assert_eq(config_rule_parse_pattern(&r, pattern, err, sizeof err), 0, "%s: %s", pattern, err);
    return r;
}

static inline void set(policy_rule_t *r, const char *k, const char *v)
{
    cr_assert_eq(config_rule_set(r, k, v, err, sizeof err), 0, "%s = %s: %s", k, v, err);
}

#endif
