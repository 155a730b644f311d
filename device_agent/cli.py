"""`device-agent run|calibrate ...`: command-line entry point (flags override AGENT_* environment settings)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from device_agent.settings import AgentSettings
from splitbed.cli_settings import add_calibrate_parser, add_settings_arguments, settings_from_args
from splitbed.errors import SplitbedError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="device-agent", description="Device agent of the split-inference testbed.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the front layers on the inputs and stream them to an edge server")
    add_settings_arguments(run, AgentSettings)
    run.add_argument("--log-level", default="WARNING", help="logging level")
    add_calibrate_parser(sub, AgentSettings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(AgentSettings, args)
    try:
        if args.command == "calibrate":
            from device_agent.app import calibrate_device

            return calibrate_device(settings, args.freqs_hz, args.json)
        from device_agent.app import run_agent  # torch import deferred until the flags parsed

        return asyncio.run(run_agent(settings))
    except KeyboardInterrupt:
        # Every completed request is already on disk (records are written as they complete).
        print(f"device-agent: interrupted; completed records are in {settings.out} (--resume continues)",
              file=sys.stderr)
        return 130
    except SplitbedError as exc:
        print(f"device-agent: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
