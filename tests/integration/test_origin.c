/* test_origin: bin/origin on the wire: synthetic bodies, every query
 * parameter, conditional requests, methods, counters, and clean shutdown
 * (each test stops the origin and expects exit status 0, which under
 * ASan/LSan also means no leak). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "policy_date.h"
#include "synth.h"

static th_resp_t *must(th_resp_t *r, const char *what)
{
    cr_assert_not_null(r, "%s: %s", what, th_last_error());
    return r;
}

static th_resp_t *get(const char *addr, const char *target)
{
    return must(th_get(addr, target), target);
}

static th_resp_t *get_h(const char *addr, const char *target, const char *headers)
{
    return must(th_request(addr, "GET", target, headers, NULL, 0), target);
}

static void hdr_eq(th_resp_t *r, const char *name, const char *want)
{
    const char *v = th_hdr(r, name);
    cr_assert(v && strcmp(v, want) == 0, "%s: got '%s', want '%s'", name, v ? v : "(absent)", want);
}

static void stop_ok(th_proc_t *o)
{
    cr_assert_eq(th_stop(o), 0, "origin exit status (non-zero under ASan means a leak)");
}

/* Body, Content-Length, checksum and path header of a size= response. */
static void check_size(const char *addr, const char *path, uint64_t size)
{
    char target[256], want[17];
    snprintf(target, sizeof target, "%s?size=%llu", path, (unsigned long long)size);
    th_resp_t *r = get(addr, target);
    cr_assert_eq(r->status, 200);
    char cl[32];
    snprintf(cl, sizeof cl, "%llu", (unsigned long long)size);
    hdr_eq(r, "Content-Length", cl);
    hdr_eq(r, "X-Origin-Path", path);
    cr_assert(th_body_matches(path, size, r->body.data, r->body.len), "%s", th_last_error());
    th_checksum_hex(r->body.data, r->body.len, want);
    hdr_eq(r, "X-Body-Checksum", want);
    char sum[17];
    snprintf(sum, sizeof sum, "%016llx", (unsigned long long)synth_checksum(path, strlen(path), size));
    cr_assert_str_eq(sum, want, "synth_checksum agrees with the bytes");
    th_resp_free(r);
}

Test(origin, sizes_byte_for_byte)
{
    th_proc_t *o = th_origin();
    check_size(th_addr(o), "/s/zero", 0);
    check_size(th_addr(o), "/s/one", 1);
    check_size(th_addr(o), "/s/k", 1000);
    check_size(th_addr(o), "/s/big", 3 * 1024 * 1024);
    check_size(th_addr(o), "/s/big", 3 * 1024 * 1024); /* checksum now cached */
    th_resp_t *r = get(th_addr(o), "/s/default");
    cr_assert(th_body_matches("/s/default", 1024, r->body.data, r->body.len), "default size is 1024");
    th_resp_free(r);
    stop_ok(o);
}

Test(origin, body_is_printable_and_depends_only_on_path)
{
    th_proc_t *o = th_origin();
    th_resp_t *a = get(th_addr(o), "/p/x?size=200");
    th_resp_t *b = get(th_addr(o), "/p/x?size=100&cc=no-store");
    cr_assert_eq(memcmp(a->body.data, b->body.data, 100), 0, "a prefix of the same path's body");
    for (size_t i = 0; i < a->body.len; i++)
        cr_assert(i % 64 == 63 ? a->body.data[i] == '\n' : a->body.data[i] > ' ', "byte %zu", i);
    th_resp_t *c = get(th_addr(o), "/p/y?size=200");
    cr_assert_neq(memcmp(a->body.data, c->body.data, 200), 0, "another path, other bytes");
    th_resp_free(a);
    th_resp_free(b);
    th_resp_free(c);
    stop_ok(o);
}

