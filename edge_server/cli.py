"""`edge-server serve ...`: command-line entry point (flags override EDGE_* environment settings)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from edge_server.settings import EdgeSettings
from splitbed.cli_settings import add_calibrate_parser, add_settings_arguments, settings_from_args
from splitbed.errors import SplitbedError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-server", description="Edge server of the split-inference testbed.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the back layers of a split model over gRPC")
    add_settings_arguments(serve, EdgeSettings)
    serve.add_argument("--log-level", default="INFO", help="logging level")
    add_calibrate_parser(sub, EdgeSettings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(EdgeSettings, args)
    try:
        if args.command == "calibrate":
            from edge_server.server import calibrate_server

            return calibrate_server(settings, args.freqs_hz, args.json)
        from edge_server.server import EdgeServer  # torch import deferred until the flags parsed

        asyncio.run(EdgeServer(settings).run())
    except SplitbedError as exc:
        print(f"edge-server: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"edge-server: {exc}", file=sys.stderr)
        return 2
    return 0
