/* The purge API's pure part: every way a body is refused (with a message
 * naming the problem and nothing partial left behind), the accepted forms,
 * the token file's rules, the Bearer check, and the JSON answers read
 * back through jansson. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "purge_req.h"

#define MAX_URI 8192

static bool req_empty(const purge_req_t *r)
{
    return !r->urls && !r->nurls && !r->prefixes && !r->nprefixes && !r->tags && !r->ntags && !r->all && !r->soft &&
           !r->host;
}

/* body is refused with -EINVAL and a message containing want. */
static void refused(const char *body, size_t len, const char *want)
{
    purge_req_t r;
    char err[256];
    int rc = purge_req_parse(&r, body, len, MAX_URI, err, sizeof err);
    cr_assert_eq(rc, -EINVAL, "accepted (%d): %.200s", rc, body);
    cr_assert(strstr(err, want), "body %.200s: message \"%s\" lacks \"%s\"", body, err, want);
    cr_assert(req_empty(&r), "something partial was returned for %.200s", body);
}

static void refused_s(const char *body, const char *want)
{
    refused(body, strlen(body), want);
}

static void parse_ok(purge_req_t *r, const char *body)
{
    char err[256] = "";
    int rc = purge_req_parse(r, body, strlen(body), MAX_URI, err, sizeof err);
    cr_assert_eq(rc, 0, "refused (%d, %s): %.200s", rc, err, body);
}

/* {"FIELD": [ "ENTRY" x n ]} with entries of the given text. */
static char *list_body(const char *field, const char *entry, size_t n)
{
    size_t cap = strlen(field) + n * (strlen(entry) + 3) + 16;
    char *b = malloc(cap);
    size_t off = (size_t)snprintf(b, cap, "{\"%s\":[", field);
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(b + off, cap - off, "%s\"%s\"", i ? "," : "", entry);
    snprintf(b + off, cap - off, "]}");
    return b;
}

static char *repeat(char c, size_t n, const char *prefix)
{
    size_t pl = strlen(prefix);
    char *s = malloc(pl + n + 1);
    memcpy(s, prefix, pl);
    memset(s + pl, c, n);
    s[pl + n] = '\0';
    return s;
}

Test(purge_req, malformed_json)
{
    refused_s("", "malformed JSON");
    refused_s("{", "malformed JSON");
    refused_s("{\"urls\": [\"/a\",]}", "malformed JSON");
    refused_s("{'urls': ['/a']}", "malformed JSON");
    refused_s("\"/a\"", "malformed JSON"); /* jansson wants an object or array on top */
    refused(NULL, 0, "malformed JSON");
    refused("{\"urls\":[\"/a\"]}", 10, "malformed JSON"); /* cut short */
}

Test(purge_req, trailing_garbage)
{
    refused_s("{\"urls\":[\"/a\"]} x", "malformed JSON");
    refused_s("{\"urls\":[\"/a\"]}{}", "malformed JSON");
    refused("{\"urls\":[\"/a\"]}\0", 16, "malformed JSON");
}

Test(purge_req, duplicate_keys)
{
    refused_s("{\"urls\":[\"/a\"],\"urls\":[\"/b\"]}", "duplicate");
    refused_s("{\"all\":true,\"all\":true}", "duplicate");
}

Test(purge_req, top_level_not_an_object)
{
    refused_s("[\"/a\"]", "must be a JSON object");
    refused_s("[]", "must be a JSON object");
}

Test(purge_req, unknown_field)
{
    refused_s("{\"urls\":[\"/a\"],\"url\":[\"/b\"]}", "unknown field \"url\"");
    refused_s("{\"URLS\":[\"/a\"]}", "unknown field \"URLS\"");
}

/* Each body body_fmt(field, vals[k]) is refused with want_fmt(field). */
static void refused_each(const char *body_fmt, const char *field, const char *const *vals, size_t n,
                         const char *want_fmt)
{
    char body[256], want[128];
    snprintf(want, sizeof want, want_fmt, field);
    for (size_t k = 0; k < n; k++) {
        snprintf(body, sizeof body, body_fmt, field, vals[k]);
        refused_s(body, want);
    }
}

