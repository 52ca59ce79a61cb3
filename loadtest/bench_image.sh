#!/usr/bin/env bash
# `make bench`, image part (issue 11), on loopback: a 4000x3000 JPEG
# resized to 400x300 WebP (fit cover) through the edge, the source already
# cached and every request a new variant, against image-bench: the same
# image_transform() in a plain C loop on the same bytes, in the same run.
#   1. transforms at 1 and 2 concurrent requests (N1 and N2 of them):
#      latency p50/p99 and throughput, edge vs in-process, and the ratios;
#   2. hits: one stored variant vs a plain cached object of about the same
#      size, wrk -t2 -c64 for DURATION s each.
# Request k asks for q = 30 + k % 70 and gravity k % 9 of the compass
# (630 distinct variants); image-bench varies its transform k the same way.
# Bounded: a fixed number of requests, each with a time limit, and two wrk
# runs of DURATION s.
set -euo pipefail
BIN=$(cd "${1:-bin}" && pwd)
N1=${N1:-60}
N2=${N2:-120}
DURATION=${DURATION:-10}
command -v wrk >/dev/null || { echo "bench_image: needs wrk (make bench installs it)"; exit 1; }
[ -x "$BIN/image-bench" ] || { echo "bench_image: needs $BIN/image-bench (make bench builds it)"; exit 1; }
[ $((N1 + N2)) -le 620 ] || { echo "bench_image: N1 + N2 must stay under the 630 variants, warm-ups aside"; exit 1; }

. "$(dirname "$0")/bench_lib.sh"
bench_init image

printf '[rule /img/*]\nimage = on\ndefault_ttl = 1h\n' >"$T/edge.conf"
ORIGIN=$(bench_start origin "$BIN/origin" --listen=127.0.0.1:0 --workers=1)
# image_queue above any backlog the clients can make: a 503 would be no transform.
EDGE=$(bench_start edge "$BIN/edge" -c "$T/edge.conf" --listen=127.0.0.1:0 "--origin=http://$ORIGIN" \
       "--cache-dir=$T/cache" --access-log=off --workers=2 --image-workers=2 --image-queue=256)
SRC="/img/bench.jpg?width=4000&height=3000"

# The source through the edge until it is a hit: cached, and its bytes saved for image-bench.
for _ in $(seq 1 50); do
    cs=$(curl -s --max-time 30 -o "$T/source.jpg" -D - "http://$EDGE$SRC" | tr -d '\r' | sed -n 's/^[Cc]ache-[Ss]tatus: //p')
    case "$cs" in *\;\ hit*) break ;; esac
    sleep 0.1
done
case "$cs" in *\;\ hit*) ;; *) echo "bench_image: the source never became a hit: $cs"; exit 1 ;; esac

GRAVITY=(center north northeast east southeast south southwest west northwest)
url() { echo "http://$EDGE$SRC&w=400&h=300&fmt=webp&q=$((30 + $1 % 70))&gravity=${GRAVITY[$1 % 9]}"; }

# urls FIRST COUNT STRIDE: the curl config asking for variants FIRST,
# FIRST+STRIDE, ...; written before the clock starts (a $(url) per line
# is a fork: it cost the first version of this script 5% of its throughput).
urls() {
    local k
    for ((k = $1; k < $1 + $2 * $3; k += $3)); do
        printf 'url = "%s"\noutput = /dev/null\n' "$(url "$k")"
    done >"$T/urls.$1"
}
# client FIRST OUT: one curl process, one connection, through urls.FIRST;
# a line per request in OUT: seconds, status, content type, Cache-Status.
client() {
    curl -s --max-time 30 -K "$T/urls.$1" \
         -w '%{time_total} %{http_code} %{content_type} %header{cache-status}\n' >"$2"
}

# The edge logs "transformed A -> B bytes in US us" when a result reaches
# the worker's loop, US counted from the submit to the pool: queue wait,
# transform and post back, without HTTP or the read of the source.
loop_ms() { sed -n "${1},\$p" "$T/edge.log" | sed -n 's/.*: transformed .* in \([0-9]*\) us$/\1/p' \
            | sort -n | awk '{ v[NR] = $1 / 1000 } END { if (NR) printf "%.1f", v[int(NR * 0.50 + 0.5)]; else print "-" }'; }

