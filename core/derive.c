/* derive: one image variant made from its source, shared by every request
 * waiting for it (see include/derive.h for the steps).
 *
 * Threads: everything here runs on the owner worker's loop except the
 * transform itself (a task_pool thread) and the store's completion (the
 * writer thread); both hand back with worker_post. A derivation is
 * refcounted: one reference while the owner drives it (pw->derives), one
 * per wake-up posted, one while its transform is queued or running, one
 * while its store put is in flight. It owns no loop handle, so its last
 * reference may go on any thread. */
#include "derive.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "image_req.h"
#include "job.h"
#include "log.h"
#include "object_meta.h"
#include "policy_tags.h"
#include "policy_vary.h"
#include "preq.h"
#include "purge_req.h"
#include "stream.h"
#include "task_pool.h"

#define READ_IOV 16
/* An upstream error relayed for a variant: its body up to this size. */
#define RELAY_MAX (64 * 1024)

typedef struct derive derive_t;
struct derive {
    atomic_int refs;
    derive_t *next, *prev;     /* pw->derives while driven */
    bool listed, closed;
    proxy_worker_t *pw;
    worker_t *w;
    proxy_t *px;
    fetch_t *vf;               /* the variant's fetch: we publish on it */
    bool vf_done;              /* vf finished (published or failed) */
    fetch_t *sf;               /* the source's fetch, while we read it */
    fetch_waiter_t src_waiter;
    bool src_collapsed, head_seen, revalidated;
    http_fields_t req_hdrs;    /* the first request's: Vary checks, the variant id */
    char *url;                 /* the source's cache key */
    size_t url_len;
    uint8_t hash[16];
    policy_image_params_t params;
    policy_image_fmt_t choice;
    char vkey[128];
    size_t vkey_len;
    uint64_t start_seq;
    /* the source */
    int src_status;
    buf_t src;                 /* its body */
    buf_t src_block;           /* its client header block */
    buf_t src_cstatus;         /* its upstream Cache-Status */
    buf_t tags;
    policy_entry_t src_entry;
    uint64_t src_variant;
    bool src_stored;           /* the source response is (being) stored: the variant may be */
    store_key_t reval_key;     /* a 304 revalidated the stored source: read it there */
    uint64_t reval_object_id;
    bool too_large;
    /* the transform */
    image_req_t rq;
    int err;
    buf_t out;                 /* the variant's bytes */
    const char *ctype;
    int64_t started_us;
};

static void derive_ref(derive_t *d)
{
    atomic_fetch_add(&d->refs, 1);
}

static void derive_unref(derive_t *d)
{
    if (atomic_fetch_sub(&d->refs, 1) != 1)
        return;
    if (d->sf)
        fetch_unref(d->sf);
    if (d->vf)
        fetch_unref(d->vf);
    http_fields_free(&d->req_hdrs);
    free(d->url);
    buf_free(&d->src);
    buf_free(&d->src_block);
    buf_free(&d->src_cstatus);
    buf_free(&d->tags);
    buf_free(&d->out);
    free(d);
}

/* The owner is done driving d. */
static void derive_end(derive_t *d)
{
    if (!d->listed)
        return;
    if (d->prev)
        d->prev->next = d->next;
    else
        d->pw->derives = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->listed = false;
    derive_unref(d);
}

static void src_detach(derive_t *d)
{
    if (!d->sf)
        return;
    fetch_detach(d->sf, &d->src_waiter);
    fetch_unref(d->sf);
    d->sf = NULL;
}

/* --- publishing on the variant's fetch --- */

static resp_info_t *info_new(const char *block, size_t blen, const char *cs, size_t cslen)
{
    resp_info_t *ri = calloc(1, sizeof *ri + blen + cslen);
    if (!ri)
        return NULL;
    ri->block_len = blen;
    ri->cstatus_len = cslen;
    if (blen)
        memcpy(ri->data, block, blen);
    if (cslen)
        memcpy(ri->data + blen, cs, cslen);
    return ri;
}

