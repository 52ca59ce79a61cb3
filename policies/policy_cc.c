/* policy_cc: Cache-Control directive parsing (see include/policy_cc.h).
 *
 * The grammar is RFC 9110's #( token [ "=" ( token / quoted-string ) ] ).
 * Real traffic also carries extensions with quoted commas, stray
 * whitespace and junk, so the scanner always resynchronises on the next
 * comma outside a quoted string: one bad item never hides the items after
 * it (a skipped "no-store" would be a privacy bug).
 *
 * RFC 9213 targeted fields are the opposite case: a strict Structured
 * Field that the origin wrote for CDNs only, next to a Cache-Control
 * written for every cache. There the safe reading of a broken field is
 * none at all, so Cache-Control governs again. */
#include "policy_cc.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "policy_sf.h"

void policy_cc_init(policy_cc_t *cc)
{
    memset(cc, 0, sizeof *cc);
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = -1;
    cc->stale_while_revalidate = cc->stale_if_error = -1;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int64_t policy_cc_delta(const char *p, size_t n)
{
    if (!n)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        if (v < POLICY_CC_DELTA_MAX)
            v = v * 10 + (p[i] - '0');
    }
    return v > POLICY_CC_DELTA_MAX ? POLICY_CC_DELTA_MAX : v;
}

/* One directive as scanned: name, and the argument if there was one. */
typedef struct {
    const char *name;
    size_t nlen;
    bool has_arg;    /* "=" seen */
    bool arg_ok;     /* argument well-formed and not followed by junk */
    const char *arg; /* token, or the inside of the quotes */
    size_t alen;
} directive_t;

static bool name_is(const directive_t *d, const char *lit)
{
    size_t l = strlen(lit);
    return d->nlen == l && strncasecmp(d->name, lit, l) == 0;
}

/* Skip a quoted-string starting at v[*i] == '"'. Returns false when it is
 * unterminated or uses quoted-pair (never needed by the values we read). */
static bool skip_quoted(const char *v, size_t len, size_t *i)
{
    bool ok = true;
    for ((*i)++; *i < len; (*i)++) {
        if (v[*i] == '\\') {
            ok = false;
            if (*i + 1 < len)
                (*i)++;
        } else if (v[*i] == '"') {
            (*i)++;
            return ok;
        }
    }
    return false;
}

/* Keep the first value; a different later value or an invalid one marks
 * the directive bad and pins it to its most restrictive reading. */
static void merge_delta(policy_cc_t *cc, int64_t *field, uint32_t bad, int64_t val, int64_t worst)
{
    if (cc->flags & bad)
        return;
    if (val >= 0 && (*field == -1 || *field == val)) {
        *field = val;
        return;
    }
    cc->flags |= bad;
    *field = worst;
}

static int64_t arg_delta(const directive_t *d)
{
    return d->has_arg && d->arg_ok ? policy_cc_delta(d->arg, d->alen) : -1;
}

