/* A header list built in one call, for unit tests:
 * fields("Name", "value", "Other", "v2", NULL). The caller frees it. */
#ifndef CDN_TEST_FIELDS_H
#define CDN_TEST_FIELDS_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <string.h>

#include "http_fields.h"

static inline http_fields_t fields(const char *n1, ...)
{
    http_fields_t h;
    va_list ap;
    http_fields_init(&h, 0);
    va_start(ap, n1);
    for (const char *n = n1; n; n = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        cr_assert_eq(http_fields_add(&h, n, strlen(n), v, strlen(v)), 0);
    }
    va_end(ap);
    return h;
}

#endif
