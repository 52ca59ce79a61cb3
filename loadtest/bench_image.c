/* image-bench: the in-process yardstick of `make bench`'s image part
 * (loadtest/bench_image.sh, issue 11).
 *
 *   image-bench FILE N THREADS [FIRST]
 *
 * Reads FILE (a source image) once, then runs N transforms to 400x300 WebP
 * (fit cover) spread over THREADS threads, each with its own loop, and
 * prints the per-transform latency (p50, p99) and the throughput. It calls
 * image_init() and image_transform() (include/image.h), the very code an
 * edge runs on its image threads, so the gap between the two is the
 * edge's own cost: reading the source out of the cache, the pool, HTTP.
 *
 * Transform k (FIRST <= k < FIRST + N) varies as the HTTP load's request
 * k does: quality 30 + k % 70 and compass gravity k % 9 (as 9 and 70 are
 * coprime, k mod 630 names 630 distinct variants). The output is checked
 * to be a 400x300 WebP, so a wrong request cannot look fast. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "image.h"

#define MAX_N       100000
#define MAX_THREADS 64
#define MAX_SOURCE  (256u << 20) /* above image_max_size's default: the edge would refuse it anyway */

typedef struct bench {
    const void *src;
    size_t len;
    unsigned first, n, threads;
    double *lat_ms;        /* lat_ms[k - first], each written by one thread */
    pthread_barrier_t go;
    atomic_int failed;     /* an error code; read after the joins */
} bench_t;

typedef struct worker {
    bench_t *b;
    unsigned t;
} worker_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Request k of the load: the same (q, gravity) the shell script asks for. */
static image_req_t req_for(unsigned k)
{
    return (image_req_t){ .w = 400, .h = 300, .fit = IMAGE_FIT_COVER,
                          .gravity = (image_gravity_t)(k % 9), .format = IMAGE_FORMAT_WEBP,
                          .quality = 30 + (int)(k % 70) };
}

static int transform(bench_t *b, unsigned k)
{
    image_req_t rq = req_for(k);
    image_out_t out = { 0 };
    int rc = image_transform(b->src, b->len, NULL, &rq, &out);
    if (rc == 0 && (out.width != 400 || out.height != 300 || out.format != IMAGE_FORMAT_WEBP))
        rc = -EPROTO;
    image_out_free(&out);
    return rc;
}

static void *run(void *arg)
{
    worker_t *w = arg;
    bench_t *b = w->b;
    /* One untimed transform first: the loaders' lazy set-up is paid once
     * per process, as the edge's warm-up request pays it there. */
    int rc = transform(b, b->first + w->t);
    pthread_barrier_wait(&b->go);
    for (unsigned i = w->t; i < b->n && rc == 0; i += b->threads) {
        double t0 = now_ms();
        rc = transform(b, b->first + i);
        b->lat_ms[i] = now_ms() - t0;
    }
    if (rc)
        atomic_store(&b->failed, rc);
    return NULL;
}

/* CPU time of the whole process (every thread), in ms. */
static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank, 1-based, as the shell script computes it. */
static double pct(const double *sorted, unsigned n, double p)
{
    unsigned r = (unsigned)(n * p + 0.5);
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return sorted[r - 1];
}

/* FILE's bytes in a malloc'd buffer, or NULL. */
static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    if (!f || fseek(f, 0, SEEK_END) != 0)
        goto out;
    long sz = ftell(f);
    if (sz <= 0 || (unsigned long)sz > MAX_SOURCE || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)sz);
    if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        buf = NULL;
    }
    *len = (size_t)sz;
out:
    if (f)
        fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    bench_t b = { 0 };
    pthread_t tids[MAX_THREADS];
    worker_t ws[MAX_THREADS];
    unsigned started = 0;
    char err[256];
    int status = 1;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s FILE N THREADS [FIRST]\n", argv[0]);
        return 2;
    }
    long n = strtol(argv[2], NULL, 10), th = strtol(argv[3], NULL, 10);
    long first = argc == 5 ? strtol(argv[4], NULL, 10) : 0;
    if (n < 1 || n > MAX_N || th < 1 || th > MAX_THREADS || th > n || first < 0 || first > MAX_N) {
        fprintf(stderr, "image-bench: N in 1..%d, THREADS in 1..%d and <= N, FIRST in 0..%d\n", MAX_N,
                MAX_THREADS, MAX_N);
        return 2;
    }
    b.n = (unsigned)n;
    b.threads = (unsigned)th;
    b.first = (unsigned)first;
    if (!(b.src = slurp(argv[1], &b.len))) {
        fprintf(stderr, "image-bench: cannot read %s (or over %u bytes)\n", argv[1], MAX_SOURCE);
        return 1;
    }
    if (image_init(NULL, err, sizeof err)) {
        fprintf(stderr, "image-bench: %s\n", err);
        free((void *)b.src);
        return 1;
    }
    b.lat_ms = calloc(b.n, sizeof *b.lat_ms);
    if (!b.lat_ms || pthread_barrier_init(&b.go, NULL, b.threads + 1)) {
        fprintf(stderr, "image-bench: out of memory\n");
        goto out;
    }
    for (; started < b.threads; started++) {
        ws[started] = (worker_t){ &b, started };
        if (pthread_create(&tids[started], NULL, run, &ws[started]))
            break;
    }
    if (started < b.threads) {
        /* The barrier counts every thread: those running would wait forever. */
        fprintf(stderr, "image-bench: cannot start %u threads\n", b.threads);
        exit(1);
    }
    pthread_barrier_wait(&b.go);
    double t0 = now_ms(), c0 = cpu_ms();
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    double wall = now_ms() - t0, cpu = cpu_ms() - c0;
    pthread_barrier_destroy(&b.go);
    int failed = atomic_load(&b.failed);
    if (failed) {
        fprintf(stderr, "image-bench: transform failed: %s\n",
                failed == -EPROTO ? "not a 400x300 WebP" : image_strerror(failed));
        goto out;
    }
    double sum = 0;
    for (unsigned i = 0; i < b.n; i++)
        sum += b.lat_ms[i];
    qsort(b.lat_ms, b.n, sizeof *b.lat_ms, cmp_double);
    /* cpu_ms: CPU per transform, which other load on the machine does not
     * inflate the way it does wall-clock times. */
    printf("in-process threads=%u n=%u p50_ms=%.1f p99_ms=%.1f mean_ms=%.1f per_s=%.2f cpu_ms=%.1f source_bytes=%zu\n",
           b.threads, b.n, pct(b.lat_ms, b.n, 0.50), pct(b.lat_ms, b.n, 0.99), sum / b.n, b.n * 1000.0 / wall,
           cpu / b.n, b.len);
    status = 0;
out:
    free(b.lat_ms);
    free((void *)b.src);
    image_shutdown();
    return status;
}
