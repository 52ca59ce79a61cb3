/* CDN-Cache-Control as an RFC 8941 Dictionary on the wire (issue 8, item
 * 5): a field that is not a valid Dictionary, or gives a known directive
 * a value of the wrong type, is ignored as a whole and Cache-Control
 * governs; a valid one still replaces Cache-Control for this cache. The
 * origin sends the field through its header=Name:Value parameter. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"

/* cc=no-store plus one CDN-Cache-Control line; the value is URL-encoded. */
#define NS_CDN(path, v) path "?cc=no-store&header=CDN-Cache-Control:" v

static const struct {
    const char *path, *target, *what;
} invalid[] = {
    { "/sf/string", NS_CDN("/sf/string", "max-age%3D%2210000%22"), "max-age=\"10000\"" },
    { "/sf/junk", NS_CDN("/sf/junk", "max-age%3D10000%2C%20%26%26%26%26%26"), "max-age=10000, &&&&&" },
    { "/sf/decimal", NS_CDN("/sf/decimal", "max-age%3D1.5"), "max-age=1.5" },
    /* Two lines are one field: the second spoils the first. */
    { "/sf/lines", NS_CDN("/sf/lines", "max-age%3D10000&header=CDN-Cache-Control:%26"), "max-age=10000 + &" },
};
#define N_INVALID (sizeof invalid / sizeof invalid[0])

/* GET target and check it was not stored (the decision is in the first
 * response's Cache-Status) nor served from the cache. */
static void not_stored(edge_env_t *env, const char *target, const char *what)
{
    th_resp_t *r = edge_get(env, target);
    cr_assert_eq(r->status, 200, "%s: status %d", what, r->status);
    cr_assert_not(cs_has(r, "stored"), "%s: %s", what, th_hdr(r, "cache-status"));
    cr_assert_not(cs_has(r, "hit"), "%s: %s", what, th_hdr(r, "cache-status"));
    cr_assert_str_eq(th_hdr(r, "cache-control"), "no-store");
    th_resp_free(r);
}

Test(edge_sf, invalid_cdn_cache_control_leaves_no_store_in_charge)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    for (size_t i = 0; i < N_INVALID; i++)
        for (int k = 0; k < 2; k++)
            not_stored(&env, invalid[i].target, invalid[i].what);

    /* The valid field wins over no-store: stored, and a hit once the
     * writer has committed it. */
    const char *ok = NS_CDN("/sf/valid", "max-age%3D10000");
    th_resp_t *r = edge_get(&env, ok);
    cr_assert(cs_has(r, "stored; ttl=10000"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, ok, "hit", 5000), "the valid CDN-Cache-Control was not obeyed");

    /* Stores are committed in order, so anything the invalid responses
     * had (wrongly) queued would be visible by now. */
    for (size_t i = 0; i < N_INVALID; i++) {
        not_stored(&env, invalid[i].target, invalid[i].what);
        cr_assert_eq(th_origin_requests(env.o, invalid[i].path), 3, "%s", invalid[i].what);
    }
    cr_assert_eq(th_origin_requests(env.o, "/sf/valid"), 1);
}

/* Ignored as a whole means its no-store too: Cache-Control's max-age
 * then decides. */
Test(edge_sf, invalid_field_is_ignored_whole)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    const char *t = "/sf/whole?cc=max-age%3D60&header=CDN-Cache-Control:no-store%2C%20max-age%3D1.5";
    th_resp_t *r = edge_get(&env, t);
    cr_assert(cs_has(r, "stored; ttl=60"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert(edge_wait_cs(&env, t, "hit", 5000));
    cr_assert_eq(th_origin_requests(env.o, "/sf/whole"), 1);
}

/* The rule setting cdn_cache_control = ignore still turns a valid field
 * off, and the default still honours it. */
Test(edge_sf, rule_can_ignore_a_valid_field)
{
    char path[700];
    snprintf(path, sizeof path, "%s/edge.conf", th_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("name = edge-sf\n[rule /ign/*]\ncdn_cache_control = ignore\n", f);
    fclose(f);
    const char *extra[] = { "-c", path, NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    for (int k = 0; k < 2; k++)
        not_stored(&env, NS_CDN("/ign/a", "max-age%3D10000"), "ignored by rule");
    th_resp_t *r = edge_get(&env, NS_CDN("/hon/a", "max-age%3D10000"));
    cr_assert(cs_has(r, "stored; ttl=10000"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/ign/a"), 2);
}
