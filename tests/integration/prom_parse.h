/* prom_parse: a strict reader of the Prometheus text exposition format
 * 0.0.4, for the tests: it refuses what a scraper might merely tolerate.
 * Checked: each family has one "# HELP" then one "# TYPE" line before its
 * samples, and its samples are contiguous; metric and label names; label
 * syntax, escapes (\\ \" \n only) and no label named twice; values
 * (floats, NaN, +Inf, -Inf; no timestamps); counter names end in _total
 * and are never negative; no series twice; every histogram series has
 * buckets with increasing le ending in "+Inf", cumulative counts that never
 * fall, a _sum, and a _count equal to its +Inf bucket. */
#ifndef CDN_TEST_PROM_PARSE_H
#define CDN_TEST_PROM_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define PROM_LABELS_MAX 8

typedef struct prom_sample {
    char *name;
    unsigned nlabels;
    char *lname[PROM_LABELS_MAX], *lvalue[PROM_LABELS_MAX]; /* unescaped */
    double value;
    char type[16];             /* its family's TYPE */
} prom_sample_t;

typedef struct prom {
    prom_sample_t *s;
    size_t n, cap;
    char err[512];             /* why prom_parse failed: the line and the reason */
} prom_t;

/* Parse text[0, len) into *out (free with prom_free, even on failure).
 * Returns 0, or -1 with out->err set. */
int prom_parse(const char *text, size_t len, prom_t *out);
void prom_free(prom_t *p);
/* The sample named name whose labels are exactly the (label, value) pairs
 * that follow, ended by NULL; NULL when there is none. */
const prom_sample_t *prom_find(const prom_t *p, const char *name, ...);
/* Its value, or -1 when there is none (the tests' values are never -1). */
double prom_value(const prom_t *p, const char *name, ...);
/* How many samples are named name (any labels). */
size_t prom_count(const prom_t *p, const char *name);
/* The value of label of sample s, or NULL. */
const char *prom_label(const prom_sample_t *s, const char *label);

#endif
