"""Generated wire code must match a fresh generation from proto/ (scripts/gen_proto.py is the only writer)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.launch import ROOT


def test_generated_code_is_fresh():
    proc = subprocess.run([sys.executable, "scripts/gen_proto.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_detects_stale_code(tmp_path):
    """The check is not vacuous: a copy of the repo with an edited .proto fails it."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "proto", copy / "proto")
    shutil.copytree(ROOT / "splitbed" / "v1", copy / "splitbed" / "v1")
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    proto = copy / "proto" / "splitbed" / "v1" / "tensor.proto"
    proto.write_text(proto.read_text().replace("bytes scales = 5;", "bytes scales = 5;\n  string note = 6;"))
    proc = subprocess.run([sys.executable, "scripts/gen_proto.py", "--check"], cwd=copy, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "tensor_pb2" in proc.stdout


@pytest.mark.parametrize("module", ["controller", "splitbed.hw", "splitbed.channel", "splitbed.control_client"])
def test_torch_free_modules(module):
    """The controller (and the core pieces it uses) never import torch."""
    code = f"import sys, {module}; import controller.main; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
