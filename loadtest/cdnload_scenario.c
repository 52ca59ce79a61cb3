/* cdnload_scenario: the scenario file (see cdnload_scenario.h). */
#include "cdnload_scenario.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rng.h"

void cdnload_scenario_defaults(cdnload_scenario_t *s)
{
    memset(s, 0, sizeof *s);
    s->duration_ms = 30000;
    s->warmup_ms = 5000;
    s->objects = 10000;
    s->zipf = 1.0;
    /* Mostly small, a tail of large: the shape of a web page's assets. */
    s->sizes[0] = (cdnload_size_class_t){ 1024, 50 };
    s->sizes[1] = (cdnload_size_class_t){ 16384, 35 };
    s->sizes[2] = (cdnload_size_class_t){ 262144, 15 };
    s->nsizes = 3;
    s->uncacheable = 0.02;
    s->concurrency = 16;
    s->ttl_s = 3600;
    s->purge_kind = CDNLOAD_PURGE_TAG;
    s->image_sources = 100;
    s->abusive_rate = 5000;
    s->seed = 1;
}

static int bad(char *err, size_t errlen, const char *where, const char *key, const char *what, const char *value)
{
    snprintf(err, errlen, "%s: %s: expected %s, got '%s'", where, key, what, value);
    return -EINVAL;
}

static bool parse_u64(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-')
        return false;
    *out = x;
    return true;
}


/* A number in [lo, hi] (above lo when lo_open). */
static bool parse_real(const char *v, double lo, double hi, bool lo_open, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi) || (lo_open && x == lo))
        return false;
    *out = x;
    return true;
}

/* "1k:50, 16k:35, 256k:15": SIZE:WEIGHT items, comma-separated. */
static int parse_sizes(cdnload_scenario_t *s, const char *v, const char *where, char *err, size_t errlen)
{
    const char *what = "SIZE:WEIGHT items, comma-separated (1k:50, 256k:10), at most 16, weights > 0";
    char buf[512];
    if (strlen(v) >= sizeof buf)
        return bad(err, errlen, where, "sizes", what, v);
    strcpy(buf, v);
    unsigned n = 0;
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*item))
            item++;
        char *colon = strchr(item, ':');
        if (!colon || n == CDNLOAD_SIZES_MAX)
            return bad(err, errlen, where, "sizes", what, v);
        *colon = '\0';
        char *w = colon + 1, *end;
        uint64_t bytes;
        double weight = strtod(w, &end);
        bool number = end != w;
        while (isspace((unsigned char)*end))
            end++; /* blanks before the next comma are fine */
        if (config_parse_size(item, &bytes) || bytes == 0 || !number || *end || !(weight > 0) || weight > 1e9)
            return bad(err, errlen, where, "sizes", what, v);
        s->sizes[n++] = (cdnload_size_class_t){ bytes, weight };
    }
    if (n == 0)
        return bad(err, errlen, where, "sizes", what, v);
    s->nsizes = n;
    return 0;
}

/* "shield-1 at 20s restart 35s", or "none". */
static int parse_fault(cdnload_scenario_t *s, const char *v, const char *where, char *err, size_t errlen)
{
    const char *what = "'none' or 'NODE at DURATION restart DURATION' (shield-1 at 20s restart 35s)";
    if (strcmp(v, "none") == 0) {
        s->fault_node[0] = '\0';
        return 0;
    }
    char node[64], at[32], restart[32];
    int used = 0;
    if (sscanf(v, "%63s at %31s restart %31s%n", node, at, restart, &used) != 3 || v[used] != '\0' ||
        config_parse_duration(at, &s->fault_at_ms) || config_parse_duration(restart, &s->fault_restart_ms))
        return bad(err, errlen, where, "fault", what, v);
    snprintf(s->fault_node, sizeof s->fault_node, "%s", node);
    return 0;
}

