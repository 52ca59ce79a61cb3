/* Unit tests for policy_sf: RFC 8941 Items, Lists and Dictionaries, valid
 * and invalid, at the limits the RFC sets. Cases are written in the shape
 * of the public structured-field-tests suite: input text, then either the
 * canonical serialization of what was parsed or a failure. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../test_fields.h"
#include "policy_sf.h"

#define NODES 64

/* Canonical text of what sf holds (RFC 8941 4.1), so one string shows
 * types, values, order and parameters at once. Decimals keep all three
 * fraction digits, which is enough to tell them apart from Integers. */
typedef struct {
    char s[1024];
    size_t n;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(o->s + o->n, sizeof o->s - o->n, fmt, ap);
    va_end(ap);
    cr_assert(w >= 0 && (size_t)w < sizeof o->s - o->n);
    o->n += (size_t)w;
}

static void put_bare(out_t *o, const policy_sf_node_t *n)
{
    switch (n->type) {
    case POLICY_SF_INTEGER: put(o, "%lld", (long long)n->num); break;
    case POLICY_SF_DECIMAL: {
        long long a = n->num < 0 ? -n->num : n->num;
        put(o, "%s%lld.%03lld", n->num < 0 ? "-" : "", a / 1000, a % 1000);
        break;
    }
    case POLICY_SF_STRING: put(o, "\"%.*s\"", (int)n->len, n->p); break;
    case POLICY_SF_TOKEN: put(o, "%.*s", (int)n->len, n->p); break;
    case POLICY_SF_BYTES: put(o, ":%.*s:", (int)n->len, n->p); break;
    case POLICY_SF_BOOLEAN: put(o, "?%d", (int)n->num); break;
    case POLICY_SF_INNER_LIST: cr_assert_fail("inner list as bare item"); break;
    }
}

static void put_params(out_t *o, const policy_sf_t *sf, int32_t first)
{
    for (int32_t i = first; i >= 0; i = sf->nodes[i].next) {
        const policy_sf_node_t *p = &sf->nodes[i];
        put(o, ";%.*s", (int)p->klen, p->key);
        if (!(p->type == POLICY_SF_BOOLEAN && p->num == 1)) {
            put(o, "=");
            put_bare(o, p);
        }
    }
}

static void put_value(out_t *o, const policy_sf_t *sf, const policy_sf_node_t *n)
{
    if (n->type == POLICY_SF_INNER_LIST) {
        int64_t count = 0;
        put(o, "(");
        for (int32_t i = n->items; i >= 0; i = sf->nodes[i].next, count++) {
            put(o, "%s", i == n->items ? "" : " ");
            put_bare(o, &sf->nodes[i]);
            put_params(o, sf, sf->nodes[i].params);
        }
        put(o, ")");
        cr_assert_eq(count, n->num, "inner list count");
    } else {
        put_bare(o, n);
    }
    put_params(o, sf, n->params);
}

static const char *canon(const policy_sf_t *sf, policy_sf_kind_t kind)
{
    static out_t o;
    o.n = 0;
    o.s[0] = '\0';
    for (int32_t i = sf->first; i >= 0; i = sf->nodes[i].next) {
        const policy_sf_node_t *n = &sf->nodes[i];
        put(&o, "%s", i == sf->first ? "" : ", ");
        if (kind == POLICY_SF_DICT) {
            put(&o, "%.*s", (int)n->klen, n->key);
            if (n->type == POLICY_SF_BOOLEAN && n->num == 1) { /* bare key */
                put_params(&o, sf, n->params);
                continue;
            }
            put(&o, "=");
        }
        put_value(&o, sf, n);
    }
    return o.s;
}

static policy_sf_node_t nodes[NODES];
static policy_sf_t sf;

static int parse(policy_sf_kind_t kind, const char *v)
{
    policy_sf_init(&sf, nodes, NODES);
    return policy_sf_parse(&sf, kind, v, strlen(v));
}

/* v parses as kind and serializes to want. */
static void ok(policy_sf_kind_t kind, const char *v, const char *want)
{
    int rc = parse(kind, v);
    cr_assert_eq(rc, 0, "[%s]: %s at %zu", v, policy_sf_strerror(rc), sf.err_at);
    cr_assert_str_eq(canon(&sf, kind), want, "[%s]", v);
}

