#!/usr/bin/env bash
# Static checks of deploy/ (`make check-deploy`, part of `make test`):
#
# 1. systemd: `systemd-analyze verify` on the units. It wants ExecStart's
#    binary to exist, so it verifies copies whose /opt/cdn/bin/ points at
#    the built BIN. It exits 0 on unknown keys and bad values (it only
#    warns), so any output fails the check. The example configs pass the
#    node's --check-config, and the stop timeout exceeds their drain.
# 2. Kubernetes: yamllint (relaxed: no document-start, no line length), the
#    ConfigMaps' node.conf through the node's --check-config, probes on
#    /.cdn/health, grace period > drain_delay + drain_timeout, non-root and
#    a read-only root filesystem, the edges' shields naming the
#    StatefulSet's pods, cache_dir on the cache volume.
# 3. Docker: hadolint when installed (it is no Debian 12 package), the
#    entrypoint's syntax, non-root, the build stage's packages against the
#    Makefile's DEB_PKGS, the runtime packages against what the programs
#    link (their NEEDED libraries, by owning package).
#
# Usage: tests/check-deploy.sh [BIN]   (BIN: the built programs, default bin)
# Prints each failure and exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(cd "${1:-bin}" && pwd)
fail=0
bad() { echo "check-deploy: $*" >&2; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A duration setting in seconds (the forms the example files use: 30s,
# 2m, a bare number, 500ms rounded up).
seconds() {
    local v=$1
    case "$v" in
    *ms) echo $(((${v%ms} + 999) / 1000)) ;;
    *s) echo "${v%s}" ;;
    *m) echo $((${v%m} * 60)) ;;
    *h) echo $((${v%h} * 3600)) ;;
    *) echo "$v" ;;
    esac
}
# A key's value in a node config file (the last one, without a trailing
# comment), or the default.
conf_get() {
    local v
    v=$(sed -n -e 's/[[:space:]]#.*//' -e "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*$/\1/p" "$1" | tail -n 1)
    echo "${v:-$3}"
}
drain_sum() {
    echo $(($(seconds "$(conf_get "$1" drain_delay 5s)") + $(seconds "$(conf_get "$1" drain_timeout 30s)")))
}

# --- 1. systemd -------------------------------------------------------------
for role in edge shield; do
    unit=deploy/systemd/cdn-$role@.service
    example=deploy/systemd/$role.conf.example
    sed "s#/opt/cdn/bin/#$BIN/#g" "$unit" >"$tmp/cdn-$role@.service"
    if ! out=$(systemd-analyze verify "$tmp/cdn-$role@check.service" 2>&1) || [ -n "$out" ]; then
        bad "$unit: systemd-analyze verify: ${out:-failed}"
    fi
    grep -q "^ExecStart=/opt/cdn/bin/$role " "$unit" || bad "$unit: ExecStart is not /opt/cdn/bin/$role"
    for line in 'ExecReload=/bin/kill -HUP $MAINPID' KillSignal=SIGTERM Restart=on-failure \
        NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
        CapabilityBoundingSet= 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
        SystemCallFilter=@system-service MemoryDenyWriteExecute=yes 'StateDirectory=cdn/%i'; do
        grep -qxF "$line" "$unit" || bad "$unit: no '$line'"
    done
    grep -q '^LimitNOFILE=[0-9]' "$unit" || bad "$unit: no LimitNOFILE"
    user=$(sed -n 's/^User=//p' "$unit")
    { [ -n "$user" ] && [ "$user" != root ]; } || grep -qx DynamicUser=yes "$unit" || bad "$unit: runs as root"
    # The cache lives in the state directory, the one place it may write.
    grep -q -- "--cache-dir=/var/lib/cdn/%i" "$unit" || bad "$unit: cache_dir is not the StateDirectory"
    "$BIN/$role" --check-config "$example" >/dev/null || bad "$example: rejected by $role --check-config"
    stop=$(seconds "$(sed -n 's/^TimeoutStopSec=//p' "$unit")")
    sum=$(drain_sum "$example")
    [ "${stop:-0}" -gt "$sum" ] || bad "$unit: TimeoutStopSec ${stop:-unset} <= drain_delay + drain_timeout ($sum s) of $example"
done

