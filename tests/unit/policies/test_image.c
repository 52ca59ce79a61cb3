/* Image transform parameters, format negotiation and variant keys. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../test_fields.h"
#include "policy_image.h"

static char err[256];

static int parse_lim(policy_image_params_t *p, const char *q, const policy_image_limits_t *lim)
{
    err[0] = '\0';
    return policy_image_parse(p, q, strlen(q), lim, err, sizeof err);
}

static policy_image_params_t ok(const char *q)
{
    policy_image_params_t p;
    cr_assert_eq(parse_lim(&p, q, NULL), 0, "%s: %s", q, err);
    return p;
}

/* Parsing q fails with a message that starts with "name:". */
static void bad(const char *q, const char *name)
{
    policy_image_params_t p;
    char want[32];
    cr_assert_eq(parse_lim(&p, q, NULL), -EINVAL, "%s parsed", q);
    snprintf(want, sizeof want, "%s: ", name);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "%s: message '%s' does not name %s", q, err, name);
}

/* The key of q encoded as chosen; two rotating buffers, so two calls can
 * be compared in one assertion. */
static char *key(const char *q, policy_image_fmt_t chosen)
{
    static char texts[2][256];
    static int turn;
    char *text = texts[turn++ & 1];
    policy_image_params_t p = ok(q);
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(policy_image_variant_key(&b, &p, chosen), 0);
    snprintf(text, sizeof texts[0], "%.*s", (int)b.len, b.data);
    buf_free(&b);
    return text;
}

Test(image, defaults_and_no_transform)
{
    policy_image_params_t p = ok("");
    cr_assert_not(p.any);
    cr_assert_eq(p.w, 0);
    cr_assert_eq(p.fit, POLICY_IMAGE_FIT_COVER);
    cr_assert_eq(p.gravity, POLICY_IMAGE_GRAVITY_CENTER);
    cr_assert_eq(p.fmt, POLICY_IMAGE_FMT_SAME);
    cr_assert_eq(p.q, 0);
    cr_assert_eq(p.dpr_x100, 100);
    cr_assert_not(ok("utm_source=x&v=3&W=5").any);
    cr_assert_eq(policy_image_parse(&p, NULL, 0, NULL, NULL, 0), 0);
    cr_assert_not(p.any);
}

Test(image, all_parameters)
{
    policy_image_params_t p = ok("w=400&h=300&fit=inside&gravity=northeast&fmt=webp&q=75&dpr=1");
    cr_assert(p.any);
    cr_assert_eq(p.w, 400);
    cr_assert_eq(p.h, 300);
    cr_assert_eq(p.fit, POLICY_IMAGE_FIT_INSIDE);
    cr_assert_eq(p.gravity, POLICY_IMAGE_GRAVITY_NORTHEAST);
    cr_assert_eq(p.fmt, POLICY_IMAGE_FMT_WEBP);
    cr_assert_eq(p.q, 75);
    cr_assert_eq(ok("fit=outside").fit, POLICY_IMAGE_FIT_OUTSIDE);
    cr_assert_eq(ok("fit=fill").fit, POLICY_IMAGE_FIT_FILL);
    cr_assert_eq(ok("fit=contain").fit, POLICY_IMAGE_FIT_CONTAIN);
    cr_assert_eq(ok("gravity=smart").gravity, POLICY_IMAGE_GRAVITY_SMART);
    cr_assert_eq(ok("gravity=southwest").gravity, POLICY_IMAGE_GRAVITY_SOUTHWEST);
    cr_assert_eq(ok("fmt=auto").fmt, POLICY_IMAGE_FMT_AUTO);
    cr_assert_eq(ok("fmt=avif").fmt, POLICY_IMAGE_FMT_AVIF);
    cr_assert(ok("fmt=jpeg").any);
}

