/* policy_cache: parsing requests and responses into what caching needs,
 * storability and freshness lifetime for a shared cache (RFC 9111 sections
 * 3, 4.2.1, 4.2.2, 4.4, RFC 9213), ages (4.2.3), the stored entry and
 * the serve decision, hop-by-hop fields. See include/policy_cache.h.
 *
 * Whenever the headers are ambiguous (repeated, invalid, conflicting), the
 * reading chosen is the one that stores less or expires sooner: a cache
 * that is too eager leaks private data or serves stale content, one that
 * is too cautious only costs an upstream request. */
#include "policy_cache.h"

#include <errno.h>
#include <llhttp.h>
#include <string.h>
#include <strings.h>

#include "policy_date.h"

static const policy_opts_t *opts_or_default(const policy_opts_t *o, policy_opts_t *tmp)
{
    if (o)
        return o;
    policy_opts_init(tmp);
    return tmp;
}

void policy_opts_init(policy_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->heuristic_max = 86400;
    o->heuristic_default = 0;
    o->heuristic_percent = 10;
    o->store_cookies = false;
    o->stale_with_s_maxage = false;
    o->targeted_cc[0] = "CDN-Cache-Control";
}

/* First line of `name` parsed as an HTTP-date; -1 when absent or invalid. */
static int64_t date_field(const http_fields_t *h, const char *name)
{
    http_slice_t v;
    if (!http_fields_get(h, name, &v))
        return -1;
    return policy_date_parse(v.p, v.len);
}

/* RFC 9111 5.3: an invalid Expires (classically "0") means already
 * expired; 4.2.1: several differing values may be treated as stale. */
static int64_t expires_field(const http_fields_t *h, uint32_t *flags)
{
    int64_t e = -1;
    for (long i = http_fields_find(h, "Expires", 0); i >= 0; i = http_fields_find(h, "Expires", (size_t)i + 1)) {
        http_slice_t v = http_fields_value(h, (size_t)i);
        int64_t t = policy_date_parse(v.p, v.len);
        if (t < 0 || (e >= 0 && t != e)) {
            *flags |= POLICY_RESP_EXPIRES_BAD;
            return 0;
        }
        e = t;
    }
    return e;
}

/* RFC 9111 5.1: use the first member of a list-valued Age and ignore an
 * invalid one. */
static int64_t age_field(const http_fields_t *h)
{
    http_slice_t v;
    if (!http_fields_get(h, "Age", &v))
        return -1;
    size_t n = 0;
    while (n < v.len && v.p[n] != ',')
        n++;
    http_slice_t first = http_trim((http_slice_t){ v.p, n });
    return policy_cc_delta(first.p, first.len);
}

static bool list_has_any_line(const http_fields_t *h, const char *name, const char *tok)
{
    for (long i = http_fields_find(h, name, 0); i >= 0; i = http_fields_find(h, name, (size_t)i + 1)) {
        http_slice_t v = http_fields_value(h, (size_t)i);
        if (http_list_has(v.p, v.len, tok))
            return true;
    }
    return false;
}

void policy_resp_parse(policy_resp_t *r, int status, const http_fields_t *h, const policy_opts_t *opts)
{
    policy_opts_t tmp;
    const policy_opts_t *o = opts_or_default(opts, &tmp);
    memset(r, 0, sizeof *r);
    r->status = status;
    r->targeted = -1;

    policy_cc_t plain;
    policy_cc_init(&plain);
    if (policy_cc_parse_fields(&plain, h, "Cache-Control"))
        r->flags |= POLICY_RESP_HAS_CC;
    r->cc = plain;
    /* RFC 9213 2.2: the first targeted field that is present and non-empty
     * wins, and Cache-Control and Expires are then ignored by this cache.
     * An invalid one (RFC 9213 2.1, see policy_cc_parse_targeted) counts as
     * absent: the next one, or Cache-Control, governs. */
    for (int t = 0; t < POLICY_TARGETED_MAX && o->targeted_cc[t]; t++) {
        policy_cc_t cc;
        if (policy_cc_parse_targeted(&cc, h, o->targeted_cc[t]) > 0 && cc.n_directives) {
            r->cc = cc;
            r->targeted = t;
            r->flags |= POLICY_RESP_TARGETED;
            break;
        }
    }
    /* no-transform speaks to every intermediary, whichever field we obey */
    if ((plain.flags | r->cc.flags) & POLICY_CC_NO_TRANSFORM)
        r->flags |= POLICY_RESP_NO_TRANSFORM;
    if ((r->cc.flags & (POLICY_CC_PUBLIC | POLICY_CC_MUST_REVALIDATE)) || r->cc.s_maxage >= 0)
        r->flags |= POLICY_RESP_AUTH_OK;

    r->date = date_field(h, "Date");
    r->last_modified = date_field(h, "Last-Modified");
    r->expires = (r->flags & POLICY_RESP_TARGETED) ? -1 : expires_field(h, &r->flags);
    r->age = age_field(h);
    if (http_fields_get(h, "Set-Cookie", NULL))
        r->flags |= POLICY_RESP_SET_COOKIE;
    if (http_fields_get(h, "ETag", NULL))
        r->flags |= POLICY_RESP_ETAG;
    if (http_fields_get(h, "Vary", NULL))
        r->flags |= POLICY_RESP_VARY;
    if (list_has_any_line(h, "Vary", "*"))
        r->flags |= POLICY_RESP_VARY_STAR;
}

