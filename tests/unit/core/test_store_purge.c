/* Store purges: URL, tag and prefix purges, hard and soft; purges win over
 * fills already running (start_seq); the stale mark and revalidation; a
 * tag walk of 100,000 objects runs in slices between other writes; bans
 * apply on read before any sweep and survive a restart.
 *
 * store_debug_hold_purges keeps the writer from running walk and sweep
 * slices, so what a ban does on its own is observed without a race. */
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

TestSuite(store_purge, .init = setup, .fini = teardown, .timeout = 180);

/* A purge's completion, waited for by the test thread. */
typedef struct tp_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
    uint64_t count;
    int order;          /* value of *order_counter when done ran */
    int *order_counter; /* optional: shared with puts' done (writer thread only) */
} tp_wait_t;

static void tp_init(tp_wait_t *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->status = 1;
}

static void tp_done(void *ctx, int status, uint64_t count)
{
    tp_wait_t *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    w->status = status;
    w->count = count;
    if (w->order_counter)
        w->order = ++*w->order_counter;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Wait for the purge and return its count; asserts STORE_OK. */
static uint64_t tp_wait(tp_wait_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    cr_assert_eq(w->status, STORE_OK, "purge status %d", w->status);
    return w->count;
}

static uint64_t purge_url(store_t *s, uint64_t id, bool soft)
{
    tp_wait_t w;
    tp_init(&w);
    store_key_t k = ts_key(id, 0);
    cr_assert_eq(store_purge_url(s, k.hash, soft, tp_done, &w), STORE_OK);
    return tp_wait(&w);
}

static uint64_t purge_tag(store_t *s, const char *tag, bool soft)
{
    tp_wait_t w;
    tp_init(&w);
    cr_assert_eq(store_purge_tag(s, tag, strlen(tag), soft, tp_done, &w), STORE_OK);
    return tp_wait(&w);
}

static uint64_t purge_prefix(store_t *s, const char *prefix, bool soft)
{
    tp_wait_t w;
    tp_init(&w);
    cr_assert_eq(store_purge_prefix(s, prefix, strlen(prefix), soft, tp_done, &w), STORE_OK);
    return tp_wait(&w);
}

/* store_get of id/variant in a fresh read txn: status, and *stale. */
static int get(store_t *s, uint64_t id, uint64_t variant, bool *stale)
{
    store_reader_t *r = store_reader_new(s);
    store_key_t k = ts_key(id, variant);
    store_obj_t o;
    cr_assert_eq(store_read_begin(r), STORE_OK);
    int rc = store_get(r, &k, &o);
    if (rc == STORE_OK && stale)
        *stale = o.stale;
    store_read_end(r);
    store_reader_free(r);
    return rc;
}

static void put_sync(store_t *s, uint64_t id, uint64_t variant, uint64_t len, uint64_t seed, const char *tags,
                     uint64_t start_seq, int want)
{
    ts_put_t p = { .seed = seed };
    ts_put_ex(s, id, variant, len, &p, tags, start_seq);
    store_sync(s);
    cr_assert_eq(p.status, want, "put %llu: %s", (unsigned long long)id, store_strerror(p.status));
}

Test(store_purge, url_purge_takes_every_variant_and_the_index)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    static const uint64_t variants[] = { 0, 1, 7, UINT64_MAX };
    for (int i = 0; i < 4; i++)
        put_sync(s, 1, variants[i], i == 2 ? 300000 : 100, 10 + (uint64_t)i, "t\n", 0, STORE_OK);
    put_sync(s, 2, 0, 100, 20, "t\n", 0, STORE_OK);
    cr_assert_eq(store_debug_tag_count(s, "t", 1), 5);

    /* Soft first: everything stays, stale, bodies intact. */
    cr_assert_eq(purge_url(s, 1, true), 4);
    for (int i = 0; i < 4; i++) {
        bool stale = false;
        cr_assert_eq(get(s, 1, variants[i], &stale), STORE_OK);
        cr_assert(stale, "variant %d not stale", i);
    }
    cr_assert_eq(ts_check(s, 1, 7, 12, 300000), STORE_OK);
    bool stale = true;
    cr_assert_eq(get(s, 2, 0, &stale), STORE_OK);
    cr_assert_not(stale);

    cr_assert_eq(purge_url(s, 1, false), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(get(s, 1, variants[i], NULL), STORE_NOTFOUND);
    cr_assert_eq(get(s, 2, 0, NULL), STORE_OK);
    cr_assert_eq(store_debug_tag_count(s, "t", 1), 1, "the purged objects' tag entries must go");
    cr_assert_eq(purge_url(s, 1, false), 0, "purging nothing succeeds");
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 1);
    cr_assert_eq(st.purge_urls, 3);
    cr_assert_eq(st.purge_deleted, 4);
    cr_assert_eq(st.purge_flagged, 4);
    store_close(s);
}

