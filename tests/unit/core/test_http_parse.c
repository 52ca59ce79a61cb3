/* http_parse_requests: the server's request parsing without a socket
 * (the connections' own llhttp callbacks, header collection and bounds):
 * pipelined requests in order whatever the read sizes, and the status
 * the server answers a bad request with. */
#include <criterion/criterion.h>
#include <string.h>

#include "config.h"
#include "http_server.h"

typedef struct seen {
    unsigned n;
    char targets[4][64];
    size_t fields[4];
} seen_t;

static void on_req(http_req_t *req, void *ud)
{
    seen_t *s = ud;
    if (s->n < 4) {
        snprintf(s->targets[s->n], sizeof s->targets[0], "%s", req->target);
        s->fields[s->n] = req->hdrs.n;
    }
    s->n++;
}

static int parse(const char *text, size_t piece, seen_t *s)
{
    config_t cfg;
    config_defaults(&cfg, CONFIG_EDGE);
    http_server_opts_t o;
    http_server_opts_from_config(&o, &cfg);
    memset(s, 0, sizeof *s);
    return http_parse_requests(&o, text, strlen(text), piece, on_req, s);
}

Test(http_parse, pipelined_in_any_pieces)
{
    const char *in = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                     "POST /b?x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
                     "GET /c HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n";
    for (size_t piece = 0; piece < 8; piece++) {
        seen_t s;
        cr_assert_eq(parse(in, piece, &s), 0);
        cr_assert_eq(s.n, 3, "piece %zu: %u requests", piece, s.n);
        cr_assert_str_eq(s.targets[0], "/a");
        cr_assert_str_eq(s.targets[1], "/b?x");
        cr_assert_str_eq(s.targets[2], "/c");
        cr_assert_eq(s.fields[2], 2);
    }
}

Test(http_parse, bad_requests_get_their_status)
{
    seen_t s;
    cr_assert_eq(parse("GET / HTTP/1.1\r\nAccept: x\r\n\r\n", 0, &s), 400); /* no Host */
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0, &s), 400);
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 0, &s), 400); /* obs-fold */
    cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 0, &s), 417);
    cr_assert_eq(parse("CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n", 0, &s), 405);
    cr_assert_eq(s.n, 0);
}

/* Found by fuzzing (tests/fuzz/corpus/request_head/crash-empty-field-name):
 * llhttp takes ": v" as a field with an empty name, which the server kept
 * and would have forwarded upstream as such. */
Test(http_parse, empty_field_name_is_400)
{
    seen_t s;
    for (size_t piece = 0; piece < 4; piece++) {
        cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", piece, &s), 400);
        cr_assert_eq(parse("GET / HTTP/1.1\r\n:\r\nHost: h\r\n\r\n", piece, &s), 400);
        cr_assert_eq(s.n, 0);
    }
}
