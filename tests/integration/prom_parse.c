/* prom_parse: the strict exposition reader (see prom_parse.h). */
#include "prom_parse.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cursor {
    const char *p, *end;
} cursor_t;

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* A metric name (or a label name when label: no ':'), into a new string. */
static char *read_name(cursor_t *c, bool label)
{
    const char *s = c->p;
    if (c->p >= c->end || !name_start(*c->p) || (label && *c->p == ':'))
        return NULL;
    while (c->p < c->end && name_char(*c->p) && !(label && *c->p == ':'))
        c->p++;
    return strndup(s, (size_t)(c->p - s));
}

static bool parse_number(const char *s, double *out)
{
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return true;
    }
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0) {
        *out = s[0] == '+' ? INFINITY : -INFINITY;
        return true;
    }
    /* strtod would take "inf", "nan(...)", hex and leading blanks too */
    for (const char *q = s; *q; q++)
        if (!strchr("0123456789+-.eE", *q))
            return false;
    char *e;
    *out = strtod(s, &e);
    return *s && *e == '\0';
}

static int fail(prom_t *p, const char *line, size_t len, const char *why)
{
    snprintf(p->err, sizeof p->err, "%s: '%.*s'", why, (int)(len > 300 ? 300 : len), line);
    return -1;
}

static void sample_free(prom_sample_t *s)
{
    free(s->name);
    for (unsigned i = 0; i < s->nlabels; i++) {
        free(s->lname[i]);
        free(s->lvalue[i]);
    }
}

void prom_free(prom_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        sample_free(&p->s[i]);
    free(p->s);
    p->s = NULL;
    p->n = p->cap = 0;
}

/* {name="value",...}: at c->p (just after '{'); unescapes values. */
static const char *read_labels(cursor_t *c, prom_sample_t *s)
{
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return NULL; /* "{}" is allowed */
    }
    for (;;) {
        if (s->nlabels == PROM_LABELS_MAX)
            return "too many labels";
        char *n = read_name(c, true);
        if (!n)
            return "bad label name";
        if (strncmp(n, "__", 2) == 0) {
            free(n);
            return "reserved label name";
        }
        for (unsigned i = 0; i < s->nlabels; i++)
            if (strcmp(s->lname[i], n) == 0) {
                free(n);
                return "label named twice";
            }
        s->lname[s->nlabels] = n;
        s->lvalue[s->nlabels] = NULL;
        s->nlabels++;
        if (c->p + 1 >= c->end || c->p[0] != '=' || c->p[1] != '"')
            return "expected =\"";
        c->p += 2;
        char *v = malloc((size_t)(c->end - c->p) + 1);
        size_t vl = 0;
        for (;;) {
            if (c->p >= c->end) {
                free(v);
                return "unterminated label value";
            }
            char ch = *c->p++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                char e = c->p < c->end ? *c->p++ : 0;
                if (e != '\\' && e != '"' && e != 'n') {
                    free(v);
                    return "bad escape in label value";
                }
                ch = e == 'n' ? '\n' : e;
            }
            v[vl++] = ch;
        }
        v[vl] = '\0';
        s->lvalue[s->nlabels - 1] = v;
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return NULL;
        }
        if (c->p >= c->end || *c->p != ',')
            return "expected , or }";
        c->p++;
    }
}

static bool same_labels(const prom_sample_t *a, const prom_sample_t *b, const char *skip)
{
    unsigned na = 0, nb = 0;
    for (unsigned i = 0; i < a->nlabels; i++) {
        if (skip && strcmp(a->lname[i], skip) == 0)
            continue;
        na++;
        const char *v = prom_label(b, a->lname[i]);
        if (!v || strcmp(v, a->lvalue[i]) != 0)
            return false;
    }
    for (unsigned i = 0; i < b->nlabels; i++)
        nb += !(skip && strcmp(b->lname[i], skip) == 0);
    return na == nb;
}

/* Does sample name n belong to family fam of type type? */
static bool in_family(const char *n, const char *fam, const char *type)
{
    size_t fl = strlen(fam);
    if (strcmp(type, "histogram") != 0)
        return strcmp(n, fam) == 0;
    if (strncmp(n, fam, fl) != 0)
        return false;
    return !strcmp(n + fl, "_bucket") || !strcmp(n + fl, "_sum") || !strcmp(n + fl, "_count");
}

static bool ends_with(const char *s, const char *suf)
{
    size_t l = strlen(s), k = strlen(suf);
    return l >= k && strcmp(s + l - k, suf) == 0;
}

