"""When a device's channel has really drifted: hysteresis and a minimum interval for drift re-plans.

One telemetry report's gain estimate is noisy (short uploads, a token
bucket's burst, a busy host), and re-planning on every excursion made plans
follow noise: in compose two "channel drift" plans came about 2 s apart. A
drift re-plan is due only when

* the report belongs to the plan in force (a window that straddles a plan
  switch mixes powers and says nothing about the channel);
* the gain is off the planned one by more than `threshold` in `confirm`
  consecutive reports, on the same side; the count only resets once a report
  comes back within `threshold * release` (hysteresis band);
* the last `confirm` of them agree with each other within `threshold *
  release` (the channel has settled at its new level, so the plan is not
  made for a value half-way through the change and then made again);
* at least `min_interval_s` have passed since the node's last drift re-plan.

The gain adopted is the median of those last `confirm` reports.

`rate_drift` applies the gate to the uplink rate r(p) at the plan's power,
not to the gain: the plan depends on the gain only through that rate, and a
gain inverted from a measured rate amplifies the rate's noise exponentially
at high SNR (compose, about 42 Mbit/s on 20 MHz: 4-8 % of rate noise was
10-25 % of gain, and the gate at 20 % of gain re-planned 4 times in 8 minutes
on a static channel).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from splitbed.channel import gain_from_rate, rate_bps
from splitbed.v1 import control_pb2


@dataclass
class _NodeDrift:
    over: list[float] = field(default_factory=list)  # confirming estimates, all on one side of the plan
    last_replan: float = float("-inf")


@dataclass
class DriftGate:
    threshold: float = 0.2  # relative gain deviation that counts as drift
    confirm: int = 2  # consecutive reports beyond the threshold
    min_interval_s: float = 10.0  # between two drift re-plans of one node
    release: float = 0.5  # a report within threshold * release clears the count
    clock: Callable[[], float] = time.monotonic
    _nodes: dict[str, _NodeDrift] = field(default_factory=dict)

    def check(self, node_id: str, planned: float, measured: float, *, report_version: int = 0,
              plan_version: int = 0) -> float | None:
        """The gain to re-plan with when a drift re-plan is due now, else None."""
        if planned <= 0 or measured <= 0 or report_version < plan_version:
            return None
        state = self._nodes.setdefault(node_id, _NodeDrift())
        deviation = (measured - planned) / planned
        if abs(deviation) <= self.threshold * self.release:
            state.over.clear()
            return None
        if abs(deviation) <= self.threshold:
            return None  # inside the hysteresis band: neither confirms nor clears
        if state.over and (state.over[-1] > planned) != (measured > planned):
            state.over.clear()  # drifted the other way: start counting again
        state.over.append(measured)
        recent = state.over[-self.confirm:]
        now = self.clock()
        if len(recent) < self.confirm or now - state.last_replan < self.min_interval_s:
            return None
        if max(recent) / min(recent) - 1.0 > self.threshold * self.release:
            return None  # still moving (a window straddling the change): wait until it settles at a new level
        adopted = statistics.median(recent)
        state.over.clear()
        state.last_replan = now
        return adopted

    def forget(self, node_id: str) -> None:
        self._nodes.pop(node_id, None)


def rate_drift(gate: DriftGate, node_id: str, link: control_pb2.LinkProfile, power_w: float, measured_gain: float,
               *, report_version: int, plan_version: int) -> float | None:
    """The gain to re-plan with when the rate at the plan's power has drifted (see the module note), else None.

    No power (L = n uploads nothing) or no link figures: nothing to judge."""
    bw, n0 = link.bandwidth_hz, link.noise_psd_w_per_hz
    if power_w <= 0 or bw <= 0 or n0 <= 0 or link.gain <= 0 or not 0 < measured_gain <= 1:
        return None
    adopted = gate.check(node_id, rate_bps(power_w, bw, n0, link.gain), rate_bps(power_w, bw, n0, measured_gain),
                         report_version=report_version, plan_version=plan_version)
    return None if adopted is None else gain_from_rate(adopted, power_w, bw, n0)
