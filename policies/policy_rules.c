/* policy_rules: per-path rules: the key table, parsing, ordering and
 * matching of patterns, and the glue that applies a rule to policy_cache
 * and policy_key (see include/policy_rules.h).
 *
 * Patterns are normalised when parsed (host lowercased, path escapes as
 * the cache key writes them) so that matching is a plain glob comparison
 * against what the request pipeline already has, and so that two
 * spellings of one pattern sort and match identically. */
#include "policy_rules.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define OFF(f) offsetof(policy_rule_t, f)

/* Index of each row below; bit i of policy_rule_t.set. */
enum {
    K_DEFAULT_TTL, K_MIN_TTL, K_MAX_TTL, K_ORIGIN_CC, K_SWR, K_SIE, K_SWS, K_HEURISTIC_MAX,
    K_QUERY, K_COOKIE, K_STORE_SET_COOKIE, K_CDN_CC, K_COUNT
};

const policy_rule_setting_t policy_rule_settings[] = {
    [K_DEFAULT_TTL] = { "default_ttl", POLICY_RULE_DURATION, "none", NULL, OFF(default_ttl),
                        "freshness lifetime when the origin gives none (no s-maxage, max-age, Expires); replaces the heuristic" },
    [K_MIN_TTL] = { "min_ttl", POLICY_RULE_DURATION, "0", NULL, OFF(min_ttl),
                    "floor of the freshness lifetime of stored responses (never makes a response storable)" },
    [K_MAX_TTL] = { "max_ttl", POLICY_RULE_DURATION, "none", NULL, OFF(max_ttl),
                    "cap of the freshness lifetime of stored responses" },
    [K_ORIGIN_CC] = { "origin_cache_control", POLICY_RULE_ENUM, "honour", "honour|override", OFF(origin_cache_control),
                      "override: ignore the origin's Cache-Control, CDN-Cache-Control and Expires for heuristically cacheable statuses and use default_ttl (required)" },
    [K_SWR] = { "stale_while_revalidate", POLICY_RULE_DURATION, "none", NULL, OFF(stale_while_revalidate),
                "serve stale this long while revalidating, when the origin gives no window and allows stale" },
    [K_SIE] = { "stale_if_error", POLICY_RULE_DURATION, "none", NULL, OFF(stale_if_error),
                "serve stale this long when the origin fails, when the origin gives no window and allows stale" },
    [K_SWS] = { "stale_with_s_maxage", POLICY_RULE_BOOL, "off", NULL, OFF(stale_with_s_maxage),
                "allow stale windows despite s-maxage (off: RFC 9111 4.2.4, s-maxage implies proxy-revalidate)" },
    [K_HEURISTIC_MAX] = { "heuristic_max", POLICY_RULE_DURATION, "1d", NULL, OFF(heuristic_max),
                          "cap of the heuristic lifetime (10% of Date - Last-Modified)" },
    [K_QUERY] = { "query", POLICY_RULE_LIST, "all", "all|none|sorted|keep NAME...|drop GLOB...", OFF(query),
                  "query in the cache key: as sent, dropped, sorted by name, only the named parameters, or all but the matching ones (kept ones sorted)" },
    [K_COOKIE] = { "cookie", POLICY_RULE_ENUM, "ignore", "ignore|bypass", OFF(cookie),
                   "bypass: requests carrying Cookie go upstream uncached (fwd=bypass)" },
    [K_STORE_SET_COOKIE] = { "store_set_cookie", POLICY_RULE_BOOL, "off", NULL, OFF(store_set_cookie),
                             "store responses carrying Set-Cookie, without the Set-Cookie field" },
    [K_CDN_CC] = { "cdn_cache_control", POLICY_RULE_ENUM, "honour", "honour|ignore", OFF(cdn_cache_control),
                   "ignore: CDN-Cache-Control does not replace Cache-Control for this cache" },
    [K_COUNT] = { 0 },
};

_Static_assert(K_COUNT <= 32, "policy_rule_t.set has 32 bits");

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

