/* Fuzz target: the purge API's JSON body (purge_req_parse), exactly the
 * bytes of a POST /.cdn/purge, not NUL-terminated, with a small max_uri
 * so the limit is reachable.
 *
 * A refused body leaves *out empty and a message that renders as the
 * 400's JSON; an accepted one keeps every limit (entries, lengths, tag
 * bytes, host) and survives the way a node passes it on: rendered with
 * purge_req_to_json and parsed again, it is the same purge. Everything is
 * freed (libFuzzer reports leaks). The same bytes also go through the
 * Authorization check and the host check, which see client bytes too. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "purge_req.h"

#define MAX_URI 200

static void must(bool ok)
{
    if (!ok)
        abort();
}

static bool visible_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static void check_list(char *const *v, size_t n, size_t max, bool tags)
{
    must(n == 0 || v != NULL);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        must(l >= 1 && l <= max);
        if (tags)
            must(visible_ascii(v[i], l));
        else
            must(v[i][0] == '/' || strncasecmp(v[i], "http", 4) == 0);
    }
}

static bool same_list(char *const *a, size_t an, char *const *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

static void check_empty(const purge_req_t *r)
{
    must(!r->urls && !r->nurls && !r->prefixes && !r->nprefixes && !r->tags && !r->ntags && !r->all && !r->soft &&
         !r->host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_dup(data, size);
    char err[256];
    purge_req_t r;
    int rc = purge_req_parse(&r, body, size, MAX_URI, err, sizeof err);
    if (rc) {
        must(rc == -EINVAL || rc == -ENOMEM);
        must(err[0] != '\0' && strlen(err) < sizeof err);
        check_empty(&r);
        char *j = purge_req_error_json(err);
        must(j != NULL);
        free(j);
    } else {
        must(r.nurls + r.nprefixes + r.ntags <= PURGE_REQ_MAX_ITEMS);
        must(r.all ? r.nurls + r.nprefixes + r.ntags == 0 : r.nurls + r.nprefixes + r.ntags > 0);
        check_list(r.urls, r.nurls, MAX_URI, false);
        check_list(r.prefixes, r.nprefixes, MAX_URI, false);
        check_list(r.tags, r.ntags, PURGE_REQ_MAX_TAG_BYTES, true);
        must(!r.host || purge_req_host_valid(r.host, strlen(r.host)));

        /* Passed on to a peer and parsed there: the same purge. */
        char *j = purge_req_to_json(&r, r.host);
        must(j != NULL);
        purge_req_t again;
        must(purge_req_parse(&again, j, strlen(j), MAX_URI, err, sizeof err) == 0);
        must(again.all == r.all && again.soft == r.soft);
        must(same_list(again.urls, again.nurls, r.urls, r.nurls));
        must(same_list(again.prefixes, again.nprefixes, r.prefixes, r.nprefixes));
        must(same_list(again.tags, again.ntags, r.tags, r.ntags));
        must(!again.host == !r.host && (!r.host || strcmp(again.host, r.host) == 0));
        purge_req_free(&again);
        free(j);
        purge_req_free(&r);
        check_empty(&r);
        purge_req_free(&r); /* safe twice */
    }

    static const char token[] = "s3cr3t-token";
    bool ok = purge_token_check(token, sizeof token - 1, body, size);
    must(!ok || (size >= 6 + sizeof token && memmem(body, size, token, sizeof token - 1)));
    purge_req_host_valid(body, size);
    free(body);
    return 0;
}
