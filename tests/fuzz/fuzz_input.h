/* fuzz_input: what the policy targets share to turn libFuzzer's bytes
 * into what a real caller hands the parsers: a value in its own exact-size
 * allocation (an over-read by one byte is an ASan report), the same value
 * NUL-terminated where an API wants a C string, and header lists built
 * from "Name: value" lines as llhttp would deliver them. Header-only, so a
 * target stays one object file. */
#ifndef CDN_FUZZ_INPUT_H
#define CDN_FUZZ_INPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_fields.h"

/* d[0..n) in its own allocation of exactly n bytes (1 when n is 0, never
 * read). Aborts when memory runs out: a target must not skip inputs. */
static inline char *fuzz_dup(const uint8_t *d, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (!p)
        abort();
    if (n)
        memcpy(p, d, n);
    return p;
}

/* d[0..n) NUL-terminated, in an allocation of exactly n + 1 bytes. */
static inline char *fuzz_cstr(const uint8_t *d, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        abort();
    if (n)
        memcpy(p, d, n);
    p[n] = '\0';
    return p;
}

/* Read every byte of s[0..n): a slice past its buffer is an ASan report
 * here even if nothing else would touch it. */
static inline unsigned fuzz_touch(const char *s, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)s[i];
    return sum;
}

/* A byte llhttp passes in a field value: HTAB, SP..~, obs-text. */
static inline bool fuzz_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Append to h the fields of d[0..n): one per line (LF, an optional CR
 * before it dropped), "Name: value" with OWS around the value trimmed.
 * Lines llhttp would refuse (no colon, a name that is not a token, a
 * control byte in the value) are skipped, as the request would never get
 * this far. Aborts when http_fields_add fails (no cap is set). */
static inline void fuzz_fields(http_fields_t *h, const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const uint8_t *nl = memchr(d + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - d) : n, next = e + 1;
        if (e > i && d[e - 1] == '\r')
            e--;
        size_t c = i;
        while (c < e && d[c] != ':' && http_tchar(d[c]))
            c++;
        bool ok = c > i && c < e && d[c] == ':';
        size_t vs = c + 1, ve = e;
        while (ok && vs < ve && (d[vs] == ' ' || d[vs] == '\t'))
            vs++;
        while (ok && ve > vs && (d[ve - 1] == ' ' || d[ve - 1] == '\t'))
            ve--;
        for (size_t k = vs; ok && k < ve; k++)
            ok = fuzz_value_byte(d[k]);
        if (ok && http_fields_add(h, (const char *)d + i, c - i, (const char *)d + vs, ve - vs) != 0)
            abort();
        i = next;
    }
}

#endif
