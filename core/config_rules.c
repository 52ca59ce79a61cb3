/* config_rules: the `[rule PATTERN]` sections of a node's configuration:
 * the table of rule keys, reading a pattern and key = value lines into a
 * policy_rule_t, the cross-key checks, and printing rules back (for
 * --check-config, --help and the README's rule table).
 *
 * config.c reads the file and prefixes FILE:LINE; what a rule then
 * decides is policies/policy_rules.c. Patterns are normalised here (host
 * lowercased, path escapes as the cache key writes them) so that
 * matching there is a plain glob comparison against what the request
 * pipeline already has, and so that two spellings of one pattern sort and
 * match identically. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define OFF(f) offsetof(policy_rule_t, f)

/* Index of each row below; bit i of policy_rule_t.set. */
enum {
    K_DEFAULT_TTL, K_MIN_TTL, K_MAX_TTL, K_ORIGIN_CC, K_SWR, K_SIE, K_SWS, K_HEURISTIC_MAX,
    K_QUERY, K_COOKIE, K_STORE_SET_COOKIE, K_CDN_CC, K_IMAGE, K_IMAGE_WIDTHS, K_IMAGE_ROUND, K_RATE, K_COUNT
};

/* def is in file syntax and parses to what policy_rule_defaults sets (a
 * unit test holds the two together). */
const config_rule_setting_t config_rule_settings[] = {
    [K_DEFAULT_TTL] = { "default_ttl", CONFIG_RULE_DURATION, "none", NULL, OFF(default_ttl),
                        "freshness lifetime when the origin gives none (no s-maxage, max-age, Expires); replaces the heuristic" },
    [K_MIN_TTL] = { "min_ttl", CONFIG_RULE_DURATION, "0", NULL, OFF(min_ttl),
                    "floor of the freshness lifetime of stored responses (never makes a response storable)" },
    [K_MAX_TTL] = { "max_ttl", CONFIG_RULE_DURATION, "none", NULL, OFF(max_ttl),
                    "cap of the freshness lifetime of stored responses" },
    [K_ORIGIN_CC] = { "origin_cache_control", CONFIG_RULE_ENUM, "honour", "honour|override", OFF(origin_cache_control),
                      "override: ignore the origin's Cache-Control, CDN-Cache-Control and Expires for heuristically cacheable statuses and use default_ttl (required)" },
    [K_SWR] = { "stale_while_revalidate", CONFIG_RULE_DURATION, "none", NULL, OFF(stale_while_revalidate),
                "serve stale this long while revalidating, when the origin gives no window and allows stale" },
    [K_SIE] = { "stale_if_error", CONFIG_RULE_DURATION, "none", NULL, OFF(stale_if_error),
                "serve stale this long when the origin fails, when the origin gives no window and allows stale" },
    [K_SWS] = { "stale_with_s_maxage", CONFIG_RULE_BOOL, "off", NULL, OFF(stale_with_s_maxage),
                "allow stale windows despite s-maxage (off: RFC 9111 4.2.4, s-maxage implies proxy-revalidate)" },
    [K_HEURISTIC_MAX] = { "heuristic_max", CONFIG_RULE_DURATION, "1d", NULL, OFF(heuristic_max),
                          "cap of the heuristic lifetime (10% of Date - Last-Modified)" },
    [K_QUERY] = { "query", CONFIG_RULE_LIST, "all", "all|none|sorted|keep NAME...|drop GLOB...", OFF(query),
                  "query in the cache key: as sent, dropped, sorted by name, only the named parameters, or all but the matching ones (kept ones sorted)" },
    [K_COOKIE] = { "cookie", CONFIG_RULE_ENUM, "ignore", "ignore|bypass", OFF(cookie),
                   "bypass: requests carrying Cookie go upstream uncached (fwd=bypass)" },
    [K_STORE_SET_COOKIE] = { "store_set_cookie", CONFIG_RULE_BOOL, "off", NULL, OFF(store_set_cookie),
                             "store responses carrying Set-Cookie, without the Set-Cookie field" },
    [K_CDN_CC] = { "cdn_cache_control", CONFIG_RULE_ENUM, "honour", "honour|ignore", OFF(cdn_cache_control),
                   "ignore: CDN-Cache-Control does not replace Cache-Control for this cache" },
    [K_IMAGE] = { "image", CONFIG_RULE_BOOL, "off", NULL, OFF(image),
                  "resize images on request: w, h, fit, gravity, fmt, q, dpr in the query (see Image resizing)" },
    [K_IMAGE_WIDTHS] = { "image_widths", CONFIG_RULE_WIDTHS, "any", "any|WIDTH...", OFF(n_widths),
                         "the output widths allowed (after dpr), ascending; others are rounded up or refused (image_widths_round)" },
    [K_IMAGE_ROUND] = { "image_widths_round", CONFIG_RULE_ENUM, "up", "up|refuse", OFF(widths_round),
                        "a width not in image_widths: up = the next allowed one, refuse = 400" },
    [K_RATE] = { "rate_limit", CONFIG_RULE_RATE, "none", "none|RATE [burst N]", OFF(rate_milli),
                 "this rule's own limit per client (its own bucket), e.g. 5/s burst 10; none = the node's rate_limit" },
    [K_COUNT] = { 0 },
};

