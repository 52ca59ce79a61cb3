/* policy_vary: Vary field lists, secondary keys and variant ids (see
 * include/policy_vary.h). */
#include "policy_vary.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "hash.h"

/* Append the normalised value of request field name (nlen) to out.
 * Returns 0 or a negative buf error. */
static int put_value(buf_t *out, const http_fields_t *req, const char *name, size_t nlen)
{
    bool any = false;
    int rc;
    for (size_t i = 0; i < req->n; i++) {
        http_slice_t n = http_fields_name(req, i);
        if (n.len != nlen || strncasecmp(n.p, name, nlen) != 0)
            continue;
        size_t pos = 0;
        http_slice_t item;
        while (http_list_next(http_fields_value(req, i), &pos, &item)) {
            if ((rc = buf_append(out, any ? "," : ":", 1)))
                return rc;
            any = true;
            bool space = false;
            for (size_t m = 0; m < item.len; m++) {
                char c = item.p[m];
                if (c == ' ' || c == '\t') {
                    space = true;
                    continue;
                }
                if (space && (rc = buf_append(out, " ", 1)))
                    return rc;
                space = false;
                char lc = (char)tolower((unsigned char)c);
                if ((rc = buf_append(out, &lc, 1)))
                    return rc;
            }
        }
        if (!any) {
            /* Present but empty. */
            if ((rc = buf_append(out, ":", 1)))
                return rc;
            any = true;
        }
    }
    if (!any && (rc = buf_append(out, "!", 1)))
        return rc;
    return buf_append(out, "\n", 1);
}

bool policy_vary_listed(const char *fields, size_t flen, const char *name, size_t nlen)
{
    size_t i = 0;
    while (i < flen) {
        const char *nl = memchr(fields + i, '\n', flen - i);
        size_t l = nl ? (size_t)(nl - fields) - i : flen - i;
        if (l == nlen && strncasecmp(fields + i, name, nlen) == 0)
            return true;
        i += l + 1;
    }
    return false;
}

/* Append name (nlen, lowercased) as a line of out[start, len) unless listed.
 * Returns 0 or a negative errno: -E2BIG for a name of 256 bytes or more
 * (no real field name is this long), or a buf error. */
static int add_name(buf_t *out, size_t start, const char *name, size_t nlen)
{
    char lower[256];
    if (nlen >= sizeof lower)
        return -E2BIG;
    for (size_t m = 0; m < nlen; m++)
        lower[m] = (char)tolower((unsigned char)name[m]);
    if (policy_vary_listed(out->data ? out->data + start : "", out->len - start, lower, nlen))
        return 0;
    int rc = buf_append(out, lower, nlen);
    return rc ? rc : buf_append(out, "\n", 1);
}

static bool is_token(http_slice_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!http_tchar((unsigned char)s.p[i]))
            return false;
    return s.len > 0;
}

int policy_vary_fields_with(buf_t *out, const http_fields_t *resp, const char *implicit, size_t ilen)
{
    int kind = POLICY_VARY_NONE, rc;
    size_t start = out->len;
    for (size_t i = 0; i < resp->n; i++) {
        if (!http_name_eq(http_fields_name(resp, i), "vary"))
            continue;
        size_t pos = 0;
        http_slice_t item;
        while (http_list_next(http_fields_value(resp, i), &pos, &item)) {
            if (item.len == 1 && item.p[0] == '*') {
                out->len = start;
                return POLICY_VARY_STAR;
            }
            /* A member that is not a field name (a token) names no field a
             * request can carry: it selects nothing, and a ':' or '!' in it
             * would make the secondary key unreadable (policy_vary_match
             * splits each line at the first of them). Skip it. */
            if (!is_token(item))
                continue;
            if ((rc = add_name(out, start, item.p, item.len)))
                return rc;
            kind = POLICY_VARY_KEY;
        }
    }
    for (size_t i = 0; i < ilen;) {
        const char *nl = memchr(implicit + i, '\n', ilen - i);
        size_t l = nl ? (size_t)(nl - implicit) - i : ilen - i;
        if (l && (rc = add_name(out, start, implicit + i, l)))
            return rc;
        kind = l ? POLICY_VARY_KEY : kind;
        i += l + 1;
    }
    return kind;
}

