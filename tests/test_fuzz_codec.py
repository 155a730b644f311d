"""Fuzzing the tensor codec and request validation with hypothesis.

Every input, however malformed (random shapes, dtypes, encodings, byte lengths,
scales, wire bytes), ends either in a correct decode or in a domain error
(`SplitbedError`); nothing else escapes.
"""

from __future__ import annotations

import contextlib

import numpy as np
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from splitbed.codec import Limits, decode, encode_float, encode_raw
from splitbed.errors import InvalidArgument, SplitbedError
from splitbed.request_validation import validate_request
from splitbed.v1 import inference_pb2, tensor_pb2

LIMITS = Limits(max_bytes=1 << 16)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from([*tensor_pb2.DType.values(), 99, -1])
ENCODINGS = st.sampled_from([*tensor_pb2.Encoding.values(), 7, -3])
DIMS = st.lists(st.integers(min_value=-3, max_value=1 << 40) | st.integers(0, 24) | st.sampled_from([1 << 32, 1 << 62]),
                max_size=6)


def tensors() -> st.SearchStrategy[tensor_pb2.Tensor]:
    return st.builds(
        tensor_pb2.Tensor,
        data=st.binary(max_size=4096),
        dtype=DTYPES,
        shape=DIMS,
        encoding=ENCODINGS,
        scales=st.binary(max_size=128),
    )


@FUZZ
@given(msg=tensors(), expect=st.none() | st.lists(st.none() | st.integers(0, 24), max_size=4))
# Found by this test's strategy: the element count overflowed int64 to 0 and matched empty data.
@example(msg=tensor_pb2.Tensor(data=b"", dtype=tensor_pb2.DTYPE_UINT8, shape=[1 << 32, 1 << 32],
                               encoding=tensor_pb2.ENCODING_RAW), expect=None)
def test_decode_ends_in_a_domain_error_or_a_consistent_array(msg, expect):
    try:
        arr = decode(msg, what="t", limits=LIMITS, expect_shape=expect)
    except SplitbedError:
        return
    assert list(arr.shape) == list(msg.shape)
    if msg.encoding != tensor_pb2.ENCODING_RAW:
        assert arr.dtype == np.float32 and np.isfinite(arr).all()


@FUZZ
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), encoding=st.sampled_from(["fp32", "fp16", "int8"]),
       seed=st.integers(0, 2**32 - 1))
def test_valid_tensors_round_trip(shape, encoding, seed):
    arr = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    out = decode(encode_float(arr, encoding), what="t", limits=LIMITS)
    tol = {"fp32": 0.0, "fp16": 1e-2, "int8": 0.05}[encoding]
    assert out.shape == arr.shape
    assert np.allclose(out, arr, atol=tol * max(1.0, float(np.abs(arr).max())))


@FUZZ
@given(wire=st.binary(max_size=2048))
def test_random_wire_bytes_parse_or_fail_cleanly(wire):
    try:
        request = inference_pb2.InferRequest.FromString(wire)
    except DecodeError:
        return  # the server answers this INVALID_ARGUMENT (tests/test_edge_guard.py)
    with contextlib.suppress(SplitbedError):
        validate_request(request, limits=LIMITS, hidden_size=4, max_seq_len=8, max_batch=2)


@FUZZ
@given(hidden=tensors(), mask=tensors(), rid=st.text(max_size=300))
def test_validate_request_ends_in_a_domain_error_or_a_decode(hidden, mask, rid):
    request = inference_pb2.InferRequest(request_id=rid, hidden=hidden, attention_mask=mask)
    try:
        h, m = validate_request(request, limits=LIMITS, hidden_size=4, max_seq_len=8, max_batch=2)
    except SplitbedError:
        return
    assert h.shape[2] == 4 and m.shape == h.shape[:2] and set(np.unique(m)) <= {0, 1}


@FUZZ
@given(batch=st.integers(1, 2), seq=st.integers(1, 8), seed=st.integers(0, 1000),
       encoding=st.sampled_from(["fp32", "fp16", "int8"]), cut=st.integers(0, 64))
def test_truncated_payloads_are_invalid(batch, seq, seed, encoding, cut):
    arr = np.random.default_rng(seed).standard_normal((batch, seq, 4)).astype(np.float32)
    request = inference_pb2.InferRequest(request_id="r", hidden=encode_float(arr, encoding),
                                         attention_mask=encode_raw(np.ones((batch, seq), np.uint8)))
    if cut:
        request.hidden.data = request.hidden.data[:-cut] if cut < len(request.hidden.data) else b""
    try:
        h, _ = validate_request(request, limits=LIMITS, hidden_size=4, max_seq_len=8, max_batch=2)
    except InvalidArgument:
        assert cut
        return
    assert not cut and h.shape == arr.shape
