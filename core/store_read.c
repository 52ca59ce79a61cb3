/* store_read: the read side of the store (see include/store.h).
 *
 * Reads run on loop threads in read transactions owned by a store_reader
 * (MDB_NOTLS), reset and renewed rather than reallocated so a hit costs no
 * malloc and keeps its reader slot. LRU touches are only remembered here;
 * the writer (store_writer.c) applies them.
 *
 * Prefix bans. Each reader holds a reference to the snapshot of the bans
 * in force (store_bans_t, immutable, reference-counted). store_read_begin
 * compares the store's ban generation with the one it holds (one atomic
 * load, the whole cost when nothing changed) and, if it moved, takes the
 * new snapshot under ban_mu, a few instructions long. It does so *before*
 * starting the LMDB transaction: the writer publishes a snapshot without
 * a ban only after committing the sweep that removed what the ban hid, so
 * a reader that sees the ban gone also sees the objects gone. */
#include "store_internal.h"

#include <stdlib.h>
#include <sys/mman.h>

#include "log.h"

#define TOUCH_SLOTS (2 * STORE_TOUCH_MAX)

struct store_reader {
    store_t *s;
    MDB_txn *txn;             /* NULL until the first begin; reset between reads */
    bool active;
    store_bans_t *bans;       /* our reference to the bans in force (NULL: none) */
    uint64_t ban_gen;         /* the generation they are */
    size_t ntouch;
    uint8_t touch[STORE_TOUCH_MAX][STORE_KEY_LEN];
    uint16_t slot[TOUCH_SLOTS]; /* open-addressing set over touch[]: index + 1, 0 = empty */
};

store_reader_t *store_reader_new(store_t *s)
{
    store_reader_t *r = calloc(1, sizeof *r);
    if (r)
        r->s = s;
    return r;
}

void store_reader_free(store_reader_t *r)
{
    if (!r)
        return;
    store_reader_flush_touches(r);
    if (r->txn)
        mdb_txn_abort(r->txn); /* also frees its reader slot */
    store_bans_release(r->bans);
    free(r);
}

/* Take the current ban snapshot if it changed since ours. */
static void bans_refresh(store_reader_t *r)
{
    store_t *s = r->s;
    if (atomic_load_explicit(&s->ban_gen, memory_order_acquire) == r->ban_gen)
        return;
    pthread_mutex_lock(&s->ban_mu);
    store_bans_t *old = r->bans;
    r->bans = s->ban_snap;
    if (r->bans)
        atomic_fetch_add_explicit(&r->bans->refs, 1, memory_order_relaxed);
    r->ban_gen = atomic_load_explicit(&s->ban_gen, memory_order_relaxed);
    pthread_mutex_unlock(&s->ban_mu);
    store_bans_release(old);
}

int store_read_begin(store_reader_t *r)
{
    int rc;
    if (r->active)
        store_read_end(r);
    bans_refresh(r);
    if (r->txn)
        rc = mdb_txn_renew(r->txn);
    else
        rc = mdb_txn_begin(r->s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc) {
        log_error("store: read transaction: %s", mdb_strerror(rc));
        if (r->txn) {
            mdb_txn_abort(r->txn);
            r->txn = NULL;
        }
        return STORE_ERROR;
    }
    r->active = true;
    return STORE_OK;
}

void store_read_end(store_reader_t *r)
{
    if (!r->active)
        return;
    mdb_txn_reset(r->txn); /* unpins the snapshot, keeps the slot */
    r->active = false;
}