/* Publish a complete response on vf: block is what clients get; hblock
 * the fields collapsed waiters are checked against (its Vary: the
 * source's, without the Accept that fmt=auto adds, since the variant key
 * already holds the format Accept chose). shareable: other waiters may
 * have it (else they derive on their own); storing: it is being stored
 * (keep the fetch findable until the store has it). */
static void publish(derive_t *d, int status, const char *block, size_t blen, const char *hblock, size_t hlen,
                    const policy_entry_t *e, const char *detail, const void *body, size_t len, bool shareable,
                    bool storing)
{
    resp_info_t *ri = info_new(block, blen, d->src_cstatus.data, d->src_cstatus.len);
    http_fields_t hdrs;
    http_fields_init(&hdrs, 0);
    if (!ri || object_meta_fields(&hdrs, hblock, hlen)) {
        free(ri);
        http_fields_free(&hdrs);
        fetch_finish(d->vf, UPSTREAM_EIO, "out of memory");
        fetch_unpublish(d->vf);
        d->vf_done = true;
        return;
    }
    ri->entry = *e;
    ri->stored = storing;
    ri->detail = detail;
    fetch_set_headers(d->vf, status, &hdrs, (int64_t)len, proxy_now(), shareable, storing, ri);
    http_fields_free(&hdrs);
    if (len && fetch_append(d->vf, body, len) == FETCH_ENOMEM) {
        fetch_finish(d->vf, UPSTREAM_EIO, "out of memory");
        fetch_unpublish(d->vf);
    } else {
        fetch_finish(d->vf, 0, NULL);
        if (!storing)
            fetch_unpublish(d->vf); /* nobody may join it later */
    }
    d->vf_done = true;
}

/* A generated answer for every waiter: never stored. */
static void publish_error(derive_t *d, int status, const char *detail, const char *msg)
{
    char block[160];
    int n = snprintf(block, sizeof block, "Content-Type: text/plain\r\nCache-Control: no-store\r\n%s",
                     status == 503 ? "Retry-After: 1\r\n" : "");
    policy_entry_t e = { .response_time = proxy_now() };
    publish(d, status, block, (size_t)n, "", 0, &e, detail, msg, strlen(msg), true, false);
    log_info("image %.*s [%s]: %d %s", (int)d->url_len, d->url, d->vkey, status, detail);
    derive_end(d);
}

/* The source is no image we transform, or an upstream error: it goes to
 * the waiters as it came (not stored as a variant). */
static void relay_source(derive_t *d, const char *detail)
{
    if (d->too_large && d->src_status == 200) {
        publish_error(d, 422, detail, "the source is not an image, and too large to pass on\n");
        return;
    }
    if (d->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "upstream answered %d\n", d->src_status);
        publish_error(d, d->src_status >= 400 ? d->src_status : 502, detail, msg);
        return;
    }
    publish(d, d->src_status, d->src_block.data, d->src_block.len, d->src_block.data, d->src_block.len,
            &d->src_entry, detail, d->src.data, d->src.len, true, false);
    derive_end(d);
}

/* Every waiter derives on its own. */
static void go_private(derive_t *d)
{
    src_detach(d);
    fetch_finish(d->vf, DERIVE_EPRIVATE, "the source cannot be shared");
    fetch_unpublish(d->vf);
    d->vf_done = true;
    derive_end(d);
}

/* --- storing the variant --- */

static void unpublish_on_owner(void *arg)
{
    derive_t *d = arg;
    fetch_unpublish(d->vf);
    derive_unref(d);
}

static void on_stored(void *ctx, int status)
{
    derive_t *d = ctx;
    if (status == STORE_PURGED)
        log_info("image %.*s [%s]: purged while it was made: not stored", (int)d->url_len, d->url, d->vkey);
    else if (status != STORE_OK)
        log_warn("image %.*s [%s]: storing failed", (int)d->url_len, d->url, d->vkey);
    if (worker_post(d->w, unpublish_on_owner, d)) {
        fetch_unpublish(d->vf); /* owner gone: finish here */
        derive_unref(d);
    }
}

