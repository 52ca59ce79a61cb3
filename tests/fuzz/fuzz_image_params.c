/* Fuzz target: image transform requests (policy_image, policy_sign). The
 * input is the query string of an image URL (without the '?', not
 * NUL-terminated), then after the first LF the request's "Name: value"
 * lines (Accept). The first byte chooses the node's limits: max_side 4096
 * or 2000, allowed widths or any, rounding up or refusing.
 *
 * Parsed parameters must be within the limits (sides 1..max_side or 0, a
 * listed width when widths are listed, q 1..100 or 0, dpr folded in), and
 * be canonical: the query written back from them parses to the same
 * parameters and the same variant key. A refusal names a parameter. The
 * source query has no transform parameter or sig left. The URL signature
 * (fixed key, fixed path): a query signed with policy_sign_compute and
 * its sig appended checks, any other sig value does not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_input.h"
#include "policy_image.h"
#include "policy_sign.h"

static const unsigned widths[] = { 160, 320, 640, 1280 };
static const char key[] = "fuzz-key-0123456789abcdef";
static const char path[] = "/img/cat.jpg";

static void must(bool ok)
{
    if (!ok)
        abort();
}

static const char *const fits[] = { "cover", "contain", "fill", "inside", "outside" };
static const char *const gravities[] = { "center",    "north",     "south",     "east",      "west",
                                         "northeast", "northwest", "southeast", "southwest", "smart" };

/* The query that asks for p with dpr 1. */
static void canonical(buf_t *b, const policy_image_params_t *p)
{
    int rc = buf_printf(b, "fit=%s&gravity=%s", fits[p->fit], gravities[p->gravity]);
    if (!rc && p->w)
        rc = buf_printf(b, "&w=%u", p->w);
    if (!rc && p->h)
        rc = buf_printf(b, "&h=%u", p->h);
    if (!rc && p->fmt != POLICY_IMAGE_FMT_SAME)
        rc = buf_printf(b, "&fmt=%s", policy_image_fmt_name(p->fmt));
    if (!rc && p->q)
        rc = buf_printf(b, "&q=%u", p->q);
    must(rc == 0);
}

static void check_params(const policy_image_params_t *p, const policy_image_limits_t *lim)
{
    unsigned max_side = lim->max_side ? lim->max_side : 4096;
    must(p->w <= max_side && p->h <= max_side);
    must((unsigned)p->fit <= POLICY_IMAGE_FIT_OUTSIDE && (unsigned)p->gravity <= POLICY_IMAGE_GRAVITY_SMART);
    must((unsigned)p->fmt <= POLICY_IMAGE_FMT_AUTO && p->q <= 100);
    must(p->dpr_x100 >= 100 && p->dpr_x100 <= 400);
    if (p->w && lim->allowed_widths) {
        bool listed = false;
        for (size_t i = 0; i < lim->n_allowed; i++)
            listed |= lim->allowed_widths[i] == p->w;
        must(listed);
    }
}

static void variant_key(buf_t *b, const policy_image_params_t *p, const http_fields_t *req, bool avif)
{
    policy_image_fmt_t chosen = policy_image_choice(p->fmt, req, avif);
    must(chosen != POLICY_IMAGE_FMT_AUTO && (p->fmt == POLICY_IMAGE_FMT_AUTO || chosen == p->fmt));
    must(policy_image_variant_key(b, p, chosen) == 0);
    policy_image_fmt_t neg = policy_image_negotiate(p->fmt, POLICY_IMAGE_FMT_JPEG, req);
    must(neg != POLICY_IMAGE_FMT_AUTO && neg != POLICY_IMAGE_FMT_SAME);
    must(policy_image_content_type(neg) != NULL);
    must(policy_image_varies(p->fmt) == (p->fmt == POLICY_IMAGE_FMT_AUTO));
    policy_image_quality(p, neg);
}

