/* object_meta: encode/decode the stored metadata (layout in the header). */
#include "object_meta.h"

#include <string.h>

static int put32(buf_t *b, uint32_t v) { return buf_append(b, &v, 4); }

int object_meta_encode(buf_t *out, const object_meta_t *m)
{
    uint16_t ver = OBJECT_META_VERSION, st = (uint16_t)m->status;
    int rc = buf_append(out, "CDNM", 4);
    rc = rc ? rc : buf_append(out, &ver, 2);
    rc = rc ? rc : buf_append(out, &st, 2);
    rc = rc ? rc : put32(out, (uint32_t)sizeof m->entry);
    rc = rc ? rc : buf_append(out, &m->entry, sizeof m->entry);
    rc = rc ? rc : put32(out, (uint32_t)m->block_len);
    rc = rc ? rc : put32(out, (uint32_t)m->cstatus_len);
    rc = rc ? rc : put32(out, (uint32_t)m->vary_len);
    rc = rc ? rc : buf_append(out, m->block, m->block_len);
    rc = rc ? rc : buf_append(out, m->cstatus, m->cstatus_len);
    rc = rc ? rc : buf_append(out, m->vary, m->vary_len);
    return rc;
}

int object_meta_decode(const void *blob, size_t len, object_meta_t *m)
{
    const char *p = blob;
    uint16_t ver, st;
    uint32_t esz, bl, cl, vl;
    size_t fixed = 4 + 2 + 2 + 4 + sizeof m->entry + 12;
    if (len < fixed || memcmp(p, "CDNM", 4) != 0)
        return -1;
    memcpy(&ver, p + 4, 2);
    memcpy(&st, p + 6, 2);
    memcpy(&esz, p + 8, 4);
    if (ver != OBJECT_META_VERSION || esz != sizeof m->entry || st < 100 || st > 999)
        return -1;
    memcpy(&m->entry, p + 12, sizeof m->entry);
    const char *q = p + 12 + sizeof m->entry;
    memcpy(&bl, q, 4);
    memcpy(&cl, q + 4, 4);
    memcpy(&vl, q + 8, 4);
    q += 12;
    if ((uint64_t)bl + cl + vl != len - fixed)
        return -1;
    m->status = st;
    m->block = q;
    m->block_len = bl;
    m->cstatus = q + bl;
    m->cstatus_len = cl;
    m->vary = q + bl + cl;
    m->vary_len = vl;
    return 0;
}
