"""Entry point of the `controller` command: every subcommand (solve, serve, ...) registered."""

from __future__ import annotations

from collections.abc import Sequence

from controller import service  # noqa: F401 - registers `serve`
from controller.cli import main as _main


def main(argv: Sequence[str] | None = None) -> int:
    return _main(argv)
