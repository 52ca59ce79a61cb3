/* image_req: a request for an image variant, from its query to a hit
 * (see include/image_req.h); making a missing variant is derive.c. */
#include "image_req.h"

#include <errno.h>
#include <inttypes.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "image.h"
#include "object_meta.h"
#include "policy_sign.h"
#include "policy_vary.h"
#include "preq.h"
#include "serve.h"
#include "stream.h"

void image_req_free(preq_image_t *img)
{
    if (!img)
        return;
    buf_free(&img->src_target);
    free(img);
}

static int fail(preq_image_t *img, int status, const char *fmt, const char *detail)
{
    snprintf(img->msg, sizeof img->msg, fmt, detail);
    return status;
}

int image_req_recv(preq_t *p, http_slice_t host)
{
    const http_req_t *req = p->req;
    const proxy_t *px = p->pw->px;
    if (req->method != HTTP_GET && req->method != HTTP_HEAD)
        return 0; /* other methods go upstream as they are */
    const char *q = req->path_len < req->target_len ? req->target + req->path_len + 1 : "";
    size_t qlen = req->path_len < req->target_len ? req->target_len - req->path_len - 1 : 0;
    preq_image_t *img = calloc(1, sizeof *img);
    if (!img)
        return 503;
    p->img = img;
    buf_init(&img->src_target, px->cfg->max_uri_size);
    const policy_rule_t *r = p->rule;
    policy_image_limits_t lim = {
        .max_side = px->cfg->image_max_side,
        .allowed_widths = r->n_widths ? r->widths : NULL,
        .n_allowed = r->n_widths,
        .round_up = r->widths_round == POLICY_RULE_WIDTHS_UP,
    };
    char err[200];
    if (policy_image_parse(&img->params, q, qlen, &lim, err, sizeof err))
        return fail(img, 400, "bad image parameter: %s\n", err);
    if (!img->params.any) {
        /* The image itself: an ordinary request. */
        image_req_free(img);
        p->img = NULL;
        return 0;
    }
    if (p->conf->image_key_len &&
        !policy_sign_check(p->conf->image_key, p->conf->image_key_len, req->target, req->path_len, q, qlen))
        return fail(img, 403, "%s\n", "image URL signature missing or wrong (sig)");
    if (img->params.fmt == POLICY_IMAGE_FMT_AVIF && !px->image_avif)
        return fail(img, 400, "bad image parameter: %s\n", "fmt: avif output is not available on this node");
    img->choice = policy_image_choice(img->params.fmt, &req->hdrs, px->image_avif);
    buf_t vk;
    buf_init(&vk, sizeof img->vkey);
    if (policy_image_variant_key(&vk, &img->params, img->choice)) {
        buf_free(&vk);
        return 503;
    }
    memcpy(img->vkey, vk.data, vk.len + 1);
    img->vkey_len = vk.len;
    buf_free(&vk);
    /* The source: the same path, the query without transform parameters. */
    buf_t *t = &img->src_target;
    int rc = buf_append(t, req->target, req->path_len);
    size_t before = t->len + 1;
    if (!rc)
        rc = buf_append(t, "?", 1);
    if (!rc)
        rc = policy_image_source_query(t, q, qlen);
    if (!rc && t->len == before)
        t->data[--t->len] = '\0'; /* nothing left of the query */
    if (!rc) {
        buf_reset(&p->key);
        rc = preq_cache_key(p->conf, host, t->data, t->len, &p->key, &p->rule, &p->popts);
    }
    if (rc)
        return fail(img, rc == -E2BIG ? 414 : 400, "%s\n", "invalid request target");
    p->target = t->data;
    p->target_len = t->len;
    return 0;
}

/* --- the variant record --- */