Test(purge_req, wrong_types)
{
    static const char *const lists[] = { "urls", "prefixes", "tags" };
    static const char *const not_array[] = { "\"/a\"", "{}", "1", "true", "null" };
    static const char *const not_string[] = { "1", "null", "[\"/a\"]", "{}", "false" };
    static const char *const not_bool[] = { "\"true\"", "1", "0", "null", "[]" };
    for (size_t i = 0; i < 3; i++) {
        refused_each("{\"%s\":%s}", lists[i], not_array, 5, "\"%s\": expected an array of strings");
        refused_each("{\"%s\":[\"/ok\",%s]}", lists[i], not_string, 5, "\"%s\"[1]: expected a string");
    }
    refused_each("{\"urls\":[\"/a\"],\"%s\":%s}", "all", not_bool, 5, "\"%s\": expected true or false");
    refused_each("{\"urls\":[\"/a\"],\"%s\":%s}", "soft", not_bool, 5, "\"%s\": expected true or false");
    refused_s("{\"urls\":[\"/a\"],\"host\":1}", "\"host\": expected a string");
    refused_s("{\"urls\":[\"/a\"],\"host\":null}", "\"host\": expected a string");
    refused_s("{\"urls\":[\"/a\"],\"host\":[\"a\"]}", "\"host\": expected a string");
}

Test(purge_req, empty_strings)
{
    refused_s("{\"urls\":[\"\"]}", "\"urls\"[0]: empty string");
    refused_s("{\"prefixes\":[\"/a\",\"\"]}", "\"prefixes\"[1]: empty string");
    refused_s("{\"tags\":[\"\"]}", "\"tags\"[0]: empty string");
    refused_s("{\"urls\":[\"/a\"],\"host\":\"\"}", "\"host\": empty string");
}

Test(purge_req, purges_nothing)
{
    refused_s("{}", "nothing to purge");
    refused_s("{\"urls\":[],\"prefixes\":[],\"tags\":[]}", "nothing to purge");
    refused_s("{\"all\":false,\"soft\":true,\"host\":\"example.com\"}", "nothing to purge");
}

Test(purge_req, too_many_items)
{
    char *b = list_body("urls", "/a", PURGE_REQ_MAX_ITEMS + 1);
    refused_s(b, "too many entries");
    free(b);
    /* The bound is on the three lists together. */
    char *u = list_body("urls", "/a", PURGE_REQ_MAX_ITEMS / 2);
    char *t = list_body("tags", "t", PURGE_REQ_MAX_ITEMS / 2 + 1);
    size_t ul = strlen(u), tl = strlen(t);
    char *both = malloc(ul + tl);
    memcpy(both, u, ul - 1); /* drop '}' */
    both[ul - 1] = ',';
    memcpy(both + ul, t + 1, tl); /* drop '{', keep the NUL */
    refused_s(both, "too many entries");
    free(u);
    free(t);
    free(both);
    /* Exactly the bound is fine. */
    purge_req_t r;
    b = list_body("tags", "x", PURGE_REQ_MAX_ITEMS);
    parse_ok(&r, b);
    cr_assert_eq(r.ntags, PURGE_REQ_MAX_ITEMS);
    purge_req_free(&r);
    free(b);
}

Test(purge_req, too_long_entries)
{
    purge_req_t r;
    char *u = repeat('a', MAX_URI - 1, "/"), *body;
    body = list_body("urls", u, 1);
    parse_ok(&r, body); /* exactly max_uri bytes */
    purge_req_free(&r);
    free(body);
    free(u);
    u = repeat('a', MAX_URI, "/");
    body = list_body("urls", u, 1);
    refused_s(body, "\"urls\"[0]: longer than 8192 bytes");
    free(body);
    body = list_body("prefixes", u, 1);
    refused_s(body, "\"prefixes\"[0]: longer than 8192 bytes");
    free(body);
    free(u);

    char *t = repeat('t', PURGE_REQ_MAX_TAG_BYTES, "");
    body = list_body("tags", t, 1);
    parse_ok(&r, body);
    cr_assert_eq(strlen(r.tags[0]), PURGE_REQ_MAX_TAG_BYTES);
    purge_req_free(&r);
    free(body);
    free(t);
    t = repeat('t', PURGE_REQ_MAX_TAG_BYTES + 1, "");
    body = list_body("tags", t, 1);
    refused_s(body, "\"tags\"[0]: longer than 128 bytes");
    free(body);
    free(t);
}

