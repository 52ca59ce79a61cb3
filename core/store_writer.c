/* store_writer: the one thread that writes to the cache.
 *
 * Any thread queues operations (store_put, store_delete*, touches, sync
 * barriers); the writer gathers them for up to batch_ms, applies them in
 * one write transaction and commits, then runs each done callback. One
 * fsync (at most) covers the whole batch, and a reader never sees part of
 * an object: its record, chunks and LRU entries commit together.
 *
 * Staying writable when the cache is full, in three steps:
 * 1. Before a batch whose puts would take the accounted bytes past the
 *    high-water mark (80% of the map by default), evict in transactions of
 *    its own down to the low-water mark (5% of the map lower) minus what
 *    the batch adds. Pages freed by a txn only serve later txns, which is
 *    why eviction cannot share the batch's txn. The 20% left above the
 *    mark absorbs copy-on-write pages, LMDB's freelist, pages pinned by
 *    readers and estimate error.
 * 2. If the commit still fails with MDB_MAP_FULL (a reader pinned old
 *    pages, or the estimate was low): abort, evict a further 20% of the
 *    map, retry the batch once.
 * 3. If that fails too, apply the operations one per transaction, so only
 *    those that cannot fit fail (done gets STORE_ERROR, logged).
 * An object whose accounted size exceeds object_max (a quarter of the map,
 * at most half the high-water mark) is refused before any transaction.
 *
 * Purge operations run in transactions of their own within a batch (a run
 * of consecutive purges shares one): the writer records a purge in memory
 * (store_purge.c) only once it is committed, and a put queued after it
 * must be checked against it. Between batches the writer runs one slice of
 * the purge work left (a tag walk or the ban sweep), so a long purge and
 * the fills queued behind it take turns. */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

/* Operations per batch at most, whatever their size (touch lists, deletes). */
#define BATCH_MAX_OPS 4096

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} sync_wait_t;

int store_enqueue(store_t *s, store_op_t *op)
{
    int rc = STORE_OK;
    op->next = NULL;
    if (!op->failed)
        op->status = STORE_ERROR; /* until its transaction commits */
    pthread_mutex_lock(&s->q_mu);
    if (s->closing) {
        rc = STORE_CLOSED;
        goto out;
    }
    *s->q_tail = op;
    s->q_tail = &op->next;
    s->q_len++;
    if (op->kind == STORE_OP_PUT && !op->failed)
        s->q_cost += op->cost;
    if (op->kind == STORE_OP_SYNC)
        s->q_barriers++;
    pthread_cond_signal(&s->q_cv);
out:
    pthread_mutex_unlock(&s->q_mu);
    return rc;
}

static uint64_t op_cost(const store_op_t *op)
{
    return op->kind == STORE_OP_PUT && !op->failed ? op->cost : 0;
}

/* Queue op, or free it when the store refuses (closing). */
static int enqueue_or_free(store_t *s, store_op_t *op)
{
    int rc = store_enqueue(s, op);
    if (rc != STORE_OK)
        free(op);
    return rc;
}

