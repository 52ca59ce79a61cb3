/* policy_sf: RFC 8941 Structured Fields parser (see include/policy_sf.h).
 *
 * The functions follow the parsing algorithms of RFC 8941 section 4.2 one
 * for one, in the same order, so each can be checked against its
 * numbered steps. Leniency is deliberately absent: the point of the
 * format is that every recipient reads a field the same way or not at
 * all, and a cache that "fixes" a field the origin got wrong would obey
 * instructions nobody wrote.
 *
 * The only recursion is item -> inner list -> item, and inner lists
 * cannot nest, so the stack depth is fixed. The work is linear in the
 * input except for key lookups among siblings, which the node cap bounds. */
#include "policy_sf.h"

#include <string.h>

/* Parser state: the input and the read position. */
typedef struct {
    policy_sf_t *sf;
    const char *s;
    size_t len, i;
} ps_t;

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_lcalpha(int c)
{
    return c >= 'a' && c <= 'z';
}

/* RFC 9110 tchar. */
static bool is_tchar(int c)
{
    return is_alpha(c) || is_digit(c) || (c > 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_base64(int c)
{
    return is_alpha(c) || is_digit(c) || c == '+' || c == '/';
}

/* The next byte, or -1 at the end: lets each test read as in the RFC. */
static int peek(const ps_t *ps)
{
    return ps->i < ps->len ? (unsigned char)ps->s[ps->i] : -1;
}

static void skip_sp(ps_t *ps)
{
    while (peek(ps) == ' ')
        ps->i++;
}

/* OWS (SP / HTAB) is allowed only around the commas of Lists and
 * Dictionaries; everywhere else only SP, and only where the RFC says. */
static void skip_ows(ps_t *ps)
{
    while (peek(ps) == ' ' || peek(ps) == '\t')
        ps->i++;
}

static int new_node(ps_t *ps, int32_t *idx)
{
    policy_sf_t *sf = ps->sf;
    if (sf->n >= sf->cap)
        return POLICY_SF_EFULL;
    *idx = (int32_t)sf->n++;
    sf->nodes[*idx] = (policy_sf_node_t){ .next = -1, .items = -1, .params = -1 };
    return 0;
}

/* Append node idx to the chain head..tail. For ordered maps (dedupe), a
 * node whose key is already there takes the old node's place instead:
 * position of the first, value of the last. */
static void link_node(policy_sf_t *sf, int32_t *head, int32_t *tail, int32_t idx, bool dedupe)
{
    policy_sf_node_t *nodes = sf->nodes, *n = &nodes[idx];
    if (dedupe) {
        int32_t prev = -1;
        for (int32_t j = *head; j >= 0; prev = j, j = nodes[j].next) {
            if (nodes[j].klen != n->klen || memcmp(nodes[j].key, n->key, n->klen) != 0)
                continue;
            n->next = nodes[j].next;
            if (prev < 0)
                *head = idx;
            else
                nodes[prev].next = idx;
            if (*tail == j)
                *tail = idx;
            return;
        }
    }
    n->next = -1;
    if (*tail < 0)
        *head = idx;
    else
        nodes[*tail].next = idx;
    *tail = idx;
}

/* 4.2.3.3: lcalpha or "*", then lcalpha / DIGIT / "_" / "-" / "." / "*".
 * Upper case is not folded: "Max-Age" is simply not a key. */
static int parse_key(ps_t *ps, policy_sf_node_t *n)
{
    int c = peek(ps);
    if (!is_lcalpha(c) && c != '*')
        return POLICY_SF_ESYNTAX;
    n->key = ps->s + ps->i;
    for (c = peek(ps); is_lcalpha(c) || is_digit(c) || (c > 0 && strchr("_-.*", c)); c = peek(ps))
        ps->i++;
    n->klen = (size_t)(ps->s + ps->i - n->key);
    return 0;
}

/* 4.2.4: Integer (at most 15 digits) or Decimal (at most 12 integer and
 * 3 fraction digits). The limits keep every value exact in an int64 and
 * in a double, which is why the RFC fails longer numbers instead of
 * rounding them. */
static int parse_number(ps_t *ps, policy_sf_node_t *n)
{
    bool neg = false, dec = false;
    size_t digits = 0, int_digits = 0;
    int64_t v = 0;
    if (peek(ps) == '-') {
        neg = true;
        ps->i++;
    }
    if (!is_digit(peek(ps)))
        return POLICY_SF_ESYNTAX;
    for (int c = peek(ps); c >= 0; c = peek(ps)) {
        if (is_digit(c)) {
            v = v * 10 + (c - '0');
            digits++;
        } else if (c == '.' && !dec) {
            if (digits > 12)
                return POLICY_SF_ESYNTAX;
            dec = true;
            int_digits = digits;
        } else {
            break;
        }
        ps->i++;
        if (digits > 15) /* 15 characters for an Integer, 16 with the dot */
            return POLICY_SF_ESYNTAX;
    }
    if (dec) {
        size_t frac = digits - int_digits;
        if (frac == 0 || frac > 3) /* "1." and "1.2345" both fail */
            return POLICY_SF_ESYNTAX;
        for (; frac < 3; frac++)
            v *= 10;
    }
    n->type = dec ? POLICY_SF_DECIMAL : POLICY_SF_INTEGER;
    n->num = neg ? -v : v;
    return 0;
}

/* 4.2.5: printable ASCII; the only escapes are \" and \\. */
static int parse_string(ps_t *ps, policy_sf_node_t *n)
{
    size_t start = ++ps->i;
    n->type = POLICY_SF_STRING;
    for (int c = peek(ps); c >= 0; c = peek(ps)) {
        ps->i++;
        if (c == '\\') {
            c = peek(ps);
            if (c != '"' && c != '\\')
                return POLICY_SF_ESYNTAX;
            ps->i++;
            n->escaped = true;
        } else if (c == '"') {
            n->p = ps->s + start;
            n->len = ps->i - 1 - start;
            return 0;
        } else if (c < 0x20 || c > 0x7e) {
            return POLICY_SF_ESYNTAX;
        }
    }
    return POLICY_SF_ESYNTAX; /* unterminated */
}

/* 4.2.6: ALPHA or "*" (checked by the caller), then tchar / ":" / "/". */
static int parse_token(ps_t *ps, policy_sf_node_t *n)
{
    n->type = POLICY_SF_TOKEN;
    n->p = ps->s + ps->i;
    for (int c = peek(ps); is_tchar(c) || c == ':' || c == '/'; c = peek(ps))
        ps->i++;
    n->len = (size_t)(ps->s + ps->i - n->p);
    return 0;
}

/* 4.2.7: base64 between colons. The RFC lets parsers accept missing "="
 * padding (and we do), but "=" anywhere but a final pad of at most two,
 * or a length no base64 text can have, would not decode: fail. */
static int parse_bytes(ps_t *ps, policy_sf_node_t *n)
{
    size_t start = ++ps->i, pad = 0;
    int c;
    for (c = peek(ps); c >= 0 && c != ':'; c = peek(ps)) {
        if (c == '=')
            pad++;
        else if (!is_base64(c) || pad)
            return POLICY_SF_ESYNTAX;
        ps->i++;
    }
    if (c != ':')
        return POLICY_SF_ESYNTAX;
    size_t len = ps->i - start;
    if (pad > 2 || (pad && len % 4) || (len - pad) % 4 == 1)
        return POLICY_SF_ESYNTAX;
    ps->i++;
    n->type = POLICY_SF_BYTES;
    n->p = ps->s + start;
    n->len = len;
    return 0;
}

/* 4.2.3.1: dispatch on the first character. */
static int parse_bare(ps_t *ps, policy_sf_node_t *n)
{
    int c = peek(ps);
    if (c == '-' || is_digit(c))
        return parse_number(ps, n);
    if (c == '"')
        return parse_string(ps, n);
    if (is_alpha(c) || c == '*')
        return parse_token(ps, n);
    if (c == ':')
        return parse_bytes(ps, n);
    if (c == '?') { /* 4.2.8 */
        ps->i++;
        c = peek(ps);
        if (c != '0' && c != '1')
            return POLICY_SF_ESYNTAX;
        ps->i++;
        n->type = POLICY_SF_BOOLEAN;
        n->num = c == '1';
        return 0;
    }
    return POLICY_SF_ESYNTAX;
}

/* 4.2.3.2: ";" key [ "=" bare-item ], SP allowed only after the ";". A
 * parameter without a value is Boolean true. */
static int parse_params(ps_t *ps, int32_t owner)
{
    int32_t tail = -1;
    while (peek(ps) == ';') {
        int32_t idx;
        int rc;
        ps->i++;
        skip_sp(ps);
        if ((rc = new_node(ps, &idx)))
            return rc;
        policy_sf_node_t *p = &ps->sf->nodes[idx];
        if ((rc = parse_key(ps, p)))
            return rc;
        if (peek(ps) == '=') {
            ps->i++;
            if ((rc = parse_bare(ps, p)))
                return rc;
        } else {
            p->type = POLICY_SF_BOOLEAN;
            p->num = 1;
        }
        link_node(ps->sf, &ps->sf->nodes[owner].params, &tail, idx, true);
    }
    return 0;
}

/* 4.2.3: bare item, then parameters, into node idx. */
static int parse_item(ps_t *ps, int32_t idx)
{
    int rc = parse_bare(ps, &ps->sf->nodes[idx]);
    return rc ? rc : parse_params(ps, idx);
}

/* 4.2.1.2: "(" items separated by SP ")" parameters. */
static int parse_inner_list(ps_t *ps, int32_t idx)
{
    int32_t tail = -1;
    policy_sf_node_t *nodes = ps->sf->nodes;
    nodes[idx].type = POLICY_SF_INNER_LIST;
    ps->i++;
    while (peek(ps) >= 0) {
        int32_t item;
        int rc;
        skip_sp(ps);
        if (peek(ps) == ')') {
            ps->i++;
            return parse_params(ps, idx);
        }
        if ((rc = new_node(ps, &item)) || (rc = parse_item(ps, item)))
            return rc;
        link_node(ps->sf, &nodes[idx].items, &tail, item, false);
        nodes[idx].num++;
        if (peek(ps) != ' ' && peek(ps) != ')')
            return POLICY_SF_ESYNTAX;
    }
    return POLICY_SF_ESYNTAX; /* no ")" */
}

static int parse_item_or_inner(ps_t *ps, int32_t idx)
{
    return peek(ps) == '(' ? parse_inner_list(ps, idx) : parse_item(ps, idx);
}

/* 4.2.1 and 4.2.2 share their shape: members separated by commas with
 * OWS around them, no empty member, no trailing comma. A Dictionary
 * member is a key, then "=" and a value, or parameters alone (true). */
static int parse_members(ps_t *ps, bool dict)
{
    policy_sf_t *sf = ps->sf;
    int32_t tail = -1;
    while (peek(ps) >= 0) {
        int32_t idx;
        int rc;
        if ((rc = new_node(ps, &idx)))
            return rc;
        if (!dict) {
            rc = parse_item_or_inner(ps, idx);
        } else if (!(rc = parse_key(ps, &sf->nodes[idx]))) {
            if (peek(ps) == '=') {
                ps->i++;
                rc = parse_item_or_inner(ps, idx);
            } else {
                sf->nodes[idx].type = POLICY_SF_BOOLEAN;
                sf->nodes[idx].num = 1;
                rc = parse_params(ps, idx);
            }
        }
        if (rc)
            return rc;
        link_node(sf, &sf->first, &tail, idx, dict);
        skip_ows(ps);
        if (peek(ps) < 0)
            return 0;
        if (peek(ps) != ',')
            return POLICY_SF_ESYNTAX;
        ps->i++;
        skip_ows(ps);
        if (peek(ps) < 0)
            return POLICY_SF_ESYNTAX; /* trailing comma */
    }
    return 0;
}

void policy_sf_init(policy_sf_t *sf, policy_sf_node_t *nodes, size_t cap)
{
    memset(sf, 0, sizeof *sf);
    sf->nodes = nodes;
    sf->cap = cap > POLICY_SF_NODES_MAX ? POLICY_SF_NODES_MAX : cap;
    sf->first = -1;
}

int policy_sf_parse(policy_sf_t *sf, policy_sf_kind_t kind, const char *v, size_t len)
{
    ps_t ps = { .sf = sf, .s = v, .len = len };
    int rc;
    sf->n = 0;
    sf->first = -1;
    sf->err_at = 0;
    /* 4.2 steps 2 and 6: leading and trailing SP (not HTAB) go. */
    skip_sp(&ps);
    if (kind == POLICY_SF_ITEM) {
        int32_t idx;
        if (!(rc = new_node(&ps, &idx)) && !(rc = parse_item(&ps, idx)))
            sf->first = idx;
    } else {
        rc = parse_members(&ps, kind == POLICY_SF_DICT);
    }
    skip_sp(&ps);
    if (!rc && peek(&ps) >= 0)
        rc = POLICY_SF_ESYNTAX;
    if (rc) {
        sf->err_at = ps.i;
        sf->n = 0;
        sf->first = -1;
    }
    return rc;
}

int32_t policy_sf_find(const policy_sf_t *sf, int32_t first, const char *key)
{
    size_t kl = strlen(key);
    for (int32_t i = first; i >= 0; i = sf->nodes[i].next)
        if (sf->nodes[i].klen == kl && memcmp(sf->nodes[i].key, key, kl) == 0)
            return i;
    return -1;
}

int policy_sf_unescape(const char *p, size_t len, char *out, size_t cap, size_t *olen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\\' && i + 1 < len)
            i++;
        if (o + 1 >= cap)
            return POLICY_SF_ETOOLONG;
        out[o++] = p[i];
    }
    if (o >= cap)
        return POLICY_SF_ETOOLONG;
    out[o] = '\0';
    *olen = o;
    return 0;
}

int policy_sf_join(const http_fields_t *h, const char *name, char *buf, size_t cap, http_slice_t *out)
{
    int lines = 0;
    size_t used = 0;
    *out = (http_slice_t){ "", 0 };
    for (long i = http_fields_find(h, name, 0); i >= 0; i = http_fields_find(h, name, (size_t)i + 1)) {
        http_slice_t v = http_fields_value(h, (size_t)i);
        if (lines == 0) {
            *out = v; /* the common case: no copy */
        } else {
            size_t base = lines == 1 ? out->len : used;
            if (base + 2 + v.len > cap) {
                *out = (http_slice_t){ "", 0 };
                return POLICY_SF_ETOOLONG;
            }
            /* The first line is copied only once a second one exists. */
            if (lines == 1) {
                memcpy(buf, out->p, out->len);
                used = out->len;
            }
            memcpy(buf + used, ", ", 2);
            memcpy(buf + used + 2, v.p, v.len);
            used += 2 + v.len;
            *out = (http_slice_t){ buf, used };
        }
        lines++;
    }
    return lines;
}

const char *policy_sf_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case POLICY_SF_ESYNTAX: return "not a valid structured field";
    case POLICY_SF_EFULL: return "too many members, items or parameters";
    case POLICY_SF_ETOOLONG: return "value too long for the buffer";
    }
    return "unknown error";
}
