/* object_meta: the stored metadata round-trips, and damaged records are
 * rejected rather than misread. */
#include <errno.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "object_meta.h"

static void sample(object_meta_t *m)
{
    memset(m, 0, sizeof *m);
    m->kind = OBJECT_META_OBJECT;
    m->status = 200;
    m->entry.version = POLICY_ENTRY_VERSION;
    m->entry.freshness_lifetime = 60;
    m->block = "Content-Type: text/plain\r\nETag: \"x\"\r\n";
    m->block_len = strlen(m->block);
    m->hidden = "CDN-Cache-Control: max-age=60\r\n";
    m->hidden_len = strlen(m->hidden);
    m->cstatus = "shield-1; hit";
    m->cstatus_len = strlen(m->cstatus);
    m->vary = "accept-language:en\n";
    m->vary_len = strlen(m->vary);
}

Test(object_meta, round_trip)
{
    object_meta_t m, d;
    sample(&m);
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(object_meta_encode(&b, &m), 0);
    cr_assert_eq(object_meta_decode(b.data, b.len, &d), 0);
    cr_assert_eq(d.kind, OBJECT_META_OBJECT);
    cr_assert_eq(d.status, 200);
    cr_assert_eq(d.entry.freshness_lifetime, 60);
    cr_assert_eq(d.block_len, m.block_len);
    cr_assert(memcmp(d.block, m.block, m.block_len) == 0);
    cr_assert(memcmp(d.hidden, m.hidden, m.hidden_len) == 0);
    cr_assert(memcmp(d.cstatus, m.cstatus, m.cstatus_len) == 0);
    cr_assert(memcmp(d.vary, m.vary, m.vary_len) == 0);
    http_slice_t v;
    cr_assert(object_meta_field(d.block, d.block_len, "etag", &v));
    cr_assert(v.len == 3 && memcmp(v.p, "\"x\"", 3) == 0);
    cr_assert_not(object_meta_field(d.block, d.block_len, "expires", &v));
    http_fields_t f;
    http_fields_init(&f, 0);
    cr_assert_eq(object_meta_fields(&f, d.block, d.block_len), 0);
    cr_assert_eq(f.n, 2);
    http_fields_free(&f);
    buf_free(&b);
}

Test(object_meta, damaged_records_are_rejected)
{
    object_meta_t m, d;
    sample(&m);
    buf_t b;
    buf_init(&b, 0);
    object_meta_encode(&b, &m);
    /* Every truncation fails cleanly. */
    for (size_t n = 0; n < b.len; n++)
        cr_assert_eq(object_meta_decode(b.data, n, &d), -EINVAL, "truncated to %zu accepted", n);
    /* A wrong magic, version, kind, status or entry layout fails. */
    static const size_t offs[] = { 0, 4, 6, 9, 12, 16 }; /* 9: the status's high byte */
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        char *copy = malloc(b.len);
        memcpy(copy, b.data, b.len);
        copy[offs[i]] ^= 0x5a;
        cr_assert_eq(object_meta_decode(copy, b.len, &d), -EINVAL, "byte %zu flipped accepted", offs[i]);
        free(copy);
    }
    /* A length field that disagrees with the size fails. */
    char *copy = malloc(b.len + 1);
    memcpy(copy, b.data, b.len);
    copy[b.len] = 'x';
    cr_assert_eq(object_meta_decode(copy, b.len + 1, &d), -EINVAL);
    free(copy);
    buf_free(&b);
}

Test(object_meta, index_records)
{
    object_meta_t m = { .kind = OBJECT_META_INDEX, .vary = "accept-language\n", .vary_len = 16 }, d;
    m.entry.version = POLICY_ENTRY_VERSION;
    m.block = m.hidden = m.cstatus = "";
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(object_meta_encode(&b, &m), 0);
    cr_assert_eq(object_meta_decode(b.data, b.len, &d), 0);
    cr_assert_eq(d.kind, OBJECT_META_INDEX);
    cr_assert_eq(d.vary_len, 16);
    buf_free(&b);
}