Test(origin, header_parameters)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    th_resp_t *r = get(a, "/h?cc=public,%20max-age%3D60&vary=Accept-Encoding&sk=k1%20k2&ct=image/svg+xml"
                          "&age=7&cookie=id%3D1&status=203&header=CDN-Cache-Control:max-age%3D5"
                          "&header=X-Extra:%20two&expires=Thu,%2001%20Jan%202037%2000:00:00%20GMT"
                          "&lm=Mon,%2001%20Jan%202024%2000:00:00%20GMT&etag=v1");
    cr_assert_eq(r->status, 203);
    hdr_eq(r, "Cache-Control", "public, max-age=60");
    hdr_eq(r, "Vary", "Accept-Encoding");
    hdr_eq(r, "Surrogate-Key", "k1 k2");
    hdr_eq(r, "Content-Type", "image/svg+xml");
    hdr_eq(r, "Age", "7");
    hdr_eq(r, "Set-Cookie", "id=1");
    hdr_eq(r, "CDN-Cache-Control", "max-age=5");
    hdr_eq(r, "X-Extra", "two");
    hdr_eq(r, "Expires", "Thu, 01 Jan 2037 00:00:00 GMT");
    hdr_eq(r, "Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT");
    hdr_eq(r, "ETag", "\"v1\"");
    hdr_eq(r, "X-Origin-Count", "1");
    cr_assert_not_null(th_hdr(r, "Date"));
    th_resp_free(r);

    r = get(a, "/h?nodate=1&etag=W/%22w%22&header=Location:/elsewhere&status=302");
    cr_assert_eq(r->status, 302);
    cr_assert_null(th_hdr(r, "Date"), "nodate=1 drops Date");
    hdr_eq(r, "ETag", "W/\"w\"");
    hdr_eq(r, "Location", "/elsewhere");
    hdr_eq(r, "Content-Type", "text/plain");
    hdr_eq(r, "X-Origin-Count", "2");
    th_resp_free(r);

    r = get(a, "/h2?etag=auto&size=10");
    const char *e1 = th_hdr(r, "ETag");
    cr_assert(e1 && strlen(e1) == 18 && e1[0] == '"', "auto ETag is a strong quoted tag: %s", e1);
    th_resp_t *r2 = get(a, "/h2?etag=auto&size=10&x=1");
    hdr_eq(r2, "ETag", e1);
    th_resp_t *r3 = get(a, "/h2?etag=auto&size=11");
    cr_assert_str_neq(th_hdr(r3, "ETag"), e1, "the size is part of the auto ETag");
    th_resp_free(r);
    th_resp_free(r2);
    th_resp_free(r3);
    stop_ok(o);
}

Test(origin, relative_dates)
{
    th_proc_t *o = th_origin();
    th_resp_t *r = get(th_addr(o), "/d?expires_in=30&lm_ago=3600");
    const char *date = th_hdr(r, "Date"), *exp = th_hdr(r, "Expires"), *lm = th_hdr(r, "Last-Modified");
    cr_assert(date && exp && lm);
    int64_t d = policy_date_parse(date, strlen(date)), e = policy_date_parse(exp, strlen(exp));
    int64_t l = policy_date_parse(lm, strlen(lm));
    /* All three come from one clock reading. */
    cr_assert_eq(e - d, 30, "Expires - Date = %lld", (long long)(e - d));
    cr_assert_eq(d - l, 3600, "Date - Last-Modified = %lld", (long long)(d - l));
    th_resp_free(r);
    r = get(th_addr(o), "/d?expires_in=-60");
    exp = th_hdr(r, "Expires");
    date = th_hdr(r, "Date");
    cr_assert(policy_date_parse(exp, strlen(exp)) < policy_date_parse(date, strlen(date)), "expired already");
    th_resp_free(r);
    stop_ok(o);
}

Test(origin, bad_parameters_are_400_naming_them)
{
    static const char *const cases[][2] = {
        { "/b?size=abc", "'size'" },
        { "/b?size=1073741825", "'size'" },
        { "/b?status=99", "'status'" },
        { "/b?status=600", "'status'" },
        { "/b?expires=tomorrow", "'expires'" },
        { "/b?expires_in=soon", "'expires_in'" },
        { "/b?lm=yesterday", "'lm'" },
        { "/b?lm_ago=x", "'lm_ago'" },
        { "/b?delay=-1", "'delay'" },
        { "/b?delay=600001", "'delay'" },
        { "/b?chunked=2", "'chunked'" },
        { "/b?nodate=maybe", "'nodate'" },
        { "/b?age=old", "'age'" },
        { "/b?etag=a%22b", "'etag'" },
        { "/b?header=NoColon", "'header'" },
        { "/b?header=Bad%20Name:v", "'header'" },
        { "/b?cc=a%0d%0aX-Injected:%201", "'cc'" },
        { "/b?cookie=%zz", "'cookie'" },
    };
    th_proc_t *o = th_origin();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        th_resp_t *r = get(th_addr(o), cases[i][0]);
        cr_assert_eq(r->status, 400, "%s -> %d", cases[i][0], r->status);
        cr_assert(r->body.data && strstr(r->body.data, cases[i][1]), "%s: body '%s' names %s", cases[i][0],
                  r->body.data ? r->body.data : "", cases[i][1]);
        cr_assert_null(th_hdr(r, "X-Injected"));
        th_resp_free(r);
    }
    th_resp_t *r = get(th_addr(o), "/b?unknown=1&v=2");
    cr_assert_eq(r->status, 200, "unknown parameters are ignored");
    th_resp_free(r);
    stop_ok(o);
}

