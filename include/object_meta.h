/* object_meta: the metadata blob stored with every cached record.
 *
 * Two kinds of record share one layout:
 *   OBJECT_META_OBJECT  a stored response: status, policy entry, header
 *                       blocks, the upstream's Cache-Status, and (for a
 *                       Vary variant) the request's secondary key;
 *   OBJECT_META_INDEX   the Vary index of a URL (variant 0 when the
 *                       response varies): the normalised field names
 *                       (policy_vary_fields) its variants are keyed by.
 *
 * Layout (host byte order; the cache is local to one machine):
 *   "CDNM" | u16 version | u8 kind | u8 0 | u16 status | u16 0 |
 *   u32 entry_size | policy entry | u32 block_len | u32 hidden_len |
 *   u32 cstatus_len | u32 vary_len | block | hidden | cstatus | vary
 * block is the response header section as clients get it ("Name: value\r\n"
 * lines, without framing, Age or Cache-Status); hidden holds the fields the
 * cache keeps for its own decisions but does not send on (CDN-Cache-Control
 * at an edge, Surrogate-Control), so a 304 can be merged with all of them.
 * Decoding validates every length: a damaged record is a miss, never a
 * crash or a garbled response. */
#ifndef CDN_OBJECT_META_H
#define CDN_OBJECT_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http_fields.h"
#include "policy_cache.h"

#define OBJECT_META_VERSION 2

enum { OBJECT_META_OBJECT = 0, OBJECT_META_INDEX = 1 };

typedef struct object_meta {
    int kind;
    int status;
    policy_entry_t entry;
    const char *block;       /* pointers into the decoded blob: valid as long as it is */
    size_t block_len;
    const char *hidden;
    size_t hidden_len;
    const char *cstatus;
    size_t cstatus_len;
    const char *vary;        /* object: secondary key; index: field names */
    size_t vary_len;
} object_meta_t;

/* Append the encoded form of m to out. Returns 0 or a buf error. */
int object_meta_encode(buf_t *out, const object_meta_t *m);
/* Decode blob into m (pointers into blob). Returns 0, or -EINVAL when the
 * blob is not a valid record of this version. */
int object_meta_decode(const void *blob, size_t len, object_meta_t *m);
/* Value of the first line named name in a header block ("Name: v\r\n"...);
 * false when absent. out points into block. */
bool object_meta_field(const char *block, size_t len, const char *name, http_slice_t *out);
/* Append the lines of a header block to a field list. Returns 0, or
 * http_fields_add's error (the caps of out). */
int object_meta_fields(http_fields_t *out, const char *block, size_t len);

#endif
