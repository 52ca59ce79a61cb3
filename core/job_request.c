/* job_request: the request a fetch job sends upstream, built once from
 * the client's and kept, so that a retry on the next target or a restart
 * after a foreign 304 sends the same thing again. */
#include "job.h"

#include <errno.h>
#include <string.h>

#include "object_meta.h"
#include "policy_vary.h"
#include "preq.h"
#include "request_id.h"

/* Was this forwarding header configured to pass (pass_headers*)? */
static bool passed(const proxy_conf_t *pc, http_slice_t n)
{
    return policy_vary_listed(pc->pass_keyed, pc->pass_keyed_len, n.p, n.len) ||
           policy_vary_listed(pc->pass_unkeyed, pc->pass_unkeyed_len, n.p, n.len);
}

/* Headers to send upstream: the client's, minus hop-by-hop fields and the
 * forwarding fields not configured to pass (policy_forwarding_header), plus
 * Via, X-Forwarded-For, and X-Forwarded-Host / -Proto from what this node
 * received (unless the client's pass), and X-Request-Id: the request's
 * id (request_id.h), never the client's field as sent. A cache fill also
 * drops the client's conditionals and Range (the cache wants the full
 * response to store) and adds the stored object's validators when
 * revalidating. */
static int upstream_headers(const preq_t *p, bool fill, const stored_t *validate, http_fields_t *out)
{
    const http_fields_t *h = &p->req->hdrs;
    const proxy_t *px = p->pw->px;
    const proxy_conf_t *pc = p->conf;
    static const char *fill_drop[] = { "range", "if-range", "if-match", "if-none-match",
                                       "if-modified-since", "if-unmodified-since", NULL };
    http_slice_t via = { NULL, 0 }, xff = { NULL, 0 }, host = { NULL, 0 };
    bool client_xfh = false, client_xfp = false;
    for (size_t i = 0; i < h->n; i++) {
        http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
        if (policy_hop_by_hop(n.p, n.len) || policy_connection_listed(h, n.p, n.len))
            continue;
        if (policy_forwarding_header(n.p, n.len)) {
            if (!passed(pc, n))
                continue;
            client_xfh |= http_name_eq(n, "x-forwarded-host");
            client_xfp |= http_name_eq(n, "x-forwarded-proto");
        }
        if (http_name_eq(n, "host") && !host.p)
            host = v;
        if (http_name_eq(n, "via")) {
            via = v;
            continue;
        }
        if (http_name_eq(n, "x-forwarded-for")) {
            xff = v;
            continue;
        }
        if (http_name_eq(n, "x-request-id"))
            continue; /* replaced by the id this node decided (kept if the peer was trusted) */
        if (http_name_eq(n, "host") && !pc->cfg.forward_host)
            continue;
        bool drop = false;
        for (int k = 0; fill && fill_drop[k]; k++)
            drop |= http_name_eq(n, fill_drop[k]);
        int rc = drop ? 0 : http_fields_add(out, n.p, n.len, v.p, v.len);
        if (rc)
            return rc;
    }
    buf_t b;
    buf_init(&b, 0);
    if (via.len)
        buf_printf(&b, "%.*s, ", (int)via.len, via.p);
    buf_puts(&b, px->via);
    int rc = http_fields_add(out, "Via", 3, b.data, b.len);
    buf_reset(&b);
    if (xff.len)
        buf_printf(&b, "%.*s, ", (int)xff.len, xff.p);
    buf_puts(&b, p->req->client);
    rc = rc ? rc : http_fields_add(out, "X-Forwarded-For", 15, b.data, b.len);
    buf_free(&b);
    /* What this node actually received: the Host in the cache key, over
     * plain HTTP (the only scheme a node listens on). */
    if (!rc && !client_xfh && host.len)
        rc = http_fields_add(out, "X-Forwarded-Host", 16, host.p, host.len);
    if (!rc && !client_xfp)
        rc = http_fields_add(out, "X-Forwarded-Proto", 17, "http", 4);
    if (!rc) {
        /* A fetch that others join (collapsed) carries its starter's id. */
        char fresh[REQUEST_ID_GEN_LEN + 1];
        size_t idlen = REQUEST_ID_GEN_LEN;
        const char *id = fresh;
        if (p->c)
            id = http_conn_request_id(p->c, &idlen);
        else
            request_id_generate(fresh);
        rc = http_fields_add(out, "X-Request-Id", 12, id, idlen);
    }
    object_meta_t m;
    if (!rc && fill && validate && object_meta_decode(validate->meta, validate->meta_len, &m) == 0) {
        http_slice_t v;
        if (object_meta_field(m.block, m.block_len, "etag", &v))
            rc = http_fields_add(out, "If-None-Match", 13, v.p, v.len);
        if (!rc && object_meta_field(m.block, m.block_len, "last-modified", &v))
            rc = http_fields_add(out, "If-Modified-Since", 17, v.p, v.len);
        /* A soft purge asks for a revalidation with the origin, not with a
         * shield that may hold the same stale copy (RFC 9111 5.2.1.1). */
        if (!rc && validate->soft_purged)
            rc = http_fields_add(out, "Cache-Control", 13, "max-age=0", 9);
    }
    return rc;
}

int job_request_build(fjob_t *j, const preq_t *p)
{
    const http_req_t *req = p->req;
    bool fill = j->kind == JOB_FILL;
    if (upstream_headers(p, fill, j->validate, &j->up_hdrs))
        return -ENOMEM;
    /* origin-form path and query; an absolute-form target keeps only those */
    const char *t = p->target;
    size_t tl = p->target_len;
    if (t[0] != '/') {
        const char *s = strstr(t, "://");
        const char *slash = s ? strchr(s + 3, '/') : NULL;
        tl = slash ? tl - (size_t)(slash - t) : 1;
        t = slash ? slash : "/";
    }
    buf_t path;
    buf_init(&path, 0);
    if (buf_append(&path, t, tl) || !(j->up_path = buf_steal(&path))) {
        buf_free(&path);
        return -ENOMEM;
    }
    if (!fill && req->body.len && buf_append(&j->body, req->body.data, req->body.len))
        return -ENOMEM;
    return 0;
}
