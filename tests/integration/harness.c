/* harness: processes, temporary directories, logs, concurrency and
 * waiting for the integration tests (see harness.h; the HTTP client is in
 * harness_http.c).
 *
 * Criterion runs each test in its own process, forked from the runner.
 * Everything a test creates lives in $TMPDIR/cdn-it.<runner pid>/<suite>.
 * <test>.<pid>/: one stderr log per spawned process and the th_tmpdir()
 * directories. The test process stops its children and removes its
 * temporary directories at exit; the runner (report hooks) prints the log
 * tails of a failed test and removes the whole tree when the run ends, so
 * the logs outlive the test process that wrote them. */
#include "harness.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness_internal.h"

#define TAIL_BYTES 6000

struct th_proc {
    char name[64];
    pid_t pid;
    char addr[80];
    char log[600];
    int out_fd;              /* read end of the child's stdout */
    pthread_t reader;        /* copies stdout to the log, finds the address */
    bool reader_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready, eof;         /* guarded by mu */
    bool reaped;
    int status;              /* th_stop's result once reaped */
    th_proc_t *next;
};

static th_proc_t *procs;
static char **tmpdirs;
static size_t ntmpdirs;
static char test_dir[512];
static bool cleanup_registered;
static pthread_t main_thread;  /* the test's thread: the only one touching procs */
static _Thread_local char last_error[512];

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

const char *th_last_error(void) { return last_error; }

void th__set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

/* --- directories and logs --- */

static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void print_tail(const char *what, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[TAIL_BYTES + 1];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > TAIL_BYTES ? size - TAIL_BYTES : 0;
    ssize_t n = pread(fd, buf, TAIL_BYTES, from);
    close(fd);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    fprintf(stderr, "---- %s: last %zd bytes of %s ----\n%s%s---- end of %s ----\n", what, n, path, buf,
            n && buf[n - 1] != '\n' ? "\n" : "", what);
}

static void cleanup(void);

/* This test's directory, created on first use. */
static const char *test_dir_get(void)
{
    if (test_dir[0])
        return test_dir;
    char run[300];
    snprintf(run, sizeof run, "%s/cdn-it.%d", tmp_root(), (int)getppid());
    mkdir(run, 0700);
    snprintf(test_dir, sizeof test_dir, "%s/%s.%s.%d", run,
             criterion_current_suite ? criterion_current_suite->name : "suite",
             criterion_current_test ? criterion_current_test->name : "test", (int)getpid());
    if (mkdir(test_dir, 0700) && errno != EEXIST)
        cr_assert_fail("harness: cannot create %s: %s", test_dir, strerror(errno));
    if (!cleanup_registered) {
        atexit(cleanup);
        cleanup_registered = true;
        main_thread = pthread_self();
    }
    return test_dir;
}

char *th_tmpdir(void)
{
    char tmpl[600];
    snprintf(tmpl, sizeof tmpl, "%s/tmp-XXXXXX", test_dir_get());
    if (!mkdtemp(tmpl))
        cr_assert_fail("harness: mkdtemp %s: %s", tmpl, strerror(errno));
    char **n = realloc(tmpdirs, (ntmpdirs + 1) * sizeof *n);
    cr_assert_not_null(n);
    tmpdirs = n;
    tmpdirs[ntmpdirs] = strdup(tmpl);
    return tmpdirs[ntmpdirs++];
}

