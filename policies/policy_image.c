/* policy_image: transform parameters, format negotiation and variant keys
 * of on-the-fly image resizing (see include/policy_image.h). */
#include "policy_image.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_SIDE 4096u

static const char *const fit_names[] = { "cover", "contain", "fill", "inside", "outside" };
static const char *const gravity_names[] = { "center",    "north",     "south",     "east",      "west",
                                             "northeast", "northwest", "southeast", "southwest", "smart" };
static const char *const fmt_names[] = { "same", "jpeg", "png", "webp", "avif", "auto" };
static const char *const fmt_types[] = { NULL, "image/jpeg", "image/png", "image/webp", "image/avif", NULL };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The transform parameters, in the order of the bit that marks each seen. */
enum { P_W, P_H, P_FIT, P_GRAVITY, P_FMT, P_Q, P_DPR, P_COUNT };
static const char *const param_names[P_COUNT] = { "w", "h", "fit", "gravity", "fmt", "q", "dpr" };

static bool slice_is(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

/* The index of v in names[0, n), or -1. Values are exact and lower-case. */
static int lookup(const char *const *names, size_t n, const char *v, size_t vlen)
{
    for (size_t i = 0; i < n; i++)
        if (slice_is(v, vlen, names[i]))
            return (int)i;
    return -1;
}

/* A decimal integer in [lo, hi], digits only; -1 when it is not one. */
static long parse_uint(const char *v, size_t n, long lo, long hi)
{
    long x = 0;
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x >= lo && x <= hi ? x : -1;
}

/* dpr as hundredths, 100..400: "2", "1.5", "1.25", "2.0"; -1 otherwise. */
static long parse_dpr(const char *v, size_t n)
{
    const char *dot = memchr(v, '.', n);
    size_t ilen = dot ? (size_t)(dot - v) : n, flen = dot ? n - ilen - 1 : 0;
    if (ilen == 0 || (dot && (flen == 0 || flen > 2)))
        return -1;
    long i = parse_uint(v, ilen, 0, 4), f = 0;
    if (i < 0)
        return -1;
    if (flen) {
        f = parse_uint(dot + 1, flen, 0, 99);
        if (f < 0)
            return -1;
        if (flen == 1)
            f *= 10;
    }
    long x = i * 100 + f;
    return x >= 100 && x <= 400 ? x : -1;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* The value as quoted in a message: cut so a long value cannot hide the rest. */
#define QUOTED(v, n) (int)((n) > 32 ? 32 : (n)), (v)

static unsigned scale(unsigned x, unsigned num, unsigned den)
{
    unsigned long long r = ((unsigned long long)x * num + den / 2) / den;
    return r ? (unsigned)r : 1;
}

/* One transform parameter into *p. */
static int set_param(policy_image_params_t *p, int k, const char *v, size_t n, unsigned max_side, char *err,
                     size_t errlen)
{
    const char *name = param_names[k];
    long x;
    int i;
    switch (k) {
    case P_W:
    case P_H:
        if ((x = parse_uint(v, n, 1, max_side)) < 0)
            return fail(err, errlen, "%s: expected an integer from 1 to %u, got '%.*s'", name, max_side,
                        QUOTED(v, n));
        *(k == P_W ? &p->w : &p->h) = (unsigned)x;
        return 0;
    case P_FIT:
        if ((i = lookup(fit_names, NELEM(fit_names), v, n)) < 0)
            return fail(err, errlen, "fit: expected cover, contain, fill, inside or outside, got '%.*s'",
                        QUOTED(v, n));
        p->fit = (policy_image_fit_t)i;
        return 0;
    case P_GRAVITY:
        if ((i = lookup(gravity_names, NELEM(gravity_names), v, n)) < 0)
            return fail(err, errlen,
                        "gravity: expected center, north, south, east, west, northeast, northwest, "
                        "southeast, southwest or smart, got '%.*s'",
                        QUOTED(v, n));
        p->gravity = (policy_image_gravity_t)i;
        return 0;
    case P_FMT:
        /* "same" is the default, not a value a URL may spell. */
        if ((i = lookup(fmt_names, NELEM(fmt_names), v, n)) <= 0)
            return fail(err, errlen, "fmt: expected jpeg, png, webp, avif or auto, got '%.*s'", QUOTED(v, n));
        p->fmt = (policy_image_fmt_t)i;
        return 0;
    case P_Q:
        if ((x = parse_uint(v, n, 1, 100)) < 0)
            return fail(err, errlen, "q: expected an integer from 1 to 100, got '%.*s'", QUOTED(v, n));
        p->q = (unsigned)x;
        return 0;
    default:
        if ((x = parse_dpr(v, n)) < 0)
            return fail(err, errlen, "dpr: expected a number from 1 to 4 with at most two decimals, got '%.*s'",
                        QUOTED(v, n));
        p->dpr_x100 = (unsigned)x;
        return 0;
    }
}

/* Apply dpr, then the max_side cap (both sides by one factor). */
static void apply_dpr(policy_image_params_t *p, unsigned max_side)
{
    if (p->w)
        p->w = scale(p->w, p->dpr_x100, 100);
    if (p->h)
        p->h = scale(p->h, p->dpr_x100, 100);
    unsigned big = p->w > p->h ? p->w : p->h;
    if (big > max_side) {
        if (p->w)
            p->w = scale(p->w, max_side, big);
        if (p->h)
            p->h = scale(p->h, max_side, big);
    }
}

static int apply_allowed(policy_image_params_t *p, const policy_image_limits_t *lim, unsigned max_side, char *err,
                         size_t errlen)
{
    if (!lim->allowed_widths || !lim->n_allowed || !p->w)
        return 0;
    unsigned next = 0;
    for (size_t i = 0; i < lim->n_allowed; i++) {
        unsigned a = lim->allowed_widths[i];
        if (a == p->w)
            return 0;
        if (a > p->w && (!next || a < next))
            next = a;
    }
    if (!next)
        return fail(err, errlen, "w: %u is above the largest allowed width", p->w);
    if (!lim->round_up)
        return fail(err, errlen, "w: %u is not an allowed width (next allowed: %u)", p->w, next);
    if (p->h) {
        p->h = scale(p->h, next, p->w);
        if (p->h > max_side)
            return fail(err, errlen, "w: rounding up to %u makes h pass %u", next, max_side);
    }
    p->w = next;
    return 0;
}

int policy_image_parse(policy_image_params_t *out, const char *query, size_t qlen, const policy_image_limits_t *lim,
                       char *err, size_t errlen)
{
    static const policy_image_limits_t none = { 0 };
    policy_image_params_t p = { .fit = POLICY_IMAGE_FIT_COVER, .gravity = POLICY_IMAGE_GRAVITY_CENTER,
                                .fmt = POLICY_IMAGE_FMT_SAME, .dpr_x100 = 100 };
    unsigned seen = 0;
    int rc = 0;
    if (!lim)
        lim = &none;
    unsigned max_side = lim->max_side ? lim->max_side : DEFAULT_MAX_SIDE;
    if (err && errlen)
        err[0] = '\0';
    for (size_t pos = 0; query && pos < qlen;) {
        const char *s = query + pos, *amp = memchr(s, '&', qlen - pos);
        size_t n = amp ? (size_t)(amp - s) : qlen - pos;
        pos += n + 1;
        const char *eq = memchr(s, '=', n);
        size_t nlen = eq ? (size_t)(eq - s) : n;
        int k = lookup(param_names, P_COUNT, s, nlen);
        if (k < 0)
            continue; /* not ours: neither used nor in the key */
        const char *v = eq ? eq + 1 : s + n;
        size_t vlen = eq ? n - nlen - 1 : 0;
        if (seen & (1u << k)) {
            rc = fail(err, errlen, "%s: given more than once", param_names[k]);
            goto out;
        }
        seen |= 1u << k;
        if (vlen == 0) {
            rc = fail(err, errlen, "%s: missing value", param_names[k]);
            goto out;
        }
        if (memchr(v, '%', vlen)) {
            rc = fail(err, errlen, "%s: percent-encoded values are not accepted, got '%.*s'", param_names[k],
                      QUOTED(v, vlen));
            goto out;
        }
        if ((rc = set_param(&p, k, v, vlen, max_side, err, errlen)))
            goto out;
    }
    p.any = seen != 0;
    apply_dpr(&p, max_side);
    if ((rc = apply_allowed(&p, lim, max_side, err, errlen)))
        goto out;
    *out = p;
out:
    return rc;
}

/* True when an Accept line of req names type ("image/x") with q > 0 and
 * none names it with q = 0. Wildcards are deliberately not consulted. A q
 * that is not a number counts as positive when it holds a non-zero digit. */
static bool accepts(const http_fields_t *req, const char *type)
{
    bool yes = false;
    size_t tlen = strlen(type);
    for (size_t i = 0; req && i < req->n; i++) {
        if (!http_name_eq(http_fields_name(req, i), "accept"))
            continue;
        http_slice_t v = http_fields_value(req, i), item;
        for (size_t pos = 0; http_list_next(v, &pos, &item);) {
            const char *semi = memchr(item.p, ';', item.len);
            http_slice_t mt = http_trim((http_slice_t){ item.p, semi ? (size_t)(semi - item.p) : item.len });
            if (mt.len != tlen || strncasecmp(mt.p, type, tlen) != 0)
                continue;
            bool positive = true;
            /* Parameters: ";q=0", ";q=0.000" mean no; any other q is yes. */
            while (semi) {
                const char *ps = semi + 1, *end = item.p + item.len;
                semi = memchr(ps, ';', (size_t)(end - ps));
                http_slice_t par = http_trim((http_slice_t){ ps, (size_t)((semi ? semi : end) - ps) });
                if (par.len < 2 || (par.p[0] != 'q' && par.p[0] != 'Q'))
                    continue;
                http_slice_t qv = http_trim((http_slice_t){ par.p + 1, par.len - 1 });
                if (!qv.len || qv.p[0] != '=')
                    continue;
                qv = http_trim((http_slice_t){ qv.p + 1, qv.len - 1 });
                positive = false;
                for (size_t c = 0; c < qv.len; c++)
                    if (qv.p[c] >= '1' && qv.p[c] <= '9')
                        positive = true;
            }
            if (!positive)
                return false;
            yes = true;
        }
    }
    return yes;
}

policy_image_fmt_t policy_image_negotiate(policy_image_fmt_t asked, policy_image_fmt_t source,
                                          const http_fields_t *req)
{
    if (asked == POLICY_IMAGE_FMT_SAME)
        return source;
    if (asked != POLICY_IMAGE_FMT_AUTO)
        return asked;
    if (accepts(req, "image/avif"))
        return POLICY_IMAGE_FMT_AVIF;
    if (accepts(req, "image/webp"))
        return POLICY_IMAGE_FMT_WEBP;
    return source;
}

policy_image_fmt_t policy_image_choice(policy_image_fmt_t asked, const http_fields_t *req, bool avif_ok)
{
    if (asked != POLICY_IMAGE_FMT_AUTO)
        return asked;
    if (avif_ok && accepts(req, "image/avif"))
        return POLICY_IMAGE_FMT_AVIF;
    if (accepts(req, "image/webp"))
        return POLICY_IMAGE_FMT_WEBP;
    return POLICY_IMAGE_FMT_SAME;
}

bool policy_image_varies(policy_image_fmt_t asked)
{
    return asked == POLICY_IMAGE_FMT_AUTO;
}

unsigned policy_image_quality(const policy_image_params_t *p, policy_image_fmt_t fmt)
{
    if (fmt == POLICY_IMAGE_FMT_PNG)
        return 0;
    if (p->q)
        return p->q;
    return fmt == POLICY_IMAGE_FMT_AVIF ? 60 : 80;
}

int policy_image_variant_key(buf_t *out, const policy_image_params_t *p, policy_image_fmt_t chosen)
{
    if (chosen < POLICY_IMAGE_FMT_SAME || chosen >= POLICY_IMAGE_FMT_AUTO)
        return -EINVAL;
    /* "same" stands for the source's format, which the variant record's
     * link to its source pins down; its q is as asked (0 = the default). */
    unsigned q = chosen == POLICY_IMAGE_FMT_SAME ? p->q : policy_image_quality(p, chosen);
    return buf_printf(out, "w=%u;h=%u;fit=%s;g=%s;fmt=%s;q=%u", p->w, p->h, fit_names[p->fit],
                      gravity_names[p->gravity], fmt_names[chosen], q);
}

const char *policy_image_fmt_name(policy_image_fmt_t fmt)
{
    return (unsigned)fmt < NELEM(fmt_names) ? fmt_names[fmt] : "?";
}

const char *policy_image_content_type(policy_image_fmt_t fmt)
{
    return (unsigned)fmt < NELEM(fmt_types) ? fmt_types[fmt] : NULL;
}

policy_image_fmt_t policy_image_fmt_from_content_type(const char *ct, size_t len)
{
    const char *semi = ct ? memchr(ct, ';', len) : NULL;
    http_slice_t t = http_trim((http_slice_t){ ct, semi ? (size_t)(semi - ct) : (ct ? len : 0) });
    static const struct { const char *type; policy_image_fmt_t fmt; } map[] = {
        { "image/jpeg", POLICY_IMAGE_FMT_JPEG }, { "image/jpg", POLICY_IMAGE_FMT_JPEG },
        { "image/png", POLICY_IMAGE_FMT_PNG },   { "image/webp", POLICY_IMAGE_FMT_WEBP },
        { "image/avif", POLICY_IMAGE_FMT_AVIF }, { "image/gif", POLICY_IMAGE_FMT_PNG },
    };
    for (size_t i = 0; i < NELEM(map); i++)
        if (strlen(map[i].type) == t.len && strncasecmp(t.p, map[i].type, t.len) == 0)
            return map[i].fmt;
    return POLICY_IMAGE_FMT_SAME;
}

bool policy_image_param_name(const char *name, size_t len)
{
    return lookup(param_names, P_COUNT, name, len) >= 0;
}

int policy_image_source_query(buf_t *out, const char *query, size_t qlen)
{
    int rc = 0;
    bool first = true;
    for (size_t pos = 0; query && pos < qlen && !rc;) {
        const char *s = query + pos, *amp = memchr(s, '&', qlen - pos);
        size_t n = amp ? (size_t)(amp - s) : qlen - pos;
        pos += n + 1;
        const char *eq = memchr(s, '=', n);
        size_t nlen = eq ? (size_t)(eq - s) : n;
        if (policy_image_param_name(s, nlen) || slice_is(s, nlen, "sig"))
            continue;
        if (!first)
            rc = buf_append(out, "&", 1);
        if (!rc)
            rc = buf_append(out, s, n);
        first = false;
    }
    return rc;
}
