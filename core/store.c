/* store: opening and closing the LMDB environment, and the read side
 * (see include/store.h; the on-disk layout is in store_internal.h).
 *
 * Reads run on loop threads in read transactions owned by a store_reader
 * (MDB_NOTLS), reset and renewed rather than reallocated so a hit costs no
 * malloc and keeps its reader slot. LRU touches are only remembered here;
 * the writer (store_writer.c) applies them. */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Smallest map worth running: a few chunked objects plus LMDB's own pages. */
#define STORE_MIN_SIZE (1024 * 1024)
#define STORE_HIGH_PCT_DEFAULT 80
/* Cap on the puts gathered in one batch, whatever the map size: bounds a
 * commit's latency and its dirty page list. */
#define STORE_BATCH_BUDGET_MAX (64ull * 1024 * 1024)
#define TOUCH_SLOTS (2 * STORE_TOUCH_MAX)

struct store_reader {
    store_t *s;
    MDB_txn *txn;             /* NULL until the first begin; reset between reads */
    bool active;
    size_t ntouch;
    uint8_t touch[STORE_TOUCH_MAX][STORE_KEY_LEN];
    uint16_t slot[TOUCH_SLOTS]; /* open-addressing set over touch[]: index + 1, 0 = empty */
};

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void store_rec_encode(uint8_t *p, const store_rec_t *h)
{
    p[0] = 1; /* record version */
    p[1] = 0;
    p[2] = p[3] = 0;
    store_le32(p + 4, h->url_len);
    store_le32(p + 8, h->meta_len);
    store_le32(p + 12, h->nchunks);
    store_le64(p + 16, h->oid);
    store_le64(p + 24, h->body_len);
    store_le64(p + 32, h->cost);
}

const char *store_strerror(int code)
{
    switch (code) {
    case STORE_OK: return "ok";
    case STORE_NOTFOUND: return "not found";
    case STORE_ERROR: return "storage error";
    case STORE_CLOSED: return "store closed";
    }
    return "unknown store error";
}

int store_rec_decode(const void *v, size_t n, store_rec_t *h)
{
    const uint8_t *p = v;
    if (n < STORE_REC_HDR || p[0] != 1)
        return -EINVAL;
    h->url_len = store_get_le32(p + 4);
    h->meta_len = store_get_le32(p + 8);
    h->nchunks = store_get_le32(p + 12);
    h->oid = store_get_le64(p + 16);
    h->body_len = store_get_le64(p + 24);
    h->cost = store_get_le64(p + 32);
    uint64_t inl = h->body_len <= STORE_INLINE_MAX ? h->body_len : 0;
    if ((uint64_t)STORE_REC_HDR + h->url_len + h->meta_len + inl != n)
        return -EINVAL;
    if (h->nchunks != store_nchunks(h->body_len))
        return -EINVAL;
    return 0;
}

/* mkdir -p: the configured cache_dir may name a tree that does not exist yet. */
static int mkdirs(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -errno;
        path[i] = c;
    }
    return 0;
}

static int state_read(store_t *s, MDB_txn *txn, store_state_t *st)
{
    MDB_val k = { 5, "state" }, v;
    int rc = mdb_get(txn, s->db_info, &k, &v);
    if (rc == MDB_NOTFOUND) {
        memset(st, 0, sizeof *st);
        st->next_oid = st->next_seq = 1;
        return 0;
    }
    if (rc)
        return rc;
    const uint8_t *p = v.mv_data;
    if (v.mv_size != STORE_STATE_LEN || store_get_le64(p) != STORE_FORMAT)
        return MDB_INCOMPATIBLE;
    st->next_oid = store_get_le64(p + 8);
    st->next_seq = store_get_le64(p + 16);
    st->bytes = store_get_le64(p + 24);
    st->objects = store_get_le64(p + 32);
    return 0;
}

/* Counters must stay above every key already used: chunks and LRU entries
 * are written with MDB_APPEND, which fails on a smaller key. The state is
 * committed with the data so this never triggers; it is a cheap guard. */
static int state_fixup(store_t *s, MDB_txn *txn, store_state_t *st)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, s->db_chunk, &c);
    if (rc)
        goto out;
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == STORE_CKEY_LEN && store_get_be64(k.mv_data) >= st->next_oid)
        st->next_oid = store_get_be64(k.mv_data) + 1;
    mdb_cursor_close(c);
    c = NULL;
    if (rc && rc != MDB_NOTFOUND)
        goto out;
    rc = mdb_cursor_open(txn, s->db_lru, &c);
    if (rc)
        goto out;
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == STORE_SEQ_LEN && store_get_be64(k.mv_data) >= st->next_seq)
        st->next_seq = store_get_be64(k.mv_data) + 1;
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    if (c)
        mdb_cursor_close(c);
    return rc;
}

