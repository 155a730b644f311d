"""Expose a pydantic settings class as command-line flags (flags override the environment)."""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any, TypeVar

from pydantic_settings import BaseSettings

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
