"""GPU energy from NVML's total-energy counter (mJ since driver load, Volta+)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from splitbed.errors import InvalidArgument
from splitbed.hw.energy_base import SOURCE_NVML, EnergyMeter, EnergyReading, EnergyToken
from splitbed.hw.nvml_errors import load_pynvml, nvml_errors


class NvmlEnergyMeter(EnergyMeter):
    name = "nvml"
    measured = True

    def __init__(self, index: int = 0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._nvml = load_pynvml()
        self._index = index
        self._clock = clock
        with nvml_errors("initialise"):
            self._nvml.nvmlInit()
        with nvml_errors(f"open GPU {index}"):
            self._handle: Any = self._nvml.nvmlDeviceGetHandleByIndex(index)
        self._read()  # NotSupported on pre-Volta GPUs should surface here

    def _read(self) -> float:
        with nvml_errors(f"read the energy counter of GPU {self._index}"):
            return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))

    def begin(self) -> EnergyToken:
        return EnergyToken(self._clock(), (self._read(),))

    def end(self, token: EnergyToken, *, flops: float | None = None, freq_hz: float | None = None) -> EnergyReading:
        now = self._read()
        t1 = self._clock()
        if len(token.raw) != 1:
            raise InvalidArgument("token does not come from an NVML meter")
        return EnergyReading((now - token.raw[0]) / 1e3, t1 - token.t0, SOURCE_NVML, True, f"GPU {self._index}")

    def close(self) -> None:
        with nvml_errors("shut down"):
            self._nvml.nvmlShutdown()
