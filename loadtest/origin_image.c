/* origin_image: the pictures the origin serves under /img/ (issue 11).
 *
 * The edge resizes what it fetches, so its tests and load tests need
 * sources: JPEG, PNG, WebP and animated GIF of any size, made here with
 * libvips from the name and the query alone (nothing downloaded, nothing
 * committed), byte for byte the same on every request and in every
 * process; and hostile ones: truncated, text, corrupt, and a PNG bomb.
 *
 * A picture is a gradient whose colours and direction come from a hash of
 * the name, discs of other colours (moving between GIF frames) and fine
 * plus blocky noise seeded from the name: JPEG quality then changes the
 * size, and an attention crop has something to find.
 *
 * Generating a 4000x3000 JPEG takes a few hundred milliseconds, so bodies
 * are kept in a small LRU shared by every thread (a mutex; entries are
 * refcounted so eviction never frees a body still being sent). The slow
 * part, origin_image_make, runs on the libuv thread pool. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>

#include "hash.h"
#include "origin.h"
#include "synth.h"

#define IMG_MAX_SIDE 10000
#define IMG_MAX_FRAMES 500
#define IMG_MAX_GIF_PIXELS 20000000ull /* width x height x frames: GIF encoding is slow */
#define IMG_MAX_FILE (256u << 20)
#define CACHE_SLOTS 16
#define CACHE_MAX_BYTES (256u << 20)

static const struct { const char *ext; int f; } exts[] = {
    { "jpg", ORIGIN_PIC_JPEG }, { "jpeg", ORIGIN_PIC_JPEG }, { "png", ORIGIN_PIC_PNG },
    { "webp", ORIGIN_PIC_WEBP }, { "gif", ORIGIN_PIC_GIF },
};
static const char *const types[] = { "image/jpeg", "image/png", "image/webp", "image/gif" };

struct origin_image_req {
    origin_picture_t pic;
    int damage;        /* ORIGIN_DAMAGE_* */
    bool bomb;
    char *name;       /* NAME of /img/NAME.EXT */
    char *file;       /* --image-dir file to serve, or NULL */
    char *key;        /* everything the bytes depend on: the cache key */
    char *base_key;   /* the same without the damage */
    char etag[24];
};

struct origin_image {
    char *key;
    void *data;
    size_t len;
    void (*free_fn)(void *);
    uint64_t sum;
    int refs;        /* under cache_mu */
    uint64_t used;   /* LRU tick, under cache_mu */
};

static const char *image_dir;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static origin_image_t *cache[CACHE_SLOTS];
static size_t cache_bytes;
static uint64_t cache_tick;

static const uint8_t name_key[16] = { 'o', 'r', 'i', 'g', 'i', 'n', '-', 'i',
                                      'm', 'a', 'g', 'e', '-', 'k', 'e', 'y' };

/* --- the request --- */

/* Parse parameter name as an integer in [lo, hi]; def when absent. */
static int int_param(const char *q, size_t qlen, const char *name, int lo, int hi, int def, int *out,
                     char *err, size_t errlen)
{
    char *v = NULL, *end = NULL;
    int found = origin_query_get(q, qlen, name, &v);
    long n = def;
    if (found > 0) {
        errno = 0;
        n = strtol(v, &end, 10);
        if (!*v || *end || errno || n < lo || n > hi || v[0] == '+' || v[0] == '-' || v[0] == ' ')
            found = -EINVAL;
    }
    if (found < 0)
        snprintf(err, errlen, "bad parameter '%s': expected an integer from %d to %d, got '%.100s'\n",
                 name, lo, hi, v ? v : "");
    free(v);
    *out = (int)n;
    return found < 0 ? -EINVAL : 0;
}

static int damage_param(const char *q, size_t qlen, int *out, char *err, size_t errlen)
{
    static const char *const names[] = { "none", "truncate", "text", "corrupt" };
    char *v = NULL;
    int found = origin_query_get(q, qlen, "damage", &v);
    *out = ORIGIN_DAMAGE_NONE;
    if (found == 0)
        return 0;
    for (int i = 0; found > 0 && i < 4; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            free(v);
            return 0;
        }
    snprintf(err, errlen, "bad parameter 'damage': expected truncate, text or corrupt, got '%.100s'\n",
             v ? v : "");
    free(v);
    return -EINVAL;
}

/* NAME is what a file name may safely be: no '/', no "..". */
static bool good_name(const char *s, size_t n)
{
    if (n == 0 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok || (c == '.' && i + 1 < n && s[i + 1] == '.'))
            return false;
    }
    return true;
}

