/* control: /.cdn/health, /.cdn/metrics, /.cdn/status(.json) (see
 * include/control.h). */
#include "control.h"

#include <llhttp.h>
#include <string.h>

#include "metrics.h"
#include "policy_ratelimit.h"
#include "status.h"

#define NO_STORE "Cache-Control: no-store\r\n"

typedef struct control_path {
    const char *path;
    bool admin;                /* loopback and admin_allow only */
    void (*answer)(preq_t *p);
} control_path_t;

/* May peer read the admin paths: the node's own host, or admin_allow? */
static bool control_admin_allowed(const proxy_t *px, const struct sockaddr *peer)
{
    policy_rl_addr_t a;
    if (!peer || policy_rl_addr_from_sockaddr(peer, &a))
        return false;
    /* The node's own host: 127.0.0.1 and ::1 only. The rest of 127/8 is
     * how a test bed (and the multi-region load test) models other hosts,
     * so it is judged like any other address. */
    static const uint8_t v4_loop[16] = { [10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1 };
    static const uint8_t v6_loop[16] = { [15] = 1 };
    if (memcmp(a.b, v4_loop, sizeof v4_loop) == 0 || memcmp(a.b, v6_loop, sizeof v6_loop) == 0)
        return true;
    return policy_rl_cidrs_match(&proxy_conf_here(px)->admin, &a); /* admin_allow reloads */
}

/* 200 only while the node serves: started, not draining, store working. */
static void answer_health(preq_t *p)
{
    proxy_t *px = p->pw->px;
    const char *why = NULL;
    switch (atomic_load(&px->state)) {
    case PROXY_STARTING: why = "starting\n"; break;
    case PROXY_DRAINING: why = "draining\n"; break;
    default: break;
    }
    if (!why && !store_healthy(px->store))
        why = "store failing\n";
    if (why)
        http_resp_simple(p->c, 503, NO_STORE "Retry-After: 1\r\n", "text/plain", why, strlen(why));
    else
        http_resp_simple(p->c, 200, NO_STORE, "text/plain", "ok\n", 3);
}

static void answer_metrics(preq_t *p)
{
    buf_t out;
    buf_init(&out, 16u << 20);
    int rc = metrics_scrape(p->pw->px->metrics, &out);
    if (rc)
        http_resp_simple(p->c, 500, NO_STORE, "text/plain", "metrics: scrape failed\n", 23);
    else
        http_resp_simple(p->c, 200, NO_STORE, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    buf_free(&out);
}

static const control_path_t paths[] = {
    { "/.cdn/health", false, answer_health },
    { "/.cdn/metrics", true, answer_metrics },
    { "/.cdn/status", true, status_answer_page },
    { "/.cdn/status.json", true, status_answer_json },
};

bool control_request(preq_t *p)
{
    http_req_t *r = p->req;
    if (r->path_len < 6 || memcmp(r->target, "/.cdn/", 6) != 0)
        return false;
    http_conn_set_log_tag(p->c, "control");
    const control_path_t *cp = NULL;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0] && !cp; i++)
        if (strlen(paths[i].path) == r->path_len && memcmp(paths[i].path, r->target, r->path_len) == 0)
            cp = &paths[i];
    if (!cp) {
        http_resp_simple(p->c, 404, NO_STORE, "text/plain", "unknown control path\n", 21);
    } else if (cp->admin && !control_admin_allowed(p->pw->px, http_conn_peer(p->c))) {
        http_resp_simple(p->c, 403, NO_STORE, "text/plain", "forbidden: loopback and admin_allow only\n", 41);
    } else if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        http_resp_simple(p->c, 405, NO_STORE "Allow: GET, HEAD\r\n", "text/plain", "use GET\n", 8);
    } else {
        cp->answer(p);
    }
    preq_end(p);
    return true;
}
