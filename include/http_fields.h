/* http_fields: an ordered list of HTTP header fields.
 *
 * Names and values are copied into one owned byte buffer and addressed by
 * offset, so the list can grow while it is being parsed. Lookups are
 * case-insensitive on the name, as HTTP requires. */
#ifndef CDN_HTTP_FIELDS_H
#define CDN_HTTP_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct http_field {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
} http_field_t;

typedef struct http_fields {
    buf_t mem;          /* owned storage for names and values */
    http_field_t *f;    /* owned array */
    size_t n, cap;
    size_t max_fields;  /* cap on n (0 = 1024) */
} http_fields_t;

/* A borrowed view of one field; valid until the list is modified or freed. */
typedef struct http_slice {
    const char *p;
    size_t len;
} http_slice_t;

/* Initialise an empty list whose storage may grow to max_bytes (0 = no cap). */
void http_fields_init(http_fields_t *h, size_t max_bytes);
void http_fields_free(http_fields_t *h);
void http_fields_reset(http_fields_t *h);
/* Append a field (copies both). Returns 0, -E2BIG past the caps, -ENOMEM. */
int http_fields_add(http_fields_t *h, const char *name, size_t nlen, const char *value, size_t vlen);
/* Append bytes to the name (or value) of the last field: llhttp may deliver
 * a name or value in several pieces. */
int http_fields_extend_name(http_fields_t *h, const char *p, size_t n);
int http_fields_extend_value(http_fields_t *h, const char *p, size_t n);
/* Name / value of field i; valid until the list is modified. */
http_slice_t http_fields_name(const http_fields_t *h, size_t i);
http_slice_t http_fields_value(const http_fields_t *h, size_t i);
/* Index of the first field named name at or after index from, or -1. */
long http_fields_find(const http_fields_t *h, const char *name, size_t from);
/* Value of the first field named name; false when absent. */
bool http_fields_get(const http_fields_t *h, const char *name, http_slice_t *out);
/* Number of fields named name. */
size_t http_fields_count(const http_fields_t *h, const char *name);
/* Remove every field named name (order of the others is kept). */
void http_fields_remove(http_fields_t *h, const char *name);
/* Remove field i. */
void http_fields_remove_at(http_fields_t *h, size_t i);
/* Copy all fields of src onto the end of dst. */
int http_fields_copy(http_fields_t *dst, const http_fields_t *src);
/* True if name equals the field name (case-insensitive). */
bool http_name_eq(http_slice_t name, const char *lit);
/* True for a token character (RFC 9110 5.6.2 tchar): what field names are made of. */
bool http_tchar(unsigned char c);
/* Walk the members of a comma-separated field value: start with *pos = 0;
 * each call puts the next member (trimmed, empty ones skipped) in *item
 * and returns true, or returns false at the end. item points into v. */
bool http_list_next(http_slice_t v, size_t *pos, http_slice_t *item);
/* True when the comma-separated list in v contains token tok (case-insensitive). */
bool http_list_has(const char *v, size_t vlen, const char *tok);
/* The same for a token of tlen bytes (not NUL-terminated). */
bool http_list_has_n(const char *v, size_t vlen, const char *tok, size_t tlen);
/* The body length a response's Content-Length announces: its value when
 * h has exactly one Content-Length field of 1 to 18 digits (optional
 * whitespace around), else -1 (absent, repeated, a list, or not a number:
 * unknown until the end). */
int64_t http_fields_content_length(const http_fields_t *h);
/* Trim optional whitespace (SP / HTAB) at both ends of s. */
http_slice_t http_trim(http_slice_t s);

#endif
