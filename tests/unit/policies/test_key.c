/* Unit tests for policy_key: cache-key normalisation and its bounds. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy_key.h"

/* Key of (scheme, host, target) into a fresh buffer capped at 4096. */
static int key(char *dst, size_t dstlen, const char *scheme, const char *host, const char *target)
{
    buf_t b;
    buf_init(&b, 4096);
    int rc = policy_cache_key(&b, scheme, host, host ? strlen(host) : 0, target, strlen(target));
    snprintf(dst, dstlen, "%s", rc == 0 ? b.data : "");
    cr_assert(rc != 0 || b.len == strlen(dst));
    buf_free(&b);
    return rc;
}

#define KEY_EQ(scheme, host, target, want)                                                                   \
    do {                                                                                                     \
        char got_[4200];                                                                                     \
        int rc_ = key(got_, sizeof got_, scheme, host, target);                                              \
        cr_assert_eq(rc_, 0, "%s %s %s -> %d", scheme, host, target, rc_);                                   \
        cr_assert_str_eq(got_, want);                                                                        \
    } while (0)

#define KEY_ERR(scheme, host, target, err)                                                                   \
    do {                                                                                                     \
        char got_[4200];                                                                                     \
        cr_assert_eq(key(got_, sizeof got_, scheme, host, target), err, "%s %s %s", scheme, host, target);   \
    } while (0)

Test(key, basic)
{
    KEY_EQ("http", "example.com", "/a/b?x=1&y=2", "http://example.com/a/b?x=1&y=2");
    KEY_EQ("https", "example.com", "/", "https://example.com/");
}

Test(key, case_of_scheme_and_host)
{
    KEY_EQ("HTTP", "ExAmPlE.CoM", "/Path/Is/Case", "http://example.com/Path/Is/Case");
    KEY_EQ("https", "[2001:DB8::1]:8443", "/", "https://[2001:db8::1]:8443/");
}

Test(key, default_ports)
{
    KEY_EQ("http", "example.com:80", "/", "http://example.com/");
    KEY_EQ("https", "example.com:443", "/", "https://example.com/");
    KEY_EQ("http", "example.com:443", "/", "http://example.com:443/");
    KEY_EQ("https", "example.com:80", "/", "https://example.com:80/");
    KEY_EQ("http", "example.com:8080", "/", "http://example.com:8080/");
    KEY_EQ("http", "example.com:", "/", "http://example.com/");
    KEY_EQ("http", "example.com:0080", "/", "http://example.com/");
    KEY_EQ("http", "127.0.0.1:80", "/", "http://127.0.0.1/");
    KEY_EQ("http", "[::1]:80", "/", "http://[::1]/");
    KEY_EQ("http", "[::1]", "/", "http://[::1]/");
}

Test(key, trailing_dot)
{
    KEY_EQ("http", "example.com.", "/", "http://example.com/");
    KEY_EQ("http", "Example.COM.:8080", "/", "http://example.com:8080/");
    KEY_EQ("http", " example.com ", "/", "http://example.com/");
    KEY_EQ("http", "example.com..", "/", "http://example.com/");
    KEY_ERR("http", "...", "/", -EINVAL);
}

Test(key, absolute_form_wins)
{
    KEY_EQ("http", "other.example", "http://Example.com:80/p?q", "http://example.com/p?q");
    KEY_EQ("http", NULL, "HTTPS://example.com/p", "https://example.com/p");
    KEY_EQ("http", "x", "http://example.com", "http://example.com/");
    KEY_EQ("http", "x", "http://example.com?q=1", "http://example.com/?q=1");
    KEY_EQ("http", "x", "http://example.com#frag", "http://example.com/");
    KEY_EQ("http", "x", "http://example.com:8080/a/../b", "http://example.com:8080/b");
}

Test(key, percent_encoding)
{
    KEY_EQ("http", "h", "/a%2fb", "http://h/a%2Fb");           /* reserved: stays encoded, hex upper */
    KEY_EQ("http", "h", "/%7euser/%41%42c", "http://h/~user/ABc"); /* unreserved: decoded */
    KEY_EQ("http", "h", "/%2D%2E%5F%7E", "http://h/-._~");
    KEY_EQ("http", "h", "/%e2%82%ac", "http://h/%E2%82%AC");
    KEY_EQ("http", "h", "/%20", "http://h/%20");
    KEY_EQ("http", "h", "/\xc3\xa9", "http://h/%C3%A9"); /* raw UTF-8 == its escaped form */
    KEY_EQ("http", "h", "/a|b{c}", "http://h/a%7Cb%7Bc%7D");
    KEY_ERR("http", "h", "/%", -EINVAL);
    KEY_ERR("http", "h", "/%4", -EINVAL);
    KEY_ERR("http", "h", "/%zz", -EINVAL);
    KEY_ERR("http", "h", "/%4g", -EINVAL);
}

