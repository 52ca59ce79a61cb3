/* store: opening and closing the LMDB environment, the format check, the
 * record codec and the transaction helpers every writer path shares (see
 * include/store.h; the on-disk layout is in store_internal.h; the read
 * side is store_read.c).
 *
 * The format check. A cache directory written by another format is never
 * read: decoding it with this build's layout could serve a wrong body. It
 * is renamed aside whole (the operator may inspect or delete it) and the
 * node starts cold. An LMDB file this LMDB cannot open (MDB_INVALID,
 * MDB_VERSION_MISMATCH) counts as unknown format 0. */
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
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Smallest map worth running: a few chunked objects plus LMDB's own pages. */
#define STORE_MIN_SIZE (1024 * 1024)
#define STORE_HIGH_PCT_DEFAULT 80
/* Cap on the puts gathered in one batch, whatever the map size: bounds a
 * commit's latency and its dirty page list. */
#define STORE_BATCH_BUDGET_MAX (64ull * 1024 * 1024)
#define STORE_MAX_TAGS_DEFAULT 32
#define STORE_MAX_TAG_BYTES_DEFAULT 128

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
    p[0] = STORE_FORMAT; /* record version */
    p[1] = h->flags;
    p[2] = p[3] = 0;
    store_le32(p + 4, h->url_len);
    store_le32(p + 8, h->meta_len);
    store_le32(p + 12, h->nchunks);
    store_le64(p + 16, h->oid);
    store_le64(p + 24, h->body_len);
    store_le64(p + 32, h->cost);
    store_le64(p + 40, h->seq);
    store_le64(p + 48, h->stale_seq);
    store_le32(p + 56, h->tags_len);
    store_le32(p + 60, 0);
}

const char *store_strerror(int code)
{
    switch (code) {
    case STORE_OK: return "ok";
    case STORE_NOTFOUND: return "not found";
    case STORE_ERROR: return "storage error";
    case STORE_CLOSED: return "store closed";
    case STORE_PURGED: return "purged while it was being fetched";
    }
    return "unknown store error";
}

int store_rec_decode(const void *v, size_t n, store_rec_t *h, store_rec_view_t *view)
{
    const uint8_t *p = v;
    if (n < STORE_REC_HDR || p[0] != STORE_FORMAT)
        return -EINVAL;
    h->flags = p[1];
    h->url_len = store_get_le32(p + 4);
    h->meta_len = store_get_le32(p + 8);
    h->nchunks = store_get_le32(p + 12);
    h->oid = store_get_le64(p + 16);
    h->body_len = store_get_le64(p + 24);
    h->cost = store_get_le64(p + 32);
    h->seq = store_get_le64(p + 40);
    h->stale_seq = store_get_le64(p + 48);
    h->tags_len = store_get_le32(p + 56);
    uint64_t inl = h->body_len <= STORE_INLINE_MAX ? h->body_len : 0;
    if ((uint64_t)STORE_REC_HDR + h->url_len + h->meta_len + h->tags_len + inl != n)
        return -EINVAL;
    if (h->nchunks != store_nchunks(h->body_len))
        return -EINVAL;
    if (view) {
        view->url = (const char *)p + STORE_REC_HDR;
        view->meta = (const uint8_t *)view->url + h->url_len;
        view->tags = (const char *)view->meta + h->meta_len;
        view->body = h->nchunks ? NULL : (const uint8_t *)view->tags + h->tags_len;
    }
    return 0;
}