Test(image, size_edges)
{
    cr_assert_eq(ok("w=1").w, 1);
    cr_assert_eq(ok("h=4096").h, 4096);
    bad("w=0", "w");
    bad("w=4097", "w");
    bad("h=0", "h");
    bad("h=99999999999", "h");
    bad("w=abc", "w");
    bad("w=-5", "w");
    bad("w=+5", "w");
    bad("w=12px", "w");
    bad("h=1.5", "h");
    policy_image_params_t p;
    cr_assert_eq(parse_lim(&p, "w=abc", NULL), -EINVAL);
    cr_assert_str_eq(err, "w: expected an integer from 1 to 4096, got 'abc'");
    policy_image_limits_t lim = { .max_side = 1000 };
    cr_assert_eq(parse_lim(&p, "w=1000", &lim), 0);
    cr_assert_eq(parse_lim(&p, "w=1001", &lim), -EINVAL);
    cr_assert_str_eq(err, "w: expected an integer from 1 to 1000, got '1001'");
}

Test(image, quality_edges)
{
    cr_assert_eq(ok("q=1").q, 1);
    cr_assert_eq(ok("q=100").q, 100);
    bad("q=0", "q");
    bad("q=101", "q");
    bad("q=high", "q");
}

Test(image, names_are_exact)
{
    bad("fit=crop", "fit");
    bad("fit=COVER", "fit");
    bad("gravity=top", "gravity");
    bad("gravity=Center", "gravity");
    bad("fmt=gif", "fmt");
    bad("fmt=same", "fmt");
    bad("fmt=jpg", "fmt");
}

Test(image, dpr_values)
{
    cr_assert_eq(ok("dpr=1").dpr_x100, 100);
    cr_assert_eq(ok("dpr=4").dpr_x100, 400);
    cr_assert_eq(ok("dpr=1.5").dpr_x100, 150);
    cr_assert_eq(ok("dpr=1.25").dpr_x100, 125);
    cr_assert_eq(ok("dpr=2.0").dpr_x100, 200);
    cr_assert_eq(ok("dpr=4.00").dpr_x100, 400);
    bad("dpr=0.5", "dpr");
    bad("dpr=4.01", "dpr");
    bad("dpr=5", "dpr");
    bad("dpr=1.125", "dpr");
    bad("dpr=.5", "dpr");
    bad("dpr=2.", "dpr");
    bad("dpr=x", "dpr");
    bad("dpr=1e0", "dpr");
}

Test(image, dpr_scales_and_caps)
{
    policy_image_params_t p = ok("w=200&h=100&dpr=1.5");
    cr_assert_eq(p.w, 300);
    cr_assert_eq(p.h, 150);
    cr_assert_eq(ok("w=333&dpr=1.5").w, 500); /* 499.5 rounds to nearest */
    cr_assert_eq(ok("h=3000&dpr=2").h, 4096);
    /* Both sides shrink by one factor: the aspect ratio stays. */
    p = ok("w=3000&h=1500&dpr=2");
    cr_assert_eq(p.w, 4096);
    cr_assert_eq(p.h, 2048);
    /* dpr is folded into the pixels: equal outputs share one key. */
    cr_assert_str_eq(key("w=200&dpr=2", POLICY_IMAGE_FMT_JPEG), key("w=400", POLICY_IMAGE_FMT_JPEG));
}

Test(image, missing_repeated_and_percent)
{
    bad("w=", "w");
    bad("w", "w");
    bad("w=10&w=10", "w");
    bad("fmt=webp&x=1&fmt=avif", "fmt");
    bad("q=5%30", "q");
    bad("gravity=%6eorth", "gravity");
    policy_image_params_t p;
    cr_assert_eq(parse_lim(&p, "dpr=1&dpr=2", NULL), -EINVAL);
    cr_assert_str_eq(err, "dpr: given more than once");
    /* Other parameters may repeat, be empty or hold anything. */
    cr_assert_eq(ok("a=1&a=2&b=&c&d=%41&w=10&&").w, 10);
}

