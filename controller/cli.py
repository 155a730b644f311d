"""`controller` command line: `controller solve --params FILE [--solver ..] [--scheme ..] [--json]`.

Subcommands are registered in `SUBCOMMANDS` (name -> function that adds its
parser to the argparse subparsers and sets `handler`), so the service can add
`serve` with `register_subcommand("serve", add_serve_parser)`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pydantic import ValidationError

from controller.multi_cli import solve_multi_cli
from controller.planner import SOLVERS, Planner
from controller.problem import Answer, Problem
from controller.schemes import SCHEMES
from splitbed.errors import SplitbedError

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]
AddParser = Callable[[Any], None]  # receives argparse's subparsers action
SUBCOMMANDS: dict[str, AddParser] = {}


def register_subcommand(name: str, add_parser: AddParser) -> None:
    """Register a subcommand; `add_parser(subparsers)` must call `set_defaults(handler=...)`."""
    SUBCOMMANDS[name] = add_parser


def _fmt(value: float | None, scale: float = 1.0, digits: int = 4) -> str:
    return "-" if value is None else f"{value * scale:.{digits}g}"


def render_table(answer: Answer) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = f"status {answer.status}  solver {answer.solver}  scheme {answer.scheme}  objective {answer.objective}"
    if answer.message:
        head += f"\n{answer.message}"
    console.print(head)
    if answer.status != "optimal":
        console.print(f"smallest feasible latency budget at this energy: {_fmt(answer.min_latency_s)} s")
        console.print(f"smallest feasible energy budget at this latency: {_fmt(answer.min_energy_j)} J")
    rows = answer.per_split or [answer]
    table = Table(title="plan per split (* = chosen)" if answer.per_split else "plan")
    for col in ("L", "rho", "rho~", "p W", "f GHz", "f~ GHz", "T ms", "E mJ", "log2 D^", "iter"):
        table.add_column(col, justify="right")
    for r in rows:
        mark = "*" if answer.per_split and r.split == answer.split and answer.status == "optimal" else ""
        if r.status != "optimal":
            table.add_row(f"{r.split}{mark}", r.status, *["-"] * 7, "-" if r.iterations is None else str(r.iterations))
            continue
        table.add_row(
            f"{r.split}{mark}", _fmt(r.rho_device), _fmt(r.rho_server), _fmt(r.power_w, digits=3),
            _fmt(r.freq_device_hz, 1e-9, 3), _fmt(r.freq_server_hz, 1e-9, 3), _fmt(r.latency_s, 1e3),
            _fmt(r.energy_j, 1e3), _fmt(r.log2_distortion_bound, digits=5),
            "-" if r.iterations is None else str(r.iterations),
        )
    console.print(table)
    if answer.stage is not None:
        st = answer.stage
        stages = Table(title=f"stages of split {answer.split} (modelled; fixed: the measured T_fix)")
        for col in ("", "device", "upload", "server", "fixed", "total"):
            stages.add_column(col, justify="right")
        stages.add_row("time ms", *(_fmt(v, 1e3) for v in (st.t_device, st.t_upload, st.t_server, st.t_fixed,
                                                             answer.latency_s)))
        stages.add_row("energy mJ", *(_fmt(v, 1e3) for v in (st.e_device, st.e_upload, st.e_server, 0.0,
                                                               answer.energy_j)))
        console.print(stages)
    console.print(f"solve time {answer.solve_time_s * 1e3:.2f} ms")


def _solve(args: argparse.Namespace) -> int:
    multi = solve_multi_cli(args)  # a file with "devices": the multi-device form
    if multi is not None:
        return multi
    try:
        problem = Problem.load(args.params)
        answer = Planner().solve(problem, solver=args.solver, scheme=args.scheme, sca_start=args.sca_start)
    except (ValidationError, SplitbedError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer.model_dump(), indent=2))
    else:
        render_table(answer)
    return 0 if answer.status == "optimal" else 1


def add_solve_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("solve", help="solve P1 for a problem file and print the plan")
    p.add_argument("--params", required=True, help="problem JSON file (see examples/paper.json)")
    p.add_argument("--solver", choices=SOLVERS, default="exact")
    p.add_argument("--scheme", choices=list(SCHEMES), default="joint")
    p.add_argument("--sca-start", choices=("phase1", "natural"), default="phase1",
                   help="SCA start: a phase-1 feasible point, or the paper's p = P_max, rho' = 1")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(handler=_solve)


register_subcommand("solve", add_solve_parser)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit code 2 (argparse's own prints the usage block too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="controller", description="split-inference controller")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in SUBCOMMANDS.values():
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    handler: Handler = args.handler
    return handler(args)