static void sign(const char *q, size_t qlen)
{
    char sig[POLICY_SIGN_LEN + 1];
    buf_t stripped, signed_q;
    buf_init(&stripped, 0);
    buf_init(&signed_q, 0);
    int removed = policy_sign_strip(&stripped, q, qlen);
    must(removed >= 0);
    must(policy_sign_compute(key, sizeof key - 1, path, sizeof path - 1, q, qlen, sig) == 0);
    must(strlen(sig) == POLICY_SIGN_LEN);
    bool ok = policy_sign_check(key, sizeof key - 1, path, sizeof path - 1, q, qlen);
    must(!ok || removed == 1);
    if (removed == 0) {
        /* Signed as a client would: the query, then &sig=. */
        must(buf_append(&signed_q, q, qlen) == 0 && buf_printf(&signed_q, "&sig=%s", sig) == 0);
        char *own = fuzz_dup((const uint8_t *)signed_q.data, signed_q.len);
        must(policy_sign_check(key, sizeof key - 1, path, sizeof path - 1, own, signed_q.len));
        /* One character off: refused. */
        own[signed_q.len - 1] = own[signed_q.len - 1] == 'A' ? 'B' : 'A';
        must(!policy_sign_check(key, sizeof key - 1, path, sizeof path - 1, own, signed_q.len));
        free(own);
    }
    buf_free(&stripped);
    buf_free(&signed_q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    policy_image_limits_t lim = { .max_side = data[0] & 1 ? 2000 : 0 };
    if (data[0] & 2) {
        lim.allowed_widths = widths;
        lim.n_allowed = sizeof widths / sizeof widths[0];
        lim.round_up = data[0] & 4;
    }
    bool avif = data[0] & 8;
    const uint8_t *rest = data + 1, *nl = memchr(rest, '\n', size - 1);
    size_t qlen = nl ? (size_t)(nl - rest) : size - 1;
    char *q = fuzz_dup(rest, qlen);
    http_fields_t req;
    http_fields_init(&req, 0);
    if (nl)
        fuzz_fields(&req, nl + 1, size - 1 - qlen - 1);

    policy_image_params_t p;
    char err[128];
    int rc = policy_image_parse(&p, q, qlen, &lim, err, sizeof err);
    if (rc) {
        must(err[0] != '\0');
    } else {
        check_params(&p, &lim);
        buf_t k1, k2, cq;
        buf_init(&k1, 0);
        buf_init(&k2, 0);
        buf_init(&cq, 0);
        variant_key(&k1, &p, &req, avif);
        canonical(&cq, &p);
        policy_image_params_t again;
        must(policy_image_parse(&again, cq.data, cq.len, &lim, err, sizeof err) == 0);
        must(again.w == p.w && again.h == p.h && again.fit == p.fit && again.gravity == p.gravity &&
             again.fmt == p.fmt && again.q == p.q);
        variant_key(&k2, &again, &req, avif);
        must(k1.len == k2.len && memcmp(k1.data, k2.data, k1.len) == 0);
        buf_free(&k1);
        buf_free(&k2);
        buf_free(&cq);
    }

    buf_t src;
    buf_init(&src, 0);
    must(policy_image_source_query(&src, q, qlen) == 0);
    for (size_t pos = 0; pos < src.len;) {
        const char *s = src.data + pos, *amp = memchr(s, '&', src.len - pos);
        size_t n = amp ? (size_t)(amp - s) : src.len - pos;
        const char *eq = memchr(s, '=', n);
        size_t nlen = eq ? (size_t)(eq - s) : n;
        must(!policy_image_param_name(s, nlen) && !(nlen == 3 && memcmp(s, "sig", 3) == 0));
        pos += n + 1;
    }
    buf_free(&src);
    sign(q, qlen);

    for (size_t i = 0; i < req.n; i++) {
        http_slice_t v = http_fields_value(&req, i);
        policy_image_fmt_from_content_type(v.p, v.len);
    }
    http_fields_free(&req);
    free(q);
    return 0;
}
