/* hash: SipHash-2-4 (Aumasson and Bernstein, 2012), written from the
 * paper's description; the unit tests check the paper's test vectors. */
#include "hash.h"

#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline uint64_t load64_le(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline void store64_le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                  \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                     \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                     \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                  \
    } while (0)

static void siphash(const uint8_t key[16], const uint8_t *in, size_t len, uint8_t *out, int outlen)
{
    uint64_t k0 = load64_le(key), k1 = load64_le(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    if (outlen == 16)
        v1 ^= 0xee;
    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load64_le(in + i);
        v3 ^= m;
        SIPROUND; SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)in[full + i] << (8 * i);
    v3 ^= b;
    SIPROUND; SIPROUND;
    v0 ^= b;
    v2 ^= outlen == 16 ? 0xee : 0xff;
    SIPROUND; SIPROUND; SIPROUND; SIPROUND;
    store64_le(out, v0 ^ v1 ^ v2 ^ v3);
    if (outlen == 16) {
        v1 ^= 0xdd;
        SIPROUND; SIPROUND; SIPROUND; SIPROUND;
        store64_le(out + 8, v0 ^ v1 ^ v2 ^ v3);
    }
}

uint64_t hash_sip64(const uint8_t key[16], const void *msg, size_t len)
{
    uint8_t out[8];
    siphash(key, msg, len, out, 8);
    return load64_le(out);
}

void hash_sip128(const uint8_t key[16], const void *msg, size_t len, uint8_t out[16])
{
    siphash(key, msg, len, out, 16);
}

/* Fixed, public key: changing it orphans every stored object. */
static const uint8_t cache_key_secret[16] = { 'c', 'd', 'n', '-', 'c', 'a', 'c', 'h',
                                              'e', '-', 'k', 'e', 'y', '-', 'v', '1' };

void hash_cache_key(const void *msg, size_t len, uint8_t out[16])
{
    siphash(cache_key_secret, msg, len, out, 16);
}
