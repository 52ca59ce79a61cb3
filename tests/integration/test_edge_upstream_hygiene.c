/* What an edge passes on from an upstream that misbehaves on the wire,
 * against a raw origin (harness_raw.c) that sends canned bytes:
 * control characters in header values (a bare CR would start a header of
 * its own for a client that takes CR as a line end) are replaced with SP,
 * obs-fold never starts a header, an invalid field name is a 502, and
 * 103 Early Hints reach HTTP/1.1 clients ahead of the final response but
 * are never stored. Each is checked on the first (fetched) response and on
 * the stored copy. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "edge_env.h"

/* A raw origin answering `conns` connections with reply (held after
 * hold bytes when hold > 0), and an edge in front of it (env.origin stays
 * NULL: the raw origin is not a process). */
static th_raw_origin_t *start_held(edge_env_t *env, const char *reply, size_t len, size_t hold, int conns)
{
    th_raw_origin_t *ro = th_raw_origin_start_held(reply, len, hold, conns);
    memset(env, 0, sizeof *env);
    env->o = th_raw_origin_addr(ro);
    env->dir = th_tmpdir();
    env->edge = edge_start(env->o, env->dir, NULL);
    env->e = th_addr(env->edge);
    return ro;
}

static th_raw_origin_t *start(edge_env_t *env, const char *reply, size_t len, int conns)
{
    return start_held(env, reply, len, 0, conns);
}

/* GET target on a fresh connection (HTTP/1.minor), everything received until close. */
static th_resp_t *raw_get(const edge_env_t *env, const char *target, int minor)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.%d\r\nHost: " EDGE_HOST "\r\nConnection: close\r\n\r\n",
                     target, minor);
    th_resp_t *r = th_raw(env->e, req, (size_t)n, TH_TIMEOUT_MS);
    cr_assert_not_null(r, "GET %s: %s", target, th_last_error());
    cr_assert(r->closed, "GET %s: the edge did not close the connection", target);
    return r;
}

/* No bare CR and no NUL anywhere in what the client got, and no control
 * character but CR LF HTAB in the head. */