int store_put(store_t *s, const store_put_t *p)
{
    size_t extra = 0, tags_cap = 0;
    bool bad = p->url_len > STORE_META_MAX || p->meta_len > STORE_META_MAX ||
               p->url_len + p->meta_len > STORE_META_MAX || (p->url_len && !p->url) ||
               (p->meta_len && !p->meta) || (p->body_len && !p->body) || (p->tags_len && !p->tags);
    if (!bad) {
        /* Normalised tags are no longer than either bound. */
        tags_cap = (size_t)s->max_tags * (s->max_tag_bytes + 1);
        tags_cap = p->tags_len < tags_cap ? p->tags_len : tags_cap;
        extra = p->url_len + p->meta_len + tags_cap + 1;
    }
    store_op_t *op = calloc(1, sizeof *op + extra);
    if (!op)
        return STORE_ERROR;
    op->kind = STORE_OP_PUT;
    store_key_encode(&p->key, op->key);
    op->done = p->done;
    op->ctx = p->ctx;
    op->body = p->body;
    op->body_len = p->body_len;
    op->start_seq = p->start_seq;
    if (bad) {
        log_warn("store: put refused: url+meta of %zu bytes or a missing buffer", p->url_len + p->meta_len);
        op->failed = true;
        op->status = STORE_ERROR;
    } else {
        op->url_len = p->url_len;
        op->meta_len = p->meta_len;
        if (p->url_len)
            memcpy(op->data, p->url, p->url_len);
        if (p->meta_len)
            memcpy(op->data + p->url_len, p->meta, p->meta_len);
        char *tags = (char *)op->data + p->url_len + p->meta_len;
        if (p->tags_len)
            op->tags_len = store_tags_normalise(s, p->tags, p->tags_len, tags);
        /* The first test keeps store_cost's chunk count from overflowing. */
        op->cost = p->body_len > s->map_size ? UINT64_MAX
                                             : store_cost(s, p->url_len, p->meta_len, tags, op->tags_len, p->body_len);
        if (op->cost > s->object_max) {
            log_warn("store: object of %llu bytes refused: larger than the cache's per-object bound (%llu accounted bytes)",
                     (unsigned long long)p->body_len, (unsigned long long)s->object_max);
            op->failed = true;
            op->status = STORE_ERROR;
        }
    }
    return enqueue_or_free(s, op);
}

static int queue_simple(store_t *s, int kind, const uint8_t *key, size_t keylen, store_done_fn done, void *ctx)
{
    store_op_t *op = calloc(1, sizeof *op);
    if (!op)
        return STORE_ERROR;
    op->kind = kind;
    if (key)
        memcpy(op->key, key, keylen);
    op->done = done;
    op->ctx = ctx;
    return enqueue_or_free(s, op);
}

int store_update_meta(store_t *s, const store_key_t *key, uint64_t object_id, const void *meta, size_t meta_len,
                      store_done_fn done, void *ctx)
{
    return store_update_meta_seq(s, key, object_id, 0, meta, meta_len, done, ctx);
}

int store_update_meta_seq(store_t *s, const store_key_t *key, uint64_t object_id, uint64_t start_seq, const void *meta,
                          size_t meta_len, store_done_fn done, void *ctx)
{
    if (meta_len > STORE_META_MAX || (meta_len && !meta))
        return STORE_ERROR;
    store_op_t *op = calloc(1, sizeof *op + meta_len);
    if (!op)
        return STORE_ERROR;
    op->kind = STORE_OP_UPDATE_META;
    store_key_encode(key, op->key);
    op->oid = object_id;
    op->start_seq = start_seq;
    op->meta_len = meta_len;
    if (meta_len)
        memcpy(op->data, meta, meta_len);
    op->done = done;
    op->ctx = ctx;
    return enqueue_or_free(s, op);
}

int store_delete_url(store_t *s, const uint8_t hash[16], store_done_fn done, void *ctx)
{
    return queue_simple(s, STORE_OP_DELETE_URL, hash, 16, done, ctx);
}

int store_delete(store_t *s, const store_key_t *key, store_done_fn done, void *ctx)
{
    uint8_t k[STORE_KEY_LEN];
    store_key_encode(key, k);
    return queue_simple(s, STORE_OP_DELETE, k, sizeof k, done, ctx);
}