static void store_body(void *ctx, uint64_t off, void *dst, size_t len)
{
    derive_t *d = ctx;
    memcpy(dst, d->out.data + off, len);
}

/* Queue the put; false when it could not be queued. */
static bool store_variant(derive_t *d, const char *own, size_t own_len, uint64_t link)
{
    buf_t meta, id;
    buf_init(&meta, 0);
    buf_init(&id, 512);
    object_meta_t m = {
        .kind = OBJECT_META_OBJECT,
        .status = 200,
        .entry = d->src_entry,
        .block = own,
        .block_len = own_len,
        .hidden = "",
        .cstatus = "",
        .vary = "",
    };
    bool ok = false;
    if (image_identity(&id, d->vkey, d->vkey_len, link) == 0) {
        m.vary = id.data;
        m.vary_len = id.len;
        if (object_meta_encode(&meta, &m) == 0) {
            store_put_t put = {
                .key = { .variant = image_variant_id(d->src_variant, d->vkey, d->vkey_len) },
                .url = d->url,
                .url_len = d->url_len,
                .meta = meta.data,
                .meta_len = meta.len,
                .tags = d->tags.data,
                .tags_len = d->tags.len,
                .start_seq = d->start_seq,
                .body_len = d->out.len,
                .body = store_body,
                .done = on_stored,
                .ctx = d,
            };
            memcpy(put.key.hash, d->hash, 16);
            derive_ref(d);
            ok = store_put(d->px->store, &put) == STORE_OK;
            if (!ok)
                derive_unref(d);
        }
    }
    buf_free(&meta);
    buf_free(&id);
    return ok;
}

/* The variant's bytes are in d->out: publish them and store them. */
static void publish_variant(derive_t *d, bool made)
{
    uint64_t link = image_link(d->src_block.data, d->src_block.len, d->src.len);
    buf_t own, block, hblock;
    buf_init(&own, 0);
    buf_init(&block, 0);
    buf_init(&hblock, 0);
    if (image_own_block(&own, d->ctype, d->src_block.data, d->src_block.len, link, d->vkey, d->vkey_len) ||
        image_compose(&block, d->src_block.data, d->src_block.len, own.data, own.len,
                      policy_image_varies(d->params.fmt)) ||
        image_compose(&hblock, d->src_block.data, d->src_block.len, "", 0, false)) {
        buf_free(&own);
        buf_free(&block);
        buf_free(&hblock);
        publish_error(d, 503, "no-memory", "out of memory\n");
        return;
    }
    bool storing = made && d->src_stored;
    publish(d, 200, block.data, block.len, hblock.data, hblock.len, &d->src_entry,
            made ? "image-transformed" : "image-stored", d->out.data, d->out.len, d->src_stored, storing);
    if (storing && !store_variant(d, own.data, own.len, link))
        fetch_unpublish(d->vf);
    buf_free(&own);
    buf_free(&block);
    buf_free(&hblock);
    derive_end(d);
}

/* --- the transform (a pool thread) --- */

static void transformed(void *arg)
{
    derive_t *d = arg;
    if (d->closed || !d->listed) {
        derive_unref(d);
        return;
    }
    if (d->err) {
        char msg[200];
        snprintf(msg, sizeof msg, "cannot transform the image: %s\n", image_strerror(d->err));
        publish_error(d, d->err == -ENOMEM ? 503 : 422, "image-error", msg);
    } else {
        log_info("image %.*s [%s]: transformed %zu -> %zu bytes in %lld us", (int)d->url_len, d->url, d->vkey,
                 d->src.len, d->out.len, (long long)(worker_now_us() - (uint64_t)d->started_us));
        publish_variant(d, true);
    }
    derive_unref(d); /* the task's */
}

/* The owner is gone (shutdown): drop the result here. */
static void abandon(void *arg)
{
    derive_t *d = arg;
    derive_unref(d);
}