# --- 2. Kubernetes ----------------------------------------------------------
yl_conf='{extends: default, rules: {document-start: disable, line-length: disable, truthy: {check-keys: false}}}'
yamllint -s -d "$yl_conf" deploy/k8s/*.yaml || bad "deploy/k8s: yamllint"
# The node.conf block of a ConfigMap (indented 4 under `  node.conf: |`).
node_conf() {
    awk '/^  node.conf: \|/ { on = 1; next }
         on && /^    / { sub(/^    /, ""); print; next }
         on && /^$/ { print; next }
         on { exit }' "$1"
}
for f in deploy/k8s/*.yaml; do
    grep -qE '^kind: (Deployment|StatefulSet)$' "$f" || continue
    role=$(sed -n 's/^kind: //p' "$f" | grep -qx StatefulSet && echo shield || echo edge)
    node_conf "$f" >"$tmp/node.conf"
    [ -s "$tmp/node.conf" ] || { bad "$f: no node.conf ConfigMap"; continue; }
    "$BIN/$role" --check-config "$tmp/node.conf" >/dev/null || bad "$f: node.conf rejected by $role --check-config"
    grace=$(sed -n 's/^ *terminationGracePeriodSeconds: *//p' "$f")
    sum=$(drain_sum "$tmp/node.conf")
    [ "${grace:-30}" -gt "$sum" ] || bad "$f: terminationGracePeriodSeconds ${grace:-30} <= drain sum $sum s"
    # Both probes, and every HTTP probe, on /.cdn/health.
    for p in readinessProbe livenessProbe; do
        grep -q "^ *$p:" "$f" || bad "$f: no $p"
    done
    [ "$(grep -c '^ *httpGet:' "$f")" = "$(grep -c '^ *path: /\.cdn/health$' "$f")" ] \
        || bad "$f: a probe not on /.cdn/health"
    for line in 'runAsNonRoot: true' 'readOnlyRootFilesystem: true' 'allowPrivilegeEscalation: false' \
        'runAsUser: 10001'; do
        grep -q "^ *$line$" "$f" || bad "$f: no '$line'"
    done
    grep -q '^ *mountPath: /var/lib/cdn$' "$f" || bad "$f: no cache volume at /var/lib/cdn"
    case "$(conf_get "$tmp/node.conf" cache_dir '')" in
    /var/lib/cdn/*) ;;
    *) bad "$f: cache_dir is not on the cache volume (/var/lib/cdn/...)" ;;
    esac
    grep -q '/etc/cdn/config/node.conf' "$f" && grep -q '^ *mountPath: /etc/cdn/config$' "$f" \
        || bad "$f: the config is not read from the ConfigMap's mount"
    # An edge's shields are the StatefulSet's stable names.
    if [ "$role" = edge ]; then
        replicas=$(sed -n 's/^  replicas: //p' deploy/k8s/shield.yaml)
        IFS=', ' read -r -a shields <<<"$(conf_get "$tmp/node.conf" shields '')"
        [ "${#shields[@]}" -gt 0 ] || bad "$f: no shields"
        for s in "${shields[@]}"; do
            [[ "$s" =~ ^shield-([0-9]+)\.shield\.cdn\.svc\.cluster\.local:8090$ ]] && [ "${BASH_REMATCH[1]}" -lt "$replicas" ] \
                || bad "$f: shield '$s' is not a pod of the shield StatefulSet ($replicas replicas)"
        done
    fi
done
grep -q 'EXAMPLE' deploy/k8s/purge-token.example.yaml || bad "purge-token.example.yaml: the example token is not marked"
if grep -q '^ *- purge-token.example' deploy/k8s/kustomization.yaml; then
    bad "kustomization.yaml applies the example purge token"
fi

# --- 3. Docker --------------------------------------------------------------
df=deploy/docker/Dockerfile
if command -v hadolint >/dev/null; then
    hadolint "$df" || bad "$df: hadolint"
else
    echo "check-deploy: hadolint not installed (no Debian 12 package): Dockerfile lint skipped"
fi
bash -n deploy/docker/cdn-entrypoint || bad "cdn-entrypoint: syntax"
[ -x deploy/docker/cdn-entrypoint ] || bad "cdn-entrypoint: not executable"
[ "$(grep -c '^FROM debian:12' "$df")" = 2 ] || bad "$df: not two Debian 12 stages"
grep -qx 'USER 10001:10001' "$df" || bad "$df: not the non-root uid 10001 the manifests run as"
grep -qx 'STOPSIGNAL SIGTERM' "$df" || bad "$df: no STOPSIGNAL SIGTERM"
grep -q '^VOLUME \["/var/lib/cdn"\]' "$df" || bad "$df: no cache volume"
# The apt-get install line of each stage's RUN (continuation lines joined).
stage_pkgs() {
    awk -v n="$1" '/^FROM /{s++} s==n' "$df" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' \
        | grep -m1 'apt-get install' | tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$'
}
build_pkgs=$(stage_pkgs 1)
runtime_pkgs=$(stage_pkgs 2)
# The build stage has every DEB_PKGS package the programs need: not the
# test framework, the screenshot browser, these checks' tools or the load
# generator's plotter.
deb_pkgs=${CDN_DEB_PKGS:-$(make --no-print-directory -pn 2>/dev/null | sed -n 's/^DEB_PKGS := //p')}
for p in $deb_pkgs; do
    case "$p" in libcriterion-dev | chromium | systemd | yamllint | gnuplot-nox) continue ;; esac
    grep -qx "$p" <<<"$build_pkgs" || bad "$df: build stage lacks $p (Makefile DEB_PKGS)"
done
# The runtime stage has the package of every library the programs link.
for prog in edge shield origin; do
    for lib in $(readelf -d "$BIN/$prog" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        case "$lib" in libasan* | libubsan* | libc.so* | libm.so* | libgcc_s*) continue ;; esac
        path=$(ldd "$BIN/$prog" | awk -v l="$lib" '$1 == l { print $3 }')
        pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)
        pkg=${pkg%%:*}
        [ -n "$pkg" ] || { bad "$prog: no Debian package owns $lib ($path)"; continue; }
        grep -qx "$pkg" <<<"$runtime_pkgs" || bad "$df: runtime stage lacks $pkg ($lib, linked by $prog)"
    done
done

[ "$fail" = 0 ] && echo "deploy files check out (systemd, Kubernetes, Docker)"
exit "$fail"
