"""--cpus: parsing, the automatic split between co-located sides, and a real pinned process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from splitbed.affinity import parse_cpu_list, resolve_cpus
from splitbed.errors import InvalidArgument


def test_cpu_lists() -> None:
    assert parse_cpu_list("0") == {0}
    assert parse_cpu_list("0-3,6") == {0, 1, 2, 3, 6}
    for bad in ("a", "3-1", "-1", "0-99999", ""):
        with pytest.raises(InvalidArgument, match="--cpus"):
            parse_cpu_list(bad)


def test_auto_splits_the_allowed_cores_between_the_sides() -> None:
    assert resolve_cpus("auto", "device", {0, 1}) == {0}
    assert resolve_cpus("auto", "server", {0, 1}) == {1}
    assert resolve_cpus("auto", "device", {2, 3, 4, 5, 6}) == {2, 3}
    assert resolve_cpus("auto", "server", {2, 3, 4, 5, 6}) == {4, 5, 6}
    assert resolve_cpus("auto", "server", {3}) == {3}
    assert resolve_cpus(None, "server", {0, 1}) is None
    with pytest.raises(InvalidArgument, match="not available"):
        resolve_cpus("7", "device", {0, 1})


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no sched_setaffinity on this platform")
def test_a_side_process_really_runs_pinned_with_matching_torch_threads() -> None:
    core = min(os.sched_getaffinity(0))
    code = (
        "import os, torch\n"
        "from splitbed.side.timed import open_model\n"
        "from edge_server.settings import EdgeSettings\n"
        f"open_model(EdgeSettings(cpus='{core}'), 'server')\n"
        "print(sorted(os.sched_getaffinity(0)), torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [f"[{core}]", "1"]
