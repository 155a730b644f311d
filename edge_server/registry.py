"""The server parts being served, one per config version.

A request names the config version (and split / ratio) its hidden state was
made for, and is served by exactly that version's part, so a plan switch in
the middle of a stream never mixes versions. A superseded version stays
loaded until it has no request in flight and every agent has moved on (or it
is older than the previous one), so no request is lost to a switch.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from splitbed.errors import FailedPrecondition

logger = logging.getLogger(__name__)

RHO_TOLERANCE = 1e-6


@dataclass
class Served:
    version: int
    model: str
    split: int
    rho: float
    method: str
    part: Any  # splitbed.model.ServerPart (kept untyped: the registry does not import torch)
    inflight: int = 0
    served: int = 0


class PartRegistry:
    """Thread-safe map version -> served part, with in-flight accounting."""

    def __init__(self, keep_previous: int = 1) -> None:
        self._lock = threading.Lock()
        self._parts: dict[int, Served] = {}
        self._current: int | None = None
        self._keep_previous = keep_previous
        self._live: set[int] = set()  # versions the devices still use (per-device plans); empty: keep_previous

    @property
    def current(self) -> Served | None:
        with self._lock:
            return self._parts.get(self._current) if self._current is not None else None

    def versions(self) -> list[Served]:
        with self._lock:
            return sorted(self._parts.values(), key=lambda s: s.version)

    def part_for(self, split: int, rho: float, method: str) -> Any | None:
        """A loaded part with this (split, rho~, method), if any: devices with the same plan share it."""
        with self._lock:
            for s in self._parts.values():
                if s.split == split and s.method == method and abs(s.rho - rho) <= RHO_TOLERANCE:
                    return s.part
        return None

    def install(self, served: Served, live: set[int] | None = None) -> None:
        """Make `served` current; older versions retire once drained (and, given `live`, once no device uses
        them: every version in `live` stays)."""
        with self._lock:
            self._live = set(live or ())
            if self._current is not None and served.version <= self._current and served.version in self._parts:
                raise FailedPrecondition(f"config version {served.version} is already installed")
            self._parts[served.version] = served
            self._current = served.version
            self._collect_locked()
        logger.info(
            "serving version %d: split=%d rho=%.4f method=%s", served.version, served.split, served.rho, served.method
        )

    def _collect_locked(self) -> None:
        older = sorted(v for v in self._parts if v != self._current)
        keep = set(older[-self._keep_previous :]) if self._keep_previous else set()
        if self._live:
            keep = self._live
        for v in older:
            s = self._parts[v]
            if v not in keep and s.inflight == 0:
                del self._parts[v]
                logger.info("retired config version %d after %d requests", v, s.served)

    @contextlib.contextmanager
    def lease(self, *, version: int, model: str, split: int, rho: float) -> Iterator[Served]:
        """Hold the part of `version` for one request; raise FailedPrecondition if it is not served."""
        with self._lock:
            s = self._parts.get(version)
            if s is None:
                served = sorted(self._parts)
                raise FailedPrecondition(f"config version {version} is not served (served versions: {served})")
            if model and model != s.model:
                raise FailedPrecondition(f"model {model!r} is not served by version {version} (serves {s.model!r})")
            if split != s.split:
                raise FailedPrecondition(
                    f"split {split} does not match config version {version}, which serves split {s.split}"
                )
            if rho > 0 and abs(rho - s.rho) > RHO_TOLERANCE:
                raise FailedPrecondition(
                    f"server ratio {rho:g} does not match config version {version}, which serves rho~={s.rho:g}"
                )
            s.inflight += 1
        try:
            yield s
        finally:
            with self._lock:
                s.inflight -= 1
                s.served += 1
                if s.version != self._current:
                    self._collect_locked()