# Other sessions may share the machine: each run also reports its CPU per
# transform, and how many cores everything else used meanwhile (the
# machine's busy time from /proc/stat minus the edge's, the origin's and
# this shell's with the children it waited for: curl, image-bench).
HZ=$(getconf CLK_TCK)
EDGE_PID=$(cat "$T/edge.pid")
ORIGIN_PID=$(cat "$T/origin.pid")
busy() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
pcpu() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"; }
# own SHELL_PID: ours so far. Pass $BASHPID: inside $(own) it would name the $(...) subshell.
own() { echo $(($(pcpu "$EDGE_PID") + $(pcpu "$ORIGIN_PID") + $(pcpu "$1"))); }
others() { # BUSY0 OWN0 T0 SHELL_PID: cores used by other processes since then
    awk -v b="$(($(busy) - $1))" -v o="$(($(own "$4") - $2))" -v t0="$3" -v t1="$(date +%s.%N)" -v hz="$HZ" \
        'BEGIN { x = (b - o) / hz / (t1 - t0); printf "%.2f", x < 0 ? 0 : x }'
}

# level C N FIRST: N new variants from FIRST at concurrency C; prints
# its figures as image-bench does, as NAME=VALUE.
level() {
    local c=$1 n=$2 first=$3 i p cpids=() from b0 o0 e0 t0 t1 me=$BASHPID
    for ((i = 0; i < c; i++)); do urls $((first + i)) $((n / c)) "$c"; done
    from=$(($(wc -l <"$T/edge.log") + 1))
    b0=$(busy); o0=$(own "$me"); e0=$(pcpu "$EDGE_PID"); t0=$(date +%s.%N)
    for ((i = 0; i < c; i++)); do
        client $((first + i)) "$T/lat.$c.$i" &
        cpids+=($!)
    done
    for p in "${cpids[@]}"; do wait "$p"; done
    t1=$(date +%s.%N)
    local oth ecpu
    oth=$(others "$b0" "$o0" "$t0" "$me")
    ecpu=$(($(pcpu "$EDGE_PID") - e0))
    sleep 0.2 # the log line follows the response by a loop turn
    cat "$T"/lat."$c".* | sort -n | awk -v t0="$t0" -v t1="$t1" -v lp="$(loop_ms "$from")" -v ec="$ecpu" \
        -v hz="$HZ" -v oth="$oth" '
        { v[NR] = $1 * 1000; sum += v[NR]; if ($2 != 200 || $3 != "image/webp" || $0 !~ /detail=image-transformed/) bad++ }
        END { printf "n=%d p50_ms=%.1f p99_ms=%.1f mean_ms=%.1f per_s=%.2f cpu_ms=%.1f others=%s bad=%d loop_ms=%s\n",
              NR, v[int(NR * 0.50 + 0.5)], v[int(NR * 0.99 + 0.5)], sum / NR, NR / (t1 - t0), ec * 1000 / hz / NR,
              oth, bad, lp }'
}

# inproc N THREADS FIRST: image-bench on the saved source, plus others=.
inproc() {
    local b0 o0 t0 me=$BASHPID
    b0=$(busy); o0=$(own "$me"); t0=$(date +%s.%N)
    "$BIN/image-bench" "$T/source.jpg" "$@" >"$T/inproc"
    echo "$(cat "$T/inproc") others=$(others "$b0" "$o0" "$t0" "$me")"
}

# Warm-up: each image thread's first transform sets up the loaders; these
# two variants (628, 629) are outside the measured ones.
urls 628 2 1
client 628 "$T/warm"
grep -q 'detail=image-transformed' "$T/warm" || { echo "bench_image: warm-up not transformed: $(cat "$T/warm")"; exit 1; }

# alive: the edge and the origin still run (else their logs' ends, and stop).
alive() {
    local name
    for name in edge origin; do
        kill -0 "$(cat "$T/$name.pid")" 2>/dev/null && continue
        echo "bench_image: the $name exited; the end of its log:" >&2
        tail -20 "$T/$name.log" >&2
        exit 1
    done
}

# Each edge run next to its in-process twin, so both see the same machine.
edge1=$(level 1 "$N1" 0); alive
inproc1=$(inproc "$N1" 1 0)
edge2=$(level 2 "$N2" "$N1"); alive
inproc2=$(inproc "$N2" 2 "$N1")
f() { sed -n "s/.*\(^\| \)$1=\([^ ]*\).*/\2/p" <<<"$2"; }

