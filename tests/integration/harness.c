/* harness: processes, HTTP client and helpers for the integration tests
 * (see harness.h).
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <llhttp.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "synth.h"

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

struct th_conn {
    int fd;
    buf_t in;                /* received, not yet parsed */
    bool eof, broken;
    llhttp_t parser;
};

static th_proc_t *procs;
static char **tmpdirs;
static size_t ntmpdirs;
static char test_dir[512];
static bool cleanup_registered;
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

static void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_error(const char *fmt, ...)
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
    char run[300], prefix[300];
    snprintf(run, sizeof run, "%s/cdn-it.%d", tmp_root(), (int)getpid());
    snprintf(prefix, sizeof prefix, "%s.%s.", st->test->category, st->test->name);
    DIR *d = opendir(run);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char dir[900];
        snprintf(dir, sizeof dir, "%s/%s", run, e->d_name);
        DIR *d2 = opendir(dir);
        struct dirent *f;
        while (d2 && (f = readdir(d2))) {
            size_t l = strlen(f->d_name);
            if (l > 4 && strcmp(f->d_name + l - 4, ".log") == 0) {
                char path[1300];
                snprintf(path, sizeof path, "%s/%s", dir, f->d_name);
                print_tail(f->d_name, path);
            }
        }
        if (d2)
            closedir(d2);
    }
    if (d)
        closedir(d);
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
static void check_procs(void)
{
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

int th_stop(th_proc_t *p)
{
    if (!p->reaped) {
        kill(p->pid, SIGTERM);
        if (!reap(p, TH_TIMEOUT_MS)) {
            fprintf(stderr, "harness: %s did not stop within %d ms after SIGTERM; killing it\n", p->name,
                    TH_TIMEOUT_MS);
            kill(p->pid, SIGKILL);
            reap(p, TH_TIMEOUT_MS);
            p->status = 128 + SIGKILL;
        }
        if (p->status != 0) {
            char what[128];
            snprintf(what, sizeof what, "%s (pid %d) exit status %d", p->name, (int)p->pid, p->status);
            print_tail(what, p->log);
        }
    }
    return p->status;
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

/* --- HTTP client: sockets --- */

static int connect_to(const char *addr, int timeout_ms)
{
    char host[256], port[16];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host || strlen(colon + 1) >= sizeof port) {
        set_error("bad address '%s'", addr);
        return -1;
    }
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (*h == '[' && hl >= 2 && h[hl - 1] == ']')
        h++, hl -= 2;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) {
        set_error("resolve %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
        set_error("connect %s: %s", addr, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -1;
    struct pollfd pf = { fd, POLLOUT, 0 };
    int err = 0;
    socklen_t el = sizeof err;
    if (poll(&pf, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
        set_error("connect %s: %s", addr, err ? strerror(err) : "timed out");
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *bytes, size_t len, int64_t deadline)
{
    const char *p = bytes;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            set_error("send: %s", strerror(errno));
            return -1;
        }
        struct pollfd pf = { fd, POLLOUT, 0 };
        int64_t left = deadline - th_now_ms();
        if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
            set_error("send: timed out");
            return -1;
        }
    }
    return 0;
}

/* Read what is available into b, waiting until deadline. Returns bytes
 * read, 0 at EOF (or reset), -1 on timeout or error. */
static ssize_t recv_some(int fd, buf_t *b, int64_t deadline)
{
    for (;;) {
        if (buf_reserve(b, 65536)) {
            set_error("out of memory");
            return -1;
        }
        ssize_t n = recv(fd, b->data + b->len, 65536, 0);
        if (n >= 0) {
            b->len += (size_t)n;
            b->data[b->len] = '\0';
            return n;
        }
        if (errno == ECONNRESET)
            return 0;
        if (errno != EAGAIN && errno != EINTR) {
            set_error("recv: %s", strerror(errno));
            return -1;
        }
        struct pollfd pf = { fd, POLLIN, 0 };
        int64_t left = deadline - th_now_ms();
        if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
            set_error("no response within the timeout");
            return -1;
        }
    }
}

/* --- HTTP client: parsing responses with llhttp --- */

typedef struct parse_ctx {
    th_resp_t *r;
    bool head, done, headers_done;
    int last;                /* 1 after a field piece, 2 after a value piece */
} parse_ctx_t;

static int p_field(llhttp_t *p, const char *at, size_t n)
{
    parse_ctx_t *x = p->data;
    if (x->headers_done)
        return 0; /* trailers are not headers */
    int rc = x->last == 1 ? http_fields_extend_name(&x->r->headers, at, n)
                          : http_fields_add(&x->r->headers, at, n, "", 0);
    x->last = 1;
    return rc ? -1 : 0;
}

static int p_value(llhttp_t *p, const char *at, size_t n)
{
    parse_ctx_t *x = p->data;
    if (x->headers_done)
        return 0;
    x->last = 2;
    return http_fields_extend_value(&x->r->headers, at, n) ? -1 : 0;
}

static int p_headers_complete(llhttp_t *p)
{
    parse_ctx_t *x = p->data;
    x->headers_done = true;
    x->r->status = p->status_code;
    x->r->http_major = p->http_major;
    x->r->http_minor = p->http_minor;
    x->r->chunked = (p->flags & F_CHUNKED) != 0;
    return x->head ? 1 : 0; /* 1: no body follows (HEAD) */
}

static int p_body(llhttp_t *p, const char *at, size_t n)
{
    parse_ctx_t *x = p->data;
    return buf_append(&x->r->body, at, n) ? -1 : 0;
}

static int p_message_complete(llhttp_t *p)
{
    parse_ctx_t *x = p->data;
    x->done = true;
    x->r->complete = true;
    x->r->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED;
}

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void settings_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_header_field = p_field;
    settings.on_header_value = p_value;
    settings.on_headers_complete = p_headers_complete;
    settings.on_body = p_body;
    settings.on_message_complete = p_message_complete;
}

