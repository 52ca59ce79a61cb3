/* http_fields: the ordered header list (add, lookups by name whatever its
 * case, remove, copy, pieces appended as llhttp delivers them) within its
 * two caps (bytes and fields), and the helpers the policies parse field
 * values with: http_list_next, http_list_has, http_trim, http_name_eq,
 * http_tchar. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../test_fields.h"

/* Field i is name: value, byte for byte. */
static void assert_field(const http_fields_t *h, size_t i, const char *name, const char *value)
{
    cr_assert_lt(i, h->n);
    http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
    cr_assert(n.len == strlen(name) && memcmp(n.p, name, n.len) == 0, "field %zu name '%.*s', expected '%s'", i,
              (int)n.len, n.p, name);
    cr_assert(v.len == strlen(value) && memcmp(v.p, value, v.len) == 0, "field %zu value '%.*s', expected '%s'", i,
              (int)v.len, v.p, value);
}

static bool slice_is(http_slice_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static int add(http_fields_t *h, const char *name, const char *value)
{
    return http_fields_add(h, name, strlen(name), value, strlen(value));
}

/* --- the list --- */

Test(http_fields, add_keeps_order_and_duplicates)
{
    http_fields_t h = fields("Host", "a.test", "Accept", "*/*", "X-Dup", "1", "x-dup", "2", "Empty", "", NULL);
    cr_assert_eq(h.n, 5);
    assert_field(&h, 0, "Host", "a.test");
    assert_field(&h, 1, "Accept", "*/*");
    assert_field(&h, 2, "X-Dup", "1");
    assert_field(&h, 3, "x-dup", "2");
    assert_field(&h, 4, "Empty", "");
    http_fields_free(&h);
    cr_assert_eq(h.n, 0);
    cr_assert_null(h.f);
}

Test(http_fields, lookups_ignore_the_case_of_names)
{
    http_fields_t h = fields("Cache-Control", "max-age=1", "VARY", "Accept", "cache-control", "public", NULL);
    http_slice_t v;
    cr_assert(http_fields_get(&h, "cache-control", &v));
    cr_assert(slice_is(v, "max-age=1"), "the first one");
    cr_assert(http_fields_get(&h, "vary", &v));
    cr_assert(slice_is(v, "Accept"));
    cr_assert(http_fields_get(&h, "Vary", NULL), "out may be NULL");
    cr_assert_not(http_fields_get(&h, "Age", &v));
    cr_assert_not(http_fields_get(&h, "Cache-Contro", &v), "a prefix is another name");
    cr_assert_not(http_fields_get(&h, "Cache-Control2", &v));

    cr_assert_eq(http_fields_count(&h, "CACHE-control"), 2);
    cr_assert_eq(http_fields_count(&h, "vary"), 1);
    cr_assert_eq(http_fields_count(&h, "etag"), 0);

    cr_assert_eq(http_fields_find(&h, "cache-control", 0), 0);
    cr_assert_eq(http_fields_find(&h, "cache-control", 1), 2);
    cr_assert_eq(http_fields_find(&h, "cache-control", 3), -1);
    cr_assert_eq(http_fields_find(&h, "cache-control", 99), -1, "from past the end");
    http_fields_free(&h);

    http_fields_t empty;
    http_fields_init(&empty, 0);
    cr_assert_not(http_fields_get(&empty, "Host", NULL));
    cr_assert_eq(http_fields_count(&empty, "Host"), 0);
    cr_assert_eq(http_fields_find(&empty, "Host", 0), -1);
    http_fields_remove(&empty, "Host");
    http_fields_free(&empty);
}

Test(http_fields, remove_takes_every_field_of_a_name_and_keeps_the_rest_in_order)
{
    http_fields_t h = fields("Set-Cookie", "a=1", "Date", "d", "set-cookie", "b=2", "ETag", "\"e\"", "SET-COOKIE",
                             "c=3", NULL);
    http_fields_remove(&h, "set-cookie");
    cr_assert_eq(h.n, 2);
    assert_field(&h, 0, "Date", "d");
    assert_field(&h, 1, "ETag", "\"e\"");
    http_fields_remove(&h, "absent");
    cr_assert_eq(h.n, 2);
    http_fields_free(&h);
}

Test(http_fields, remove_at_the_first_a_middle_and_the_last)
{
    http_fields_t h = fields("A", "1", "B", "2", "C", "3", "D", "4", NULL);
    http_fields_remove_at(&h, 1);
    cr_assert_eq(h.n, 3);
    assert_field(&h, 0, "A", "1");
    assert_field(&h, 1, "C", "3");
    assert_field(&h, 2, "D", "4");
    http_fields_remove_at(&h, 2);
    http_fields_remove_at(&h, 0);
    cr_assert_eq(h.n, 1);
    assert_field(&h, 0, "C", "3");
    http_fields_remove_at(&h, 0);
    cr_assert_eq(h.n, 0);
    /* Still usable. */
    cr_assert_eq(add(&h, "E", "5"), 0);
    assert_field(&h, 0, "E", "5");
    http_fields_free(&h);
}

Test(http_fields, copy_appends_to_the_destination)
{
    http_fields_t src = fields("A", "1", "B", "", "a", "3", NULL);
    http_fields_t dst = fields("Z", "0", NULL);
    cr_assert_eq(http_fields_copy(&dst, &src), 0);
    cr_assert_eq(dst.n, 4);
    assert_field(&dst, 0, "Z", "0");
    assert_field(&dst, 1, "A", "1");
    assert_field(&dst, 2, "B", "");
    assert_field(&dst, 3, "a", "3");
    cr_assert_eq(http_fields_count(&dst, "a"), 2);
    /* A deep copy: the source may go away. */
    http_fields_free(&src);
    assert_field(&dst, 3, "a", "3");

    http_fields_t none;
    http_fields_init(&none, 0);
    cr_assert_eq(http_fields_copy(&dst, &none), 0);
    cr_assert_eq(dst.n, 4);
    http_fields_free(&none);
    http_fields_free(&dst);
}

Test(http_fields, copy_stops_cleanly_at_the_destination_cap)
{
    http_fields_t src = fields("Aa", "11", "Bb", "22", "Cc", "33", NULL);
    http_fields_t dst;
    http_fields_init(&dst, 9); /* two fields of 4 bytes fit, not three */
    cr_assert_eq(http_fields_copy(&dst, &src), -E2BIG);
    cr_assert_eq(dst.n, 2);
    assert_field(&dst, 0, "Aa", "11");
    assert_field(&dst, 1, "Bb", "22");
    http_fields_free(&dst);
    http_fields_free(&src);
}

Test(http_fields, reset_empties_and_keeps_the_caps)
{
    http_fields_t h;
    http_fields_init(&h, 8);
    cr_assert_eq(add(&h, "Abc", "defg"), 0);
    cr_assert_eq(add(&h, "X", "y"), -E2BIG);
    http_fields_reset(&h);
    cr_assert_eq(h.n, 0);
    cr_assert_not(http_fields_get(&h, "Abc", NULL));
    cr_assert_eq(add(&h, "Wxyz", "1234"), 0, "the whole byte cap is available again");
    cr_assert_eq(add(&h, "", ""), 0);
    cr_assert_eq(add(&h, "a", ""), -E2BIG);
    http_fields_free(&h);
}

/* --- caps --- */

Test(http_fields, byte_cap_counts_names_and_values)
{
    http_fields_t h;
    http_fields_init(&h, 10);
    cr_assert_eq(add(&h, "Name", "value"), 0); /* 9 bytes */
    cr_assert_eq(add(&h, "Ab", ""), -E2BIG);   /* 11: refused for its name */
    cr_assert_eq(h.n, 1);
    assert_field(&h, 0, "Name", "value");
    cr_assert_eq(add(&h, "N", ""), 0, "exactly 10");
    cr_assert_eq(h.n, 2);
    assert_field(&h, 1, "N", "");
    cr_assert_eq(add(&h, "", ""), 0, "an empty field takes no bytes");
    cr_assert_eq(add(&h, "", "v"), -E2BIG);
    http_fields_free(&h);
}

/* A field refused for its value keeps none of its name's bytes, which
 * would otherwise count against the cap until a reset. */
Test(http_fields, a_refused_field_uses_no_bytes)
{
    http_fields_t h;
    http_fields_init(&h, 10);
    cr_assert_eq(add(&h, "ab", "cd"), 0);             /* 4 */
    cr_assert_eq(add(&h, "efgh", "ijklmn"), -E2BIG);  /* name fits, value does not */
    cr_assert_eq(add(&h, "ef", "gh"), 0, "8 of 10 bytes");
    cr_assert_eq(add(&h, "i", "j"), 0, "10 of 10 bytes");
    http_fields_free(&h);
}

Test(http_fields, field_count_cap_default_and_set)
{
    http_fields_t h;
    http_fields_init(&h, 0);
    char name[16];
    for (int i = 0; i < 1024; i++) {
        int n = snprintf(name, sizeof name, "F%d", i);
        cr_assert_eq(http_fields_add(&h, name, (size_t)n, "v", 1), 0, "field %d", i);
    }
    cr_assert_eq(add(&h, "One-Too-Many", "v"), -E2BIG, "1024 fields by default");
    cr_assert_eq(h.n, 1024);
    assert_field(&h, 1023, "F1023", "v");
    http_fields_free(&h);

    http_fields_init(&h, 0);
    h.max_fields = 2;
    cr_assert_eq(add(&h, "A", "1"), 0);
    cr_assert_eq(add(&h, "B", "2"), 0);
    cr_assert_eq(add(&h, "C", "3"), -E2BIG);
    cr_assert_eq(h.n, 2);
    http_fields_remove_at(&h, 0);
    cr_assert_eq(add(&h, "C", "3"), 0, "a removed field frees its slot");
    assert_field(&h, 0, "B", "2");
    assert_field(&h, 1, "C", "3");
    http_fields_free(&h);
}

/* --- pieces, as llhttp delivers them --- */

Test(http_fields, extend_name_and_value_of_the_last_field)
{
    http_fields_t h = fields("Host", "a.test", NULL);
    cr_assert_eq(http_fields_add(&h, "Cont", 4, "", 0), 0);
    cr_assert_eq(http_fields_extend_name(&h, "ent-", 4), 0);
    cr_assert_eq(http_fields_extend_name(&h, "Type", 4), 0);
    cr_assert_eq(http_fields_extend_value(&h, "text/", 5), 0);
    cr_assert_eq(http_fields_extend_value(&h, "html", 4), 0);
    cr_assert_eq(h.n, 2);
    assert_field(&h, 0, "Host", "a.test");
    assert_field(&h, 1, "Content-Type", "text/html");
    /* A name piece after value bytes moves the value along. */
    cr_assert_eq(http_fields_extend_name(&h, "-X", 2), 0);
    assert_field(&h, 1, "Content-Type-X", "text/html");
    cr_assert_eq(http_fields_extend_value(&h, "", 0), 0);
    assert_field(&h, 1, "Content-Type-X", "text/html");
    http_slice_t v;
    cr_assert(http_fields_get(&h, "content-type-x", &v));
    cr_assert(slice_is(v, "text/html"));
    http_fields_free(&h);
}

Test(http_fields, extend_with_no_field_is_refused)
{
    http_fields_t h;
    http_fields_init(&h, 0);
    cr_assert_eq(http_fields_extend_name(&h, "x", 1), -EINVAL);
    cr_assert_eq(http_fields_extend_value(&h, "x", 1), -EINVAL);
    cr_assert_eq(h.n, 0);
    http_fields_free(&h);
}

Test(http_fields, extend_past_the_byte_cap_is_refused)
{
    http_fields_t h;
    http_fields_init(&h, 8);
    cr_assert_eq(add(&h, "Ab", "cd"), 0);
    cr_assert_eq(http_fields_extend_name(&h, "efghi", 5), -E2BIG);
    assert_field(&h, 0, "Ab", "cd");
    cr_assert_eq(http_fields_extend_value(&h, "efgh", 4), 0, "exactly 8");
    assert_field(&h, 0, "Ab", "cdefgh");
    cr_assert_eq(http_fields_extend_value(&h, "i", 1), -E2BIG);
    cr_assert_eq(http_fields_extend_name(&h, "i", 1), -E2BIG);
    assert_field(&h, 0, "Ab", "cdefgh");
    http_fields_free(&h);
}

/* --- helpers for field values --- */

/* The members http_list_next yields for v, joined with '|'. */
static const char *members(const char *v)
{
    static char out[256];
    size_t pos = 0, o = 0;
    http_slice_t it;
    out[0] = '\0';
    while (http_list_next((http_slice_t){ v, strlen(v) }, &pos, &it)) {
        cr_assert_gt(it.len, 0, "empty members are skipped");
        cr_assert(it.p >= v && it.p + it.len <= v + strlen(v), "members point into the value");
        o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s", o ? "|" : "", (int)it.len, it.p);
    }
    cr_assert_geq(pos, strlen(v), "the walk ends at the end");
    return out;
}

Test(http_fields, list_next_walks_members)
{
    cr_assert_str_eq(members("gzip"), "gzip");
    cr_assert_str_eq(members("gzip, br,deflate"), "gzip|br|deflate");
    cr_assert_str_eq(members("  a  ,\tb\t, c d "), "a|b|c d", "inner spaces stay");
}

Test(http_fields, list_next_skips_empty_members)
{
    cr_assert_str_eq(members(""), "");
    cr_assert_str_eq(members(","), "");
    cr_assert_str_eq(members(" , ,\t,"), "");
    cr_assert_str_eq(members(",a"), "a");
    cr_assert_str_eq(members("a,"), "a");
    cr_assert_str_eq(members("a,,, ,b"), "a|b");
    cr_assert_str_eq(members(", ,a, ,"), "a");
}

Test(http_fields, list_next_treats_quotes_as_plain_bytes)
{
    /* The fields walked with it (Connection, Vary, Via, Pragma, config
     * lists) are lists of tokens: quoted-strings are not parsed, so a comma
     * inside quotes still splits. Parsers of fields that carry quoted
     * strings (entity tags, Structured Fields) have their own. */
    cr_assert_str_eq(members("a=\"x, y\", b"), "a=\"x|y\"|b");
    cr_assert_str_eq(members("\"\""), "\"\"");
}

Test(http_fields, list_next_continues_from_pos_and_stops_at_the_end)
{
    const char *v = "one, two";
    http_slice_t s = { v, strlen(v) }, it;
    size_t pos = 0;
    cr_assert(http_list_next(s, &pos, &it));
    cr_assert(slice_is(it, "one"));
    cr_assert_eq(pos, 4, "just past the comma");
    cr_assert(http_list_next(s, &pos, &it));
    cr_assert(slice_is(it, "two"));
    cr_assert_not(http_list_next(s, &pos, &it));
    cr_assert_not(http_list_next(s, &pos, &it), "and stays at the end");
    /* Only len bytes are read: no NUL needed. */
    char raw[] = { 'a', ',', 'b', 'X' };
    pos = 0;
    s = (http_slice_t){ raw, 3 };
    cr_assert(http_list_next(s, &pos, &it) && slice_is(it, "a"));
    cr_assert(http_list_next(s, &pos, &it) && slice_is(it, "b"));
    cr_assert_not(http_list_next(s, &pos, &it));
}

Test(http_fields, list_has_matches_whole_tokens_whatever_the_case)
{
    const char *v = "keep-alive, Upgrade ,  x-Custom";
    size_t n = strlen(v);
    cr_assert(http_list_has(v, n, "keep-alive"));
    cr_assert(http_list_has(v, n, "upgrade"));
    cr_assert(http_list_has(v, n, "X-CUSTOM"));
    cr_assert_not(http_list_has(v, n, "keep"), "no prefix match");
    cr_assert_not(http_list_has(v, n, "alive"));
    cr_assert_not(http_list_has(v, n, "x-custom2"));
    cr_assert_not(http_list_has(v, n, ""), "an empty token never matches");
    cr_assert_not(http_list_has("", 0, "a"));
    cr_assert_not(http_list_has(v, 10, "upgrade"), "only vlen bytes count");
    cr_assert(http_list_has_n(v, n, "upgrade-this", 7));
    cr_assert_not(http_list_has_n(v, n, "upgrade-this", 8));
}

Test(http_fields, trim_drops_spaces_and_tabs_only)
{
    const char *s = " \t a b\t \t";
    http_slice_t t = http_trim((http_slice_t){ s, strlen(s) });
    cr_assert(slice_is(t, "a b"));
    cr_assert_eq(t.p, s + 3);
    t = http_trim((http_slice_t){ "\r\nx\r\n", 5 });
    cr_assert(slice_is(t, "\r\nx\r\n"), "CR and LF are not optional whitespace");
    t = http_trim((http_slice_t){ " \t \t", 4 });
    cr_assert_eq(t.len, 0);
    t = http_trim((http_slice_t){ "", 0 });
    cr_assert_eq(t.len, 0);
    t = http_trim((http_slice_t){ "x", 1 });
    cr_assert(slice_is(t, "x"));
    /* Only len bytes are read. */
    t = http_trim((http_slice_t){ " ab  cd", 4 });
    cr_assert(slice_is(t, "ab"));
}

Test(http_fields, name_eq_is_case_insensitive_and_exact_in_length)
{
    cr_assert(http_name_eq((http_slice_t){ "Content-Length", 14 }, "content-length"));
    cr_assert(http_name_eq((http_slice_t){ "CONTENT-LENGTH", 14 }, "Content-Length"));
    cr_assert_not(http_name_eq((http_slice_t){ "Content-Length", 14 }, "content-lengt"));
    cr_assert_not(http_name_eq((http_slice_t){ "Content-Lengt", 13 }, "content-length"));
    cr_assert_not(http_name_eq((http_slice_t){ "Content_Length", 14 }, "content-length"));
    cr_assert(http_name_eq((http_slice_t){ "", 0 }, ""));
    cr_assert(http_name_eq((http_slice_t){ "ageX", 3 }, "AGE"), "only len bytes of the name count");
}

Test(http_fields, tchar_is_exactly_rfc9110s_set)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    for (int c = 0; c < 256; c++) {
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool expect = alnum || (c != 0 && memchr(extra, c, sizeof extra - 1) != NULL);
        cr_assert_eq(http_tchar((unsigned char)c), expect, "char 0x%02x", c);
    }
    /* The delimiters, spelled out. */
    for (const char *d = "\"(),/:;<=>?@[\\]{} \t\x7f"; *d; d++)
        cr_assert_not(http_tchar((unsigned char)*d), "'%c'", *d);
}