Test(store_purge, tag_purge_hard_and_soft)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    for (uint64_t i = 0; i < 10; i++)
        put_sync(s, i, 0, i == 3 ? 600000 : 500, i, i % 2 ? "odd\nall\n" : "even\nall\n", 0, STORE_OK);
    cr_assert_eq(purge_tag(s, "even", false), 5);
    for (uint64_t i = 0; i < 10; i++)
        cr_assert_eq(get(s, i, 0, NULL), i % 2 ? STORE_OK : STORE_NOTFOUND, "object %llu", (unsigned long long)i);
    cr_assert_eq(store_debug_tag_count(s, "even", 4), 0);
    cr_assert_eq(store_debug_tag_count(s, "all", 3), 5);

    cr_assert_eq(purge_tag(s, "odd", true), 5);
    for (uint64_t i = 1; i < 10; i += 2) {
        bool stale = false;
        cr_assert_eq(get(s, i, 0, &stale), STORE_OK);
        cr_assert(stale);
    }
    cr_assert_eq(ts_check(s, 3, 0, 3, 600000), STORE_OK, "a soft purge keeps the body");
    cr_assert_eq(store_debug_tag_count(s, "odd", 3), 5, "soft: the objects keep their tags");
    /* A new put replaces the record: the mark is gone. */
    put_sync(s, 1, 0, 500, 100, "odd\n", 0, STORE_OK);
    bool stale = true;
    cr_assert_eq(get(s, 1, 0, &stale), STORE_OK);
    cr_assert_not(stale);
    cr_assert_eq(store_debug_tag_count(s, "all", 3), 4, "the replaced record's old tags must go");
    cr_assert_eq(purge_tag(s, "nothing", false), 0);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.purge_tags, 3);
    cr_assert_eq(st.tag_walks, 0);
    store_close(s);
}

/* A put whose done records when it ran, on the purge's counter. */
typedef struct order_put {
    int *counter; /* written on the writer thread only */
    int order;
    int status;
} order_put_t;

static void order_done(void *ctx, int status)
{
    order_put_t *o = ctx;
    o->order = ++*o->counter;
    o->status = status;
}

Test(store_purge, tag_walk_of_100k_runs_in_slices)
{
    enum { N = 100000 };
    store_t *s = ts_open(dir, 256 * TS_MIB, 0);
    ts_put_t *p = calloc(N, sizeof *p);
    for (uint64_t i = 0; i < N; i++) {
        p[i].seed = i;
        ts_put_ex(s, i, 0, 8, &p[i], "big\n", 0);
    }
    store_sync(s);
    for (uint64_t i = 0; i < N; i++)
        cr_assert_eq(p[i].status, STORE_OK);
    free(p);
    cr_assert_eq(store_debug_tag_count(s, "big", 3), N);

    int counter = 0;
    tp_wait_t w;
    tp_init(&w);
    w.order_counter = &counter;
    cr_assert_eq(store_purge_tag(s, "big", 3, false, tp_done, &w), STORE_OK);
    /* Queued behind the purge: it commits long before the walk ends. */
    order_put_t op = { .counter = &counter, .status = 1 };
    store_put_t put = { .key = ts_key(N + 1, 0), .url = "x", .url_len = 1, .done = order_done, .ctx = &op };
    cr_assert_eq(store_put(s, &put), STORE_OK);
    cr_assert_eq(tp_wait(&w), N);
    store_sync(s);
    cr_assert_eq(op.status, STORE_OK);
    cr_assert_lt(op.order, w.order, "the put waited for the whole walk");
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 1);
    cr_assert_eq(st.purge_deleted, N);
    cr_assert_gt(st.commits, 100, "a walk of %d objects in %llu commits is not sliced", N,
                 (unsigned long long)st.commits);
    cr_assert_eq(store_debug_tag_count(s, NULL, 0), 0);
    cr_assert_eq(get(s, N + 1, 0, NULL), STORE_OK);
    store_close(s);
}

