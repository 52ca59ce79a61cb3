/* fetch: body bytes in, the same bytes out, and the out-of-memory path:
 * fetch_append either appends all of its bytes or none and says so, so
 * that no waiter or store ever sees a body with bytes silently missing.
 * Interim responses (103) are kept for waiters only before the head. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "upstream.h"

/* Allocations the chunk allocator still grants; -1 = all of them. */
static int allocs_left = -1;
static int alloc_calls;

static void *test_alloc(size_t n)
{
    alloc_calls++;
    if (allocs_left == 0)
        return NULL;
    if (allocs_left > 0)
        allocs_left--;
    return malloc(n);
}

static void setup(void)
{
    allocs_left = -1;
    alloc_calls = 0;
    fetch_test_chunk_alloc = test_alloc;
}

static void teardown(void)
{
    fetch_test_chunk_alloc = malloc;
}

static int wakes;
static void on_wake(fetch_waiter_t *w)
{
    (void)w;
    wakes++;
}

/* A private fetch with w as its waiter and a 200 head (content_length may
 * be -1), being stored (every chunk kept) unless storing is false. */
static fetch_t *new_fetch(fetch_waiter_t *w, int64_t content_length, bool storing)
{
    memset(w, 0, sizeof *w);
    w->wake = on_wake;
    fetch_t *f = fetch_new_private(w);
    cr_assert_not_null(f);
    http_fields_t h;
    http_fields_init(&h, 0);
    cr_assert_eq(http_fields_add(&h, "Content-Type", 12, "text/plain", 10), 0);
    fetch_set_headers(f, 200, &h, content_length, 0, false, storing, NULL);
    http_fields_free(&h);
    return f;
}

/* Everything readable from w's offset, concatenated into out (cap bytes). */
static size_t read_all(fetch_t *f, fetch_waiter_t *w, fetch_view_t *v, char *out, size_t cap)
{
    uv_buf_t iov[64];
    unsigned k = fetch_read(f, w, v, iov, 64);
    size_t n = 0;
    for (unsigned i = 0; i < k; i++) {
        cr_assert(n + iov[i].len <= cap);
        memcpy(out + n, iov[i].base, iov[i].len);
        n += iov[i].len;
    }
    return n;
}

static void fill(char *p, size_t n, size_t from)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (from + i) % 26);
}

TestSuite(fetch, .init = setup, .fini = teardown);

Test(fetch, appended_bytes_read_back_in_order)
{
    fetch_waiter_t w;
    fetch_t *f = new_fetch(&w, -1, true);
    static char src[600 * 1024], got[600 * 1024];
    fill(src, sizeof src, 0);
    /* Pieces of every size: inside a chunk, across chunks, several chunks at once. */
    size_t pieces[] = { 1, 100, 16 * 1024, 300 * 1024, 7, sizeof src - (1 + 100 + 16 * 1024 + 300 * 1024 + 7) };
    size_t at = 0;
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        cr_assert_eq(fetch_append(f, src + at, pieces[i]), 0);
        at += pieces[i];
    }
    fetch_finish(f, 0, NULL);
    fetch_view_t v;
    size_t n = read_all(f, &w, &v, got, sizeof got);
    cr_assert_eq(v.state, FETCH_DONE);
    cr_assert_eq(v.avail, sizeof src);
    cr_assert_eq(n, sizeof src);
    cr_assert_arr_eq(got, src, sizeof src);
    memset(got, 0, sizeof got);
    fetch_copy_body(f, 0, got, sizeof src);
    cr_assert_arr_eq(got, src, sizeof src);
    fetch_detach(f, &w);
    fetch_unref(f);
}

Test(fetch, known_length_gets_one_exact_chunk)
{
    fetch_waiter_t w;
    fetch_t *f = new_fetch(&w, 1000, true);
    char src[1000];
    fill(src, sizeof src, 0);
    cr_assert_eq(fetch_append(f, src, 10), 0);
    cr_assert_eq(fetch_append(f, src + 10, 990), 0);
    cr_assert_eq(alloc_calls, 1);
    fetch_detach(f, &w);
    fetch_unref(f);
}

