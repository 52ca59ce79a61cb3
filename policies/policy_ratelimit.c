/* policy_ratelimit: token buckets, client keys, CIDR lists and
 * X-Forwarded-For (see include/policy_ratelimit.h for the arithmetic).
 *
 * Every quantity is an integer: the balance in millionths of a token, time
 * in milliseconds, the rate in millionths per millisecond. A refill over
 * any span is then one exact multiplication, whatever the number or the
 * spacing of the requests: no rounding error accumulates, so a client
 * gets exactly its rate over an hour as over a second. */
#include "policy_ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t rate_of(const policy_rl_limit_t *lim)
{
    return lim->rate_milli ? lim->rate_milli : 1; /* 0 is invalid; never divide by it */
}

static int64_t full_of(const policy_rl_limit_t *lim)
{
    return (int64_t)(lim->burst ? lim->burst : 1) * POLICY_RL_ONE;
}

/* Milliseconds until a balance of bal reaches target, rounded up. */
static int64_t ms_until(int64_t bal, int64_t target, const policy_rl_limit_t *lim)
{
    int64_t rate = rate_of(lim);
    return bal >= target ? 0 : (target - bal + rate - 1) / rate;
}

static uint32_t secs_of(int64_t ms)
{
    int64_t s = (ms + 999) / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

int64_t policy_rl_balance(const policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms)
{
    int64_t full = full_of(lim);
    if (b->balance >= full)
        return full; /* the burst may have been lowered since */
    if (now_ms <= b->updated_ms)
        return b->balance;
    /* Compare the time before multiplying: a long idle span would overflow. */
    int64_t elapsed = now_ms - b->updated_ms;
    if (elapsed >= ms_until(b->balance, full, lim))
        return full;
    return b->balance + elapsed * rate_of(lim);
}

int64_t policy_rl_ms_to_full(const policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms)
{
    return ms_until(policy_rl_balance(b, lim, now_ms), full_of(lim), lim);
}

static void refill(policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms)
{
    b->balance = policy_rl_balance(b, lim, now_ms);
    if (now_ms > b->updated_ms)
        b->updated_ms = now_ms;
}

void policy_rl_init(policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms)
{
    *b = (policy_rl_bucket_t){ full_of(lim), now_ms, POLICY_RL_NEVER, POLICY_RL_NEVER };
}

/* Take `tokens` from the balance, down to the floor of the header comment. */
static void debit(policy_rl_bucket_t *b, const policy_rl_limit_t *lim, uint32_t tokens)
{
    int64_t amount = (int64_t)tokens * POLICY_RL_ONE;
    int64_t full = full_of(lim);
    int64_t floor = -(amount > full ? amount : full);
    b->balance = b->balance - amount < floor ? floor : b->balance - amount;
}

static bool boxed(const policy_rl_bucket_t *b, int64_t now_ms)
{
    return b->penalty_until_ms != POLICY_RL_NEVER && now_ms < b->penalty_until_ms;
}

/* The RateLimit numbers of an admitted request. */
static void admitted(const policy_rl_bucket_t *b, const policy_rl_limit_t *lim, policy_rl_result_t *res)
{
    int64_t tokens = b->balance / POLICY_RL_ONE;
    *res = (policy_rl_result_t){ .admitted = true };
    if (b->balance >= POLICY_RL_ONE) {
        res->remaining = tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)tokens;
        res->reset_s = secs_of(ms_until(b->balance, full_of(lim), lim));
    } else {
        res->reset_s = secs_of(ms_until(b->balance, POLICY_RL_ONE, lim));
    }
}

static void refused(const policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms,
                    policy_rl_result_t *res)
{
    uint32_t wait = secs_of(ms_until(b->balance, POLICY_RL_ONE, lim));
    *res = (policy_rl_result_t){ .penalized = boxed(b, now_ms) };
    if (res->penalized && secs_of(b->penalty_until_ms - now_ms) > wait)
        wait = secs_of(b->penalty_until_ms - now_ms);
    res->retry_after_s = res->reset_s = wait ? wait : 1;
}

void policy_rl_take(policy_rl_bucket_t *b, const policy_rl_limit_t *lim, uint32_t cost, int64_t now_ms,
                    policy_rl_result_t *res)
{
    refill(b, lim, now_ms);
    if (!boxed(b, now_ms) && b->balance >= POLICY_RL_ONE) {
        debit(b, lim, cost);
        if (b->balance >= POLICY_RL_ONE)
            b->over_since_ms = POLICY_RL_NEVER; /* a token to spare: slower than the rate */
        admitted(b, lim, res);
        return;
    }
    if (!boxed(b, now_ms)) {
        if (b->over_since_ms == POLICY_RL_NEVER)
            b->over_since_ms = now_ms;
        if (lim->penalty_after_ms && lim->penalty_ms && now_ms - b->over_since_ms >= lim->penalty_after_ms) {
            /* The box ends the episode: a client leaving it starts afresh. */
            b->penalty_until_ms = now_ms + lim->penalty_ms;
            b->over_since_ms = POLICY_RL_NEVER;
        }
    }
    refused(b, lim, now_ms, res);
}

