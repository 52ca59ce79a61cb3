/* job_store: the storing side of a fetch job: what of a response head
 * clients see and what is kept (proxy rules applied), the metadata of the
 * stored object, Vary variants side by side, the header update a 304
 * makes (RFC 9111 3.2, 4.3.4), and invalidation after unsafe methods
 * (RFC 9111 4.4).
 *
 * Fetches stay findable in the collapsing table until their store
 * operation commits (so no request in that window fetches again); the
 * store's completion runs on its writer thread and is posted back to the
 * fetch's owner to unpublish it. */
#include "job_store.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "object_meta.h"
#include "policy_date.h"
#include "policy_key.h"
#include "policy_rules.h"
#include "policy_tags.h"
#include "policy_update.h"
#include "policy_vary.h"

/* Fields a node keeps for its own decisions but does not pass on. */
static bool hidden_field(const proxy_conf_t *pc, http_slice_t n)
{
    return http_name_eq(n, "surrogate-control") ||
           (http_name_eq(n, "cdn-cache-control") && !pc->cfg.forward_cdn_cache_control) ||
           (policy_tags_field(n) && !pc->cfg.forward_surrogate_keys);
}

/* Split fields h into the client block and the hidden block: no
 * hop-by-hop fields, no framing (rebuilt per response), no Age
 * (recomputed), Cache-Status apart (nodes append to it). A stored response
 * also loses what the store must not keep (Set-Cookie, private="..."). */
static void split_fields(const proxy_conf_t *pc, const http_fields_t *h, const policy_resp_t *r, bool stored, buf_t *block,
                         buf_t *hidden, buf_t *own, http_slice_t *cs)
{
    for (size_t i = 0; i < h->n; i++) {
        http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
        if (policy_hop_by_hop(n.p, n.len) || policy_connection_listed(h, n.p, n.len) ||
            http_name_eq(n, "content-length") || http_name_eq(n, "age"))
            continue;
        if (http_name_eq(n, "cache-status")) {
            *cs = v;
            continue;
        }
        buf_t *to = hidden_field(pc, n) ? hidden : block;
        if (stored && !policy_field_storable(r, h, n.p, n.len))
            to = own; /* not shared: only the client that asked gets it */
        if (!to || (to == hidden && !stored))
            continue; /* nobody will merge a 304 into it */
        buf_append(to, n.p, n.len);
        buf_append(to, ": ", 2);
        buf_append(to, v.p, v.len);
        buf_append(to, "\r\n", 2);
    }
}

/* block | cstatus | meta (meta_len bytes, filled by the caller) | own */
resp_info_t *resp_info_new(http_slice_t block, http_slice_t cs, size_t meta_len, http_slice_t own)
{
    resp_info_t *ri = calloc(1, sizeof *ri + block.len + cs.len + meta_len + own.len);
    if (!ri)
        return NULL;
    ri->block_len = block.len;
    ri->cstatus_len = cs.len;
    ri->meta_len = meta_len;
    ri->own_len = own.len;
    if (block.len)
        memcpy(ri->data, block.p, block.len);
    if (cs.len)
        memcpy(ri->data + block.len, cs.p, cs.len);
    if (own.len)
        memcpy(ri->data + block.len + cs.len + meta_len, own.p, own.len);
    return ri;
}

/* The metadata of a stored object. Returns 0 or a buf error. */
static int encode_object(buf_t *out, int status, const policy_entry_t *e, const buf_t *block, const buf_t *hidden,
                         http_slice_t cs, http_slice_t vary)
{
    object_meta_t m = {
        .kind = OBJECT_META_OBJECT,
        .status = status,
        .entry = *e,
        .block = block->data ? block->data : "",
        .block_len = block->len,
        .hidden = hidden->data ? hidden->data : "",
        .hidden_len = hidden->len,
        .cstatus = cs.p,
        .cstatus_len = cs.len,
        .vary = vary.p ? vary.p : "",
        .vary_len = vary.len,
    };
    return object_meta_encode(out, &m);
}

