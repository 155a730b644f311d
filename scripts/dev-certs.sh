#!/usr/bin/env bash
# Development certificates: one CA and one certificate per node, made with openssl.
#
#   scripts/dev-certs.sh DIR NAME[,ALIAS...] ...
#   scripts/dev-certs.sh certs controller edge-0,edge device-1 device-2 admin
#
# DIR/ca.pem (+ ca.key) is the CA; DIR/NAME.pem and DIR/NAME.key are NAME's
# certificate and key. NAME is the CN and a DNS SAN; so are ALIASes (e.g. the
# host name a node is dialled by); localhost and 127.0.0.1 are always in the
# SAN. The controller checks a node's CN/SAN against the node id it claims, so
# name node certificates after the node ids. An existing CA in DIR is reused.
# For development and tests only: the keys are unencrypted, valid 825 days.
# KEY_MODE=0644 makes the keys readable by other users (containers running as
# another uid read them from a bind mount); the default is 0600.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 DIR NAME[,ALIAS...] ..." >&2; exit 2; }
command -v openssl >/dev/null || { echo "dev-certs: openssl not found" >&2; exit 2; }
DIR=$1; shift
mkdir -p "$DIR"
umask 077
if [[ ! -f "$DIR/ca.pem" ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=splitbed dev CA" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
for spec in "$@"; do
  IFS=, read -r -a names <<<"$spec"
  name=${names[0]}
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || { echo "dev-certs: bad name $name" >&2; exit 2; }
  san="DNS:$name,DNS:localhost,IP:127.0.0.1"
  for alias in "${names[@]:1}"; do san="$san,DNS:$alias"; done
  ext=$(mktemp)
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$ext"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$DIR/$name.key" -out "$DIR/$name.csr" 2>/dev/null
  openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -days 825 \
    -extfile "$ext" -out "$DIR/$name.pem" 2>/dev/null
  rm -f "$DIR/$name.csr" "$ext"
done
chmod 644 "$DIR"/*.pem
chmod "${KEY_MODE:-0600}" "$DIR"/*.key
echo "dev-certs: CA $DIR/ca.pem; certificates for: $*"
