"""Records written as they complete: an append-only JSONL file that survives SIGKILL.

Every record is one line written with a single `write` and flushed to the OS at
once, so a killed process leaves every completed record on disk (the kernel
keeps the page cache). `fsync` runs every `fsync_every` records or
`fsync_interval_s` seconds, whichever comes first, against power loss.

`--resume` reopens the same file: the last line is dropped if a kill cut it
short, and the `(rep, index)` keys already written are skipped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import IO, Any

from device_agent.record import RequestRecord
from splitbed.errors import FailedPrecondition

logger = logging.getLogger(__name__)

RUN_ID_KEY = "run_id"


def record_key(rec: RequestRecord | dict[str, Any]) -> str:
    """The request a record (or its JSONL object) answers: `rep-index` (unique within a run)."""
    if isinstance(rec, RequestRecord):
        return f"{rec.rep or 0}-{rec.index}"
    return f"{rec.get('rep', 0)}-{rec['index']}"


def read_records(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """Every complete record of a JSONL file, and the byte length of the complete part."""
    data = Path(path).read_bytes() if Path(path).exists() else b""
    records: list[dict[str, Any]] = []
    good = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # cut short by a kill: dropped, the request runs again
        try:
            records.append(json.loads(line))
        except ValueError:
            break
        good += len(line)
    return records, good


class RecordWriter:
    """Appends one JSON line per completed request; `done` holds the keys already on disk."""

    def __init__(self, path: str | Path, *, resume: bool = False, fsync_every: int = 20,
                 fsync_interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.done: set[str] = set()
        self.run_id: str | None = None
        self.resumed = 0
        if resume:
            records, good = read_records(self.path)
            if self.path.exists() and good < self.path.stat().st_size:
                logger.warning("%s: dropping an incomplete last line (%d bytes)", self.path,
                               self.path.stat().st_size - good)
                os.truncate(self.path, good)
            self.done = {record_key(r) for r in records if "index" in r}
            self.run_id = next((r[RUN_ID_KEY] for r in records if RUN_ID_KEY in r), None)
            self.resumed = len(records)
        self._fh: IO[str] = self.path.open("a" if resume else "w", encoding="utf-8")
        self._fsync_every = max(1, fsync_every)
        self._fsync_interval_s = fsync_interval_s
        self._unsynced = 0
        self._last_sync = time.monotonic()
        self.written = 0

    def write(self, line: str, key: str) -> None:
        if key in self.done:
            raise FailedPrecondition(f"record {key} is already in {self.path}")
        self._fh.write(line + "\n")
        self._fh.flush()
        self.done.add(key)
        self.written += 1
        self._unsynced += 1
        now = time.monotonic()
        if self._unsynced >= self._fsync_every or now - self._last_sync >= self._fsync_interval_s:
            self.sync()

    def sync(self) -> None:
        if self._unsynced:
            os.fsync(self._fh.fileno())
            self._unsynced = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()
