"""Tensor <-> wire codec: raw bytes plus dtype, shape and encoding.

Float hidden states are encoded as fp32, fp16 or int8. The int8 encoding is
symmetric with one float32 scale per hidden channel (last axis): BERT hidden
states have a few outlier channels, so per-token scales lose ~10x more
(docs/design.md section 8). Decoding validates everything it is given and raises
`InvalidArgument` naming the problem; it never unpickles or evaluates bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from splitbed.errors import InvalidArgument, ResourceExhausted
from splitbed.kinds import Encoding, as_encoding
from splitbed.v1 import tensor_pb2

_ENCODING_ENUM: dict[Encoding, Any] = {
    "fp32": tensor_pb2.ENCODING_FP32,
    "fp16": tensor_pb2.ENCODING_FP16,
    "int8": tensor_pb2.ENCODING_INT8,
}
_ENCODING_NAME: dict[int, Encoding] = {v: k for k, v in _ENCODING_ENUM.items()}

_DTYPES: dict[int, np.dtype] = {
    tensor_pb2.DTYPE_FLOAT32: np.dtype("<f4"),
    tensor_pb2.DTYPE_FLOAT16: np.dtype("<f2"),
    tensor_pb2.DTYPE_INT8: np.dtype("i1"),
    tensor_pb2.DTYPE_UINT8: np.dtype("u1"),
    tensor_pb2.DTYPE_INT64: np.dtype("<i8"),
}
# Which wire dtype each float encoding must carry; anything else is rejected.
_EXPECTED_DTYPE: dict[int, Any] = {
    tensor_pb2.ENCODING_FP32: tensor_pb2.DTYPE_FLOAT32,
    tensor_pb2.ENCODING_FP16: tensor_pb2.DTYPE_FLOAT16,
    tensor_pb2.ENCODING_INT8: tensor_pb2.DTYPE_INT8,
}
MAX_RANK = 4


def encoding_enum(name: str) -> Any:
    return _ENCODING_ENUM[as_encoding(name)]


def encoding_name(value: int) -> str:
    return _ENCODING_NAME.get(value, f"unknown({value})")


def encode_float(array: np.ndarray, encoding: Encoding) -> tensor_pb2.Tensor:
    """Encode a float array ([..., C]) for the wire."""
    arr = np.ascontiguousarray(array, dtype=np.float32)
    enum = encoding_enum(encoding)
    msg = tensor_pb2.Tensor(shape=list(arr.shape), encoding=enum, dtype=_EXPECTED_DTYPE[enum])
    if encoding == "fp32":
        msg.data = arr.astype("<f4", copy=False).tobytes()
    elif encoding == "fp16":
        msg.data = arr.astype("<f2").tobytes()
    else:
        channels = arr.shape[-1] if arr.ndim else 1
        absmax = np.abs(arr.reshape(-1, channels)).max(axis=0) if arr.size else np.zeros(channels, np.float32)
        scales = np.where(absmax > 0, absmax / 127.0, 1.0).astype("<f4")
        q = np.clip(np.rint(arr / scales), -127, 127).astype(np.int8)
        msg.data = q.tobytes()
        msg.scales = scales.tobytes()
    return msg


def encode_raw(array: np.ndarray) -> tensor_pb2.Tensor:
    """Encode an integer / mask array as it is (uint8 or int64)."""
    arr = np.ascontiguousarray(array)
    enum: Any
    for enum, dt in _DTYPES.items():
        if arr.dtype.newbyteorder("<") == dt or arr.dtype == dt:
            return tensor_pb2.Tensor(
                data=arr.astype(dt, copy=False).tobytes(),
                dtype=enum,
                shape=list(arr.shape),
                encoding=tensor_pb2.ENCODING_RAW,
            )
    raise InvalidArgument(f"dtype {arr.dtype} cannot be sent raw")


@dataclass(frozen=True)
class Limits:
    """What a receiver accepts; anything beyond is rejected before decoding."""

    max_bytes: int = 64 * 1024 * 1024
    max_rank: int = MAX_RANK


def _checked_shape(msg: tensor_pb2.Tensor, what: str, limits: Limits) -> tuple[int, ...]:
    shape = tuple(int(d) for d in msg.shape)
    if not shape:
        raise InvalidArgument(f"{what}: shape is empty")
    if len(shape) > limits.max_rank:
        raise InvalidArgument(f"{what}: rank {len(shape)} exceeds {limits.max_rank}")
    if any(d <= 0 for d in shape):
        raise InvalidArgument(f"{what}: shape {list(shape)} has a non-positive dimension")
    return shape


def _check_header(
    msg: tensor_pb2.Tensor,
    data: bytes,
    what: str,
    limits: Limits,
    expect_shape: Sequence[int | None] | None,
    allow_dtypes: Sequence[int] | None,
) -> tuple[int, ...]:
    """Size, shape, dtype and encoding of a wire tensor checked before any byte is interpreted; its shape."""
    if len(data) > limits.max_bytes:
        raise ResourceExhausted(f"{what}: {len(data)} bytes exceeds the limit of {limits.max_bytes}")
    shape = _checked_shape(msg, what, limits)
    if expect_shape is not None and (
        len(shape) != len(expect_shape)
        or any(e is not None and e != s for e, s in zip(expect_shape, shape, strict=True))
    ):
        want = ["*" if e is None else e for e in expect_shape]
        raise InvalidArgument(f"{what}: shape {list(shape)} does not match expected {want}")
    if msg.dtype not in _DTYPES:
        raise InvalidArgument(f"{what}: unknown dtype {msg.dtype}")
    if allow_dtypes is not None and msg.dtype not in allow_dtypes:
        names = [tensor_pb2.DType.Name(d) for d in allow_dtypes]
        raise InvalidArgument(f"{what}: dtype {tensor_pb2.DType.Name(msg.dtype)} not accepted; expected {names}")
    if msg.encoding in _EXPECTED_DTYPE and msg.dtype != _EXPECTED_DTYPE[msg.encoding]:
        raise InvalidArgument(
            f"{what}: encoding {encoding_name(msg.encoding)} requires dtype "
            f"{tensor_pb2.DType.Name(_EXPECTED_DTYPE[msg.encoding])}, got {tensor_pb2.DType.Name(msg.dtype)}"
        )
    if msg.encoding not in _EXPECTED_DTYPE and msg.encoding != tensor_pb2.ENCODING_RAW:
        raise InvalidArgument(f"{what}: unknown encoding {msg.encoding}")
    return shape


def _dequantize_int8(msg: tensor_pb2.Tensor, arr: np.ndarray, what: str) -> np.ndarray:
    channels = arr.shape[-1]
    if len(msg.scales) != channels * 4:
        raise InvalidArgument(
            f"{what}: int8 needs {channels} float32 scales ({channels * 4} bytes), got {len(msg.scales)} bytes"
        )
    scales = np.frombuffer(msg.scales, dtype="<f4")
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise InvalidArgument(f"{what}: int8 scales must be finite and positive")
    return arr.astype(np.float32) * scales


def decode(
    msg: tensor_pb2.Tensor,
    *,
    what: str,
    limits: Limits,
    expect_shape: Sequence[int | None] | None = None,
    allow_dtypes: Sequence[int] | None = None,
) -> np.ndarray:
    """Validate and decode a wire tensor into a float32 (float encodings) or integer array.

    `expect_shape` entries that are None are free; others must match exactly.
    """
    data = msg.data  # fetched once: each access of a bytes field copies it
    shape = _check_header(msg, data, what, limits, expect_shape, allow_dtypes)
    dt = _DTYPES[msg.dtype]
    count = math.prod(shape)  # Python ints: np.prod in int64 wraps ([2**32, 2**32] -> 0)
    if count * dt.itemsize > limits.max_bytes:
        raise ResourceExhausted(f"{what}: shape {list(shape)} needs more than {limits.max_bytes} bytes")
    if len(data) != count * dt.itemsize:
        raise InvalidArgument(
            f"{what}: byte length {len(data)} does not match shape {list(shape)} x {dt.itemsize} bytes "
            f"= {count * dt.itemsize}"
        )
    arr = np.frombuffer(data, dtype=dt).reshape(shape)
    if msg.encoding == tensor_pb2.ENCODING_INT8:
        return _dequantize_int8(msg, arr, what)
    if msg.scales:
        raise InvalidArgument(f"{what}: scales are only allowed with int8 encoding")
    if msg.encoding == tensor_pb2.ENCODING_RAW:
        return arr
    # fp32 stays a read-only view of the message bytes (no copy); consumers copy when they need to.
    out = arr if arr.dtype == np.float32 else arr.astype(np.float32)
    if not np.isfinite(out).all():
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise InvalidArgument(f"{what}: {bad} non-finite values (NaN or Inf)")
    return out
