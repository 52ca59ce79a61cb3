/* store_internal.h: what the store's files (store*.c) share.
 *
 * Not part of the public interface (include/store.h). It holds the store
 * struct, the writer's operation queue entries and the on-disk layout,
 * which is written down here once so every file encodes it the same way.
 *
 * On-disk layout (format STORE_FORMAT = 2). Keys are big-endian so LMDB's
 * memcmp order is numeric order (LRU age, chunk index, variants of a URL
 * hash adjacent). Record fields are little-endian, encoded byte by byte:
 * the file does not depend on host order or alignment (LMDB only
 * guarantees 2-byte alignment of values).
 *
 *   objects  key  hash[16] || variant BE64                      (24 bytes)
 *            val  version u8 (=2) | flags u8 (bit 0: stale) | reserved u16
 *                 | url_len LE32 | meta_len LE32 | nchunks LE32
 *                 | object_id LE64 | body_len LE64 | cost LE64
 *                 | seq LE64 | stale_seq LE64 | tags_len LE32 | reserved LE32
 *                                                                (64 bytes)
 *                 then url, meta, tags ("tag\n" lines), and the body when
 *                 body_len <= STORE_INLINE_MAX
 *   chunks   key  object_id BE64 || index BE32                  (12 bytes)
 *            val  STORE_CHUNK_SIZE bytes (the last chunk: the rest)
 *   lru      key  lru seq BE64 (oldest first)  val  objects key (24 bytes)
 *   lru_idx  key  objects key (24 bytes)       val  lru seq BE64
 *   tags     key  tag bytes (dupsort, dupfixed) val objects key (24 bytes)
 *   purges   key  seq BE64   val  kind u8 (1 prefix ban, 2 tag walk)
 *                                 | soft u8 | prefix or tag bytes
 *   info     key  "format"  val  STORE_FORMAT LE64
 *            key  "state"   val  next_object_id LE64 | next_lru LE64 | seq LE64
 *                                | bytes LE64 | objects LE64
 *
 * `seq` is the store sequence (store_seq): each put and each purge takes
 * the next number at commit. A record's seq is its put's (or that of the
 * revalidation that cleared its stale mark); stale_seq is the soft purge
 * that marked it (0 when not stale). A purge applies to the records whose
 * seq is below its own. `purges` holds what must survive a restart: the
 * prefix bans in force and the tag walks not yet finished.
 *
 * `cost` is the accounted size charged when the object was written; a
 * delete subtracts exactly that, so accounting never drifts even if the
 * estimate formula changes between versions.
 *
 * The LRU position lives in lru_idx rather than in the object record:
 * moving an object in the LRU then rewrites two small nodes instead of a
 * record that may carry 16 KiB of inline body and metadata (LMDB copies a
 * whole overflow value on any update). */
#ifndef CDN_STORE_INTERNAL_H
#define CDN_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

#define STORE_FORMAT 2
#define STORE_KEY_LEN 24
#define STORE_CKEY_LEN 12
#define STORE_SEQ_LEN 8
#define STORE_REC_HDR 64
#define STORE_STATE_LEN 40
#define STORE_REC_STALE 0x01
/* Bounds on store_opts_t.max_tags / max_tag_bytes (LMDB's key size limit). */
#define STORE_TAGS_LIMIT 1024
#define STORE_TAG_BYTES_LIMIT 511
/* Keys a reader gathers before handing them to the writer unprompted. */
#define STORE_TOUCH_MAX 512

/* The persistent counters (info "state"), as of some transaction. */
typedef struct store_state {
    uint64_t next_oid;
    uint64_t next_lru;
    uint64_t seq;             /* last store sequence number given out */
    uint64_t bytes;
    uint64_t objects;
} store_state_t;

/* A write transaction's view: the state it will commit, plus statistics
 * that count only once the commit succeeded. */
