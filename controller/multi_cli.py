"""`controller solve --params FILE` for the multi-device form (a file with a `devices` list).

`controller.cli` hands a parameters file here first; anything that is not the
multi-device form (or cannot be read) goes back to the one-device path unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from controller.multi_planner import MultiPlanner
from controller.multi_problem import MultiAnswer, MultiProblem, is_multi
from splitbed.errors import SplitbedError


def _fmt(value: float | None, scale: float = 1.0, digits: int = 4) -> str:
    return "-" if value is None else f"{value * scale:.{digits}g}"


def render_multi(answer: MultiAnswer) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a pipe or a file: wide enough that ids are not cut
    head = f"status {answer.status}  fairness {answer.fairness}  objective {answer.objective}"
    if answer.message:
        head += f"\n{answer.message}"
    console.print(head)
    table = Table(title="plan per device (modelled: paper eqs. 4-11)")
    for col in ("id", "status", "L", "rho", "rho~", "p W", "f GHz", "f~ GHz", "T ms", "E mJ", "lambda/s",
                "server", "uplink"):
        table.add_column(col, justify="right")
    for d in answer.devices:
        table.add_row(
            d.id, d.status, "-" if d.split is None else str(d.split), _fmt(d.rho_device), _fmt(d.rho_server),
            _fmt(d.power_w, digits=3), _fmt(d.freq_device_hz, 1e-9, 3), _fmt(d.freq_server_hz, 1e-9, 3),
            _fmt(d.latency_s, 1e3), _fmt(d.energy_j, 1e3), _fmt(d.rate_hz, digits=3),
            _fmt(d.server_load, digits=3), _fmt(d.uplink_load, digits=3),
        )
    console.print(table)
    console.print(f"server utilisation {_fmt(answer.server_utilisation, digits=3)}, uplink utilisation "
                  f"{_fmt(answer.uplink_utilisation, digits=3)} (u_max {answer.u_max:g})")
    if answer.search is not None:
        s = answer.search
        console.print(f"split search {s.method}: {s.evaluated} of {s.combinations} combinations solved, "
                      f"{s.sweeps} sweeps; objective {_fmt(answer.objective_value, digits=6)}")
    console.print(f"solve time {answer.solve_time_s * 1e3:.1f} ms")


def solve_multi_cli(args: argparse.Namespace) -> int | None:
    """Solve and print a multi-device problem file; None if the file is not one (the caller goes on)."""
    try:
        data = json.loads(Path(args.params).read_text())
    except (OSError, ValueError):
        return None  # the one-device path reports it
    if not is_multi(data):
        return None
    if args.solver != "exact" or args.scheme != "joint":
        print("error: a multi-device problem is solved with --solver exact --scheme joint", file=sys.stderr)
        return 2
    try:
        answer = MultiPlanner().solve(MultiProblem.model_validate(data))
    except (ValidationError, SplitbedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(answer.model_dump_json(indent=2))
    else:
        render_multi(answer)
    return 0 if answer.status == "optimal" else 1