Test(fetch, out_of_memory_appends_nothing_and_says_so)
{
    fetch_waiter_t w;
    fetch_t *f = new_fetch(&w, -1, true);
    static char src[1024 * 1024], got[1024 * 1024];
    fill(src, sizeof src, 0);
    cr_assert_eq(fetch_append(f, src, 100), 0); /* one chunk of 256 KiB, 100 bytes used */
    cr_assert_eq(alloc_calls, 1);
    allocs_left = 0;
    /* What fits in the chunk it has needs no allocation: still appended. */
    cr_assert_eq(fetch_append(f, src + 100, 1000), 0);
    /* More than the room left: the allocation fails, nothing is appended,
     * not even the part that would have fit. */
    size_t before_wakes = (size_t)wakes;
    cr_assert_eq(fetch_append(f, src + 1100, 300 * 1024), FETCH_ENOMEM);
    fetch_view_t v;
    size_t n = read_all(f, &w, &v, got, sizeof got);
    cr_assert_eq(v.avail, 1100, "avail %llu after a failed append", (unsigned long long)v.avail);
    cr_assert_eq(n, 1100);
    cr_assert_arr_eq(got, src, 1100);
    cr_assert_eq((size_t)wakes, before_wakes, "a failed append woke the waiters");
    /* Several chunks needed, the second allocation fails: the first is
     * given back, nothing appended. */
    allocs_left = 1;
    cr_assert_eq(fetch_append(f, src + 1100, 600 * 1024), FETCH_ENOMEM);
    n = read_all(f, &w, &v, got, sizeof got);
    cr_assert_eq(v.avail, 1100);
    cr_assert_eq(n, 1100);
    /* The owner then fails the fetch; waiters see the error and exactly
     * the bytes that were appended. */
    fetch_finish(f, UPSTREAM_EIO, "out of memory buffering the upstream response");
    n = read_all(f, &w, &v, got, sizeof got);
    cr_assert_eq(v.state, FETCH_FAILED);
    cr_assert_eq(v.err, UPSTREAM_EIO);
    cr_assert_str_eq(v.errmsg, "out of memory buffering the upstream response");
    cr_assert_eq(n, 1100);
    cr_assert_arr_eq(got, src, 1100);
    fetch_detach(f, &w);
    fetch_unref(f);
}

Test(fetch, appending_goes_on_after_memory_comes_back)
{
    /* The contract allows a retry of the same bytes: no gap, no duplicate. */
    fetch_waiter_t w;
    fetch_t *f = new_fetch(&w, -1, true);
    static char src[700 * 1024], got[700 * 1024];
    fill(src, sizeof src, 0);
    cr_assert_eq(fetch_append(f, src, 256 * 1024), 0);
    allocs_left = 0;
    cr_assert_eq(fetch_append(f, src + 256 * 1024, 1), FETCH_ENOMEM);
    allocs_left = -1;
    cr_assert_eq(fetch_append(f, src + 256 * 1024, sizeof src - 256 * 1024), 0);
    fetch_finish(f, 0, NULL);
    fetch_view_t v;
    size_t n = read_all(f, &w, &v, got, sizeof got);
    cr_assert_eq(n, sizeof src);
    cr_assert_arr_eq(got, src, sizeof src);
    fetch_detach(f, &w);
    fetch_unref(f);
}

Test(fetch, pause_when_the_waiter_lags_a_window)
{
    fetch_waiter_t w;
    fetch_t *f = new_fetch(&w, -1, false);
    static char src[256 * 1024];
    fill(src, sizeof src, 0);
    int rc = 0;
    size_t total = 0;
    while (rc == 0 && total <= 2 * FETCH_PASS_WINDOW) {
        rc = fetch_append(f, src, sizeof src);
        total += sizeof src;
    }
    cr_assert_eq(rc, FETCH_PAUSE);
    cr_assert_gt(total, FETCH_PASS_WINDOW);
    fetch_detach(f, &w);
    fetch_unref(f);
}