uint64_t image_link(const char *block, size_t len, uint64_t body_len)
{
    static const uint8_t k[16] = { 'c', 'd', 'n', '-', 'i', 'm', 'g', '-', 'l', 'i', 'n', 'k', '-', 'k', 'y', '1' };
    static const char *const fields[] = { "etag", "last-modified", "date" };
    buf_t b;
    buf_init(&b, 0);
    for (size_t i = 0; i < 3; i++) {
        http_slice_t v;
        if (object_meta_field(block, len, fields[i], &v)) {
            buf_printf(&b, "%s:%.*s", fields[i], (int)v.len, v.p);
            break;
        }
    }
    buf_printf(&b, "|%" PRIu64, body_len);
    uint64_t h = hash_sip64(k, b.data ? b.data : "", b.len);
    buf_free(&b);
    return h;
}

uint64_t image_variant_id(uint64_t src_variant, const char *vkey, size_t len)
{
    char s[192];
    int n = snprintf(s, sizeof s, "img:%016" PRIx64 ":%.*s", src_variant, (int)len, vkey);
    return policy_vary_id(s, n > 0 && (size_t)n < sizeof s ? (size_t)n : sizeof s - 1);
}

int image_identity(buf_t *out, const char *vkey, size_t len, uint64_t link)
{
    return buf_printf(out, "img:%.*s;src=%016" PRIx64, (int)len, vkey, link);
}

int image_own_block(buf_t *out, const char *ctype, const char *src_block, size_t src_len, uint64_t link,
                    const char *vkey, size_t vlen)
{
    static const uint8_t k[16] = { 'c', 'd', 'n', '-', 'i', 'm', 'g', '-', 'e', 't', 'a', 'g', '-', 'k', 'y', '1' };
    char s[192];
    int n = snprintf(s, sizeof s, "%016" PRIx64 ":%.*s", link, (int)vlen, vkey);
    uint64_t tag = hash_sip64(k, s, n > 0 && (size_t)n < sizeof s ? (size_t)n : sizeof s - 1);
    http_slice_t et;
    bool weak = object_meta_field(src_block, src_len, "etag", &et) && et.len > 2 && memcmp(et.p, "W/", 2) == 0;
    return buf_printf(out, "Content-Type: %s\r\nETag: %s\"img-%016" PRIx64 "\"\r\n", ctype, weak ? "W/" : "", tag);
}

