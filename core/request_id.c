/* request_id: deciding and generating request ids (see include/request_id.h). */
#include "request_id.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "rng.h"

bool request_id_sane(const char *p, size_t n)
{
    if (n == 0 || n > REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch && strchr("-_.:+/=@~", ch));
        if (!ok)
            return false;
    }
    return true;
}

/* xoshiro256**: fast, and good enough for ids that must not collide; they
 * are not secrets (a client sees nothing of them unless it is trusted). */
static _Thread_local rng_t rng;
static _Thread_local bool rng_seeded;

static void seed_rng(void)
{
    if (getrandom(rng.s, sizeof rng.s, GRND_NONBLOCK) != (ssize_t)sizeof rng.s) {
        /* No entropy yet (early boot): the clock and this thread's address
         * still differ between nodes and threads. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rng_seed(&rng, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)&rng);
    }
    if (!(rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]))
        rng.s[0] = 1; /* the one state xoshiro cannot leave */
    rng_seeded = true;
}

void request_id_generate(char out[REQUEST_ID_GEN_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    if (!rng_seeded)
        seed_rng();
    for (int half = 0; half < 2; half++) {
        uint64_t v = rng_next(&rng);
        for (int i = 0; i < 16; i++, v >>= 4)
            out[half * 16 + i] = hex[v & 15];
    }
    out[REQUEST_ID_GEN_LEN] = '\0';
}

/* The client's X-Request-Id when it may be used: one field, sane. */
static bool client_id(const http_req_t *req, http_slice_t *v)
{
    return http_fields_count(&req->hdrs, "x-request-id") == 1 && http_fields_get(&req->hdrs, "x-request-id", v) &&
           request_id_sane(v->p, v->len);
}

void request_id_recv(http_conn_t *c, const http_req_t *req, const policy_rl_cidrs_t *trusted)
{
    policy_rl_addr_t peer;
    http_slice_t v;
    if (trusted->n && policy_rl_addr_from_sockaddr(http_conn_peer(c), &peer) == 0 &&
        policy_rl_cidrs_match(trusted, &peer) && client_id(req, &v)) {
        http_conn_set_request_id(c, v.p, v.len);
        return;
    }
    /* Otherwise the connection generates one when it is first asked
     * (http_conn_request_id: the access log, the upstream request), so a
     * hit with the access log off costs nothing here. */
}
