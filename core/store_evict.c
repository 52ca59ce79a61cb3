/* store_evict: size accounting, the LRU, and eviction (writer thread only).
 *
 * LMDB cannot tell us cheaply how full the map is, so the store keeps its
 * own account: every object is charged an estimate of the pages it takes,
 * and the writer keeps the sum under a high-water mark by deleting objects
 * from the cold end of the LRU. The estimate errs high; MDB_MAP_FULL, the
 * last line of defence, is handled in store_writer.c.
 *
 * How approximate the LRU is: a hit is recorded in its reader's memory
 * only; it reaches the LRU when the reader flushes (every STORE_TOUCH_MAX
 * distinct keys, or on the caller's timer) and the writer applies it in
 * its next batch. Several hits of one key between two flushes count once,
 * and touches in one batch get consecutive positions in queue order, not
 * hit order. An object can therefore be evicted as cold if it was hit
 * after the last flush and the eviction ran before the next batch. */
#include "store_internal.h"

#include "log.h"

/* LMDB page layout constants (mdb.c): page header, leaf node header,
 * page-number size of an overflow reference, index slot. */
#define PAGEHDRSZ 16
#define NODESIZE 8
#define PGNO_SIZE 8
#define INDX_SIZE 2
/* Objects evicted per transaction at most: bounds a txn's dirty pages. */
#define EVICT_TXN_MAX 4096

/* Accounted size of one key/value record. Values too big for a leaf node
 * live on whole overflow pages (a 256 KiB chunk takes 65 pages: the
 * page header pushes it past 64). Leaf slots are charged 3/2 of their size
 * because B-tree pages filled in random key order average about 2/3 full. */
uint64_t store_rec_cost(const store_t *s, size_t klen, uint64_t vlen)
{
    uint64_t node = NODESIZE + klen + vlen;
    if (node > s->nodemax) {
        uint64_t pages = (PAGEHDRSZ - 1 + vlen) / s->psize + 1;
        return pages * s->psize + (NODESIZE + klen + PGNO_SIZE + INDX_SIZE) * 3 / 2;
    }
    return (node + INDX_SIZE + 1) / 2 * 2 * 3 / 2;
}

uint64_t store_cost(const store_t *s, size_t url_len, size_t meta_len, const char *tags, size_t tags_len,
                    uint64_t body_len)
{
    uint64_t inl = body_len <= STORE_INLINE_MAX ? body_len : 0;
    uint64_t c = store_rec_cost(s, STORE_KEY_LEN, STORE_REC_HDR + url_len + meta_len + tags_len + inl);
    const char *t;
    size_t tn, off = 0;
    /* A tag's entry as if it were alone under its key: errs high for tags
     * many objects share (their keys pack into one sub-database). */
    while (store_tags_next(tags, tags_len, &off, &t, &tn))
        c += store_rec_cost(s, tn, STORE_KEY_LEN);
    uint32_t n = store_nchunks(body_len);
    if (n > 0) {
        uint64_t last = body_len - (uint64_t)(n - 1) * STORE_CHUNK_SIZE;
        c += (uint64_t)(n - 1) * store_rec_cost(s, STORE_CKEY_LEN, STORE_CHUNK_SIZE);
        c += store_rec_cost(s, STORE_CKEY_LEN, last);
    }
    c += store_rec_cost(s, STORE_SEQ_LEN, STORE_KEY_LEN);  /* lru */
    c += store_rec_cost(s, STORE_KEY_LEN, STORE_SEQ_LEN);  /* lru_idx */
    return c;
}