Test(origin, delay_waits_without_blocking_the_loop)
{
    const char *const args[] = { "--workers=1", NULL };
    th_proc_t *o = th_origin_args(args);
    int64_t t0 = th_now_ms();
    th_resp_t *r = get(th_addr(o), "/slow?delay=300");
    int64_t took = th_now_ms() - t0;
    cr_assert_eq(r->status, 200);
    cr_assert(took >= 300 && took < 5000, "delay=300 took %lld ms", (long long)took);
    th_resp_free(r);

    /* While a 1.5 s delay is pending on the only worker, others get answers. */
    th_conn_t *c = th_connect(th_addr(o));
    cr_assert_not_null(c);
    const char req[] = "GET /slow?delay=1500 HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(th_send(c, req, sizeof req - 1), 0);
    t0 = th_now_ms();
    r = get(th_addr(o), "/fast");
    took = th_now_ms() - t0;
    cr_assert(took < 1000, "a fast request waited %lld ms behind a delayed one", (long long)took);
    th_resp_free(r);
    r = must(th_read_response(c, false), "delayed response");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    th_close(c);
    stop_ok(o);
}

Test(origin, chunked_framing)
{
    th_proc_t *o = th_origin();
    th_resp_t *r = get(th_addr(o), "/c?chunked=1&size=300000");
    cr_assert(r->chunked, "chunked=1 uses chunked framing");
    cr_assert_null(th_hdr(r, "Content-Length"));
    cr_assert(th_body_matches("/c", 300000, r->body.data, r->body.len), "%s", th_last_error());
    th_resp_free(r);
    r = get(th_addr(o), "/c0?chunked=1&size=0");
    cr_assert(r->chunked && r->body.len == 0);
    th_resp_free(r);
    stop_ok(o);
}

Test(origin, conditional_requests)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    th_resp_t *r = get_h(a, "/e?etag=abc&cc=max-age%3D9", "If-None-Match: \"abc\"\r\n");
    cr_assert_eq(r->status, 304);
    hdr_eq(r, "ETag", "\"abc\"");
    hdr_eq(r, "Cache-Control", "max-age=9");
    cr_assert_eq(r->body.len, 0);
    th_resp_free(r);
    r = get_h(a, "/e?etag=abc", "If-None-Match: \"x\", W/\"abc\"\r\n");
    cr_assert_eq(r->status, 304, "weak comparison, lists");
    th_resp_free(r);
    r = get_h(a, "/e?etag=W/%22abc%22", "If-None-Match: \"abc\"\r\n");
    cr_assert_eq(r->status, 304, "weak ETag matches weakly");
    th_resp_free(r);
    r = get_h(a, "/e?etag=abc", "If-None-Match: *\r\n");
    cr_assert_eq(r->status, 304);
    th_resp_free(r);
    r = get_h(a, "/e?etag=abc&size=5", "If-None-Match: \"abd\"\r\n");
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->body.len, 5);
    th_resp_free(r);

    const char *lm = "lm=Mon,%2001%20Jan%202024%2000:00:00%20GMT";
    char t[200];
    snprintf(t, sizeof t, "/l?%s", lm);
    r = get_h(a, t, "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n");
    cr_assert_eq(r->status, 304);
    hdr_eq(r, "Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT");
    th_resp_free(r);
    r = get_h(a, t, "If-Modified-Since: Sun, 31 Dec 2023 23:59:59 GMT\r\n");
    cr_assert_eq(r->status, 200, "modified since");
    th_resp_free(r);
    snprintf(t, sizeof t, "/l?%s&etag=new", lm);
    r = get_h(a, t, "If-None-Match: \"old\"\r\nIf-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n");
    cr_assert_eq(r->status, 200, "If-None-Match wins over If-Modified-Since");
    th_resp_free(r);
    r = get_h(a, "/l?lm_ago=100", "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    stop_ok(o);
}

