/* store_update_meta: a revalidation rewrites an object's metadata, keeps
 * its body and version, and does nothing to a newer version. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "test_store_util.h"

static void check_body(store_t *s, uint64_t id, uint64_t seed, uint64_t len)
{
    store_reader_t *r = store_reader_new(s);
    store_key_t k = ts_key(id, 0);
    store_obj_t o;
    cr_assert_eq(store_read_begin(r), STORE_OK);
    cr_assert_eq(store_get(r, &k, &o), STORE_OK);
    cr_assert_eq(o.body_len, len);
    uint64_t off = 0;
    for (uint32_t c = 0; c < o.nchunks || (c == 0 && o.body); c++) {
        const uint8_t *p = o.body;
        size_t n = (size_t)len;
        if (!o.body)
            cr_assert_eq(store_get_chunk(r, o.object_id, c, &p, &n), STORE_OK);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(p[i], ts_byte(seed, off + i), "byte %llu", (unsigned long long)(off + i));
        off += n;
        if (o.body)
            break;
    }
    cr_assert_eq(off, len);
    store_read_end(r);
    store_reader_free(r);
}

static void update_case(uint64_t len)
{
    char dir[64], meta[128];
    ts_mkdir(dir);
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    ts_put_t p = { .seed = 7 };
    ts_put(s, 1, 0, len, &p);
    store_sync(s);
    cr_assert_eq(p.status, STORE_OK);
    uint64_t oid = ts_object_id(s, 1, meta, sizeof meta);
    store_key_t k = ts_key(1, 0);
    int st = 1;
    static const char nm[] = "a much longer revalidated metadata blob, longer than before";
    cr_assert_eq(store_update_meta(s, &k, oid, nm, sizeof nm - 1, ts_status_done, &st), STORE_OK);
    store_sync(s);
    cr_assert_eq(st, STORE_OK);
    cr_assert_eq(ts_object_id(s, 1, meta, sizeof meta), oid, "the version must not change");
    cr_assert_str_eq(meta, nm);
    check_body(s, 1, 7, len);
    /* A stale version id updates nothing. */
    st = 1;
    cr_assert_eq(store_update_meta(s, &k, oid + 1000, "x", 1, ts_status_done, &st), STORE_OK);
    store_sync(s);
    cr_assert_eq(st, STORE_NOTFOUND);
    cr_assert_str_eq((ts_object_id(s, 1, meta, sizeof meta), meta), nm);
    /* Nor does an absent key. */
    store_key_t k2 = ts_key(2, 0);
    st = 1;
    cr_assert_eq(store_update_meta(s, &k2, oid, "x", 1, ts_status_done, &st), STORE_OK);
    store_sync(s);
    cr_assert_eq(st, STORE_NOTFOUND);
    /* Accounting still balances: deleting brings it back to zero. */
    st = 1;
    cr_assert_eq(store_delete(s, &k, ts_status_done, &st), STORE_OK);
    store_sync(s);
    store_stats_t stats;
    store_get_stats(s, &stats);
    cr_assert_eq(stats.bytes, 0);
    cr_assert_eq(stats.objects, 0);
    store_close(s);
    ts_rmdir(dir);
}

Test(store_update, inline_body_kept)
{
    update_case(1000);
}

Test(store_update, chunked_body_kept)
{
    update_case(3 * STORE_CHUNK_SIZE + 17);
}
