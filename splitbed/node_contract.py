"""The contract between the control client and a node (the device agent or the edge server).

The control client registers the node with the controller, applies every
config the controller pushes and forwards the node's telemetry; the node only
has to meet `ControlledNode`. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from splitbed.v1 import control_pb2


@dataclass
class Applied:
    """What a node actually applied for a config (snapped clock, achieved ratio, ...), each with its source."""

    knobs: control_pb2.Knobs
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class Telemetry:
    """Values to report (units in the names), each with where it came from (`measured:...`, `counted`, ...)."""

    values: dict[str, float]
    sources: dict[str, str]


class ControlledNode(Protocol):
    """What a node offers the control client."""

    async def profile(self) -> control_pb2.NodeProfile:
        """Measure the node as it runs now (compute, link, split costs)."""
        ...

    async def apply(self, config: control_pb2.Config) -> Applied:
        """Apply a pushed config; raise a `SplitbedError` to refuse it (the controller is told why)."""
        ...

    def telemetry(self) -> Telemetry | None:
        """The telemetry due now, or None when nothing is due yet."""
        ...
