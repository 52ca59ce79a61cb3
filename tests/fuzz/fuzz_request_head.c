/* Fuzz target: what a client sends on a connection, as the server parses
 * it (http_parse_requests: llhttp with the connection's own callbacks,
 * header collection, bounds and checks), then for every complete request
 * what the edge does with it first (preq.c step_recv): the cache key of
 * its Host and target under a few [rule]s, the key's hash, and the
 * request's cache directives. Bad requests must end in a status (400,
 * 413, 414, 431...), never a crash, an over-read or a leak.
 *
 * The first input byte chooses how many bytes the parser gets at a time
 * (0: all at once), since a request split across reads takes other paths
 * (obs-fold detection, a field name in two pieces); the rest is what the
 * client sent. Checked: every parsed request's slices are read whole, its
 * target is NUL-terminated and splits into path and query where the first
 * '?' is, an HTTP/1.1 request has one Host, and a cache key is already
 * normalised (keying the key again, as a purge of it does, gives it back). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "http_server.h"
#include "policy_cache.h"
#include "policy_key.h"
#include "preq.h"
#include "proxy_conf.h"

/* Rules whose query policies the keys go through (the node's defaults for
 * everything else). Small bounds, so that inputs of a few KiB reach 431,
 * 414 and 413. */
static const char conf_text[] = "origin = http://127.0.0.1:9\n"
                                "max_header_size = 4K\n"
                                "max_uri_size = 1K\n"
                                "max_body_size = 4K\n"
                                "[rule /sorted/*]\nquery = sorted\n"
                                "[rule /keep/*]\nquery = keep id v\n"
                                "[rule /drop/*]\nquery = drop utm_* x?\n"
                                "[rule *.example.com/*]\nquery = none\n"
                                "[rule [::1]/v6/*]\nquery = sorted\n";

/* Built once (read-only afterwards): the configuration generation every
 * request is keyed under, as the proxy's workers hold one. */
static const proxy_conf_t *conf(void)
{
    static proxy_conf_t *pc;
    if (!pc) {
        config_t cfg;
        char err[512];
        config_defaults(&cfg, CONFIG_EDGE);
        if (config_load_string(&cfg, CONFIG_EDGE, "fuzz", conf_text, err, sizeof err) ||
            proxy_conf_new(&pc, &cfg, NULL, err, sizeof err)) {
            fprintf(stderr, "fuzz_request_head: %s\n", err);
            abort();
        }
        config_free(&cfg);
    }
    return pc;
}

static unsigned touch(const char *s, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)s[i];
    return sum;
}

static void on_request(http_req_t *req, void *ud)
{
    const proxy_conf_t *pc = ud;
    volatile unsigned sink = touch(req->target, req->target_len + 1) + touch(req->body.data, req->body.len) +
                             (unsigned)strlen(req->method_name);
    for (size_t i = 0; i < req->hdrs.n; i++) {
        http_slice_t n = http_fields_name(&req->hdrs, i), v = http_fields_value(&req->hdrs, i);
        sink += touch(n.p, n.len) + touch(v.p, v.len);
        if (n.len == 0)
            abort(); /* llhttp takes no empty field name */
    }
    (void)sink;
    if (req->target[req->target_len] != '\0' || req->target_len == 0 || req->path_len > req->target_len)
        abort();
    const char *q = memchr(req->target, '?', req->target_len);
    if (req->path_len != (q ? (size_t)(q - req->target) : req->target_len))
        abort();
    size_t hosts = http_fields_count(&req->hdrs, "host");
    if (hosts > 1 || (hosts == 0 && req->http_major == 1 && req->http_minor >= 1))
        abort(); /* the server answers these 400 */

    /* step_recv: the [rule] and cache key from Host and the target. */
    http_slice_t host = { "", 0 };
    http_fields_get(&req->hdrs, "host", &host);
    buf_t key;
    buf_init(&key, pc->cfg.max_uri_size + 512); /* as preq_new sizes it */
    const policy_rule_t *rule;
    const policy_opts_t *popts;
    if (preq_cache_key(pc, host, req->target, req->target_len, &key, &rule, &popts) == 0) {
        uint8_t hash[16];
        hash_cache_key(key.data, key.len, hash);
        size_t ho, hl, po, pl;
        /* "http://" unless an absolute-form target named another scheme. */
        if (key.data[key.len] != '\0' || policy_key_parts(key.data, key.len, &ho, &hl, &po, &pl) != 0)
            abort();
        /* Normalised already: its own key (absolute-form, no Host) is itself,
         * under the same rule. */
        buf_t again;
        buf_init(&again, key.cap);
        const policy_rule_t *rule2;
        const policy_opts_t *popts2;
        if (preq_cache_key(pc, (http_slice_t){ "", 0 }, key.data, key.len, &again, &rule2, &popts2) != 0 ||
            again.len != key.len || memcmp(again.data, key.data, key.len) != 0 || rule2 != rule) {
            fprintf(stderr, "key '%s' keys again as '%s'\n", key.data, again.data ? again.data : "(error)");
            abort();
        }
        buf_free(&again);
        policy_req_t pol;
        policy_req_parse(&pol, req->method, &req->hdrs);
    }
    buf_free(&key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t piece = data[0];
    size--;
    /* The bytes in their own allocation, exactly size of them (a read past
     * what the client sent is an ASan report). */
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, size);
    const proxy_conf_t *pc = conf();
    http_server_opts_t o;
    http_server_opts_from_config(&o, &pc->cfg);
    int st = http_parse_requests(&o, in, size, piece, on_request, (void *)pc);
    if (st != 0 && (st < 400 || st > 499))
        abort(); /* the server's own answers to a bad request are 4xx */
    free(in);
    return 0;
}
