/* store_purge: purge operations and what the writer remembers of them
 * (see include/store.h; the slices of background work are store_sweep.c).
 *
 * Sequence. Every put and every purge takes the next number of the store
 * sequence when it is applied; store_seq() publishes the last committed
 * one. A purge applies to the records whose seq is below its own; a fill
 * that began at start_seq loses to every matching purge above start_seq.
 *
 * How each purge takes effect:
 * - URL: deleted or marked stale in its own commit. Cheap: one URL's
 *   records are adjacent.
 * - tag: the commit records it (and persists it in `purges`); the walk of
 *   the tag index runs in slices (store_sweep.c) and done runs at its end.
 * - prefix / all: the commit records a ban, persisted in `purges`, which
 *   store_get applies from then on; done runs right then, with count 0:
 *   the caller learns that the purge is in force, which is what a purge
 *   API answers; how many objects it hid is known only once the sweep has
 *   walked the whole cache, which may take minutes on a large one (that
 *   number goes to store_stats_t.purge_swept). A sweep of all objects
 *   under every request's feet is what the ban avoids.
 *
 * "A purge always wins" needs the purges newer than a fill's start at the
 * fill's commit. The writer keeps them in memory: the last STORE_RECENT_N
 * URL and tag purges (a ring of 16-byte hashes, chained per bucket, about
 * 2.5 MiB), the bans in force, and the last STORE_RETIRED_N bans whose
 * sweep is over. What falls off the ring raises `floor`: a fill that began
 * before it cannot be checked and is dropped (conservatively purged). The
 * record starts empty at open, with floor = the sequence then: a fill's
 * start_seq comes from this process. */
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>

#include "hash.h"
#include "log.h"

#define RECENT_BUCKETS 65536
enum { RECENT_URL = 1, RECENT_TAG = 2 };
enum { PURGES_BAN = 1, PURGES_TAG = 2 }; /* kinds of `purges` records */

static void tag_hash(const char *tag, size_t len, uint8_t out[16])
{
    static const uint8_t k[16] = "store tag purges";
    hash_sip128(k, tag, len, out);
}

static uint32_t bucket_of(const uint8_t h[16])
{
    return ((uint32_t)h[0] | (uint32_t)h[1] << 8) & (RECENT_BUCKETS - 1);
}

static void recent_add(store_purger_t *pg, uint8_t kind, const uint8_t h[16], uint64_t seq, bool soft)
{
    uint32_t slot = (uint32_t)(pg->nrecent % STORE_RECENT_N), b = bucket_of(h);
    store_recent_t *e = &pg->ring[slot];
    if (pg->nrecent >= STORE_RECENT_N && e->seq > pg->floor)
        pg->floor = e->seq;
    memcpy(e->h, h, 16);
    e->seq = seq;
    e->kind = kind;
    e->soft = soft;
    e->bucket = b;
    e->next = pg->heads[b];
    pg->heads[b] = slot + 1;
    pg->nrecent++;
}

/* Strongest remembered purge of (kind, h) newer than after. A chain runs
 * newest first; an entry reused by a later insertion shows up as a seq not
 * below its predecessor's or as another bucket's, and ends the chain (what
 * follows it is older still, hence overwritten too). */
static int recent_match(const store_purger_t *pg, uint8_t kind, const uint8_t h[16], uint64_t after)
{
    uint32_t b = bucket_of(h), i = pg->heads[b];
    uint64_t prev = UINT64_MAX;
    int m = STORE_MATCH_NONE;
    while (i) {
        const store_recent_t *e = &pg->ring[i - 1];
        if (e->bucket != b || e->seq >= prev || e->seq <= after)
            break;
        if (e->kind == kind && memcmp(e->h, h, 16) == 0) {
            if (!e->soft)
                return STORE_MATCH_HARD;
            m = STORE_MATCH_SOFT;
        }
        prev = e->seq;
        i = e->next;
    }
    return m;
}

int store_bans_match(const store_ban_t *b, size_t n, uint64_t rec_seq, const char *url, size_t url_len,
                     uint64_t *soft_seq)
{
    int m = STORE_MATCH_NONE;
    for (size_t i = 0; i < n; i++) {
        if (b[i].seq <= rec_seq || b[i].len > url_len || memcmp(b[i].prefix, url, b[i].len) != 0)
            continue;
        if (!b[i].soft)
            return STORE_MATCH_HARD;
        m = STORE_MATCH_SOFT;
        if (soft_seq && b[i].seq > *soft_seq)
            *soft_seq = b[i].seq;
    }
    return m;
}

