/* fetch: shared in-flight responses and the collapsing table (see
 * include/fetch.h for the model). Lock order: table lock, then a fetch's
 * lock, then (inside wake) a worker's post lock; never the reverse. */
#include "fetch.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_BUCKETS 1024
#define CHUNK_MIN (16 * 1024)
#define CHUNK_MAX (256 * 1024)

typedef struct fchunk {
    struct fchunk *next;
    size_t len, cap;
    char data[];
} fchunk_t;

struct fetch {
    pthread_mutex_t mu;
    atomic_int refs;
    fetch_table_t *table;       /* NULL for private fetches */
    fetch_t *tnext;             /* bucket chain, under the table lock */
    bool published;
    uint8_t key[16];
    fetch_state_t state;
    int status;
    http_fields_t hdrs;
    http_fields_t req_hdrs;
    int64_t content_length;
    int64_t request_time, response_time;
    bool shareable, storing;
    fchunk_t *head, *tail;
    uint64_t base;              /* body offset of head */
    uint64_t avail;             /* body bytes appended */
    fetch_waiter_t *waiters;
    fetch_waiter_t *primary;
    int err;
    char errmsg[160];
    void *owner_data;
    fetch_interim_t interim[FETCH_MAX_INTERIM];
    unsigned n_interim;
    /* resume plumbing */
    worker_t *owner;
    void (*resume)(void *);
    void *resume_arg;
    bool resume_posted;
};

struct fetch_table {
    pthread_mutex_t mu;
    fetch_t *b[TABLE_BUCKETS];
    unsigned n;
};

fetch_table_t *fetch_table_new(void)
{
    fetch_table_t *t = calloc(1, sizeof *t);
    if (t)
        pthread_mutex_init(&t->mu, NULL);
    return t;
}

