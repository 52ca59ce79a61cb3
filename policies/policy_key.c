/* policy_key: primary cache-key normalisation (see include/policy_key.h).
 *
 * Only equivalences that RFC 3986 6.2.2 guarantees for every origin are
 * applied (case of scheme/host/hex digits, unreserved escapes, dot
 * segments, default port). Anything origin-specific, such as query
 * parameter order or ignoring parameters, happens only when a per-path
 * rule asks for it (policy_key_opts_t): keying two different resources
 * together would serve one in place of the other. */
#include "policy_key.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_sub_delim(unsigned char c)
{
    return c && strchr("!$&'()*+,;=", c) != NULL;
}

static int hexval(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char lower(unsigned char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

static int put_pct(buf_t *out, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char t[3] = { '%', hex[c >> 4], hex[c & 15] };
    return buf_append(out, t, 3);
}

/* Decode the escape at p[0..n) (p[0] == '%') into *c; -EINVAL when malformed. */
static int pct_decode(const char *p, size_t n, unsigned char *c)
{
    int hi, lo;
    if (n < 3 || (hi = hexval((unsigned char)p[1])) < 0 || (lo = hexval((unsigned char)p[2])) < 0)
        return -EINVAL;
    *c = (unsigned char)(hi << 4 | lo);
    return 0;
}

static bool valid_scheme(const char *s, size_t n)
{
    if (!n || !is_alpha((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return false;
    }
    return true;
}

static bool scheme_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    if (n != l)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i])
            return false;
    return true;
}

/* host = IP-literal / reg-name (IPv4 is a reg-name lexically), then an
 * optional ":" port. Written lowercased; escapes as in paths. */
static int put_host(buf_t *out, const char *h, size_t n, const char *sch, size_t slen)
{
    while (n && (h[0] == ' ' || h[0] == '\t')) {
        h++;
        n--;
    }
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    size_t name_end, port_at;
    if (n && h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        if (!rb)
            return -EINVAL;
        name_end = (size_t)(rb - h) + 1;
        if (name_end < n && h[name_end] != ':')
            return -EINVAL;
    } else {
        const char *colon = memchr(h, ':', n);
        name_end = colon ? (size_t)(colon - h) : n;
    }
    port_at = name_end;

    size_t start = out->len;
    int rc = 0;
    for (size_t i = 0; i < name_end && !rc; i++) {
        unsigned char c = (unsigned char)h[i];
        bool literal = h[0] == '[';
        if (c == '%' && !literal) {
            if (pct_decode(h + i, name_end - i, &c))
                return -EINVAL;
            i += 2;
            rc = is_unreserved(c) ? buf_append(out, &(char){ lower(c) }, 1) : put_pct(out, c);
        } else if (is_unreserved(c) || is_sub_delim(c) || (literal && (c == ':' || c == '[' || c == ']'))) {
            if (literal && (c == '[' || c == ']') && i != 0 && i != name_end - 1)
                return -EINVAL;
            rc = buf_append(out, &(char){ lower(c) }, 1);
        } else {
            return -EINVAL; /* userinfo "@", "/", spaces, controls, raw non-ASCII */
        }
    }
    if (rc)
        return rc;
    /* "example.com." names the same host as "example.com" (absolute DNS
     * name). All trailing dots go, so that a key fed back in is unchanged. */
    while (out->len > start && out->data[out->len - 1] == '.')
        out->len--;
    out->data[out->len] = '\0';
    if (out->len == start)
        return -EINVAL;

    if (port_at < n) {
        unsigned long port = 0;
        size_t i = port_at + 1;
        if (i == n)
            return 0; /* "host:" = default port */
        for (; i < n; i++) {
            if (!is_digit((unsigned char)h[i]))
                return -EINVAL;
            port = port * 10 + (unsigned long)(h[i] - '0');
            if (port > 65535)
                return -EINVAL;
        }
        if ((port == 80 && scheme_is(sch, slen, "http")) || (port == 443 && scheme_is(sch, slen, "https")))
            return 0;
        return buf_printf(out, ":%lu", port);
    }
    return 0;
}

/* RFC 3986 5.2.4 on s[0..n), which starts with "/", in place (the output
 * never overtakes the input). Returns the new length. */
static size_t remove_dot_segments(char *s, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) {
        size_t seg = r + 1, end = seg;
        while (end < n && s[end] != '/')
            end++;
        size_t len = end - seg;
        bool last = end == n;
        if (len == 1 && s[seg] == '.') {
            if (last)
                s[w++] = '/';
        } else if (len == 2 && s[seg] == '.' && s[seg + 1] == '.') {
            while (w > 0 && s[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
            if (last)
                s[w++] = '/';
        } else {
            memmove(s + w, s + r, end - r);
            w += end - r;
        }
        r = end;
    }
    return w;
}

static int put_path(buf_t *out, const char *p, size_t n)
{
    size_t start = out->len;
    int rc = n ? 0 : buf_append(out, "/", 1);
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (pct_decode(p + i, n - i, &c))
                return -EINVAL;
            i += 2;
            rc = is_unreserved(c) ? buf_append(out, &c, 1) : put_pct(out, c);
        } else if (c >= 0x80 || (c && strchr("\"<>\\^`{|}", c))) {
            rc = put_pct(out, c); /* not allowed raw in a URI; the escaped form is the same resource */
        } else {
            rc = buf_append(out, &c, 1);
        }
    }
    if (rc)
        return rc;
    out->len = start + remove_dot_segments(out->data + start, out->len - start);
    out->data[out->len] = '\0';
    return 0;
}