void policy_rl_charge(policy_rl_bucket_t *b, const policy_rl_limit_t *lim, uint32_t extra, int64_t now_ms,
                      policy_rl_result_t *res)
{
    refill(b, lim, now_ms);
    debit(b, lim, extra);
    if (res)
        admitted(b, lim, res);
}

policy_rl_state_t policy_rl_state(const policy_rl_bucket_t *b, const policy_rl_limit_t *lim, int64_t now_ms)
{
    if (boxed(b, now_ms))
        return POLICY_RL_PENALIZED;
    int64_t bal = policy_rl_balance(b, lim, now_ms);
    if (bal >= full_of(lim))
        return POLICY_RL_IDLE;
    if (bal < POLICY_RL_ONE || b->over_since_ms != POLICY_RL_NEVER)
        return POLICY_RL_LIMITED;
    return POLICY_RL_ACTIVE;
}

/* Write `"NAME"` (RFC 8941 sf-string) followed by the formatted
 * parameters into out[0..cap). */
static int member(char *out, size_t cap, const char *name, const char *fmt, uint64_t a, uint64_t b)
{
    size_t nlen = strlen(name), len = 0;
    if (!nlen || nlen > POLICY_RL_NAME_MAX)
        return -EINVAL;
    if (cap < 3)
        return -E2BIG;
    out[len++] = '"';
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c > 0x7e)
            return -EINVAL;
        if (len + 3 >= cap)
            return -E2BIG;
        if (c == '"' || c == '\\')
            out[len++] = '\\';
        out[len++] = (char)c;
    }
    out[len++] = '"';
    int n = snprintf(out + len, cap - len, fmt, (unsigned long long)a, (unsigned long long)b);
    if (n < 0 || (size_t)n >= cap - len)
        return -E2BIG;
    return (int)(len + (size_t)n);
}

int policy_rl_policy_field(const char *name, const policy_rl_limit_t *lim, char *out, size_t cap)
{
    /* burst tokens at rate_milli / 1000 per second: burst * 1000 / rate_milli s. */
    uint64_t w = ((uint64_t)lim->burst * 1000 + (uint64_t)rate_of(lim) - 1) / (uint64_t)rate_of(lim);
    return member(out, cap, name, ";q=%llu;w=%llu", lim->burst, w ? w : 1);
}

int policy_rl_limit_field(const char *name, const policy_rl_result_t *res, char *out, size_t cap)
{
    return member(out, cap, name, ";r=%llu;t=%llu", res->remaining, res->reset_s);
}

static const uint8_t v4_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

bool policy_rl_addr_is_v4(const policy_rl_addr_t *a)
{
    return memcmp(a->b, v4_prefix, sizeof v4_prefix) == 0;
}

static void from_v4(const void *in4, policy_rl_addr_t *out)
{
    memcpy(out->b, v4_prefix, sizeof v4_prefix);
    memcpy(out->b + 12, in4, 4);
}

int policy_rl_addr_from_sockaddr(const struct sockaddr *sa, policy_rl_addr_t *out)
{
    if (sa->sa_family == AF_INET)
        from_v4(&((const struct sockaddr_in *)sa)->sin_addr, out);
    else if (sa->sa_family == AF_INET6)
        memcpy(out->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    else
        return -EAFNOSUPPORT;
    return 0;
}

/* Parse p[0..n) as an address; with ports, also "a.b.c.d:port",
 * "[v6]" and "[v6]:port" (what proxies put in X-Forwarded-For). */
static bool parse_addr(const char *p, size_t n, bool ports, policy_rl_addr_t *out)
{
    char s[64];
    if (!n || n >= sizeof s)
        return false;
    memcpy(s, p, n);
    s[n] = '\0';
    char *end = NULL;
    if (ports && s[0] == '[' && (end = strchr(s, ']')) != NULL) {
        *end++ = '\0';
        memmove(s, s + 1, (size_t)(end - s));
        end = *end ? end : NULL;
        if (end && *end != ':')
            return false;
    } else if (ports && strchr(s, '.') && (end = strchr(s, ':')) != NULL && end == strrchr(s, ':')) {
        *end = '\0'; /* a.b.c.d:port (one colon: ::ffff:a.b.c.d has several) */
    } else {
        end = NULL;
    }
    if (end) {
        size_t plen = strlen(end + 1);
        if (plen < 1 || plen > 5 || strspn(end + 1, "0123456789") != plen || atoi(end + 1) > 65535)
            return false;
    }
    unsigned char in4[4];
    if (inet_pton(AF_INET, s, in4) == 1) {
        from_v4(in4, out);
        return true;
    }
    return inet_pton(AF_INET6, s, out->b) == 1;
}

bool policy_rl_addr_parse(const char *p, size_t n, policy_rl_addr_t *out)
{
    return parse_addr(p, n, false, out);
}

void policy_rl_key_of(const policy_rl_addr_t *a, policy_rl_key_t *out)
{
    memcpy(out->b, a->b, 16);
    if (!policy_rl_addr_is_v4(a))
        memset(out->b + 8, 0, 8);
}

const char *policy_rl_key_format(const policy_rl_key_t *k, char *out, size_t cap)
{
    policy_rl_addr_t a;
    memcpy(a.b, k->b, 16);
    if (policy_rl_addr_is_v4(&a)) {
        if (!inet_ntop(AF_INET, k->b + 12, out, (socklen_t)cap))
            snprintf(out, cap, "?");
    } else if (inet_ntop(AF_INET6, k->b, out, (socklen_t)cap) && strlen(out) + 4 <= cap) {
        strcat(out, "/64");
    } else {
        snprintf(out, cap, "?");
    }
    return out;
}

/* Clear the bits of a past the first `bits`. */
static void mask(policy_rl_addr_t *a, unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        a->b[i] &= (uint8_t)(0xff00u >> keep);
    }
}

