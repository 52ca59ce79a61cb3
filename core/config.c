/* config: parse a node's settings from the table in config_table.c.
 *
 * File format: `key = value` per line, `#` comments (whole line, or after
 * whitespace), optional double quotes around a value, `[section]` headers.
 * Any error names the file and line and what was expected. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"
#include "policy_ratelimit.h"
#include "http_fields.h"
#include "policy_cache.h"

int config_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static const config_setting_t *lookup(unsigned prog, const char *key)
{
    for (const config_setting_t *s = config_settings; s->key; s++)
        if (strcmp(s->key, key) == 0 && (s->programs & prog))
            return s;
    return NULL;
}

int config_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    uint64_t mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1024ull; end++; break;
    case 'M': mul = 1024ull * 1024; end++; break;
    case 'G': mul = 1024ull * 1024 * 1024; end++; break;
    case 'T': mul = 1024ull * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (mul > 1 && (*end == 'i' || *end == 'I'))
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end)
        return -EINVAL;
    if (v > UINT64_MAX / mul)
        return -EINVAL;
    *out = v * mul;
    return 0;
}

int config_parse_duration(const char *s, uint64_t *out_ms)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    uint64_t mul;
    if (!*end || strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (strcmp(end, "h") == 0)
        mul = 3600000;
    else if (strcmp(end, "d") == 0)
        mul = 86400000;
    else
        return -EINVAL;
    if (v > UINT64_MAX / mul)
        return -EINVAL;
    *out_ms = v * mul;
    return 0;
}

int config_parse_rate(const char *s, config_rate_t *out)
{
    if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0) {
        *out = (config_rate_t){ 0, 0 };
        return 0;
    }
    /* N[.ddd][/s|/m|/h][ burst M] */
    const char *p = s;
    uint64_t whole = 0, frac = 0;
    int digits = 0;
    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    while (isdigit((unsigned char)*p) && whole < 100000000)
        whole = whole * 10 + (uint64_t)(*p++ - '0');
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p) && digits < 3) {
            frac = frac * 10 + (uint64_t)(*p++ - '0');
            digits++;
        }
        if (!digits || isdigit((unsigned char)*p))
            return -EINVAL;
    }
    while (digits++ < 3)
        frac *= 10;
    uint64_t per = 1;
    if (*p == '/') {
        per = p[1] == 's' ? 1 : p[1] == 'm' ? 60 : p[1] == 'h' ? 3600 : 0;
        if (!per)
            return -EINVAL;
        p += 2;
    }
    uint64_t milli = (whole * 1000 + frac + per / 2) / per; /* 1/m: 16.67 -> 17 thousandths */
    if (milli == 0 || milli > UINT32_MAX)
        return -EINVAL;
    uint64_t burst = (milli + 999) / 1000;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "burst", 5) == 0) {
        p += 5;
        while (*p == ' ' || *p == '\t')
            p++;
        char *end;
        errno = 0;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        burst = strtoull(p, &end, 10);
        if (errno || burst == 0 || burst > 100000000)
            return -EINVAL;
        p = end;
    }
    if (*p)
        return -EINVAL;
    out->rate_milli = (uint32_t)milli;
    out->burst = (uint32_t)(burst ? burst : 1);
    return 0;
}

int config_parse_addr(const char *s, char *host, size_t hostlen, unsigned *port)
{
    const char *colon;
    size_t hl;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        s++;
        hl = (size_t)(rb - s);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -EINVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -EINVAL;
    char *end;
    if (!isdigit((unsigned char)colon[1]))
        return -EINVAL;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || p > 65535)
        return -EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    *port = (unsigned)p;
    return 0;
}

int config_parse_bool(const char *v, bool *out)
{
    static const char *yes[] = { "on", "yes", "true", "1" }, *no[] = { "off", "no", "false", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) { *out = true; return 0; }
        if (strcasecmp(v, no[i]) == 0) { *out = false; return 0; }
    }
    return -EINVAL;
}

int config_parse_enum(const char *choices, const char *v, unsigned *out)
{
    unsigned idx = 0;
    size_t vl = strlen(v);
    for (const char *p = choices; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == vl && strncmp(p, v, l) == 0) {
            *out = idx;
            return 0;
        }
        if (!bar)
            break;
        p = bar + 1;
    }
    return -EINVAL;
}

