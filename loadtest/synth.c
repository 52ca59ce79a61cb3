/* synth: synthetic bodies (see loadtest/synth.h).
 *
 * Counter mode: line L (64 bytes) of a body starts from SipHash(key(path),
 * L), expanded into 8 words by a splitmix64 finaliser; each byte is one
 * of 64 printable characters and the 64th is '\n'. The key is itself a
 * SipHash of the path under a fixed key, so the bytes are stable across
 * runs and hosts, and different paths share no structure. Being a function
 * of the line number, any offset is reachable without generating what
 * precedes it. One SipHash per line rather than per 8 bytes: the origin
 * must generate bodies faster than a load test can fetch them. */
#include "synth.h"

#include <string.h>

#include "hash.h"

#define LINE 64
#define PIECE 16384

static const uint8_t path_secret[16] = { 'c', 'd', 'n', '-', 's', 'y', 'n', 't',
                                         'h', '-', 'b', 'o', 'd', 'y', '-', '1' };

static void path_key(const char *path, size_t plen, uint8_t key[16])
{
    uint64_t k0 = hash_sip64(path_secret, path, plen);
    uint64_t k1 = k0 ^ 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 8; i++) {
        key[i] = (uint8_t)(k0 >> (8 * i));
        key[8 + i] = (uint8_t)(k1 >> (8 * i));
    }
}

static inline uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* One 8-byte store (GCC does not merge the byte-by-byte form). */
static inline void store64_le(char *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof v);
}

/* The 64 bytes of line number `line`. Each byte keeps 6 random bits and
 * adds '0': characters '0' to 'o', all printable, eight at a time. */
static void make_line(const uint8_t key[16], uint64_t line, char out[LINE])
{
    uint8_t m[8];
    for (int i = 0; i < 8; i++)
        m[i] = (uint8_t)(line >> (8 * i));
    uint64_t h = hash_sip64(key, m, sizeof m);
    for (int w = 0; w < LINE / 8; w++) {
        uint64_t x = mix(h + (uint64_t)(w + 1) * 0x9e3779b97f4a7c15ull);
        store64_le(out + 8 * w, (x & 0x3f3f3f3f3f3f3f3full) + 0x3030303030303030ull);
    }
    out[LINE - 1] = '\n';
}

void synth_fill(const char *path, size_t plen, uint64_t off, void *dst, size_t n)
{
    uint8_t key[16];
    char *out = dst, line[LINE];
    path_key(path, plen, key);
    while (n) {
        uint64_t l = off / LINE;
        size_t at = (size_t)(off % LINE), k = LINE - at < n ? LINE - at : n;
        if (k == LINE) {
            make_line(key, l, out);
        } else {
            make_line(key, l, line);
            memcpy(out, line + at, k);
        }
        out += k;
        off += k;
        n -= k;
    }
}

uint64_t synth_fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t synth_checksum(const char *path, size_t plen, uint64_t size)
{
    char piece[PIECE];
    uint64_t h = SYNTH_FNV_INIT;
    for (uint64_t off = 0; off < size; off += PIECE) {
        size_t n = size - off < PIECE ? (size_t)(size - off) : PIECE;
        synth_fill(path, plen, off, piece, n);
        h = synth_fnv1a(h, piece, n);
    }
    return h;
}

size_t synth_compare(const char *path, size_t plen, uint64_t off, const void *p, size_t n)
{
    char piece[PIECE];
    const char *s = p;
    for (size_t done = 0; done < n; done += PIECE) {
        size_t k = n - done < PIECE ? n - done : PIECE;
        synth_fill(path, plen, off + done, piece, k);
        if (memcmp(piece, s + done, k) != 0) {
            for (size_t i = 0; i < k; i++)
                if (piece[i] != s[done + i])
                    return done + i;
        }
    }
    return n;
}
