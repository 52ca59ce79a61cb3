#!/usr/bin/env bash
# `make loadtest`: bring the default topology up (deploy/cdn), run the
# default scenario through every region's edges with bin/cdnload, print the
# summary, keep the report under var/loadtest/, and take the topology down
# (also on failure or Ctrl-C). Bounded: the scenario's duration, the
# topology's start and stop bounds, and cdnload's own request timeout.
#   SCENARIO=FILE TOPOLOGY=FILE OUT=DIR loadtest/run-loadtest.sh [BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-bin}
SCENARIO=${SCENARIO:-loadtest/scenarios/default.conf}
OUT=${OUT:-var/loadtest}
# Its own state directory, not make cdn's, and cold caches: the best
# possible offload the report compares against assumes every object is
# fetched once, which a cache left warm by an earlier run beats.
export CDN_VAR=${CDN_VAR:-var/loadtest-cdn}
export CDN_BIN=$BIN
rm -rf "$CDN_VAR"/*/cache

deploy/cdn up ${TOPOLOGY:+"$TOPOLOGY"}
trap 'deploy/cdn down >/dev/null || true' EXIT

# The regions and the origin, from the nodes `up` started (edge-REGION-N).
regions=()
declare -A edges=()
origin=""
while read -r name role addr _; do
    case $role in
    edge)
        r=${name#edge-}
        r=${r%-*}
        [ -n "${edges[$r]:-}" ] || regions+=("$r")
        edges[$r]="${edges[$r]:+${edges[$r]},}$addr"
        ;;
    origin) origin=$addr ;;
    esac
done <"$CDN_VAR/state"
if [ -z "$origin" ]; then
    echo "run-loadtest: the topology has no demo origin (origin = demo): cdnload checks bodies against it" >&2
    exit 2
fi
args=()
for r in "${regions[@]}"; do args+=(--region "$r=${edges[$r]}"); done
mkdir -p "$OUT"
echo "cdnload: $SCENARIO through ${#regions[@]} regions (${regions[*]}), origin $origin"
# The purge token deploy/cdn made, and deploy/cdn itself for the fault
# (cdnload runs `deploy/cdn kill NODE`, later `deploy/cdn start NODE`).
"$BIN/cdnload" -s "$SCENARIO" --origin "$origin" "${args[@]}" --host example.com --out "$OUT" \
    --purge-token-file "$CDN_VAR/purge.token" --fault-cmd "$PWD/deploy/cdn"
