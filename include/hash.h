/* hash: SipHash-2-4, used for cache keys (128-bit) and rendezvous hashing.
 *
 * SipHash mixes well even on short, similar inputs (URLs differing in one
 * character), which matters for the even spread rendezvous hashing needs.
 * The store keeps the full key string beside each object and compares it
 * on every lookup, so a hash collision costs a miss, never a wrong body. */
#ifndef CDN_HASH_H
#define CDN_HASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of msg under the 16-byte key; 64-bit output. */
uint64_t hash_sip64(const uint8_t key[16], const void *msg, size_t len);
/* SipHash-2-4 with 128-bit output written to out[16]. */
void hash_sip128(const uint8_t key[16], const void *msg, size_t len, uint8_t out[16]);
/* 128-bit hash of a cache key string with the project's fixed key (stable
 * across restarts, so stored objects stay addressable). */
void hash_cache_key(const void *msg, size_t len, uint8_t out[16]);

#endif