static int max_match(int a, int b)
{
    return a > b ? a : b;
}

int store_purge_match(store_t *s, uint64_t after, const uint8_t hash[16], const char *url, size_t url_len,
                      const char *tags, size_t tags_len)
{
    store_purger_t *pg = s->pg;
    if (after < pg->floor)
        return STORE_MATCH_HARD; /* a purge it cannot see any more might match */
    int m = recent_match(pg, RECENT_URL, hash, after);
    const char *t;
    size_t n, off = 0;
    while (m != STORE_MATCH_HARD && store_tags_next(tags, tags_len, &off, &t, &n)) {
        uint8_t h[16];
        tag_hash(t, n, h);
        m = max_match(m, recent_match(pg, RECENT_TAG, h, after));
    }
    if (m != STORE_MATCH_HARD)
        m = max_match(m, store_bans_match(pg->bans, pg->nbans, after, url, url_len, NULL));
    if (m != STORE_MATCH_HARD) {
        size_t nr = pg->nretired < STORE_RETIRED_N ? (size_t)pg->nretired : STORE_RETIRED_N;
        m = max_match(m, store_bans_match(pg->retired, nr, after, url, url_len, NULL));
    }
    return m;
}

const store_ban_t *store_purge_bans(store_t *s, size_t *n)
{
    *n = s->pg->nbans;
    return s->pg->bans;
}

/* --- bans --- */

