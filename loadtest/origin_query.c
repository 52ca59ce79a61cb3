/* origin_query: the origin's query-string language.
 *
 * Tests describe the response they want in the URL (size=, cc=, etag=,
 * delay=, ...), so one origin serves every caching scenario without
 * configuration. A value that cannot be honoured exactly is an error
 * naming the parameter, never a silent default: a test that asked for
 * something else than it got would pass for the wrong reason. Values are
 * percent-decoded ('+' stays '+': content types such as image/svg+xml
 * must survive). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "origin.h"
#include "policy_date.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0, n) into out (room for n + 1); returns the length or
 * -EINVAL for a bad escape. */
static long url_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return (long)o;
}

int origin_query_get(const char *query, size_t qlen, const char *name, char **out)
{
    size_t nl = strlen(name);
    const char *p = query, *end = query + qlen;
    int found = 0;
    *out = NULL;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;
        if ((size_t)(ne - p) == nl && memcmp(p, name, nl) == 0) {
            const char *v = eq ? eq + 1 : pe;
            char *d = malloc((size_t)(pe - v) + 1);
            int rc = !d ? -ENOMEM : url_decode(v, (size_t)(pe - v), d) < 0 ? -EINVAL : 0;
            if (rc) {
                free(d);
                free(*out);
                *out = NULL;
                return rc;
            }
            free(*out);
            *out = d; /* the last occurrence wins, as in origin_params_parse */
            found = 1;
        }
        p = pe + 1;
    }
    return found;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
    uint64_t v;
    bool neg = *s == '-';
    if (parse_u64(s + neg, 1ull << 40, &v)) /* ~35000 years: plenty for a test */
        return -EINVAL;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

static int parse_bool01(const char *s, bool *out)
{
    if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
        *out = true;
    else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
        *out = false;
    else
        return -EINVAL;
    return 0;
}

/* A header value must not be able to end the line it is written on. */
static bool safe_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static bool is_tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

typedef enum { P_SIZE, P_STATUS, P_CC, P_EXPIRES, P_EXPIRES_IN, P_ETAG, P_LM, P_LM_AGO, P_VARY, P_SK,
               P_CT, P_DELAY, P_CHUNKED, P_AGE, P_COOKIE, P_NODATE, P_HEADER, P_ECHO, P_FAIL_AFTER, P_R304, P_UNKNOWN } param_t;

static const char *const names[] = { "size", "status", "cc", "expires", "expires_in", "etag", "lm", "lm_ago",
                                     "vary", "sk", "ct", "delay", "chunked", "age", "cookie", "nodate",
                                     "header", "echo", "fail_after", "r304" };

static param_t lookup(const char *name)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i], name) == 0)
            return (param_t)i;
    return P_UNKNOWN;
}

