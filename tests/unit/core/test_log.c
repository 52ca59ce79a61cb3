/* log: access lines in both formats, field by field; hostile bytes in
 * every client-chosen field cannot break or forge a line (json lines are
 * checked with jansson); request ids: what counts as sane, and generated
 * ones are 32 hex chars that do not repeat. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "request_id.h"

/* 2026-01-01T00:00:00.123Z */
#define T0 (1767225600LL * 1000000 + 123456)

static log_access_t hit(void)
{
    return (log_access_t){
        .client = "192.0.2.7",
        .method = "GET",
        .target = "/img/a.png?w=10",
        .target_len = 15,
        .host = "cdn.test",
        .host_len = 8,
        .user_agent = "curl/8.5.0",
        .user_agent_len = 10,
        .status = 200,
        .bytes = 1234,
        .cache = "hit",
        .duration_us = 87,
        .request_id = "0123456789abcdef0123456789abcdef",
        .request_id_len = 32,
        .time_us = T0,
    };
}

static log_access_t miss(void)
{
    log_access_t a = hit();
    a.cache = "miss";
    a.duration_us = 12345;
    a.upstream = "http://127.0.0.1:8080";
    a.upstream_us = 11000;
    a.user_agent = NULL;
    a.request_id = "edge-id-1";
    a.request_id_len = 9;
    return a;
}

static char *line(unsigned format, const log_access_t *a)
{
    static buf_t b;
    buf_free(&b);
    buf_init(&b, 0);
    log_access_format(&b, format, a);
    return b.data;
}

Test(log, text_hit)
{
    log_access_t a = hit();
    cr_assert_str_eq(line(CONFIG_LOG_TEXT, &a),
                     "2026-01-01T00:00:00.123Z 192.0.2.7 \"GET /img/a.png?w=10\" 200 1234 hit 0.087ms - - "
                     "0123456789abcdef0123456789abcdef \"cdn.test\" \"curl/8.5.0\"\n");
}

Test(log, text_miss)
{
    log_access_t a = miss();
    cr_assert_str_eq(line(CONFIG_LOG_TEXT, &a),
                     "2026-01-01T00:00:00.123Z 192.0.2.7 \"GET /img/a.png?w=10\" 200 1234 miss 12.345ms "
                     "http://127.0.0.1:8080 11.000ms edge-id-1 \"cdn.test\" \"-\"\n");
}

static json_t *parse(const char *s)
{
    size_t n = strlen(s);
    cr_assert(n > 0 && s[n - 1] == '\n', "one line: %s", s);
    cr_assert(memchr(s, '\n', n - 1) == NULL, "exactly one line: %s", s);
    json_error_t err;
    /* \u0000 is valid JSON (RFC 8259); jansson wants it allowed by name. */
    json_t *j = json_loads(s, JSON_ALLOW_NUL, &err);
    cr_assert_not_null(j, "not JSON (%s): %s", err.text, s);
    cr_assert(json_is_object(j));
    return j;
}

Test(log, json_hit)
{
    log_access_t a = hit();
    json_t *j = parse(line(CONFIG_LOG_JSON, &a));
    cr_assert_str_eq(json_string_value(json_object_get(j, "time")), "2026-01-01T00:00:00.123Z");
    cr_assert_str_eq(json_string_value(json_object_get(j, "client")), "192.0.2.7");
    cr_assert_str_eq(json_string_value(json_object_get(j, "method")), "GET");
    cr_assert_str_eq(json_string_value(json_object_get(j, "target")), "/img/a.png?w=10");
    cr_assert_str_eq(json_string_value(json_object_get(j, "host")), "cdn.test");
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "bytes")), 1234);
    cr_assert_str_eq(json_string_value(json_object_get(j, "outcome")), "hit");
    cr_assert_float_eq(json_number_value(json_object_get(j, "duration_ms")), 0.087, 1e-9);
    cr_assert(json_is_null(json_object_get(j, "upstream")));
    cr_assert(json_is_null(json_object_get(j, "upstream_ms")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "0123456789abcdef0123456789abcdef");
    cr_assert_str_eq(json_string_value(json_object_get(j, "user_agent")), "curl/8.5.0");
    cr_assert_eq(json_object_size(j), 13);
    json_decref(j);
}