void store_stats_publish(store_t *s)
{
    pthread_mutex_lock(&s->stats_mu);
    s->stats = s->wstats;
    s->stats.objects = s->st.objects;
    s->stats.bytes = s->st.bytes;
    pthread_mutex_unlock(&s->stats_mu);
}

int store_txn_begin(store_t *s, MDB_txn **txn, store_work_t *w)
{
    memset(w, 0, sizeof *w);
    w->st = s->st;
    return mdb_txn_begin(s->env, NULL, 0, txn);
}

int store_txn_commit(store_t *s, MDB_txn *txn, const store_work_t *w)
{
    uint8_t buf[STORE_STATE_LEN];
    store_le64(buf, STORE_FORMAT);
    store_le64(buf + 8, w->st.next_oid);
    store_le64(buf + 16, w->st.next_seq);
    store_le64(buf + 24, w->st.bytes);
    store_le64(buf + 32, w->st.objects);
    MDB_val k = { 5, "state" }, v = { sizeof buf, buf };
    int rc = mdb_put(txn, s->db_info, &k, &v, 0);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        return rc;
    s->st = w->st;
    s->wstats.puts += w->puts;
    s->wstats.deletes += w->deletes;
    s->wstats.evictions += w->evictions;
    s->wstats.commits++;
    store_stats_publish(s);
    return 0;
}

/* Bounds derived from the map; store_writer.c's opening comment explains
 * the fractions. */
static void set_bounds(store_t *s, unsigned pct)
{
    if (pct == 0)
        pct = STORE_HIGH_PCT_DEFAULT;
    if (pct < 10)
        pct = 10;
    if (pct > 99)
        pct = 99;
    s->high_water = s->map_size / 100 * pct;
    /* Hysteresis: one eviction makes room for several batches. */
    uint64_t hyst = s->map_size / 20;
    s->low_water = s->high_water > hyst ? s->high_water - hyst : 0;
    s->object_max = s->map_size / 4 < s->high_water / 2 ? s->map_size / 4 : s->high_water / 2;
    s->batch_budget = s->high_water / 4 < STORE_BATCH_BUDGET_MAX ? s->high_water / 4 : STORE_BATCH_BUDGET_MAX;
}

static int open_env(store_t *s, const store_opts_t *opts, uint64_t size, char *err, size_t errlen)
{
    int rc = mdb_env_create(&s->env);
    if (rc)
        goto out;
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)size)) != 0)
        goto out;
    if ((rc = mdb_env_set_maxreaders(s->env, opts->max_readers ? opts->max_readers : 126)) != 0)
        goto out;
    if ((rc = mdb_env_set_maxdbs(s->env, 8)) != 0)
        goto out;
    /* MDB_NOTLS: read txns belong to store_readers, not threads.
     * MDB_NORDAHEAD: lookups are random over a map usually larger than
     * RAM; readahead would fill the page cache with neighbours nobody
     * asked for. Chunk reads, which are sequential, ask for their own
     * pages with madvise (store_get_chunk).
     * MDB_NOMETASYNC (sync_commit): one fsync of the data per commit; the
     * meta page reaches disk with the next commit, so power loss may undo
     * the last batch but never corrupts the file.
     * MDB_NOSYNC: no fsync at all. A killed process loses nothing (the
     * page cache has it), but power loss or a kernel crash may lose recent
     * batches or corrupt the file; the operator must then wipe the cache
     * directory. store_close syncs, so a clean shutdown is durable. */
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (opts->sync_commit ? MDB_NOMETASYNC : MDB_NOSYNC);
    rc = mdb_env_open(s->env, opts->dir, flags, 0644);
out:
    if (rc)
        errf(err, errlen, "store: cannot open LMDB environment in %s: %s", opts->dir, mdb_strerror(rc));
    return rc ? -1 : 0;
}

static int open_dbs(store_t *s, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        goto out;
    if ((rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &s->db_obj)) != 0 ||
        (rc = mdb_dbi_open(txn, "chunks", MDB_CREATE, &s->db_chunk)) != 0 ||
        (rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &s->db_lru)) != 0 ||
        (rc = mdb_dbi_open(txn, "lru_idx", MDB_CREATE, &s->db_lidx)) != 0 ||
        (rc = mdb_dbi_open(txn, "info", MDB_CREATE, &s->db_info)) != 0)
        goto out;
    if ((rc = state_read(s, txn, &s->st)) != 0 || (rc = state_fixup(s, txn, &s->st)) != 0)
        goto out;
    store_work_t w = { .st = s->st };
    rc = store_txn_commit(s, txn, &w);
    txn = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    if (rc)
        errf(err, errlen, "store: cannot set up databases: %s%s", mdb_strerror(rc),
             rc == MDB_INCOMPATIBLE ? " (written by another version: remove the cache directory)" : "");
    return rc ? -1 : 0;
}