Test(origin, head_has_headers_only)
{
    th_proc_t *o = th_origin();
    th_resp_t *g = get(th_addr(o), "/hd?size=5000");
    th_resp_t *h = must(th_request(th_addr(o), "HEAD", "/hd?size=5000", NULL, NULL, 0), "HEAD");
    cr_assert_eq(h->status, 200);
    hdr_eq(h, "Content-Length", "5000");
    hdr_eq(h, "X-Body-Checksum", th_hdr(g, "X-Body-Checksum"));
    cr_assert_eq(h->body.len, 0);
    /* Nothing follows the head on the wire. */
    cr_assert(h->raw.len >= 4 && memcmp(h->raw.data + h->raw.len - 4, "\r\n\r\n", 4) == 0);
    th_resp_free(g);
    th_resp_free(h);
    cr_assert_eq(th_origin_requests(th_addr(o), "/hd"), 2);
    cr_assert_eq(th_origin_bytes(th_addr(o), "/hd"), 5000, "HEAD sends no body bytes");
    stop_ok(o);
}

Test(origin, other_methods_echo)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    th_resp_t *r = must(th_request(a, "POST", "/form?status=201&cc=no-store&header=X-A:1", NULL, "hello", 5), "POST");
    cr_assert_eq(r->status, 201);
    hdr_eq(r, "Content-Type", "application/json");
    hdr_eq(r, "Cache-Control", "no-store");
    hdr_eq(r, "X-A", "1");
    cr_assert_str_eq(r->body.data, "{\"method\":\"POST\",\"path\":\"/form\",\"body_bytes\":5}\n");
    th_resp_free(r);
    static const char *const methods[] = { "PUT", "DELETE", "PATCH", "OPTIONS" };
    for (size_t i = 0; i < 4; i++) {
        r = must(th_request(a, methods[i], "/form", NULL, "", 0), methods[i]);
        char want[128];
        snprintf(want, sizeof want, "{\"method\":\"%s\",\"path\":\"/form\",\"body_bytes\":0}\n", methods[i]);
        cr_assert_eq(r->status, 200);
        cr_assert_str_eq(r->body.data, want);
        th_resp_free(r);
    }
    cr_assert_eq(th_origin_requests(a, "/form"), 5);
    stop_ok(o);
}

Test(origin, stats_per_path_and_reset)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    th_resp_free(get(a, "/st/a?size=10"));
    th_resp_t *r = get(a, "/st/a?size=20&v=2");
    hdr_eq(r, "X-Origin-Count", "2");
    th_resp_free(r);
    th_resp_free(must(th_request(a, "POST", "/st/a", NULL, "xy", 2), "POST"));
    th_resp_free(get(a, "/st/b?size=7"));
    th_resp_free(get(a, "/.origin/health"));
    cr_assert_eq(th_origin_requests(a, "/st/a"), 3, "query excluded from the path");
    cr_assert_eq(th_origin_bytes(a, "/st/a"), 10 + 20 + 48, "bodies and the POST echo");
    cr_assert_eq(th_origin_requests(a, "/st/b"), 1);
    cr_assert_eq(th_origin_requests(a, "/never"), 0);
    r = get(a, "/.origin/stats");
    cr_assert_eq(r->status, 200);
    hdr_eq(r, "Content-Type", "application/json");
    cr_assert(strstr(r->body.data, "\"/st/a\":{\"requests\":3,\"bytes\":78,") != NULL, "%s", r->body.data);
    cr_assert(strstr(r->body.data, "\"GET\":2") && strstr(r->body.data, "\"POST\":1"), "%s", r->body.data);
    cr_assert(strncmp(r->body.data, "{\"requests\":4,\"bytes\":85,", 25) == 0, "control paths are not counted: %s",
              r->body.data);
    cr_assert_null(strstr(r->body.data, "/.origin"));
    th_resp_free(r);
    r = get(a, "/.origin/health");
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->body.data, "ok\n");
    th_resp_free(r);
    th_origin_reset(a);
    cr_assert_eq(th_origin_requests(a, "/st/a"), 0);
    r = get(a, "/.origin/stats");
    /* Two connections since the reset: the ?path= query and this one. */
    cr_assert_str_eq(r->body.data, "{\"requests\":0,\"bytes\":0,\"connections\":2,\"paths\":{}}\n");
    th_resp_free(r);
    r = get(a, "/.origin/nope");
    cr_assert_eq(r->status, 404);
    th_resp_free(r);
    stop_ok(o);
}