int cdnload_scenario_set(cdnload_scenario_t *s, const char *key, const char *value, const char *where, char *err,
                         size_t errlen)
{
    uint64_t u;
    if (strcmp(key, "duration") == 0 || strcmp(key, "warmup") == 0) {
        uint64_t *dst = key[0] == 'd' ? &s->duration_ms : &s->warmup_ms;
        if (config_parse_duration(value, dst) || (key[0] == 'd' && *dst == 0))
            return bad(err, errlen, where, key, "a duration (30s, 2m; duration > 0)", value);
    } else if (strcmp(key, "objects") == 0) {
        if (!parse_u64(value, &u) || u == 0 || u > 10000000)
            return bad(err, errlen, where, key, "a count from 1 to 10000000", value);
        s->objects = (uint32_t)u;
    } else if (strcmp(key, "zipf") == 0) {
        if (!parse_real(value, 0, 10, false, &s->zipf))
            return bad(err, errlen, where, key, "an exponent from 0 (uniform) to 10", value);
    } else if (strcmp(key, "sizes") == 0) {
        return parse_sizes(s, value, where, err, errlen);
    } else if (strcmp(key, "uncacheable") == 0 || strcmp(key, "images") == 0) {
        if (!parse_real(value, 0, 1, false, key[0] == 'u' ? &s->uncacheable : &s->images))
            return bad(err, errlen, where, key, "a share from 0 to 1", value);
    } else if (strcmp(key, "concurrency") == 0) {
        if (!parse_u64(value, &u) || u == 0 || u > 10000)
            return bad(err, errlen, where, key, "connections per region, 1 to 10000", value);
        s->concurrency = (uint32_t)u;
    } else if (strcmp(key, "rate") == 0) {
        if (!parse_real(value, 0, 1e7, false, &s->rate))
            return bad(err, errlen, where, key, "requests per second per region (0 = closed loop)", value);
    } else if (strcmp(key, "ttl") == 0) {
        uint64_t ms;
        if (config_parse_duration(value, &ms) || ms < 1000)
            return bad(err, errlen, where, key, "a duration of at least 1s", value);
        s->ttl_s = ms / 1000;
    } else if (strcmp(key, "image_sources") == 0) {
        if (!parse_u64(value, &u) || u == 0 || u > 1000000)
            return bad(err, errlen, where, key, "a count from 1 to 1000000", value);
        s->image_sources = (uint32_t)u;
    } else if (strcmp(key, "abusive_rate") == 0) {
        if (!parse_real(value, 0, 1e6, true, &s->abusive_rate))
            return bad(err, errlen, where, key, "requests per second per abusive client (> 0)", value);
    } else if (strcmp(key, "abusive_clients") == 0) {
        if (!parse_u64(value, &u) || u > 1000)
            return bad(err, errlen, where, key, "clients per region, 0 to 1000", value);
        s->abusive_clients = (uint32_t)u;
    } else if (strcmp(key, "purge_every") == 0) {
        if (config_parse_duration(value, &s->purge_every_ms))
            return bad(err, errlen, where, key, "a duration (0 = no purges)", value);
    } else if (strcmp(key, "purge_kind") == 0) {
        static const char *const kinds[] = { "tag", "url", "prefix" };
        size_t k = 0;
        while (k < 3 && strcmp(value, kinds[k]) != 0)
            k++;
        if (k == 3)
            return bad(err, errlen, where, key, "tag, url or prefix", value);
        s->purge_kind = (cdnload_purge_kind_t)k;
    } else if (strcmp(key, "fault") == 0) {
        return parse_fault(s, value, where, err, errlen);
    } else if (strcmp(key, "seed") == 0) {
        if (!parse_u64(value, &s->seed))
            return bad(err, errlen, where, key, "an unsigned integer", value);
    } else {
        snprintf(err, errlen,
                 "%s: unknown key '%s' (expected duration, warmup, objects, zipf, sizes, uncacheable, images, "
                 "image_sources, concurrency, rate, ttl, abusive_clients, abusive_rate, purge_every, purge_kind, "
                 "fault, seed)",
                 where, key);
        return -EINVAL;
    }
    return 0;
}

static char *trim(char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    size_t n = strlen(p);
    while (n && isspace((unsigned char)p[n - 1]))
        p[--n] = '\0';
    return p;
}

int cdnload_scenario_load(cdnload_scenario_t *s, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char line[1024], where[600];
    int rc = 0;
    for (unsigned no = 1; !rc && fgets(line, sizeof line, f); no++) {
        snprintf(where, sizeof where, "%s:%u", path, no);
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s: line longer than %zu bytes", where, sizeof line - 2);
            rc = -EINVAL;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *p = trim(line);
        if (!*p)
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(err, errlen, "%s: expected 'key = value', got '%s'", where, p);
            rc = -EINVAL;
            break;
        }
        *eq = '\0';
        rc = cdnload_scenario_set(s, trim(p), trim(eq + 1), where, err, errlen);
    }
    fclose(f);
    return rc;
}

int cdnload_scenario_check(const cdnload_scenario_t *s, char *err, size_t errlen)
{
    if (s->fault_node[0] && s->fault_restart_ms <= s->fault_at_ms) {
        snprintf(err, errlen, "fault: the restart (%llu ms) must come after the kill (%llu ms)",
                 (unsigned long long)s->fault_restart_ms, (unsigned long long)s->fault_at_ms);
        return -EINVAL;
    }
    if (s->fault_node[0] && s->fault_at_ms >= s->warmup_ms + s->duration_ms) {
        snprintf(err, errlen, "fault: the kill at %llu ms comes after the run's end (%llu ms)",
                 (unsigned long long)s->fault_at_ms, (unsigned long long)(s->warmup_ms + s->duration_ms));
        return -EINVAL;
    }
    if (s->uncacheable + s->images > 1) {
        snprintf(err, errlen, "uncacheable + images is more than all of the requests (%g + %g)", s->uncacheable,
                 s->images);
        return -EINVAL;
    }
    return 0;
}

