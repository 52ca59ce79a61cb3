/* Fuzz target: an upstream response head as the edge takes it. The input
 * is what a shield or origin sent, cut into lines as libcurl's header
 * callback delivers them (each with its LF; a last line without one is
 * dropped, as curl would end the transfer there): status lines, fields,
 * the empty line ending each block (1xx interim blocks, then the final
 * one) and trailers. The lines go through upstream.c's own header handling
 * (upstream_parse_head), then what job.c does with a head: 103s to the
 * fetch's waiters, the final head's Content-Length, status and fields
 * published to a fetch and read back by a waiter, and the cache policy's
 * reading of the response.
 *
 * Checked: a head reaches the callbacks only with a status in range, an
 * interim one is 1xx but never 101, every field name is a token and every
 * value is clean (no control byte but HTAB, no whitespace at its ends: the
 * hygiene upstream.h promises, so nothing reaches a client or the store
 * that could split a header); the Content-Length taken is the one field's
 * digits, or -1; a waiter sees the status, fields and length the owner
 * published; UPSTREAM_OK exactly when a final head was taken. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "http_fields.h"
#include "policy_cache.h"
#include "upstream.h"

typedef struct head_ctx {
    fetch_t *f;
    unsigned finals;
    int status;
    size_t nfields;
} head_ctx_t;

static void no_wake(fetch_waiter_t *w)
{
    (void)w;
}

static void check_fields(const http_fields_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        http_slice_t n = http_fields_name(h, i), v = http_fields_value(h, i);
        if (n.len == 0)
            abort();
        for (size_t k = 0; k < n.len; k++)
            if (!http_tchar((unsigned char)n.p[k]))
                abort();
        for (size_t k = 0; k < v.len; k++) {
            unsigned char c = (unsigned char)v.p[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                abort();
        }
        if (v.len && (v.p[0] == ' ' || v.p[0] == '\t' || v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
            abort();
    }
}

/* Content-Length as an independent reading: one field, digits only
 * (whitespace around), at most 18 of them. */
static int64_t expected_length(const http_fields_t *h)
{
    http_slice_t v;
    if (http_fields_count(h, "content-length") != 1 || !http_fields_get(h, "content-length", &v))
        return -1;
    v = http_trim(v);
    if (v.len == 0 || v.len > 18)
        return -1;
    for (size_t i = 0; i < v.len; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
    char digits[19];
    memcpy(digits, v.p, v.len);
    digits[v.len] = '\0';
    return (int64_t)strtoll(digits, NULL, 10);
}

static int on_interim(void *ctx, int status, const http_fields_t *hdrs)
{
    head_ctx_t *hc = ctx;
    if (status < 100 || status > 199 || status == 101 || hc->finals)
        abort();
    check_fields(hdrs);
    if (status == 103) /* job.c on_interim */
        fetch_add_interim(hc->f, status, hdrs);
    return 0;
}

static int on_headers(void *ctx, int status, const http_fields_t *hdrs)
{
    head_ctx_t *hc = ctx;
    if (status < 200 || status > 999 || hc->finals++)
        abort();
    check_fields(hdrs);
    hc->status = status;
    hc->nfields = hdrs->n;
    int64_t cl = http_fields_content_length(hdrs);
    if (cl != expected_length(hdrs))
        abort();
    /* What the cache makes of it (job_store_plan), at a fixed time. */
    policy_resp_t r;
    policy_resp_parse(&r, status, hdrs, NULL);
    policy_entry_t e;
    policy_entry_init(&e, &r, NULL, 1000000000, 1000000001);
    /* Published to the waiters (job_publish), as a copy the fetch owns. */
    http_fields_t copy;
    http_fields_init(&copy, 0);
    if (http_fields_copy(&copy, hdrs))
        abort();
    fetch_set_headers(hc->f, status, &copy, cl, 1000000001, false, false, NULL);
    http_fields_free(&copy);
    return 0;
}

static int on_body(void *ctx, const char *p, size_t n)
{
    abort(); /* never called by upstream_parse_head */
}

static void on_done(void *ctx, int err, const char *msg)
{
    abort();
}

static const upstream_cbs_t cbs = { .on_headers = on_headers, .on_body = on_body, .on_done = on_done,
                                    .on_interim = on_interim };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Each line in its own allocation, exactly its bytes: libcurl's
     * buffer beyond a line is not ours to read. */
    size_t n = 0;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    http_slice_t *lines = calloc(n ? n : 1, sizeof *lines);
    if (!lines)
        return 0;
    size_t start = 0, k = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '\n')
            continue;
        size_t len = i + 1 - start;
        char *p = malloc(len);
        if (!p)
            abort();
        memcpy(p, data + start, len);
        lines[k++] = (http_slice_t){ p, len };
        start = i + 1;
    }
    fetch_waiter_t w = { .wake = no_wake };
    head_ctx_t hc = { .f = fetch_new_private(&w) };
    if (!hc.f)
        abort();
    upstream_opts_t o = { .max_header_size = 8 * 1024 }; /* the node's is 64K: 8K is in the fuzzer's reach */
    char msg[256];
    int err = upstream_parse_head(&o, lines, n, &cbs, &hc, msg, sizeof msg);
    if ((err == UPSTREAM_OK) != (hc.finals == 1) || strlen(msg) == 0)
        abort();
    fetch_view_t v;
    fetch_read(hc.f, &w, &v, NULL, 0);
    if (hc.finals) {
        if (v.state != FETCH_HEADERS || v.status != hc.status || v.hdrs->n != hc.nfields ||
            v.content_length != http_fields_content_length(v.hdrs))
            abort();
        check_fields(v.hdrs);
    } else if (v.state != FETCH_PENDING) {
        abort();
    }
    for (unsigned i = 0; i < v.n_interim; i++)
        if (v.interim[i].status != 103)
            abort();
    fetch_detach(hc.f, &w);
    fetch_unref(hc.f);
    for (size_t i = 0; i < n; i++)
        free((void *)lines[i].p);
    free(lines);
    return 0;
}