static void sync_done(void *ctx, int status)
{
    sync_wait_t *sw = ctx;
    pthread_mutex_lock(&sw->mu);
    sw->done = true;
    pthread_cond_signal(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
}

void store_sync(store_t *s)
{
    sync_wait_t sw = { .done = false };
    pthread_mutex_init(&sw.mu, NULL);
    pthread_cond_init(&sw.cv, NULL);
    if (queue_simple(s, STORE_OP_SYNC, NULL, 0, sync_done, &sw) == STORE_OK) {
        pthread_mutex_lock(&sw.mu);
        while (!sw.done)
            pthread_cond_wait(&sw.cv, &sw.mu);
        pthread_mutex_unlock(&sw.mu);
    }
    pthread_mutex_destroy(&sw.mu);
    pthread_cond_destroy(&sw.cv);
}

/* --- applying operations --- */

static int apply_put(store_t *s, MDB_txn *txn, store_work_t *w, store_op_t *op)
{
    const char *url = (const char *)op->data, *tags = url + op->url_len + op->meta_len;
    /* A purge newer than the fetch's start wins: what the fetch got may be
     * what the purge was meant to remove. */
    if (op->start_seq &&
        store_purge_match(s, op->start_seq, op->key, url, op->url_len, tags, op->tags_len) != STORE_MATCH_NONE) {
        op->result = STORE_PURGED;
        w->purge_dropped++;
        return 0;
    }
    int rc = store_obj_delete(s, txn, w, op->key);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    store_rec_t h = {
        .url_len = (uint32_t)op->url_len,
        .meta_len = (uint32_t)op->meta_len,
        .tags_len = (uint32_t)op->tags_len,
        .nchunks = store_nchunks(op->body_len),
        .oid = w->st.next_oid++,
        .body_len = op->body_len,
        .cost = op->cost,
        .seq = ++w->st.seq,
    };
    size_t inl = h.nchunks ? 0 : (size_t)op->body_len, head = op->url_len + op->meta_len + op->tags_len;
    MDB_val k = { STORE_KEY_LEN, op->key }, v = { STORE_REC_HDR + head + inl, NULL };
    /* MDB_RESERVE: the body goes straight from the caller into the map. */
    if ((rc = mdb_put(txn, s->db_obj, &k, &v, MDB_RESERVE)) != 0)
        return rc;
    uint8_t *p = v.mv_data;
    store_rec_encode(p, &h);
    p += STORE_REC_HDR;
    if (head)
        memcpy(p, op->data, head);
    if (inl)
        op->body(op->ctx, 0, p + head, inl);
    for (uint32_t i = 0; i < h.nchunks; i++) {
        uint8_t ck[STORE_CKEY_LEN];
        uint64_t off = (uint64_t)i * STORE_CHUNK_SIZE;
        size_t n = op->body_len - off < STORE_CHUNK_SIZE ? (size_t)(op->body_len - off) : STORE_CHUNK_SIZE;
        store_ckey_encode(h.oid, i, ck);
        MDB_val cv = { sizeof ck, ck }, dv = { n, NULL };
        /* Object ids only grow: appending fills chunk-tree pages fully. */
        if ((rc = mdb_put(txn, s->db_chunk, &cv, &dv, MDB_RESERVE | MDB_APPEND)) != 0)
            return rc;
        op->body(op->ctx, off, dv.mv_data, n);
    }
    if ((rc = store_lru_link(s, txn, w, op->key)) != 0 || (rc = store_tags_index(s, txn, op->key, tags, op->tags_len)))
        return rc;
    w->st.bytes += op->cost;
    w->st.objects++;
    w->puts++;
    return 0;
}

/* Rewrite an object's record with new metadata, keeping its version (object
 * id, chunks), tags and inline body; a revalidated object also counts as
 * used. With a start_seq it may also clear the stale mark (store.h). */
static int apply_update_meta(store_t *s, MDB_txn *txn, store_work_t *w, store_op_t *op)
{
    MDB_val k = { STORE_KEY_LEN, op->key }, v;
    store_rec_t h;
    store_rec_view_t rv;
    int rc = mdb_get(txn, s->db_obj, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && (store_rec_decode(v.mv_data, v.mv_size, &h, &rv) || h.oid != op->oid))) {
        op->result = STORE_NOTFOUND;
        return 0;
    }
    if (rc)
        return rc;
    size_t nbans;
    const store_ban_t *bans = store_purge_bans(s, &nbans);
    uint64_t stale = h.flags & STORE_REC_STALE ? h.stale_seq : 0, ban_soft = 0;
    if (store_bans_match(bans, nbans, h.seq, rv.url, h.url_len, &ban_soft) == STORE_MATCH_HARD) {
        op->result = STORE_NOTFOUND; /* hidden from readers; the sweep deletes it */
        return 0;
    }
    stale = ban_soft > stale ? ban_soft : stale;
    if (op->start_seq) {
        uint64_t after = op->start_seq > h.seq ? op->start_seq : h.seq;
        int m = store_purge_match(s, after, op->key, rv.url, h.url_len, rv.tags, h.tags_len);
        if (m == STORE_MATCH_HARD) {
            op->result = STORE_PURGED;
            w->purge_dropped++;
            return 0;
        }
        if (m == STORE_MATCH_NONE && stale && op->start_seq >= stale) {
            /* Validated after every purge that marked it (a purge numbered
             * start_seq had committed when the fetch began): fresh again,
             * and newer than the soft bans that matched it. */
            h.flags &= (uint8_t)~STORE_REC_STALE;
            h.stale_seq = 0;
            h.seq = ++w->st.seq;
        }
    }
    uint64_t old_cost = h.cost;
    h.meta_len = (uint32_t)op->meta_len;
    h.cost = store_cost(s, h.url_len, h.meta_len, rv.tags, h.tags_len, h.body_len);
    if ((rc = store_rec_rewrite(s, txn, op->key, v, &h, op->data)) != 0)
        return rc;
    w->st.bytes = w->st.bytes - old_cost + h.cost;
    return store_lru_touch(s, txn, w, op->key, 1);
}