void store_bans_release(store_bans_t *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

int store_bans_publish(store_t *s)
{
    store_purger_t *pg = s->pg;
    store_bans_t *snap = NULL;
    if (pg->nbans) {
        size_t bytes = 0;
        for (size_t i = 0; i < pg->nbans; i++)
            bytes += pg->bans[i].len;
        snap = malloc(sizeof *snap + pg->nbans * sizeof(store_ban_t) + bytes);
        if (!snap) {
            /* Readers keep the previous bans; the writer retries. */
            log_error("store: out of memory publishing %zu prefix bans", pg->nbans);
            pg->dirty = true;
            return -1;
        }
        atomic_init(&snap->refs, 1);
        snap->n = pg->nbans;
        char *blob = (char *)(snap->b + pg->nbans);
        for (size_t i = 0; i < pg->nbans; i++) {
            snap->b[i] = pg->bans[i];
            snap->b[i].prefix = blob;
            memcpy(blob, pg->bans[i].prefix, pg->bans[i].len);
            blob += pg->bans[i].len;
        }
    }
    pthread_mutex_lock(&s->ban_mu);
    store_bans_t *old = s->ban_snap;
    s->ban_snap = snap;
    atomic_fetch_add_explicit(&s->ban_gen, 1, memory_order_release);
    pthread_mutex_unlock(&s->ban_mu);
    store_bans_release(old);
    pg->dirty = false;
    return 0;
}

static void ban_remove(store_purger_t *pg, size_t i)
{
    memmove(&pg->bans[i], &pg->bans[i + 1], (pg->nbans - i - 1) * sizeof *pg->bans);
    memmove(&pg->prog[i], &pg->prog[i + 1], (pg->nbans - i - 1) * sizeof *pg->prog);
    pg->nbans--;
}

void store_ban_retire(store_t *s, size_t i)
{
    store_purger_t *pg = s->pg;
    store_ban_t *r = &pg->retired[pg->nretired % STORE_RETIRED_N];
    if (pg->nretired >= STORE_RETIRED_N) {
        if (r->seq > pg->floor)
            pg->floor = r->seq;
        free((void *)r->prefix);
    }
    *r = pg->bans[i];
    pg->nretired++;
    ban_remove(pg, i);
}

/* True when ban n makes ban o redundant: every record o hides, n hides
 * at least as hard (n is newer). */
static bool ban_subsumes(const store_ban_t *n, const store_ban_t *o)
{
    return o->len >= n->len && memcmp(o->prefix, n->prefix, n->len) == 0 && (!n->soft || o->soft);
}

/* --- the queued operations --- */

static int purge_queue(store_t *s, int kind, const void *bytes, size_t len, bool soft, store_purged_fn done, void *ctx)
{
    store_op_t *op = calloc(1, sizeof *op + len + 1);
    if (!op)
        return STORE_ERROR;
    op->kind = kind;
    op->soft = soft;
    op->pdone = done;
    op->ctx = ctx;
    if (kind == STORE_OP_PURGE_URL) {
        memcpy(op->key, bytes, 16);
        len = 0;
    } else if (len) {
        memcpy(op->data, bytes, len);
    }
    op->tags_len = len;
    int rc = store_enqueue(s, op);
    if (rc != STORE_OK)
        free(op);
    return rc;
}

int store_purge_url(store_t *s, const uint8_t hash[16], bool soft, store_purged_fn done, void *ctx)
{
    if (!hash)
        return STORE_ERROR;
    return purge_queue(s, STORE_OP_PURGE_URL, hash, 16, soft, done, ctx);
}

int store_purge_tag(store_t *s, const char *tag, size_t len, bool soft, store_purged_fn done, void *ctx)
{
    /* A tag no object can carry matches nothing, but LMDB refuses keys
     * over its limit: refuse them here. */
    if (!tag || len == 0 || len > STORE_TAG_BYTES_LIMIT || memchr(tag, '\n', len))
        return STORE_ERROR;
    return purge_queue(s, STORE_OP_PURGE_TAG, tag, len, soft, done, ctx);
}

int store_purge_prefix(store_t *s, const char *url_prefix, size_t len, bool soft, store_purged_fn done, void *ctx)
{
    if ((len && !url_prefix) || len > STORE_PREFIX_MAX)
        return STORE_ERROR;
    return purge_queue(s, STORE_OP_PURGE_PREFIX, url_prefix, len, soft, done, ctx);
}

bool store_purge_is_op(int kind)
{
    return kind == STORE_OP_PURGE_URL || kind == STORE_OP_PURGE_TAG || kind == STORE_OP_PURGE_PREFIX;
}

int store_mark_stale(store_t *s, MDB_txn *txn, const uint8_t key[STORE_KEY_LEN], MDB_val v, store_rec_t *h,
                     const store_rec_view_t *rv, uint64_t seq)
{
    if ((h->flags & STORE_REC_STALE) && h->stale_seq >= seq)
        return 0;
    h->flags |= STORE_REC_STALE;
    h->stale_seq = seq;
    return store_rec_rewrite(s, txn, key, v, h, rv->meta);
}

/* Every variant of a URL hash: keys sharing the 16-byte prefix are adjacent. */
int store_url_apply(store_t *s, MDB_txn *txn, store_work_t *w, const uint8_t hash[16], int how, uint64_t seq,
                    uint64_t *count)
{
    MDB_cursor *c = NULL;
    uint8_t key[STORE_KEY_LEN];
    *count = 0;
    int rc = mdb_cursor_open(txn, s->db_obj, &c);
    if (rc)
        goto out;
    memcpy(key, hash, 16);
    memset(key + 16, 0, 8);
    for (;;) {
        MDB_val k = { sizeof key, key }, v;
        store_rec_t h;
        store_rec_view_t rv;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != STORE_KEY_LEN || memcmp(k.mv_data, hash, 16) != 0))) {
            rc = 0;
            break;
        }
        if (rc)
            goto out;
        memcpy(key, k.mv_data, sizeof key);
        if (how != STORE_URL_PURGE_SOFT) {
            if ((rc = store_obj_delete(s, txn, w, key)) != 0)
                goto out;
            ++*count;
            continue;
        }
        if (store_rec_decode(v.mv_data, v.mv_size, &h, &rv) == 0) {
            if ((rc = store_mark_stale(s, txn, key, v, &h, &rv, seq)) != 0)
                goto out;
            ++*count;
        }
        uint64_t variant = store_get_be64(key + 16);
        if (variant == UINT64_MAX)
            break;
        store_be64(key + 16, variant + 1);
    }
out:
    if (c)
        mdb_cursor_close(c);
    return rc;
}