/* True when p[0..n) has a '%' without two hex digits after it (the query
 * has always been accepted byte for byte, so that is not an error). */
static bool bad_escape(const char *p, size_t n)
{
    unsigned char c;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '%' && pct_decode(p + i, n - i, &c))
            return true;
    return false;
}

/* Escapes of p[0..n) (none malformed) normalised as in the path into dst
 * (never longer than p). Returns the length written. */
static size_t norm_escapes(char *dst, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c;
        if (p[i] == '%' && pct_decode(p + i, n - i, &c) == 0) {
            i += 2;
            if (is_unreserved(c)) {
                dst[w++] = (char)c;
            } else {
                dst[w++] = '%';
                dst[w++] = hex[c >> 4];
                dst[w++] = hex[c & 15];
            }
        } else {
            dst[w++] = p[i];
        }
    }
    return w;
}

/* p[0..n) with every valid escape decoded, into dst; returns the length. */
static size_t decode_all(char *dst, const char *p, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c;
        if (p[i] == '%' && pct_decode(p + i, n - i, &c) == 0) {
            i += 2;
            dst[w++] = (char)c;
        } else {
            dst[w++] = p[i];
        }
    }
    return w;
}

int policy_key_parts(const char *key, size_t len, size_t *host_off, size_t *host_len, size_t *path_off,
                     size_t *path_len)
{
    size_t i = 0;
    while (i + 2 < len && !(key[i] == ':' && key[i + 1] == '/' && key[i + 2] == '/'))
        i++;
    if (i + 2 >= len)
        return -EINVAL;
    size_t h = i + 3, p = h;
    while (p < len && key[p] != '/')
        p++;
    if (p == len)
        return -EINVAL;
    size_t q = p;
    while (q < len && key[q] != '?')
        q++;
    *host_off = h;
    *host_len = p - h;
    *path_off = p;
    *path_len = q - p;
    return 0;
}

bool policy_key_glob_match(const char *glob, size_t glen, const char *s, size_t slen, bool icase)
{
    size_t g = 0, i = 0, star = (size_t)-1, mark = 0;
    while (i < slen) {
        if (g < glen && glob[g] != '*' &&
            (glob[g] == '?' || glob[g] == s[i] ||
             (icase && lower((unsigned char)glob[g]) == lower((unsigned char)s[i])))) {
            g++;
            i++;
        } else if (g < glen && glob[g] == '*') {
            star = g++;
            mark = i;
        } else if (star != (size_t)-1) {
            /* let the last '*' swallow one more byte and retry */
            g = star + 1;
            i = ++mark;
        } else {
            return false;
        }
    }
    while (g < glen && glob[g] == '*')
        g++;
    return g == glen;
}

typedef struct qparam {
    const char *text; /* normalised "name[=value]" */
    size_t len;
    size_t name_len;  /* normalised name, up to the first '=' */
    size_t idx;       /* position in the query, for a stable sort */
} qparam_t;

static int qparam_cmp(const void *pa, const void *pb)
{
    const qparam_t *a = pa, *b = pb;
    size_t m = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->text, b->text, m);
    if (c)
        return c;
    if (a->name_len != b->name_len)
        return a->name_len < b->name_len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Is the parameter whose raw name is name[0..n) in the key? dec is
 * scratch of at least n bytes. */
static bool param_kept(const policy_key_opts_t *o, const char *name, size_t n, char *dec)
{
    if (o->query != POLICY_QUERY_KEEP && o->query != POLICY_QUERY_DROP)
        return true;
    size_t dl = decode_all(dec, name, n);
    for (size_t k = 0; k < o->n_params; k++) {
        const char *pk = o->params[k];
        size_t pl = strlen(pk);
        bool hit = o->query == POLICY_QUERY_KEEP ? pl == dl && memcmp(pk, dec, dl) == 0
                                                 : policy_key_glob_match(pk, pl, dec, dl, false);
        if (hit)
            return o->query == POLICY_QUERY_KEEP;
    }
    return o->query == POLICY_QUERY_DROP;
}