void policy_rule_defaults(policy_rule_t *r)
{
    memset(r, 0, sizeof *r);
    strcpy(r->pattern, "*");
    strcpy(r->path, "*");
    r->host_kind = POLICY_RULE_HOST_ANY;
    for (const policy_rule_setting_t *s = policy_rule_settings; s->key; s++)
        if (policy_rule_set(r, s->key, s->def, NULL, 0))
            abort(); /* a bad default is a bug in the table above */
    r->set = 0;
}

/* ---- patterns ---- */

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static unsigned count_literals(const char *g)
{
    unsigned n = 0;
    for (; *g; g++)
        n += *g != '*' && *g != '?';
    return n;
}

/* Append c to dst[*w], collapsing "**"; false when it does not fit. */
static bool put(char *dst, size_t *w, char c)
{
    if (c == '*' && *w && dst[*w - 1] == '*')
        return true;
    if (*w + 1 >= POLICY_RULE_PATTERN_MAX)
        return false;
    dst[(*w)++] = c;
    dst[*w] = '\0';
    return true;
}

static int parse_host(policy_rule_t *r, const char *h, size_t n, char *err, size_t errlen)
{
    size_t w = 0;
    bool literal = n && h[0] == '[';
    r->host[0] = '\0';
    if (literal && h[n - 1] != ']')
        return fail(err, errlen, "pattern '%s': expected ']' closing the IPv6 host", r->pattern);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        bool ok = literal ? (hexval(c) >= 0 || c == ':' || c == '.' || ((c == '[' || c == ']') && (i == 0 || i == n - 1)))
                          : is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '*' || c == '?';
        if (!ok && c == ':')
            return fail(err, errlen, "pattern '%s': ports are not matched, drop ':PORT' from the host", r->pattern);
        if (!ok)
            return fail(err, errlen, "pattern '%s': expected a host of letters, digits, '-', '.', '_', '*', '?', got '%c'",
                        r->pattern, c);
        put(r->host, &w, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
    }
    while (w && r->host[w - 1] == '.') /* "example.com." is example.com */
        r->host[--w] = '\0';
    if (!w)
        return fail(err, errlen, "pattern '%s': empty host before the path", r->pattern);
    if (strcmp(r->host, "*") == 0) {
        r->host[0] = '\0';
        r->host_kind = POLICY_RULE_HOST_ANY;
    } else {
        r->host_kind = strpbrk(r->host, "*?") ? POLICY_RULE_HOST_GLOB : POLICY_RULE_HOST_LITERAL;
    }
    r->host_literals = count_literals(r->host);
    return 0;
}

/* The path glob, written as policy_cache_key writes paths (escapes of
 * unreserved bytes decoded, hex uppercased, bytes a URI may not carry
 * raw escaped), so a pattern matches the key's spelling of the path. */
static int parse_path(policy_rule_t *r, const char *p, size_t n, char *err, size_t errlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    bool fits = true;
    r->path[0] = '\0';
    for (size_t i = 0; i < n && fits; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '[' || c == ']')
            return fail(err, errlen, "pattern '%s': character classes ('[', ']') are not supported", r->pattern);
        if (c == '#')
            return fail(err, errlen, "pattern '%s': '#' never reaches the cache (fragment)", r->pattern);
        if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)p[i + 1]) : -1, lo = i + 2 < n ? hexval((unsigned char)p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return fail(err, errlen, "pattern '%s': expected two hex digits after '%%'", r->pattern);
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
            if (is_unreserved(c)) {
                fits = put(r->path, &w, (char)c);
                continue;
            }
        } else if (c < 0x80 && !strchr("\"<>\\^`{|}", c)) {
            fits = put(r->path, &w, (char)c);
            continue;
        }
        fits = put(r->path, &w, '%') && put(r->path, &w, hex[c >> 4]) && put(r->path, &w, hex[c & 15]);
    }
    if (!fits)
        return fail(err, errlen, "pattern '%s': path longer than %d bytes once escaped", r->pattern,
                    POLICY_RULE_PATTERN_MAX - 1);
    for (const char *s = r->path; *s; s++) {
        if (*s != '/')
            continue;
        size_t seg = strcspn(s + 1, "/");
        if ((seg == 1 && s[1] == '.') || (seg == 2 && s[1] == '.' && s[2] == '.'))
            return fail(err, errlen, "pattern '%s': '.' and '..' segments never occur in a normalised path", r->pattern);
    }
    r->path_literals = count_literals(r->path);
    return 0;
}