static void format_etag(const char *key, char out[24])
{
    uint64_t h = hash_sip64(name_key, key, strlen(key));
    snprintf(out, 24, "\"%016llx\"", (unsigned long long)h);
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

int origin_image_parse(const char *path, size_t plen, const char *q, size_t qlen,
                       origin_image_req_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (plen < 5 || memcmp(path, "/img/", 5) != 0)
        return 1;
    const char *name = path + 5, *end = path + plen, *dot = NULL;
    for (const char *p = name; p < end; p++)
        if (*p == '.')
            dot = p;
    int ext = -1;
    for (size_t i = 0; dot && i < sizeof exts / sizeof exts[0]; i++)
        if ((size_t)(end - dot - 1) == strlen(exts[i].ext) &&
            memcmp(dot + 1, exts[i].ext, (size_t)(end - dot - 1)) == 0)
            ext = (int)i;
    if (ext < 0 || !good_name(name, (size_t)(dot - name))) {
        snprintf(err, errlen, "no such image: expected /img/NAME.jpg|jpeg|png|webp|gif, NAME of "
                              "letters, digits, '-', '_' and '.'\n");
        return -ENOENT;
    }
    origin_image_req_t *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strndup(name, (size_t)(dot - name)))) {
        free(r);
        snprintf(err, errlen, "out of memory\n");
        return -ENOMEM;
    }
    r->pic.format = exts[ext].f;
    r->bomb = r->pic.format == ORIGIN_PIC_PNG && strcmp(r->name, "bomb") == 0;
    int rc = int_param(q, qlen, "width", 1, IMG_MAX_SIDE, 800, &r->pic.width, err, errlen);
    if (!rc)
        rc = int_param(q, qlen, "height", 1, IMG_MAX_SIDE, 600, &r->pic.height, err, errlen);
    if (!rc)
        rc = int_param(q, qlen, "quality", 1, 100, 85, &r->pic.quality, err, errlen);
    if (!rc)
        rc = int_param(q, qlen, "frames", 1, IMG_MAX_FRAMES, 1, &r->pic.frames, err, errlen);
    if (!rc)
        rc = damage_param(q, qlen, &r->damage, err, errlen);
    if (!rc && r->pic.frames > 1 && r->pic.format != ORIGIN_PIC_GIF) {
        snprintf(err, errlen, "bad parameter 'frames': only a gif has frames\n");
        rc = -EINVAL;
    }
    if (!rc && r->pic.frames > 1 &&
        (unsigned long long)r->pic.width * r->pic.height * r->pic.frames > IMG_MAX_GIF_PIXELS) {
        snprintf(err, errlen, "bad parameter 'frames': width x height x frames must stay under %llu\n",
                 IMG_MAX_GIF_PIXELS);
        rc = -EINVAL;
    }
    if (rc) {
        origin_image_req_free(r);
        return rc;
    }
    if (r->pic.format == ORIGIN_PIC_PNG || r->pic.format == ORIGIN_PIC_GIF)
        r->pic.quality = 0; /* not a parameter of theirs: same bytes, same ETag */
    if (r->bomb)
        r->damage = ORIGIN_DAMAGE_NONE; /* the bomb is the bomb, whatever the query */
    struct stat st;
    char *file = image_dir && !r->bomb ? dup_printf("%s/%.*s", image_dir, (int)(end - name), name) : NULL;
    if (file && stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
        r->file = file;
        /* A changed file is another picture: its size and mtime are in the key. */
        r->base_key = dup_printf("file|%s|%lld|%lld.%09ld", file, (long long)st.st_size,
                                 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    } else {
        free(file);
        const origin_picture_t *p = &r->pic;
        r->base_key = r->bomb ? strdup("bomb")
                              : dup_printf("gen|%s|%s|%d|%d|%d|%d", types[p->format], r->name, p->width,
                                           p->height, p->quality, p->frames);
    }
    if (r->base_key)
        r->key = r->damage ? dup_printf("%s|damage=%d", r->base_key, r->damage) : strdup(r->base_key);
    if (!r->key) {
        origin_image_req_free(r);
        snprintf(err, errlen, "out of memory\n");
        return -ENOMEM;
    }
    format_etag(r->key, r->etag);
    *out = r;
    return 0;
}

void origin_image_req_free(origin_image_req_t *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->file);
    free(r->key);
    free(r->base_key);
    free(r);
}

const char *origin_image_type(const origin_image_req_t *r) { return types[r->pic.format]; }
const char *origin_image_etag(const origin_image_req_t *r) { return r->etag; }

/* --- the cache --- */

static void body_free(origin_image_t *b)
{
    if (!b)
        return;
    b->free_fn(b->data);
    free(b->key);
    free(b);
}

/* A new body owning data (freed with free_fn), not yet cached; NULL when
 * out of memory (data is freed then). */
static origin_image_t *body_new(const char *key, void *data, size_t len, void (*free_fn)(void *))
{
    origin_image_t *b = calloc(1, sizeof *b);
    if (!b || !(b->key = strdup(key))) {
        free(b);
        free_fn(data);
        return NULL;
    }
    b->data = data;
    b->len = len;
    b->free_fn = free_fn;
    b->sum = synth_fnv1a(SYNTH_FNV_INIT, data, len);
    b->refs = 1;
    return b;
}

