/* serve: answer a request from a stored object.
 *
 * The answer is a plan of segments (literal text and byte ranges of the
 * stored body) worked out inside the read transaction that found the
 * object: 200 with the whole body, 304 to a conditional request, 206 with
 * one range or multipart/byteranges, 416. An inline body is written
 * straight from the map before the transaction ends (uv_try_write takes it
 * without a copy; the socket's leftovers are copied). A chunked body is
 * then read one chunk per short transaction as the socket drains, so a
 * slow client never pins pages; if the object is replaced or evicted
 * mid-way its old chunks are gone and the connection is closed, which the
 * client can tell from a complete response (Content-Length). */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "policy_cond.h"
#include "policy_range.h"
#include "preq.h"

#define PLAN_SEGS (2 * POLICY_RANGE_MAX + 2)

typedef struct seg {
    bool text;
    size_t off, len;           /* text: bytes [off, off+len) of plan->text */
    int64_t from, to;          /* body: bytes [from, to] inclusive */
} seg_t;

struct serve_plan {
    uint64_t object_id;
    seg_t segs[PLAN_SEGS];
    unsigned nseg, cur;
    int64_t pos;               /* next body byte of segs[cur] */
    buf_t text;
};

void serve_plan_free(struct serve_plan *plan)
{
    if (!plan)
        return;
    buf_free(&plan->text);
    free(plan);
}

enum { BLOCK_ALL, BLOCK_NO_CTYPE, BLOCK_304 };

/* Copy the header lines of block to the head, leaving out what this
 * answer must not carry. */
static void put_block(buf_t *h, const char *block, size_t len, int mode)
{
    if (mode == BLOCK_ALL) {
        buf_append(h, block, len);
        return;
    }
    size_t i = 0;
    while (i < len) {
        const char *eol = memchr(block + i, '\n', len - i);
        size_t end = eol ? (size_t)(eol - block) + 1 : len;
        const char *colon = memchr(block + i, ':', end - i);
        http_slice_t name = { block + i, colon ? (size_t)(colon - block) - i : 0 };
        bool keep = mode == BLOCK_304 ? policy_cond_304_field(name.p, name.len) : !http_name_eq(name, "content-type");
        if (keep)
            buf_append(h, block + i, end - i);
        i = end;
    }
}

static void put_head(preq_t *p, int status, const object_meta_t *m, int mode, const char *params, int64_t age)
{
    http_conn_t *c = p->c;
    preq_set_state(p, PREQ_DELIVER);
    http_resp_start(c, status, NULL);
    buf_t *h = http_resp_head(c);
    put_block(h, m->block, m->block_len, mode);
    buf_printf(h, "Age: %lld\r\nVia: %s\r\n", (long long)(age < 0 ? 0 : age), p->pw->px->via);
    preq_cache_status(p, h, m->cstatus, m->cstatus_len, params);
}

static void add_text(struct serve_plan *plan, const char *s, size_t n)
{
    seg_t *g = &plan->segs[plan->nseg++];
    g->text = true;
    g->off = plan->text.len;
    g->len = n;
    buf_append(&plan->text, s, n);
}

static void add_range(struct serve_plan *plan, int64_t from, int64_t to)
{
    seg_t *g = &plan->segs[plan->nseg++];
    g->text = false;
    g->from = from;
    g->to = to;
}

/* The head and the plan of the answer; returns the body length. */
static int64_t plan_answer(preq_t *p, const object_meta_t *m, uint64_t body_len, const char *params, int64_t age,
                           struct serve_plan *plan)
{
    http_req_t *r = p->req;
    int64_t len = (int64_t)body_len;
    policy_range_set_t set;
    policy_range_result_t rr = POLICY_RANGE_NONE;
    /* Most hits carry neither conditionals nor Range: skip the work. */
    if (p->pol.flags & (POLICY_REQ_IF_NONE_MATCH | POLICY_REQ_IF_MODIFIED_SINCE | POLICY_REQ_RANGE)) {
        char etag[256];
        http_slice_t ev;
        const char *etagp = NULL;
        if (object_meta_field(m->block, m->block_len, "etag", &ev) && ev.len < sizeof etag) {
            memcpy(etag, ev.p, ev.len);
            etag[ev.len] = '\0';
            etagp = etag;
        }
        int64_t lm = m->entry.flags & POLICY_ENTRY_LAST_MODIFIED ? m->entry.last_modified : -1;
        if (m->status >= 200 && m->status < 300 &&
            policy_cond_eval(&r->hdrs, r->method, etagp, lm, m->entry.date) == POLICY_COND_NOT_MODIFIED) {
            put_head(p, 304, m, BLOCK_304, params, age);
            return -1;
        }
        if (m->status == 200)
            rr = policy_range_request(&r->hdrs, r->method, etagp, lm, m->entry.date, len, &set);
    }
    char cr[POLICY_CONTENT_RANGE_SIZE];
    if (rr == POLICY_RANGE_UNSATISFIABLE) {
        put_head(p, 416, m, BLOCK_NO_CTYPE, params, age);
        policy_range_content_range(cr, NULL, len);
        http_resp_header(p->c, "Content-Range", cr, strlen(cr));
        return 0;
    }
    if (rr == POLICY_RANGE_OK && set.n == 1) {
        put_head(p, 206, m, BLOCK_ALL, params, age);
        policy_range_content_range(cr, &set.r[0], len);
        http_resp_header(p->c, "Content-Range", cr, strlen(cr));
        add_range(plan, set.r[0].start, set.r[0].end);
        return set.r[0].end - set.r[0].start + 1;
    }
    if (rr == POLICY_RANGE_OK) {
        char boundary[36], ctype[256] = "";
        uint64_t now = worker_now_us();
        policy_multipart_boundary(boundary, hash_sip64(p->hash, &now, sizeof now), now ^ (uint64_t)(uintptr_t)p);
        http_slice_t ct;
        if (object_meta_field(m->block, m->block_len, "content-type", &ct) && ct.len < sizeof ctype) {
            memcpy(ctype, ct.p, ct.len);
            ctype[ct.len] = '\0';
        }
        int64_t total;
        buf_t v;
        buf_init(&v, 0);
        if (policy_multipart_length(&set, ctype, boundary, &total) == 0 && policy_multipart_content_type(&v, boundary) == 0) {
            put_head(p, 206, m, BLOCK_NO_CTYPE, params, age);
            http_resp_header(p->c, "Content-Type", v.data, v.len);
            for (unsigned i = 0; i < set.n; i++) {
                buf_t part;
                buf_init(&part, 0);
                policy_multipart_part_header(&part, &set, i, ctype, boundary);
                add_text(plan, part.data, part.len);
                buf_free(&part);
                add_range(plan, set.r[i].start, set.r[i].end);
            }
            buf_reset(&v);
            policy_multipart_close(&v, boundary);
            add_text(plan, v.data, v.len);
            buf_free(&v);
            return total;
        }
        buf_free(&v); /* not expressible as multipart (odd Content-Type): send it whole */
    }
    put_head(p, m->status, m, BLOCK_ALL, params, age);
    if (len > 0)
        add_range(plan, 0, len - 1);
    return len;
}

