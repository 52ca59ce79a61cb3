/* prom_scrape: a sample of a node's metrics (see prom_scrape.h). */
#include "prom_scrape.h"

#include <criterion/criterion.h>

#include "harness.h"
#include "prom_parse.h"

double prom_scrape_value(const char *addr, const char *name, const char *label, const char *value)
{
    th_resp_t *r = th_request(addr, "GET", "/.cdn/metrics", NULL, NULL, 0);
    cr_assert_not_null(r, "scrape %s: %s", addr, th_last_error());
    cr_assert_eq(r->status, 200);
    prom_t m;
    cr_assert_eq(prom_parse(r->body.data, r->body.len, &m), 0, "%s: %s", addr, m.err);
    double v = label ? prom_value(&m, name, label, value, NULL) : prom_value(&m, name, NULL);
    prom_free(&m);
    th_resp_free(r);
    return v;
}

typedef struct want {
    const char *addr, *name, *label, *value;
    double n;
} want_t;

static bool reached(void *arg)
{
    const want_t *w = arg;
    return prom_scrape_value(w->addr, w->name, w->label, w->value) == w->n;
}

void prom_wait_value(const char *addr, const char *name, const char *label, const char *value, double want)
{
    want_t w = { addr, name, label, value, want };
    cr_assert(th_wait_until(reached, &w, TH_TIMEOUT_MS), "%s %s{%s=%s} never reached %g (is %g)", addr, name,
              label ? label : "", value ? value : "", want, prom_scrape_value(addr, name, label, value));
}