static void transform_task(void *arg)
{
    derive_t *d = arg;
    image_out_t out = { 0 };
    d->err = image_transform(d->src.data, d->src.len, &d->px->image_opts, &d->rq, &out);
    if (!d->err) {
        if (buf_append(&d->out, out.data, out.len))
            d->err = -ENOMEM;
        d->ctype = out.content_type;
    }
    image_out_free(&out);
    if (worker_post(d->w, transformed, d))
        abandon(d);
}

static const image_fit_t fits[] = {
    [POLICY_IMAGE_FIT_COVER] = IMAGE_FIT_COVER, [POLICY_IMAGE_FIT_CONTAIN] = IMAGE_FIT_CONTAIN,
    [POLICY_IMAGE_FIT_FILL] = IMAGE_FIT_FILL,   [POLICY_IMAGE_FIT_INSIDE] = IMAGE_FIT_INSIDE,
    [POLICY_IMAGE_FIT_OUTSIDE] = IMAGE_FIT_OUTSIDE,
};
static const image_gravity_t gravities[] = {
    [POLICY_IMAGE_GRAVITY_CENTER] = IMAGE_GRAVITY_CENTRE,        [POLICY_IMAGE_GRAVITY_NORTH] = IMAGE_GRAVITY_NORTH,
    [POLICY_IMAGE_GRAVITY_SOUTH] = IMAGE_GRAVITY_SOUTH,          [POLICY_IMAGE_GRAVITY_EAST] = IMAGE_GRAVITY_EAST,
    [POLICY_IMAGE_GRAVITY_WEST] = IMAGE_GRAVITY_WEST,            [POLICY_IMAGE_GRAVITY_NORTHEAST] = IMAGE_GRAVITY_NORTH_EAST,
    [POLICY_IMAGE_GRAVITY_NORTHWEST] = IMAGE_GRAVITY_NORTH_WEST, [POLICY_IMAGE_GRAVITY_SOUTHEAST] = IMAGE_GRAVITY_SOUTH_EAST,
    [POLICY_IMAGE_GRAVITY_SOUTHWEST] = IMAGE_GRAVITY_SOUTH_WEST, [POLICY_IMAGE_GRAVITY_SMART] = IMAGE_GRAVITY_SMART,
};
static const image_format_t formats[] = {
    [POLICY_IMAGE_FMT_SAME] = IMAGE_FORMAT_SAME, [POLICY_IMAGE_FMT_JPEG] = IMAGE_FORMAT_JPEG,
    [POLICY_IMAGE_FMT_PNG] = IMAGE_FORMAT_PNG,   [POLICY_IMAGE_FMT_WEBP] = IMAGE_FORMAT_WEBP,
    [POLICY_IMAGE_FMT_AVIF] = IMAGE_FORMAT_AVIF,
};

/* Read an object's whole body (and tags) from the store into d; false
 * when that version is gone. */
static bool read_stored(derive_t *d, const store_key_t *k, uint64_t object_id)
{
    store_reader_t *rd = d->pw->rd;
    store_obj_t obj;
    bool ok = false;
    buf_reset(&d->src);
    if (store_read_begin(rd) != STORE_OK)
        return false;
    if (store_get(rd, k, &obj) != STORE_OK || obj.object_id != object_id)
        goto out;
    if (obj.body_len > d->px->image_opts.max_bytes) {
        d->too_large = true;
        ok = true;
        goto out;
    }
    if (obj.body) {
        ok = buf_append(&d->src, obj.body, obj.body_len) == 0;
    } else {
        ok = true;
        for (uint32_t i = 0; i < obj.nchunks && ok; i++) {
            const uint8_t *c;
            size_t n;
            ok = store_get_chunk(rd, obj.object_id, i, &c, &n) == STORE_OK && buf_append(&d->src, c, n) == 0;
        }
        ok = ok && d->src.len == obj.body_len;
    }
    buf_reset(&d->tags);
    if (ok && obj.tags_len)
        ok = buf_append(&d->tags, obj.tags, obj.tags_len) == 0;
out:
    store_read_end(rd);
    return ok;
}