void fetch_table_free(fetch_table_t *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

unsigned fetch_table_size(fetch_table_t *t)
{
    pthread_mutex_lock(&t->mu);
    unsigned n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static unsigned bucket_of(const uint8_t key[16])
{
    unsigned h;
    memcpy(&h, key, sizeof h); /* the key is already a good hash */
    return h % TABLE_BUCKETS;
}

static fetch_t *fetch_alloc(void)
{
    fetch_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    pthread_mutex_init(&f->mu, NULL);
    atomic_init(&f->refs, 1);
    http_fields_init(&f->hdrs, 0);
    http_fields_init(&f->req_hdrs, 0);
    f->content_length = -1;
    f->state = FETCH_PENDING;
    f->storing = true;
    f->shareable = true;
    return f;
}

static void attach(fetch_t *f, fetch_waiter_t *w)
{
    w->off = 0;
    w->wake_pending = false;
    w->redispatch = false;
    w->next = f->waiters;
    f->waiters = w;
}

/* A new fetch for key in bucket b, published (table lock held). The
 * caller holds one reference, the table another. */
static fetch_t *publish_new(fetch_table_t *t, unsigned b, const uint8_t key[16])
{
    fetch_t *f = fetch_alloc();
    if (f) {
        memcpy(f->key, key, 16);
        f->table = t;
        f->published = true;
        f->tnext = t->b[b];
        t->b[b] = f;
        t->n++;
        atomic_fetch_add(&f->refs, 1); /* the table's reference */
    }
    return f;
}

fetch_t *fetch_join(fetch_table_t *t, const uint8_t key[16], fetch_waiter_t *w, bool *created)
{
    unsigned b = bucket_of(key);
    pthread_mutex_lock(&t->mu);
    for (fetch_t *f = t->b[b]; f; f = f->tnext) {
        if (memcmp(f->key, key, 16) != 0)
            continue;
        pthread_mutex_lock(&f->mu);
        bool joinable = f->shareable && f->state != FETCH_FAILED;
        if (joinable) {
            attach(f, w);
            atomic_fetch_add(&f->refs, 1);
        }
        pthread_mutex_unlock(&f->mu);
        if (joinable) {
            pthread_mutex_unlock(&t->mu);
            *created = false;
            return f;
        }
    }
    fetch_t *f = publish_new(t, b, key);
    if (f) {
        attach(f, w);
        f->primary = w;
    }
    pthread_mutex_unlock(&t->mu);
    *created = true;
    return f;
}

fetch_t *fetch_start_if_absent(fetch_table_t *t, const uint8_t key[16])
{
    unsigned b = bucket_of(key);
    fetch_t *f = NULL;
    pthread_mutex_lock(&t->mu);
    for (fetch_t *x = t->b[b]; x; x = x->tnext)
        if (memcmp(x->key, key, 16) == 0)
            goto out;
    f = publish_new(t, b, key);
out:
    pthread_mutex_unlock(&t->mu);
    return f;
}

fetch_t *fetch_new_private(fetch_waiter_t *w)
{
    fetch_t *f = fetch_alloc();
    if (!f)
        return NULL;
    f->shareable = false;
    attach(f, w);
    f->primary = w;
    return f;
}

void fetch_ref(fetch_t *f)
{
    atomic_fetch_add(&f->refs, 1);
}

void fetch_unref(fetch_t *f)
{
    if (atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    for (fchunk_t *c = f->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    http_fields_free(&f->hdrs);
    http_fields_free(&f->req_hdrs);
    for (unsigned i = 0; i < f->n_interim; i++)
        http_fields_free(&f->interim[i].hdrs);
    free(f->owner_data);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* Call with f locked. */
static void wake_all(fetch_t *f)
{
    for (fetch_waiter_t *w = f->waiters; w; w = w->next) {
        if (!w->wake_pending) {
            w->wake_pending = true;
            w->wake(w);
        }
    }
}

void fetch_unpublish(fetch_t *f)
{
    fetch_table_t *t = f->table;
    if (!t)
        return;
    bool drop = false;
    pthread_mutex_lock(&t->mu);
    if (f->published) {
        fetch_t **pp = &t->b[bucket_of(f->key)];
        while (*pp && *pp != f)
            pp = &(*pp)->tnext;
        if (*pp) {
            *pp = f->tnext;
            t->n--;
        }
        f->published = false;
        drop = true;
    }
    pthread_mutex_unlock(&t->mu);
    if (drop)
        fetch_unref(f);
}

unsigned fetch_table_unpublish_all(fetch_table_t *t)
{
    fetch_t *drop = NULL;
    unsigned n = 0;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < TABLE_BUCKETS; i++) {
        while (t->b[i]) {
            fetch_t *f = t->b[i];
            t->b[i] = f->tnext;
            f->published = false;
            f->tnext = drop; /* the table's reference, dropped below */
            drop = f;
            n++;
        }
    }
    t->n = 0;
    pthread_mutex_unlock(&t->mu);
    while (drop) {
        fetch_t *f = drop;
        drop = f->tnext;
        fetch_unref(f);
    }
    return n;
}

int fetch_set_request(fetch_t *f, const http_fields_t *req_hdrs, int64_t request_time)
{
    pthread_mutex_lock(&f->mu);
    http_fields_reset(&f->req_hdrs);
    int rc = http_fields_copy(&f->req_hdrs, req_hdrs);
    f->request_time = request_time;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void fetch_set_headers(fetch_t *f, int status, http_fields_t *hdrs, int64_t content_length,
                       int64_t response_time, bool shareable, bool storing, void *owner_data)
{
    pthread_mutex_lock(&f->mu);
    f->status = status;
    http_fields_t tmp = f->hdrs;
    f->hdrs = *hdrs;
    *hdrs = tmp;
    http_fields_reset(hdrs);
    f->content_length = content_length;
    f->response_time = response_time;
    f->shareable = f->shareable && shareable;
    f->storing = storing;
    f->owner_data = owner_data;
    if (f->state != FETCH_FAILED)
        f->state = FETCH_HEADERS; /* a fetch failed meanwhile (out of memory, shutdown) stays failed */
    if (!f->shareable) {
        for (fetch_waiter_t *w = f->waiters; w; w = w->next)
            if (w != f->primary)
                w->redispatch = true;
    }
    wake_all(f);
    pthread_mutex_unlock(&f->mu);
    if (!shareable)
        fetch_unpublish(f);
}

int fetch_add_interim(fetch_t *f, int status, const http_fields_t *hdrs)
{
    int rc = -1;
    pthread_mutex_lock(&f->mu);
    if (f->state == FETCH_PENDING && f->n_interim < FETCH_MAX_INTERIM) {
        fetch_interim_t *in = &f->interim[f->n_interim];
        in->status = status;
        http_fields_init(&in->hdrs, 0);
        if (http_fields_copy(&in->hdrs, hdrs) == 0) {
            f->n_interim++; /* published: immutable from now on */
            wake_all(f);
            rc = 0;
        } else {
            http_fields_free(&in->hdrs);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* Free chunks every waiter is past. Call with f locked, not storing. */
static void trim(fetch_t *f)
{
    uint64_t min = f->avail;
    for (fetch_waiter_t *w = f->waiters; w; w = w->next)
        if (!w->redispatch && w->off < min)
            min = w->off;
    while (f->head && f->head != f->tail && f->base + f->head->len <= min) {
        fchunk_t *c = f->head;
        f->head = c->next;
        f->base += c->len;
        free(c);
    }
}

void fetch_stop_storing(fetch_t *f)
{
    pthread_mutex_lock(&f->mu);
    f->storing = false;
    f->shareable = false; /* chunks will be trimmed: a newcomer could not start at 0 */
    trim(f);
    pthread_mutex_unlock(&f->mu);
    fetch_unpublish(f);
}

void *(*fetch_test_chunk_alloc)(size_t size) = malloc;

/* A chunk for body bytes from offset at on, at least want bytes. */
static fchunk_t *new_chunk(const fetch_t *f, uint64_t at, size_t want)
{
    size_t cap = CHUNK_MAX;
    /* Small objects of known length get one exact-size chunk. */
    if (f->content_length >= 0 && (uint64_t)f->content_length >= at &&
        (uint64_t)f->content_length - at <= CHUNK_MAX)
        cap = (size_t)((uint64_t)f->content_length - at);
    if (cap < want)
        cap = want < CHUNK_MIN ? CHUNK_MIN : want;
    fchunk_t *c = fetch_test_chunk_alloc(sizeof *c + cap);
    if (c) {
        c->next = NULL;
        c->len = 0;
        c->cap = cap;
    }
    return c;
}

int fetch_append(fetch_t *f, const void *p, size_t n)
{
    const char *s = p;
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    /* Allocate every chunk the bytes need before copying any, so that
     * running out of memory appends nothing: the body a waiter or the
     * store sees is never missing bytes in the middle. */
    size_t room = f->tail ? f->tail->cap - f->tail->len : 0;
    fchunk_t *fresh = NULL, **link = &fresh;
    uint64_t at = f->avail + room;
    for (size_t need = n > room ? n - room : 0; need;) {
        fchunk_t *c = new_chunk(f, at, need < CHUNK_MAX ? need : CHUNK_MAX);
        if (!c) {
            for (fchunk_t *x = fresh, *next; x; x = next) {
                next = x->next;
                free(x);
            }
            rc = FETCH_ENOMEM;
            goto out;
        }
        *link = c;
        link = &c->next;
        size_t take = c->cap < need ? c->cap : need;
        need -= take;
        at += take;
    }
    if (fresh) {
        if (f->tail)
            f->tail->next = fresh;
        else
            f->head = fresh;
    }
    for (fchunk_t *c = f->tail ? f->tail : fresh; n; c = c->next) {
        size_t take = c->cap - c->len < n ? c->cap - c->len : n;
        memcpy(c->data + c->len, s, take);
        c->len += take;
        f->avail += take;
        s += take;
        n -= take;
        f->tail = c;
    }
    if (!f->storing) {
        trim(f);
        uint64_t min = f->avail;
        for (fetch_waiter_t *w = f->waiters; w; w = w->next)
            if (!w->redispatch && w->off < min)
                min = w->off;
        if (f->avail - min > FETCH_PASS_WINDOW)
            rc = FETCH_PAUSE;
    }
    wake_all(f);
out:
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void fetch_finish(fetch_t *f, int err, const char *msg)
{
    pthread_mutex_lock(&f->mu);
    if (f->state != FETCH_DONE && f->state != FETCH_FAILED) {
        f->state = err ? FETCH_FAILED : FETCH_DONE;
        f->err = err;
        snprintf(f->errmsg, sizeof f->errmsg, "%s", msg ? msg : "");
        if (err)
            f->shareable = false;
        wake_all(f);
    }
    pthread_mutex_unlock(&f->mu);
}

unsigned fetch_waiters(fetch_t *f)
{
    unsigned n = 0;
    pthread_mutex_lock(&f->mu);
    for (fetch_waiter_t *w = f->waiters; w; w = w->next)
        n++;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void run_resume(void *arg)
{
    fetch_t *f = arg;
    pthread_mutex_lock(&f->mu);
    void (*fn)(void *) = f->resume;
    void *a = f->resume_arg;
    f->resume_posted = false;
    pthread_mutex_unlock(&f->mu);
    if (fn)
        fn(a); /* owner's thread: fetch_clear_resume is called on it too */
    fetch_unref(f);
}

void fetch_set_resume(fetch_t *f, worker_t *owner, void (*resume)(void *), void *arg)
{
    pthread_mutex_lock(&f->mu);
    f->owner = owner;
    f->resume = resume;
    f->resume_arg = arg;
    pthread_mutex_unlock(&f->mu);
}

void fetch_clear_resume(fetch_t *f)
{
    pthread_mutex_lock(&f->mu);
    f->resume = NULL;
    f->resume_arg = NULL;
    pthread_mutex_unlock(&f->mu);
}

void fetch_copy_body(fetch_t *f, uint64_t off, void *dst, size_t n)
{
    /* Stored fetches keep every chunk and are complete: no lock needed. */
    uint64_t pos = f->base;
    char *d = dst;
    for (fchunk_t *c = f->head; c && n; c = c->next) {
        if (off < pos + c->len) {
            size_t in = (size_t)(off - pos), take = c->len - in < n ? c->len - in : n;
            memcpy(d, c->data + in, take);
            d += take;
            off += take;
            n -= take;
        }
        pos += c->len;
    }
}

unsigned fetch_read(fetch_t *f, fetch_waiter_t *w, fetch_view_t *v, uv_buf_t *iov, unsigned max_iov)
{
    unsigned k = 0;
    pthread_mutex_lock(&f->mu);
    w->wake_pending = false;
    v->state = f->state;
    v->status = f->status;
    v->hdrs = &f->hdrs;
    v->req_hdrs = &f->req_hdrs;
    v->content_length = f->content_length;
    v->avail = f->avail;
    v->storing = f->storing;
    v->redispatch = w->redispatch;
    v->err = f->err;
    v->errmsg = f->errmsg;
    v->request_time = f->request_time;
    v->response_time = f->response_time;
    v->owner_data = f->owner_data;
    v->interim = f->interim;
    v->n_interim = f->n_interim;
    uint64_t pos = f->base;
    for (fchunk_t *c = f->head; c && k < max_iov; c = c->next) {
        if (w->off < pos + c->len) {
            size_t in = w->off > pos ? (size_t)(w->off - pos) : 0;
            iov[k++] = uv_buf_init(c->data + in, (unsigned)(c->len - in));
        }
        pos += c->len;
    }
    pthread_mutex_unlock(&f->mu);
    return k;
}

/* With f locked: trim, and tell whether a paused owner may go on now
 * (the slowest waiter is less than half a window behind). */
static bool trim_and_check_resume(fetch_t *f)
{
    if (f->storing)
        return false;
    trim(f);
    uint64_t min = f->avail;
    for (fetch_waiter_t *x = f->waiters; x; x = x->next)
        if (!x->redispatch && x->off < min)
            min = x->off;
    if (f->resume && !f->resume_posted && f->avail - min < FETCH_PASS_WINDOW / 2) {
        f->resume_posted = true;
        return true;
    }
    return false;
}

static void post_resume(fetch_t *f)
{
    fetch_ref(f);
    if (worker_post(f->owner, run_resume, f)) {
        pthread_mutex_lock(&f->mu);
        f->resume_posted = false;
        pthread_mutex_unlock(&f->mu);
        fetch_unref(f);
    }
}

void fetch_consumed(fetch_t *f, fetch_waiter_t *w, uint64_t n)
{
    pthread_mutex_lock(&f->mu);
    w->off += n;
    bool post = trim_and_check_resume(f);
    pthread_mutex_unlock(&f->mu);
    if (post)
        post_resume(f);
}

void fetch_detach(fetch_t *f, fetch_waiter_t *w)
{
    pthread_mutex_lock(&f->mu);
    for (fetch_waiter_t **pp = &f->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    if (f->primary == w)
        f->primary = NULL;
    bool post = trim_and_check_resume(f);
    pthread_mutex_unlock(&f->mu);
    if (post)
        post_resume(f);
}
