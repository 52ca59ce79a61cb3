/* reload: SIGHUP re-reads the configuration (-c FILE, then the command
 * line's flags, as at start) and publishes it as the next generation
 * (include/proxy_conf.h). The main thread builds and checks it beside the
 * running one; each worker then switches its cached generation in a
 * posted task, so requests in flight finish under the generation they
 * started with and the next ones take the new one. A file that does not
 * parse or build is refused whole: the running generation stays. */
#include "reload.h"

#include <stdlib.h>
#include <string.h>

#include "config_diff.h"
#include "http_server.h"
#include "log.h"

/* A health checker closed by a reload: freed on a later tick, once its
 * loop handles are closed, with the generation whose pool it read. */
typedef struct proxy_retired {
    struct proxy_retired *next;
    health_t *health;
    proxy_conf_t *conf;        /* held: the checker's pool lives in it */
    bool aged;                 /* one tick has passed since it was closed */
} proxy_retired_t;

const proxy_conf_t *proxy_conf_here(const proxy_t *px)
{
    worker_t *w = worker_current();
    proxy_worker_t *pw = w ? worker_state(w) : NULL;
    /* px->conf is written by the main thread only (a reload), which is
     * also the only other caller. */
    return pw && pw->px == px && pw->conf ? pw->conf : px->conf;
}

static bool wants_health(const proxy_conf_t *c)
{
    /* One worker checks the shields (edge) or origins (shield); every
     * worker reads the pool's state. An edge's lone origin is judged by
     * its answers alone. */
    return c->primary_shields || c->cfg.program == CONFIG_SHIELD;
}

void reload_health_start(proxy_worker_t *pw)
{
    const proxy_conf_t *c = pw->conf;
    if (worker_index(pw->w) != 0 || !wants_health(c))
        return;
    pw->health = health_start(worker_loop(pw->w), c->primary, c->primary_shields ? "/.cdn/health" : c->cfg.health_path,
                              c->cfg.health_interval_ms, c->cfg.health_timeout_ms);
}

/* Does worker 0's checker need a restart to follow c? */
static bool health_changed(const proxy_conf_t *old, const proxy_conf_t *c)
{
    return wants_health(old) != wants_health(c) || old->primary_ref != c->primary_ref ||
           old->cfg.health_interval_ms != c->cfg.health_interval_ms ||
           old->cfg.health_timeout_ms != c->cfg.health_timeout_ms ||
           strcmp(old->cfg.health_path, c->cfg.health_path) != 0;
}

