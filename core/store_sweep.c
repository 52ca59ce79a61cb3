/* store_sweep: the purge work that runs between the writer's batches.
 *
 * Two kinds, each done in slices of at most SLICE_OBJECTS objects deleted
 * or marked, one transaction per slice, alternating when both wait (the
 * writer loop in store_writer.c runs one slice after each batch, or back
 * to back when nothing is queued):
 * - Tag walks. A walk visits the tag index entries of its tag in key order
 *   from where the last slice stopped, and purges the objects put before
 *   it (a newer put of the same tag is left alone; it is past the purge).
 *   Its done runs once the walk reaches the end, with the total.
 * - The ban sweep. One cursor walks the objects database round and round
 *   while bans are in force, and deletes or marks what they hide. A ban
 *   starts at the cursor's position and is through when the cursor comes
 *   back to it; its record in `purges` goes in that slice's commit, and
 *   the readers' snapshot loses it only after that commit (store_read.c
 *   says why the order matters). Many bans share one walk.
 *
 * A slice that fails (a full map, say) is retried; after SLICE_FAILS_MAX
 * failures in a row a walk ends with STORE_ERROR and the sweep stops until
 * the next open. Bans stay in force either way: reads stay correct, only
 * the clean-up waits. */
#include "store_internal.h"

#include <stdlib.h>

#include "log.h"

#define SLICE_OBJECTS 1000
/* Records a sweep slice looks at, at most (most match no ban). */
#define SLICE_VISITS 8192
#define SLICE_FAILS_MAX 3

void store_debug_hold_purges(store_t *s, bool hold)
{
    atomic_store(&s->hold_purges, hold);
    pthread_mutex_lock(&s->q_mu);
    pthread_cond_signal(&s->q_cv); /* the writer may wait for nothing but this */
    pthread_mutex_unlock(&s->q_mu);
}

bool store_purge_pending(store_t *s)
{
    store_purger_t *pg = s->pg;
    if (atomic_load(&s->hold_purges))
        return false;
    return pg->dirty || pg->walks || (pg->nbans && pg->sweep_fails < SLICE_FAILS_MAX);
}

/* The result of one cursor step of a slice: 0 with *end set when nothing
 * is left, MDB_CORRUPTED when got (the key or value that must be an object
 * key) is not one. */
static int slice_step(int rc, const MDB_val *got, bool *end)
{
    if (rc == MDB_NOTFOUND) {
        *end = true;
        return 0;
    }
    return rc == 0 && got->mv_size != STORE_KEY_LEN ? MDB_CORRUPTED : rc;
}

/* Purge the object at key for walk wk, if it still carries the tag and
 * was put before the purge; drop an index entry that points nowhere. */
