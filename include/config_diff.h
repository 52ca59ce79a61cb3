/* config_diff: what a reload changes, setting by setting (core/config_diff.c).
 * Pure: compares two loaded configurations and formats values the way the
 * file writes them, for the reload's log lines. */
#ifndef CDN_CONFIG_DIFF_H
#define CDN_CONFIG_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* One difference. key: a setting's name, "rules" (from / to: "3 rules"),
 * or "rule" (from: the pattern, to: "added", "removed" or "changed").
 * restart: a setting a running node cannot change (its running value is
 * kept: from). The strings live only for the call. */
typedef void (*config_diff_fn)(void *ud, const char *key, const char *from, const char *to, bool restart);

/* True for the settings only a restart applies (listen, workers, cache_dir...). */
bool config_restart_only(const char *key);
/* Setting s of cfg as the file would write it ("20/s", "10s", "64M", "on")
 * into out[0, cap) (always NUL-terminated). */
void config_format_value(const config_setting_t *s, const config_t *cfg, char *out, size_t cap);
/* Report every setting of program prog that differs between running and
 * next, then the rules (by pattern), to fn. Restart-only settings that
 * differ are reported with restart set and copied back from running into
 * next, so next holds what will really run. Returns the number of
 * differences reported that a reload applies (restart-only ones excluded). */
size_t config_diff(const config_t *running, config_t *next, unsigned prog, config_diff_fn fn, void *ud);

#endif