echo "image resizing: 4000x3000 JPEG ($(stat -c %s "$T/source.jpg") bytes, cached) -> 400x300 WebP, fit cover,"
echo "  a new variant per request (q 30..99 x 9 gravities), edge 2 workers + image_workers=2, $(nproc) cores, $(date +%F)"
echo "  cpu_ms: CPU per transform (the edge's: all its threads); others: cores other processes used meanwhile"
row() { printf '  %-21s %4s %7s %7s %7s %6s %7s %6s %16s %8s\n' "$@"; }
row run n p50_ms p99_ms mean_ms per_s cpu_ms others not_transformed loop_ms
for r in "edge c=1:$edge1" "in-process threads=1:$inproc1" "edge c=2:$edge2" "in-process threads=2:$inproc2"; do
    v=${r#*:} bad=$(f bad "${r#*:}") lp=$(f loop_ms "${r#*:}")
    row "${r%%:*}" "$(f n "$v")" "$(f p50_ms "$v")" "$(f p99_ms "$v")" "$(f mean_ms "$v")" "$(f per_s "$v")" "$(f cpu_ms "$v")" \
        "$(f others "$v")" "${bad:--}" "${lp:--}"
done
awk -v e1="$(f p50_ms "$edge1")" -v e2="$(f p50_ms "$edge2")" -v b1="$(f p50_ms "$inproc1")" -v b2="$(f p50_ms "$inproc2")" \
    -v ec1="$(f cpu_ms "$edge1")" -v ec2="$(f cpu_ms "$edge2")" -v bc1="$(f cpu_ms "$inproc1")" -v bc2="$(f cpu_ms "$inproc2")" \
    -v er1="$(f per_s "$edge1")" -v er2="$(f per_s "$edge2")" -v br1="$(f per_s "$inproc1")" -v br2="$(f per_s "$inproc2")" 'BEGIN {
    printf "  edge / in-process, p50 latency: c=1 %.2f, c=2 %.2f (target <= 1.25); CPU per transform: %.2f, %.2f\n",
           e1 / b1, e2 / b2, ec1 / bc1, ec2 / bc2
    printf "  throughput at 2 / at 1: edge %.2f, in-process %.2f (target ~2)\n", er2 / er1, br2 / br1 }'

# Hits: the first measured variant (stored by now) vs a plain object.
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else if (v ~ /s$/) printf "%.3f", v*1000; else print v }'; }
VARIANT=$(url 0)
PLAIN="http://$EDGE/hello?size=20000&cc=max-age%3D3600"
echo "hits, wrk -t2 -c64 -d${DURATION}s --latency, same edge"
# cpu_us: the edge's CPU per hit, which wrk's share of the cores does not blur.
printf '  %-10s %8s %12s %9s %9s %9s\n' object bytes req/s p50_ms p99_ms cpu_us
declare -A RPS P99 CPU
for name in variant plain; do
    u=$([ "$name" = variant ] && echo "$VARIANT" || echo "$PLAIN")
    for _ in $(seq 1 20); do
        cs=$(curl -s --max-time 30 -o "$T/body" -D - "$u" | tr -d '\r' | sed -n 's/^[Cc]ache-[Ss]tatus: //p')
        case "$cs" in *\;\ hit*) break ;; esac
        sleep 0.1
    done
    case "$cs" in *\;\ hit*) ;; *) echo "bench_image: $name never became a hit: $cs"; exit 1 ;; esac
    e0=$(pcpu "$EDGE_PID")
    out=$(wrk -t2 -c64 -d"${DURATION}s" --latency "$u")
    CPU[$name]=$(awk -v c="$(($(pcpu "$EDGE_PID") - e0))" -v hz="$HZ" '/requests in/ { printf "%.1f", c * 1e6 / hz / $1 }' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/' <<<"$out")
    [ -n "$errs" ] && echo "warning: $name: $errs" >&2
    RPS[$name]=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
    P99[$name]=$(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")")
    printf '  %-10s %8s %12s %9s %9s %9s\n' "$name" "$(stat -c %s "$T/body")" "${RPS[$name]}" \
           "$(to_ms "$(awk '$1=="50%"{print $2}' <<<"$out")")" "${P99[$name]}" "${CPU[$name]}"
done
awk -v a="${RPS[variant]}" -v b="${RPS[plain]}" -v pa="${P99[variant]}" -v pb="${P99[plain]}" \
    -v ca="${CPU[variant]}" -v cb="${CPU[plain]}" \
    'BEGIN { printf "  variant / plain: req/s %.2f, p99 %.2f, CPU per hit %.2f (target: about 1)\n", a / b, pa / pb, ca / cb }'
