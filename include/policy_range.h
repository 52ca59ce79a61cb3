/* policy_range: byte-range requests answered from a stored response
 * (RFC 9110 section 14, 13.1.5, 15.3.7, 15.5.17).
 *
 * The caller has the complete representation in storage and its length;
 * this module decides 200 / 206 / 416, which byte ranges to send, and the
 * exact framing of a multipart/byteranges body so that Content-Length can
 * be sent before the parts are streamed from storage. Pure functions.
 *
 * Abuse limits (RFC 9110 14.2 security considerations): ranges are sorted
 * and overlapping or adjacent ones coalesced; a header with more than
 * POLICY_RANGE_MEMBERS_MAX members, or whose satisfiable ranges still
 * number more than POLICY_RANGE_MAX once coalesced, is ignored (200 with
 * the whole representation, which RFC 9110 14.2 allows). */
#ifndef CDN_POLICY_RANGE_H
#define CDN_POLICY_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http_fields.h"

/* Most ranges answered in one 206 (after coalescing). */
#define POLICY_RANGE_MAX 16
/* Most range-spec members read from one Range header (empty ones count). */
#define POLICY_RANGE_MEMBERS_MAX 64
/* Buffer size for policy_range_content_range (longest value + NUL). */
#define POLICY_CONTENT_RANGE_SIZE 72
/* Longest multipart boundary (RFC 2046 5.1.1). */
#define POLICY_BOUNDARY_MAX 70

/* One range, inclusive at both ends: 0 <= start <= end < length. */
typedef struct policy_range {
    int64_t start;
    int64_t end;
} policy_range_t;

/* The ranges to send, ascending, disjoint and non-adjacent. Plain data. */
typedef struct policy_range_set {
    unsigned n;                        /* 1..POLICY_RANGE_MAX when OK, else 0 */
    int64_t length;                    /* complete length of the representation */
    policy_range_t r[POLICY_RANGE_MAX];
} policy_range_set_t;

typedef enum policy_range_result {
    POLICY_RANGE_NONE = 0,       /* no, unsupported, invalid or abusive Range: send 200 and everything */
    POLICY_RANGE_OK,             /* send 206: one part (n == 1) or multipart/byteranges (n > 1) */
    POLICY_RANGE_UNSATISFIABLE,  /* send 416 with policy_range_content_range(NULL) */
} policy_range_result_t;

/* Evaluate a Range field value v[0..len) (not NUL-terminated) against a
 * representation of `length` bytes; fills *out (n = 0 unless OK).
 * Grammar: "bytes" (case-insensitive) "=" 1#( first "-" [last] / "-" suffix ),
 * OWS around members, empty members skipped, nothing else tolerated:
 * another unit, a space inside a member, last < first, or no member at all
 * make the header invalid (NONE). Numbers too large for int64 saturate
 * (they are valid syntax: a huge first is unsatisfiable, a huge last or
 * suffix means "to the end"). Members with first >= length and "-0" are
 * unsatisfiable and dropped; if none is left the result is UNSATISFIABLE.
 * A zero-length representation: UNSATISFIABLE, except that a non-zero
 * suffix ("-5") is satisfiable (RFC 9110 14.1.1) but selects nothing, so
 * the answer is NONE (200 with the empty body). */
policy_range_result_t policy_range_parse(const char *v, size_t len, int64_t length, policy_range_set_t *out);

/* The whole decision for a request answered from a stored 200: NONE unless
 * method is GET (llhttp HTTP_GET) and exactly one Range line is present;
 * NONE when an If-Range is present and policy_if_range_ok fails; else
 * policy_range_parse. etag / last_modified / date describe the stored
 * response as for policy_if_range_ok. */
policy_range_result_t policy_range_request(const http_fields_t *req, int method, const char *etag,
                                           int64_t last_modified, int64_t date, int64_t length,
                                           policy_range_set_t *out);

/* If-Range (RFC 9110 13.1.5) value v[0..len) against the stored response:
 * etag = its ETag field value (NUL-terminated, NULL when absent),
 * last_modified / date = its Last-Modified and Date (-1 when absent).
 * An entity-tag must match strongly (a weak tag on either side never
 * matches). A date must equal Last-Modified exactly, and Last-Modified only
 * counts as a strong validator when it is at least one second before Date
 * (RFC 9110 8.8.2.2); without a Date it never matches. Anything else,
 * including a malformed value, is false: ignore Range and send 200. */
bool policy_if_range_ok(const char *v, size_t len, const char *etag, int64_t last_modified, int64_t date);

/* Write the Content-Range field value "bytes START-END/LENGTH", or the
 * unsatisfied-range form "bytes *" "/LENGTH" when r is NULL (for a 416),
 * into out as a NUL-terminated string; returns its length. Never fails. */
size_t policy_range_content_range(char out[POLICY_CONTENT_RANGE_SIZE], const policy_range_t *r, int64_t length);

/* Exact byte length of the multipart/byteranges body for s (n >= 1):
 * for each part, the header text of policy_multipart_part_header followed
 * by the part's bytes; then policy_multipart_close. content_type is the
 * stored Content-Type value (NUL-terminated; NULL or "" = no Content-Type
 * line in the parts). Returns 0, or -EINVAL for a bad boundary (see
 * policy_multipart_boundary_ok), a content_type holding CR, LF or
 * other control bytes, or an empty set; -EOVERFLOW past INT64_MAX. */
int policy_multipart_length(const policy_range_set_t *s, const char *content_type, const char *boundary,
                            int64_t *total);
/* Append the header text of part i of s to out:
 * "\r\n--BOUNDARY\r\nContent-Type: TYPE\r\nContent-Range: bytes a-b/len\r\n\r\n"
 * (the leading CRLF makes the first one an empty preamble). Returns 0,
 * -EINVAL as policy_multipart_length or for i >= s->n, or a buf error. */
int policy_multipart_part_header(buf_t *out, const policy_range_set_t *s, unsigned i, const char *content_type,
                                 const char *boundary);
/* Append the closing delimiter "\r\n--BOUNDARY--\r\n". 0, -EINVAL, or a buf error. */
int policy_multipart_close(buf_t *out, const char *boundary);
/* Append the response's Content-Type value "multipart/byteranges; boundary=BOUNDARY". */
int policy_multipart_content_type(buf_t *out, const char *boundary);
/* True when boundary is 1..POLICY_BOUNDARY_MAX characters that are both
 * RFC 2046 bchars and token characters (letters, digits, "'+-._"), so it
 * goes unquoted in the Content-Type parameter. */
bool policy_multipart_boundary_ok(const char *boundary);
/* Format a boundary from caller-supplied randomness (the caller owns the
 * entropy source; this module reads no clock or RNG): "cdn" + 32 hex
 * digits into out, NUL-terminated. Returns out. */
char *policy_multipart_boundary(char out[36], uint64_t r1, uint64_t r2);

#endif
