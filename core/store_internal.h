/* store_internal.h: what store.c, store_writer.c and store_evict.c share.
 *
 * Not part of the public interface (include/store.h). It holds the store
 * struct, the writer's operation queue entries and the on-disk layout,
 * which is written down here once so every file encodes it the same way.
 *
 * On-disk layout (format STORE_FORMAT). Keys are big-endian so LMDB's
 * memcmp order is numeric order (LRU age, chunk index, variants of a URL
 * hash adjacent). Record fields are little-endian, encoded byte by byte:
 * the file does not depend on host order or alignment (LMDB only
 * guarantees 2-byte alignment of values).
 *
 *   objects  key  hash[16] || variant BE64                      (24 bytes)
 *            val  version u8 (=1) | flags u8 (=0) | reserved u16
 *                 | url_len LE32 | meta_len LE32 | nchunks LE32
 *                 | object_id LE64 | body_len LE64 | cost LE64   (40 bytes)
 *                 then url, meta, and the body when body_len <= STORE_INLINE_MAX
 *   chunks   key  object_id BE64 || index BE32                  (12 bytes)
 *            val  STORE_CHUNK_SIZE bytes (the last chunk: the rest)
 *   lru      key  seq BE64 (oldest first)     val  objects key (24 bytes)
 *   lru_idx  key  objects key (24 bytes)      val  seq BE64
 *   info     key  "state"  val  format LE64 | next_object_id LE64
 *                               | next_seq LE64 | bytes LE64 | objects LE64
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
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

#define STORE_FORMAT 1
#define STORE_KEY_LEN 24
#define STORE_CKEY_LEN 12
#define STORE_SEQ_LEN 8
#define STORE_REC_HDR 40
#define STORE_STATE_LEN 40
/* Keys a reader gathers before handing them to the writer unprompted. */
#define STORE_TOUCH_MAX 512

/* The persistent counters (info "state"), as of some transaction. */
typedef struct store_state {
    uint64_t next_oid;
    uint64_t next_seq;
    uint64_t bytes;
    uint64_t objects;
} store_state_t;

/* A write transaction's view: the state it will commit, plus statistics
 * that count only once the commit succeeded. */
typedef struct store_work {
    store_state_t st;
    uint64_t puts, deletes, evictions;
} store_work_t;

/* A decoded object record header. */
typedef struct store_rec {
    uint32_t url_len, meta_len, nchunks;
    uint64_t oid, body_len, cost;
} store_rec_t;

enum store_op_kind {
    STORE_OP_PUT,
    STORE_OP_DELETE,
    STORE_OP_DELETE_URL,
    STORE_OP_UPDATE_META,
    STORE_OP_TOUCH,
    STORE_OP_SYNC,
};

/* One queued operation; owned by the queue, then by the writer, which
 * frees it after running done. */
typedef struct store_op {
    struct store_op *next;
    int kind;
    int status;               /* handed to done */
    bool failed;              /* rejected before any transaction (status set) */
    uint8_t key[STORE_KEY_LEN]; /* put, delete; delete_url uses the first 16 bytes */
    store_done_fn done;
    void *ctx;
    store_body_fn body;       /* put */
    uint64_t body_len;
    uint64_t cost;            /* put: accounted bytes once stored */
    size_t url_len, meta_len; /* put: url then meta in data[]; update_meta: meta in data[] */
    uint64_t oid;             /* update_meta: the version it applies to */
    size_t ntouch;            /* touch: ntouch encoded keys in data[] */
    uint8_t data[];
} store_op_t;

struct store {
    MDB_env *env;
    MDB_dbi db_obj, db_chunk, db_lru, db_lidx, db_info;
    int lock_fd;
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
/* Decode and validate the record of n bytes at p. Returns 0, or -EINVAL
 * when it is malformed or of another format version. */
int store_rec_decode(const void *p, size_t n, store_rec_t *h);

/* Accounted bytes of an object with these sizes (record, chunks, LRU entries). */
uint64_t store_cost(const store_t *s, size_t url_len, size_t meta_len, uint64_t body_len);
/* Remove the object at key with its chunks and LRU entries, inside txn.
 * Returns 0, MDB_NOTFOUND or an LMDB error (the txn must then be aborted). */
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

/* Copy the writer's counters to the snapshot store_get_stats reads. */
void store_stats_publish(store_t *s);

/* Start (0 or the negative errno of pthread_create) / drain and join the
 * writer thread. */
int store_writer_start(store_t *s);
void store_writer_stop(store_t *s);
/* Queue op for the writer. Returns STORE_OK or STORE_CLOSED (op not taken). */
int store_enqueue(store_t *s, store_op_t *op);

#endif