static origin_image_t *cache_get(const char *key)
{
    origin_image_t *b = NULL;
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SLOTS && !b; i++)
        if (cache[i] && strcmp(cache[i]->key, key) == 0) {
            b = cache[i];
            b->refs++;
            b->used = ++cache_tick;
        }
    pthread_mutex_unlock(&cache_mu);
    return b;
}

/* Cache b (the caller keeps its reference) and return it; if another
 * thread cached the same key meanwhile, return that one instead and drop
 * b. Evicts least recently used bodies to stay within the caps. */
static origin_image_t *cache_put(origin_image_t *b)
{
    origin_image_t *dead[CACHE_SLOTS + 1] = { 0 };
    int ndead = 0;
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache[i] && strcmp(cache[i]->key, b->key) == 0) {
            cache[i]->refs++;
            cache[i]->used = ++cache_tick;
            if (--b->refs == 0)
                dead[ndead++] = b;
            b = cache[i];
            goto out;
        }
    if (b->len > CACHE_MAX_BYTES)
        goto out; /* served once, never cached */
    for (;;) {
        int free_slot = -1, lru = -1;
        for (int i = 0; i < CACHE_SLOTS; i++) {
            if (!cache[i])
                free_slot = i;
            else if (lru < 0 || cache[i]->used < cache[lru]->used)
                lru = i;
        }
        if (free_slot >= 0 && cache_bytes + b->len <= CACHE_MAX_BYTES) {
            cache[free_slot] = b;
            cache_bytes += b->len;
            b->refs++;
            b->used = ++cache_tick;
            break;
        }
        cache_bytes -= cache[lru]->len;
        if (--cache[lru]->refs == 0)
            dead[ndead++] = cache[lru];
        cache[lru] = NULL;
    }
out:
    pthread_mutex_unlock(&cache_mu);
    for (int i = 0; i < ndead; i++)
        body_free(dead[i]);
    return b;
}

void origin_image_release(origin_image_t *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&cache_mu);
    bool last = --b->refs == 0;
    pthread_mutex_unlock(&cache_mu);
    if (last)
        body_free(b);
}

const void *origin_image_data(const origin_image_t *b, size_t *len)
{
    *len = b->len;
    return b->data;
}

uint64_t origin_image_sum(const origin_image_t *b) { return b->sum; }

origin_image_t *origin_image_lookup(const origin_image_req_t *r) { return cache_get(r->key); }

/* --- making bodies --- */

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    int rc = -EIO;
    *out = NULL;
    if (!f)
        return -errno;
    if (fstat(fileno(f), &st) || st.st_size > IMG_MAX_FILE)
        goto out;
    *len = (size_t)st.st_size;
    rc = -ENOMEM;
    if (!(*out = malloc(*len ? *len : 1)))
        goto out;
    rc = fread(*out, 1, *len, f) == *len ? 0 : -EIO;
out:
    fclose(f);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* The undamaged body of r, from the cache or made now. */
static int make_base(const origin_image_req_t *r, origin_image_t **out)
{
    void *data = NULL;
    size_t len = 0;
    int rc;
    if ((*out = cache_get(r->base_key)))
        return 0;
    if (r->bomb)
        rc = origin_hostile_bomb((uint8_t **)&data, &len);
    else if (r->file)
        rc = read_file(r->file, (uint8_t **)&data, &len);
    else
        rc = origin_picture_encode(r->name, &r->pic, &data, &len);
    if (rc)
        return rc;
    origin_image_t *b = body_new(r->base_key, data, len, r->file || r->bomb ? free : g_free);
    if (!b)
        return -ENOMEM;
    *out = cache_put(b);
    return 0;
}

int origin_image_make(const origin_image_req_t *r, origin_image_t **out)
{
    origin_image_t *base = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    if ((*out = cache_get(r->key)))
        return 0;
    int rc = r->damage == ORIGIN_DAMAGE_TEXT ? 0 : make_base(r, &base);
    if (rc || r->damage == ORIGIN_DAMAGE_NONE) {
        *out = base;
        return rc;
    }
    /* The seed makes the corruption differ between pictures but not between requests. */
    uint64_t seed = hash_sip64(name_key, r->key, strlen(r->key));
    rc = origin_hostile_damage(r->damage, r->pic.format, seed, base ? base->data : NULL,
                               base ? base->len : 0, &data, &len);
    origin_image_release(base);
    if (rc)
        return rc;
    origin_image_t *b = body_new(r->key, data, len, free);
    if (!b)
        return -ENOMEM;
    *out = cache_put(b);
    return 0;
}

void origin_image_setup(const char *dir)
{
    image_dir = dir && *dir ? dir : NULL;
}

void origin_image_shutdown(void)
{
    for (int i = 0; i < CACHE_SLOTS; i++) {
        origin_image_t *b = cache[i];
        cache[i] = NULL;
        origin_image_release(b);
    }
    cache_bytes = 0;
    origin_picture_shutdown();
}
