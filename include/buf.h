/* buf: a growable byte buffer with a hard cap.
 *
 * Every buffer that grows from client or upstream input has a cap; going
 * past it is a clean error (-E2BIG), never a crash or an unbounded
 * allocation. */
#ifndef CDN_BUF_H
#define CDN_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;   /* owned; NUL-terminated when len < cap (not guaranteed otherwise) */
    size_t len;
    size_t cap;
    size_t max;   /* hard cap on len; 0 = unlimited */
} buf_t;

/* Initialise an empty buffer that may grow to max bytes (0 = no cap). */
void buf_init(buf_t *b, size_t max);
/* Free the storage; the buffer is empty and reusable afterwards. */
void buf_free(buf_t *b);
/* Forget the contents, keep the storage. */
static inline void buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}
/* Make room for n more bytes. Returns 0, -E2BIG past the cap, -ENOMEM. */
int buf_reserve(buf_t *b, size_t n);
/* Append n bytes. Returns 0, -E2BIG past the cap, -ENOMEM. */
int buf_append(buf_t *b, const void *p, size_t n);
/* Append a NUL-terminated string. */
int buf_puts(buf_t *b, const char *s);
/* Append formatted text. Returns 0 or a negative errno as buf_append. */
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Append the decimal form of v. */
int buf_put_u64(buf_t *b, unsigned long long v);
/* Remove the first n bytes (n <= len). */
void buf_consume(buf_t *b, size_t n);
/* Give up ownership of the storage to the caller (free() it); buffer becomes empty. */
char *buf_steal(buf_t *b);

#endif