int policy_rule_parse_pattern(policy_rule_t *r, const char *pattern, char *err, size_t errlen)
{
    size_t n = pattern ? strlen(pattern) : 0;
    if (!n)
        return fail(err, errlen, "empty rule pattern: expected /PATH, HOST/PATH or *");
    if (n >= POLICY_RULE_PATTERN_MAX)
        return fail(err, errlen, "rule pattern longer than %d bytes", POLICY_RULE_PATTERN_MAX - 1);
    memcpy(r->pattern, pattern, n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pattern[i];
        if (c <= 0x20 || c == 0x7f)
            return fail(err, errlen, "pattern '%s': whitespace or control character", pattern);
    }
    r->host[0] = '\0';
    r->host_kind = POLICY_RULE_HOST_ANY;
    r->host_literals = 0;
    if (strcmp(pattern, "*") == 0 || strcmp(pattern, "**") == 0) {
        strcpy(r->path, "*");
        r->path_literals = 0;
        return 0;
    }
    const char *slash = strchr(pattern, '/');
    if (!slash)
        return fail(err, errlen, "pattern '%s': expected /PATH, HOST/PATH or *; a host needs a path glob after it",
                    pattern);
    int rc = 0;
    if (slash > pattern)
        rc = parse_host(r, pattern, (size_t)(slash - pattern), err, errlen);
    return rc ? rc : parse_path(r, slash, n - (size_t)(slash - pattern), err, errlen);
}

/* Sort key order as documented in the header; true when a goes strictly
 * before b. */
static bool more_specific(const policy_rule_t *a, const policy_rule_t *b)
{
    if (a->host_kind != b->host_kind)
        return a->host_kind > b->host_kind;
    if (a->host_literals != b->host_literals)
        return a->host_literals > b->host_literals;
    return a->path_literals > b->path_literals;
}

void policy_rules_sort(policy_rule_t *rules, size_t n)
{
    /* Insertion sort: stable, in place, and rule lists are short. */
    for (size_t i = 1; i < n; i++) {
        if (!more_specific(&rules[i], &rules[i - 1]))
            continue;
        policy_rule_t t = rules[i];
        size_t j = i;
        for (; j > 0 && more_specific(&t, &rules[j - 1]); j--)
            rules[j] = rules[j - 1];
        rules[j] = t;
    }
}

bool policy_rule_matches(const policy_rule_t *r, const char *host, size_t hostlen, const char *path, size_t plen)
{
    if (r->host_kind != POLICY_RULE_HOST_ANY) {
        http_slice_t h = http_trim((http_slice_t){ host, host ? hostlen : 0 });
        size_t n = 0;
        if (h.len && h.p[0] == '[') {
            const char *rb = memchr(h.p, ']', h.len);
            n = rb ? (size_t)(rb - h.p) + 1 : h.len;
        } else {
            while (n < h.len && h.p[n] != ':')
                n++;
        }
        while (n && h.p[n - 1] == '.')
            n--;
        if (!n || !policy_key_glob_match(r->host, strlen(r->host), h.p, n, true))
            return false;
    }
    size_t pl = 0;
    while (path && pl < plen && path[pl] != '?' && path[pl] != '#')
        pl++;
    return policy_key_glob_match(r->path, strlen(r->path), path ? path : "", pl, false);
}

