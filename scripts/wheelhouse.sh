#!/usr/bin/env bash
# Collect every wheel the images need into one folder, for a target platform,
# so `docker build` installs with `pip --no-index --find-links` (no registry).
#
#   scripts/wheelhouse.sh                      # this machine's arch -> wheelhouse/
#   ARCH=aarch64 scripts/wheelhouse.sh         # a Raspberry Pi / arm64 agent image
#   TORCH_SPEC='torch==2.13.0+cpu' TORCH_INDEX=https://download.pytorch.org/whl/cpu scripts/wheelhouse.sh
#
# Settings (environment):
#   WHEELHOUSE   output folder (default: wheelhouse)
#   ARCH         x86_64 | aarch64 (default: uname -m)
#   PY_VERSION   target interpreter, major.minor (default 3.11: python:3.11-slim and Debian bookworm's python3)
#   GLIBC_TAG    newest manylinux tag the target's glibc accepts (default manylinux_2_28, the tag of
#                torch's wheels); every older tag down to manylinux2014 is accepted too. bookworm: glibc 2.36.
#   TORCH_SPEC   exact torch requirement (default torch==2.13.0). Never an open range: on x86_64 PyPI's
#                plain torch is the CUDA build, which pulls several GB of nvidia-* wheels.
#   TORCH_INDEX  extra index for torch (default on aarch64: https://download.pytorch.org/whl/cpu, because
#                PyPI's aarch64 torch 2.13.0 is a CUDA 13 build needing nvidia-*-cu13 wheels; default on
#                x86_64: none, pip's configured indexes and find-links are used)
#   EXTRAS       project extras to collect (default agent,edge,controller)
#   ALLOW_CUDA   1 to accept nvidia-*/triton wheels in the wheelhouse (default: refuse, see above)
#   PYTHON       interpreter that runs pip here (default python3; needs no torch)
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${WHEELHOUSE:-wheelhouse}
ARCH=${ARCH:-$(uname -m)}
PY_VERSION=${PY_VERSION:-3.11}
GLIBC_TAG=${GLIBC_TAG:-manylinux_2_28}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TORCH_INDEX=${TORCH_INDEX:-}
EXTRAS=${EXTRAS:-agent,edge,controller}
ALLOW_CUDA=${ALLOW_CUDA:-0}
PYTHON=${PYTHON:-python3}

case "$ARCH" in
  x86_64|amd64) ARCH=x86_64 ;;
  aarch64|arm64) ARCH=aarch64 ;;
  *) echo "wheelhouse: unsupported ARCH=$ARCH (x86_64 or aarch64)" >&2; exit 2 ;;
esac
case "$TORCH_SPEC" in
  *==*) ;;
  *) echo "wheelhouse: TORCH_SPEC must be an exact pin (torch==X.Y.Z), got '$TORCH_SPEC'" >&2; exit 2 ;;
esac

if [[ "$ARCH" == aarch64 && -z "$TORCH_INDEX" ]]; then
  TORCH_INDEX=https://download.pytorch.org/whl/cpu
fi
ABI="cp${PY_VERSION/./}"
# pip takes --platform literally (no expansion to older glibc tags), so list
# every manylinux tag from GLIBC_TAG down to manylinux2014 (glibc 2.17).
max_minor=${GLIBC_TAG##*_2_}
platform_args=(--platform "manylinux2014_${ARCH}")
for ((minor = max_minor; minor >= 17; minor--)); do
  platform_args+=(--platform "manylinux_2_${minor}_${ARCH}")
done
mkdir -p "$OUT"
start=$(date +%s)

# 1. The project itself, as a pure-Python wheel (same on every platform).
rm -f "$OUT"/splitbed-*.whl
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$OUT" .
project=$(ls "$OUT"/splitbed-*.whl)

# 2. Every dependency, binary only, for the target platform and interpreter.
index_args=()
[[ -n "$TORCH_INDEX" ]] && index_args=(--extra-index-url "$TORCH_INDEX")
"$PYTHON" -m pip download --quiet \
  --dest "$OUT" --find-links "$OUT" "${index_args[@]}" \
  --only-binary=:all: "${platform_args[@]}" \
  --python-version "$PY_VERSION" --implementation cp --abi "$ABI" \
  "$TORCH_SPEC" "${project}[${EXTRAS}]"

# 3. Refuse a CUDA torch unless asked for: it is the usual way an image grows by several GB.
#    (nvidia-ml-py, the NVML binding of the edge extra, is small and stays.)
cuda=$(find "$OUT" -maxdepth 1 \( -name 'nvidia_*_cu[0-9]*.whl' -o -name 'triton-*.whl' \) -printf '%f\n' | sort)
if [[ -n "$cuda" && "$ALLOW_CUDA" != 1 ]]; then
  echo "wheelhouse: CUDA wheels were pulled with $TORCH_SPEC:" >&2
  echo "$cuda" | sed 's/^/  /' >&2
  echo "Use a CPU build (TORCH_SPEC='torch==2.13.0+cpu' TORCH_INDEX=https://download.pytorch.org/whl/cpu)," \
       "delete them, or set ALLOW_CUDA=1." >&2
  exit 1
fi

torch_whl=$(find "$OUT" -maxdepth 1 -name 'torch-*.whl' -printf '%f\n' | head -1)
(cd "$OUT" && sha256sum ./*.whl > SHA256SUMS)
echo "wheelhouse: $(find "$OUT" -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1)," \
     "torch=${torch_whl:-none}, target cp${PY_VERSION/./}/${GLIBC_TAG}_${ARCH}, $(( $(date +%s) - start )) s"
