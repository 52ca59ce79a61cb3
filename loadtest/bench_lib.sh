# Shared by the bench scripts (source it): a scratch directory, processes
# stopped on exit, and starting a node until it prints its address.
#
#   bench_init NAME            T = a fresh /tmp/cdn-bench-NAME.XXXXXX, removed on exit
#   bench_start NAME CMD...    run CMD (stdout T/NAME.out, stderr T/NAME.log, pid
#                              T/NAME.pid), wait (bounded, 10 s) for "listening on",
#                              print the address
#   bench_wrk URL              wrk -t2 -c$CONNS -d${DURATION}s on URL, print
#                              "REQ/S P99_MS REQUESTS" (warns on non-2xx answers)

bench_init() {
    T=$(mktemp -d "/tmp/cdn-bench-$1.XXXXXX")
    trap bench_cleanup EXIT
}

# The pids go to a file: bench_start runs in a command substitution, a
# subshell whose variables the script never sees.
bench_cleanup() {
    local p
    if [ -f "$T/pids" ]; then
        # SIGINT: a node's stop without its drain delay (SIGTERM would
        # keep it serving for drain_delay, 5 s by default).
        while read -r p; do kill -INT "$p" 2>/dev/null || true; done <"$T/pids"
        # bounded: 5 s each, then KILL
        while read -r p; do
            for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
            kill -KILL "$p" 2>/dev/null || true
        done <"$T/pids"
    fi
    rm -rf "$T"
}

bench_start() {
    local name=$1; shift
    "$@" >"$T/$name.out" 2>"$T/$name.log" &
    echo $! >>"$T/pids"
    echo $! >"$T/$name.pid"
    for _ in $(seq 1 200); do
        if grep -q '^listening on' "$T/$name.out" 2>/dev/null; then
            sed -n 's/^listening on //p' "$T/$name.out"
            return 0
        fi
        sleep 0.05
    done
    echo "$name did not start:" >&2
    cat "$T/$name.log" >&2
    exit 1
}

bench_wrk() {
    local out
    out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$1")
    if grep -q "Non-2xx" <<<"$out"; then echo "warning: non-2xx answers from $1" >&2; fi
    awk '/requests in/{n=$1} /^Requests\/sec/{r=$2}
         $1=="99%"{v=$2; if (v ~ /us$/) v=v/1000; else if (v ~ /ms$/) v=v+0; else v=v*1000; p=v}
         END{printf "%s %.2f %s", r, p, n}' <<<"$out"
}
