/* Vary: field lists, secondary keys, normalisation, variant ids. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy_vary.h"

static http_fields_t h(const char *const kv[])
{
    http_fields_t f;
    http_fields_init(&f, 0);
    for (int i = 0; kv && kv[i]; i += 2)
        http_fields_add(&f, kv[i], strlen(kv[i]), kv[i + 1], strlen(kv[i + 1]));
    return f;
}

static char *key_of(const char *const resp[], const char *const req[], int *kind)
{
    http_fields_t r = h(resp), q = h(req);
    buf_t b;
    buf_init(&b, 0);
    *kind = policy_vary_key(&b, &r, &q);
    http_fields_free(&r);
    http_fields_free(&q);
    char *s = strdup(b.data ? b.data : "");
    buf_free(&b);
    return s;
}

Test(vary, fields_listed_lowercased_deduplicated)
{
    const char *resp[] = { "Vary", "Accept-Encoding, accept-language", "vary", " Accept-ENCODING ,,Origin", NULL };
    http_fields_t r = h(resp);
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(policy_vary_fields(&b, &r), POLICY_VARY_KEY);
    cr_assert_str_eq(b.data, "accept-encoding\naccept-language\norigin\n");
    buf_free(&b);
    http_fields_free(&r);
}

Test(vary, star_and_none)
{
    int kind;
    const char *star[] = { "Vary", "Accept, *", NULL };
    free(key_of(star, NULL, &kind));
    cr_assert_eq(kind, POLICY_VARY_STAR);
    const char *none[] = { "Content-Type", "text/plain", NULL };
    free(key_of(none, NULL, &kind));
    cr_assert_eq(kind, POLICY_VARY_NONE);
    const char *empty[] = { "Vary", " , ", NULL };
    free(key_of(empty, NULL, &kind));
    cr_assert_eq(kind, POLICY_VARY_NONE);
}

Test(vary, values_normalised)
{
    int kind;
    const char *resp[] = { "Vary", "Accept-Encoding", NULL };
    const char *a[] = { "Accept-Encoding", "gzip,  BR", NULL };
    const char *b[] = { "accept-encoding", " gzip", "Accept-Encoding", "br ", NULL };
    const char *c[] = { "Accept-Encoding", "gzip, deflate", NULL };
    char *ka = key_of(resp, a, &kind), *kb = key_of(resp, b, &kind), *kc = key_of(resp, c, &kind);
    cr_assert_str_eq(ka, "accept-encoding:gzip,br\n");
    cr_assert_str_eq(ka, kb, "lines joined, members trimmed, lowercased");
    cr_assert_str_neq(ka, kc);
    free(ka);
    free(kb);
    free(kc);
}

Test(vary, absent_empty_and_inner_whitespace)
{
    int kind;
    const char *resp[] = { "Vary", "X-A", NULL };
    const char *absent[] = { "Other", "1", NULL };
    const char *empty[] = { "X-A", "", NULL };
    const char *spaced[] = { "X-A", "a   b\t c", NULL };
    char *k1 = key_of(resp, absent, &kind), *k2 = key_of(resp, empty, &kind), *k3 = key_of(resp, spaced, &kind);
    cr_assert_str_eq(k1, "x-a!\n");
    cr_assert_str_eq(k2, "x-a:\n");
    cr_assert_str_eq(k3, "x-a:a b c\n");
    free(k1);
    free(k2);
    free(k3);
}

Test(vary, match_against_a_stored_key)
{
    const char *resp[] = { "Vary", "Accept-Language, X-B", NULL };
    const char *stored_req[] = { "Accept-Language", "en", NULL };
    int kind;
    char *k = key_of(resp, stored_req, &kind);
    const char *same[] = { "accept-language", " EN", NULL };
    const char *other[] = { "Accept-Language", "fr", NULL };
    const char *extra[] = { "Accept-Language", "en", "X-B", "1", NULL };
    http_fields_t s = h(same), o = h(other), e = h(extra);
    cr_assert(policy_vary_match(k, strlen(k), &s));
    cr_assert_not(policy_vary_match(k, strlen(k), &o));
    cr_assert_not(policy_vary_match(k, strlen(k), &e), "present vs absent X-B");
    cr_assert_not(policy_vary_match("garbage", 7, &s));
    http_fields_free(&s);
    http_fields_free(&o);
    http_fields_free(&e);
    free(k);
}

/* Found by fuzzing (tests/fuzz/corpus/vary/vary-name-not-a-token): a Vary
 * member with a ':' went into the key as "a:b!", which policy_vary_match
 * read as the field "a", and a name with a '!' (a tchar) was cut there:
 * a request never matched its own key. */
Test(vary, a_request_matches_its_own_key_whatever_the_names)
{
    const char *resp[] = { "Vary", "a:b, Accept-Language, x!y, \"q\"", NULL };
    const char *req[] = { "Accept-Language", "en", "a", "b!", NULL };
    int kind;
    char *k = key_of(resp, req, &kind);
    cr_assert_eq(kind, POLICY_VARY_KEY);
    cr_assert_str_eq(k, "accept-language:en\nx!y!\n", "not a field name: skipped");
    const char *with_xy[] = { "Accept-Language", "en", "X!Y", "1", NULL };
    http_fields_t q = h(req), xy = h(with_xy);
    cr_assert(policy_vary_match(k, strlen(k), &q));
    cr_assert_not(policy_vary_match(k, strlen(k), &xy));
    http_fields_free(&q);
    http_fields_free(&xy);
    free(k);
    k = key_of(resp, with_xy, &kind);
    cr_assert_str_eq(k, "accept-language:en\nx!y:1\n");
    xy = h(with_xy);
    cr_assert(policy_vary_match(k, strlen(k), &xy));
    http_fields_free(&xy);
    free(k);
    const char *only[] = { "Vary", "a:b", NULL };
    free(key_of(only, req, &kind));
    cr_assert_eq(kind, POLICY_VARY_NONE, "no field name left: nothing to vary on");
}

