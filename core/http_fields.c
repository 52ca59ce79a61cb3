/* http_fields: ordered header list (see include/http_fields.h). */
#include "http_fields.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_fields_init(http_fields_t *h, size_t max_bytes)
{
    buf_init(&h->mem, max_bytes);
    h->f = NULL;
    h->n = h->cap = 0;
    h->max_fields = 0;
}

void http_fields_free(http_fields_t *h)
{
    buf_free(&h->mem);
    free(h->f);
    h->f = NULL;
    h->n = h->cap = 0;
}

void http_fields_reset(http_fields_t *h)
{
    buf_reset(&h->mem);
    h->n = 0;
}

static int grow(http_fields_t *h)
{
    size_t maxf = h->max_fields ? h->max_fields : 1024;
    if (h->n >= maxf)
        return -E2BIG;
    if (h->n < h->cap)
        return 0;
    size_t ncap = h->cap ? h->cap * 2 : 16;
    http_field_t *nf = realloc(h->f, ncap * sizeof *nf);
    if (!nf)
        return -ENOMEM;
    h->f = nf;
    h->cap = ncap;
    return 0;
}

int http_fields_add(http_fields_t *h, const char *name, size_t nlen, const char *value, size_t vlen)
{
    int rc = grow(h);
    if (rc)
        return rc;
    http_field_t *f = &h->f[h->n];
    f->name_off = (uint32_t)h->mem.len;
    f->name_len = (uint32_t)nlen;
    if ((rc = buf_append(&h->mem, name, nlen)))
        return rc;
    f->value_off = (uint32_t)h->mem.len;
    f->value_len = (uint32_t)vlen;
    if ((rc = buf_append(&h->mem, value, vlen))) {
        h->mem.len = f->name_off; /* a refused field takes no room */
        return rc;
    }
    h->n++;
    return 0;
}

/* The last field's name is followed only by its value in mem, so a name
 * piece can be spliced in by moving the value up. */
int http_fields_extend_name(http_fields_t *h, const char *p, size_t n)
{
    if (!h->n)
        return -EINVAL;
    http_field_t *f = &h->f[h->n - 1];
    int rc = buf_reserve(&h->mem, n);
    if (rc)
        return rc;
    char *base = h->mem.data;
    memmove(base + f->value_off + n, base + f->value_off, f->value_len);
    memcpy(base + f->name_off + f->name_len, p, n);
    f->name_len += (uint32_t)n;
    f->value_off += (uint32_t)n;
    h->mem.len += n;
    return 0;
}

int http_fields_extend_value(http_fields_t *h, const char *p, size_t n)
{
    if (!h->n)
        return -EINVAL;
    int rc = buf_append(&h->mem, p, n);
    if (rc)
        return rc;
    h->f[h->n - 1].value_len += (uint32_t)n;
    return 0;
}

http_slice_t http_fields_name(const http_fields_t *h, size_t i)
{
    return (http_slice_t){ h->mem.data + h->f[i].name_off, h->f[i].name_len };
}

http_slice_t http_fields_value(const http_fields_t *h, size_t i)
{
    return (http_slice_t){ h->mem.data + h->f[i].value_off, h->f[i].value_len };
}

bool http_name_eq(http_slice_t name, const char *lit)
{
    size_t l = strlen(lit);
    return name.len == l && strncasecmp(name.p, lit, l) == 0;
}

bool http_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

long http_fields_find(const http_fields_t *h, const char *name, size_t from)
{
    for (size_t i = from; i < h->n; i++)
        if (http_name_eq(http_fields_name(h, i), name))
            return (long)i;
    return -1;
}

bool http_fields_get(const http_fields_t *h, const char *name, http_slice_t *out)
{
    long i = http_fields_find(h, name, 0);
    if (i < 0)
        return false;
    if (out)
        *out = http_fields_value(h, (size_t)i);
    return true;
}

size_t http_fields_count(const http_fields_t *h, const char *name)
{
    size_t c = 0;
    for (long i = http_fields_find(h, name, 0); i >= 0; i = http_fields_find(h, name, (size_t)i + 1))
        c++;
    return c;
}

void http_fields_remove_at(http_fields_t *h, size_t i)
{
    memmove(&h->f[i], &h->f[i + 1], (h->n - i - 1) * sizeof h->f[0]);
    h->n--;
}

void http_fields_remove(http_fields_t *h, const char *name)
{
    for (size_t i = 0; i < h->n;) {
        if (http_name_eq(http_fields_name(h, i), name))
            http_fields_remove_at(h, i);
        else
            i++;
    }
}

int http_fields_copy(http_fields_t *dst, const http_fields_t *src)
{
    for (size_t i = 0; i < src->n; i++) {
        http_slice_t n = http_fields_name(src, i), v = http_fields_value(src, i);
        int rc = http_fields_add(dst, n.p, n.len, v.p, v.len);
        if (rc)
            return rc;
    }
    return 0;
}

int64_t http_fields_content_length(const http_fields_t *h)
{
    http_slice_t v;
    if (http_fields_count(h, "content-length") != 1 || !http_fields_get(h, "content-length", &v))
        return -1;
    v = http_trim(v);
    if (v.len == 0 || v.len > 18)
        return -1; /* 18 digits cannot overflow an int64_t */
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (v.p[i] - '0');
    }
    return n;
}

http_slice_t http_trim(http_slice_t s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

bool http_list_next(http_slice_t v, size_t *pos, http_slice_t *item)
{
    while (*pos < v.len) {
        size_t j = *pos;
        while (j < v.len && v.p[j] != ',')
            j++;
        *item = http_trim((http_slice_t){ v.p + *pos, j - *pos });
        *pos = j + 1;
        if (item->len)
            return true;
    }
    return false;
}

bool http_list_has_n(const char *v, size_t vlen, const char *tok, size_t tlen)
{
    size_t pos = 0;
    http_slice_t item;
    while (http_list_next((http_slice_t){ v, vlen }, &pos, &item))
        if (item.len == tlen && strncasecmp(item.p, tok, tlen) == 0)
            return true;
    return false;
}

bool http_list_has(const char *v, size_t vlen, const char *tok)
{
    return http_list_has_n(v, vlen, tok, strlen(tok));
}