typedef struct store_work {
    store_state_t st;
    uint64_t puts, deletes, evictions;
    uint64_t purge_urls, purge_tags, purge_prefixes;
    uint64_t purge_deleted, purge_flagged, purge_swept, purge_dropped;
    unsigned new_bans;        /* bans this txn adds (the STORE_BANS_MAX check) */
} store_work_t;

/* A decoded object record header. */
typedef struct store_rec {
    uint8_t flags;
    uint32_t url_len, meta_len, tags_len, nchunks;
    uint64_t oid, body_len, cost, seq, stale_seq;
} store_rec_t;

/* Pointers into a decoded record (valid as the value they point into). */
typedef struct store_rec_view {
    const char *url, *tags;
    const uint8_t *meta, *body; /* body: NULL when chunked */
} store_rec_view_t;

/* One prefix ban. In a store_bans_t snapshot, prefix points into the
 * snapshot's own allocation. */
typedef struct store_ban {
    uint64_t seq;
    const char *prefix;
    uint32_t len;
    bool soft;
} store_ban_t;

/* An immutable snapshot of the bans in force, shared by readers through a
 * reference count (store_read.c takes one per read_begin when it changed). */
typedef struct store_bans {
    atomic_uint refs;
    size_t n;
    store_ban_t b[];
} store_bans_t;

/* What purges match an object: nothing, only soft ones, or a hard one. */
enum { STORE_MATCH_NONE, STORE_MATCH_SOFT, STORE_MATCH_HARD };

enum store_op_kind {
    STORE_OP_PUT,
    STORE_OP_DELETE,
    STORE_OP_DELETE_URL,
    STORE_OP_UPDATE_META,
    STORE_OP_TOUCH,
    STORE_OP_SYNC,
    STORE_OP_PURGE_URL,
    STORE_OP_PURGE_TAG,
    STORE_OP_PURGE_PREFIX,
};

/* One queued operation; owned by the queue, then by the writer, which
 * frees it after running done. */
typedef struct store_op {
    struct store_op *next;
    int kind;
    int status;               /* handed to done */
    int result;               /* set while applied: the status if the txn commits */
    bool failed;              /* rejected before any transaction (status set) */
    bool soft;                /* purges */
    uint8_t key[STORE_KEY_LEN]; /* put, delete; delete_url and purge_url use the first 16 bytes */
    store_done_fn done;
    store_purged_fn pdone;    /* purges (instead of done) */
    void *ctx;
    store_body_fn body;       /* put */
    uint64_t body_len;
    uint64_t cost;            /* put: accounted bytes once stored */
    size_t url_len, meta_len; /* put: url, meta, tags in data[]; update_meta: meta in data[] */
    size_t tags_len;          /* put: normalised "tag\n" lines; purge_tag, purge_prefix: bytes in data[] */
    uint64_t oid;             /* update_meta: the version it applies to */
    uint64_t start_seq;       /* put, update_meta: store_seq() when the fetch began (0 = no check) */
    uint64_t seq;             /* purges: the sequence number given at apply */
    uint64_t count;           /* purges: objects affected */
    void *own;                /* purges: memory the bookkeeping takes over at commit (else freed with op) */
    size_t ntouch;            /* touch: ntouch encoded keys in data[] */
    uint8_t data[];
} store_op_t;

/* A tag purge whose walk of the tag index is under way (writer). */
typedef struct store_walk {
    struct store_walk *next;
    uint64_t seq, count;
    bool soft, started;       /* started: last[] holds the last key handled */
    unsigned fails;
    store_purged_fn done;     /* NULL for a walk resumed at open */
    void *ctx;
    uint8_t last[STORE_KEY_LEN];
    size_t len;
    char tag[];
} store_walk_t;

/* Sweep progress of one ban: it is through when the sweep, having passed
 * the end of the objects once since the ban began, is back at start. */
typedef struct store_ban_prog {
    uint8_t start[STORE_KEY_LEN];
    bool wrapped;
    uint64_t gone;            /* seq of the purge that subsumes it (in its txn) */
} store_ban_prog_t;