/* Drop key's LRU entries, if any. */
static int lru_unlink(store_t *s, MDB_txn *txn, const uint8_t key[STORE_KEY_LEN])
{
    uint8_t seq[STORE_SEQ_LEN];
    MDB_val k = { STORE_KEY_LEN, (void *)key }, v;
    int rc = mdb_get(txn, s->db_lidx, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? 0 : rc;
    if (v.mv_size != STORE_SEQ_LEN)
        return mdb_del(txn, s->db_lidx, &k, NULL);
    memcpy(seq, v.mv_data, sizeof seq);
    MDB_val sk = { sizeof seq, seq };
    rc = mdb_del(txn, s->db_lru, &sk, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    return mdb_del(txn, s->db_lidx, &k, NULL);
}

int store_lru_link(store_t *s, MDB_txn *txn, store_work_t *w, const uint8_t key[STORE_KEY_LEN])
{
    uint8_t seq[STORE_SEQ_LEN];
    store_be64(seq, w->st.next_lru++);
    MDB_val sk = { sizeof seq, seq }, kv = { STORE_KEY_LEN, (void *)key };
    /* Sequences only grow: appending fills lru pages completely. */
    int rc = mdb_put(txn, s->db_lru, &sk, &kv, MDB_APPEND);
    if (rc)
        return rc;
    return mdb_put(txn, s->db_lidx, &kv, &sk, 0);
}

int store_lru_touch(store_t *s, MDB_txn *txn, store_work_t *w, const uint8_t *keys, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *key = keys + i * STORE_KEY_LEN;
        MDB_val k = { STORE_KEY_LEN, (void *)key }, v;
        rc = mdb_get(txn, s->db_lidx, &k, &v);
        if (rc == MDB_NOTFOUND) {
            rc = 0; /* deleted or evicted since the hit */
            continue;
        }
        if (rc || (rc = lru_unlink(s, txn, key)) != 0 || (rc = store_lru_link(s, txn, w, key)) != 0)
            break;
    }
    return rc;
}

int store_obj_delete(store_t *s, MDB_txn *txn, store_work_t *w, const uint8_t key[STORE_KEY_LEN])
{
    store_rec_t h;
    store_rec_view_t rv;
    MDB_val k = { STORE_KEY_LEN, (void *)key }, v;
    int rc = mdb_get(txn, s->db_obj, &k, &v);
    if (rc)
        goto out;
    if (store_rec_decode(v.mv_data, v.mv_size, &h, &rv)) {
        /* Unreadable: drop the record; its chunks and tag entries (if any)
         * are orphaned. Orphan chunks only cost space until the cache is
         * wiped; a tag walk drops the tag entries it meets. */
        log_warn("store: deleting a malformed object record (%zu bytes)", v.mv_size);
        memset(&h, 0, sizeof h);
        h.cost = store_rec_cost(s, STORE_KEY_LEN, v.mv_size);
    } else if ((rc = store_tags_unindex(s, txn, key, rv.tags, h.tags_len)) != 0) {
        goto out; /* the record's pages are still intact: nothing was deleted yet */
    }
    for (uint32_t i = 0; i < h.nchunks; i++) {
        uint8_t ck[STORE_CKEY_LEN];
        store_ckey_encode(h.oid, i, ck);
        MDB_val cv = { sizeof ck, ck };
        rc = mdb_del(txn, s->db_chunk, &cv, NULL);
        if (rc && rc != MDB_NOTFOUND)
            goto out;
    }
    if ((rc = lru_unlink(s, txn, key)) != 0 || (rc = mdb_del(txn, s->db_obj, &k, NULL)) != 0)
        goto out;
    w->st.bytes = w->st.bytes > h.cost ? w->st.bytes - h.cost : 0;
    if (w->st.objects > 0)
        w->st.objects--;
out:
    return rc;
}

/* One eviction transaction: up to max objects from the cold end. */
static int evict_txn(store_t *s, uint64_t target, size_t max, bool *empty)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    store_work_t w;
    int rc = store_txn_begin(s, &txn, &w);
    if (rc)
        goto out;
    if ((rc = mdb_cursor_open(txn, s->db_lru, &c)) != 0)
        goto out;
    *empty = false;
    for (size_t n = 0; n < max && w.st.bytes > target; n++) {
        uint8_t key[STORE_KEY_LEN];
        MDB_val k, v;
        /* Re-seek each time: the deletes below change the tree under the cursor. */
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            *empty = true;
            rc = 0;
            break;
        }
        if (rc)
            goto out;
        if (v.mv_size != STORE_KEY_LEN) {
            if ((rc = mdb_cursor_del(c, 0)) != 0)
                goto out;
            continue;
        }
        memcpy(key, v.mv_data, sizeof key);
        rc = store_obj_delete(s, txn, &w, key);
        if (rc == MDB_NOTFOUND) {
            /* An LRU entry without its object: drop it to make progress. */
            if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) != 0 || (rc = mdb_cursor_del(c, 0)) != 0)
                goto out;
            MDB_val kk = { sizeof key, key };
            rc = mdb_del(txn, s->db_lidx, &kk, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        } else if (rc == 0) {
            w.evictions++;
        }
        if (rc)
            goto out;
    }
out:
    return store_txn_end(s, txn, c, &w, rc, true);
}

int store_evict(store_t *s, uint64_t target, const char *why)
{
    int rc = 0;
    size_t max = EVICT_TXN_MAX;
    bool evicted = false, empty = false;
    while (s->st.bytes > target && !empty) {
        rc = evict_txn(s, target, max, &empty);
        if (rc == MDB_MAP_FULL && max > 1) {
            /* Even deletes need fresh pages (copy-on-write); fewer per txn. */
            max = max / 8 ? max / 8 : 1;
            continue;
        }
        if (rc)
            break;
        evicted = true;
    }
    if (evicted) {
        /* LMDB reuses the pages a txn freed only from the second txn after
         * it (mdb_page_alloc keeps the newest freelist entry back). Commit
         * a trivial txn so the batch that needed the room can use them. */
        MDB_txn *txn;
        store_work_t w;
        int rc2 = store_txn_begin(s, &txn, &w);
        if (rc2 == 0)
            rc2 = store_txn_commit(s, txn, &w);
        if (rc2 && !rc)
            rc = rc2;
    }
    if (rc)
        log_error("store: eviction (%s) to %llu bytes failed: %s", why, (unsigned long long)target, mdb_strerror(rc));
    return rc;
}
