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
 * object is replaced or evicted meanwhile, the next chunk is simply gone.
 *
 * Purging. Every put and every purge gets a number from one store
 * sequence (store_seq). A purge removes (hard) or marks stale (soft) the
 * objects it matches that were put before it, and it always wins over a
 * fill that was already running: a put whose start_seq predates a
 * matching purge is dropped (STORE_PURGED). URL purges apply at commit;
 * tag purges walk the tag index in slices between other writes; prefix
 * purges (and "purge all") become bans that store_get applies at once
 * while a background sweep removes what they match. */
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
    STORE_CLOSED = -3,     /* store is shutting down; nothing queued. From a
                            * tag purge's done: the store closed before the walk
                            * ended (it resumes at the next open) */
    STORE_PURGED = -4,     /* a put or revalidation was dropped: a purge newer
                            * than its start_seq matches the object */
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
    unsigned max_tags;     /* tags kept per object (0 = 32; at most 1024): the rest are dropped */
    unsigned max_tag_bytes; /* longest tag kept (0 = 128; at most 511): longer ones are dropped, never truncated */
} store_opts_t;

/* Upper bounds (seconds) of the write-batch latency buckets of
 * store_stats_t.batch_buckets; static lifetime. */
#define STORE_BATCH_NBOUNDS 14
extern const double store_batch_bounds[STORE_BATCH_NBOUNDS];

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
    uint64_t purge_urls, purge_tags, purge_prefixes; /* purges committed since open (a prefix purge
                                                      * counts when its ban is in force) */
    uint64_t purge_deleted;  /* objects deleted by purges (URL, tag, and ban sweeps) */
    uint64_t purge_flagged;  /* objects marked stale by soft purges */
    uint64_t purge_swept;    /* of those two, the ones the ban sweep handled */
    uint64_t purge_dropped;  /* puts (and revalidations) dropped with STORE_PURGED */
    uint64_t bans;           /* prefix bans in force (their sweep not yet complete) */
    uint64_t tag_walks;      /* tag purges whose walk is still running */
    uint64_t batches;        /* write batches the writer applied since open */
    uint64_t batch_errors;   /* of them, batches in which an operation failed (STORE_ERROR) */
    uint64_t batch_buckets[STORE_BATCH_NBOUNDS + 1]; /* batches by latency (store_batch_bounds; last: above) */
    uint64_t batch_us;       /* their total latency, microseconds */
    uint64_t map_used;       /* bytes of the map in use: (last page + 1) * page size, after the last batch */
    bool failing;            /* the last 3 batches each had an operation fail (cleared by one that did not) */
} store_stats_t;

/* Open (or create) the cache in opts->dir and start the writer thread.
 * Takes an exclusive lock on the directory: a second process fails with a
 * message. Clears reader slots left by a crashed process. A directory
 * holding another (older or unreadable) store format is never read: it is
 * renamed to "<dir>.old-v<N>-<unix time>" (N = the format found, 0 when
 * unknown), with a warning in the log, and the cache starts empty; if the
 * rename fails, store_open fails. Prefix bans and tag purges that were
 * running at the last close resume. Returns 0, or -EIO with a message in
 * err. */
int store_open(store_t **out, const store_opts_t *opts, char *err, size_t errlen);
/* Apply every queued operation, stop the writer thread and close. All
 * readers must have been freed. */
void store_close(store_t *s);

/* --- reading (loop threads) --- */

/* A per-thread reader (owns a reusable read transaction). Use it on one
 * thread only; free it before store_close. */
store_reader_t *store_reader_new(store_t *s);
void store_reader_free(store_reader_t *r);
/* Begin a read transaction: a snapshot of the cache, and of the prefix
 * bans in force. Returns STORE_OK or STORE_ERROR. */
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
    bool stale;            /* soft-purged: serve only as stale (revalidate first) */
    uint64_t seq;          /* store sequence of the put (or of the revalidation that cleared stale) */
    const char *tags;      /* the object's tags, "tag\n" lines (tags_len 0: none) */
    size_t tags_len;
} store_obj_t;

/* Look up key inside the current read transaction. Prefix bans are
 * applied: an object put before a matching hard ban is STORE_NOTFOUND, one
 * put before a soft ban is stale. Returns STORE_OK, STORE_NOTFOUND or
 * STORE_ERROR. */
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
    const char *tags;       /* "tag\n" lines (surrogate keys), copied at store_put; empty
                             * lines, duplicates, tags over max_tag_bytes and tags past
                             * max_tags are dropped */
    size_t tags_len;
    uint64_t start_seq;     /* store_seq() when the fetch began: a matching purge newer
                             * than it drops the put (STORE_PURGED); 0 = no check */
    uint64_t body_len;
    store_body_fn body;     /* reads the body; its ctx must stay valid until done runs */
    store_done_fn done;     /* may be NULL */
    void *ctx;              /* passed to body and done */
} store_put_t;