const policy_rule_t *policy_rules_match(const policy_rule_t *rules, size_t n, const char *host, size_t hostlen,
                                        const char *path, size_t plen)
{
    for (size_t i = 0; i < n; i++)
        if (policy_rule_matches(&rules[i], host, hostlen, path, plen))
            return &rules[i];
    return NULL;
}

/* ---- keys ---- */

static const policy_rule_setting_t *lookup(const char *key)
{
    for (const policy_rule_setting_t *s = policy_rule_settings; s->key; s++)
        if (strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

static int parse_duration(const policy_rule_setting_t *s, const char *v, int64_t *out, char *err, size_t errlen)
{
    bool none_ok = strcmp(s->def, "none") == 0;
    uint64_t ms;
    if (none_ok && strcmp(v, "none") == 0) {
        *out = -1;
        return 0;
    }
    if (config_parse_duration(v, &ms))
        return fail(err, errlen, "%s: expected a duration such as 30s, 5m, 2h or 1d%s, got '%s'", s->key,
                    none_ok ? " (or none)" : "", v);
    if (ms % 1000)
        return fail(err, errlen, "%s: expected whole seconds, got '%s'", s->key, v);
    if (ms / 1000 > (uint64_t)POLICY_RULE_DURATION_MAX)
        return fail(err, errlen, "%s: '%s' is over the limit of %" PRId64 "s", s->key, v, POLICY_RULE_DURATION_MAX);
    *out = (int64_t)(ms / 1000);
    return 0;
}

static int parse_bool(const policy_rule_setting_t *s, const char *v, bool *out, char *err, size_t errlen)
{
    static const char *const yes[] = { "on", "yes", "true", "1" }, *const no[] = { "off", "no", "false", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return 0;
        }
    }
    return fail(err, errlen, "%s: expected on or off, got '%s'", s->key, v);
}

static int parse_enum(const policy_rule_setting_t *s, const char *v, unsigned *out, char *err, size_t errlen)
{
    size_t vl = strlen(v);
    unsigned idx = 0;
    for (const char *p = s->choices; *p; idx++) {
        size_t l = strcspn(p, "|");
        if (l == vl && strncmp(p, v, l) == 0) {
            *out = idx;
            return 0;
        }
        p += l + (p[l] == '|');
    }
    return fail(err, errlen, "%s: expected %s, got '%s'", s->key, s->choices, v);
}

/* "all" | "none" | "sorted" | "keep NAME..." | "drop GLOB...": items
 * separated by spaces, tabs or commas. */
static int parse_query(policy_rule_t *r, const char *v, char *err, size_t errlen)
{
    static const char *const modes[] = { "all", "none", "sorted", "keep", "drop" };
    static const char sep[] = " \t,";
    const char *p = v + strspn(v, sep);
    size_t wl = strcspn(p, sep);
    int mode = -1;
    for (int i = 0; i < 5; i++)
        if (strlen(modes[i]) == wl && strncmp(p, modes[i], wl) == 0)
            mode = i;
    if (mode < 0)
        return fail(err, errlen, "query: expected all, none, sorted, keep NAME... or drop GLOB..., got '%s'", v);
    p += wl;
    p += strspn(p, sep);
    policy_query_mode_t m = (policy_query_mode_t)mode;
    bool lists = m == POLICY_QUERY_KEEP || m == POLICY_QUERY_DROP;
    if (!lists && *p)
        return fail(err, errlen, "query: '%s' takes no names, got '%s'", modes[mode], v);
    if (lists && !*p)
        return fail(err, errlen, "query: expected at least one %s after '%s'",
                    m == POLICY_QUERY_KEEP ? "parameter name" : "parameter glob", modes[mode]);
    unsigned n = 0;
    char params[POLICY_KEY_PARAMS_MAX][POLICY_RULE_PARAM_MAX];
    memset(params, 0, sizeof params); /* equal rules are equal bytes */
    while (*p) {
        wl = strcspn(p, sep);
        if (n == POLICY_KEY_PARAMS_MAX)
            return fail(err, errlen, "query: more than %d names", POLICY_KEY_PARAMS_MAX);
        if (wl >= POLICY_RULE_PARAM_MAX)
            return fail(err, errlen, "query: name '%.*s' longer than %d bytes", (int)wl, p, POLICY_RULE_PARAM_MAX - 1);
        for (size_t i = 0; i < wl; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c < 0x21 || c == 0x7f || c == '&' || c == '=' || c == '#' || c == '%')
                return fail(err, errlen, "query: '%.*s': names are written decoded, without '&', '=', '#', '%%' or controls",
                            (int)wl, p);
            if (m == POLICY_QUERY_KEEP && (c == '*' || c == '?'))
                return fail(err, errlen, "query: keep takes names, not globs ('%.*s'); use drop for patterns", (int)wl, p);
        }
        memcpy(params[n], p, wl);
        params[n++][wl] = '\0';
        p += wl;
        p += strspn(p, sep);
    }
    r->query = m;
    r->n_params = n;
    memcpy(r->params, params, sizeof params);
    return 0;
}