void policy_req_parse(policy_req_t *q, int method, const http_fields_t *h)
{
    static const struct {
        const char *name;
        uint32_t flag;
    } present[] = {
        { "Authorization", POLICY_REQ_AUTHORIZATION },
        { "If-None-Match", POLICY_REQ_IF_NONE_MATCH },
        { "If-Modified-Since", POLICY_REQ_IF_MODIFIED_SINCE },
        { "If-Match", POLICY_REQ_IF_MATCH },
        { "If-Unmodified-Since", POLICY_REQ_IF_UNMODIFIED_SINCE },
        { "If-Range", POLICY_REQ_IF_RANGE },
        { "Range", POLICY_REQ_RANGE },
    };
    memset(q, 0, sizeof *q);
    q->method = method;
    policy_cc_init(&q->cc);
    if (policy_cc_parse_fields(&q->cc, h, "Cache-Control"))
        q->flags |= POLICY_REQ_HAS_CC;
    /* RFC 9111 5.4: Pragma only counts when Cache-Control is absent. */
    else if (list_has_any_line(h, "Pragma", "no-cache")) {
        q->flags |= POLICY_REQ_PRAGMA_NO_CACHE;
        q->cc.flags |= POLICY_CC_NO_CACHE;
    }
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++)
        if (http_fields_get(h, present[i].name, NULL))
            q->flags |= present[i].flag;
}

bool policy_status_understood(int status)
{
    switch (status) {
    case 200: case 201: case 202: case 203: case 204: case 205: case 206:
    case 300: case 301: case 302: case 303: case 304: case 305: case 307: case 308:
    case 421: case 422: case 426: case 429: case 431: case 451:
    case 500: case 501: case 502: case 503: case 504: case 505:
        return true;
    default:
        return status >= 400 && status <= 417;
    }
}

bool policy_status_heuristic(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return true;
    default:
        return false;
    }
}

static bool has_explicit_freshness(const policy_resp_t *r)
{
    return r->cc.s_maxage >= 0 || r->cc.max_age >= 0 || r->expires >= 0;
}

/* Order matters only for which reason is reported; it goes from what the
 * request asked to what the response says. */
static const char *not_storable_why(const policy_req_t *q, const policy_resp_t *r, const policy_opts_t *o)
{
    if (q->method == HTTP_HEAD)
        return "head";
    if (q->method != HTTP_GET)
        return "method";
    if (r->status < 200 || !policy_status_understood(r->status))
        return r->cc.flags & POLICY_CC_MUST_UNDERSTAND ? "must-understand" : "status";
    if (r->status == 206)
        return "partial";
    if (r->status == 304)
        return "not-modified";
    if (q->cc.flags & POLICY_CC_NO_STORE)
        return "req-no-store";
    /* RFC 9111 5.2.2.3: must-understand with a status we understand
     * overrides the no-store sent along for caches that do not. */
    if ((r->cc.flags & (POLICY_CC_NO_STORE | POLICY_CC_MUST_UNDERSTAND)) == POLICY_CC_NO_STORE)
        return "no-store";
    if (r->cc.flags & POLICY_CC_PRIVATE)
        return "private";
    if ((q->flags & POLICY_REQ_AUTHORIZATION) && !(r->flags & POLICY_RESP_AUTH_OK))
        return "authorization";
    if (r->flags & POLICY_RESP_VARY_STAR)
        return "vary-star";
    if ((r->flags & POLICY_RESP_SET_COOKIE) && !o->store_cookies)
        return "set-cookie";
    if (!has_explicit_freshness(r) && !policy_status_heuristic(r->status) && !(r->cc.flags & POLICY_CC_PUBLIC))
        return "no-freshness";
    return NULL;
}