/* Found by fuzzing (tests/fuzz/corpus/vary/crash-vary-match-key-without-newline):
 * a key whose last line lacked its '\n' was compared one byte past its end;
 * when that byte happened to be a '\n' the key even matched. */
Test(vary, match_a_key_without_its_final_newline)
{
    const char *req[] = { "A", "1", NULL };
    http_fields_t q = h(req);
    const char buf[] = "a:1\n";
    cr_assert_not(policy_vary_match(buf, 3, &q), "\"a:1\" without its newline");
    cr_assert_not(policy_vary_match("b!", 2, &q));
    cr_assert(policy_vary_match(buf, 4, &q));
    http_fields_free(&q);
}

Test(vary, key_from_fields_and_ids)
{
    const char *req[] = { "Accept-Language", "en", NULL };
    http_fields_t q = h(req);
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(policy_vary_key_from_fields(&b, "accept-language\n", 16, &q), 0);
    cr_assert_str_eq(b.data, "accept-language:en\n");
    uint64_t id = policy_vary_id(b.data, b.len);
    cr_assert_neq(id, 0);
    cr_assert_eq(id, policy_vary_id(b.data, b.len));
    cr_assert_neq(id, policy_vary_id("accept-language:fr\n", 19));
    buf_free(&b);
    http_fields_free(&q);
}

Test(vary, response_matches_for_collapsing)
{
    const char *resp[] = { "Vary", "Accept-Language", NULL };
    const char *novary[] = { "Content-Type", "x", NULL };
    const char *a[] = { "Accept-Language", "en", NULL };
    const char *b[] = { "Accept-Language", "de", NULL };
    http_fields_t r = h(resp), n = h(novary), qa = h(a), qb = h(b);
    cr_assert(policy_vary_response_matches(&r, &qa, &qa));
    cr_assert_not(policy_vary_response_matches(&r, &qa, &qb));
    cr_assert(policy_vary_response_matches(&n, &qa, &qb));
    http_fields_free(&r);
    http_fields_free(&n);
    http_fields_free(&qa);
    http_fields_free(&qb);
}

Test(vary, implicit_fields_join_the_key)
{
    const char *implicit = "x-forwarded-host\n";
    size_t il = strlen(implicit);
    buf_t b;
    buf_init(&b, 0);
    /* No Vary at all: the implicit names alone make it vary. */
    http_fields_t none = h(NULL);
    cr_assert_eq(policy_vary_fields_with(&b, &none, implicit, il), POLICY_VARY_KEY);
    cr_assert_str_eq(b.data, "x-forwarded-host\n");
    /* After Vary's own names, each once. */
    http_fields_t v = h((const char *const[]){ "Vary", "Accept, X-Forwarded-Host", NULL });
    buf_reset(&b);
    cr_assert_eq(policy_vary_fields_with(&b, &v, implicit, il), POLICY_VARY_KEY);
    cr_assert_str_eq(b.data, "accept\nx-forwarded-host\n");
    /* Vary: * still matches nothing. */
    http_fields_t star = h((const char *const[]){ "Vary", "*", NULL });
    buf_reset(&b);
    cr_assert_eq(policy_vary_fields_with(&b, &star, implicit, il), POLICY_VARY_STAR);
    /* Collapsing: requests that differ in an implicit field never share. */
    http_fields_t a = h((const char *const[]){ "X-Forwarded-Host", "a.example", NULL });
    http_fields_t c = h((const char *const[]){ "X-Forwarded-Host", "c.example", NULL });
    cr_assert(policy_vary_response_matches(&none, &a, &c));
    cr_assert_not(policy_vary_response_matches_with(&none, implicit, il, &a, &c));
    cr_assert(policy_vary_response_matches_with(&none, implicit, il, &a, &a));
    cr_assert(policy_vary_listed(implicit, il, "X-Forwarded-Host", 16));
    cr_assert_not(policy_vary_listed(implicit, il, "X-Forwarded", 11));
    buf_free(&b);
    http_fields_free(&none);
    http_fields_free(&v);
    http_fields_free(&star);
    http_fields_free(&a);
    http_fields_free(&c);
}

Test(vary, failures_are_negative_errno)
{
    char name[300];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    const char *resp[] = { "Vary", name, NULL }, *req[] = { "Accept", "a", NULL };
    http_fields_t r = h(resp), q = h(req);
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(policy_vary_fields(&b, &r), -E2BIG, "no field name is 299 bytes long");
    buf_free(&b);
    buf_init(&b, 4); /* past its cap: buf_append's -E2BIG comes through */
    cr_assert_eq(policy_vary_key_from_fields(&b, "accept\n", 7, &q), -E2BIG);
    buf_free(&b);
    http_fields_free(&r);
    http_fields_free(&q);
}
