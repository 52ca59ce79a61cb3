/* config: a node's settings, from one table, and its `[rule PATTERN]`
 * sections.
 *
 * The table in core/config_table.c is the single source of truth: the file
 * parser, `--key=value` flags, `--help` and the README's configuration table
 * are all produced from it. Every setting has a default, so a node starts
 * with no file at all. The rule keys have their own table
 * (config_rule_settings, core/config_rules.c); what a rule decides is
 * policy_rules.h.
 *
 * This is the config/CLI boundary: functions that can fail return 0 or a
 * negative errno and put a message for the user in err[0, errlen). */
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
    CONFIG_RATE,     /* config_parse_rate syntax, into a config_rate_t */
    CONFIG_CIDRS,    /* IPv4/IPv6 addresses and CIDRs, comma- or space-separated */
    CONFIG_NAMES,    /* comma-separated request header names (tokens) that a
                      * node may forward as sent: not Host, Via,
                      * X-Forwarded-For nor a hop-by-hop field */
} config_type_t;

/* A request rate limit: "off", or "RATE" or "RATE burst N" where RATE is
 * N (per second), N/s, N/m or N/h, N with up to three decimals (0.5/s).
 * rate_milli: thousandths of a request per second (0 = off); burst: the
 * bucket (default: one second's worth, at least 1). */
typedef struct config_rate {
    uint32_t rate_milli;
    uint32_t burst;
} config_rate_t;

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
    unsigned access_log_format;   /* index into "text|json" */
    char admin_allow[1024];       /* CIDRs besides loopback that may read metrics and status */
    uint64_t drain_delay_ms;      /* SIGTERM: serve (health 503) this long, then stop accepting */
    uint64_t drain_timeout_ms;    /* then in-flight requests get this long */
    bool forward_host;
    char pass_headers[1024];      /* forwarding headers passed upstream, keyed */
    char pass_headers_unkeyed[1024]; /* ... passed upstream, not keyed */
    bool forward_cdn_cache_control;
    bool forward_surrogate_keys;  /* Surrogate-Key / Cache-Tag reach the next hop */
    unsigned max_tags;            /* tags indexed per object */
    unsigned max_tag_bytes;       /* longest tag indexed */
    char purge_token_file[512];   /* "": purging is off */
    char purge_peers[1024];       /* host:port list a purge is passed on to */
    uint64_t purge_retry_for_ms;
    unsigned max_connections_total; /* all workers' client connections together */
    config_rate_t rate_limit;     /* per client, for requests no rule limits itself (0: off) */
    unsigned miss_cost;           /* tokens a request that goes upstream (or transforms) costs */
    unsigned rate_table_size;     /* clients the shared table remembers */
    uint64_t penalty_after_ms;    /* over the limit this long -> penalty box (0: no box) */
    uint64_t penalty_time_ms;
    unsigned penalty_action;      /* index into "429|close" */
    char trusted_proxies[1024];   /* CIDRs whose X-Forwarded-For names the client */
    char allowlist[1024];         /* CIDRs never limited */
    unsigned max_client_connections; /* open connections per client (0: no bound) */
    unsigned max_requests_per_connection;
    unsigned min_recv_rate;       /* bytes/s a request must arrive at (0: off) */
    unsigned image_workers;       /* transform threads; 0 = number of cores */
    unsigned image_queue;         /* transforms that may wait for a thread (503 beyond) */
    uint64_t image_max_pixels;    /* source width x height */
    uint64_t image_max_size;      /* source bytes */
    unsigned image_max_frames;    /* source frames / pages */
    unsigned image_max_side;      /* output width and height */
    char image_signing_key_file[512]; /* "": image URLs need no signature */
    /* [rule PATTERN] sections, most specific first (policy_rules_sort);
     * owned, freed by config_free. */
    policy_rule_t *rules;
    size_t nrules;
} config_t;

enum { CONFIG_SYNC_COMMIT = 0, CONFIG_SYNC_NONE = 1 };
enum { CONFIG_PENALTY_429 = 0, CONFIG_PENALTY_CLOSE = 1 }; /* penalty_action */
enum { CONFIG_LOG_TEXT = 0, CONFIG_LOG_JSON = 1 }; /* access_log_format */
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
 * "--flag"). Returns 0, or -EINVAL with a message "WHERE: ..." in err. */
int config_set(config_t *cfg, unsigned prog, const char *key, const char *value,
               const char *where, char *err, size_t errlen);
/* Load a file over cfg: top-level `key = value` lines, then `[rule PATTERN]`
 * sections whose keys are the rule settings (config_rule_settings).
 * Returns 0, or a negative errno with "FILE[:LINE]: ..." in err: -EINVAL
 * for what the file says ("FILE:LINE: expected ..."), the open(2) error
 * when it cannot be opened, -EFBIG past 16 MiB, -ENOMEM, -EIO. On error
 * no rule of the file is kept. */
int config_load_file(config_t *cfg, unsigned prog, const char *path, char *err, size_t errlen);
/* Load from an in-memory text named name (used for the embedded default).
 * Returns as config_load_file. */
int config_load_string(config_t *cfg, unsigned prog, const char *name, const char *text,
                       char *err, size_t errlen);
/* Parse the command line: -c FILE, --key=value, --help. Flags win over the
 * file whatever their order. Returns 0 to run, 1 when --help,
 * --config-markdown or --rule-markdown was printed, or a negative errno
 * with err set on a bad argument or file (as config_load_file). */
int config_from_args(config_t *cfg, unsigned prog, const char *progname, int argc, char **argv,
                     char *err, size_t errlen);
