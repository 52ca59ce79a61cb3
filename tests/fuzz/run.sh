#!/usr/bin/env bash
# make fuzz: run each libFuzzer target for a bounded time, JOBS at once.
#   tests/fuzz/run.sh BINDIR SECONDS JOBS TARGET...
# Each target reads its seeds (tests/fuzz/corpus/NAME/, never written) and
# grows its own corpus in var/fuzz/corpus/NAME/; a crash, leak or timeout
# leaves its input in var/fuzz/crashes/ (minimise it with
# `BINDIR/fuzz-NAME -minimize_crash=1 -runs=10000 FILE` and keep it in the
# seeds, named for the bug). The summary (executions per second, coverage,
# corpus size) goes to var/fuzz/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 4 ] || { echo "usage: $0 BINDIR SECONDS JOBS TARGET..." >&2; exit 2; }
bindir=$1 secs=$2 jobs=$3
shift 3
mkdir -p var/fuzz/crashes var/fuzz/logs
run_one() {
    local n=$1
    mkdir -p "var/fuzz/corpus/$n"
    # -timeout: an input taking over 10 s is a hang, reported like a crash;
    # -rss_limit_mb: a parser allocating without bound is a bug too.
    "$bindir/fuzz-$n" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="var/fuzz/crashes/$n-" "var/fuzz/corpus/$n" "tests/fuzz/corpus/$n" \
        >"var/fuzz/logs/$n.log" 2>&1
}
failed=()
running=0
declare -A pid_of=()
for n in "$@"; do
    [ -x "$bindir/fuzz-$n" ] || { echo "fuzz: $bindir/fuzz-$n missing" >&2; exit 2; }
    echo "fuzz: $n for ${secs}s"
    run_one "$n" &
    pid_of[$n]=$!
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
for n in "$@"; do
    wait "${pid_of[$n]}" 2>/dev/null || true
done
: >var/fuzz/summary.txt
for n in "$@"; do
    log=var/fuzz/logs/$n.log
    # libFuzzer's last status line ("#N DONE cov: C ft: F corp: K/Sb exec/s: E ...").
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    persec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    status=ok
    if grep -qE '^==[0-9]+==ERROR|^SUMMARY: |deadly signal|ALARM: working on the last Unit|out-of-memory' "$log"; then
        status=FAILED
        failed+=("$n")
    fi
    printf '%-16s %-7s runs %-12s exec/s %-8s cov %-6s corpus %s\n' "$n" "$status" "${execs:--}" \
        "${persec:--}" "${cov:--}" "${corp:--}" | tee -a var/fuzz/summary.txt
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: found something in: ${failed[*]} (logs in var/fuzz/logs/, inputs in var/fuzz/crashes/)" >&2
    exit 1
fi
echo "fuzz: nothing found; summary in var/fuzz/summary.txt"