/* Queue a put that replaces any object at key. Returns STORE_OK (done will
 * be called exactly once) or STORE_CLOSED (done is never called).
 * Also STORE_ERROR (done never called) when out of memory. done gets
 * STORE_PURGED, and nothing is stored, when a purge (URL, tag, prefix or
 * all) newer than p->start_seq matches the object; also when start_seq is
 * older than the store's memory of recent purges (the last 64Ki URL and
 * tag purges, and the last prefix bans), which it then cannot check. */
int store_put(store_t *s, const store_put_t *p);
/* Queue replacing the metadata of the object at key, if it is still the
 * version object_id (a revalidation: a 304 updated the stored headers, the
 * body is unchanged). done gets STORE_OK, or STORE_NOTFOUND when that
 * version is gone (replaced, evicted or purged meanwhile, or hidden by a
 * hard ban). The meta is copied. The stale mark of a soft purge is kept:
 * see store_update_meta_seq. */
int store_update_meta(store_t *s, const store_key_t *key, uint64_t object_id, const void *meta, size_t meta_len,
                      store_done_fn done, void *ctx);
/* store_update_meta for a revalidation that began at store_seq() ==
 * start_seq. It also clears the object's stale mark, when every soft purge
 * that marked it (or a soft ban that matches it) is older than start_seq
 * and no purge newer than start_seq matches. A matching hard purge newer
 * than start_seq drops it: done gets STORE_PURGED, nothing changes.
 * start_seq 0 = store_update_meta (no check, clears nothing). */
int store_update_meta_seq(store_t *s, const store_key_t *key, uint64_t object_id, uint64_t start_seq, const void *meta,
                          size_t meta_len, store_done_fn done, void *ctx);
/* Queue deletion of every variant of the URL hash (variant ids ignored).
 * done as for store_put; STORE_OK also when nothing matched. */
int store_delete_url(store_t *s, const uint8_t hash[16], store_done_fn done, void *ctx);
/* Queue deletion of exactly one key. */
int store_delete(store_t *s, const store_key_t *key, store_done_fn done, void *ctx);
/* Block until every operation queued before the call has been committed,
 * and the purge work running then (tag walks, ban sweeps) has finished; a
 * purge queued meanwhile is waited for too (tests, tools). */
void store_sync(store_t *s);
/* Current statistics (thread-safe snapshot). */
void store_get_stats(store_t *s, store_stats_t *out);
/* False while the store is failing: its last 3 write batches each had an
 * operation it could not write (disk full, I/O error, a map too small).
 * Any thread. */
bool store_healthy(store_t *s);

/* --- purging (any thread; applied by the writer thread) --- */

/* Completion of a purge, on the writer thread (keep it short, as
 * store_done_fn): status STORE_OK or STORE_ERROR, and how many objects it
 * deleted (hard) or marked stale (soft). */
typedef void (*store_purged_fn)(void *ctx, int status, uint64_t count);
/* The store sequence: the number of the last committed put or purge. Any
 * thread; one atomic load. Take it when a fetch starts and pass it as
 * store_put_t.start_seq. Never 0. */
uint64_t store_seq(store_t *s);
/* Purge every variant of the URL hash and its Vary index: delete them
 * (hard) or mark them stale (soft). done runs once it is committed, with
 * the number of records affected. Each purge call returns STORE_OK (done
 * will be called exactly once), STORE_CLOSED or STORE_ERROR (bad input,
 * out of memory; done is never called). */
int store_purge_url(store_t *s, const uint8_t hash[16], bool soft, store_purged_fn done, void *ctx);
/* Purge every object carrying tag (len bytes, no '\n'). The walk runs in
 * slices of about a thousand objects, each its own transaction, between
 * the other queued writes: fills keep committing meanwhile. done runs
 * once, at the end of the walk, with the total; or with STORE_CLOSED when
 * the store closes first (the walk is persisted and resumes at the next
 * open, without a callback). Objects not yet walked are still served. */
int store_purge_tag(store_t *s, const char *tag, size_t len, bool soft, store_purged_fn done, void *ctx);
/* Purge every object whose URL (cache key string) starts with url_prefix
 * (len 0 = everything). Recorded as a ban, persisted, in force for every
 * read transaction begun after done runs; a background sweep then deletes
 * or marks what it matches and drops the ban when it is through.
 * done runs when the ban is committed and in force, with count 0 (the
 * sweep's work is counted in store_stats_t.purge_swept). done gets
 * STORE_ERROR when STORE_BANS_MAX bans are already in force. */
int store_purge_prefix(store_t *s, const char *url_prefix, size_t len, bool soft, store_purged_fn done, void *ctx);
/* Bounds of store_purge_prefix: the prefix length, the bans in force. */
#define STORE_PREFIX_MAX 8192
#define STORE_BANS_MAX 1024

/* --- for tests --- */

/* Entries in the tag index for tag (tag NULL: all entries), as committed. */
uint64_t store_debug_tag_count(store_t *s, const char *tag, size_t len);
/* While held, the writer runs no tag walk or ban sweep slice (store_sync
 * then waits for none): shows what bans do before any sweep. */
void store_debug_hold_purges(store_t *s, bool hold);

#endif
