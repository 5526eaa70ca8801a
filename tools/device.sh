#!/usr/bin/env bash
# GPU runs through this workplace's `device` tool: calls of at most 10 minutes, each on a possibly fresh
# machine, that resume one another through the carried run cache.
#
#   here:  bash tools/device.sh pack [DATASETS]
#            fills .device/ (gitignored) with the offline archives of DATASETS (default cifar10,mnist; ~31 MB),
#            a trimmed SHA256SUMS and the git revision; `unpack` adds the run cache. Carry `.device`.
#   there: bash tools/device.sh run SECONDS 'repro ...' ['repro ...' ...]
#            puts `repro` on PATH (the package runs from the tree; nothing is installed), unpacks the datasets
#            into data/datasets, restores the run cache, runs the commands in order until they have taken
#            SECONDS (a sweep cut off resumes from the cache next call; leave ~60 s of the call for setup and
#            packing), then writes $OUT/results.tgz (the data/ and figures/ files written by this call),
#            $OUT/cache.tgz (the whole run cache) and $OUT/log.txt.
#   here:  bash tools/device.sh unpack FILES_AT
#            results into the working tree, the cache into .device/ for the next call; prints the log.
set -uo pipefail
cd "$(dirname "$0")/.."
DEV=.device
SHARED=${REPRO_SHARED:-../shared/datasets}

pack() {
    local want=${1:-cifar10,mnist} name
    rm -rf "$DEV/datasets" && mkdir -p "$DEV/datasets"
    cp "$SHARED/unpack.sh" "$DEV/datasets/"
    : >"$DEV/datasets/SHA256SUMS"
    for name in ${want//,/ }; do
        case $name in
            cifar10) cp "$SHARED/cifar10-jpeg.tar.gz" "$DEV/datasets/"
                     grep ' cifar10-jpeg.tar.gz$' "$SHARED/SHA256SUMS" >>"$DEV/datasets/SHA256SUMS" ;;
            mnist|fashion-mnist)
                     local d; d=$([ "$name" = mnist ] && echo MNIST || echo FashionMNIST)
                     mkdir -p "$DEV/datasets/$d/raw" && cp "$SHARED/$d/raw/"*.gz "$DEV/datasets/$d/raw/"
                     grep " $d/raw/" "$SHARED/SHA256SUMS" >>"$DEV/datasets/SHA256SUMS" ;;
            *) echo "unknown dataset '$name' (cifar10, mnist, fashion-mnist)" >&2; return 2 ;;
        esac
    done
    local dirty=""
    [ -n "$(git status --porcelain --untracked-files=no -- . ':!data' ':!figures')" ] && dirty="+dirty"
    echo "$(git rev-parse HEAD)$dirty" >"$DEV/git"
    du -sh "$DEV"
}

run() {
    : "${OUT:?run needs \$OUT, the folder the device tool sends back}"
    run_logged "$@" 2>&1 | tee "$OUT/log.txt"
    return "${PIPESTATUS[0]}"
}

run_logged() {
    local budget=$1 start stamp status=0 rc cmd left
    shift
    stamp=$(mktemp)   # files newer than this were written by the call
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    # no pip: an offline machine cannot fetch the build backend; the package runs from the tree instead
    local bin; bin=$(mktemp -d)
    printf '#!/bin/sh\nexec %s -m reproduce.cli "$@"\n' "${REPRO_PYTHON:-python3}" >"$bin/repro" && chmod +x "$bin/repro"
    export PATH="$bin:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    repro --help >/dev/null || return 1
    [ -f "$DEV/git" ] && export REPRO_GIT_SHA=$(cat "$DEV/git")
    [ -d "$DEV/datasets" ] && { bash "$DEV/datasets/unpack.sh" data/datasets >/dev/null || return 1; }
    [ -f "$DEV/cache.tgz" ] && tar -xzf "$DEV/cache.tgz"
    start=$SECONDS   # the budget is the commands' time; setup took $start s and packing takes seconds
    for cmd in "$@"; do
        left=$((budget - (SECONDS - start)))
        if [ "$left" -le 2 ]; then echo "== skipped (out of time): $cmd"; status=124; continue; fi
        echo "== $cmd  (${left} s left)"
        timeout --kill-after=10 "$left" bash -c "$cmd"
        rc=$?
        [ "$rc" -ne 0 ] && status=$rc   # the call fails if any command failed (124: cut off at the budget)
        echo "== exit $rc after $((SECONDS - start)) s"
    done
    find data figures -type f -newer "$stamp" ! -path 'data/.cache/*' ! -path 'data/datasets/*' \
        | tar -czf "$OUT/results.tgz" -T -
    [ -d data/.cache ] && tar -czf "$OUT/cache.tgz" data/.cache
    ls -l "$OUT"
    return $status
}

unpack() {
    local at=$1
    [ -f "$at/results.tgz" ] && tar -xzvf "$at/results.tgz"
    [ -f "$at/cache.tgz" ] && mkdir -p "$DEV" && cp "$at/cache.tgz" "$DEV/cache.tgz" && chmod u+w "$DEV/cache.tgz"
    [ -f "$at/log.txt" ] && cat "$at/log.txt"
    return 0
}

case ${1:-} in
    pack) shift; pack "$@" ;;
    run) shift; [ $# -ge 2 ] || { echo "usage: $0 run SECONDS 'repro ...' ..." >&2; exit 2; }; run "$@" ;;
    unpack) shift; [ $# -eq 1 ] || { echo "usage: $0 unpack FILES_AT" >&2; exit 2; }; unpack "$@" ;;
    *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
