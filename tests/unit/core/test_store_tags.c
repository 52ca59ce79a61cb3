/* Store tags: the tag index holds exactly one entry per (tag, object)
 * after any mix of puts, replacements, deletes, purges and evictions; the
 * per-object bounds drop tags whole. */
#include "test_store_util.h"

#include <pthread.h>

static char dir[64];

static void setup(void)
{
    ts_mkdir(dir);
}

static void teardown(void)
{
    ts_rmdir(dir);
}

TestSuite(store_tags, .init = setup, .fini = teardown, .timeout = 180);

#define NTAGS 8
#define NIDS 200

static void purged_done(void *ctx, int status, uint64_t count)
{
    (void)count;
    *(int *)ctx = status;
}

static uint64_t rnd(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return *x >> 33;
}

/* Walk what the store holds (ids x variants 0, 1) and count each tag. */
static void expected_counts(store_t *s, uint64_t counts[NTAGS], uint64_t *objects)
{
    store_reader_t *r = store_reader_new(s);
    memset(counts, 0, NTAGS * sizeof counts[0]);
    *objects = 0;
    cr_assert_eq(store_read_begin(r), STORE_OK);
    for (uint64_t id = 0; id < NIDS; id++) {
        for (uint64_t v = 0; v < 2; v++) {
            store_key_t k = ts_key(id, v);
            store_obj_t o;
            if (store_get(r, &k, &o) != STORE_OK)
                continue;
            ++*objects;
            for (size_t i = 0; i < o.tags_len; i++) {
                cr_assert(o.tags[i] == 't' && i + 2 < o.tags_len && o.tags[i + 2] == '\n', "tags %.*s",
                          (int)o.tags_len, o.tags);
                counts[o.tags[i + 1] - '0']++;
                i += 2;
            }
        }
    }
    store_read_end(r);
    store_reader_free(r);
}

Test(store_tags, index_matches_objects_after_random_work_and_eviction)
{
    static const uint64_t sizes[] = { 300, 5000, 20000, 150000, 400000, 900 };
    store_t *s = ts_open(dir, 4 * TS_MIB, 0);
    uint64_t x = 42;
    ts_put_t p[8];
    int np = 0;
    for (int step = 0; step < 3000; step++) {
        uint64_t id = rnd(&x) % NIDS, what = rnd(&x) % 100;
        if (what < 65) {
            char tags[64] = "";
            size_t n = 0;
            for (uint64_t t = rnd(&x) % 4; t > 0; t--)
                n += (size_t)snprintf(tags + n, sizeof tags - n, "t%d\n", (int)(rnd(&x) % NTAGS));
            p[np].seed = (uint64_t)step;
            ts_put_ex(s, id, rnd(&x) % 2, sizes[rnd(&x) % 6], &p[np++], tags, 0);
        } else if (what < 75) {
            store_key_t k = ts_key(id, rnd(&x) % 2);
            cr_assert_eq(store_delete(s, &k, NULL, NULL), STORE_OK);
        } else if (what < 82) {
            store_key_t k = ts_key(id, 0);
            cr_assert_eq(store_delete_url(s, k.hash, NULL, NULL), STORE_OK);
        } else if (what < 88) {
            store_key_t k = ts_key(id, 0);
            cr_assert_eq(store_purge_url(s, k.hash, what & 1, NULL, NULL), STORE_OK);
        } else if (what < 96) {
            char tag[4];
            snprintf(tag, sizeof tag, "t%d", (int)(rnd(&x) % NTAGS));
            cr_assert_eq(store_purge_tag(s, tag, 2, what & 1, NULL, NULL), STORE_OK);
        } else {
            char pfx[64];
            ts_url(pfx, sizeof pfx, id);
            cr_assert_eq(store_purge_prefix(s, pfx, strlen(pfx), what & 1, NULL, NULL), STORE_OK);
        }
        if (np == 8 || step % 8 == 7) {
            store_sync(s);
            for (int i = 0; i < np; i++)
                cr_assert_eq(p[i].status, STORE_OK);
            np = 0;
        }
    }
    store_sync(s);
    for (int i = 0; i < np; i++)
        cr_assert_eq(p[i].status, STORE_OK);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_gt(st.evictions, 100, "the map must have been filled many times over");
    cr_assert_gt(st.purge_deleted, 0);
    cr_assert_eq(st.bans, 0);
    uint64_t counts[NTAGS], objects, total = 0;
    expected_counts(s, counts, &objects);
    cr_assert_eq(objects, st.objects);
    for (int t = 0; t < NTAGS; t++) {
        char tag[4];
        snprintf(tag, sizeof tag, "t%d", t);
        cr_assert_eq(store_debug_tag_count(s, tag, 2), counts[t], "tag %s: %llu entries for %llu objects", tag,
                     (unsigned long long)store_debug_tag_count(s, tag, 2), (unsigned long long)counts[t]);
        total += counts[t];
    }
    cr_assert_eq(store_debug_tag_count(s, NULL, 0), total, "no entries for other tags or dead objects");
    cr_assert_gt(total, 0);
    store_close(s);
}

