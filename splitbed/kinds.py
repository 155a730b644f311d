"""The closed vocabularies every process shares: wire encodings, pruning methods, torch devices.

One `Literal` each, so the codec, the model profile, the settings of all three
services and the controller's REST models accept exactly the same names, and a
type checker sees a misspelt one. Torch-free and pydantic-free: the controller
imports it.
"""

from __future__ import annotations

from typing import Literal, cast, get_args

from splitbed.errors import InvalidArgument

Encoding = Literal["fp32", "fp16", "int8"]
PruneMethod = Literal["structured-magnitude", "structured-random", "unstructured-magnitude", "unstructured-random"]
TorchDevice = Literal["cpu", "cuda"]

ENCODINGS: tuple[Encoding, ...] = get_args(Encoding)
PRUNE_METHODS: tuple[PruneMethod, ...] = get_args(PruneMethod)


def as_encoding(name: str) -> Encoding:
    """`name` as an `Encoding`; InvalidArgument naming the choices when it is none."""
    if name not in ENCODINGS:
        raise InvalidArgument(f"unknown encoding {name!r}; expected one of {', '.join(ENCODINGS)}")
    return cast(Encoding, name)