/* Parse one CIDR; NULL, or why it is not one. */
static const char *parse_cidr(const char *p, size_t n, policy_rl_cidr_t *c)
{
    const char *slash = memchr(p, '/', n);
    size_t alen = slash ? (size_t)(slash - p) : n;
    if (!parse_addr(p, alen, false, &c->net))
        return "not an IPv4 or IPv6 address";
    bool v4 = policy_rl_addr_is_v4(&c->net) && memchr(p, ':', alen) == NULL;
    unsigned max = v4 ? 32 : 128, len = max;
    if (slash) {
        size_t dlen = n - alen - 1;
        if (dlen < 1 || dlen > 3 || strspn(slash + 1, "0123456789") < dlen)
            return v4 ? "prefix length is not 0..32" : "prefix length is not 0..128";
        len = 0;
        for (size_t i = 0; i < dlen; i++)
            len = len * 10 + (unsigned)(slash[1 + i] - '0');
        if (len > max)
            return v4 ? "prefix length is not 0..32" : "prefix length is not 0..128";
    }
    c->bits = (uint8_t)(v4 ? 96 + len : len);
    mask(&c->net, c->bits);
    c->v4 = c->bits >= 96 && policy_rl_addr_is_v4(&c->net);
    return NULL;
}

int policy_rl_cidrs_parse(policy_rl_cidrs_t *list, const char *s, char *err, size_t errlen)
{
    static const char seps[] = ", \t\r\n";
    list->n = 0;
    for (const char *p = s + strspn(s, seps); *p; p += strspn(p, seps)) {
        size_t n = strcspn(p, seps);
        if (list->n == POLICY_RL_CIDRS_MAX) {
            snprintf(err, errlen, "more than %d addresses or CIDRs (from \"%.*s\")", POLICY_RL_CIDRS_MAX,
                     (int)(n > 64 ? 64 : n), p);
            return -E2BIG;
        }
        const char *why = parse_cidr(p, n, &list->v[list->n]);
        if (why) {
            snprintf(err, errlen, "\"%.*s\": %s", (int)(n > 64 ? 64 : n), p, why);
            list->n = 0;
            return -EINVAL;
        }
        list->n++;
        p += n;
    }
    return 0;
}

bool policy_rl_cidrs_match(const policy_rl_cidrs_t *list, const policy_rl_addr_t *a)
{
    bool v4 = policy_rl_addr_is_v4(a);
    for (size_t i = 0; i < list->n; i++) {
        const policy_rl_cidr_t *c = &list->v[i];
        if (c->v4 != v4)
            continue;
        policy_rl_addr_t m = *a;
        mask(&m, c->bits);
        if (memcmp(m.b, c->net.b, 16) == 0)
            return true;
    }
    return false;
}

/* The members of one comma-separated line, from the right: start with
 * *end = v.len. Empty members are skipped, as http_list_next does. */
static bool list_prev(http_slice_t v, size_t *end, http_slice_t *item)
{
    while (*end > 0) {
        size_t i = *end;
        while (i > 0 && v.p[i - 1] != ',')
            i--;
        http_slice_t it = http_trim((http_slice_t){ v.p + i, *end - i });
        *end = i ? i - 1 : 0;
        if (it.len) {
            *item = it;
            return true;
        }
    }
    return false;
}

bool policy_rl_xff_client(const policy_rl_addr_t *peer, const http_fields_t *h, const policy_rl_cidrs_t *trusted,
                          policy_rl_addr_t *out)
{
    bool from_xff = false;
    *out = *peer;
    if (!policy_rl_cidrs_match(trusted, peer))
        return false;
    for (size_t i = h->n; i-- > 0;) {
        if (!http_name_eq(http_fields_name(h, i), "X-Forwarded-For"))
            continue;
        http_slice_t v = http_fields_value(h, i), item;
        size_t end = v.len;
        while (list_prev(v, &end, &item)) {
            policy_rl_addr_t a;
            if (!parse_addr(item.p, item.len, true, &a))
                return from_xff;
            *out = a;
            from_xff = true;
            if (!policy_rl_cidrs_match(trusted, &a))
                return true;
        }
    }
    return from_xff;
}
