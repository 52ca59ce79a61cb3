/* Stopping a node honestly, and the signals around it: SIGTERM turns
 * health to 503 at once while the node keeps serving (with Connection:
 * close) for drain_delay, then the listeners close and in-flight requests
 * finish (up to drain_timeout) before exit 0; SIGINT skips the delay; a
 * second signal stops at once; SIGHUP never kills a node or the origin;
 * the store's writer is flushed before exit. Every wait is bounded and
 * waits on an event (a log line, a response, a closed socket). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_env.h"

#define CC "cc=max-age%3D600"

typedef struct counted {
    const char *origin, *path;
} counted_t;

static bool origin_counted(void *arg)
{
    counted_t *c = arg;
    return th_origin_requests(c->origin, c->path) >= 1;
}

/* Send a GET for target on a fresh connection to addr, and wait until the
 * origin counted it (the request is then in flight through the edge). */
static th_conn_t *start_slow(const char *addr, const char *origin, const char *target, const char *path)
{
    th_conn_t *c = th_connect(addr);
    cr_assert_not_null(c, "connect: %s", th_last_error());
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n", target);
    cr_assert_eq(th_send(c, req, strlen(req)), 0);
    counted_t k = { origin, path };
    cr_assert(th_wait_until(origin_counted, &k, TH_TIMEOUT_MS), "the slow request reached the origin");
    return c;
}

/* One keep-alive request on c; the caller frees the response. */
static th_resp_t *ka_get(th_conn_t *c, const char *target)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n", target);
    cr_assert_eq(th_send(c, req, strlen(req)), 0);
    th_resp_t *r = th_read_response(c, false);
    cr_assert_not_null(r, "%s: %s", target, th_last_error());
    return r;
}

static bool health_is_503(void *addr)
{
    th_resp_t *r = th_get(addr, "/.cdn/health");
    bool yes = r && r->status == 503;
    th_resp_free(r);
    return yes;
}

static bool refused(void *addr)
{
    th_conn_t *c = th_connect(addr);
    th_close(c);
    return c == NULL;
}

