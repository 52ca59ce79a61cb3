/* Store basics: exact bodies at the inline/chunk boundaries, replacement,
 * variants and deletes, persistence, read snapshots, the directory lock. */
#include "test_store_util.h"

#include <errno.h>
#include <sys/wait.h>

static char dir[64];

static void setup(void)
{
    ts_mkdir(dir);
}

static void teardown(void)
{
    ts_rmdir(dir);
}

TestSuite(store_basic, .init = setup, .fini = teardown, .timeout = 60);

Test(store_basic, sizes_byte_exact)
{
    static const uint64_t sizes[] = { 0, 1, STORE_INLINE_MAX, STORE_INLINE_MAX + 1, STORE_CHUNK_SIZE * 7 / 2 };
    ts_put_t p[5];
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    for (int i = 0; i < 5; i++) {
        p[i].seed = 100 + (uint64_t)i;
        ts_put(s, (uint64_t)i, 0, sizes[i], &p[i]);
    }
    store_sync(s);
    store_reader_t *r = store_reader_new(s);
    cr_assert_eq(store_read_begin(r), STORE_OK);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(p[i].status, STORE_OK);
        cr_assert_eq(ts_check_in(r, (uint64_t)i, 0, p[i].seed, sizes[i]), STORE_OK, "size %llu",
                     (unsigned long long)sizes[i]);
        store_key_t k = ts_key((uint64_t)i, 0);
        store_obj_t o;
        cr_assert_eq(store_get(r, &k, &o), STORE_OK);
        if (sizes[i] <= STORE_INLINE_MAX) {
            cr_assert_eq(o.nchunks, 0);
            cr_assert_not_null(o.body);
        } else {
            cr_assert_eq(o.nchunks, (sizes[i] + STORE_CHUNK_SIZE - 1) / STORE_CHUNK_SIZE);
            cr_assert_null(o.body);
            const uint8_t *cp;
            size_t n;
            cr_assert_eq(store_get_chunk(r, o.object_id, o.nchunks, &cp, &n), STORE_NOTFOUND);
        }
    }
    store_key_t missing = ts_key(99, 0);
    store_obj_t o;
    cr_assert_eq(store_get(r, &missing, &o), STORE_NOTFOUND);
    store_read_end(r);
    store_reader_free(r);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 5);
    cr_assert_eq(st.puts, 5);
    cr_assert(st.bytes > STORE_CHUNK_SIZE * 7 / 2 && st.bytes <= st.bytes_max);
    store_close(s);
}

Test(store_basic, replace_drops_old_version)
{
    ts_put_t a = { .seed = 1 }, b = { .seed = 2 };
    int del = 1;
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    ts_put(s, 7, 0, STORE_CHUNK_SIZE * 7 / 2, &a);
    store_sync(s);
    store_reader_t *r = store_reader_new(s);
    store_key_t k = ts_key(7, 0);
    store_obj_t o;
    cr_assert_eq(store_read_begin(r), STORE_OK);
    cr_assert_eq(store_get(r, &k, &o), STORE_OK);
    uint64_t old_id = o.object_id;
    uint32_t old_n = o.nchunks;
    store_read_end(r);

    ts_put(s, 7, 0, 20000, &b);
    store_sync(s);
    cr_assert_eq(b.status, STORE_OK);
    cr_assert_eq(ts_check(s, 7, 0, 2, 20000), STORE_OK);
    cr_assert_eq(store_read_begin(r), STORE_OK);
    cr_assert_eq(store_get(r, &k, &o), STORE_OK);
    cr_assert_neq(o.object_id, old_id);
    for (uint32_t i = 0; i < old_n; i++) {
        const uint8_t *cp;
        size_t n;
        cr_assert_eq(store_get_chunk(r, old_id, i, &cp, &n), STORE_NOTFOUND, "old chunk %u survived", i);
    }
    store_read_end(r);
    store_reader_free(r);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 1);

    /* Accounting returns to zero: nothing of the first version is still charged. */
    cr_assert_eq(store_delete(s, &k, ts_status_done, &del), STORE_OK);
    store_sync(s);
    cr_assert_eq(del, STORE_OK);
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 0);
    cr_assert_eq(st.bytes, 0);
    store_close(s);
}