bool policy_storable(const policy_req_t *q, const policy_resp_t *r, const policy_opts_t *opts, const char **why)
{
    policy_opts_t tmp;
    const char *w = not_storable_why(q, r, opts_or_default(opts, &tmp));
    if (why)
        *why = w;
    return w == NULL;
}

static bool name_eq(const char *name, size_t nlen, const char *lit)
{
    size_t l = strlen(lit);
    return nlen == l && strncasecmp(name, lit, l) == 0;
}

bool policy_field_storable(const policy_resp_t *r, const http_fields_t *h, const char *name, size_t nlen)
{
    if (policy_hop_by_hop(name, nlen) || name_eq(name, nlen, "Set-Cookie"))
        return false;
    if (policy_cc_field_listed(&r->cc, POLICY_CC_LIST_PRIVATE, name, nlen) ||
        policy_cc_field_listed(&r->cc, POLICY_CC_LIST_NO_CACHE, name, nlen))
        return false;
    return !(h && policy_connection_listed(h, name, nlen));
}

/* Lifetime, and whether it came from the heuristic. */
static int64_t lifetime(const policy_resp_t *r, const policy_opts_t *o, int64_t response_time,
                       bool *heuristic)
{
    *heuristic = false;
    /* RFC 9111 4.2.1: invalid freshness information means stale. Either
     * field being bad counts, since a shared cache reads both. */
    if (r->cc.flags & (POLICY_CC_BAD_MAX_AGE | POLICY_CC_BAD_S_MAXAGE))
        return 0;
    if (r->cc.s_maxage >= 0)
        return r->cc.s_maxage;
    if (r->cc.max_age >= 0)
        return r->cc.max_age;
    int64_t base = r->date >= 0 ? r->date : response_time;
    if (r->expires >= 0)
        return r->expires > base ? r->expires - base : 0;
    if (!policy_status_heuristic(r->status) && !(r->cc.flags & POLICY_CC_PUBLIC))
        return 0;
    *heuristic = true;
    int64_t max = o->heuristic_max > 0 ? o->heuristic_max : 0;
    int64_t life;
    if (r->last_modified < 0) {
        life = o->heuristic_default;
    } else if (base > r->last_modified) {
        unsigned pct = o->heuristic_percent > 100 ? 100 : o->heuristic_percent;
        life = (base - r->last_modified) / 100 * pct + (base - r->last_modified) % 100 * pct / 100;
    } else {
        life = 0; /* modified "now" or in the future: no evidence of stability */
    }
    if (life < 0)
        life = 0;
    return life > max ? max : life;
}

int64_t policy_freshness_lifetime(const policy_resp_t *r, const policy_opts_t *opts, int64_t response_time)
{
    policy_opts_t tmp;
    bool heuristic;
    return lifetime(r, opts_or_default(opts, &tmp), response_time, &heuristic);
}

bool policy_method_safe(int method)
{
    switch (method) {
    case HTTP_GET: case HTTP_HEAD: case HTTP_OPTIONS: case HTTP_TRACE:
    case HTTP_PROPFIND: case HTTP_REPORT: case HTTP_SEARCH:
        return true;
    default:
        return false;
    }
}

bool policy_method_invalidates(int method, int status)
{
    return !policy_method_safe(method) && status >= 200 && status < 400;
}

