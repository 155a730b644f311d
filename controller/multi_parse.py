"""The multi-device form inside a JSON text (gRPC `Solve`'s `problem_json`), recognised and validated.

The text is the multi-device form when it is a JSON object with a `devices` key,
as for REST `POST /v1/solve`; anything else is left to the one-device contract.
Bad input raises `InvalidArgument` naming each bad field (as REST's 422 does).
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from controller.live import validation_message
from controller.multi_problem import MultiProblem, is_multi
from splitbed.errors import InvalidArgument

ONLY = {"solver": "exact", "scheme": "joint"}  # what a multi-device problem is solved with


def parse_multi(text: str, solver: str = "", scheme: str = "") -> MultiProblem | None:
    """The multi-device problem in `text`, or None when `text` is not that form; `solver`/`scheme` "" = default."""
    try:
        data = json.loads(text)
    except ValueError:
        return None  # not JSON at all: the one-device validation says so
    if not is_multi(data):
        return None
    for name, value in (("solver", solver), ("scheme", scheme)):
        if value and value != ONLY[name]:
            raise InvalidArgument(f"{name}: a multi-device problem is solved with {name}={ONLY[name]}, not {value!r}")
    try:
        return MultiProblem.model_validate(data)
    except ValidationError as exc:
        raise InvalidArgument(validation_message(exc)) from None
