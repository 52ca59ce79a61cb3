/* derive_out: what a derivation sends to its waiters (see
 * include/derive.h): an upstream error or a non-image source relayed as it
 * came, a generated error, a stored variant reused, or the transform's
 * result, published and stored next to its source. The transform itself
 * runs on a task_pool thread; everything else on the owner's loop. */
#include "derive_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_req.h"
#include "job.h"
#include "log.h"
#include "object_meta.h"
#include "proxy_state.h"
#include "task_pool.h"

/* --- publishing on the variant's fetch --- */

/* Publish a complete response on vf: block is what clients get; hblock
 * the fields collapsed waiters are checked against (its Vary: the
 * source's, without the Accept that fmt=auto adds, since the variant key
 * already holds the format Accept chose). shareable: other waiters may
 * have it (else they derive on their own); storing: it is being stored
 * (keep the fetch findable until the store has it). */
void derive_publish(derive_t *d, int status, const char *block, size_t blen, const char *hblock, size_t hlen,
                    const policy_entry_t *e, const char *detail, const void *body, size_t len, bool shareable,
                    bool storing)
{
    static const http_slice_t none = { "", 0 };
    resp_info_t *ri = resp_info_new((http_slice_t){ block, blen },
                                    (http_slice_t){ d->src_cstatus.data, d->src_cstatus.len }, 0, none);
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
    ri->upstream = d->src_upstream;
    ri->upstream_us = d->src_upstream_us;
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
void derive_publish_error(derive_t *d, int status, const char *detail, const char *msg)
{
    char block[160];
    int n = snprintf(block, sizeof block, "Content-Type: text/plain\r\nCache-Control: no-store\r\n%s",
                     status == 503 ? "Retry-After: 1\r\n" : "");
    policy_entry_t e = { .response_time = proxy_now() };
    derive_publish(d, status, block, (size_t)n, "", 0, &e, detail, msg, strlen(msg), true, false);
    log_info("image %.*s [%s]: %d %s", (int)d->url_len, d->url, d->vkey, status, detail);
    derive_end(d);
}

/* The source is no image we transform, or an upstream error: it goes to
 * the waiters as it came (not stored as a variant). */
static void relay_source(derive_t *d, const char *detail)
{
    if (d->too_large && d->src_status == 200) {
        derive_publish_error(d, 422, detail, "the source is not an image, and too large to pass on\n");
        return;
    }
    if (d->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "upstream answered %d\n", d->src_status);
        derive_publish_error(d, d->src_status >= 400 ? d->src_status : 502, detail, msg);
        return;
    }
    derive_publish(d, d->src_status, d->src_block.data, d->src_block.len, d->src_block.data, d->src_block.len,
            &d->src_entry, detail, d->src.data, d->src.len, true, false);
    derive_end(d);
}

/* Every waiter derives on its own. */
void derive_go_private(derive_t *d)
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
        derive_publish_error(d, 503, "no-memory", "out of memory\n");
        return;
    }
    bool storing = made && d->src_stored;
    derive_publish(d, 200, block.data, block.len, hblock.data, hblock.len, &d->src_entry,
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
    metrics_inc(d->pw->ms, METRIC_IMAGE_TRANSFORMS, d->err ? METRIC_IMAGE_FAILED : METRIC_IMAGE_DONE, 1);
    metrics_observe(d->pw->ms, METRIC_IMAGE_DURATION, 0, (double)d->transform_us / 1e6);
    if (d->err) {
        char msg[200];
        snprintf(msg, sizeof msg, "cannot transform the image: %s\n", image_strerror(d->err));
        derive_publish_error(d, d->err == -ENOMEM ? 503 : 422, "image-error", msg);
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
    uint64_t t0 = uv_hrtime();
    d->err = image_transform(d->src.data, d->src.len, &d->px->image_opts, &d->rq, &out);
    if (!d->err) {
        if (buf_append(&d->out, out.data, out.len))
            d->err = -ENOMEM;
        d->ctype = out.content_type;
    }
    image_out_free(&out);
    d->transform_us = (uv_hrtime() - t0) / 1000u;
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
        http_slice_t ct = { "", 0 };
        object_meta_field(m.block, m.block_len, "content-type", &ct);
        d->ctype = policy_image_content_type(policy_image_fmt_from_content_type(ct.p, ct.len));
        ok = d->ctype && derive_copy_body(rd, &obj, &d->out);
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
void derive_got_source(derive_t *d)
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
        derive_publish_error(d, 422, "image-too-large", "the source image is over image_max_size\n");
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
        if (rc == -EBUSY)
            metrics_inc(d->pw->ms, METRIC_IMAGE_TRANSFORMS, METRIC_IMAGE_REFUSED, 1);
        derive_unref(d);
        derive_publish_error(d, 503, "image-queue-full",
                      rc == -EBUSY ? "too many images are being resized: try again shortly\n" : "shutting down\n");
    }
}