/* v does not parse as kind, and leaves nothing behind. */
static void bad(policy_sf_kind_t kind, const char *v)
{
    int rc = parse(kind, v);
    cr_assert_eq(rc, POLICY_SF_ESYNTAX, "[%s] parsed: %s", v, rc ? policy_sf_strerror(rc) : canon(&sf, kind));
    cr_assert_eq(sf.first, -1);
}

#define ITEM_OK(v, want) ok(POLICY_SF_ITEM, v, want)
#define ITEM_BAD(v) bad(POLICY_SF_ITEM, v)
#define LIST_OK(v, want) ok(POLICY_SF_LIST, v, want)
#define LIST_BAD(v) bad(POLICY_SF_LIST, v)
#define DICT_OK(v, want) ok(POLICY_SF_DICT, v, want)
#define DICT_BAD(v) bad(POLICY_SF_DICT, v)

Test(sf, integers)
{
    ITEM_OK("42", "42");
    ITEM_OK("-42", "-42");
    ITEM_OK("0", "0");
    ITEM_OK("-0", "0");
    ITEM_OK("00", "0"); /* leading zeros are allowed */
    ITEM_OK("042", "42");
    ITEM_OK("999999999999999", "999999999999999"); /* 15 digits: the maximum */
    ITEM_OK("-999999999999999", "-999999999999999");
    ITEM_OK("000000000000001", "1");
    ITEM_BAD("1000000000000000"); /* 16 digits */
    ITEM_BAD("-1000000000000000");
    ITEM_BAD("0000000000000001");
    ITEM_BAD("+42");
    ITEM_BAD("- 42");
    ITEM_BAD("-");
    ITEM_BAD("4 2");
    ITEM_BAD("42a");
    ITEM_BAD("2,3"); /* an Item is one value */
    parse(POLICY_SF_ITEM, "-17");
    cr_assert_eq(sf.nodes[sf.first].type, POLICY_SF_INTEGER);
    cr_assert_eq(sf.nodes[sf.first].num, -17);
}

Test(sf, decimals)
{
    ITEM_OK("1.5", "1.500");
    ITEM_OK("-1.5", "-1.500");
    ITEM_OK("0.0", "0.000");
    ITEM_OK("1.123", "1.123");  /* 3 fraction digits: the maximum */
    ITEM_OK("123456789012.123", "123456789012.123"); /* 12 + 3 */
    ITEM_OK("-123456789012.123", "-123456789012.123");
    ITEM_BAD("1.1234");          /* 4 fraction digits */
    ITEM_BAD("1234567890123.1"); /* 13 integer digits */
    ITEM_BAD("1.");              /* trailing dot */
    ITEM_BAD("-1.");
    ITEM_BAD(".5");
    ITEM_BAD("-.5");
    ITEM_BAD("1.5.1");
    ITEM_BAD("1,5");
    parse(POLICY_SF_ITEM, "2.05");
    cr_assert_eq(sf.nodes[sf.first].type, POLICY_SF_DECIMAL);
    cr_assert_eq(sf.nodes[sf.first].num, 2050);
}