static void assert_clean(const th_resp_t *r)
{
    const unsigned char *p = (const unsigned char *)r->raw.data;
    size_t n = r->raw.len;
    cr_assert(n > 0, "nothing received");
    const unsigned char *end = memmem(p, n, "\r\n\r\n", 4);
    size_t head = end ? (size_t)(end - p) + 4 : n;
    for (size_t i = 0; i < n; i++) {
        cr_assert(p[i] != '\r' || (i + 1 < n && p[i + 1] == '\n'), "bare CR at byte %zu of:\n%s", i, r->raw.data);
        cr_assert(p[i] != 0, "NUL at byte %zu", i);
        if (i < head)
            cr_assert(!((p[i] < 0x20 && p[i] != '\r' && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f),
                      "control byte 0x%02x at %zu of the head", p[i], i);
    }
}

/* A cacheable 200 with header_lines (raw bytes), the clean value expected
 * for X-Reflect; checks the first response and the stored copy. */
static void check_value_cleaned(const char *target, const char *header_lines, size_t hlen, const char *want)
{
    char reply[512];
    int n = snprintf(reply, sizeof reply, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n");
    memcpy(reply + n, header_lines, hlen);
    n += (int)hlen;
    n += snprintf(reply + n, sizeof reply - (size_t)n, "\r\nok");
    edge_env_t env;
    th_raw_origin_t *ro = start(&env, reply, (size_t)n, 1);

    th_resp_t *r = raw_get(&env, target, 1);
    cr_assert_eq(r->status, 200, "%s", r->raw.data);
    assert_clean(r);
    cr_assert_eq(th_hdr_count(r, "X-Injected"), 0);
    cr_assert_str_eq(th_hdr(r, "X-Reflect"), want);
    cr_assert_str_eq(r->body.data, "ok");
    th_resp_free(r);

    /* The stored copy is as clean: the hit comes from the object's metadata. */
    cr_assert(edge_wait_cs(&env, target, "hit", TH_TIMEOUT_MS), "%s never became a hit", target);
    r = raw_get(&env, target, 1);
    cr_assert(cs_has(r, "hit"), "%s", r->raw.data);
    assert_clean(r);
    cr_assert_eq(th_hdr_count(r, "X-Injected"), 0);
    cr_assert_str_eq(th_hdr(r, "X-Reflect"), want);
    th_resp_free(r);
    cr_assert_eq(th_raw_origin_conns(ro), 1);
    th_raw_origin_stop(ro);
}

Test(upstream_hygiene, bare_cr_in_a_value_becomes_sp)
{
    static const char h[] = "X-Reflect: x\rX-Injected: yes\r\n";
    check_value_cleaned("/cr", h, sizeof h - 1, "x X-Injected: yes");
}

Test(upstream_hygiene, control_bytes_in_a_value_become_sp)
{
    static const char h[] = "X-Reflect: x\001X-Injected: yes\177\r\n";
    check_value_cleaned("/ctl", h, sizeof h - 1, "x X-Injected: yes");
}

Test(upstream_hygiene, runs_of_cr_are_cleaned)
{
    /* libcurl ends a line at LF: "\r\r\n" ends it too; the CR inside stays ours to clean. */
    static const char h[] = "X-Reflect: a\r\rb\t c\r\r\n";
    check_value_cleaned("/crcr", h, sizeof h - 1, "a  b\t c");
}

Test(upstream_hygiene, nul_in_a_value_never_reaches_the_client)
{
    /* libcurl refuses a header with a NUL in it (a 502 here); were it to
     * pass one on, the NUL would become SP like any control character. */
    static const char reply[] = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n"
                                "X-Reflect: x\0X-Injected: yes\r\n\r\nok";
    edge_env_t env;
    th_raw_origin_t *ro = start(&env, reply, sizeof reply - 1, 2);
    for (int i = 0; i < 2; i++) {
        th_resp_t *r = raw_get(&env, "/nul", 1);
        cr_assert(r->status == 502 || r->status == 200, "%s", r->raw.data);
        assert_clean(r);
        cr_assert_eq(th_hdr_count(r, "X-Injected"), 0);
        if (r->status == 200)
            cr_assert_str_eq(th_hdr(r, "X-Reflect"), "x X-Injected: yes");
        th_resp_free(r);
    }
    th_raw_origin_stop(ro);
}

Test(upstream_hygiene, obs_fold_never_starts_a_header)
{
    static const char h[] = "X-Reflect: a\r\n X-Injected: yes\r\n\tmore\r\n";
    check_value_cleaned("/fold", h, sizeof h - 1, "a X-Injected: yes more");
}

Test(upstream_hygiene, whitespace_before_the_colon_is_removed)
{
    static const char h[] = "X-Reflect \t: v\r\n";
    check_value_cleaned("/ws", h, sizeof h - 1, "v");
}

Test(upstream_hygiene, an_invalid_field_name_is_a_502)
{
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX Bad: v\r\n\r\nok";
    edge_env_t env;
    th_raw_origin_t *ro = start(&env, reply, sizeof reply - 1, 1);
    th_resp_t *r = raw_get(&env, "/badname", 1);
    cr_assert_eq(r->status, 502, "%s", r->raw.data);
    cr_assert(strstr(r->body.data, "invalid upstream header field name"), "%s", r->body.data);
    assert_clean(r);
    th_resp_free(r);
    th_raw_origin_stop(ro);
}

static const char early_hints[] = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
                                  "Connection: X-Hop\r\nX-Hop: 1\r\n\r\n"
                                  "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok";

static th_resp_t *read_one(th_conn_t *c)
{
    th_resp_t *r = th_read_response(c, false);
    cr_assert_not_null(r, "%s", th_last_error());
    return r;
}

Test(upstream_hygiene, early_hints_reach_the_client_and_are_not_stored)
{
    edge_env_t env;
    th_raw_origin_t *ro = start(&env, early_hints, sizeof early_hints - 1, 1);
    static const char req[] = "GET /eh HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n";

    th_conn_t *c = th_connect(env.e);
    cr_assert_not_null(c, "%s", th_last_error());
    cr_assert_eq(th_send(c, req, sizeof req - 1), 0);
    th_resp_t *r = read_one(c);
    cr_assert_eq(r->status, 103, "%s", r->raw.data);
    cr_assert_str_eq(th_hdr(r, "Link"), "</style.css>; rel=preload");
    cr_assert_eq(th_hdr_count(r, "X-Hop"), 0, "%s", r->raw.data);
    cr_assert_eq(th_hdr_count(r, "Connection"), 0, "%s", r->raw.data);
    cr_assert_eq(th_hdr_count(r, "Content-Length"), 0, "%s", r->raw.data);
    th_resp_free(r);
    r = read_one(c);
    cr_assert_eq(r->status, 200, "%s", r->raw.data);
    cr_assert_str_eq(r->body.data, "ok");
    cr_assert_eq(th_hdr_count(r, "Link"), 0, "%s", r->raw.data);
    cr_assert_not(cs_has(r, "hit"), "%s", r->raw.data);
    th_resp_free(r);
    th_close(c);

    /* Stored without the hints: the hit's first response is the 200. */
    cr_assert(edge_wait_cs(&env, "/eh", "hit", TH_TIMEOUT_MS), "/eh never became a hit");
    c = th_connect(env.e);
    cr_assert_not_null(c, "%s", th_last_error());
    cr_assert_eq(th_send(c, req, sizeof req - 1), 0);
    r = read_one(c);
    cr_assert_eq(r->status, 200, "%s", r->raw.data);
    cr_assert(cs_has(r, "hit"), "%s", r->raw.data);
    cr_assert_eq(th_hdr_count(r, "Link"), 0, "%s", r->raw.data);
    cr_assert_str_eq(r->body.data, "ok");
    th_resp_free(r);
    th_close(c);
    cr_assert_eq(th_raw_origin_conns(ro), 1);
    th_raw_origin_stop(ro);
}

Test(upstream_hygiene, early_hints_are_not_sent_to_http10_clients)
{
    edge_env_t env;
    th_raw_origin_t *ro = start(&env, early_hints, sizeof early_hints - 1, 1);
    th_resp_t *r = raw_get(&env, "/eh10", 0);
    cr_assert_eq(r->status, 200, "%s", r->raw.data);
    cr_assert_str_eq(r->body.data, "ok");
    cr_assert_null(memmem(r->raw.data, r->raw.len, " 103 ", 5), "%s", r->raw.data);
    cr_assert_eq(th_hdr_count(r, "Link"), 0, "%s", r->raw.data);
    th_resp_free(r);
    th_raw_origin_stop(ro);
}

Test(upstream_hygiene, early_hints_go_ahead_of_a_final_response_on_its_way)
{
    /* The origin holds its 200 back after the 103: the hints reach the
     * client first, and a request that joins the fetch meanwhile gets them
     * too (one origin request for both). */
    size_t hold = (size_t)(strstr(early_hints, "HTTP/1.1 200") - early_hints);
    edge_env_t env;
    th_raw_origin_t *ro = start_held(&env, early_hints, sizeof early_hints - 1, hold, 1);
    static const char req[] = "GET /held HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n";
    th_conn_t *c[2];
    for (int i = 0; i < 2; i++) {
        c[i] = th_connect(env.e);
        cr_assert_not_null(c[i], "%s", th_last_error());
        cr_assert_eq(th_send(c[i], req, sizeof req - 1), 0);
        th_resp_t *r = read_one(c[i]);
        cr_assert_eq(r->status, 103, "client %d: %s", i, r->raw.data);
        cr_assert_str_eq(th_hdr(r, "Link"), "</style.css>; rel=preload");
        th_resp_free(r);
    }
    th_raw_origin_release(ro);
    for (int i = 0; i < 2; i++) {
        th_resp_t *r = read_one(c[i]);
        cr_assert_eq(r->status, 200, "client %d: %s", i, r->raw.data);
        cr_assert_str_eq(r->body.data, "ok");
        cr_assert_eq(th_hdr_count(r, "Link"), 0, "%s", r->raw.data);
        cr_assert_eq(cs_has(r, "collapsed"), i == 1, "client %d: %s", i, r->raw.data);
        th_resp_free(r);
        th_close(c[i]);
    }
    cr_assert_eq(th_raw_origin_conns(ro), 1);
    th_raw_origin_stop(ro);
}