_Static_assert(K_COUNT <= 32, "policy_rule_t.set has 32 bits");

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
        return config_fail(err, errlen, "pattern '%s': expected ']' closing the IPv6 host", r->pattern);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        bool ok = literal ? (hexval(c) >= 0 || c == ':' || c == '.' || ((c == '[' || c == ']') && (i == 0 || i == n - 1)))
                          : is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '*' || c == '?';
        if (!ok && c == ':')
            return config_fail(err, errlen,
                               "pattern '%s': ports are not matched, drop ':PORT' from the host", r->pattern);
        if (!ok)
            return config_fail(err, errlen,
                               "pattern '%s': expected a host of letters, digits, '-', '.', '_', '*', '?', got '%c'",
                               r->pattern, c);
        put(r->host, &w, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
    }
    while (w && r->host[w - 1] == '.') /* "example.com." is example.com */
        r->host[--w] = '\0';
    if (!w)
        return config_fail(err, errlen, "pattern '%s': empty host before the path", r->pattern);
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
            return config_fail(err, errlen, "pattern '%s': character classes ('[', ']') are not supported", r->pattern);
        if (c == '#')
            return config_fail(err, errlen, "pattern '%s': '#' never reaches the cache (fragment)", r->pattern);
        if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)p[i + 1]) : -1, lo = i + 2 < n ? hexval((unsigned char)p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return config_fail(err, errlen, "pattern '%s': expected two hex digits after '%%'", r->pattern);
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
        return config_fail(err, errlen, "pattern '%s': path longer than %d bytes once escaped", r->pattern,
                           POLICY_RULE_PATTERN_MAX - 1);
    for (const char *s = r->path; *s; s++) {
        if (*s != '/')
            continue;
        size_t seg = strcspn(s + 1, "/");
        if ((seg == 1 && s[1] == '.') || (seg == 2 && s[1] == '.' && s[2] == '.'))
            return config_fail(err, errlen,
                               "pattern '%s': '.' and '..' segments never occur in a normalised path", r->pattern);
    }
    r->path_literals = count_literals(r->path);
    return 0;
}

