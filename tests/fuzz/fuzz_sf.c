/* Fuzz target: Structured Field Values (policy_sf, RFC 8941), as
 * CDN-Cache-Control and the RateLimit fields use them. The first byte
 * chooses the top-level type (Dictionary, List, Item) and a small or a
 * large node array; the rest is the field value, not NUL-terminated.
 *
 * A parse that succeeds must give a well-formed tree: every index in
 * range, every chain ending within the nodes used, inner-list counts
 * matching their items, numbers within the RFC's ranges, keys and strings
 * of the allowed characters (each read whole, unescaped where escaped),
 * a repeated key kept once. policy_sf has no serialiser, so this target
 * writes one (RFC 8941 section 4.1, the canonical form) and checks that
 * parsing the serialisation gives the same tree. A failed parse leaves
 * nothing (first = -1, n = 0) and err_at within the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_input.h"
#include "policy_sf.h"

#define BIG 512
#define SMALL 8

static void must(bool ok)
{
    if (!ok)
        abort();
}

static bool is_key_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || c == '*' || (!first && ((c >= '0' && c <= '9') || strchr("_-.", c)));
}

/* Walk a chain of siblings: indices in range, at most n of them. */
static size_t chain_len(const policy_sf_t *sf, int32_t first)
{
    size_t steps = 0;
    for (int32_t i = first; i >= 0; i = sf->nodes[i].next) {
        must((size_t)i < sf->n);
        must(++steps <= sf->n);
    }
    return steps;
}

static void check_key(const policy_sf_t *sf, int32_t first, const policy_sf_node_t *m)
{
    must(m->key && m->klen > 0);
    for (size_t k = 0; k < m->klen; k++)
        must(is_key_char(m->key[k], k == 0));
    /* Ordered map: the key is there once, so finding it finds this node. */
    char key[BIG];
    if (m->klen < sizeof key) {
        memcpy(key, m->key, m->klen);
        key[m->klen] = '\0';
        must(policy_sf_find(sf, first, key) == (int32_t)(m - sf->nodes));
    }
}

static void check_bare(const policy_sf_node_t *m)
{
    switch (m->type) {
    case POLICY_SF_INTEGER:
        must(m->num >= -999999999999999 && m->num <= 999999999999999);
        break;
    case POLICY_SF_DECIMAL:
        must(m->num >= -999999999999999 && m->num <= 999999999999999);
        break;
    case POLICY_SF_BOOLEAN:
        must(m->num == 0 || m->num == 1);
        break;
    case POLICY_SF_STRING: {
        char out[BIG];
        size_t olen = 0;
        for (size_t k = 0; k < m->len; k++)
            must(m->p[k] >= 0x20 && m->p[k] <= 0x7e);
        if (policy_sf_unescape(m->p, m->len, out, sizeof out, &olen) == 0)
            must(olen <= m->len && out[olen] == '\0' && (m->escaped || olen == m->len));
        break;
    }
    case POLICY_SF_TOKEN:
        must(m->len > 0);
        fuzz_touch(m->p, m->len);
        break;
    case POLICY_SF_BYTES:
        fuzz_touch(m->p, m->len);
        break;
    default:
        abort();
    }
}

static void check_params(const policy_sf_t *sf, int32_t first)
{
    chain_len(sf, first);
    for (int32_t i = first; i >= 0; i = sf->nodes[i].next) {
        const policy_sf_node_t *p = &sf->nodes[i];
        check_key(sf, first, p);
        must(p->items == -1 && p->params == -1 && p->type != POLICY_SF_INNER_LIST);
        check_bare(p);
    }
}

static void check_item_or_inner(const policy_sf_t *sf, const policy_sf_node_t *m)
{
    check_params(sf, m->params);
    if (m->type == POLICY_SF_INNER_LIST) {
        must((size_t)m->num == chain_len(sf, m->items));
        for (int32_t i = m->items; i >= 0; i = sf->nodes[i].next) {
            const policy_sf_node_t *it = &sf->nodes[i];
            must(!it->key && it->type != POLICY_SF_INNER_LIST && it->items == -1);
            check_bare(it);
            check_params(sf, it->params);
        }
    } else {
        must(m->items == -1);
        check_bare(m);
    }
}

static void check_tree(const policy_sf_t *sf, policy_sf_kind_t kind)
{
    if (kind == POLICY_SF_ITEM) {
        must(sf->first >= 0 && chain_len(sf, sf->first) == 1);
        must(sf->nodes[sf->first].type != POLICY_SF_INNER_LIST && !sf->nodes[sf->first].key);
    }
    chain_len(sf, sf->first);
    for (int32_t i = sf->first; i >= 0; i = sf->nodes[i].next) {
        const policy_sf_node_t *m = &sf->nodes[i];
        if (kind == POLICY_SF_DICT)
            check_key(sf, sf->first, m);
        else
            must(!m->key);
        check_item_or_inner(sf, m);
    }
}

/* ---- RFC 8941 section 4.1, serialisation ---- */

static void put(buf_t *b, const char *p, size_t n)
{
    if (buf_append(b, p, n))
        abort();
}