/* Objects 0..49 live at http://test.example/obj/N: the prefix
 * "http://test.example/obj/1" matches 1 and 10..19. */
#define PFX "http://test.example/obj/1"
static bool in_pfx(uint64_t id)
{
    return id == 1 || (id >= 10 && id <= 19);
}

static void fill50(store_t *s)
{
    ts_put_t p[50];
    for (uint64_t i = 0; i < 50; i++) {
        p[i].seed = i;
        ts_put_ex(s, i, 0, i == 12 ? 400000 : 300, &p[i], "x\n", 0);
    }
    store_sync(s);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(p[i].status, STORE_OK);
}

Test(store_purge, prefix_ban_hides_at_once_survives_restart_and_is_swept)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    fill50(s);
    store_debug_hold_purges(s, true);
    cr_assert_eq(purge_prefix(s, PFX, false), 0, "done when in force, before any sweep");
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.bans, 1);
    cr_assert_eq(st.objects, 50, "nothing deleted yet: the ban alone hides them");
    for (uint64_t i = 0; i < 50; i++)
        cr_assert_eq(get(s, i, 0, NULL), in_pfx(i) ? STORE_NOTFOUND : STORE_OK, "object %llu",
                     (unsigned long long)i);
    /* Put after the ban: visible. */
    put_sync(s, 1, 0, 300, 77, NULL, 0, STORE_OK);
    cr_assert_eq(ts_check(s, 1, 0, 77, 300), STORE_OK);
    store_close(s);

    /* The ban was persisted; the sweep runs after the reopen. */
    s = ts_open(dir, 16 * TS_MIB, 0);
    for (uint64_t i = 2; i < 50; i++)
        cr_assert_eq(get(s, i, 0, NULL), in_pfx(i) ? STORE_NOTFOUND : STORE_OK);
    store_sync(s);
    store_get_stats(s, &st);
    cr_assert_eq(st.bans, 0, "the sweep is through: the ban is dropped");
    cr_assert_eq(st.purge_swept, 10);
    cr_assert_eq(st.objects, 40, "object 1 was replaced, not added");
    cr_assert_eq(store_debug_tag_count(s, "x", 1), 39, "the new object 1 has no tags");
    cr_assert_eq(ts_check(s, 1, 0, 77, 300), STORE_OK, "the put after the ban survives its sweep");
    store_close(s);
}

Test(store_purge, soft_prefix_ban_marks_stale)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    fill50(s);
    store_debug_hold_purges(s, true);
    cr_assert_eq(purge_prefix(s, PFX, true), 0);
    for (uint64_t i = 0; i < 50; i++) {
        bool stale = false;
        cr_assert_eq(get(s, i, 0, &stale), STORE_OK);
        cr_assert_eq(stale, in_pfx(i), "object %llu", (unsigned long long)i);
    }
    cr_assert_eq(ts_check(s, 12, 0, 12, 400000), STORE_OK);
    put_sync(s, 10, 0, 300, 5, NULL, 0, STORE_OK);
    bool stale = true;
    cr_assert_eq(get(s, 10, 0, &stale), STORE_OK);
    cr_assert_not(stale, "put after the ban");
    store_debug_hold_purges(s, false);
    store_sync(s);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.bans, 0);
    cr_assert_eq(st.purge_swept, 10);
    cr_assert_eq(st.purge_flagged, 10);
    cr_assert_eq(st.objects, 50);
    /* The sweep wrote the marks: they hold without the ban. */
    for (uint64_t i = 0; i < 50; i++) {
        stale = false;
        cr_assert_eq(get(s, i, 0, &stale), STORE_OK);
        cr_assert_eq(stale, in_pfx(i) && i != 10, "object %llu", (unsigned long long)i);
    }
    store_close(s);
}

