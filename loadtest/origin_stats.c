/* origin_stats: per-path request counters for bin/origin.
 *
 * One mutex-protected open-addressing table shared by every worker thread:
 * a request costs one short critical section, which is nothing next to the
 * syscalls around it, and tests get exact counts whatever worker answered.
 * The table is bounded (ORIGIN_MAX_PATHS by default) so a load test that
 * walks millions of distinct URLs cannot exhaust memory: past the bound,
 * new paths share one "other" bucket. */
#include <errno.h>
#include <llhttp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "origin.h"

typedef struct method_count {
    uint8_t method;
    uint64_t n;
} method_count_t;

typedef struct entry {
    char *path;              /* owned; NULL = free slot */
    size_t plen;
    uint64_t hash;
    uint64_t requests, bytes;
    method_count_t *methods; /* owned, nmethods long */
    unsigned nmethods;
} entry_t;

struct origin_stats {
    pthread_mutex_t mu;
    entry_t *slots;          /* cap slots, cap a power of two */
    size_t cap, used, max_paths;
    entry_t other;           /* paths beyond max_paths */
    uint64_t requests, bytes;
    uint64_t connections;    /* TCP connections accepted */
};

static const uint8_t stats_key[16] = { 'o', 'r', 'i', 'g', 'i', 'n', '-', 's',
                                       't', 'a', 't', 's', '-', 'k', 'e', 'y' };

origin_stats_t *origin_stats_new(size_t max_paths)
{
    origin_stats_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = 1024;
    s->slots = calloc(s->cap, sizeof *s->slots);
    if (!s->slots) {
        free(s);
        return NULL;
    }
    s->max_paths = max_paths ? max_paths : ORIGIN_MAX_PATHS;
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

static void entry_clear(entry_t *e)
{
    free(e->path);
    free(e->methods);
    memset(e, 0, sizeof *e);
}

static void clear_all(origin_stats_t *s)
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].path)
            entry_clear(&s->slots[i]);
    free(s->other.methods);
    memset(&s->other, 0, sizeof s->other);
    s->used = 0;
    s->requests = s->bytes = 0;
    s->connections = 0;
}

void origin_stats_free(origin_stats_t *s)
{
    if (!s)
        return;
    clear_all(s);
    free(s->slots);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static entry_t *probe(entry_t *slots, size_t cap, const char *path, size_t plen, uint64_t h)
{
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        entry_t *e = &slots[i];
        if (!e->path || (e->hash == h && e->plen == plen && memcmp(e->path, path, plen) == 0))
            return e;
    }
}

static int grow(origin_stats_t *s)
{
    size_t ncap = s->cap * 2;
    entry_t *n = calloc(ncap, sizeof *n);
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        entry_t *e = &s->slots[i];
        if (e->path)
            *probe(n, ncap, e->path, e->plen, e->hash) = *e;
    }
    free(s->slots);
    s->slots = n;
    s->cap = ncap;
    return 0;
}

/* The entry counting path: found, created, or the other bucket. Under mu. */
static entry_t *lookup(origin_stats_t *s, const char *path, size_t plen, bool create)
{
    uint64_t h = hash_sip64(stats_key, path, plen);
    entry_t *e = probe(s->slots, s->cap, path, plen, h);
    if (e->path)
        return e;
    if (!create)
        return NULL;
    if (s->used >= s->max_paths)
        return &s->other;
    if ((s->used + 1) * 2 > s->cap) {
        if (grow(s))
            return &s->other;
        e = probe(s->slots, s->cap, path, plen, h);
    }
    char *copy = malloc(plen + 1);
    if (!copy)
        return &s->other;
    memcpy(copy, path, plen);
    copy[plen] = '\0';
    e->path = copy;
    e->plen = plen;
    e->hash = h;
    s->used++;
    return e;
}

static void count_method(entry_t *e, int method)
{
    for (unsigned i = 0; i < e->nmethods; i++) {
        if (e->methods[i].method == method) {
            e->methods[i].n++;
            return;
        }
    }
    method_count_t *m = realloc(e->methods, (e->nmethods + 1) * sizeof *m);
    if (!m)
        return; /* the per-method split is best effort; totals stay exact */
    e->methods = m;
    e->methods[e->nmethods].method = (uint8_t)method;
    e->methods[e->nmethods].n = 1;
    e->nmethods++;
}

