/* Fuzz target: HTTP-date (policy_date): IMF-fixdate, RFC 850 and asctime
 * parsing, and IMF-fixdate formatting. The input is a field value (Date,
 * Expires, Last-Modified, If-Modified-Since...), not NUL-terminated.
 *
 * A date that parses is within 0..POLICY_DATE_MAX, and formatting it
 * gives 29 characters that parse back to the same second. The input's
 * first eight bytes, read as a time, must survive format -> parse too
 * (clamped to the range the format can show). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "policy_date.h"

static void must(bool ok)
{
    if (!ok)
        abort();
}

/* format(t) in its own exact 29-byte buffer parses back to t. */
static void round_trip(int64_t t)
{
    char out[30];
    policy_date_format(t, out);
    must(strlen(out) == 29);
    char *own = fuzz_dup((const uint8_t *)out, 29);
    must(policy_date_parse(own, 29) == t);
    free(own);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = fuzz_dup(data, size);
    int64_t t = policy_date_parse(v, size);
    must(t >= -1 && t <= POLICY_DATE_MAX);
    if (t >= 0)
        round_trip(t);
    free(v);

    if (size >= 8) {
        uint64_t u;
        memcpy(&u, data, 8);
        int64_t x = (int64_t)u;
        char out[30];
        policy_date_format(x, out);
        must(strlen(out) == 29);
        round_trip(x < 0 ? 0 : x > POLICY_DATE_MAX ? POLICY_DATE_MAX : x);
    }
    return 0;
}
