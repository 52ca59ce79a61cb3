/* policy_tags: the surrogate keys (tags) of a response, for purging by
 * tag. Two header styles name them: Surrogate-Key (space-separated, the
 * Fastly style) and Cache-Tag (comma-separated, the Cloudflare style);
 * every line of either counts, and a tag named twice counts once.
 *
 * The index is bounded: at most max_tags tags per object, each at most
 * max_bytes long. A tag over the length bound is dropped, never cut
 * (cutting would merge distinct tags); tags past the count bound are
 * dropped in order. Tags are opaque bytes, compared exactly. */
#ifndef CDN_POLICY_TAGS_H
#define CDN_POLICY_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "http_fields.h"

typedef struct policy_tags_result {
    size_t count;              /* tags kept */
    size_t dropped;            /* over either bound */
} policy_tags_result_t;

/* Append the tags of response headers resp to out as "tag\n" lines (in
 * order of appearance). Returns 0, or out's error (-E2BIG / -ENOMEM). */
int policy_tags_collect(buf_t *out, const http_fields_t *resp, size_t max_tags, size_t max_bytes,
                        policy_tags_result_t *res);
/* True for the response fields that carry tags (Surrogate-Key, Cache-Tag):
 * the ones an edge keeps from its clients. */
bool policy_tags_field(http_slice_t name);

#endif