/* Fields of the source that describe its bytes, not the variant's. */
static bool representation_field(http_slice_t name)
{
    static const char *const names[] = { "content-type", "etag", "content-disposition", "content-md5", "digest",
                                         "content-digest", "repr-digest", "vary", "content-location" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (http_name_eq(name, names[i]))
            return true;
    return false;
}

int image_compose(buf_t *out, const char *src_block, size_t src_len, const char *own, size_t own_len,
                  bool vary_accept)
{
    int rc = 0;
    buf_t vary;
    buf_init(&vary, 0);
    for (size_t pos = 0; pos < src_len && !rc;) {
        const char *line = src_block + pos, *nl = memchr(line, '\n', src_len - pos);
        size_t n = nl ? (size_t)(nl - line) + 1 : src_len - pos;
        pos += n;
        const char *colon = memchr(line, ':', n);
        if (!colon)
            continue;
        http_slice_t name = { line, (size_t)(colon - line) };
        if (http_name_eq(name, "vary")) {
            size_t vlen = n - (size_t)(colon + 1 - line);
            while (vlen && (colon[vlen] == '\n' || colon[vlen] == '\r'))
                vlen--; /* the line's end (colon[vlen] is its last byte) */
            http_slice_t v = http_trim((http_slice_t){ colon + 1, vlen });
            rc = buf_printf(&vary, "%s%.*s", vary.len ? ", " : "", (int)v.len, v.p);
        } else if (!representation_field(name)) {
            rc = buf_append(out, line, n);
        }
    }
    if (!rc)
        rc = buf_append(out, own, own_len);
    if (!rc && vary_accept)
        rc = buf_printf(&vary, "%sAccept", vary.len ? ", " : "");
    if (!rc && vary.len)
        rc = buf_printf(out, "Vary: %s\r\n", vary.data);
    buf_free(&vary);
    return rc;
}

/* --- hits --- */

/* Serve the stored variant of the source found at k (obj, m), if there is
 * one made from this very source response. Ends the read transaction when
 * it answers (true). */
static bool serve_variant(preq_t *p, const store_obj_t *obj, const object_meta_t *m, int64_t age, int64_t ttl,
                          bool stale)
{
    preq_image_t *img = p->img;
    store_reader_t *rd = p->pw->rd;
    uint64_t link = image_link(m->block, m->block_len, obj->body_len);
    store_key_t vk = { .variant = image_variant_id(p->variant, img->vkey, img->vkey_len) };
    memcpy(vk.hash, p->hash, 16);
    store_obj_t vobj;
    object_meta_t vm;
    if (store_get(rd, &vk, &vobj) != STORE_OK || vobj.url_len != p->key.len ||
        memcmp(vobj.url, p->key.data, p->key.len) != 0 || object_meta_decode(vobj.meta, vobj.meta_len, &vm) ||
        vm.kind != OBJECT_META_OBJECT)
        return false;
    buf_t ib;
    buf_init(&ib, 512);
    bool same = image_identity(&ib, img->vkey, img->vkey_len, link) == 0 && vm.vary_len == ib.len &&
                memcmp(vm.vary, ib.data, ib.len) == 0;
    buf_free(&ib);
    if (!same)
        return false; /* made from another version of the source */
    buf_t block;
    buf_init(&block, 0);
    if (image_compose(&block, m->block, m->block_len, vm.block, vm.block_len, policy_image_varies(img->params.fmt))) {
        buf_free(&block);
        return false;
    }
    object_meta_t sm = *m; /* the source's freshness, status and upstream Cache-Status */
    sm.block = block.data;
    sm.block_len = block.len;
    store_touch(rd, &vk);
    http_conn_set_log_tag(p->c, stale ? "stale" : "hit");
    char params[96];
    snprintf(params, sizeof params, "; hit; ttl=%lld%s", (long long)ttl,
             stale ? "; detail=stale-while-revalidate" : "");
    serve_stored(p, &vobj, &sm, params, age);
    buf_free(&block);
    return true;
}

lookup_result_t image_req_lookup(preq_t *p)
{
    preq_image_t *img = p->img;
    store_reader_t *rd = p->pw->rd;
    store_key_t k;
    store_obj_t obj;
    object_meta_t m;
    img->start_seq = store_seq(p->pw->px->store);
    p->fwd = "uri-miss";
    if (store_read_begin(rd) != STORE_OK)
        return LOOKUP_MISS;
    if (!lookup_find(p, &k, &obj, &m)) {
        store_read_end(rd);
        return LOOKUP_MISS;
    }
    int64_t age, ttl;
    policy_verdict_t v = lookup_verdict(p, &obj, &m, &age, &ttl);
    switch (v) {
    case POLICY_VERDICT_FRESH:
    case POLICY_VERDICT_STALE_ACCEPTED:
    case POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK: {
        bool swr = v == POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK;
        store_touch(rd, &k); /* the source stays as warm as its variants */
        p->stored = lookup_stored_copy(&k, &obj);
        if (swr && p->stored)
            stream_background(p); /* revalidates the source */
        if (serve_variant(p, &obj, &m, age, ttl, swr))
            return swr ? LOOKUP_SERVED_STALE : LOOKUP_SERVED;
        store_read_end(rd);
        img->src_usable = p->stored != NULL;
        p->fwd = "miss"; /* the source is here, the variant is not */
        return LOOKUP_MISS;
    }
    case POLICY_VERDICT_REQUEST:
        p->fwd = "request";
        break;
    case POLICY_VERDICT_STALE_IF_ERROR_OK:
    case POLICY_VERDICT_STALE:
        p->fwd = "stale";
        break;
    }
    p->stored = lookup_stored_copy(&k, &obj);
    store_read_end(rd);
    return p->stored ? LOOKUP_REVALIDATE : LOOKUP_MISS;
}
