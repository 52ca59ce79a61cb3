/* Store format: a cache directory of another format (the previous one,
 * a newer one, or not LMDB at all) is moved aside whole and the store
 * opens empty; when it cannot be moved, store_open fails and says why. */
#include "test_store_util.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <time.h>

static char dir[64];

static void rm_aside(void)
{
    char pat[96];
    glob_t g;
    snprintf(pat, sizeof pat, "%s.old-*", dir);
    if (glob(pat, 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            ts_rmdir(g.gl_pathv[i]);
    globfree(&g);
}

static void setup(void)
{
    ts_mkdir(dir);
}

static void teardown(void)
{
    ts_rmdir(dir);
    rm_aside();
}

/* Not below the timeout of the suite before it: Criterion's runner leaks a
 * timeout record (LeakSanitizer fails the run) when a test with an earlier
 * deadline starts while another test is still running. */
TestSuite(store_format, .init = setup, .fini = teardown, .timeout = 120);

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

/* Write key = value into db `name` of the LMDB environment in dir. */
static void lmdb_put(const char *name, const char *key, const void *val, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, 16 * TS_MIB);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, name, MDB_CREATE, &dbi), 0);
    MDB_val k = { strlen(key), (void *)key }, v = { len, (void *)val };
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* The one directory moved aside for format v; it holds data.mdb. */
static void assert_aside(int v)
{
    char pat[96], path[160];
    glob_t g;
    snprintf(pat, sizeof pat, "%s.old-v%d-[0-9]*", dir, v);
    cr_assert_eq(glob(pat, 0, NULL, &g), 0, "nothing matches %s", pat);
    cr_assert_eq(g.gl_pathc, 1);
    snprintf(path, sizeof path, "%s/data.mdb", g.gl_pathv[0]);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "%s", path);
    globfree(&g);
}

/* The store opened in dir is empty and works. */
static void assert_fresh(store_t *s)
{
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 0);
    cr_assert_eq(st.bytes, 0);
    ts_put_t p = { .seed = 5 };
    ts_put(s, 1, 0, 1000, &p);
    store_sync(s);
    cr_assert_eq(p.status, STORE_OK);
    cr_assert_eq(ts_check(s, 1, 0, 5, 1000), STORE_OK);
}

Test(store_format, v1_directory_is_moved_aside)
{
    /* Format 1: no "format" key; "state" began with the format number. */
    uint8_t state[40] = { 0 };
    le64(state, 1);
    le64(state + 8, 100);
    le64(state + 32, 1);
    lmdb_put("info", "state", state, sizeof state);
    uint8_t rec[60] = { 1 };
    lmdb_put("objects", "0123456789abcdef01234567", rec, sizeof rec);
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    assert_aside(1);
    assert_fresh(s);
    store_close(s);
    /* Ours now: reopening keeps it. */
    s = ts_open(dir, 16 * TS_MIB, 0);
    cr_assert_eq(ts_check(s, 1, 0, 5, 1000), STORE_OK);
    store_close(s);
    assert_aside(1);
}

Test(store_format, newer_format_is_moved_aside)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    ts_put_t p = { .seed = 5 };
    ts_put(s, 1, 0, 1000, &p);
    store_close(s);
    uint8_t v[8];
    le64(v, 3);
    lmdb_put("info", "format", v, sizeof v);
    s = ts_open(dir, 16 * TS_MIB, 0);
    assert_aside(3);
    cr_assert_eq(ts_check(s, 1, 0, 5, 1000), STORE_NOTFOUND);
    assert_fresh(s);
    store_close(s);
}

Test(store_format, unreadable_file_is_moved_aside)
{
    char path[96];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0);
    static char junk[65536];
    memset(junk, 0x5a, sizeof junk);
    cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    assert_aside(0);
    assert_fresh(s);
    store_close(s);
}

Test(store_format, open_fails_when_it_cannot_move_aside)
{
    uint8_t v[8];
    le64(v, 1);
    lmdb_put("info", "format", v, sizeof v);
    /* Occupy every name the rename could take in the next few seconds:
     * rename onto a non-empty directory fails. */
    time_t now = time(NULL);
    for (int i = 0; i < 5; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s.old-v1-%lld", dir, (long long)(now + i));
        cr_assert_eq(mkdir(path, 0755), 0);
        strcat(path, "/x");
        cr_assert_eq(mkdir(path, 0755), 0);
    }
    store_t *s = NULL;
    char err[512] = "";
    store_opts_t o = { .dir = dir, .size = 16 * TS_MIB };
    cr_assert_eq(store_open(&s, &o, err, sizeof err), -EIO);
    cr_assert_null(s);
    cr_assert(strstr(err, "format v1") && strstr(err, "moving it aside"), "message: %s", err);
    char path[96];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "the old cache must be left where it was");
}
