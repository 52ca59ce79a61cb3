#!/usr/bin/env bash
# What a change costs on the hit path: two builds of the edge side by side,
# the same cached 1 KiB object, wrk -t2 -c64, run ROUNDS times alternately
# (this machine's noise is larger than most effects), each round and the
# medians reported, with the edge's CPU per request (user + system time of
# its process over the run / requests), steadier than req/s. Usage: loadtest/bench_builds.sh OLD_BIN NEW_BIN
# (directories holding edge and origin; build the old one from a git
# worktree). Bounded: ROUNDS x 2 x DURATION.
set -euo pipefail
OLD=$(cd "${1:?usage: $0 OLD_BIN NEW_BIN}" && pwd)
NEW=$(cd "${2:?usage: $0 OLD_BIN NEW_BIN}" && pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
WORKERS=${WORKERS:-$(nproc)}
command -v wrk >/dev/null || { echo "wrk is missing (make bench installs it)" >&2; exit 1; }

. "$(dirname "$0")/bench_lib.sh"
bench_init builds

ORIGIN=$(bench_start origin "$NEW/origin" --listen=127.0.0.1:0 --workers=1)
start_edge() { # name, bin dir
    bench_start "$1" "$2/edge" --listen=127.0.0.1:0 --origin="http://$ORIGIN" --cache-dir="$T/$1-cache" \
        --access-log=off --workers="$WORKERS"
}
A=$(start_edge old "$OLD")
B=$(start_edge new "$NEW")
Q="/bench/builds?size=1024&cc=max-age%3D3600"
for e in "$A" "$B"; do for _ in 1 2 3; do curl -s -o /dev/null "http://$e$Q"; done; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # addr pid -> "req/s p99_ms cpu_us_per_request"
    local c0 c1 r p n
    c0=$(cpu_ticks "$2")
    read -r r p n <<<"$(bench_wrk "http://$1$Q")"
    c1=$(cpu_ticks "$2")
    awk -v r="$r" -v p="$p" -v n="$n" -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" \
        'BEGIN{printf "%s %s %.2f", r, p, n ? c * 1e6 / hz / n : 0}'
}
echo
echo "two builds on the hit path: 1 KiB hits, wrk -t2 -c$CONNS -d${DURATION}s, $WORKERS workers, $(nproc) cores, $(date -u +%F)"
echo "  old: $OLD"
echo "  new: $NEW"
printf '%-6s %12s %9s %8s %12s %9s %8s\n' round old_req/s old_p99 old_cpu new_req/s new_p99 new_cpu
olds=(); news=(); oc=(); nc=()
for i in $(seq 1 "$ROUNDS"); do
    read -r ro po co <<<"$(run "$A" "$(cat "$T/old.pid")")"
    read -r rn pn cn <<<"$(run "$B" "$(cat "$T/new.pid")")"
    olds+=("$ro"); news+=("$rn"); oc+=("$co"); nc+=("$cn")
    printf '%-6s %12s %9s %8s %12s %9s %8s\n' "$i" "$ro" "$po" "$co" "$rn" "$pn" "$cn"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
mo=$(median "${olds[@]}"); mn=$(median "${news[@]}"); co=$(median "${oc[@]}"); cn=$(median "${nc[@]}")
awk -v o="$mo" -v n="$mn" -v co="$co" -v cn="$cn" \
    'BEGIN{printf "median  old %.0f req/s %.2f us CPU/req, new %.0f req/s %.2f us CPU/req: req/s new/old %.3f, CPU/req new/old %.3f\n", o, co, n, cn, n/o, cn/co}'