/* Put one object with tags, return what the store kept. */
static void kept_tags(store_t *s, const char *tags, size_t tags_len, char *out, size_t cap)
{
    ts_put_t p = { .seed = 1, .status = 1 };
    store_put_t put = { .key = ts_key(1, 0), .url = "u", .url_len = 1, .tags = tags, .tags_len = tags_len,
                        .body_len = 10, .body = ts_body, .done = ts_done, .ctx = &p };
    cr_assert_eq(store_put(s, &put), STORE_OK);
    store_sync(s);
    cr_assert_eq(p.status, STORE_OK);
    store_reader_t *r = store_reader_new(s);
    store_obj_t o;
    cr_assert_eq(store_read_begin(r), STORE_OK);
    cr_assert_eq(store_get(r, &put.key, &o), STORE_OK);
    cr_assert_lt(o.tags_len, cap);
    memcpy(out, o.tags, o.tags_len);
    out[o.tags_len] = '\0';
    store_read_end(r);
    store_reader_free(r);
}

Test(store_tags, per_object_bounds_drop_whole_tags)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    /* Defaults: 32 tags of at most 128 bytes. */
    static char in[8192], want[8192], got[8192];
    char t128[129], t129[130];
    memset(t128, 'a', 128);
    t128[128] = '\0';
    memset(t129, 'b', 129);
    t129[129] = '\0';
    size_t n = 0, w = 0;
    n += (size_t)snprintf(in + n, sizeof in - n, "tag00\n\n%s\ntag00\n%s\n", t129, t128);
    w += (size_t)snprintf(want + w, sizeof want - w, "tag00\n%s\n", t128);
    for (int i = 1; i < 40; i++) {
        n += (size_t)snprintf(in + n, sizeof in - n, "tag%02d\n", i);
        if (i < 31)
            w += (size_t)snprintf(want + w, sizeof want - w, "tag%02d\n", i);
    }
    kept_tags(s, in, n, got, sizeof got);
    cr_assert_str_eq(got, want);
    cr_assert_eq(store_debug_tag_count(s, t128, 128), 1);
    cr_assert_eq(store_debug_tag_count(s, t129, 129), 0, "too long: dropped, not truncated");
    cr_assert_eq(store_debug_tag_count(s, t129, 128), 0);
    cr_assert_eq(store_debug_tag_count(s, "tag30", 5), 1);
    cr_assert_eq(store_debug_tag_count(s, "tag31", 5), 0, "past max_tags");
    cr_assert_eq(store_debug_tag_count(s, NULL, 0), 32);
    /* No final newline. */
    kept_tags(s, "x\ny", 3, got, sizeof got);
    cr_assert_str_eq(got, "x\ny\n");
    cr_assert_eq(store_debug_tag_count(s, NULL, 0), 2, "the replaced object's tags are gone");
    /* Bad purge arguments are refused without a callback. */
    int st = 1;
    cr_assert_eq(store_purge_tag(s, "a\nb", 3, false, purged_done, &st), STORE_ERROR);
    cr_assert_eq(store_purge_tag(s, "", 0, false, purged_done, &st), STORE_ERROR);
    store_sync(s);
    cr_assert_eq(st, 1);
    store_close(s);

    store_opts_t o = { .dir = dir, .size = 16 * TS_MIB, .batch_ms = 1, .max_tags = 2, .max_tag_bytes = 4 };
    char err[256] = "";
    cr_assert_eq(store_open(&s, &o, err, sizeof err), 0, "%s", err);
    kept_tags(s, "abcde\nab\nab\nabc\nabcd\n", 21, got, sizeof got);
    cr_assert_str_eq(got, "ab\nabc\n");
    store_close(s);
}
