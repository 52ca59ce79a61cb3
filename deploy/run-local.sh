#!/usr/bin/env bash
# `make run`: the demo CDN on loopback with the built-in defaults (no
# config file): client -> edge 127.0.0.1:8080 -> shield 127.0.0.1:8090 ->
# origin 127.0.0.1:8081, caches in ./var/cache and ./var/shield-cache.
# Ctrl-C stops all three. EDGE_PORT / SHIELD_PORT / ORIGIN_PORT override
# the ports.
set -u
BIN=${1:-bin}
EDGE_PORT=${EDGE_PORT:-8080}
SHIELD_PORT=${SHIELD_PORT:-8090}
ORIGIN_PORT=${ORIGIN_PORT:-8081}
mkdir -p var
pids=()
# SIGINT, as Ctrl-C: the nodes stop at once (no drain delay), still letting
# in-flight requests finish. SIGTERM would keep them serving for their
# drain_delay (5 s) first, for load balancers, which a demo has none of.
cleanup() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
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

# The purge token of this demo (both nodes share it; readable by its owner only).
if [ ! -s var/purge.token ]; then
    (umask 077; head -c 24 /dev/urandom | base64 > var/purge.token)
fi
chmod 600 var/purge.token

# The edge's rules: resize images under /img/ (README.md, Image resizing).
cat > var/edge.conf <<'CONF'
[rule /img/*]
image = on
default_ttl = 1h
CONF

start var/origin.out var/origin.log "$BIN/origin" --listen="127.0.0.1:$ORIGIN_PORT"
start var/shield.out var/shield.log "$BIN/shield" --listen="127.0.0.1:$SHIELD_PORT" \
    --origin="http://127.0.0.1:$ORIGIN_PORT" --health-path=/.origin/health --cache-dir=./var/shield-cache \
    --purge-token-file=var/purge.token
start var/edge.out var/edge.log "$BIN/edge" -c var/edge.conf --listen="127.0.0.1:$EDGE_PORT" \
    --shields="127.0.0.1:$SHIELD_PORT" --origin="http://127.0.0.1:$ORIGIN_PORT" --cache-dir=./var/cache \
    --purge-token-file=var/purge.token
E="http://127.0.0.1:$EDGE_PORT"
S="http://127.0.0.1:$SHIELD_PORT"
O="http://127.0.0.1:$ORIGIN_PORT"
cat <<MSG

  CDN running on loopback: client -> edge -> shield -> origin
    edge    $E     cache ./var/cache, access log var/edge.log
    shield  $S     cache ./var/shield-cache, access log var/shield.log
    origin  $O     log var/origin.log

  Try:
    curl -i '$E/hello?size=64&cc=max-age%3D60'    # a miss at both tiers, run it again: an edge hit
    curl -i '$E/page?etag=auto&cc=max-age%3D5%2C%20stale-while-revalidate%3D60'
                                                   # after 5 s: served stale, revalidated behind
    curl -s '$O/.origin/stats'                     # what reached the origin
    curl -i '$E/private?cc=private'                # never stored: every request goes to the origin
    curl -i -X POST -d x '$E/hello'                # forwarded, and invalidates /hello
    curl -s '$E/.cdn/health'
    curl -s '$E/.cdn/metrics' | grep ^cdn_requests_total   # Prometheus metrics (loopback and admin_allow only)
    $E/.cdn/status                       # in a browser: the live status page (also $S/.cdn/status)
    kill -HUP \$(pgrep -f 'edge -c var/edge.conf')        # edit var/edge.conf, then reload it live
    curl -o small.webp '$E/img/photo.jpg?width=4000&height=3000&w=400&h=300&fmt=webp'
                                                   # the origin's 4000x3000 JPEG, resized at the edge to a 400x300 WebP
    curl -sI -H 'Accept: image/avif,image/webp' '$E/img/photo.jpg?width=4000&height=3000&w=800&fmt=auto'
                                                   # AVIF for this browser; run it again: a hit
    '$E/img/photo.jpg?width=4000&height=3000&w=600&h=600&gravity=smart'
                                                   # in a browser: a 600x600 attention crop
    curl -X PURGE -H "Authorization: Bearer \$(cat var/purge.token)" '$E/hello?size=64&cc=max-age%3D60'
                                                   # purged on the edge and the shield: a miss at both again

  Objects: any path; query parameters choose the response: size=, cc= (Cache-Control),
  status=, etag=auto, lm_ago=, vary=, delay= (ms), chunked=1 (see README.md).
  Ctrl-C stops all three.

MSG
wait -n "${pids[@]}"
echo "a process exited; stopping" >&2
