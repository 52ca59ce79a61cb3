/* origin_hostile: the broken images the origin serves for the edge's
 * hostile-input tests: a PNG bomb, truncated and corrupted bodies, text
 * posing as an image. Bytes only; no libvips, so each is exactly what its
 * comment says, whatever a decoder would make of it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "origin.h"

#define BOMB_SIDE 60000u

/* CRC-32 (ISO-HDLC, PNG's), bit by bit: a few hundred bytes need no table. */
static uint32_t crc32_png(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Write one PNG chunk at p (length, type, data, CRC over type and data). */
static size_t png_chunk(uint8_t *p, const char *type, const void *data, uint32_t n)
{
    put32(p, n);
    memcpy(p + 4, type, 4);
    if (n)
        memcpy(p + 8, data, n);
    put32(p + 8 + n, crc32_png(0, p + 4, 4 + n));
    return 12 + n;
}

/* A PNG whose header claims 60000x60000 RGBA (14.4 GB of pixels) and whose
 * IDAT is the start of a zlib stream (one stored block of 16 zero bytes,
 * not the last): a header-only reader sees a valid giant; a decoder that
 * trusts it allocates 14 GB before noticing the data is missing. */
int origin_hostile_bomb(uint8_t **out, size_t *len)
{
    static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    uint8_t ihdr[13], idat[2 + 5 + 16] = { 0x78, 0x01, 0x00, 16, 0, 0xef, 0xff };
    put32(ihdr, BOMB_SIDE);
    put32(ihdr + 4, BOMB_SIDE);
    ihdr[8] = 8, ihdr[9] = 6, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0; /* 8-bit RGBA */
    uint8_t *p = malloc(8 + 25 + 12 + sizeof idat + 12);
    if (!p)
        return -ENOMEM;
    memcpy(p, sig, 8);
    size_t n = 8;
    n += png_chunk(p + n, "IHDR", ihdr, sizeof ihdr);
    n += png_chunk(p + n, "IDAT", idat, sizeof idat);
    n += png_chunk(p + n, "IEND", NULL, 0);
    *out = p;
    *len = n;
    return 0;
}

/* Where the compressed pixels are: a JPEG's first scan, the middle IDAT
 * of a PNG (*chunk set to its start so its CRC can be redone), else the
 * middle half of the file. */
static void compressed_span(const uint8_t *p, size_t n, int f, size_t *lo, size_t *hi, size_t *chunk)
{
    *lo = n / 4, *hi = n - n / 4, *chunk = SIZE_MAX;
    if (f == ORIGIN_PIC_JPEG) {
        for (size_t i = 2; i + 4 <= n; i++)
            if (p[i] == 0xff && p[i + 1] == 0xda) {
                *lo = i + 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
                *hi = n - 2; /* EOI */
                break;
            }
    } else if (f == ORIGIN_PIC_PNG) {
        for (size_t i = 8; i + 12 <= n; i += 12 + get32(p + i)) {
            size_t dl = get32(p + i);
            if (memcmp(p + i + 4, "IDAT", 4) == 0 && i + 12 + dl <= n && dl > 0 && i + 8 + dl >= n / 2) {
                *lo = i + 8, *hi = i + 8 + dl, *chunk = i;
                break;
            }
        }
    }
    if (*hi <= *lo || *hi > n)
        *lo = 0, *hi = n;
}

int origin_hostile_damage(int damage, int format, uint64_t seed, const uint8_t *src, size_t len,
                          uint8_t **out, size_t *outlen)
{
    static const char text[] = "this is not an image\n";
    if (damage == ORIGIN_DAMAGE_TEXT) {
        size_t n = 8 * (sizeof text - 1);
        if (!(*out = malloc(n)))
            return -ENOMEM;
        for (size_t i = 0; i < 8; i++)
            memcpy(*out + i * (sizeof text - 1), text, sizeof text - 1);
        *outlen = n;
        return 0;
    }
    *outlen = damage == ORIGIN_DAMAGE_TRUNCATE ? len / 2 : len;
    if (!(*out = malloc(*outlen ? *outlen : 1)))
        return -ENOMEM;
    memcpy(*out, src, *outlen);
    if (damage == ORIGIN_DAMAGE_CORRUPT) {
        size_t lo, hi, chunk, span, run, at;
        compressed_span(*out, *outlen, format, &lo, &hi, &chunk);
        span = hi - lo;
        run = span / 4 < 512 ? span / 4 : 512;
        at = lo + (span - run) / 2;
        uint32_t x = (uint32_t)(seed ^ seed >> 32) | 1;
        for (size_t i = 0; i < run; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32: deterministic junk */
            (*out)[at + i] = (uint8_t)x == 0xff ? 0xfe : (uint8_t)x;
        }
        /* In a JPEG scan, junk alone often decodes silently to other
         * pixels; a restart marker where none is expected also makes
         * libjpeg complain, so a strict decoder fails. */
        if (format == ORIGIN_PIC_JPEG && run >= 4)
            (*out)[at + run / 2] = 0xff, (*out)[at + run / 2 + 1] = 0xd5;
        if (chunk != SIZE_MAX) /* a valid CRC: the damage must be found by the inflater */
            put32(*out + hi, crc32_png(0, *out + chunk + 4, 4 + (hi - lo)));
    }
    return 0;
}
