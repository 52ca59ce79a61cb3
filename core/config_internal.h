/* Shared between config.c (settings, files, flags) and config_rules.c
 * ([rule PATTERN] sections). Not a public header: nothing outside those
 * two files may include it. */
#ifndef CDN_CONFIG_INTERNAL_H
#define CDN_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Format a message into err[0, errlen) (nothing when err is NULL or errlen
 * is 0) and return -EINVAL, so a parser can `return config_fail(...)`. */
int config_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* on/off, yes/no, true/false, 1/0 (any case) into *out. Returns 0 or -EINVAL. */
int config_parse_bool(const char *v, bool *out);
/* The index of v among the '|'-separated choices ("a|b|c"), exact match,
 * into *out. Returns 0 or -EINVAL. */
int config_parse_enum(const char *choices, const char *v, unsigned *out);
/* Strip leading and trailing white space in place; returns the new start. */
char *config_trim(char *s);

/* The [rule PATTERN] sections of a file being read (config_rules.c). where
 * names the line for messages ("FILE:LINE"); each returns 0, or -EINVAL
 * (-ENOMEM) with "WHERE: ..." in err. */

/* Open a section at its header line ("[rule PATTERN]", trimmed; modified):
 * a new rule at the end of cfg->rules, with the built-in defaults. */
int config_section_begin(config_t *cfg, const char *where, char *header, char *err, size_t errlen);
/* Set key = value (trimmed, unquoted) in the open section's rule. */
int config_section_key(config_t *cfg, const char *where, const char *key, const char *value, char *err,
                       size_t errlen);
/* Close the open section (where: its header line): the cross-key checks. */
int config_section_end(config_t *cfg, const char *where, char *err, size_t errlen);

#endif