/* The existing variant made from this very source response, if stored. */
static bool reuse_stored(derive_t *d, uint64_t link)
{
    store_reader_t *rd = d->pw->rd;
    store_key_t k = { .variant = image_variant_id(d->src_variant, d->vkey, d->vkey_len) };
    memcpy(k.hash, d->hash, 16);
    store_obj_t obj;
    object_meta_t m;
    buf_t id;
    buf_init(&id, 512);
    bool ok = false;
    if (image_identity(&id, d->vkey, d->vkey_len, link) || store_read_begin(rd) != STORE_OK) {
        buf_free(&id);
        return false;
    }
    if (store_get(rd, &k, &obj) == STORE_OK && obj.url_len == d->url_len &&
        memcmp(obj.url, d->url, d->url_len) == 0 && object_meta_decode(obj.meta, obj.meta_len, &m) == 0 &&
        m.vary_len == id.len && memcmp(m.vary, id.data, id.len) == 0) {
        http_slice_t ct;
        static const char *const types[] = { "image/jpeg", "image/png", "image/webp", "image/avif" };
        if (object_meta_field(m.block, m.block_len, "content-type", &ct))
            for (size_t i = 0; i < 4; i++)
                if (strlen(types[i]) == ct.len && memcmp(types[i], ct.p, ct.len) == 0)
                    d->ctype = types[i];
        ok = d->ctype != NULL;
        for (uint32_t i = 0; ok && !obj.body && i < obj.nchunks; i++) {
            const uint8_t *c;
            size_t n;
            ok = store_get_chunk(rd, obj.object_id, i, &c, &n) == STORE_OK && buf_append(&d->out, c, n) == 0;
        }
        if (ok && obj.body)
            ok = buf_append(&d->out, obj.body, obj.body_len) == 0;
        if (ok)
            store_touch(rd, &k);
    }
    store_read_end(rd);
    buf_free(&id);
    if (!ok)
        buf_reset(&d->out);
    return ok;
}

/* Everything about the source is known: relay it, reuse, or transform. */
static void got_source(derive_t *d)
{
    if (d->src_status != 200) {
        relay_source(d, "image-source-status");
        return;
    }
    http_slice_t ct = { "", 0 };
    object_meta_field(d->src_block.data, d->src_block.len, "content-type", &ct);
    policy_image_fmt_t sfmt = policy_image_fmt_from_content_type(ct.p, ct.len);
    if (sfmt == POLICY_IMAGE_FMT_SAME) {
        relay_source(d, "image-not-image"); /* not an image we transform: as it is */
        return;
    }
    if (d->too_large) {
        publish_error(d, 422, "image-too-large", "the source image is over image_max_size\n");
        return;
    }
    uint64_t link = image_link(d->src_block.data, d->src_block.len, d->src.len);
    if (d->src_stored && reuse_stored(d, link)) {
        publish_variant(d, false);
        return;
    }
    policy_image_fmt_t fmt = d->choice == POLICY_IMAGE_FMT_SAME ? sfmt : d->choice;
    d->rq = (image_req_t){
        .w = (int)d->params.w,
        .h = (int)d->params.h,
        .fit = fits[d->params.fit],
        .gravity = gravities[d->params.gravity],
        .format = formats[d->choice],
        .quality = (int)policy_image_quality(&d->params, fmt),
    };
    d->started_us = (int64_t)worker_now_us();
    derive_ref(d); /* the task's */
    int rc = task_pool_submit(d->px->image_pool, transform_task, abandon, d);
    if (rc) {
        derive_unref(d);
        publish_error(d, 503, "image-queue-full",
                      rc == -EBUSY ? "too many images are being resized: try again shortly\n" : "shutting down\n");
    }
}

/* --- reading the source's fetch --- */

static void src_pump(derive_t *d);

static derive_t *of_src_waiter(fetch_waiter_t *w)
{
    return (derive_t *)((char *)w - offsetof(derive_t, src_waiter));
}

static void src_wake_main(void *arg)
{
    derive_t *d = arg;
    if (d->listed && d->sf)
        src_pump(d);
    derive_unref(d);
}