static int apply_op(store_t *s, MDB_txn *txn, store_work_t *w, store_op_t *op)
{
    int rc = 0;
    if (op->failed)
        return 0;
    switch (op->kind) {
    case STORE_OP_PUT:
        rc = apply_put(s, txn, w, op);
        break;
    case STORE_OP_DELETE:
        rc = store_obj_delete(s, txn, w, op->key);
        if (rc == 0)
            w->deletes++;
        else if (rc == MDB_NOTFOUND)
            rc = 0; /* deleting nothing succeeds: purges are idempotent */
        break;
    case STORE_OP_DELETE_URL: {
        uint64_t n = 0;
        rc = store_url_apply(s, txn, w, op->key, STORE_URL_DELETE, 0, &n);
        w->deletes += n;
        break;
    }
    case STORE_OP_UPDATE_META:
        rc = apply_update_meta(s, txn, w, op);
        break;
    case STORE_OP_TOUCH:
        rc = store_lru_touch(s, txn, w, op->data, op->ntouch);
        break;
    case STORE_OP_SYNC:
        break;
    default:
        rc = store_purge_apply(s, txn, w, op);
        break;
    }
    return rc;
}

/* Apply ops [first, end) in one transaction and commit. On success each
 * op's status is STORE_OK (or what it was refused with). */
