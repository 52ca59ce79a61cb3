/* test_upstream_srv: a scripted HTTP/1.1 server on 127.0.0.1:0, run by a
 * thread inside the unit test, for the upstream client's tests.
 *
 * Unit tests start no binaries, so this stands in for an origin at the
 * byte level: it records every request (head and body) and answers each
 * one with the bytes the test scripted, then optionally a generated body,
 * then holds the connection or closes it. One connection at a time, which
 * is all the client's tests need. Every wait polls the socket together
 * with a stop pipe, so srv_stop always ends the thread. The thread never
 * asserts (Criterion's asserts belong to the test's thread): the test
 * asserts on what it recorded. */
#ifndef TEST_UPSTREAM_SRV_H
#define TEST_UPSTREAM_SRV_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"

typedef struct srv {
    int lfd, stop[2], gate[2];
    unsigned port;
    pthread_t th;
    /* The script, set before the request it answers. */
    const char *reply;         /* bytes sent after each request (NULL: none) */
    size_t body_len;           /* then this many srv_byte() bytes */
    size_t gate_at;            /* (when > 0) stop after this many body bytes until srv_open_gate */
    bool close_after;          /* then close the connection */
    bool hold;                 /* or keep it, reading nothing more, until the client closes */
    /* What happened, readable from the test's thread. */
    pthread_mutex_t mu;
    buf_t reqs;                /* every request received, head and body, in order */
    atomic_int nreq;           /* requests received */
    atomic_int nconn;          /* connections accepted */
    atomic_int nclosed;        /* connections finished (closed by the client, or by the script) */
} srv_t;

/* Byte i of a generated body. */
static inline char srv_byte(size_t i)
{
    return (char)('a' + (i * 7 + i / 26) % 26);
}

/* Wait for fd to be ready for events; false when stopping or on error. */
static bool srv_wait(srv_t *s, int fd, short events)
{
    struct pollfd p[2] = { { fd, events, 0 }, { s->stop[0], POLLIN, 0 } };
    for (;;) {
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        return n > 0 && !p[1].revents && p[0].revents;
    }
}

static bool srv_send(srv_t *s, int fd, const char *p, size_t n)
{
    while (n) {
        if (!srv_wait(s, fd, POLLOUT))
            return false;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read what is there into in: >0 bytes, 0 at EOF, -1 on error or stop. */
static ssize_t srv_read(srv_t *s, int fd, buf_t *in)
{
    char tmp[16384];
    if (!srv_wait(s, fd, POLLIN))
        return -1;
    ssize_t r = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 1; /* spurious: try again */
    if (r > 0 && buf_append(in, tmp, (size_t)r))
        return -1; /* past the 1 MiB a test request may be */
    return r;
}

/* Content-Length of a request head, 0 when absent. */
static size_t srv_content_length(const char *head, size_t len)
{
    static const char cl[] = "\r\ncontent-length:";
    for (size_t i = 0; i + sizeof cl - 1 < len; i++)
        if (strncasecmp(head + i, cl, sizeof cl - 1) == 0)
            return (size_t)strtoull(head + i + sizeof cl - 1, NULL, 10);
    return 0;
}

static void srv_serve(srv_t *s, int fd)
{
    buf_t in;
    buf_init(&in, 1 << 20);
    for (;;) {
        char *end;
        while (!in.len || !(end = memmem(in.data, in.len, "\r\n\r\n", 4)))
            if (srv_read(s, fd, &in) <= 0)
                goto out;
        size_t total = (size_t)(end + 4 - in.data) + srv_content_length(in.data, (size_t)(end - in.data));
        while (in.len < total)
            if (srv_read(s, fd, &in) <= 0)
                goto out;
        pthread_mutex_lock(&s->mu);
        int rc = buf_append(&s->reqs, in.data, total); /* a test that overflows sees a missing request */
        pthread_mutex_unlock(&s->mu);
        if (rc)
            goto out;
        buf_consume(&in, total);
        atomic_fetch_add(&s->nreq, 1);
        if (s->reply && !srv_send(s, fd, s->reply, strlen(s->reply)))
            goto out;
        char chunk[16384];
        for (size_t off = 0; off < s->body_len;) {
            size_t n = s->body_len - off < sizeof chunk ? s->body_len - off : sizeof chunk;
            if (s->gate_at && off == s->gate_at && !srv_wait(s, s->gate[0], POLLIN))
                goto out;
            if (s->gate_at > off && s->gate_at - off < n)
                n = s->gate_at - off;
            for (size_t i = 0; i < n; i++)
                chunk[i] = srv_byte(off + i);
            if (!srv_send(s, fd, chunk, n))
                goto out;
            off += n;
        }
        if (s->close_after)
            goto out;
        if (s->hold) {
            while (srv_read(s, fd, &in) > 0)
                buf_reset(&in);
            goto out;
        }
    }
out:
    buf_free(&in);
}

static void *srv_main(void *arg)
{
    srv_t *s = arg;
    while (srv_wait(s, s->lfd, POLLIN)) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->nconn, 1);
        srv_serve(s, fd);
        close(fd);
        atomic_fetch_add(&s->nclosed, 1);
    }
    return NULL;
}

/* A socket bound to 127.0.0.1 on an ephemeral port; its port in *port. */
static int srv_bind(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void srv_start(srv_t *s)
{
    memset(s, 0, sizeof *s);
    s->lfd = srv_bind(&s->port);
    cr_assert_eq(listen(s->lfd, 16), 0);
    cr_assert_eq(pipe(s->stop), 0);
    cr_assert_eq(pipe(s->gate), 0);
    pthread_mutex_init(&s->mu, NULL);
    buf_init(&s->reqs, 1 << 20);
    cr_assert_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(srv_t *s)
{
    cr_assert_eq(write(s->stop[1], "x", 1), 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    close(s->gate[0]);
    close(s->gate[1]);
    pthread_mutex_destroy(&s->mu);
    buf_free(&s->reqs);
}

/* Let the body go on past gate_at. */
static void srv_open_gate(srv_t *s)
{
    cr_assert_eq(write(s->gate[1], "g", 1), 1);
}

/* A copy of every request received so far (NUL-terminated; free() it). */
static char *srv_requests(srv_t *s)
{
    pthread_mutex_lock(&s->mu);
    char *p = strndup(s->reqs.data ? s->reqs.data : "", s->reqs.len);
    pthread_mutex_unlock(&s->mu);
    cr_assert_not_null(p);
    return p;
}

#endif