Test(image, allowed_widths)
{
    static const unsigned widths[] = { 320, 640, 1280 };
    policy_image_limits_t lim = { .allowed_widths = widths, .n_allowed = 3, .round_up = true };
    policy_image_params_t p;
    cr_assert_eq(parse_lim(&p, "w=640", &lim), 0);
    cr_assert_eq(p.w, 640);
    cr_assert_eq(parse_lim(&p, "w=1", &lim), 0);
    cr_assert_eq(p.w, 320);
    cr_assert_eq(parse_lim(&p, "w=400&h=300", &lim), 0, "%s", err);
    cr_assert_eq(p.w, 640);
    cr_assert_eq(p.h, 480); /* the aspect ratio stays */
    cr_assert_eq(parse_lim(&p, "w=320&dpr=2", &lim), 0); /* after dpr */
    cr_assert_eq(p.w, 640);
    cr_assert_eq(parse_lim(&p, "h=500", &lim), 0); /* no w: nothing to check */
    cr_assert_eq(parse_lim(&p, "w=1281", &lim), -EINVAL);
    cr_assert(strncmp(err, "w: ", 3) == 0, "%s", err);
    cr_assert_eq(parse_lim(&p, "w=400&h=4000", &lim), -EINVAL); /* h would pass max_side */
    cr_assert(strncmp(err, "w: ", 3) == 0, "%s", err);
    lim.round_up = false;
    cr_assert_eq(parse_lim(&p, "w=1280", &lim), 0);
    cr_assert_eq(parse_lim(&p, "w=400", &lim), -EINVAL);
    cr_assert_str_eq(err, "w: 400 is not an allowed width (next allowed: 640)");
}

Test(image, key_is_canonical)
{
    cr_assert_str_eq(key("w=400&h=300&fmt=webp", POLICY_IMAGE_FMT_WEBP),
                     "w=400;h=300;fit=cover;g=center;fmt=webp;q=80");
    const char *a = "w=400;h=300;fit=contain;g=north;fmt=avif;q=50";
    cr_assert_str_eq(key("w=400&h=300&fit=contain&gravity=north&fmt=auto&q=50", POLICY_IMAGE_FMT_AVIF), a);
    cr_assert_str_eq(key("q=50&utm=1&gravity=north&fmt=auto&fit=contain&h=300&w=400&z", POLICY_IMAGE_FMT_AVIF), a);
    /* Defaults spelled out or left out give one key. */
    cr_assert_str_eq(key("w=10&fit=cover&gravity=center&dpr=1", POLICY_IMAGE_FMT_JPEG),
                     key("w=10", POLICY_IMAGE_FMT_JPEG));
    cr_assert_str_eq(key("w=10&q=80", POLICY_IMAGE_FMT_JPEG), key("w=10", POLICY_IMAGE_FMT_JPEG));
    cr_assert_str_eq(key("w=10", POLICY_IMAGE_FMT_AVIF), "w=10;h=0;fit=cover;g=center;fmt=avif;q=60");
    /* PNG is lossless: q does not split its variants. */
    cr_assert_str_eq(key("w=10&q=20", POLICY_IMAGE_FMT_PNG), "w=10;h=0;fit=cover;g=center;fmt=png;q=0");
    cr_assert_str_eq(key("w=10&q=90", POLICY_IMAGE_FMT_PNG), "w=10;h=0;fit=cover;g=center;fmt=png;q=0");
    cr_assert_str_eq(key("w=10&q=20", POLICY_IMAGE_FMT_JPEG), "w=10;h=0;fit=cover;g=center;fmt=jpeg;q=20");

    policy_image_params_t p = ok("w=10");
    buf_t b;
    buf_init(&b, 8);
    cr_assert_eq(policy_image_variant_key(&b, &p, POLICY_IMAGE_FMT_AUTO), -EINVAL);
    cr_assert_eq(policy_image_variant_key(&b, &p, POLICY_IMAGE_FMT_JPEG), -E2BIG);
    buf_free(&b);
    /* SAME: the source's format; q as asked, so no format's default is guessed */
    cr_assert_str_eq(key("w=10", POLICY_IMAGE_FMT_SAME), "w=10;h=0;fit=cover;g=center;fmt=same;q=0");
    cr_assert_str_eq(key("w=10&q=55", POLICY_IMAGE_FMT_SAME), "w=10;h=0;fit=cover;g=center;fmt=same;q=55");
}

