/* proxy_hit: answer a request from the store.
 *
 * Small bodies are written straight from the map inside one short read
 * transaction (uv_try_write takes them without a copy; whatever the socket
 * does not take is copied). Chunked bodies are read one chunk per
 * transaction as the socket drains, so a slow client never pins pages. */
#include "proxy_internal.h"

#include <string.h>

#include "log.h"
#include "object_meta.h"
#include "policy_vary.h"

static void stream_chunks(void *arg);

/* Status line, stored header block, Age, Via, Cache-Status, framing. */
static void send_head(preq_t *p, const object_meta_t *m, int64_t age, int64_t ttl, uint64_t len)
{
    http_conn_t *c = p->c;
    http_resp_start(c, m->status, NULL);
    http_resp_header_block(c, m->block, m->block_len);
    buf_t *h = http_resp_head(c);
    buf_printf(h, "Age: %lld\r\nVia: %s\r\n", (long long)age, p->pw->px->via);
    char params[64];
    snprintf(params, sizeof params, "; hit; ttl=%lld", (long long)ttl);
    preq_cache_status(p, h, m->cstatus, m->cstatus_len, params);
    http_resp_end_head(c, (int64_t)len);
}

bool hit_try(preq_t *p)
{
    store_reader_t *rd = p->pw->rd;
    store_obj_t obj;
    object_meta_t m;
    store_key_t k = { .variant = 0 };
    memcpy(k.hash, p->hash, 16);
    p->fwd = "uri-miss";
    if (p->pol.cc.flags & POLICY_CC_NO_CACHE) {
        p->fwd = "request"; /* the client asked for a response from upstream */
        return false;
    }
    if (store_read_begin(rd) != STORE_OK)
        return false;
    if (store_get(rd, &k, &obj) != STORE_OK || obj.url_len != p->key.len ||
        memcmp(obj.url, p->key.data, obj.url_len) != 0 || object_meta_decode(obj.meta, obj.meta_len, &m)) {
        store_read_end(rd);
        return false;
    }
    if (m.vary_len && !policy_vary_match(m.vary, m.vary_len, &p->req->hdrs)) {
        store_read_end(rd);
        p->fwd = "vary-miss";
        return false;
    }
    int64_t age, ttl;
    policy_verdict_t v = policy_entry_check(&m.entry, &p->pol, proxy_now(), &age, &ttl);
    if (v != POLICY_VERDICT_FRESH && v != POLICY_VERDICT_STALE_ACCEPTED) {
        store_read_end(rd);
        p->fwd = v == POLICY_VERDICT_REQUEST ? "request" : "stale";
        return false;
    }
    store_touch(rd, &k);
    http_conn_set_log_tag(p->c, "hit");
    send_head(p, &m, age, ttl, obj.body_len);
    if (p->req->is_head || obj.body_len == 0) {
        store_read_end(rd);
        preq_finish(p);
        return true;
    }
    if (obj.body) {
        /* Written (or copied) before the transaction ends. */
        int rc = http_resp_write(p->c, obj.body, obj.body_len, NULL, NULL);
        store_read_end(rd);
        if (rc == 0)
            preq_finish(p);
        return true;
    }
    p->object_id = obj.object_id;
    p->nchunks = obj.nchunks;
    p->chunk = 0;
    store_read_end(rd);
    stream_chunks(p);
    return true;
}

/* Write chunks while the socket keeps up; resume on drain. If the object
 * is replaced or evicted mid-way its old chunks are gone: the client gets
 * a short body against Content-Length and the connection is closed, which
 * it can tell from a complete response. */
static void stream_chunks(void *arg)
{
    preq_t *p = arg;
    store_reader_t *rd = p->pw->rd;
    preq_ref(p);
    while (p->c && p->chunk < p->nchunks && http_conn_pending(p->c) < HTTP_WRITE_HIGH_WATER) {
        const uint8_t *data;
        size_t n;
        if (store_read_begin(rd) != STORE_OK ||
            store_get_chunk(rd, p->object_id, p->chunk, &data, &n) != STORE_OK) {
            store_read_end(rd);
            log_info("object %llu changed while being sent; closing connection",
                     (unsigned long long)p->object_id);
            http_conn_t *c = p->c;
            preq_end(p);
            http_resp_abort(c);
            goto out;
        }
        int rc = http_resp_write(p->c, data, n, NULL, NULL);
        store_read_end(rd);
        if (rc)
            goto out; /* connection gone: the abort callback ended p */
        p->chunk++;
    }
    if (!p->c)
        goto out;
    if (p->chunk == p->nchunks)
        preq_finish(p);
    else
        http_conn_on_drain(p->c, stream_chunks, p);
out:
    preq_unref(p);
}