Test(store_basic, variants_and_delete_url)
{
    static const uint64_t variants[] = { 0, 1, 7, UINT64_MAX };
    ts_put_t p[4], nb[2];
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    for (int i = 0; i < 4; i++) {
        p[i].seed = 10 + (uint64_t)i;
        ts_put(s, 1, variants[i], i == 2 ? 300000 : 1000, &p[i]);
    }
    /* Neighbours in key order: hashes one below and one above, differing
     * only in the last byte. */
    store_key_t k1 = ts_key(1, 0);
    for (int j = 0; j < 2; j++) {
        store_key_t nk = k1;
        nk.hash[15] = (uint8_t)(nk.hash[15] + (j ? 1 : 255));
        nb[j] = (ts_put_t){ .seed = 50 + (uint64_t)j, .status = 1 };
        store_put_t put = { .key = nk, .url = "n", .url_len = 1, .body_len = 500, .body = ts_body,
                            .done = ts_done, .ctx = &nb[j] };
        cr_assert_eq(store_put(s, &put), STORE_OK);
    }
    store_sync(s);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(ts_check(s, 1, variants[i], p[i].seed, i == 2 ? 300000 : 1000), STORE_OK);
    store_reader_t *r = store_reader_new(s);
    store_obj_t o;
    cr_assert_eq(store_read_begin(r), STORE_OK);
    store_key_t kv = ts_key(1, 7);
    cr_assert_eq(store_get(r, &kv, &o), STORE_OK);
    uint64_t chunked_id = o.object_id;
    store_read_end(r);

    int st_del = 1;
    cr_assert_eq(store_delete_url(s, k1.hash, ts_status_done, &st_del), STORE_OK);
    store_sync(s);
    cr_assert_eq(st_del, STORE_OK);
    cr_assert_eq(store_read_begin(r), STORE_OK);
    for (int i = 0; i < 4; i++) {
        store_key_t k = ts_key(1, variants[i]);
        cr_assert_eq(store_get(r, &k, &o), STORE_NOTFOUND, "variant %d survived", i);
    }
    const uint8_t *cp;
    size_t n;
    cr_assert_eq(store_get_chunk(r, chunked_id, 0, &cp, &n), STORE_NOTFOUND);
    for (int j = 0; j < 2; j++) {
        store_key_t nk = k1;
        nk.hash[15] = (uint8_t)(nk.hash[15] + (j ? 1 : 255));
        cr_assert_eq(store_get(r, &nk, &o), STORE_OK, "neighbour %d deleted", j);
        cr_assert_eq(o.body_len, 500);
        cr_assert_eq(o.body[499], ts_byte(nb[j].seed, 499));
    }
    store_read_end(r);
    store_reader_free(r);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 2);
    cr_assert_eq(st.deletes, 4);

    /* Deleting what is not there is a success (purges are idempotent). */
    st_del = 1;
    cr_assert_eq(store_delete_url(s, k1.hash, ts_status_done, &st_del), STORE_OK);
    int st_one = 1;
    store_key_t gone = ts_key(1, 1);
    cr_assert_eq(store_delete(s, &gone, ts_status_done, &st_one), STORE_OK);
    store_sync(s);
    cr_assert_eq(st_del, STORE_OK);
    cr_assert_eq(st_one, STORE_OK);
    store_close(s);
}

Test(store_basic, persists_across_reopen)
{
    ts_put_t p[6];
    store_t *s = NULL;
    char err[256] = "";
    /* The fsync-per-commit configuration (the other tests run MDB_NOSYNC). */
    store_opts_t o = { .dir = dir, .size = 16 * TS_MIB, .sync_commit = true };
    cr_assert_eq(store_open(&s, &o, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 6; i++) {
        p[i].seed = 200 + (uint64_t)i;
        ts_put(s, (uint64_t)i, 0, (uint64_t)i * 70000, &p[i]);
    }
    /* No sync: close itself must drain the queue and run every done. */
    store_close(s);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(p[i].status, STORE_OK);

    s = ts_open(dir, 16 * TS_MIB, 0);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 6);
    uint64_t bytes = st.bytes;
    for (int i = 0; i < 6; i++)
        cr_assert_eq(ts_check(s, (uint64_t)i, 0, p[i].seed, (uint64_t)i * 70000), STORE_OK);
    /* New writes after a restart must not reuse chunk ids of live objects. */
    ts_put_t q = { .seed = 999 };
    ts_put(s, 100, 0, 300000, &q);
    store_sync(s);
    cr_assert_eq(q.status, STORE_OK);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(ts_check(s, (uint64_t)i, 0, p[i].seed, (uint64_t)i * 70000), STORE_OK);
    cr_assert_eq(ts_check(s, 100, 0, 999, 300000), STORE_OK);
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 7);
    cr_assert(st.bytes > bytes);
    store_close(s);
}

Test(store_basic, reader_keeps_snapshot_while_replaced)
{
    ts_put_t a = { .seed = 1 }, b = { .seed = 2 }, c = { .seed = 3 }, d = { .seed = 4 };
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    ts_put(s, 1, 0, 600000, &a);
    ts_put(s, 2, 0, 5000, &c);
    store_sync(s);
    store_reader_t *r = store_reader_new(s);
    store_key_t k1 = ts_key(1, 0), k2 = ts_key(2, 0);
    store_obj_t o1, o2;
    cr_assert_eq(store_read_begin(r), STORE_OK);
    cr_assert_eq(store_get(r, &k1, &o1), STORE_OK);
    cr_assert_eq(store_get(r, &k2, &o2), STORE_OK);
    const uint8_t *c0;
    size_t n0;
    cr_assert_eq(store_get_chunk(r, o1.object_id, 0, &c0, &n0), STORE_OK);

    /* Replace both and commit while the read txn is open. */
    ts_put(s, 1, 0, 400000, &b);
    ts_put(s, 2, 0, 6000, &d);
    store_sync(s);
    cr_assert_eq(b.status, STORE_OK);
    for (size_t i = 0; i < n0; i++)
        cr_assert_eq(c0[i], ts_byte(1, i));
    for (size_t i = 0; i < o2.body_len; i++)
        cr_assert_eq(o2.body[i], ts_byte(3, i));
    cr_assert_eq(ts_check_in(r, 1, 0, 1, 600000), STORE_OK, "old version must stay whole in the snapshot");
    store_read_end(r);

    cr_assert_eq(store_read_begin(r), STORE_OK);
    cr_assert_eq(ts_check_in(r, 1, 0, 2, 400000), STORE_OK);
    cr_assert_eq(ts_check_in(r, 2, 0, 4, 6000), STORE_OK);
    /* A reader streaming the old version across transactions finds the
     * next chunk gone rather than bytes of the new version. */
    const uint8_t *cp;
    size_t n;
    cr_assert_eq(store_get_chunk(r, o1.object_id, 1, &cp, &n), STORE_NOTFOUND);
    store_read_end(r);
    store_reader_free(r);
    store_close(s);
}

