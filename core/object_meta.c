/* object_meta: encode/decode the stored metadata (layout in the header). */
#include "object_meta.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static int put32(buf_t *b, uint32_t v) { return buf_append(b, &v, 4); }

int object_meta_encode(buf_t *out, const object_meta_t *m)
{
    uint16_t ver = OBJECT_META_VERSION, st = (uint16_t)m->status, zero16 = 0;
    uint8_t kind = (uint8_t)m->kind, zero8 = 0;
    int rc = buf_append(out, "CDNM", 4);
    rc = rc ? rc : buf_append(out, &ver, 2);
    rc = rc ? rc : buf_append(out, &kind, 1);
    rc = rc ? rc : buf_append(out, &zero8, 1);
    rc = rc ? rc : buf_append(out, &st, 2);
    rc = rc ? rc : buf_append(out, &zero16, 2);
    rc = rc ? rc : put32(out, (uint32_t)sizeof m->entry);
    rc = rc ? rc : buf_append(out, &m->entry, sizeof m->entry);
    rc = rc ? rc : put32(out, (uint32_t)m->block_len);
    rc = rc ? rc : put32(out, (uint32_t)m->hidden_len);
    rc = rc ? rc : put32(out, (uint32_t)m->cstatus_len);
    rc = rc ? rc : put32(out, (uint32_t)m->vary_len);
    rc = rc ? rc : buf_append(out, m->block, m->block_len);
    rc = rc ? rc : buf_append(out, m->hidden, m->hidden_len);
    rc = rc ? rc : buf_append(out, m->cstatus, m->cstatus_len);
    rc = rc ? rc : buf_append(out, m->vary, m->vary_len);
    return rc;
}

int object_meta_decode(const void *blob, size_t len, object_meta_t *m)
{
    const char *p = blob;
    uint16_t ver, st;
    uint32_t esz, lens[4];
    size_t fixed = 4 + 2 + 1 + 1 + 2 + 2 + 4 + sizeof m->entry + 16;
    if (len < fixed || memcmp(p, "CDNM", 4) != 0)
        return -EINVAL;
    memcpy(&ver, p + 4, 2);
    m->kind = (uint8_t)p[6];
    memcpy(&st, p + 8, 2);
    memcpy(&esz, p + 12, 4);
    if (ver != OBJECT_META_VERSION || esz != sizeof m->entry ||
        (m->kind != OBJECT_META_OBJECT && m->kind != OBJECT_META_INDEX) ||
        (m->kind == OBJECT_META_OBJECT && (st < 100 || st > 999)))
        return -EINVAL;
    if (policy_entry_load(&m->entry, p + 16, sizeof m->entry))
        return -EINVAL;
    const char *q = p + 16 + sizeof m->entry;
    memcpy(lens, q, 16);
    q += 16;
    if ((uint64_t)lens[0] + lens[1] + lens[2] + lens[3] != len - fixed)
        return -EINVAL;
    m->status = st;
    m->block = q;
    m->block_len = lens[0];
    m->hidden = q + lens[0];
    m->hidden_len = lens[1];
    m->cstatus = m->hidden + lens[1];
    m->cstatus_len = lens[2];
    m->vary = m->cstatus + lens[2];
    m->vary_len = lens[3];
    return 0;
}

/* Call fn on each "Name: value\r\n" line of block until it returns true. */
static bool each_line(const char *block, size_t len,
                      bool (*fn)(http_slice_t name, http_slice_t value, void *arg), void *arg)
{
    size_t i = 0;
    while (i < len) {
        const char *eol = memchr(block + i, '\n', len - i);
        size_t end = eol ? (size_t)(eol - block) : len;
        size_t le = end > i && block[end - 1] == '\r' ? end - 1 : end;
        const char *colon = memchr(block + i, ':', le - i);
        if (colon) {
            http_slice_t n = { block + i, (size_t)(colon - block - i) };
            http_slice_t v = http_trim((http_slice_t){ colon + 1, le - (size_t)(colon + 1 - block) });
            if (fn(n, v, arg))
                return true;
        }
        i = end + 1;
    }
    return false;
}

typedef struct find_arg {
    const char *name;
    http_slice_t *out;
} find_arg_t;

static bool find_fn(http_slice_t n, http_slice_t v, void *arg)
{
    find_arg_t *f = arg;
    if (!http_name_eq(n, f->name))
        return false;
    *f->out = v;
    return true;
}

bool object_meta_field(const char *block, size_t len, const char *name, http_slice_t *out)
{
    find_arg_t f = { name, out };
    return each_line(block, len, find_fn, &f);
}

typedef struct add_ctx {
    http_fields_t *out;
    int rc;
} add_ctx_t;

static bool add_fn(http_slice_t n, http_slice_t v, void *arg)
{
    add_ctx_t *a = arg;
    a->rc = http_fields_add(a->out, n.p, n.len, v.p, v.len);
    return a->rc != 0; /* stop on error */
}

int object_meta_fields(http_fields_t *out, const char *block, size_t len)
{
    add_ctx_t a = { out, 0 };
    each_line(block, len, add_fn, &a);
    return a.rc;
}
