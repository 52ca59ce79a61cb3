/* Surrogate keys: both header styles, several lines, duplicates, bounds. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../test_fields.h"
#include "policy_tags.h"

static char *collect(http_fields_t h, size_t max_tags, size_t max_bytes, policy_tags_result_t *res)
{
    static char text[4096];
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(policy_tags_collect(&b, &h, max_tags, max_bytes, res), 0);
    snprintf(text, sizeof text, "%.*s", (int)b.len, b.data ? b.data : "");
    buf_free(&b);
    http_fields_free(&h);
    return text;
}

Test(tags, both_header_styles_and_every_line)
{
    policy_tags_result_t r;
    const char *t = collect(fields("Surrogate-Key", "a  b\tc", "Cache-Tag", "d, e,f", "Content-Type", "x y",
                                   "surrogate-key", "g", NULL),
                            32, 128, &r);
    cr_assert_str_eq(t, "a\nb\nc\nd\ne\nf\ng\n");
    cr_assert_eq(r.count, 7);
    cr_assert_eq(r.dropped, 0);
}

Test(tags, a_space_is_part_of_no_tag_but_a_comma_is_in_surrogate_key)
{
    /* Surrogate-Key separates by space only: "x,y" is one key. */
    cr_assert_str_eq(collect(fields("Surrogate-Key", "x,y z", NULL), 32, 128, NULL), "x,y\nz\n");
    cr_assert_str_eq(collect(fields("Cache-Tag", " p , q ", NULL), 32, 128, NULL), "p\nq\n");
}

Test(tags, duplicates_count_once)
{
    policy_tags_result_t r;
    cr_assert_str_eq(collect(fields("Surrogate-Key", "a b a", "Cache-Tag", "b,c", NULL), 32, 128, &r), "a\nb\nc\n");
    cr_assert_eq(r.count, 3);
}

Test(tags, bounds_drop_never_cut)
{
    policy_tags_result_t r;
    cr_assert_str_eq(collect(fields("Surrogate-Key", "short toolongtag ok", NULL), 32, 5, &r), "short\nok\n");
    cr_assert_eq(r.dropped, 1);
    cr_assert_str_eq(collect(fields("Surrogate-Key", "a b c d", NULL), 2, 128, &r), "a\nb\n");
    cr_assert_eq(r.count, 2);
    cr_assert_eq(r.dropped, 2);
}

Test(tags, control_bytes_make_no_tag)
{
    policy_tags_result_t r;
    cr_assert_str_eq(collect(fields("Surrogate-Key", "ok bad\x01tag", NULL), 32, 128, &r), "ok\n");
    cr_assert_eq(r.dropped, 1);
}

Test(tags, none)
{
    policy_tags_result_t r;
    cr_assert_str_eq(collect(fields("Surrogate-Key", "  ", "Cache-Tag", ",,", NULL), 32, 128, &r), "");
    cr_assert_eq(r.count, 0);
    cr_assert(policy_tags_field((http_slice_t){ "Cache-Tag", 9 }));
    cr_assert(policy_tags_field((http_slice_t){ "surrogate-key", 13 }));
    cr_assert_not(policy_tags_field((http_slice_t){ "Surrogate-Control", 17 }));
}
