"""CPU package energy from Intel/AMD RAPL via the powercap sysfs.

Sums the top-level ``intel-rapl:N`` zones (packages; sub-zones such as
``intel-rapl:0:0`` are parts of them). Counters wrap at
``max_energy_range_uj``; one wrap per interval is corrected, so intervals
must stay shorter than the wrap time (minutes at full load).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from splitbed.errors import InvalidArgument, Unavailable
from splitbed.hw import sysfs
from splitbed.hw.energy_base import SOURCE_RAPL, EnergyMeter, EnergyReading, EnergyToken

logger = logging.getLogger(__name__)

RAPL_GRANT_HINT = (
    "Since CVE-2020-8694 energy_uj is root-only. Run as root, or make it readable at boot "
    'with a udev rule: SUBSYSTEM=="powercap", ACTION=="add", '
    'RUN+="/bin/chmod o+r /sys/class/powercap/%k/energy_uj"; in a container mount '
    "/sys/class/powercap read-only into it. Or pass --energy model."
)

_TOP_ZONE = re.compile(r"^intel-rapl:\d+$")


class RaplMeter(EnergyMeter):
    name = "rapl"
    measured = True

    def __init__(
        self,
        sysfs_root: Path = Path("/sys"),
        *,
        zones: Sequence[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base = Path(sysfs_root) / "class" / "powercap"
        names = list(zones) if zones is not None else sorted(
            p.name for p in base.glob("intel-rapl:*") if _TOP_ZONE.match(p.name)
        )
        if not names:
            raise Unavailable(f"no RAPL zones under {base} (not an Intel/AMD host, or powercap not exposed)")
        self._zones = [base / n for n in names]
        for z in self._zones:
            if not (z / "energy_uj").exists():
                raise Unavailable(f"{z / 'energy_uj'} does not exist")
        self._ranges = [float(sysfs.read_int(z / "max_energy_range_uj")) for z in self._zones]
        self._clock = clock
        self._read()  # unreadable counters should fail here, not mid-run

    @property
    def zones(self) -> list[str]:
        return [z.name for z in self._zones]

    def _read(self) -> tuple[float, ...]:
        return tuple(float(sysfs.read_int(z / "energy_uj", grant_hint=RAPL_GRANT_HINT)) for z in self._zones)

    def begin(self) -> EnergyToken:
        return EnergyToken(self._clock(), self._read())

    def end(self, token: EnergyToken, *, flops: float | None = None, freq_hz: float | None = None) -> EnergyReading:
        now = self._read()
        t1 = self._clock()
        if len(token.raw) != len(now):
            raise InvalidArgument("token does not come from this RAPL meter")
        total_uj = 0.0
        for start, end, rng, zone in zip(token.raw, now, self._ranges, self._zones, strict=True):
            delta = end - start
            if delta < 0:
                logger.debug("RAPL %s wrapped (%.0f -> %.0f uJ)", zone.name, start, end)
                delta += rng
            total_uj += delta
        return EnergyReading(total_uj / 1e6, t1 - token.t0, SOURCE_RAPL, True, f"zones {', '.join(self.zones)}")
