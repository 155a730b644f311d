"""Energy meters (RAPL, NVML, Jetson INA3221, the paper's model) and the factory."""

from __future__ import annotations

import logging
from pathlib import Path

from splitbed.errors import InvalidArgument, SplitbedError
from splitbed.hw.energy_base import (
    SOURCE_JETSON,
    SOURCE_MODEL,
    SOURCE_NVML,
    SOURCE_RAPL,
    SOURCE_UPLOAD,
    EnergyMeter,
    EnergyReading,
    EnergyToken,
    upload_energy,
)
from splitbed.hw.energy_jetson import JetsonMeter
from splitbed.hw.energy_model import ModelEnergyMeter
from splitbed.hw.energy_nvml import NvmlEnergyMeter
from splitbed.hw.energy_rapl import RaplMeter

logger = logging.getLogger(__name__)

ENERGY_KINDS = ("auto", "rapl", "nvml", "jetson", "model")

# The paper's device values (sec. VI), used when the caller configures none.
PAPER_DEVICE_PHI = 5e-29
PAPER_DEVICE_FLOPS_PER_CYCLE = 32.0

__all__ = [
    "ENERGY_KINDS",
    "SOURCE_JETSON",
    "SOURCE_MODEL",
    "SOURCE_NVML",
    "SOURCE_RAPL",
    "SOURCE_UPLOAD",
    "EnergyMeter",
    "EnergyReading",
    "EnergyToken",
    "JetsonMeter",
    "ModelEnergyMeter",
    "NvmlEnergyMeter",
    "RaplMeter",
    "make_energy_meter",
    "upload_energy",
]


def make_energy_meter(
    kind: str = "auto",
    *,
    sysfs_root: Path = Path("/sys"),
    gpu_index: int = 0,
    phi: float = PAPER_DEVICE_PHI,
    flops_per_cycle: float = PAPER_DEVICE_FLOPS_PER_CYCLE,
    pue: float = 1.0,
    prefer: tuple[str, ...] = ("nvml", "jetson", "rapl"),
) -> EnergyMeter:
    """An energy meter of ``kind`` (one of ``ENERGY_KINDS``).

    ``auto`` tries the real meters in ``prefer`` order and falls back to
    ``ModelEnergyMeter(phi, flops_per_cycle, pue)`` with a WARNING naming why
    each real one was skipped.
    """
    if kind not in ENERGY_KINDS:
        raise InvalidArgument(f"unknown energy meter {kind!r}; choose one of {', '.join(ENERGY_KINDS)}")

    def real(name: str) -> EnergyMeter:
        if name == "rapl":
            return RaplMeter(sysfs_root)
        if name == "nvml":
            return NvmlEnergyMeter(gpu_index)
        if name == "jetson":
            return JetsonMeter(sysfs_root)
        raise InvalidArgument(f"unknown real energy meter {name!r}")

    if kind == "model":
        return ModelEnergyMeter(phi, flops_per_cycle, pue)
    if kind != "auto":
        return real(kind)
    reasons: list[str] = []
    for name in prefer:
        try:
            return real(name)
        except SplitbedError as exc:
            reasons.append(f"{name}: {exc}")
    logger.warning("no energy meter works here, using the model %s (phi=%g, c=%g, eta=%g). Why: %s",
                   SOURCE_MODEL, phi, flops_per_cycle, pue, "; ".join(reasons))
    return ModelEnergyMeter(phi, flops_per_cycle, pue)
