/* policy_sign: HMAC-SHA256 signatures of image URLs (the scheme is in
 * include/policy_sign.h). libcrypto computes the MAC and compares in
 * constant time; the query handling is ours and allocates only the message. */
#include "policy_sign.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAC_LEN 32 /* SHA-256 */

/* One '&'-separated parameter of a query. */
typedef struct param {
    const char *p;
    size_t n;
} param_t;

/* The parameter after *pos in query[0, qlen) into *out; false past the
 * last. An empty query has no parameter; "a&" has two, the second empty. */
static bool next_param(const char *query, size_t qlen, size_t *pos, param_t *out)
{
    if (qlen == 0 || *pos > qlen)
        return false;
    const char *start = query + *pos;
    const char *amp = memchr(start, '&', qlen - *pos);
    out->p = start;
    out->n = amp ? (size_t)(amp - start) : qlen - *pos;
    *pos += out->n + 1; /* past the '&', or past the end after the last one */
    return true;
}

/* The name is exact: "sig", "sig=..." count; "SIG=", "sig2=", "%73ig=" are
 * ordinary parameters, signed like the others. */
static bool is_sig(const param_t *a)
{
    return a->n >= 3 && memcmp(a->p, "sig", 3) == 0 && (a->n == 3 || a->p[3] == '=');
}

int policy_sign_strip(buf_t *out, const char *query, size_t qlen)
{
    size_t pos = 0;
    param_t a;
    int removed = 0, rc = 0;
    bool first = true;
    while (next_param(query, qlen, &pos, &a)) {
        if (is_sig(&a)) {
            removed++;
            continue;
        }
        if ((!first && (rc = buf_append(out, "&", 1)) != 0) || (rc = buf_append(out, a.p, a.n)) != 0)
            return rc;
        first = false;
    }
    return removed;
}

/* RFC 4648 section 5, without padding: 32 bytes give 42 full sextets and
 * one of 4 bits padded with zeros, 43 characters in all. */
static void base64url(const unsigned char *in, size_t n, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned long acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        *out++ = alphabet[(acc << (6 - bits)) & 63];
    *out = '\0';
}

int policy_sign_compute(const void *key, size_t klen, const char *path, size_t plen, const char *query,
                        size_t qlen, char out[POLICY_SIGN_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    buf_t msg;
    int rc;
    out[0] = '\0';
    if (klen == 0 || klen > INT_MAX)
        return -EINVAL;
    buf_init(&msg, 0);
    if ((rc = buf_append(&msg, path, plen)) != 0 || (rc = buf_append(&msg, "?", 1)) != 0)
        goto out;
    size_t mark = msg.len;
    if ((rc = policy_sign_strip(&msg, query, qlen)) < 0)
        goto out;
    rc = 0;
    if (msg.len == mark) /* nothing left of the query: the message is the path alone */
        msg.len--;
    if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)(msg.data ? msg.data : ""), msg.len, mac,
              &mlen) ||
        mlen != MAC_LEN) {
        rc = -EIO;
        goto out;
    }
    base64url(mac, MAC_LEN, out);
out:
    buf_free(&msg);
    return rc;
}

bool policy_sign_check(const void *key, size_t klen, const char *path, size_t plen, const char *query,
                       size_t qlen)
{
    char want[POLICY_SIGN_LEN + 1];
    size_t pos = 0;
    param_t a, sig = { NULL, 0 };
    int nsig = 0;
    while (next_param(query, qlen, &pos, &a)) {
        if (is_sig(&a)) {
            nsig++;
            sig = a;
        }
    }
    /* Two sig parameters would leave the question of which one counts to
     * whatever else parses the URL: refuse rather than pick. */
    if (nsig != 1 || sig.n != 4 + POLICY_SIGN_LEN)
        return false;
    if (policy_sign_compute(key, klen, path, plen, query, qlen, want) != 0)
        return false;
    return CRYPTO_memcmp(want, sig.p + 4, POLICY_SIGN_LEN) == 0;
}