int store_rec_rewrite(store_t *s, MDB_txn *txn, const uint8_t key[STORE_KEY_LEN], MDB_val old, const store_rec_t *h,
                      const void *meta)
{
    store_rec_t oh;
    store_rec_view_t ov;
    if (store_rec_decode(old.mv_data, old.mv_size, &oh, &ov))
        return MDB_CORRUPTED;
    /* The old value lives in pages this txn may reuse: copy what is kept out first. */
    size_t inl = oh.nchunks ? 0 : (size_t)oh.body_len;
    size_t keep = oh.url_len + oh.tags_len + inl;
    uint8_t *copy = malloc(keep + h->meta_len + 1);
    if (!copy)
        return ENOMEM;
    memcpy(copy, ov.url, oh.url_len);
    memcpy(copy + oh.url_len, meta, h->meta_len);
    memcpy(copy + oh.url_len + h->meta_len, ov.tags, oh.tags_len + inl);
    MDB_val k = { STORE_KEY_LEN, (void *)key }, nv = { STORE_REC_HDR + keep + h->meta_len, NULL };
    int rc = mdb_put(txn, s->db_obj, &k, &nv, MDB_RESERVE);
    if (rc == 0) {
        store_rec_encode(nv.mv_data, h);
        memcpy((uint8_t *)nv.mv_data + STORE_REC_HDR, copy, keep + h->meta_len);
    }
    free(copy);
    return rc;
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
        /* seq starts at 1: store_seq() is never 0, which means "no check". */
        st->next_oid = st->next_lru = st->seq = 1;
        return 0;
    }
    if (rc)
        return rc;
    const uint8_t *p = v.mv_data;
    if (v.mv_size != STORE_STATE_LEN)
        return MDB_INCOMPATIBLE;
    st->next_oid = store_get_le64(p);
    st->next_lru = store_get_le64(p + 8);
    st->seq = store_get_le64(p + 16);
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
    if (rc == 0 && k.mv_size == STORE_SEQ_LEN && store_get_be64(k.mv_data) >= st->next_lru)
        st->next_lru = store_get_be64(k.mv_data) + 1;
    mdb_cursor_close(c);
    c = NULL;
    if (rc && rc != MDB_NOTFOUND)
        goto out;
    /* A purge's seq must stay above every seq already given out. */
    rc = mdb_cursor_open(txn, s->db_purges, &c);
    if (rc)
        goto out;
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == STORE_SEQ_LEN && store_get_be64(k.mv_data) > st->seq)
        st->seq = store_get_be64(k.mv_data);
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    if (c)
        mdb_cursor_close(c);
    return rc;
}

void store_stats_publish(store_t *s)
{
    atomic_store_explicit(&s->seq_pub, s->st.seq, memory_order_release);
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
    store_le64(buf, w->st.next_oid);
    store_le64(buf + 8, w->st.next_lru);
    store_le64(buf + 16, w->st.seq);
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
    s->wstats.purge_urls += w->purge_urls;
    s->wstats.purge_tags += w->purge_tags;
    s->wstats.purge_prefixes += w->purge_prefixes;
    s->wstats.purge_deleted += w->purge_deleted;
    s->wstats.purge_flagged += w->purge_flagged;
    s->wstats.purge_swept += w->purge_swept;
    s->wstats.purge_dropped += w->purge_dropped;
    s->wstats.commits++;
    store_stats_publish(s);
    return 0;
}

int store_txn_end(store_t *s, MDB_txn *txn, MDB_cursor *c, const store_work_t *w, int rc, bool commit)
{
    if (c)
        mdb_cursor_close(c);
    if (!txn)
        return rc;
    if (rc == 0 && commit)
        return store_txn_commit(s, txn, w);
    mdb_txn_abort(txn);
    return rc;
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

/* Open the environment; returns an LMDB error (the env is then closed). */
static int open_env(store_t *s, const store_opts_t *opts, uint64_t size)
{
    int rc = mdb_env_create(&s->env);
    if (rc)
        goto out;
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)size)) != 0)
        goto out;
    if ((rc = mdb_env_set_maxreaders(s->env, opts->max_readers ? opts->max_readers : 126)) != 0)
        goto out;
    if ((rc = mdb_env_set_maxdbs(s->env, 16)) != 0)
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
    if (rc && s->env) {
        mdb_env_close(s->env);
        s->env = NULL;
    }
    return rc;
}

