/* image_req's variant record helpers: the link to the source response
 * (ETag first, then Last-Modified, then Date; and the length), the
 * variant's own fields, and the header block a variant is served with
 * (the source's, without its representation fields, Vary merged). */
#include <criterion/criterion.h>
#include <string.h>

#include "image_req.h"

static const char src[] = "Cache-Control: max-age=60\r\nContent-Type: image/jpeg\r\nETag: \"abc\"\r\n"
                          "Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT\r\nVary: Accept-Encoding\r\n"
                          "Content-Disposition: inline; filename=a.jpg\r\nX-Team: photos\r\n";

static uint64_t link_of(const char *block, uint64_t len)
{
    return image_link(block, strlen(block), len);
}

Test(image_req, link_follows_the_validator_then_the_length)
{
    uint64_t a = link_of("ETag: \"v1\"\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n", 100);
    cr_assert_eq(a, link_of("ETag: \"v1\"\r\nDate: Wed, 02 Dec 2026 10:00:00 GMT\r\n", 100),
                 "a 304 brings a new Date: the ETag decides");
    cr_assert_neq(a, link_of("ETag: \"v2\"\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n", 100));
    cr_assert_neq(a, link_of("ETag: \"v1\"\r\n", 101), "another length is another response");
    uint64_t lm = link_of("Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT\r\nDate: x\r\n", 5);
    cr_assert_eq(lm, link_of("Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT\r\nDate: y\r\n", 5));
    cr_assert_neq(link_of("Date: x\r\n", 5), link_of("Date: y\r\n", 5), "no validator: every response differs");
}

Test(image_req, variant_ids_and_identities)
{
    cr_assert_neq(image_variant_id(0, "w=1", 3), image_variant_id(0, "w=2", 3));
    cr_assert_neq(image_variant_id(0, "w=1", 3), image_variant_id(7, "w=1", 3), "per source variant");
    cr_assert_neq(image_variant_id(0, "w=1", 3), 0, "never the primary record");
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(image_identity(&b, "w=1", 3, 0xab), 0);
    cr_assert_str_eq(b.data, "img:w=1;src=00000000000000ab");
    buf_free(&b);
}

Test(image_req, own_fields_and_the_served_block)
{
    buf_t own, out;
    buf_init(&own, 0);
    buf_init(&out, 0);
    cr_assert_eq(image_own_block(&own, "image/webp", src, strlen(src), 1, "w=1", 3), 0);
    cr_assert(strncmp(own.data, "Content-Type: image/webp\r\nETag: \"img-", 37) == 0, "%s", own.data);
    cr_assert_eq(image_compose(&out, src, strlen(src), own.data, own.len, true), 0);
    cr_assert_null(strstr(out.data, "image/jpeg"), "%s", out.data);
    cr_assert_null(strstr(out.data, "\"abc\""), "the source's ETag is not the variant's");
    cr_assert_null(strstr(out.data, "filename=a.jpg"));
    cr_assert_not_null(strstr(out.data, "Cache-Control: max-age=60\r\n"));
    cr_assert_not_null(strstr(out.data, "Last-Modified: "));
    cr_assert_not_null(strstr(out.data, "X-Team: photos\r\n"));
    cr_assert_not_null(strstr(out.data, "Vary: Accept-Encoding, Accept\r\n"), "%s", out.data);
    buf_reset(&out);
    cr_assert_eq(image_compose(&out, src, strlen(src), own.data, own.len, false), 0);
    cr_assert_not_null(strstr(out.data, "Vary: Accept-Encoding\r\n"));
    buf_reset(&out);
    cr_assert_eq(image_compose(&out, "Age: 1\r\n", 8, own.data, own.len, false), 0);
    cr_assert_null(strstr(out.data, "Vary"), "no Vary when nothing varies");
    /* a weak source validator makes a weak variant one */
    buf_reset(&own);
    image_own_block(&own, "image/png", "ETag: W/\"x\"\r\n", 13, 1, "w=1", 3);
    cr_assert_not_null(strstr(own.data, "ETag: W/\"img-"), "%s", own.data);
    buf_free(&own);
    buf_free(&out);
}