static void put_s(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static void ser_bare(buf_t *b, const policy_sf_node_t *m)
{
    char num[64];
    switch (m->type) {
    case POLICY_SF_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)m->num);
        put_s(b, num);
        break;
    case POLICY_SF_DECIMAL: {
        /* 4.1.5: at most three fraction digits, trailing zeros dropped but
         * one kept. */
        long long a = m->num < 0 ? -(long long)m->num : (long long)m->num;
        int f = (int)(a % 1000), digits = 3;
        while (digits > 1 && f % 10 == 0) {
            f /= 10;
            digits--;
        }
        snprintf(num, sizeof num, "%s%lld.%0*d", m->num < 0 ? "-" : "", a / 1000, digits, f);
        put_s(b, num);
        break;
    }
    case POLICY_SF_STRING: /* p is the escaped form as sent */
        put_s(b, "\"");
        put(b, m->p, m->len);
        put_s(b, "\"");
        break;
    case POLICY_SF_TOKEN:
        put(b, m->p, m->len);
        break;
    case POLICY_SF_BYTES:
        put_s(b, ":");
        put(b, m->p, m->len);
        put_s(b, ":");
        break;
    case POLICY_SF_BOOLEAN:
        put_s(b, m->num ? "?1" : "?0");
        break;
    default:
        abort();
    }
}

static void ser_params(buf_t *b, const policy_sf_t *sf, int32_t first)
{
    for (int32_t i = first; i >= 0; i = sf->nodes[i].next) {
        const policy_sf_node_t *p = &sf->nodes[i];
        put_s(b, ";");
        put(b, p->key, p->klen);
        if (!(p->type == POLICY_SF_BOOLEAN && p->num == 1)) {
            put_s(b, "=");
            ser_bare(b, p);
        }
    }
}

static void ser_item_or_inner(buf_t *b, const policy_sf_t *sf, const policy_sf_node_t *m)
{
    if (m->type == POLICY_SF_INNER_LIST) {
        put_s(b, "(");
        for (int32_t i = m->items; i >= 0; i = sf->nodes[i].next) {
            ser_bare(b, &sf->nodes[i]);
            ser_params(b, sf, sf->nodes[i].params);
            if (sf->nodes[i].next >= 0)
                put_s(b, " ");
        }
        put_s(b, ")");
    } else {
        ser_bare(b, m);
    }
    ser_params(b, sf, m->params);
}

static void serialise(buf_t *b, const policy_sf_t *sf, policy_sf_kind_t kind)
{
    for (int32_t i = sf->first; i >= 0; i = sf->nodes[i].next) {
        const policy_sf_node_t *m = &sf->nodes[i];
        if (kind == POLICY_SF_DICT) {
            put(b, m->key, m->klen);
            if (m->type == POLICY_SF_BOOLEAN && m->num == 1) { /* 4.1.2: true is the key alone */
                ser_params(b, sf, m->params);
            } else {
                put_s(b, "=");
                ser_item_or_inner(b, sf, m);
            }
        } else {
            ser_item_or_inner(b, sf, m);
        }
        if (m->next >= 0)
            put_s(b, ", ");
    }
}

/* ---- the same tree ---- */

static bool same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static bool same_chain(const policy_sf_t *x, int32_t i, const policy_sf_t *y, int32_t j);

static bool same_node(const policy_sf_t *x, const policy_sf_node_t *a, const policy_sf_t *y,
                      const policy_sf_node_t *b)
{
    if (a->type != b->type || !a->key != !b->key || (a->key && !same_bytes(a->key, a->klen, b->key, b->klen)))
        return false;
    bool sliced = a->type == POLICY_SF_STRING || a->type == POLICY_SF_TOKEN || a->type == POLICY_SF_BYTES;
    if (sliced ? !same_bytes(a->p, a->len, b->p, b->len) || a->escaped != b->escaped : a->num != b->num)
        return false;
    return same_chain(x, a->params, y, b->params) && same_chain(x, a->items, y, b->items);
}

static bool same_chain(const policy_sf_t *x, int32_t i, const policy_sf_t *y, int32_t j)
{
    for (; i >= 0 && j >= 0; i = x->nodes[i].next, j = y->nodes[j].next)
        if (!same_node(x, &x->nodes[i], y, &y->nodes[j]))
            return false;
    return i < 0 && j < 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static policy_sf_node_t nodes[BIG], again_nodes[BIG];
    if (size < 1)
        return 0;
    policy_sf_kind_t kind = (policy_sf_kind_t)(data[0] % 3);
    size_t cap = data[0] & 0x80 ? SMALL : BIG;
    size_t n = size - 1;
    char *v = fuzz_dup(data + 1, n);
    policy_sf_t sf;
    policy_sf_init(&sf, nodes, cap);
    int rc = policy_sf_parse(&sf, kind, v, n);
    must(rc == 0 || rc == POLICY_SF_ESYNTAX || rc == POLICY_SF_EFULL);
    must(policy_sf_strerror(rc) != NULL);
    if (rc) {
        must(sf.first == -1 && sf.n == 0 && sf.err_at <= n);
        free(v);
        return 0;
    }
    must(sf.n <= cap);
    check_tree(&sf, kind);

    buf_t out;
    buf_init(&out, 0);
    serialise(&out, &sf, kind);
    /* The serialisation in its own exact buffer, like any field value. */
    char *s = fuzz_dup((const uint8_t *)(out.data ? out.data : ""), out.len);
    policy_sf_t again;
    policy_sf_init(&again, again_nodes, BIG);
    rc = policy_sf_parse(&again, kind, s, out.len);
    /* Dropped duplicates and extra SP only shrink it: it fits if the
     * original did. */
    must(rc == 0);
    check_tree(&again, kind);
    must(same_chain(&sf, sf.first, &again, again.first));
    free(s);
    buf_free(&out);
    free(v);
    return 0;
}
