/* store_tags: an object's tags (surrogate keys) and the tag index.
 *
 * A record carries its tags as "tag\n" lines, normalised at store_put: the
 * caller's list bounds what it sends, the store bounds what it keeps
 * (max_tags per object, max_tag_bytes per tag; the rest is dropped whole,
 * since a truncated tag would match another tag's purge). The `tags`
 * database (dupsort, dupfixed) maps each tag to the keys of the objects
 * carrying it, so a tag purge finds its objects without a scan. Every path
 * that writes or deletes a record keeps it exact: store_obj_delete removes
 * a record's entries, apply_put adds the new record's. */
#include "store_internal.h"

#include "log.h"

bool store_tags_next(const char *tags, size_t len, size_t *off, const char **tag, size_t *tag_len)
{
    while (*off < len) {
        const char *p = tags + *off;
        const char *nl = memchr(p, '\n', len - *off);
        size_t n = nl ? (size_t)(nl - p) : len - *off;
        *off += n + (nl ? 1 : 0);
        if (n == 0)
            continue;
        *tag = p;
        *tag_len = n;
        return true;
    }
    return false;
}

bool store_tags_has(const char *tags, size_t len, const char *tag, size_t tag_len)
{
    const char *t;
    size_t n, off = 0;
    while (store_tags_next(tags, len, &off, &t, &n))
        if (n == tag_len && memcmp(t, tag, n) == 0)
            return true;
    return false;
}

size_t store_tags_normalise(const store_t *s, const char *tags, size_t tags_len, char *out)
{
    const char *t;
    size_t n, off = 0, len = 0;
    unsigned kept = 0;
    while (kept < s->max_tags && store_tags_next(tags, tags_len, &off, &t, &n)) {
        if (n > s->max_tag_bytes || store_tags_has(out, len, t, n))
            continue;
        memcpy(out + len, t, n);
        out[len + n] = '\n';
        len += n + 1;
        kept++;
    }
    return len;
}

int store_tags_index(store_t *s, MDB_txn *txn, const uint8_t key[STORE_KEY_LEN], const char *tags, size_t len)
{
    const char *t;
    size_t n, off = 0;
    while (store_tags_next(tags, len, &off, &t, &n)) {
        MDB_val k = { n, (void *)t }, v = { STORE_KEY_LEN, (void *)key };
        int rc = mdb_put(txn, s->db_tags, &k, &v, 0);
        if (rc && rc != MDB_KEYEXIST)
            return rc;
    }
    return 0;
}

int store_tags_unindex(store_t *s, MDB_txn *txn, const uint8_t key[STORE_KEY_LEN], const char *tags, size_t len)
{
    const char *t;
    size_t n, off = 0;
    while (store_tags_next(tags, len, &off, &t, &n)) {
        MDB_val k = { n, (void *)t }, v = { STORE_KEY_LEN, (void *)key };
        int rc = mdb_del(txn, s->db_tags, &k, &v);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
    }
    return 0;
}

uint64_t store_debug_tag_count(store_t *s, const char *tag, size_t len)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    uint64_t count = 0;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return 0;
    if (!tag) {
        MDB_stat st;
        if (mdb_stat(txn, s->db_tags, &st) == 0)
            count = st.ms_entries;
    } else if (len > 0 && mdb_cursor_open(txn, s->db_tags, &c) == 0) {
        MDB_val k = { len, (void *)tag }, v;
        size_t n = 0;
        if (mdb_cursor_get(c, &k, &v, MDB_SET) == 0 && mdb_cursor_count(c, &n) == 0)
            count = n;
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return count;
}
