"""Entry point of the `controller` command: every subcommand (solve, serve, ...) registered."""

from __future__ import annotations

from collections.abc import Sequence

from controller import remote, service  # noqa: F401 - register `serve` and the REST client commands
from controller.cli import main as _main


def main(argv: Sequence[str] | None = None) -> int:
    return _main(argv)