resp_info_t *job_store_plan(fjob_t *j, int status, const http_fields_t *hdrs, int64_t cl, int64_t now)
{
    const proxy_t *px = j->px;
    const proxy_conf_t *pc = j->conf;
    policy_resp_t r;
    policy_resp_parse(&r, status, hdrs, j->popts);
    const char *why = NULL;
    bool storable = j->kind == JOB_FILL && policy_rule_storable(j->rule, &j->pol, &r, j->popts, &why);
    if (storable && j->validate && status >= 500) {
        /* An error answering a revalidation never replaces the good object
         * (it may yet be served under stale-if-error). */
        storable = false;
        why = "upstream-error";
    }
    if (storable && cl >= 0 && (uint64_t)cl > pc->cfg.max_object_size) {
        storable = false;
        why = "too-large";
    }
    buf_t skey, block, hidden, own;
    buf_init(&skey, 64 * 1024);
    buf_init(&block, 0);
    buf_init(&hidden, 0);
    buf_init(&own, 0);
    buf_reset(&j->vary_fields);
    j->variant = 0;
    if (storable) {
        int vk = policy_vary_fields_with(&j->vary_fields, hdrs, pc->pass_keyed, pc->pass_keyed_len);
        if (vk == POLICY_VARY_KEY && policy_vary_key_from_fields(&skey, j->vary_fields.data, j->vary_fields.len,
                                                                 &j->req_hdrs) == 0) {
            j->variant = policy_vary_id(skey.data, skey.len);
        } else if (vk != POLICY_VARY_NONE) {
            storable = false;
            why = vk == POLICY_VARY_STAR ? "vary-star" : "vary-too-large";
        }
    }
    policy_entry_t e;
    policy_entry_init(&e, &r, j->popts, j->request_time, now);
    policy_rule_entry(j->rule, &r, &e);
    if (storable && e.freshness_lifetime <= 0 && !(e.flags & (POLICY_ENTRY_ETAG | POLICY_ENTRY_LAST_MODIFIED)) &&
        e.stale_while_revalidate < 0 && e.stale_if_error < 0) {
        /* Stale on arrival and nothing to revalidate it with: every later
         * request would fetch it whole anyway, so don't spend the space. */
        storable = false;
        why = "no-freshness";
    }
    http_slice_t cs = { "", 0 };
    split_fields(pc, hdrs, &r, storable, &block, &hidden, &own, &cs);
    bool has_date = false;
    http_slice_t d;
    has_date = http_fields_get(hdrs, "date", &d);
    if (!has_date) {
        char ds[30];
        policy_date_format(now, ds);
        buf_printf(&block, "Date: %s\r\n", ds);
    }
    resp_info_t *ri = resp_info_new((http_slice_t){ block.data, block.len }, cs, 0, (http_slice_t){ own.data, own.len });
    if (ri) {
        ri->entry = e;
        ri->stored = storable;
        ri->detail = why;
    }
    buf_reset(&j->meta);
    buf_reset(&j->tags);
    if (ri && ri->stored &&
        (encode_object(&j->meta, status, &e, &block, &hidden, cs, (http_slice_t){ skey.data, skey.len }) ||
         policy_tags_collect(&j->tags, hdrs, px->cfg->max_tags, px->cfg->max_tag_bytes, NULL)))
        ri->stored = false;
    buf_free(&skey);
    buf_free(&block);
    buf_free(&hidden);
    buf_free(&own);
    return ri;
}

static void unpublish_on_owner(void *arg)
{
    fjob_t *j = arg;
    fetch_unpublish(j->f);
    job_unref(j);
}

/* Writer thread: the object (or its new headers) is committed or failed.
 * Requests that came in meanwhile joined the fetch; from now on they find
 * the object. */
static void on_store_done(void *ctx, int status)
{
    fjob_t *j = ctx;
    if (status == STORE_PURGED)
        log_info("%.*s was purged while it was being fetched: not stored", (int)j->url_len, j->url);
    else if (status != STORE_OK && status != STORE_NOTFOUND)
        log_warn("storing %.*s failed", (int)j->url_len, j->url);
    if (worker_post(j->w, unpublish_on_owner, j)) {
        fetch_unpublish(j->f); /* owner gone: finish here (no loop handles involved) */
        job_unref(j);
    }
}

