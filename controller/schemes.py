"""The paper's benchmark schemes (sec. VI-B/C): the same P1 with some knobs pinned."""

from __future__ import annotations

from collections.abc import Callable

from controller.problem import Pins, Problem
from splitbed.errors import InvalidArgument


def _fixed_power(problem: Problem) -> dict[str, float | int]:
    return {"power_w": problem.link.p_max_w}


def _fixed_clocks(problem: Problem) -> dict[str, float | int]:
    return {"freq_device_hz": problem.device.f_max_hz, "freq_server_hz": problem.server.f_max_hz}


def _split(problem: Problem, split: int, scheme: str) -> dict[str, float | int]:
    if split not in {s.split for s in problem.splits}:
        raise InvalidArgument(f"scheme {scheme!r} needs split {split} among splits")
    return {"split": split}


SCHEMES: dict[str, Callable[[Problem], dict[str, float | int]]] = {
    "joint": lambda problem: {},
    "fixed-power": _fixed_power,
    "fixed-clocks": _fixed_clocks,
    "prune-device-only": lambda problem: {"rho_server": 1.0},
    "prune-server-only": lambda problem: {"rho_device": 1.0},
    "on-server": lambda problem: _split(problem, 0, "on-server"),
    "on-device": lambda problem: _split(problem, problem.last_split, "on-device"),
}


def apply_scheme(problem: Problem, scheme: str) -> Problem:
    """Return the problem with the scheme's knobs pinned (the scheme wins over user pins)."""
    try:
        extra = SCHEMES[scheme](problem)
    except KeyError:
        raise InvalidArgument(f"scheme: unknown {scheme!r}; choose one of {', '.join(SCHEMES)}") from None
    if not extra:
        return problem
    pins = Pins.model_validate({**problem.pins.model_dump(exclude_none=True), **extra})
    return problem.model_copy(update={"pins": pins})