/* Append the query q[0..n) (after the '?') as opts says. */
static int put_query(buf_t *out, const policy_key_opts_t *o, const char *q, size_t n)
{
    if (!o || o->query == POLICY_QUERY_ALL) {
        int rc = buf_append(out, "?", 1);
        return rc ? rc : buf_append(out, q, n);
    }
    if (o->query == POLICY_QUERY_NONE || !n)
        return 0;
    size_t max = 1;
    for (size_t i = 0; i < n; i++)
        max += q[i] == '&';
    /* Bounded by the request target's own cap; freed before returning. */
    char *text = malloc(2 * n);
    qparam_t *ps = malloc(max * sizeof *ps);
    int rc = 0;
    size_t np = 0, w = 0;
    if (!text || !ps) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        size_t raw_name = i;
        while (raw_name < j && q[raw_name] != '=')
            raw_name++;
        if (j > i && param_kept(o, q + i, raw_name - i, text + n)) {
            qparam_t *p = &ps[np];
            p->text = text + w;
            if (bad_escape(q + i, j - i)) {
                /* decoding next to a stray '%' could create a new escape
                 * ("%a%41" -> "%aA"): such a parameter stays raw */
                memcpy(text + w, q + i, j - i);
                p->name_len = raw_name - i;
                p->len = j - i;
            } else {
                p->name_len = norm_escapes(text + w, q + i, raw_name - i);
                p->len = p->name_len + norm_escapes(text + w + p->name_len, q + raw_name, j - raw_name);
            }
            p->idx = np++;
            w += p->len;
        }
        i = j + 1;
    }
    qsort(ps, np, sizeof *ps, qparam_cmp);
    for (size_t k = 0; k < np && !rc; k++) {
        rc = buf_append(out, k ? "&" : "?", 1);
        if (!rc)
            rc = buf_append(out, ps[k].text, ps[k].len);
    }
out:
    free(text);
    free(ps);
    return rc;
}

int policy_cache_key_opts(buf_t *out, const policy_key_opts_t *opts, const char *scheme, const char *host,
                          size_t hostlen, const char *target, size_t target_len)
{
    if (opts && ((unsigned)opts->query > POLICY_QUERY_DROP || opts->n_params > POLICY_KEY_PARAMS_MAX))
        return -EINVAL;
    for (size_t i = 0; opts && i < opts->n_params; i++)
        if (!opts->params[i])
            return -EINVAL;
    if (!target || !target_len)
        return -EINVAL;
    for (size_t i = 0; i < target_len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c == 0x7f)
            return -EINVAL;
    }
    const char *sch = scheme;
    size_t slen = scheme ? strlen(scheme) : 0;
    const char *p = target, *end = target + target_len;
    if (*p != '/') {
        /* absolute-form: scheme "://" authority path-abempty [ "?" query ] */
        size_t i = 0;
        while (i < target_len && target[i] != ':')
            i++;
        if (i + 2 >= target_len || target[i + 1] != '/' || target[i + 2] != '/' || !valid_scheme(target, i))
            return -EINVAL;
        sch = target;
        slen = i;
        p = target + i + 3;
        host = p;
        while (p < end && *p != '/' && *p != '?' && *p != '#')
            p++;
        hostlen = (size_t)(p - host);
    }
    if (!sch || !valid_scheme(sch, slen) || !host)
        return -EINVAL;

    size_t start = out->len;
    int rc = 0;
    for (size_t i = 0; i < slen && !rc; i++)
        rc = buf_append(out, &(char){ lower((unsigned char)sch[i]) }, 1);
    if (!rc)
        rc = buf_append(out, "://", 3);
    if (!rc)
        rc = put_host(out, host, hostlen, sch, slen);
    const char *q = p;
    while (q < end && *q != '?' && *q != '#')
        q++;
    if (!rc)
        rc = put_path(out, p, (size_t)(q - p));
    if (!rc && q < end && *q == '?') {
        const char *f = memchr(q, '#', (size_t)(end - q));
        rc = put_query(out, opts, q + 1, (size_t)((f ? f : end) - q) - 1);
    }
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

int policy_cache_key(buf_t *out, const char *scheme, const char *host, size_t hostlen, const char *target,
                     size_t target_len)
{
    return policy_cache_key_opts(out, NULL, scheme, host, hostlen, target, target_len);
}
