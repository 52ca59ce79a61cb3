/* Signed image URLs: known answers, where sig may stand, what the message
 * covers, and every malformed signature refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy_sign.h"

#define KEY "test-key-0123456789"

/* Known answers, computed outside this code with
 *   printf '%s' MESSAGE | openssl dgst -sha256 -hmac test-key-0123456789 -binary | basenc --base64url
 * (OpenSSL 3.0.19, coreutils basenc) and the trailing '=' dropped. The
 * second and third contain '-' and '_', so they pin the URL alphabet. */
#define SIG_QUERY "Q4bzNqhtlOcdo6MjaToAsk9cEHV57h7XwipURXVjSXc"   /* /img/cat.jpg?w=400&fmt=webp */
#define SIG_BARE "ISpwpbx2SEi0zfXzavibgsJaKR-wcOrgxQ7Q-lqeOKE"    /* /img/cat.jpg */
#define SIG_PCT "-SmLH5AfobZnM3ijCRGsVa3r42vpQ9_yD6KpM3a_58A"     /* /img/caf%C3%A9%20noir.jpg?w=100&text=a%2Bb */
#define PCT_PATH "/img/caf%C3%A9%20noir.jpg"

static const char *sign(const char *key, const char *path, const char *query)
{
    static char out[POLICY_SIGN_LEN + 1];
    cr_assert_eq(policy_sign_compute(key, strlen(key), path, strlen(path), query, strlen(query), out), 0);
    cr_assert_eq(strlen(out), POLICY_SIGN_LEN);
    return out;
}

static bool check_key(const char *key, const char *path, const char *query)
{
    return policy_sign_check(key, strlen(key), path, strlen(path), query, strlen(query));
}

static bool check(const char *path, const char *query)
{
    return check_key(KEY, path, query);
}

static char *strip(const char *query, int *removed)
{
    static char text[256];
    buf_t b;
    buf_init(&b, 0);
    *removed = policy_sign_strip(&b, query, strlen(query));
    cr_assert_geq(*removed, 0);
    snprintf(text, sizeof text, "%.*s", (int)b.len, b.len ? b.data : "");
    buf_free(&b);
    return text;
}

Test(sign, known_answers)
{
    cr_assert_str_eq(sign(KEY, "/img/cat.jpg", "w=400&fmt=webp"), SIG_QUERY);
    cr_assert_str_eq(sign(KEY, "/img/cat.jpg", ""), SIG_BARE);
    cr_assert_str_eq(sign(KEY, PCT_PATH, "w=100&text=a%2Bb"), SIG_PCT);
    cr_assert(check("/img/cat.jpg", "w=400&fmt=webp&sig=" SIG_QUERY));
    cr_assert(check(PCT_PATH, "w=100&text=a%2Bb&sig=" SIG_PCT));
}

Test(sign, sig_anywhere_signs_the_same_message)
{
    cr_assert(check("/img/cat.jpg", "sig=" SIG_QUERY "&w=400&fmt=webp"));
    cr_assert(check("/img/cat.jpg", "w=400&sig=" SIG_QUERY "&fmt=webp"));
    cr_assert(check("/img/cat.jpg", "w=400&fmt=webp&sig=" SIG_QUERY));
    /* compute ignores a sig already in the query, whatever its value */
    cr_assert_str_eq(sign(KEY, "/img/cat.jpg", "w=400&sig=whatever&fmt=webp"), SIG_QUERY);
    /* but the other parameters' order is signed */
    cr_assert_not(check("/img/cat.jpg", "fmt=webp&w=400&sig=" SIG_QUERY));
}

Test(sign, bare_path_signs_just_the_path)
{
    cr_assert(check("/img/cat.jpg", "sig=" SIG_BARE));
    cr_assert_str_eq(sign(KEY, "/img/cat.jpg", "sig=" SIG_BARE), SIG_BARE);
    /* what is left is judged as a string: an empty one leaves the path alone */
    cr_assert(check("/img/cat.jpg", "&sig=" SIG_BARE));
    /* but "&&" leaves "&", and the message is "/img/cat.jpg?&" */
    cr_assert_not(check("/img/cat.jpg", "&&sig=" SIG_BARE));
}

