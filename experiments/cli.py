"""`experiments run NAME|--config FILE [--out DIR] [--quick] [--resume] [--mode modelled|live|both]
[--controller URL [--controller-grpc HOST:PORT] [--token-file FILE]]` and `experiments report [--out DIR]`."""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from experiments.progress import console

if TYPE_CHECKING:
    from experiments.testbed import AttachTo

FIGURES = ("fig3", "fig4", "fig5", "fig6")
ATTACH_HELP = """\
attach mode (--mode live --controller URL): the driver still launches its own device agent (node id device-0,
paper-device clock, paced uplink) and registers it over gRPC at --controller-grpc (default: $CONTROLLER_GRPC,
else URL's host, port 50052), then sets budget and pins per point over REST. A controller started with
--token-file needs --token-file here too: a file holding its admin token (REST writes and the agent use it).
What REST cannot set is checked, and the run stops naming any mismatch. Start the two processes as the
self-started testbed does, e.g.:
  controller serve --grpc-port 50052 --rest-port 8080 --method structured-magnitude \\
      --encoding fp16 --rho-min-device 0.3 --rho-min-server 0.3
  edge-server serve --controller 127.0.0.1:50052 --model minilm --clock emulated \\
      --clock-profile edge-cpu --pue 2 --power-coeff 1e-28 --profile-seq-len 64
  experiments run fig6 --mode live --controller http://127.0.0.1:8080
One pruning method per controller (--method structured-random for the random panels: run those with a
sweep file, live.methods: [random]); no other live device agent may be registered. The controller's budget
and pins are put back when the run ends.
"""


def _run(args: argparse.Namespace) -> int:
    from experiments.config import SweepConfig, builtin
    from experiments.run import close_testbeds, run_sweep
    from experiments.testbed import AttachMismatch

    if args.config:
        configs = [SweepConfig.load(args.config)]
    elif args.name == "all":
        configs = [builtin(n, args.quick) for n in FIGURES]
    elif args.name in FIGURES:
        configs = [builtin(args.name, args.quick)]
    else:
        console.print(f"[red]unknown figure {args.name!r}: one of {', '.join(FIGURES)}, all, or --config FILE")
        return 2
    out = Path(args.out)
    try:
        attach_to = _attach_to(args)
    except ValueError as exc:
        console.print(f"[red]{exc}", highlight=False)
        return 2
    t0 = time.perf_counter()
    try:
        for cfg in configs:
            run_sweep(cfg, out, mode=args.mode, resume=args.resume, controller=attach_to, quick=args.quick)
    except AttachMismatch as exc:
        console.print(f"experiments run --controller {args.controller}: {exc}", style="red", highlight=False,
                      markup=False, soft_wrap=True)
        return 3
    finally:
        close_testbeds()
    console.print(f"[green]done in {time.perf_counter() - t0:.0f} s; results in {out}/")
    return 0


def _attach_to(args: argparse.Namespace) -> AttachTo | None:
    """The controller to attach to, from --controller, --controller-grpc and --token-file (None: start one)."""
    from experiments.testbed import AttachTo
    from splitbed.errors import SplitbedError
    from splitbed.tls import read_token

    if not args.controller:
        if args.controller_grpc or args.token_file:
            raise ValueError("--controller-grpc and --token-file go with --controller URL (attach mode)")
        return None
    grpc = args.controller_grpc or os.environ.get("CONTROLLER_GRPC") or \
        f"{urlparse(args.controller).hostname or '127.0.0.1'}:50052"  # the controller's default gRPC port
    try:
        token = read_token(None, args.token_file)
    except SplitbedError as exc:  # an unreadable or empty file, named for this flag
        raise ValueError(f"--token-file {args.token_file}: {exc}") from None
    return AttachTo(args.controller, grpc, token)


def _report(args: argparse.Namespace) -> int:
    from experiments.report import write_report

    path = write_report(Path(args.out), Path(args.doc), Path(args.figures))
    console.print(f"[green]wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="experiments", description="the paper's figures (Sec. VI) on the testbed")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one figure's sweep (or all, or a sweep file)", epilog=ATTACH_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("name", nargs="?", default=None, help="fig3 | fig4 | fig5 | fig6 | all")
    run.add_argument("--config", help="a sweep file (YAML or JSON; see examples/sweep.yaml)")
    run.add_argument("--out", default="results", help="folder for the CSVs (default results/)")
    run.add_argument("--quick", action="store_true", help="few points, at most 20 requests each")
    run.add_argument("--resume", action="store_true", help="keep finished points and skip them")
    run.add_argument("--mode", choices=("modelled", "live", "both"), default="both")
    run.add_argument("--controller", default=None, metavar="URL",
                     help="attach to a running controller at this REST URL and its edge server instead of "
                          "starting them (see below)")
    run.add_argument("--controller-grpc", default=None, metavar="HOST:PORT",
                     help="attach mode: the controller's gRPC address, where the driver's agent registers "
                          "(default $CONTROLLER_GRPC, else the URL's host, port 50052)")
    run.add_argument("--token-file", default=None, metavar="FILE",
                     help="attach mode: a file holding the controller's admin token (for a controller started "
                          "with --token-file)")
    run.set_defaults(handler=_run)
    rep = sub.add_parser("report", help="write docs/results.md and its figures from the CSVs")
    rep.add_argument("--out", default="results", help="folder the CSVs are in (default results/)")
    rep.add_argument("--doc", default="docs/results.md", help="the Markdown file to write")
    rep.add_argument("--figures", default="docs/results", help="folder for the PNG figures")
    rep.set_defaults(handler=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # One compute thread, passive OpenMP waits: this process shares the cores with the testbed's processes
    # (and, on a shared machine, with everyone else); spinning threads would slow all of them down.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "run" and not args.name and not args.config:
        console.print("[red]experiments run: give NAME (fig3..fig6, all) or --config FILE")
        return 2
    handler = args.handler
    return int(handler(args))