/* With the fetch locked, maybe on another thread: only post. */
static void src_wake(fetch_waiter_t *w)
{
    derive_t *d = of_src_waiter(w);
    derive_ref(d);
    if (worker_post(d->w, src_wake_main, d))
        atomic_fetch_sub(&d->refs, 1); /* shutting down: the owner's reference remains */
}

/* The source's head: what kind of answer, and what it says. */
static bool src_head(derive_t *d, const fetch_view_t *v)
{
    const proxy_t *px = d->px;
    const resp_info_t *ri = v->owner_data;
    d->head_seen = true;
    d->src_status = v->status;
    if (v->status == 304 && ri && ri->revalidated) {
        object_meta_t m;
        if (object_meta_decode(ri->data + ri->block_len + ri->cstatus_len, ri->meta_len, &m))
            return false;
        d->revalidated = true;
        d->src_status = 200;
        d->reval_key = ri->key;
        d->reval_object_id = ri->object_id;
        d->src_variant = ri->key.variant;
        d->src_entry = m.entry;
        d->src_stored = true;
        return buf_append(&d->src_block, m.block, m.block_len) == 0 &&
               buf_append(&d->src_cstatus, m.cstatus, m.cstatus_len) == 0;
    }
    if (!ri)
        return false;
    d->src_entry = ri->entry;
    d->src_stored = ri->stored;
    d->src_variant = 0;
    buf_t fields, sk;
    buf_init(&fields, 64 * 1024);
    buf_init(&sk, 64 * 1024);
    int vk = policy_vary_fields_with(&fields, v->hdrs, px->pass_keyed, px->pass_keyed_len);
    if (vk == POLICY_VARY_KEY && policy_vary_key_from_fields(&sk, fields.data, fields.len, &d->req_hdrs) == 0)
        d->src_variant = policy_vary_id(sk.data, sk.len);
    else if (vk != POLICY_VARY_NONE)
        d->src_stored = false;
    buf_free(&fields);
    buf_free(&sk);
    buf_reset(&d->tags);
    if (d->src_stored && policy_tags_collect(&d->tags, v->hdrs, px->cfg->max_tags, px->cfg->max_tag_bytes, NULL))
        d->src_stored = false;
    size_t limit = v->status == 200 ? px->image_opts.max_bytes : RELAY_MAX;
    if (v->content_length >= 0 && (uint64_t)v->content_length > limit)
        d->too_large = true;
    return buf_append(&d->src_block, ri->data, ri->block_len) == 0 &&
           buf_append(&d->src_cstatus, ri->data + ri->block_len, ri->cstatus_len) == 0;
}

static void src_failed(derive_t *d, const fetch_view_t *v)
{
    src_detach(d);
    bool timeout = v->err == UPSTREAM_ETIMEOUT;
    char msg[300];
    snprintf(msg, sizeof msg, "%s: %s\n", timeout ? "upstream timed out" : "upstream failed",
             v->errmsg ? v->errmsg : "");
    char block[96];
    int n = snprintf(block, sizeof block, "Content-Type: text/plain\r\nCache-Control: no-store\r\n");
    policy_entry_t e = { .response_time = proxy_now() };
    publish(d, timeout ? 504 : 502, block, (size_t)n, "", 0, &e, timeout ? "upstream-timeout" : "upstream-error", msg,
            strlen(msg), true, false);
    derive_end(d);
}