/* One remembered URL or tag purge (store_purge.c's recent record). */
typedef struct store_recent {
    uint8_t h[16];            /* URL hash, or hash of the tag */
    uint64_t seq;
    uint32_t next;            /* older entry of the same bucket: index + 1 */
    uint32_t bucket;
    uint8_t kind;
    bool soft;
} store_recent_t;

#define STORE_RECENT_N 65536  /* URL and tag purges remembered */
#define STORE_RETIRED_N 256   /* bans remembered after their sweep */

/* The writer's purge bookkeeping. */
typedef struct store_purger {
    /* Recent URL and tag purges: a ring, chained per hash bucket (newest
     * first); `floor` is the newest seq forgotten. */
    store_recent_t *ring;
    uint32_t *heads;
    uint64_t nrecent;
    uint64_t floor;
    /* Bans in force, in seq order (prefixes owned), and their progress. */
    store_ban_t *bans;
    store_ban_prog_t *prog;
    size_t nbans;
    bool dirty;               /* the readers' snapshot is out of date */
    /* Bans whose sweep is over: a put that began before them must still lose. */
    store_ban_t retired[STORE_RETIRED_N];
    uint64_t nretired;
    /* Tag walks, served round robin. */
    store_walk_t *walks;
    size_t nwalks;
    /* The sweep: next key to visit. */
    uint8_t pos[STORE_KEY_LEN];
    unsigned sweep_fails;
    bool turn;                /* alternates walks and sweep */
} store_purger_t;

struct store {
    MDB_env *env;
    MDB_dbi db_obj, db_chunk, db_lru, db_lidx, db_info, db_tags, db_purges;
    int lock_fd;
    unsigned max_tags, max_tag_bytes;
    unsigned batch_ms;
    unsigned psize;           /* LMDB page size */
    unsigned nodemax;         /* largest leaf node kept in a page (else overflow pages) */
    uint64_t map_size;
    uint64_t high_water;      /* accounted bytes the writer keeps under */
    uint64_t low_water;       /* where a high-water eviction stops */
    uint64_t object_max;      /* accounted bytes of the largest storable object */
    uint64_t batch_budget;    /* accounted bytes of puts gathered per batch */

    /* Queue: guarded by q_mu. */
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    store_op_t *q_head, **q_tail;
    size_t q_len;
    uint64_t q_cost;
    unsigned q_barriers;
    bool closing;
    pthread_t writer;
    bool writer_running;

    /* Writer thread only. */
    store_state_t st;         /* as of the last commit */
    store_stats_t wstats;     /* counters since open */
    unsigned fail_streak;     /* consecutive batches in which an operation failed */
    store_purger_t *pg;       /* purge bookkeeping (store_purge.c, store_sweep.c) */
    store_op_t *parked;       /* store_sync barriers waiting for purge work to end */

    /* Any thread. */
    _Atomic uint64_t seq_pub; /* st.seq as of the last commit (store_seq) */
    /* The bans in force for readers: ban_snap under ban_mu; ban_gen bumps
     * (release) after each change so a reader notices with one load. */
    pthread_mutex_t ban_mu;
    store_bans_t *ban_snap;   /* NULL: no bans */
    _Atomic uint64_t ban_gen;
    atomic_bool hold_purges;  /* store_debug_hold_purges */

    /* Snapshot for store_get_stats, guarded by stats_mu. */
    pthread_mutex_t stats_mu;
    store_stats_t stats;
};

static inline void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t store_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t store_get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline void store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint32_t store_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store_key_encode(const store_key_t *k, uint8_t out[STORE_KEY_LEN])
{
    memcpy(out, k->hash, 16);
    store_be64(out + 16, k->variant);
}

static inline void store_ckey_encode(uint64_t oid, uint32_t index, uint8_t out[STORE_CKEY_LEN])
{
    store_be64(out, oid);
    for (int i = 3; i >= 0; i--, index >>= 8)
        out[8 + i] = (uint8_t)index;
}