Test(key, dot_segments)
{
    KEY_EQ("http", "h", "/a/b/c/./../../g", "http://h/a/g");
    KEY_EQ("http", "h", "/mid/content=5/../6", "http://h/mid/6");
    KEY_EQ("http", "h", "/../../a", "http://h/a");
    KEY_EQ("http", "h", "/..", "http://h/");
    KEY_EQ("http", "h", "/.", "http://h/");
    KEY_EQ("http", "h", "/a/.", "http://h/a/");
    KEY_EQ("http", "h", "/a/..", "http://h/");
    KEY_EQ("http", "h", "/a/b/..", "http://h/a/");
    KEY_EQ("http", "h", "/a/./b", "http://h/a/b");
    KEY_EQ("http", "h", "/a//b/", "http://h/a//b/");
    KEY_EQ("http", "h", "/a/.b/..c/...", "http://h/a/.b/..c/...");
    KEY_EQ("http", "h", "/a/%2E%2E/b", "http://h/b"); /* decoded dots are dots */
    KEY_EQ("http", "h", "/a/%2e/b", "http://h/a/b");
    KEY_EQ("http", "h", "/a/b/../c?x=/../y", "http://h/a/c?x=/../y"); /* not in the query */
}

Test(key, query_kept_fragment_dropped)
{
    KEY_EQ("http", "h", "/p?b=2&a=1&a=%7e", "http://h/p?b=2&a=1&a=%7e");
    KEY_EQ("http", "h", "/p?", "http://h/p?");
    KEY_EQ("http", "h", "/p#frag", "http://h/p");
    KEY_EQ("http", "h", "/p?q#frag?x", "http://h/p?q");
}

Test(key, invalid_targets)
{
    KEY_ERR("http", "h", "", -EINVAL);
    KEY_ERR("http", "h", "*", -EINVAL);
    KEY_ERR("http", "h", "example.com:443", -EINVAL); /* authority-form */
    KEY_ERR("http", "h", "p/q", -EINVAL);
    KEY_ERR("http", "h", "/a b", -EINVAL);
    KEY_ERR("http", "h", "/a\tb", -EINVAL);
    KEY_ERR("http", "h", "/a\x7f", -EINVAL);
    KEY_ERR("http", "h", "/a?b c", -EINVAL);
    KEY_ERR("http", "h", "/a\r\nX: y", -EINVAL);
    KEY_ERR("http", "h", "http:/h/p", -EINVAL);
    KEY_ERR("http", "h", "1http://h/p", -EINVAL);
    KEY_ERR("http", "h", "ht tp://h/p", -EINVAL);
    KEY_ERR("http", "h", "http:///p", -EINVAL);
    KEY_ERR("http", "h", "http://user@h/p", -EINVAL);
}

Test(key, invalid_hosts_and_schemes)
{
    KEY_ERR("http", "", "/", -EINVAL);
    KEY_ERR("http", NULL, "/", -EINVAL);
    KEY_ERR("http", ".", "/", -EINVAL);
    KEY_ERR("http", "a b", "/", -EINVAL);
    KEY_ERR("http", "a/b", "/", -EINVAL);
    KEY_ERR("http", "user@h", "/", -EINVAL);
    KEY_ERR("http", "h:http", "/", -EINVAL);
    KEY_ERR("http", "h:65536", "/", -EINVAL);
    KEY_ERR("http", "h:1:2", "/", -EINVAL);
    KEY_ERR("http", "[::1", "/", -EINVAL);
    KEY_ERR("http", "[::1]x", "/", -EINVAL);
    KEY_ERR("http", "h\xc3\xa9", "/", -EINVAL);
    KEY_ERR("", "h", "/", -EINVAL);
    KEY_ERR(NULL, "h", "/", -EINVAL);
    KEY_ERR("1http", "h", "/", -EINVAL);
    KEY_EQ("http", "h:65535", "/", "http://h:65535/");
}

