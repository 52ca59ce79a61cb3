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
#include "derive_internal.h"

#include <errno.h>
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

void derive_ref(derive_t *d)
{
    atomic_fetch_add(&d->refs, 1);
}

void derive_unref(derive_t *d)
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
    proxy_conf_unref(d->conf);
    free(d);
}

/* The owner is done driving d. */
void derive_end(derive_t *d)
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

void src_detach(derive_t *d)
{
    if (!d->sf)
        return;
    fetch_detach(d->sf, &d->src_waiter);
    fetch_unref(d->sf);
    d->sf = NULL;
}

bool derive_copy_body(store_reader_t *rd, const store_obj_t *obj, buf_t *out)
{
    if (obj->body)
        return buf_append(out, obj->body, obj->body_len) == 0;
    size_t start = out->len;
    for (uint32_t i = 0; i < obj->nchunks; i++) {
        const uint8_t *c;
        size_t n;
        if (store_get_chunk(rd, obj->object_id, i, &c, &n) != STORE_OK || buf_append(out, c, n))
            return false;
    }
    return out->len - start == obj->body_len; /* every chunk of this version was there */
}

bool derive_read_stored(derive_t *d, const store_key_t *k, uint64_t object_id)
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
    ok = derive_copy_body(rd, &obj, &d->src);
    buf_reset(&d->tags);
    if (ok && obj.tags_len)
        ok = buf_append(&d->tags, obj.tags, obj.tags_len) == 0;
out:
    store_read_end(rd);
    return ok;
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
        d->src_upstream = ri->upstream;
        d->src_upstream_us = ri->upstream_us;
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
    d->src_upstream = ri->upstream;
    d->src_upstream_us = ri->upstream_us;
    d->src_entry = ri->entry;
    d->src_stored = ri->stored;
    d->src_variant = 0;
    buf_t fields, sk;
    buf_init(&fields, 64 * 1024);
    buf_init(&sk, 64 * 1024);
    int vk = policy_vary_fields_with(&fields, v->hdrs, d->conf->pass_keyed, d->conf->pass_keyed_len);
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
    derive_publish_error(d, timeout ? 504 : 502, timeout ? "upstream-timeout" : "upstream-error", msg);
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
                 !policy_vary_response_matches_with(v.hdrs, d->conf->pass_keyed, d->conf->pass_keyed_len, v.req_hdrs,
                                                    &d->req_hdrs))) {
                derive_go_private(d);
                return;
            }
            if (v.state == FETCH_FAILED) {
                src_failed(d, &v);
                return;
            }
            if (!src_head(d, &v)) {
                src_detach(d);
                derive_publish_error(d, 503, "no-memory", "out of memory\n");
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
                derive_publish_error(d, 503, "no-memory", "out of memory\n");
                return;
            }
        }
        if (d->too_large) {
            /* Answer now, without reading the rest: the source's fill
             * goes on for the cache without us. */
            buf_free(&d->src);
            src_detach(d);
            derive_got_source(d);
            return;
        }
        fetch_consumed(d->sf, &d->src_waiter, got);
        if (v.state == FETCH_FAILED) {
            src_failed(d, &v);
            return;
        }
        if (v.state == FETCH_DONE && d->src_waiter.off >= v.avail) {
            src_detach(d);
            if (d->revalidated && !derive_read_stored(d, &d->reval_key, d->reval_object_id)) {
                derive_publish_error(d, 503, "image-source-gone", "the source changed meanwhile: try again\n");
                return;
            }
            derive_got_source(d);
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
    d->conf = p->conf;
    proxy_conf_ref(d->conf);
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
    if (object_meta_decode(s->meta, s->meta_len, &m) || !derive_read_stored(d, &s->key, s->object_id))
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
            derive_got_source(d);
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
        derive_publish_error(d, 503, "no-memory", "out of memory\n");
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
    px->image_avif = image_avif_available(); /* the signing key is the generation's (proxy_conf.c) */
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

