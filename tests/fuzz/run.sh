#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 60), one at a time.
#   tests/fuzz/run.sh [seconds-per-target] [target ...]
# Uses the pinned stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only flags).
# Each target runs on a scratch copy of its committed seed corpus (corpus/<target>), so the
# committed seeds stay small; crashes land in artifacts/<target>/ and make the script exit 1.
# FUZZ_TARGET_DIR=<dir> builds there instead of tests/fuzz/target (e.g. to time a fresh build).
set -euo pipefail
started=$(date +%s)
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi

dir_args=()
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then dir_args=(--target-dir "$FUZZ_TARGET_DIR"); fi

if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo fuzz list)
fi

cargo fuzz build "${dir_args[@]}"
echo "fuzz build done after $(( $(date +%s) - started )) s"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
failed=()
for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/$t" "artifacts/$t"
    if [ -d "corpus/$t" ]; then cp -r "corpus/$t/." "$WORK/$t/"; fi
    # regressions/<target>/ holds crashing inputs found earlier: run them first, always.
    extra=()
    if [ -d "regressions/$t" ]; then extra=("regressions/$t"); fi
    echo "=== $t (${SECONDS_PER_TARGET}s)"
    log="$WORK/$t.log"
    if cargo fuzz run "${dir_args[@]}" "$t" "$WORK/$t" "${extra[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$log" 2>&1; then
        grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units" "$log" || true
    else
        tail -n 40 "$log"
        failed+=("$t")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs under tests/fuzz/artifacts/<target>/)"
    exit 1
fi
echo "all ${#TARGETS[@]} targets ran ${SECONDS_PER_TARGET}s without a crash ($(( $(date +%s) - started )) s in all)"
