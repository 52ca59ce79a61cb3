/* lookup: find the stored object for a request and decide what its
 * freshness allows: serve it, serve it stale while a background fetch
 * revalidates it, or go upstream (with its validators, and with it as the
 * answer of last resort under stale-if-error).
 *
 * A URL whose responses vary has an index record at variant 0 listing the
 * Vary field names; the request's secondary key over those names selects
 * the variant record. Every record carries its full URL and variants
 * their full secondary key, compared on each lookup: a hash collision
 * costs a miss, never a wrong response. */
#include "lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_vary.h"
#include "preq.h"
#include "serve.h"
#include "stream.h"

/* Get key's record and check it is this URL's; false otherwise. */
static bool get_record(preq_t *p, const store_key_t *k, store_obj_t *obj, object_meta_t *m)
{
    return store_get(p->pw->rd, k, obj) == STORE_OK && obj->url_len == p->key.len &&
           memcmp(obj->url, p->key.data, obj->url_len) == 0 && object_meta_decode(obj->meta, obj->meta_len, m) == 0;
}

void lookup_stored_free(stored_t *s)
{
    if (!s)
        return;
    free(s->meta);
    free(s);
}

stored_t *lookup_stored_dup(const stored_t *src)
{
    stored_t *s = calloc(1, sizeof *s);
    if (!s || !(s->meta = malloc(src->meta_len + 1))) {
        free(s);
        return NULL;
    }
    memcpy(s->meta, src->meta, src->meta_len);
    s->meta_len = src->meta_len;
    s->key = src->key;
    s->object_id = src->object_id;
    s->body_len = src->body_len;
    s->soft_purged = src->soft_purged;
    return s;
}

stored_t *lookup_stored_copy(const store_key_t *k, const store_obj_t *obj)
{
    const stored_t view = {
        .key = *k,
        .object_id = obj->object_id,
        .body_len = obj->body_len,
        .meta = (char *)obj->meta, /* only read by lookup_stored_dup */
        .meta_len = obj->meta_len,
        .soft_purged = obj->stale,
    };
    return lookup_stored_dup(&view);
}

bool lookup_find(preq_t *p, store_key_t *k, store_obj_t *obj, object_meta_t *m)
{
    buf_t sk;
    bool found = false;
    buf_init(&sk, 64 * 1024);
    memcpy(k->hash, p->hash, 16);
    k->variant = 0;
    p->fwd = "uri-miss";
    if (!get_record(p, k, obj, m))
        goto out;
    if (m->kind == OBJECT_META_INDEX) {
        store_touch(p->pw->rd, k); /* the index serves every variant: keep it with them */
        if (policy_vary_key_from_fields(&sk, m->vary, m->vary_len, &p->req->hdrs))
            goto out;
        p->variant = k->variant = policy_vary_id(sk.data, sk.len);
        p->fwd = "vary-miss";
        if (!get_record(p, k, obj, m) || m->kind != OBJECT_META_OBJECT || m->vary_len != sk.len ||
            memcmp(m->vary, sk.data, sk.len) != 0)
            goto out;
    } else if (m->vary_len) {
        goto out; /* an object at variant 0 never varies; a damaged record */
    }
    found = true;
out:
    buf_free(&sk);
    return found;
}

policy_verdict_t lookup_verdict(preq_t *p, const store_obj_t *obj, object_meta_t *m, int64_t *age, int64_t *ttl)
{
    int64_t now = proxy_now();
    if (obj->stale) {
        /* Soft-purged: stale from now on, whatever its freshness said. Its
         * stale-while-revalidate / stale-if-error windows start now, until
         * a revalidation started after the purge freshens it. */
        m->entry.freshness_lifetime = policy_current_age(m->entry.corrected_initial_age, m->entry.response_time, now);
    }
    return policy_entry_check(&m->entry, &p->pol, now, age, ttl);
}

lookup_result_t lookup_serve(preq_t *p)
{
    store_reader_t *rd = p->pw->rd;
    store_obj_t obj;
    object_meta_t m;
    store_key_t k;
    lookup_result_t res = LOOKUP_MISS;
    if (store_read_begin(rd) != STORE_OK) {
        p->fwd = "uri-miss";
        return LOOKUP_MISS;
    }
    if (!lookup_find(p, &k, &obj, &m))
        goto end;
    int64_t age, ttl;
    char params[96];
    policy_verdict_t v = lookup_verdict(p, &obj, &m, &age, &ttl);
    switch (v) {
    case POLICY_VERDICT_FRESH:
    case POLICY_VERDICT_STALE_ACCEPTED:
        store_touch(rd, &k);
        http_conn_set_log_tag(p->c, "hit");
        snprintf(params, sizeof params, "; hit; ttl=%lld", (long long)ttl);
        serve_stored(p, &obj, &m, params, age);
        return LOOKUP_SERVED; /* serve_stored ended the transaction */
    case POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK:
        store_touch(rd, &k);
        p->stored = lookup_stored_copy(&k, &obj);
        /* Start it first: answering ends the request (and its headers). */
        if (p->stored)
            stream_background(p);
        http_conn_set_log_tag(p->c, "stale");
        snprintf(params, sizeof params, "; hit; ttl=%lld; detail=stale-while-revalidate", (long long)ttl);
        serve_stored(p, &obj, &m, params, age);
        return LOOKUP_SERVED_STALE;
    case POLICY_VERDICT_REQUEST:
        p->fwd = "request";
        break;
    case POLICY_VERDICT_STALE_IF_ERROR_OK:
        p->stale_if_error = true;
        p->fwd = "stale";
        break;
    case POLICY_VERDICT_STALE:
        p->fwd = "stale";
        break;
    }
    /* Go upstream with the stored object's validators (and keep it for stale-if-error). */
    p->stored = lookup_stored_copy(&k, &obj);
    res = p->stored ? LOOKUP_REVALIDATE : LOOKUP_MISS;
end:
    store_read_end(rd);
    return res;
}