static void store_body(void *ctx, uint64_t off, void *dst, size_t len)
{
    fjob_t *j = ctx;
    fetch_copy_body(j->f, off, dst, len);
}

bool job_store_commit(fjob_t *j)
{
    store_t *st = j->px->store;
    store_put_t sp = {
        .url = j->url,
        .url_len = j->url_len,
        .body_len = j->body_len,
        .body = store_body,
        .ctx = j,
        .start_seq = j->start_seq, /* a purge since the fetch started keeps it out */
    };
    memcpy(sp.key.hash, j->hash, 16);
    if (j->variant) {
        /* The URL's index (variant 0) names the fields its variants are keyed by. */
        buf_t idx;
        buf_init(&idx, 0);
        object_meta_t m = { .kind = OBJECT_META_INDEX, .vary = j->vary_fields.data, .vary_len = j->vary_fields.len };
        m.entry.version = POLICY_ENTRY_VERSION; /* an index has no freshness of its own */
        m.block = m.hidden = m.cstatus = "";
        store_put_t ip = sp;
        ip.key.variant = 0;
        ip.body_len = 0;
        ip.body = NULL;
        ip.ctx = NULL;
        if (object_meta_encode(&idx, &m) == 0) {
            ip.meta = idx.data;
            ip.meta_len = idx.len;
            store_put(st, &ip); /* copied at once */
        }
        buf_free(&idx);
    }
    sp.key.variant = j->variant;
    sp.meta = j->meta.data;
    sp.meta_len = j->meta.len;
    sp.done = on_store_done;
    sp.tags = j->tags.data;
    sp.tags_len = j->tags.len;
    return store_put(st, &sp) == STORE_OK; /* our reference passes to the operation */
}

job_store_304_t job_store_revalidated(fjob_t *j, const http_fields_t *hdrs, int64_t now)
{
    const proxy_t *px = j->px;
    const proxy_conf_t *pc = j->conf;
    object_meta_t sm;
    http_fields_t sf, merged;
    buf_t block, hidden, meta;
    job_store_304_t rc = JOB_STORE_304_FAILED;
    http_fields_init(&sf, 0);
    http_fields_init(&merged, 0);
    buf_init(&block, 0);
    buf_init(&hidden, 0);
    buf_init(&meta, 0);
    if (object_meta_decode(j->validate->meta, j->validate->meta_len, &sm) ||
        object_meta_fields(&sf, sm.block, sm.block_len) || object_meta_fields(&sf, sm.hidden, sm.hidden_len))
        goto out;
    if (!policy_304_matches(&sf, hdrs, 1)) {
        rc = JOB_STORE_304_FOREIGN; /* not about our object: fetch it whole once this ends */
        goto out;
    }
    if (policy_update_fields(&merged, &sf, hdrs))
        goto out;
    policy_resp_t r;
    policy_resp_parse(&r, sm.status, &merged, j->popts);
    const char *why = NULL;
    bool storable = policy_rule_storable(j->rule, &j->pol, &r, j->popts, &why);
    policy_entry_t e;
    policy_entry_init(&e, &r, j->popts, j->request_time, now);
    policy_rule_entry(j->rule, &r, &e);
    http_slice_t cs = { sm.cstatus, sm.cstatus_len }, newcs;
    if (http_fields_get(hdrs, "cache-status", &newcs))
        cs = newcs;
    http_slice_t ignored;
    split_fields(pc, &merged, &r, true, &block, &hidden, NULL, &ignored);
    if (encode_object(&meta, sm.status, &e, &block, &hidden, cs, (http_slice_t){ sm.vary, sm.vary_len }))
        goto out;
    static const http_slice_t none = { "", 0 };
    resp_info_t *ri = resp_info_new(none, none, meta.len, none);
    if (!ri)
        goto out;
    ri->entry = e;
    ri->revalidated = true;
    ri->stored = storable;
    ri->detail = why;
    ri->key = j->validate->key;
    ri->object_id = j->validate->object_id;
    memcpy(ri->data, meta.data, meta.len);
    if (storable) {
        job_ref(j);
        if (store_update_meta_seq(px->store, &j->validate->key, j->validate->object_id, j->start_seq, meta.data,
                                  meta.len, on_store_done, j) != STORE_OK) {
            job_unref(j);
            rc = JOB_STORE_304_ONLY_HERE; /* nothing will unpublish the fetch but its end */
        }
    } else {
        /* Validated for these waiters, but the new headers forbid keeping it. */
        store_delete(px->store, &j->validate->key, NULL, NULL);
        rc = JOB_STORE_304_ONLY_HERE;
    }
    http_fields_t copy;
    http_fields_init(&copy, 0);
    http_fields_copy(&copy, hdrs);
    job_publish(j, 304, &copy, 0, now, ri);
    http_fields_free(&copy);
    if (rc != JOB_STORE_304_ONLY_HERE)
        rc = JOB_STORE_304_UPDATED;
out:
    http_fields_free(&sf);
    http_fields_free(&merged);
    buf_free(&block);
    buf_free(&hidden);
    buf_free(&meta);
    return rc;
}

