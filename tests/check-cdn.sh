#!/usr/bin/env bash
# deploy/cdn end to end (make check-cdn, part of make test): a small topology
# (2 regions x 1 edge, 1 shield, the demo origin) brought up in a temporary
# state directory; a miss then a hit in one region, a shield hit in the
# other; a purge through one edge reaching every node; status; an image
# variant through the edges' rules file (rules = FILE); the shield
# killed (status shows it down, the edges still answer from the origin) and
# started again; down, which also stops the restarted shield.
#
# Addresses: 127.B.1.1 and 127.B.2.1 (edges), 127.B.9.x (shield, origin),
# with B from this shell's pid, so neither the default topology (127.0.x.x)
# nor the other tests (127.0.0.1) nor a parallel run of this one collide.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CDN=$ROOT/deploy/cdn
export CDN_BIN=${CDN_BIN:-$ROOT/bin}
export CDN_VAR
CDN_VAR=$(mktemp -d /tmp/check-cdn.XXXXXX)
export CDN_STOP_WAIT=10 CDN_START_WAIT=15
B=$((110 + $$ % 140))
E1=127.$B.1.1:18080 E2=127.$B.2.1:18080 S1=127.$B.9.1:18090 O=127.$B.9.100:18081

cleanup() {
    "$CDN" down >/dev/null 2>&1 || true
    rm -rf "$CDN_VAR"
}
trap cleanup EXIT
fail() { echo "check-cdn: FAIL: $*" >&2; exit 1; }
ok() { echo "check-cdn: ok: $*"; }

cat >"$CDN_VAR/topology" <<EOF
edge_port = 18080
shield_port = 18090
shields = 1
shield_net = 127.$B.9
origin = demo
origin_listen = $O
[region a]
net = 127.$B.1
edges = 1
[region b]
net = 127.$B.2
edges = 1
[edge]
cache_size = 16M
workers = 1
drain_delay = 0s   # nothing balances this test's traffic: stop at once
rules = edge.rules # next to this file, as the default topology's
[shield]
cache_size = 16M
workers = 1
drain_delay = 0s
EOF