static void src_pump(derive_t *d)
{
    const proxy_t *px = d->px;
    for (;;) {
        fetch_view_t v;
        uv_buf_t iov[READ_IOV];
        unsigned n = fetch_read(d->sf, &d->src_waiter, &v, iov, READ_IOV);
        if (v.state == FETCH_PENDING)
            return;
        if (!d->head_seen) {
            if (v.redispatch ||
                (d->src_collapsed && v.state != FETCH_FAILED && v.req_hdrs &&
                 !policy_vary_response_matches_with(v.hdrs, px->pass_keyed, px->pass_keyed_len, v.req_hdrs,
                                                    &d->req_hdrs))) {
                go_private(d);
                return;
            }
            if (v.state == FETCH_FAILED) {
                src_failed(d, &v);
                return;
            }
            if (!src_head(d, &v)) {
                src_detach(d);
                publish_error(d, 503, "no-memory", "out of memory\n");
                return;
            }
        }
        size_t limit = d->src_status == 200 ? px->image_opts.max_bytes : RELAY_MAX;
        uint64_t got = 0;
        for (unsigned i = 0; i < n && !d->too_large; i++) {
            got += iov[i].len;
            if (d->src.len + iov[i].len > limit) {
                d->too_large = true;
            } else if (buf_append(&d->src, iov[i].base, iov[i].len)) {
                src_detach(d);
                publish_error(d, 503, "no-memory", "out of memory\n");
                return;
            }
        }
        if (d->too_large) {
            /* Answer now, without reading the rest: the source's fill
             * goes on for the cache without us. */
            buf_free(&d->src);
            src_detach(d);
            got_source(d);
            return;
        }
        fetch_consumed(d->sf, &d->src_waiter, got);
        if (v.state == FETCH_FAILED) {
            src_failed(d, &v);
            return;
        }
        if (v.state == FETCH_DONE && d->src_waiter.off >= v.avail) {
            src_detach(d);
            if (d->revalidated && !read_stored(d, &d->reval_key, d->reval_object_id)) {
                publish_error(d, 503, "image-source-gone", "the source changed meanwhile: try again\n");
                return;
            }
            got_source(d);
            return;
        }
        if (d->src_waiter.off >= v.avail)
            return; /* the next wake brings more */
    }
}

/* --- start --- */

/* The collapsing key of a variant. An fmt=auto request and one naming the
 * format it chose share the stored variant, but not the published
 * response: only auto's carries Vary: Accept. */
static void variant_fetch_key(const preq_t *p, uint8_t out[16])
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, policy_image_varies(p->img->params.fmt) ? "img-auto:" : "img-fixed:");
    buf_append(&b, p->hash, 16);
    buf_append(&b, &p->variant, sizeof p->variant);
    buf_append(&b, p->img->vkey, p->img->vkey_len);
    hash_cache_key(b.data, b.len, out);
    buf_free(&b);
}

static derive_t *derive_new(preq_t *p, fetch_t *vf)
{
    derive_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    atomic_init(&d->refs, 1); /* the owner's */
    d->pw = p->pw;
    d->w = p->pw->w;
    d->px = p->pw->px;
    d->vf = vf;
    fetch_ref(vf);
    http_fields_init(&d->req_hdrs, 0);
    buf_init(&d->src, 0);
    buf_init(&d->src_block, 0);
    buf_init(&d->src_cstatus, 0);
    buf_init(&d->tags, 64 * 1024);
    buf_init(&d->out, 0);
    memcpy(d->hash, p->hash, 16);
    d->params = p->img->params;
    d->choice = p->img->choice;
    memcpy(d->vkey, p->img->vkey, sizeof d->vkey);
    d->vkey_len = p->img->vkey_len;
    d->start_seq = p->img->start_seq ? p->img->start_seq : store_seq(d->px->store);
    d->src_waiter.wake = src_wake;
    d->url = malloc(p->key.len + 1);
    if (!d->url || http_fields_copy(&d->req_hdrs, &p->req->hdrs)) {
        derive_unref(d);
        return NULL;
    }
    memcpy(d->url, p->key.data, p->key.len + 1);
    d->url_len = p->key.len;
    d->listed = true;
    d->next = d->pw->derives;
    if (d->next)
        d->next->prev = d;
    d->pw->derives = d;
    return d;
}

/* The stored source p found, read whole; false when it went away. */
static bool source_from_store(derive_t *d, const stored_t *s)
{
    object_meta_t m;
    if (object_meta_decode(s->meta, s->meta_len, &m) || !read_stored(d, &s->key, s->object_id))
        return false;
    d->src_status = m.status;
    d->src_entry = m.entry;
    d->src_variant = s->key.variant;
    d->src_stored = true;
    return buf_append(&d->src_block, m.block, m.block_len) == 0 &&
           buf_append(&d->src_cstatus, m.cstatus, m.cstatus_len) == 0;
}