Test(sign, changes_fail)
{
    cr_assert_not(check("/img/dog.jpg", "w=400&fmt=webp&sig=" SIG_QUERY));
    cr_assert_not(check("/img/cat.jpg", "w=401&fmt=webp&sig=" SIG_QUERY));
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp&q=90&sig=" SIG_QUERY));
    cr_assert_not(check("/img/cat.jpg", "w=400&sig=" SIG_QUERY));
    cr_assert_not(check("/img/cat.jpg", "sig=" SIG_QUERY));
    cr_assert_not(check_key("test-key-0123456788", "/img/cat.jpg", "w=400&fmt=webp&sig=" SIG_QUERY));
    cr_assert_not(check_key(KEY "x", "/img/cat.jpg", "w=400&fmt=webp&sig=" SIG_QUERY));
    /* the sig name is exact: another spelling is an ordinary (signed) parameter */
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp&SIG=" SIG_QUERY));
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp&%73ig=" SIG_QUERY));
    cr_assert_str_neq(sign(KEY, "/img/cat.jpg", "w=400&fmt=webp&sig2=x"), SIG_QUERY);
}

Test(sign, malformed_signatures_fail)
{
    char q[128];
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp"));                            /* missing */
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp&sig="));                       /* empty */
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp&sig"));                        /* no value */
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp&sig=" SIG_QUERY "&sig=" SIG_QUERY)); /* two */
    cr_assert_not(check("/img/cat.jpg", "sig=&w=400&fmt=webp&sig=" SIG_QUERY));        /* two, one empty */
    snprintf(q, sizeof q, "w=400&fmt=webp&sig=%.42s", SIG_QUERY);                       /* 42 chars */
    cr_assert_not(check("/img/cat.jpg", q));
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp&sig=" SIG_QUERY "A"));          /* 44 chars */
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp&sig=" SIG_QUERY "="));          /* padded */
    /* standard base64's '+' and '/' in place of '-' and '_' */
    snprintf(q, sizeof q, "w=100&text=a%%2Bb&sig=%s", SIG_PCT);
    for (char *c = strstr(q, "sig=") + 4; *c; c++)
        *c = *c == '-' ? '+' : *c == '_' ? '/' : *c;
    cr_assert(strchr(q, '+') && strchr(q, '/'));
    cr_assert_not(check(PCT_PATH, q));
    /* the same with the '=' of the value percent-encoded: not a sig parameter */
    cr_assert_not(check("/img/cat.jpg", "sig%3D" SIG_BARE));
    /* the last character carries 2 unused bits: a sibling spelling of the
     * same bytes is still refused (strings are compared, not bytes) */
    cr_assert_not(check("/img/cat.jpg", "w=400&fmt=webp&sig=Q4bzNqhtlOcdo6MjaToAsk9cEHV57h7XwipURXVjSXd"));
}

Test(sign, percent_encoding_signed_as_sent)
{
    /* the decoded spellings are other messages */
    cr_assert_not(check(PCT_PATH, "w=100&text=a+b&sig=" SIG_PCT));
    cr_assert_not(check("/img/caf%c3%a9%20noir.jpg", "w=100&text=a%2Bb&sig=" SIG_PCT));
    cr_assert_not(check("/img/café noir.jpg", "w=100&text=a%2Bb&sig=" SIG_PCT));
    cr_assert_not(check(PCT_PATH, "w=100&text=a%2bb&sig=" SIG_PCT));
}

Test(sign, empty_key_refused)
{
    char out[POLICY_SIGN_LEN + 1];
    cr_assert_eq(policy_sign_compute("", 0, "/a", 2, "", 0, out), -EINVAL);
    cr_assert_str_eq(out, "");
    cr_assert_not(policy_sign_check("", 0, "/img/cat.jpg", 12, "sig=" SIG_BARE, 4 + POLICY_SIGN_LEN));
}

Test(sign, strip)
{
    int n;
    cr_assert_str_eq(strip("w=400&sig=abc&fmt=webp", &n), "w=400&fmt=webp");
    cr_assert_eq(n, 1);
    cr_assert_str_eq(strip("sig=abc&w=400", &n), "w=400");
    cr_assert_str_eq(strip("w=400&sig=abc", &n), "w=400");
    cr_assert_str_eq(strip("sig=abc", &n), "");
    cr_assert_eq(n, 1);
    cr_assert_str_eq(strip("", &n), "");
    cr_assert_eq(n, 0);
    cr_assert_str_eq(strip("sig=a&w=1&sig=b&sig", &n), "w=1");
    cr_assert_eq(n, 3);
    /* empty parameters are kept, byte for byte */
    cr_assert_str_eq(strip("a=1&&sig=x&b=2&", &n), "a=1&&b=2&");
    cr_assert_str_eq(strip("signature=1&sig2=2&xsig=3", &n), "signature=1&sig2=2&xsig=3");
    cr_assert_eq(n, 0);
    /* a capped buffer reports its error */
    buf_t b;
    buf_init(&b, 4);
    cr_assert_eq(policy_sign_strip(&b, "w=400&sig=x", 11), -E2BIG);
    buf_free(&b);
}
