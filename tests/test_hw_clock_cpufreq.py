"""cpufreq clock backend against a fake sysfs tree."""

from __future__ import annotations

import errno
import math
from pathlib import Path

import pytest

from splitbed.errors import InvalidArgument, PermissionDenied, Unavailable
from splitbed.hw import sysfs
from splitbed.hw.clock import CpufreqClock, snap_hz

STEPS_KHZ = [800000, 1200000, 1600000, 2000000, 2400000]


def make_cpufreq(root: Path, cpus: list[int], *, avail: list[int] | None, lo: int = 800000, hi: int = 2400000) -> None:
    for cpu in cpus:
        d = root / "devices" / "system" / "cpu" / f"cpu{cpu}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_min_freq").write_text(f"{lo}\n")
        (d / "cpuinfo_max_freq").write_text(f"{hi}\n")
        (d / "scaling_max_freq").write_text(f"{hi}\n")
        (d / "scaling_min_freq").write_text(f"{lo}\n")
        if avail is not None:
            (d / "scaling_available_frequencies").write_text(" ".join(map(str, avail)) + " \n")


def max_file(root: Path, cpu: int) -> Path:
    return root / "devices" / "system" / "cpu" / f"cpu{cpu}" / "cpufreq" / "scaling_max_freq"


def test_snaps_down_to_available_frequencies_and_writes_every_cpu(tmp_path: Path) -> None:
    make_cpufreq(tmp_path, [0, 1], avail=STEPS_KHZ)
    clock = CpufreqClock(tmp_path, cpus=[0, 1])
    assert clock.steps_hz() == [k * 1e3 for k in STEPS_KHZ]
    assert (clock.min_hz(), clock.max_hz()) == (800e6, 2400e6)

    applied = clock.set_cap(1.9e9)

    assert applied.requested_hz == 1.9e9
    assert applied.applied_hz == 1.6e9
    assert applied.backend == "cpufreq" and applied.emulated is False
    assert max_file(tmp_path, 0).read_text() == "1600000"
    assert max_file(tmp_path, 1).read_text() == "1600000"
    assert clock.current_hz() == 1.6e9
    assert "cpu0=1600MHz" in applied.detail and "cpu1=1600MHz" in applied.detail


def test_without_available_list_clamps_to_cpuinfo_range(tmp_path: Path) -> None:
    make_cpufreq(tmp_path, [0], avail=None)
    clock = CpufreqClock(tmp_path, cpus=[0])
    assert clock.steps_hz() is None
    assert clock.set_cap(1.234567e9).applied_hz == 1234567e3
    assert clock.set_cap(5e9).applied_hz == 2.4e9
    assert clock.set_cap(1e8).applied_hz == 0.8e9
    assert max_file(tmp_path, 0).read_text() == "800000"


def test_reports_the_value_read_back_not_the_one_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cpufreq(tmp_path, [0], avail=STEPS_KHZ)
    real_write = sysfs._write_raw

    def kernel_clamps(path: Path, text: str) -> None:
        # A thermal or platform limit makes the kernel keep 1.2 GHz whatever is written.
        real_write(path, str(min(int(text), 1200000)))

    monkeypatch.setattr(sysfs, "_write_raw", kernel_clamps)
    applied = CpufreqClock(tmp_path, cpus=[0]).set_cap(2.4e9)
    assert applied.applied_hz == 1.2e9


def test_reset_restores_cpuinfo_max(tmp_path: Path) -> None:
    make_cpufreq(tmp_path, [0, 1], avail=STEPS_KHZ)
    clock = CpufreqClock(tmp_path, cpus=[0, 1])
    clock.set_cap(1e9)
    applied = clock.reset()
    assert applied.applied_hz == 2.4e9
    assert max_file(tmp_path, 1).read_text() == "2400000"


def test_permission_error_names_file_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cpufreq(tmp_path, [0], avail=STEPS_KHZ)

    def denied(path: Path, text: str) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(sysfs, "_write_raw", denied)
    with pytest.raises(PermissionDenied) as info:
        CpufreqClock(tmp_path, cpus=[0]).set_cap(1.6e9)
    msg = str(info.value)
    assert str(max_file(tmp_path, 0)) in msg
    assert 'SUBSYSTEM=="cpu"' in msg and "chmod g+w" in msg and "zeusd" in msg


def test_read_only_sysfs_is_a_permission_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cpufreq(tmp_path, [0], avail=STEPS_KHZ)

    def read_only(path: Path, text: str) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(sysfs, "_write_raw", read_only)
    with pytest.raises(PermissionDenied, match="scaling_max_freq"):
        CpufreqClock(tmp_path, cpus=[0]).set_cap(1.6e9)


def test_kernel_rejecting_a_value_is_invalid_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cpufreq(tmp_path, [0], avail=STEPS_KHZ)

    def einval(path: Path, text: str) -> None:
        raise OSError(errno.EINVAL, "Invalid argument", str(path))

    monkeypatch.setattr(sysfs, "_write_raw", einval)
    with pytest.raises(InvalidArgument, match="rejected"):
        CpufreqClock(tmp_path, cpus=[0]).set_cap(1.6e9)


def test_missing_cpufreq_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="scaling_max_freq"):
        CpufreqClock(tmp_path, cpus=[0])


@pytest.mark.parametrize("bad", [0.0, -1e9, math.nan, math.inf])
def test_rejects_non_positive_caps(tmp_path: Path, bad: float) -> None:
    make_cpufreq(tmp_path, [0], avail=STEPS_KHZ)
    with pytest.raises(InvalidArgument):
        CpufreqClock(tmp_path, cpus=[0]).set_cap(bad)


def test_snap_modes() -> None:
    steps = [1.0e9, 2.0e9, 3.0e9]
    assert snap_hz(1.6e9, 1e9, 3e9, steps, "down") == 1.0e9
    assert snap_hz(1.6e9, 1e9, 3e9, steps, "nearest") == 2.0e9
    assert snap_hz(1.4e9, 1e9, 3e9, steps, "nearest") == 1.0e9
    assert snap_hz(1.1e9, 1e9, 3e9, steps, "up") == 2.0e9
    # a solver's rounding just below a step is that step (1499999999.9 Hz was applied as 1400 MHz)
    assert snap_hz(1.9999999999e9, 1e9, 3e9, steps, "down") == 2.0e9
    assert snap_hz(2.0e9, 1e9, 3e9, steps, "up") == 2.0e9
    assert snap_hz(0.5e9, 1e9, 3e9, steps) == 1.0e9
    assert snap_hz(9e9, 1e9, 3e9, steps) == 3.0e9