static void body_eq(th_resp_t *r, const char *want)
{
    cr_assert_eq(r->status, 200, "%d: %s", r->status, r->body.data);
    hdr_eq(r, "Content-Type", "application/json");
    cr_assert_str_eq(r->body.data, want);
    th_resp_free(r);
}

static void status_400(const char *addr, const char *target, const char *msg_part)
{
    th_resp_t *r = get(addr, target);
    cr_assert_eq(r->status, 400, "%s: %d", target, r->status);
    cr_assert(strstr(r->body.data, msg_part), "%s: %s", target, r->body.data);
    th_resp_free(r);
}

Test(origin, stats_by_prefix)
{
    th_proc_t *o = th_origin();
    const char *a = th_addr(o);
    th_resp_free(get(a, "/o/1?size=100"));
    th_resp_free(get(a, "/o/2?size=250"));
    th_resp_free(get(a, "/u/1?size=7"));
    th_resp_free(get(a, "/other?size=1"));
    body_eq(get(a, "/.origin/stats?prefix=/o/"), "{\"prefix\":\"/o/\",\"paths\":2,\"requests\":2,\"bytes\":350}\n");
    body_eq(get(a, "/.origin/stats?prefix=/u/"), "{\"prefix\":\"/u/\",\"paths\":1,\"requests\":1,\"bytes\":7}\n");
    body_eq(get(a, "/.origin/stats?prefix=/o/1"), "{\"prefix\":\"/o/1\",\"paths\":1,\"requests\":1,\"bytes\":100}\n");
    body_eq(get(a, "/.origin/stats?prefix=/"), "{\"prefix\":\"/\",\"paths\":4,\"requests\":4,\"bytes\":358}\n");
    body_eq(get(a, "/.origin/stats?prefix=/nothing/"),
            "{\"prefix\":\"/nothing/\",\"paths\":0,\"requests\":0,\"bytes\":0}\n");
    /* Decoded like path=; a prefix longer than every path matches nothing. */
    body_eq(get(a, "/.origin/stats?prefix=%2Fu%2F"), "{\"prefix\":\"/u/\",\"paths\":1,\"requests\":1,\"bytes\":7}\n");
    body_eq(get(a, "/.origin/stats?prefix=/o/1/longer"),
            "{\"prefix\":\"/o/1/longer\",\"paths\":0,\"requests\":0,\"bytes\":0}\n");
    status_400(a, "/.origin/stats?prefix=", "empty 'prefix'");
    status_400(a, "/.origin/stats?prefix", "empty 'prefix'");
    status_400(a, "/.origin/stats?path=/o/1&prefix=/o/", "not both");
    status_400(a, "/.origin/stats?prefix=%zz", "bad parameter 'prefix'");
    th_origin_reset(a);
    body_eq(get(a, "/.origin/stats?prefix=/o/"), "{\"prefix\":\"/o/\",\"paths\":0,\"requests\":0,\"bytes\":0}\n");
    stop_ok(o);
}

typedef struct par_ctx {
    const char *addr;
    int status[50];
    long count[50];
} par_ctx_t;

static void par_get(int i, void *arg)
{
    par_ctx_t *p = arg;
    th_resp_t *r = th_get(p->addr, "/par?size=2000");
    p->status[i] = r ? r->status : -1;
    const char *n = r ? th_hdr(r, "X-Origin-Count") : NULL;
    p->count[i] = n ? atol(n) : -1;
    if (r && !th_body_matches("/par", 2000, r->body.data, r->body.len))
        p->status[i] = -2;
    th_resp_free(r);
}