int store_get(store_reader_t *r, const store_key_t *key, store_obj_t *out)
{
    uint8_t k[STORE_KEY_LEN];
    store_rec_t h;
    store_rec_view_t rv;
    if (!r->active)
        return STORE_ERROR;
    store_key_encode(key, k);
    MDB_val mk = { sizeof k, k }, v;
    int rc = mdb_get(r->txn, r->s->db_obj, &mk, &v);
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    if (rc) {
        log_error("store: get: %s", mdb_strerror(rc));
        return STORE_ERROR;
    }
    if (store_rec_decode(v.mv_data, v.mv_size, &h, &rv)) {
        log_error("store: malformed object record (%zu bytes)", v.mv_size);
        return STORE_ERROR;
    }
    out->stale = (h.flags & STORE_REC_STALE) != 0;
    if (r->bans) {
        int m = store_bans_match(r->bans->b, r->bans->n, h.seq, rv.url, h.url_len, NULL);
        if (m == STORE_MATCH_HARD)
            return STORE_NOTFOUND;
        if (m == STORE_MATCH_SOFT)
            out->stale = true;
    }
    out->url = rv.url;
    out->url_len = h.url_len;
    out->meta = rv.meta;
    out->meta_len = h.meta_len;
    out->tags = rv.tags;
    out->tags_len = h.tags_len;
    out->body_len = h.body_len;
    out->body = rv.body;
    out->object_id = h.oid;
    out->nchunks = h.nchunks;
    out->seq = h.seq;
    return STORE_OK;
}

int store_get_chunk(store_reader_t *r, uint64_t object_id, uint32_t index, const uint8_t **p, size_t *n)
{
    uint8_t k[STORE_CKEY_LEN];
    if (!r->active)
        return STORE_ERROR;
    store_ckey_encode(object_id, index, k);
    MDB_val mk = { sizeof k, k }, v;
    int rc = mdb_get(r->txn, r->s->db_chunk, &mk, &v);
    if (rc == MDB_NOTFOUND)
        return STORE_NOTFOUND;
    if (rc) {
        log_error("store: get chunk: %s", mdb_strerror(rc));
        return STORE_ERROR;
    }
    /* With MDB_NORDAHEAD every page of the chunk would fault on its own:
     * ask for the whole (contiguous) chunk in one go. Advisory only. */
    uintptr_t pg = r->s->psize, a = (uintptr_t)v.mv_data & ~(pg - 1);
    uintptr_t e = ((uintptr_t)v.mv_data + v.mv_size + pg - 1) & ~(pg - 1);
    (void)madvise((void *)a, e - a, MADV_WILLNEED);
    *p = v.mv_data;
    *n = v.mv_size;
    return STORE_OK;
}

/* --- LRU touches --- */

void store_touch(store_reader_t *r, const store_key_t *key)
{
    uint8_t k[STORE_KEY_LEN];
    store_key_encode(key, k);
    /* The hash bytes are SipHash output: already uniform. */
    uint32_t h = ((uint32_t)k[0] | (uint32_t)k[1] << 8) ^ (uint32_t)key->variant;
    for (uint32_t i = 0;; i++) {
        uint16_t *sl = &r->slot[(h + i) & (TOUCH_SLOTS - 1)];
        if (*sl == 0) {
            memcpy(r->touch[r->ntouch], k, STORE_KEY_LEN);
            *sl = (uint16_t)(++r->ntouch);
            break;
        }
        if (memcmp(r->touch[*sl - 1], k, STORE_KEY_LEN) == 0)
            return; /* already gathered: hits between flushes coalesce */
    }
    if (r->ntouch == STORE_TOUCH_MAX)
        store_reader_flush_touches(r);
}

void store_reader_flush_touches(store_reader_t *r)
{
    if (r->ntouch == 0)
        return;
    size_t n = r->ntouch;
    store_op_t *op = calloc(1, sizeof *op + n * STORE_KEY_LEN);
    r->ntouch = 0;
    memset(r->slot, 0, sizeof r->slot);
    if (!op)
        return; /* touches are advice: dropping them only ages those objects */
    op->kind = STORE_OP_TOUCH;
    op->ntouch = n;
    memcpy(op->data, r->touch, n * STORE_KEY_LEN);
    if (store_enqueue(r->s, op) != STORE_OK)
        free(op);
}
