/* Fuzz target: surrogate keys of a response (policy_tags): Surrogate-Key
 * (space-separated) and Cache-Tag (comma-separated) lines, given as
 * "Name: value" response lines. The first byte sets the bounds (up to 64
 * tags, up to 16 or 128 bytes each), as the store's configuration would.
 *
 * The index gets only what the header promises: "tag\n" lines, count of
 * them as reported and within max_tags, each 1..max_bytes bytes with no
 * separator, control byte or DEL, none twice; every tag seen is either
 * kept or counted as dropped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_input.h"
#include "policy_tags.h"

static void must(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_tags = data[0] & 63, max_bytes = data[0] & 64 ? 128 : 16;
    char *in = fuzz_dup(data + 1, size - 1);
    http_fields_t h;
    http_fields_init(&h, 0);
    fuzz_fields(&h, (const uint8_t *)in, size - 1);

    buf_t out;
    buf_init(&out, 0);
    /* Something already in the buffer must be left alone. */
    must(buf_append(&out, "keep\n", 5) == 0);
    policy_tags_result_t res = { 99, 99 };
    must(policy_tags_collect(&out, &h, max_tags, max_bytes, &res) == 0);
    must(out.len >= 5 && memcmp(out.data, "keep\n", 5) == 0);
    must(res.count <= max_tags);
    size_t lines = 0;
    for (size_t i = 5; i < out.len;) {
        const char *nl = memchr(out.data + i, '\n', out.len - i);
        must(nl != NULL);
        size_t l = (size_t)(nl - out.data) - i;
        must(l >= 1 && l <= max_bytes);
        for (size_t k = 0; k < l; k++) {
            unsigned char c = (unsigned char)out.data[i + k];
            must(c > 0x20 && c != 0x7f);
        }
        /* Not among the tags before it. */
        for (size_t j = 5; j < i;) {
            const char *nj = memchr(out.data + j, '\n', i - j);
            size_t lj = (size_t)(nj - out.data) - j;
            must(lj != l || memcmp(out.data + j, out.data + i, l) != 0);
            j += lj + 1;
        }
        lines++;
        i += l + 1;
    }
    must(lines == res.count);
    size_t tag_fields = 0;
    for (size_t i = 0; i < h.n; i++)
        tag_fields += policy_tags_field(http_fields_name(&h, i));
    if (!tag_fields)
        must(res.count == 0 && res.dropped == 0);
    buf_free(&out);
    http_fields_free(&h);
    free(in);
    return 0;
}