Test(purge_req, bad_url_forms)
{
    static const struct {
        const char *entry, *want;
    } bad[] = {
        { "a", "must start with \"/\"" },
        { "example.com/a", "must start with \"/\"" },
        { "ftp://example.com/a", "must start with \"/\"" },
        { "//example.com/a?", NULL }, /* a path that starts with "//": fine */
        { "http://", "has no valid host" },
        { "http:///a", "has no valid host" },
        { "https://user@example.com/a", "has no valid host" },
        { "http://exa mple.com/", "has no valid host" },
        { "http://example.com:0/", "has no valid host" },
        { "http://example.com:65536/", "has no valid host" },
        { "http://example.com:/", "has no valid host" },
        { "http://[zz::1]/", "has no valid host" },
        { "/a b", "is not a valid request target" },
        { "/a\\tb", "is not a valid request target" },
        { "/a\\u007f", "is not a valid request target" },
        { "/a%zz", "is not a valid request target" },
        { "/a%4", "is not a valid request target" },
        { "https://example.com/a%g0", "is not a valid request target" },
    };
    char body[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *fields[] = { "urls", "prefixes" };
        for (size_t f = 0; f < 2; f++) {
            snprintf(body, sizeof body, "{\"%s\":[\"/ok\",\"%s\"]}", fields[f], bad[i].entry);
            if (!bad[i].want) {
                purge_req_t r;
                parse_ok(&r, body);
                purge_req_free(&r);
                continue;
            }
            char want[128];
            snprintf(want, sizeof want, "\"%s\"[1]: %s", fields[f], bad[i].want);
            refused_s(body, want);
        }
    }
}

Test(purge_req, bad_host)
{
    static const char *const bad[] = {
        "exa mple.com", "example.com/", "user@example.com", "-example.com", ".example.com", "example.com:",
        "example.com:0", "example.com:65536", "example.com:123456", "example.com:8x", "[::1", "[]", "[1.2.3.4]",
        "[::1]x", "[::1]:", "café.example", "example.com\\t", "_dmarc.example.com",
    };
    char body[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, "{\"urls\":[\"/a\"],\"host\":\"%s\"}", bad[i]);
        refused_s(body, "\"host\": expected host[:port]");
    }
    char *longhost = repeat('a', PURGE_REQ_MAX_HOST_BYTES + 1, "");
    cr_assert_not(purge_req_host_valid(longhost, strlen(longhost)));
    free(longhost);
    cr_assert_not(purge_req_host_valid(NULL, 0));
}

Test(purge_req, good_hosts)
{
    static const char *const good[] = {
        "example.com", "EXAMPLE.com", "a", "cdn-1.example.com:8080", "example.com.", "127.0.0.1:1",
        "[::1]",       "[::1]:443",   "[2001:db8::1]", "[::ffff:192.0.2.1]", "x:65535",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert(purge_req_host_valid(good[i], strlen(good[i])), "%s refused", good[i]);
}

Test(purge_req, bad_tags)
{
    static const char *const bad[] = { "a b", " a", "a ", "a\\tb", "a\\nb", "a\\u0001", "a\\u007f", "caf\\u00e9" };
    char body[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, "{\"tags\":[\"ok\",\"%s\"]}", bad[i]);
        refused_s(body, "\"tags\"[1]: holds whitespace, a control or a non-ASCII byte");
    }
    /* JSON cannot smuggle a NUL past jansson. */
    refused_s("{\"tags\":[\"a\\u0000b\"]}", "malformed JSON");
    refused_s("{\"urls\":[\"/a\\u0000b\"]}", "malformed JSON");
}

Test(purge_req, full_request)
{
    purge_req_t r;
    parse_ok(&r, "{\"urls\": [\"/a\", \"https://example.com/b?x=1\"], \"prefixes\": [\"/static/\"], "
                 "\"tags\": [\"product-42\"], \"all\": false, \"soft\": true, \"host\": \"example.com:8080\"}");
    cr_assert_eq(r.nurls, 2);
    cr_assert_str_eq(r.urls[0], "/a");
    cr_assert_str_eq(r.urls[1], "https://example.com/b?x=1");
    cr_assert_eq(r.nprefixes, 1);
    cr_assert_str_eq(r.prefixes[0], "/static/");
    cr_assert_eq(r.ntags, 1);
    cr_assert_str_eq(r.tags[0], "product-42");
    cr_assert_not(r.all);
    cr_assert(r.soft);
    cr_assert_str_eq(r.host, "example.com:8080");
    purge_req_free(&r);
    cr_assert(req_empty(&r));
    purge_req_free(&r); /* safe twice */
}

