/* policy_date: HTTP-date parsing and formatting (RFC 9110 section 5.6.7).
 * Pure functions, no I/O, no locale, no timezone state. */
#ifndef CDN_POLICY_DATE_H
#define CDN_POLICY_DATE_H

#include <stddef.h>
#include <stdint.h>

/* Parse an HTTP-date in any of the three formats (IMF-fixdate, RFC 850,
 * asctime). Returns Unix seconds, or -1 when s is not a valid date. */
int64_t policy_date_parse(const char *s, size_t len);
/* Format t (Unix seconds, >= 0) as an IMF-fixdate: exactly 29 characters
 * plus NUL written to out. */
void policy_date_format(int64_t t, char out[30]);

#endif
