#!/usr/bin/env bash
# Generates a throwaway CA, a server certificate for 127.0.0.1/localhost and one client
# certificate per SPIFFE ID given, for the mTLS listener of the example bootstraps.
#
#   gen-certs.sh DIR [SPIFFE_ID ...]
#
# Writes DIR/ca.pem, DIR/ca.key, DIR/server.pem, DIR/server.key and, for the N-th SPIFFE ID,
# DIR/client<N>.pem / DIR/client<N>.key (N from 1), the ID as the certificate's URI SAN.
# Default client: spiffe://cluster.local/ns/default/sa/demo-client. Needs openssl.
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR [SPIFFE_ID ...]}
shift
[ $# -gt 0 ] || set -- spiffe://cluster.local/ns/default/sa/demo-client
mkdir -p "$dir"
cd "$dir"
q() { openssl "$@" >/dev/null 2>&1 || { echo "gen-certs: openssl $1 failed" >&2; openssl "$@"; exit 1; }; }

q req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/O=meshguard test/CN=meshguard test CA" -keyout ca.key -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign

leaf() { # name subject san extendedKeyUsage
  local name=$1 subject=$2 san=$3 eku=$4
  q req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subject" \
    -keyout "$name.key" -out "$name.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
    "$eku" "$san" >"$name.ext"
  q x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$name.ext" -out "$name.pem"
  rm -f "$name.csr" "$name.ext"
}

leaf server "/O=meshguard test/CN=localhost" "DNS:localhost,IP:127.0.0.1" serverAuth
n=0
for id in "$@"; do
  n=$((n + 1))
  leaf "client$n" "/O=meshguard test/CN=client$n" "URI:$id" clientAuth
done
rm -f ca.srl
echo "$dir"