/* Append the names of a field-name list; false when it cannot be kept. */
static bool add_list(char *list, const char *a, size_t alen)
{
    size_t used = strlen(list), i = 0, n = 0;
    while (i < alen) {
        size_t j = i;
        while (j < alen && a[j] != ',')
            j++;
        size_t s = i, e = j;
        while (s < e && is_ows(a[s]))
            s++;
        while (e > s && is_ows(a[e - 1]))
            e--;
        if (s < e) {
            for (size_t k = s; k < e; k++)
                if (!is_tchar((unsigned char)a[k]))
                    return false;
            if (used + (used > 0) + (e - s) >= POLICY_CC_LIST_BYTES)
                return false;
            if (used)
                list[used++] = ',';
            for (size_t k = s; k < e; k++) {
                char c = a[k];
                list[used++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            }
            list[used] = '\0';
            n++;
        }
        i = j + 1;
    }
    return n > 0;
}

/* no-cache / private: bare form, or a field-name list. */
static void apply_listed(policy_cc_t *cc, const directive_t *d, uint32_t bare, uint32_t qualified, char *list)
{
    if (!d->has_arg || !d->arg_ok || !add_list(list, d->arg, d->alen))
        cc->flags |= bare;
    else
        cc->flags |= qualified;
}

static const struct {
    const char *name;
    uint32_t flag;
} bool_directives[] = {
    { "no-store", POLICY_CC_NO_STORE },
    { "public", POLICY_CC_PUBLIC },
    { "must-revalidate", POLICY_CC_MUST_REVALIDATE },
    { "proxy-revalidate", POLICY_CC_PROXY_REVALIDATE },
    { "must-understand", POLICY_CC_MUST_UNDERSTAND },
    { "no-transform", POLICY_CC_NO_TRANSFORM },
    { "immutable", POLICY_CC_IMMUTABLE },
    { "only-if-cached", POLICY_CC_ONLY_IF_CACHED },
};

static void apply(policy_cc_t *cc, const directive_t *d)
{
    cc->n_directives++;
    /* Directives without an argument are applied even when one (or junk)
     * follows: ignoring a malformed "no-store=1" would be the unsafe way. */
    for (size_t k = 0; k < sizeof bool_directives / sizeof bool_directives[0]; k++) {
        if (name_is(d, bool_directives[k].name)) {
            cc->flags |= bool_directives[k].flag;
            return;
        }
    }
    if (name_is(d, "max-age"))
        merge_delta(cc, &cc->max_age, POLICY_CC_BAD_MAX_AGE, arg_delta(d), 0);
    else if (name_is(d, "s-maxage"))
        merge_delta(cc, &cc->s_maxage, POLICY_CC_BAD_S_MAXAGE, arg_delta(d), 0);
    else if (name_is(d, "min-fresh"))
        merge_delta(cc, &cc->min_fresh, POLICY_CC_BAD_MIN_FRESH, arg_delta(d), POLICY_CC_DELTA_MAX);
    else if (name_is(d, "stale-while-revalidate"))
        merge_delta(cc, &cc->stale_while_revalidate, POLICY_CC_BAD_SWR, arg_delta(d), -1);
    else if (name_is(d, "stale-if-error"))
        merge_delta(cc, &cc->stale_if_error, POLICY_CC_BAD_SIE, arg_delta(d), -1);
    else if (name_is(d, "max-stale")) {
        int64_t v = d->has_arg ? arg_delta(d) : POLICY_CC_STALE_ANY;
        merge_delta(cc, &cc->max_stale, POLICY_CC_BAD_MAX_STALE, v, -1);
        if (cc->max_stale == POLICY_CC_STALE_ANY)
            cc->flags |= POLICY_CC_MAX_STALE_ANY;
        else
            cc->flags &= ~(uint32_t)POLICY_CC_MAX_STALE_ANY;
    } else if (name_is(d, "no-cache"))
        apply_listed(cc, d, POLICY_CC_NO_CACHE, POLICY_CC_NO_CACHE_FIELDS, cc->no_cache_fields);
    else if (name_is(d, "private"))
        apply_listed(cc, d, POLICY_CC_PRIVATE, POLICY_CC_PRIVATE_FIELDS, cc->private_fields);
    /* anything else: an extension we do not implement; ignore it */
}

void policy_cc_parse(policy_cc_t *cc, const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        if (i >= len)
            break;
        directive_t d = { .name = v + i, .arg_ok = true };
        while (i < len && is_tchar((unsigned char)v[i]))
            i++;
        d.nlen = (size_t)(v + i - d.name);
        while (i < len && is_ows(v[i]))
            i++;
        if (d.nlen && i < len && v[i] == '=') {
            d.has_arg = true;
            for (i++; i < len && is_ows(v[i]); i++)
                ;
            if (i < len && v[i] == '"') {
                size_t q = i;
                d.arg_ok = skip_quoted(v, len, &i);
                d.arg = v + q + 1;
                d.alen = d.arg_ok ? i - q - 2 : 0;
            } else {
                d.arg = v + i;
                while (i < len && is_tchar((unsigned char)v[i]))
                    i++;
                d.alen = (size_t)(v + i - d.arg);
            }
            while (i < len && is_ows(v[i]))
                i++;
        }
        if (i < len && v[i] != ',') {
            /* junk: resynchronise on the next comma outside quotes */
            d.arg_ok = false;
            while (i < len && v[i] != ',') {
                if (v[i] == '"')
                    skip_quoted(v, len, &i);
                else
                    i++;
            }
        }
        if (d.nlen)
            apply(cc, &d);
    }
}

size_t policy_cc_parse_fields(policy_cc_t *cc, const http_fields_t *h, const char *name)
{
    size_t n = 0;
    for (long i = http_fields_find(h, name, 0); i >= 0; i = http_fields_find(h, name, (size_t)i + 1)) {
        http_slice_t v = http_fields_value(h, (size_t)i);
        policy_cc_parse(cc, v.p, v.len);
        n++;
    }
    return n;
}

