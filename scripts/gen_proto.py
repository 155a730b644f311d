"""Regenerate the Python code and type stubs for `proto/splitbed/v1/*.proto`.

The one way generated code is made: `python scripts/gen_proto.py` writes
`splitbed/v1/*_pb2.py`, `*_pb2.pyi`, `*_pb2_grpc.py`, `*_pb2_grpc.pyi`;
`python scripts/gen_proto.py --check` exits 1 when the committed files differ
from a fresh generation (tests/test_proto_fresh.py runs it).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = Path("splitbed") / "v1"
INIT = '"""Generated from proto/splitbed/v1 by scripts/gen_proto.py; do not edit."""\n'


def _plugin(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        raise SystemExit(f"{name} not found next to {sys.executable}: install the 'dev' extra (mypy-protobuf)")
    return str(exe)


def generate(out: Path) -> list[Path]:
    """Generate into `out` (a repo-root-like folder); return the generated files."""
    protos = sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--mypy_grpc_out={out}",
        *(str(p.relative_to(PROTO_ROOT)) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (out / PACKAGE / "__init__.py").write_text(INIT)
    return sorted((out / PACKAGE).iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        target = ROOT / PACKAGE
        if args.check:
            stale = [
                f.name
                for f in fresh
                if not (target / f.name).exists() or not filecmp.cmp(f, target / f.name, shallow=False)
            ]
            extra = {p.name for p in target.glob("*_pb2*")} - {f.name for f in fresh}
            if stale or extra:
                print(f"stale generated code in {PACKAGE}: {sorted(stale + list(extra))}; run scripts/gen_proto.py")
                return 1
            print("generated code is up to date")
            return 0
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*_pb2*"):
            old.unlink()
        for f in fresh:
            shutil.copy2(f, target / f.name)
        print(f"wrote {len(fresh)} files to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
