"""rich progress for long sweeps: points done out of the total, elapsed time and an ETA."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


class Tracker:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress = progress
        self.task = task

    def advance(self, note: str = "") -> None:
        self.progress.advance(self.task)
        if note:
            self.progress.update(self.task, note=note)

    def note(self, text: str) -> None:
        self.progress.update(self.task, note=text)


@contextmanager
def tracker(title: str, total: int, done: int = 0) -> Iterator[Tracker]:
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("points"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
        console=console, transient=False,
    )
    with progress:
        task = progress.add_task(title, total=total, completed=done, note="")
        yield Tracker(progress, task)
