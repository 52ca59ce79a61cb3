/* config: a node's settings, from one table.
 *
 * The table in core/config_table.c is the single source of truth: the file
 * parser, `--key=value` flags, `--help` and the README's configuration table
 * are all produced from it. Every setting has a default, so a node starts
 * with no file at all. */
#ifndef CDN_CONFIG_H
#define CDN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "policy_rules.h"

/* Which programs a setting applies to. */
enum { CONFIG_EDGE = 1, CONFIG_SHIELD = 2, CONFIG_ALL = 3 };

typedef enum config_type {
    CONFIG_STR,      /* free text */
    CONFIG_UINT,     /* unsigned integer within [min, max] */
    CONFIG_SIZE,     /* bytes, with optional K/M/G suffix (powers of 1024) */
    CONFIG_DURATION, /* milliseconds; suffix ms, s, m, h (bare number = s) */
    CONFIG_BOOL,     /* on/off, yes/no, true/false, 1/0 */
    CONFIG_ENUM,     /* one of a '|'-separated list, stored as its index */
    CONFIG_ADDR,     /* host:port (IPv4 or [IPv6]) */
    CONFIG_NAMES,    /* comma-separated request header names (tokens) that a
                      * node may forward as sent: not Host, Via,
                      * X-Forwarded-For nor a hop-by-hop field */
} config_type_t;

typedef struct config {
    unsigned program;             /* CONFIG_EDGE or CONFIG_SHIELD (set by config_defaults) */
    char name[64];
    char region[64];
    char listen[128];
    unsigned workers;
    char cache_dir[512];
    uint64_t cache_size;
    uint64_t max_object_size;
    unsigned cache_sync;          /* index into "commit|none" */
    char origin[1024];            /* base URL(s), comma-separated; "none" = no origin */
    char shields[1024];           /* edge: shield host:port list, comma-separated */
    uint64_t health_interval_ms;
    uint64_t health_timeout_ms;
    char health_path[256];        /* shield: path checked on each origin */
    unsigned eject_after;
    bool eject_on_5xx;            /* an origin's 502/503/504 counts toward ejection */
    uint64_t eject_backoff_ms;
    uint64_t eject_backoff_max_ms;
    uint64_t origin_connect_timeout_ms;
    uint64_t origin_timeout_ms;
    uint64_t max_header_size;
    uint64_t max_uri_size;
    uint64_t max_body_size;
    uint64_t header_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t send_timeout_ms;
    unsigned max_connections;
    char access_log[512];
    unsigned log_level;           /* index into "error|warn|info|debug" */
    bool forward_host;
    char pass_headers[1024];      /* forwarding headers passed upstream, keyed */
    char pass_headers_unkeyed[1024]; /* ... passed upstream, not keyed */
    bool forward_cdn_cache_control;
    /* [rule PATTERN] sections, most specific first (policy_rules_sort);
     * owned, freed by config_free. */
    policy_rule_t *rules;
    size_t nrules;
} config_t;

enum { CONFIG_SYNC_COMMIT = 0, CONFIG_SYNC_NONE = 1 };
enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

typedef struct config_setting {
    const char *key;
    config_type_t type;
    unsigned programs;     /* CONFIG_EDGE | CONFIG_SHIELD */
    const char *def;       /* default, in the same syntax as the file */
    uint64_t min, max;     /* bounds for UINT / SIZE / DURATION (max 0 = none) */
    const char *choices;   /* ENUM: "a|b|c" */
    size_t offset;         /* into config_t */
    size_t size;           /* STR: buffer size */
    const char *doc;       /* one line */
} config_setting_t;

/* The table; terminated by an entry with key == NULL. Static lifetime. */
extern const config_setting_t config_settings[];

/* Free what loading allocated (the rules). */
void config_free(config_t *cfg);
/* Fill cfg with every default for program prog (CONFIG_EDGE / CONFIG_SHIELD). */
void config_defaults(config_t *cfg, unsigned prog);
/* Parse one key = value. where names the source for messages ("FILE:LINE" or
 * "--flag"). Returns 0, or -1 with a message "WHERE: ..." in err. */
int config_set(config_t *cfg, unsigned prog, const char *key, const char *value,
               const char *where, char *err, size_t errlen);
/* Load a file over cfg: top-level `key = value` lines, then `[rule PATTERN]`
 * sections whose keys are the rule settings (policy_rules.h). Returns 0,
 * or -1 with "FILE:LINE: expected ..." in err. */
int config_load_file(config_t *cfg, unsigned prog, const char *path, char *err, size_t errlen);
/* Load from an in-memory text named name (used for the embedded default). */
int config_load_string(config_t *cfg, unsigned prog, const char *name, const char *text,
                       char *err, size_t errlen);
/* Parse the command line: -c FILE, --key=value, --help. Flags win over the
 * file whatever their order. Returns 0 to run, 1 when --help/--config-markdown
 * was printed, -1 with err set on a bad argument. */
int config_from_args(config_t *cfg, unsigned prog, const char *progname, int argc, char **argv,
                     char *err, size_t errlen);
/* Print --help (usage and every setting with default and doc). */
void config_print_help(FILE *out, unsigned prog, const char *progname);
/* Print the README's markdown configuration table. */
void config_print_markdown(FILE *out, unsigned prog);
/* The rule for a normalised cache key ("scheme://host/path?query", from
 * policy_cache_key), matched on its host and path; NULL when none matches
 * (the built-in defaults apply). Valid as long as cfg. */
const policy_rule_t *config_rule_for_key(const config_t *cfg, const char *key, size_t len);
/* `PROG --check-config FILE [URL]`: validate FILE; with URL, print the
 * rule that applies to it and its cache key. Returns the exit status. */
int config_check(unsigned prog, const char *progname, const char *file, const char *url);
/* Parse a size ("16K", "1G", "123"); returns 0 or -1. */
int config_parse_size(const char *s, uint64_t *out);
/* Parse a duration into milliseconds ("10s", "250ms", "2m", "5" = 5 s); 0 or -1. */
int config_parse_duration(const char *s, uint64_t *out_ms);
/* Split "host:port" / "[v6]:port" into host and port; 0 or -1. */
int config_parse_addr(const char *s, char *host, size_t hostlen, unsigned *port);

#endif
