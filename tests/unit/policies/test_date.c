/* Unit tests for policy_date: the three HTTP-date formats, strictness on
 * malformed input, and format/parse round trips. */
#include <criterion/criterion.h>
#include <string.h>

#include "policy_date.h"

#define P(s) policy_date_parse((s), strlen(s))

static const int64_t T1994 = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

Test(date, imf_fixdate)
{
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:37 GMT"), T1994);
    cr_assert_eq(P("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    cr_assert_eq(P("Sat, 01 Jan 2000 00:00:00 GMT"), 946684800);
    cr_assert_eq(P("Tue, 19 Jan 2038 03:14:08 GMT"), INT64_C(2147483648));
    cr_assert_eq(P("Fri, 31 Dec 9999 23:59:59 GMT"), INT64_C(253402300799));
}

Test(date, rfc850)
{
    cr_assert_eq(P("Sunday, 06-Nov-94 08:49:37 GMT"), T1994);
    /* documented pivot: 00-69 -> 20xx, 70-99 -> 19xx */
    cr_assert_eq(P("Saturday, 01-Jan-00 00:00:00 GMT"), 946684800);
    cr_assert_eq(P("Tuesday, 01-Jan-69 00:00:00 GMT"), INT64_C(3124224000));
    cr_assert_eq(P("Thursday, 01-Jan-70 00:00:00 GMT"), 0);
    cr_assert_eq(P("Friday, 06-Nov-99 08:49:37 GMT"), P("Sat, 06 Nov 1999 08:49:37 GMT"));
}

Test(date, asctime)
{
    cr_assert_eq(P("Sun Nov  6 08:49:37 1994"), T1994);
    cr_assert_eq(P("Sun Nov 06 08:49:37 1994"), T1994);
    cr_assert_eq(P("Thu Feb 29 12:00:00 2024"), 1709208000);
    cr_assert_eq(P("Wed Nov 16 08:49:37 1994"), T1994 + 10 * 86400);
}

Test(date, whitespace_around_is_skipped)
{
    cr_assert_eq(P("  \tSun, 06 Nov 1994 08:49:37 GMT \t "), T1994);
    cr_assert_eq(P(" Sun Nov  6 08:49:37 1994 "), T1994);
}

Test(date, leap_years)
{
    cr_assert_eq(P("Thu, 29 Feb 2024 12:00:00 GMT"), 1709208000);
    cr_assert_eq(P("Tue, 29 Feb 2000 00:00:00 GMT"), 951782400); /* divisible by 400 */
    cr_assert_eq(P("Wed, 29 Feb 2023 00:00:00 GMT"), -1);
    cr_assert_eq(P("Mon, 29 Feb 2100 00:00:00 GMT"), -1); /* divisible by 100 */
    cr_assert_eq(P("Thu, 29 Feb 1900 00:00:00 GMT"), -1);
    cr_assert_eq(P("Wednesday, 29-Feb-23 00:00:00 GMT"), -1);
    cr_assert_eq(P("Wed Feb 29 00:00:00 2023"), -1);
    cr_assert_eq(P("Sat, 28 Feb 2023 23:59:59 GMT") + 1, P("Wed, 01 Mar 2023 00:00:00 GMT"));
}

Test(date, out_of_range_fields)
{
    cr_assert_eq(P("Sun, 00 Nov 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, 31 Nov 1994 08:49:37 GMT"), -1); /* November has 30 */
    cr_assert_eq(P("Sun, 32 Dec 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 24:00:00 GMT"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:60:00 GMT"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:61 GMT"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 23:59:59 GMT"), P("Sun, 06 Nov 1994 00:00:00 GMT") + 86399);
    cr_assert_eq(P("Sunday, 06-Nov-94 08:49:61 GMT"), -1);
    cr_assert_eq(P("Sun Nov  6 25:49:37 1994"), -1);
}

Test(date, leap_second_reads_as_59)
{
    cr_assert_eq(P("Sat, 31 Dec 2016 23:59:60 GMT"), 1483228799);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:60 GMT"), 784111799);
}

Test(date, bad_names)
{
    cr_assert_eq(P("Sunn, 06 Nov 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Xyz, 06 Nov 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("sun, 06 Nov 1994 08:49:37 GMT"), -1); /* names are case-sensitive */
    cr_assert_eq(P("Sun, 06 nov 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, 06 Nox 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, 06 November 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sundae, 06-Nov-94 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, 06-Nov-94 08:49:37 GMT"), -1); /* RFC 850 needs the long name */
    cr_assert_eq(P("Sunday, 06 Nov 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun Xyz  6 08:49:37 1994"), -1);
}

Test(date, weekday_not_checked_against_date)
{
    /* documented: the redundant weekday is only checked for being a name */
    cr_assert_eq(P("Mon, 06 Nov 1994 08:49:37 GMT"), T1994);
}

Test(date, zone_and_trailing_garbage)
{
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:37"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:37 UTC"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:37 gmt"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:37 GMT+1"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:37 GMTx"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:37 GMT x"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49:37 +0000"), -1);
    cr_assert_eq(P("Sunday, 06-Nov-94 08:49:37"), -1);
    cr_assert_eq(P("Sun Nov  6 08:49:37 1994 GMT"), -1);
    cr_assert_eq(P("Sun Nov  6 08:49:37 19945"), -1);
}

Test(date, wrong_widths_and_separators)
{
    cr_assert_eq(P("Sun, 6 Nov 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, 06 Nov 94 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 8:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994 08:49 GMT"), -1);
    cr_assert_eq(P("Sun, 06 Nov 1994  08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun,06 Nov 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, 06-Nov-1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sunday, 06-Nov-1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun Nov 6 08:49:37 1994"), -1);
    cr_assert_eq(P("Sun, 0x Nov 1994 08:49:37 GMT"), -1);
    cr_assert_eq(P("Sun, -6 Nov 1994 08:49:37 GMT"), -1);
}

Test(date, garbage)
{
    cr_assert_eq(P(""), -1);
    cr_assert_eq(P("   "), -1);
    cr_assert_eq(P("0"), -1);
    cr_assert_eq(P("-1"), -1);
    cr_assert_eq(P("784111777"), -1);
    cr_assert_eq(P("Sun"), -1);
    cr_assert_eq(P("Sun,"), -1);
    cr_assert_eq(P("1994-11-06T08:49:37Z"), -1);
    cr_assert_eq(policy_date_parse(NULL, 0), -1);
    cr_assert_eq(policy_date_parse("Sun, 06 Nov 1994 08:49:37 GMT\0x", 31), -1);
}

Test(date, before_epoch_is_zero_not_invalid)
{
    cr_assert_eq(P("Wed, 31 Dec 1969 23:59:59 GMT"), 0);
    cr_assert_eq(P("Mon, 01 Jan 1900 00:00:00 GMT"), 0);
    cr_assert_eq(P("Sat, 01 Jan 0000 00:00:00 GMT"), 0);
}

Test(date, length_is_respected)
{
    const char *s = "Sun, 06 Nov 1994 08:49:37 GMTGARBAGE";
    cr_assert_eq(policy_date_parse(s, 29), T1994);
    cr_assert_eq(policy_date_parse(s, 28), -1);
}

Test(date, format)
{
    char out[30];
    policy_date_format(T1994, out);
    cr_assert_str_eq(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    policy_date_format(0, out);
    cr_assert_str_eq(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    policy_date_format(-5, out);
    cr_assert_str_eq(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    policy_date_format(1709208000, out);
    cr_assert_str_eq(out, "Thu, 29 Feb 2024 12:00:00 GMT");
    policy_date_format(INT64_MAX, out);
    cr_assert_str_eq(out, "Fri, 31 Dec 9999 23:59:59 GMT");
}

Test(date, round_trip)
{
    char out[30];
    /* a deterministic walk over ~400 years with an odd stride */
    for (int64_t t = 0; t <= INT64_C(253402300799); t += INT64_C(7777777) + 13) {
        policy_date_format(t, out);
        cr_assert_eq(strlen(out), 29);
        cr_assert_eq(policy_date_parse(out, 29), t, "%s", out);
    }
}

Test(date, one_byte_mutations)
{
    /* every single-byte change of a valid date is either rejected or a
     * valid date that formats and parses back to itself */
    static const char *const base[] = { "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                                        "Sun Nov  6 08:49:37 1994" };
    static const char repl[] = " ,:-0123456789ADFGJMNOSTadeglnoprtuy\t\x7f\xff";
    char s[40], out[30];
    for (size_t b = 0; b < 3; b++) {
        size_t len = strlen(base[b]);
        for (size_t i = 0; i < len; i++) {
            for (size_t r = 0; r < sizeof repl - 1; r++) {
                memcpy(s, base[b], len);
                s[i] = repl[r];
                int64_t t = policy_date_parse(s, len);
                cr_assert(t == -1 || (t >= 0 && t <= POLICY_DATE_MAX));
                if (t > 0) {
                    policy_date_format(t, out);
                    cr_assert_eq(policy_date_parse(out, 29), t, "%.*s", (int)len, s);
                }
            }
        }
    }
}
