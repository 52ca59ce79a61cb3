/* policy_sf: Structured Field Values for HTTP (RFC 8941), parsing only.
 *
 * Newer fields (CDN-Cache-Control, RFC 9213; the RateLimit fields) are
 * Structured Fields: a Dictionary, a List or an Item whose grammar is
 * strict, and a field that does not parse must be ignored as a whole. This
 * parser follows RFC 8941 section 4.2 step by step and fails the whole
 * field on the first deviation; it never repairs.
 *
 * No I/O and no allocation: the result is a tree of nodes in an array the
 * caller provides, linked by index. Every string-like value is a slice of
 * the input, so the input must outlive the nodes. */
#ifndef CDN_POLICY_SF_H
#define CDN_POLICY_SF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_fields.h"

/* Largest node array policy_sf_init accepts; a bigger one is used only up
 * to here. Key lookups are linear in the number of siblings, so a cap
 * also bounds the work a hostile field can cause. */
#define POLICY_SF_NODES_MAX 4096

/* Return codes (0 is success). */
enum {
    POLICY_SF_ESYNTAX = -1,  /* not valid RFC 8941 text for the requested type */
    POLICY_SF_EFULL = -2,    /* more members, items and parameters than nodes */
    POLICY_SF_ETOOLONG = -3, /* output buffer too small (policy_sf_join, policy_sf_unescape) */
};

/* What policy_sf_parse reads the field as (its specification says which). */
typedef enum policy_sf_kind {
    POLICY_SF_DICT,
    POLICY_SF_LIST,
    POLICY_SF_ITEM,
} policy_sf_kind_t;

typedef enum policy_sf_type {
    POLICY_SF_INTEGER,    /* num: -999999999999999 .. 999999999999999 */
    POLICY_SF_DECIMAL,    /* num: the value in thousandths (1.5 -> 1500), exact */
    POLICY_SF_STRING,     /* p/len: between the quotes, escapes as sent (see escaped) */
    POLICY_SF_TOKEN,      /* p/len: the token */
    POLICY_SF_BYTES,      /* p/len: the base64 text between the colons, not decoded */
    POLICY_SF_BOOLEAN,    /* num: 0 or 1 */
    POLICY_SF_INNER_LIST, /* num: number of items; items: the first one */
} policy_sf_type_t;

/* One dictionary or list member, inner-list item or parameter. The
 * pointers point into the parsed input. */
typedef struct policy_sf_node {
    const char *key;       /* dictionary member or parameter key; NULL for list members and items */
    size_t klen;
    const char *p;         /* STRING, TOKEN, BYTES (see the types); NULL otherwise */
    size_t len;
    int64_t num;           /* INTEGER, DECIMAL, BOOLEAN, INNER_LIST (see the types) */
    int32_t next;          /* next sibling (member, item or parameter), -1 after the last */
    int32_t items;         /* INNER_LIST: first item, -1 when empty or not an inner list */
    int32_t params;        /* first parameter, -1 when none */
    policy_sf_type_t type;
    bool escaped;          /* STRING holds \" or \\: read it with policy_sf_unescape */
} policy_sf_node_t;

/* A parse result. Fill with policy_sf_init; the fields are read-only for
 * callers. Dictionary members and parameters are ordered maps: a repeated
 * key keeps the position of its first occurrence and the value of its
 * last (RFC 8941 4.2.2, 4.2.3.2); the replaced node stays in the array
 * unreachable, so iterate with `next`, never over nodes[0..n). */
typedef struct policy_sf {
    policy_sf_node_t *nodes; /* the caller's array */
    size_t cap;              /* its length (at most POLICY_SF_NODES_MAX) */
    size_t n;                /* nodes used */
    int32_t first;           /* first top-level member (the item for POLICY_SF_ITEM), -1 when empty */
    size_t err_at;           /* after POLICY_SF_ESYNTAX: offset in the input where parsing stopped */
} policy_sf_t;

/* Prepare sf to parse into nodes[0..cap); the array stays the caller's. */
void policy_sf_init(policy_sf_t *sf, policy_sf_node_t *nodes, size_t cap);
/* Parse v[0..len) (one combined field value, see policy_sf_join) as kind.
 * Returns 0, POLICY_SF_ESYNTAX or POLICY_SF_EFULL; after an error sf holds
 * nothing usable (first = -1). An empty value is an empty Dictionary or
 * List, but not an Item. The nodes point into v: valid while v is. */
int policy_sf_parse(policy_sf_t *sf, policy_sf_kind_t kind, const char *v, size_t len);
/* The sibling from `first` on (a chain of members, items or parameters)
 * whose key is the NUL-terminated key, or -1. */
int32_t policy_sf_find(const policy_sf_t *sf, int32_t first, const char *key);
/* Copy STRING p[0..len) (as in a node) into out without its escapes and
 * NUL-terminate it; *olen gets the length. Returns 0 or
 * POLICY_SF_ETOOLONG when out[0..cap) is too small. */
int policy_sf_unescape(const char *p, size_t len, char *out, size_t cap, size_t *olen);
/* The value of every line of field `name` in h combined as RFC 8941 4.2
 * asks (joined with ", "): one line is returned as it is (*out points into
 * h, valid until h changes), several are copied into buf[0..cap) (*out
 * points there). Returns the number of lines (0: absent, *out empty) or
 * POLICY_SF_ETOOLONG. */
int policy_sf_join(const http_fields_t *h, const char *name, char *buf, size_t cap, http_slice_t *out);
/* A static description of a return code. */
const char *policy_sf_strerror(int code);

#endif