Test(sf, strings)
{
    ITEM_OK("\"foo bar\"", "\"foo bar\"");
    ITEM_OK("\"\"", "\"\"");
    ITEM_OK("\" ~!#$%&'()*+,-./:;<=>?@[]^_`{|}\"", "\" ~!#$%&'()*+,-./:;<=>?@[]^_`{|}\"");
    ITEM_OK("\"a\\\"b\\\\c\"", "\"a\\\"b\\\\c\""); /* escapes kept in the slice */
    ITEM_BAD("\"abc");                               /* unterminated */
    ITEM_BAD("\"abc\\\"");                           /* the quote is escaped */
    ITEM_BAD("\"abc\\");
    ITEM_BAD("\"a\\nb\"");                           /* only \" and \\ */
    ITEM_BAD("\"a\\'b\"");
    ITEM_BAD("\"a\tb\"");                            /* controls */
    ITEM_BAD("\"a\nb\"");
    ITEM_BAD("\"a\x7f" "b\"");
    ITEM_BAD("\"caf\xc3\xa9\"");                     /* not ASCII */
    ITEM_BAD("\"a\"b");
    ITEM_BAD("'a'");

    parse(POLICY_SF_ITEM, "\"plain\"");
    cr_assert_not(sf.nodes[sf.first].escaped);
    cr_assert_eq(parse(POLICY_SF_ITEM, "\"say \\\"hi\\\" \\\\o/\""), 0);
    const policy_sf_node_t *n = &sf.nodes[sf.first];
    cr_assert(n->escaped);
    char buf[32];
    size_t l;
    cr_assert_eq(policy_sf_unescape(n->p, n->len, buf, sizeof buf, &l), 0);
    cr_assert_str_eq(buf, "say \"hi\" \\o/");
    cr_assert_eq(l, 12);
    cr_assert_eq(policy_sf_unescape(n->p, n->len, buf, 13, &l), 0); /* exactly room for the NUL */
    cr_assert_eq(policy_sf_unescape(n->p, n->len, buf, 12, &l), POLICY_SF_ETOOLONG);
    cr_assert_eq(policy_sf_unescape("", 0, buf, 0, &l), POLICY_SF_ETOOLONG);
}

Test(sf, tokens)
{
    ITEM_OK("foo", "foo");
    ITEM_OK("Foo", "Foo"); /* tokens, unlike keys, may hold upper case */
    ITEM_OK("*foo", "*foo");
    ITEM_OK("*", "*");
    ITEM_OK("text/html", "text/html");
    ITEM_OK("a:b/c", "a:b/c");
    ITEM_OK("foo123!#$%&'*+-.^_`|~:/", "foo123!#$%&'*+-.^_`|~:/");
    ITEM_OK("text/html;q=1.0", "text/html;q=1.000");
    ITEM_BAD("_foo");
    ITEM_BAD("1foo"); /* a number, then junk */
    ITEM_BAD("fo@o");
    ITEM_BAD("foo,bar");
    ITEM_BAD("foo bar");
    LIST_OK("foo,bar", "foo, bar");
}

Test(sf, byte_sequences)
{
    ITEM_OK(":aGVsbG8=:", ":aGVsbG8=:");
    ITEM_OK("::", "::");
    ITEM_OK(":/+Ah:", ":/+Ah:");
    ITEM_OK(":aGVsbG8:", ":aGVsbG8:"); /* padding may be omitted */
    ITEM_OK(":aGk=:", ":aGk=:");
    ITEM_OK(":aA==:", ":aA==:");
    ITEM_BAD(":aGVsbG8=");   /* unterminated */
    ITEM_BAD(":aGVsb G8=:"); /* whitespace */
    ITEM_BAD(":aGVsbG!8=:");
    ITEM_BAD(":aGVsbG8=!:");
    ITEM_BAD(":=aGVsbG8=:"); /* padding first */
    ITEM_BAD(":a=GVsbG8=:"); /* padding inside */
    ITEM_BAD(":aA===:");     /* too much padding */
    ITEM_BAD(":aGk==:");     /* padding past a multiple of 4 */
    ITEM_BAD(":a:");         /* no base64 text is 1 mod 4 long */
    ITEM_BAD(":_-Ah:");      /* base64url is not base64 */
    parse(POLICY_SF_ITEM, ":aGVsbG8=:");
    cr_assert_eq(sf.nodes[sf.first].type, POLICY_SF_BYTES);
    cr_assert_eq(sf.nodes[sf.first].len, 8);
}

Test(sf, booleans)
{
    ITEM_OK("?1", "?1");
    ITEM_OK("?0", "?0");
    ITEM_BAD("?2");
    ITEM_BAD("?");
    ITEM_BAD("?01");
    ITEM_BAD("? 1");
    ITEM_OK("true", "true"); /* a Token, not a Boolean */
    cr_assert_eq(sf.nodes[sf.first].type, POLICY_SF_TOKEN);
    ITEM_OK("?1;a;b=?0", "?1;a;b=?0");
    parse(POLICY_SF_ITEM, "?0");
    cr_assert_eq(sf.nodes[sf.first].type, POLICY_SF_BOOLEAN);
    cr_assert_eq(sf.nodes[sf.first].num, 0);
}

