/* serve: answer a request from a stored object (core/serve.c): 200, 304
 * to a conditional request, 206 / 416 for ranges, HEAD; large bodies are
 * streamed one short read transaction at a time. */
#ifndef CDN_SERVE_H
#define CDN_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "lookup.h"
#include "object_meta.h"
#include "store.h"

typedef struct preq preq_t;
struct serve_plan;

/* Answer p from the stored object obj (inside the reader's open read
 * transaction, which this ends) with metadata m (the record's own, or
 * newer headers from a revalidation). params: our Cache-Status
 * parameters. Handles conditional requests, ranges and HEAD. */
void serve_stored(preq_t *p, const store_obj_t *obj, const object_meta_t *m, const char *params, int64_t age);
/* Answer p from the stored object s->key / s->object_id with metadata m
 * (opens its own read transaction). Returns false (nothing sent) when that
 * version of the object is gone. */
bool serve_stored_copy(preq_t *p, const stored_t *s, const object_meta_t *m, const char *params, int64_t age);
/* Free a serve plan (streaming state; NULL is fine). */
void serve_plan_free(struct serve_plan *plan);

#endif