Test(key, appends_and_rolls_back)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "v1|");
    cr_assert_eq(policy_cache_key(&b, "http", "h", 1, "/x", 2), 0);
    cr_assert_str_eq(b.data, "v1|http://h/x");
    size_t before = b.len;
    cr_assert_eq(policy_cache_key(&b, "http", "h", 1, "/a%zz", 5), -EINVAL);
    cr_assert_eq(b.len, before);
    cr_assert_str_eq(b.data, "v1|http://h/x");
    buf_free(&b);
}

Test(key, bounded_by_cap)
{
    buf_t b;
    buf_init(&b, 16);
    cr_assert_eq(policy_cache_key(&b, "http", "h", 1, "/0123456789", 11), -E2BIG); /* 19 bytes */
    cr_assert_eq(b.len, 0);
    cr_assert_eq(policy_cache_key(&b, "http", "h", 1, "/0123456", 8), 0); /* exactly 16 */
    cr_assert_eq(b.len, 16);
    buf_free(&b);
    /* the cap applies to the output, so a long dot-segment path that
     * shrinks still has to fit before it shrinks */
    buf_init(&b, 64);
    char t[256] = "/";
    for (int i = 0; i < 40; i++)
        strcat(t, "a/../");
    cr_assert_eq(policy_cache_key(&b, "http", "h", 1, t, strlen(t)), -E2BIG);
    buf_free(&b);
}

Test(key, opts_zero_is_byte_for_byte)
{
    buf_t b;
    buf_init(&b, 0);
    policy_key_opts_t o = { 0 };
    cr_assert_eq(policy_cache_key_opts(&b, &o, "http", "h", 1, "/?b&a", 5), 0);
    cr_assert_str_eq(b.data, "http://h/?b&a");
    o.query = (policy_query_mode_t)99;
    cr_assert_eq(policy_cache_key_opts(&b, &o, "http", "h", 1, "/", 1), -EINVAL);
    buf_free(&b);
}

/* Deterministic pseudo-random generator (no wall clock, same run every time). */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

Test(key, random_targets_are_safe_and_idempotent)
{
    static const char *const parts[] = { "/", ".", "..", "%", "2e", "2E", "2f", "7e", "zz", "a", "B", "?", "#",
                                         "=", "&", ":", "8", "0", "\xc3", "|", "~", "-", " ", "\t", "%41" };
    static const char *const hosts[] = { "h", "H.example.", "h:80", "h:8080", "[::1]:443", "a%41b", "h:" };
    uint32_t seed = 42;
    int ok = 0;
    buf_t k, k2;
    buf_init(&k, 512);
    buf_init(&k2, 512);
    for (int n = 0; n < 20000; n++) {
        char t[256];
        size_t len = 0;
        if (lcg(&seed) % 4 != 0)
            t[len++] = '/';
        for (int m = (int)(lcg(&seed) % 16); m > 0; m--) {
            const char *p = parts[lcg(&seed) % (sizeof parts / sizeof parts[0])];
            memcpy(t + len, p, strlen(p));
            len += strlen(p);
        }
        const char *host = hosts[lcg(&seed) % (sizeof hosts / sizeof hosts[0])];
        const char *scheme = lcg(&seed) % 2 ? "http" : "HTTPS";
        buf_reset(&k);
        int rc = policy_cache_key(&k, scheme, host, strlen(host), t, len);
        cr_assert(rc == 0 || rc == -EINVAL, "rc %d", rc);
        if (rc)
            continue;
        ok++;
        cr_assert(strncmp(k.data, "http://", 7) == 0 || strncmp(k.data, "https://", 8) == 0, "%s", k.data);
        cr_assert_null(memchr(k.data, '#', k.len));
        cr_assert_null(strstr(k.data, "/./"), "%s", k.data);
        /* the key, read back as an absolute-form target, is its own key */
        buf_reset(&k2);
        cr_assert_eq(policy_cache_key(&k2, "http", "ignored", 7, k.data, k.len), 0, "%s", k.data);
        cr_assert_str_eq(k2.data, k.data);
    }
    buf_free(&k);
    buf_free(&k2);
    cr_assert_gt(ok, 2000, "only %d keys built: the generator tests nothing", ok);
    cr_assert_lt(ok, 19000, "only %d rejections: the generator tests nothing", 20000 - ok);
}