void derive_start(preq_t *p, bool private_)
{
    uint8_t key[16];
    bool created;
    variant_fetch_key(p, key);
    fetch_t *vf = stream_join(p, private_ ? NULL : key, &created);
    if (!vf)
        return; /* joined a derivation under way (or answered) */
    derive_t *d = derive_new(p, vf);
    if (!d) {
        fetch_finish(vf, UPSTREAM_EIO, "out of memory");
        fetch_unpublish(vf);
        return;
    }
    fetch_set_request(vf, &p->req->hdrs, proxy_now()); /* collapsed waiters must match the source's Vary */
    if (p->img->src_usable && p->stored) {
        if (source_from_store(d, p->stored)) {
            got_source(d);
            return;
        }
        lookup_stored_free(p->stored); /* gone meanwhile: fetch it whole */
        p->stored = NULL;
        buf_reset(&d->src_block);
        buf_reset(&d->src_cstatus);
    }
    p->img->src_usable = false;
    bool src_created = true;
    if (private_) {
        d->sf = fetch_new_private(&d->src_waiter);
    } else {
        uint8_t sk[16];
        preq_fetch_key(p, sk);
        d->sf = fetch_join(d->px->fetches, sk, &d->src_waiter, &src_created);
    }
    if (!d->sf) {
        publish_error(d, 503, "no-memory", "out of memory\n");
        return;
    }
    d->src_collapsed = !src_created;
    if (src_created) /* a bypass rule's request: its source is not stored */
        job_start(p, d->sf, p->fwd && strcmp(p->fwd, "bypass") == 0 ? JOB_FORWARD : JOB_FILL, p->stored);
    else
        src_pump(d); /* the source may be well under way: catch up now */
}

void derive_close_all(proxy_worker_t *pw)
{
    while (pw->derives) {
        derive_t *d = pw->derives;
        d->closed = true;
        src_detach(d);
        if (!d->vf_done) {
            fetch_finish(d->vf, UPSTREAM_EIO, "node shutting down");
            fetch_unpublish(d->vf);
            d->vf_done = true;
        }
        derive_end(d); /* a queued transform or store put holds its own reference */
    }
}

/* --- set-up --- */

int derive_setup(proxy_t *px, char *err, size_t errlen)
{
    const config_t *cfg = px->cfg;
    bool any = false;
    for (size_t i = 0; i < cfg->nrules; i++)
        any = any || cfg->rules[i].image;
    if (!any)
        return 0;
    image_opts_default(&px->image_opts);
    px->image_opts.max_pixels = cfg->image_max_pixels;
    px->image_opts.max_bytes = cfg->image_max_size;
    px->image_opts.max_frames = (int)cfg->image_max_frames;
    px->image_opts.max_side = (int)cfg->image_max_side;
    int rc = image_init(&px->image_opts, err, errlen);
    if (rc)
        return rc;
    px->image_avif = image_avif_available();
    if (cfg->image_signing_key_file[0]) {
        /* Read once at start-up, under the same rules as the purge token. */
        rc = purge_token_load(cfg->image_signing_key_file, px->image_key, sizeof px->image_key, err, errlen);
        if (rc) {
            image_shutdown();
            return rc;
        }
        px->image_key_len = strlen(px->image_key);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = cfg->image_workers ? cfg->image_workers : cores > 0 ? (unsigned)cores : 1;
    rc = task_pool_new(&px->image_pool, threads, cfg->image_queue, "img");
    if (rc) {
        snprintf(err, errlen, "cannot start %u image threads", threads);
        image_shutdown();
        return rc;
    }
    return 0;
}

void derive_teardown(proxy_t *px)
{
    if (!px->image_pool)
        return;
    task_pool_free(px->image_pool);
    px->image_pool = NULL;
    image_shutdown();
}
