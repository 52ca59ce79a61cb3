/* object_meta: the metadata blob stored with every cached object.
 *
 * Layout (host byte order; the cache is local to one machine):
 *   "CDNM" | u16 version | u16 status | u32 entry_size | policy entry |
 *   u32 block_len | u32 cstatus_len | u32 vary_len | block | cstatus | vary
 * block is the response header section as it is sent to clients
 * ("Name: value\r\n" lines, without framing, Age or Cache-Status),
 * cstatus is the upstream's Cache-Status value (the chain so far), and
 * vary is the request's secondary key when the response had Vary.
 * Decoding validates every length, so a damaged record is a miss, never
 * a crash or a garbled response. */
#ifndef CDN_OBJECT_META_H
#define CDN_OBJECT_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "policy_cache.h"

#define OBJECT_META_VERSION 1

typedef struct object_meta {
    int status;
    policy_entry_t entry;
    const char *block;       /* pointers into the decoded blob: valid as long as it is */
    size_t block_len;
    const char *cstatus;
    size_t cstatus_len;
    const char *vary;
    size_t vary_len;
} object_meta_t;

/* Append the encoded form of m to out. Returns 0 or a buf error. */
int object_meta_encode(buf_t *out, const object_meta_t *m);
/* Decode blob into m (pointers into blob). Returns 0, or -1 when the blob
 * is not a valid record of this version. */
int object_meta_decode(const void *blob, size_t len, object_meta_t *m);

#endif