Test(store_basic, second_open_fails_with_message)
{
    store_t *s = ts_open(dir, 8 * TS_MIB, 0);
    store_t *s2 = NULL;
    char err[256] = "";
    store_opts_t o = { .dir = dir, .size = 8 * TS_MIB };
    cr_assert_eq(store_open(&s2, &o, err, sizeof err), -EIO);
    cr_assert_null(s2);
    cr_assert(strstr(err, "in use") != NULL, "message: %s", err);

    /* The same from another process. */
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char e[256] = "";
        store_t *x = NULL;
        int rc = store_open(&x, &o, e, sizeof e);
        _exit(rc == -EIO && strstr(e, "in use") ? 0 : 1);
    }
    int wst;
    cr_assert_eq(waitpid(pid, &wst, 0), pid);
    cr_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    store_close(s);

    /* Released at close. */
    s = ts_open(dir, 8 * TS_MIB, 0);
    store_close(s);
}

Test(store_basic, refuses_what_cannot_fit)
{
    store_t *s = ts_open(dir, 4 * TS_MIB, 0);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert(st.object_max <= 1 * TS_MIB);
    ts_put_t big = { .seed = 1 }, small = { .seed = 2 }, huge = { .seed = 3 };
    ts_put(s, 1, 0, 2 * TS_MIB, &big);
    ts_put(s, 2, 0, 1000, &small);
    ts_put(s, 3, 0, 64 * TS_MIB, &huge);
    ts_put_t absurd = { .seed = 4 };
    ts_put(s, 5, 0, UINT64_MAX / 2, &absurd); /* must not wrap the chunk count */
    /* url+meta over STORE_META_MAX */
    static char longurl[STORE_META_MAX + 1];
    memset(longurl, 'a', sizeof longurl);
    int st_long = 1;
    store_put_t put = { .key = ts_key(4, 0), .url = longurl, .url_len = sizeof longurl,
                        .done = ts_status_done, .ctx = &st_long };
    cr_assert_eq(store_put(s, &put), STORE_OK);
    store_sync(s);
    cr_assert_eq(big.status, STORE_ERROR);
    cr_assert_eq(huge.status, STORE_ERROR);
    cr_assert_eq(absurd.status, STORE_ERROR);
    cr_assert_eq(st_long, STORE_ERROR);
    cr_assert_eq(small.status, STORE_OK);
    cr_assert_eq(ts_check(s, 1, 0, 1, 2 * TS_MIB), STORE_NOTFOUND);
    cr_assert_eq(ts_check(s, 2, 0, 2, 1000), STORE_OK);
    store_close(s);

    store_t *bad = NULL;
    char err[256] = "";
    store_opts_t o = { .dir = dir, .size = 4096 };
    cr_assert_eq(store_open(&bad, &o, err, sizeof err), -EIO);
    cr_assert(err[0] != '\0');
}

static void count_done(void *ctx, int status)
{
    (void)status;
    ++*(int *)ctx;
}

Test(store_basic, touch_overflow_and_close_drains)
{
    store_t *s = ts_open(dir, 8 * TS_MIB, 0);
    store_reader_t *r = store_reader_new(s);
    for (uint64_t i = 0; i < 2000; i++) {
        store_key_t k = ts_key(i % 700, 0);
        store_touch(r, &k); /* more distinct keys than a reader holds: flushes on its own */
    }
    store_reader_flush_touches(r);
    store_reader_free(r);
    int n = 0;
    store_key_t k = ts_key(1, 0);
    cr_assert_eq(store_delete(s, &k, count_done, &n), STORE_OK);
    store_close(s);
    cr_assert_eq(n, 1);
}

Test(store_basic, strerror_names_each_code)
{
    cr_assert_str_eq(store_strerror(STORE_OK), "ok");
    cr_assert_str_eq(store_strerror(STORE_NOTFOUND), "not found");
    cr_assert_str_eq(store_strerror(STORE_ERROR), "storage error");
    cr_assert_str_eq(store_strerror(STORE_CLOSED), "store closed");
    cr_assert_str_eq(store_strerror(-1000), "unknown store error");
}