Test(purge_req, minimal_requests)
{
    purge_req_t r;
    parse_ok(&r, "{\"urls\":[\"/\"]}");
    cr_assert_eq(r.nurls, 1);
    cr_assert_str_eq(r.urls[0], "/");
    cr_assert_null(r.host);
    cr_assert_not(r.soft);
    cr_assert_not(r.all);
    cr_assert_null(r.prefixes);
    cr_assert_null(r.tags);
    purge_req_free(&r);
    parse_ok(&r, "{\"tags\":[\"t\"],\"urls\":[]}");
    cr_assert_eq(r.ntags, 1);
    cr_assert_eq(r.nurls, 0);
    purge_req_free(&r);
    parse_ok(&r, " \n{\"prefixes\":[\"/\"]}\n ");
    cr_assert_eq(r.nprefixes, 1);
    purge_req_free(&r);
}

Test(purge_req, absolute_urls)
{
    purge_req_t r;
    parse_ok(&r, "{\"urls\":[\"http://example.com/a\",\"HTTPS://Example.COM:8443/b?x=1#frag\",\"https://example.com\","
                 "\"http://[::1]:8080/c\",\"https://example.com?q=1\",\"/caf\\u00e9\"],"
                 "\"prefixes\":[\"https://example.com/static/\"],\"host\":\"other.example\"}");
    cr_assert_eq(r.nurls, 6);
    cr_assert_str_eq(r.urls[1], "HTTPS://Example.COM:8443/b?x=1#frag"); /* as given */
    cr_assert_str_eq(r.urls[5], "/caf\xc3\xa9");                         /* UTF-8: the key escapes it */
    cr_assert_str_eq(r.prefixes[0], "https://example.com/static/");
    cr_assert_str_eq(r.host, "other.example");
    purge_req_free(&r);
}

Test(purge_req, all_wins)
{
    purge_req_t r;
    parse_ok(&r, "{\"all\":true}");
    cr_assert(r.all);
    cr_assert_eq(r.nurls + r.nprefixes + r.ntags, 0);
    purge_req_free(&r);
    parse_ok(&r, "{\"all\":true,\"soft\":true,\"urls\":[\"/a\"],\"tags\":[\"t\"],\"prefixes\":[\"/p\"],\"host\":\"h\"}");
    cr_assert(r.all);
    cr_assert(r.soft);
    cr_assert_eq(r.nurls + r.nprefixes + r.ntags, 0);
    cr_assert_null(r.urls);
    cr_assert_str_eq(r.host, "h");
    purge_req_free(&r);
    /* The lists are still checked. */
    refused_s("{\"all\":true,\"urls\":[\"a\"]}", "\"urls\"[0]: must start with \"/\"");
}

Test(purge_req, message_fits_a_small_buffer)
{
    purge_req_t r;
    char err[8];
    cr_assert_eq(purge_req_parse(&r, "{}", 2, MAX_URI, err, sizeof err), -EINVAL);
    cr_assert_eq(strlen(err), sizeof err - 1);
    cr_assert_eq(purge_req_parse(&r, "{}", 2, MAX_URI, NULL, 0), -EINVAL);
}

/* A token file in a fresh directory with the given mode and contents. */
static char tdir[64];

static const char *token_file(const char *contents, size_t len, mode_t mode)
{
    static char path[128];
    if (!tdir[0]) {
        strcpy(tdir, "/tmp/purge-token-XXXXXX");
        cr_assert_not_null(mkdtemp(tdir));
    }
    snprintf(path, sizeof path, "%s/token", tdir);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, contents, len), (ssize_t)len);
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static void token_fini(void)
{
    char path[128];
    if (!tdir[0])
        return;
    snprintf(path, sizeof path, "%s/token", tdir);
    unlink(path);
    rmdir(tdir);
    tdir[0] = '\0';
}

static int load(const char *contents, mode_t mode, char *tok, size_t cap, char *err)
{
    return purge_token_load(token_file(contents, strlen(contents), mode), tok, cap, err, 256);
}

Test(purge_req, token_file_missing, .fini = token_fini)
{
    char tok[PURGE_TOKEN_MAX], err[256];
    cr_assert_eq(purge_token_load("/nonexistent/purge-token", tok, sizeof tok, err, sizeof err), -ENOENT);
    cr_assert(strstr(err, "/nonexistent/purge-token"), "%s", err);
    cr_assert_str_eq(tok, "");
    token_file("x", 1, 0600);
    cr_assert_eq(purge_token_load(tdir, tok, sizeof tok, err, sizeof err), -EINVAL); /* a directory */
    cr_assert(strstr(err, "not a regular file"), "%s", err);
}