/* The format of the cache in the open environment: STORE_FORMAT for ours
 * or a new one, else what the directory holds (0 = unknown). Returns 0 or
 * an LMDB error. */
static int format_check(store_t *s, uint64_t *found)
{
    MDB_txn *txn = NULL;
    MDB_dbi main_db, info;
    MDB_stat st;
    *found = STORE_FORMAT;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc || (rc = mdb_dbi_open(txn, NULL, 0, &main_db)) != 0 || (rc = mdb_stat(txn, main_db, &st)) != 0)
        goto out;
    if (st.ms_entries == 0)
        goto out; /* no databases yet: a new cache */
    *found = 0;
    rc = mdb_dbi_open(txn, "info", 0, &info);
    if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    MDB_val k = { 6, "format" }, v;
    if (mdb_get(txn, info, &k, &v) == 0) {
        if (v.mv_size == 8)
            *found = store_get_le64(v.mv_data);
        goto out;
    }
    /* Format 1 had no "format" key: its "state" began with the number. */
    k = (MDB_val){ 5, "state" };
    if (mdb_get(txn, info, &k, &v) == 0 && v.mv_size >= 8)
        *found = store_get_le64(v.mv_data);
out:
    if (txn)
        mdb_txn_abort(txn);
    return rc;
}

static void close_dir(store_t *s)
{
    if (s->env)
        mdb_env_close(s->env);
    s->env = NULL;
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    s->lock_fd = -1;
}

/* Create and lock opts->dir, open its environment and check its format.
 * Returns 0 (ours or new), 1 (another format: *found) or -1 (err set). */
static int open_dir(store_t *s, const store_opts_t *opts, uint64_t size, uint64_t *found, char *err, size_t errlen)
{
    int e = mkdirs(opts->dir);
    if (e) {
        errf(err, errlen, "store: cannot create %s: %s", opts->dir, strerror(-e));
        return -1;
    }
    /* LMDB's own lock file only coordinates readers and the writer; two
     * processes each running a writer thread and evicting would fight over
     * the LRU and the counters, so one process owns the directory. */
    char lockpath[PATH_MAX];
    if (snprintf(lockpath, sizeof lockpath, "%s/store.lock", opts->dir) >= (int)sizeof lockpath) {
        errf(err, errlen, "store: path too long: %s", opts->dir);
        return -1;
    }
    s->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        errf(err, errlen, "store: cannot open %s: %s", lockpath, strerror(errno));
        return -1;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            errf(err, errlen, "store: %s is in use by another process (lock %s is held)", opts->dir, lockpath);
        else
            errf(err, errlen, "store: cannot lock %s: %s", lockpath, strerror(errno));
        return -1;
    }
    int rc = open_env(s, opts, size);
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
        *found = 0;
        return 1;
    }
    if (rc == 0)
        rc = format_check(s, found);
    if (rc) {
        errf(err, errlen, "store: cannot open LMDB environment in %s: %s", opts->dir, mdb_strerror(rc));
        return -1;
    }
    return *found == STORE_FORMAT ? 0 : 1;
}

/* Rename dir (holding format `found`) to dir.old-v<found>-<unix time>. */
static int move_aside(const char *dir, uint64_t found, char *err, size_t errlen)
{
    char from[PATH_MAX], to[PATH_MAX];
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    memcpy(from, dir, n); /* n < PATH_MAX: open_dir built a longer path from it */
    from[n] = '\0';
    unsigned long long v = (unsigned long long)found;
    if (snprintf(to, sizeof to, "%s.old-v%llu-%lld", from, v, (long long)time(NULL)) >= (int)sizeof to) {
        errf(err, errlen, "store: %s holds cache format v%llu (this build reads v%d) and its name is too long to move it aside",
             from, v, STORE_FORMAT);
        return -1;
    }
    if (rename(from, to) != 0) {
        errf(err, errlen,
             "store: %s holds cache format v%llu, which this build (v%d) does not read, and moving it aside to %s "
             "failed: %s; move or remove it",
             from, v, STORE_FORMAT, to, strerror(errno));
        return -1;
    }
    log_warn("store: %s held cache format v%llu, which this build (v%d) does not read: moved it aside to %s, "
             "starting with an empty cache",
             from, v, STORE_FORMAT, to);
    return 0;
}

