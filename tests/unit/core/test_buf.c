/* buf: growth keeps the contents and the terminating NUL, the cap is exact
 * and going past it is a clean error that leaves the buffer as it was
 * (append, reserve and printf alike), and steal/reset/free/consume leave a
 * buffer that can be used again. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* The buffer holds exactly s, NUL-terminated, within its storage. */
static void assert_holds(const buf_t *b, const char *s)
{
    size_t n = strlen(s);
    cr_assert_eq(b->len, n, "len %zu, expected %zu", b->len, n);
    cr_assert_lt(b->len, b->cap);
    cr_assert(memcmp(b->data, s, n) == 0);
    cr_assert_eq(b->data[n], '\0');
}

Test(buf, starts_empty_without_storage)
{
    buf_t b;
    buf_init(&b, 100);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    cr_assert_eq(b.max, 100);
    buf_free(&b); /* nothing allocated: still fine */
    cr_assert_null(buf_steal(&b));
}

Test(buf, empty_append_allocates_a_terminated_string)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(buf_append(&b, NULL, 0), 0);
    assert_holds(&b, "");
    cr_assert_eq(buf_puts(&b, ""), 0);
    assert_holds(&b, "");
    buf_free(&b);
}

Test(buf, grows_by_doubling_and_keeps_contents)
{
    buf_t b;
    buf_init(&b, 0);
    char expect[5000];
    size_t n = 0;
    size_t last_cap = 0;
    unsigned reallocs = 0;
    for (int i = 0; n + 7 < sizeof expect; i++) {
        char piece[8];
        size_t pl = (size_t)(i % 7) + 1;
        for (size_t k = 0; k < pl; k++)
            piece[k] = (char)('a' + (i + (int)k) % 26);
        cr_assert_eq(buf_append(&b, piece, pl), 0);
        memcpy(expect + n, piece, pl);
        n += pl;
        if (b.cap != last_cap) {
            reallocs++;
            /* Each growth at least doubles (from a first block of 64). */
            cr_assert(last_cap == 0 ? b.cap >= 64 : b.cap >= 2 * last_cap, "cap %zu after %zu", b.cap, last_cap);
            last_cap = b.cap;
        }
    }
    expect[n] = '\0';
    assert_holds(&b, expect);
    cr_assert_leq(reallocs, 8, "%u reallocations for %zu bytes", reallocs, n);
    buf_free(&b);
}

Test(buf, cap_is_exact)
{
    buf_t b;
    buf_init(&b, 10);
    cr_assert_eq(buf_append(&b, "0123456789", 10), 0, "exactly max bytes fit");
    assert_holds(&b, "0123456789");
    cr_assert_leq(b.cap, 11, "storage never exceeds max + the NUL");
    cr_assert_eq(buf_append(&b, "x", 1), -E2BIG);
    cr_assert_eq(buf_append(&b, NULL, 0), 0, "appending nothing at the cap is fine");
    assert_holds(&b, "0123456789");
    buf_free(&b);
}

Test(buf, refused_append_leaves_the_buffer_unchanged)
{
    buf_t b;
    buf_init(&b, 16);
    cr_assert_eq(buf_puts(&b, "hello"), 0);
    char *data = b.data;
    size_t cap = b.cap;
    cr_assert_eq(buf_puts(&b, "-this-does-not-fit"), -E2BIG);
    assert_holds(&b, "hello");
    cr_assert_eq(b.data, data);
    cr_assert_eq(b.cap, cap);
    /* What still fits still goes in. */
    cr_assert_eq(buf_puts(&b, " world!!!!!"), 0);
    assert_holds(&b, "hello world!!!!!");
    buf_free(&b);
}

Test(buf, reserve_respects_the_cap_without_overflow)
{
    buf_t b;
    buf_init(&b, 100);
    cr_assert_eq(buf_reserve(&b, 100), 0);
    cr_assert_geq(b.cap, 101);
    cr_assert_eq(b.len, 0, "reserving adds no bytes");
    cr_assert_eq(buf_reserve(&b, 101), -E2BIG);
    cr_assert_eq(buf_append(&b, "abc", 3), 0);
    cr_assert_eq(buf_reserve(&b, 97), 0);
    cr_assert_eq(buf_reserve(&b, 98), -E2BIG);
    /* len + n would wrap around: still refused. */
    cr_assert_eq(buf_reserve(&b, SIZE_MAX), -E2BIG);
    cr_assert_eq(buf_reserve(&b, SIZE_MAX - 2), -E2BIG);
    assert_holds(&b, "abc");
    buf_free(&b);
}

/* An uncapped buffer asked for an impossible size must fail (-ENOMEM), not
 * claim success or loop: len + n + 1 wraps in buf_reserve (SIZE_MAX gives
 * need = 0, "already room"), and for n just below it the doubling of ncap
 * overflowed to 0 and never ended (fixed with this test). */
Test(buf, uncapped_reserve_of_an_impossible_size_fails, .timeout = 5)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(buf_puts(&b, "abc"), 0);
    cr_assert_neq(buf_reserve(&b, SIZE_MAX), 0);
    cr_assert_neq(buf_reserve(&b, SIZE_MAX - 8), 0);
    cr_assert_neq(buf_reserve(&b, SIZE_MAX / 2 + 1), 0);
    assert_holds(&b, "abc");
    buf_free(&b);
}

