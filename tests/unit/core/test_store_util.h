/* test_store_util: helpers shared by the store tests (test_store*.c).
 *
 * Bodies are derived from a seed byte by byte, so any object read back can
 * be checked exactly without keeping a copy. Every put's ctx is a ts_put_t
 * owned by the test; done records the status there. Statuses are read only
 * after store_sync or store_close, which order them after the callbacks. */
#ifndef TEST_STORE_UTIL_H
#define TEST_STORE_UTIL_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "store.h"

#define TS_MIB (1024ull * 1024)

typedef struct ts_put {
    uint64_t seed;
    int status; /* 1 until done runs */
} ts_put_t;

static inline uint8_t ts_byte(uint64_t seed, uint64_t off)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + off;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (uint8_t)x;
}

static inline void ts_body(void *ctx, uint64_t off, void *dst, size_t len)
{
    ts_put_t *p = ctx;
    uint8_t *d = dst;
    for (size_t i = 0; i < len; i++)
        d[i] = ts_byte(p->seed, off + i);
}

static inline void ts_done(void *ctx, int status)
{
    ((ts_put_t *)ctx)->status = status;
}

static inline void ts_status_done(void *ctx, int status)
{
    *(int *)ctx = status;
}

static inline int ts_rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static inline void ts_mkdir(char dir[64])
{
    strcpy(dir, "/tmp/store-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static inline void ts_rmdir(const char *dir)
{
    nftw(dir, ts_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static inline store_t *ts_open(const char *dir, uint64_t size, unsigned pct)
{
    store_t *s = NULL;
    char err[256] = "";
    store_opts_t o = { .dir = dir, .size = size, .batch_ms = 1, .high_water_pct = pct };
    cr_assert_eq(store_open(&s, &o, err, sizeof err), 0, "store_open: %s", err);
    return s;
}

static inline void ts_url(char *buf, size_t n, uint64_t id)
{
    snprintf(buf, n, "http://test.example/obj/%llu", (unsigned long long)id);
}

/* Key of object id (the hash of its URL) and variant. */
static inline store_key_t ts_key(uint64_t id, uint64_t variant)
{
    char url[64];
    store_key_t k = { .variant = variant };
    ts_url(url, sizeof url, id);
    hash_cache_key(url, strlen(url), k.hash);
    return k;
}

/* Queue a put of object id/variant with a body of len bytes from p->seed,
 * carrying tags ("tag\n" lines, or NULL), for a fetch begun at start_seq. */
static inline void ts_put_ex(store_t *s, uint64_t id, uint64_t variant, uint64_t len, ts_put_t *p, const char *tags,
                             uint64_t start_seq)
{
    char url[64];
    ts_url(url, sizeof url, id);
    p->status = 1;
    char meta[32];
    int ml = snprintf(meta, sizeof meta, "meta-%llu", (unsigned long long)p->seed);
    store_put_t put = {
        .key = ts_key(id, variant),
        .url = url,
        .url_len = strlen(url),
        .meta = meta,
        .meta_len = (size_t)ml,
        .tags = tags,
        .tags_len = tags ? strlen(tags) : 0,
        .start_seq = start_seq,
        .body_len = len,
        .body = ts_body,
        .done = ts_done,
        .ctx = p,
    };
    cr_assert_eq(store_put(s, &put), STORE_OK);
}

/* Queue a put of object id/variant with a body of len bytes from p->seed. */
static inline void ts_put(store_t *s, uint64_t id, uint64_t variant, uint64_t len, ts_put_t *p)
{
    ts_put_ex(s, id, variant, len, p, NULL, 0);
}

/* Inside a read transaction: is object id/variant there with exactly the
 * body of len bytes derived from seed? Returns STORE_OK, STORE_NOTFOUND, or
 * -100 when present but different (a torn or mixed object). */
static inline int ts_check_in(store_reader_t *r, uint64_t id, uint64_t variant, uint64_t seed, uint64_t len)
{
    store_key_t k = ts_key(id, variant);
    store_obj_t o;
    char url[64], meta[32];
    int rc = store_get(r, &k, &o);
    if (rc != STORE_OK)
        return rc;
    ts_url(url, sizeof url, id);
    snprintf(meta, sizeof meta, "meta-%llu", (unsigned long long)seed);
    if (o.url_len != strlen(url) || memcmp(o.url, url, o.url_len) != 0)
        return -100;
    if (o.meta_len != strlen(meta) || memcmp(o.meta, meta, o.meta_len) != 0)
        return -100;
    if (o.body_len != len)
        return -100;
    if (o.nchunks == 0) {
        if (!o.body)
            return -100;
        for (uint64_t i = 0; i < len; i++)
            if (o.body[i] != ts_byte(seed, i))
                return -100;
        return STORE_OK;
    }
    if (o.body)
        return -100;
    uint64_t off = 0;
    for (uint32_t c = 0; c < o.nchunks; c++) {
        const uint8_t *p;
        size_t n;
        if (store_get_chunk(r, o.object_id, c, &p, &n) != STORE_OK)
            return -100;
        for (size_t i = 0; i < n; i++)
            if (p[i] != ts_byte(seed, off + i))
                return -100;
        off += n;
    }
    return off == len ? STORE_OK : -100;
}

static inline int ts_check(store_t *s, uint64_t id, uint64_t variant, uint64_t seed, uint64_t len)
{
    store_reader_t *r = store_reader_new(s);
    cr_assert_not_null(r);
    cr_assert_eq(store_read_begin(r), STORE_OK);
    int rc = ts_check_in(r, id, variant, seed, len);
    store_read_end(r);
    store_reader_free(r);
    return rc;
}

/* The object id of object id (variant 0), which must be there; its meta
 * is copied to meta (NUL-terminated) when meta is not NULL. */
static inline uint64_t ts_object_id(store_t *s, uint64_t id, char *meta, size_t metacap)
{
    store_reader_t *r = store_reader_new(s);
    store_key_t k = ts_key(id, 0);
    store_obj_t o;
    cr_assert_eq(store_read_begin(r), STORE_OK);
    cr_assert_eq(store_get(r, &k, &o), STORE_OK);
    uint64_t oid = o.object_id;
    if (meta) {
        cr_assert_lt(o.meta_len, metacap);
        memcpy(meta, o.meta, o.meta_len);
        meta[o.meta_len] = '\0';
    }
    store_read_end(r);
    store_reader_free(r);
    return oid;
}

#endif