/* Apply one decoded parameter; returns 0, or -EINVAL with the reason in why. */
static int apply(origin_params_t *p, param_t k, char *v, char **mem, const char **why)
{
    uint64_t u;
    switch (k) {
    case P_SIZE:
        *why = "expected bytes from 0 to 1073741824";
        return parse_u64(v, ORIGIN_MAX_SIZE, &p->size);
    case P_STATUS:
        *why = "expected a status from 200 to 599";
        if (parse_u64(v, 599, &u) || u < 200)
            return -EINVAL;
        p->status = (int)u;
        return 0;
    case P_EXPIRES:
        *why = "expected an HTTP-date";
        if (policy_date_parse(v, strlen(v)) < 0)
            return -EINVAL;
        p->expires = v;
        return 0;
    case P_EXPIRES_IN:
        *why = "expected seconds (may be negative)";
        p->has_expires_in = true;
        return parse_i64(v, &p->expires_in);
    case P_LM:
        *why = "expected an HTTP-date";
        if (policy_date_parse(v, strlen(v)) < 0)
            return -EINVAL;
        p->lm = v;
        return 0;
    case P_LM_AGO:
        *why = "expected seconds";
        p->has_lm_ago = true;
        return parse_i64(v, &p->lm_ago);
    case P_ETAG: {
        *why = "expected auto, an entity-tag (\"x\" or W/\"x\") or a bare tag without quotes";
        size_t n = strlen(v);
        if (!safe_value(v) || n == 0)
            return -EINVAL;
        if (strcmp(v, "auto") == 0) {
            p->etag_auto = true;
            p->etag = NULL;
            return 0;
        }
        p->etag_auto = false;
        const char *q = strncmp(v, "W/", 2) == 0 ? v + 2 : v;
        if (*q == '"') {
            size_t ql = strlen(q);
            if (ql < 2 || q[ql - 1] != '"' || memchr(q + 1, '"', ql - 2))
                return -EINVAL;
            p->etag = v;
            return 0;
        }
        if (strchr(v, '"'))
            return -EINVAL;
        /* Bare tag: quote it, in the spare room after the decoded strings. */
        char *t = *mem;
        t[0] = '"';
        memcpy(t + 1, v, n);
        t[n + 1] = '"';
        t[n + 2] = '\0';
        *mem += n + 3;
        p->etag = t;
        return 0;
    }
    case P_DELAY:
        *why = "expected milliseconds up to 600000";
        return parse_u64(v, ORIGIN_MAX_DELAY_MS, &p->delay_ms);
    case P_CHUNKED:
        *why = "expected 1 or 0";
        return parse_bool01(v, &p->chunked);
    case P_NODATE:
        *why = "expected 1 or 0";
        return parse_bool01(v, &p->nodate);
    case P_ECHO:
        *why = "expected 1 or 0";
        return parse_bool01(v, &p->echo);
    case P_FAIL_AFTER:
        *why = "expected a request count";
        p->has_fail_after = true;
        return parse_u64(v, UINT32_MAX, &p->fail_after);
    case P_R304:
        *why = "expected bare or foreign";
        if (strcmp(v, "bare") == 0)
            p->r304 = ORIGIN_304_BARE;
        else if (strcmp(v, "foreign") == 0)
            p->r304 = ORIGIN_304_FOREIGN;
        else
            return -EINVAL;
        return 0;
    case P_AGE:
        *why = "expected seconds";
        p->has_age = true;
        return parse_u64(v, UINT32_MAX, &p->age);
    case P_HEADER: {
        *why = "expected Name:Value with a token name and no control characters";
        char *colon = strchr(v, ':');
        if (!colon || colon == v || !safe_value(v))
            return -EINVAL;
        for (char *c = v; c < colon; c++)
            if (!is_tchar((unsigned char)*c))
                return -EINVAL;
        char *val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        if (buf_append(&p->extra, v, (size_t)(colon - v)) || buf_append(&p->extra, ": ", 2) ||
            buf_puts(&p->extra, val) || buf_append(&p->extra, "\r\n", 2)) {
            *why = "too many header= bytes";
            return -EINVAL;
        }
        return 0;
    }
    case P_CC: case P_VARY: case P_SK: case P_CT: case P_COOKIE: {
        *why = "control characters are not allowed in a header value";
        if (!safe_value(v))
            return -EINVAL;
        const char **dst = k == P_CC ? &p->cc : k == P_VARY ? &p->vary : k == P_SK ? &p->sk
                           : k == P_CT ? &p->ct : &p->cookie;
        *dst = v;
        return 0;
    }
    case P_UNKNOWN:
        return 0;
    }
    return 0;
}

int origin_params_parse(origin_params_t *p, const char *query, size_t qlen, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->size = 1024;
    p->status = 200;
    buf_init(&p->extra, 64 * 1024);
    /* Decoded strings never outgrow their encoded form; each needs a NUL,
     * and a bare ETag two quotes more. */
    char *mem = p->mem = malloc(2 * qlen + 16);
    if (!mem) {
        snprintf(err, errlen, "out of memory\n");
        return -ENOMEM;
    }
    const char *s = query, *end = query + qlen;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        const char *ne = eq ? eq : pe;
        char name[16];
        if (ne - s > 0 && (size_t)(ne - s) < sizeof name) {
            memcpy(name, s, (size_t)(ne - s));
            name[ne - s] = '\0';
            param_t k = lookup(name);
            if (k != P_UNKNOWN) {
                const char *v = eq ? eq + 1 : pe;
                const char *why = "bad percent-encoding";
                char *dv = mem;
                long dl = url_decode(v, (size_t)(pe - v), dv);
                int rc = -EINVAL;
                if (dl >= 0) {
                    mem += dl + 1;
                    rc = (size_t)dl == strlen(dv) ? apply(p, k, dv, &mem, &why) : -EINVAL;
                    if (rc && (size_t)dl != strlen(dv))
                        why = "NUL bytes are not allowed";
                }
                if (rc) {
                    snprintf(err, errlen, "bad parameter '%s': %s, got '%.*s'\n", name, why,
                             (int)((pe - v) > 200 ? 200 : (pe - v)), v);
                    return rc;
                }
            }
        }
        s = pe + 1;
    }
    return 0;
}

void origin_params_free(origin_params_t *p)
{
    free(p->mem);
    p->mem = NULL;
    buf_free(&p->extra);
}