Test(log, json_miss)
{
    log_access_t a = miss();
    json_t *j = parse(line(CONFIG_LOG_JSON, &a));
    cr_assert_str_eq(json_string_value(json_object_get(j, "outcome")), "miss");
    cr_assert_str_eq(json_string_value(json_object_get(j, "upstream")), "http://127.0.0.1:8080");
    cr_assert_float_eq(json_number_value(json_object_get(j, "upstream_ms")), 11.0, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(j, "duration_ms")), 12.345, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "edge-id-1");
    cr_assert(json_is_null(json_object_get(j, "user_agent")));
    json_decref(j);
}

/* Every byte value, quotes, backslashes and line breaks in each field a
 * client chooses. */
static log_access_t hostile(char *all, size_t *n)
{
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    const char *more = "\" \\\"\r\n2026-01-01T00:00:00.000Z 6.6.6.6 \"GET /forged\" 200 1 hit\n{\"status\":200}\\";
    memcpy(all + 256, more, strlen(more));
    *n = 256 + strlen(more);
    log_access_t a = miss();
    a.target = all;
    a.target_len = *n;
    a.host = all;
    a.host_len = 200;
    a.user_agent = all + 56;
    a.user_agent_len = *n - 56;
    return a;
}

/* The raw bytes back from a json string written by the log: each code
 * point below 256 is one byte. */
static size_t json_bytes(const json_t *str, char *out)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)json_string_value(str), *end = p + json_string_length(str);
    while (p < end) {
        if (*p < 0x80) {
            out[n++] = (char)*p++;
        } else {
            cr_assert_eq(*p & 0xe0, 0xc0, "only code points below 256");
            out[n++] = (char)(((p[0] & 0x1f) << 6) | (p[1] & 0x3f));
            p += 2;
        }
    }
    return n;
}

Test(log, json_hostile_fields_stay_one_valid_object)
{
    char all[512], back[512];
    size_t n;
    log_access_t a = hostile(all, &n);
    char *s = line(CONFIG_LOG_JSON, &a);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        cr_assert((*p >= 0x20 && *p < 0x7f) || (*p == '\n' && p[1] == '\0'), "printable ASCII only, byte %u", *p);
    json_t *j = parse(s);
    /* Nothing was dropped or forged: the target comes back byte for byte. */
    json_t *t = json_object_get(j, "target");
    cr_assert(json_is_string(t));
    size_t tn = json_bytes(t, back);
    cr_assert_eq(tn, n);
    cr_assert(memcmp(back, all, n) == 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "edge-id-1");
    json_decref(j);
}

/* Split a text line the way a reader would: spaces outside quotes. */
static int text_fields(const char *s, char f[16][2048])
{
    int n = 0;
    size_t at = 0;
    bool quoted = false;
    for (const char *p = s; *p && *p != '\n'; p++) {
        if (*p == '"')
            quoted = !quoted;
        if (*p == ' ' && !quoted) {
            f[n++][at] = '\0';
            at = 0;
            cr_assert(n < 15);
            continue;
        }
        cr_assert(at < 2047);
        f[n][at++] = *p;
    }
    f[n++][at] = '\0';
    cr_assert(!quoted, "quotes balance");
    return n;
}