Test(sf, items_and_spaces)
{
    ITEM_OK("  42  ", "42"); /* leading and trailing SP are discarded */
    ITEM_BAD("\t42");        /* ... but not HTAB */
    ITEM_BAD("42\t");
    ITEM_BAD("");
    ITEM_BAD("   ");
    ITEM_BAD("(1 2)"); /* an Item is never an inner list */
}

Test(sf, parameters)
{
    ITEM_OK("1;a=2;b", "1;a=2;b");
    ITEM_OK("1; a=2; b=\"x\"", "1;a=2;b=\"x\""); /* SP after ";" */
    ITEM_OK("1;a=1;b=2;a=3", "1;a=3;b=2");      /* a map: first position, last value */
    ITEM_OK("1;*x-y_z.w*=?1", "1;*x-y_z.w*");
    ITEM_BAD("1 ;a=2");  /* no SP before ";" */
    ITEM_BAD("1;\ta=2"); /* only SP after it */
    ITEM_BAD("1;a =2");
    ITEM_BAD("1;a= 2");
    ITEM_BAD("1;A=2"); /* keys are lower case */
    ITEM_BAD("1;1a=2");
    ITEM_BAD("1;");
    ITEM_BAD("1;a=(1)"); /* parameter values are bare items */
    ITEM_BAD("1;a=");
    cr_assert_eq(parse(POLICY_SF_ITEM, "text/html;q=0.5;charset=utf-8"), 0);
    int32_t p = sf.nodes[sf.first].params;
    int32_t q = policy_sf_find(&sf, p, "q"), cs = policy_sf_find(&sf, p, "charset");
    cr_assert(q >= 0 && cs >= 0);
    cr_assert_eq(sf.nodes[q].num, 500);
    cr_assert_eq(sf.nodes[cs].type, POLICY_SF_TOKEN);
    cr_assert_eq(policy_sf_find(&sf, p, "x"), -1);
    cr_assert_eq(policy_sf_find(&sf, p, "cha"), -1);
}

Test(sf, lists)
{
    LIST_OK("", "");
    LIST_OK("   ", "");
    LIST_OK("1, 2, 3", "1, 2, 3");
    LIST_OK("1,2,3", "1, 2, 3");
    LIST_OK("  1 ,\t2\t,  3  ", "1, 2, 3"); /* OWS around commas */
    LIST_OK("a, a, b", "a, a, b");           /* a List keeps repeats */
    LIST_OK("\"a\";x=1, :aGk=:, ?0", "\"a\";x=1, :aGk=:, ?0");
    LIST_BAD("1,");        /* trailing comma */
    LIST_BAD("1, ");
    LIST_BAD(",1");
    LIST_BAD("1,,2");      /* empty member */
    LIST_BAD("1, ,2");
    LIST_BAD("1 2");
    LIST_BAD("\t1");       /* leading HTAB is not SP */
    LIST_BAD("1;a, &&&&&");
}

Test(sf, inner_lists)
{
    LIST_OK("(1 2), (a b);x=?0", "(1 2), (a b);x=?0");
    LIST_OK("()", "()");
    LIST_OK("();p=1, ( )", "();p=1, ()");
    LIST_OK("(  a   b  )", "(a b)");
    LIST_OK("(a;x=1 \"s\";y);z", "(a;x=1 \"s\";y);z");
    LIST_BAD("(a,b)");
    LIST_BAD("(a\tb)");
    LIST_BAD("(a b");
    LIST_BAD("(a b)c");
    LIST_BAD("(a (b))"); /* no nesting */
    LIST_BAD("(a)(b)");
    cr_assert_eq(parse(POLICY_SF_LIST, "(x y z)"), 0);
    const policy_sf_node_t *n = &sf.nodes[sf.first];
    cr_assert_eq(n->type, POLICY_SF_INNER_LIST);
    cr_assert_eq(n->num, 3);
    cr_assert_eq(n->key, NULL);
}