Test(fetch, interim_responses_only_before_the_head)
{
    fetch_waiter_t w = { .wake = on_wake };
    fetch_t *f = fetch_new_private(&w);
    cr_assert_not_null(f);
    http_fields_t h;
    http_fields_init(&h, 0);
    cr_assert_eq(http_fields_add(&h, "Link", 4, "</a.css>; rel=preload", 21), 0);
    int before = wakes;
    for (int i = 0; i < FETCH_MAX_INTERIM; i++)
        cr_assert_eq(fetch_add_interim(f, 103, &h), 0);
    cr_assert_eq(fetch_add_interim(f, 103, &h), -1, "more than FETCH_MAX_INTERIM kept");
    cr_assert_gt(wakes, before);
    fetch_view_t v;
    uv_buf_t iov[4];
    fetch_read(f, &w, &v, iov, 4);
    cr_assert_eq(v.state, FETCH_PENDING);
    cr_assert_eq(v.n_interim, FETCH_MAX_INTERIM);
    cr_assert_eq(v.interim[0].status, 103);
    http_slice_t link;
    cr_assert(http_fields_get(&v.interim[0].hdrs, "link", &link));
    cr_assert_eq(link.len, 21);
    cr_assert_eq(memcmp(link.p, "</a.css>; rel=preload", 21), 0);
    http_fields_t final;
    http_fields_init(&final, 0);
    fetch_set_headers(f, 200, &final, 0, 0, false, false, NULL);
    http_fields_free(&final);
    fetch_t *g = f;
    fetch_detach(g, &w);
    fetch_unref(g);
    /* After the head: too late. */
    fetch_waiter_t w2;
    f = new_fetch(&w2, 0, false);
    cr_assert_eq(fetch_add_interim(f, 103, &h), -1);
    fetch_read(f, &w2, &v, iov, 4);
    cr_assert_eq(v.n_interim, 0);
    fetch_detach(f, &w2);
    fetch_unref(f);
    http_fields_free(&h);
}

Test(fetch, a_failed_fetch_stays_failed)
{
    /* A held head published after the body ran out of memory must not
     * turn the failed fetch back into a live one. */
    fetch_waiter_t w = { .wake = on_wake };
    fetch_t *f = fetch_new_private(&w);
    cr_assert_not_null(f);
    fetch_finish(f, UPSTREAM_EIO, "out of memory buffering the upstream response");
    http_fields_t h;
    http_fields_init(&h, 0);
    fetch_set_headers(f, 200, &h, 2, 0, false, false, NULL);
    http_fields_free(&h);
    fetch_view_t v;
    uv_buf_t iov[1];
    fetch_read(f, &w, &v, iov, 1);
    cr_assert_eq(v.state, FETCH_FAILED);
    cr_assert_eq(v.err, UPSTREAM_EIO);
    fetch_detach(f, &w);
    fetch_unref(f);
}

/* A purge unpublishes every fetch: later requests start their own, while
 * the waiters already attached keep reading theirs. */
Test(fetch, unpublish_all_stops_joining_but_keeps_the_waiters)
{
    fetch_table_t *t = fetch_table_new();
    cr_assert_not_null(t);
    uint8_t k1[16] = { 1 }, k2[16] = { 2 };
    fetch_waiter_t w1, w2, w3;
    memset(&w1, 0, sizeof w1);
    memset(&w2, 0, sizeof w2);
    memset(&w3, 0, sizeof w3);
    w1.wake = w2.wake = w3.wake = on_wake;
    bool created;
    fetch_t *f1 = fetch_join(t, k1, &w1, &created);
    cr_assert(created);
    fetch_t *f2 = fetch_join(t, k2, &w2, &created);
    cr_assert(created);
    cr_assert_eq(fetch_table_size(t), 2);
    cr_assert_eq(fetch_table_unpublish_all(t), 2);
    cr_assert_eq(fetch_table_size(t), 0);
    cr_assert_eq(fetch_table_unpublish_all(t), 0);
    /* The same key now makes a new fetch. */
    fetch_t *f3 = fetch_join(t, k1, &w3, &created);
    cr_assert(created);
    cr_assert_neq(f3, f1);
    /* The old one still works for its waiter, and unpublishing it again is harmless. */
    cr_assert_eq(fetch_waiters(f1), 1);
    fetch_unpublish(f1);
    fetch_finish(f1, 0, "");
    fetch_view_t v;
    uv_buf_t iov[2];
    fetch_read(f1, &w1, &v, iov, 2);
    cr_assert_eq(v.state, FETCH_DONE);
    fetch_detach(f1, &w1);
    fetch_detach(f2, &w2);
    fetch_detach(f3, &w3);
    fetch_unpublish(f3);
    fetch_unref(f1);
    fetch_unref(f2);
    fetch_unref(f3);
    fetch_table_free(t);
}