/* ---- query policy (policy_key_opts_t) ---- */

/* Key of target under a query mode and NULL-terminated params. */
static const char *qkey(policy_query_mode_t mode, const char *target, ...)
{
    static char out[4200];
    policy_key_opts_t o = { .query = mode };
    va_list ap;
    va_start(ap, target);
    for (const char *p; (p = va_arg(ap, const char *));)
        o.params[o.n_params++] = p;
    va_end(ap);
    buf_t b;
    buf_init(&b, 4096);
    int rc = policy_cache_key_opts(&b, &o, "http", "h", 1, target, strlen(target));
    cr_assert_eq(rc, 0, "%s -> %d", target, rc);
    snprintf(out, sizeof out, "%s", b.data);
    cr_assert_eq(b.len, strlen(out));
    buf_free(&b);
    return out + strlen("http://h");
}

Test(key_query, all_is_byte_for_byte)
{
    cr_assert_str_eq(qkey(POLICY_QUERY_ALL, "/p?b=2&a=1&a=0", NULL), "/p?b=2&a=1&a=0");
    cr_assert_str_eq(qkey(POLICY_QUERY_ALL, "/p?a=1&a=2", NULL), "/p?a=1&a=2");
    cr_assert_str_eq(qkey(POLICY_QUERY_ALL, "/p?%7e&&=", NULL), "/p?%7e&&=");
    cr_assert_str_eq(qkey(POLICY_QUERY_ALL, "/p?", NULL), "/p?");
}

Test(key_query, none)
{
    cr_assert_str_eq(qkey(POLICY_QUERY_NONE, "/p?b=2&a=1", NULL), "/p");
    cr_assert_str_eq(qkey(POLICY_QUERY_NONE, "/p?", NULL), "/p");
    cr_assert_str_eq(qkey(POLICY_QUERY_NONE, "/p?a#f", NULL), "/p");
    cr_assert_str_eq(qkey(POLICY_QUERY_NONE, "/p", NULL), "/p");
}

Test(key_query, sorted)
{
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?b=2&a=1&c", NULL), "/p?a=1&b=2&c");
    /* repeated names keep their order: an origin may read the first, the
     * last, or all of them in order */
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?a=2&b=1&a=1", NULL), "/p?a=2&a=1&b=1");
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?a=1&b=1&a=2", NULL), "/p?a=1&a=2&b=1");
    /* byte-wise: upper case before lower case, a prefix first */
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?b=1&B=1&ab=1&a=1", NULL), "/p?B=1&a=1&ab=1&b=1");
    /* empty members dropped; "b" and "b=" stay distinct and in order */
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?&&b=&a&b&", NULL), "/p?a&b=&b");
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?a&b=", NULL), "/p?a&b=");
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?b=&a", NULL), "/p?a&b=");
    /* an empty name sorts first */
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?x=1&=v", NULL), "/p?=v&x=1");
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?", NULL), "/p");
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?&&", NULL), "/p");
    /* '=' in values, ';' is no separator, fragment dropped */
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?b=x=y&a=1;c=2#f", NULL), "/p?a=1;c=2&b=x=y");
}

Test(key_query, escapes_normalised_when_rewriting)
{
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?%62=%7e&a=%2f", NULL), "/p?a=%2F&b=~");
    /* reserved escapes stay escaped: structure never changes */
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?a%26b=1%3D2", NULL), "/p?a%26b=1%3D2");
    /* a parameter with a malformed escape is kept as it is, whole */
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?z=%zz&y=%4", NULL), "/p?y=%4&z=%zz");
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?%61=%a%41&%62=%41", NULL), "/p?%61=%a%41&b=A");
    cr_assert_str_eq(qkey(POLICY_QUERY_SORTED, "/p?a=+%20", NULL), "/p?a=+%20");
}