/* A list of header names a node may pass upstream as the client sent
 * them. The fields it rewrites itself (Host, Via, X-Forwarded-For) and
 * hop-by-hop fields make no sense there. */
static bool names_ok(const char *value)
{
    http_slice_t item;
    size_t pos = 0;
    while (http_list_next((http_slice_t){ value, strlen(value) }, &pos, &item)) {
        if (item.len == 0 || item.len > 128 || http_name_eq(item, "host") || http_name_eq(item, "via") ||
            http_name_eq(item, "x-forwarded-for") || policy_hop_by_hop(item.p, item.len))
            return false;
        for (size_t i = 0; i < item.len; i++)
            if (!http_tchar((unsigned char)item.p[i]))
                return false;
    }
    return true;
}

static const char *type_expect(const config_setting_t *s)
{
    switch (s->type) {
    case CONFIG_STR: return "a string";
    case CONFIG_UINT: return "an unsigned integer";
    case CONFIG_SIZE: return "a size such as 512K, 64M or 1G";
    case CONFIG_DURATION: return "a duration such as 250ms, 10s, 5m or 1h";
    case CONFIG_BOOL: return "on or off";
    case CONFIG_ENUM: return s->choices;
    case CONFIG_ADDR: return "host:port";
    case CONFIG_NAMES: return "header names, comma-separated (not Host, Via, X-Forwarded-For or hop-by-hop fields)";
    case CONFIG_RATE: return "off, or a rate such as 10, 10/s, 600/m or 0.5/s, optionally followed by 'burst N'";
    case CONFIG_CIDRS: return "IPv4/IPv6 addresses or CIDRs, comma-separated";
    }
    return "a value";
}

int config_set(config_t *cfg, unsigned prog, const char *key, const char *value,
               const char *where, char *err, size_t errlen)
{
    const config_setting_t *s = lookup(prog, key);
    if (!s)
        return config_fail(err, errlen, "%s: unknown setting '%s' (see --help for the list)", where, key);
    char *field = (char *)cfg + s->offset;
    uint64_t v = 0;
    bool bad = false;
    switch (s->type) {
    case CONFIG_STR:
        if (strlen(value) >= s->size)
            return config_fail(err, errlen, "%s: %s: value longer than %zu bytes", where, key, s->size - 1);
        strcpy(field, value);
        return 0;
    case CONFIG_NAMES:
        if (strlen(value) >= s->size || !names_ok(value))
            bad = true;
        else
            strcpy(field, value);
        break;
    case CONFIG_RATE:
        bad = config_parse_rate(value, (config_rate_t *)field) != 0;
        break;
    case CONFIG_CIDRS: {
        static policy_rl_cidrs_t list; /* large: off the stack; config is read on one thread */
        char why[160];
        if (strlen(value) >= s->size)
            return config_fail(err, errlen, "%s: %s: value longer than %zu bytes", where, key, s->size - 1);
        if (policy_rl_cidrs_parse(&list, value, why, sizeof why))
            return config_fail(err, errlen, "%s: %s: %s", where, key, why);
        strcpy(field, value);
        return 0;
    }
    case CONFIG_ADDR: {
        char host[256];
        unsigned port;
        if (config_parse_addr(value, host, sizeof host, &port) || strlen(value) >= s->size)
            bad = true;
        else
            strcpy(field, value);
        break;
    }
    case CONFIG_BOOL:
        bad = config_parse_bool(value, (bool *)field) != 0;
        break;
    case CONFIG_ENUM:
        bad = config_parse_enum(s->choices, value, (unsigned *)field) != 0;
        break;
    case CONFIG_UINT: {
        char *end;
        errno = 0;
        if (!isdigit((unsigned char)*value))
            bad = true;
        else {
            v = strtoull(value, &end, 10);
            bad = errno || *end;
        }
        break;
    }
    case CONFIG_SIZE:
        bad = config_parse_size(value, &v) != 0;
        break;
    case CONFIG_DURATION:
        bad = config_parse_duration(value, &v) != 0;
        break;
    }
    if (bad)
        return config_fail(err, errlen, "%s: %s: expected %s, got '%s'", where, key, type_expect(s), value);
    if (s->type == CONFIG_UINT || s->type == CONFIG_SIZE || s->type == CONFIG_DURATION) {
        if (v < s->min || (s->max && v > s->max))
            return config_fail(err, errlen, "%s: %s: %s out of range [%" PRIu64 ", %" PRIu64 "]%s", where, key, value,
                               s->min, s->max,
                               s->type == CONFIG_DURATION ? " ms" : s->type == CONFIG_SIZE ? " bytes" : "");
        if (s->size == sizeof(unsigned))
            *(unsigned *)field = (unsigned)v;
        else
            *(uint64_t *)field = v;
    }
    return 0;
}