Test(origin, concurrent_requests_counted_exactly)
{
    th_proc_t *o = th_origin();
    par_ctx_t p = { .addr = th_addr(o) };
    th_parallel(50, par_get, &p);
    bool seen[51] = { 0 };
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(p.status[i], 200, "request %d: %d", i, p.status[i]);
        cr_assert(p.count[i] >= 1 && p.count[i] <= 50 && !seen[p.count[i]], "X-Origin-Count %ld", p.count[i]);
        seen[p.count[i]] = true;
    }
    cr_assert_eq(th_origin_requests(th_addr(o), "/par"), 50);
    cr_assert_eq(th_origin_bytes(th_addr(o), "/par"), 50 * 2000);
    stop_ok(o);
}

typedef struct settle {
    const char *addr;
    long long bytes;         /* last count seen */
    int64_t since;           /* when it last changed */
} settle_t;

/* True once the origin's byte count for /huge has not moved for 300 ms. */
static bool bytes_settled(void *arg)
{
    settle_t *s = arg;
    long long now = th_origin_bytes(s->addr, "/huge");
    if (now != s->bytes) {
        s->bytes = now;
        s->since = th_now_ms();
        return false;
    }
    return now > 0 && th_now_ms() - s->since >= 300;
}

Test(origin, big_body_streams_with_backpressure)
{
    th_proc_t *o = th_origin();
    const uint64_t size = 64ull << 20;
    th_conn_t *c = th_connect(th_addr(o));
    cr_assert_not_null(c);
    const char req[] = "GET /huge?size=67108864 HTTP/1.1\r\nHost: t\r\n\r\n";
    cr_assert_eq(th_send(c, req, sizeof req - 1), 0);
    /* Not reading: the origin must stop generating once the socket is full. */
    settle_t st = { th_addr(o), -1, th_now_ms() };
    cr_assert(th_wait_until(bytes_settled, &st, TH_TIMEOUT_MS), "origin kept generating: %lld bytes", st.bytes);
    cr_assert(st.bytes < 32ll << 20, "origin produced %lld bytes for a client that reads nothing", st.bytes);
    th_resp_t *r = must(th_read_response(c, false), "huge");
    cr_assert_eq(r->body.len, size);
    char want[17];
    th_checksum_hex(r->body.data, r->body.len, want);
    hdr_eq(r, "X-Body-Checksum", want);
    cr_assert(th_body_matches("/huge", size, r->body.data, r->body.len), "%s", th_last_error());
    th_resp_free(r);
    th_close(c);
    stop_ok(o);
}

/* Every request has reached the handler once the counters show it. */
static bool three_in_flight(void *addr)
{
    return th_origin_requests(addr, "/stop/delay") + th_origin_requests(addr, "/stop/sum") +
               th_origin_requests(addr, "/stop/body") == 3;
}

Test(origin, stops_cleanly_mid_response)
{
    /* SIGTERM with work in every asynchronous step: a pending delay, a
     * checksum on the thread pool, a body waiting for the socket to drain,
     * and a half-received request. The exit status covers leaks (ASan). */
    th_proc_t *o = th_origin();
    static const char *const reqs[] = {
        "GET /stop/delay?delay=60000 HTTP/1.1\r\nHost: t\r\n\r\n",
        "HEAD /stop/sum?size=1073741824 HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /stop/body?size=1073741824 HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /stop/partial HTTP/1.1\r\nHost: t\r\n",
    };
    th_conn_t *c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = th_connect(th_addr(o));
        cr_assert_not_null(c[i]);
        cr_assert_eq(th_send(c[i], reqs[i], strlen(reqs[i])), 0);
    }
    cr_assert(th_wait_until(three_in_flight, (void *)th_addr(o), TH_TIMEOUT_MS), "requests reached the origin");
    int64_t t0 = th_now_ms();
    stop_ok(o);
    cr_assert(th_now_ms() - t0 < 9000, "stopped in %lld ms", (long long)(th_now_ms() - t0));
    for (int i = 0; i < 4; i++) {
        cr_assert(th_conn_closed(c[i], TH_TIMEOUT_MS), "connection %d closed", i);
        th_close(c[i]);
    }
}

Test(origin, bad_command_line_exits_2)
{
    const char *bin = getenv("CDN_BIN");
    cr_assert_not_null(bin);
    static const char *const bad[] = { "--bogus=1", "--workers=abc", "--listen", "--cache-dir=/x", "stray" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "'%s/origin' %s >/dev/null 2>&1", bin, bad[i]);
        int ws = system(cmd);
        cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 2, "origin %s: status %d", bad[i], ws);
    }
}