Test(key_query, keep)
{
    cr_assert_str_eq(qkey(POLICY_QUERY_KEEP, "/p?utm=1&page=2&id=3&x", "id", "page", NULL), "/p?id=3&page=2");
    cr_assert_str_eq(qkey(POLICY_QUERY_KEEP, "/p?id=2&id=1", "id", NULL), "/p?id=2&id=1");
    cr_assert_str_eq(qkey(POLICY_QUERY_KEEP, "/p?x=1", "id", NULL), "/p");
    cr_assert_str_eq(qkey(POLICY_QUERY_KEEP, "/p?id&id=", "id", NULL), "/p?id&id=");
    /* names compare decoded: "%69d" is "id" (otherwise "?%69d=evil"
     * would key as "/p" while the origin reads id=evil) */
    cr_assert_str_eq(qkey(POLICY_QUERY_KEEP, "/p?%69d=evil", "id", NULL), "/p?id=evil");
    cr_assert_str_eq(qkey(POLICY_QUERY_KEEP, "/p?i%64=1&%2F=2", "id", "/", NULL), "/p?%2F=2&id=1");
    /* case-sensitive; '*' is literal in keep */
    cr_assert_str_eq(qkey(POLICY_QUERY_KEEP, "/p?ID=1", "id", NULL), "/p");
    cr_assert_str_eq(qkey(POLICY_QUERY_KEEP, "/p?idx=1", "id*", NULL), "/p");
}

Test(key_query, drop)
{
    cr_assert_str_eq(qkey(POLICY_QUERY_DROP, "/p?utm_source=a&b=2&utm_medium=b&fbclid=x&gclid=y&a=1", "utm_*",
                          "fbclid", "gclid", NULL),
                     "/p?a=1&b=2");
    cr_assert_str_eq(qkey(POLICY_QUERY_DROP, "/p?utm_source=a", "utm_*", NULL), "/p");
    cr_assert_str_eq(qkey(POLICY_QUERY_DROP, "/p?utm=a&utm_=b", "utm_*", NULL), "/p?utm=a");
    cr_assert_str_eq(qkey(POLICY_QUERY_DROP, "/p?r1=1&r22=2&r=3", "r?", NULL), "/p?r=3&r22=2");
    cr_assert_str_eq(qkey(POLICY_QUERY_DROP, "/p?%75tm_x=1&k=2", "utm_*", NULL), "/p?k=2");
    cr_assert_str_eq(qkey(POLICY_QUERY_DROP, "/p?a&b=&c=1", "b", NULL), "/p?a&c=1");
    cr_assert_str_eq(qkey(POLICY_QUERY_DROP, "/p?a=1&=2", "", NULL), "/p?a=1");
    cr_assert_str_eq(qkey(POLICY_QUERY_DROP, "/p?a=1&b=2", "*", NULL), "/p");
    cr_assert_str_eq(qkey(POLICY_QUERY_DROP, "/p?b=1&a=2&b=0", "c", NULL), "/p?a=2&b=1&b=0");
}

Test(key_query, bad_opts_and_caps)
{
    buf_t b;
    buf_init(&b, 0);
    policy_key_opts_t o = { .query = POLICY_QUERY_KEEP, .n_params = 1 };
    cr_assert_eq(policy_cache_key_opts(&b, &o, "http", "h", 1, "/", 1), -EINVAL); /* NULL name */
    o.n_params = POLICY_KEY_PARAMS_MAX + 1;
    cr_assert_eq(policy_cache_key_opts(&b, &o, "http", "h", 1, "/", 1), -EINVAL);
    cr_assert_eq(b.len, 0);
    buf_free(&b);
    /* the output cap applies; nothing is appended on error */
    buf_init(&b, 24);
    buf_append(&b, "k:", 2);
    o = (policy_key_opts_t){ .query = POLICY_QUERY_SORTED };
    const char *t = "/p?b=2222222&a=111111111";
    cr_assert_eq(policy_cache_key_opts(&b, &o, "http", "h", 1, t, strlen(t)), -E2BIG);
    cr_assert_eq(b.len, 2);
    buf_free(&b);
}

Test(key_query, many_parameters)
{
    /* thousands of parameters: sorted in O(n log n), all kept, stable */
    static char t[64000];
    size_t w = (size_t)snprintf(t, sizeof t, "/p?");
    for (int i = 3999; i >= 0; i--)
        w += (size_t)snprintf(t + w, sizeof t - w, "%sk%04d=%d", i == 3999 ? "" : "&", i % 2000, i);
    policy_key_opts_t o = { .query = POLICY_QUERY_SORTED };
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(policy_cache_key_opts(&b, &o, "http", "h", 1, t, w), 0);
    cr_assert_eq(strncmp(b.data, "http://h/p?k0000=2000&k0000=0&k0001=2001&k0001=1&", 49), 0, "%.60s", b.data);
    cr_assert_eq(b.len, strlen("http://h") + w);
    buf_free(&b);
}

