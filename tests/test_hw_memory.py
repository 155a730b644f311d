"""Process memory readings."""

from __future__ import annotations

import os
from pathlib import Path

from splitbed.hw.memory import MemoryMeter, current_rss_bytes, peak_rss_bytes


def test_rss_grows_with_a_touched_allocation() -> None:
    before = current_rss_bytes()
    block = bytearray(64 * 1024 * 1024)  # zero-filled, so every page is touched
    after = current_rss_bytes()
    assert after - before >= 48 * 1024 * 1024
    # ru_maxrss lags statm by a few pages; it must still have seen the allocation.
    assert peak_rss_bytes() >= before + 48 * 1024 * 1024
    del block


def test_reads_statm_under_a_given_proc_root(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "statm").write_text("5000 1234 300 10 0 900 0\n")
    reading = MemoryMeter(proc_root=tmp_path).read()
    assert reading.rss_bytes == 1234 * os.sysconf("SC_PAGE_SIZE")
    assert reading.gpu_bytes is None and reading.gpu_peak_bytes is None


def test_gpu_memory_comes_from_injected_callables() -> None:
    reading = MemoryMeter(gpu_bytes=lambda: 1 << 30, gpu_peak_bytes=lambda: 3 << 30).read()
    assert (reading.gpu_bytes, reading.gpu_peak_bytes) == (1 << 30, 3 << 30)
    assert reading.rss_bytes > 0 and reading.peak_rss_bytes > 0