/* Parser settings shared by every thread (read-only once initialised). */
static const llhttp_settings_t *resp_settings(void)
{
    pthread_once(&settings_once, settings_init);
    return &settings;
}

static th_resp_t *resp_new(void)
{
    th_resp_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    http_fields_init(&r->headers, 0);
    buf_init(&r->body, 0);
    buf_init(&r->raw, 0);
    return r;
}

void th_resp_free(th_resp_t *r)
{
    if (!r)
        return;
    http_fields_free(&r->headers);
    buf_free(&r->body);
    buf_free(&r->raw);
    for (size_t i = 0; i < r->_ncopies; i++)
        free(r->_copies[i]);
    free(r->_copies);
    free(r);
}

const char *th_hdr(th_resp_t *r, const char *name)
{
    http_slice_t v;
    if (!r || !http_fields_get(&r->headers, name, &v))
        return NULL;
    char **n = realloc(r->_copies, (r->_ncopies + 1) * sizeof *n);
    if (!n)
        return NULL;
    r->_copies = n;
    return r->_copies[r->_ncopies++] = strndup(v.p, v.len);
}

size_t th_hdr_count(const th_resp_t *r, const char *name)
{
    return r ? http_fields_count(&r->headers, name) : 0;
}

/* --- HTTP client: connections --- */

th_conn_t *th_connect(const char *addr)
{
    int fd = connect_to(addr, TH_TIMEOUT_MS);
    if (fd < 0) {
        check_procs();
        return NULL;
    }
    th_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        set_error("out of memory");
        return NULL;
    }
    c->fd = fd;
    buf_init(&c->in, 0);
    llhttp_init(&c->parser, HTTP_RESPONSE, resp_settings());
    return c;
}

int th_send(th_conn_t *c, const void *bytes, size_t len)
{
    return send_all(c->fd, bytes, len, th_now_ms() + TH_TIMEOUT_MS);
}

/* Feed bytes to the parser until one response completes; the rest of in
 * stays for the next one. Returns 1 done, 0 need more, -1 parse error. */
static int parse_some(llhttp_t *parser, buf_t *in, th_resp_t *r)
{
    if (!in->len)
        return 0;
    llhttp_errno_t e = llhttp_execute(parser, in->data, in->len);
    size_t used = e == HPE_OK ? in->len : (size_t)(llhttp_get_error_pos(parser) - in->data);
    buf_append(&r->raw, in->data, used);
    buf_consume(in, used);
    if (e == HPE_PAUSED) {
        llhttp_resume(parser);
        return 1;
    }
    if (e != HPE_OK) {
        set_error("bad response: %s", llhttp_get_error_reason(parser));
        return -1;
    }
    return 0;
}

th_resp_t *th_read_response(th_conn_t *c, bool head)
{
    int64_t deadline = th_now_ms() + TH_TIMEOUT_MS;
    if (c->broken) {
        set_error("connection unusable after an earlier error");
        return NULL;
    }
    th_resp_t *r = resp_new();
    parse_ctx_t x = { .r = r, .head = head };
    c->parser.data = &x;
    for (;;) {
        int rc = parse_some(&c->parser, &c->in, r);
        if (rc > 0)
            return r;
        if (rc < 0)
            break;
        if (c->eof) {
            /* A close-delimited body ends here; anything else is truncated. */
            if (llhttp_finish(&c->parser) == HPE_PAUSED)
                llhttp_resume(&c->parser);
            r->closed = true;
            if (x.done)
                return r;
            set_error("connection closed before a complete response (%zu bytes received)", r->raw.len);
            break;
        }
        ssize_t n = recv_some(c->fd, &c->in, deadline);
        if (n < 0)
            break;
        if (n == 0)
            c->eof = true;
    }
    c->broken = true;
    th_resp_free(r);
    check_procs();
    return NULL;
}

bool th_conn_closed(th_conn_t *c, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    while (!c->eof) {
        ssize_t n = recv_some(c->fd, &c->in, deadline);
        if (n < 0)
            return false;
        if (n == 0)
            c->eof = true;
    }
    return true;
}