Test(purge_req, token_file_empty, .fini = token_fini)
{
    char tok[PURGE_TOKEN_MAX], err[256];
    static const char *const empty[] = { "", "\n", "  \t\r\n", "\nsecret\n" };
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        cr_assert_eq(load(empty[i], 0600, tok, sizeof tok, err), -EINVAL, "case %zu", i);
        cr_assert(strstr(err, "no token"), "%s", err);
    }
    cr_assert_eq(load("sec ret\n", 0600, tok, sizeof tok, err), -EINVAL);
    cr_assert(strstr(err, "whitespace"), "%s", err);
}

Test(purge_req, token_file_world_access_refused, .fini = token_fini)
{
    char tok[PURGE_TOKEN_MAX], err[256];
    cr_assert_eq(load("secret\n", 0644, tok, sizeof tok, err), -EPERM);
    cr_assert(strstr(err, "chmod o-rw"), "%s", err);
    cr_assert(strstr(err, "0644"), "%s", err);
    cr_assert_str_eq(tok, "");
    cr_assert_eq(load("secret\n", 0602, tok, sizeof tok, err), -EPERM);
    /* A service group may read it. */
    cr_assert_eq(load("secret\n", 0640, tok, sizeof tok, err), 0, "%s", err);
    cr_assert_str_eq(tok, "secret");
}

Test(purge_req, token_file_first_line_stripped, .fini = token_fini)
{
    char tok[PURGE_TOKEN_MAX], err[256];
    cr_assert_eq(load("s3cr3t-T0ken\n", 0600, tok, sizeof tok, err), 0, "%s", err);
    cr_assert_str_eq(tok, "s3cr3t-T0ken");
    cr_assert_eq(load("  s3cr3t \t\r\nsecond line\n", 0400, tok, sizeof tok, err), 0, "%s", err);
    cr_assert_str_eq(tok, "s3cr3t");
    cr_assert_eq(load("no-newline", 0600, tok, sizeof tok, err), 0, "%s", err);
    cr_assert_str_eq(tok, "no-newline");
}

Test(purge_req, token_file_too_long, .fini = token_fini)
{
    char tok[8], err[256];
    cr_assert_eq(load("1234567\n", 0600, tok, sizeof tok, err), 0, "%s", err);
    cr_assert_eq(load("12345678\n", 0600, tok, sizeof tok, err), -E2BIG);
    cr_assert(strstr(err, "longer than 7 bytes"), "%s", err);
    char *huge = repeat('x', 5000, "");
    cr_assert_eq(load(huge, 0600, tok, sizeof tok, err), -E2BIG);
    free(huge);
}

static bool check(const char *auth)
{
    static const char token[] = "s3cr3t-T0ken";
    return purge_token_check(token, sizeof token - 1, auth, strlen(auth));
}

Test(purge_req, token_check)
{
    cr_assert(check("Bearer s3cr3t-T0ken"));
    cr_assert(check("bearer s3cr3t-T0ken"));
    cr_assert(check("BEARER s3cr3t-T0ken"));
    cr_assert(check("Bearer    s3cr3t-T0ken"));
    cr_assert(check("  Bearer s3cr3t-T0ken \t")); /* OWS around the field value */
    cr_assert_not(check("Bearer s3cr3t-T0kex"));  /* same length, last byte */
    cr_assert_not(check("Bearer x3cr3t-T0ken"));  /* same length, first byte */
    cr_assert_not(check("Bearer s3cr3t-T0ke"));   /* a prefix of it */
    cr_assert_not(check("Bearer s3cr3t"));
    cr_assert_not(check("Bearer s3cr3t-T0ken2")); /* longer */
    cr_assert_not(check("Bearer s3cr3t-T0kens3cr3t-T0ken"));
    cr_assert_not(check("Bearer s3cr3t-T0ken x"));
    cr_assert_not(check("s3cr3t-T0ken")); /* no scheme */
    cr_assert_not(check("Basic s3cr3t-T0ken"));
    cr_assert_not(check("Bearers3cr3t-T0ken"));
    cr_assert_not(check("Bearer\ts3cr3t-T0ken"));
    cr_assert_not(check("Bearer "));
    cr_assert_not(check("Bearer"));
    cr_assert_not(check(""));
    cr_assert_not(purge_token_check("s3cr3t-T0ken", 12, NULL, 0));
    cr_assert_not(purge_token_check("", 0, "Bearer ", 7)); /* no token configured */
    cr_assert_not(purge_token_check(NULL, 0, "Bearer x", 8));
    /* The value is not NUL-terminated: alen decides. */
    cr_assert(purge_token_check("s3cr3t-T0ken", 12, "Bearer s3cr3t-T0kenGARBAGE", 19));
}

