/* policy_date: HTTP-date parsing and formatting (RFC 9110 section 5.6.7).
 * Pure functions, no I/O, no locale, no timezone state. */
#ifndef CDN_POLICY_DATE_H
#define CDN_POLICY_DATE_H

#include <stddef.h>
#include <stdint.h>

/* Largest time policy_date_format can show: 9999-12-31 23:59:59 GMT. */
#define POLICY_DATE_MAX INT64_C(253402300799)

/* Parse an HTTP-date in any of the three formats (IMF-fixdate, RFC 850,
 * asctime). Returns Unix seconds, or -1 when s is not a valid date.
 * Strict: names and "GMT" are case-sensitive, every field has its exact
 * width, ranges and Feb 29 are checked, nothing may trail the date; only
 * leading/trailing SP/HTAB is skipped. Second 60 (leap second) reads as 59.
 * The weekday must be a valid name but is not checked against the date.
 * RFC 850 two-digit years: 00-69 -> 20xx, 70-99 -> 19xx. A valid date
 * before 1970 returns 0. s need not be NUL-terminated. */
int64_t policy_date_parse(const char *s, size_t len);
/* Format t (Unix seconds, clamped to [0, POLICY_DATE_MAX]) as an
 * IMF-fixdate: exactly 29 characters plus NUL written to out. */
void policy_date_format(int64_t t, char out[30]);

#endif
