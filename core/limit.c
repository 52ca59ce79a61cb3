/* limit: rate limiting on the request path and the per-client
 * connection cap (see include/limit.h). */
#include "limit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "preq.h"
#include "ratelimit.h"

int limit_setup(proxy_t *px, char *err, size_t errlen)
{
    /* The CIDR lists and counters are the generation's (proxy_conf.c);
     * the table stays across reloads (rate_table_size is restart-only). */
    if (ratelimit_new(&px->rl, px->cfg->rate_table_size)) {
        snprintf(err, errlen, "rate_table_size: cannot allocate %u entries", px->cfg->rate_table_size);
        return -ENOMEM;
    }
    return 0;
}

void limit_teardown(proxy_t *px)
{
    ratelimit_free(px->rl);
    px->rl = NULL;
}

int limit_on_accept(void *ud, const struct sockaddr *peer, unsigned char tag[16])
{
    proxy_worker_t *pw = ud;
    proxy_t *px = pw->px;
    const proxy_conf_t *pc = pw->conf; /* on the worker's thread: its current generation */
    const config_t *cfg = &pc->cfg;
    policy_rl_addr_t a;
    /* A trusted proxy carries many clients: its connections are not one's. */
    if (policy_rl_addr_from_sockaddr(peer, &a) || policy_rl_cidrs_match(&pc->allow, &a) ||
        policy_rl_cidrs_match(&pc->trusted, &a))
        return 1;
    policy_rl_key_t k;
    policy_rl_key_of(&a, &k);
    int64_t now = (int64_t)uv_now(worker_loop(pw->w)); /* the clock of the request path too */
    /* In the node's penalty box with penalty_action = close: closed right
     * after accept (a rule's box is known only once a request names it). */
    if (cfg->penalty_action == CONFIG_PENALTY_CLOSE && cfg->penalty_after_ms &&
        ratelimit_boxed(px->rl, &k, (uint32_t)cfg->nrules, now))
        return -1;
    if (!cfg->max_client_connections)
        return 1;
    switch (ratelimit_conn_open(px->rl, &k, cfg->max_client_connections, now)) {
    case RATELIMIT_CONN_REFUSED:
        return -1;
    case RATELIMIT_CONN_COUNTED:
        memcpy(tag, k.b, 16);
        return 0;
    case RATELIMIT_CONN_UNCOUNTED:
        break;
    }
    return 1;
}

void limit_on_conn_close(void *ud, const unsigned char tag[16])
{
    proxy_t *px = ((proxy_worker_t *)ud)->px;
    policy_rl_key_t k;
    memcpy(k.b, tag, 16);
    ratelimit_conn_close(px->rl, &k);
}

/* The limit of p's request: its rule's own, else the node's. False: none. */
static bool limit_of(const preq_t *p, policy_rl_limit_t *lim, uint32_t *scope)
{
    const config_t *cfg = &p->conf->cfg;
    const policy_rule_t *r = p->rule;
    bool own = r && r->rate_milli && r != &p->conf->defaults;
    if (!own && !cfg->rate_limit.rate_milli)
        return false;
    *lim = (policy_rl_limit_t){
        .rate_milli = own ? r->rate_milli : cfg->rate_limit.rate_milli,
        .burst = own ? r->rate_burst : cfg->rate_limit.burst,
        .penalty_after_ms = (uint32_t)cfg->penalty_after_ms,
        .penalty_ms = cfg->penalty_after_ms ? (uint32_t)cfg->penalty_time_ms : 0,
    };
    *scope = own ? (uint32_t)(r - cfg->rules) : (uint32_t)cfg->nrules;
    return true;
}

/* The client: the peer, or from a trusted proxy's X-Forwarded-For. */
static bool client_of(const preq_t *p, policy_rl_addr_t *out)
{
    const proxy_conf_t *pc = p->conf;
    policy_rl_addr_t peer;
    if (policy_rl_addr_from_sockaddr(http_conn_peer(p->c), &peer))
        return false;
    if (pc->trusted.n)
        policy_rl_xff_client(&peer, &p->req->hdrs, &pc->trusted, out);
    else
        *out = peer;
    return true;
}

static int64_t now_ms(const preq_t *p)
{
    return (int64_t)uv_now(worker_loop(p->pw->w));
}

/* The policy's name in the RateLimit fields: the rule's pattern, or the node's name. */
static const char *policy_name(const preq_t *p)
{
    return p->rl.scope < p->conf->cfg.nrules ? p->rule->pattern : p->conf->cfg.name;
}

bool limit_admit(preq_t *p)
{
    proxy_t *px = p->pw->px;
    policy_rl_addr_t a;
    if (!limit_of(p, &p->rl.lim, &p->rl.scope) || !client_of(p, &a) || policy_rl_cidrs_match(&p->conf->allow, &a))
        return true;
    policy_rl_key_of(&a, &p->rl.key);
    policy_rl_result_t res;
    ratelimit_take(px->rl, &p->rl.key, p->rl.scope, &p->rl.lim, 1, now_ms(p), &res);
    if (res.admitted) {
        p->rl.on = true;
        return true;
    }
    atomic_fetch_add(&p->conf->limited[p->rl.scope], 1);
    if (res.penalized && p->conf->cfg.penalty_action == CONFIG_PENALTY_CLOSE) {
        http_conn_set_log_tag(p->c, "penalty-box");
        http_conn_drop(p->c); /* ends p through its abort callback */
        return false;
    }
    char pol[POLICY_RL_FIELD_BYTES], lim[POLICY_RL_FIELD_BYTES], lines[3 * POLICY_RL_FIELD_BYTES], body[128];
    const char *name = policy_name(p);
    if (policy_rl_policy_field(name, &p->rl.lim, pol, sizeof pol) < 0 ||
        policy_rl_limit_field(name, &res, lim, sizeof lim) < 0) {
        name = "rate"; /* a pattern a String cannot hold: a plain name */
        policy_rl_policy_field(name, &p->rl.lim, pol, sizeof pol);
        policy_rl_limit_field(name, &res, lim, sizeof lim);
    }
    snprintf(lines, sizeof lines, "Retry-After: %u\r\nRateLimit-Policy: %s\r\nRateLimit: %s\r\nCache-Control: no-store\r\n",
             res.retry_after_s, pol, lim);
    snprintf(body, sizeof body, "too many requests: retry in %u s\n", res.retry_after_s);
    http_conn_set_log_tag(p->c, res.penalized ? "penalty-box" : "rate-limited");
    p->fwd = "bypass";
    preq_respond_with(p, 429, res.penalized ? "penalty-box" : "rate-limited", body, lines);
    return false;
}

void limit_charge(preq_t *p)
{
    unsigned cost = p->conf->cfg.miss_cost;
    if (!p->rl.on || cost <= 1)
        return;
    p->rl.on = false; /* once per request */
    ratelimit_charge(p->pw->px->rl, &p->rl.key, p->rl.scope, &p->rl.lim, cost - 1, now_ms(p), NULL);
}
