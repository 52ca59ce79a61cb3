/* The access log on the wire (issue 13): text and json lines for a miss
 * and a hit, field by field (json lines parsed with jansson); hostile
 * request targets and headers cannot break or forge a line; request ids:
 * a trusted peer's X-Request-Id is kept and sent upstream, an untrusted
 * peer's is replaced by a generated one, and through edge -> shield ->
 * origin one id names the request in every tier.
 *
 * Access lines are buffered per worker thread: each test stops the node
 * (which flushes them) before reading its log file. With two workers the
 * lines of different connections may come out of order, so lines are
 * found by their request id, never by position. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"

#define MAX_LINES 64
#define LINE_CAP 8192

typedef struct log_lines {
    int n;
    char line[MAX_LINES][LINE_CAP];
} log_lines_t;

/* "--access-log=DIR/access.log" for a fresh directory; path gets the file. */
static const char *log_flag(char *flag, size_t cap, char *path, size_t pcap)
{
    snprintf(path, pcap, "%s/access.log", th_tmpdir());
    snprintf(flag, cap, "--access-log=%s", path);
    return flag;
}

/* Every line of the file (each must end in a newline). Static (a failed
 * assertion leaks nothing): valid until the next call. */
static log_lines_t *read_log(const char *path)
{
    static log_lines_t lines;
    log_lines_t *l = &lines;
    l->n = 0;
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "no access log at %s", path);
    while (l->n < MAX_LINES && fgets(l->line[l->n], LINE_CAP, f)) {
        size_t n = strlen(l->line[l->n]);
        cr_assert(n > 0 && l->line[l->n][n - 1] == '\n', "a cut line: %s", l->line[l->n]);
        l->n++;
    }
    fclose(f);
    return l;
}

static json_t *json_line(const char *s)
{
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    cr_assert_not_null(j, "not JSON (%s): %s", err.text, s);
    cr_assert(json_is_object(j), "%s", s);
    return j;
}

/* The one json line whose request_id is id (every line must parse). */
static json_t *json_with_id(const log_lines_t *l, const char *id)
{
    json_t *found = NULL;
    for (int i = 0; i < l->n; i++) {
        json_t *j = json_line(l->line[i]);
        const char *v = json_string_value(json_object_get(j, "request_id"));
        cr_assert_not_null(v, "no request_id: %s", l->line[i]);
        if (strcmp(v, id) == 0) {
            cr_assert_null(found, "two lines with id %s", id);
            found = j;
        } else {
            json_decref(j);
        }
    }
    cr_assert_not_null(found, "no line with request id %s", id);
    return found;
}

static const char *jstr(json_t *j, const char *k)
{
    const char *v = json_string_value(json_object_get(j, k));
    cr_assert_not_null(v, "%s missing or not a string", k);
    return v;
}

static long long jint(json_t *j, const char *k)
{
    json_t *v = json_object_get(j, k);
    cr_assert(json_is_integer(v), "%s missing or not an integer", k);
    return json_integer_value(v);
}

/* A text line split the way a reader would: on spaces outside quotes. */
typedef struct text_fields {
    int n;
    char f[16][2048];
} text_fields_t;

static void split_text(const char *s, text_fields_t *t)
{
    size_t at = 0;
    bool quoted = false;
    t->n = 0;
    for (const char *p = s; *p && *p != '\n'; p++) {
        if (*p == '"')
            quoted = !quoted;
        if (*p == ' ' && !quoted) {
            t->f[t->n++][at] = '\0';
            at = 0;
            cr_assert(t->n < 15, "too many fields: %s", s);
            continue;
        }
        cr_assert(at < 2047);
        t->f[t->n][at++] = *p;
    }
    t->f[t->n++][at] = '\0';
    cr_assert(!quoted, "unbalanced quotes: %s", s);
    cr_assert_eq(t->n, 12, "12 fields: %s", s);
}

/* The one text line whose request id (field 9) is id. */
static void text_with_id(const log_lines_t *l, const char *id, text_fields_t *out)
{
    int found = 0;
    static text_fields_t t;
    for (int i = 0; i < l->n; i++) {
        split_text(l->line[i], &t);
        if (strcmp(t.f[9], id) == 0) {
            *out = t;
            found++;
        }
    }
    cr_assert_eq(found, 1, "lines with request id %s: %d", id, found);
}

