/* policy_vary: Vary secondary keys (see include/policy_vary.h). */
#include "policy_vary.h"

#include <ctype.h>
#include <string.h>

/* Append the normalised value of request field name (nlen) to out. */
static int put_value(buf_t *out, const http_fields_t *req, const char *name, size_t nlen)
{
    bool any = false;
    for (size_t i = 0; i < req->n; i++) {
        http_slice_t n = http_fields_name(req, i);
        if (n.len != nlen || strncasecmp(n.p, name, nlen) != 0)
            continue;
        size_t pos = 0;
        http_slice_t item;
        while (http_list_next(http_fields_value(req, i), &pos, &item)) {
            if (buf_append(out, any ? "," : ":", 1))
                return -1;
            any = true;
            bool space = false;
            for (size_t m = 0; m < item.len; m++) {
                char c = item.p[m];
                if (c == ' ' || c == '\t') {
                    space = true;
                    continue;
                }
                if (space && buf_append(out, " ", 1))
                    return -1;
                space = false;
                char lc = (char)tolower((unsigned char)c);
                if (buf_append(out, &lc, 1))
                    return -1;
            }
        }
        if (!any) {
            /* Present but empty. */
            if (buf_append(out, ":", 1))
                return -1;
            any = true;
        }
    }
    if (!any && buf_append(out, "!", 1))
        return -1;
    return buf_append(out, "\n", 1);
}

int policy_vary_key(buf_t *out, const http_fields_t *resp, const http_fields_t *req)
{
    int kind = POLICY_VARY_NONE;
    for (size_t i = 0; i < resp->n; i++) {
        if (!http_name_eq(http_fields_name(resp, i), "vary"))
            continue;
        size_t pos = 0;
        http_slice_t item;
        while (http_list_next(http_fields_value(resp, i), &pos, &item)) {
            if (item.len == 1 && item.p[0] == '*')
                return POLICY_VARY_STAR;
            for (size_t m = 0; m < item.len; m++) {
                char lc = (char)tolower((unsigned char)item.p[m]);
                if (buf_append(out, &lc, 1))
                    return -1;
            }
            if (put_value(out, req, item.p, item.len))
                return -1;
            kind = POLICY_VARY_KEY;
        }
    }
    return kind;
}

bool policy_vary_match(const char *key, size_t len, const http_fields_t *req)
{
    buf_t mine;
    buf_init(&mine, len + 1);
    bool ok = true;
    size_t i = 0;
    /* Rebuild the request's key over the same names, line by line. */
    while (i < len && ok) {
        size_t j = i;
        while (j < len && key[j] != ':' && key[j] != '!' && key[j] != '\n')
            j++;
        if (j == len || key[j] == '\n') {
            ok = false;
            break;
        }
        size_t nl = i;
        while (nl < len && key[nl] != '\n')
            nl++;
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

bool policy_vary_response_matches(const http_fields_t *resp, const http_fields_t *a, const http_fields_t *b)
{
    buf_t ka, kb;
    buf_init(&ka, 64 * 1024);
    buf_init(&kb, 64 * 1024);
    int ra = policy_vary_key(&ka, resp, a), rb = policy_vary_key(&kb, resp, b);
    bool same = ra == POLICY_VARY_NONE ||
                (ra == POLICY_VARY_KEY && rb == ra && ka.len == kb.len && memcmp(ka.data, kb.data, ka.len) == 0);
    buf_free(&ka);
    buf_free(&kb);
    return same;
}
