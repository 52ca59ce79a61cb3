/* The settings table: one row per key. The README table and --help are
 * generated from these rows (`edge --config-markdown`), so a setting is
 * documented exactly once, here. */
#include <stddef.h>

#include "config.h"

#define STR(k, progs, def, doc) { #k, CONFIG_STR, progs, def, 0, 0, NULL, offsetof(config_t, k), sizeof(((config_t *)0)->k), doc }
#define NUM(k, t, progs, def, lo, hi, doc) { #k, t, progs, def, lo, hi, NULL, offsetof(config_t, k), sizeof(((config_t *)0)->k), doc }
#define DUR(k, field, progs, def, lo, hi, doc) { #k, CONFIG_DURATION, progs, def, lo, hi, NULL, offsetof(config_t, field), sizeof(((config_t *)0)->field), doc }
#define ENUM(k, progs, def, choices, doc) { #k, CONFIG_ENUM, progs, def, 0, 0, choices, offsetof(config_t, k), sizeof(((config_t *)0)->k), doc }

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define HOUR_MS 3600000ull

const config_setting_t config_settings[] = {
    STR(name, CONFIG_EDGE, "edge-1", "node name, shown in Cache-Status and logs"),
    STR(name, CONFIG_SHIELD, "shield-1", "node name, shown in Cache-Status and logs"),
    STR(region, CONFIG_ALL, "local", "region label"),
    { "listen", CONFIG_ADDR, CONFIG_EDGE, "127.0.0.1:8080", 0, 0, NULL, offsetof(config_t, listen),
      sizeof(((config_t *)0)->listen),
      "host:port to serve on; port 0 picks a free port (printed as `listening on HOST:PORT`)" },
    { "listen", CONFIG_ADDR, CONFIG_SHIELD, "127.0.0.1:8090", 0, 0, NULL, offsetof(config_t, listen),
      sizeof(((config_t *)0)->listen),
      "host:port to serve on; port 0 picks a free port (printed as `listening on HOST:PORT`)" },
    NUM(workers, CONFIG_UINT, CONFIG_ALL, "0", 0, 256, "worker threads, each with its own event loop; 0 = number of cores"),
    STR(cache_dir, CONFIG_EDGE, "./var/cache", "directory of the LMDB cache (created if missing)"),
    STR(cache_dir, CONFIG_SHIELD, "./var/shield-cache", "directory of the LMDB cache (created if missing)"),
    NUM(cache_size, CONFIG_SIZE, CONFIG_ALL, "1G", 1 * MiB, 1024 * GiB,
        "disk cache bound; the least recently used objects are evicted to stay under it"),
    NUM(max_object_size, CONFIG_SIZE, CONFIG_ALL, "64M", 1, 16 * GiB,
        "larger responses pass through uncached"),
    ENUM(cache_sync, CONFIG_ALL, "commit", "commit|none",
         "commit: fsync data at every batched commit (survives power loss); none: leave flushing to the OS (survives process crashes only)"),
    STR(origin, CONFIG_EDGE, "http://127.0.0.1:8081",
        "origin base URL (scheme://host[:port]); with shields, used only when every shield is down; none = no origin"),
    STR(origin, CONFIG_SHIELD, "http://127.0.0.1:8081",
        "origin pool: base URLs, comma-separated; each key goes to its rendezvous-ranked origin, failing over to the next"),
    STR(shields, CONFIG_EDGE, "", "shield host:port list, comma-separated; each key goes to its rendezvous-ranked shield (empty: straight to the origin)"),
    DUR(health_interval, health_interval_ms, CONFIG_ALL, "2s", 100, HOUR_MS, "how often each shield (edge) or origin (shield) is checked"),
    DUR(health_timeout, health_timeout_ms, CONFIG_ALL, "1s", 10, 600000, "a health check slower than this fails"),
    STR(health_path, CONFIG_SHIELD, "/", "path a shield checks on each origin (GET, 2xx-4xx but 408/429 = up)"),
    NUM(eject_after, CONFIG_UINT, CONFIG_ALL, "3", 1, 1000, "consecutive failures (connect errors, timeouts, failed health checks) that eject a shield or origin; a node's only upstream is never ejected"),
    NUM(eject_on_5xx, CONFIG_BOOL, CONFIG_ALL, "off", 0, 0, "also count an origin's 502/503/504 answers as failures (a shield's answers never count: it relays its origin)"),
    DUR(eject_backoff, eject_backoff_ms, CONFIG_ALL, "5s", 10, HOUR_MS, "first ejection's length; it doubles on each new ejection"),
    DUR(eject_backoff_max, eject_backoff_max_ms, CONFIG_ALL, "60s", 10, 24 * HOUR_MS, "cap of the ejection backoff"),
    DUR(origin_connect_timeout, origin_connect_timeout_ms, CONFIG_ALL, "5s", 1, 600000, "upstream connect timeout"),
    DUR(origin_timeout, origin_timeout_ms, CONFIG_ALL, "60s", 1, 24 * HOUR_MS, "upstream total timeout per request"),
    NUM(max_header_size, CONFIG_SIZE, CONFIG_ALL, "16K", 1 * KiB, 1 * MiB, "request header block bound (431 beyond)"),
    NUM(max_uri_size, CONFIG_SIZE, CONFIG_ALL, "8K", 256, 1 * MiB, "request target bound (414 beyond)"),
    NUM(max_body_size, CONFIG_SIZE, CONFIG_ALL, "16M", 0, 4 * GiB, "request body bound (413 beyond)"),
    DUR(header_timeout, header_timeout_ms, CONFIG_ALL, "10s", 1, HOUR_MS, "time allowed to receive a request's headers and body"),
    DUR(idle_timeout, idle_timeout_ms, CONFIG_ALL, "60s", 1, 24 * HOUR_MS, "keep-alive connection idle timeout"),
    DUR(send_timeout, send_timeout_ms, CONFIG_ALL, "60s", 1, 24 * HOUR_MS, "close a connection whose client reads nothing for this long"),
    NUM(max_connections, CONFIG_UINT, CONFIG_ALL, "10000", 1, 1000000, "open client connections per worker thread; connections beyond it are closed at once"),
    NUM(max_connections_total, CONFIG_UINT, CONFIG_ALL, "100000", 1, 10000000, "open client connections of all the worker threads together; connections beyond it are closed at once"),
    NUM(max_requests_per_connection, CONFIG_UINT, CONFIG_ALL, "1000", 0, 100000000, "requests on one keep-alive connection; the last gets Connection: close (0 = no bound)"),
    NUM(min_recv_rate, CONFIG_UINT, CONFIG_ALL, "256", 0, 100000000, "bytes per second a request's head and body must arrive at on average, judged after 2 s (slowloris: 408 and close); 0 = off"),
    STR(access_log, CONFIG_ALL, "stderr", "access log: stderr, off, or a file path (appended)"),
    ENUM(log_level, CONFIG_ALL, "info", "error|warn|info|debug", "error log verbosity (to stderr)"),
    NUM(forward_host, CONFIG_BOOL, CONFIG_ALL, "on", 0, 0, "send the client's Host header upstream (off: the origin URL's host)"),
    { "pass_headers", CONFIG_NAMES, CONFIG_ALL, "", 0, 0, NULL, offsetof(config_t, pass_headers),
      sizeof(((config_t *)0)->pass_headers),
      "client request headers to pass upstream as sent although the node removes them (X-Forwarded-Host, Forwarded, ...), comma-separated; each joins the cache key" },
    { "pass_headers_unkeyed", CONFIG_NAMES, CONFIG_ALL, "", 0, 0, NULL, offsetof(config_t, pass_headers_unkeyed),
      sizeof(((config_t *)0)->pass_headers_unkeyed),
      "the same, kept out of the cache key: only for headers that cannot change the response" },
    NUM(forward_surrogate_keys, CONFIG_BOOL, CONFIG_EDGE, "off", 0, 0,
        "pass Surrogate-Key and Cache-Tag on to clients (off: they are for purging by tag here)"),
    NUM(forward_surrogate_keys, CONFIG_BOOL, CONFIG_SHIELD, "on", 0, 0,
        "pass Surrogate-Key and Cache-Tag on to the edges (they index them too)"),
    NUM(max_tags, CONFIG_UINT, CONFIG_ALL, "32", 1, 1024,
        "tags (Surrogate-Key, Cache-Tag) indexed per object for purging; further ones are not indexed"),
    NUM(max_tag_bytes, CONFIG_UINT, CONFIG_ALL, "128", 1, 511, "longest tag indexed; a longer one is not indexed (never cut)"),
    STR(purge_peers, CONFIG_ALL, "",
        "other nodes (host:port, comma-separated) a purge accepted here is passed on to, after this edge's shields"),
    DUR(purge_retry_for, purge_retry_for_ms, CONFIG_ALL, "60s", 0, 24 * HOUR_MS,
        "how long a peer that missed a purge is retried (doubling backoff); each failure is logged"),
    STR(purge_token_file, CONFIG_ALL, "",
        "file holding the bearer token that purge requests must carry (first line; not readable by others); empty: purging is off (403)"),
    NUM(forward_cdn_cache_control, CONFIG_BOOL, CONFIG_EDGE, "off", 0, 0,
        "pass CDN-Cache-Control on to clients (off: it is for this cache only; Surrogate-Control never is)"),
    NUM(forward_cdn_cache_control, CONFIG_BOOL, CONFIG_SHIELD, "on", 0, 0,
        "pass CDN-Cache-Control on to the edges (they cache by it too; Surrogate-Control never is)"),
    NUM(image_workers, CONFIG_UINT, CONFIG_ALL, "0", 0, 64,
        "image transform threads (rules with image = on); 0 = number of cores. Transforms never run on a worker's event loop"),
    NUM(image_queue, CONFIG_UINT, CONFIG_ALL, "64", 0, 100000,
        "image transforms that may wait for a thread; beyond it a new variant gets 503 with Retry-After (hits are served meanwhile)"),
    NUM(image_max_pixels, CONFIG_UINT, CONFIG_ALL, "50000000", 1, 1000000000,
        "largest source image (width x height) a rule with image = on transforms; larger ones get 422, refused from the header"),
    NUM(image_max_size, CONFIG_SIZE, CONFIG_ALL, "25M", 1, 1 * GiB, "largest source image in bytes that is transformed (422 beyond)"),
    NUM(image_max_frames, CONFIG_UINT, CONFIG_ALL, "100", 1, 100000, "most frames (pages) of a source image that is transformed (422 beyond)"),
    NUM(image_max_side, CONFIG_UINT, CONFIG_ALL, "4096", 16, 16384, "largest output width and height, after dpr (w or h beyond it: 400)"),
    STR(image_signing_key_file, CONFIG_ALL, "",
        "file holding the HMAC-SHA256 key of signed image URLs (first line); set: a transform URL without a valid sig parameter gets 403"),
    { 0 },
};
