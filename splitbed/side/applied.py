"""Applying a pushed config on one side: the part and the clock, each applied value with its source."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal, TypeVar

from splitbed.node_contract import Applied
from splitbed.side.hardware import ComputeHardware
from splitbed.side.timed import Part
from splitbed.v1 import control_pb2

Side = Literal["device", "server"]
P = TypeVar("P", bound=Part)


class AppliedValues:
    """The knobs a node reports back: the plan's values, overwritten by what was actually applied."""

    def __init__(self, planned: control_pb2.Knobs) -> None:
        self.knobs = control_pb2.Knobs()
        self.knobs.CopyFrom(planned)
        self.values: dict[str, float] = {}
        self.sources: dict[str, str] = {}

    def record(self, name: str, value: float, source: str) -> None:
        setattr(self.knobs, name, value)
        self.values[name] = value
        self.sources[name] = source

    def applied(self) -> Applied:
        return Applied(knobs=self.knobs, sources=dict(self.sources))


async def apply_part_and_clock(config: control_pb2.Config, side: Side, hw: ComputeHardware,
                               load: Callable[[int, float, str], P],
                               default_method: str) -> tuple[AppliedValues, P, str]:
    """Load (and prune) the side's part for `config` and cap its clock; both off the event loop.

    `load(split, rho, method)` gives the pruned part (blocking). Returns what
    was applied, the new part (not yet in use: the caller swaps it in) and the
    pruning method it was made with.
    """
    k = config.knobs
    method = config.method or default_method
    part = await asyncio.to_thread(load, k.split, getattr(k, f"rho_{side}"), method)
    values = AppliedValues(k)
    values.record("split", k.split, "applied")
    values.record(f"rho_{side}", part.report.achieved_rho, f"achieved ({method})")
    freq, freq_source = await asyncio.to_thread(hw.apply_freq, getattr(k, f"freq_{side}_hz"), side)
    values.record(f"freq_{side}_hz", freq, freq_source)
    return values, part, method