uint64_t origin_stats_request(origin_stats_t *s, const char *path, size_t plen, int method)
{
    pthread_mutex_lock(&s->mu);
    entry_t *e = lookup(s, path, plen, true);
    e->requests++;
    s->requests++;
    count_method(e, method);
    uint64_t n = e->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void origin_stats_bytes(origin_stats_t *s, const char *path, size_t plen, uint64_t n)
{
    pthread_mutex_lock(&s->mu);
    entry_t *e = lookup(s, path, plen, true);
    e->bytes += n;
    s->bytes += n;
    pthread_mutex_unlock(&s->mu);
}

void origin_stats_connection(origin_stats_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->connections++;
    pthread_mutex_unlock(&s->mu);
}

void origin_stats_reset(origin_stats_t *s)
{
    pthread_mutex_lock(&s->mu);
    clear_all(s);
    pthread_mutex_unlock(&s->mu);
}

int origin_json_str(buf_t *out, const char *s, size_t n)
{
    int rc = buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        rc = buf_append(out, s + run, i - run);
        if (!rc)
            rc = buf_printf(out, ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : "\\u%04x", ch);
        run = i + 1;
    }
    if (!rc)
        rc = buf_append(out, s + run, n - run);
    if (!rc)
        rc = buf_append(out, "\"", 1);
    return rc;
}

static int entry_json(buf_t *out, const entry_t *e)
{
    int rc = buf_printf(out, "{\"requests\":%llu,\"bytes\":%llu", (unsigned long long)e->requests,
                        (unsigned long long)e->bytes);
    for (unsigned i = 0; i < e->nmethods && !rc; i++)
        rc = buf_printf(out, ",\"%s\":%llu", llhttp_method_name((llhttp_method_t)e->methods[i].method),
                        (unsigned long long)e->methods[i].n);
    if (!rc)
        rc = buf_append(out, "}", 1);
    return rc;
}

int origin_stats_json(origin_stats_t *s, buf_t *out)
{
    pthread_mutex_lock(&s->mu);
    int rc = buf_printf(out, "{\"requests\":%llu,\"bytes\":%llu,\"connections\":%llu,\"paths\":{",
                        (unsigned long long)s->requests, (unsigned long long)s->bytes,
                        (unsigned long long)s->connections);
    bool first = true;
    for (size_t i = 0; i < s->cap && !rc; i++) {
        const entry_t *e = &s->slots[i];
        if (!e->path)
            continue;
        if (!first)
            rc = buf_append(out, ",", 1);
        first = false;
        if (!rc)
            rc = origin_json_str(out, e->path, e->plen);
        if (!rc)
            rc = buf_append(out, ":", 1);
        if (!rc)
            rc = entry_json(out, e);
    }
    if (!rc)
        rc = buf_append(out, "}", 1);
    if (!rc && s->other.requests) {
        rc = buf_puts(out, ",\"other\":");
        if (!rc)
            rc = entry_json(out, &s->other);
    }
    if (!rc)
        rc = buf_append(out, "}\n", 2);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int origin_stats_path_json(origin_stats_t *s, const char *path, size_t plen, buf_t *out)
{
    pthread_mutex_lock(&s->mu);
    const entry_t *e = lookup(s, path, plen, false);
    uint64_t req = e ? e->requests : 0, bytes = e ? e->bytes : 0;
    pthread_mutex_unlock(&s->mu);
    int rc = buf_puts(out, "{\"path\":");
    if (!rc)
        rc = origin_json_str(out, path, plen);
    if (!rc)
        rc = buf_printf(out, ",\"requests\":%llu,\"bytes\":%llu}\n", (unsigned long long)req,
                        (unsigned long long)bytes);
    return rc;
}

int origin_stats_prefix_json(origin_stats_t *s, const char *prefix, size_t plen, buf_t *out)
{
    /* A walk of the whole table under the lock: tens of thousands of
     * entries, polled once a second, is far cheaper than the per-path
     * table's JSON that the poller would otherwise fetch and parse. */
    uint64_t paths = 0, req = 0, bytes = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->cap; i++) {
        const entry_t *e = &s->slots[i];
        if (e->path && e->plen >= plen && memcmp(e->path, prefix, plen) == 0) {
            paths++;
            req += e->requests;
            bytes += e->bytes;
        }
    }
    pthread_mutex_unlock(&s->mu);
    int rc = buf_puts(out, "{\"prefix\":");
    if (!rc)
        rc = origin_json_str(out, prefix, plen);
    if (!rc)
        rc = buf_printf(out, ",\"paths\":%llu,\"requests\":%llu,\"bytes\":%llu}\n", (unsigned long long)paths,
                        (unsigned long long)req, (unsigned long long)bytes);
    return rc;
}
