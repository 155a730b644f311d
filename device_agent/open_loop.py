"""Open-loop requests (`device-agent run --rate HZ`): one request per period, started at the plan's slot offset.

Periods are counted from the Unix epoch, so agents on one host (or on hosts
with synchronised clocks) share slot boundaries: with the offsets of a
per-device plan, their uploads follow each other in TDMA order instead of
overlapping. A request that is still running when its next slot comes makes
the agent skip that slot (counted as missed), never queue up behind itself.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from device_agent.record import RequestRecord
from device_agent.runner import DeviceRunner

logger = logging.getLogger(__name__)


def next_start(now: float, period_s: float, offset_s: float) -> float:
    """The first time >= now that lies offset_s into a period (periods from the Unix epoch)."""
    return math.ceil((now - offset_s) / period_s) * period_s + offset_s


async def run_open_loop(runner: DeviceRunner, texts: list[str], rate_hz: float,
                        slot: Callable[[], tuple[float, float]],
                        on_record: Callable[[RequestRecord], Any] | None = None) -> list[RequestRecord]:
    """Every input (times --repeat), one per period 1/rate_hz at the offset `slot()` gives (period, offset)."""
    prepared = runner.prepare(texts)
    for i in range(min(runner.settings.warmup, len(prepared))):
        await runner.infer_one(prepared[i], f"warmup-{i}-{uuid.uuid4().hex[:8]}")
    period = 1.0 / rate_hz
    records: list[RequestRecord] = []
    missed, last = 0, None
    for rep in range(runner.settings.repeat):
        for i, (text, inputs) in enumerate(zip(texts, prepared, strict=True)):
            offset = slot()[1] % period
            start = next_start(time.time(), period, offset)
            if last is not None:  # the slots between the previous start and this one went unused
                missed += max(0, round((start - last) / period) - 1)
            last = start
            await asyncio.sleep(max(0.0, start - time.time()))
            rec = await runner.infer_one(inputs, f"{rep}-{i}-{uuid.uuid4().hex[:8]}")
            rec.id, rec.text = (i if runner.settings.repeat == 1 else f"{rep}-{i}"), text
            # The record's key (rep-index) as in the closed loop: the writer refuses a second record with a key.
            rec.rep, rec.index, rec.run_id, rec.seq = rep, i, runner.run_id, rep * len(texts) + i + 1
            records.append(rec)
            if on_record is not None:
                result = on_record(rec)
                if asyncio.iscoroutine(result):
                    await result
    logger.info("open loop at %.3g Hz: %d requests, %d slots skipped", rate_hz, len(records), missed)
    return records