/* The object's size class, the same everywhere: a hash of (seed, i). */
static uint64_t object_hash(uint64_t seed, uint32_t i)
{
    return rng_mix(seed * 0x9e3779b97f4a7c15ull + i + 1);
}

uint64_t cdnload_object_size(const cdnload_scenario_t *s, uint32_t i)
{
    double total = 0;
    for (unsigned k = 0; k < s->nsizes; k++)
        total += s->sizes[k].weight;
    double u = (double)(object_hash(s->seed, i) >> 11) * 0x1.0p-53 * total;
    for (unsigned k = 0; k + 1 < s->nsizes; k++) {
        if (u < s->sizes[k].weight)
            return s->sizes[k].bytes;
        u -= s->sizes[k].weight;
    }
    return s->sizes[s->nsizes - 1].bytes;
}

int cdnload_object_target(const cdnload_scenario_t *s, uint32_t i, bool cacheable, char *out, size_t cap)
{
    if (cacheable)
        return snprintf(out, cap, "/o/%u?size=%llu&cc=max-age%%3D%llu&sk=g%u", i,
                        (unsigned long long)cdnload_object_size(s, i), (unsigned long long)s->ttl_s,
                        i % CDNLOAD_TAG_GROUPS);
    return snprintf(out, cap, "/u/%u?size=%llu&cc=no-store", i, (unsigned long long)cdnload_object_size(s, i));
}

int cdnload_image_target(const cdnload_scenario_t *s, uint32_t k, unsigned v, char *out, size_t cap)
{
    static const unsigned widths[] = { 160, 320, 640 };
    return snprintf(out, cap, "/img/s%u.jpg?width=640&height=480&cc=max-age%%3D%llu&sk=g%u&w=%u&fmt=%s", k,
                    (unsigned long long)s->ttl_s, k % CDNLOAD_TAG_GROUPS, widths[v % 3], v < 3 ? "jpeg" : "webp");
}

/* The object a URL purge of round n takes: one of the 100 most popular. */
static uint32_t purge_object(const cdnload_scenario_t *s, uint64_t n)
{
    return (uint32_t)(n % (s->objects < 100 ? s->objects : 100));
}

/* The prefix round n purges: two or more decimal digits, so it never
 * takes the whole catalogue. */
static unsigned purge_prefix(uint64_t n)
{
    return 10 + (unsigned)(n % 90);
}

bool cdnload_purge_covers(const cdnload_scenario_t *s, uint64_t n, uint32_t i, bool image)
{
    switch (s->purge_kind) {
    case CDNLOAD_PURGE_TAG: return i % CDNLOAD_TAG_GROUPS == n % CDNLOAD_TAG_GROUPS;
    case CDNLOAD_PURGE_URL: return !image && i == purge_object(s, n);
    case CDNLOAD_PURGE_PREFIX: {
        if (image)
            return false;
        char a[16], b[16];
        int la = snprintf(a, sizeof a, "%u", i), lb = snprintf(b, sizeof b, "%u", purge_prefix(n));
        return la >= lb && memcmp(a, b, (size_t)lb) == 0;
    }
    }
    return false;
}

int cdnload_probe_target(const cdnload_scenario_t *s, uint64_t n, char *out, size_t cap)
{
    return snprintf(out, cap, "/p/%llu/x?size=512&cc=max-age%%3D%llu&sk=g%u", (unsigned long long)n,
                    (unsigned long long)s->ttl_s, (unsigned)(n % CDNLOAD_TAG_GROUPS));
}

int cdnload_purge_body(const cdnload_scenario_t *s, uint64_t n, const char *host, char *out, size_t cap)
{
    char probe[256], obj[256];
    cdnload_probe_target(s, n, probe, sizeof probe);
    switch (s->purge_kind) {
    case CDNLOAD_PURGE_TAG:
        return snprintf(out, cap, "{\"tags\": [\"g%u\"], \"host\": \"%s\"}", (unsigned)(n % CDNLOAD_TAG_GROUPS),
                        host);
    case CDNLOAD_PURGE_URL:
        cdnload_object_target(s, purge_object(s, n), true, obj, sizeof obj);
        return snprintf(out, cap, "{\"urls\": [\"%s\", \"%s\"], \"host\": \"%s\"}", probe, obj, host);
    case CDNLOAD_PURGE_PREFIX:
        return snprintf(out, cap, "{\"prefixes\": [\"/p/%llu/\", \"/o/%u\"], \"host\": \"%s\"}",
                        (unsigned long long)n, purge_prefix(n), host);
    }
    return 0;
}