cat >"$CDN_VAR/edge.rules" <<EOF
[rule /img/*]
image = on
image_widths = 160 320
EOF

out=$(CDN_BIN=/nonexistent "$CDN" up "$CDN_VAR/topology" 2>&1) && fail "up without binaries succeeded"
[[ $out == *"run make first"* ]] || fail "missing binary message: $out"
ok "a missing binary is refused: $out"

"$CDN" up "$CDN_VAR/topology" >"$CDN_VAR/up.out" || { cat "$CDN_VAR/up.out"; fail "up"; }
ok "up: $(head -n 1 "$CDN_VAR/up.out")"
grep -q "^purge_peers = $S1, $E2\$" "$CDN_VAR/edge-a-1/node.conf" || fail "edge-a-1 purge_peers"
grep -q "^purge_peers = $E1, $E2\$" "$CDN_VAR/shield-1/node.conf" || fail "shield-1 purge_peers"
[ "$(stat -c %a "$CDN_VAR/purge.token")" = 600 ] || fail "purge token mode"
mapfile -t PIDS < <(awk '{ print $4 }' "$CDN_VAR/state")
[ ${#PIDS[@]} = 4 ] || fail "state holds ${#PIDS[@]} processes, expected 4"

out=$("$CDN" up "$CDN_VAR/topology" 2>&1) && fail "a second up succeeded"
[[ $out == *"already up"* ]] || fail "second up message: $out"
ok "a second up is refused"

# Every client of one site sends its Host: the cache key includes it.
U='/cdn-check?size=333&cc=max-age%3D300'
cache_status() { curl -s --max-time 5 -H 'Host: cdn.test' -o /dev/null -D - "http://$1$U" \
    | tr -d '\r' | sed -n 's/^[Cc]ache-[Ss]tatus: //p'; }
edge_member() { echo "${1##*, }"; }
shield_member() { echo "${1%%, *}"; }
expect() { # STATUS MEMBER-FN PATTERN WHAT
    local m; m=$($2 "$1")
    [[ $m == $3 ]] || fail "$4: expected '$3', Cache-Status: $1"
}

cs=$(cache_status "$E1"); expect "$cs" edge_member "edge-a-1; fwd=uri-miss;*" "region a, first"
expect "$cs" shield_member "shield-1; fwd=uri-miss;*" "region a, first (shield)"
cs=$(cache_status "$E1"); expect "$cs" edge_member "edge-a-1; hit;*" "region a, second"
cs=$(cache_status "$E2"); expect "$cs" edge_member "edge-b-1; fwd=uri-miss;*" "region b, first"
expect "$cs" shield_member "shield-1; hit;*" "region b, first (shield)"
ok "region a: miss then hit; region b: a shield hit"

res=$(curl -s --max-time 10 -X PURGE -H 'Host: cdn.test' \
    -H "Authorization: Bearer $(cat "$CDN_VAR/purge.token")" "http://$E1$U")
[ "$(grep -o '"status":"confirmed"' <<<"$res" | wc -l)" = 2 ] || fail "purge peers not all confirmed: $res"
cs=$(cache_status "$E2"); expect "$cs" edge_member "edge-b-1; fwd=uri-miss;*" "region b after the purge"
expect "$cs" shield_member "shield-1; fwd=uri-miss;*" "shield after the purge"
cs=$(cache_status "$E1"); expect "$cs" edge_member "edge-a-1; fwd=uri-miss;*" "region a after the purge"
n=$(curl -s --max-time 5 "http://$O/.origin/stats" | grep -o '"/cdn-check":{"requests":[0-9]*' | sed 's/.*://')
[ "$n" = 2 ] || fail "the origin saw $n requests for the object, expected 2"
ok "a purge through edge-a-1 reached the shield and edge-b-1 (origin fetched the object twice)"

st=$("$CDN" status) || { echo "$st"; fail "status exit code"; }
for n in origin shield-1 edge-a-1 edge-b-1; do
    grep -Eq "^$n +[a-z]+ +[0-9.:]+ +[0-9]+ +200 " <<<"$st" || { echo "$st"; fail "status of $n"; }
done
# edge-a-1: miss, hit, miss after the purge; edge-b-1: miss, miss.
grep -Eq '^edge-a-1 .* 3 +1 +33\.3$' <<<"$st" || { echo "$st"; fail "edge-a-1 requests/hits"; }
grep -Eq '^edge-b-1 .* 2 +0 +0\.0$' <<<"$st" || { echo "$st"; fail "edge-b-1 requests/hits"; }
ok "status: every node 200, request counts and hit ratios"

grep -q '^\[rule /img/\*\]$' "$CDN_VAR/edge-b-1/node.conf" || fail "edge-b-1 lacks the rules file's section"
h=$(curl -s --max-time 10 -H 'Host: cdn.test' -o /dev/null -D - "http://$E2/img/a.jpg?w=160&fmt=webp" | tr -d '\r')
[[ $h == "HTTP/1.1 200 "* && $h == *$'\n'"Content-Type: image/webp"$'\n'* ]] || fail "image variant through edge-b-1: $h"
ok "the rules file reached the edges: /img/a.jpg?w=160&fmt=webp is 200 image/webp"

# Fault injection: the shield crashes, the edges fall back to the origin.
rc=0; out=$("$CDN" kill nosuch 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "kill of an unknown node: exit $rc, expected 2 ($out)"
[[ $out == *"no node 'nosuch'"* ]] || fail "unknown node message: $out"
"$CDN" kill shield-1 >/dev/null || fail "kill shield-1"
OLD=$(awk '$1 == "shield-1" { print $4 }' "$CDN_VAR/state")
[ -z "$({ tr -d '\0' <"/proc/$OLD/cmdline"; } 2>/dev/null || true)" ] || fail "shield-1 (pid $OLD) still runs after kill"
st=$("$CDN" status) && { echo "$st"; fail "status exit code 0 with shield-1 killed"; }
grep -Eq "^shield-1 +shield +[0-9.:]+ +$OLD +down " <<<"$st" || { echo "$st"; fail "status of the killed shield"; }
out=$("$CDN" kill shield-1) || fail "kill of a node already down"
[[ $out == *"already down"* ]] || fail "second kill message: $out"
for e in "$E1" "$E2"; do
    code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H 'Host: cdn.test' "http://$e/cdn-killed?size=10")
    [ "$code" = 200 ] || fail "edge $e answered $code with the shield down"
done
ok "kill shield-1: status shows it down (exit 1), both edges still answer 200"

"$CDN" start shield-1 >/dev/null || fail "start shield-1"
NEW=$(awk '$1 == "shield-1" { print $4 }' "$CDN_VAR/state")
[ "$NEW" != "$OLD" ] || fail "shield-1 restarted with the old pid $OLD"
st=$("$CDN" status) || { echo "$st"; fail "status exit code after start"; }
for n in origin shield-1 edge-a-1 edge-b-1; do
    grep -Eq "^$n +[a-z]+ +[0-9.:]+ +[0-9]+ +200 " <<<"$st" || { echo "$st"; fail "status of $n after start"; }
done
grep -q "deploy/cdn kill: SIGKILL to pid $OLD" "$CDN_VAR/shield-1/node.log" || fail "the crash is not in node.log"
out=$("$CDN" start shield-1 2>&1) && fail "start of a running node succeeded"
[[ $out == *"already running (pid $NEW)"* ]] || fail "second start message: $out"
PIDS+=("$NEW")
ok "start shield-1: pid $OLD -> $NEW, every node 200 again; a second start is refused"

"$CDN" down >/dev/null || fail "down"
for p in "${PIDS[@]}"; do
    [ -z "$({ tr -d '\0' <"/proc/$p/cmdline"; } 2>/dev/null || true)" ] || fail "pid $p still running after down"
done
[ -f "$CDN_VAR/edge-a-1/access.log" ] || fail "logs removed by down"
[ "$("$CDN" status)" = "no CDN is up (no $CDN_VAR/state)" ] || fail "status after down"
ok "down: all ${#PIDS[@]} processes gone, logs kept"
