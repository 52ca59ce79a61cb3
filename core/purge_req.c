/* purge_req: the purge API's body parser, token check and JSON answers.
 *
 * The rules a body must follow, strictest first so that a typo is a 400
 * and never a silent partial purge:
 * - a JSON object (jansson, duplicate keys refused, nothing after it) with
 *   only the fields "urls", "prefixes", "tags" (arrays of non-empty
 *   strings), "all", "soft" (true / false) and "host" (a string);
 * - at most PURGE_REQ_MAX_ITEMS entries in the three arrays together, and
 *   at least one entry unless "all" is true;
 * - a url or prefix is at most max_uri bytes, starts with "/" or is an
 *   absolute http:// or https:// URL (scheme in any case) whose host passes
 *   purge_req_host_valid, and is a request target policy_cache_key accepts
 *   (no space or control byte, no bad %-escape): what can be purged is
 *   exactly what can have been keyed;
 * - a tag is 1..PURGE_REQ_MAX_TAG_BYTES bytes of visible ASCII: tags come
 *   from header fields, where whitespace separates them and other bytes
 *   are obs-text;
 * - "host" passes purge_req_host_valid.
 * "all": true with lists is accepted and all wins: the lists are still
 * validated (a malformed entry is still a 400) and then dropped.
 *
 * The token is compared through SipHash-128 of both sides under a random
 * per-process key: the digests have one length whatever was presented, so
 * neither the first differing byte nor a length difference shows in the
 * time taken. */
#include "purge_req.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "hash.h"
#include "http_fields.h"
#include "policy_key.h"

