/* Fuzz target: a stored record's metadata (object_meta_decode). A cache
 * directory can hold anything after a crash or a disk error, so decoding
 * must reject what is not a record of this version, never crash or read
 * past the blob. What it accepts must be usable: every slice is read whole
 * (an over-read is an ASan report), the header block is split into fields,
 * and encoding it again decodes to the same record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "object_meta.h"

/* Read every byte of s[0, n): a slice that points past the blob is caught
 * here by ASan even if nothing else would touch it. */
static unsigned touch(const char *s, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)s[i];
    return sum;
}

static int same(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The blob in its own allocation, exactly size bytes (LMDB hands out
     * a pointer into its map: the record's neighbours are not ours). */
    uint8_t *blob = malloc(size ? size : 1);
    if (!blob)
        return 0;
    memcpy(blob, data, size);
    object_meta_t m;
    if (object_meta_decode(blob, size, &m) == 0) {
        volatile unsigned sink = touch(m.block, m.block_len) + touch(m.hidden, m.hidden_len) +
                                 touch(m.cstatus, m.cstatus_len) + touch(m.vary, m.vary_len);
        (void)sink;
        http_fields_t f;
        http_fields_init(&f, 1 << 20);
        object_meta_fields(&f, m.block, m.block_len);
        http_fields_free(&f);
        http_slice_t v;
        object_meta_field(m.block, m.block_len, "content-type", &v);
        object_meta_field(m.hidden, m.hidden_len, "surrogate-control", &v);
        /* What decodes encodes back to a record that decodes the same. */
        buf_t out;
        buf_init(&out, 0);
        object_meta_t again;
        if (object_meta_encode(&out, &m) != 0 || object_meta_decode(out.data, out.len, &again) != 0 ||
            again.kind != m.kind || again.status != m.status || !same(again.block, again.block_len, m.block, m.block_len) ||
            !same(again.hidden, again.hidden_len, m.hidden, m.hidden_len) ||
            !same(again.cstatus, again.cstatus_len, m.cstatus, m.cstatus_len) ||
            !same(again.vary, again.vary_len, m.vary, m.vary_len))
            abort();
        buf_free(&out);
    }
    free(blob);
    return 0;
}
