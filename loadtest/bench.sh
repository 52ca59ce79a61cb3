#!/usr/bin/env bash
# `make bench`: cache-hit throughput and latency of this edge against, on
# the same machine and in the same run:
#   nginx static    the same bytes as plain files (the ceiling)
#   nginx cache     nginx proxy_cache in front of the same origin
#   varnish         Varnish (default VCL) in front of the same origin
# for 1 KiB and 256 KiB objects, wrk with 64 connections. Each result is
# also printed as a ratio to this edge. Bounded: DURATION seconds per run.
# Needs wrk, nginx and varnish (Debian packages; installed when missing).
set -euo pipefail
BIN=$(cd "${1:-bin}" && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-$(nproc)}

need=""
command -v wrk >/dev/null || need="$need wrk"
command -v nginx >/dev/null || need="$need nginx-light"
command -v varnishd >/dev/null || need="$need varnish"
if [ -n "$need" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $need
fi
# The packages start their own services on install: the bench uses its own.
if [ "$(id -u)" = 0 ] && command -v systemctl >/dev/null; then
    systemctl stop nginx varnish 2>/dev/null || true
fi

T=$(mktemp -d /tmp/cdn-bench.XXXXXX)
pids=()
cleanup() {
    # SIGINT: our nodes stop without their drain delay (SIGTERM drains).
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    [ -f "$T/nginx.pid" ] && kill -TERM "$(cat "$T/nginx.pid")" 2>/dev/null || true
    pkill -f "varnishd.*$T" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() { # file -> address from its "listening on" line
    for _ in $(seq 1 200); do
        a=$(awk '/^listening on/{print $3}' "$1" 2>/dev/null)
        [ -n "$a" ] && { echo "$a"; return 0; }
        sleep 0.05
    done
    echo "no 'listening on' in $1" >&2; exit 1
}
wait_http() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

"$BIN/origin" --listen=127.0.0.1:0 --workers=1 >"$T/origin.out" 2>"$T/origin.log" &
pids+=($!)
ORIGIN=$(wait_listen "$T/origin.out")
"$BIN/edge" --listen=127.0.0.1:0 --origin="http://$ORIGIN" --cache-dir="$T/edge-cache" \
    --access-log=off --workers="$WORKERS" >"$T/edge.out" 2>"$T/edge.log" &
pids+=($!)
EDGE=$(wait_listen "$T/edge.out")

NGINX_STATIC=$(free_port); NGINX_CACHE=$(free_port); VARNISH=$(free_port)
mkdir -p "$T/static/bench" "$T/nginx-cache" "$T/nginx-tmp"
cat >"$T/nginx.conf" <<CONF
worker_processes $WORKERS;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
user root;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $T/nginx-tmp/body;
    proxy_temp_path $T/nginx-tmp/proxy;
    fastcgi_temp_path $T/nginx-tmp/fastcgi;
    uwsgi_temp_path $T/nginx-tmp/uwsgi;
    scgi_temp_path $T/nginx-tmp/scgi;
    proxy_cache_path $T/nginx-cache levels=1:2 keys_zone=bench:16m max_size=1g inactive=1h use_temp_path=off;
    upstream origin { server $ORIGIN; keepalive 32; }
    server { listen 127.0.0.1:$NGINX_STATIC; root $T/static; default_type text/plain; }
    server {
        listen 127.0.0.1:$NGINX_CACHE;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_lock on;
        }
    }
}
CONF
nginx -c "$T/nginx.conf"
varnishd -a "127.0.0.1:$VARNISH" -b "$ORIGIN" -s malloc,512m -n "$T/varnish" \
    -p thread_pool_min=50 >/dev/null 2>"$T/varnish.log"

declare -A URL
sizes="1024 262144"
for s in $sizes; do
    path="/bench/obj$s"
    q="size=$s&cc=max-age%3D3600"
    curl -s -o "$T/static$path" "http://$ORIGIN$path?$q"
    URL[edge,$s]="http://$EDGE$path?$q"
    URL[nginx-static,$s]="http://127.0.0.1:$NGINX_STATIC$path"
    URL[nginx-cache,$s]="http://127.0.0.1:$NGINX_CACHE$path?$q"
    URL[varnish,$s]="http://127.0.0.1:$VARNISH$path?$q"
done
for k in "${!URL[@]}"; do wait_http "${URL[$k]}"; curl -s -o /dev/null "${URL[$k]}"; curl -s -o /dev/null "${URL[$k]}"; done

# wrk's latency lines look like "50%  832.00us"; normalise to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else if (v ~ /s$/) printf "%.3f", v*1000; else print v }'; }
declare -A RPS P50 P99
for s in $sizes; do
    for t in edge nginx-static nginx-cache varnish; do
        out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${URL[$t,$s]}")
        RPS[$t,$s]=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
        P50[$t,$s]=$(to_ms "$(awk '$1=="50%"{print $2}' <<<"$out")")
        P99[$t,$s]=$(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")")
        errs=$(awk '/Non-2xx|Socket errors/' <<<"$out")
        [ -n "$errs" ] && echo "warning: $t $s: $errs" >&2
    done
done

echo
echo "cache hits, wrk -t$THREADS -c$CONNS -d${DURATION}s, $WORKERS workers each, $(nproc) cores, $(date -u +%F)"
printf '%-14s %-8s %12s %10s %10s %10s\n' target size req/s p50_ms p99_ms vs_edge
for s in $sizes; do
    label=$([ "$s" = 1024 ] && echo 1KiB || echo 256KiB)
    for t in edge nginx-static nginx-cache varnish; do
        ratio=$(awk -v a="${RPS[$t,$s]}" -v b="${RPS[edge,$s]}" 'BEGIN{printf "%.2f", a/b}')
        printf '%-14s %-8s %12s %10s %10s %10s\n' "$t" "$label" "${RPS[$t,$s]}" "${P50[$t,$s]}" "${P99[$t,$s]}" "$ratio"
    done
done