static int walk_one(store_t *s, MDB_txn *txn, store_work_t *w, const store_walk_t *wk, const uint8_t key[STORE_KEY_LEN],
                    uint64_t *count)
{
    store_rec_t h;
    store_rec_view_t rv;
    MDB_val k = { STORE_KEY_LEN, (void *)key }, v;
    int rc = mdb_get(txn, s->db_obj, &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (rc == MDB_NOTFOUND || store_rec_decode(v.mv_data, v.mv_size, &h, &rv) ||
        !store_tags_has(rv.tags, h.tags_len, wk->tag, wk->len)) {
        MDB_val tk = { wk->len, (void *)wk->tag }, tv = { STORE_KEY_LEN, (void *)key };
        rc = mdb_del(txn, s->db_tags, &tk, &tv);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    if (h.seq > wk->seq)
        return 0;
    ++*count;
    if (wk->soft) {
        w->purge_flagged++;
        return store_mark_stale(s, txn, key, v, &h, &rv, wk->seq);
    }
    w->purge_deleted++;
    return store_obj_delete(s, txn, w, key);
}

/* Pop the head walk and report its end. */
static void walk_end(store_t *s, int status)
{
    store_purger_t *pg = s->pg;
    store_walk_t *wk = pg->walks;
    pg->walks = wk->next;
    pg->nwalks--;
    s->wstats.tag_walks = pg->nwalks;
    store_stats_publish(s);
    if (wk->done)
        wk->done(wk->ctx, status, wk->count);
    free(wk);
}

static void walk_slice(store_t *s)
{
    store_purger_t *pg = s->pg;
    store_walk_t *wk = pg->walks;
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    store_work_t w;
    uint8_t last[STORE_KEY_LEN];
    bool started = wk->started, complete = false;
    uint64_t count = 0;
    memcpy(last, wk->last, sizeof last);
    int rc = store_txn_begin(s, &txn, &w);
    if (rc || (rc = mdb_cursor_open(txn, s->db_tags, &c)) != 0)
        goto out;
    for (int n = 0; n < SLICE_OBJECTS; n++) {
        /* Re-seek each time: purging changes the index under the cursor. */
        MDB_val k = { wk->len, wk->tag }, v = { STORE_KEY_LEN, last };
        rc = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH_RANGE);
        if (rc == 0 && started && v.mv_size == STORE_KEY_LEN && memcmp(v.mv_data, last, sizeof last) == 0)
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
        if ((rc = slice_step(rc, &v, &complete)) != 0 || complete)
            break;
        memcpy(last, v.mv_data, sizeof last);
        started = true;
        if ((rc = walk_one(s, txn, &w, wk, last, &count)) != 0)
            break;
    }
    if (rc == 0 && complete) {
        uint8_t kb[STORE_SEQ_LEN];
        MDB_val k = store_seq_key(kb, wk->seq);
        if ((rc = mdb_del(txn, s->db_purges, &k, NULL)) == MDB_NOTFOUND)
            rc = 0;
    }
out:
    rc = store_txn_end(s, txn, c, &w, rc, true);
    if (rc) {
        log_error("store: tag purge slice failed: %s", mdb_strerror(rc));
        if (++wk->fails >= SLICE_FAILS_MAX)
            walk_end(s, STORE_ERROR);
        return;
    }
    wk->fails = 0;
    wk->count += count;
    wk->started = started;
    memcpy(wk->last, last, sizeof last);
    if (complete) {
        walk_end(s, STORE_OK);
    } else if (wk->next) {
        /* Round robin: the next walk gets the next slice. */
        store_walk_t **tail = &pg->walks;
        pg->walks = wk->next;
        wk->next = NULL;
        while (*tail)
            tail = &(*tail)->next;
        *tail = wk;
    }
}

/* Advance a big-endian key by one; false when it wraps past the last key. */
static bool key_next(uint8_t k[STORE_KEY_LEN])
{
    for (int i = STORE_KEY_LEN - 1; i >= 0; i--)
        if (++k[i] != 0)
            return true;
    return false;
}

/* Which bans the sweep is through with after moving to pos (wrapped: it
 * passed the end of the objects in this slice). */
static bool ban_through(const store_ban_prog_t *p, const uint8_t pos[STORE_KEY_LEN], bool wrapped)
{
    static const uint8_t zero[STORE_KEY_LEN];
    if (wrapped)
        return p->wrapped || memcmp(p->start, zero, STORE_KEY_LEN) == 0;
    return p->wrapped && memcmp(pos, p->start, STORE_KEY_LEN) >= 0;
}

static int sweep_one(store_t *s, MDB_txn *txn, store_work_t *w, const uint8_t key[STORE_KEY_LEN], MDB_val v,
                     size_t *changed)
{
    store_purger_t *pg = s->pg;
    store_rec_t h;
    store_rec_view_t rv;
    uint64_t soft_seq = 0;
    if (store_rec_decode(v.mv_data, v.mv_size, &h, &rv))
        return 0;
    int m = store_bans_match(pg->bans, pg->nbans, h.seq, rv.url, h.url_len, &soft_seq);
    if (m == STORE_MATCH_NONE || (m == STORE_MATCH_SOFT && (h.flags & STORE_REC_STALE) && h.stale_seq >= soft_seq))
        return 0;
    ++*changed;
    w->purge_swept++;
    if (m == STORE_MATCH_SOFT) {
        w->purge_flagged++;
        return store_mark_stale(s, txn, key, v, &h, &rv, soft_seq);
    }
    w->purge_deleted++;
    return store_obj_delete(s, txn, w, key);
}

static void sweep_slice(store_t *s)
{
    store_purger_t *pg = s->pg;
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    store_work_t w;
    uint8_t pos[STORE_KEY_LEN];
    bool wrapped = false, through = false;
    size_t changed = 0;
    memcpy(pos, pg->pos, sizeof pos);
    int rc = store_txn_begin(s, &txn, &w);
    if (rc || (rc = mdb_cursor_open(txn, s->db_obj, &c)) != 0)
        goto out;
    for (size_t visits = 0; visits < SLICE_VISITS && changed < SLICE_OBJECTS; visits++) {
        MDB_val k = { sizeof pos, pos }, v;
        uint8_t key[STORE_KEY_LEN];
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if ((rc = slice_step(rc, &k, &wrapped)) != 0 || wrapped)
            break;
        memcpy(key, k.mv_data, sizeof key);
        memcpy(pos, key, sizeof pos);
        bool more = key_next(pos);
        if ((rc = sweep_one(s, txn, &w, key, v, &changed)) != 0)
            break;
        if (!more) {
            wrapped = true;
            break;
        }
    }
    if (rc)
        goto out;
    if (wrapped)
        memset(pos, 0, sizeof pos);
    for (size_t i = 0; i < pg->nbans; i++) {
        if (!ban_through(&pg->prog[i], pos, wrapped))
            continue;
        uint8_t kb[STORE_SEQ_LEN];
        MDB_val k = store_seq_key(kb, pg->bans[i].seq);
        if ((rc = mdb_del(txn, s->db_purges, &k, NULL)) != 0 && rc != MDB_NOTFOUND)
            goto out;
        rc = 0;
        through = true;
    }
out:
    /* Most slices of a large cache only look: no commit (and no fsync). */
    rc = store_txn_end(s, txn, c, &w, rc, changed || through);
    if (rc) {
        log_error("store: ban sweep slice failed: %s", mdb_strerror(rc));
        if (++pg->sweep_fails >= SLICE_FAILS_MAX)
            log_error("store: ban sweep stopped until the next open; the %zu bans stay in force", pg->nbans);
        return;
    }
    pg->sweep_fails = 0;
    memcpy(pg->pos, pos, sizeof pos);
    size_t before = pg->nbans;
    for (size_t i = pg->nbans; i-- > 0;) {
        if (ban_through(&pg->prog[i], pos, wrapped))
            store_ban_retire(s, i);
        else if (wrapped)
            pg->prog[i].wrapped = true;
    }
    if (pg->nbans != before) {
        store_bans_publish(s);
        s->wstats.bans = pg->nbans;
        store_stats_publish(s);
    }
}

void store_purge_slice(store_t *s)
{
    store_purger_t *pg = s->pg;
    if (pg->dirty && store_bans_publish(s))
        return;
    bool sweep = pg->nbans && pg->sweep_fails < SLICE_FAILS_MAX;
    pg->turn = !pg->turn;
    if (pg->walks && (!sweep || pg->turn))
        walk_slice(s);
    else if (sweep)
        sweep_slice(s);
}

void store_purge_stop(store_t *s)
{
    /* Interrupted walks resume at the next open (their records stay). */
    while (s->pg->walks)
        walk_end(s, STORE_CLOSED);
}