int policy_rule_set(policy_rule_t *r, const char *key, const char *value, char *err, size_t errlen)
{
    const policy_rule_setting_t *s = key ? lookup(key) : NULL;
    if (!s)
        return fail(err, errlen, "unknown rule key '%s' (see --help for the list)", key ? key : "");
    if (!value)
        value = "";
    char *field = (char *)r + s->offset;
    int rc = -EINVAL;
    switch (s->type) {
    case POLICY_RULE_DURATION: {
        int64_t d = 0;
        if (!(rc = parse_duration(s, value, &d, err, errlen)))
            memcpy(field, &d, sizeof d);
        break;
    }
    case POLICY_RULE_BOOL: {
        bool b = false;
        if (!(rc = parse_bool(s, value, &b, err, errlen)))
            memcpy(field, &b, sizeof b);
        break;
    }
    case POLICY_RULE_ENUM: {
        unsigned u = 0;
        if (!(rc = parse_enum(s, value, &u, err, errlen)))
            memcpy(field, &u, sizeof u);
        break;
    }
    case POLICY_RULE_LIST:
        rc = parse_query(r, value, err, errlen);
        break;
    }
    if (!rc)
        r->set |= 1u << (s - policy_rule_settings);
    return rc;
}

int policy_rule_finish(policy_rule_t *r, char *err, size_t errlen)
{
    if (r->origin_cache_control == POLICY_RULE_OVERRIDE && r->default_ttl < 0)
        return fail(err, errlen, "rule '%s': origin_cache_control = override needs default_ttl", r->pattern);
    if (r->max_ttl >= 0 && r->min_ttl > r->max_ttl)
        return fail(err, errlen, "rule '%s': min_ttl is larger than max_ttl", r->pattern);
    if (r->default_ttl >= 0 && (r->default_ttl < r->min_ttl || (r->max_ttl >= 0 && r->default_ttl > r->max_ttl)))
        return fail(err, errlen, "rule '%s': default_ttl is outside [min_ttl, max_ttl]", r->pattern);
    if ((r->query == POLICY_QUERY_KEEP || r->query == POLICY_QUERY_DROP) && !r->n_params)
        return fail(err, errlen, "rule '%s': query keep / drop needs names", r->pattern);
    return 0;
}

/* ---- printing ---- */

static void format_duration(char *out, size_t len, int64_t s)
{
    static const struct {
        int64_t unit;
        char suffix;
    } units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' } };
    if (s < 0) {
        snprintf(out, len, "none");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (s && s % units[i].unit == 0) {
            snprintf(out, len, "%" PRId64 "%c", s / units[i].unit, units[i].suffix);
            return;
        }
    }
    snprintf(out, len, s ? "%" PRId64 "s" : "%" PRId64, s);
}

