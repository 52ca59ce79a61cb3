/* Fuzz target: Vary and the secondary cache key (policy_vary). The input
 * is three header blocks of "Name: value" lines separated by an empty
 * line: the stored response (its Vary lines), request A, request B. The
 * first byte chooses whether a node's implicit names (keyed pass_headers)
 * take part.
 *
 * The field list must be lowercase, one name a line, no name twice, each
 * listed; a request must match the key built from it (or it could never
 * hit the variant it stored); A and B select the same variant exactly when
 * their keys are equal, in either order; a key's variant id is never 0.
 * The response block's bytes are also matched as a stored key, whatever
 * they are. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_input.h"
#include "policy_vary.h"

static const char implicit[] = "accept-language\nx-device\n";

static void must(bool ok)
{
    if (!ok)
        abort();
}

static void check_fields(const buf_t *b, int kind)
{
    if (kind < 0)
        return; /* names before the bad one may be there: callers drop out then */
    if (kind != POLICY_VARY_KEY) {
        must(b->len == 0);
        return;
    }
    must(b->len > 0 && b->data[b->len - 1] == '\n');
    for (size_t i = 0; i < b->len;) {
        const char *nl = memchr(b->data + i, '\n', b->len - i);
        size_t l = (size_t)(nl - b->data) - i;
        must(l > 0 && l < 256);
        for (size_t k = 0; k < l; k++)
            must(!(b->data[i + k] >= 'A' && b->data[i + k] <= 'Z'));
        must(policy_vary_listed(b->data, b->len, b->data + i, l));
        /* Once: not among the lines before it. */
        must(!policy_vary_listed(b->data, i, b->data + i, l));
        i += l + 1;
    }
}

static int key_of(buf_t *key, const http_fields_t *resp, bool with, const http_fields_t *req)
{
    buf_t names;
    buf_init(&names, 0);
    int kind = with ? policy_vary_fields_with(&names, resp, implicit, sizeof implicit - 1)
                    : policy_vary_fields(&names, resp);
    check_fields(&names, kind);
    if (kind == POLICY_VARY_KEY) {
        must(policy_vary_key_from_fields(key, names.data, names.len, req) == 0);
        /* The secondary key as the store keeps it, in its own buffer. */
        char *k = fuzz_dup((const uint8_t *)key->data, key->len);
        must(policy_vary_match(k, key->len, req));
        must(policy_vary_id(k, key->len) != 0);
        free(k);
    }
    buf_free(&names);
    return kind;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool with = data[0] & 1;
    char *in = fuzz_dup(data + 1, size - 1);
    const uint8_t *p = (const uint8_t *)in, *end = p + size - 1;
    http_fields_t h[3];
    char *raw_key = NULL;
    size_t raw_len = 0;
    for (int i = 0; i < 3; i++) {
        http_fields_init(&h[i], 0);
        const uint8_t *sep = NULL;
        for (const uint8_t *q = p; q + 1 < end && !sep; q++)
            if (q[0] == '\n' && q[1] == '\n')
                sep = q;
        const uint8_t *e = i < 2 && sep ? sep : end;
        fuzz_fields(&h[i], p, (size_t)(e - p));
        if (i == 0) /* the same bytes as a stored key: any bytes, never read past */
            raw_key = fuzz_dup(p, raw_len = (size_t)(e - p));
        p = e < end ? e + 2 : end;
    }

    policy_vary_match(raw_key, raw_len, &h[1]);
    free(raw_key);
    buf_t ka, kb;
    buf_init(&ka, 0);
    buf_init(&kb, 0);
    int ra = key_of(&ka, &h[0], with, &h[1]), rb = key_of(&kb, &h[0], with, &h[2]);
    must(ra == rb);
    must(ra == POLICY_VARY_NONE || ra == POLICY_VARY_KEY || ra == POLICY_VARY_STAR || ra < 0);
    if (!with) {
        buf_t plain;
        buf_init(&plain, 0);
        must(policy_vary_key(&plain, &h[0], &h[1]) == ra);
        must(plain.len == ka.len && (!ka.len || memcmp(plain.data, ka.data, ka.len) == 0));
        buf_free(&plain);
    }
    bool same = ra == POLICY_VARY_KEY && ka.len == kb.len && memcmp(ka.data, kb.data, ka.len) == 0;
    if (ra == POLICY_VARY_KEY) {
        /* B matches A's key exactly when the keys are equal. */
        char *k = fuzz_dup((const uint8_t *)ka.data, ka.len);
        must(policy_vary_match(k, ka.len, &h[2]) == same);
        free(k);
    }
    bool ab = with ? policy_vary_response_matches_with(&h[0], implicit, sizeof implicit - 1, &h[1], &h[2])
                   : policy_vary_response_matches(&h[0], &h[1], &h[2]);
    bool ba = with ? policy_vary_response_matches_with(&h[0], implicit, sizeof implicit - 1, &h[2], &h[1])
                   : policy_vary_response_matches(&h[0], &h[2], &h[1]);
    must(ab == ba);
    must(ab == (ra == POLICY_VARY_NONE || same));
    buf_free(&ka);
    buf_free(&kb);
    for (int i = 0; i < 3; i++)
        http_fields_free(&h[i]);
    free(in);
    return 0;
}