/* The key (URL hash) of a Location / Content-Location value, if it names
 * a resource of the request's origin (RFC 9111 4.4: same host only). */
static bool same_origin_hash(const fjob_t *j, http_slice_t v, uint8_t out[16])
{
    v = http_trim(v);
    if (!v.len || v.len > 8192)
        return false;
    http_slice_t host = { "", 0 };
    http_fields_get(&j->req_hdrs, "host", &host);
    buf_t target, key;
    buf_init(&target, 0);
    buf_init(&key, 16 * 1024);
    bool ok = false;
    if (v.p[0] == '/' || memchr(v.p, ':', v.len)) {
        buf_append(&target, v.p, v.len);
    } else {
        /* A relative reference: resolve against the request's directory. */
        const char *path = j->url + 7; /* after "http://" */
        const char *slash = strchr(path, '/');
        const char *q = slash ? strchr(slash, '?') : NULL;
        size_t plen = slash ? (q ? (size_t)(q - slash) : strlen(slash)) : 0;
        while (plen && slash[plen - 1] != '/')
            plen--;
        buf_append(&target, slash ? slash : "/", slash ? plen : 1);
        buf_append(&target, v.p, v.len);
    }
    if (target.len && policy_cache_key(&key, "http", host.p, host.len, target.data, target.len) == 0) {
        /* Same scheme and authority as the request's own key. */
        const char *a = strchr(j->url + 7, '/'), *b = strchr(key.data + 7, '/');
        size_t al = a ? (size_t)(a - j->url) : j->url_len, bl = b ? (size_t)(b - key.data) : key.len;
        if (al == bl && memcmp(j->url, key.data, al) == 0) {
            hash_cache_key(key.data, key.len, out);
            ok = true;
        }
    }
    buf_free(&target);
    buf_free(&key);
    return ok;
}

bool job_store_invalidate(fjob_t *j, const http_fields_t *hdrs)
{
    uint8_t hashes[3][16];
    int n = 0;
    memcpy(hashes[n++], j->hash, 16);
    static const char *const names[] = { "location", "content-location" };
    for (int i = 0; i < 2; i++) {
        http_slice_t v;
        if (http_fields_get(hdrs, names[i], &v) && same_origin_hash(j, v, hashes[n]) &&
            memcmp(hashes[n], j->hash, 16) != 0)
            n++;
    }
    /* The writer applies them in order: the last one's completion means all committed. */
    for (int i = 0; i < n - 1; i++)
        if (store_delete_url(j->px->store, hashes[i], NULL, NULL) != STORE_OK)
            return false;
    return store_delete_url(j->px->store, hashes[n - 1], job_held_release_cb, j) == STORE_OK;
}