Test(purge_req, result_json_round_trip)
{
    purge_peer_result_t peers[] = {
        { "shield-1:8080", PURGE_PEER_CONFIRMED, NULL },
        { "[::1]:8081", PURGE_PEER_FAILED, "connect: \"refused\"\n" },
        { "edge-2:80", PURGE_PEER_RETRYING, "timeout" },
    };
    purge_result_t res = { .urls = 2, .tags = 1, .prefixes = 3, .all = false, .soft = true, .peers = peers,
                           .npeers = 3 };
    char *s = purge_req_result_json(&res);
    cr_assert_not_null(s);
    json_error_t je;
    json_t *root = json_loads(s, JSON_REJECT_DUPLICATES, &je);
    cr_assert_not_null(root, "%s: %s", s, je.text);
    json_int_t urls, tags, prefixes;
    int all, soft;
    json_t *jp;
    cr_assert_eq(json_unpack_ex(root, &je, JSON_STRICT, "{s:{s:I, s:I, s:I, s:b, s:b}, s:o}", "purged", "urls", &urls,
                                "tags", &tags, "prefixes", &prefixes, "all", &all, "soft", &soft, "peers", &jp),
                 0, "%s: %s", s, je.text);
    cr_assert_eq(urls, 2);
    cr_assert_eq(tags, 1);
    cr_assert_eq(prefixes, 3);
    cr_assert_not(all);
    cr_assert(soft);
    cr_assert_eq(json_array_size(jp), 3);
    static const char *const status[] = { "confirmed", "failed", "retrying" };
    static const char *const detail[] = { "", "connect: \"refused\"\n", "timeout" };
    for (size_t i = 0; i < 3; i++) {
        const char *peer, *st, *d;
        cr_assert_eq(json_unpack_ex(json_array_get(jp, i), &je, JSON_STRICT, "{s:s, s:s, s:s}", "peer", &peer,
                                    "status", &st, "detail", &d),
                     0, "%s", je.text);
        cr_assert_str_eq(peer, peers[i].peer);
        cr_assert_str_eq(st, status[i]);
        cr_assert_str_eq(d, detail[i]);
    }
    json_decref(root);
    free(s);

    purge_result_t none = { .all = true };
    s = purge_req_result_json(&none);
    cr_assert_not_null(s);
    root = json_loads(s, 0, &je);
    cr_assert(json_is_true(json_object_get(json_object_get(root, "purged"), "all")));
    cr_assert_eq(json_array_size(json_object_get(root, "peers")), 0);
    cr_assert(json_is_array(json_object_get(root, "peers")));
    json_decref(root);
    free(s);

    purge_peer_result_t bad = { "\xff\xfe", PURGE_PEER_CONFIRMED, NULL };
    purge_result_t badres = { .peers = &bad, .npeers = 1 };
    cr_assert_null(purge_req_result_json(&badres)); /* not UTF-8 */
}

Test(purge_req, error_json_round_trip)
{
    static const char *const msgs[] = { "\"urls\"[3]: expected a string", "", "tab\there \\ \"quoted\"",
                                        "caf\xc3\xa9" };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        char *s = purge_req_error_json(msgs[i]);
        cr_assert_not_null(s);
        json_t *root = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
        const char *e;
        cr_assert_eq(json_unpack(root, "{s:s !}", "error", &e), 0, "%s", s);
        cr_assert_str_eq(e, msgs[i]);
        json_decref(root);
        free(s);
    }
    char *s = purge_req_error_json("bad \xff byte");
    json_t *root = json_loads(s, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(root, "error")), "bad ? byte");
    json_decref(root);
    free(s);
    /* A parse error's message, rendered: the client's 400 body. */
    purge_req_t r;
    char err[256];
    cr_assert_eq(purge_req_parse(&r, "{\"x\\u0001\":1}", 13, MAX_URI, err, sizeof err), -EINVAL);
    s = purge_req_error_json(err);
    root = json_loads(s, 0, NULL);
    cr_assert_not_null(root, "%s", s);
    cr_assert(strstr(json_string_value(json_object_get(root, "error")), "unknown field"));
    json_decref(root);
    free(s);
}