/* The value of setting s in r, in file syntax (re-parses to the same). */
static void format_value(char *out, size_t len, const policy_rule_t *r, const policy_rule_setting_t *s)
{
    const char *field = (const char *)r + s->offset;
    switch (s->type) {
    case POLICY_RULE_DURATION: {
        int64_t d = 0;
        memcpy(&d, field, sizeof d);
        format_duration(out, len, d);
        return;
    }
    case POLICY_RULE_BOOL:
        snprintf(out, len, "%s", *(const bool *)field ? "on" : "off");
        return;
    case POLICY_RULE_ENUM: {
        unsigned u = *(const unsigned *)field;
        const char *p = s->choices;
        for (unsigned i = 0; i < u && strchr(p, '|'); i++)
            p = strchr(p, '|') + 1;
        snprintf(out, len, "%.*s", (int)strcspn(p, "|"), p);
        return;
    }
    case POLICY_RULE_LIST: {
        static const char *const modes[] = { "all", "none", "sorted", "keep", "drop" };
        size_t w = (size_t)snprintf(out, len, "%s", modes[r->query]);
        for (unsigned i = 0; i < r->n_params && w < len; i++)
            w += (size_t)snprintf(out + w, len - w, " %s", r->params[i]);
        return;
    }
    }
}

void policy_rule_print(FILE *out, const policy_rule_t *r)
{
    policy_rule_t def;
    if (!r) {
        policy_rule_defaults(&def);
        r = &def;
        fprintf(out, "# no rule matches: built-in defaults\n");
    }
    static const char *const kinds[] = { "any", "glob", "literal" };
    fprintf(out, "[rule %s]\n# host %s%s%s, path glob %s\n", r->pattern, kinds[r->host_kind], *r->host ? " " : "",
            r->host, r->path);
    for (const policy_rule_setting_t *s = policy_rule_settings; s->key; s++) {
        char v[POLICY_KEY_PARAMS_MAX * POLICY_RULE_PARAM_MAX + 16];
        format_value(v, sizeof v, r, s);
        bool dflt = !(r->set & (1u << (s - policy_rule_settings)));
        fprintf(out, "%s = %s%s\n", s->key, v, dflt ? "  # default" : "");
    }
}

static const char *type_doc(const policy_rule_setting_t *s)
{
    switch (s->type) {
    case POLICY_RULE_DURATION: return strcmp(s->def, "none") == 0 ? "duration or none" : "duration";
    case POLICY_RULE_BOOL: return "on|off";
    case POLICY_RULE_ENUM:
    case POLICY_RULE_LIST: return s->choices;
    }
    return "";
}

void policy_rule_print_help(FILE *out)
{
    fprintf(out, "Rule keys ([rule PATTERN] sections; PATTERN = /PATH-GLOB, HOST-GLOB/PATH-GLOB or *):\n");
    for (const policy_rule_setting_t *s = policy_rule_settings; s->key; s++)
        fprintf(out, "  %-24s %s (default %s)\n  %-24s %s\n", s->key, type_doc(s), s->def, "", s->doc);
}

void policy_rule_print_markdown(FILE *out)
{
    fprintf(out, "| key | values | default | description |\n|---|---|---|---|\n");
    for (const policy_rule_setting_t *s = policy_rule_settings; s->key; s++) {
        fprintf(out, "| `%s` | ", s->key);
        /* '|' separates table cells in markdown */
        for (const char *p = type_doc(s); *p; p++)
            fputs(*p == '|' ? " \\| " : (char[2]){ *p, 0 }, out);
        fprintf(out, " | `%s` | %s |\n", s->def, s->doc);
    }
}

/* ---- applying a rule ---- */

void policy_rule_opts(const policy_rule_t *r, policy_opts_t *out)
{
    policy_opts_init(out);
    if (!r)
        return;
    out->heuristic_max = r->heuristic_max;
    out->store_cookies = r->store_set_cookie;
    out->stale_with_s_maxage = r->stale_with_s_maxage;
    if (r->cdn_cache_control == POLICY_RULE_CDN_IGNORE)
        out->targeted_cc[0] = NULL;
}

