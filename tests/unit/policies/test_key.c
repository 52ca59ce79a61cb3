/* Unit tests for policy_key: cache-key normalisation and its bounds. */
#include <criterion/criterion.h>
#include <errno.h>
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