Test(sf, dictionaries)
{
    DICT_OK("", "");
    DICT_OK("a=1, b=2", "a=1, b=2");
    DICT_OK("a=1,b=2", "a=1, b=2");
    DICT_OK("  a=1 ,\tb=2  ", "a=1, b=2");
    DICT_OK("a, b;x=1, c=?0", "a, b;x=1, c=?0"); /* bare keys are true */
    DICT_OK("a=?1", "a");
    DICT_OK("a=1, b=2, a=3", "a=3, b=2");       /* first position, last value */
    DICT_OK("a=1, b=2, a", "a, b=2");
    DICT_OK("a=(1 2);x, b=()", "a=(1 2);x, b=()");
    DICT_OK("*a=1, a-b_c.d*9=2", "*a=1, a-b_c.d*9=2");
    DICT_OK("max-age=60, private=\"x-a, x-b\"", "max-age=60, private=\"x-a, x-b\"");
    DICT_BAD("a=1,");     /* trailing comma */
    DICT_BAD("a=1, b=2,");
    DICT_BAD(",a=1");
    DICT_BAD("a=1,,b=2"); /* empty member */
    DICT_BAD("a=1, , b=2");
    DICT_BAD("A=1");      /* upper case key */
    DICT_BAD("aB=1");
    DICT_BAD("Max-Age=1");
    DICT_BAD("1a=1");
    DICT_BAD("-a=1");
    DICT_BAD("a =1");
    DICT_BAD("a= 1");
    DICT_BAD("a=");
    DICT_BAD("a=1 b=2");
    DICT_BAD("a=1;b=2 ;c=3");
    DICT_BAD("\ta=1");    /* leading HTAB */
    DICT_BAD("a=1\t;b");
    DICT_BAD("max-age=10000, &&&&&");
    DICT_BAD("max-age=\"10000");
    DICT_BAD("max-age=1.5000");
    DICT_BAD("no-cache=\"a\", private=\"b");
    /* The examples that must reach the CDN-Cache-Control consumer as
     * valid Dictionaries with the wrong value type. */
    DICT_OK("max-age=\"10000\"", "max-age=\"10000\"");
    DICT_OK("max-age=1.5", "max-age=1.500");
}

Test(sf, dictionary_lookup)
{
    cr_assert_eq(parse(POLICY_SF_DICT, "b=1, a=2;p=3, b=4"), 0);
    int32_t a = policy_sf_find(&sf, sf.first, "a"), b = policy_sf_find(&sf, sf.first, "b");
    cr_assert(a >= 0 && b >= 0);
    cr_assert_eq(sf.nodes[b].num, 4);
    cr_assert_eq(sf.first, b); /* still first */
    cr_assert_eq(sf.nodes[a].num, 2);
    cr_assert_eq(sf.nodes[sf.nodes[a].params].num, 3);
    cr_assert_eq(policy_sf_find(&sf, sf.first, "c"), -1);
    cr_assert_eq(policy_sf_find(&sf, -1, "a"), -1);
}

Test(sf, where_it_failed)
{
    cr_assert_eq(parse(POLICY_SF_DICT, "max-age=10000, &&&&&"), POLICY_SF_ESYNTAX);
    cr_assert_eq(sf.err_at, 15);
    cr_assert_eq(parse(POLICY_SF_DICT, "a=1, b=1.2345"), POLICY_SF_ESYNTAX);
    cr_assert_eq(sf.n, 0);
}

Test(sf, node_cap)
{
    policy_sf_node_t few[3];
    policy_sf_t s;
    policy_sf_init(&s, few, 3);
    cr_assert_eq(policy_sf_parse(&s, POLICY_SF_LIST, "a, b, c", 7), 0);
    cr_assert_eq(policy_sf_parse(&s, POLICY_SF_LIST, "a, b, c, d", 10), POLICY_SF_EFULL);
    cr_assert_eq(s.first, -1);
    cr_assert_eq(policy_sf_parse(&s, POLICY_SF_LIST, "a;x;y, b", 8), POLICY_SF_EFULL);
    cr_assert_eq(policy_sf_parse(&s, POLICY_SF_LIST, "(a b c)", 7), POLICY_SF_EFULL);
    cr_assert_eq(policy_sf_parse(&s, POLICY_SF_DICT, "a=1, a=2, a=3", 13), 0); /* replaced nodes count */
    cr_assert_eq(policy_sf_parse(&s, POLICY_SF_DICT, "a=1, a=2, a=3, a=4", 18), POLICY_SF_EFULL);
    policy_sf_init(&s, few, 0);
    cr_assert_eq(policy_sf_parse(&s, POLICY_SF_DICT, "", 0), 0);
    cr_assert_eq(policy_sf_parse(&s, POLICY_SF_DICT, "a", 1), POLICY_SF_EFULL);
    policy_sf_init(&s, nodes, (size_t)POLICY_SF_NODES_MAX * 2);
    cr_assert_eq(s.cap, POLICY_SF_NODES_MAX);
}

