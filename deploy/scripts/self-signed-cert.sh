#!/usr/bin/env bash
# A private CA and a server certificate for tests and staging (not for real clients: they would
# have to trust the CA). Writes into <dir>: ca.crt ca.key (the CA), tls.crt (server certificate
# followed by the CA: the chain the front serves) and tls.key (its key).
#
#   deploy/scripts/self-signed-cert.sh deploy/tls relay.example.com [more names or IPs...]
#
# Trust it in a test client with NODE_EXTRA_CA_CERTS=<dir>/ca.crt (node) or curl --cacert.
set -euo pipefail
dir="${1:?usage: self-signed-cert.sh <dir> <dns name> [names or IPs...]}"; shift
[ "$#" -gt 0 ] || { echo "self-signed-cert: give at least one DNS name" >&2; exit 2; }
mkdir -p "$dir"
umask 077
san=""
for n in "$@"; do
  if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+="${san:+,}IP:$n"; else san+="${san:+,}DNS:$n"; fi
done
# The CA (10 years) and the server key + certificate (90 days, like Let's Encrypt: rotate often).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=Zax relay test CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
  -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\nbasicConstraints=CA:FALSE\n' "$san" > "$dir/tls.ext"
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 90 \
  -extfile "$dir/tls.ext" -out "$dir/server.crt" 2>/dev/null
cat "$dir/server.crt" "$dir/ca.crt" > "$dir/tls.crt"
rm -f "$dir/tls.csr" "$dir/tls.ext" "$dir/server.crt" "$dir/ca.srl"
chmod 644 "$dir/tls.crt" "$dir/ca.crt"
echo "self-signed-cert: $dir/tls.crt + tls.key for $san (CA: $dir/ca.crt)"
echo "self-signed-cert: SPKI pin (sha256, base64): $(openssl x509 -in "$dir/tls.crt" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64)"