int policy_vary_fields(buf_t *out, const http_fields_t *resp)
{
    return policy_vary_fields_with(out, resp, NULL, 0);
}

int policy_vary_key_from_fields(buf_t *out, const char *fields, size_t flen, const http_fields_t *req)
{
    size_t i = 0;
    while (i < flen) {
        const char *nl = memchr(fields + i, '\n', flen - i);
        size_t l = nl ? (size_t)(nl - fields) - i : flen - i;
        int rc = buf_append(out, fields + i, l);
        if (rc || (rc = put_value(out, req, fields + i, l)))
            return rc;
        i += l + 1;
    }
    return 0;
}

static int vary_key_with(buf_t *out, const http_fields_t *resp, const char *implicit, size_t ilen,
                         const http_fields_t *req)
{
    buf_t names;
    buf_init(&names, 64 * 1024);
    int kind = policy_vary_fields_with(&names, resp, implicit, ilen);
    int rc;
    if (kind == POLICY_VARY_KEY && (rc = policy_vary_key_from_fields(out, names.data, names.len, req)))
        kind = rc;
    buf_free(&names);
    return kind;
}

int policy_vary_key(buf_t *out, const http_fields_t *resp, const http_fields_t *req)
{
    return vary_key_with(out, resp, NULL, 0, req);
}

bool policy_vary_match(const char *key, size_t len, const http_fields_t *req)
{
    buf_t mine;
    buf_init(&mine, len + 1);
    bool ok = true;
    size_t i = 0;
    /* Rebuild the request's key over the same names, line by line. */
    while (i < len && ok) {
        size_t nl = i;
        while (nl < len && key[nl] != '\n')
            nl++;
        /* "name:value" or "name!". A field name holds no ':' but may hold
         * '!' (a tchar): the name ends at the first ':', or, when there is
         * none, before the line's final '!'. */
        const char *colon = memchr(key + i, ':', nl - i);
        size_t j = colon ? (size_t)(colon - key) : nl;
        /* A line without its '\n' is no key line: comparing the rebuilt
         * line, '\n' included, would read one byte past the key. */
        if (nl == len || (!colon && (nl == i || key[--j] != '!'))) {
            ok = false;
            break;
        }
        buf_reset(&mine);
        if (buf_append(&mine, key + i, j - i) || put_value(&mine, req, key + i, j - i)) {
            ok = false; /* the request's value is longer than the stored one */
            break;
        }
        ok = mine.len == nl + 1 - i && memcmp(mine.data, key + i, mine.len) == 0;
        i = nl + 1;
    }
    buf_free(&mine);
    return ok;
}

bool policy_vary_response_matches_with(const http_fields_t *resp, const char *implicit, size_t ilen,
                                       const http_fields_t *a, const http_fields_t *b)
{
    buf_t ka, kb;
    buf_init(&ka, 64 * 1024);
    buf_init(&kb, 64 * 1024);
    int ra = vary_key_with(&ka, resp, implicit, ilen, a), rb = vary_key_with(&kb, resp, implicit, ilen, b);
    bool same = ra == POLICY_VARY_NONE ||
                (ra == POLICY_VARY_KEY && rb == ra && ka.len == kb.len && memcmp(ka.data, kb.data, ka.len) == 0);
    buf_free(&ka);
    buf_free(&kb);
    return same;
}

bool policy_vary_response_matches(const http_fields_t *resp, const http_fields_t *a, const http_fields_t *b)
{
    return policy_vary_response_matches_with(resp, NULL, 0, a, b);
}

uint64_t policy_vary_id(const char *key, size_t len)
{
    static const uint8_t k[16] = { 'c', 'd', 'n', '-', 'v', 'a', 'r', 'y', '-', 'i', 'd', '-', 'k', 'e', 'y', '1' };
    uint64_t id = hash_sip64(k, key, len);
    return id ? id : 1;
}