static int run_txn(store_t *s, store_op_t *first, store_op_t *end)
{
    MDB_txn *txn = NULL;
    store_work_t w;
    int rc = store_txn_begin(s, &txn, &w);
    if (rc)
        goto out;
    for (store_op_t *op = first; op != end; op = op->next) {
        op->result = STORE_OK;
        if ((rc = apply_op(s, txn, &w, op)) != 0)
            goto out;
    }
    rc = store_txn_commit(s, txn, &w);
    txn = NULL;
    if (rc)
        goto out;
    for (store_op_t *op = first; op != end; op = op->next) {
        if (op->failed)
            continue;
        op->status = op->result;
        if (store_purge_is_op(op->kind))
            store_purge_committed(s, op);
    }
out:
    if (txn)
        mdb_txn_abort(txn);
    return rc;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Apply ops [first, end) in one transaction, evicting before and after
 * MDB_MAP_FULL as the opening comment says; each op's status is set.
 * Returns how many operations could not be written. */
static size_t process_segment(store_t *s, store_op_t *first, store_op_t *end)
{
    uint64_t need = 0;
    size_t nops = 0;
    for (store_op_t *op = first; op != end; op = op->next, nops++)
        need += op_cost(op);
    if (s->st.bytes + need > s->high_water)
        store_evict(s, sat_sub(s->low_water, need), "high-water");
    int rc = run_txn(s, first, end);
    size_t failed = 0;
    if (rc == MDB_MAP_FULL) {
        s->wstats.map_full++;
        log_warn("store: map full at %llu accounted bytes; evicting a further 20%% and retrying",
                 (unsigned long long)s->st.bytes);
        store_evict(s, sat_sub(sat_sub(s->high_water, s->map_size / 5), need), "map full");
        rc = run_txn(s, first, end);
    }
    if (rc) {
        for (store_op_t *op = first; op != end; op = op->next) {
            if (op->failed || op->kind == STORE_OP_SYNC) {
                op->status = op->failed ? op->status : STORE_OK;
                continue;
            }
            if (run_txn(s, op, op->next) != 0) {
                op->status = STORE_ERROR;
                failed++;
            }
        }
        log_error("store: batch of %zu operations failed (%s); applied one by one, %zu failed", nops,
                  mdb_strerror(rc), failed);
        store_stats_publish(s); /* map_full, even if nothing committed */
    }
    return failed;
}

/* Run op's callback and free it; a barrier waits while purge work runs. */
static void finish_op(store_t *s, store_op_t *op)
{
    if (op->kind == STORE_OP_SYNC && store_purge_pending(s)) {
        op->next = s->parked;
        s->parked = op;
        return;
    }
    if (store_purge_is_op(op->kind)) {
        if (op->pdone)
            op->pdone(op->ctx, op->status, op->status == STORE_OK ? op->count : 0);
    } else if (op->done) {
        op->done(op->ctx, op->status);
    }
    free(op->own);
    free(op);
}

/* Release the parked barriers (purge work is over, or the writer stops). */
static void release_parked(store_t *s)
{
    store_op_t *op = s->parked;
    s->parked = NULL;
    while (op) {
        store_op_t *next = op->next;
        op->done(op->ctx, STORE_OK);
        free(op);
        op = next;
    }
}

const double store_batch_bounds[STORE_BATCH_NBOUNDS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};

#define STORE_FAIL_STREAK 3

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Count one batch for the metrics: its latency, whether an operation
 * failed, and how much of the map is in use now. The store is failing
 * after STORE_FAIL_STREAK batches in a row had a failure, until one
 * stores an object with no failure: one operation that cannot be written (an object the
 * map cannot hold even after eviction) must not turn a node's health to
 * 503 and have every edge eject it, while a disk that refuses every
 * write soon does. */
static void count_batch(store_t *s, uint64_t us, size_t failed, size_t stored)
{
    store_stats_t *w = &s->wstats;
    unsigned b = 0;
    while (b < STORE_BATCH_NBOUNDS && (double)us / 1e6 > store_batch_bounds[b])
        b++;
    w->batches++;
    w->batch_buckets[b]++;
    w->batch_us += us;
    w->batch_errors += failed > 0;
    /* A batch of syncs and touches alone says nothing either way. */
    if (failed)
        s->fail_streak++;
    else if (stored)
        s->fail_streak = 0;
    w->failing = s->fail_streak >= STORE_FAIL_STREAK;
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0)
        w->map_used = ((uint64_t)info.me_last_pgno + 1) * s->psize;
    store_stats_publish(s);
}