void th_close(th_conn_t *c)
{
    if (!c)
        return;
    close(c->fd);
    buf_free(&c->in);
    free(c);
}

th_resp_t *th_raw(const char *addr, const void *bytes, size_t len, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    int fd = connect_to(addr, TH_TIMEOUT_MS);
    if (fd < 0) {
        check_procs();
        return NULL;
    }
    th_resp_t *r = resp_new();
    buf_t in;
    buf_init(&in, 0);
    send_all(fd, bytes, len, deadline); /* the server may answer (and stop reading) early */
    ssize_t n;
    while ((n = recv_some(fd, &in, deadline)) > 0)
        ;
    r->closed = n == 0;
    close(fd);
    /* Parse the first response out of a copy; raw keeps every byte. */
    llhttp_t parser;
    parse_ctx_t x = { .r = r };
    llhttp_init(&parser, HTTP_RESPONSE, resp_settings());
    parser.data = &x;
    buf_t rest;
    buf_init(&rest, 0);
    buf_append(&rest, in.data ? in.data : "", in.len);
    if (parse_some(&parser, &rest, r) == 0 && r->closed && llhttp_finish(&parser) == HPE_PAUSED)
        llhttp_resume(&parser);
    buf_free(&rest);
    buf_free(&r->raw);
    r->raw = in;
    return r;
}

static bool has_header(const char *block, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = block; p && *p;) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return true;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}

th_resp_t *th_request(const char *addr, const char *method, const char *target,
                      const char *extra_headers, const void *body, size_t len)
{
    buf_t q;
    buf_init(&q, 0);
    buf_printf(&q, "%s %s HTTP/1.1\r\n", method, target);
    if (!has_header(extra_headers, "host"))
        buf_printf(&q, "Host: %s\r\n", addr);
    if (extra_headers)
        buf_puts(&q, extra_headers);
    if (body && !has_header(extra_headers, "content-length") && !has_header(extra_headers, "transfer-encoding"))
        buf_printf(&q, "Content-Length: %zu\r\n", len);
    if (!has_header(extra_headers, "connection"))
        buf_puts(&q, "Connection: close\r\n");
    buf_puts(&q, "\r\n");
    if (body)
        buf_append(&q, body, len);
    th_resp_t *r = NULL;
    th_conn_t *c = th_connect(addr);
    if (c && th_send(c, q.data, q.len) == 0)
        r = th_read_response(c, strcasecmp(method, "HEAD") == 0);
    th_close(c);
    buf_free(&q);
    return r;
}

th_resp_t *th_get(const char *addr, const char *target)
{
    return th_request(addr, "GET", target, NULL, NULL, 0);
}

/* --- origin and bodies --- */

/* A number field of the origin's per-path stats JSON, or -1. */
static long long origin_stat(const char *origin, const char *path, const char *field)
{
    static const char hex[] = "0123456789ABCDEF";
    char target[2048] = "/.origin/stats?path=";
    size_t o = strlen(target);
    for (const unsigned char *p = (const unsigned char *)path; *p && o < sizeof target - 4; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("/-._~", *p)) {
            target[o++] = (char)*p;
        } else {
            target[o++] = '%';
            target[o++] = hex[*p >> 4];
            target[o++] = hex[*p & 15];
        }
    }
    target[o] = '\0';
    th_resp_t *r = th_get(origin, target);
    long long v = -1;
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", field);
    const char *at = r && r->status == 200 && r->body.data ? strstr(r->body.data, key) : NULL;
    if (at)
        v = strtoll(at + strlen(key), NULL, 10);
    else
        set_error("origin stats for %s: %s", path, r ? "unexpected answer" : th_last_error());
    th_resp_free(r);
    return v;
}

long th_origin_requests(const char *origin_addr, const char *path)
{
    return (long)origin_stat(origin_addr, path, "requests");
}

long long th_origin_bytes(const char *origin_addr, const char *path)
{
    return origin_stat(origin_addr, path, "bytes");
}

void th_origin_reset(const char *origin_addr)
{
    th_resp_t *r = th_request(origin_addr, "POST", "/.origin/stats/reset", NULL, NULL, 0);
    cr_assert(r && r->status == 200, "origin %s: reset failed: %s", origin_addr, r ? "bad status" : th_last_error());
    th_resp_free(r);
}

bool th_body_matches(const char *path, uint64_t size, const void *body, size_t len)
{
    if (len != size) {
        set_error("body is %zu bytes, expected %llu", len, (unsigned long long)size);
        return false;
    }
    size_t at = synth_compare(path, strlen(path), 0, body, len);
    if (at != len) {
        set_error("body of %s differs at byte %zu", path, at);
        return false;
    }
    return true;
}

void th_checksum_hex(const void *body, size_t len, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)synth_fnv1a(SYNTH_FNV_INIT, body, len));
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