Test(buf, printf_formats_short_and_long_text)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(buf_printf(&b, "%s=%d;", "a", 42), 0);
    assert_holds(&b, "a=42;");
    /* Around the 256-byte stack buffer buf_vprintf tries first. */
    for (int len = 254; len <= 258; len++) {
        buf_reset(&b);
        cr_assert_eq(buf_puts(&b, "<"), 0);
        cr_assert_eq(buf_printf(&b, "%0*d", len, 7), 0);
        cr_assert_eq(b.len, (size_t)len + 1, "len %d", len);
        cr_assert_eq(b.data[0], '<');
        cr_assert_eq(b.data[len], '7');
        cr_assert_eq(b.data[len + 1], '\0');
        cr_assert_eq(strspn(b.data + 1, "0"), (size_t)len - 1);
    }
    buf_free(&b);
}

Test(buf, printf_past_the_cap_is_refused_cleanly)
{
    buf_t b;
    buf_init(&b, 100);
    cr_assert_eq(buf_puts(&b, "head:"), 0);
    /* Short path (the text fits the stack buffer) and long path (formatted
     * in place after a reserve). */
    cr_assert_eq(buf_printf(&b, "%0*d", 200, 1), -E2BIG);
    assert_holds(&b, "head:");
    cr_assert_eq(buf_printf(&b, "%0*d", 1000, 1), -E2BIG);
    assert_holds(&b, "head:");
    cr_assert_eq(buf_printf(&b, "%0*d", 95, 1), 0, "exactly up to the cap");
    cr_assert_eq(b.len, 100);
    cr_assert_eq(b.data[100], '\0');
    cr_assert_eq(buf_printf(&b, "%s", ""), 0);
    cr_assert_eq(buf_printf(&b, "x"), -E2BIG);
    buf_free(&b);

    buf_init(&b, 300);
    cr_assert_eq(buf_printf(&b, "%0*d", 301, 1), -E2BIG, "long path on an empty buffer");
    cr_assert_eq(b.len, 0);
    cr_assert_eq(buf_printf(&b, "%0*d", 300, 1), 0);
    cr_assert_eq(b.len, 300);
    cr_assert_eq(b.data[300], '\0');
    buf_free(&b);
}

Test(buf, put_u64_writes_decimal)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(buf_put_u64(&b, 0), 0);
    cr_assert_eq(buf_puts(&b, ","), 0);
    cr_assert_eq(buf_put_u64(&b, 1234567890ull), 0);
    cr_assert_eq(buf_puts(&b, ","), 0);
    cr_assert_eq(buf_put_u64(&b, UINT64_MAX), 0);
    assert_holds(&b, "0,1234567890,18446744073709551615");
    buf_free(&b);

    buf_init(&b, 3);
    cr_assert_eq(buf_put_u64(&b, 1234), -E2BIG);
    cr_assert_eq(buf_put_u64(&b, 123), 0);
    assert_holds(&b, "123");
    buf_free(&b);
}

Test(buf, consume_drops_the_front)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(buf_puts(&b, "abcdef"), 0);
    buf_consume(&b, 0);
    assert_holds(&b, "abcdef");
    buf_consume(&b, 2);
    assert_holds(&b, "cdef");
    buf_consume(&b, 100); /* more than there is: empties it */
    assert_holds(&b, "");
    cr_assert_eq(buf_puts(&b, "xy"), 0);
    assert_holds(&b, "xy");
    buf_free(&b);

    buf_init(&b, 0);
    buf_consume(&b, 5); /* nothing allocated yet */
    cr_assert_eq(b.len, 0);
    cr_assert_null(b.data);
}

Test(buf, consume_frees_room_under_the_cap)
{
    buf_t b;
    buf_init(&b, 8);
    cr_assert_eq(buf_puts(&b, "12345678"), 0);
    cr_assert_eq(buf_puts(&b, "9"), -E2BIG);
    buf_consume(&b, 4);
    cr_assert_eq(buf_puts(&b, "9abc"), 0);
    assert_holds(&b, "56789abc");
    buf_free(&b);
}

Test(buf, steal_hands_over_the_storage)
{
    buf_t b;
    buf_init(&b, 50);
    cr_assert_eq(buf_puts(&b, "owned"), 0);
    char *p = buf_steal(&b);
    cr_assert_str_eq(p, "owned");
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    cr_assert_eq(b.max, 50, "the cap survives a steal");
    /* Reusable: new storage, the stolen string untouched. */
    cr_assert_eq(buf_puts(&b, "again"), 0);
    assert_holds(&b, "again");
    cr_assert_neq(b.data, p);
    cr_assert_str_eq(p, "owned");
    free(p);
    char big[60];
    memset(big, 'z', sizeof big);
    cr_assert_eq(buf_append(&b, big, sizeof big), -E2BIG);
    buf_free(&b);
}

Test(buf, reset_keeps_storage_and_free_keeps_the_cap)
{
    buf_t b;
    buf_init(&b, 20);
    cr_assert_eq(buf_puts(&b, "some text"), 0);
    char *data = b.data;
    size_t cap = b.cap;
    buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.data, data);
    cr_assert_eq(b.cap, cap);
    cr_assert_eq(buf_puts(&b, "new"), 0);
    assert_holds(&b, "new");
    cr_assert_eq(b.data, data, "no reallocation after a reset");

    buf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.max, 20);
    cr_assert_eq(buf_puts(&b, "0123456789abcdefghijk"), -E2BIG, "still capped after free");
    cr_assert_eq(buf_puts(&b, "reused"), 0);
    assert_holds(&b, "reused");
    buf_free(&b);
}

/* include/buf.h promises data is NUL-terminated whenever len < cap: after
 * a reset the old text must not still read as a C string. */
Test(buf, reset_leaves_an_empty_string)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(buf_puts(&b, "stale"), 0);
    buf_reset(&b);
    assert_holds(&b, "");
    buf_free(&b);
}