Test(store_purge, purge_all)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    fill50(s);
    store_debug_hold_purges(s, true);
    cr_assert_eq(purge_prefix(s, "", false), 0);
    for (uint64_t i = 0; i < 50; i++)
        cr_assert_eq(get(s, i, 0, NULL), STORE_NOTFOUND);
    put_sync(s, 60, 0, 100, 60, NULL, 0, STORE_OK);
    store_debug_hold_purges(s, false);
    store_sync(s);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 1);
    cr_assert_eq(st.bans, 0);
    cr_assert_eq(store_debug_tag_count(s, NULL, 0), 0);
    cr_assert_eq(ts_check(s, 60, 0, 60, 100), STORE_OK);
    store_close(s);
}

Test(store_purge, bans_subsume_and_are_bounded)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    store_debug_hold_purges(s, true);
    purge_prefix(s, "http://a/b/c", true);
    purge_prefix(s, "http://a/b", true);
    purge_prefix(s, "http://a/b/d", false);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.bans, 2, "a newer, shorter, at least as hard ban replaces the old one");
    purge_prefix(s, "http://a", false);
    store_get_stats(s, &st);
    cr_assert_eq(st.bans, 1);
    char pfx[64];
    for (int i = 1; i < STORE_BANS_MAX; i++) {
        snprintf(pfx, sizeof pfx, "http://z/%d/", i);
        purge_prefix(s, pfx, false);
    }
    tp_wait_t w;
    tp_init(&w);
    cr_assert_eq(store_purge_prefix(s, "http://y", 8, false, tp_done, &w), STORE_OK);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    cr_assert_eq(w.status, STORE_ERROR, "past STORE_BANS_MAX");
    cr_assert_eq(store_purge_prefix(s, "x", STORE_PREFIX_MAX + 1, false, tp_done, &w), STORE_ERROR);
    store_debug_hold_purges(s, false);
    store_sync(s);
    store_get_stats(s, &st);
    cr_assert_eq(st.bans, 0);
    store_close(s);
}

Test(store_purge, purge_wins_over_a_running_fill)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    uint64_t start = store_seq(s);
    cr_assert_gt(start, 0);
    /* URL */
    put_sync(s, 1, 0, 100, 1, NULL, 0, STORE_OK);
    uint64_t s1 = store_seq(s);
    cr_assert_gt(s1, start);
    purge_url(s, 1, false);
    put_sync(s, 1, 0, 100, 2, NULL, s1, STORE_PURGED);
    cr_assert_eq(get(s, 1, 0, NULL), STORE_NOTFOUND, "a dropped put stores nothing");
    put_sync(s, 2, 0, 100, 2, NULL, s1, STORE_OK); /* another URL: no match */
    put_sync(s, 1, 0, 100, 3, NULL, store_seq(s), STORE_OK);
    cr_assert_eq(ts_check(s, 1, 0, 3, 100), STORE_OK);
    /* Tag (soft purges win too) */
    uint64_t s2 = store_seq(s);
    purge_tag(s, "news", true);
    put_sync(s, 3, 0, 100, 4, "sport\nnews\n", s2, STORE_PURGED);
    put_sync(s, 4, 0, 100, 4, "sport\n", s2, STORE_OK);
    put_sync(s, 3, 0, 100, 5, "sport\nnews\n", store_seq(s), STORE_OK);
    /* Prefix, in force and after its sweep is over */
    uint64_t s3 = store_seq(s);
    purge_prefix(s, "http://test.example/obj/5", false);
    put_sync(s, 5, 0, 100, 6, NULL, s3, STORE_PURGED);
    store_sync(s);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.bans, 0);
    put_sync(s, 50, 0, 100, 6, NULL, s3, STORE_PURGED);
    put_sync(s, 6, 0, 100, 6, NULL, s3, STORE_OK);
    put_sync(s, 5, 0, 100, 7, NULL, store_seq(s), STORE_OK);
    /* No check at all */
    put_sync(s, 1, 0, 100, 8, NULL, 0, STORE_OK);
    store_get_stats(s, &st);
    cr_assert_eq(st.purge_dropped, 4);
    cr_assert_eq(store_strerror(STORE_PURGED)[0] != '\0', true);
    store_close(s);
}