/* Chunks a body of body_len bytes is stored in (0 = inline). */
static inline uint32_t store_nchunks(uint64_t body_len)
{
    if (body_len <= STORE_INLINE_MAX)
        return 0;
    return (uint32_t)((body_len + STORE_CHUNK_SIZE - 1) / STORE_CHUNK_SIZE);
}

/* Write a record header into p[STORE_REC_HDR]. */
void store_rec_encode(uint8_t *p, const store_rec_t *h);
/* Decode and validate the record of n bytes at p; fill *view if not NULL.
 * Returns 0, or -EINVAL when it is malformed or of another format version. */
int store_rec_decode(const void *p, size_t n, store_rec_t *h, store_rec_view_t *view);
/* Rewrite the record at key (header h, metadata meta) keeping its url,
 * tags and inline body, inside txn. old is the record's current value. */
int store_rec_rewrite(store_t *s, MDB_txn *txn, const uint8_t key[STORE_KEY_LEN], MDB_val old, const store_rec_t *h,
                      const void *meta);

/* LMDB's charge for one key/value record, as store_cost counts it. */
uint64_t store_rec_cost(const store_t *s, size_t klen, uint64_t vlen);
/* Accounted bytes of an object with these sizes (record, chunks, LRU and
 * tag index entries). */
uint64_t store_cost(const store_t *s, size_t url_len, size_t meta_len, const char *tags, size_t tags_len,
                    uint64_t body_len);
/* Remove the object at key with its chunks, LRU and tag index entries,
 * inside txn. Returns 0, MDB_NOTFOUND or an LMDB error (the txn must then
 * be aborted). */
int store_obj_delete(store_t *s, MDB_txn *txn, store_work_t *w, const uint8_t key[STORE_KEY_LEN]);
/* Give key the newest LRU position (a fresh object: no previous entry). */
int store_lru_link(store_t *s, MDB_txn *txn, store_work_t *w, const uint8_t key[STORE_KEY_LEN]);
/* Move each of n keys (still existing) to the newest LRU position. */
int store_lru_touch(store_t *s, MDB_txn *txn, store_work_t *w, const uint8_t *keys, size_t n);
/* Evict from the LRU tail in transactions of their own until the accounted
 * bytes are <= target (or nothing is left). Returns 0 or an LMDB error. */
int store_evict(store_t *s, uint64_t target, const char *why);

/* Start a write txn whose working state is the last committed one. */
int store_txn_begin(store_t *s, MDB_txn **txn, store_work_t *w);
/* Write w's state into txn and commit it; on success w becomes the
 * committed state and the statistics are published. The txn is gone
 * either way. Returns 0 or an LMDB error. */
int store_txn_commit(store_t *s, MDB_txn *txn, const store_work_t *w);

/* End a txn of store_txn_begin: close c (if any), then commit (when rc is
 * 0 and commit is true) or abort. Returns rc, or the commit's error. */
int store_txn_end(store_t *s, MDB_txn *txn, MDB_cursor *c, const store_work_t *w, int rc, bool commit);

/* Copy the writer's counters to the snapshot store_get_stats reads. */
void store_stats_publish(store_t *s);

/* --- tags (store_tags.c) --- */

/* Normalise the caller's "tag\n" lines into out (room for tags_len + 1
 * bytes): empty lines, duplicates, tags over max_tag_bytes and those past
 * max_tags are dropped. Returns the length written. */
size_t store_tags_normalise(const store_t *s, const char *tags, size_t tags_len, char *out);
/* Iterate "tag\n" lines: *off starts at 0. Returns false at the end. */
bool store_tags_next(const char *tags, size_t len, size_t *off, const char **tag, size_t *tag_len);
/* True when the "tag\n" lines contain tag. */
bool store_tags_has(const char *tags, size_t len, const char *tag, size_t tag_len);
/* Add / remove key's entries in the tag index for each of the tags. */
int store_tags_index(store_t *s, MDB_txn *txn, const uint8_t key[STORE_KEY_LEN], const char *tags, size_t len);
int store_tags_unindex(store_t *s, MDB_txn *txn, const uint8_t key[STORE_KEY_LEN], const char *tags, size_t len);

