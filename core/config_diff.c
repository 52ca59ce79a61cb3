/* config_diff: compare the running configuration with a reloaded one (see
 * include/config_diff.h). */
#include "config_diff.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* What a running node cannot change: the listeners and threads exist, the
 * store is open with its size, the rate table and the image threads are
 * allocated, the name is in every Via and Cache-Status already sent, the
 * HTTP parser's bounds size the connections' buffers, the upstream
 * clients were made with their timeouts, the logs are open (reopening is
 * the access log's business), the drain timings belong to the signal
 * handling. */
static const char *const restart_keys[] = {
    "listen", "workers", "name", "region", "cache_dir", "cache_size", "cache_sync", "max_tags", "max_tag_bytes",
    "rate_table_size", "image_workers", "image_queue", "image_max_pixels", "image_max_size", "image_max_frames",
    "image_max_side", "max_header_size", "max_uri_size", "max_body_size", "origin_connect_timeout",
    "origin_timeout", "access_log", "access_log_format", "drain_delay", "drain_timeout", NULL,
};

bool config_restart_only(const char *key)
{
    for (size_t i = 0; restart_keys[i]; i++)
        if (strcmp(restart_keys[i], key) == 0)
            return true;
    return false;
}

static void format_size(uint64_t v, char *out, size_t cap)
{
    static const char suffix[] = "KMGT";
    int k = -1;
    while (v && v % 1024 == 0 && k < 3) {
        v /= 1024;
        k++;
    }
    if (k < 0)
        snprintf(out, cap, "%" PRIu64, v);
    else
        snprintf(out, cap, "%" PRIu64 "%c", v, suffix[k]);
}

static void format_duration(uint64_t ms, char *out, size_t cap)
{
    if (ms && ms % 3600000 == 0)
        snprintf(out, cap, "%" PRIu64 "h", ms / 3600000);
    else if (ms && ms % 60000 == 0)
        snprintf(out, cap, "%" PRIu64 "m", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(out, cap, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(out, cap, "%" PRIu64 "ms", ms);
}

static void format_rate(const config_rate_t *r, char *out, size_t cap)
{
    if (!r->rate_milli) {
        snprintf(out, cap, "off");
        return;
    }
    int n = r->rate_milli % 1000 == 0
                ? snprintf(out, cap, "%" PRIu32 "/s", r->rate_milli / 1000)
                : snprintf(out, cap, "%" PRIu32 ".%03" PRIu32 "/s", r->rate_milli / 1000, r->rate_milli % 1000);
    uint32_t def = (r->rate_milli + 999) / 1000; /* config_parse_rate's default burst */
    if (r->burst != def && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " burst %" PRIu32, r->burst);
}

void config_format_value(const config_setting_t *s, const config_t *cfg, char *out, size_t cap)
{
    const char *field = (const char *)cfg + s->offset;
    /* numbers are unsigned or uint64_t fields (config_set stores them by size) */
    bool num = s->type == CONFIG_UINT || s->type == CONFIG_SIZE || s->type == CONFIG_DURATION;
    uint64_t v = !num ? 0 : s->size == sizeof(unsigned) ? *(const unsigned *)field : *(const uint64_t *)field;
    switch (s->type) {
    case CONFIG_STR:
    case CONFIG_NAMES:
    case CONFIG_ADDR:
    case CONFIG_CIDRS:
        snprintf(out, cap, "%s", field[0] ? field : "\"\"");
        return;
    case CONFIG_UINT:
        snprintf(out, cap, "%" PRIu64, v);
        return;
    case CONFIG_SIZE:
        format_size(v, out, cap);
        return;
    case CONFIG_DURATION:
        format_duration(v, out, cap);
        return;
    case CONFIG_BOOL:
        snprintf(out, cap, "%s", *(const bool *)field ? "on" : "off");
        return;
    case CONFIG_RATE:
        format_rate((const config_rate_t *)field, out, cap);
        return;
    case CONFIG_ENUM: {
        unsigned idx = *(const unsigned *)field;
        const char *c = s->choices;
        for (unsigned i = 0; i < idx && c; i++) {
            c = strchr(c, '|');
            c = c ? c + 1 : NULL;
        }
        size_t len = c ? strcspn(c, "|") : 1;
        snprintf(out, cap, "%.*s", (int)len, c ? c : "?");
        return;
    }
    }
    snprintf(out, cap, "?");
}

static const policy_rule_t *find_rule(const config_t *cfg, const char *pattern)
{
    for (size_t i = 0; i < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].pattern, pattern) == 0)
            return &cfg->rules[i];
    return NULL;
}

/* The rules, matched by pattern (a file names each pattern once). */
static size_t diff_rules(const config_t *a, const config_t *b, config_diff_fn fn, void *ud)
{
    size_t n = 0;
    if (a->nrules != b->nrules) {
        char from[32], to[32];
        snprintf(from, sizeof from, "%zu rule%s", a->nrules, a->nrules == 1 ? "" : "s");
        snprintf(to, sizeof to, "%zu rule%s", b->nrules, b->nrules == 1 ? "" : "s");
        fn(ud, "rules", from, to, false);
        n++;
    }
    for (size_t i = 0; i < a->nrules; i++) {
        const policy_rule_t *r = find_rule(b, a->rules[i].pattern);
        if (!r) {
            fn(ud, "rule", a->rules[i].pattern, "removed", false);
            n++;
        } else if (memcmp(r, &a->rules[i], sizeof *r) != 0) { /* equal rules are equal bytes (policy_rule_defaults) */
            fn(ud, "rule", a->rules[i].pattern, "changed", false);
            n++;
        }
    }
    for (size_t i = 0; i < b->nrules; i++) {
        if (!find_rule(a, b->rules[i].pattern)) {
            fn(ud, "rule", b->rules[i].pattern, "added", false);
            n++;
        }
    }
    return n;
}

size_t config_diff(const config_t *running, config_t *next, unsigned prog, config_diff_fn fn, void *ud)
{
    size_t n = 0;
    for (const config_setting_t *s = config_settings; s->key; s++) {
        if (!(s->programs & prog))
            continue;
        char from[1100], to[1100];
        config_format_value(s, running, from, sizeof from);
        config_format_value(s, next, to, sizeof to);
        /* Compare the text: equal values format equally, and the fields'
         * types (strings, unsigned, uint64_t, bool, rates) need no cases. */
        if (strcmp(from, to) == 0)
            continue;
        bool restart = config_restart_only(s->key);
        fn(ud, s->key, from, to, restart);
        if (restart) /* every row's size is its field's (config_table.c) */
            memcpy((char *)next + s->offset, (const char *)running + s->offset, s->size);
        else
            n++;
    }
    return n + diff_rules(running, next, fn, ud);
}