bool policy_hop_by_hop(const char *name, size_t nlen)
{
    static const char *const hop[] = { "Connection", "Keep-Alive", "Proxy-Connection",
                                       "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                                       "Proxy-Authenticate", "Proxy-Authorization" };
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (name_eq(name, nlen, hop[i]))
            return true;
    return false;
}

bool policy_forwarding_header(const char *name, size_t nlen)
{
    static const char *const fwd[] = { "X-Forwarded-Host", "X-Host", "X-Forwarded-Server", "X-Original-Host",
                                       "X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Scheme",
                                       "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix",
                                       "X-Forwarded-Ssl", "Front-End-Https", "X-Real-IP", "Forwarded",
                                       "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override" };
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        if (name_eq(name, nlen, fwd[i]))
            return true;
    return false;
}

bool policy_connection_listed(const http_fields_t *h, const char *name, size_t nlen)
{
    if (!nlen)
        return false;
    for (long i = http_fields_find(h, "Connection", 0); i >= 0; i = http_fields_find(h, "Connection", (size_t)i + 1)) {
        http_slice_t v = http_fields_value(h, (size_t)i);
        if (http_list_has_n(v.p, v.len, name, nlen))
            return true;
    }
    return false;
}

int64_t policy_corrected_initial_age(int64_t age_value, int64_t date_value, int64_t request_time,
                                     int64_t response_time)
{
    if (age_value < 0)
        age_value = 0;
    if (age_value > POLICY_CC_DELTA_MAX)
        age_value = POLICY_CC_DELTA_MAX;
    int64_t apparent_age = date_value >= 0 && response_time > date_value ? response_time - date_value : 0;
    /* A clock that went backwards must not make the response younger. */
    int64_t response_delay = response_time > request_time ? response_time - request_time : 0;
    int64_t corrected_age_value = age_value + response_delay;
    return apparent_age > corrected_age_value ? apparent_age : corrected_age_value;
}

int64_t policy_current_age(int64_t corrected_initial_age, int64_t response_time, int64_t now)
{
    int64_t resident_time = now > response_time ? now - response_time : 0;
    return corrected_initial_age + resident_time;
}

_Static_assert(sizeof(policy_entry_t) == 80, "policy_entry_t layout changed: bump POLICY_ENTRY_VERSION");

void policy_entry_init(policy_entry_t *e, const policy_resp_t *r, const policy_opts_t *opts, int64_t request_time,
                       int64_t response_time)
{
    policy_opts_t tmp;
    const policy_opts_t *o = opts_or_default(opts, &tmp);
    const policy_cc_t *cc = &r->cc;
    static const struct {
        uint32_t cc, entry;
    } copy[] = {
        { POLICY_CC_MUST_REVALIDATE, POLICY_ENTRY_MUST_REVALIDATE },
        { POLICY_CC_PROXY_REVALIDATE, POLICY_ENTRY_PROXY_REVALIDATE },
        { POLICY_CC_NO_CACHE, POLICY_ENTRY_NO_CACHE },
        { POLICY_CC_NO_CACHE_FIELDS, POLICY_ENTRY_NO_CACHE_FIELDS },
        { POLICY_CC_PRIVATE_FIELDS, POLICY_ENTRY_PRIVATE_FIELDS },
        { POLICY_CC_IMMUTABLE, POLICY_ENTRY_IMMUTABLE },
    };
    bool heuristic;

    memset(e, 0, sizeof *e); /* reserved = 0: equal entries are equal bytes */
    e->version = POLICY_ENTRY_VERSION;
    for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++)
        if (cc->flags & copy[i].cc)
            e->flags |= copy[i].entry;
    if (cc->s_maxage >= 0)
        e->flags |= POLICY_ENTRY_S_MAXAGE;
    if (r->flags & POLICY_RESP_ETAG)
        e->flags |= POLICY_ENTRY_ETAG;
    if (r->last_modified >= 0)
        e->flags |= POLICY_ENTRY_LAST_MODIFIED;
    if (r->flags & POLICY_RESP_TARGETED)
        e->flags |= POLICY_ENTRY_TARGETED;
    e->request_time = request_time;
    e->response_time = response_time;
    e->corrected_initial_age = policy_corrected_initial_age(r->age, r->date, request_time, response_time);
    e->freshness_lifetime = lifetime(r, o, response_time, &heuristic);
    if (heuristic)
        e->flags |= POLICY_ENTRY_HEURISTIC;
    e->date = r->date >= 0 ? r->date : response_time;
    e->last_modified = r->last_modified;
    e->status = r->status;

    /* RFC 9111 4.2.4: no stale responses against must-revalidate,
     * proxy-revalidate (shared caches), no-cache or s-maxage (which implies
     * proxy-revalidate). Some CDNs read the origin's own
     * stale-while-revalidate / stale-if-error next to s-maxage as an
     * explicit grant; the option allows that, off by default (strict). */
    uint32_t hard = POLICY_ENTRY_MUST_REVALIDATE | POLICY_ENTRY_PROXY_REVALIDATE | POLICY_ENTRY_NO_CACHE;
    if (e->flags & (hard | POLICY_ENTRY_S_MAXAGE))
        e->flags |= POLICY_ENTRY_NO_STALE;
    bool windows = !(e->flags & hard) && (!(e->flags & POLICY_ENTRY_S_MAXAGE) || o->stale_with_s_maxage);
    e->stale_while_revalidate = windows ? cc->stale_while_revalidate : -1;
    e->stale_if_error = windows ? cc->stale_if_error : -1;
}