void config_defaults(config_t *cfg, unsigned prog)
{
    char err[256];
    memset(cfg, 0, sizeof *cfg); /* cfg may be uninitialised: call config_free first if it was loaded */
    cfg->program = prog;
    for (const config_setting_t *s = config_settings; s->key; s++)
        if (s->programs & prog)
            if (config_set(cfg, prog, s->key, s->def, "default", err, sizeof err))
                abort(); /* a bad default is a bug in config_table.c */
}

char *config_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Strip a trailing comment (a '#' preceded by whitespace, outside quotes). */
static void strip_comment(char *s)
{
    bool q = false;
    for (char *p = s; *p; p++) {
        if (*p == '"')
            q = !q;
        else if (*p == '#' && !q && (p == s || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
    }
}


int config_check(unsigned prog, const char *progname, const char *file, const char *url)
{
    config_t cfg;
    char err[1024];
    config_defaults(&cfg, prog);
    if (config_load_file(&cfg, prog, file, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", progname, err);
        config_free(&cfg);
        return 2;
    }
    printf("%s: ok (%zu rule%s)\n", file, cfg.nrules, cfg.nrules == 1 ? "" : "s");
    int rc = 0;
    if (url) {
        buf_t key;
        buf_init(&key, 64 * 1024);
        if (policy_cache_key(&key, "http", "", 0, url, strlen(url))) {
            fprintf(stderr, "%s: %s: expected an absolute http:// URL\n", progname, url);
            rc = 2;
        } else {
            const policy_rule_t *r = config_rule_for_key(&cfg, key.data, key.len);
            if (r && r->query != POLICY_QUERY_ALL) {
                policy_key_opts_t ko;
                policy_rule_key_opts(r, &ko);
                buf_reset(&key);
                policy_cache_key_opts(&key, &ko, "http", "", 0, url, strlen(url));
            }
            printf("cache key: %s\n", key.data);
            config_rule_print(stdout, r);
        }
        buf_free(&key);
    }
    config_free(&cfg);
    return rc;
}

void config_free(config_t *cfg)
{
    free(cfg->rules);
    cfg->rules = NULL;
    cfg->nrules = 0;
}

int config_load_string(config_t *cfg, unsigned prog, const char *name, const char *text,
                       char *err, size_t errlen)
{
    int rc = 0;
    char *copy = strdup(text);
    if (!copy) {
        config_fail(err, errlen, "%s: out of memory", name);
        return -ENOMEM;
    }
    unsigned lineno = 0, rule_line = 0;
    size_t first_rule = cfg->nrules;
    bool in_rule = false;
    char where[600], rule_where[600] = "";
    char *line = copy;
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        snprintf(where, sizeof where, "%s:%u", name, lineno);
        strip_comment(line);
        char *l = config_trim(line);
        if (*l == '\0') {
            line = nl ? nl + 1 : NULL;
            continue;
        }
        if (*l == '[') {
            if (in_rule && (rc = config_section_end(cfg, rule_where, err, errlen)))
                goto out;
            if ((rc = config_section_begin(cfg, where, l, err, errlen)))
                goto out;
            in_rule = true;
            rule_line = lineno;
            snprintf(rule_where, sizeof rule_where, "%s:%u", name, rule_line);
            line = nl ? nl + 1 : NULL;
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) {
            rc = config_fail(err, errlen, "%s: expected 'key = value', got '%s'", where, l);
            goto out;
        }
        *eq = '\0';
        char *key = config_trim(l), *val = config_trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        if (!*key) {
            rc = config_fail(err, errlen, "%s: expected a key before '='", where);
            goto out;
        }
        rc = in_rule ? config_section_key(cfg, where, key, val, err, errlen)
                     : config_set(cfg, prog, key, val, where, err, errlen);
        if (rc)
            goto out;
        line = nl ? nl + 1 : NULL;
    }
    if (in_rule && (rc = config_section_end(cfg, rule_where, err, errlen)))
        goto out;
    policy_rules_sort(cfg->rules, cfg->nrules);
out:
    if (rc) {
        cfg->nrules = first_rule; /* the file's rules are not half-taken */
    }
    free(copy);
    return rc;
}

int config_load_file(config_t *cfg, unsigned prog, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        config_fail(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    char chunk[4096];
    size_t n;
    int rc = 0;
    /* A config file has no business being larger than a few MiB. */
    char *text = NULL;
    size_t len = 0, cap = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            if (cap > 16u << 20) {
                config_fail(err, errlen, "%s: file too large", path);
                rc = -EFBIG;
                goto out;
            }
            char *t = realloc(text, cap);
            if (!t) {
                config_fail(err, errlen, "%s: out of memory", path);
                rc = -ENOMEM;
                goto out;
            }
            text = t;
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    if (ferror(f)) {
        config_fail(err, errlen, "%s: read error: %s", path, strerror(errno));
        rc = -EIO;
        goto out;
    }
    if (memchr(text ? text : "", '\0', len)) {
        rc = config_fail(err, errlen, "%s: contains a NUL byte", path);
        goto out;
    }
    if (!text)
        text = strdup("");
    else
        text[len] = '\0';
    rc = config_load_string(cfg, prog, path, text, err, errlen);
out:
    free(text);
    fclose(f);
    return rc;
}

int config_from_args(config_t *cfg, unsigned prog, const char *progname, int argc, char **argv,
                     char *err, size_t errlen)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_print_help(stdout, prog, progname);
            return 1;
        }
        if (strcmp(a, "--config-markdown") == 0) {
            config_print_markdown(stdout, CONFIG_ALL); /* one table for both programs */
            return 1;
        }
        if (strcmp(a, "--rule-markdown") == 0) {
            config_rule_print_markdown(stdout);
            return 1;
        }
        if (strcmp(a, "-c") == 0) {
            if (i + 1 >= argc)
                return config_fail(err, errlen, "-c: expected a file name");
            file = argv[++i];
        } else if (strncmp(a, "--", 2) != 0 || !strchr(a, '=')) {
            return config_fail(err, errlen, "%s: expected -c FILE or --key=value (see --help)", a);
        }
    }
    int rc = file ? config_load_file(cfg, prog, file, err, errlen) : 0;
    if (rc)
        return rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0) {
            i++;
            continue;
        }
        const char *eq = strchr(a, '=');
        char key[128], where[160];
        size_t kl = (size_t)(eq - a - 2);
        if (kl >= sizeof key)
            return config_fail(err, errlen, "%s: unknown setting", a);
        memcpy(key, a + 2, kl);
        key[kl] = '\0';
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        snprintf(where, sizeof where, "--%s", key);
        if ((rc = config_set(cfg, prog, key, eq + 1, where, err, errlen)))
            return rc;
    }
    return 0;
}