/* Longest first line of a token file read (token plus whitespace). */
#define TOKEN_LINE_MAX 4096

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    if (errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Visible ASCII: no space, control, DEL or byte >= 0x80. */
static bool visible(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool purge_req_host_valid(const char *h, size_t len)
{
    size_t i = 0;
    if (!h || len == 0 || len > PURGE_REQ_MAX_HOST_BYTES)
        return false;
    if (h[0] == '[') {
        bool colon = false;
        for (i = 1; i < len && h[i] != ']'; i++) {
            if (!is_hex((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
                return false;
            colon |= h[i] == ':';
        }
        if (i == len || !colon)
            return false;
        i++;
    } else {
        if (!is_alnum((unsigned char)h[0]))
            return false;
        while (i < len && (is_alnum((unsigned char)h[i]) || h[i] == '-' || h[i] == '.'))
            i++;
    }
    if (i == len)
        return true;
    if (h[i] != ':' || len - i - 1 < 1 || len - i - 1 > 5)
        return false;
    unsigned long port = 0;
    for (i++; i < len; i++) {
        if (!is_digit((unsigned char)h[i]))
            return false;
        port = port * 10 + (unsigned long)(h[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

/* Length of a leading "http://" or "https://" (any case), else 0. */
static size_t http_scheme_len(const char *p, size_t len)
{
    if (len >= 7 && !strncasecmp(p, "http://", 7))
        return 7;
    if (len >= 8 && !strncasecmp(p, "https://", 8))
        return 8;
    return 0;
}

/* Why the url or prefix p[0..len) is refused, or NULL. scratch receives
 * the key policy_cache_key makes of it (-ENOMEM is *rc). */
static const char *uri_problem(const char *p, size_t len, buf_t *scratch, int *rc)
{
    if (p[0] != '/') {
        size_t s = http_scheme_len(p, len), h = s;
        if (!s)
            return "must start with \"/\" or be an absolute http:// or https:// URL";
        while (h < len && p[h] != '/' && p[h] != '?' && p[h] != '#')
            h++;
        if (!purge_req_host_valid(p + s, h - s))
            return "has no valid host[:port] after the scheme";
    }
    buf_reset(scratch);
    *rc = policy_cache_key(scratch, "http", "purge.invalid", 13, p, len);
    if (*rc == -EINVAL) {
        *rc = 0;
        return "is not a valid request target (a space, control byte or bad %-escape)";
    }
    return NULL;
}

static const char *tag_problem(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!visible((unsigned char)p[i]))
            return "holds whitespace, a control or a non-ASCII byte";
    return NULL;
}

/* Copy the array v of field name into *outv / *outn, validating each
 * entry; *total counts entries across the lists. On error what was copied
 * stays in *outv / *outn for purge_req_free. */
static int take_list(const char *name, json_t *v, bool tags, size_t max_uri, char ***outv, size_t *outn,
                     size_t *total, buf_t *scratch, char *err, size_t errlen)
{
    if (!json_is_array(v))
        return fail(err, errlen, -EINVAL, "\"%s\": expected an array of strings", name);
    size_t n = json_array_size(v);
    if (n > PURGE_REQ_MAX_ITEMS - *total)
        return fail(err, errlen, -EINVAL, "too many entries: at most %d in \"urls\", \"prefixes\" and \"tags\" together",
                    PURGE_REQ_MAX_ITEMS);
    *total += n;
    if (n == 0)
        return 0;
    if (!(*outv = calloc(n, sizeof **outv)))
        return fail(err, errlen, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s))
            return fail(err, errlen, -EINVAL, "\"%s\"[%zu]: expected a string", name, i);
        const char *p = json_string_value(s);
        size_t len = json_string_length(s), max = tags ? PURGE_REQ_MAX_TAG_BYTES : max_uri;
        const char *why = NULL;
        int rc = 0;
        if (len == 0)
            return fail(err, errlen, -EINVAL, "\"%s\"[%zu]: empty string", name, i);
        if (len > max)
            return fail(err, errlen, -EINVAL, "\"%s\"[%zu]: longer than %zu bytes", name, i, max);
        why = tags ? tag_problem(p, len) : uri_problem(p, len, scratch, &rc);
        if (rc)
            return fail(err, errlen, rc, "out of memory");
        if (why)
            return fail(err, errlen, -EINVAL, "\"%s\"[%zu]: %s", name, i, why);
        if (!((*outv)[i] = strndup(p, len)))
            return fail(err, errlen, -ENOMEM, "out of memory");
        (*outn)++;
    }
    return 0;
}

static int take_bool(const char *name, json_t *v, bool *out, char *err, size_t errlen)
{
    if (!json_is_boolean(v))
        return fail(err, errlen, -EINVAL, "\"%s\": expected true or false", name);
    *out = json_is_true(v);
    return 0;
}

static int take_host(json_t *v, char **out, char *err, size_t errlen)
{
    if (!json_is_string(v))
        return fail(err, errlen, -EINVAL, "\"host\": expected a string");
    if (json_string_length(v) == 0)
        return fail(err, errlen, -EINVAL, "\"host\": empty string");
    if (!purge_req_host_valid(json_string_value(v), json_string_length(v)))
        return fail(err, errlen, -EINVAL,
                    "\"host\": expected host[:port] (letters, digits, '-' and '.', or an [IPv6] literal)");
    if (!(*out = strdup(json_string_value(v))))
        return fail(err, errlen, -ENOMEM, "out of memory");
    return 0;
}

static void free_list(char ***v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

void purge_req_free(purge_req_t *r)
{
    free_list(&r->urls, &r->nurls);
    free_list(&r->prefixes, &r->nprefixes);
    free_list(&r->tags, &r->ntags);
    free(r->host);
    *r = (purge_req_t){ 0 };
}

int purge_req_parse(purge_req_t *out, const char *body, size_t len, size_t max_uri, char *err, size_t errlen)
{
    purge_req_t r = { 0 };
    json_error_t je;
    json_t *root, *v;
    const char *key;
    size_t total = 0;
    buf_t scratch;
    int rc = 0;

    *out = (purge_req_t){ 0 };
    if (errlen)
        err[0] = '\0';
    buf_init(&scratch, 0);
    root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        rc = fail(err, errlen, -EINVAL, "malformed JSON at line %d column %d: %s", je.line, je.column, je.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = fail(err, errlen, -EINVAL, "the body must be a JSON object");
        goto out;
    }
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "urls"))
            rc = take_list(key, v, false, max_uri, &r.urls, &r.nurls, &total, &scratch, err, errlen);
        else if (!strcmp(key, "prefixes"))
            rc = take_list(key, v, false, max_uri, &r.prefixes, &r.nprefixes, &total, &scratch, err, errlen);
        else if (!strcmp(key, "tags"))
            rc = take_list(key, v, true, max_uri, &r.tags, &r.ntags, &total, &scratch, err, errlen);
        else if (!strcmp(key, "all"))
            rc = take_bool(key, v, &r.all, err, errlen);
        else if (!strcmp(key, "soft"))
            rc = take_bool(key, v, &r.soft, err, errlen);
        else if (!strcmp(key, "host"))
            rc = take_host(v, &r.host, err, errlen);
        else
            rc = fail(err, errlen, -EINVAL,
                      "unknown field \"%.64s\" (known: urls, prefixes, tags, all, soft, host)", key);
        if (rc)
            goto out;
    }
    if (!r.all && total == 0) {
        rc = fail(err, errlen, -EINVAL, "nothing to purge: give \"urls\", \"prefixes\" or \"tags\", or \"all\": true");
        goto out;
    }
    if (r.all) {
        free_list(&r.urls, &r.nurls);
        free_list(&r.prefixes, &r.nprefixes);
        free_list(&r.tags, &r.ntags);
    }
    *out = r;
    r = (purge_req_t){ 0 };
out:
    purge_req_free(&r);
    json_decref(root);
    buf_free(&scratch);
    return rc;
}

/* The compare key. If the kernel gives no randomness it stays zero: the
 * compare is then still exact and constant-time, as the digests are
 * compared whole. */
static uint8_t token_key[16];
static pthread_once_t token_key_once = PTHREAD_ONCE_INIT;

static void token_key_init(void)
{
    ssize_t n;
    do
        n = getrandom(token_key, sizeof token_key, 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof token_key)
        memset(token_key, 0, sizeof token_key);
}

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* -errno, with the system's message about the token file. */
static int sys_fail(char *err, size_t errlen, const char *path)
{
    int e = errno;
    return fail(err, errlen, -e, "purge_token_file %s: %s", path, strerror(e));
}

int purge_token_load(const char *path, char *out, size_t cap, char *err, size_t errlen)
{
    char line[TOKEN_LINE_MAX];
    size_t got = 0, start = 0, end;
    struct stat st;
    int fd, rc = 0;

    pthread_once(&token_key_once, token_key_init);
    if (cap)
        out[0] = '\0';
    if (errlen)
        err[0] = '\0';
    /* O_NONBLOCK: a FIFO must not hang start-up; it is refused below. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return sys_fail(err, errlen, path);
    if (fstat(fd, &st)) {
        rc = sys_fail(err, errlen, path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fail(err, errlen, -EINVAL, "purge_token_file %s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        rc = fail(err, errlen, -EPERM, "purge_token_file %s: others may read or write it (mode %04o): chmod o-rw %s",
                  path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    while (got < sizeof line && !memchr(line, '\n', got)) {
        ssize_t n = read(fd, line + got, sizeof line - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = sys_fail(err, errlen, path);
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    const char *nl = memchr(line, '\n', got);
    if (!nl && got == sizeof line) {
        rc = fail(err, errlen, -E2BIG, "purge_token_file %s: the first line is longer than %d bytes", path,
                  TOKEN_LINE_MAX);
        goto out;
    }
    end = nl ? (size_t)(nl - line) : got;
    while (start < end && space(line[start]))
        start++;
    while (end > start && space(line[end - 1]))
        end--;
    if (start == end) {
        rc = fail(err, errlen, -EINVAL, "purge_token_file %s: no token on the first line", path);
        goto out;
    }
    for (size_t i = start; i < end; i++) {
        if (!visible((unsigned char)line[i])) {
            rc = fail(err, errlen, -EINVAL,
                      "purge_token_file %s: the token holds whitespace, a control or a non-ASCII byte", path);
            goto out;
        }
    }
    if (end - start >= cap) {
        rc = fail(err, errlen, -E2BIG, "purge_token_file %s: the token is longer than %zu bytes", path,
                  cap ? cap - 1 : 0);
        goto out;
    }
    memcpy(out, line + start, end - start);
    out[end - start] = '\0';
out:
    explicit_bzero(line, sizeof line);
    close(fd);
    return rc;
}

bool purge_token_check(const char *token, size_t token_len, const char *a, size_t alen)
{
    http_slice_t v = http_trim((http_slice_t){ a, a ? alen : 0 });
    size_t i = 6;
    if (!token || token_len == 0 || v.len <= i || strncasecmp(v.p, "bearer", 6) || v.p[i] != ' ')
        return false;
    while (i < v.len && v.p[i] == ' ')
        i++;
    if (i == v.len)
        return false;

    uint8_t want[16], got[16], diff = 0;
    pthread_once(&token_key_once, token_key_init);
    hash_sip128(token_key, token, token_len, want);
    hash_sip128(token_key, v.p + i, v.len - i, got);
    for (size_t k = 0; k < sizeof want; k++)
        diff |= want[k] ^ got[k];
    /* Both terms are computed whatever the first one is: '&', not '&&'. */
    return (diff == 0) & (v.len - i == token_len);
}

static const char *peer_status_name(purge_peer_status_t s)
{
    switch (s) {
    case PURGE_PEER_CONFIRMED:
        return "confirmed";
    case PURGE_PEER_RETRYING:
        return "retrying";
    case PURGE_PEER_FAILED:
    default:
        return "failed";
    }
}

char *purge_req_result_json(const purge_result_t *r)
{
    json_t *peers = json_array(), *root;
    char *s = NULL;
    if (!peers)
        return NULL;
    for (size_t i = 0; i < r->npeers; i++) {
        const purge_peer_result_t *p = &r->peers[i];
        json_t *o = json_pack("{s:s, s:s, s:s}", "peer", p->peer ? p->peer : "", "status",
                              peer_status_name(p->status), "detail", p->detail ? p->detail : "");
        if (!o || json_array_append_new(peers, o)) {
            json_decref(peers);
            return NULL;
        }
    }
    /* "o" takes the reference to peers, also when json_pack fails. */
    root = json_pack("{s:{s:I, s:I, s:I, s:b, s:b}, s:o}", "purged", "urls", (json_int_t)r->urls, "tags",
                     (json_int_t)r->tags, "prefixes", (json_int_t)r->prefixes, "all", (int)r->all, "soft",
                     (int)r->soft, "peers", peers);
    if (root)
        s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

/* A JSON array of n strings, or NULL. */
static json_t *string_array(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        if (json_array_append_new(a, json_string(v[i]))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

char *purge_req_to_json(const purge_req_t *r, const char *host)
{
    json_t *o = json_pack("{s:o, s:o, s:o, s:b, s:b}", "urls", string_array(r->urls, r->nurls), "prefixes",
                          string_array(r->prefixes, r->nprefixes), "tags", string_array(r->tags, r->ntags), "all",
                          (int)r->all, "soft", (int)r->soft);
    char *s = NULL;
    if (o && host && host[0] && json_object_set_new(o, "host", json_string(host)) != 0) {
        json_decref(o);
        return NULL;
    }
    if (o)
        s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

char *purge_req_error_json(const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg ? msg : "");
    char *s = NULL;
    if (!o && msg) {
        char *ascii = strdup(msg);
        for (char *c = ascii; c && *c; c++)
            if ((unsigned char)*c >= 0x80)
                *c = '?';
        if (ascii)
            o = json_pack("{s:s}", "error", ascii);
        free(ascii);
    }
    if (o)
        s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
