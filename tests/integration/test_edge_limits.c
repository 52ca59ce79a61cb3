/* Connection bounds (issue 12): requests per keep-alive connection, the
 * connection cap across every worker, and the slowloris defences (a
 * connection that never sends a request gets header_timeout, not the
 * keep-alive idle time; a request trickling in under min_recv_rate gets
 * 408) while a normal client is served. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "edge_env.h"

#define GET_ONE "GET /one?size=16&cc=max-age%3D60 HTTP/1.1\r\nHost: " EDGE_HOST "\r\n\r\n"

Test(edge_limits, keep_alive_requests_are_bounded)
{
    edge_env_t env;
    const char *extra[] = { "--max-requests-per-connection=3", NULL };
    edge_env_start(&env, extra);
    th_conn_t *c = th_connect(env.e);
    cr_assert_not_null(c);
    for (int i = 1; i <= 3; i++) {
        cr_assert_eq(th_send(c, GET_ONE, strlen(GET_ONE)), 0);
        th_resp_t *r = th_read_response(c, false);
        cr_assert_not_null(r, "request %d: %s", i, th_last_error());
        cr_assert_eq(r->status, 200);
        const char *conn = th_hdr(r, "connection");
        if (i < 3)
            cr_assert(!conn || strcasecmp(conn, "close") != 0, "request %d: Connection: %s", i, conn);
        else
            cr_assert(conn && strcasecmp(conn, "close") == 0, "the third is the last: %s", conn ? conn : "(none)");
        th_resp_free(r);
    }
    cr_assert(th_conn_closed(c, 5000));
    th_close(c);
}

Test(edge_limits, the_connection_cap_holds_across_workers)
{
    edge_env_t env;
    const char *extra[] = { "--max-connections-total=6", NULL }; /* 2 workers */
    edge_env_start(&env, extra);
    th_conn_t *open[6];
    for (int i = 0; i < 6; i++) {
        open[i] = th_connect(env.e);
        cr_assert_not_null(open[i]);
        cr_assert_eq(th_send(open[i], GET_ONE, strlen(GET_ONE)), 0);
        th_resp_t *r = th_read_response(open[i], false);
        cr_assert(r && r->status == 200, "connection %d is served", i);
        th_resp_free(r);
    }
    /* the seventh is closed right after accept, whichever worker takes it */
    for (int k = 0; k < 4; k++) {
        th_resp_t *r = th_raw(env.e, GET_ONE, strlen(GET_ONE), 5000);
        cr_assert_not_null(r);
        cr_assert_eq(r->status, 0, "attempt %d was served over the cap", k);
        cr_assert(r->closed);
        th_resp_free(r);
    }
    th_close(open[0]);
    /* room again, once the edge has seen that close */
    th_resp_t *r = NULL;
    for (int k = 0; k < 200 && !(r && r->status == 200); k++) {
        th_resp_free(r);
        r = th_raw(env.e, GET_ONE, strlen(GET_ONE), 2000);
    }
    cr_assert(r && r->status == 200);
    th_resp_free(r);
    for (int i = 1; i < 6; i++)
        th_close(open[i]);
}

#define SLOW 1000

Test(edge_limits, slowloris_connections_do_not_stop_a_normal_client, .timeout = 60)
{
    edge_env_t env;
    /* all from 127.0.0.1 here: no per-client cap, it would close most of them at once */
    const char *extra[] = { "--header-timeout=4s", "--max-client-connections=0", NULL };
    edge_env_start(&env, extra);
    static th_conn_t *slow[SLOW];
    static const char part[] = "GET /slow HTTP/1.1\r\nHost: " EDGE_HOST "\r\nX-A: ";
    for (int i = 0; i < SLOW; i++) {
        slow[i] = th_connect(env.e);
        cr_assert_not_null(slow[i], "connection %d: %s", i, th_last_error());
        /* half of them start a request and stall; the others send nothing */
        if (i % 2 == 0)
            cr_assert_eq(th_send(slow[i], part, strlen(part)), 0);
    }
    for (int k = 0; k < 5; k++) {
        th_resp_t *r = edge_get(&env, "/normal?size=64&cc=max-age%3D60");
        cr_assert_eq(r->status, 200, "the normal client is served beside %d stalled connections", SLOW);
        th_resp_free(r);
    }
    /* A stalled request is cut off for its rate after 2 s, a silent
     * connection at header_timeout (4 s), not the 60 s idle timeout. */
    for (int i = 0; i < SLOW; i++)
        cr_assert(th_conn_closed(slow[i], 15000), "connection %d (%s) still open", i, i % 2 ? "silent" : "stalled");
    for (int i = 0; i < SLOW; i++)
        th_close(slow[i]);
    cr_assert_geq(th_log_count(env.edge, " 408 "), SLOW / 2, "the stalled requests were answered 408");
}