int config_rule_parse_pattern(policy_rule_t *r, const char *pattern, char *err, size_t errlen)
{
    size_t n = pattern ? strlen(pattern) : 0;
    if (!n)
        return config_fail(err, errlen, "empty rule pattern: expected /PATH, HOST/PATH or *");
    if (n >= POLICY_RULE_PATTERN_MAX)
        return config_fail(err, errlen, "rule pattern longer than %d bytes", POLICY_RULE_PATTERN_MAX - 1);
    memcpy(r->pattern, pattern, n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pattern[i];
        if (c <= 0x20 || c == 0x7f)
            return config_fail(err, errlen, "pattern '%s': whitespace or control character", pattern);
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
        return config_fail(err, errlen,
                           "pattern '%s': expected /PATH, HOST/PATH or *; a host needs a path glob after it",
                           pattern);
    int rc = 0;
    if (slash > pattern)
        rc = parse_host(r, pattern, (size_t)(slash - pattern), err, errlen);
    return rc ? rc : parse_path(r, slash, n - (size_t)(slash - pattern), err, errlen);
}

/* ---- keys ---- */

static const config_rule_setting_t *lookup(const char *key)
{
    for (const config_rule_setting_t *s = config_rule_settings; s->key; s++)
        if (strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

static int parse_duration(const config_rule_setting_t *s, const char *v, int64_t *out, char *err, size_t errlen)
{
    bool none_ok = strcmp(s->def, "none") == 0;
    uint64_t ms;
    if (none_ok && strcmp(v, "none") == 0) {
        *out = -1;
        return 0;
    }
    if (config_parse_duration(v, &ms))
        return config_fail(err, errlen, "%s: expected a duration such as 30s, 5m, 2h or 1d%s, got '%s'", s->key,
                           none_ok ? " (or none)" : "", v);
    if (ms % 1000)
        return config_fail(err, errlen, "%s: expected whole seconds, got '%s'", s->key, v);
    if (ms / 1000 > (uint64_t)CONFIG_RULE_DURATION_MAX)
        return config_fail(err, errlen, "%s: '%s' is over the limit of %" PRId64 "s", s->key, v,
                           CONFIG_RULE_DURATION_MAX);
    *out = (int64_t)(ms / 1000);
    return 0;
}

static int parse_bool(const config_rule_setting_t *s, const char *v, bool *out, char *err, size_t errlen)
{
    if (config_parse_bool(v, out))
        return config_fail(err, errlen, "%s: expected on or off, got '%s'", s->key, v);
    return 0;
}

static int parse_enum(const config_rule_setting_t *s, const char *v, unsigned *out, char *err, size_t errlen)
{
    if (config_parse_enum(s->choices, v, out))
        return config_fail(err, errlen, "%s: expected %s, got '%s'", s->key, s->choices, v);
    return 0;
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
        return config_fail(err, errlen, "query: expected all, none, sorted, keep NAME... or drop GLOB..., got '%s'", v);
    p += wl;
    p += strspn(p, sep);
    policy_query_mode_t m = (policy_query_mode_t)mode;
    bool lists = m == POLICY_QUERY_KEEP || m == POLICY_QUERY_DROP;
    if (!lists && *p)
        return config_fail(err, errlen, "query: '%s' takes no names, got '%s'", modes[mode], v);
    if (lists && !*p)
        return config_fail(err, errlen, "query: expected at least one %s after '%s'",
                           m == POLICY_QUERY_KEEP ? "parameter name" : "parameter glob", modes[mode]);
    unsigned n = 0;
    char params[POLICY_KEY_PARAMS_MAX][POLICY_RULE_PARAM_MAX];
    memset(params, 0, sizeof params); /* equal rules are equal bytes */
    while (*p) {
        wl = strcspn(p, sep);
        if (n == POLICY_KEY_PARAMS_MAX)
            return config_fail(err, errlen, "query: more than %d names", POLICY_KEY_PARAMS_MAX);
        if (wl >= POLICY_RULE_PARAM_MAX)
            return config_fail(err, errlen,
                               "query: name '%.*s' longer than %d bytes", (int)wl, p, POLICY_RULE_PARAM_MAX - 1);
        for (size_t i = 0; i < wl; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c < 0x21 || c == 0x7f || c == '&' || c == '=' || c == '#' || c == '%')
                return config_fail(err, errlen,
                                   "query: '%.*s': names are written decoded, without '&', '=', '#', '%%' or controls",
                                   (int)wl, p);
            if (m == POLICY_QUERY_KEEP && (c == '*' || c == '?'))
                return config_fail(err, errlen,
                                   "query: keep takes names, not globs ('%.*s'); use drop for patterns", (int)wl, p);
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

/* "any" | widths: ascending pixel counts separated by spaces or commas. */
static int parse_widths(policy_rule_t *r, const char *v, char *err, size_t errlen)
{
    static const char sep[] = " \t,";
    const char *p = v + strspn(v, sep);
    if (strncmp(p, "any", 3) == 0 && !p[3 + strspn(p + 3, sep)]) {
        r->n_widths = 0;
        memset(r->widths, 0, sizeof r->widths);
        return 0;
    }
    unsigned n = 0, w[POLICY_RULE_WIDTHS_MAX] = { 0 };
    while (*p) {
        char *end;
        unsigned long x = strtoul(p, &end, 10);
        size_t wl = strcspn(p, sep);
        if (end != p + wl || *p < '0' || *p > '9' || x < 1 || x > 16384)
            return config_fail(err, errlen, "image_widths: expected any or pixel widths 1..16384, got '%.*s'",
                               (int)wl, p);
        if (n == POLICY_RULE_WIDTHS_MAX)
            return config_fail(err, errlen, "image_widths: more than %d widths", POLICY_RULE_WIDTHS_MAX);
        if (n && x <= w[n - 1])
            return config_fail(err, errlen, "image_widths: widths must be ascending, got %lu after %u", x, w[n - 1]);
        w[n++] = (unsigned)x;
        p += wl;
        p += strspn(p, sep);
    }
    if (!n)
        return config_fail(err, errlen, "image_widths: expected any or at least one width");
    r->n_widths = n;
    memcpy(r->widths, w, sizeof w);
    return 0;
}

int config_rule_set(policy_rule_t *r, const char *key, const char *value, char *err, size_t errlen)
{
    const config_rule_setting_t *s = key ? lookup(key) : NULL;
    if (!s)
        return config_fail(err, errlen, "unknown rule key '%s' (see --help for the list)", key ? key : "");
    if (!value)
        value = "";
    char *field = (char *)r + s->offset;
    int rc = -EINVAL;
    switch (s->type) {
    case CONFIG_RULE_DURATION: {
        int64_t d = 0;
        if (!(rc = parse_duration(s, value, &d, err, errlen)))
            memcpy(field, &d, sizeof d);
        break;
    }
    case CONFIG_RULE_BOOL: {
        bool b = false;
        if (!(rc = parse_bool(s, value, &b, err, errlen)))
            memcpy(field, &b, sizeof b);
        break;
    }
    case CONFIG_RULE_ENUM: {
        unsigned u = 0;
        if (!(rc = parse_enum(s, value, &u, err, errlen)))
            memcpy(field, &u, sizeof u);
        break;
    }
    case CONFIG_RULE_LIST:
        rc = parse_query(r, value, err, errlen);
        break;
    case CONFIG_RULE_WIDTHS:
        rc = parse_widths(r, value, err, errlen);
        break;
    case CONFIG_RULE_RATE: {
        config_rate_t cr = { 0, 0 };
        if (strcmp(value, "none") != 0 && (config_parse_rate(value, &cr) || !cr.rate_milli))
            rc = config_fail(err, errlen, "rate_limit: expected none or a rate such as 10/s, 600/m or 0.5/s, "
                                          "optionally followed by 'burst N', got '%s'", value);
        else {
            r->rate_milli = cr.rate_milli;
            r->rate_burst = cr.burst;
            rc = 0;
        }
        break;
    }
    }
    if (!rc)
        r->set |= 1u << (s - config_rule_settings);
    return rc;
}

int config_rule_finish(const policy_rule_t *r, char *err, size_t errlen)
{
    if (r->origin_cache_control == POLICY_RULE_OVERRIDE && r->default_ttl < 0)
        return config_fail(err, errlen, "rule '%s': origin_cache_control = override needs default_ttl", r->pattern);
    if (r->max_ttl >= 0 && r->min_ttl > r->max_ttl)
        return config_fail(err, errlen, "rule '%s': min_ttl is larger than max_ttl", r->pattern);
    if (r->default_ttl >= 0 && (r->default_ttl < r->min_ttl || (r->max_ttl >= 0 && r->default_ttl > r->max_ttl)))
        return config_fail(err, errlen, "rule '%s': default_ttl is outside [min_ttl, max_ttl]", r->pattern);
    if ((r->query == POLICY_QUERY_KEEP || r->query == POLICY_QUERY_DROP) && !r->n_params)
        return config_fail(err, errlen, "rule '%s': query keep / drop needs names", r->pattern);
    if (!r->image && (r->set & ((1u << K_IMAGE_WIDTHS) | (1u << K_IMAGE_ROUND))))
        return config_fail(err, errlen, "rule '%s': image_widths and image_widths_round need image = on", r->pattern);
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
static void format_value(char *out, size_t len, const policy_rule_t *r, const config_rule_setting_t *s)
{
    const char *field = (const char *)r + s->offset;
    switch (s->type) {
    case CONFIG_RULE_DURATION: {
        int64_t d = 0;
        memcpy(&d, field, sizeof d);
        format_duration(out, len, d);
        return;
    }
    case CONFIG_RULE_BOOL:
        snprintf(out, len, "%s", *(const bool *)field ? "on" : "off");
        return;
    case CONFIG_RULE_ENUM: {
        unsigned u = *(const unsigned *)field;
        const char *p = s->choices;
        for (unsigned i = 0; i < u && strchr(p, '|'); i++)
            p = strchr(p, '|') + 1;
        snprintf(out, len, "%.*s", (int)strcspn(p, "|"), p);
        return;
    }
    case CONFIG_RULE_LIST: {
        static const char *const modes[] = { "all", "none", "sorted", "keep", "drop" };
        size_t w = (size_t)snprintf(out, len, "%s", modes[r->query]);
        for (unsigned i = 0; i < r->n_params && w < len; i++)
            w += (size_t)snprintf(out + w, len - w, " %s", r->params[i]);
        return;
    }
    case CONFIG_RULE_RATE:
        if (!r->rate_milli)
            snprintf(out, len, "none");
        else if (r->rate_milli % 1000 == 0)
            snprintf(out, len, "%u/s burst %u", r->rate_milli / 1000, r->rate_burst);
        else
            snprintf(out, len, "%u.%03u/s burst %u", r->rate_milli / 1000, r->rate_milli % 1000, r->rate_burst);
        return;
    case CONFIG_RULE_WIDTHS: {
        size_t w = (size_t)snprintf(out, len, "%s", r->n_widths ? "" : "any");
        for (unsigned i = 0; i < r->n_widths && w < len; i++)
            w += (size_t)snprintf(out + w, len - w, i ? " %u" : "%u", r->widths[i]);
        return;
    }
    }
}

void config_rule_print(FILE *out, const policy_rule_t *r)
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
    for (const config_rule_setting_t *s = config_rule_settings; s->key; s++) {
        char v[POLICY_KEY_PARAMS_MAX * POLICY_RULE_PARAM_MAX + 16];
        format_value(v, sizeof v, r, s);
        bool dflt = !(r->set & (1u << (s - config_rule_settings)));
        fprintf(out, "%s = %s%s\n", s->key, v, dflt ? "  # default" : "");
    }
}

static const char *type_doc(const config_rule_setting_t *s)
{
    switch (s->type) {
    case CONFIG_RULE_DURATION: return strcmp(s->def, "none") == 0 ? "duration or none" : "duration";
    case CONFIG_RULE_BOOL: return "on|off";
    case CONFIG_RULE_ENUM:
    case CONFIG_RULE_LIST:
    case CONFIG_RULE_RATE:
    case CONFIG_RULE_WIDTHS: return s->choices;
    }
    return "";
}

void config_rule_print_help(FILE *out)
{
    fprintf(out, "Rule keys ([rule PATTERN] sections; PATTERN = /PATH-GLOB, HOST-GLOB/PATH-GLOB or *):\n");
    for (const config_rule_setting_t *s = config_rule_settings; s->key; s++)
        fprintf(out, "  %-24s %s (default %s)\n  %-24s %s\n", s->key, type_doc(s), s->def, "", s->doc);
}

void config_rule_print_markdown(FILE *out)
{
    fprintf(out, "| key | values | default | description |\n|---|---|---|---|\n");
    for (const config_rule_setting_t *s = config_rule_settings; s->key; s++) {
        fprintf(out, "| `%s` | ", s->key);
        /* '|' separates table cells in markdown */
        for (const char *p = type_doc(s); *p; p++)
            fputs(*p == '|' ? " \\| " : (char[2]){ *p, 0 }, out);
        fprintf(out, " | `%s` | %s |\n", s->def, s->doc);
    }
}

/* ---- lookup ---- */

const policy_rule_t *config_rule_for_key(const config_t *cfg, const char *key, size_t len)
{
    size_t ho, hl, po, pl;
    if (policy_key_parts(key, len, &ho, &hl, &po, &pl))
        return NULL;
    return policy_rules_match(cfg->rules, cfg->nrules, key + ho, hl, key + po, pl);
}

/* ---- sections of a file ---- */

#define CONFIG_RULES_MAX 1024

int config_section_begin(config_t *cfg, const char *where, char *header, char *err, size_t errlen)
{
    char msg[512];
    size_t n = strlen(header);
    if (n < 2 || header[n - 1] != ']' || strncmp(header, "[rule", 5) != 0 || (header[5] != ' ' && header[5] != '\t'))
        return config_fail(err, errlen, "%s: unknown section '%s' (expected [rule PATTERN])", where, header);
    header[n - 1] = '\0';
    const char *pattern = config_trim(header + 5);
    if (cfg->nrules >= CONFIG_RULES_MAX)
        return config_fail(err, errlen, "%s: more than %d rules", where, CONFIG_RULES_MAX);
    for (size_t i = 0; i < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].pattern, pattern) == 0)
            return config_fail(err, errlen, "%s: rule '%s' is defined twice", where, pattern);
    policy_rule_t *nr = realloc(cfg->rules, (cfg->nrules + 1) * sizeof *nr);
    if (!nr) {
        config_fail(err, errlen, "%s: out of memory", where);
        return -ENOMEM;
    }
    cfg->rules = nr;
    policy_rule_t *r = &cfg->rules[cfg->nrules];
    policy_rule_defaults(r);
    if (config_rule_parse_pattern(r, pattern, msg, sizeof msg))
        return config_fail(err, errlen, "%s: rule pattern '%s': %s", where, pattern, msg);
    cfg->nrules++;
    return 0;
}

int config_section_key(config_t *cfg, const char *where, const char *key, const char *value, char *err,
                       size_t errlen)
{
    char msg[512];
    if (config_rule_set(&cfg->rules[cfg->nrules - 1], key, value, msg, sizeof msg))
        return config_fail(err, errlen, "%s: %s", where, msg);
    return 0;
}

int config_section_end(config_t *cfg, const char *where, char *err, size_t errlen)
{
    char msg[512];
    if (cfg->nrules && config_rule_finish(&cfg->rules[cfg->nrules - 1], msg, sizeof msg))
        return config_fail(err, errlen, "%s: %s", where, msg); /* msg names the rule */
    return 0;
}
