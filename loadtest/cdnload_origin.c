/* cdnload_origin: the origin's own count of the load's objects (see
 * cdnload_load.h), asked on the loop like any request: one poll is four
 * GET /.origin/stats?prefix=P on one keep-alive connection, so polling
 * once a second costs the origin four small answers, not its whole
 * per-path table. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdnload_load.h"

static const char *const prefixes[] = { "/o/", "/img/", "/u/", "/a/" };
#define NPREFIXES (sizeof prefixes / sizeof prefixes[0])

struct cdnload_poller {
    cdnload_load_t *ld;
    cdnload_conn_t *conn;
    cdnload_poll_fn done;      /* NULL: no poll runs */
    unsigned step;             /* the prefix being asked */
    cdnload_origin_count_t count;
};

static void ask(cdnload_poller_t *p)
{
    char target[64];
    snprintf(target, sizeof target, "/.origin/stats?prefix=%s", prefixes[p->step]);
    cdnload_conn_send(p->conn, "GET", target, p->ld->origin, NULL, NULL, 0, CDNLOAD_NO_CHECK);
}

static void end(cdnload_poller_t *p, int rc)
{
    cdnload_poll_fn done = p->done;
    p->done = NULL;
    done(p->ld, rc, &p->count);
}

static void on_answer(void *ud, cdnload_conn_t *c, const cdnload_result_t *r)
{
    cdnload_poller_t *p = ud;
    size_t len;
    const char *body = cdnload_conn_body(c, &len);
    json_error_t je;
    json_t *j = r->err == CDNLOAD_OK && r->status == 200 ? json_loadb(body, len, 0, &je) : NULL;
    json_t *rq = json_object_get(j, "requests"), *by = json_object_get(j, "bytes");
    if (!json_is_integer(rq) || !json_is_integer(by)) {
        fprintf(stderr, "cdnload: origin %s: /.origin/stats?prefix=%s answered %s %d without requests and bytes "
                        "(is it bin/origin, this version?)\n",
                p->ld->origin, prefixes[p->step], r->err == CDNLOAD_OK ? "status" : "error", r->err ? (int)r->err : r->status);
        json_decref(j);
        end(p, -1);
        return;
    }
    uint64_t n = (uint64_t)json_integer_value(rq), b = (uint64_t)json_integer_value(by);
    json_decref(j);
    const char *pre = prefixes[p->step];
    if (strcmp(pre, "/a/") == 0) {
        p->count.abusive = n;
    } else {
        p->count.requests += n;
        p->count.bytes += b;
        if (strcmp(pre, "/u/") != 0)
            p->count.cacheable += n;
    }
    if (++p->step < NPREFIXES)
        ask(p);
    else
        end(p, 0);
}

cdnload_poller_t *cdnload_poller_new(cdnload_load_t *ld, const struct sockaddr *origin)
{
    cdnload_poller_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->ld = ld;
    p->conn = cdnload_conn_new(&ld->loop, origin, NULL, ld->timeout_ms, on_answer, p);
    if (!p->conn) {
        free(p);
        return NULL;
    }
    cdnload_conn_keep_bodies(p->conn);
    return p;
}

int cdnload_poller_poll(cdnload_poller_t *p, cdnload_poll_fn done)
{
    if (p->done)
        return -EBUSY;
    p->done = done;
    p->step = 0;
    memset(&p->count, 0, sizeof p->count);
    ask(p);
    return 0;
}

bool cdnload_poller_busy(const cdnload_poller_t *p)
{
    return p->done != NULL;
}

void cdnload_poller_close(cdnload_poller_t *p)
{
    if (!p)
        return;
    cdnload_conn_close(p->conn);
    free(p);
}
