#!/usr/bin/env bash
# Development TLS material and tokens for overlays/lab, as Kubernetes Secrets.
#
#   deploy/k8s/overlays/lab/make-secrets.sh OUT_DIR DEVICE_NODE [DEVICE_NODE ...]
#   kubectl apply -f deploy/k8s/overlays/lab/namespaces.yaml
#   kubectl apply -f OUT_DIR/secrets.yaml
#   kubectl apply -k deploy/k8s/overlays/lab
#
# Makes, with openssl, in OUT_DIR:
#   ca.crt, ca.key            a lab CA (ca.key never leaves OUT_DIR)
#   controller.crt/.key       CN controller; DNS controller[.splitbed[.svc[.cluster.local]]], localhost
#   edge-N.crt/.key           CN edge-N; DNS edge-N.edge-headless[.splitbed[...]], localhost
#   <node>.crt/.key           CN <node> (a device node's name = its agent's node id), localhost
#   tokens                    the controller's token table: `role token` per line
#   <id>.token, admin.token   each node's own bearer token; the operator's admin token
#   secrets.yaml              Secrets splitbed-controller-tls, splitbed-edge-tls (namespace
#                             splitbed) and splitbed-agent-tls (namespace splitbed-devices)
# Every certificate carries serverAuth and clientAuth: servers present it,
# and as clients (and for the exec probes) they present the same one.
#
# Environment: EDGES (default 2, the lab's edge replicas), NAMESPACE
# (splitbed), DEVICE_NAMESPACE (splitbed-devices), DAYS (365), KUBECTL.
# For development only: a real lab uses its own CA (or cert-manager).
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR DEVICE_NODE [DEVICE_NODE ...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
out=$1; shift
EDGES=${EDGES:-2}
NAMESPACE=${NAMESPACE:-splitbed}
DEVICE_NAMESPACE=${DEVICE_NAMESPACE:-splitbed-devices}
DAYS=${DAYS:-365}
KUBECTL=${KUBECTL:-kubectl}
command -v openssl >/dev/null || { echo "$0: openssl is required" >&2; exit 1; }
command -v "$KUBECTL" >/dev/null || { echo "$0: kubectl is required (set KUBECTL=...)" >&2; exit 1; }
for node in "$@"; do
    # A node id becomes a file name and a certificate CN: DNS-label characters only.
    [[ $node =~ ^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$ ]] || { echo "$0: bad node name: $node" >&2; exit 2; }
done
mkdir -p "$out"
umask 077

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$DAYS" \
    -subj "/CN=splitbed lab CA" -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null

# cert NAME DNS_NAME...: key + certificate signed by the lab CA.
cert() {
    local name=$1; shift
    local san="DNS:localhost,IP:127.0.0.1" d
    for d in "$@"; do san="$san,DNS:$d"; done
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
        -keyout "$out/$name.key" -out "$out/$name.csr" 2>/dev/null
    openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
        -days "$DAYS" -out "$out/$name.crt" -extfile <(printf '%s\n' \
            "subjectAltName=$san" "extendedKeyUsage=serverAuth,clientAuth" \
            "keyUsage=critical,digitalSignature,keyEncipherment" "basicConstraints=critical,CA:FALSE") 2>/dev/null
    rm -f "$out/$name.csr" "$out/ca.srl"
}
token() { openssl rand -hex 32 > "$out/$1.token"; printf '%s %s\n' "$2" "$(cat "$out/$1.token")" >> "$out/tokens"; }

: > "$out/tokens"
token admin admin
svc=(controller "controller.$NAMESPACE" "controller.$NAMESPACE.svc" "controller.$NAMESPACE.svc.cluster.local")
cert controller "${svc[@]}"
edge_files=(--from-file="ca.crt=$out/ca.crt")
for ((i = 0; i < EDGES; i++)); do
    e=edge-$i h=edge-$i.edge-headless
    cert "$e" "$h" "$h.$NAMESPACE" "$h.$NAMESPACE.svc" "$h.$NAMESPACE.svc.cluster.local"
    token "$e" "node:$e"
    edge_files+=(--from-file="$out/$e.crt" --from-file="$out/$e.key" --from-file="$out/$e.token")
done
agent_files=(--from-file="ca.crt=$out/ca.crt")
for node in "$@"; do
    cert "$node" "$node"
    token "$node" "node:$node"
    agent_files+=(--from-file="$out/$node.crt" --from-file="$out/$node.key" --from-file="$out/$node.token")
done

{
    "$KUBECTL" create secret generic splitbed-controller-tls -n "$NAMESPACE" --dry-run=client -o yaml \
        --from-file="tls.crt=$out/controller.crt" --from-file="tls.key=$out/controller.key" \
        --from-file="ca.crt=$out/ca.crt" --from-file="tokens=$out/tokens"
    echo ---
    "$KUBECTL" create secret generic splitbed-edge-tls -n "$NAMESPACE" --dry-run=client -o yaml "${edge_files[@]}"
    echo ---
    "$KUBECTL" create secret generic splitbed-agent-tls -n "$DEVICE_NAMESPACE" --dry-run=client -o yaml \
        "${agent_files[@]}"
} > "$out/secrets.yaml"
echo "wrote $out/secrets.yaml (CA key and tokens in $out; the admin token is $out/admin.token)"
