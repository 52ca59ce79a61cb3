/* SipHash-2-4 against the reference paper's test vectors, and the cache
 * key hash's stability (stored objects must stay addressable). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "hash.h"

static void seq(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)i;
}

Test(hash, sip64_reference_vectors)
{
    uint8_t key[16], msg[64];
    seq(key, 16);
    seq(msg, 64);
    cr_assert_eq(hash_sip64(key, msg, 0), 0x726fdb47dd0e0e31ull);
    cr_assert_eq(hash_sip64(key, msg, 15), 0xa129ca6149be45e5ull);
    cr_assert_eq(hash_sip64(key, msg, 1), 0x74f839c593dc67fdull);
}

Test(hash, sip128_reference_vector)
{
    uint8_t key[16], out[16];
    seq(key, 16);
    static const uint8_t empty[16] = { 0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
                                       0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93 };
    hash_sip128(key, "", 0, out);
    cr_assert_arr_eq(out, empty, 16);
}

Test(hash, cache_key_is_stable_and_distinct)
{
    uint8_t a[16], b[16], c[16];
    const char *k = "http://example.com/a?x=1";
    hash_cache_key(k, strlen(k), a);
    hash_cache_key(k, strlen(k), b);
    cr_assert_arr_eq(a, b, 16);
    hash_cache_key("http://example.com/a?x=2", strlen(k), c);
    cr_assert(memcmp(a, c, 16) != 0);
}

/* Pinned values, computed once and written down: a change of the hash or
 * of its fixed key orphans every stored object (and, through the keys the
 * pool ranks, moves every object to another shield on upgrade), so it must
 * fail here first. */
Test(hash, cache_key_is_pinned)
{
    static const struct {
        const char *key;
        uint8_t hash[16];
    } pinned[] = {
        { "", { 0xae, 0x3b, 0xd5, 0xdc, 0x11, 0x13, 0xcd, 0xe2, 0x2b, 0x57, 0x8b, 0x9b, 0x56, 0xf5, 0x01, 0x65 } },
        { "http://example.com/a?x=1",
          { 0x68, 0xd1, 0x52, 0x26, 0x09, 0x20, 0x03, 0x1b, 0x30, 0x2d, 0x0f, 0x4c, 0x56, 0x4d, 0xe1, 0x4c } },
        { "cdn.test/index.html",
          { 0x06, 0x10, 0x7f, 0x4e, 0xb2, 0x87, 0x71, 0xcf, 0x32, 0x44, 0xbf, 0xb1, 0xf3, 0xe2, 0x0b, 0xe1 } },
    };
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++) {
        uint8_t out[16];
        hash_cache_key(pinned[i].key, strlen(pinned[i].key), out);
        cr_assert_arr_eq(out, pinned[i].hash, 16, "hash of \"%s\" changed", pinned[i].key);
    }
}

Test(hash, spreads_similar_keys)
{
    /* 4096 URLs differing in a counter: the low byte of the hash should hit
     * every one of 256 buckets and none should hold more than 3x its share. */
    unsigned counts[256] = { 0 };
    char url[64];
    for (int i = 0; i < 4096; i++) {
        int n = snprintf(url, sizeof url, "http://h/obj/%d", i);
        uint8_t h[16];
        hash_cache_key(url, (size_t)n, h);
        counts[h[0]]++;
    }
    for (int i = 0; i < 256; i++) {
        cr_assert_gt(counts[i], 0);
        cr_assert_lt(counts[i], 48);
    }
}
