/* Store crash safety: a child writing a burst of objects is SIGKILLed in
 * the middle; the reopened cache holds only whole objects, and every object
 * whose done callback ran before the kill.
 *
 * The child reports each done over a pipe; the parent kills it after a
 * pid-derived number of reports (random-ish, bounded), so the kill lands
 * at varying points of a later batch: inside body copies, commits or
 * evictions-free bookkeeping. The assertions hold wherever it lands. */
#include "test_store_util.h"

#include <signal.h>
#include <sys/wait.h>

#define CRASH_N 400
#define CRASH_MAP (256 * TS_MIB)

static char dir[64];

static void setup(void)
{
    ts_mkdir(dir);
}

static void teardown(void)
{
    ts_rmdir(dir);
}

TestSuite(store_crash, .init = setup, .fini = teardown, .timeout = 120);

/* Sizes cover inline, the boundary, one, several and uneven chunks. The
 * total (about 75 MiB) stays under the high-water mark: nothing is
 * evicted, so every acknowledged object must still be there. */
static uint64_t crash_len(uint32_t id)
{
    static const uint64_t sizes[] = { 0, 100, STORE_INLINE_MAX, STORE_INLINE_MAX + 1,
                                      200000, STORE_CHUNK_SIZE, STORE_CHUNK_SIZE + 1, 700000 };
    return sizes[(id * 5) % 8];
}

typedef struct crash_put {
    ts_put_t p;          /* first: ts_body reads it as a ts_put_t */
    uint32_t id;
    int fd;
} crash_put_t;

static void crash_done(void *ctx, int status)
{
    crash_put_t *c = ctx;
    if (status != STORE_OK)
        _exit(3);
    ssize_t w = write(c->fd, &c->id, sizeof c->id); /* 4 bytes: atomic on a pipe */
    (void)w;
}

static void child_run(int fd)
{
    static crash_put_t puts[CRASH_N];
    store_t *s = NULL;
    char err[256];
    store_opts_t o = { .dir = dir, .size = CRASH_MAP, .batch_ms = 1 };
    if (store_open(&s, &o, err, sizeof err) != 0)
        _exit(2);
    for (uint32_t i = 0; i < CRASH_N; i++) {
        char url[64];
        ts_url(url, sizeof url, i);
        puts[i] = (crash_put_t){ .p = { .seed = 5000 + i }, .id = i, .fd = fd };
        store_put_t put = { .key = ts_key(i, 0), .url = url, .url_len = strlen(url),
                            .meta = "", .meta_len = 0, .body_len = crash_len(i),
                            .body = ts_body, .done = crash_done, .ctx = &puts[i] };
        if (store_put(s, &put) != STORE_OK)
            _exit(4);
        if (i % 4 == 3)
            store_sync(s); /* many small batches: many commit points to be killed in */
    }
    store_close(s);
    _exit(0);
}

/* Like ts_check_in, for the child's empty metadata. */
static int crash_check(store_reader_t *r, uint32_t id)
{
    store_key_t k = ts_key(id, 0);
    store_obj_t o;
    char url[64];
    uint64_t seed = 5000 + id, len = crash_len(id);
    int rc = store_get(r, &k, &o);
    if (rc != STORE_OK)
        return rc;
    ts_url(url, sizeof url, id);
    if (o.url_len != strlen(url) || memcmp(o.url, url, o.url_len) || o.meta_len != 0 || o.body_len != len)
        return -100;
    if (o.nchunks == 0) {
        for (uint64_t i = 0; i < len; i++)
            if (o.body[i] != ts_byte(seed, i))
                return -100;
        return STORE_OK;
    }
    uint64_t off = 0;
    for (uint32_t c = 0; c < o.nchunks; c++) {
        const uint8_t *p;
        size_t n;
        if (store_get_chunk(r, o.object_id, c, &p, &n) != STORE_OK)
            return -101; /* a record without all its chunks: a torn write */
        for (size_t i = 0; i < n; i++)
            if (p[i] != ts_byte(seed, off + i))
                return -100;
        off += n;
    }
    return off == len ? STORE_OK : -100;
}

Test(store_crash, sigkill_mid_burst_leaves_whole_objects)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_run(fds[1]);
    }
    close(fds[1]);

    static bool acked[CRASH_N];
    unsigned kill_after = 20 + (unsigned)getpid() % 60, nacked = 0;
    bool killed = false;
    uint32_t id;
    /* Reads until EOF: reports written before the kill still count. */
    while (read(fds[0], &id, sizeof id) == (ssize_t)sizeof id) {
        cr_assert_lt(id, CRASH_N);
        acked[id] = true;
        if (++nacked == kill_after && !killed) {
            kill(pid, SIGKILL);
            killed = true;
        }
    }
    close(fds[0]);
    int wst;
    cr_assert_eq(waitpid(pid, &wst, 0), pid);
    cr_assert(killed, "child ended before %u acknowledgements (status %d)", kill_after, wst);
    cr_assert(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL, "child exited %d before the kill", WEXITSTATUS(wst));

    store_t *s = ts_open(dir, CRASH_MAP, 0);
    store_reader_t *r = store_reader_new(s);
    cr_assert_eq(store_read_begin(r), STORE_OK);
    uint64_t present = 0;
    for (uint32_t i = 0; i < CRASH_N; i++) {
        int rc = crash_check(r, i);
        cr_assert(rc == STORE_OK || rc == STORE_NOTFOUND, "object %u is damaged (%d)", i, rc);
        if (acked[i])
            cr_assert_eq(rc, STORE_OK, "acknowledged object %u lost", i);
        present += rc == STORE_OK;
    }
    store_read_end(r);
    cr_assert_geq(present, nacked);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, present, "accounting survived the crash");

    /* And the cache keeps working. */
    ts_put_t p = { .seed = 77 };
    ts_put(s, CRASH_N + 1, 0, 300000, &p);
    store_sync(s);
    cr_assert_eq(p.status, STORE_OK);
    cr_assert_eq(ts_check(s, CRASH_N + 1, 0, 77, 300000), STORE_OK);
    store_reader_free(r);
    store_close(s);
}