void reload_retired_free(proxy_worker_t *pw, bool all)
{
    proxy_retired_t **pp = &pw->retired;
    while (*pp) {
        proxy_retired_t *r = *pp;
        if (!all && !r->aged) {
            r->aged = true;
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        health_free(r->health);
        proxy_conf_unref(r->conf);
        free(r);
    }
}

/* The last worker to switch says so: the reload is in effect everywhere. */
static void switched(proxy_conf_t *c)
{
    if (atomic_fetch_sub(&c->pending, 1) == 1)
        log_info("reload: applied (generation %u)", c->gen);
}

/* What a worker gets on reload: the generation (with a reference for it)
 * and, for worker 0, a retired-list node made beforehand, so closing the
 * old health checker cannot fail. */
typedef struct switch_msg {
    proxy_conf_t *conf;
    proxy_retired_t *spare;
    struct proxy_conf_use *use; /* made beforehand too: retiring cannot fail */
} switch_msg_t;

/* A retired generation this worker's requests still read. */
typedef struct proxy_conf_use {
    proxy_conf_t *conf;
    unsigned long users;
    struct proxy_conf_use *next;
} proxy_conf_use_t;

proxy_conf_t *reload_conf_hold(proxy_worker_t *pw)
{
    pw->conf_users++;
    return pw->conf;
}

void reload_conf_release(proxy_worker_t *pw, proxy_conf_t *c)
{
    if (c == pw->conf) {
        pw->conf_users--;
        return;
    }
    for (proxy_conf_use_t **u = &pw->conf_old; *u; u = &(*u)->next) {
        if ((*u)->conf != c)
            continue;
        proxy_conf_use_t *dead = *u;
        if (--dead->users)
            return;
        *u = dead->next;
        proxy_conf_unref(dead->conf);
        free(dead);
        return;
    }
}

void reload_conf_uses_free(proxy_worker_t *pw)
{
    while (pw->conf_old) {
        proxy_conf_use_t *u = pw->conf_old;
        pw->conf_old = u->next;
        proxy_conf_unref(u->conf);
        free(u);
    }
}

/* Keep old alive (one reference of its own) while this worker's requests
 * that started under it run. */
static void retire_users(proxy_worker_t *pw, proxy_conf_t *old, proxy_conf_use_t *spare)
{
    if (!pw->conf_users) {
        free(spare);
        return;
    }
    proxy_conf_ref(old);
    *spare = (proxy_conf_use_t){ .conf = old, .users = pw->conf_users, .next = pw->conf_old };
    pw->conf_old = spare;
    pw->conf_users = 0;
}

/* On each worker: take the new generation. */
static void on_switch(void *arg)
{
    switch_msg_t *m = arg;
    proxy_conf_t *c = m->conf;
    proxy_worker_t *pw = worker_state(worker_current());
    proxy_conf_t *old = pw->conf;
    retire_users(pw, old, m->use);
    pw->conf = c;
    http_server_opts_t so;
    http_server_opts_from_config(&so, &c->cfg);
    http_server_set_limits(pw->srv, &so);
    /* Once stopping, no new checker: w_close may have run already. */
    if (m->spare && !worker_stopping(pw->w) && health_changed(old, c)) {
        if (pw->health) {
            proxy_retired_t *r = m->spare;
            m->spare = NULL;
            health_close(pw->health);
            r->health = pw->health;
            r->conf = old; /* our reference moves to it: the checker read its pool */
            old = NULL;
            r->next = pw->retired;
            pw->retired = r;
            pw->health = NULL;
        }
        reload_health_start(pw);
    }
    free(m->spare);
    free(m);
    proxy_conf_unref(old);
    switched(c);
}

typedef struct diff_log {
    buf_t lines;               /* "Lreload: ...\n" lines (L: W warn, I info), logged once the generation is built */
} diff_log_t;

static void on_diff(void *ud, const char *key, const char *from, const char *to, bool restart)
{
    diff_log_t *d = ud;
    if (restart)
        buf_printf(&d->lines, "Wreload: %s changed: needs a restart; kept %s\n", key, from);
    else if (strcmp(key, "rules") == 0)
        buf_printf(&d->lines, "Ireload: %s -> %s\n", from, to);
    else if (strcmp(key, "rule") == 0)
        buf_printf(&d->lines, "Ireload: [rule %s] %s\n", from, to);
    else
        buf_printf(&d->lines, "Ireload: %s %s -> %s\n", key, from, to);
}

/* What the running node cannot take although the file is valid. */
static bool check_live(const proxy_t *px, const config_t *next, char *err, size_t errlen)
{
    for (size_t i = 0; i < next->nrules; i++) {
        if (next->rules[i].image && !px->image_pool) {
            snprintf(err, errlen, "[rule %s]: image = on needs a restart: the node started without image threads",
                     next->rules[i].pattern);
            return false;
        }
    }
    return true;
}

void reload_run(proxy_t *px)
{
    char err[1024];
    config_t *next = calloc(1, sizeof *next);
    if (!next) {
        log_error("reload: refused: out of memory; the running configuration stays");
        atomic_fetch_add(&px->reloads_refused, 1);
        return;
    }
    config_defaults(next, px->prog);
    int rc = config_from_args(next, px->prog, px->progname, px->argc, px->argv, err, sizeof err);
    if (rc) {
        if (rc < 0)
            log_error("reload: refused: %s; the running configuration stays", err);
        atomic_fetch_add(&px->reloads_refused, 1);
        config_free(next);
        free(next);
        return;
    }
    diff_log_t d;
    buf_init(&d.lines, 0);
    size_t n = config_diff(&px->conf->cfg, next, px->prog, on_diff, &d);
    proxy_conf_t *nc = NULL;
    if (!check_live(px, next, err, sizeof err) || proxy_conf_new(&nc, next, px->conf, err, sizeof err)) {
        log_error("reload: refused: %s; the running configuration stays", err);
        atomic_fetch_add(&px->reloads_refused, 1);
        buf_free(&d.lines);
        config_free(next);
        free(next);
        return;
    }
    for (size_t i = 0; i < d.lines.len;) {
        const char *nl = memchr(d.lines.data + i, '\n', d.lines.len - i);
        size_t l = (size_t)(nl - d.lines.data) - i;
        log_msg(d.lines.data[i] == 'W' ? LOG_WARN : LOG_INFO, "%.*s", (int)l - 1, d.lines.data + i + 1);
        i += l + 1;
    }
    if (!n)
        log_info("reload: no setting changed (key files read again)");
    buf_free(&d.lines);
    log_set_level((int)nc->cfg.log_level);
    proxy_conf_t *old = px->conf;
    atomic_fetch_add(&px->reloads_applied, 1);
    atomic_store(&nc->pending, px->nworkers);
    px->conf = nc;
    for (unsigned i = 0; i < px->nworkers; i++) {
        switch_msg_t *m = calloc(1, sizeof *m);
        if (m && (!(m->use = calloc(1, sizeof *m->use)) || (i == 0 && !(m->spare = calloc(1, sizeof *m->spare))))) {
            free(m->use);
            free(m);
            m = NULL;
        }
        if (m) {
            m->conf = nc;
            proxy_conf_ref(nc);
        }
        if (!m || worker_post(px->workers[i], on_switch, m)) {
            /* The worker is stopping (or no memory): it keeps the generation it has. */
            if (m) {
                proxy_conf_unref(nc);
                free(m->spare);
                free(m->use);
                free(m);
            }
            log_warn("reload: worker %u keeps the previous configuration (stopping, or out of memory)", i);
            switched(nc);
        }
    }
    proxy_conf_unref(old);
    config_free(next);
    free(next);
}