/* Runner side: print the logs of a failed test; remove everything at the end. */
static void print_test_logs(const struct criterion_test_stats *st)
{
    char pattern[700];
    glob_t g = { 0 };
    snprintf(pattern, sizeof pattern, "%s/cdn-it.%d/%s.%s.*/*.log", tmp_root(), (int)getpid(),
             st->test->category, st->test->name);
    if (glob(pattern, 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            print_tail(strrchr(g.gl_pathv[i], '/') + 1, g.gl_pathv[i]);
    globfree(&g);
}

ReportHook(POST_TEST)(struct criterion_test_stats *st)
{
    if (st->test_status == CR_STATUS_FAILED && !st->crashed)
        print_test_logs(st);
}

ReportHook(TEST_CRASH)(struct criterion_test_stats *st)
{
    print_test_logs(st);
}

ReportHook(POST_ALL)(struct criterion_global_stats *st)
{
    (void)st;
    char run[300];
    snprintf(run, sizeof run, "%s/cdn-it.%d", tmp_root(), (int)getpid());
    rm_tree(run);
}

/* --- processes --- */

static void *reader_main(void *arg)
{
    th_proc_t *p = arg;
    int logfd = open(p->log, O_WRONLY | O_APPEND | O_CLOEXEC);
    char buf[4096], line[256];
    size_t ll = 0;
    for (;;) {
        ssize_t n = read(p->out_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (logfd >= 0 && write(logfd, buf, (size_t)n) < 0) {
            /* the log is best effort */
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (ll < sizeof line - 1)
                    line[ll++] = buf[i];
                continue;
            }
            line[ll] = '\0';
            ll = 0;
            pthread_mutex_lock(&p->mu);
            if (!p->ready && sscanf(line, "listening on %79s", p->addr) == 1) {
                p->ready = true;
                pthread_cond_broadcast(&p->cv);
            }
            pthread_mutex_unlock(&p->mu);
        }
    }
    if (logfd >= 0)
        close(logfd);
    pthread_mutex_lock(&p->mu);
    p->eof = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int decode_status(int ws)
{
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 255;
}

/* Reap p if it has exited (or wait up to timeout_ms); true once reaped. */
static bool reap(th_proc_t *p, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    while (!p->reaped) {
        int ws;
        pid_t r = waitpid(p->pid, &ws, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->reaped = true;
            p->status = r == p->pid ? decode_status(ws) : 255;
            break;
        }
        if (th_now_ms() >= deadline)
            return false;
        sleep_ms(2);
    }
    if (p->reader_running) {
        pthread_join(p->reader, NULL);
        p->reader_running = false;
        close(p->out_fd);
    }
    return true;
}

/* Report processes that died without being asked to (called on failures). */
void th__check_procs(void)
{
    if (!cleanup_registered || !pthread_equal(pthread_self(), main_thread))
        return; /* th_parallel threads: the main thread will notice */
    for (th_proc_t *p = procs; p; p = p->next) {
        if (p->reaped || !reap(p, 0))
            continue;
        char what[128];
        snprintf(what, sizeof what, "%s (pid %d) died unexpectedly with status %d", p->name, (int)p->pid,
                 p->status);
        print_tail(what, p->log);
    }
}

th_proc_t *th_spawn(const char *bin, const char *const argv[])
{
    const char *dir = getenv("CDN_BIN");
    cr_assert(dir && *dir == '/', "CDN_BIN must name the absolute directory of the binaries (got %s)",
              dir ? dir : "nothing");
    const char *tdir = test_dir_get();
    th_proc_t *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, bin);
    cr_assert(access(path, X_OK) == 0, "harness: %s is not executable: %s", path, strerror(errno));
    static int seq;
    snprintf(p->name, sizeof p->name, "%s-%d", bin, ++seq);
    snprintf(p->log, sizeof p->log, "%s/%s.log", tdir, p->name);
    size_t argc = 0;
    while (argv && argv[argc])
        argc++;
    char **args = calloc(argc + 2, sizeof *args);
    cr_assert_not_null(args);
    args[0] = path;
    for (size_t i = 0; i < argc; i++)
        args[i + 1] = (char *)argv[i];
    int logfd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int out[2];
    cr_assert(logfd >= 0 && pipe2(out, O_CLOEXEC) == 0, "harness: log/pipe: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "harness: fork: %s", strerror(errno));
    if (pid == 0) {
        /* Only async-signal-safe calls until exec. The death signal makes
         * sure no server outlives a test process that died on an assert. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(out[1], STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        execv(path, args);
        static const char msg[] = "harness: exec failed\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    free(args);
    close(out[1]);
    close(logfd);
    p->pid = pid;
    p->out_fd = out[0];
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->next = procs;
    procs = p;
    cr_assert(pthread_create(&p->reader, NULL, reader_main, p) == 0);
    p->reader_running = true;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += TH_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&p->mu);
    while (!p->ready && !p->eof)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
            break;
    bool ready = p->ready;
    pthread_mutex_unlock(&p->mu);
    if (!ready) {
        kill(p->pid, SIGKILL);
        reap(p, TH_TIMEOUT_MS);
        print_tail(p->name, p->log);
        cr_assert_fail("%s did not print `listening on HOST:PORT` within %d ms (exit status %d); see its log above",
                       p->name, TH_TIMEOUT_MS, p->status);
    }
    return p;
}

th_proc_t *th_origin_args(const char *const argv[])
{
    const char *args[32] = { "--listen=127.0.0.1:0", "--workers=2" };
    size_t n = 2;
    for (size_t i = 0; argv && argv[i]; i++) {
        cr_assert(n < 31, "th_origin_args: too many arguments");
        args[n++] = argv[i];
    }
    args[n] = NULL;
    return th_spawn("origin", args);
}

th_proc_t *th_origin(void) { return th_origin_args(NULL); }
const char *th_addr(const th_proc_t *p) { return p->addr; }
int th_pid(const th_proc_t *p) { return (int)p->pid; }
const char *th_log_path(const th_proc_t *p) { return p->log; }

int th_log_count(const th_proc_t *p, const char *needle)
{
    FILE *f = fopen(th_log_path(p), "r");
    cr_assert_not_null(f, "%s: %s", th_log_path(p), strerror(errno));
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

typedef struct log_wait {
    const th_proc_t *p;
    const char *needle;
    int n;
} log_wait_t;

static bool log_reached(void *arg)
{
    log_wait_t *w = arg;
    return th_log_count(w->p, w->needle) >= w->n;
}

bool th_wait_log(const th_proc_t *p, const char *needle, int n)
{
    log_wait_t w = { p, needle, n };
    return th_wait_until(log_reached, &w, TH_TIMEOUT_MS);
}

/* After the first SIGINT: what a node's old fixed grace was. A node whose
 * in-flight requests outlast it gets a second SIGINT (stop now). */
#define TH_STOP_GRACE_MS 5000

int th_stop(th_proc_t *p)
{
    if (!p->reaped) {
        /* SIGINT, not SIGTERM: it skips a node's drain delay (5 s by
         * default), which would slow every test down; SIGTERM's drain is
         * what test_edge_drain.c checks. */
        kill(p->pid, SIGINT);
        if (!reap(p, TH_STOP_GRACE_MS)) {
            kill(p->pid, SIGINT);
            if (!reap(p, TH_TIMEOUT_MS)) {
                fprintf(stderr, "harness: %s did not stop within %d ms after SIGINT; killing it\n", p->name,
                        TH_STOP_GRACE_MS + TH_TIMEOUT_MS);
                kill(p->pid, SIGKILL);
                reap(p, TH_TIMEOUT_MS);
                p->status = 128 + SIGKILL;
            }
        }
        if (p->status != 0) {
            char what[128];
            snprintf(what, sizeof what, "%s (pid %d) exit status %d", p->name, (int)p->pid, p->status);
            print_tail(what, p->log);
        }
    }
    return p->status;
}

void th_signal(th_proc_t *p, int sig)
{
    if (!p->reaped)
        kill(p->pid, sig);
}

int th_wait_exit(th_proc_t *p, int timeout_ms)
{
    return reap(p, timeout_ms) ? p->status : -1;
}

void th_kill9(th_proc_t *p)
{
    if (p->reaped)
        return;
    kill(p->pid, SIGKILL);
    reap(p, TH_TIMEOUT_MS);
}

/* Test-process exit: stop what is still running, drop the temporary dirs. */
static void cleanup(void)
{
    while (procs) {
        th_proc_t *p = procs;
        procs = p->next;
        th_stop(p);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p);
    }
    for (size_t i = 0; i < ntmpdirs; i++) {
        rm_tree(tmpdirs[i]);
        free(tmpdirs[i]);
    }
    free(tmpdirs);
    tmpdirs = NULL;
    ntmpdirs = 0;
}

/* --- concurrency and waiting --- */

typedef struct par {
    pthread_barrier_t *barrier;
    void (*fn)(int i, void *arg);
    void *arg;
    int i;
} par_t;

static void *par_main(void *a)
{
    par_t *p = a;
    pthread_barrier_wait(p->barrier);
    p->fn(p->i, p->arg);
    return NULL;
}

void th_parallel(int n, void (*fn)(int i, void *arg), void *arg)
{
    pthread_barrier_t barrier;
    pthread_t *t = calloc((size_t)n, sizeof *t);
    par_t *p = calloc((size_t)n, sizeof *p);
    cr_assert(t && p && n > 0);
    pthread_barrier_init(&barrier, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        p[i] = (par_t){ &barrier, fn, arg, i };
        cr_assert(pthread_create(&t[i], NULL, par_main, &p[i]) == 0, "th_parallel: thread %d", i);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    free(t);
    free(p);
}

bool th_wait_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    while (!cond(arg)) {
        if (th_now_ms() >= deadline)
            return cond(arg);
        sleep_ms(5);
    }
    return true;
}