static void stream_plan(void *arg);

void serve_stored(preq_t *p, const store_obj_t *obj, const object_meta_t *m, const char *params, int64_t age)
{
    store_reader_t *rd = p->pw->rd;
    /* On the stack: a hit with an inline body never needs it afterwards. */
    struct serve_plan local;
    local.nseg = local.cur = 0;
    buf_init(&local.text, 0);
    int64_t len = plan_answer(p, m, obj->body_len, params, age, &local);
    http_resp_end_head(p->c, len);
    if (len <= 0 || p->req->is_head) {
        store_read_end(rd);
        buf_free(&local.text);
        preq_finish(p);
        return;
    }
    if (obj->body) {
        /* Inline: written (or copied) before the transaction ends. */
        int rc = 0;
        for (unsigned i = 0; i < local.nseg && rc == 0; i++) {
            const seg_t *g = &local.segs[i];
            if (g->text)
                rc = http_resp_write(p->c, local.text.data + g->off, g->len, NULL, NULL);
            else
                rc = http_resp_write(p->c, obj->body + g->from, (size_t)(g->to - g->from + 1), NULL, NULL);
        }
        store_read_end(rd);
        buf_free(&local.text);
        if (rc == 0)
            preq_finish(p);
        return;
    }
    struct serve_plan *plan = malloc(sizeof *plan);
    if (!plan) {
        store_read_end(rd);
        buf_free(&local.text);
        http_conn_t *c = p->c;
        preq_end(p);
        http_resp_abort(c); /* the head is out: all we can do is close */
        return;
    }
    *plan = local; /* takes over the text buffer */
    plan->object_id = obj->object_id;
    plan->pos = plan->segs[0].text ? 0 : plan->segs[0].from;
    store_read_end(rd);
    p->plan = plan;
    stream_plan(p);
}

bool serve_stored_copy(preq_t *p, const stored_t *s, const object_meta_t *m, const char *params, int64_t age)
{
    store_reader_t *rd = p->pw->rd;
    store_obj_t obj;
    if (store_read_begin(rd) != STORE_OK)
        return false;
    if (store_get(rd, &s->key, &obj) != STORE_OK || obj.object_id != s->object_id) {
        store_read_end(rd);
        return false;
    }
    serve_stored(p, &obj, m, params, age);
    return true;
}

/* Write the plan's segments while the socket keeps up; resume on drain. */
static void stream_plan(void *arg)
{
    preq_t *p = arg;
    struct serve_plan *plan = p->plan;
    store_reader_t *rd = p->pw->rd;
    preq_ref(p);
    while (p->c && plan->cur < plan->nseg && http_conn_pending(p->c) < HTTP_WRITE_HIGH_WATER) {
        seg_t *g = &plan->segs[plan->cur];
        int rc;
        if (g->text) {
            rc = http_resp_write(p->c, plan->text.data + g->off, g->len, NULL, NULL);
        } else {
            const uint8_t *data;
            size_t n;
            uint32_t idx = (uint32_t)(plan->pos / STORE_CHUNK_SIZE);
            size_t in = (size_t)(plan->pos % STORE_CHUNK_SIZE);
            if (store_read_begin(rd) != STORE_OK || store_get_chunk(rd, plan->object_id, idx, &data, &n) != STORE_OK ||
                n <= in) {
                store_read_end(rd);
                log_info("object %llu changed while being sent; closing connection",
                         (unsigned long long)plan->object_id);
                http_conn_t *c = p->c;
                preq_end(p);
                http_resp_abort(c);
                goto out;
            }
            size_t take = n - in;
            if ((int64_t)take > g->to - plan->pos + 1)
                take = (size_t)(g->to - plan->pos + 1);
            rc = http_resp_write(p->c, data + in, take, NULL, NULL);
            store_read_end(rd);
            plan->pos += (int64_t)take;
            if (plan->pos <= g->to) {
                if (rc)
                    goto out;
                continue;
            }
        }
        if (rc)
            goto out; /* connection gone: the abort callback ended p */
        if (++plan->cur < plan->nseg && !plan->segs[plan->cur].text)
            plan->pos = plan->segs[plan->cur].from;
    }
    if (!p->c)
        goto out;
    if (plan->cur == plan->nseg)
        preq_finish(p);
    else
        http_conn_on_drain(p->c, stream_plan, p);
out:
    preq_unref(p);
}