Test(key_query, random_queries_are_idempotent)
{
    static const char *const parts[] = { "a", "b", "=", "&", "%41", "%2f", "%zz", "%", "utm_x", "B", "~", "+" };
    static const policy_query_mode_t modes[] = { POLICY_QUERY_SORTED, POLICY_QUERY_KEEP, POLICY_QUERY_DROP };
    uint32_t seed = 7;
    buf_t k, k2;
    buf_init(&k, 1024);
    buf_init(&k2, 1024);
    for (int n = 0; n < 5000; n++) {
        char t[256] = "/p?";
        for (int m = (int)(lcg(&seed) % 12); m > 0; m--)
            strcat(t, parts[lcg(&seed) % (sizeof parts / sizeof parts[0])]);
        policy_key_opts_t o = { .query = modes[lcg(&seed) % 3], .n_params = 2, .params = { "a", "utm_*" } };
        buf_reset(&k);
        cr_assert_eq(policy_cache_key_opts(&k, &o, "http", "h", 1, t, strlen(t)), 0, "%s", t);
        cr_assert_null(strstr(k.data, "&&"), "%s -> %s", t, k.data);
        cr_assert(k.data[k.len - 1] != '&' && k.data[k.len - 1] != '?', "%s -> %s", t, k.data);
        buf_reset(&k2);
        cr_assert_eq(policy_cache_key_opts(&k2, &o, "http", "x", 1, k.data, k.len), 0, "%s", k.data);
        cr_assert_str_eq(k2.data, k.data, "%s", t);
    }
    buf_free(&k);
    buf_free(&k2);
}

Test(key_glob, match)
{
#define G(g, s, ic) policy_key_glob_match(g, strlen(g), s, strlen(s), ic)
    cr_assert(G("", "", false));
    cr_assert_not(G("", "a", false));
    cr_assert(G("*", "", false));
    cr_assert(G("*", "anything/at/all", false));
    cr_assert(G("a*", "a", false));
    cr_assert(G("*a", "bba", false));
    cr_assert_not(G("*a", "ab", false));
    cr_assert(G("a?c", "abc", false));
    cr_assert_not(G("a?c", "ac", false));
    cr_assert(G("*.example.com", "WWW.EXAMPLE.COM", true));
    cr_assert_not(G("*.example.com", "WWW.EXAMPLE.COM", false));
    cr_assert(G("a*b*c*d", "aXXbYYcZZd", false));
    cr_assert_not(G("a*b*c*d", "aXXbYYcZZ", false));
    cr_assert(G("**x", "yyx", false));
    /* a literal '*' in the subject is matched only by a wildcard */
    cr_assert(G("a*", "a*", false));
    cr_assert_not(G("ab", "a*", false));
    /* pathological backtracking stays fast: 200 stars, 2000 bytes */
    char g[512] = "", s[2100];
    for (int i = 0; i < 200; i++)
        strcat(g, "a*");
    strcat(g, "b");
    memset(s, 'a', 2000);
    s[2000] = '\0';
    cr_assert_not(G(g, s, false));
#undef G
}

Test(key, parts_for_rule_matching)
{
    buf_t b;
    buf_init(&b, 0);
    const char *t = "/a/%7e/../b?x=1";
    cr_assert_eq(policy_cache_key(&b, "https", "Example.COM.:8443", 17, t, strlen(t)), 0);
    size_t ho, hl, po, pl;
    cr_assert_eq(policy_key_parts(b.data, b.len, &ho, &hl, &po, &pl), 0);
    cr_assert_eq(hl, strlen("example.com:8443"));
    cr_assert_eq(memcmp(b.data + ho, "example.com:8443", hl), 0);
    cr_assert_eq(pl, 4);
    cr_assert_eq(memcmp(b.data + po, "/a/b", 4), 0);
    cr_assert_eq(policy_key_parts("http://h/", 9, &ho, &hl, &po, &pl), 0);
    cr_assert_eq(pl, 1);
    cr_assert_eq(policy_key_parts("http://h", 8, &ho, &hl, &po, &pl), -EINVAL);
    cr_assert_eq(policy_key_parts("/p", 2, &ho, &hl, &po, &pl), -EINVAL);
    cr_assert_eq(policy_key_parts("", 0, &ho, &hl, &po, &pl), -EINVAL);
    buf_free(&b);
}