static int open_dbs(store_t *s, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    uint8_t fmt[8];
    store_le64(fmt, STORE_FORMAT);
    MDB_val fk = { 6, "format" }, fv = { sizeof fmt, fmt };
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        goto out;
    if ((rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &s->db_obj)) != 0 ||
        (rc = mdb_dbi_open(txn, "chunks", MDB_CREATE, &s->db_chunk)) != 0 ||
        (rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &s->db_lru)) != 0 ||
        (rc = mdb_dbi_open(txn, "lru_idx", MDB_CREATE, &s->db_lidx)) != 0 ||
        (rc = mdb_dbi_open(txn, "tags", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &s->db_tags)) != 0 ||
        (rc = mdb_dbi_open(txn, "purges", MDB_CREATE, &s->db_purges)) != 0 ||
        (rc = mdb_dbi_open(txn, "info", MDB_CREATE, &s->db_info)) != 0)
        goto out;
    if ((rc = mdb_put(txn, s->db_info, &fk, &fv, 0)) != 0)
        goto out;
    if ((rc = state_read(s, txn, &s->st)) != 0 || (rc = state_fixup(s, txn, &s->st)) != 0)
        goto out;
    if ((rc = store_purge_open(s, txn)) != 0)
        goto out;
    store_work_t w = { .st = s->st };
    rc = store_txn_commit(s, txn, &w);
    txn = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    if (rc)
        errf(err, errlen, "store: cannot set up databases: %s", mdb_strerror(rc));
    return rc ? -1 : 0;
}

static void store_free(store_t *s)
{
    store_purge_free(s);
    close_dir(s);
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_mutex_destroy(&s->stats_mu);
    pthread_mutex_destroy(&s->ban_mu);
    free(s);
}

static unsigned clamp_opt(unsigned v, unsigned dflt, unsigned max)
{
    return v == 0 ? dflt : v > max ? max : v;
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
    s->max_tags = clamp_opt(opts->max_tags, STORE_MAX_TAGS_DEFAULT, STORE_TAGS_LIMIT);
    s->max_tag_bytes = clamp_opt(opts->max_tag_bytes, STORE_MAX_TAG_BYTES_DEFAULT, STORE_TAG_BYTES_LIMIT);
    s->q_tail = &s->q_head;
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_mutex_init(&s->stats_mu, NULL);
    pthread_mutex_init(&s->ban_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->q_cv, &ca);
    pthread_condattr_destroy(&ca);

    for (int moved = 0;; moved++) {
        uint64_t found = 0;
        int r = open_dir(s, opts, size, &found, err, errlen);
        if (r == 0)
            break;
        close_dir(s);
        if (r < 0)
            goto out;
        if (moved) {
            errf(err, errlen, "store: %s still holds format v%llu after moving the old cache aside", opts->dir,
                 (unsigned long long)found);
            goto out;
        }
        if (move_aside(opts->dir, found, err, errlen))
            goto out;
    }
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
    s->wstats.map_used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
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

uint64_t store_seq(store_t *s)
{
    return atomic_load_explicit(&s->seq_pub, memory_order_acquire);
}

void store_get_stats(store_t *s, store_stats_t *out)
{
    pthread_mutex_lock(&s->stats_mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->stats_mu);
}

bool store_healthy(store_t *s)
{
    pthread_mutex_lock(&s->stats_mu);
    bool ok = !s->stats.failing;
    pthread_mutex_unlock(&s->stats_mu);
    return ok;
}

