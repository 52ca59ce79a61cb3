/* store: the LMDB-backed object cache of one node.
 *
 * One environment serves every thread. Loop threads read in short read
 * transactions (store_read_begin/end) and must never keep one open across
 * a loop iteration: a slow client must not pin pages. Every write goes to
 * one writer thread, which applies queued operations in batched commits
 * and evicts the least recently used objects to stay under the size bound.
 *
 * Objects are addressed by a store_key_t: the 16-byte hash of the cache
 * key plus an 8-byte variant id (0 = the object or the Vary index of that
 * URL; other values = Vary variants). Bodies up to STORE_INLINE_MAX bytes
 * are stored inline; larger ones as STORE_CHUNK_SIZE records under a
 * per-write object id, so a reader streaming a body chunk by chunk across
 * several transactions never mixes two versions of an object: if the
 * object is replaced or evicted meanwhile, the next chunk is simply gone. */
#ifndef CDN_STORE_H
#define CDN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_CHUNK_SIZE (256 * 1024)
#define STORE_INLINE_MAX (16 * 1024)
/* Bound on url_len + meta_len of one object: a larger put completes with
 * STORE_ERROR. */
#define STORE_META_MAX (1024 * 1024)

/* The store's result codes: 0 or negative, like an errno, but a set of
 * its own (a caller branches on "not found" and "closed", which no errno
 * says as plainly). The store_* calls and done callbacks below return
 * these, never errno values; store_strerror names them. */
enum {
    STORE_OK = 0,
    STORE_NOTFOUND = -1,   /* no such object / chunk */
    STORE_ERROR = -2,      /* LMDB error (logged) */
    STORE_CLOSED = -3,     /* store is shutting down; nothing queued */
};
/* A static description of a STORE_* code ("unknown store error" otherwise). */
const char *store_strerror(int code);

typedef struct store store_t;
typedef struct store_reader store_reader_t;

typedef struct store_key {
    uint8_t hash[16];      /* hash_cache_key() of the cache key string */
    uint64_t variant;      /* 0 = primary record; else a Vary variant */
} store_key_t;

typedef struct store_opts {
    const char *dir;       /* created if missing */
    uint64_t size;         /* map size = the bound on the cache's disk use */
    bool sync_commit;      /* fsync at every commit (else MDB_NOSYNC) */
    unsigned max_readers;  /* reader slots (0 = 126) */
    unsigned batch_ms;     /* how long the writer may gather operations (0 = 5) */
    unsigned high_water_pct; /* evict above this % of the map (0 = 80; clamped to 10..99) */
} store_opts_t;

typedef struct store_stats {
    uint64_t objects;      /* object records (primary + variants) */
    uint64_t bytes;        /* accounted bytes of stored objects */
    uint64_t evictions;    /* objects evicted since open */
    uint64_t commits;      /* writer transactions committed since open */
    uint64_t puts, deletes;
    uint64_t map_size;
    uint64_t bytes_max;    /* high-water mark: bytes is kept at or under it */
    uint64_t object_max;   /* accounted size of the largest object a put accepts */
    uint64_t map_full;     /* batches that hit MDB_MAP_FULL (then evicted harder and retried) */
} store_stats_t;

/* Open (or create) the cache in opts->dir and start the writer thread.
 * Takes an exclusive lock on the directory: a second process fails with a
 * message. Clears reader slots left by a crashed process. Returns 0, or
 * -EIO with a message in err. */
int store_open(store_t **out, const store_opts_t *opts, char *err, size_t errlen);
/* Apply every queued operation, stop the writer thread and close. All
 * readers must have been freed. */
void store_close(store_t *s);

/* --- reading (loop threads) --- */

/* A per-thread reader (owns a reusable read transaction). Use it on one
 * thread only; free it before store_close. */
store_reader_t *store_reader_new(store_t *s);
void store_reader_free(store_reader_t *r);
/* Begin a read transaction: a snapshot of the cache. Returns STORE_OK or STORE_ERROR. */
int store_read_begin(store_reader_t *r);
/* End it: every pointer obtained since store_read_begin becomes invalid. */
void store_read_end(store_reader_t *r);

/* A stored object as seen inside a read transaction. Every pointer is into
 * the map and valid only until store_read_end. */
typedef struct store_obj {
    const char *url;       /* the full cache key string (to verify: hashes may collide) */
    size_t url_len;
    const uint8_t *meta;   /* caller's metadata blob, opaque to the store */
    size_t meta_len;
    uint64_t body_len;
    const uint8_t *body;   /* inline body, or NULL when stored in chunks */
    uint64_t object_id;    /* chunk namespace of this version */
    uint32_t nchunks;
} store_obj_t;

/* Look up key inside the current read transaction. Returns STORE_OK,
 * STORE_NOTFOUND or STORE_ERROR. */
int store_get(store_reader_t *r, const store_key_t *key, store_obj_t *out);
/* Chunk index (0-based) of a chunked body; *p valid until store_read_end.
 * STORE_NOTFOUND when that version of the object is gone. */
int store_get_chunk(store_reader_t *r, uint64_t object_id, uint32_t index, const uint8_t **p, size_t *n);
/* Record that key was used (for LRU). Cheap, no transaction: touches are
 * gathered per reader and handed to the writer in batches. */
void store_touch(store_reader_t *r, const store_key_t *key);
/* Hand this reader's gathered touches to the writer now (call from a timer). */
void store_reader_flush_touches(store_reader_t *r);

/* --- writing (any thread; applied by the writer thread) --- */

/* Completion callback, run on the writer thread after the operation's
 * transaction committed (status STORE_OK) or failed. Keep it short: post
 * to a loop thread for real work. */
typedef void (*store_done_fn)(void *ctx, int status);
/* Copy len bytes of the body starting at off into dst; run on the writer thread.
 * The same range may be asked for again if a batch is retried. */
typedef void (*store_body_fn)(void *ctx, uint64_t off, void *dst, size_t len);

typedef struct store_put {
    store_key_t key;
    const char *url;        /* copied at store_put */
    size_t url_len;
    const void *meta;       /* copied at store_put */
    size_t meta_len;
    uint64_t body_len;
    store_body_fn body;     /* reads the body; its ctx must stay valid until done runs */
    store_done_fn done;     /* may be NULL */
    void *ctx;              /* passed to body and done */
} store_put_t;

/* Queue a put that replaces any object at key. Returns STORE_OK (done will
 * be called exactly once) or STORE_CLOSED (done is never called).
 * Also STORE_ERROR (done never called) when out of memory. */
int store_put(store_t *s, const store_put_t *p);
/* Queue replacing the metadata of the object at key, if it is still the
 * version object_id (a revalidation: a 304 updated the stored headers, the
 * body is unchanged). done gets STORE_OK, or STORE_NOTFOUND when that
 * version is gone (replaced or evicted meanwhile). The meta is copied. */
int store_update_meta(store_t *s, const store_key_t *key, uint64_t object_id, const void *meta, size_t meta_len,
                      store_done_fn done, void *ctx);
/* Queue deletion of every variant of the URL hash (variant ids ignored).
 * done as for store_put; STORE_OK also when nothing matched. */
int store_delete_url(store_t *s, const uint8_t hash[16], store_done_fn done, void *ctx);
/* Queue deletion of exactly one key. */
int store_delete(store_t *s, const store_key_t *key, store_done_fn done, void *ctx);
/* Block until every operation queued before the call has been committed
 * (tests, shutdown). */
void store_sync(store_t *s);
/* Current statistics (thread-safe snapshot). */
void store_get_stats(store_t *s, store_stats_t *out);

#endif