void config_print_help(FILE *out, unsigned prog, const char *progname)
{
    fprintf(out,
            "usage: %s [-c FILE] [--key=value ...]\n"
            "\n"
            "  -c FILE             read settings from FILE (key = value lines)\n"
            "  --key=value         set one setting; wins over the file\n"
            "  --help              this text\n"
            "  --config-markdown   print the settings as a markdown table\n"
            "  --rule-markdown     print the [rule] settings as a markdown table\n"
            "  --check-config FILE [URL]\n"
            "                      validate FILE; with URL, print the rule that applies to it\n"
            "\nsettings (default in brackets):\n",
            progname);
    for (const config_setting_t *s = config_settings; s->key; s++) {
        if (!(s->programs & prog))
            continue;
        fprintf(out, "  %-24s %s [%s]\n", s->key, s->doc, s->def);
    }
    fprintf(out, "\n[rule PATTERN] sections (PATTERN: [HOST-GLOB]/PATH-GLOB; most specific first):\n");
    config_rule_print_help(out);
}

void config_print_markdown(FILE *out, unsigned prog)
{
    fprintf(out, "| key | for | default | meaning |\n|---|---|---|---|\n");
    for (const config_setting_t *s = config_settings; s->key; s++) {
        if (!(s->programs & prog))
            continue;
        const char *who = s->programs == CONFIG_ALL ? "both" : s->programs == CONFIG_EDGE ? "edge" : "shield";
        fprintf(out, "| `%s` | %s | `%s` | %s |\n", s->key, who, s->def, s->doc);
    }
}