static bool is_hex32(const char *s)
{
    return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

static th_resp_t *get_with_id(const char *addr, const char *target, const char *id)
{
    char h[512];
    snprintf(h, sizeof h, "X-Request-Id: %s\r\n", id);
    th_resp_t *r = edge_req(addr, "GET", target, h, NULL, 0);
    cr_assert_not_null(r, "%s", th_last_error());
    cr_assert_eq(r->status, 200);
    return r;
}

/* A miss, then (once the object is stored) a hit, each with an id of its
 * own from a trusted peer. */
static void miss_then_hit(edge_env_t *env, const char *target, const char *miss_id, const char *hit_id)
{
    th_resp_t *r = get_with_id(env->e, target, miss_id);
    cr_assert(cs_has(r, "fwd=uri-miss"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    cr_assert(edge_wait_cs(env, target, "; hit", 5000), "the object was never stored");
    r = get_with_id(env->e, target, hit_id);
    cr_assert(cs_has(r, "; hit"));
    th_resp_free(r);
}

#define OBJ "/al?size=321&cc=max-age%3D600"

Test(accesslog, text_miss_and_hit)
{
    char flag[800], path[700];
    const char *extra[] = { log_flag(flag, sizeof flag, path, sizeof path), "--trusted-proxies=127.0.0.0/8", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    miss_then_hit(&env, OBJ, "text-miss-1", "text-hit-1");
    cr_assert_eq(th_stop(env.edge), 0);
    log_lines_t *l = read_log(path);
    text_fields_t t;
    text_with_id(l, "text-miss-1", &t);
    cr_assert_eq(strlen(t.f[0]), 24, "RFC 3339 with ms: %s", t.f[0]);
    cr_assert_eq(t.f[0][10], 'T');
    cr_assert_eq(t.f[0][23], 'Z');
    cr_assert_str_eq(t.f[1], "127.0.0.1");
    cr_assert_str_eq(t.f[2], "\"GET " OBJ "\"");
    cr_assert_str_eq(t.f[3], "200");
    cr_assert_str_eq(t.f[4], "321");
    cr_assert_str_eq(t.f[5], "miss");
    cr_assert(strstr(t.f[6], "ms"), "%s", t.f[6]);
    cr_assert_str_eq(t.f[10], "\"" EDGE_HOST "\"");
    cr_assert_str_eq(t.f[11], "\"-\"", "no User-Agent was sent");
    text_with_id(l, "text-hit-1", &t);
    cr_assert_str_eq(t.f[3], "200");
    cr_assert_str_eq(t.f[4], "321");
    cr_assert_str_eq(t.f[5], "hit");
    cr_assert_str_eq(t.f[7], "-", "a hit has no upstream");
    cr_assert_str_eq(t.f[8], "-");
}

Test(accesslog, json_miss_and_hit)
{
    char flag[800], path[700];
    const char *extra[] = { log_flag(flag, sizeof flag, path, sizeof path), "--access-log-format=json",
                            "--trusted-proxies=127.0.0.0/8", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    miss_then_hit(&env, OBJ, "json-miss-1", "json-hit-1");
    cr_assert_eq(th_stop(env.edge), 0);
    log_lines_t *l = read_log(path);
    json_t *j = json_with_id(l, "json-miss-1");
    cr_assert_eq(strlen(jstr(j, "time")), 24);
    cr_assert_str_eq(jstr(j, "client"), "127.0.0.1");
    cr_assert_str_eq(jstr(j, "method"), "GET");
    cr_assert_str_eq(jstr(j, "target"), OBJ);
    cr_assert_str_eq(jstr(j, "host"), EDGE_HOST);
    cr_assert_eq(jint(j, "status"), 200);
    cr_assert_eq(jint(j, "bytes"), 321);
    cr_assert_str_eq(jstr(j, "outcome"), "miss");
    cr_assert(json_is_number(json_object_get(j, "duration_ms")));
    cr_assert(json_is_null(json_object_get(j, "user_agent")));
    json_decref(j);
    j = json_with_id(l, "json-hit-1");
    cr_assert_eq(jint(j, "status"), 200);
    cr_assert_eq(jint(j, "bytes"), 321);
    cr_assert_str_eq(jstr(j, "outcome"), "hit");
    cr_assert(json_is_null(json_object_get(j, "upstream")), "a hit has no upstream");
    cr_assert(json_is_null(json_object_get(j, "upstream_ms")));
    json_decref(j);
}

/* What the origin's echo shows for X-Request-Id, and how many arrived. */
static void echoed_id(th_resp_t *r, char *out, size_t n)
{
    edge_echoed(r, "X-Request-Id", out, n);
    const char *b = r->body.data ? r->body.data : "";
    int count = 0;
    for (const char *p = b; (p = strcasestr(p, "\"x-request-id\"")); p++)
        count++;
    cr_assert_eq(count, 1, "exactly one X-Request-Id upstream: %s", b);
}

Test(accesslog, trusted_peer_id_is_kept_and_sent_upstream)
{
    char flag[800], path[700], seen[256];
    const char *extra[] = { log_flag(flag, sizeof flag, path, sizeof path), "--access-log-format=json",
                            "--trusted-proxies=127.0.0.0/8", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    th_resp_t *r = get_with_id(env.e, "/al-echo-1?echo=1", "lb-7f3a:9");
    echoed_id(r, seen, sizeof seen);
    cr_assert_str_eq(seen, "lb-7f3a:9");
    th_resp_free(r);
    /* Trusted but not sane (too long; a space): replaced, never passed on. */
    char longid[140];
    memset(longid, 'x', 129);
    longid[129] = '\0';
    r = get_with_id(env.e, "/al-echo-2?echo=1", longid);
    echoed_id(r, seen, sizeof seen);
    cr_assert(is_hex32(seen), "a generated id went upstream: %s", seen);
    th_resp_free(r);
    char replaced[64];
    snprintf(replaced, sizeof replaced, "%s", seen);
    r = edge_req(env.e, "GET", "/al-echo-3?echo=1", "X-Request-Id: a b\r\n", NULL, 0);
    cr_assert_not_null(r);
    echoed_id(r, seen, sizeof seen);
    cr_assert(is_hex32(seen) && strcmp(seen, replaced) != 0, "%s", seen);
    th_resp_free(r);
    cr_assert_eq(th_stop(env.edge), 0);
    log_lines_t *l = read_log(path);
    json_t *j = json_with_id(l, "lb-7f3a:9");
    cr_assert_str_eq(jstr(j, "target"), "/al-echo-1?echo=1");
    json_decref(j);
    j = json_with_id(l, replaced);
    cr_assert_str_eq(jstr(j, "target"), "/al-echo-2?echo=1");
    json_decref(j);
    j = json_with_id(l, seen);
    cr_assert_str_eq(jstr(j, "target"), "/al-echo-3?echo=1");
    json_decref(j);
}

Test(accesslog, untrusted_peer_id_is_replaced)
{
    char flag[800], path[700], seen[256];
    const char *extra[] = { log_flag(flag, sizeof flag, path, sizeof path), "--access-log-format=json", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    th_resp_t *r = get_with_id(env.e, "/al-untrusted?echo=1", "forged-by-client");
    echoed_id(r, seen, sizeof seen);
    cr_assert(is_hex32(seen), "the client's id went upstream: %s", seen);
    th_resp_free(r);
    cr_assert_eq(th_stop(env.edge), 0);
    log_lines_t *l = read_log(path);
    cr_assert_eq(l->n, 1);
    cr_assert_null(strstr(l->line[0], "forged-by-client"));
    json_t *j = json_with_id(l, seen); /* the id upstream is the one logged */
    cr_assert_str_eq(jstr(j, "outcome"), "miss");
    json_decref(j);
}

/* edge -> shield -> origin: the shield trusts the edge (loopback), so the
 * id the edge made for an untrusted client names the request in both
 * logs and reaches the origin. */
Test(accesslog, one_id_through_the_tiers)
{
    th_proc_t *origin = th_origin();
    char org[128], dir[700], sflag[800], spath[700], eflag[800], epath[700], shields[128], seen[256];
    snprintf(org, sizeof org, "--origin=http://%s", th_addr(origin));
    snprintf(dir, sizeof dir, "--cache-dir=%s", th_tmpdir());
    const char *sargv[] = { "--name=shield-a", "--listen=127.0.0.1:0", org, dir, "--workers=2", "--cache-size=64M",
                            "--trusted-proxies=127.0.0.0/8", "--access-log-format=json",
                            log_flag(sflag, sizeof sflag, spath, sizeof spath), NULL };
    th_proc_t *shield = th_spawn("shield", sargv);
    snprintf(shields, sizeof shields, "--shields=%s", th_addr(shield));
    const char *eargv[] = { shields, "--access-log-format=json", log_flag(eflag, sizeof eflag, epath, sizeof epath),
                            NULL };
    th_proc_t *edge = edge_start(th_addr(origin), th_tmpdir(), eargv);
    th_resp_t *r = get_with_id(th_addr(edge), "/al-tier?echo=1", "forged-by-client");
    cr_assert(strstr(th_hdr(r, "cache-status"), "shield-a"), "went through the shield: %s",
              th_hdr(r, "cache-status"));
    echoed_id(r, seen, sizeof seen);
    cr_assert(is_hex32(seen), "%s", seen);
    th_resp_free(r);
    /* A trusted client of the edge (say a load balancer) names it itself. */
    const char *eargv2[] = { shields, "--access-log-format=json", "--trusted-proxies=127.0.0.1", NULL };
    th_proc_t *edge2 = edge_start(th_addr(origin), th_tmpdir(), eargv2);
    r = get_with_id(th_addr(edge2), "/al-tier-2?echo=1", "from-the-lb-1");
    echoed_id(r, seen + 64, sizeof seen - 64);
    cr_assert_str_eq(seen + 64, "from-the-lb-1");
    th_resp_free(r);
    cr_assert_eq(th_stop(edge), 0);
    cr_assert_eq(th_stop(shield), 0);
    log_lines_t *l = read_log(epath);
    json_t *j = json_with_id(l, seen);
    cr_assert_str_eq(jstr(j, "target"), "/al-tier?echo=1");
    json_decref(j);
    l = read_log(spath);
    j = json_with_id(l, seen);
    cr_assert_str_eq(jstr(j, "target"), "/al-tier?echo=1");
    cr_assert_str_eq(jstr(j, "outcome"), "miss");
    json_decref(j);
    j = json_with_id(l, "from-the-lb-1");
    cr_assert_str_eq(jstr(j, "target"), "/al-tier-2?echo=1");
    json_decref(j);
}

/* Requests that join a fetch another started (collapsed) share its
 * upstream request, so the id upstream is the starter's; each client's
 * own line keeps its own id. */
typedef struct col {
    const char *addr;
    char seen[4][64];
    int status[4];
} col_t;

#define COL "/al-col?echo=1&delay=300&cc=max-age%3D600"

static void col_one(int i, void *arg)
{
    col_t *c = arg;
    char h[64];
    snprintf(h, sizeof h, "X-Request-Id: col-%d\r\n", i);
    th_resp_t *r = edge_req(c->addr, "GET", COL, h, NULL, 0);
    if (!r)
        return;
    c->status[i] = r->status;
    edge_echoed(r, "X-Request-Id", c->seen[i], sizeof c->seen[i]);
    th_resp_free(r);
}

Test(accesslog, collapsed_requests_carry_the_starters_id_upstream)
{
    char flag[800], path[700];
    const char *extra[] = { log_flag(flag, sizeof flag, path, sizeof path), "--access-log-format=json",
                            "--trusted-proxies=127.0.0.0/8", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    col_t c = { .addr = env.e };
    th_parallel(4, col_one, &c);
    cr_assert_eq(th_origin_requests(env.o, "/al-col"), 1, "one upstream request for the four");
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(c.status[i], 200);
        cr_assert_str_eq(c.seen[i], c.seen[0], "one upstream id");
    }
    cr_assert(strncmp(c.seen[0], "col-", 4) == 0, "a client's (trusted) id went upstream: %s", c.seen[0]);
    cr_assert_eq(th_stop(env.edge), 0);
    log_lines_t *l = read_log(path);
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "col-%d", i);
        json_t *j = json_with_id(l, id);
        const char *out = jstr(j, "outcome");
        if (strcmp(id, c.seen[0]) == 0)
            cr_assert_str_eq(out, "miss", "the starter");
        else
            cr_assert(strcmp(out, "collapsed") == 0 || strcmp(out, "hit") == 0, "%s: %s", id, out);
        json_decref(j);
    }
}

/* Requests written to break a log line: quotes, backslashes, raw bytes
 * and a percent-encoded line break in the target; the same and control
 * bytes in headers. Whatever the node answers (200 or 400), each request
 * is one whole line. */
static const char *const hostile[] = {
    "GET /h1?q=%22%0a%0d%5c\" HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\nUser-Agent: a\"b\\c \"forged\" 200\r\n\r\n",
    "GET /h2\\\"} HTTP/1.1\r\nHost: cdn.\"test\\\r\nConnection: close\r\nUser-Agent: \xc3\xa9\xff\xfe\x80\r\n\r\n",
    "GET /h3\xff\xc3\x28\x01 HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\n\r\n",
    "GET /h4 HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\nUser-Agent: x\r\n\r\n{\"status\":200}\n",
    "GET /h5 HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\nUser-Agent: tab\there\x7f\r\nX-Request-Id: \"}\n\r\n\r\n",
    "GET /h6?a=\x1b[31m HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\n\r\n",
};
#define NHOSTILE (sizeof hostile / sizeof hostile[0])

static void send_hostile(const char *addr)
{
    for (size_t i = 0; i < NHOSTILE; i++) {
        char req[512];
        snprintf(req, sizeof req, "%s", hostile[i]);
        /* one request per connection, closed by the client's half */
        th_resp_t *r = th_raw(addr, req, strlen(req), 3000);
        cr_assert_not_null(r);
        cr_assert(r->status > 0 && r->closed, "request %zu: %d", i, r->status);
        th_resp_free(r);
    }
}

Test(accesslog, hostile_requests_cannot_break_a_line)
{
    for (int fmt = 0; fmt < 2; fmt++) {
        char flag[800], path[700];
        const char *extra[] = { log_flag(flag, sizeof flag, path, sizeof path),
                                fmt ? "--access-log-format=json" : "--access-log-format=text", NULL };
        edge_env_t env;
        edge_env_start(&env, extra);
        send_hostile(env.e);
        cr_assert_eq(th_stop(env.edge), 0);
        cr_assert_eq(th_stop(env.origin), 0);
        log_lines_t *l = read_log(path);
        /* th_raw may send the 4th request's trailing bytes as a second
         * request (400): at least one line each, every line whole. */
        cr_assert_geq(l->n, (int)NHOSTILE, "%s: %d lines", fmt ? "json" : "text", l->n);
        for (int i = 0; i < l->n; i++) {
            const char *s = l->line[i];
            for (const unsigned char *p = (const unsigned char *)s; *p != '\n'; p++)
                cr_assert(*p >= 0x20 && *p < 0x7f, "a raw byte %u in: %s", *p, s);
            cr_assert_null(strstr(s, "\"forged\""), "%s", s);
            if (fmt) {
                json_t *j = json_line(s);
                cr_assert_str_eq(jstr(j, "client"), "127.0.0.1");
                cr_assert(is_hex32(jstr(j, "request_id")), "%s", s);
                json_decref(j);
            } else {
                static text_fields_t t;
                split_text(s, &t);
                cr_assert_str_eq(t.f[1], "127.0.0.1");
                cr_assert(is_hex32(t.f[9]), "%s", s);
            }
        }
        }
}

/* The upstream that answered a miss and its time; none for a hit. This
 * needs the fetch path to call http_conn_set_log_upstream (the metrics
 * change): until then upstream is null on a miss too. */
Test(accesslog, upstream_fields)
{
    char flag[800], path[700], base[128];
    const char *extra[] = { log_flag(flag, sizeof flag, path, sizeof path), "--access-log-format=json",
                            "--trusted-proxies=127.0.0.0/8", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    miss_then_hit(&env, OBJ, "up-miss-1", "up-hit-1");
    snprintf(base, sizeof base, "http://%s", env.o);
    cr_assert_eq(th_stop(env.edge), 0);
    log_lines_t *l = read_log(path);
    json_t *j = json_with_id(l, "up-hit-1");
    cr_assert(json_is_null(json_object_get(j, "upstream")));
    cr_assert(json_is_null(json_object_get(j, "upstream_ms")));
    json_decref(j);
    j = json_with_id(l, "up-miss-1");
    /* read, then assert: a failed assertion must not leak the object */
    json_t *up = json_object_get(j, "upstream");
    char upstream[160];
    snprintf(upstream, sizeof upstream, "%s", json_is_string(up) ? json_string_value(up) : "(not a string)");
    double up_ms = json_number_value(json_object_get(j, "upstream_ms"));
    json_decref(j);
    cr_assert_str_eq(upstream, base, "a miss names its upstream");
    cr_assert_gt(up_ms, 0.0);
}