Test(drain, sigterm_serves_through_the_delay_then_finishes_in_flight, .timeout = 60)
{
    /* The delay only has to outlast a few local requests; the slow
     * response has to outlast the delay, so it is in flight when the
     * listeners close. */
    const char *extra[] = { "--drain-delay=3s", "--drain-timeout=20s", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    char e[80];
    snprintf(e, sizeof e, "%s", env.e);

    th_resp_t *r = th_get(e, "/.cdn/health");
    cr_assert_eq(r->status, 200, "serving before the signal");
    th_resp_free(r);
    /* A keep-alive connection opened before the signal... */
    th_conn_t *ka = th_connect(e);
    cr_assert_not_null(ka);
    r = ka_get(ka, "/drain/ka1?size=100");
    cr_assert_eq(r->status, 200);
    cr_assert(r->keep_alive && !th_hdr(r, "connection"), "kept alive before the signal");
    th_resp_free(r);
    th_conn_t *slow = start_slow(e, env.o, "/drain/slow?size=300000&delay=6000", "/drain/slow");

    th_signal(env.edge, SIGTERM);
    cr_assert(th_wait_until(health_is_503, e, TH_TIMEOUT_MS), "health turns 503 on SIGTERM");
    /* Still serving: a new connection, and the old keep-alive one, both
     * told to go elsewhere. All before the delay is over. */
    r = edge_req(e, "GET", "/drain/new?size=100", "Connection: keep-alive\r\n", NULL, 0);
    cr_assert_not_null(r, "a new connection during the delay: %s", th_last_error());
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(th_hdr(r, "connection"), "close");
    th_resp_free(r);
    r = ka_get(ka, "/drain/ka2?size=100");
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(th_hdr(r, "connection"), "close");
    th_resp_free(r);
    cr_assert(th_conn_closed(ka, TH_TIMEOUT_MS), "the keep-alive connection is closed after its answer");
    th_close(ka);
    cr_assert_eq(th_log_count(env.edge, "closing listeners"), 0, "all of the above within the drain delay");
    cr_assert_eq(th_log_count(env.edge, "SIGTERM: draining"), 1);

    /* After the delay: no new connections, the slow response completes. */
    cr_assert(th_wait_log(env.edge, "closing listeners", 1));
    cr_assert(th_wait_until(refused, e, TH_TIMEOUT_MS), "the listener refuses after the delay");
    r = th_read_response(slow, false);
    cr_assert_not_null(r, "the in-flight response: %s", th_last_error());
    cr_assert_eq(r->status, 200);
    cr_assert(r->complete && th_body_matches("/drain/slow", 300000, r->body.data, r->body.len),
              "the in-flight response is intact");
    th_resp_free(r);
    th_close(slow);
    cr_assert_eq(th_wait_exit(env.edge, TH_TIMEOUT_MS), 0, "exit 0 after the drain");
    cr_assert_eq(th_log_count(env.edge, "in-flight requests finished"), 1);
    cr_assert_eq(th_log_count(env.edge, "store flushed"), 1);
}

Test(drain, drain_timeout_cuts_a_response_that_is_too_slow, .timeout = 60)
{
    const char *extra[] = { "--drain-delay=0", "--drain-timeout=1s", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    th_conn_t *slow = start_slow(env.e, env.o, "/drain/stuck?size=1000&delay=60000", "/drain/stuck");
    th_signal(env.edge, SIGTERM);
    cr_assert(th_conn_closed(slow, TH_TIMEOUT_MS), "the connection is closed at the drain timeout");
    cr_assert_null(th_read_response(slow, false), "no complete response came");
    th_close(slow);
    cr_assert_eq(th_wait_exit(env.edge, TH_TIMEOUT_MS), 0, "exit 0 all the same");
    cr_assert_eq(th_log_count(env.edge, "drain_timeout: closing the connections left (1)"), 1);
    cr_assert_eq(th_log_count(env.edge, "connections closed by the drain timeout: 1"), 1);
}

Test(drain, sigint_skips_the_delay_but_finishes_in_flight, .timeout = 60)
{
    const char *extra[] = { "--drain-delay=60s", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    char e[80];
    snprintf(e, sizeof e, "%s", env.e);
    th_conn_t *slow = start_slow(e, env.o, "/drain/int?size=50000&delay=1500", "/drain/int");
    th_signal(env.edge, SIGINT);
    cr_assert(th_wait_log(env.edge, "closing listeners", 1), "no drain delay on SIGINT");
    cr_assert(th_wait_until(refused, e, TH_TIMEOUT_MS));
    th_resp_t *r = th_read_response(slow, false);
    cr_assert_not_null(r, "%s", th_last_error());
    cr_assert(r->status == 200 && th_body_matches("/drain/int", 50000, r->body.data, r->body.len));
    th_resp_free(r);
    th_close(slow);
    cr_assert_eq(th_wait_exit(env.edge, TH_TIMEOUT_MS), 0);
}

Test(drain, a_second_signal_cuts_the_delay_short, .timeout = 60)
{
    const char *extra[] = { "--drain-delay=60s", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    th_signal(env.edge, SIGTERM);
    cr_assert(th_wait_log(env.edge, "SIGTERM: draining", 1));
    th_signal(env.edge, SIGTERM);
    cr_assert_eq(th_wait_exit(env.edge, TH_TIMEOUT_MS), 0, "stopped well before the 60 s delay");
    cr_assert_eq(th_log_count(env.edge, "SIGTERM again: stopping now"), 1);
}

Test(drain, sighup_without_reload_keeps_serving)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_signal(env.edge, SIGHUP);
    th_signal(env.origin, SIGHUP);
    cr_assert(th_wait_log(env.edge, "SIGHUP", 1));
    cr_assert(th_wait_log(env.origin, "SIGHUP", 1));
    th_resp_t *r = edge_get(&env, "/drain/hup?size=100");
    cr_assert_eq(r->status, 200, "the edge and the origin still serve");
    th_resp_free(r);
    r = th_get(env.e, "/.cdn/health");
    cr_assert_eq(r->status, 200);
    th_resp_free(r);
    cr_assert_eq(th_wait_exit(env.edge, 0), -1, "still running");
    cr_assert_eq(th_stop(env.edge), 0);
    cr_assert_eq(th_stop(env.origin), 0);
}

Test(drain, the_store_is_flushed_before_exit, .timeout = 60)
{
    const char *extra[] = { "--drain-delay=0", NULL };
    edge_env_t env;
    edge_env_start(&env, extra);
    th_resp_t *r = edge_get(&env, "/drain/keep?size=2000000&" CC);
    cr_assert(r->status == 200 && cs_has(r, "miss"), "%s", th_hdr(r, "cache-status"));
    th_resp_free(r);
    /* At once: the put may still be queued for the store's writer. */
    th_signal(env.edge, SIGTERM);
    cr_assert_eq(th_wait_exit(env.edge, TH_TIMEOUT_MS), 0);
    th_proc_t *e2 = edge_start(env.o, env.dir, NULL);
    r = edge_req(th_addr(e2), "GET", "/drain/keep?size=2000000&" CC, "Cache-Control: only-if-cached\r\n", NULL,
                 0);
    cr_assert_not_null(r);
    cr_assert(r->status == 200 && cs_has(r, "hit"), "status %d, %s", r->status, th_hdr(r, "cache-status"));
    cr_assert(th_body_matches("/drain/keep", 2000000, r->body.data, r->body.len));
    th_resp_free(r);
    cr_assert_eq(th_origin_requests(env.o, "/drain/keep"), 1);
    cr_assert_eq(th_stop(e2), 0);
}