void policy_rule_key_opts(const policy_rule_t *r, policy_key_opts_t *out)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return;
    out->query = r->query;
    out->n_params = r->n_params;
    for (unsigned i = 0; i < r->n_params && i < POLICY_KEY_PARAMS_MAX; i++)
        out->params[i] = r->params[i];
}

bool policy_rule_bypass(const policy_rule_t *r, const http_fields_t *req)
{
    return r && r->cookie == POLICY_RULE_COOKIE_BYPASS && req && http_fields_get(req, "Cookie", NULL);
}

static bool overrides(const policy_rule_t *r, const policy_resp_t *resp)
{
    return r && r->origin_cache_control == POLICY_RULE_OVERRIDE && r->default_ttl >= 0 &&
           policy_status_heuristic(resp->status);
}

bool policy_rule_storable(const policy_rule_t *r, const policy_req_t *q, const policy_resp_t *resp,
                          const policy_opts_t *opts, const char **why)
{
    policy_opts_t tmp;
    if (r && !opts) {
        policy_rule_opts(r, &tmp);
        opts = &tmp;
    }
    if (!overrides(r, resp))
        return policy_storable(q, resp, opts, why);
    /* The origin's directives and Expires are gone; what remains is what
     * no rule may override. AUTH_OK stays: RFC 9111 3.5 lets only the
     * origin allow storing an answer to an authenticated request. */
    policy_resp_t o = *resp;
    policy_cc_init(&o.cc);
    o.cc.max_age = r->default_ttl;
    o.expires = -1;
    o.targeted = -1;
    o.flags &= ~(uint32_t)(POLICY_RESP_HAS_CC | POLICY_RESP_TARGETED | POLICY_RESP_EXPIRES_BAD);
    return policy_storable(q, &o, opts, why);
}

void policy_rule_entry(const policy_rule_t *r, const policy_resp_t *resp, policy_entry_t *e)
{
    if (!r)
        return;
    bool override = overrides(r, resp);
    if (override) {
        e->flags &= ~(uint32_t)(POLICY_ENTRY_MUST_REVALIDATE | POLICY_ENTRY_PROXY_REVALIDATE | POLICY_ENTRY_NO_CACHE |
                                POLICY_ENTRY_S_MAXAGE | POLICY_ENTRY_HEURISTIC | POLICY_ENTRY_IMMUTABLE |
                                POLICY_ENTRY_TARGETED | POLICY_ENTRY_NO_STALE);
        e->freshness_lifetime = r->default_ttl;
        e->stale_while_revalidate = -1;
        e->stale_if_error = -1;
    } else if ((e->flags & POLICY_ENTRY_HEURISTIC) && r->default_ttl >= 0) {
        e->freshness_lifetime = r->default_ttl;
        e->flags &= ~(uint32_t)POLICY_ENTRY_HEURISTIC;
    }
    if (e->freshness_lifetime < r->min_ttl)
        e->freshness_lifetime = r->min_ttl;
    if (r->max_ttl >= 0 && e->freshness_lifetime > r->max_ttl)
        e->freshness_lifetime = r->max_ttl;

    /* Same test as policy_entry_init: the rule adds windows only where the
     * origin allowed stale serving and gave none of its own. */
    uint32_t hard = POLICY_ENTRY_MUST_REVALIDATE | POLICY_ENTRY_PROXY_REVALIDATE | POLICY_ENTRY_NO_CACHE;
    bool allowed = !(e->flags & hard) && (!(e->flags & POLICY_ENTRY_S_MAXAGE) || r->stale_with_s_maxage);
    if (!allowed)
        return;
    if ((override || resp->cc.stale_while_revalidate < 0) && r->stale_while_revalidate >= 0)
        e->stale_while_revalidate = r->stale_while_revalidate;
    if ((override || resp->cc.stale_if_error < 0) && r->stale_if_error >= 0)
        e->stale_if_error = r->stale_if_error;
}
