#!/usr/bin/env bash
# `make run`: the demo origin and an edge on loopback, with the edge's
# built-in defaults (no config file): edge on 127.0.0.1:8080 in front of
# the origin on 127.0.0.1:8081, cache in ./var/cache. Ctrl-C stops both.
# EDGE_PORT / ORIGIN_PORT override the ports.
set -u
BIN=${1:-bin}
EDGE_PORT=${EDGE_PORT:-8080}
ORIGIN_PORT=${ORIGIN_PORT:-8081}
mkdir -p var
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# Start $@ with stdout in $out; wait (bounded) for its "listening on" line.
start() {
    local out=$1 log=$2; shift 2
    "$@" >"$out" 2>"$log" &
    pids+=($!)
    for _ in $(seq 1 100); do
        if grep -q '^listening on' "$out" 2>/dev/null; then return 0; fi
        if ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "failed to start: $*" >&2
    cat "$log" >&2
    exit 1
}

start var/origin.out var/origin.log "$BIN/origin" --listen="127.0.0.1:$ORIGIN_PORT"
start var/edge.out var/edge.log "$BIN/edge" --listen="127.0.0.1:$EDGE_PORT" \
    --origin="http://127.0.0.1:$ORIGIN_PORT" --cache-dir=./var/cache
E="http://127.0.0.1:$EDGE_PORT"
O="http://127.0.0.1:$ORIGIN_PORT"
cat <<MSG

  CDN running on loopback
    edge    $E     cache ./var/cache, access log var/edge.log
    origin  $O     log var/origin.log

  Try:
    curl -i '$E/hello?size=64&cc=max-age%3D60'    # a miss (fwd=uri-miss; stored), run it again: a hit
    curl -s '$O/.origin/stats'                     # what reached the origin
    curl -i '$E/private?cc=private'                # never stored: every request goes to the origin
    curl -i -X POST -d x '$E/hello'                # forwarded, and invalidates /hello
    curl -s '$E/.cdn/health'

  Objects: any path; query parameters choose the response: size=, cc= (Cache-Control),
  status=, etag=auto, lm_ago=, vary=, delay= (ms), chunked=1 (see README.md).
  Ctrl-C stops both.

MSG
wait -n "${pids[@]}"
echo "a process exited; stopping" >&2
