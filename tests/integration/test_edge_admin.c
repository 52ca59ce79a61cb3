/* The admin paths (issue 13): /.cdn/metrics, /.cdn/status and
 * /.cdn/status.json answer the node's own host (127.0.0.1) and the
 * admin_allow CIDRs only; another address (127.0.0.2 stands for another
 * host) gets 403, while /.cdn/health stays open to it. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "edge_env.h"

/* GET path from source address src to addr ("127.0.0.1:PORT") on a new
 * connection; returns the status (0: no answer) and the body's start in
 * body[n]. Bounded by a 10 s receive timeout. */
static int get_from_with(const char *src, const char *addr, const char *path, const char *extra, char *body, size_t n)
{
    char host[64];
    unsigned port = 0;
    const char *colon = strrchr(addr, ':');
    cr_assert(colon && (size_t)(colon - addr) < sizeof host);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    sscanf(colon + 1, "%u", &port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, src, &a.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind %s", src);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, host, &to.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof to), 0, "connect %s from %s", addr, src);
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[256];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: " EDGE_HOST "\r\nConnection: close\r\n%s\r\n", path,
                       extra);
    cr_assert_eq(write(fd, req, (size_t)len), len);
    static char resp[1 << 20];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = '\0';
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, n, "%s", b ? b + 4 : "");
    return status;
}

static int get_from(const char *src, const char *addr, const char *path, char *body, size_t n)
{
    return get_from_with(src, addr, path, "", body, n);
}

static const char *const admin_paths[] = { "/.cdn/metrics", "/.cdn/status", "/.cdn/status.json" };

Test(edge_admin, another_host_gets_403_on_admin_paths_and_200_on_health)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    char body[256];
    for (size_t i = 0; i < sizeof admin_paths / sizeof admin_paths[0]; i++) {
        cr_expect_eq(get_from("127.0.0.2", env.e, admin_paths[i], body, sizeof body), 403, "%s", admin_paths[i]);
        cr_expect_eq(get_from("127.0.0.1", env.e, admin_paths[i], body, sizeof body), 200, "%s", admin_paths[i]);
    }
    cr_expect_eq(get_from("127.0.0.2", env.e, "/.cdn/health", body, sizeof body), 200);
    cr_expect_str_eq(body, "ok\n");
}

Test(edge_admin, admin_allow_opens_them_to_a_cidr)
{
    edge_env_t env;
    const char *extra[] = { "--admin-allow=127.0.0.2/31, 10.0.0.0/8", NULL };
    edge_env_start(&env, extra);
    char body[256];
    for (size_t i = 0; i < sizeof admin_paths / sizeof admin_paths[0]; i++) {
        cr_expect_eq(get_from("127.0.0.2", env.e, admin_paths[i], body, sizeof body), 200, "%s", admin_paths[i]);
        cr_expect_eq(get_from("127.0.0.3", env.e, admin_paths[i], body, sizeof body), 200, "%s", admin_paths[i]);
        cr_expect_eq(get_from("127.0.0.4", env.e, admin_paths[i], body, sizeof body), 403, "%s", admin_paths[i]);
    }
}

Test(edge_admin, x_forwarded_for_does_not_open_them)
{
    edge_env_t env;
    const char *extra[] = { "--trusted-proxies=127.0.0.0/8", NULL };
    edge_env_start(&env, extra);
    /* A trusted proxy's X-Forwarded-For names the client for rate
     * limiting, never for access: the TCP peer is what is judged. */
    char body[256];
    cr_expect_eq(get_from_with("127.0.0.2", env.e, "/.cdn/metrics", "X-Forwarded-For: 127.0.0.1\r\n", body, sizeof body),
                 403);
}

Test(edge_admin, unknown_control_path_is_404_and_post_is_405)
{
    edge_env_t env;
    edge_env_start(&env, NULL);
    th_resp_t *r = edge_req(env.e, "GET", "/.cdn/nope", NULL, NULL, 0);
    cr_assert_not_null(r);
    cr_expect_eq(r->status, 404);
    th_resp_free(r);
    r = edge_req(env.e, "POST", "/.cdn/metrics", NULL, "x", 1);
    cr_assert_not_null(r);
    cr_expect_eq(r->status, 405);
    cr_expect_str_eq(th_hdr(r, "allow"), "GET, HEAD");
    th_resp_free(r);
}