static int update(store_t *s, uint64_t id, uint64_t start_seq, bool legacy)
{
    int st = 1;
    store_key_t k = ts_key(id, 0);
    uint64_t oid = ts_object_id(s, id, NULL, 0);
    if (legacy)
        cr_assert_eq(store_update_meta(s, &k, oid, "m", 1, ts_status_done, &st), STORE_OK);
    else
        cr_assert_eq(store_update_meta_seq(s, &k, oid, start_seq, "m", 1, ts_status_done, &st), STORE_OK);
    store_sync(s);
    return st;
}

static bool is_stale(store_t *s, uint64_t id)
{
    bool stale = false;
    cr_assert_eq(get(s, id, 0, &stale), STORE_OK);
    return stale;
}

Test(store_purge, revalidation_clears_stale_only_when_newer)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    put_sync(s, 1, 0, 100, 1, "t\n", 0, STORE_OK);
    uint64_t before = store_seq(s);
    purge_url(s, 1, true);
    cr_assert(is_stale(s, 1));
    cr_assert_eq(update(s, 1, before, false), STORE_OK);
    cr_assert(is_stale(s, 1), "a revalidation older than the soft purge keeps it stale");
    cr_assert_eq(update(s, 1, 0, true), STORE_OK);
    cr_assert(is_stale(s, 1), "store_update_meta clears nothing");
    cr_assert_eq(update(s, 1, store_seq(s), false), STORE_OK);
    cr_assert_not(is_stale(s, 1), "a revalidation begun after the purge clears the mark");

    /* A soft ban, not yet swept. */
    store_debug_hold_purges(s, true);
    before = store_seq(s);
    purge_prefix(s, "http://test.example/obj/1", true);
    cr_assert(is_stale(s, 1));
    cr_assert_eq(update(s, 1, before, false), STORE_OK);
    cr_assert(is_stale(s, 1));
    cr_assert_eq(update(s, 1, store_seq(s), false), STORE_OK);
    cr_assert_not(is_stale(s, 1), "newer than the ban: the ban no longer applies");

    /* A hard tag purge whose walk has not reached it yet. */
    before = store_seq(s);
    tp_wait_t w;
    tp_init(&w);
    cr_assert_eq(store_purge_tag(s, "t", 1, false, tp_done, &w), STORE_OK);
    store_sync(s);
    cr_assert_eq(update(s, 1, before, false), STORE_PURGED);
    store_debug_hold_purges(s, false);
    cr_assert_eq(tp_wait(&w), 1);
    cr_assert_eq(get(s, 1, 0, NULL), STORE_NOTFOUND);

    /* A hard ban hides it from revalidation as from reads. */
    put_sync(s, 2, 0, 100, 2, NULL, 0, STORE_OK);
    uint64_t oid = ts_object_id(s, 2, NULL, 0);
    store_debug_hold_purges(s, true);
    purge_prefix(s, "http://test.example/obj/2", false);
    int st = 1;
    store_key_t k = ts_key(2, 0);
    cr_assert_eq(store_update_meta_seq(s, &k, oid, store_seq(s), "m", 1, ts_status_done, &st), STORE_OK);
    store_sync(s);
    cr_assert_eq(st, STORE_NOTFOUND);
    store_close(s);
}

Test(store_purge, tag_walk_resumes_after_restart)
{
    store_t *s = ts_open(dir, 16 * TS_MIB, 0);
    for (uint64_t i = 0; i < 20; i++)
        put_sync(s, i, 0, 100, i, i < 15 ? "t\n" : NULL, 0, STORE_OK);
    store_debug_hold_purges(s, true);
    tp_wait_t w;
    tp_init(&w);
    cr_assert_eq(store_purge_tag(s, "t", 1, false, tp_done, &w), STORE_OK);
    store_sync(s);
    store_close(s);
    cr_assert(w.done);
    cr_assert_eq(w.status, STORE_CLOSED, "interrupted by the close");
    s = ts_open(dir, 16 * TS_MIB, 0);
    store_sync(s);
    store_stats_t st;
    store_get_stats(s, &st);
    cr_assert_eq(st.objects, 5);
    cr_assert_eq(st.tag_walks, 0);
    cr_assert_eq(store_debug_tag_count(s, "t", 1), 0);
    store_close(s);
}
