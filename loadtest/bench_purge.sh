#!/usr/bin/env bash
# `make bench`, purge part (issue 10), on loopback:
#   1. propagation: 1 shield + 6 edges; an object cached on every node is
#      purged through edge 1 (which passes it to the shield, then to the
#      other edges) PURGES times; the time from the API call until its
#      answer (every peer confirmed, so the object is a miss everywhere,
#      which is then checked) gives p50 / p99;
#   2. one tag on TAGGED objects: the time the tag purge takes on one edge,
#      and the hit p99 of concurrent clients (wrk) with and without it.
# Bounded: a fixed number of purges and objects, wrk runs of DURATION s.
set -euo pipefail
BIN=$(cd "${1:-bin}" && pwd)
PURGES=${PURGES:-100}
TAGGED=${TAGGED:-100000}
DURATION=${DURATION:-10}
command -v wrk >/dev/null || { echo "bench_purge: needs wrk (make bench installs it)"; exit 1; }

. "$(dirname "$0")/bench_lib.sh"
bench_init purge

head -c 24 /dev/urandom | base64 > "$T/token"
chmod 600 "$T/token"
TOKEN=$(cat "$T/token")

COMMON=(--workers=2 --cache-size=1G --access-log=off --log-level=warn "--purge-token-file=$T/token")
ORIGIN=$(bench_start origin "$BIN/origin" --listen 127.0.0.1:0)
SHIELD=$(bench_start shield "$BIN/shield" --listen=127.0.1.1:0 "--origin=http://$ORIGIN" "--cache-dir=$T/shield" \
         "${COMMON[@]}")
EDGES=()
for i in 2 3 4 5 6; do
    EDGES[$i]=$(bench_start "edge$i" "$BIN/edge" --name="edge-$i" --listen="127.0.2.$i:0" "--shields=$SHIELD" \
                "--origin=http://$ORIGIN" "--cache-dir=$T/edge$i" "${COMMON[@]}")
done
PEERS=$(IFS=,; echo "${EDGES[*]:2}")
EDGES[1]=$(bench_start edge1 "$BIN/edge" --name=edge-1 --listen=127.0.2.1:0 "--shields=$SHIELD" \
           "--origin=http://$ORIGIN" "--cache-dir=$T/edge1" "--purge-peers=$PEERS" "${COMMON[@]}")

# cache_status EDGE PATH: the edge's Cache-Status for a GET.
cache_status() {
    curl -s -o /dev/null -D - -H 'Host: bench.test' "http://$1$2" | tr -d '\r' | sed -n 's/^[Cc]ache-[Ss]tatus: //p'
}

echo "purge propagation: 1 shield + 6 edges, $PURGES purges through edge 1, $(date +%F)"
: >"$T/lat"
for n in $(seq 1 "$PURGES"); do
    path="/p$n?size=512&cc=max-age%3D600"
    for i in 1 2 3 4 5 6; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            case "$(cache_status "${EDGES[$i]}" "$path")" in *edge-$i\;\ hit*) break ;; esac
            sleep 0.01
        done
    done
    t=$(curl -s -o "$T/answer" -w '%{time_total}' -X PURGE -H "Authorization: Bearer $TOKEN" \
        -H 'Host: bench.test' "http://${EDGES[1]}$path")
    grep -q '"retrying"\|"failed"' "$T/answer" && { echo "a peer missed purge $n: $(cat "$T/answer")"; exit 1; }
    echo "$t" >>"$T/lat"
    for i in 1 2 3 4 5 6; do
        case "$(cache_status "${EDGES[$i]}" "$path")" in
            *edge-$i\;\ hit*) echo "purge $n: still a hit on edge $i"; exit 1 ;;
        esac
    done
done
sort -n "$T/lat" | awk '{ v[NR] = $1 * 1000 } END {
    printf "  purges %d   p50 %.2f ms   p99 %.2f ms   max %.2f ms   (every purge then verified a miss on all 6 edges)\n",
           NR, v[int(NR * 0.50 + 0.5)], v[int(NR * 0.99 + 0.5)], v[NR] }'

echo "purge of one tag on $TAGGED objects, one edge (no shield), $(date +%F)"
E=$(bench_start tagedge "$BIN/edge" --name=edge-tag --listen=127.0.3.1:0 "--origin=http://$ORIGIN" \
    "--cache-dir=$T/tagedge" "${COMMON[@]}")
for n in $(seq 1 "$TAGGED"); do
    printf 'url = "http://%s/t%d?size=64&cc=max-age%%3D600&sk=bulk"\noutput = /dev/null\n' "$E" "$n"
done >"$T/urls"
fill_start=$(date +%s.%N)
curl -s --no-progress-meter -Z --parallel-max 64 -H 'Host: bench.test' -K "$T/urls"
fill_end=$(date +%s.%N)
hot="http://$E/hot?size=1024&cc=max-age%3D600"
curl -s -o /dev/null -H 'Host: bench.test' "$hot"
sleep 1 # let the last fills commit (their count is checked below)
p99() { sed -n 's/^ *99% *//p' "$1"; }
wrk -t2 -c64 -d"${DURATION}s" --latency -H 'Host: bench.test' "$hot" >"$T/wrk-base"
wrk -t2 -c64 -d"${DURATION}s" --latency -H 'Host: bench.test' "$hot" >"$T/wrk-purge" &
wpid=$!
sleep 2
t=$(curl -s -o "$T/tag-answer" -w '%{time_total}' -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Host: bench.test' -d '{"tags": ["bulk"]}' "http://$E/.cdn/purge")
wait $wpid
awk -v n="$TAGGED" -v a="$fill_start" -v b="$fill_end" -v t="$t" -v ans="$(cat "$T/tag-answer")" \
    'BEGIN { printf "  filled %d objects in %.1f s; the purge answered in %.0f ms: %s\n", n, b - a, t * 1000, ans }'
printf '  hits on another object, wrk -t2 -c64 -d%ss: without a purge %s req/s, p99 %s; during it %s req/s, p99 %s\n' \
       "$DURATION" "$(sed -n 's/^Requests\/sec: *//p' "$T/wrk-base")" "$(p99 "$T/wrk-base")" \
       "$(sed -n 's/^Requests\/sec: *//p' "$T/wrk-purge")" "$(p99 "$T/wrk-purge")"
case "$(cache_status "$E" "/t1?size=64&cc=max-age%3D600&sk=bulk")" in
    *hit*) echo "  a tagged object survived the purge"; exit 1 ;;
esac
