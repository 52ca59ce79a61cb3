#!/usr/bin/env bash
# `make bench`, part: what rate limiting costs on the hit path. Two edges
# in front of one origin, the same cached 1 KiB object, wrk -t2 -c64:
#   off      rate_limit = off (the per-client connection cap still runs)
#   on       rate_limit at a rate wrk never reaches: every request takes
#            a token from the shared table, none is refused
# run ROUNDS times alternately (the machine's noise is larger than the
# effect), reporting each round and the medians. Issue 12's target: the
# limiter costs under 5% of hit throughput. Bounded: ROUNDS x 2 x DURATION.
set -euo pipefail
BIN=$(cd "${1:-bin}" && pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
WORKERS=${WORKERS:-$(nproc)}
command -v wrk >/dev/null || { echo "wrk is missing (make bench installs it)" >&2; exit 1; }

. "$(dirname "$0")/bench_lib.sh"
bench_init ratelimit

ORIGIN=$(bench_start origin "$BIN/origin" --listen=127.0.0.1:0 --workers=1)
start_edge() { # name, extra flags...
    local n=$1; shift
    bench_start "$n" "$BIN/edge" --listen=127.0.0.1:0 --origin="http://$ORIGIN" --cache-dir="$T/$n-cache" \
        --access-log=off --workers="$WORKERS" "$@"
}
OFF=$(start_edge off)
ON=$(start_edge on --rate-limit="1000000/s burst 1000000")
Q="/bench/rl?size=1024&cc=max-age%3D3600"
for e in "$OFF" "$ON"; do for _ in 1 2 3; do curl -s -o /dev/null "http://$e$Q"; done; done

run() { # addr -> "req/s p99_ms"
    local r p _
    read -r r p _ <<<"$(bench_wrk "http://$1$Q")"
    echo "$r $p"
}
echo
echo "rate limiter on the hit path: 1 KiB hits, wrk -t2 -c$CONNS -d${DURATION}s, $WORKERS workers, $(nproc) cores, $(date -u +%F)"
printf '%-6s %14s %10s %14s %10s\n' round off_req/s off_p99 on_req/s on_p99
offs=(); ons=()
for i in $(seq 1 "$ROUNDS"); do
    read -r ro po <<<"$(run "$OFF")"
    read -r rn pn <<<"$(run "$ON")"
    offs+=("$ro"); ons+=("$rn")
    printf '%-6s %14s %10s %14s %10s\n' "$i" "$ro" "$po" "$rn" "$pn"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
mo=$(median "${offs[@]}"); mn=$(median "${ons[@]}")
awk -v o="$mo" -v n="$mn" 'BEGIN{printf "median  off %.0f req/s, on %.0f req/s: the limiter costs %.1f%% (target < 5%%)\n", o, n, (o-n)*100/o}'