static void store_free(store_t *s)
{
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_mutex_destroy(&s->stats_mu);
    free(s);
}

int store_open(store_t **out, const store_opts_t *opts, char *err, size_t errlen)
{
    int rc = -EIO; /* the reason is in err */
    store_t *s = NULL;
    *out = NULL;
    if (!opts || !opts->dir || !opts->dir[0]) {
        errf(err, errlen, "store: no cache directory given");
        goto out;
    }
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t size = opts->size - opts->size % (uint64_t)(pg > 0 ? pg : 4096);
    if (size < STORE_MIN_SIZE || size > SIZE_MAX) {
        errf(err, errlen, "store: cache size %llu out of range (at least %d bytes)",
             (unsigned long long)opts->size, STORE_MIN_SIZE);
        goto out;
    }
    if (!(s = calloc(1, sizeof *s))) {
        errf(err, errlen, "store: out of memory");
        goto out;
    }
    s->lock_fd = -1;
    s->batch_ms = opts->batch_ms ? opts->batch_ms : 5;
    s->q_tail = &s->q_head;
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_mutex_init(&s->stats_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->q_cv, &ca);
    pthread_condattr_destroy(&ca);

    int e = mkdirs(opts->dir);
    if (e) {
        errf(err, errlen, "store: cannot create %s: %s", opts->dir, strerror(-e));
        goto out;
    }
    /* LMDB's own lock file only coordinates readers and the writer; two
     * processes each running a writer thread and evicting would fight over
     * the LRU and the counters, so one process owns the directory. */
    char lockpath[PATH_MAX];
    if (snprintf(lockpath, sizeof lockpath, "%s/store.lock", opts->dir) >= (int)sizeof lockpath) {
        errf(err, errlen, "store: path too long: %s", opts->dir);
        goto out;
    }
    s->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        errf(err, errlen, "store: cannot open %s: %s", lockpath, strerror(errno));
        goto out;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            errf(err, errlen, "store: %s is in use by another process (lock %s is held)", opts->dir, lockpath);
        else
            errf(err, errlen, "store: cannot lock %s: %s", lockpath, strerror(errno));
        goto out;
    }
    if (open_env(s, opts, size, err, errlen))
        goto out;
    int dead = 0;
    if (mdb_reader_check(s->env, &dead) == 0 && dead > 0)
        log_warn("store: cleared %d reader slot(s) left by a dead process in %s", dead, opts->dir);

    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &st);
    /* LMDB keeps the map at least as large as the data already in the
     * file, so the real size may exceed a shrunk configuration. */
    s->map_size = info.me_mapsize;
    s->psize = st.ms_psize;
    /* Same formula as LMDB's me_nodemax: ((psize - PAGEHDRSZ) / MDB_MINKEYS, even) - sizeof(indx_t). */
    s->nodemax = (((st.ms_psize - 16) / 2) & ~1u) - 2;
    set_bounds(s, opts->high_water_pct);
    s->wstats.map_size = s->map_size;
    s->wstats.bytes_max = s->high_water;
    s->wstats.object_max = s->object_max;

    if (open_dbs(s, err, errlen))
        goto out;
    s->wstats.commits = 0; /* the set-up commit is not a writer commit */
    store_stats_publish(s);
    if (store_writer_start(s)) {
        errf(err, errlen, "store: cannot start the writer thread");
        goto out;
    }
    rc = 0;
out:
    if (rc && s)
        store_free(s);
    else if (rc == 0)
        *out = s;
    return rc;
}

void store_close(store_t *s)
{
    if (!s)
        return;
    store_writer_stop(s);
    /* Makes a clean shutdown durable under MDB_NOSYNC too. */
    int rc = mdb_env_sync(s->env, 1);
    if (rc)
        log_error("store: sync at close: %s", mdb_strerror(rc));
    store_free(s);
}

void store_get_stats(store_t *s, store_stats_t *out)
{
    pthread_mutex_lock(&s->stats_mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->stats_mu);
}

/* --- readers --- */

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
    free(r);
}

int store_read_begin(store_reader_t *r)
{
    int rc;
    if (r->active)
        store_read_end(r);
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
    if (store_rec_decode(v.mv_data, v.mv_size, &h)) {
        log_error("store: malformed object record (%zu bytes)", v.mv_size);
        return STORE_ERROR;
    }
    const uint8_t *p = (const uint8_t *)v.mv_data + STORE_REC_HDR;
    out->url = (const char *)p;
    out->url_len = h.url_len;
    out->meta = p + h.url_len;
    out->meta_len = h.meta_len;
    out->body_len = h.body_len;
    out->body = h.nchunks ? NULL : p + h.url_len + h.meta_len;
    out->object_id = h.oid;
    out->nchunks = h.nchunks;
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