/* The choice a variant key is built from needs no source: SAME stands for it. */
Test(image, choice_without_source)
{
    http_fields_t h;
    http_fields_init(&h, 0);
    http_fields_add(&h, "Accept", 6, "image/avif,image/webp,*/*", 25);
    cr_assert_eq(policy_image_choice(POLICY_IMAGE_FMT_AUTO, &h, true), POLICY_IMAGE_FMT_AVIF);
    cr_assert_eq(policy_image_choice(POLICY_IMAGE_FMT_AUTO, &h, false), POLICY_IMAGE_FMT_WEBP);
    cr_assert_eq(policy_image_choice(POLICY_IMAGE_FMT_AUTO, NULL, true), POLICY_IMAGE_FMT_SAME);
    cr_assert_eq(policy_image_choice(POLICY_IMAGE_FMT_SAME, &h, true), POLICY_IMAGE_FMT_SAME);
    cr_assert_eq(policy_image_choice(POLICY_IMAGE_FMT_PNG, &h, true), POLICY_IMAGE_FMT_PNG);
    http_fields_free(&h);
}

static const char *source_query(const char *q)
{
    static char out[256];
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(policy_image_source_query(&b, q, strlen(q)), 0);
    snprintf(out, sizeof out, "%s", b.len ? b.data : "");
    buf_free(&b);
    return out;
}

/* The source is asked for without the transform parameters and the
 * signature; everything else goes as sent, in order. */
Test(image, source_query_strips_transform_params)
{
    cr_assert_str_eq(source_query("w=400&h=300&fmt=webp"), "");
    cr_assert_str_eq(source_query("width=4000&w=400&height=3000&sig=abc"), "width=4000&height=3000");
    cr_assert_str_eq(source_query("a=1&W=2&dpr=2&b"), "a=1&W=2&b");
    cr_assert_str_eq(source_query("q=80&gravity=smart&fit=cover&x=%20y"), "x=%20y");
    cr_assert_str_eq(source_query(""), "");
    cr_assert(policy_image_param_name("dpr", 3));
    cr_assert_not(policy_image_param_name("sig", 3));
    cr_assert_not(policy_image_param_name("width", 5));
}

static policy_image_fmt_t auto_with(http_fields_t h, policy_image_fmt_t source)
{
    policy_image_fmt_t f = policy_image_negotiate(POLICY_IMAGE_FMT_AUTO, source, &h);
    http_fields_free(&h);
    return f;
}

Test(image, negotiation)
{
    const policy_image_fmt_t J = POLICY_IMAGE_FMT_JPEG;
    cr_assert_eq(auto_with(fields("Accept", "image/avif,image/webp,image/apng,image/*,*/*;q=0.8", NULL), J),
                 POLICY_IMAGE_FMT_AVIF);
    cr_assert_eq(auto_with(fields("Accept", "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",
                                  NULL), J),
                 POLICY_IMAGE_FMT_WEBP);
    cr_assert_eq(auto_with(fields("Accept", "*/*", NULL), J), J);
    cr_assert_eq(auto_with(fields("Accept", "image/*", NULL), POLICY_IMAGE_FMT_PNG), POLICY_IMAGE_FMT_PNG);
    cr_assert_eq(auto_with(fields("Accept", "image/webp;q=0", NULL), J), J);
    cr_assert_eq(auto_with(fields("Accept", "image/avif;q=0.000, image/webp;q=0.1", NULL), J), POLICY_IMAGE_FMT_WEBP);
    cr_assert_eq(auto_with(fields("Accept", "", NULL), J), J);
    cr_assert_eq(auto_with(fields("Other", "image/avif", NULL), J), J);
    cr_assert_eq(policy_image_negotiate(POLICY_IMAGE_FMT_AUTO, J, NULL), J);
}

