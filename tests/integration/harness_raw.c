/* harness_raw: a raw TCP origin for the tests that need an upstream to
 * misbehave on the wire in ways the project's origin never does (see
 * harness.h). One thread per origin; a self-pipe wakes it to stop. */
#include "harness_internal.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_MAX (64 * 1024)

struct th_raw_origin {
    int lfd;                 /* listener; closed by the thread when done */
    int stop_pipe[2];        /* a byte on [1] stops the thread */
    int go_pipe[2];          /* a byte on [1] releases a held reply */
    size_t hold_at;          /* write reply[0, hold_at), wait for go, then the rest (0: no hold) */
    char addr[32];
    char *reply;
    size_t reply_len;
    int max_conns;
    atomic_int conns;
    pthread_t thread;
    bool joined;
    th_raw_origin_t *next;
};

static th_raw_origin_t *origins;  /* still running, for the exit handler */
static pthread_mutex_t origins_mu = PTHREAD_MUTEX_INITIALIZER;
static bool atexit_done;

/* Wait until fd has events or the stop pipe has a byte, bounded by
 * TH_TIMEOUT_MS. Returns 1 ready, 0 stop or timeout. */
static int wait_ready(th_raw_origin_t *o, int fd, short events)
{
    struct pollfd pf[2] = { { fd, events, 0 }, { o->stop_pipe[0], POLLIN, 0 } };
    int rc;
    do
        rc = poll(pf, 2, TH_TIMEOUT_MS);
    while (rc < 0 && errno == EINTR);
    return rc > 0 && !pf[1].revents && pf[0].revents ? 1 : 0;
}

/* Read one request head (until CRLF CRLF, bounded); false on EOF, stop,
 * timeout or error. */
static bool read_request(th_raw_origin_t *o, int fd)
{
    char buf[4096], tail[4] = { 0 };
    size_t total = 0;
    while (total < REQ_MAX) {
        if (!wait_ready(o, fd, POLLIN))
            return false;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return false;
        for (ssize_t i = 0; i < n; i++) {
            memmove(tail, tail + 1, 3);
            tail[3] = buf[i];
            if (memcmp(tail, "\r\n\r\n", 4) == 0)
                return true;
        }
        total += (size_t)n;
    }
    return false;
}

/* Wait (bounded) for th_raw_origin_release; false on stop or timeout. */
static bool wait_go(th_raw_origin_t *o)
{
    char c;
    if (!wait_ready(o, o->go_pipe[0], POLLIN))
        return false;
    return read(o->go_pipe[0], &c, 1) == 1;
}

static bool send_all_raw(th_raw_origin_t *o, int fd, const char *p, size_t left)
{
    while (left) {
        ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            left -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_ready(o, fd, POLLOUT))
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static void write_reply(th_raw_origin_t *o, int fd)
{
    size_t first = o->hold_at && o->hold_at < o->reply_len ? o->hold_at : o->reply_len;
    if (send_all_raw(o, fd, o->reply, first) && first < o->reply_len && wait_go(o))
        send_all_raw(o, fd, o->reply + first, o->reply_len - first);
}

static void *raw_main(void *arg)
{
    th_raw_origin_t *o = arg;
    while (atomic_load(&o->conns) < o->max_conns) {
        if (!wait_ready(o, o->lfd, POLLIN))
            break; /* stopped, or idle for TH_TIMEOUT_MS */
        int fd = accept4(o->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        atomic_fetch_add(&o->conns, 1);
        if (read_request(o, fd))
            write_reply(o, fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    close(o->lfd); /* later connections are refused */
    o->lfd = -1;
    return NULL;
}

static void stop_join(th_raw_origin_t *o)
{
    if (o->joined)
        return;
    ssize_t w;
    do
        w = write(o->stop_pipe[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(o->thread, NULL); /* bounded: every wait of the thread is */
    o->joined = true;
}

static void stop_all(void)
{
    pthread_mutex_lock(&origins_mu);
    for (th_raw_origin_t *o = origins; o; o = o->next)
        stop_join(o);
    pthread_mutex_unlock(&origins_mu);
}

th_raw_origin_t *th_raw_origin_start(const void *reply, size_t len, int max_conns)
{
    return th_raw_origin_start_held(reply, len, 0, max_conns);
}

th_raw_origin_t *th_raw_origin_start_held(const void *reply, size_t len, size_t hold_at, int max_conns)
{
    th_raw_origin_t *o = calloc(1, sizeof *o);
    cr_assert_not_null(o);
    o->reply = malloc(len ? len : 1);
    cr_assert_not_null(o->reply);
    memcpy(o->reply, reply, len);
    o->reply_len = len;
    o->max_conns = max_conns;
    o->hold_at = hold_at;
    atomic_init(&o->conns, 0);
    cr_assert(pipe2(o->stop_pipe, O_CLOEXEC) == 0 && pipe2(o->go_pipe, O_CLOEXEC) == 0, "raw origin: pipe: %s",
              strerror(errno));
    o->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    cr_assert(o->lfd >= 0 && bind(o->lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(o->lfd, 16) == 0 &&
                  getsockname(o->lfd, (struct sockaddr *)&sa, &sl) == 0,
              "raw origin: listen: %s", strerror(errno));
    snprintf(o->addr, sizeof o->addr, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    cr_assert(pthread_create(&o->thread, NULL, raw_main, o) == 0, "raw origin: thread");
    pthread_mutex_lock(&origins_mu);
    o->next = origins;
    origins = o;
    if (!atexit_done) {
        atexit(stop_all);
        atexit_done = true;
    }
    pthread_mutex_unlock(&origins_mu);
    return o;
}

const char *th_raw_origin_addr(const th_raw_origin_t *o) { return o->addr; }

int th_raw_origin_conns(th_raw_origin_t *o) { return atomic_load(&o->conns); }

void th_raw_origin_release(th_raw_origin_t *o)
{
    ssize_t w;
    do
        w = write(o->go_pipe[1], "g", 1);
    while (w < 0 && errno == EINTR);
}

void th_raw_origin_stop(th_raw_origin_t *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&origins_mu);
    for (th_raw_origin_t **pp = &origins; *pp; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    }
    pthread_mutex_unlock(&origins_mu);
    stop_join(o);
    close(o->stop_pipe[0]);
    close(o->stop_pipe[1]);
    close(o->go_pipe[0]);
    close(o->go_pipe[1]);
    free(o->reply);
    free(o);
}