/* --- purges (store_purge.c) --- */

/* Set up the writer's purge bookkeeping at open, inside the set-up txn:
 * load the persisted bans and tag walks. Returns 0 or an LMDB error. */
int store_purge_open(store_t *s, MDB_txn *txn);
/* Free it (after the writer stopped); also the readers' ban snapshot. */
void store_purge_free(store_t *s);
/* True for the purge operation kinds (each batch runs them in their own txns). */
bool store_purge_is_op(int kind);
/* Apply a purge operation inside txn (writer). Returns 0 or an LMDB error. */
int store_purge_apply(store_t *s, MDB_txn *txn, store_work_t *w, store_op_t *op);
/* After the commit of a purge operation: record it, publish bans, start
 * its tag walk (which takes over op's done). */
void store_purge_committed(store_t *s, store_op_t *op);
/* What store_url_apply does to each record of a URL hash. */
enum { STORE_URL_DELETE, STORE_URL_PURGE_HARD, STORE_URL_PURGE_SOFT };
/* Delete, purge or mark stale (at seq) every record of a URL hash inside
 * txn; *count gets how many. Returns 0 or an LMDB error. */
int store_url_apply(store_t *s, MDB_txn *txn, store_work_t *w, const uint8_t hash[16], int how, uint64_t seq,
                    uint64_t *count);
/* Strongest purge newer than `after` that matches an object with this
 * URL hash, url and tags: STORE_MATCH_*. Conservatively HARD when `after`
 * is older than the recent-purge record covers. */
int store_purge_match(store_t *s, uint64_t after, const uint8_t hash[16], const char *url, size_t url_len,
                      const char *tags, size_t tags_len);
/* Which of the n bans apply to a record put at rec_seq with this URL:
 * STORE_MATCH_*; *soft_seq (if not NULL) gets the newest soft one's seq. */
int store_bans_match(const store_ban_t *b, size_t n, uint64_t rec_seq, const char *url, size_t url_len,
                     uint64_t *soft_seq);
/* The writer's bans in force (for update_meta). */
const store_ban_t *store_purge_bans(store_t *s, size_t *n);
/* Drop a reference to a ban snapshot (NULL is fine). */
void store_bans_release(store_bans_t *b);
/* Mark the record (header h, view rv, value v) stale as of purge seq,
 * unless a newer purge already did. Returns 0 or an LMDB error. */
int store_mark_stale(store_t *s, MDB_txn *txn, const uint8_t key[STORE_KEY_LEN], MDB_val v, store_rec_t *h,
                     const store_rec_view_t *rv, uint64_t seq);
/* Publish the writer's bans to readers (0, or -1 out of memory: dirty). */
int store_bans_publish(store_t *s);
/* Move ban i out of force into the retired record. */
void store_ban_retire(store_t *s, size_t i);
/* The purges db key of seq. */
static inline MDB_val store_seq_key(uint8_t buf[STORE_SEQ_LEN], uint64_t seq)
{
    store_be64(buf, seq);
    return (MDB_val){ STORE_SEQ_LEN, buf };
}

/* True while tag walks or ban sweeps have work left (writer). */
bool store_purge_pending(store_t *s);
/* Run one slice of that work in its own transaction (writer). */
void store_purge_slice(store_t *s);
/* The writer is stopping: running tag walks get done(STORE_CLOSED). */
void store_purge_stop(store_t *s);

/* Start (0 or the negative errno of pthread_create) / drain and join the
 * writer thread. */
int store_writer_start(store_t *s);
void store_writer_stop(store_t *s);
/* Queue op for the writer. Returns STORE_OK or STORE_CLOSED (op not taken). */
int store_enqueue(store_t *s, store_op_t *op);

#endif