static int apply_prefix(store_t *s, MDB_txn *txn, store_work_t *w, store_op_t *op)
{
    store_purger_t *pg = s->pg;
    store_ban_t nb = { .seq = w->st.seq + 1, .prefix = (const char *)op->data, .len = (uint32_t)op->tags_len,
                       .soft = op->soft };
    size_t kept = 0;
    for (size_t i = 0; i < pg->nbans; i++)
        kept += !ban_subsumes(&nb, &pg->bans[i]);
    if (kept + w->new_bans >= STORE_BANS_MAX) {
        log_warn("store: prefix purge refused: %d bans are in force (their sweeps are running)", STORE_BANS_MAX);
        op->result = STORE_ERROR;
        return 0;
    }
    if (!op->own && !(op->own = malloc(op->tags_len + 1)))
        return ENOMEM;
    op->seq = ++w->st.seq;
    uint8_t kb[STORE_SEQ_LEN];
    for (size_t i = 0; i < pg->nbans; i++) {
        if (!ban_subsumes(&nb, &pg->bans[i]))
            continue;
        MDB_val k = store_seq_key(kb, pg->bans[i].seq);
        int rc = mdb_del(txn, s->db_purges, &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
        pg->prog[i].gone = op->seq;
    }
    w->new_bans++;
    w->purge_prefixes++;
    return 0;
}

int store_purge_apply(store_t *s, MDB_txn *txn, store_work_t *w, store_op_t *op)
{
    op->count = 0;
    if (op->kind == STORE_OP_PURGE_URL) {
        op->seq = ++w->st.seq;
        int how = op->soft ? STORE_URL_PURGE_SOFT : STORE_URL_PURGE_HARD;
        int rc = store_url_apply(s, txn, w, op->key, how, op->seq, &op->count);
        *(op->soft ? &w->purge_flagged : &w->purge_deleted) += op->count;
        w->purge_urls++;
        return rc;
    }
    if (op->kind == STORE_OP_PURGE_PREFIX) {
        int rc = apply_prefix(s, txn, w, op);
        if (rc || op->result != STORE_OK)
            return rc;
    } else {
        if (!op->own && !(op->own = calloc(1, sizeof(store_walk_t) + op->tags_len)))
            return ENOMEM;
        op->seq = ++w->st.seq;
        w->purge_tags++;
    }
    /* Persist what must survive a restart: the ban, or the walk to do. */
    uint8_t kb[STORE_SEQ_LEN];
    MDB_val k = store_seq_key(kb, op->seq), v = { 2 + op->tags_len, NULL };
    int rc = mdb_put(txn, s->db_purges, &k, &v, MDB_RESERVE);
    if (rc)
        return rc;
    uint8_t *p = v.mv_data;
    p[0] = op->kind == STORE_OP_PURGE_PREFIX ? PURGES_BAN : PURGES_TAG;
    p[1] = op->soft;
    memcpy(p + 2, op->data, op->tags_len);
    return 0;
}

/* Add a ban in force (prefix owned), its sweep starting where the sweep is. */
static void ban_add(store_purger_t *pg, uint64_t seq, char *prefix, size_t len, bool soft)
{
    pg->bans[pg->nbans] = (store_ban_t){ .seq = seq, .prefix = prefix, .len = (uint32_t)len, .soft = soft };
    pg->prog[pg->nbans] = (store_ban_prog_t){ .wrapped = false };
    memcpy(pg->prog[pg->nbans].start, pg->pos, STORE_KEY_LEN);
    pg->nbans++;
}

static void walk_add(store_purger_t *pg, store_walk_t *wk, uint64_t seq, const char *tag, size_t len, bool soft)
{
    uint8_t h[16];
    wk->seq = seq;
    wk->soft = soft;
    wk->len = len;
    memcpy(wk->tag, tag, len);
    store_walk_t **tail = &pg->walks;
    while (*tail)
        tail = &(*tail)->next;
    *tail = wk;
    pg->nwalks++;
    tag_hash(tag, len, h);
    recent_add(pg, RECENT_TAG, h, seq, soft);
}

void store_purge_committed(store_t *s, store_op_t *op)
{
    store_purger_t *pg = s->pg;
    if (op->status != STORE_OK)
        return;
    if (op->kind == STORE_OP_PURGE_URL) {
        recent_add(pg, RECENT_URL, op->key, op->seq, op->soft);
        return;
    }
    if (op->kind == STORE_OP_PURGE_TAG) {
        store_walk_t *wk = op->own;
        op->own = NULL;
        wk->done = op->pdone; /* the walk's end calls it */
        wk->ctx = op->ctx;
        op->pdone = NULL;
        walk_add(pg, wk, op->seq, (const char *)op->data, op->tags_len, op->soft);
        s->wstats.tag_walks = pg->nwalks;
        store_stats_publish(s);
        return;
    }
    for (size_t i = pg->nbans; i-- > 0;) {
        if (pg->prog[i].gone == op->seq) {
            free((void *)pg->bans[i].prefix);
            ban_remove(pg, i);
        }
    }
    char *prefix = op->own;
    op->own = NULL;
    memcpy(prefix, op->data, op->tags_len);
    ban_add(pg, op->seq, prefix, op->tags_len, op->soft);
    if (store_bans_publish(s))
        op->status = STORE_ERROR; /* persisted, and in force once a retry publishes it */
    s->wstats.bans = pg->nbans;
    store_stats_publish(s);
}

/* --- open and close --- */

static int load_purge(store_t *s, MDB_val k, MDB_val v)
{
    store_purger_t *pg = s->pg;
    const uint8_t *p = v.mv_data;
    if (k.mv_size != STORE_SEQ_LEN || v.mv_size < 2 || (p[0] != PURGES_BAN && p[0] != PURGES_TAG))
        return 0; /* not ours: ignored */
    uint64_t seq = store_get_be64(k.mv_data);
    size_t len = v.mv_size - 2;
    if (p[0] == PURGES_BAN) {
        if (pg->nbans == STORE_BANS_MAX || len > STORE_PREFIX_MAX)
            return 0;
        char *prefix = malloc(len + 1);
        if (!prefix)
            return ENOMEM;
        memcpy(prefix, p + 2, len);
        ban_add(pg, seq, prefix, len, p[1] != 0);
        return 0;
    }
    if (len == 0 || len > STORE_TAG_BYTES_LIMIT)
        return 0;
    store_walk_t *wk = calloc(1, sizeof *wk + len);
    if (!wk)
        return ENOMEM;
    walk_add(pg, wk, seq, (const char *)p + 2, len, p[1] != 0);
    return 0;
}

int store_purge_open(store_t *s, MDB_txn *txn)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    store_purger_t *pg = s->pg = calloc(1, sizeof *pg);
    if (!pg || !(pg->ring = calloc(STORE_RECENT_N, sizeof *pg->ring)) ||
        !(pg->heads = calloc(RECENT_BUCKETS, sizeof *pg->heads)) ||
        !(pg->bans = calloc(STORE_BANS_MAX, sizeof *pg->bans)) ||
        !(pg->prog = calloc(STORE_BANS_MAX, sizeof *pg->prog)))
        return ENOMEM;
    pg->floor = s->st.seq;
    int rc = mdb_cursor_open(txn, s->db_purges, &c);
    for (unsigned op = MDB_FIRST; rc == 0; op = MDB_NEXT)
        if ((rc = mdb_cursor_get(c, &k, &v, op)) == 0)
            rc = load_purge(s, k, v);
    if (c)
        mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return rc;
    if (pg->nbans || pg->nwalks)
        log_info("store: resuming %zu prefix bans and %zu tag purges", pg->nbans, pg->nwalks);
    s->wstats.bans = pg->nbans;
    s->wstats.tag_walks = pg->nwalks;
    return pg->nbans && store_bans_publish(s) ? ENOMEM : 0;
}

void store_purge_free(store_t *s)
{
    store_purger_t *pg = s->pg;
    if (pg) {
        for (size_t i = 0; i < pg->nbans; i++)
            free((void *)pg->bans[i].prefix);
        size_t nr = pg->nretired < STORE_RETIRED_N ? (size_t)pg->nretired : STORE_RETIRED_N;
        for (size_t i = 0; i < nr; i++)
            free((void *)pg->retired[i].prefix);
        while (pg->walks) {
            store_walk_t *wk = pg->walks;
            pg->walks = wk->next;
            free(wk);
        }
        free(pg->ring);
        free(pg->heads);
        free(pg->bans);
        free(pg->prog);
        free(pg);
        s->pg = NULL;
    }
    store_bans_release(s->ban_snap);
    s->ban_snap = NULL;
}