/* The input need not be NUL-terminated: nothing past len is read. */
Test(sf, length_bounded)
{
    const char v[] = "a=1, b=2X";
    policy_sf_init(&sf, nodes, NODES);
    cr_assert_eq(policy_sf_parse(&sf, POLICY_SF_DICT, v, 8), 0);
    cr_assert_eq(policy_sf_parse(&sf, POLICY_SF_DICT, v, 9), POLICY_SF_ESYNTAX);
    cr_assert_eq(policy_sf_parse(&sf, POLICY_SF_ITEM, "\"ab\"", 3), POLICY_SF_ESYNTAX);
    cr_assert_eq(policy_sf_parse(&sf, POLICY_SF_ITEM, "?1", 1), POLICY_SF_ESYNTAX);
    cr_assert_eq(policy_sf_parse(&sf, POLICY_SF_ITEM, ":aGk=:", 5), POLICY_SF_ESYNTAX);
}


Test(sf, join_lines)
{
    char buf[16];
    http_slice_t v;
    http_fields_t h = fields("X", "a=1", "Y", "q", "x", "b=2", NULL);
    cr_assert_eq(policy_sf_join(&h, "X", buf, sizeof buf, &v), 2);
    cr_assert_eq(v.len, 8);
    cr_assert_eq(memcmp(v.p, "a=1, b=2", 8), 0);
    cr_assert_eq(policy_sf_join(&h, "Y", buf, sizeof buf, &v), 1);
    cr_assert_eq(v.p, http_fields_value(&h, 1).p); /* one line: no copy */
    cr_assert_eq(policy_sf_join(&h, "Z", buf, sizeof buf, &v), 0);
    cr_assert_eq(v.len, 0);
    cr_assert_eq(policy_sf_join(&h, "X", buf, 8, &v), 2); /* exact fit */
    cr_assert_eq(policy_sf_join(&h, "X", buf, 7, &v), POLICY_SF_ETOOLONG);
    cr_assert_eq(v.len, 0);
    cr_assert_eq(policy_sf_join(&h, "X", NULL, 0, &v), POLICY_SF_ETOOLONG);
    http_fields_free(&h);

    /* Lines combine before parsing: a repeat across lines is a repeat. */
    h = fields("D", "a=1, b=2", "D", "a=3", NULL);
    char big[64];
    cr_assert_eq(policy_sf_join(&h, "d", big, sizeof big, &v), 2);
    policy_sf_init(&sf, nodes, NODES);
    cr_assert_eq(policy_sf_parse(&sf, POLICY_SF_DICT, v.p, v.len), 0);
    cr_assert_str_eq(canon(&sf, POLICY_SF_DICT), "a=3, b=2");
    http_fields_free(&h);
    /* ... so much that a String may even run across two lines. */
    h = fields("D", "a=\"x", "D", "y\"", NULL);
    cr_assert_eq(policy_sf_join(&h, "D", big, sizeof big, &v), 2);
    cr_assert_eq(policy_sf_parse(&sf, POLICY_SF_DICT, v.p, v.len), 0); /* a="x, y\"" */
    cr_assert_eq(sf.nodes[sf.first].len, 4);
    http_fields_free(&h);
}

Test(sf, strerror)
{
    cr_assert_str_eq(policy_sf_strerror(0), "ok");
    cr_assert_str_neq(policy_sf_strerror(POLICY_SF_ESYNTAX), policy_sf_strerror(POLICY_SF_EFULL));
    cr_assert_str_neq(policy_sf_strerror(POLICY_SF_ETOOLONG), policy_sf_strerror(-99));
}
