"""Validation of inference messages beyond the tensor codec: shapes that must agree, mask values."""

from __future__ import annotations

import numpy as np

from splitbed.codec import Limits, decode
from splitbed.errors import InvalidArgument
from splitbed.v1 import inference_pb2, tensor_pb2

FLOAT_DTYPES = (tensor_pb2.DTYPE_FLOAT32, tensor_pb2.DTYPE_FLOAT16, tensor_pb2.DTYPE_INT8)


def validate_request(
    request: inference_pb2.InferRequest,
    *,
    limits: Limits,
    hidden_size: int,
    max_seq_len: int,
    max_batch: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode and check an InferRequest; return (hidden [B,S,H] float32, mask [B,S] int64)."""
    if not request.request_id:
        raise InvalidArgument("request_id is empty")
    if len(request.request_id) > 256:
        raise InvalidArgument("request_id is longer than 256 characters")
    if not request.HasField("hidden"):
        raise InvalidArgument("hidden state tensor is missing")
    if not request.HasField("attention_mask"):
        raise InvalidArgument("attention_mask tensor is missing")
    if request.hidden.encoding == tensor_pb2.ENCODING_RAW:
        raise InvalidArgument("hidden state must use a float encoding (fp32, fp16 or int8), not RAW")
    hidden = decode(
        request.hidden,
        what="hidden",
        limits=limits,
        expect_shape=(None, None, hidden_size),
        allow_dtypes=FLOAT_DTYPES,
    )
    batch, seq = hidden.shape[0], hidden.shape[1]
    if batch > max_batch:
        raise InvalidArgument(f"hidden: batch {batch} exceeds the server's limit of {max_batch}")
    if seq > max_seq_len:
        raise InvalidArgument(f"hidden: sequence length {seq} exceeds the model's maximum of {max_seq_len}")
    mask = decode(
        request.attention_mask,
        what="attention_mask",
        limits=limits,
        expect_shape=(batch, seq),
        allow_dtypes=(tensor_pb2.DTYPE_UINT8, tensor_pb2.DTYPE_INT64),
    )
    if not np.all((mask == 0) | (mask == 1)):
        raise InvalidArgument("attention_mask: values must be 0 or 1")
    if np.any(mask.sum(axis=1) == 0):
        raise InvalidArgument("attention_mask: a sequence has no unmasked token")
    return hidden, mask.astype(np.int64)
