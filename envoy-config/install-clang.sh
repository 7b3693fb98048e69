#!/usr/bin/env bash
# Installs what ring's C code (ES256/ES384 verification in meshguard-core) needs to build for
# wasm32: clang and llvm-ar, from apt, only when missing. Used by tests/run.sh,
# envoy-config/demo.sh and envoy-config/bench/run.sh; .cargo/config.toml points cc-rs at them for
# the wasm32 targets (another C compiler builds a module that Envoy refuses: tests/imports.rs).
set -euo pipefail
need=()
command -v clang >/dev/null || need+=(clang)
command -v llvm-ar >/dev/null || need+=(llvm)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing: ${need[*]} (apt-get install ${need[*]}, or run as root)" >&2
  exit 1
fi
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
