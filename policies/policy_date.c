/* policy_date: HTTP-date formatting and parsing (RFC 9110 section 5.6.7).
 *
 * Dates decide freshness (Date, Expires, Last-Modified), so the parser is
 * strict: a value that is not exactly one of the three grammar forms is
 * rejected rather than guessed at, and the caller falls back to the
 * conservative reading (an invalid Expires means "already expired").
 * Civil-date arithmetic is done by hand so results never depend on the
 * process's locale or TZ (no strptime/timegm). */
#include "policy_date.h"

#include <stdbool.h>
#include <string.h>

static const char wdays[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const wdays_long[7] = { "Sunday",   "Monday", "Tuesday", "Wednesday",
                                           "Thursday", "Friday", "Saturday" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days since 1970-01-01 -> civil date (Howard Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

/* Civil date -> days since 1970-01-01 (the inverse, same source). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && leap_year(y) ? 29 : dim[m - 1];
}

void policy_date_format(int64_t t, char out[30])
{
    if (t < 0)
        t = 0;
    if (t > POLICY_DATE_MAX)
        t = POLICY_DATE_MAX; /* keeps the year at four digits */
    int64_t days = t / 86400, secs = t % 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned wd = (unsigned)((days + 4) % 7); /* 1970-01-01 was a Thursday */
    unsigned hh = (unsigned)(secs / 3600), mm = (unsigned)(secs / 60 % 60), ss = (unsigned)(secs % 60);
    char *p = out;
    memcpy(p, wdays[wd], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    *p++ = (char)('0' + d / 10);
    *p++ = (char)('0' + d % 10);
    *p++ = ' ';
    memcpy(p, months[m - 1], 3);
    p += 3;
    *p++ = ' ';
    *p++ = (char)('0' + y / 1000);
    *p++ = (char)('0' + y / 100 % 10);
    *p++ = (char)('0' + y / 10 % 10);
    *p++ = (char)('0' + y % 10);
    *p++ = ' ';
    *p++ = (char)('0' + hh / 10);
    *p++ = (char)('0' + hh % 10);
    *p++ = ':';
    *p++ = (char)('0' + mm / 10);
    *p++ = (char)('0' + mm % 10);
    *p++ = ':';
    *p++ = (char)('0' + ss / 10);
    *p++ = (char)('0' + ss % 10);
    memcpy(p, " GMT", 5);
}

/* A cursor over the value; every matcher advances it only on success. */
typedef struct {
    const char *p, *end;
} cur_t;

static bool lit(cur_t *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Exactly n digits. */
static bool digits(cur_t *c, int n, unsigned *out)
{
    if (c->end - c->p < n)
        return false;
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(c->p[i]))
            return false;
        v = v * 10 + (unsigned)(c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

/* Month names are case-sensitive in RFC 9110 (%s"Jan"...). Returns 1..12. */
static unsigned month(cur_t *c)
{
    for (unsigned i = 0; i < 12; i++)
        if (lit(c, months[i]))
            return i + 1;
    return 0;
}

/* time-of-day = hour ":" minute ":" second. */
static bool time_of_day(cur_t *c, unsigned *h, unsigned *mi, unsigned *s)
{
    return digits(c, 2, h) && lit(c, ":") && digits(c, 2, mi) && lit(c, ":") && digits(c, 2, s);
}

static int64_t to_unix(int64_t y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned s)
{
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (h > 23 || mi > 59 || s > 60)
        return -1;
    if (s == 60)
        s = 59; /* leap second: same minute, so no carry into the next day */
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return t < 0 ? 0 : t; /* before 1970: valid but long past; -1 means invalid */
}

/* IMF-fixdate after "Sun": ", 06 Nov 1994 08:49:37 GMT". */
static int64_t imf_fixdate(cur_t *c)
{
    unsigned d, mo, y, h, mi, s;
    if (!lit(c, ", ") || !digits(c, 2, &d) || !lit(c, " ") || !(mo = month(c)) || !lit(c, " ") ||
        !digits(c, 4, &y) || !lit(c, " ") || !time_of_day(c, &h, &mi, &s) || !lit(c, " GMT") || c->p != c->end)
        return -1;
    return to_unix(y, mo, d, h, mi, s);
}

/* rfc850-date after "Sunday": ", 06-Nov-94 08:49:37 GMT". */
static int64_t rfc850_date(cur_t *c)
{
    unsigned d, mo, y, h, mi, s;
    if (!lit(c, ", ") || !digits(c, 2, &d) || !lit(c, "-") || !(mo = month(c)) || !lit(c, "-") ||
        !digits(c, 2, &y) || !lit(c, " ") || !time_of_day(c, &h, &mi, &s) || !lit(c, " GMT") || c->p != c->end)
        return -1;
    /* RFC 9110 wants "more than 50 years in the future -> previous century",
     * which needs the current year; the fixed pivot 00-69 -> 20xx,
     * 70-99 -> 19xx (POSIX strptime %y) gives the same answer until 2020+50
     * and keeps this function free of a clock. */
    return to_unix(y < 70 ? 2000 + y : 1900 + y, mo, d, h, mi, s);
}

/* asctime-date after "Sun": " Nov  6 08:49:37 1994" (day may be "06"). */
static int64_t asctime_date(cur_t *c)
{
    unsigned d, mo, y, h, mi, s;
    if (!lit(c, " ") || !(mo = month(c)) || !lit(c, " "))
        return -1;
    if (c->p < c->end && *c->p == ' ') {
        c->p++;
        if (!digits(c, 1, &d))
            return -1;
    } else if (!digits(c, 2, &d)) {
        return -1;
    }
    if (!lit(c, " ") || !time_of_day(c, &h, &mi, &s) || !lit(c, " ") || !digits(c, 4, &y) || c->p != c->end)
        return -1;
    return to_unix(y, mo, d, h, mi, s);
}

int64_t policy_date_parse(const char *s, size_t len)
{
    if (!s)
        return -1;
    cur_t c = { s, s + len };
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
        c.p++;
    while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t'))
        c.end--;
    /* Long names first: "Sunday" must not be taken as "Sun" + garbage. The
     * day name is checked against the list but not against the date: it
     * is redundant, and a sender's wrong weekday is not worth turning a
     * valid Expires into "already expired". */
    for (int i = 0; i < 7; i++)
        if (lit(&c, wdays_long[i]))
            return rfc850_date(&c);
    for (int i = 0; i < 7; i++) {
        if (lit(&c, wdays[i])) {
            if (c.p < c.end && *c.p == ',')
                return imf_fixdate(&c);
            return asctime_date(&c);
        }
    }
    return -1;
}
