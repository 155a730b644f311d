"""Process memory: current and peak RSS, and GPU memory through an injected callable.

GPU figures come from a callable the torch-side caller passes (e.g.
``torch.cuda.memory_allocated``), so this module never imports torch.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from splitbed.hw import sysfs


@dataclass(frozen=True)
class MemoryReading:
    """rss_bytes: resident set now; peak_rss_bytes: high-water mark of this process;
    gpu_bytes / gpu_peak_bytes: from the injected callables, None without them."""

    rss_bytes: int
    peak_rss_bytes: int
    gpu_bytes: int | None = None
    gpu_peak_bytes: int | None = None
    source: str = "measured:procfs+getrusage"


def peak_rss_bytes() -> int:
    """Peak RSS of this process (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def current_rss_bytes(proc_root: Path = Path("/proc")) -> int:
    """Current RSS of this process from ``/proc/self/statm`` (second field, pages)."""
    fields = sysfs.read_text(Path(proc_root) / "self" / "statm").split()
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


class MemoryMeter:
    def __init__(
        self,
        *,
        gpu_bytes: Callable[[], int] | None = None,
        gpu_peak_bytes: Callable[[], int] | None = None,
        proc_root: Path = Path("/proc"),
    ) -> None:
        self._gpu = gpu_bytes
        self._gpu_peak = gpu_peak_bytes
        self._proc = Path(proc_root)

    def read(self) -> MemoryReading:
        return MemoryReading(
            rss_bytes=current_rss_bytes(self._proc),
            peak_rss_bytes=peak_rss_bytes(),
            gpu_bytes=int(self._gpu()) if self._gpu is not None else None,
            gpu_peak_bytes=int(self._gpu_peak()) if self._gpu_peak is not None else None,
        )


def memory_values() -> tuple[dict[str, float], dict[str, str]]:
    """Peak and current RSS of this process (and GPU memory where torch sees a GPU), for telemetry."""
    gpu_now = gpu_peak = None
    torch = sys.modules.get("torch")  # only a process that already runs torch can have GPU memory to report
    if torch is not None and torch.cuda.is_available():
        gpu_now, gpu_peak = torch.cuda.memory_allocated, torch.cuda.max_memory_allocated
    reading = MemoryMeter(gpu_bytes=gpu_now, gpu_peak_bytes=gpu_peak).read()
    values = {"rss_bytes": float(reading.rss_bytes), "peak_rss_bytes": float(reading.peak_rss_bytes)}
    if reading.gpu_bytes is not None:
        values["gpu_bytes"] = float(reading.gpu_bytes)
    if reading.gpu_peak_bytes is not None:
        values["gpu_peak_bytes"] = float(reading.gpu_peak_bytes)
    return values, {k: reading.source for k in values}