static void process_batch(store_t *s, store_op_t *batch)
{
    uint64_t t0 = mono_us();
    size_t failed = 0;
    /* Runs of purges and runs of other operations, each in its own txn. */
    for (store_op_t *first = batch, *end; first; first = end) {
        bool purge = store_purge_is_op(first->kind);
        for (end = first->next; end && store_purge_is_op(end->kind) == purge; end = end->next)
            ;
        failed += process_segment(s, first, end);
    }
    size_t stored = 0;
    for (store_op_t *op = batch; op; op = op->next)
        stored += op->kind == STORE_OP_PUT && op->status == STORE_OK;
    count_batch(s, mono_us() - t0, failed, stored);
    while (batch) {
        store_op_t *op = batch;
        batch = op->next;
        finish_op(s, op);
    }
}

/* Take the next batch off the queue: the gathering window is over, or a
 * barrier, shutdown or a full budget ended it. Called with q_mu held. */
static store_op_t *take_batch(store_t *s)
{
    store_op_t *head = s->q_head, **tail = &s->q_head;
    uint64_t cost = 0;
    size_t n = 0;
    while (*tail && n < BATCH_MAX_OPS) {
        store_op_t *op = *tail;
        if (n > 0 && cost + op_cost(op) > s->batch_budget)
            break;
        cost += op_cost(op);
        if (op->kind == STORE_OP_SYNC)
            s->q_barriers--;
        n++;
        tail = &op->next;
    }
    s->q_head = *tail;
    *tail = NULL;
    if (!s->q_head)
        s->q_tail = &s->q_head;
    s->q_len -= n;
    s->q_cost -= cost;
    return head;
}

static void *writer_main(void *arg)
{
    store_t *s = arg;
    pthread_mutex_lock(&s->q_mu);
    for (;;) {
        bool idle = !s->q_head, pending;
        while (!s->q_head && !s->closing && !(pending = store_purge_pending(s)))
            pthread_cond_wait(&s->q_cv, &s->q_mu);
        pending = store_purge_pending(s);
        if (!s->q_head && s->closing)
            break; /* closing and drained; purge work left resumes at the next open */
        if (!s->q_head) {
            pthread_mutex_unlock(&s->q_mu);
            store_purge_slice(s);
            if (!store_purge_pending(s))
                release_parked(s);
            pthread_mutex_lock(&s->q_mu);
            continue;
        }
        /* A backlog that built up during the last commit is a batch already;
         * only a writer that was idle waits for company. */
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += s->batch_ms / 1000;
        dl.tv_nsec += (long)(s->batch_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        /* Gather: more ops per commit means fewer fsyncs and page copies.
         * Not while purge work waits: its slices are the company. */
        while (idle && !pending && !s->closing && !s->q_barriers && s->q_cost < s->batch_budget &&
               s->q_len < BATCH_MAX_OPS)
            if (pthread_cond_timedwait(&s->q_cv, &s->q_mu, &dl) == ETIMEDOUT)
                break;
        store_op_t *batch = take_batch(s);
        bool stopping = s->closing; /* then only drain the queue */
        pthread_mutex_unlock(&s->q_mu);
        process_batch(s, batch);
        if (store_purge_pending(s) && !stopping)
            store_purge_slice(s);
        if (!store_purge_pending(s))
            release_parked(s);
        pthread_mutex_lock(&s->q_mu);
    }
    pthread_mutex_unlock(&s->q_mu);
    store_purge_stop(s);
    release_parked(s);
    return NULL;
}

int store_writer_start(store_t *s)
{
    int rc = pthread_create(&s->writer, NULL, writer_main, s);
    if (rc)
        return -rc;
    s->writer_running = true;
    return 0;
}

void store_writer_stop(store_t *s)
{
    pthread_mutex_lock(&s->q_mu);
    s->closing = true;
    pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    if (s->writer_running)
        pthread_join(s->writer, NULL);
    s->writer_running = false;
}
