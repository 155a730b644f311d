"""Expose a pydantic settings class as command-line flags (flags override the environment); the sides' CLI."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic_settings import BaseSettings

from splitbed.errors import SplitbedError

S = TypeVar("S", bound=BaseSettings)


def _scalar_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _scalar_type(args[0]) if len(args) == 1 else str
    if origin is typing.Literal:
        return type(typing.get_args(annotation)[0])
    return annotation


def add_settings_arguments(
    parser: argparse.ArgumentParser, cls: type[BaseSettings], skip: set[str] | None = None
) -> None:
    for name, field in cls.model_fields.items():
        if skip and name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        kind = _scalar_type(field.annotation)
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": field.description}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind in (int, float):
            kwargs["type"] = kind
        if typing.get_origin(field.annotation) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(field.annotation))
        parser.add_argument(flag, **kwargs)


def add_calibrate_parser(subparsers: Any, cls: type[BaseSettings]) -> argparse.ArgumentParser:
    """The `calibrate` subcommand shared by the agent and the server."""
    cal: argparse.ArgumentParser = subparsers.add_parser(
        "calibrate", help="fit the power coefficient phi from energy measured at several clocks"
    )
    add_settings_arguments(cal, cls)
    cal.add_argument("--freqs-hz", type=float, nargs="*", help="clock caps to measure at (default: 5 steps)")
    cal.add_argument("--json", action="store_true", help="print the result as JSON")
    cal.add_argument("--log-level", default="WARNING", help="logging level")
    return cal


def settings_from_args(cls: type[S], args: argparse.Namespace) -> S:
    overrides = {k: v for k, v in vars(args).items() if k in cls.model_fields and v is not None}
    return cls(**overrides)


def side_main(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    settings_cls: type[BaseSettings],
    command: tuple[str, str, str],
    app: str,
    also_reported: tuple[type[BaseException], ...] = (),
    interrupted: Callable[[Any], str] | None = None,
) -> int:
    """The command line of one side: `<prog> <command> FLAGS` and `<prog> calibrate FLAGS`.

    `command` is (name, help, default log level). `app` names the module that
    does the work, imported only once the flags parsed (it imports torch): its
    `run_command(settings)` and `calibrate(settings, freqs_hz, as_json)` return
    the exit code. Domain errors (and `also_reported`) print one line and exit 2;
    Ctrl-C prints `interrupted(settings)` (or just "interrupted") and exits 130.
    """
    name, help_text, log_level = command
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    main_cmd = sub.add_parser(name, help=help_text)
    add_settings_arguments(main_cmd, settings_cls)
    main_cmd.add_argument("--log-level", default=log_level, help="logging level")
    add_calibrate_parser(sub, settings_cls)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(settings_cls, args)
    try:
        module = importlib.import_module(app)
        if args.command == "calibrate":
            return int(module.calibrate(settings, args.freqs_hz, args.json))
        return int(module.run_command(settings))
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted(settings) if interrupted else 'interrupted'}", file=sys.stderr)
        return 130
    except SplitbedError as exc:
        print(f"{prog}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except also_reported as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
