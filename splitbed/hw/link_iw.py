"""Real Wi-Fi transmit power through ``iw``.

``iw dev IF set txpower fixed <mBm>`` then ``iw dev IF info`` to read back
the ``txpower`` line (drivers snap to whole dBm and to regulatory limits).
The radio's rate adaptation picks the real rate; ``rate_bps`` here is r(p) at
the applied power, labelled ``modelled:r(p)``.
"""

from __future__ import annotations

import logging
import math
import re
import subprocess
from collections.abc import Sequence

from splitbed.errors import FailedPrecondition, InvalidArgument, Unavailable
from splitbed.hw.commands import Runner, in_netns, run_command
from splitbed.hw.link_base import AppliedLink, LinkBackend, model_rate_bps
from splitbed.hw.link_tbf import tc_error

logger = logging.getLogger(__name__)

_TXPOWER = re.compile(r"txpower\s+(-?[\d.]+)\s*dBm")


def watts_to_mbm(power_w: float) -> int:
    """Transmit power in mBm (hundredths of dBm), as ``iw`` wants it."""
    if not math.isfinite(power_w) or power_w <= 0:
        raise InvalidArgument(f"transmit power must be positive finite watts, got {power_w!r}")
    return round(100 * 10 * math.log10(power_w * 1e3))


def dbm_to_watts(dbm: float) -> float:
    return float(10 ** (dbm / 10) / 1e3)


class IwLink(LinkBackend):
    """Sets a Wi-Fi interface's transmit power (``emulated=False``)."""

    name = "iw"
    emulated = False

    def __init__(self, dev: str, *, netns: str | None = None, runner: Runner = run_command, iw: str = "iw") -> None:
        if not dev:
            raise InvalidArgument("iw needs an interface name (dev)")
        self.dev = dev
        self.netns = netns
        self._runner = runner
        self._iw = iw
        self._changed = False

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        full = in_netns(self.netns, args)
        try:
            proc = self._runner(full)
        except FileNotFoundError as exc:
            raise Unavailable(f"`{full[0]}` is not installed (apt-get install iw)") from exc
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(f"`{' '.join(full)}` did not finish within {exc.timeout:g} s") from None
        if proc.returncode != 0:
            raise tc_error(full, proc)
        return proc

    def read_txpower_dbm(self) -> float:
        out = self._run([self._iw, "dev", self.dev, "info"]).stdout
        match = _TXPOWER.search(out)
        if match is None:
            raise FailedPrecondition(f"`iw dev {self.dev} info` shows no txpower line (driver does not report it)")
        return float(match.group(1))

    def apply(self, power_w: float, *, bandwidth_hz: float, noise_psd: float, gain: float) -> AppliedLink:
        mbm = watts_to_mbm(power_w)
        self._run([self._iw, "dev", self.dev, "set", "txpower", "fixed", str(mbm)])
        self._changed = True
        dbm = self.read_txpower_dbm()
        applied_w = dbm_to_watts(dbm)
        rate = model_rate_bps(applied_w, bandwidth_hz=bandwidth_hz, noise_psd=noise_psd, gain=gain)
        logger.info("iw %s: %.4f W requested, %.2f dBm (%.4f W) applied", self.dev, power_w, dbm, applied_w)
        detail = (f"set {mbm} mBm, radio reports {dbm:.2f} dBm; rate is r(p) at that power, "
                  "an estimate: the radio's rate adaptation decides the real one")
        return AppliedLink(applied_w, rate, self.name, False, detail, "modelled:r(p)")

    def close(self) -> None:
        """Hand power control back to the driver."""
        if self._changed:
            self._run([self._iw, "dev", self.dev, "set", "txpower", "auto"])
            self._changed = False