/* Print --help (usage and every setting with default and doc). */
void config_print_help(FILE *out, unsigned prog, const char *progname);
/* Print the README's markdown configuration table. */
void config_print_markdown(FILE *out, unsigned prog);
/* `PROG --check-config FILE [URL]`: validate FILE; with URL, print the
 * rule that applies to it and its cache key. Returns the exit status. */
int config_check(unsigned prog, const char *progname, const char *file, const char *url);
/* Parse a size ("16K", "1G", "123"); returns 0 or -EINVAL. */
int config_parse_size(const char *s, uint64_t *out);
/* Parse a duration into milliseconds ("10s", "250ms", "2m", "1d", "5" = 5 s);
 * returns 0 or -EINVAL. */
int config_parse_duration(const char *s, uint64_t *out_ms);
/* Parse a rate limit (config_rate_t's syntax); 0 or -EINVAL. */
int config_parse_rate(const char *s, config_rate_t *out);
/* Split "host:port" / "[v6]:port" into host and port; 0 or -EINVAL. */
int config_parse_addr(const char *s, char *host, size_t hostlen, unsigned *port);

/* ---- [rule PATTERN] sections (core/config_rules.c) ----
 *
 * One section fills one policy_rule_t, starting from policy_rule_defaults:
 *   config_rule_parse_pattern(&r, PATTERN, err, sizeof err);
 *   config_rule_set(&r, "default_ttl", "1h", err, sizeof err);  (per line)
 *   config_rule_finish(&r, err, sizeof err);
 * config_load_file does this and prefixes messages with FILE:LINE. */

/* Largest duration a rule accepts, seconds (RFC 9111 delta-seconds cap). */
#define CONFIG_RULE_DURATION_MAX INT64_C(2147483648)

typedef enum config_rule_type {
    CONFIG_RULE_DURATION, /* config_parse_duration syntax, whole seconds; "none" where the default is */
    CONFIG_RULE_BOOL,     /* on/off, yes/no, true/false, 1/0 */
    CONFIG_RULE_ENUM,     /* one of choices ("a|b") */
    CONFIG_RULE_LIST,     /* a mode word, then space- or comma-separated items */
    CONFIG_RULE_WIDTHS,   /* "any", or ascending pixel widths, space- or comma-separated */
    CONFIG_RULE_RATE,     /* "none" (the node's rate_limit), or config_parse_rate syntax */
} config_rule_type_t;

/* One rule key: the parser, --help and the README rule table come from
 * these rows. */
typedef struct config_rule_setting {
    const char *key;
    config_rule_type_t type;
    const char *def;     /* default, in file syntax: what policy_rule_defaults sets */
    const char *choices; /* ENUM / LIST: the accepted forms, '|'-separated */
    size_t offset;       /* of the field in policy_rule_t */
    const char *doc;     /* one line */
} config_rule_setting_t;

/* The table, terminated by key == NULL; row i is bit i of policy_rule_t.set.
 * Static lifetime. */
extern const config_rule_setting_t config_rule_settings[];

/* Parse PATTERN of "[rule PATTERN]" into r (settings untouched):
 *   "/PATH-GLOB"  "HOST-GLOB/PATH-GLOB"  "*" (everything).
 * '*' matches any run of bytes, '/' included ("**" is the same as "*"),
 * '?' one byte. The host (letters, digits, "-._", '*', '?', or an IPv6
 * literal in brackets; no port) is matched case-insensitively without the
 * request's port and trailing dot; a host of "*" is the same as none.
 * The path is matched case-sensitively against the normalised path
 * without the query, so the pattern's escapes are normalised the same way
 * ("%7e" -> "~", "%2f" -> "%2F", raw bytes the key escapes get escaped).
 * Rejected with a message in err: empty, too long (also once escaped),
 * whitespace or control bytes, a host without a path ("example.com": write
 * example.com followed by a path glob), a port, a bad host character, '['
 * or ']' in the path (no character classes), '#', a bad escape, "." or
 * ".." segments (never in a normalised path). Returns 0 or -EINVAL. */
int config_rule_parse_pattern(policy_rule_t *r, const char *pattern, char *err, size_t errlen);
/* Set one key from its file value (NUL-terminated, already trimmed and
 * unquoted). Returns 0, or -EINVAL with "KEY: expected ..., got 'VALUE'"
 * (or "unknown rule key 'KEY'") in err (r unchanged); the caller prefixes
 * FILE:LINE. */
int config_rule_set(policy_rule_t *r, const char *key, const char *value, char *err, size_t errlen);
/* Cross-key checks once a section is complete: override without
 * default_ttl, min_ttl > max_ttl, default_ttl outside [min_ttl, max_ttl],
 * keep / drop without items. Returns 0 or -EINVAL with err set. */
int config_rule_finish(const policy_rule_t *r, char *err, size_t errlen);
/* Print the pattern and every effective setting, one "key = value" line
 * each, those left at their default marked "# default" (r NULL: the
 * built-in defaults). For `edge --check-config FILE URL`. */
void config_rule_print(FILE *out, const policy_rule_t *r);
/* Print the rule keys for --help ("  key = default  doc"). */
void config_rule_print_help(FILE *out);
/* Print the README's markdown table of rule keys. */
void config_rule_print_markdown(FILE *out);
/* The rule for a normalised cache key ("scheme://host/path?query", from
 * policy_cache_key), matched on its host and path; NULL when none matches
 * (the built-in defaults apply). Valid as long as cfg. */
const policy_rule_t *config_rule_for_key(const config_t *cfg, const char *key, size_t len);

#endif
