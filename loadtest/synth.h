/* synth: the synthetic bodies served by the test/demo origin.
 *
 * A body is a pure function of a path (without its query) and a size:
 * byte i of the body for path P does not depend on the size, so any
 * client (tests, the load generator, curl) can regenerate or verify any
 * range of it without having stored it. Bytes are printable ASCII with a
 * '\n' every 64th byte, so a body dumped to a terminal stays readable. */
#ifndef CDN_SYNTH_H
#define CDN_SYNTH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a 64 offset basis: the starting value of synth_fnv1a. */
#define SYNTH_FNV_INIT 0xcbf29ce484222325ull

/* Write bytes [off, off + n) of the body of path[0, plen) to dst (which the
 * caller owns). Pure: same inputs, same bytes, on every host. */
void synth_fill(const char *path, size_t plen, uint64_t off, void *dst, size_t n);
/* FNV-1a 64 of the whole body of path[0, plen) with `size` bytes. Costs a
 * pass over the body (about 2 s per GiB): cache it for big bodies. */
uint64_t synth_checksum(const char *path, size_t plen, uint64_t size);
/* Continue an FNV-1a 64 hash h (start with SYNTH_FNV_INIT) over p[0, n),
 * so a receiver can checksum a body piece by piece. */
uint64_t synth_fnv1a(uint64_t h, const void *p, size_t n);
/* Compare p[0, n) with bytes [off, off + n) of the body of path; returns
 * the offset within p of the first difference, or n when they match. */
size_t synth_compare(const char *path, size_t plen, uint64_t off, const void *p, size_t n);

#endif