/* One histogram series (the _count sample c): its buckets and sum. */
static const char *check_histogram(const prom_t *p, const prom_sample_t *c)
{
    char fam[256], bname[300], sname[300];
    snprintf(fam, sizeof fam, "%.*s", (int)(strlen(c->name) - 6), c->name);
    snprintf(bname, sizeof bname, "%s_bucket", fam);
    snprintf(sname, sizeof sname, "%s_sum", fam);
    double last_le = -INFINITY, last_count = 0;
    bool inf = false, sum = false;
    size_t nb = 0;
    for (size_t i = 0; i < p->n; i++) {
        const prom_sample_t *s = &p->s[i];
        if (strcmp(s->name, sname) == 0 && same_labels(s, c, NULL))
            sum = true;
        if (strcmp(s->name, bname) != 0 || !same_labels(s, c, "le"))
            continue;
        const char *le = prom_label(s, "le");
        double v;
        if (!le || !parse_number(le, &v) || isnan(v))
            return "bucket without a valid le";
        if (inf || v <= last_le)
            return "bucket le not increasing";
        if (s->value < last_count || s->value != floor(s->value))
            return "bucket counts not cumulative whole numbers";
        last_le = v;
        last_count = s->value;
        inf = isinf(v) && v > 0;
        nb++;
    }
    if (!nb || !inf)
        return "histogram without a +Inf bucket";
    if (!sum)
        return "histogram without _sum";
    if (last_count != c->value)
        return "histogram +Inf bucket differs from _count";
    return NULL;
}

