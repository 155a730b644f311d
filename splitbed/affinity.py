"""CPU affinity for a side's process, so co-located agent and server do not fight.

Demo, compose, tests and experiments put the agent and the edge server on one
host. Unpinned, each process's torch threads migrate across every core and
preempt the other's; one extra busy process on a 2-core host slowed the
two-process pipeline 5.3x against 2.3x for the one-process model. Pinning each
side's compute to its own cores, with as many torch threads as cores, keeps
their timings (and the emulated clocks' host benchmark, taken after pinning)
what they would be on separate machines.

`--cpus` takes a Linux cpu list ("0", "2-3", "0,2"), or "auto": the agent takes
the lower half of the cores this process may use (`os.sched_getaffinity`) and
the server the upper half, which is the split for an agent and a server on one
host. Unset: no pinning.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

from splitbed.errors import InvalidArgument

logger = logging.getLogger(__name__)

Side = Literal["device", "server"]
MAX_CPU = 4096


def parse_cpu_list(spec: str) -> set[int]:
    """Cores named by a Linux cpu list such as "0-3,6"."""
    cpus: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise InvalidArgument(f"--cpus: {part!r} is not a core number or range (e.g. 0-1,3)") from None
        if not 0 <= first <= last < MAX_CPU:
            raise InvalidArgument(f"--cpus: range {part!r} must be ascending, within 0..{MAX_CPU - 1}")
        cpus.update(range(first, last + 1))
    return cpus


def resolve_cpus(spec: str | None, side: Side, available: set[int]) -> set[int] | None:
    """The cores this side pins to, or None for no pinning."""
    if spec is None or not spec.strip():
        return None
    if spec.strip() == "auto":
        ordered = sorted(available)
        if len(ordered) < 2:
            return set(ordered)  # one core: nothing to split
        half = len(ordered) // 2
        return set(ordered[:half]) if side == "device" else set(ordered[half:])
    cpus = parse_cpu_list(spec)
    missing = cpus - available
    if missing:
        raise InvalidArgument(f"--cpus: cores {sorted(missing)} are not available to this process "
                              f"(allowed: {sorted(available)})")
    return cpus


def pin_process(spec: str | None, side: Side) -> set[int] | None:
    """Pin this process to its cores (before torch starts its thread pool); returns them, or None."""
    if not hasattr(os, "sched_setaffinity"):
        if spec:
            raise InvalidArgument("--cpus: this platform has no sched_setaffinity")
        return None
    cpus = resolve_cpus(spec, side, os.sched_getaffinity(0))
    if cpus is None:
        return None
    os.sched_setaffinity(0, cpus)
    logger.info("%s compute pinned to cores %s", side, sorted(cpus))
    return cpus
