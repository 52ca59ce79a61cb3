/* prom_scrape: one sample of a node's /.cdn/metrics, scraped over the wire
 * and read with the strict parser (prom_parse.h), for tests that check a
 * counter or two rather than the whole exposition. */
#ifndef CDN_TEST_PROM_SCRAPE_H
#define CDN_TEST_PROM_SCRAPE_H

#include <stdbool.h>

/* Sample name of addr's metrics with at most one label pair (label NULL:
 * none), or -1 when absent. Asserts a 200 that parses. */
double prom_scrape_value(const char *addr, const char *name, const char *label, const char *value);
/* Scrape until that sample equals want (bounded, TH_TIMEOUT_MS): a
 * response is counted as it ends, maybe just after the client has it.
 * Asserts it did, naming the sample and its last value. */
void prom_wait_value(const char *addr, const char *name, const char *label, const char *value, double want);

#endif
