#!/usr/bin/env bash
# The layering of docs/ARCHITECTURE.md, checked on the #include lines:
#
#   base (buf, http_fields, hash) <- policies <- engine core <- programs
#
# 1. The base modules include only base headers; policies/ and the
#    policies' headers (include/policy_*.h) only policy_*.h and base
#    headers. Anything in <> is a system header, unless it names a project
#    header (-Iinclude would find <config.h>) or one of the engine's I/O
#    libraries (libuv, libcurl, LMDB, libvips, jansson, pthreads), which
#    pure decision code has no use for.
# 2. include/ is the engine's API: each header there is included by the
#    engine or the programs (core/, policies/, edge/, shield/, include/),
#    and no header there is the interface of code in loadtest/ or tests/
#    (loadtest/NAME.c or loadtest/NAME_*.c). Such headers live next to
#    their code.
#
# Run from the top of the tree (`make check-layers`, part of `make test`).
# Prints each violation as FILE:LINE: ... and exits 1 when there is one.
set -u
cd "$(dirname "$0")/.." || exit 2

BASE_HEADERS='buf.h http_fields.h hash.h'
BASE_FILES='core/buf.c core/http_fields.c core/hash.c include/buf.h include/http_fields.h include/hash.h'
IO_LIBS='uv.h uv/* curl/* lmdb.h vips/* jansson.h pthread.h'
fail=0

is_project_header() {
    local b=${1##*/}
    [ -e "include/$b" ] || [ -e "core/$b" ] || [ -e "loadtest/$b" ] || [ -e "tests/integration/$b" ]
}

# check_includes LAYER ALLOWED FILE...: every #include of FILE... is a
# system header or matches one of the ALLOWED globs.
check_includes() {
    local layer=$1 allowed=$2 f line text spec name ok pat
    shift 2
    for f in "$@"; do
        [ -e "$f" ] || continue
        while IFS=: read -r line text; do
            spec=${text#*include}
            spec=${spec#"${spec%%[!$' \t']*}"} # leading blanks
            name=${spec:1}
            name=${name%%[\">]*}
            ok=0
            if [ "${spec:0:1}" = "<" ] && ! is_project_header "$name"; then
                ok=1
                for pat in $IO_LIBS; do
                    # shellcheck disable=SC2053
                    if [[ $name == $pat ]]; then
                        echo "$f:$line: $layer does no I/O: not $name"
                        fail=1
                    fi
                done
            else
                for pat in $allowed; do
                    # shellcheck disable=SC2053
                    [[ $name == $pat ]] && ok=1
                done
            fi
            if [ "$ok" = 0 ]; then
                echo "$f:$line: $layer may include only ${allowed// /, } and system headers, not $name"
                fail=1
            fi
        done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$f")
    done
}

# shellcheck disable=SC2086
check_includes "the base layer" "$BASE_HEADERS" $BASE_FILES
# shellcheck disable=SC2086
check_includes "policies" "policy_*.h $BASE_HEADERS" policies/*.c policies/*.h include/policy_*.h

for h in include/*.h; do
    b=${h##*/}
    stem=${b%.h}
    for src in loadtest/"$stem".c loadtest/"$stem"_*.c; do
        if [ -e "$src" ]; then
            echo "$h: the interface of $src belongs in loadtest/, not in include/ (the engine's API)"
            fail=1
            break
        fi
    done
    if ! grep -qE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]${b//./\\.}[\">]" \
        core/*.c core/*.h policies/*.c edge/*.c shield/*.c include/*.h 2>/dev/null; then
        echo "$h: no engine code includes it (only loadtest/ or tests/?): move it next to its users"
        fail=1
    fi
done

if [ "$fail" = 0 ]; then
    echo "layers are in order"
fi
exit "$fail"