bool policy_cc_field_listed(const policy_cc_t *cc, policy_cc_list_t which, const char *name, size_t nlen)
{
    const char *list = which == POLICY_CC_LIST_NO_CACHE ? cc->no_cache_fields : cc->private_fields;
    if (!nlen)
        return false;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == nlen && strncasecmp(p, name, nlen) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static bool key_is(const policy_sf_node_t *m, const char *lit)
{
    size_t l = strlen(lit);
    return m->klen == l && memcmp(m->key, lit, l) == 0;
}

/* One member of a targeted Dictionary. Keys are unique (the Dictionary
 * keeps the last value of a repeated key), so plain assignment is the
 * whole merge. RFC 9213 section 2.1 would drop only a directive whose
 * value has the wrong type; we reject the field instead (issue 8): with
 * max-age="10000" or max-age=1.5 the origin's intent is unknown, and
 * obeying the rest of the field, or nothing of it but its presence,
 * would let it switch off a Cache-Control (no-store, private) that says
 * what the origin wants from every cache. Hence -EINVAL for those. */
static int apply_sf(policy_cc_t *cc, const policy_sf_node_t *m)
{
    bool yes = m->type == POLICY_SF_BOOLEAN && m->num == 1;
    int64_t *delta = NULL;
    cc->n_directives++;
    for (size_t k = 0; k < sizeof bool_directives / sizeof bool_directives[0]; k++) {
        if (key_is(m, bool_directives[k].name)) {
            if (!yes)
                return -EINVAL;
            cc->flags |= bool_directives[k].flag;
            return 0;
        }
    }
    if (key_is(m, "max-age"))
        delta = &cc->max_age;
    else if (key_is(m, "s-maxage"))
        delta = &cc->s_maxage;
    else if (key_is(m, "stale-while-revalidate"))
        delta = &cc->stale_while_revalidate;
    else if (key_is(m, "stale-if-error"))
        delta = &cc->stale_if_error;
    if (delta) {
        if (m->type != POLICY_SF_INTEGER || m->num < 0)
            return -EINVAL;
        *delta = m->num > POLICY_CC_DELTA_MAX ? POLICY_CC_DELTA_MAX : m->num;
        return 0;
    }
    bool no_cache = key_is(m, "no-cache");
    if (no_cache || key_is(m, "private")) {
        uint32_t bare = no_cache ? POLICY_CC_NO_CACHE : POLICY_CC_PRIVATE;
        uint32_t qualified = no_cache ? POLICY_CC_NO_CACHE_FIELDS : POLICY_CC_PRIVATE_FIELDS;
        char *list = no_cache ? cc->no_cache_fields : cc->private_fields;
        if (!yes && m->type != POLICY_SF_STRING)
            return -EINVAL;
        /* Field names never need escapes; one that has them is read as the
         * unqualified directive, which is always permitted. */
        directive_t d = { .name = m->key, .nlen = m->klen, .has_arg = !yes, .arg_ok = !m->escaped,
                          .arg = m->p, .alen = m->len };
        apply_listed(cc, &d, bare, qualified, list);
    }
    /* anything else: an extension we do not implement; any value is fine */
    return 0;
}

int policy_cc_parse_targeted(policy_cc_t *cc, const http_fields_t *h, const char *name)
{
    char buf[POLICY_CC_TARGETED_BYTES];
    policy_sf_node_t nodes[POLICY_CC_TARGETED_NODES];
    policy_sf_t sf;
    http_slice_t v;
    int lines, rc;

    policy_cc_init(cc);
    if (strcasecmp(name, "Surrogate-Control") == 0)
        return (int)policy_cc_parse_fields(cc, h, name);
    lines = policy_sf_join(h, name, buf, sizeof buf, &v);
    if (lines <= 0 || v.len > sizeof buf) { /* one line is not copied: same cap */
        rc = lines ? -E2BIG : 0;
        goto out;
    }
    policy_sf_init(&sf, nodes, sizeof nodes / sizeof nodes[0]);
    rc = policy_sf_parse(&sf, POLICY_SF_DICT, v.p, v.len);
    if (rc) {
        rc = rc == POLICY_SF_ESYNTAX ? -EINVAL : -E2BIG;
        goto out;
    }
    for (int32_t i = sf.first; i >= 0 && !rc; i = nodes[i].next)
        rc = apply_sf(cc, &nodes[i]);
    if (!rc)
        rc = lines;
out:
    if (rc < 0)
        policy_cc_init(cc);
    return rc;
}
