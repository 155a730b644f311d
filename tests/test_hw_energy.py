"""Energy meters: RAPL (wraparound), NVML, Jetson INA3221 (hwmon and iio), the model, and the factory."""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pynvml
import pytest

from splitbed.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from splitbed.hw import sysfs
from splitbed.hw.energy import (
    SOURCE_MODEL,
    JetsonMeter,
    ModelEnergyMeter,
    NvmlEnergyMeter,
    RaplMeter,
    make_energy_meter,
    upload_energy,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ---- RAPL ------------------------------------------------------------------------------

def make_rapl(root: Path, zones: dict[str, tuple[int, int]]) -> Path:
    base = root / "class" / "powercap"
    for name, (energy, rng) in zones.items():
        z = base / name
        z.mkdir(parents=True)
        (z / "energy_uj").write_text(f"{energy}\n")
        (z / "max_energy_range_uj").write_text(f"{rng}\n")
        (z / "name").write_text("package-0\n")
    return base


def test_rapl_sums_packages_and_ignores_subzones(tmp_path: Path) -> None:
    base = make_rapl(tmp_path, {"intel-rapl:0": (1_000_000, 10**9), "intel-rapl:1": (5_000_000, 10**9),
                                "intel-rapl:0:0": (0, 10**9)})
    clock = FakeClock()
    meter = RaplMeter(tmp_path, clock=clock)
    assert meter.zones == ["intel-rapl:0", "intel-rapl:1"]
    token = meter.begin()
    (base / "intel-rapl:0" / "energy_uj").write_text("3000000\n")
    (base / "intel-rapl:1" / "energy_uj").write_text("5500000\n")
    (base / "intel-rapl:0:0" / "energy_uj").write_text("999999999\n")
    clock.t += 2.0
    reading = meter.end(token)
    assert reading.joules == pytest.approx(2.5)
    assert reading.seconds == pytest.approx(2.0) and reading.watts == pytest.approx(1.25)
    assert reading.source == "measured:rapl" and reading.measured


def test_rapl_wraparound(tmp_path: Path) -> None:
    base = make_rapl(tmp_path, {"intel-rapl:0": (262_000_000, 262_143_328_850)})
    (base / "intel-rapl:0" / "energy_uj").write_text("262143000000\n")
    meter = RaplMeter(tmp_path)
    token = meter.begin()
    (base / "intel-rapl:0" / "energy_uj").write_text("671150\n")  # wrapped past max_energy_range_uj
    assert meter.end(token).joules == pytest.approx((262_143_328_850 - 262_143_000_000 + 671_150) / 1e6)


def test_rapl_unreadable_counter_names_file_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = make_rapl(tmp_path, {"intel-rapl:0": (0, 10**9)})
    real_read = sysfs._read_raw

    def root_only(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(sysfs, "_read_raw", root_only)
    with pytest.raises(PermissionDenied) as info:
        RaplMeter(tmp_path)
    assert str(base / "intel-rapl:0" / "energy_uj") in str(info.value)
    assert 'SUBSYSTEM=="powercap"' in str(info.value) and "CVE-2020-8694" in str(info.value)


def test_rapl_absent_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="RAPL"):
        RaplMeter(tmp_path)


# ---- NVML ------------------------------------------------------------------------------

@pytest.fixture
def nvml() -> Iterator[dict[str, Any]]:
    names = ["nvmlInit", "nvmlShutdown", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetTotalEnergyConsumption"]
    with mock.patch.multiple(pynvml, autospec=True, **{n: mock.DEFAULT for n in names}) as mocks:
        mocks["nvmlDeviceGetHandleByIndex"].return_value = "gpu1"
        yield mocks


def test_nvml_energy_in_millijoules(nvml: dict[str, Any]) -> None:
    nvml["nvmlDeviceGetTotalEnergyConsumption"].side_effect = [10_000, 10_000, 13_500]
    meter = NvmlEnergyMeter(1)
    nvml["nvmlDeviceGetHandleByIndex"].assert_called_once_with(1)
    reading = meter.end(meter.begin())
    assert reading.joules == pytest.approx(3.5)
    assert reading.source == "measured:nvml" and reading.measured and "GPU 1" in reading.detail


def test_nvml_energy_not_supported(nvml: dict[str, Any]) -> None:
    nvml["nvmlDeviceGetTotalEnergyConsumption"].side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    with pytest.raises(FailedPrecondition, match="energy counter"):
        NvmlEnergyMeter(0)


# ---- Jetson INA3221 ---------------------------------------------------------------------

def make_hwmon(root: Path) -> Path:
    hw = root / "class" / "hwmon" / "hwmon3"
    hw.mkdir(parents=True)
    (hw / "name").write_text("ina3221\n")
    for i, (label, ma, mv) in enumerate([("VDD_IN", 1000, 5000), ("VDD_CPU_GPU_CV", 400, 5000),
                                         ("VDD_SOC", 200, 5000)], start=1):
        (hw / f"in{i}_label").write_text(f"{label}\n")
        (hw / f"curr{i}_input").write_text(f"{ma}\n")
        (hw / f"in{i}_input").write_text(f"{mv}\n")
    other = root / "class" / "hwmon" / "hwmon0"  # an unrelated sensor
    other.mkdir()
    (other / "name").write_text("thermal\n")
    return hw


def test_jetson_hwmon_integrates_total_rail(tmp_path: Path) -> None:
    hw = make_hwmon(tmp_path)
    clock = FakeClock()
    meter = JetsonMeter(tmp_path, clock=clock, background=False)
    assert meter.rails == ["VDD_IN"]
    assert meter.power_w() == pytest.approx(5.0)
    token = meter.begin()
    clock.t += 1.0
    (hw / "curr1_input").write_text("2000\n")  # 10 W
    meter.sample()
    clock.t += 1.0
    reading = meter.end(token)
    # trapezoid: (5+10)/2 * 1 + (10+10)/2 * 1
    assert reading.joules == pytest.approx(17.5)
    assert reading.seconds == pytest.approx(2.0)
    assert reading.source == "measured:jetson-ina3221" and reading.measured


def test_jetson_selected_rails_are_summed(tmp_path: Path) -> None:
    make_hwmon(tmp_path)
    meter = JetsonMeter(tmp_path, rails=["VDD_CPU_GPU_CV", "VDD_SOC"], background=False)
    assert meter.power_w() == pytest.approx(3.0)
    with pytest.raises(NotFound, match="VDD_GPU"):
        JetsonMeter(tmp_path, rails=["VDD_GPU"], background=False)


def test_jetson_iio_layout(tmp_path: Path) -> None:
    dev = tmp_path / "bus" / "i2c" / "drivers" / "ina3221x" / "6-0040" / "iio:device0"
    dev.mkdir(parents=True)
    for i, (name, mw) in enumerate([("POM_5V_IN", 3000), ("POM_5V_GPU", 800), ("POM_5V_CPU", 900)]):
        (dev / f"rail_name_{i}").write_text(f"{name}\n")
        (dev / f"in_power{i}_input").write_text(f"{mw}\n")
    meter = JetsonMeter(tmp_path, background=False)
    assert meter.rails == ["POM_5V_IN"] and meter.power_w() == pytest.approx(3.0)


def test_jetson_background_sampler_integrates_constant_power(tmp_path: Path) -> None:
    make_hwmon(tmp_path)
    meter = JetsonMeter(tmp_path, interval_s=0.01)
    try:
        token = meter.begin()
        time.sleep(0.1)
        reading = meter.end(token)
    finally:
        meter.close()
    assert reading.seconds > 0
    assert reading.joules == pytest.approx(5.0 * reading.seconds)


def test_jetson_absent_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="INA3221"):
        JetsonMeter(tmp_path)


# ---- model, upload, factory -------------------------------------------------------------

def test_model_energy_is_the_paper_formula() -> None:
    meter = ModelEnergyMeter(phi=5e-29, flops_per_cycle=32, pue=1.0)
    est = meter.estimate(1e9, 1e9)
    assert est.joules == pytest.approx(1e9 * 5e-29 * 1e18 / 32)
    assert est.seconds == pytest.approx(1e9 / (1e9 * 32))
    assert est.source == SOURCE_MODEL == "modelled:phi*f^2*N/c" and not est.measured
    server = ModelEnergyMeter(phi=1e-28, flops_per_cycle=128, pue=2.0)
    reading = server.end(server.begin(), flops=2e9, freq_hz=4e9)
    assert reading.joules == pytest.approx(2.0 * 2e9 * 1e-28 * 16e18 / 128)
    with pytest.raises(InvalidArgument, match="flops"):
        server.end(server.begin())


def test_upload_energy() -> None:
    reading = upload_energy(0.5, 2.0)
    assert reading.joules == 1.0 and reading.seconds == 2.0
    assert reading.source == "modelled:p*t_upload" and not reading.measured
    with pytest.raises(InvalidArgument):
        upload_energy(-1, 1)


def test_factory_falls_back_to_model_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with mock.patch.object(pynvml, "nvmlInit", autospec=True,
                           side_effect=pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)), \
            caplog.at_level(logging.WARNING, logger="splitbed.hw.energy"):
        meter = make_energy_meter("auto", sysfs_root=tmp_path, phi=1e-28, flops_per_cycle=128)
    assert isinstance(meter, ModelEnergyMeter) and meter.phi == 1e-28
    text = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "using the model" in text and "rapl:" in text and "nvml:" in text and "jetson:" in text


def test_factory_picks_rapl_when_present(tmp_path: Path) -> None:
    make_rapl(tmp_path, {"intel-rapl:0": (0, 10**9)})
    assert isinstance(make_energy_meter("rapl", sysfs_root=tmp_path), RaplMeter)
    with mock.patch.object(pynvml, "nvmlInit", autospec=True,
                           side_effect=pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)):
        assert isinstance(make_energy_meter("auto", sysfs_root=tmp_path), RaplMeter)
    with pytest.raises(InvalidArgument):
        make_energy_meter("wattmeter")