int prom_parse(const char *text, size_t len, prom_t *out)
{
    memset(out, 0, sizeof *out);
    if (len && text[len - 1] != '\n')
        return fail(out, "", 0, "output does not end with a newline");
    char fam[256] = "", type[16] = "";
    bool help = false;
    char *seen = calloc(1, len + 3); /* " fam fam ..." families already done */
    size_t seen_len = 1;
    seen[0] = ' ';
    int rc = 0;
    for (const char *line = text; line < text + len && rc == 0;) {
        const char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t ll = (size_t)(nl - line);
        cursor_t c = { line, nl };
        const char *next = nl + 1;
        if (ll == 0) {
            rc = fail(out, line, ll, "empty line");
            break;
        }
        if (line[0] == '#') {
            bool is_help = ll > 7 && !memcmp(line, "# HELP ", 7), is_type = ll > 7 && !memcmp(line, "# TYPE ", 7);
            if (!is_help && !is_type) {
                line = next; /* a plain comment */
                continue;
            }
            c.p += 7;
            char *n = read_name(&c, false);
            if (!n || c.p >= c.end || *c.p != ' ') {
                free(n);
                rc = fail(out, line, ll, "bad HELP/TYPE name");
                break;
            }
            c.p++;
            if (is_help) {
                char key[270];
                snprintf(key, sizeof key, " %s ", n);
                if (strstr(seen, key)) {
                    free(n);
                    rc = fail(out, line, ll, "family described twice");
                    break;
                }
                memcpy(seen + seen_len, key + 1, strlen(key) - 1);
                seen_len += strlen(key) - 1;
                snprintf(fam, sizeof fam, "%s", n);
                type[0] = '\0';
                help = true;
                for (const char *q = c.p; q < c.end && rc == 0; q++)
                    if (*q == '\\') {
                        if (q + 1 >= c.end || (q[1] != '\\' && q[1] != 'n'))
                            rc = fail(out, line, ll, "bad escape in HELP");
                        q++;
                    }
            } else {
                size_t tl = (size_t)(c.end - c.p);
                if (!help || strcmp(n, fam) != 0 || type[0])
                    rc = fail(out, line, ll, "TYPE not right after its HELP");
                else if (!((tl == 7 && !memcmp(c.p, "counter", 7)) || (tl == 5 && !memcmp(c.p, "gauge", 5)) ||
                           (tl == 9 && !memcmp(c.p, "histogram", 9))))
                    rc = fail(out, line, ll, "unknown TYPE");
                else if (tl == 7 && !ends_with(fam, "_total"))
                    rc = fail(out, line, ll, "counter not named *_total");
                else
                    snprintf(type, sizeof type, "%.*s", (int)tl, c.p);
            }
            free(n);
            line = next;
            continue;
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 256;
            out->s = realloc(out->s, out->cap * sizeof *out->s);
        }
        prom_sample_t *s = &out->s[out->n];
        memset(s, 0, sizeof *s);
        out->n++;
        s->name = read_name(&c, false);
        if (!s->name) {
            rc = fail(out, line, ll, "bad metric name");
            break;
        }
        if (!type[0] || !in_family(s->name, fam, type)) {
            rc = fail(out, line, ll, "sample outside its family (or before its TYPE)");
            break;
        }
        snprintf(s->type, sizeof s->type, "%s", type);
        if (c.p < c.end && *c.p == '{') {
            c.p++;
            const char *why = read_labels(&c, s);
            if (why) {
                rc = fail(out, line, ll, why);
                break;
            }
        }
        if (c.p >= c.end || *c.p != ' ') {
            rc = fail(out, line, ll, "expected one space before the value");
            break;
        }
        c.p++;
        char num[64];
        size_t nlen = (size_t)(c.end - c.p);
        if (nlen == 0 || nlen >= sizeof num || memchr(c.p, ' ', nlen)) {
            rc = fail(out, line, ll, "bad value (or a timestamp)");
            break;
        }
        memcpy(num, c.p, nlen);
        num[nlen] = '\0';
        if (!parse_number(num, &s->value)) {
            rc = fail(out, line, ll, "bad value");
            break;
        }
        bool hist_le = ends_with(s->name, "_bucket") && strcmp(type, "histogram") == 0;
        if (hist_le != (prom_label(s, "le") != NULL)) {
            rc = fail(out, line, ll, hist_le ? "bucket without le" : "le outside a bucket");
            break;
        }
        if ((strcmp(type, "counter") == 0 || strcmp(type, "histogram") == 0) && !(s->value >= 0)) {
            rc = fail(out, line, ll, "negative or NaN counter");
            break;
        }
        for (size_t i = 0; i + 1 < out->n && rc == 0; i++)
            if (strcmp(out->s[i].name, s->name) == 0 && same_labels(&out->s[i], s, NULL))
                rc = fail(out, line, ll, "series written twice");
        line = next;
    }
    free(seen);
    for (size_t i = 0; i < out->n && rc == 0; i++) {
        const prom_sample_t *s = &out->s[i];
        if (strcmp(s->type, "histogram") != 0)
            continue;
        const char *why = NULL;
        if (ends_with(s->name, "_count")) {
            why = check_histogram(out, s);
        } else {
            /* every bucket and sum has its _count */
            char cname[300];
            size_t base = strlen(s->name) - (ends_with(s->name, "_sum") ? 4 : 7);
            snprintf(cname, sizeof cname, "%.*s_count", (int)base, s->name);
            bool found = false;
            for (size_t k = 0; k < out->n && !found; k++)
                found = strcmp(out->s[k].name, cname) == 0 && same_labels(&out->s[k], s, "le");
            if (!found)
                why = "histogram series without _count";
        }
        if (why) {
            snprintf(out->err, sizeof out->err, "%s: %s", why, s->name);
            rc = -1;
        }
    }
    return rc;
}

const char *prom_label(const prom_sample_t *s, const char *label)
{
    for (unsigned i = 0; i < s->nlabels; i++)
        if (strcmp(s->lname[i], label) == 0)
            return s->lvalue[i];
    return NULL;
}

static const prom_sample_t *vfind(const prom_t *p, const char *name, va_list ap)
{
    const char *ln[PROM_LABELS_MAX], *lv[PROM_LABELS_MAX];
    unsigned n = 0;
    for (const char *k; n < PROM_LABELS_MAX && (k = va_arg(ap, const char *));) {
        ln[n] = k;
        lv[n++] = va_arg(ap, const char *);
    }
    for (size_t i = 0; i < p->n; i++) {
        const prom_sample_t *s = &p->s[i];
        if (strcmp(s->name, name) != 0 || s->nlabels != n)
            continue;
        bool ok = true;
        for (unsigned k = 0; k < n && ok; k++) {
            const char *v = prom_label(s, ln[k]);
            ok = v && strcmp(v, lv[k]) == 0;
        }
        if (ok)
            return s;
    }
    return NULL;
}

const prom_sample_t *prom_find(const prom_t *p, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const prom_sample_t *s = vfind(p, name, ap);
    va_end(ap);
    return s;
}

double prom_value(const prom_t *p, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const prom_sample_t *s = vfind(p, name, ap);
    va_end(ap);
    return s ? s->value : -1;
}

size_t prom_count(const prom_t *p, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += strcmp(p->s[i].name, name) == 0;
    return n;
}
