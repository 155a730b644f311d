"""Jetson devfreq GPU clock against a fake sysfs tree and a fake nvpmodel."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from splitbed.errors import PermissionDenied, Unavailable
from splitbed.hw import sysfs
from splitbed.hw.clock import CpufreqClock, JetsonGpuClock, make_jetson_clock, nvpmodel_mode

AVAIL_HZ = [306000000, 408000000, 510000000, 624750000]


def make_devfreq(root: Path, name: str = "17000000.ga10b") -> Path:
    base = root / "class" / "devfreq"
    other = base / "13e10000.host1x"  # a non-GPU devfreq node that must be ignored
    other.mkdir(parents=True)
    (other / "max_freq").write_text("1000\n")
    d = base / name
    d.mkdir()
    (d / "available_frequencies").write_text(" ".join(map(str, AVAIL_HZ)) + "\n")
    (d / "max_freq").write_text(f"{AVAIL_HZ[-1]}\n")
    (d / "min_freq").write_text(f"{AVAIL_HZ[1]}\n")
    (d / "cur_freq").write_text(f"{AVAIL_HZ[-1]}\n")
    return d


def fake_nvpmodel(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    assert list(args) == ["nvpmodel", "-q"]
    return subprocess.CompletedProcess(list(args), 0, "NV Power Mode: 15W\n0\n", "")


def no_nvpmodel(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    raise FileNotFoundError(args[0])


def test_finds_gpu_node_and_snaps_to_available_frequencies(tmp_path: Path) -> None:
    d = make_devfreq(tmp_path)
    clock = JetsonGpuClock(tmp_path, runner=fake_nvpmodel)
    assert clock.steps_hz() == [float(h) for h in AVAIL_HZ]
    assert clock.max_hz() == 624.75e6

    applied = clock.set_cap(500e6)

    assert applied.applied_hz == 408e6 and applied.requested_hz == 500e6
    assert (d / "max_freq").read_text() == "408000000"
    assert "nvpmodel=15W" in applied.detail and "17000000.ga10b" in applied.detail
    assert clock.current_hz() == 408e6


def test_cap_below_min_freq_lowers_the_floor_first(tmp_path: Path) -> None:
    d = make_devfreq(tmp_path)
    applied = JetsonGpuClock(tmp_path, runner=no_nvpmodel).set_cap(300e6)
    assert applied.applied_hz == 306e6
    assert (d / "min_freq").read_text() == "306000000"
    assert "nvpmodel=n/a" in applied.detail


def test_reset_restores_top_step(tmp_path: Path) -> None:
    d = make_devfreq(tmp_path)
    clock = JetsonGpuClock(tmp_path, runner=no_nvpmodel)
    clock.set_cap(400e6)
    assert clock.reset().applied_hz == 624.75e6
    assert (d / "max_freq").read_text() == "624750000"


def test_explicit_node_name(tmp_path: Path) -> None:
    make_devfreq(tmp_path, name="57000000.gpu")
    assert JetsonGpuClock(tmp_path, gpu_devfreq="57000000.gpu", runner=no_nvpmodel).max_hz() == 624.75e6


def test_permission_error_names_devfreq_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = make_devfreq(tmp_path)

    def denied(path: Path, text: str) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted", str(path))

    monkeypatch.setattr(sysfs, "_write_raw", denied)
    with pytest.raises(PermissionDenied) as info:
        JetsonGpuClock(tmp_path, runner=no_nvpmodel).set_cap(510e6)
    assert str(d / "max_freq") in str(info.value)
    assert 'SUBSYSTEM=="devfreq"' in str(info.value)


def test_no_gpu_devfreq_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="devfreq"):
        JetsonGpuClock(tmp_path)


def test_cpu_target_is_cpufreq(tmp_path: Path) -> None:
    d = tmp_path / "devices" / "system" / "cpu" / "cpu0" / "cpufreq"
    d.mkdir(parents=True)
    for f, v in [("cpuinfo_min_freq", 115200), ("cpuinfo_max_freq", 1510400), ("scaling_max_freq", 1510400)]:
        (d / f).write_text(f"{v}\n")
    clock = make_jetson_clock("cpu", tmp_path, cpus=[0])
    assert isinstance(clock, CpufreqClock)
    assert clock.set_cap(1e9).applied_hz == 1e9


def test_nvpmodel_failure_is_none() -> None:
    def failing(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(list(args), 1, "", "NVPM ERROR")

    assert nvpmodel_mode(failing) is None
    assert nvpmodel_mode(fake_nvpmodel) == "15W"