Test(log, text_hostile_fields_stay_one_line)
{
    char all[512];
    size_t n;
    log_access_t a = hostile(all, &n);
    char *s = line(CONFIG_LOG_TEXT, &a);
    size_t len = strlen(s), quotes = 0;
    cr_assert_eq(s[len - 1], '\n');
    for (size_t i = 0; i < len - 1; i++) {
        unsigned char c = (unsigned char)s[i];
        cr_assert(c >= 0x20 && c < 0x7f, "printable ASCII only, byte %u at %zu", c, i);
        quotes += c == '"';
    }
    cr_assert_eq(quotes, 6, "only the three quoted fields' quotes: %s", s);
    static char f[16][2048];
    cr_assert_eq(text_fields(s, f), 12, "%s", s);
    cr_assert_str_eq(f[1], "192.0.2.7");
    cr_assert_eq(strncmp(f[2], "\"GET \\x00\\x01", 13), 0, "%s", f[2]);
    cr_assert_str_eq(f[3], "200");
    cr_assert_str_eq(f[5], "miss");
    cr_assert_str_eq(f[9], "edge-id-1");
    cr_assert(strstr(f[2], "\\x0a") && strstr(f[2], "\\x22") && strstr(f[2], "\\x5c") && strstr(f[2], "\\xff"),
              "bytes escaped as \\xHH: %s", f[2]);
}

Test(log, long_fields_are_capped)
{
    static char big[100000];
    memset(big, 'a', sizeof big);
    log_access_t a = hit();
    a.target = big;
    a.target_len = sizeof big;
    a.user_agent = big;
    a.user_agent_len = sizeof big;
    char *s = line(CONFIG_LOG_TEXT, &a);
    cr_assert_lt(strlen(s), 2048 + 256 + 200);
    json_t *j = parse(line(CONFIG_LOG_JSON, &a));
    cr_assert_eq(strlen(json_string_value(json_object_get(j, "target"))), 2048);
    cr_assert_eq(strlen(json_string_value(json_object_get(j, "user_agent"))), 256);
    json_decref(j);
}

Test(log, lines_append_to_the_buffer)
{
    buf_t b;
    buf_init(&b, 0);
    log_access_t h = hit(), m = miss();
    log_access_format(&b, CONFIG_LOG_JSON, &m);
    log_access_format(&b, CONFIG_LOG_JSON, &h);
    char *nl = memchr(b.data, '\n', b.len);
    cr_assert_not_null(nl);
    cr_assert_eq(b.data[b.len - 1], '\n');
    cr_assert(strstr(nl + 1, "\"outcome\":\"hit\""));
    cr_assert(strstr(b.data, "\"outcome\":\"miss\"") < nl);
    buf_free(&b);
}

Test(request_id, sane_values)
{
    cr_assert(request_id_sane("a", 1));
    cr_assert(request_id_sane("f81d4fae-7dec-11d0-a765-00a0c91e6bf6", 36));
    cr_assert(request_id_sane("abc+/=:_.@~", 11));
    char id[129];
    memset(id, 'x', sizeof id);
    cr_assert(request_id_sane(id, 128));
    cr_assert_not(request_id_sane(id, 129));
    cr_assert_not(request_id_sane("", 0));
    cr_assert_not(request_id_sane("a b", 3));
    cr_assert_not(request_id_sane("a\"b", 3));
    cr_assert_not(request_id_sane("a\\b", 3));
    cr_assert_not(request_id_sane("a\nb", 3));
    cr_assert_not(request_id_sane("a,b", 3));
    cr_assert_not(request_id_sane("a;b", 3));
    cr_assert_not(request_id_sane("\xc3\xa9", 2));
    cr_assert_not(request_id_sane("a\0b", 3));
}

Test(request_id, generated_ids_are_hex_and_distinct)
{
    enum { N = 2000 };
    static char ids[N][REQUEST_ID_GEN_LEN + 1];
    for (int i = 0; i < N; i++) {
        request_id_generate(ids[i]);
        cr_assert_eq(strlen(ids[i]), 32);
        cr_assert_eq(strspn(ids[i], "0123456789abcdef"), 32);
        cr_assert(request_id_sane(ids[i], 32));
    }
    qsort(ids, N, sizeof ids[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 1; i < N; i++)
        cr_assert_str_neq(ids[i - 1], ids[i]);
}
