"""Board energy on Jetson from the INA3221 power monitors, sampled and integrated.

Two sysfs layouts exist: hwmon (JetPack 5+: ``hwmon*/name`` is ``ina3221``,
``in{i}_label``, ``curr{i}_input`` mA and ``in{i}_input`` mV) and iio
(JetPack 4: ``bus/i2c/drivers/ina3221x/*/iio:device*/in_power{i}_input`` mW,
``rail_name_{i}``). The rails are read in a background thread every
``interval_s`` and integrated with the trapezoid rule. By default a total
input rail (``VDD_IN``, ``POM_5V_IN``) is used alone when present, since the
others are parts of it; otherwise all rails are summed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from splitbed.errors import InvalidArgument, NotFound, Unavailable
from splitbed.hw import sysfs
from splitbed.hw.energy_base import SOURCE_JETSON, EnergyMeter, EnergyReading, EnergyToken

logger = logging.getLogger(__name__)

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")


@dataclass(frozen=True)
class Rail:
    name: str
    read_w: Callable[[], float]


def _hwmon_rails(root: Path) -> list[Rail]:
    rails: list[Rail] = []
    for hw in sorted((root / "class" / "hwmon").glob("hwmon*")):
        name_file = hw / "name"
        if not name_file.exists() or sysfs.read_text(name_file) != "ina3221":
            continue
        for curr in sorted(hw.glob("curr*_input")):
            idx = curr.name[len("curr"):-len("_input")]
            volt, label = hw / f"in{idx}_input", hw / f"in{idx}_label"
            if not volt.exists():
                continue
            rail = sysfs.read_text(label) if label.exists() else f"{hw.name}-ch{idx}"

            def read(c: Path = curr, v: Path = volt) -> float:
                return sysfs.read_int(c) * sysfs.read_int(v) / 1e6  # mA x mV -> W

            rails.append(Rail(rail, read))
    return rails


def _iio_rails(root: Path) -> list[Rail]:
    rails: list[Rail] = []
    for dev in sorted((root / "bus" / "i2c" / "drivers" / "ina3221x").glob("*/iio:device*")):
        for power in sorted(dev.glob("in_power*_input")):
            idx = power.name[len("in_power"):-len("_input")]
            label = dev / f"rail_name_{idx}"
            rail = sysfs.read_text(label) if label.exists() else f"{dev.name}-ch{idx}"

            def read(p: Path = power) -> float:
                return sysfs.read_int(p) / 1e3  # mW -> W

            rails.append(Rail(rail, read))
    return rails


def discover_rails(sysfs_root: Path = Path("/sys")) -> list[Rail]:
    """Every INA3221 rail found under ``sysfs_root`` (hwmon layout first)."""
    root = Path(sysfs_root)
    return _hwmon_rails(root) or _iio_rails(root)


class JetsonMeter(EnergyMeter):
    name = "jetson"
    measured = True

    def __init__(
        self,
        sysfs_root: Path = Path("/sys"),
        *,
        rails: Sequence[str] | None = None,
        interval_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        if interval_s <= 0:
            raise InvalidArgument(f"interval_s must be positive, got {interval_s!r}")
        found = discover_rails(sysfs_root)
        if not found:
            raise Unavailable(f"no INA3221 power monitor under {sysfs_root} (not a Jetson?)")
        by_name = {r.name: r for r in found}
        if rails is not None:
            missing = [r for r in rails if r not in by_name]
            if missing:
                raise NotFound(f"INA3221 rails {missing} not found; available: {sorted(by_name)}")
            self._rails = [by_name[r] for r in rails]
        else:
            total = [by_name[r] for r in TOTAL_RAILS if r in by_name]
            self._rails = total[:1] or found
        self._interval = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._joules = 0.0
        self._last: tuple[float, float] | None = None  # (time, watts)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._background = background
        self.sample()  # unreadable files should fail here, not mid-run

    @property
    def rails(self) -> list[str]:
        return [r.name for r in self._rails]

    def power_w(self) -> float:
        return sum(r.read_w() for r in self._rails)

    def sample(self) -> tuple[float, float]:
        """Read the rails once and integrate since the last sample; returns (time, cumulative J)."""
        with self._lock:
            watts = self.power_w()
            now = self._clock()
            if self._last is not None:
                t_prev, w_prev = self._last
                self._joules += (watts + w_prev) / 2 * (now - t_prev)
            self._last = (now, watts)
            return now, self._joules

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sample()
            except Exception:
                logger.exception("INA3221 sampling failed; stopping the sampler")
                return

    def _ensure_thread(self) -> None:
        if self._background and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ina3221-sampler", daemon=True)
            self._thread.start()

    def begin(self) -> EnergyToken:
        self._ensure_thread()
        t, joules = self.sample()
        return EnergyToken(t, (joules,))

    def end(self, token: EnergyToken, *, flops: float | None = None, freq_hz: float | None = None) -> EnergyReading:
        t, joules = self.sample()
        if len(token.raw) != 1:
            raise InvalidArgument("token does not come from a Jetson meter")
        return EnergyReading(joules - token.raw[0], t - token.t0, SOURCE_JETSON, True,
                             f"rails {', '.join(self.rails)}, sampled every {self._interval:g} s")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