int policy_entry_load(policy_entry_t *e, const void *p, size_t len)
{
    policy_entry_t tmp;
    if (!p || len != sizeof tmp)
        return -EINVAL;
    memcpy(&tmp, p, sizeof tmp);
    if (tmp.version != POLICY_ENTRY_VERSION)
        return -EINVAL;
    *e = tmp;
    return 0;
}

policy_verdict_t policy_entry_check(const policy_entry_t *e, const policy_req_t *q, int64_t now, int64_t *age_out,
                                    int64_t *ttl_out)
{
    static const policy_cc_t none = { .max_age = -1, .s_maxage = -1, .max_stale = -1, .min_fresh = -1,
                                      .stale_while_revalidate = -1, .stale_if_error = -1 };
    const policy_cc_t *rc = q ? &q->cc : &none;
    int64_t age = policy_current_age(e->corrected_initial_age, e->response_time, now);
    int64_t ttl = e->freshness_lifetime - age;
    if (age_out)
        *age_out = age;
    if (ttl_out)
        *ttl_out = ttl;
    if (e->version != POLICY_ENTRY_VERSION)
        return POLICY_VERDICT_STALE;

    /* Request directives (RFC 9111 5.2.1); a bad max-age already reads 0
     * and a bad min-fresh POLICY_CC_DELTA_MAX. */
    bool req_refuses = (rc->flags & POLICY_CC_NO_CACHE) || (rc->max_age >= 0 && age > rc->max_age);
    if (ttl > 0 && !(e->flags & POLICY_ENTRY_NO_CACHE)) {
        if (req_refuses || (rc->min_fresh >= 0 && ttl < rc->min_fresh))
            return POLICY_VERDICT_REQUEST;
        return POLICY_VERDICT_FRESH;
    }
    /* Stale (or no-cache, which is stale on every use). Nothing may be
     * served without upstream when the request forbids it, or min-fresh
     * asks for freshness a stale response cannot have. */
    if ((e->flags & POLICY_ENTRY_NO_CACHE) || req_refuses || rc->min_fresh > 0)
        return POLICY_VERDICT_STALE;
    int64_t staleness = -ttl;
    if (rc->max_stale >= 0 && !(e->flags & POLICY_ENTRY_NO_STALE) &&
        ((rc->flags & POLICY_CC_MAX_STALE_ANY) || staleness < rc->max_stale))
        return POLICY_VERDICT_STALE_ACCEPTED;
    if (e->stale_while_revalidate > 0 && staleness < e->stale_while_revalidate)
        return POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK;
    if (e->stale_if_error > 0 && staleness < e->stale_if_error)
        return POLICY_VERDICT_STALE_IF_ERROR_OK;
    return POLICY_VERDICT_STALE;
}

const char *policy_verdict_name(policy_verdict_t v)
{
    switch (v) {
    case POLICY_VERDICT_FRESH: return "fresh";
    case POLICY_VERDICT_STALE_ACCEPTED: return "stale-accepted";
    case POLICY_VERDICT_STALE_WHILE_REVALIDATE_OK: return "stale-while-revalidate";
    case POLICY_VERDICT_STALE_IF_ERROR_OK: return "stale-if-error";
    case POLICY_VERDICT_STALE: return "stale";
    case POLICY_VERDICT_REQUEST: return "request";
    }
    return "unknown";
}
