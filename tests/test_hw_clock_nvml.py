"""NVML clock backend and NVML error mapping against autospec'd pynvml functions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pynvml
import pytest

from splitbed.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from splitbed.hw.clock import EmulatedClock, NvmlClock, make_clock
from splitbed.hw.nvml_errors import map_nvml_error

GFX_MHZ = [1980, 1800, 1500, 1200, 900, 600, 210]
NVML_FUNCS = [
    "nvmlInit",
    "nvmlShutdown",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetSupportedMemoryClocks",
    "nvmlDeviceGetSupportedGraphicsClocks",
    "nvmlDeviceSetGpuLockedClocks",
    "nvmlDeviceResetGpuLockedClocks",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetPowerManagementLimitConstraints",
    "nvmlDeviceSetPowerManagementLimit",
    "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetPowerManagementDefaultLimit",
]


def nvml_error(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


@pytest.fixture
def nvml() -> Iterator[dict[str, Any]]:
    with mock.patch.multiple(pynvml, autospec=True, **{name: mock.DEFAULT for name in NVML_FUNCS}) as mocks:
        mocks["nvmlDeviceGetHandleByIndex"].return_value = "gpu0"
        mocks["nvmlDeviceGetSupportedMemoryClocks"].return_value = [810, 5001]
        mocks["nvmlDeviceGetSupportedGraphicsClocks"].return_value = GFX_MHZ
        mocks["nvmlDeviceGetClockInfo"].return_value = 1410
        mocks["nvmlDeviceGetPowerManagementLimitConstraints"].return_value = [100_000, 300_000]
        mocks["nvmlDeviceGetPowerManagementDefaultLimit"].return_value = 250_000
        yield mocks


def test_set_cap_snaps_to_supported_clocks_at_max_memory_clock(nvml: dict[str, Any]) -> None:
    clock = NvmlClock(0)
    assert clock.steps_hz() == sorted(m * 1e6 for m in GFX_MHZ)
    nvml["nvmlDeviceGetSupportedGraphicsClocks"].assert_called_with("gpu0", 5001)

    applied = clock.set_cap(1.7e9)

    nvml["nvmlDeviceSetGpuLockedClocks"].assert_called_once_with("gpu0", 210, 1500)
    assert applied.applied_hz == 1.5e9 and applied.requested_hz == 1.7e9
    assert applied.backend == "nvml" and not applied.emulated
    assert "1410 MHz" in applied.detail
    assert clock.current_hz() == 1.5e9


def test_pin_locks_min_and_max_at_the_cap(nvml: dict[str, Any]) -> None:
    NvmlClock(0, pin=True).set_cap(1.0e9)
    nvml["nvmlDeviceSetGpuLockedClocks"].assert_called_once_with("gpu0", 900, 900)


def test_reset_unlocks(nvml: dict[str, Any]) -> None:
    clock = NvmlClock(0)
    clock.set_cap(1.0e9)
    applied = clock.reset()
    nvml["nvmlDeviceResetGpuLockedClocks"].assert_called_once_with("gpu0")
    assert applied.applied_hz == 1.98e9
    assert clock.current_hz() == 1.41e9  # no cap of ours: the live clock


def test_power_limit_clamped_to_constraints_and_read_back(nvml: dict[str, Any]) -> None:
    nvml["nvmlDeviceGetPowerManagementLimit"].return_value = 100_000
    applied = NvmlClock(0).set_power_limit(50.0)
    nvml["nvmlDeviceSetPowerManagementLimit"].assert_called_once_with("gpu0", 100_000)
    assert (applied.requested_w, applied.applied_w) == (50.0, 100.0)


def test_no_permission_names_the_fix(nvml: dict[str, Any]) -> None:
    nvml["nvmlDeviceSetGpuLockedClocks"].side_effect = nvml_error(pynvml.NVML_ERROR_NO_PERMISSION)
    with pytest.raises(PermissionDenied) as info:
        NvmlClock(0).set_cap(1.2e9)
    msg = str(info.value)
    assert "lock the clocks of GPU 0" in msg and "root" in msg and "zeusd" in msg
    assert isinstance(info.value.__cause__, pynvml.NVMLError_NoPermission)


def test_library_missing_is_unavailable(nvml: dict[str, Any]) -> None:
    nvml["nvmlInit"].side_effect = nvml_error(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(Unavailable, match="driver"):
        NvmlClock(0)


def test_not_supported_is_failed_precondition(nvml: dict[str, Any]) -> None:
    nvml["nvmlDeviceSetGpuLockedClocks"].side_effect = nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
    with pytest.raises(FailedPrecondition, match="Volta"):
        NvmlClock(0).set_cap(1.2e9)


@pytest.mark.parametrize(
    ("code", "domain"),
    [
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, Unavailable),
        (pynvml.NVML_ERROR_UNINITIALIZED, FailedPrecondition),
        (pynvml.NVML_ERROR_INVALID_ARGUMENT, InvalidArgument),
        (pynvml.NVML_ERROR_NOT_FOUND, NotFound),
        (pynvml.NVML_ERROR_GPU_IS_LOST, Unavailable),
        (pynvml.NVML_ERROR_TIMEOUT, Unavailable),
        (pynvml.NVML_ERROR_MEMORY, Unavailable),  # unmapped codes still say what failed
    ],
)
def test_error_mapping_table(code: int, domain: type[Exception]) -> None:
    mapped = map_nvml_error(nvml_error(code), "do a thing")
    assert type(mapped) is domain
    assert "NVML could not do a thing" in str(mapped)


def test_auto_falls_back_to_emulated_with_a_warning(
    nvml: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nvml["nvmlInit"].side_effect = nvml_error(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    with caplog.at_level(logging.WARNING, logger="splitbed.hw.clock.factory"):
        clock = make_clock("auto", sysfs_root=tmp_path, profile="paper-device", host_flops_per_s=1e12)
    assert isinstance(clock, EmulatedClock)
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "emulating profile 'paper-device'" in warning
    assert "nvml:" in warning and "cpufreq:" in warning and "jetson:" in warning


def test_auto_prefers_nvml_when_it_works(nvml: dict[str, Any], tmp_path: Path) -> None:
    assert isinstance(make_clock("auto", sysfs_root=tmp_path, host_flops_per_s=1e12), NvmlClock)