Test(image, negotiation_lines_case_and_spaces)
{
    const policy_image_fmt_t J = POLICY_IMAGE_FMT_JPEG;
    cr_assert_eq(auto_with(fields("Accept", "text/html", "accept", " IMAGE/AVIF ; Q=1 ", NULL), J),
                 POLICY_IMAGE_FMT_AVIF);
    cr_assert_eq(auto_with(fields("ACCEPT", "image/WebP\t;\tq = 0.9", NULL), J), POLICY_IMAGE_FMT_WEBP);
    /* An explicit q=0 on any line excludes the type. */
    cr_assert_eq(auto_with(fields("Accept", "image/avif", "Accept", "image/avif;q=0", NULL), J), J);
    cr_assert_eq(auto_with(fields("Accept", "image/avif;level=1;q=0.5", NULL), J), POLICY_IMAGE_FMT_AVIF);
    cr_assert_eq(auto_with(fields("Accept", "image/avifx, image/webpy", NULL), J), J);
}

Test(image, explicit_and_same_formats)
{
    http_fields_t h = fields("Accept", "image/avif,image/webp", NULL);
    cr_assert_eq(policy_image_negotiate(POLICY_IMAGE_FMT_SAME, POLICY_IMAGE_FMT_PNG, &h), POLICY_IMAGE_FMT_PNG);
    cr_assert_eq(policy_image_negotiate(POLICY_IMAGE_FMT_JPEG, POLICY_IMAGE_FMT_PNG, &h), POLICY_IMAGE_FMT_JPEG);
    cr_assert_eq(policy_image_negotiate(POLICY_IMAGE_FMT_WEBP, POLICY_IMAGE_FMT_PNG, NULL), POLICY_IMAGE_FMT_WEBP);
    http_fields_free(&h);
    cr_assert(policy_image_varies(POLICY_IMAGE_FMT_AUTO));
    cr_assert_not(policy_image_varies(POLICY_IMAGE_FMT_SAME));
    cr_assert_not(policy_image_varies(POLICY_IMAGE_FMT_WEBP));
    cr_assert_not(policy_image_varies(POLICY_IMAGE_FMT_AVIF));
}

Test(image, names_and_content_types)
{
    cr_assert_str_eq(policy_image_fmt_name(POLICY_IMAGE_FMT_AUTO), "auto");
    cr_assert_str_eq(policy_image_fmt_name(POLICY_IMAGE_FMT_JPEG), "jpeg");
    cr_assert_str_eq(policy_image_content_type(POLICY_IMAGE_FMT_AVIF), "image/avif");
    cr_assert_str_eq(policy_image_content_type(POLICY_IMAGE_FMT_WEBP), "image/webp");
    cr_assert_null(policy_image_content_type(POLICY_IMAGE_FMT_SAME));
    cr_assert_null(policy_image_content_type(POLICY_IMAGE_FMT_AUTO));
    struct { const char *ct; policy_image_fmt_t f; } cases[] = {
        { "image/jpeg", POLICY_IMAGE_FMT_JPEG }, { "IMAGE/PNG", POLICY_IMAGE_FMT_PNG },
        { " image/webp ; charset=x", POLICY_IMAGE_FMT_WEBP }, { "image/avif", POLICY_IMAGE_FMT_AVIF },
        { "image/gif", POLICY_IMAGE_FMT_PNG }, { "image/svg+xml", POLICY_IMAGE_FMT_SAME },
        { "text/html", POLICY_IMAGE_FMT_SAME }, { "", POLICY_IMAGE_FMT_SAME },
        { "image/jpegx", POLICY_IMAGE_FMT_SAME },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(policy_image_fmt_from_content_type(cases[i].ct, strlen(cases[i].ct)), cases[i].f, "%s",
                     cases[i].ct);
    cr_assert_eq(policy_image_fmt_from_content_type(NULL, 0), POLICY_IMAGE_FMT_SAME);
}
